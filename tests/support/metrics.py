"""Reading a role's live /metrics (Prometheus text) in e2e tests."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession(url) as http, http.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def value(url: str, name: str, **labels: str) -> float:
    """The sum of a series' samples with these labels on one /metrics (0 while none; 0 while unreachable, as
    between a role's restart and its metrics server listening again)."""
    try:
        text = await scrape(url)
    except aiohttp.ClientConnectionError:
        return 0.0
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )
