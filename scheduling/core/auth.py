"""JWT verification (CONTRACT section 2): HS256 with a secret in development, RS256 with a public key."""

from __future__ import annotations

import jwt

from domain.errors import DomainError, ErrorCode
from scheduling.core.config import Settings
from scheduling.core.wire import Claims, Unreadable

#: a bearer token longer than this is refused before it is parsed
MAX_TOKEN_LENGTH = 8192


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

    def claims(self, authorization: str | None) -> Claims:
        """The token's claims, typed, or UNAUTHENTICATED: `tenant` is required, every claim used is text."""
        if not authorization or not authorization.startswith("Bearer "):
            raise DomainError(ErrorCode.UNAUTHENTICATED, "a Bearer token is required")
        token = authorization.removeprefix("Bearer ").strip()
        if len(token) > MAX_TOKEN_LENGTH:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "the token is too long")
        try:
            decoded = jwt.decode(
                token, self._key, algorithms=self._algorithms, options={"require": ["tenant"], "verify_aud": False}
            )
        except jwt.PyJWTError as exc:
            raise DomainError(ErrorCode.UNAUTHENTICATED, f"invalid token: {exc}") from None
        try:
            return Claims.load(decoded)
        except Unreadable as exc:
            raise DomainError(ErrorCode.UNAUTHENTICATED, f"invalid token claims: {exc.reason}") from None
