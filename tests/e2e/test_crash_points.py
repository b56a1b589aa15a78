"""The worker dies inside a batch's durable steps (docs/write-path.md): after the journal, after the entity
writes, after publishing. Each time, once `scheduling dev` has restarted it, every slot is booked exactly
once, every other booking refused, and the read model and the events agree.

A failpoint is armed by a file in `SCHEDULING_FAILPOINTS_DIR`; the worker that reaches it removes the file
and exits at once, as SIGKILL would.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Service, running_dev
from support.bursts import interrupted_burst
from support.client import Client, eventually


@pytest.fixture(scope="module")
def armed() -> Iterator[tuple[Service, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="failpoints-"))
    with running_dev(SCHEDULING_FAILPOINTS_DIR=str(folder)) as started:
        yield started, folder


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", ["journaled", "applied", "published"])
async def test_a_worker_dying_inside_a_batch_loses_and_doubles_nothing(armed: Any, failpoint: str) -> None:
    service, folder = armed
    worker = service.role("worker").pid

    async def arm() -> None:
        (folder / failpoint).touch()

    async with Client(service) as client:
        await interrupted_burst(client, service, arm, first=True)
    assert not (folder / failpoint).exists(), "the failpoint was never reached"
    await eventually(lambda: service.replaced("worker", worker), within=30)
