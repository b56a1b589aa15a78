"""Commands in: NATS requests and publishes on `scheduling.cmd.>` and portal requests (read through a JetStream
durable consumer) onto the commands topic.

The bridge authenticates, validates and routes; it never decides. A request's
reply is sent by the projector once the decision is visible to queries
(read-your-writes). Refusals made here (bad token, malformed body) are
answered at once and recorded in the outbox for audit and the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from domain.commands import BridgePortalAppointment, PartitionWide, parse_command
from domain.errors import DomainError, ErrorCode, validation_error
from domain.ids import resource_token
from domain.limits import FORBIDDEN_IN_NAMES, load_json, text_problem
from domain.policy import authorize_command
from domain.usecases import command_token
from scheduling.core.auth import Verifier
from scheduling.core.catalog import PUBLIC_NAMES
from scheduling.core.config import COMMAND_SUBJECT_PREFIX, COMMANDS_TOPIC, DECISIONS_TOPIC, PORTAL_SUBJECT, Settings
from scheduling.core.routing import fan_out
from scheduling.core.wire import Claims, CommandEnvelope, DecisionRecord
from scheduling.streams import durable

log = logging.getLogger(__name__)
QUEUE_GROUP = "scheduling-bridge"
#: an idempotency key (`Nats-Msg-Id`) longer than this is refused, as `commandId` is
MAX_KEY_LENGTH = 128


class CommandBridge:
    def __init__(self, settings: Settings, nc: NATS, producer: AIOKafkaProducer, verifier: Verifier) -> None:
        self._settings = settings
        self._nc = nc
        self._producer = producer
        self._verifier = verifier
        self._subscriptions: list[Any] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._portal: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Commands by request or publish; portal requests through their durable consumer (scheduling/streams/
        durable.py: the stream keeps what arrives while no bridge runs)."""
        self._subscriptions = [
            await self._nc.subscribe(f"{COMMAND_SUBJECT_PREFIX}>", queue=QUEUE_GROUP, cb=self._on_command),
        ]
        self._portal = asyncio.create_task(
            durable.consume(self._nc.jetstream(), PORTAL_SUBJECT, self.take_portal_request)
        )

    async def stop(self) -> None:
        for sub in self._subscriptions:
            await sub.unsubscribe()
        if self._portal is not None:
            self._portal.cancel()
            await asyncio.gather(self._portal, return_exceptions=True)
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _on_command(self, msg: Msg) -> None:
        name = msg.subject.removeprefix(COMMAND_SUBJECT_PREFIX)
        headers = msg.headers or {}
        await self._submit(msg, name, headers.get("Nats-Msg-Id"), source="nats")

    async def _submit(self, msg: Msg, name: str, msg_id: str | None, *, source: str) -> None:
        """Answer every message: a refusal at once, or the envelope handed to the stream (the projector answers)."""
        try:
            await self._hand_over(msg, name, msg_id, source)
        except Exception as exc:  # a message must never kill the callback silently: answer and dead-letter it
            log.exception("command on %s could not be read", msg.subject)
            error = DomainError(
                ErrorCode.INTERNAL, "the command could not be processed", {"exception": type(exc).__name__}
            )
            await self._refuse(msg, name, msg_id, source, None, None, error)

    async def _hand_over(self, msg: Msg, name: str, msg_id: str | None, source: str) -> None:
        prepared = await self._prepare(msg, name, msg_id, source)
        if prepared is None:
            return
        env, key = prepared
        try:
            # enqueued in arrival order (per partition, the order the commands came in); acknowledged apart,
            # so the next message is read while this one travels to the broker
            delivered = await asyncio.wait_for(
                self._producer.send(COMMANDS_TOPIC, env.encode(), key=key), self._settings.command_timeout
            )
        except Exception as exc:
            await self._unavailable(msg, env, exc)
            return
        task = asyncio.create_task(self._acknowledged(msg, env, delivered))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def take_portal_request(self, msg: Msg) -> None:
        """A portal request from its durable consumer: returns once the command is on the commands topic (the
        message is then acknowledged), raises if it could not be handed over (it is delivered again). A refusal
        is recorded, as for any command; nobody waits for a reply."""
        quiet = Msg(self._nc, subject=msg.subject, reply="", data=msg.data, headers=msg.headers)
        prepared = await self._prepare(quiet, BridgePortalAppointment.NAME, None, "portal")
        if prepared is not None:
            env, key = prepared
            send = self._producer.send_and_wait(COMMANDS_TOPIC, env.encode(), key=key)
            await asyncio.wait_for(send, self._settings.command_timeout)

    async def _prepare(
        self, msg: Msg, name: str, msg_id: str | None, source: str
    ) -> tuple[CommandEnvelope, bytes] | None:
        """The envelope and routing key of a command, or None once it is refused (answered and recorded)."""
        headers = msg.headers or {}
        claims: Claims | None = None
        body: Any = None
        try:
            claims = self._verifier.claims(headers.get("Authorization"))
            body = load_json(msg.data or b"null")
            if source == "nats" and name not in PUBLIC_NAMES:
                raise validation_error(
                    [{"field": "subject", "message": f"unknown command {name!r}"}], "unknown command"
                )
            if msg_id is not None and (
                not 0 < len(msg_id) <= MAX_KEY_LENGTH or text_problem(msg_id, FORBIDDEN_IN_NAMES)
            ):
                raise validation_error([{"field": "Nats-Msg-Id", "message": "1 to 128 characters of text"}])
            authorize_command(claims.access, name)
            command = parse_command(name, body)
            if isinstance(command, PartitionWide):
                await self._fan_out(msg, claims, command, msg_id)
                return None
            env = CommandEnvelope.new(
                command_type=name, body=body, claims=claims, command_id=msg_id or command.command_id,
                reply_to=msg.reply or None, source=source,
            )  # fmt: skip
            if isinstance(command, BridgePortalAppointment):
                # journaled apart from other commands' keys; the events name the portal's own request id
                env = env.model_copy(
                    update={"command_id": f"portal:{command.request_id}", "causation_id": command.request_id}
                )
            key = command_token(command, claims.tenant).encode()
        except DomainError as error:
            await self._refuse(msg, name, msg_id, source, claims, body, error)
            return None
        return env, key

    async def _acknowledged(self, msg: Msg, env: CommandEnvelope, delivered: asyncio.Future[Any]) -> None:
        try:
            await asyncio.wait_for(delivered, self._settings.command_timeout)
        except Exception as exc:
            await self._unavailable(msg, env, exc)

    async def _unavailable(self, msg: Msg, env: CommandEnvelope, exc: BaseException) -> None:
        log.warning("command %s not handed to the stream: %r", env.command_id, exc)
        await self._reply(
            msg,
            DomainError(
                ErrorCode.UNAVAILABLE,
                "the command was not handed to the stream in time; its outcome is unknown: repeat it with "
                "the same idempotency key (details.commandId) to learn it",
                {"commandId": env.command_id},
            ).as_reply(),
        )

    async def _fan_out(self, msg: Msg, claims: Claims, command: PartitionWide, msg_id: str | None) -> None:
        """Hand partition-wide work to every partition; its effects follow asynchronously, as events say."""
        body = {"now": command.now.isoformat()} if command.now else {}
        command_id = msg_id or command.command_id or f"auto-{uuid.uuid4().hex}"
        fanned = fan_out(self._settings.partitions, command.NAME, claims, body, command_id, "nats")
        try:
            for partition, sub_env in fanned:
                await asyncio.wait_for(
                    self._producer.send_and_wait(
                        COMMANDS_TOPIC, sub_env.encode(), key=command.NAME.encode(), partition=partition
                    ),
                    self._settings.command_timeout,
                )
        except Exception as exc:
            log.warning("%s not handed to the stream: %r", command.NAME, exc)
            error = DomainError(ErrorCode.UNAVAILABLE, f"{command.NAME} could not be handed to the stream")
            await self._reply(msg, error.as_reply())
            return
        await self._reply(msg, {"ok": True, "data": {"partitions": len(fanned), "now": body.get("now")}})

    async def _refuse(
        self,
        msg: Msg,
        name: str,
        msg_id: str | None,
        source: str,
        claims: Claims | None,
        body: Any,
        error: DomainError,
    ) -> None:
        await self._reply(msg, error.as_reply())
        record = DecisionRecord.rejected(
            command_type=name,
            command_id=msg_id or "",
            source=source,
            claims=claims,
            body=body,
            error=error,
            answered=bool(msg.reply),
        )
        tenant = claims.tenant if claims else "unauthenticated"
        try:
            await self._producer.send_and_wait(
                DECISIONS_TOPIC, record.encode(), key=resource_token(tenant, "*").encode()
            )
        except Exception as exc:  # the caller has its answer; only the audit copy is lost, and said so
            log.error("refusal of %s not recorded: %r", record.command_id, exc)

    async def _reply(self, msg: Msg, reply: dict[str, Any]) -> None:
        if not msg.reply:
            return
        try:
            await self._nc.publish(msg.reply, json.dumps(reply).encode(), headers={"Content-Type": "application/json"})
        except Exception as exc:  # NATS is away: the caller's request times out and it retries with its key
            log.warning("reply to %s not sent: %r", msg.reply, exc)


def _is_key(msg_id: str) -> bool:
    """An idempotency key is a name: 1 to 128 characters, no control characters."""
    return 0 < len(msg_id) <= MAX_KEY_LENGTH and text_problem(msg_id, FORBIDDEN_IN_NAMES) is None
