"""The resource actor: one command at a time per partition, decided against table state.

Order of writes for one command (DESIGN decision 4):
1. the journal entry (the whole decision record) is written and acknowledged;
2. entities and indexes are written to their tables and acknowledged;
3. the record goes to the decisions topic, then its follow-up commands to the commands
   topic, each acknowledged by the broker,
before the stream moves on (Faust commits the offset only after that). Once step 1 is
done, steps 1-3 are retried until they succeed: an exception escaping the agent would
make Faust ack and skip the command (faust-streaming #315), leaving a decision nobody
hears of. A redelivered command finds its journal entry and re-applies it instead of
deciding again; a repeat with the same idempotency key is answered with the first reply
and changes and emits nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from agents import cursor, reminders
from domain.commands import parse_command
from domain.decisions import Context, Decision
from domain.errors import DomainError, ErrorCode
from domain.usecases import decide
from scheduling import metrics
from scheduling.faust_app import app, commands_topic, decisions_topic, settings
from scheduling.journal import expired_keys
from scheduling.records import decision_record, decode, encode, refusal_record
from tables import journal
from tables.durable import written
from tables.state import TableState, apply_changes

log = logging.getLogger(__name__)
_state = TableState()
BACKOFF_MAX = 5.0


def context_of(key: bytes, env: dict[str, Any]) -> Context:
    claims = env["claims"]
    return Context(
        tenant=claims["tenant"],
        # ids and event ids derive from this: the same key on two resources is two commands
        command_id=f"{key.decode(errors='replace')}:{env['commandId']}",
        now=datetime.now(UTC),
        subject=claims.get("sub"),
        scopes=frozenset(str(claims.get("scope", "")).split()),
        patient_id=claims.get("patient_id"),
    )


def journal_key(key: bytes, env: dict[str, Any]) -> str:
    """Idempotency keys are scoped by tenant, caller and resource: a repeat is the same caller's."""
    claims = env.get("claims") or {}
    return "\x1f".join(
        (str(claims.get("tenant")), str(claims.get("sub")), key.decode(errors="replace"), str(env.get("commandId")))
    )


async def until_done(step: Callable[[], Awaitable[None]], what: str) -> None:
    """Retry a step that must happen (the decision is already journaled) with capped backoff."""
    pause = 0.1
    while True:
        try:
            await step()
            return
        except Exception:
            log.exception("%s failed; retrying in %.1fs", what, pause)
            metrics.OUTBOX_RETRIES.inc()
            await asyncio.sleep(pause)
            pause = min(pause * 2, BACKOFF_MAX)


async def _publish(key: bytes, record: dict[str, Any]) -> None:
    """The record to the outbox, then its follow-up commands to their resources' partitions, all acknowledged."""

    async def send() -> None:
        await app.producer.send_and_wait(decisions_topic.get_topic_name(), key, encode(record), None, None, None)
        for follow_up in record.get("followUps", []):
            await app.producer.send_and_wait(
                commands_topic.get_topic_name(),
                follow_up["key"].encode(),
                encode(follow_up["envelope"]),
                None,
                None,
                None,
            )

    await until_done(send, f"outbox write of {record.get('commandId')}")


def _replay(prior: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    if prior["deliveryId"] == env["deliveryId"]:  # the same message again: finish what it started
        apply_changes(prior["changes"], prior["indexes"])
        return prior
    return {  # a repeat: the first reply, nothing more
        **prior,
        "deliveryId": env["deliveryId"],
        "replyTo": env.get("replyTo"),
        "replayOf": prior["deliveryId"],
        "changes": [],
        "indexes": [],
        "events": [],
        "followUps": [],
        "deadLetter": False,
    }


async def handle(key: bytes, env: dict[str, Any], partition: int) -> dict[str, Any]:
    """Decide one command (or replay its recorded decision) and hand the record to the outbox."""
    if env.get("type") in PARTITION_WIDE:
        summary = await PARTITION_WIDE[env["type"]](env, partition)
        record = decision_record(env, Decision(data=summary))
        await _publish(key, record)
        return record
    journaled_as = journal_key(key, env)
    prior = journal.get(journaled_as)
    if prior is not None:
        record = _replay(prior, env)
        await written()
        await _publish(key, record)
        return record
    command = parse_command(env["type"], env["body"])
    started = time.perf_counter()
    decision = decide(command, _state, context_of(key, env))
    metrics.DECISION_SECONDS.labels(env["type"]).observe(time.perf_counter() - started)
    record = {**decision_record(env, decision), "routingKey": key.decode(errors="replace")}
    journal[journaled_as] = record
    await written()
    apply_changes(record["changes"], record["indexes"])
    await written()
    await _publish(key, record)
    return record


async def _dispatch_reminders(env: dict[str, Any], partition: int) -> dict[str, Any]:
    return await reminders.dispatch(env, partition, lambda key, internal: handle(key, internal, partition))


async def _expire_journal(env: dict[str, Any], partition: int) -> dict[str, Any]:
    """Forget idempotency keys older than the configured TTL, on this partition only (its changelog)."""
    cutoff = datetime.now(UTC) - timedelta(hours=settings.idempotency_ttl_hours)
    expired = expired_keys(list(journal.items()), partition, settings.partitions, cutoff)
    for k in expired:
        del journal[k]
    await written()
    return {"expired": len(expired)}


#: commands fanned out to every partition, done by each actor over what it owns
PARTITION_WIDE = {"reminder.dispatch": _dispatch_reminders, "journal.expire": _expire_journal}


async def decide_one(key: bytes, raw: bytes | None, partition: int, offset: int) -> None:
    """Decide one command message; whatever happens, it is answered and the cursor moves past it."""
    try:
        env = decode(raw or b"")
        assert isinstance(env, dict) and isinstance(env.get("claims"), dict)
    except (ValueError, TypeError, AssertionError):
        log.error("undecodable command at %s:%s", partition, offset)
        metrics.COMMANDS.labels("unknown", ErrorCode.VALIDATION_FAILED.value).inc()
        cursor.advance(partition, offset)
        await written()
        return
    try:
        record = await handle(key, env, partition)
    except DomainError as error:
        record = refusal_record(env, error)
        await _publish(key, record)
    except Exception as exc:  # raised before anything was journaled: nothing was decided
        log.exception("command %s crashed the actor; dead-lettered", env.get("commandId"))
        details = {"exception": type(exc).__name__}
        error = DomainError(ErrorCode.INTERNAL, "the command could not be processed", details)
        record = {**refusal_record(env, error), "trace": traceback.format_exc(limit=5)}
        await _publish(key, record)
    cursor.advance(partition, offset)
    await written()
    metrics.COMMANDS.labels(env.get("type", "unknown"), record["outcome"]).inc()


async def _decide_missed(partition: int, stop: int) -> None:
    """Decide the commands the stream skipped before `stop`; a retry resumes where the cursor got to."""
    async for missed in cursor.missed(partition, cursor.expected(partition), stop):
        await decide_one(missed.key or b"", missed.value, partition, missed.offset)


@app.agent(commands_topic, concurrency=1)
async def resource_actor(stream: Any) -> Any:
    """No exception escapes (Faust would ack and skip the command, #315/#527), and no gap is left behind."""
    async for event in stream.events():
        partition, offset = event.message.partition, event.message.offset
        if offset > cursor.expected(partition):
            await until_done(
                partial(_decide_missed, partition, offset), f"reading back skipped commands of {partition}"
            )
        await decide_one(event.key or b"", event.value, partition, offset)
