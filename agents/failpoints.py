"""Failpoints: places in the actor's durable steps where a test can make the worker die, exactly once.

A test arms a failpoint by creating a file named after it in `SCHEDULING_FAILPOINTS_DIR`; the worker
that reaches it removes the file and exits at once (as SIGKILL would: no cleanup, nothing flushed).
Without the setting nothing is looked up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def reached(folder: str | None, name: str, command_types: Iterable[str] = ()) -> None:
    """Exit at failpoint `name`, or at `name-<type>` when the batch holds a command of that type (a saga's
    step: `journaled-saga.hold`)."""
    if folder is None:
        return
    for armed in (Path(folder) / n for n in (name, *(f"{name}-{t}" for t in sorted(set(command_types))))):
        try:
            armed.unlink()
        except FileNotFoundError:
            continue
        log.critical("failpoint %s reached: exiting", armed.name)
        os._exit(137)
