"""The resource actor's loop, without Faust: dict tables, a recording `send`, fake reminder ports.

What the e2e tests show from outside is pinned down here step by step: journal first, then the
entities, then the outbox and follow-ups; a redelivery replays, a repeat answers the first reply;
an unreadable record is parked and refused; a failed send is retried, never skipped.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import iso, schedule_body

from agents.commands import SETTLED, ResourceActor, journal_key
from agents.cursor import Cursor
from agents.handoff import LocalPartitions
from agents.journal import recorded
from agents.reminders import ReminderPorts, Reminders
from domain.booking_policy import CONTRACT_DEFAULTS
from domain.ids import resource_token, token_of
from domain.model import Appointment
from scheduling.core import metrics
from scheduling.core.config import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC, DECISIONS_TOPIC, Settings
from scheduling.core.routing import partition_of
from scheduling.core.wire import PENDING, Claims, CommandEnvelope, DecisionRecord, ParkedRecord
from tables import Tables

TENANT = "t1"
CLAIMS = Claims(tenant=TENANT, sub="tester", scope="scheduling:read scheduling:write")
ADMIN = Claims(tenant="*", sub="timer", scope="scheduling:admin")

#: the actor decides with the real clock: its slots lie two weeks ahead of it
MONDAY = (datetime.now(UTC) + timedelta(days=14)).replace(hour=9, minute=0, second=0, microsecond=0)


@dataclass
class Outbox:
    """A `send` that records what the actor produced; it can be told to fail a number of times first."""

    sent: list[tuple[str, bytes, bytes, int | None]] = field(default_factory=list)
    failures: int = 0

    async def __call__(self, topic: str, key: bytes, value: bytes, partition: int | None) -> tuple[int, int]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")
        self.sent.append((topic, key, value, partition))
        return partition or 0, len(self.sent) - 1

    def records(self, topic: str = DECISIONS_TOPIC) -> list[DecisionRecord]:
        return [DecisionRecord.decode(value) for t, _, value, _ in self.sent if t == topic]

    def on(self, topic: str) -> list[tuple[bytes, bytes]]:
        return [(key, value) for t, key, value, _ in self.sent if t == topic]


class FakePatients:
    async def get(self, tenant: str, patient_id: str) -> dict[str, Any] | None:
        return {"patientId": patient_id, "name": "Ada"}


@dataclass
class FakeNotifications:
    handed: list[tuple[str, int]] = field(default_factory=list)

    async def request(self, appointment: Appointment, lead_minutes: int, patient: dict[str, Any] | None) -> bool:
        self.handed.append((appointment.id, lead_minutes))
        return True


@dataclass
class World:
    actor: ResourceActor
    tables: Tables
    outbox: Outbox
    notifications: FakeNotifications
    offset: int = 0
    #: follow-up commands of the outbox already decided (`pump`)
    pumped: int = 0

    async def command(self, command_type: str, body: dict[str, Any], *, key: str | None = None,
                      delivery: str | None = None, command_id: str | None = None) -> DecisionRecord:  # fmt: skip
        """The record that answers the command: its own, or for one that starts a saga, the saga's last."""
        record = await self.start(command_type, body, key=key, delivery=delivery, command_id=command_id)
        if record.outcome != PENDING:
            return record
        answers = [r for r in await self.pump() if r.reply_to == "_INBOX.test"]
        return answers[-1]

    async def start(self, command_type: str, body: dict[str, Any], *, key: str | None = None,
                    delivery: str | None = None, command_id: str | None = None) -> DecisionRecord:  # fmt: skip
        """The command's own record (no follow-up decided)."""
        env = CommandEnvelope(
            delivery_id=delivery or f"d-{self.offset}", type=command_type, body=body, claims=CLAIMS,
            command_id=command_id or f"c-{self.offset}", reply_to="_INBOX.test",
        )  # fmt: skip
        routing = key or resource_token(TENANT, "Practitioner/p1")
        return await self.raw(routing.encode(), env.encode())

    def fresh_commands(self) -> list[tuple[bytes, bytes]]:
        """Follow-up commands the actor sent that are not decided yet."""
        return self.outbox.on(COMMANDS_TOPIC)[self.pumped :]

    async def pump(self) -> list[DecisionRecord]:
        """Decide the follow-up commands the actor sent, as their partitions would, until none is left."""
        decided = []
        while fresh := self.fresh_commands():
            for key, value in fresh:
                self.pumped += 1
                decided.append(await self.raw(key, value))
        return decided

    async def raw(self, key: bytes, value: bytes | None) -> DecisionRecord:
        before = len(self.outbox.records())
        await self.actor.receive([(key, value, 0, self.offset)])
        self.offset += 1
        records = self.outbox.records()
        if len(records) == before + 1:
            return records[-1]
        assert len(records) == before, "a command leaves at most one record in the outbox"
        journaled = recorded(self.tables.journal[journal_key(key, CommandEnvelope.decode(value))])
        assert journaled.only_for_the_journal, "only a follow-up's record that concerns no one else stays unpublished"
        return journaled.published()


