"""The worker role: the Faust app (agents + tables) and, in the same process, the HTTP view."""

from __future__ import annotations

import asyncio
import logging

import faust
from aiohttp import web

import agents  # noqa: F401  (registers the agents on the app)
from scheduling import http, kafka, ports
from scheduling.faust_app import app, settings

log = logging.getLogger(__name__)


async def _ready_checks(pool: object, nc: object) -> dict[str, bool]:
    checks = {"tables": app.tables.recovery.completed.is_set() and not app.rebalancing}
    try:
        async with pool.acquire() as conn:  # type: ignore[attr-defined]
            await asyncio.wait_for(conn.fetchval("SELECT 1"), 2)
        checks["database"] = True
    except Exception:
        checks["database"] = False
    checks["nats"] = bool(getattr(nc, "is_connected", False))
    checks["kafka"] = app.producer is not None and app.consumer is not None and not app.consumer.should_stop
    return checks


@app.task
async def serve_http() -> None:
    """Start the HTTP view beside the agents; it answers queries while the actors decide."""
    connected = await ports.connect(settings.nats_url, settings.database_url)
    pool, nc = connected.pool, connected.nc
    view = http.build(settings, pool, nc, lambda: _ready_checks(pool, nc))
    runner = web.AppRunner(view, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.http_port).start()
    log.info("http view on port %s", settings.http_port)


def run() -> None:
    asyncio.run(kafka.ensure_topics(settings))
    faust.Worker(app, loglevel="INFO", override_logging=False).execute_from_commandline()
