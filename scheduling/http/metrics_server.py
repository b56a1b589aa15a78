"""GET /metrics for the roles without the HTTP view (bridge, projector): the counters only they record
(dead letters, parked records, durable inputs) are scraped where they are counted."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start(port: int | None) -> web.AppRunner | None:
    """Serve this process's metrics on `port`; none (nothing started) when no port is set, or when the port
    cannot be bound: the role's own work (commands, events, the read model) matters more than its metrics, so
    that is logged as an error, not a reason to stop."""
    if not port:
        return None
    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "0.0.0.0", port).start()
    except OSError as exc:
        await runner.cleanup()
        log.error("metrics not served: port %s cannot be bound (%s); the role runs on without them", port, exc)
        return None
    except BaseException:
        await runner.cleanup()
        raise
    log.info("metrics on port %s", port)
    return runner


async def stop(runner: web.AppRunner | None) -> None:
    if runner is not None:
        await runner.cleanup()
