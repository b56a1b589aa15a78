"""`scheduling dev`'s progress message while start-up takes long (scheduling/run/cli.py: waiting_for)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

import pytest

from scheduling.run import cli, status


def _not_ready(checks: dict[str, bool]) -> urllib.error.HTTPError:
    body = json.dumps({"ok": False, "checks": checks, "stalled": []}).encode()
    return urllib.error.HTTPError(
        "http://127.0.0.1:8080/readyz", 503, "Service Unavailable", Message(), io.BytesIO(body)
    )


def _workers(views: list[dict[str, Any]], asked: list[str]) -> Any:
    async def workers(nats_url: str) -> list[dict[str, Any]]:
        asked.append(nats_url)
        return views

    return workers


def test_it_names_the_failing_checks_and_the_changelog_records_left(monkeypatch: pytest.MonkeyPatch) -> None:
    def urlopen(url: str, timeout: float) -> Any:
        assert url == "http://127.0.0.1:8080/readyz"
        raise _not_ready({"tables": False, "database": True, "nats": True, "kafka": True, "progress": False})

    asked: list[str] = []
    views = [
        {"worker": "w1", "memberId": "m1", "tablesRecovered": False, "recoveryRemaining": 1200},
        {"worker": "w2", "memberId": "m2", "tablesRecovered": True, "recoveryRemaining": 0},
    ]
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(status, "workers", _workers(views, asked))
    message = cli.waiting_for(8080, "nats://127.0.0.1:4222")
    assert message == "tables, progress; table recovery: 1200 changelog records left"
    assert asked == ["nats://127.0.0.1:4222"]


def test_records_left_are_summed_over_the_recovering_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    def urlopen(url: str, timeout: float) -> Any:
        raise _not_ready({"tables": False, "database": True})

    views: list[dict[str, Any]] = [
        {"tablesRecovered": False, "recoveryRemaining": 7},
        {"tablesRecovered": False, "recoveryRemaining": None},
    ]
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(status, "workers", _workers(views, []))
    assert cli.waiting_for(8080, "nats://x") == "tables; table recovery: 7 changelog records left"


def test_with_every_check_passing_it_waits_for_the_first_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    def urlopen(url: str, timeout: float) -> Any:
        return io.BytesIO(json.dumps({"ok": True, "checks": {"tables": True, "kafka": True}}).encode())

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(status, "workers", _workers([{"tablesRecovered": True}], []))
    assert cli.waiting_for(8080, "nats://x") == "the first command's round trip"


@pytest.mark.parametrize(
    "failure",
    [urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), TimeoutError("timed out")],
    ids=["refused", "timeout"],
)
def test_without_the_http_view_it_says_so(monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    def urlopen(url: str, timeout: float) -> Any:
        raise failure

    asked: list[str] = []
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(status, "workers", _workers([{"tablesRecovered": False, "recoveryRemaining": 5}], asked))
    assert cli.waiting_for(8080, "nats://x") == "the worker's HTTP view is not up yet"
    assert asked == []  # NATS is not asked when the worker is not even serving
