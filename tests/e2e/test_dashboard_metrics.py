"""Every metric the dashboard and the alert rules query is on the live /metrics of `scheduling dev`."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from support.dashboards import exposed_names, used_metrics


async def test_every_metric_of_the_dashboard_and_alerts_is_exposed(service: Any) -> None:
    async with aiohttp.ClientSession(service.http) as http, http.get("/metrics") as response:
        assert response.status == 200
        text = await response.text()
    exposed = exposed_names(text_string_to_metric_families(text))
    used = used_metrics()
    assert used and not used - exposed, f"not on /metrics: {sorted(used - exposed)}"
