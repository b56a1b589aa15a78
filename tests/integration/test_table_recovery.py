"""Broker defect 1: ListOffsets(LATEST) under-reports the end of a changelog whose newest batch holds
several records, and Faust's recovery would stop there. With the guard every key survives a restart.

Run with SCHEDULING_RECOVERY_GUARD=off to see this test fail (docs/broker-guards.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from scheduling.run import stack
from scheduling.streams.broker_guards import true_end_offsets

APP = Path(__file__).resolve().parent.parent / "support" / "recovery_app.py"
KEYS = 3000
PER_MESSAGE = 100
PARTITIONS = 4


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    services = stack.Stack(data_dir=tmp_path_factory.mktemp("recovery"))
    try:
        yield services.start_kafka()
    finally:
        services.stop()


def _worker(broker: str, app_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BROKER_URL": broker,
        "RECOVERY_APP_ID": app_id,
        "SCHEDULING_PARTITIONS": str(PARTITIONS),
        "SCHEDULING_BROKER": "tansu",
    }
    return subprocess.Popen([sys.executable, str(APP)], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def _count(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, within: float) -> int:
    """Ask every partition's actor for the table size until one answers (the worker may still be starting)."""
    nonce = uuid.uuid4().hex
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for partition in range(PARTITIONS):
            await producer.send_and_wait(
                "recovery-in", json.dumps({"op": "count", "nonce": nonce}).encode(), partition=partition
            )
        batches = await consumer.getmany(timeout_ms=2000)
        for records in batches.values():
            for record in records:
                answer = json.loads(record.value)
                if answer["nonce"] == nonce:
                    return int(answer["count"])
    raise AssertionError(f"no count answer within {within}s")


async def _changelog_records(broker: str, topic: str) -> int:
    reported = {TopicPartition(topic, p): 0 for p in range(PARTITIONS)}
    probe = AIOKafkaConsumer(bootstrap_servers=broker)
    await probe.start()
    try:
        reported = await probe.end_offsets(list(reported))
    finally:
        await probe.stop()
    return sum((await true_end_offsets(broker, reported)).values())


@pytest.mark.slow
async def test_every_table_key_survives_a_restart(broker: str, tmp_path: Path) -> None:
    app_id = f"recovery-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=20, max_batch_size=256 * 1024)
    consumer = AIOKafkaConsumer(
        "recovery-out", bootstrap_servers=broker, auto_offset_reset="latest", fetch_max_wait_ms=100
    )
    worker = _worker(broker, app_id, log)
    await producer.start()
    await consumer.start()
    try:
        assert await _count(producer, consumer, within=90) == 0
        for start in range(0, KEYS, PER_MESSAGE):
            keys = [f"k{i}" for i in range(start, start + PER_MESSAGE)]
            message = json.dumps({"op": "put", "keys": keys, "value": start}).encode()
            await producer.send_and_wait("recovery-in", message, key=keys[0].encode())
        # a count is answered by the first partition that reads it, maybe before another partition's puts
        deadline = time.monotonic() + 60
        while (counted := await _count(producer, consumer, within=60)) < KEYS:
            assert time.monotonic() < deadline, f"only {counted} of {KEYS} keys written in time"
        assert counted == KEYS
        changelog = f"{app_id}-kept-changelog"
        deadline = time.monotonic() + 60
        while await _changelog_records(broker, changelog) < KEYS:  # every write acknowledged by the broker
            assert time.monotonic() < deadline, "changelog writes not acknowledged in time"
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)

        worker = _worker(broker, app_id, log)
        restored = await _count(producer, consumer, within=120)
        assert restored == KEYS, f"table recovery restored {restored} of {KEYS} keys (see {log})"
    finally:
        worker.kill()
        worker.wait(30)
        await consumer.stop()
        await producer.stop()
