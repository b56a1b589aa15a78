"""A fuzzer over the command envelope: the actor's read-decide-record path never raises on what it reads.

The path mirrors `agents.commands.handle` / `decide_one` without Faust: decode the record; if it
cannot be read, build its refusal (`unreadable_command`); otherwise parse the command, decide it
against the in-memory state, build the decision record and read it back as the relay and the
projector do. Any exception other than the expected refusals fails the test. 2,000+ cases per run.
"""

from __future__ import annotations

import json
from typing import Any

from fakes import InMemoryState, make_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.commands import COMMANDS, parse_command
from domain.errors import DomainError, ErrorCode
from domain.usecases import decide
from scheduling.core.wire import CommandEnvelope, DecisionRecord, Unreadable, unreadable_command

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
hostile_text = st.sampled_from(["", "a\u0000b", "\ud800", "x" * 5000, "a\r\nb", "Practitioner/p", "ap-x-y", "*"])
field_value = json_values | hostile_text | st.sampled_from(["2027-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00"])
command_types = st.sampled_from(sorted(COMMANDS)) | st.text(max_size=20)
bodies = st.dictionaries(
    st.sampled_from(
        ["slotId", "patientId", "appointmentId", "newSlotId", "status", "scheduleId", "start", "end", "entryId",
         "actor", "planningHorizon", "locationId", "serviceType", "description", "commandId", "expectedVersion",
         "allowDoubleBooking", "requestedPeriod", "priority", "reply", "slot", "resumeAt", "leadMinutes"]
    ),
    field_value,
    max_size=8,
)  # fmt: skip
claims = st.fixed_dictionaries(
    {},
    optional={"tenant": st.sampled_from(["t1", "t2"]) | field_value, "sub": field_value, "scope": field_value,
              "patient_id": field_value},
)  # fmt: skip
envelopes = st.fixed_dictionaries(
    {},
    optional={"deliveryId": field_value, "type": command_types, "body": bodies | field_value, "claims": claims,
              "commandId": field_value, "replyTo": st.sampled_from(["_INBOX.a.b", "a b", "", "x.>"]) | field_value,
              "source": field_value, "causationId": field_value},
)  # fmt: skip


def _raw(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


records = envelopes.map(_raw) | json_values.map(_raw) | st.binary(max_size=200)


def _read_decide_record(raw: bytes) -> None:
    try:
        env = CommandEnvelope.decode(raw, "command record")
    except Unreadable as exc:
        record, reply_to = unreadable_command(raw, exc.reason, topic="t", partition=0, offset=7)
        assert record.outcome in {ErrorCode.VALIDATION_FAILED, ErrorCode.UNAUTHENTICATED}
        assert DecisionRecord.decode(record.encode()) == record
        assert reply_to is None or reply_to == record.reply_to
        return
    try:
        command = parse_command(env.type, env.body)
        ctx = make_context(tenant=env.claims.tenant, scopes=env.claims.scopes, patient_id=env.claims.patient_id)
        decision = decide(command, InMemoryState(), ctx)
        record = DecisionRecord.of(env, decision, routing_key="token")
    except DomainError as refused:
        record = DecisionRecord.refusal(env, refused)
    assert record.outcome != ErrorCode.INTERNAL
    assert DecisionRecord.decode(record.encode()) == record


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_no_command_record_makes_the_actor_path_raise(raw: bytes) -> None:
    _read_decide_record(raw)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(COMMANDS)), bodies)
def test_every_command_type_with_hostile_bodies_is_decided_or_refused(command_type: str, body: dict[str, Any]) -> None:
    claims = {"tenant": "t1", "scope": "scheduling:write"}
    env = {"deliveryId": "d", "type": command_type, "body": body, "claims": claims, "commandId": "c",
           "replyTo": "_INBOX.x"}  # fmt: skip
    _read_decide_record(_raw(env))