@pytest.fixture
def world() -> World:
    return make_world(Settings())


def make_world(settings: Settings, journal: dict[str, Any] | None = None) -> World:
    names = ("schedules", "slots", "appointments", "waitlist", "resources", "resource_days", "cursor")
    tables = Tables(**{name: {} for name in names}, journal=journal if journal is not None else {})
    outbox, notifications = Outbox(), FakeNotifications()

    async def ports() -> ReminderPorts:
        return ReminderPorts(patients=FakePatients(), reminders=notifications)

    reminders = Reminders(tables.schedules, settings.partitions, CONTRACT_DEFAULTS, ports)
    actor = ResourceActor(settings, tables, outbox, Cursor(tables.cursor, "unused:9092"), reminders)
    return World(actor, tables, outbox, notifications)


async def _schedule_with_slot(world: World) -> tuple[str, str]:
    created = await world.command("schedule.create", schedule_body(start=MONDAY))
    schedule_id = created.reply["data"]["id"]
    body = {"scheduleId": schedule_id, "start": iso(MONDAY), "end": iso(MONDAY + timedelta(minutes=30))}
    slot = await world.command("slot.create", body, key=token_of(schedule_id))
    return schedule_id, slot.reply["data"]["id"]


async def test_a_command_is_journaled_applied_and_published_and_the_cursor_moves(world: World) -> None:
    schedule_id, _ = await _schedule_with_slot(world)
    later = MONDAY + timedelta(hours=2)
    body = {"scheduleId": schedule_id, "start": iso(later), "end": iso(later + timedelta(minutes=30))}
    record = await world.command("slot.create", body, key=token_of(schedule_id))
    assert record.outcome == "ok" and record.reply_to == "_INBOX.test"
    key = journal_key(token_of(schedule_id).encode(), CommandEnvelope.decode(_env_bytes(world, record)))
    journaled = recorded(world.tables.journal[key])
    assert journaled.indexes and journaled.published() == record  # the outbox carries no index writes
    assert record.indexes == [] and record.changes == journaled.changes
    assert world.tables.cursor["0"] == world.offset


