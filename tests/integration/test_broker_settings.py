"""The guards for the embedded broker's defects are wired in (docs/broker-guards.md, defects 2, 4, 5, standbys).

Each test fails if its guard is taken out; defect 1 has its own restart test (test_table_recovery.py).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from scheduling.core.config import Settings
from scheduling.streams import kafka
from scheduling.streams.app import create_app, faust_settings
from scheduling.streams.broker_guards import FETCH_WAIT_MS


async def test_the_worker_consumer_waits_briefly_and_keeps_short_group_timings() -> None:
    app = create_app(replace(Settings(), broker_flavour="tansu")).app
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    assert consumer._fetch_max_wait_ms == FETCH_WAIT_MS == 50  # defect 5: Faust hard-codes 1500 ms
    assert consumer._session_timeout_ms == 3000 and consumer._heartbeat_interval_ms == 500  # defect 4


def test_the_recovery_end_offsets_are_corrected() -> None:
    create_app(replace(Settings(), broker_flavour="tansu"))
    assert (
        faust_aiokafka.AIOKafkaConsumerThread._highwaters.__module__ == "scheduling.streams.broker_guards"
    )  # defect 1


@pytest.mark.parametrize("flavour", ["tansu", "kafka"])
def test_no_transactions_anywhere(flavour: str) -> None:
    settings = replace(Settings(), broker_flavour=flavour)
    assert faust_settings(settings)["processing_guarantee"] == "at_least_once"  # defect 2


async def test_plain_producers_ask_for_no_idempotence() -> None:
    producer = kafka.producer(Settings())
    assert producer._txn_manager is None  # defect 2: idempotence needs InitProducerId, which is rejected


def test_standby_replicas_are_off_on_the_embedded_broker_even_if_asked() -> None:
    settings = replace(Settings(), broker_flavour="tansu", standby_replicas=1)
    assert faust_settings(settings)["table_standby_replicas"] == 0
    assert faust_settings(replace(settings, broker_flavour="kafka"))["table_standby_replicas"] == 1
