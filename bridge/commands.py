"""Commands in: NATS requests and publishes on `scheduling.cmd.>` and portal requests onto the commands topic.

The bridge authenticates, validates and routes; it never decides. A request's
reply is sent by the projector once the decision is visible to queries
(read-your-writes). Refusals made here (bad token, malformed body) are
answered at once and recorded in the outbox for audit and the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from domain.commands import BridgePortalAppointment, DispatchReminder, parse_command
from domain.errors import DomainError, ErrorCode, validation_error
from domain.ids import resource_token
from domain.usecases import command_token
from scheduling.auth import Verifier, require
from scheduling.config import COMMAND_SUBJECT_PREFIX, COMMANDS_TOPIC, DECISIONS_TOPIC, PORTAL_SUBJECT, Settings
from scheduling.records import encode, envelope, refusal_record
from scheduling.routing import fan_out

log = logging.getLogger(__name__)
QUEUE_GROUP = "scheduling-bridge"
#: Commands reachable from outside; internal ones (reminder.sent) are not.
PUBLIC_COMMANDS = frozenset(
    {
        "appointment.book",
        "appointment.reschedule",
        "appointment.status",
        "appointment.cancel",
        "appointment.check-in",
        "schedule.create",
        "schedule.add-exception",
        "slot.create",
        "waitlist.add",
        "waitlist.fulfill",
        "reminder.dispatch",
    }
)


class CommandBridge:
    def __init__(self, settings: Settings, nc: NATS, producer: AIOKafkaProducer, verifier: Verifier) -> None:
        self._settings = settings
        self._nc = nc
        self._producer = producer
        self._verifier = verifier
        self._subscriptions: list[Any] = []

    async def start(self) -> None:
        self._subscriptions = [
            await self._nc.subscribe(f"{COMMAND_SUBJECT_PREFIX}>", queue=QUEUE_GROUP, cb=self._on_command),
            await self._nc.subscribe(PORTAL_SUBJECT, queue=QUEUE_GROUP, cb=self._on_portal),
        ]

    async def stop(self) -> None:
        for sub in self._subscriptions:
            await sub.unsubscribe()

    async def _on_command(self, msg: Msg) -> None:
        name = msg.subject.removeprefix(COMMAND_SUBJECT_PREFIX)
        headers = msg.headers or {}
        await self._submit(msg, name, headers.get("Nats-Msg-Id"), source="nats")

    async def _on_portal(self, msg: Msg) -> None:
        await self._submit(msg, BridgePortalAppointment.NAME, None, source="portal")

    async def _submit(self, msg: Msg, name: str, msg_id: str | None, *, source: str) -> None:
        headers = msg.headers or {}
        env: dict[str, Any] = envelope(
            command_type=name, body={}, claims={}, command_id=msg_id, reply_to=msg.reply or None, source=source
        )
        try:
            env["claims"] = self._verifier.claims(headers.get("Authorization"))
            body = _decode(msg.data)
            env["body"] = body
            if source == "nats" and name not in PUBLIC_COMMANDS:
                raise validation_error(
                    [{"field": "subject", "message": f"unknown command {name!r}"}], "unknown command"
                )
            command = parse_command(name, body)
            if isinstance(command, DispatchReminder):
                await self._dispatch_reminders(msg, env, command)
                return
            if isinstance(command, BridgePortalAppointment):
                # journaled apart from other commands' keys; the events name the portal's own request id
                env["commandId"] = f"portal:{command.request_id}"
                env["causationId"] = command.request_id
            elif not msg_id and command.command_id:
                env["commandId"] = command.command_id
            key = command_token(command, env["claims"]["tenant"]).encode()
        except DomainError as error:
            await self._refuse(msg, env, error)
            return
        except Exception as exc:  # a message must never kill the callback silently: answer and dead-letter it
            log.exception("command %s could not be read", env["commandId"])
            error = DomainError(
                ErrorCode.INTERNAL, "the command could not be processed", {"exception": type(exc).__name__}
            )
            await self._refuse(msg, env, error)
            return
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(COMMANDS_TOPIC, encode(env), key=key), self._settings.command_timeout
            )
        except Exception as exc:
            log.warning("command %s not handed to the stream: %r", env["commandId"], exc)
            await self._reply(
                msg,
                DomainError(
                    ErrorCode.UNAVAILABLE,
                    "the command was not handed to the stream in time; its outcome is unknown: repeat it with "
                    "the same idempotency key (details.commandId) to learn it",
                    {"commandId": env["commandId"]},
                ).as_reply(),
            )

    async def _dispatch_reminders(self, msg: Msg, env: dict[str, Any], command: DispatchReminder) -> None:
        """Fan a DispatchReminder out to every partition; reminders are sent asynchronously, as events say."""
        require(env["claims"], "scheduling:admin")
        body = {"now": command.now.isoformat()} if command.now else {}
        fanned = fan_out(self._settings.partitions, "reminder.dispatch", env["claims"], body, env["commandId"], "nats")
        try:
            for partition, sub_env in fanned:
                await asyncio.wait_for(
                    self._producer.send_and_wait(
                        COMMANDS_TOPIC, encode(sub_env), key=b"reminders", partition=partition
                    ),
                    self._settings.command_timeout,
                )
        except Exception as exc:
            log.warning("reminder dispatch not handed to the stream: %r", exc)
            error = DomainError(ErrorCode.UNAVAILABLE, "the dispatch could not be handed to the stream")
            await self._reply(msg, error.as_reply())
            return
        await self._reply(msg, {"ok": True, "data": {"partitions": len(fanned), "now": body.get("now")}})

    async def _refuse(self, msg: Msg, env: dict[str, Any], error: DomainError) -> None:
        await self._reply(msg, error.as_reply())
        record = {**refusal_record(env, error), "replyTo": None}
        tenant = env["claims"].get("tenant") or "unauthenticated"
        try:
            await self._producer.send_and_wait(
                DECISIONS_TOPIC, encode(record), key=resource_token(tenant, "*").encode()
            )
        except Exception as exc:  # the caller has its answer; only the audit copy is lost, and said so
            log.error("refusal of %s not recorded: %r", env["commandId"], exc)

    async def _reply(self, msg: Msg, reply: dict[str, Any]) -> None:
        if msg.reply:
            await self._nc.publish(msg.reply, encode(reply), headers={"Content-Type": "application/json"})


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data or b"null")
    except (UnicodeDecodeError, ValueError):
        raise validation_error([{"field": "body", "message": "malformed JSON"}], "malformed JSON") from None
