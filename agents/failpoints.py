"""Failpoints: places in the actor's durable steps where a test can make the worker die, exactly once.

A test arms a failpoint by creating a file named after it in `SCHEDULING_FAILPOINTS_DIR`; the worker
that reaches it removes the file and exits at once (as SIGKILL would: no cleanup, nothing flushed).
Without the setting nothing is looked up.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def reached(folder: str | None, name: str) -> None:
    if folder is None:
        return
    armed = Path(folder) / name
    try:
        armed.unlink()
    except FileNotFoundError:
        return
    log.critical("failpoint %s reached: exiting", name)
    os._exit(137)
