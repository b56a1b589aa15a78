"""A test client speaking the external contract: NATS requests, JetStream events, HTTP queries."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy


class Client:
    def __init__(self, service: Any) -> None:
        self.service = service
        self.nc: Any = None
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        self.nc = await nats.connect(self.service.nats)
        self.js = self.nc.jetstream()
        self.http = aiohttp.ClientSession(self.service.http)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.http is not None
        await self.http.close()
        await self.nc.close()

    async def command(
        self, name: str, body: Any, *, headers: dict[str, str] | None = None, tenant: str = "t1", **claims: Any
    ) -> dict[str, Any]:
        h = {**self.service.auth(tenant, **claims), **(headers or {})}
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        msg = await self.nc.request(f"scheduling.cmd.{name}", raw, timeout=15, headers=h)
        reply: dict[str, Any] = json.loads(msg.data)
        return reply

    async def publish(
        self, name: str, body: Any, *, headers: dict[str, str] | None = None, tenant: str = "t1", **claims: Any
    ) -> None:
        """Fire-and-forget: a plain publish on the command's subject, without a reply inbox."""
        h = {**self.service.auth(tenant, **claims), **(headers or {})}
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.nc.publish(f"scheduling.cmd.{name}", raw, headers=h)
        await self.nc.flush()

    async def ok(self, name: str, body: Any, **kwargs: Any) -> dict[str, Any]:
        reply = await self.command(name, body, **kwargs)
        assert reply["ok"], reply
        data: dict[str, Any] = reply["data"]
        return data

    async def serving(self) -> bool:
        """Whether the HTTP view answers (it runs in the worker: a restarted worker serves it again once up)."""
        assert self.http is not None
        try:
            async with self.http.get("/healthz") as response:
                return response.status < 500
        except aiohttp.ClientConnectionError:
            return False

    async def get(self, path: str, *, headers: dict[str, str] | None = None, **params: str) -> tuple[int, Any, Any]:
        assert self.http is not None
        h = headers if headers is not None else self.service.auth()
        async with self.http.get(path, headers=h, params=params) as response:
            return response.status, await response.json(), response.headers

    async def post(self, path: str, body: Any, *, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        assert self.http is not None
        h = headers if headers is not None else self.service.auth()
        async with self.http.post(path, json=body, headers=h) as response:
            return response.status, await response.json(), response.headers

    async def events(
        self,
        subject: str,
        until: Callable[[list[dict[str, Any]]], bool],
        *,
        stream: str = "SCHEDULING_EVENTS",
        within: float = 15,
    ) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """Read `stream` from its start on `subject` until `until(datas)` holds, or fail at the deadline."""
        sub = await self.js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        seen: list[tuple[dict[str, Any], dict[str, str]]] = []
        deadline = time.monotonic() + within
        try:
            while not until([e for e, _ in seen]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"condition not met on {subject} in {within}s; saw {len(seen)} messages")
                try:
                    msg = await sub.next_msg(timeout=min(remaining, 1.0))
                except nats.errors.TimeoutError:
                    continue
                seen.append((json.loads(msg.data), dict(msg.headers or {})))
        finally:
            await sub.unsubscribe()
        return seen

    async def stored(self, subject: str, *, stream: str = "SCHEDULING_EVENTS") -> list[dict[str, Any]]:
        """Every message stored on `subject` right now (the stream's own count says how many to read)."""
        info = await self.js.stream_info(stream, subjects_filter=subject)
        count = sum((info.state.subjects or {}).values())
        seen = await self.events(subject, lambda es: len(es) >= count, stream=stream)
        return [e for e, _ in seen]


async def eventually(check: Callable[[], Any], *, within: float = 15, interval: float = 0.05) -> Any:
    """Poll a condition (sync or async) until it returns a truthy value, or fail at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {within}s (last value {value!r})")
        await asyncio.sleep(interval)


def schedule_body(
    actor: str,
    start: str,
    end: str,
    *,
    days: tuple[str, ...] = (),
    window: tuple[str, str] = ("09:00", "10:00"),
    slot_minutes: int = 15,
    location: str = "loc",
    service: str = "gp",
) -> dict[str, Any]:
    """A CreateSchedule body for a Practitioner; with `days`, a weekly UTC pattern opens slots."""
    body: dict[str, Any] = {
        "actor": {"reference": actor, "type": "Practitioner"},
        "locationId": location,
        "serviceType": service,
        "planningHorizon": {"start": start, "end": end},
    }
    if days:
        body["availabilityPattern"] = {
            "windows": [{"daysOfWeek": list(days), "startTime": window[0], "endTime": window[1]}],
            "slotMinutes": slot_minutes,
            "timezone": "UTC",
        }
    return body
