"""`GET /ops/partitions` is for admin tokens: forged, expired or missing tokens 401, others 403."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from support.client import Client

ADMIN = "scheduling:admin"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        _bearer(jwt.encode({"tenant": "t1", "scope": ADMIN}, "forged-secret-of-the-right-length-000", "HS256")),
        _bearer(jwt.encode({"tenant": "t1", "scope": ADMIN}, "", "none")),
        "expired",
    ],
    ids=["missing", "basic", "forged", "alg-none", "expired"],
)
async def test_ops_partitions_refuses_an_unauthenticated_caller(service: Any, headers: Any) -> None:
    if headers == "expired":
        headers = service.auth(scope=ADMIN, exp=int(time.time()) - 60)
    async with Client(service) as client:
        status, body, _ = await client.get("/ops/partitions", headers=headers)
    assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "claims",
    [{"scope": "scheduling:read scheduling:write scheduling:double-book"}, {"scope": ADMIN, "patient_id": "p-1"}],
    ids=["staff-without-admin", "patient-with-admin-scope"],
)
async def test_ops_partitions_forbids_non_admin_and_patient_tokens(service: Any, claims: dict[str, str]) -> None:
    async with Client(service) as client:
        status, body, _ = await client.get("/ops/partitions", headers=service.auth(**claims))
    assert status == 403 and body["error"]["code"] == "FORBIDDEN"


async def test_ops_partitions_answers_an_admin_with_every_group(service: Any) -> None:
    async with Client(service) as client:
        status, body, _ = await client.get("/ops/partitions", headers=service.auth(scope=ADMIN))
    assert status == 200
    groups = {g["group"]: g for g in body["groups"]}
    assert set(groups) == {"scheduling", "scheduling-projector", "scheduling-relay"}
    for group in groups.values():
        assert [row["partition"] for row in group["partitions"]] == [0, 1, 2, 3]
        assert all(row["owner"] and row["lag"] >= 0 and row["end"] >= row["committed"] for row in group["partitions"])
