"""`scheduling token`: what it signs, with which secret, and when it refuses."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

import jwt
import pytest

from domain.errors import DomainError
from scheduling.core.auth import Verifier
from scheduling.core.config import Settings
from scheduling.run.devtoken import DEV_SECRET, Refused, mint, signing_secret


def _verifier(secret: str) -> Verifier:
    return Verifier(replace(Settings(), jwt_secret=secret, jwt_public_key=None))


def test_a_minted_token_passes_the_services_own_verifier_with_its_claims() -> None:
    token = mint("clinic-1", ["scheduling:admin", "scheduling:read"], DEV_SECRET, patient="p-7", hours=1, now=1000)
    claims = _verifier(DEV_SECRET).claims(f"Bearer {mint('clinic-1', ['scheduling:admin'], DEV_SECRET)}")
    assert claims.tenant == "clinic-1" and claims.scopes == {"scheduling:admin"} and claims.patient_id is None
    decoded = jwt.decode(token, DEV_SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert decoded == {"tenant": "clinic-1", "sub": "scheduling-token", "scope": "scheduling:admin scheduling:read",
                       "patient_id": "p-7", "iat": 1000, "exp": 4600}  # fmt: skip


def test_default_scopes_are_read_and_write() -> None:
    claims = _verifier(DEV_SECRET).claims(f"Bearer {mint('t', [], DEV_SECRET)}")
    assert claims.scopes == {"scheduling:read", "scheduling:write"}


def test_an_expired_token_is_refused_by_the_service() -> None:
    with pytest.raises(DomainError):
        _verifier(DEV_SECRET).claims(f"Bearer {mint('t', [], DEV_SECRET, hours=1, now=time.time() - 7200)}")


@pytest.mark.parametrize(
    ("given", "environ", "expected"),
    [
        (None, {}, DEV_SECRET),
        (None, {"SCHEDULING_JWT_SECRET": ""}, DEV_SECRET),
        (None, {"SCHEDULING_JWT_SECRET": DEV_SECRET}, DEV_SECRET),
        ("mine", {"SCHEDULING_JWT_SECRET": "prod"}, "mine"),
        ("mine", {"SCHEDULING_JWT_PUBLIC_KEY": "PEM"}, "mine"),
    ],
)
def test_the_secret_is_the_given_one_or_the_development_one(given: str | None, environ: dict[str, str],
                                                            expected: str) -> None:  # fmt: skip
    assert signing_secret(given, environ) == expected


@pytest.mark.parametrize("environ", [{"SCHEDULING_JWT_SECRET": "prod-secret"}, {"SCHEDULING_JWT_PUBLIC_KEY": "PEM"}])
def test_it_refuses_without_the_development_secret_or_an_explicit_one(environ: dict[str, str]) -> None:
    with pytest.raises(Refused):
        signing_secret(None, environ)


@pytest.mark.parametrize(("tenant", "scopes", "hours"), [("", [], 1), ("t\x00", [], 1), ("t", ["root"], 1),
                                                          ("t", [], 0)])  # fmt: skip
def test_it_refuses_claims_the_service_would_not_accept(tenant: str, scopes: list[str], hours: float) -> None:
    with pytest.raises(Refused):
        mint(tenant, scopes, DEV_SECRET, hours=hours)


def test_the_command_exits_non_zero_with_a_message_under_a_production_secret() -> None:
    env = {"PATH": "/usr/bin:/bin", "SCHEDULING_JWT_SECRET": "production-secret"}
    done = subprocess.run([sys.executable, "-m", "scheduling", "token", "--tenant", "t"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and done.stdout == ""
    assert "not the development secret" in done.stderr
