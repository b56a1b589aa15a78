"""Prometheus metrics shared by the roles (served at /metrics by the HTTP view)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMANDS = Counter("scheduling_commands_total", "Commands decided, by type and outcome", ["type", "outcome"])
DECISION_SECONDS = Histogram(
    "scheduling_decision_seconds",
    "Time the actor spends deciding one command",
    ["type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
BATCH_COMMANDS = Histogram(
    "scheduling_batch_commands",
    "Commands one partition's actor made durable in one step (group commit: one journal and one outbox round trip)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
OUTBOX_RETRIES = Counter("scheduling_outbox_retries_total", "Retried writes of already-journaled decisions")
SKIPPED_COMMANDS = Counter(
    "scheduling_skipped_commands_total", "Commands the stream skipped and the actor read back itself"
)
HANDED_FOLLOW_UPS = Counter(
    "scheduling_follow_ups_handed_total", "Follow-up commands decided by a local actor without waiting for a fetch"
)
DEAD_LETTERS = Counter("scheduling_dead_letters_total", "Records sent to the dead-letter stream", ["type"])
CONSUMER_LAG = Gauge("scheduling_consumer_lag_records", "Commands not yet decided by the actors", ["partition"])
PROJECTOR_LAG = Gauge("scheduling_projector_lag_records", "Decision records not yet projected", ["partition"])
RELAY_LAG = Gauge("scheduling_relay_lag_records", "Decision records not yet relayed to JetStream", ["partition"])
HTTP_REQUESTS = Counter("scheduling_http_requests_total", "HTTP requests by route and status", ["route", "status"])
PARKED = Counter(
    "scheduling_parked_records_total",
    "Records a consumer could not read or apply, set aside on the dead-letter topic (this process)",
    ["consumer", "reason"],
)
DEAD_LETTER_TOPIC_RECORDS = Gauge(
    "scheduling_dead_letter_topic_records", "Records parked on the dead-letter topic by every role, all time"
)
PARTITION_COMMITTED = Gauge(
    "scheduling_partition_committed_offset", "Committed offset per consumer group and partition", ["group", "partition"]
)
PARTITION_STALLED_SECONDS = Gauge(
    "scheduling_partition_stalled_seconds",
    "How long a partition has had lag without its committed offset moving (0: moving or caught up)",
    ["group", "partition"],
)
OPEN_HOLDS = Gauge(
    "scheduling_open_holds",
    "Bookings and moves across resources still holding slots, by home partition, as of the last sweep",
    ["partition"],
)
HOLDS_EXPIRED = Counter(
    "scheduling_holds_expired_total", "Bookings and moves across resources given up because their holds expired"
)
DURABLE_INPUTS = Counter(
    "scheduling_durable_inputs_total",
    "Messages of the durable inputs (portal requests, registrations): taken, refused (dropped) or retried",
    ["consumer", "result"],
)
