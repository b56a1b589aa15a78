"""`scheduling dev` given KAFKA_BROKER_URL, NATS_URL and DATABASE_URL uses them and starts none of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Service, _read_ready, unique
from support.client import Client, schedule_body

from scheduling.run import stack


@pytest.fixture
def external_and_dev(tmp_path: Path) -> Iterator[tuple[stack.Stack, subprocess.Popen[str], Service]]:
    external = stack.start(Path(tempfile.mkdtemp(prefix="scheduling-external-")))
    data_dir = tmp_path / "dev"
    env: dict[str, Any] = {
        **os.environ,
        "KAFKA_BROKER_URL": external.kafka,
        "NATS_URL": external.nats,
        "DATABASE_URL": external.postgres,
        "SCHEDULING_JWT_SECRET": SECRET,
    }
    env.pop("SCHEDULING_HTTP_PORT", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "scheduling", "dev", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        ready = _read_ready(process, 120)
        yield (
            external,
            process,
            Service(ready["http"], ready["nats"], ready["kafka"], ready["postgres"], data_dir, process.pid),
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        external.stop()


async def test_dev_uses_the_services_it_is_given_and_leaves_them_running(
    external_and_dev: tuple[stack.Stack, subprocess.Popen[str], Service],
) -> None:
    external, process, service = external_and_dev
    assert (service.kafka, service.nats, service.postgres) == (external.kafka, external.nats, external.postgres)
    started_here = [n for n in ("tansu.log", "nats.log", "postgres.log", "pgdata") if (service.data_dir / n).exists()]
    assert started_here == []
    async with Client(service) as client:
        body = schedule_body(unique("Practitioner/x"), "2027-09-01T00:00:00Z", "2027-09-02T00:00:00Z")
        schedule = await client.ok("schedule.create", body)
        status, body, _ = await client.get(f"/schedules/{schedule['id']}")
        assert status == 200 and body["data"]["id"] == schedule["id"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert all(s.process.poll() is None for s in external.services), "dev stopped services it did not start"
