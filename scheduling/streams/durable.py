"""Inputs from other services read through JetStream durable consumers: nothing is lost while a role is down.

Portal requests and patient registrations were plain NATS subscriptions: whatever arrived while the bridge or
the projector was away was gone. Now a stream captures their subjects (this service creates one when no other
stream does, as for notifications), a durable pull consumer per subject reads it, and a message is
acknowledged only once its effect is stored: on the commands topic (portal) or in PostgreSQL (registrations).

A message that can never succeed (bad token, unreadable body, a value the database refuses) is terminated and
logged, so it cannot wedge the consumer; one that failed because a dependency is away is redelivered later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from domain.errors import DomainError
from scheduling.core import metrics
from scheduling.core.failures import is_record_fault

log = logging.getLogger(__name__)
#: the stream this service creates for the inputs no other stream captures
INPUTS_STREAM = "SCHEDULING_INPUTS"
#: how long a message may stay unacknowledged before JetStream delivers it again (seconds)
ACK_WAIT = 30.0
#: how long one fetch waits for messages before it is asked again (seconds)
FETCH_WAIT = 1.0
#: how long a message that failed for an outage waits before its next delivery (seconds)
RETRY_DELAY = 1.0

Handle = Callable[[Msg], Awaitable[None]]


async def ensure_inputs_stream(js: JetStreamContext, subjects: Sequence[str], duplicate_window: float) -> None:
    """Capture the subjects no other stream captures in INPUTS_STREAM (idempotent, safe from several roles)."""
    ours = []
    for subject in subjects:
        try:
            owner: str | None = await js.find_stream_name_by_subject(subject)
        except NotFoundError:
            owner = None
        if owner in (None, INPUTS_STREAM):
            ours.append(subject)
    if not ours:
        return
    config = StreamConfig(name=INPUTS_STREAM, subjects=ours, duplicate_window=duplicate_window)
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


def durable_name(subject: str) -> str:
    return "scheduling-" + subject.replace(".", "-")


async def consume(js: JetStreamContext, subject: str, handle: Handle) -> None:
    """Read `subject` through its durable consumer until cancelled; ack after `handle`, never lose a message.

    Cancelled, it unsubscribes: a pull subscription left behind holds `nc.drain()` until its timeout (30 s),
    long enough for a supervisor to give up and kill the role.
    """
    name = durable_name(subject)
    config = ConsumerConfig(ack_wait=ACK_WAIT, max_ack_pending=256)
    sub = await js.pull_subscribe(subject, durable=name, config=config)
    pause = RETRY_DELAY
    try:
        while True:
            try:
                messages = await sub.fetch(batch=64, timeout=FETCH_WAIT)
            except (nats.errors.TimeoutError, TimeoutError):  # nothing arrived (nats-py raises either)
                continue
            except (nats.errors.Error, OSError) as exc:  # NATS away: wait, the consumer resumes where it was
                log.warning("durable input %s: %r; retrying in %.1fs", name, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            pause = RETRY_DELAY
            for msg in messages:
                await _take(name, msg, handle)
    finally:
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()


async def _take(name: str, msg: Msg, handle: Handle) -> None:
    try:
        await handle(msg)
    except Exception as exc:
        if isinstance(exc, DomainError) or is_record_fault(exc):
            log.warning("durable input %s: message %s can never be taken (%r); dropped", name, _seq(msg), exc)
            metrics.DURABLE_INPUTS.labels(name, "refused").inc()
            await msg.term()
        else:
            log.warning("durable input %s: message %s failed (%r); delivered again later", name, _seq(msg), exc)
            metrics.DURABLE_INPUTS.labels(name, "retried").inc()
            await msg.nak(delay=RETRY_DELAY)
        return
    metrics.DURABLE_INPUTS.labels(name, "taken").inc()
    await msg.ack()


def _seq(msg: Msg) -> str:
    try:
        return str(msg.metadata.sequence.stream)
    except Exception:  # not a JetStream message: nothing to name it by
        return "?"
