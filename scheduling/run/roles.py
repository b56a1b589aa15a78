"""The long-running roles outside Faust: bridge (commands in + relay out) and projector."""

from __future__ import annotations

import asyncio
import logging
import signal

import nats
from aiohttp import web

from bridge.commands import CommandBridge
from bridge.nats_setup import ensure_streams
from bridge.relay import Relay
from scheduling.core.auth import Verifier
from scheduling.core.config import DECISIONS_TOPIC, INPUT_SUBJECTS, REGISTRATION_SUBJECTS, Settings
from scheduling.http import metrics_server
from scheduling.readmodel import db
from scheduling.readmodel.projector import Projector
from scheduling.streams import durable, kafka

log = logging.getLogger(__name__)


def _stopping() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


async def run_bridge(settings: Settings) -> None:
    stopping = _stopping()
    await kafka.ensure_topics(settings)
    nc = await nats.connect(settings.nats_url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    await ensure_streams(js, settings)
    producer = kafka.producer(settings)
    await producer.start()
    bridge = CommandBridge(settings, nc, producer, Verifier(settings))
    consumer = kafka.consumer(settings, "scheduling-relay", DECISIONS_TOPIC)
    await consumer.start()
    relay = Relay(js, producer)
    serving: web.AppRunner | None = None
    try:
        # the relay's dead letters and parked records are counted here: scraped here (SCHEDULING_METRICS_PORT)
        serving = await metrics_server.start(settings.metrics_port)
        await bridge.start()
        log.info("bridge ready")
        await kafka.run_consumer(consumer, relay.handle_batch, stopping, "relay")
    finally:
        await bridge.stop()
        await consumer.stop()
        await producer.stop()
        await nc.drain()
        await metrics_server.stop(serving)


async def run_projector(settings: Settings) -> None:
    stopping = _stopping()
    await kafka.ensure_topics(settings)
    await db.migrate(settings.database_url)
    pool = await db.pool(settings.database_url)
    nc = await nats.connect(settings.nats_url, max_reconnect_attempts=-1)
    consumer = kafka.consumer(settings, "scheduling-projector", DECISIONS_TOPIC)
    await consumer.start()
    producer = kafka.producer(settings)
    await producer.start()
    projector = Projector(pool, nc, Verifier(settings), producer)
    js = nc.jetstream()
    await durable.ensure_inputs_stream(js, INPUT_SUBJECTS, settings.duplicate_window)
    registrations = [
        asyncio.create_task(durable.consume(js, subject, projector.on_registration))
        for subject in REGISTRATION_SUBJECTS
    ]
    serving: web.AppRunner | None = None
    try:
        serving = await metrics_server.start(settings.metrics_port)
        log.info("projector ready")
        await kafka.run_consumer(consumer, projector.handle_batch, stopping, "projector")
    finally:
        for task in registrations:
            task.cancel()
        await asyncio.gather(*registrations, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
        await nc.drain()
        await pool.close()
        await metrics_server.stop(serving)
