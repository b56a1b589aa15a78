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

from agents import cursor, reminders
from domain.commands import parse_command
from domain.decisions import Context, Decision
from domain.errors import DomainError, ErrorCode
from domain.limits import MAX_RECORD_BYTES
from domain.usecases import decide
from scheduling import metrics
from scheduling.config import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC
from scheduling.faust_app import app, commands_topic, decisions_topic, settings
from scheduling.journal import expired_keys
from scheduling.wire import CommandEnvelope, DecisionRecord, ParkedRecord, Unreadable, unreadable_command
from tables import journal
from tables.durable import written
from tables.state import TableState, apply_changes

log = logging.getLogger(__name__)
_state = TableState()
#: keys the bridge and the timers write: a resource's routing token, or the name of a fanned-out command
ROUTING_KEY = re.compile(rb"[A-Za-z0-9._-]{1,64}")
BACKOFF_MAX = 5.0


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


async def _publish(key: bytes, record: DecisionRecord) -> None:
    """The record to the outbox, then its follow-up commands to their resources' partitions, all acknowledged."""
    encoded = record.encode()
    follow_ups = [(f.key.encode(), f.envelope.encode()) for f in record.follow_ups]

    async def send() -> None:
        await app.producer.send_and_wait(decisions_topic.get_topic_name(), key, encoded, None, None, None)
        for follow_up_key, envelope in follow_ups:
            await app.producer.send_and_wait(commands_topic.get_topic_name(), follow_up_key, envelope, None, None, None)

    await until_done(send, f"outbox write of {record.command_id}")


def _prior(journaled_as: str) -> DecisionRecord | None:
    """The journaled decision of this key; one that cannot be read is reported and treated as absent."""
    prior = journal.get(journaled_as)
    if prior is None:
        return None
    try:
        return DecisionRecord.load(prior)
    except Unreadable as exc:
        log.critical("journal entry %r cannot be read (%s); deciding the command again", journaled_as, exc.reason)
        return None


async def handle(key: bytes, env: CommandEnvelope, partition: int) -> DecisionRecord:
    """Decide one command (or replay its recorded decision) and hand the record to the outbox."""
    if env.type in PARTITION_WIDE:
        summary = await PARTITION_WIDE[env.type](env, partition)
        record = DecisionRecord.of(env, Decision(data=summary))
        await _publish(key, record)
        return record
    journaled_as = journal_key(key, env)
    prior = _prior(journaled_as)
    if prior is not None:
        if prior.delivery_id == env.delivery_id:  # the same message again: finish what it started
            record = prior
            apply_changes(record)
        else:  # a repeat: the first reply, nothing more
            record = prior.repeat(env)
        await written()
        await _publish(key, record)
        return record
    command = parse_command(env.type, env.body)
    started = time.perf_counter()
    decision = decide(command, _state, context_of(key, env))
    metrics.DECISION_SECONDS.labels(env.type).observe(time.perf_counter() - started)
    record = DecisionRecord.of(env, decision, routing_key=key.decode(errors="replace"))
    if len(record.encode()) > MAX_RECORD_BYTES:  # it could never be written: refused before it is journaled
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            "the command's outcome is too large to record",
            [{"field": "body", "message": f"its decision record would exceed {MAX_RECORD_BYTES} bytes"}],
        )
    journal[journaled_as] = record.dump()
    await written()
    apply_changes(record)
    await written()
    await _publish(key, record)
    return record


async def _dispatch_reminders(env: CommandEnvelope, partition: int) -> dict[str, Any]:
    return await reminders.dispatch(env, partition, lambda key, internal: handle(key, internal, partition))


async def _expire_journal(env: CommandEnvelope, partition: int) -> dict[str, Any]:
    """Forget idempotency keys older than the configured TTL, on this partition only (its changelog)."""
    cutoff = datetime.now(UTC) - timedelta(hours=settings.idempotency_ttl_hours)
    expired = expired_keys(list(journal.items()), partition, settings.partitions, cutoff)
    for k in expired:
        del journal[k]
    await written()
    return {"expired": len(expired)}


#: commands fanned out to every partition, done by each actor over what it owns
PARTITION_WIDE = {"reminder.dispatch": _dispatch_reminders, "journal.expire": _expire_journal}


async def decide_one(key: bytes, raw: bytes | None, partition: int, offset: int) -> None:
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
        await _park_unreadable(key, raw, partition, offset, exc.reason)
        return
    try:
        record = await handle(key, env, partition)
    except DomainError as refused:
        record = DecisionRecord.refusal(env, refused)
        await _publish(key, record)
    except Exception as exc:  # raised before anything was journaled: nothing was decided
        log.exception("command %s crashed the actor; dead-lettered", env.command_id)
        crashed = DomainError(
            ErrorCode.INTERNAL, "the command could not be processed", {"exception": type(exc).__name__}
        )
        record = DecisionRecord.refusal(env, crashed).model_copy(update={"trace": traceback.format_exc(limit=5)})
        await _publish(key, record)
    cursor.advance(partition, offset)
    await written()
    metrics.COMMANDS.labels(env.type, record.outcome).inc()


async def _park_unreadable(key: bytes, raw: bytes | None, partition: int, offset: int, reason: str) -> None:
    """Set an unreadable command aside (dead-letter topic), answer its caller if one can be found, move on."""
    log.error("unreadable command at %s:%s: %s", partition, offset, reason)
    metrics.PARKED.labels("actor", "unreadable").inc()
    parked = ParkedRecord.of(
        "actor", "unreadable", topic=COMMANDS_TOPIC, partition=partition, offset=offset, key=key, value=raw,
        reason=reason,
    )  # fmt: skip
    record, _ = unreadable_command(raw, reason, topic=COMMANDS_TOPIC, partition=partition, offset=offset)

    async def send() -> None:
        await app.producer.send_and_wait(DEAD_LETTERS_TOPIC, b"actor", parked.encode(), None, None, None)

    await until_done(send, f"parking command {partition}:{offset}")
    await _publish(key if ROUTING_KEY.fullmatch(key) else b"unreadable", record)
    cursor.advance(partition, offset)
    await written()
    metrics.COMMANDS.labels("unknown", record.outcome).inc()


async def _decide_missed(partition: int, stop: int) -> None:
    """Decide the commands the stream skipped before `stop`; a retry resumes where the cursor got to."""
    async for missed in cursor.missed(partition, cursor.expected(partition), stop):
        await decide_one(missed.key or b"", missed.value, partition, missed.offset)


@app.agent(commands_topic, concurrency=1)
async def resource_actor(stream: Any) -> Any:
    """No exception escapes (Faust would ack and skip the command, #315/#527), and no gap is left behind."""
    async for event in stream.events():
        partition, offset = event.message.partition, event.message.offset
        if offset > cursor.expected(partition):
            await until_done(
                partial(_decide_missed, partition, offset), f"reading back skipped commands of {partition}"
            )
        await decide_one(event.key or b"", event.value, partition, offset)
