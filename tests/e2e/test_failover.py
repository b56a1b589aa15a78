"""A worker killed in the middle of a booking burst: no booking lost, none doubled, every reply honoured.

Clients retry a command whose reply timed out with the same idempotency key, as the contract invites.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from support.bursts import interrupted_burst
from support.client import Client


@pytest.mark.slow
async def test_killing_the_worker_mid_burst_loses_and_doubles_nothing(service: Any) -> None:
    async def kill() -> None:
        service.role("worker").send_signal(signal.SIGKILL)

    async with Client(service) as client:
        await interrupted_burst(client, service, kill)
