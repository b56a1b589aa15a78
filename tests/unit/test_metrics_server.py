"""The bridge's and projector's metrics server (scheduling/http/metrics_server.py): off without a port, serving
Prometheus text with one, and never a reason for the role to stop when its port is taken."""

from __future__ import annotations

import socket

import aiohttp

from scheduling.core import metrics
from scheduling.http import metrics_server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_no_port_no_server() -> None:
    assert await metrics_server.start(None) is None
    assert await metrics_server.start(0) is None


async def test_it_serves_this_process_metrics() -> None:
    port = _free_port()
    runner = await metrics_server.start(port)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert f"{metrics.PARKED._name}_total" in await response.text()
    finally:
        await metrics_server.stop(runner)


async def test_a_taken_port_is_logged_and_the_role_runs_on() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        assert await metrics_server.start(taken.getsockname()[1]) is None