async def test_a_booking_is_answered_by_its_saga_and_a_repeat_gets_that_answer(world: World) -> None:
    """The booking holds the patient's time on the patient's partition first; the home answers at the end."""
    _, slot_id = await _schedule_with_slot(world)
    body, key = {"slotId": slot_id, "patientId": "pat-1"}, token_of(slot_id)
    started = await world.start("appointment.book", body, key=key, delivery="s-1", command_id="booking")
    assert started.outcome == PENDING and started.reply_to is None
    assert [(c.kind, c.data["status"]) for c in started.changes] == [("slot", "busy-tentative")]  # held from now
    ((_, hold),) = world.fresh_commands()
    assert (CommandEnvelope.decode(hold).type, CommandEnvelope.decode(hold).reply_to) == ("saga.hold", "_INBOX.test")
    early = await world.start("appointment.book", body, key=key, delivery="s-2", command_id="booking")
    assert early.reply["error"]["code"] == "UNAVAILABLE" and early.reply["error"]["details"] == {
        "reason": "in-progress"
    }
    record = [r for r in await world.pump() if r.reply_to == "_INBOX.test"][-1]
    assert record.type == "saga.settle" and record.outcome == "ok"
    appointment = record.reply["data"]
    assert world.tables.appointments[appointment["id"]]["status"] == "booked"
    assert world.tables.slots[slot_id]["status"] == "busy"
    assert [e.type for e in record.events] == ["appointment.created"]
    repeat = await world.start("appointment.book", body, key=key, delivery="s-3", command_id="booking")
    assert repeat.reply == record.reply and repeat.replay_of == "s-1" and repeat.changes == []
    ((settled_as, settled),) = [(k, v) for k, v in world.tables.journal.items() if k.endswith(SETTLED)]
    assert set(settled) == {"routingKey", "decidedAt", "see"}  # names the settlement's entry, holds no copy
    world.tables.journal[settled_as] = world.tables.journal[settled["see"]]  # as written before: a full copy
    again = await world.start("appointment.book", body, key=key, delivery="s-4", command_id="booking")
    assert again.reply == record.reply


def _env_bytes(world: World, record: DecisionRecord) -> bytes:
    """The envelope a record answered, rebuilt from the record (the test sent it with these fields)."""
    env = CommandEnvelope(delivery_id=record.delivery_id, type=record.type, body={}, claims=CLAIMS,
                          command_id=record.command_id)  # fmt: skip
    return env.encode()


async def test_a_redelivery_replays_the_journaled_decision_and_a_repeat_answers_the_first_reply(world: World) -> None:
    _, slot_id = await _schedule_with_slot(world)
    body, key = {"slotId": slot_id, "patientId": "pat-1"}, token_of(slot_id)
    first = await world.command("appointment.book", body, key=key, delivery="dlv-1", command_id="same")
    again = await world.command("appointment.book", body, key=key, delivery="dlv-1", command_id="same")
    assert again == first  # the same message: its decision finished again, not decided again
    repeat = await world.command("appointment.book", body, key=key, delivery="dlv-2", command_id="same")
    assert repeat.reply == first.reply and repeat.replay_of == "dlv-1"
    assert repeat.changes == [] and repeat.events == [] and repeat.follow_ups == []
    other = await world.command("appointment.book", body, key=key, command_id="another")
    assert other.outcome == "SLOT_NOT_AVAILABLE"


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [(b"tok", b"not json", "VALIDATION_FAILED"), (b"tok", None, "VALIDATION_FAILED"),
     (b"tok", json.dumps({"claims": {}}).encode(), "UNAUTHENTICATED"),
     (b"bad key\x00", CommandEnvelope(delivery_id="d", type="appointment.book", body={}, claims=CLAIMS,
                                      command_id="c").encode(), "VALIDATION_FAILED")],
)  # fmt: skip
async def test_an_unreadable_record_is_parked_refused_and_passed(
    world: World, key: bytes, value: Any, code: str
) -> None:
    record = await world.raw(key, value)
    assert record.outcome == code and record.dead_letter and record.unreadable is not None
    assert record.unreadable["offset"] == 0
    ((parked_key, parked),) = world.outbox.on(DEAD_LETTERS_TOPIC)
    letter = ParkedRecord.decode(parked)
    assert (parked_key, letter.consumer, letter.kind, letter.offset) == (b"actor", "actor", "unreadable", 0)
    assert world.tables.cursor["0"] == 1


async def test_a_refusal_changes_nothing_and_is_answered(world: World) -> None:
    record = await world.command("appointment.cancel", {"appointmentId": "ap-000000000000-nothing"})
    assert record.outcome == "APPOINTMENT_NOT_FOUND" and record.changes == []
    assert world.tables.journal  # refusals are journaled too: a repeat gets the same answer


