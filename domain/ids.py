"""Ids minted by the service carry the routing token of their resource.

A command that names only an appointment, slot, schedule or waitlist entry is
routed to its resource's partition from the id alone, without a lookup.
Ids are derived from the command's idempotency key, so deciding the same
command twice mints the same ids.
"""

from __future__ import annotations

import hashlib

from domain.model import ID_PATTERN

TOKEN_LENGTH = 12


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def resource_token(tenant: str, actor_reference: str) -> str:
    """The routing token of one bookable resource (a schedule's actor) of one tenant."""
    return _digest("resource", tenant, actor_reference)[:TOKEN_LENGTH]


def mint(prefix: str, token: str, *seed: str) -> str:
    return f"{prefix}-{token}-{_digest(prefix, *seed)[:24]}"


def token_of(entity_id: str) -> str:
    """The routing token inside a minted id; a foreign id gets a stable token of its own.

    A foreign id is then routed somewhere deterministic and answered NOT_FOUND there.
    """
    parts = entity_id.split("-")
    if len(parts) == 3 and len(parts[1]) == TOKEN_LENGTH and ID_PATTERN.match(entity_id):
        return parts[1]
    return _digest("foreign", entity_id)[:TOKEN_LENGTH]


def event_id(tenant: str, command_id: str, position: int) -> str:
    """Stable CloudEvent id: the same decision re-published after a crash keeps its ids."""
    d = _digest("event", tenant, command_id, str(position))
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}"
