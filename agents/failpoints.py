"""Failpoints: places in the actor's durable steps where a test can make the worker die, or wait, exactly once.

A test arms a failpoint by creating a file named after it in `SCHEDULING_FAILPOINTS_DIR`. An empty file makes
the worker that reaches it remove the file and exit at once (as SIGKILL would: no cleanup, nothing flushed). A
file holding `pause` makes that actor wait there, the rest of the worker running on, until the test removes the
file: a state between two steps (a move in progress, a hold past its expiry) can then be looked at from outside.
Without the setting nothing is looked up.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

#: how often a paused actor looks whether its failpoint file is gone
PAUSE_POLL_SECONDS = 0.05


async def reached(folder: str | None, name: str, command_types: Iterable[str] = ()) -> None:
    """Exit (or pause) at failpoint `name`, or at `name-<type>` when the batch holds a command of that type (a
    saga's step: `journaled-saga.hold`)."""
    if folder is None:
        return
    for armed in (Path(folder) / n for n in (name, *(f"{name}-{t}" for t in sorted(set(command_types))))):
        try:
            pause = armed.read_bytes().strip() == b"pause"
        except FileNotFoundError:
            continue
        if pause:
            log.critical("failpoint %s reached: paused until the file is removed", armed.name)
            await _until_removed(armed)
            continue
        try:
            armed.unlink()
        except FileNotFoundError:
            continue
        log.critical("failpoint %s reached: exiting", armed.name)
        os._exit(137)


async def _until_removed(armed: Path) -> None:
    while True:
        if not await asyncio.to_thread(armed.exists):
            return
        await asyncio.sleep(PAUSE_POLL_SECONDS)