async def test_follow_ups_go_to_their_resources_partitions(world: World) -> None:
    _, slot_id = await _schedule_with_slot(world)
    booked = await world.command("appointment.book", {"slotId": slot_id, "patientId": "p"}, key=token_of(slot_id))
    entry = await world.command(
        "waitlist.add", {"patientId": "p", "serviceType": "consultation",
                         "requestedPeriod": {"start": iso(MONDAY), "end": iso(MONDAY.replace(hour=23))}},
        key=resource_token(TENANT, "*"),
    )  # fmt: skip
    fulfil = await world.command("waitlist.fulfill", {"entryId": entry.reply["data"]["id"],
                                                      "appointmentId": booked.reply["data"]["id"]},
                                 key=resource_token(TENANT, "*"))  # fmt: skip
    assert fulfil.reply_to is None  # the reply travels with the follow-up
    ((key, envelope),) = world.fresh_commands()
    follow_up = CommandEnvelope.decode(envelope)
    assert key == token_of(booked.reply["data"]["id"]).encode()
    assert (follow_up.type, follow_up.reply_to) == ("waitlist.verify-appointment", "_INBOX.test")


async def test_a_failed_send_is_retried_until_the_broker_takes_it(world: World) -> None:
    world.outbox.failures = 2
    record = await world.command("schedule.create", schedule_body(start=MONDAY))
    assert record.outcome == "ok" and len(world.outbox.records()) == 1


async def test_reminders_are_handed_off_and_recorded_once(world: World) -> None:
    _, slot_id = await _schedule_with_slot(world)
    booked = await world.command("appointment.book", {"slotId": slot_id, "patientId": "p"}, key=token_of(slot_id))
    now = (MONDAY - timedelta(minutes=90)).isoformat()  # 90 minutes ahead: the 2-hour reminder is due
    partition = partition_of(token_of(booked.reply["data"]["id"]), Settings().partitions)
    for delivery in ("r1", "r2"):
        env = CommandEnvelope(delivery_id=delivery, type="reminder.dispatch", body={"now": now}, claims=ADMIN,
                              command_id=delivery)  # fmt: skip
        await world.actor.decide(partition, [(b"reminders", env.encode(), partition, world.offset)])
        world.offset += 1
    assert world.notifications.handed == [(booked.reply["data"]["id"], 120)]
    assert world.tables.appointments[booked.reply["data"]["id"]]["remindersSent"] == [120]


@pytest.mark.parametrize(("ttl_hours", "left"), [(-1.0, 0), (1.0, 1)])
async def test_journal_expiry_forgets_the_keys_older_than_the_ttl(ttl_hours: float, left: int) -> None:
    world = make_world(replace(Settings(), idempotency_ttl_hours=ttl_hours))
    await world.command("schedule.create", schedule_body(start=MONDAY))
    assert len(world.tables.journal) == 1
    partition = partition_of(resource_token(TENANT, "Practitioner/p1"), Settings().partitions)
    env = CommandEnvelope(delivery_id="x", type="journal.expire", body={}, claims=ADMIN, command_id="x")
    await world.actor.decide(partition, [(b"journal.expire", env.encode(), partition, world.offset)])
    assert len(world.tables.journal) == left


async def test_journal_expiry_reads_a_page_per_sweep_and_goes_on_where_it_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("agents.commands.JOURNAL_PAGE", 2)
    world = make_world(replace(Settings(), idempotency_ttl_hours=-1.0))
    key = resource_token(TENANT, "Practitioner/p1")
    for _ in range(3):
        await world.command("schedule.create", schedule_body(start=MONDAY))
    assert len(world.tables.journal) == 3
    partition = partition_of(key, Settings().partitions)

    async def sweep(n: int) -> dict[str, Any]:
        env = CommandEnvelope(delivery_id=f"x{n}", type="journal.expire", body={}, claims=ADMIN, command_id=f"x{n}")
        before = len(world.outbox.records())
        await world.actor.decide(partition, [(b"journal.expire", env.encode(), partition, world.offset + n)])
        (record,) = world.outbox.records()[before:]
        data: dict[str, Any] = record.reply["data"]
        return data

    assert await sweep(0) == {"expired": 2, "read": 2}  # a page of two, not the whole journal
    assert await sweep(1) == {"expired": 1, "read": 1} and not world.tables.journal  # the rest, then the end
    assert await sweep(2) == {"expired": 0, "read": 0}


