"""Wire formats between the roles, typed: the command envelope, the decision record, the CloudEvent.

The envelope is what the bridge puts on the commands topic; the decision record is what
the actor puts on the decisions topic (the outbox): the entities after the change, the
CloudEvents, the reply and the audit facts of one command, so relay, projector and audit
never decide anything again. Each type has one `encode` and one `decode`; `decode` reads
untrusted bytes within the limits of `domain/limits.py` and raises `Unreadable` (with the
reason) for anything else, so a consumer never indexes a raw dict and never crashes on one.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from domain.decisions import Decision, Event
from domain.errors import DomainError, ErrorCode, pydantic_details
from domain.limits import load_record, safe_name, safe_text, scrub
from domain.model import ENTITY_TYPES, Entity
from domain.policy import Access
from domain.resource import DayIndex, DaySlots, ResourceIndex, WaitingSaga

CLOUDEVENT_SOURCE = "/scheduling"
#: Errors that mean "this message could not be processed": they always land in the dead-letter stream.
DEAD_LETTER_CODES = frozenset({ErrorCode.VALIDATION_FAILED, ErrorCode.UNAUTHENTICATED, ErrorCode.INTERNAL})

#: names without control characters: these values also travel in NATS headers and subjects
Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(safe_name)]
#: command ids grow by a suffix per follow-up hop (a long pattern is opened in many parts)
LongText = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(safe_name)]
#: a NATS subject: tokens of printable characters without spaces or wildcards, as nats-py accepts
Subject = Annotated[str, Field(max_length=256, pattern=r"^[^\s.*>]+(\.[^\s.*>]+)*$"), AfterValidator(safe_name)]
#: a command or event type, used as the last tokens of a NATS subject
TypeName = Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$")]


class Unreadable(Exception):
    """A record a consumer cannot read; `reason` says why (for the dead-letter record and the log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    def encode(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def decode(cls, raw: bytes | None, what: str = "record") -> Self:
        try:
            return cls.load(load_record(raw or b"", what))
        except DomainError as error:
            raise Unreadable(_details_text(error.details) or error.message) from None

    @classmethod
    def load(cls, value: Any) -> Self:
        """From decoded JSON (a table value, a journal entry) to the type, or `Unreadable`."""
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            raise Unreadable(_details_text(pydantic_details(exc))) from None


def _details_text(details: Any) -> str:
    if not isinstance(details, list):
        return ""
    return "; ".join(f"{d.get('field')}: {d.get('message')}" for d in details if isinstance(d, dict))[:1000]


class Claims(Wire):
    """The JWT claims the service acts on (CONTRACT section 2); others are dropped."""

    model_config = ConfigDict(alias_generator=None, populate_by_name=True, frozen=True, extra="ignore")
    tenant: Text
    sub: Text | None = None
    scope: Annotated[str, Field(max_length=2000), AfterValidator(safe_text)] = ""
    patient_id: Text | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    @property
    def access(self) -> Access:
        return Access(scopes=self.scopes, patient_id=self.patient_id)


class CommandEnvelope(Wire):
    """One command on the commands topic: who asked, what, and where the answer goes."""

    delivery_id: LongText
    type: TypeName
    body: dict[str, Any]
    claims: Claims
    command_id: LongText
    reply_to: Subject | None = None
    received_at: str | None = None
    source: Annotated[str, Field(max_length=64)] | None = None
    causation_id: LongText | None = None

    @classmethod
    def new(
        cls,
        *,
        command_type: str,
        body: dict[str, Any],
        claims: Claims,
        command_id: str | None,
        reply_to: str | None,
        source: str,
        causation_id: str | None = None,
    ) -> CommandEnvelope:
        return cls(
            delivery_id=uuid.uuid4().hex,
            type=command_type,
            body=body,
            claims=claims,
            command_id=command_id or f"auto-{uuid.uuid4().hex}",
            reply_to=reply_to,
            received_at=now_iso(),
            source=source,
            causation_id=causation_id,
        )

    @property
    def causation(self) -> str:
        return self.causation_id or self.command_id


class CloudEvent(Wire):
    """CloudEvents 1.0, structured JSON (CONTRACT section 5); attribute names are lower case as on the wire."""

    model_config = ConfigDict(alias_generator=None, populate_by_name=True, frozen=True, extra="ignore")
    specversion: Literal["1.0"] = "1.0"
    id: Text
    source: Text = CLOUDEVENT_SOURCE
    type: TypeName
    subject: Text
    time: str
    datacontenttype: Literal["application/json"] = "application/json"
    tenantid: Text
    causationid: LongText
    data: dict[str, Any]


EntityKind = Literal["schedule", "slot", "appointment", "waitlist"]


class Change(Wire):
    """An entity after the change: `data` must be a valid entity of `kind`, or the record is unreadable."""

    kind: EntityKind
    data: dict[str, Any]
    _entity: Entity = PrivateAttr()

    @model_validator(mode="after")
    def _an_entity(self) -> Change:
        self._entity = ENTITY_TYPES[self.kind].model_validate(self.data)
        return self

    @property
    def entity(self) -> Entity:
        """The entity `data` describes, parsed once when the record was read."""
        return self._entity

    @classmethod
    def of(cls, entity: Entity) -> Change:
        """The change a decision made: built from the entity itself, which needs no parsing again."""
        change = cls.model_construct(kind=cast(EntityKind, entity.kind), data=entity.dump())
        change._entity = entity
        return change


IndexKind = Literal["resource", "day", "slots", "saga"]


class IndexWrite(Wire):
    kind: IndexKind
    key: Text
    data: dict[str, Any]
    _model: BaseModel | None = PrivateAttr(default=None)

    @property
    def model(self) -> BaseModel | None:
        """The index `data` was dumped from, when this write was made in this process (not read back)."""
        return self._model

    @classmethod
    def of(cls, index: ResourceIndex | DayIndex | DaySlots | WaitingSaga) -> IndexWrite:
        write = cls.model_construct(kind=cast(IndexKind, index.KIND), key=index.key,
                                    data=index.model_dump(mode="json"))  # fmt: skip
        write._model = index
        return write


class FollowUpCommand(Wire):
    """A command this decision sends to another resource's partition (`key` is its routing token)."""

    key: Text
    envelope: CommandEnvelope


class DecisionRecord(Wire):
    """One command's outcome: durable first (the journal), then applied, then published (the outbox)."""

    delivery_id: LongText
    command_id: LongText
    type: TypeName
    source: Annotated[str, Field(max_length=64)] | None = None
    tenant: Annotated[str, Field(max_length=200), AfterValidator(safe_text)]
    caller: Text | None = None
    reply_to: Subject | None = None
    reply: dict[str, Any]
    outcome: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(safe_text)]
    decided_at: datetime
    changes: list[Change] = []
    indexes: list[IndexWrite] = []
    events: list[CloudEvent] = []
    dead_letter: bool = False
    #: the refused command's body, kept for an operator to inspect and replay
    command: Any = None
    follow_ups: list[FollowUpCommand] = []
    routing_key: Text | None = None
    replay_of: LongText | None = None
    trace: str | None = None
    #: why the command could not be read, and where it was (topic, partition, offset)
    unreadable: dict[str, Any] | None = None
    #: (caller, command id) of the command whose saga this record settles: a repeat of it is answered with it
    answers: list[LongText] | None = None

    @classmethod
    def of(cls, env: CommandEnvelope, decision: Decision, *, routing_key: str | None = None) -> DecisionRecord:
        tenant = env.claims.tenant
        decided_at = datetime.now(UTC)
        reply = decision.reply()
        dead = decision.error is not None and _dead_letter(decision.error, bool(env.reply_to))
        return cls(
            delivery_id=env.delivery_id,
            command_id=env.command_id,
            type=env.type,
            source=env.source,
            tenant=tenant,
            caller=env.claims.sub,
            reply_to=None if any(f.carries_reply for f in decision.follow_ups) else env.reply_to,
            reply=reply,
            outcome=PENDING if decision.pending else "ok" if decision.error is None else decision.error.code.value,
            decided_at=decided_at,
            changes=[Change.of(e) for e in decision.changes],
            indexes=[IndexWrite.of(i) for i in decision.indexes],
            events=[
                _cloudevent(e, tenant=tenant, causation_id=env.causation, time=decided_at) for e in decision.events
            ],
            dead_letter=dead,
            command=env.body if dead else None,
            follow_ups=[
                FollowUpCommand(
                    key=f.token,
                    envelope=CommandEnvelope(
                        delivery_id=f"{env.delivery_id}:{i}",
                        type=f.command,
                        body=f.body,
                        claims=Claims(tenant=tenant, sub=FOLLOW_UP_CALLER, scope="scheduling:write"),
                        command_id=f"{env.command_id}:follow-up:{i}",
                        reply_to=env.reply_to if f.carries_reply else None,
                        causation_id=env.causation,
                        received_at=decided_at.isoformat(),
                        source=FOLLOW_UP_SOURCE,
                    ),
                )
                for i, f in enumerate(decision.follow_ups)
            ],
            routing_key=routing_key,
            answers=list(decision.answers) if decision.answers else None,
        )

    @classmethod
    def refusal(cls, env: CommandEnvelope, error: DomainError) -> DecisionRecord:
        """A record for a command refused before any actor decided it (or one that crashed the actor)."""
        return cls.of(env, Decision(error=error))

    @classmethod
    def rejected(
        cls,
        *,
        command_type: str,
        command_id: str,
        source: str,
        claims: Claims | None,
        body: Any,
        error: DomainError,
        answered: bool,
    ) -> DecisionRecord:
        """A command the bridge refused before it became an envelope (bad token, unreadable body): for the audit
        log and the dead-letter stream. Fields that do not have their form are replaced, never raised on."""
        dead = _dead_letter(error, answered)
        return cls(
            delivery_id=uuid.uuid4().hex,
            command_id=command_id if _is_command_id(command_id) else f"auto-{uuid.uuid4().hex}",
            type=command_type if _is_type_name(command_type) else "unknown",
            source=source,
            tenant=claims.tenant if claims else "",
            caller=claims.sub if claims else None,
            reply=error.as_reply(),
            outcome=error.code.value,
            decided_at=datetime.now(UTC),
            dead_letter=dead,
            command=body if dead else None,
        )

    @property
    def only_for_the_journal(self) -> bool:
        """A follow-up's record that changed only the actor's indexes, emits nothing and answers no one (a saga
        step on the patient's time): the projector and the relay would read it for nothing."""
        return self.source == FOLLOW_UP_SOURCE and not (
            self.changes or self.events or self.reply_to or self.dead_letter
        )

    def published(self) -> DecisionRecord:
        """The record as the outbox carries it: without the index writes, which only the actor's journal needs
        (the projector and the relay never read them, and a day index holds every slot of a day)."""
        return self.model_copy(update={"indexes": []}) if self.indexes else self

    def answered_by(self, settled: DecisionRecord | None) -> DecisionRecord:
        """A repeat of a command whose saga is settled gets the saga's answer; one still running is told so."""
        if settled is not None:
            return self.model_copy(update={"reply": settled.reply, "outcome": settled.outcome})
        busy = DomainError(
            ErrorCode.UNAVAILABLE,
            "the command is still being decided across resources; repeat it with the same commandId",
            {"reason": "in-progress"},
        )
        return self.model_copy(update={"reply": busy.as_reply(), "outcome": PENDING})

    def repeat(self, env: CommandEnvelope) -> DecisionRecord:
        """The answer to a repeat of this record's command (same idempotency key): the first reply, nothing more."""
        return self.model_copy(
            update={
                "delivery_id": env.delivery_id,
                "reply_to": env.reply_to,
                "replay_of": self.delivery_id,
                "changes": [],
                "indexes": [],
                "events": [],
                "follow_ups": [],
                "dead_letter": False,
            }
        )


def _dead_letter(error: DomainError, answered: bool) -> bool:
    """A malformed, unauthenticated or crashed command always; any refusal nobody hears of otherwise."""
    return error.code in DEAD_LETTER_CODES or not answered


#: the outcome of a command whose reply waits for its saga's last step
PENDING = "pending"
#: the caller named in follow-up commands: the service itself, on behalf of the first command's caller
FOLLOW_UP_CALLER = "scheduling-follow-up"
#: the `source` of a follow-up command, and of its decision record
FOLLOW_UP_SOURCE = "follow-up"


def _cloudevent(event: Event, *, tenant: str, causation_id: str, time: datetime) -> CloudEvent:
    return CloudEvent(
        id=event.id,
        type=event.type,
        subject=event.subject,
        time=time.isoformat(),
        tenantid=tenant,
        causationid=causation_id,
        data=event.data,
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def unreadable_command(
    raw: bytes | None, reason: str, *, topic: str, partition: int, offset: int
) -> tuple[DecisionRecord, str | None]:
    """The refusal of a command record nobody can read, and the NATS inbox to answer, if one can be found.

    Built only from what can be read safely: every field of the raw record is taken only if it
    has the expected type and form, so this never raises on the record's content.
    """
    salvaged = _salvage(raw)
    code = ErrorCode.UNAUTHENTICATED if salvaged.pop("noTenant", False) else ErrorCode.VALIDATION_FAILED
    reason = scrub(reason)
    where = {"topic": topic, "partition": partition, "offset": offset}
    error = DomainError(code, f"the command record could not be read: {reason}", {"reason": reason, **where})
    reply_to = salvaged.get("replyTo")
    record = DecisionRecord(
        delivery_id=salvaged.get("deliveryId") or f"unreadable:{topic}:{partition}:{offset}",
        command_id=salvaged.get("commandId") or f"unreadable:{topic}:{partition}:{offset}",
        type=salvaged.get("type") or "unknown",
        source="unreadable",
        tenant=salvaged.get("tenant") or "",
        reply_to=reply_to,
        reply=error.as_reply(),
        outcome=code.value,
        decided_at=datetime.now(UTC),
        dead_letter=True,
        command=scrub((raw or b"")[:4096].decode("utf-8", errors="replace")),
        unreadable={"reason": reason, **where},
    )
    return record, reply_to


_SALVAGE_FIELDS: dict[str, TypeAdapter[str]] = {
    "deliveryId": TypeAdapter(LongText),
    "commandId": TypeAdapter(LongText),
    "type": TypeAdapter(TypeName),
    "replyTo": TypeAdapter(Subject),
}
_TENANT: TypeAdapter[str] = TypeAdapter(Text)


def _is_command_id(value: str) -> bool:
    return _passes(_SALVAGE_FIELDS["commandId"], value)


def _is_type_name(value: str) -> bool:
    return _passes(_SALVAGE_FIELDS["type"], value)


def _passes(adapter: TypeAdapter[str], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def salvage_reply_to(raw: bytes | None) -> str | None:
    """The NATS inbox named by an unreadable record, if it names a well-formed one."""
    reply_to: str | None = _salvage(raw).get("replyTo")
    return reply_to


def _salvage(raw: bytes | None) -> dict[str, Any]:
    """What can be trusted of an unreadable command record: each field alone, checked by its own type.

    The record is parsed without the limits (it is at most a Kafka record): a NUL deep in the body
    must not hide the inbox that is to hear of it. Only the few fields below are read.
    """
    try:
        value = json.loads(raw or b"")
    except (RecursionError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    found: dict[str, Any] = {}
    for name, adapter in _SALVAGE_FIELDS.items():
        try:
            found[name] = adapter.validate_python(value.get(name))
        except ValidationError:
            continue
    claims = value.get("claims")
    try:
        found["tenant"] = _TENANT.validate_python(claims.get("tenant") if isinstance(claims, dict) else None)
    except ValidationError:
        found["noTenant"] = isinstance(claims, dict) and "tenant" not in claims
    return found


ParkKind = Literal["unreadable", "unapplicable"]
#: a parked record keeps at most this much of the original value (base64 grows it by a third)
MAX_PARKED_BYTES = 512 * 1024


class ParkedRecord(Wire):
    """A record set aside on the dead-letter topic: where it was, why, and its bytes for an operator to replay."""

    consumer: str
    #: unreadable (not a record of its type) or unapplicable (readable, but its effect cannot be stored)
    kind: ParkKind
    topic: str
    partition: int
    offset: int
    reason: str
    key_base64: str | None
    value_base64: str
    truncated: bool = False
    parked_at: str

    @classmethod
    def of(
        cls,
        consumer: str,
        kind: ParkKind,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> ParkedRecord:
        return cls(
            consumer=consumer,
            kind=kind,
            topic=topic,
            partition=partition,
            offset=offset,
            reason=scrub(reason[:2000]),
            key_base64=base64.b64encode(key).decode() if key is not None else None,
            value_base64=base64.b64encode((value or b"")[:MAX_PARKED_BYTES]).decode(),
            truncated=len(value or b"") > MAX_PARKED_BYTES,
            parked_at=now_iso(),
        )
