"""The worker role: the Faust app (agents + tables) and, in the same process, the HTTP view.

This is the bootstrap of the worker: settings are read, the app, tables and agents are made and
the adapters connected here, and nowhere at import.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import asyncpg
import faust
from aiohttp import web
from nats.aio.client import Client as NATS

import agents
import tables
from scheduling.core.config import Settings
from scheduling.http import view
from scheduling.run.ports import Adapters
from scheduling.streams import kafka
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

    streams.app.task(serve_http)
    return streams


def run(settings: Settings) -> None:
    asyncio.run(kafka.ensure_topics(settings))
    streams = build(settings)
    faust.Worker(streams.app, loglevel="INFO", override_logging=False).execute_from_commandline()