async def test_a_batch_decides_in_order_each_command_seeing_the_ones_before(world: World) -> None:
    schedule_id, _ = await _schedule_with_slot(world)
    key = token_of(schedule_id).encode()
    later = MONDAY + timedelta(hours=2)
    body = {"scheduleId": schedule_id, "start": iso(later), "end": iso(later + timedelta(minutes=30))}
    envs = [
        CommandEnvelope(delivery_id=f"b-{i}", type="slot.create", body=body, claims=CLAIMS, command_id=f"b-{i}",
                        reply_to="_INBOX.test").encode()
        for i in range(3)
    ]  # fmt: skip
    messages = [(key, env, 0, world.offset + i) for i, env in enumerate(envs)] + [
        (b"tok", b"junk", 0, world.offset + 3)
    ]
    before = len(world.outbox.records())
    await world.actor.receive(messages)
    outcomes = [r.outcome for r in world.outbox.records()[before:]]
    assert outcomes == ["ok", "VALIDATION_FAILED", "VALIDATION_FAILED", "VALIDATION_FAILED"]  # overlapping slots
    assert world.tables.cursor["0"] == world.offset + 4


async def test_no_entity_of_a_batch_reaches_the_tables_before_its_journal_entries() -> None:
    seen_when_journaled: list[str] = []

    class Journal(dict[str, Any]):
        """Notes the slot's status in the tables whenever a journal entry is written."""

        def __setitem__(self, key: str, value: Any) -> None:
            slot = world.tables.slots.get(slot_id)
            seen_when_journaled.append(slot["status"] if slot else "absent")
            super().__setitem__(key, value)

    world = make_world(Settings(), Journal())
    slot_id = ""
    _, slot_id = await _schedule_with_slot(world)
    seen_when_journaled.clear()
    record = await world.command("appointment.book", {"slotId": slot_id, "patientId": "p"}, key=token_of(slot_id))
    assert record.outcome == "ok"
    # each command's journal entry is written before its entities: the booking while the slot is still free,
    # the patient's time and the settlement (twice: its own key and the booking's) while the slot is held
    # (a booking has no confirmation at the patient: its time is the appointment's from the start)
    held = "busy-tentative"
    assert seen_when_journaled == ["free", held, held, held]
    assert world.tables.slots[slot_id]["status"] == "busy"


async def test_the_offer_sweep_ends_unanswered_offers_and_passes_the_slot_on(world: World) -> None:
    _, slot_id = await _schedule_with_slot(world)
    token = token_of(slot_id)
    wanted = {"providerId": "Practitioner/p1", "serviceType": "consultation",
              "requestedPeriod": {"start": iso(MONDAY), "end": iso(MONDAY.replace(hour=23))}}  # fmt: skip
    first = await world.command("waitlist.add", {"patientId": "a", "priority": 5, **wanted}, key=token)
    second = await world.command("waitlist.add", {"patientId": "b", **wanted}, key=token)
    booked = await world.command("appointment.book", {"slotId": slot_id, "patientId": "p"}, key=token)
    await world.command("appointment.cancel", {"appointmentId": booked.reply["data"]["id"]}, key=token)
    first_id, second_id = first.reply["data"]["id"], second.reply["data"]["id"]
    assert world.tables.waitlist[first_id]["status"] == "offered"

    partition = partition_of(token, Settings().partitions)
    later = {"now": (MONDAY - timedelta(hours=1)).isoformat()}  # past the offer's 60 minutes
    for claims, delivery in ((CLAIMS, "staff-sweep"), (ADMIN, "sweep")):
        env = CommandEnvelope(delivery_id=delivery, type="waitlist.expire-offers", body=later, claims=claims,
                              command_id=delivery)  # fmt: skip
        await world.actor.decide(partition, [(b"waitlist.expire-offers", env.encode(), partition, world.offset)])
        world.offset += 1
    refused, swept = (r for r in world.outbox.records() if r.type == "waitlist.expire-offers")
    assert refused.outcome == "FORBIDDEN" and swept.reply["data"] == {"expired": 1}
    assert world.tables.waitlist[first_id]["status"] == "waiting"
    assert world.tables.waitlist[first_id]["declinedSlotIds"] == [slot_id]
    assert world.tables.waitlist[second_id]["status"] == "offered"


