"""Fixtures that start real services: the embedded Kafka-protocol broker, NATS JetStream, PostgreSQL.

`service` runs `scheduling dev` exactly as a user would, on free ports under a
temporary folder, and tears it down (and checks nothing is left running).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import psutil
import pytest
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
SECRET = "test-secret-that-is-long-enough-for-hs256"
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


@dataclass
class Service:
    http: str
    nats: str
    kafka: str
    postgres: str
    data_dir: Path
    pid: int

    def role(self, name: str) -> psutil.Process:
        """The running process of one role (`worker`, `bridge`, `projector`) under `scheduling dev`."""
        for child in psutil.Process(self.pid).children(recursive=True):
            try:
                if child.cmdline()[-2:] == ["scheduling", name]:
                    return child
            except psutil.Error:  # a dependency a test stopped, not yet reaped
                continue
        raise LookupError(f"no running {name}")

    def replaced(self, name: str, pid: int) -> bool:
        """Whether a role's process `pid` has been followed by a new one (false while none runs yet)."""
        try:
            return self.role(name).pid != pid
        except LookupError:  # killed, and the supervisor has not started the next one yet
            return False

    def token(self, tenant: str = "t1", scope: str = "scheduling:read scheduling:write", **claims: Any) -> str:
        return jwt.encode({"tenant": tenant, "sub": "tester", "scope": scope, **claims}, SECRET, algorithm="HS256")

    def auth(
        self, tenant: str = "t1", scope: str = "scheduling:read scheduling:write", **claims: Any
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, scope, **claims)}"}


def _read_ready(process: subprocess.Popen[str], timeout: float) -> dict[str, str]:
    """Wait for the `ready` line; a reader thread keeps the wait bounded even if the child prints nothing."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("scheduling dev printed no ready line in time")
        try:
            line = lines.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            if process.poll() is not None:
                raise RuntimeError(f"scheduling dev exited with {process.returncode}") from None
            continue
        if line.startswith("ready "):
            return dict(part.split("=", 1) for part in line.split()[1:])


@contextmanager
def running_dev(**extra_env: str) -> Iterator[Service]:
    """`scheduling dev` as a user runs it, on free ports under a fresh folder; stopped (and checked) after."""
    # not under pytest's temp folder: a later pytest run makes that 0700, and PostgreSQL runs as its own user
    data_dir = Path(tempfile.mkdtemp(prefix="scheduling-test-"))
    env = {**os.environ, "SCHEDULING_JWT_SECRET": SECRET, "SCHEDULING_PARTITIONS": "4", **extra_env}
    for name in ("KAFKA_BROKER_URL", "NATS_URL", "DATABASE_URL", "SCHEDULING_HTTP_PORT"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "scheduling", "dev", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=open(data_dir / "dev.log", "w"),  # noqa: SIM115
        text=True,
        env=env,
    )
    try:
        ready = _read_ready(process, 120)
        yield Service(ready["http"], ready["nats"], ready["kafka"], ready["postgres"], data_dir, process.pid)
    finally:
        children = psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        _, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, f"processes left running after scheduling dev stopped: {alive}"


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    with running_dev() as started:
        yield started


@pytest.fixture
async def producer(service: Service) -> AsyncIterator[AIOKafkaProducer]:
    """A Kafka producer on the session's broker, for records written straight onto the service's topics."""
    kafka = AIOKafkaProducer(bootstrap_servers=service.kafka, acks="all")
    await kafka.start()
    yield kafka
    await kafka.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
