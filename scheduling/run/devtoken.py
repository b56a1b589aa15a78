"""`scheduling token`: a development JWT, so the quick start and manual testing need no identity provider.

It signs only with the development secret or one given explicitly: where the environment names a
production key (RS256) or another secret, minting a token silently with the development one would
hand out tokens the service refuses, or tempt someone into signing with a production secret by default.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence

import jwt

from domain.policy import ADMIN, DOUBLE_BOOK, READ, WRITE
from scheduling.core.wire import Claims, Unreadable

DEV_SECRET = "dev-secret"
SCOPES = (READ, WRITE, DOUBLE_BOOK, ADMIN)
DEFAULT_SCOPES = (READ, WRITE)
DEFAULT_HOURS = 12.0


class Refused(Exception):
    """The token is not minted; the message says why and what to do."""


def signing_secret(given: str | None, environ: Mapping[str, str]) -> str:
    """`--secret` if given, else the development secret, unless the environment configures another key."""
    if given:
        return given
    if environ.get("SCHEDULING_JWT_PUBLIC_KEY"):
        raise Refused(
            "SCHEDULING_JWT_PUBLIC_KEY is set (production, RS256): tokens come from your identity provider; "
            "pass --secret only to sign for an HS256 service"
        )
    configured = environ.get("SCHEDULING_JWT_SECRET")
    if configured and configured != DEV_SECRET:
        raise Refused("SCHEDULING_JWT_SECRET is not the development secret: pass --secret explicitly to sign with it")
    return DEV_SECRET


def mint(
    tenant: str,
    scopes: Sequence[str],
    secret: str,
    *,
    patient: str | None = None,
    hours: float = DEFAULT_HOURS,
    now: float | None = None,
) -> str:
    """An HS256 token with the claims the service reads (scheduling/core/auth.py), checked by the same model."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise Refused(f"unknown scope {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if hours <= 0:
        raise Refused("--hours must be positive")
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "tenant": tenant,
        "sub": "scheduling-token",
        "scope": " ".join(dict.fromkeys(scopes or DEFAULT_SCOPES)),
        "iat": issued,
        "exp": issued + int(hours * 3600),
    }
    if patient is not None:
        claims["patient_id"] = patient
    try:
        Claims.load(claims)
    except Unreadable as exc:
        raise Refused(f"invalid claims: {exc.reason}") from None
    with warnings.catch_warnings():
        # the development secret is short on purpose (CONTRACT section 8 names it)
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS256")
