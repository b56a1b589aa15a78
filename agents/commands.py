"""The resource actor: one serial actor per partition, deciding what is waiting as one batch (group commit).

An actor takes the commands waiting on its partition (up to BATCH_MAX, or what arrived within
BATCH_WITHIN), decides them one after another in memory, each seeing the decisions before it
(`TableState` keeps a batch's writes pending), then makes the batch durable in four steps, two round
trips to the broker however many commands the batch holds (DESIGN decisions 4 and 8):
1. the journal entries (the decision records) are written and acknowledged;
2. entities and indexes are written to their tables and, at the same time,
3. the records go to the decisions topic, their follow-up commands to the commands topic and the
   unreadable records to the dead-letter topic; both acknowledged by the broker;
4. the actor's cursor moves past the batch; its write is acknowledged with the next batch's journal entries.
A crash before step 1 completes leaves no entity write of the batch (they are still pending): the
commands are redelivered and decided again, in order, or replayed from the journal entries that did
reach the broker. Once step 1 is done, steps 2-4 are retried until they succeed: an exception
escaping the agent would make Faust ack and skip the commands (faust-streaming #315). A redelivered
command finds its journal entry and re-applies it instead of deciding again; a repeat with the same
idempotency key is answered with the first reply and changes and emits nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import groupby
from typing import Any

from agents.cursor import Cursor
from agents.failpoints import reached as failpoints_reached
from agents.handoff import LocalPartitions, Message, next_run
from agents.holds import HoldSweep
from agents.journal import entry, expired_keys, recorded, reference, referred
from agents.offers import OfferSweep
from agents.reminders import Reminders
from domain.booking_policy import CONTRACT_DEFAULTS
from domain.commands import parse_command
from domain.decisions import Context, Decision
from domain.errors import DomainError, ErrorCode
from domain.limits import MAX_RECORD_BYTES
from domain.model import BookingPolicy
from domain.policy import authorize_command
from domain.usecases import decide
from scheduling.core import metrics
from scheduling.core.config import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC, DECISIONS_TOPIC, Settings
from scheduling.core.wire import PENDING, CommandEnvelope, DecisionRecord, Unreadable, unreadable_command
from scheduling.streams.kafka import parking
from tables import Tables
from tables.pages import Position, page
from tables.state import Parsed, TableState

log = logging.getLogger(__name__)
BACKOFF_MAX = 5.0
#: the most commands one batch decides before its durable steps
BATCH_MAX = 200
#: how long an actor waits for more commands once it has one (seconds): a lone command waits at most this
BATCH_WITHIN = 0.002
#: the weight of parsed values a worker keeps, shared by its partitions (`tables.state.Parsed`): at 20,000 per
#: partition the caches filled with every booking's values (~5 KB each parsed) and the worker's RSS grew with
#: its history up to their bound (131 MB at 1,000 bookings, 304 MB at 10,000); the hot values (schedules,
#: day slots and indexes) are few
PARSED_WEIGHT = 8_000
#: journal entries one sweep reads (every minute, per partition): ~50 ms of the partition's actor (decoding them;
#: the same at 10,000 and 360,000 entries), 60,000 an hour, so a partition holding 500,000 entries (a week of
#: ~3,000 bookings an hour over four partitions, four entries each) is read through every eight hours
JOURNAL_PAGE = 1_000
#: keys the bridge and the timers write: a resource's routing token, or the name of a fanned-out command
ROUTING_KEY = re.compile(rb"[A-Za-z0-9._-]{1,64}")
#: produce one record and wait for the broker's ack: (topic, key, value, partition) -> (partition, offset)
Send = Callable[[str, bytes, bytes, "int | None"], Awaitable[tuple[int, int]]]


def context_of(
    key: bytes, env: CommandEnvelope, policy: BookingPolicy = CONTRACT_DEFAULTS, hold_seconds: float = 120.0
) -> Context:
    claims = env.claims
    return Context(
        policy=policy,
        hold_for=timedelta(seconds=hold_seconds),
        tenant=claims.tenant,
        # ids and event ids derive from this: the same key on two resources is two commands
        command_id=f"{key.decode(errors='replace')}:{env.command_id}",
        now=datetime.now(UTC),
        subject=claims.sub,
        scopes=claims.scopes,
        patient_id=claims.patient_id,
    )


#: suffix of the journal key under which a saga's last record answers its starting command's repeats
SETTLED = "\x1fsettled"


def journal_key(key: bytes, env: CommandEnvelope) -> str:
    """Idempotency keys are scoped by tenant, caller and resource: a repeat is the same caller's."""
    return _journal_key(env.claims.tenant, str(env.claims.sub), key.decode(errors="replace"), env.command_id)


