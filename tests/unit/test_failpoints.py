"""Failpoints (agents/failpoints.py): nothing without the setting, a pause holds only its own actor until the
test removes the file; the exit path is exercised by the crash-point e2e tests (it ends the process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agents.failpoints import reached


async def test_nothing_is_looked_up_without_a_folder() -> None:
    await reached(None, "journaled", ["saga.hold"])


async def test_an_unarmed_failpoint_passes(tmp_path: Path) -> None:
    (tmp_path / "journaled-saga.settle").write_text("pause")
    await asyncio.wait_for(reached(str(tmp_path), "journaled", ["saga.hold"]), 1)


async def test_a_paused_step_waits_until_its_file_is_removed(tmp_path: Path) -> None:
    armed = tmp_path / "journaled-saga.hold"
    armed.write_text("pause\n")
    waiting = asyncio.create_task(reached(str(tmp_path), "journaled", ["appointment.book", "saga.hold"]))
    others = await asyncio.gather(asyncio.sleep(0, "the loop runs on"), asyncio.to_thread(armed.exists))
    assert others == ["the loop runs on", True] and not waiting.done()
    armed.unlink()
    await asyncio.wait_for(waiting, 5)
