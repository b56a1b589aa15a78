"""scheduling/streams/durable.py on the real JetStream: a message is acknowledged after its effect, a poison
one is terminated, and a cancelled consumer lets its connection drain (a role stopped by its supervisor exits
instead of waiting out the drain timeout and being killed)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import nats
import pytest
from conftest import Service, unique
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from support.client import eventually

from domain.errors import DomainError, ErrorCode
from scheduling.streams import durable


@pytest.mark.parametrize("cancelled_while", ["waiting", "handling"])
async def test_a_cancelled_consumer_lets_its_connection_drain(
    service: Service, cancelled_while: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_fetches: list[None] = []
    fetch = JetStreamContext.PullSubscription.fetch

    async def counted(self: JetStreamContext.PullSubscription, *args: Any, **kwargs: Any) -> list[Msg]:
        try:
            return await fetch(self, *args, **kwargs)
        except TimeoutError:  # nats.errors.TimeoutError is one too
            empty_fetches.append(None)
            raise

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", counted)
    errors: list[Exception] = []

    async def collect(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(service.nats, drain_timeout=3, error_cb=collect)
    js = nc.jetstream()
    subject = unique("test.durable")
    stream = subject.replace(".", "_").replace("-", "_").upper()
    await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
    taken: list[bytes] = []
    blocked = asyncio.Event()

    async def handle(msg: Msg) -> None:
        if msg.data == b"poison":
            raise DomainError(ErrorCode.VALIDATION_FAILED, "unreadable")
        if msg.data == b"block":
            blocked.set()
            await asyncio.Event().wait()
        taken.append(msg.data)

    consumer = asyncio.create_task(durable.consume(js, subject, handle))
    for data in (b"poison", b"one", b"two"):
        await js.publish(subject, data)
    assert await eventually(lambda: taken == [b"one", b"two"])

    async def all_settled() -> bool:  # the poison message terminated, the others acknowledged
        info = await js.consumer_info(stream, durable.durable_name(subject))
        return bool(info.num_ack_pending == 0 and info.num_pending == 0)

    await eventually(all_settled)
    if cancelled_while == "waiting":  # a fetch that expired empty left what held the drain (nats-py 2.x)
        await eventually(lambda: empty_fetches, within=2 * durable.FETCH_WAIT + 15)
    else:
        await js.publish(subject, b"block")
        await blocked.wait()
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    await nc.drain()
    assert nc.is_closed
    assert not [e for e in errors if isinstance(e, nats.errors.DrainTimeoutError)]
