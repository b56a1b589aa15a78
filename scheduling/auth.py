"""JWT verification (CONTRACT section 2): HS256 with a secret in development, RS256 with a public key."""

from __future__ import annotations

from typing import Any

import jwt

from domain.errors import DomainError, ErrorCode
from scheduling.config import Settings


class Verifier:
    def __init__(self, settings: Settings) -> None:
        if settings.jwt_public_key:
            self._key: str = settings.jwt_public_key
            self._algorithms = ["RS256"]
        elif settings.jwt_secret:
            self._key = settings.jwt_secret
            self._algorithms = ["HS256"]
        else:
            raise RuntimeError("set SCHEDULING_JWT_SECRET (HS256) or SCHEDULING_JWT_PUBLIC_KEY (RS256)")

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims, or UNAUTHENTICATED. Only `tenant` is required."""
        if not authorization or not authorization.startswith("Bearer "):
            raise DomainError(ErrorCode.UNAUTHENTICATED, "a Bearer token is required")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._key, algorithms=self._algorithms, options={"require": ["tenant"], "verify_aud": False}
            )
        except jwt.PyJWTError as exc:
            raise DomainError(ErrorCode.UNAUTHENTICATED, f"invalid token: {exc}") from None
        if not isinstance(claims.get("tenant"), str) or not claims["tenant"]:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "the tenant claim must be a non-empty string")
        return claims


def scopes(claims: dict[str, Any]) -> frozenset[str]:
    return frozenset(str(claims.get("scope", "")).split())


def require(claims: dict[str, Any], scope: str) -> None:
    granted = scopes(claims)
    if scope not in granted and "scheduling:admin" not in granted:
        raise DomainError(ErrorCode.FORBIDDEN, f"scope {scope} is required")
