"""Wire formats between the roles: the command envelope and the decision record.

The envelope is what the bridge puts on the commands topic; the decision
record is what the actor puts on the decisions topic (the outbox): the
entities after the change, the CloudEvents, the reply and the audit facts of
one command, so relay, projector and audit never decide anything again.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from domain.decisions import Decision, Event
from domain.errors import DomainError, ErrorCode

CLOUDEVENT_SOURCE = "/scheduling"
#: Errors that mean "this message could not be processed": they always land in the dead-letter stream.
DEAD_LETTER_CODES = frozenset({ErrorCode.VALIDATION_FAILED, ErrorCode.UNAUTHENTICATED, ErrorCode.INTERNAL})


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def envelope(
    *,
    command_type: str,
    body: dict[str, Any],
    claims: dict[str, Any],
    command_id: str | None,
    reply_to: str | None,
    source: str,
) -> dict[str, Any]:
    return {
        "deliveryId": uuid.uuid4().hex,
        "type": command_type,
        "body": body,
        "claims": claims,
        "commandId": command_id or f"auto-{uuid.uuid4().hex}",
        "replyTo": reply_to,
        "receivedAt": now_iso(),
        "source": source,
    }


def cloudevent(event: Event, *, tenant: str, causation_id: str, time: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": CLOUDEVENT_SOURCE,
        "type": event.type,
        "subject": event.subject,
        "time": time,
        "datacontenttype": "application/json",
        "tenantid": tenant,
        "causationid": causation_id,
        "data": event.data,
    }


def decision_record(env: dict[str, Any], decision: Decision) -> dict[str, Any]:
    tenant = env["claims"].get("tenant", "")
    decided_at = now_iso()
    reply = decision.reply()
    dead = _dead_letter(env, decision.error)
    return {
        "deliveryId": env["deliveryId"],
        "commandId": env["commandId"],
        "type": env["type"],
        "source": env.get("source"),
        "tenant": tenant,
        "caller": env["claims"].get("sub"),
        "replyTo": None if any(f.carries_reply for f in decision.follow_ups) else env.get("replyTo"),
        "reply": reply,
        "outcome": "ok" if decision.ok else reply["error"]["code"],
        "decidedAt": decided_at,
        "changes": [{"kind": e.kind, "data": e.dump()} for e in decision.changes],
        "indexes": [{"kind": i.KIND, "key": i.key, "data": i.model_dump(mode="json")} for i in decision.indexes],
        "events": [
            cloudevent(e, tenant=tenant, causation_id=env.get("causationId") or env["commandId"], time=decided_at)
            for e in decision.events
        ],
        "deadLetter": dead,
        "command": env.get("body") if dead else None,
        "followUps": [
            {
                "key": f.token,
                "envelope": {
                    "deliveryId": f"{env['deliveryId']}:{i}",
                    "type": f.command,
                    "body": f.body,
                    "claims": {"tenant": tenant, "sub": "scheduling-follow-up", "scope": "scheduling:write"},
                    "commandId": f"{env['commandId']}:follow-up:{i}",
                    "replyTo": env.get("replyTo") if f.carries_reply else None,
                    "causationId": env.get("causationId") or env["commandId"],
                    "receivedAt": decided_at,
                    "source": "follow-up",
                },
            }
            for i, f in enumerate(decision.follow_ups)
        ],
    }


def _dead_letter(env: dict[str, Any], error: DomainError | None) -> bool:
    if error is None:
        return False
    return error.code in DEAD_LETTER_CODES or not env.get("replyTo")


def refusal_record(env: dict[str, Any], error: DomainError) -> dict[str, Any]:
    """A record for a command refused before any actor saw it (or one that crashed the actor)."""
    return decision_record(env, Decision(error=error))


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def decode(raw: bytes) -> Any:
    return json.loads(raw)
