"""Settings read from the environment (CONTRACT section 8), in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from domain.booking_policy import CONTRACT_DEFAULTS
from domain.model import BookingPolicy

COMMANDS_TOPIC = "scheduling-commands"
#: The outbox: one decision record per command (state changes, events, reply).
DECISIONS_TOPIC = "scheduling-decisions"
#: records a consumer (actor, projector, relay) could not read or apply, with the reason and where they were
DEAD_LETTERS_TOPIC = "scheduling-dead-letters"
EVENTS_STREAM = "SCHEDULING_EVENTS"
DLQ_STREAM = "SCHEDULING_DLQ"
COMMAND_SUBJECT_PREFIX = "scheduling.cmd."
PORTAL_SUBJECT = "portal.appointment.requested"
REGISTRATION_SUBJECTS = ("registration.patient.registered", "registration.patient.updated")
REMINDER_SUBJECT = "notifications.reminder.requested"
#: what other services publish for this one: read through durable consumers (scheduling/streams/durable.py)
INPUT_SUBJECTS = (PORTAL_SUBJECT, *REGISTRATION_SUBJECTS)


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


#: bookingPolicy field -> its service-wide default's variable (CONTRACT section 9: SCHEDULING_<FIELD>)
POLICY_VARIABLES = {
    "minNoticeMinutes": "SCHEDULING_MIN_NOTICE_MINUTES",
    "maxAdvanceDays": "SCHEDULING_MAX_ADVANCE_DAYS",
    "cancellationCutoffMinutes": "SCHEDULING_CANCELLATION_CUTOFF_MINUTES",
    "checkInWindow.beforeMinutes": "SCHEDULING_CHECK_IN_WINDOW_BEFORE_MINUTES",
    "checkInWindow.afterMinutes": "SCHEDULING_CHECK_IN_WINDOW_AFTER_MINUTES",
    "waitlistOfferMinutes": "SCHEDULING_WAITLIST_OFFER_MINUTES",
    "reminderLeadMinutes": "SCHEDULING_REMINDER_LEADS",
    "bufferBeforeMinutes": "SCHEDULING_BUFFER_BEFORE_MINUTES",
    "bufferAfterMinutes": "SCHEDULING_BUFFER_AFTER_MINUTES",
    "maxPerDay": "SCHEDULING_MAX_PER_DAY",
}


def booking_policy_defaults() -> BookingPolicy:
    """The contract's defaults, each replaced by its variable when set; a bad value stops the start-up."""
    policy: dict[str, Any] = CONTRACT_DEFAULTS.dump()
    for path, variable in POLICY_VARIABLES.items():
        raw = _env(variable)
        if raw is None:
            continue
        value: Any = [x.strip() for x in raw.split(",") if x.strip()] if path == "reminderLeadMinutes" else raw
        *parents, leaf = path.split(".")
        target = policy
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    try:
        return BookingPolicy.model_validate(policy)
    except ValidationError as exc:
        paths = [".".join(str(part) for part in error["loc"] if isinstance(part, str)) for error in exc.errors()]
        named = sorted({POLICY_VARIABLES.get(path, path) for path in paths})
        raise SystemExit(f"invalid booking policy default in the environment: {', '.join(named)}") from None


@dataclass(frozen=True)
class Settings:
    kafka_url: str = field(default_factory=lambda: _env("KAFKA_BROKER_URL", "localhost:9092") or "")
    nats_url: str = field(default_factory=lambda: _env("NATS_URL", "nats://localhost:4222") or "")
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL", "postgresql://localhost/scheduling") or "")
    http_port: int = field(default_factory=lambda: int(_env("SCHEDULING_HTTP_PORT", "8080") or 8080))
    partitions: int = field(default_factory=lambda: int(_env("SCHEDULING_PARTITIONS", "4") or 4))
    jwt_secret: str | None = field(default_factory=lambda: _env("SCHEDULING_JWT_SECRET"))
    jwt_public_key: str | None = field(default_factory=lambda: _env("SCHEDULING_JWT_PUBLIC_KEY"))
    #: "tansu" turns on the guards for the embedded broker's defects (docs/broker-guards.md).
    broker_flavour: str = field(default_factory=lambda: _env("SCHEDULING_BROKER", "tansu") or "tansu")
    standby_replicas: int = field(default_factory=lambda: int(_env("SCHEDULING_STANDBY_REPLICAS", "0") or 0))
    app_id: str = field(default_factory=lambda: _env("SCHEDULING_APP_ID", "scheduling") or "scheduling")
    #: the booking rules of every schedule that does not set its own (`bookingPolicy`)
    booking_policy: BookingPolicy = field(default_factory=booking_policy_defaults)
    #: how long a command's idempotency key is remembered (its first reply returned to a repeat)
    idempotency_ttl_hours: float = field(
        default_factory=lambda: float(_env("SCHEDULING_IDEMPOTENCY_TTL_HOURS", "168") or 168)
    )
    #: how long a booking or move across resources may hold other resources' slots before it is given up
    hold_seconds: float = field(default_factory=lambda: float(_env("SCHEDULING_HOLD_SECONDS", "120") or 120))
    command_timeout: float = field(default_factory=lambda: float(_env("SCHEDULING_COMMAND_TIMEOUT", "10") or 10))
    #: tests only: a folder where a file named after a failpoint makes the worker exit there once
    failpoints_dir: str | None = field(default_factory=lambda: _env("SCHEDULING_FAILPOINTS_DIR"))
    #: a partition with lag whose committed offset has not moved for this long is stalled (/readyz 503)
    stall_seconds: float = field(default_factory=lambda: float(_env("SCHEDULING_STALL_SECONDS", "30") or 30))
    #: where the worker keeps its tables on disk (RocksDB), one folder per worker; unset or empty: in memory,
    #: and a restarted worker reads its whole changelog again
    state_dir: str | None = field(default_factory=lambda: _env("SCHEDULING_STATE_DIR"))
    #: JetStream duplicate window for events, in seconds: re-publishes inside it are dropped by the server.
    duplicate_window: float = field(default_factory=lambda: float(_env("SCHEDULING_DUPLICATE_WINDOW", "3600") or 3600))
    #: the bridge's and the projector's GET /metrics port (the worker's are on its HTTP view); unset, empty or 0: none
    metrics_port: int | None = field(default_factory=lambda: int(_env("SCHEDULING_METRICS_PORT", "0") or 0) or None)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_url.removeprefix("kafka://")

    @property
    def tansu(self) -> bool:
        return self.broker_flavour == "tansu"
