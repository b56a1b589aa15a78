"""A fuzzer over NATS requests: every generated command is answered, with a reply that is never INTERNAL.

Subjects, bodies (valid-looking, hostile and random JSON or bytes) and headers are generated; each
request must get its reply within the command timeout, and the service must go on answering.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from conftest import unique
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.client import Client, schedule_body

PUBLIC = ["appointment.book", "appointment.reschedule", "appointment.status", "appointment.cancel",
          "appointment.check-in", "schedule.create", "schedule.add-exception", "slot.create", "waitlist.add",
          "waitlist.fulfill", "reminder.dispatch", "schedule.open-slots", "waitlist.offer", "no.such"]  # fmt: skip
hostile = st.sampled_from(
    ["a\u0000b", "\ud800", "x" * 3000, "0001-01-01T00:00:00+14:00", "9999-12-31T22:00:00-05:00",
     "2027-09-13T09:00:00Z", "ap-000000000000-aaaaaaaaaaaaaaaaaaaaaaaa", "", "Practitioner/x"]
)  # fmt: skip
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20) | hostile
values = st.recursive(scalars, lambda v: st.lists(v, max_size=3) | st.dictionaries(st.text(max_size=8), v, max_size=3),
                      max_leaves=8)  # fmt: skip
fields = st.sampled_from(["slotId", "patientId", "appointmentId", "newSlotId", "status", "scheduleId", "start", "end",
                          "entryId", "actor", "planningHorizon", "locationId", "serviceType", "description",
                          "commandId", "expectedVersion", "requestedPeriod", "priority", "now", "reason"])  # fmt: skip
bodies = (
    st.dictionaries(fields, values, max_size=6).map(lambda b: json.dumps(b).encode())
    | values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
)
keys = st.none() | st.sampled_from(["k\u0001", "x" * 300]) | st.text(min_size=1, max_size=20)


async def test_every_fuzzed_request_is_answered_and_never_internal(service: Any) -> None:
    replies: list[dict[str, Any]] = []
    async with Client(service) as client:

        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(st.sampled_from(PUBLIC), bodies, keys, st.sampled_from(["staff", "patient", "admin", "none"]))
        async def one(name: str, body: bytes, key: str | None, who: str) -> None:
            auth = {"staff": service.auth(), "patient": service.auth(patient_id="pat-fuzz"),
                    "admin": service.auth(scope="scheduling:admin"), "none": {}}[who]  # fmt: skip
            headers = {**auth, **({"Nats-Msg-Id": key} if key else {})}
            msg = await client.nc.request(f"scheduling.cmd.{name}", body, timeout=12, headers=headers)
            reply = json.loads(msg.data)
            assert reply["ok"] or reply["error"]["code"] not in {"INTERNAL", "UNAVAILABLE"}, (name, body, reply)
            replies.append(reply)

        await _run(one)
        assert len(replies) >= 300
        body = schedule_body(unique("Practitioner/after-fuzz"), "2027-09-20T00:00:00Z", "2027-09-21T00:00:00Z")
        await client.ok("schedule.create", body)  # and the service goes on


async def _run(test: Any) -> None:
    """Run an async hypothesis test from inside the running event loop: examples are awaited on this loop."""
    inner = test.hypothesis.inner_test
    loop = asyncio.get_running_loop()
    test.hypothesis.inner_test = lambda *a, **k: asyncio.run_coroutine_threadsafe(inner(*a, **k), loop).result()
    await asyncio.to_thread(test)