async def test_the_hold_sweep_gives_up_a_saga_still_waiting_and_its_late_step_is_given_back(world: World) -> None:
    _, slot_id = await _schedule_with_slot(world)
    token = token_of(slot_id)
    started = await world.start("appointment.book", {"slotId": slot_id, "patientId": "p"}, key=token)
    assert started.outcome == PENDING
    partition = partition_of(token, Settings().partitions)
    later = {"now": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()}  # past the expiry, not FORGET_AFTER
    for i, (claims, delivery) in enumerate(((CLAIMS, "staff-sweep"), (ADMIN, "sweep"), (ADMIN, "sweep-again"))):
        env = CommandEnvelope(delivery_id=delivery, type="holds.expire", body=later, claims=claims,
                              command_id=delivery)  # fmt: skip
        offset = world.offset if partition == 0 else i  # the world's offsets are partition 0's
        await world.actor.decide(partition, [(b"holds.expire", env.encode(), partition, offset)])
        world.offset += partition == 0
    refused, swept, again = (r for r in world.outbox.records() if r.type == "holds.expire")
    assert refused.outcome == "FORBIDDEN"
    assert swept.reply["data"] == {"expired": 1, "open": 0, "forgotten": 0}
    assert again.reply["data"] == {"expired": 0, "open": 0, "forgotten": 0}  # ended, not yet forgotten
    # this world decides the rest on partition 0, whose cache has not seen the sweep's partition's writes
    world.actor._parsed.clear()
    answers = [r for r in await world.pump() if r.reply_to == "_INBOX.test"]
    assert answers[-1].reply["error"] == {
        "code": "SLOT_NOT_AVAILABLE",
        "status": 409,
        "message": "the slots could not be held in time; nothing was changed",
        "details": {"reason": "hold-expired"},
    }
    assert world.tables.slots[slot_id]["status"] == "free" and world.tables.appointments == {}
    ended = [k for k in world.tables.resources if "/saga/" in k]
    assert len(ended) == 1 and world.tables.resources[ended[0]]["plan"] is None
    much_later = {"now": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}
    env = CommandEnvelope(delivery_id="forget", type="holds.expire", body=much_later, claims=ADMIN, command_id="f")
    await world.actor.decide(partition, [(b"holds.expire", env.encode(), partition, world.offset + 10)])
    assert world.outbox.records()[-1].reply["data"] == {"expired": 0, "open": 0, "forgotten": 1}
    assert not [k for k in world.tables.resources if "/saga/" in k]


@dataclass
class Stream:
    """Faust's stream as the actor iterates it: one batch of events, then nothing until the actor is stopped."""

    events: list[Any]

    async def take_batches(self, max_: int, within: float) -> Any:
        yield self.events
        await asyncio.Event().wait()


@dataclass
class Partition0(Outbox):
    """The broker's answer to a produce: every command lands on partition 0, after the stream's commands."""

    next_command: int = 0
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, topic: str, key: bytes, value: bytes, partition: int | None) -> tuple[int, int]:
        await super().__call__(topic, key, value, partition)
        if topic == DECISIONS_TOPIC and DecisionRecord.decode(value).reply_to == "_INBOX.test":
            self.answered.set()
        if topic != COMMANDS_TOPIC:
            return 0, 0
        self.next_command += 1
        return 0, self.next_command - 1


