"""The resource actor: one command at a time per partition, decided against table state.

Order of writes for one command (DESIGN decision 4):
1. the journal entry (the whole decision record) is written and acknowledged;
2. entities and indexes are written to their tables and acknowledged;
3. the record goes to the decisions topic, then its follow-up commands to the commands
   topic, each acknowledged by the broker,
before the stream moves on (Faust commits the offset only after that). Once step 1 is
done, steps 1-3 are retried until they succeed: an exception escaping the agent would
make Faust ack and skip the command (faust-streaming #315), leaving a decision nobody
hears of. A redelivered command finds its journal entry and re-applies it instead of
deciding again; a repeat with the same idempotency key is answered with the first reply
and changes and emits nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from agents.cursor import Cursor
from agents.journal import expired_keys
from agents.reminders import Reminders
from domain.commands import parse_command
from domain.decisions import Context, Decision
from domain.errors import DomainError, ErrorCode
from domain.limits import MAX_RECORD_BYTES
from domain.usecases import decide
from scheduling.core import metrics
from scheduling.core.config import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC, DECISIONS_TOPIC, Settings
from scheduling.core.wire import CommandEnvelope, DecisionRecord, ParkedRecord, Unreadable, unreadable_command
from tables import Tables
from tables.state import TableState

log = logging.getLogger(__name__)
BACKOFF_MAX = 5.0
#: keys the bridge and the timers write: a resource's routing token, or the name of a fanned-out command
ROUTING_KEY = re.compile(rb"[A-Za-z0-9._-]{1,64}")
#: produce one record and wait for the broker's ack: (topic, key, value, partition)
Send = Callable[[str, bytes, bytes, "int | None"], Awaitable[None]]


def context_of(key: bytes, env: CommandEnvelope) -> Context:
    claims = env.claims
    return Context(
        tenant=claims.tenant,
        # ids and event ids derive from this: the same key on two resources is two commands
        command_id=f"{key.decode(errors='replace')}:{env.command_id}",
        now=datetime.now(UTC),
        subject=claims.sub,
        scopes=claims.scopes,
        patient_id=claims.patient_id,
    )


def journal_key(key: bytes, env: CommandEnvelope) -> str:
    """Idempotency keys are scoped by tenant, caller and resource: a repeat is the same caller's."""
    return "\x1f".join((env.claims.tenant, str(env.claims.sub), key.decode(errors="replace"), env.command_id))


async def until_done(step: Callable[[], Awaitable[None]], what: str) -> None:
    """Retry a step that must happen (the decision is already journaled) with capped backoff."""
    pause = 0.1
    while True:
        try:
            await step()
            return
        except Exception:
            log.exception("%s failed; retrying in %.1fs", what, pause)
            metrics.OUTBOX_RETRIES.inc()
            await asyncio.sleep(pause)
            pause = min(pause * 2, BACKOFF_MAX)


