"""The resource actor: one command at a time per partition, decided against table state.

Order of writes for one command (DESIGN decision 4):
1. the journal entry (the whole decision record) is written and flushed;
2. entities and indexes are written to their tables;
3. the record goes to the decisions topic and its ack is awaited,
before the stream moves on (Faust commits the offset only after that).
A redelivered command finds its journal entry and re-applies it instead of
deciding again; a repeat with the same idempotency key is answered with the
first reply and changes and emits nothing more.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

from agents import reminders
from domain.commands import parse_command
from domain.decisions import Context, Decision
from domain.errors import DomainError, ErrorCode
from domain.ids import resource_token
from domain.usecases import decide
from scheduling import metrics
from scheduling.faust_app import app, commands_topic, decisions_topic, settings
from scheduling.journal import expired_keys
from scheduling.records import decision_record, decode, encode, refusal_record
from tables import journal
from tables.state import TableState, apply_changes

log = logging.getLogger(__name__)
_state = TableState()


def context_of(env: dict[str, Any]) -> Context:
    claims = env["claims"]
    return Context(
        tenant=claims["tenant"],
        command_id=env["commandId"],
        now=datetime.now(UTC),
        subject=claims.get("sub"),
        scopes=frozenset(str(claims.get("scope", "")).split()),
        patient_id=claims.get("patient_id"),
    )


async def _publish(key: bytes, record: dict[str, Any]) -> None:
    """The record to the outbox, then its follow-up commands to their resources' partitions, all acknowledged."""
    await app.producer.send_and_wait(decisions_topic.get_topic_name(), key, encode(record), None, None, None)
    for follow_up in record.get("followUps", []):
        await app.producer.send_and_wait(
            commands_topic.get_topic_name(), follow_up["key"].encode(), encode(follow_up["envelope"]), None, None, None
        )


async def handle(key: bytes, env: dict[str, Any], partition: int) -> dict[str, Any]:
    """Decide one command (or replay its recorded decision) and hand the record to the outbox."""
    if env.get("type") in PARTITION_WIDE:
        summary = await PARTITION_WIDE[env["type"]](env, partition)
        record = decision_record(env, Decision(data=summary))
        await _publish(key, record)
        return record
    ctx = context_of(env)
    prior = journal.get(journal_key(key, env))
    if prior is not None:
        record = prior
        if record["deliveryId"] == env["deliveryId"]:
            apply_changes(record["changes"], record["indexes"])
        else:
            record = {
                **record,
                "deliveryId": env["deliveryId"],
                "replyTo": env.get("replyTo"),
                "replayOf": record["deliveryId"],
                "changes": [],
                "indexes": [],
                "events": [],
                "followUps": [],
                "deadLetter": False,
            }
        await _publish(key, record)
        return record
    command = parse_command(env["type"], env["body"])
    started = time.perf_counter()
    decision = decide(command, _state, ctx)
    metrics.DECISION_SECONDS.labels(env["type"]).observe(time.perf_counter() - started)
    record = {**decision_record(env, decision), "routingKey": key.decode(errors="replace")}
    journal[journal_key(key, env)] = record
    await app.producer.flush()
    apply_changes(record["changes"], record["indexes"])
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
    return {"expired": len(expired)}


#: commands fanned out to every partition, done by each actor over what it owns
PARTITION_WIDE = {"reminder.dispatch": _dispatch_reminders, "journal.expire": _expire_journal}


def journal_key(key: bytes, env: dict[str, Any]) -> str:
    """Idempotency keys are scoped by tenant and resource: the journal of one partition is all an actor sees."""
    claims = env.get("claims") or {}
    return f"{claims.get('tenant')}:{key.decode(errors='replace')}:{env.get('commandId')}"


def _decided(key: bytes, env: dict[str, Any]) -> bool:
    return journal_key(key, env) in journal


@app.agent(commands_topic, concurrency=1)
async def resource_actor(stream: Any) -> Any:
    """Every exception is caught here: Faust would otherwise ack and skip the command silently."""
    async for event in stream.events():
        key: bytes = event.key or b""
        try:
            env = decode(event.value)
        except (ValueError, TypeError):
            log.error("undecodable command at %s:%s", event.message.partition, event.message.offset)
            metrics.COMMANDS.labels("unknown", ErrorCode.VALIDATION_FAILED.value).inc()
            continue
        try:
            record = await handle(key, env, event.message.partition)
        except DomainError as error:
            record = refusal_record(env, error)
            await _publish(key or resource_token(env["claims"].get("tenant", ""), "*").encode(), record)
        except Exception as exc:
            if _decided(key, env):
                # decided and journaled, but the outbox write failed: crash so the command is redelivered
                # and its recorded decision replayed, instead of answering an error for a done deed
                raise
            log.exception("command %s crashed the actor; dead-lettered", env.get("commandId"))
            error = DomainError(
                ErrorCode.INTERNAL, "the command could not be processed", {"exception": type(exc).__name__}
            )
            record = {**refusal_record(env, error), "trace": traceback.format_exc(limit=5)}
            await _publish(key, record)
        metrics.COMMANDS.labels(env.get("type", "unknown"), record["outcome"]).inc()
