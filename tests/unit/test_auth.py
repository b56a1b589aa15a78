"""JWT verification (CONTRACT section 2): HS256 with a secret, RS256 with a public key."""

from __future__ import annotations

import time
from dataclasses import replace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from domain.errors import DomainError, ErrorCode
from domain.policy import require_scope
from scheduling.core.auth import Verifier
from scheduling.core.config import Settings
from scheduling.core.wire import Claims

SECRET = "unit-secret-that-is-long-enough-for-hs256"


def _hs(**claims: object) -> str:
    return "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")


def _code(verifier: Verifier, header: str | None) -> ErrorCode:
    with pytest.raises(DomainError) as refused:
        verifier.claims(header)
    return refused.value.code


def test_hs256_claims_are_returned() -> None:
    verifier = Verifier(replace(Settings(), jwt_secret=SECRET, jwt_public_key=None))
    assert verifier.claims(_hs(tenant="t1", sub="u", scope="scheduling:read")).tenant == "t1"


@pytest.mark.parametrize(
    "header",
    [None, "", "Basic abc", "Bearer not-a-jwt", _hs(sub="no tenant"), _hs(tenant=""), _hs(tenant=5),
     _hs(tenant="t\x00"), _hs(tenant={"a": 1}), _hs(tenant="t1", sub=7), _hs(tenant="t1", patient_id=["p"]),
     _hs(tenant="t1", scope=["scheduling:read"]), _hs(tenant="t1", sub="x" * 300), "Bearer " + "a" * 9000,
     _hs(tenant="t1", exp=int(time.time()) - 60),
     "Bearer " + jwt.encode({"tenant": "t1"}, "another-secret-long-enough-for-hs256!", algorithm="HS256")],
)  # fmt: skip
def test_missing_or_bad_tokens_are_unauthenticated(header: str | None) -> None:
    verifier = Verifier(replace(Settings(), jwt_secret=SECRET, jwt_public_key=None))
    assert _code(verifier, header) is ErrorCode.UNAUTHENTICATED


def test_rs256_with_a_public_key_and_no_algorithm_confusion() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    verifier = Verifier(replace(Settings(), jwt_secret=None, jwt_public_key=public.decode()))
    token = jwt.encode({"tenant": "t9"}, key, algorithm="RS256")
    assert verifier.claims(f"Bearer {token}").tenant == "t9"
    # an HS256 token signed with the public key as the secret must not pass
    forged = jwt.encode({"tenant": "t9"}, "x" * 64, algorithm="HS256")
    assert _code(verifier, f"Bearer {forged}") is ErrorCode.UNAUTHENTICATED


def test_scopes_and_admin() -> None:
    require_scope(Claims(tenant="t", scope="scheduling:read scheduling:write").access, "scheduling:write")
    require_scope(Claims(tenant="t", scope="scheduling:admin").access, "scheduling:write")
    with pytest.raises(DomainError) as refused:
        require_scope(Claims(tenant="t", scope="scheduling:read").access, "scheduling:write")
    assert refused.value.code is ErrorCode.FORBIDDEN and refused.value.status == 403
