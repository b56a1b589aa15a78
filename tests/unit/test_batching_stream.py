"""scheduling/streams/batching.py on a Faust in-memory channel: batches as Faust's `take_events` makes them,
events acknowledged once their batch was taken, and an idle stream waiting for its first event with no timer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest

from scheduling.streams.batching import BatchingStream


@pytest.fixture
async def stream() -> AsyncIterator[tuple[faust.ChannelT[Any], BatchingStream]]:
    app = faust.App("test-batching", Stream=BatchingStream, store="memory://", web_enabled=False)
    app.flow_control.resume()  # a started worker does this; channels block until then
    channel = app.channel()
    yield channel, app.stream(channel)


async def _batches(stream: BatchingStream, into: asyncio.Queue[list[Any]], max_: int = 3) -> None:
    async for events in stream.take_batches(max_, 0.05):
        await into.put([event.value for event in events])


async def test_batches_hold_at_most_max_events_in_order_and_a_partial_one_comes_after_the_window(
    stream: tuple[faust.ChannelT[Any], BatchingStream],
) -> None:
    channel, batching = stream
    batches: asyncio.Queue[list[Any]] = asyncio.Queue()
    consumer = asyncio.create_task(_batches(batching, batches))
    try:
        for value in range(7):
            await channel.send(value=value)
        got: list[list[Any]] = []
        while sum(map(len, got)) < 7:
            got.append(await asyncio.wait_for(batches.get(), 10))
        assert [value for batch in got for value in batch] == list(range(7)) and max(map(len, got)) <= 3
        await channel.send(value=99)  # after an idle spell, a lone event still comes
        assert await asyncio.wait_for(batches.get(), 10) == [99]
    finally:
        consumer.cancel()


async def test_an_idle_stream_waits_for_its_first_event_without_a_timeout(
    stream: tuple[faust.ChannelT[Any], BatchingStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, batching = stream
    waits: list[float | None] = []
    waiting = asyncio.Event()
    wait_for_stopped = batching.wait_for_stopped

    async def noted(*events: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (the patched signature)
        waits.append(timeout)
        if timeout is None:
            waiting.set()
        return await wait_for_stopped(*events, timeout=timeout)

    monkeypatch.setattr(batching, "wait_for_stopped", noted)
    batches: asyncio.Queue[list[Any]] = asyncio.Queue()
    consumer = asyncio.create_task(_batches(batching, batches))
    try:
        await asyncio.wait_for(waiting.wait(), 10)  # idle: one wait, with no timer
        assert waits == [None]
        await channel.send(value=1)
        assert await asyncio.wait_for(batches.get(), 10) == [1]
        assert waits[:2] == [None, 0.05]  # the window opens only once something arrived
    finally:
        consumer.cancel()


async def test_events_are_acknowledged_once_their_batch_was_taken(
    stream: tuple[faust.ChannelT[Any], BatchingStream], monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, batching = stream
    acked: list[Any] = []
    ack = batching.ack

    async def noted(event: Any) -> bool:
        acked.append(event.value)
        return await ack(event)

    monkeypatch.setattr(batching, "ack", noted)
    batches = batching.take_batches(2, 0.05)
    for value in range(3):
        await channel.send(value=value)
    first = await asyncio.wait_for(anext(batches), 10)
    assert [e.value for e in first] == [0, 1] and acked == []  # being decided: not acknowledged yet
    second = await asyncio.wait_for(anext(batches), 10)
    assert [e.value for e in second] == [2] and acked == [0, 1]
    await batches.aclose()
    assert acked == [0, 1, 2]