def _journal_key(tenant: str, caller: str, key: str, command_id: str) -> str:
    return "\x1f".join((tenant, caller, key, command_id))


async def until_done(step: Callable[[], Awaitable[None]], what: str) -> None:
    """Retry a step that must happen (the decisions are already journaled) with capped backoff."""
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


@dataclass
class Batch:
    """The decisions of one partition's batch, kept in memory until its durable steps."""

    partition: int
    state: TableState
    journal: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (topic, key, value) to produce in step 3, in order
    outbox: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    last_offset: int = -1

    def publish(self, key: bytes, record: DecisionRecord) -> None:
        if not record.only_for_the_journal:
            self.outbox.append((DECISIONS_TOPIC, key, record.published().encode()))
        self.outbox += [(COMMANDS_TOPIC, f.key.encode(), f.envelope.encode()) for f in record.follow_ups]


class ResourceActor:
    """Decides the commands of the partitions its worker owns: per partition, serially, in batches."""

    def __init__(self, settings: Settings, tables: Tables, send: Send, cursor: Cursor, reminders: Reminders) -> None:
        self._settings = settings
        self._tables = tables
        self._send = send
        self._cursor = cursor
        self._reminders = reminders
        self._offers = OfferSweep(tables.resources, settings.partitions)
        self._holds = HoldSweep(tables.resources, settings.partitions)
        #: per partition, started afresh whenever an actor (re)gains it: another worker may have written it since
        self._parsed: dict[int, Parsed] = {}
        self._local = LocalPartitions()
        #: per partition, where the next journal sweep goes on (`tables.pages`)
        self._journal_swept: dict[int, Position] = {}
        self._partition_wide: dict[str, Callable[[Batch, CommandEnvelope], Awaitable[dict[str, Any]]]] = {
            "reminder.dispatch": self._dispatch_reminders,
            "waitlist.expire-offers": self._expire_offers,
            "holds.expire": self._expire_holds,
            "journal.expire": self._expire_journal,
        }

    def _new_parsed(self) -> Parsed:
        """A partition's cache of parsed values, its share of the worker's budget (PARSED_WEIGHT)."""
        return Parsed(max(PARSED_WEIGHT // self._settings.partitions, 500))

    async def consume(self, stream: Any) -> None:
        """The Faust agent, one instance per partition (isolated partitions). No exception escapes (Faust
        would ack and skip the commands, #315/#527), and no gap is left behind."""
        self._tables.changelog.begin()  # this partition's changelog writes, awaited by this partition only
        gained: dict[int, asyncio.Lock] = {}
        try:
            async for events in stream.take_batches(BATCH_MAX, BATCH_WITHIN):
                partitions = {e.message.partition for e in events}
                for partition in partitions - gained.keys():
                    self._parsed[partition] = self._new_parsed()
                    gained[partition] = self._local.gain(partition)
                async with self._local.deciding(partitions):
                    await self.receive([(e.key or b"", e.value, e.message.partition, e.message.offset) for e in events])
        finally:  # revoked, or the worker stops: no follow-up is handed to these partitions any more
            for partition, registration in gained.items():
                self._local.lose(partition, registration)

    async def receive(self, messages: Sequence[Message]) -> None:
        """Decide messages in offset order per partition; commands the stream skipped are read back first, and
        those below the partition's cursor (decided already: handed over, or before a restart) are passed over.

        A gap may lie anywhere in what the stream delivers, not only before its first message (a worker
        restarted after SIGKILL was seen to get offsets 65 and 67-75 of a partition in one batch, 66 a saga's
        settlement): each run of consecutive offsets is decided on its own, and the commands missing before
        it are read back from the broker first."""
        for partition, group in groupby(sorted(messages, key=lambda m: (m[2], m[3])), key=lambda m: m[2]):
            for run in _runs(group, self._cursor.expected(partition)):
                if run[0][3] > self._cursor.expected(partition):
                    await until_done(
                        partial(self._decide_missed, partition, run[0][3]),
                        f"reading back skipped commands of {partition}",
                    )
                await self.decide(partition, run)

    async def decide(self, partition: int, messages: Sequence[Message]) -> None:
        """Decide a batch of one partition's messages, then make it durable (the four steps above)."""
        self._tables.changelog.deciding(partition)
        parsed = self._parsed.get(partition)
        if parsed is None:
            parsed = self._parsed[partition] = self._new_parsed()
        batch = Batch(partition, TableState(self._tables, parsed))
        for key, raw, _, offset in messages:
            await self._decide_one(batch, key, raw, offset)
            batch.last_offset = offset
        await self._commit(batch)

    async def _decide_one(self, batch: Batch, key: bytes, raw: bytes | None, offset: int) -> None:
        """Whatever a message holds, it leaves one record in the outbox: its decision, or its refusal.

        A record that cannot be read becomes a refusal built only from what could be read of it
        (`unreadable_command`), and is parked on the dead-letter topic with its reason and offset.
        """
        try:
            if not ROUTING_KEY.fullmatch(key):
                raise Unreadable("the record key is not a routing token")
            env = CommandEnvelope.decode(raw, "command record")
        except Unreadable as exc:
            self._park(batch, key, raw, offset, exc.reason)
            return
        try:
            record = await self.handle(batch, key, env)
        except DomainError as refused:
            record = DecisionRecord.refusal(env, refused)
            batch.publish(key, record)
        except Exception as exc:  # raised before anything of this command was recorded: nothing was decided
            log.exception("command %s crashed the actor; dead-lettered", env.command_id)
            details = {"exception": type(exc).__name__}
            crashed = DomainError(ErrorCode.INTERNAL, "the command could not be processed", details)
            record = DecisionRecord.refusal(env, crashed).model_copy(update={"trace": traceback.format_exc(limit=5)})
            batch.publish(key, record)
        batch.outcomes.append((env.type, record.outcome))

    async def handle(self, batch: Batch, key: bytes, env: CommandEnvelope) -> DecisionRecord:
        """Decide one command into the batch (or replay its recorded decision); its record joins the outbox."""
        if env.type in self._partition_wide:
            authorize_command(env.claims.access, env.type)  # the bridge checked; the topic is not trusted
            summary = await self._partition_wide[env.type](batch, env)
            record = DecisionRecord.of(env, Decision(data=summary))
            batch.publish(key, record)
            return record
        journaled_as = journal_key(key, env)
        prior = self._prior(batch, journaled_as)
        if prior is not None:
            if prior.delivery_id == env.delivery_id:  # the same message again: finish what it started
                record = prior
                # journaled again: the local store may be ahead of the changelog
                self._journal(batch, journaled_as, record, record.encode())
                batch.state.apply(record)
            else:  # a repeat: the first reply (a saga's, once it settled), nothing more
                record = prior.repeat(env)
                if prior.outcome == PENDING:
                    record = record.answered_by(self._prior(batch, journaled_as + SETTLED))
            batch.publish(key, record)
            return record
        command = parse_command(env.type, env.body)
        started = time.perf_counter()
        decision = decide(
            command, batch.state, context_of(key, env, self._settings.booking_policy, self._settings.hold_seconds)
        )
        metrics.DECISION_SECONDS.labels(env.type).observe(time.perf_counter() - started)
        record = DecisionRecord.of(env, decision, routing_key=key.decode(errors="replace"))
        encoded = record.encode()
        if len(encoded) > MAX_RECORD_BYTES:  # it could never be journaled: refused before it is
            too_large = {"field": "body", "message": f"its decision record would exceed {MAX_RECORD_BYTES} bytes"}
            raise DomainError(ErrorCode.VALIDATION_FAILED, "the command's outcome is too large to record", [too_large])
        self._journal(batch, journaled_as, record, encoded)
        batch.state.apply(record)
        batch.publish(key, record)
        return record

    @staticmethod
    def _journal(batch: Batch, journaled_as: str, record: DecisionRecord, encoded: bytes) -> None:
        """Journal the record (`encoded` is its JSON); one that settles a saga also under its starting command's
        key (`SETTLED`)."""
        batch.journal[journaled_as] = entry(record, encoded)
        if record.answers is not None:
            caller, command_id = record.answers
            key, _, command = command_id.partition(":")  # the decision's command id is `<routing key>:<id>`
            batch.journal[_journal_key(record.tenant, caller, key, command) + SETTLED] = reference(record, journaled_as)

    async def _commit(self, batch: Batch) -> None:
        """The batch's durable steps; each waits for the broker's acknowledgement of all its writes."""
        changelog = self._tables.changelog
        failpoints = self._settings.failpoints_dir
        for journaled_as, value in batch.journal.items():
            self._tables.journal[journaled_as] = value
        await changelog.written()
        types = [command_type for command_type, _ in batch.outcomes]
        await failpoints_reached(failpoints, "journaled", types)
        batch.state.flush()

        async def applied() -> None:
            await changelog.written()
            await failpoints_reached(failpoints, "applied", types)

        follow_ups: list[Message] = []

        async def send() -> None:
            sent = await asyncio.gather(*(self._send(topic, key, value, None) for topic, key, value in batch.outbox))
            follow_ups[:] = [(key, value, *at) for (topic, key, value), at in zip(batch.outbox, sent, strict=True)
                             if topic == COMMANDS_TOPIC]  # fmt: skip

        # entities and outbox together: each only needs the journal durable first (one round trip saved)
        await asyncio.gather(applied(), until_done(send, f"outbox writes of a batch of partition {batch.partition}"))
        await failpoints_reached(failpoints, "published", types)
        self._cursor.advance(batch.partition, batch.last_offset)
        # the follow-ups are on the commands topic: the stream may deliver them now, so a hand-over may too
        # (their partition's actors do not wait for this cursor; a crash before it is written replays the batch
        # from its journal entries, as it would after the stream delivered them)
        self._local.hand(follow_ups, self._decide_handed)
        # the cursor's write is not awaited here: the next batch's journal step awaits it with its own writes
        # (`written` takes a task's writes in order), so it costs no round trip of its own; a crash before
        # it is acknowledged leaves the cursor behind, and the batch replays from its journal entries
        metrics.BATCH_COMMANDS.observe(len(batch.outcomes))
        for command_type, outcome in batch.outcomes:
            metrics.COMMANDS.labels(command_type, outcome).inc()

    async def handed_over(self) -> None:
        """Wait until the follow-ups handed to this worker's partitions so far are decided (or left to the stream)."""
        await self._local.drained()

    async def _decide_handed(self, partition: int, messages: Sequence[Message]) -> int:
        """Follow-ups handed over by this worker's actor of another partition (agents/handoff.py): decided if they
        are the partition's next commands (else others came first, and the stream delivers them in order)."""
        self._tables.changelog.begin()  # this task's writes, awaited apart from those of the actor that handed them
        self._tables.changelog.deciding(partition)  # the cursor read below is that partition's
        run = next_run(messages, self._cursor.expected(partition))
        if run:
            await self.decide(partition, run)
        return len(run)

    def _prior(self, batch: Batch, journaled_as: str) -> DecisionRecord | None:
        """The journaled decision of this key (this batch's first); one that cannot be read counts as absent."""
        prior = batch.journal.get(journaled_as) or self._tables.journal.get(journaled_as)
        see = referred(prior)
        if see is not None:  # a saga's settlement, recorded under its own key
            journaled_as = see
            prior = batch.journal.get(see) or self._tables.journal.get(see)
        if prior is None:
            return None
        try:
            return recorded(prior)
        except Unreadable as exc:
            log.critical("journal entry %r cannot be read (%s); deciding the command again", journaled_as, exc.reason)
            return None

    def _park(self, batch: Batch, key: bytes, raw: bytes | None, offset: int, reason: str) -> None:
        """An unreadable command: parked on the dead-letter topic, refused to its caller if one can be found."""
        parked = parking(
            "actor", "unreadable", topic=COMMANDS_TOPIC, partition=batch.partition, offset=offset, key=key, value=raw,
            reason=reason,
        )  # fmt: skip
        record, _ = unreadable_command(raw, reason, topic=COMMANDS_TOPIC, partition=batch.partition, offset=offset)
        batch.outbox.append((DEAD_LETTERS_TOPIC, b"actor", parked.encode()))
        batch.publish(key if ROUTING_KEY.fullmatch(key) else b"unreadable", record)
        batch.outcomes.append(("unknown", record.outcome))

    async def _decide_missed(self, partition: int, stop: int) -> None:
        """Decide the commands the stream skipped before `stop`, one batch each; a retry resumes at the cursor."""
        async for missed in self._cursor.missed(partition, self._cursor.expected(partition), stop):
            await self.decide(partition, [(missed.key or b"", missed.value, partition, missed.offset)])

    async def _dispatch_reminders(self, batch: Batch, env: CommandEnvelope) -> dict[str, Any]:
        return await self._reminders.dispatch(env, batch.partition, batch.state, partial(self.handle, batch))

    async def _expire_offers(self, batch: Batch, env: CommandEnvelope) -> dict[str, Any]:
        return await self._offers.sweep(env, batch.partition, batch.state, partial(self.handle, batch))

    async def _expire_holds(self, batch: Batch, env: CommandEnvelope) -> dict[str, Any]:
        return await self._holds.sweep(env, batch.partition, batch.state, partial(self.handle, batch))

    async def _expire_journal(self, batch: Batch, env: CommandEnvelope) -> dict[str, Any]:
        """Forget idempotency keys older than the configured TTL, on this partition only (its changelog), one page
        of JOURNAL_PAGE entries per sweep, each sweep going on where the previous one stopped: the whole journal
        at once (four entries per booking) held the partition's actor and the worker's event loop for over half
        a minute at ~90,000 bookings, and callers timed out."""
        cutoff = datetime.now(UTC) - timedelta(hours=self._settings.idempotency_ttl_hours)
        journal = self._tables.journal
        entries, self._journal_swept[batch.partition] = page(
            journal, batch.partition, self._journal_swept.get(batch.partition), JOURNAL_PAGE
        )
        expired = expired_keys(entries, batch.partition, self._settings.partitions, cutoff)
        for k in expired:
            del journal[k]
        return {"expired": len(expired), "read": len(entries)}


def _runs(messages: Iterable[Message], expected: int) -> list[list[Message]]:
    """`messages` (one partition's, by offset) at or past `expected`, without repeats, cut where offsets jump."""
    runs: list[list[Message]] = []
    for message in messages:
        offset = message[3]
        if offset < expected or (runs and offset <= runs[-1][-1][3]):
            continue
        if runs and offset == runs[-1][-1][3] + 1:
            runs[-1].append(message)
        else:
            runs.append([message])
    return runs
