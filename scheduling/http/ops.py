"""`GET /ops/partitions`: the `scheduling status` report as JSON, for admin tokens only.

It names the workers and the load per resource, so it is operator data: a patient token or a token
without `scheduling:admin` gets FORBIDDEN, like reminder dispatch.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from nats.aio.client import Client as NATS

from domain.errors import DomainError, ErrorCode
from domain.policy import ADMIN, require_scope
from scheduling.core.auth import Verifier
from scheduling.core.config import Settings
from scheduling.streams import groups, presence

log = logging.getLogger(__name__)
#: the report reads a few hundred records and a handful of offsets; past this the broker is in trouble
WITHIN_SECONDS = 15.0


def partitions_route(
    settings: Settings, nc: NATS, verifier: Verifier
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def partitions(request: web.Request) -> web.Response:
        access = verifier.claims(request.headers.get("Authorization")).access
        if access.is_patient:
            raise DomainError(ErrorCode.FORBIDDEN, "operations data is not for patient tokens")
        require_scope(access, ADMIN)
        try:
            workers = await presence.read(nc.jetstream())
            state = await asyncio.wait_for(groups.report(settings, workers), WITHIN_SECONDS)
        except Exception as exc:
            log.warning("partition report failed: %r", exc)
            raise DomainError(ErrorCode.UNAVAILABLE, "the broker did not answer the partition report") from None
        return web.Response(text=json.dumps(state), content_type="application/json")

    return partitions
