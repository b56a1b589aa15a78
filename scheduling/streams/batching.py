"""The worker's stream class: batches of events for the actors' group commit, without a timer while idle.

Faust's `Stream.take_events(max_, within)` waits for a full buffer with `within` as its timeout, again and again,
whether anything arrived or not: with the actors' 2 ms window that woke every partition's actor 500 times a
second with nothing to do (a quarter of a core for an idle worker with 32 partitions, and timer churn that
competed with the work under load). `take_batches` is the same buffer with one change: while the buffer is
empty it waits for the first event with no timeout, and only then gives the others `within` to join it.

Installed through Faust's `Stream` setting (scheduling/streams/app.py), the extension point Faust gives for
it; the buffer and acknowledgement logic follow `take_events` of faust-streaming 0.15 otherwise:
events are acknowledged only after the consumer of a batch asks for the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
from mode.utils.futures import notify


class BatchingStream(faust.Stream):  # type: ignore[type-arg]
    async def take_batches(self, max_: int, within: float) -> AsyncIterator[list[Any]]:
        """Lists of up to `max_` events: the first event waits as long as it takes, the others at most
        `within` seconds after it."""
        buffer: list[Any] = []
        events: list[Any] = []
        arrived = asyncio.Event()
        buffer_full = asyncio.Event()
        buffer_consumed = asyncio.Event()
        consuming: asyncio.Future[None] | None = None
        channel_it = aiter(self.channel)

        async def add_to_buffer(value: Any) -> Any:
            nonlocal consuming
            try:
                if consuming is not None:  # a batch is being decided: nothing joins it meanwhile
                    try:
                        await consuming
                    finally:
                        consuming = None
                buffer.append(value)
                event = self.current_event
                if event is None:
                    raise RuntimeError("take_batches found no current event")
                events.append(event)
                arrived.set()
                if len(buffer) >= max_:
                    buffer_full.set()
                    buffer_consumed.clear()
                    await self.wait(buffer_consumed)  # type: ignore[arg-type]  # as Faust's own
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.exception("Error adding to the batch buffer: %r", exc)
                await self.crash(exc)
            return value

        acks = self.enable_acks
        self.enable_acks = False  # acknowledged below, once the batch was decided
        self.add_processor(add_to_buffer)
        self._enable_passive(channel_it)  # type: ignore[arg-type]  # as Faust's own (cast there)
        try:
            while not self.should_stop:
                await self.wait_for_stopped(arrived)  # type: ignore[arg-type]
                await self.wait_for_stopped(buffer_full, timeout=within)  # type: ignore[arg-type]
                if not buffer:
                    continue
                consuming = self.loop.create_future()
                try:
                    yield list(events)
                finally:
                    buffer.clear()
                    for event in events:
                        await self.ack(event)
                    events.clear()
                    arrived.clear()
                    buffer_full.clear()
                    notify(consuming)
                    buffer_consumed.set()
        finally:
            self.enable_acks = acks
            self._processors.remove(add_to_buffer)