async def test_follow_ups_to_a_partition_this_worker_decides_are_handed_over_and_their_stream_copy_passed() -> None:
    """agents/handoff.py: the saga's steps (the patient's time, the settlement) are decided one after another
    without the stream delivering them;
    the copies the stream delivers afterwards lie below the cursor and change nothing."""
    world = make_world(Settings())
    _, slot_id = await _schedule_with_slot(world)
    outbox = Partition0(next_command=world.offset + 1)
    world.actor._send = outbox  # the broker now answers with offsets on partition 0
    env = CommandEnvelope(delivery_id="h-1", type="appointment.book", body={"slotId": slot_id, "patientId": "p"},
                          claims=CLAIMS, command_id="handed", reply_to="_INBOX.test")  # fmt: skip
    message = SimpleNamespace(partition=0, offset=world.offset)
    handed_before = metrics.HANDED_FOLLOW_UPS._value.get()
    actor = asyncio.create_task(
        world.actor.consume(
            Stream([SimpleNamespace(key=token_of(slot_id).encode(), value=env.encode(), message=message)])
        )
    )
    try:
        await asyncio.wait_for(outbox.answered.wait(), timeout=10)
        answer = next(r for r in outbox.records() if r.reply_to == "_INBOX.test")
        assert (answer.type, answer.outcome) == ("saga.settle", "ok")
        follow_ups = outbox.on(COMMANDS_TOPIC)
        assert [CommandEnvelope.decode(v).type for _, v in follow_ups] == ["saga.hold", "saga.settle"]
        await asyncio.wait_for(world.actor.handed_over(), timeout=10)
        assert world.tables.cursor["0"] == world.offset + 3
        assert metrics.HANDED_FOLLOW_UPS._value.get() - handed_before == 2
        decided = len(outbox.records())
        offsets = range(world.offset + 1, world.offset + 3)
        await world.actor.receive([(k, v, 0, o) for (k, v), o in zip(follow_ups, offsets, strict=True)])
        assert len(outbox.records()) == decided  # the stream's copies: passed over, nothing decided twice
        assert world.tables.slots[slot_id]["status"] == "busy"
    finally:
        actor.cancel()


async def test_a_partition_regained_by_a_new_actor_stays_registered_when_the_old_one_stops() -> None:
    """Faust may start a partition's new actor before the old one's cleanup ran: the old one's `lose` must not
    unregister the new one (hand-overs to it would stop)."""
    local = LocalPartitions()
    old = local.gain(3)
    new = local.gain(3)
    local.lose(3, old)
    async with local.deciding([3]) as owned:
        assert owned
    local.lose(3, new)
    async with local.deciding([3]) as owned:
        assert not owned


@dataclass(frozen=True)
class BrokerCursor(Cursor):
    """A cursor whose broker holds `log` (offset → key, value) for the commands the stream leaves out."""

    log: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    read_back: list[int] = field(default_factory=list)

    async def missed(self, partition: int, start: int, stop: int) -> Any:
        for offset in range(start, stop):
            self.read_back.append(offset)
            key, value = self.log[offset]
            yield SimpleNamespace(key=key, value=value, offset=offset)


async def test_a_gap_inside_a_delivered_batch_is_read_back_and_repeats_are_passed() -> None:
    """A restarted worker's stream delivered offsets 65 and 67-75 in one batch, 66 (a saga's settlement)
    left out: the actor moved its cursor past 66 and the booking stayed in progress for good."""
    world = make_world(Settings())
    schedule_id, _ = await _schedule_with_slot(world)
    cursor = BrokerCursor(world.tables.cursor, "unused:9092")
    world.actor._cursor = cursor
    key = token_of(schedule_id).encode()
    first = world.offset
    commands = {}
    for i in range(4):
        later = MONDAY + timedelta(hours=3 + i)
        body = {"scheduleId": schedule_id, "start": iso(later), "end": iso(later + timedelta(minutes=30))}
        env = CommandEnvelope(delivery_id=f"gap-{i}", type="slot.create", body=body, claims=CLAIMS,
                              command_id=f"gap-{i}", reply_to="_INBOX.test")  # fmt: skip
        commands[first + i] = (key, env.encode())
    cursor.log.update(commands)
    delivered = [(k, v, 0, o) for o, (k, v) in commands.items() if o != first + 1]
    delivered.append(delivered[-1])  # the same message twice in one batch
    before = len(world.outbox.records())
    await world.actor.receive(delivered)
    decided = world.outbox.records()[before:]
    assert [r.delivery_id for r in decided] == [f"gap-{i}" for i in range(4)]  # in order, each once
    assert all(r.outcome == "ok" for r in decided) and cursor.read_back == [first + 1]
    assert world.tables.cursor["0"] == first + 4