class ResourceActor:
    """Decides the commands of the partitions its worker owns, one at a time, against the tables."""

    def __init__(self, settings: Settings, tables: Tables, send: Send, cursor: Cursor, reminders: Reminders) -> None:
        self._settings = settings
        self._tables = tables
        self._send = send
        self._cursor = cursor
        self._reminders = reminders
        self._state = TableState(tables)
        self._partition_wide: dict[str, Callable[[CommandEnvelope, int], Awaitable[dict[str, Any]]]] = {
            "reminder.dispatch": self._dispatch_reminders,
            "journal.expire": self._expire_journal,
        }

    async def consume(self, stream: Any) -> None:
        """The Faust agent. No exception escapes (Faust would ack and skip the command, #315/#527), and no gap
        is left behind: commands the stream skipped are read back and decided first."""
        async for event in stream.events():
            await self.receive(event.key or b"", event.value, event.message.partition, event.message.offset)

    async def receive(self, key: bytes, raw: bytes | None, partition: int, offset: int) -> None:
        if offset > self._cursor.expected(partition):
            await until_done(
                partial(self._decide_missed, partition, offset), f"reading back skipped commands of {partition}"
            )
        await self.decide_one(key, raw, partition, offset)

    async def decide_one(self, key: bytes, raw: bytes | None, partition: int, offset: int) -> None:
        """Decide one command message; whatever it holds, it is answered or parked, and the cursor moves past it.

        A record that cannot be read becomes a refusal built only from what could be read of it
        (`unreadable_command`): it goes to the dead-letter stream with its reason and offset, and its
        caller, if one can be found, gets the error. Nothing in this path indexes the record's content.
        """
        try:
            if not ROUTING_KEY.fullmatch(key):
                raise Unreadable("the record key is not a routing token")
            env = CommandEnvelope.decode(raw, "command record")
        except Unreadable as exc:
            await self._park_unreadable(key, raw, partition, offset, exc.reason)
            return
        try:
            record = await self.handle(key, env, partition)
        except DomainError as refused:
            record = DecisionRecord.refusal(env, refused)
            await self._publish(key, record)
        except Exception as exc:  # raised before anything was journaled: nothing was decided
            log.exception("command %s crashed the actor; dead-lettered", env.command_id)
            details = {"exception": type(exc).__name__}
            crashed = DomainError(ErrorCode.INTERNAL, "the command could not be processed", details)
            record = DecisionRecord.refusal(env, crashed).model_copy(update={"trace": traceback.format_exc(limit=5)})
            await self._publish(key, record)
        self._cursor.advance(partition, offset)
        await self._tables.changelog.written()
        metrics.COMMANDS.labels(env.type, record.outcome).inc()

    async def handle(self, key: bytes, env: CommandEnvelope, partition: int) -> DecisionRecord:
        """Decide one command (or replay its recorded decision) and hand the record to the outbox."""
        if env.type in self._partition_wide:
            summary = await self._partition_wide[env.type](env, partition)
            record = DecisionRecord.of(env, Decision(data=summary))
            await self._publish(key, record)
            return record
        journaled_as = journal_key(key, env)
        prior = self._prior(journaled_as)
        if prior is not None:
            if prior.delivery_id == env.delivery_id:  # the same message again: finish what it started
                record = prior
                self._state.apply(record)
            else:  # a repeat: the first reply, nothing more
                record = prior.repeat(env)
            await self._tables.changelog.written()
            await self._publish(key, record)
            return record
        command = parse_command(env.type, env.body)
        started = time.perf_counter()
        decision = decide(command, self._state, context_of(key, env))
        metrics.DECISION_SECONDS.labels(env.type).observe(time.perf_counter() - started)
        record = DecisionRecord.of(env, decision, routing_key=key.decode(errors="replace"))
        if len(record.encode()) > MAX_RECORD_BYTES:  # it could never be written: refused before it is journaled
            too_large = {"field": "body", "message": f"its decision record would exceed {MAX_RECORD_BYTES} bytes"}
            raise DomainError(ErrorCode.VALIDATION_FAILED, "the command's outcome is too large to record", [too_large])
        self._tables.journal[journaled_as] = record.dump()
        await self._tables.changelog.written()
        self._state.apply(record)
        await self._tables.changelog.written()
        await self._publish(key, record)
        return record

    def _prior(self, journaled_as: str) -> DecisionRecord | None:
        """The journaled decision of this key; one that cannot be read is reported and treated as absent."""
        prior = self._tables.journal.get(journaled_as)
        if prior is None:
            return None
        try:
            return DecisionRecord.load(prior)
        except Unreadable as exc:
            log.critical("journal entry %r cannot be read (%s); deciding the command again", journaled_as, exc.reason)
            return None

    async def _publish(self, key: bytes, record: DecisionRecord) -> None:
        """The record to the outbox, then its follow-up commands to their resources' partitions, all acknowledged."""
        encoded = record.encode()
        follow_ups = [(f.key.encode(), f.envelope.encode()) for f in record.follow_ups]

        async def send() -> None:
            await self._send(DECISIONS_TOPIC, key, encoded, None)
            for follow_up_key, envelope in follow_ups:
                await self._send(COMMANDS_TOPIC, follow_up_key, envelope, None)

        await until_done(send, f"outbox write of {record.command_id}")

    async def _park_unreadable(self, key: bytes, raw: bytes | None, partition: int, offset: int, reason: str) -> None:
        """Set an unreadable command aside (dead-letter topic), answer its caller if one can be found, move on."""
        log.error("unreadable command at %s:%s: %s", partition, offset, reason)
        metrics.PARKED.labels("actor", "unreadable").inc()
        parked = ParkedRecord.of(
            "actor", "unreadable", topic=COMMANDS_TOPIC, partition=partition, offset=offset, key=key, value=raw,
            reason=reason,
        )  # fmt: skip
        record, _ = unreadable_command(raw, reason, topic=COMMANDS_TOPIC, partition=partition, offset=offset)

        async def send() -> None:
            await self._send(DEAD_LETTERS_TOPIC, b"actor", parked.encode(), None)

        await until_done(send, f"parking command {partition}:{offset}")
        await self._publish(key if ROUTING_KEY.fullmatch(key) else b"unreadable", record)
        self._cursor.advance(partition, offset)
        await self._tables.changelog.written()
        metrics.COMMANDS.labels("unknown", record.outcome).inc()

    async def _decide_missed(self, partition: int, stop: int) -> None:
        """Decide the commands the stream skipped before `stop`; a retry resumes where the cursor got to."""
        async for missed in self._cursor.missed(partition, self._cursor.expected(partition), stop):
            await self.decide_one(missed.key or b"", missed.value, partition, missed.offset)

    async def _dispatch_reminders(self, env: CommandEnvelope, partition: int) -> dict[str, Any]:
        return await self._reminders.dispatch(
            env, partition, lambda key, internal: self.handle(key, internal, partition)
        )

    async def _expire_journal(self, env: CommandEnvelope, partition: int) -> dict[str, Any]:
        """Forget idempotency keys older than the configured TTL, on this partition only (its changelog)."""
        cutoff = datetime.now(UTC) - timedelta(hours=self._settings.idempotency_ttl_hours)
        expired = expired_keys(list(self._tables.journal.items()), partition, self._settings.partitions, cutoff)
        for k in expired:
            del self._tables.journal[k]
        await self._tables.changelog.written()
        return {"expired": len(expired)}
