"""`GET /docs` in headless Chromium: every route of `/openapi.json` is listed, and a booking made through
Swagger UI's Authorize + "Try it out" succeeds.

The browser is Debian's chromium (.ci/run installs it); Playwright only drives it, nothing is downloaded.
Set SCHEDULING_SCREENSHOT=docs/api-page.png to refresh the committed screenshot.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import unique
from support.client import Client

CHROMIUM = "/usr/bin/chromium"
#: without these, Chromium waits on the closed network (updates, sync, QUIC probes)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
WITHIN_MS = 30_000

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="no /usr/bin/chromium (apt-get install chromium; .ci/run does, and CI never skips this)",
)


async def _free_slot(service: Any) -> str:
    async with Client(service) as client:
        schedule = await client.ok(
            "schedule.create",
            {
                "actor": {"reference": unique("Practitioner/docs"), "type": "Practitioner"},
                "locationId": "docs-clinic",
                "serviceType": "gp",
                "planningHorizon": {"start": "2030-03-04T00:00:00Z", "end": "2030-03-05T00:00:00Z"},
            },
        )
        slot = await client.ok(
            "slot.create",
            {"scheduleId": schedule["id"], "start": "2030-03-04T09:00:00Z", "end": "2030-03-04T09:30:00Z"},
        )
        return str(slot["id"])


async def test_the_api_page_lists_every_route_and_books_through_try_it_out(service: Any) -> None:
    from playwright.async_api import async_playwright

    slot_id = await _free_slot(service)
    async with Client(service) as client:
        _, document, _ = await client.get("/openapi.json", headers={})
    documented = sorted((m.upper(), path) for path, item in document["paths"].items() for m in item)
    async with async_playwright() as playwright:
        # Playwright gives every launch a fresh, temporary --user-data-dir of its own
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=WITHIN_MS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WITHIN_MS)
            await page.goto(f"{service.http}/docs")
            await page.wait_for_selector(".opblock")
            listed = await page.eval_on_selector_all(
                ".opblock",
                "blocks => blocks.map(b => [b.querySelector('.opblock-summary-method').textContent,"
                " b.querySelector('.opblock-summary-path').getAttribute('data-path')])",
            )
            assert sorted(map(tuple, listed)) == documented
            if os.environ.get("SCHEDULING_SCREENSHOT"):
                await page.screenshot(path=os.environ["SCHEDULING_SCREENSHOT"])

            await page.click("button.authorize")
            await page.fill(".auth-container input", service.token())
            await page.click(".auth-btn-wrapper button.authorize")
            await page.click(".auth-btn-wrapper button.btn-done")

            book = page.locator(".opblock-post", has=page.locator('.opblock-summary-path[data-path="/appointments"]'))
            await book.locator(".opblock-summary").click()
            await book.locator("button.try-out__btn").click()
            await book.locator("textarea.body-param__text").fill(json.dumps({"slotId": slot_id, "patientId": "p-docs"}))
            await book.locator("button.execute").click()
            status = book.locator(".live-responses-table .response .response-col_status").first
            await status.wait_for()
            assert (await status.inner_text()).strip().startswith("201")
        finally:
            await browser.close()
    async with Client(service) as client:
        status_code, booked, _ = await client.get("/patients/p-docs/appointments")
    assert status_code == 200 and [(a["slotId"], a["status"]) for a in booked["data"]] == [(slot_id, "booked")]
