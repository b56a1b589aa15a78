"""The worker role: the Faust app (agents + tables) and, in the same process, the HTTP view.

This is the bootstrap of the worker: settings are read, the app, tables and agents are made and
the adapters connected here, and nowhere at import.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any, cast

import asyncpg
import faust
from aiohttp import web
from nats.aio.client import Client as NATS

import agents
import tables
from scheduling.core.config import COMMANDS_TOPIC, Settings
from scheduling.http import view
from scheduling.run.ports import Adapters
from scheduling.streams import kafka, presence
from scheduling.streams.app import Streams, create_app

log = logging.getLogger(__name__)


async def _ready_checks(app: faust.App, pool: asyncpg.Pool, nc: NATS) -> dict[str, bool]:
    recovery = cast(Any, app.tables).recovery  # the table manager's recovery service, untyped in faust
    checks = {"tables": recovery.completed.is_set() and not app.rebalancing}
    try:
        async with pool.acquire() as conn:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), 2)
        checks["database"] = True
    except Exception:
        checks["database"] = False
    checks["nats"] = bool(nc.is_connected)
    checks["kafka"] = app.producer is not None and app.consumer is not None and not app.consumer.should_stop
    return checks


def worker_view(app: faust.App) -> dict[str, Any]:
    """What this worker holds and how far its tables are, for `scheduling status` (streams/presence.py)."""
    recovery = cast(Any, app.tables).recovery
    thread = getattr(app.consumer, "_thread", None)  # faust keeps the aiokafka consumer (and member id) private
    coordinator = getattr(getattr(thread, "_consumer", None), "_coordinator", None)
    return {
        "memberId": getattr(coordinator, "member_id", None),
        "partitions": sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == COMMANDS_TOPIC),
        "tablesRecovered": recovery.completed.is_set() and not app.rebalancing,
        "recoveryRemaining": recovery.active_remaining_total(),
    }


async def tell_presence(app: faust.App, nc: NATS, port: int) -> None:
    """Keep this worker's entry in the presence bucket fresh while it runs."""
    name = f"{socket.gethostname()}-{os.getpid()}"
    kv = None  # the bucket, looked up (or created) once, and again after a failure
    while True:
        try:
            kv = kv or await presence.bucket(nc.jetstream())
            await presence.publish(kv, name, {**worker_view(app), "httpPort": port})
        except Exception as exc:  # NATS away: the entry expires and status shows the owner as unknown
            log.warning("worker presence not published: %r", exc)
            kv = None
        await asyncio.sleep(presence.REFRESH_SECONDS)


def build(settings: Settings) -> Streams:
    """The worker's app with its tables, agents, timers and the HTTP view task."""
    streams = create_app(settings)
    adapters = Adapters()
    agents.register(streams, tables.declare(streams), adapters.reminder_ports)

    async def serve_http() -> None:
        """Start the HTTP view beside the agents; it answers queries while the actors decide."""
        connected = await adapters.connect(settings.nats_url, settings.database_url)
        pool, nc = connected.pool, connected.nc
        http_view = view.build(settings, pool, nc, lambda: _ready_checks(streams.app, pool, nc))
        runner = web.AppRunner(http_view, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", settings.http_port).start()
        log.info("http view on port %s", settings.http_port)
        await tell_presence(streams.app, nc, settings.http_port)

    streams.app.task(serve_http)
    return streams


def run(settings: Settings) -> None:
    asyncio.run(kafka.ensure_topics(settings))
    streams = build(settings)
    faust.Worker(streams.app, loglevel="INFO", override_logging=False).execute_from_commandline()
