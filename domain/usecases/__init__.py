"""The write use cases of the seed, as pure decisions.

Each handler takes a command and a `Session` and either returns the reply
data or raises `DomainError`; `decide` turns the latter into a refusal that
changes nothing. The handlers live in one module per aggregate; this package
re-exports what the actor, the bridge and the tests import.
"""

from __future__ import annotations

from domain.usecases.dispatch import HANDLERS, decide
from domain.usecases.routing import command_token
from domain.usecases.schedules import MAX_EXCEPTIONS
from domain.usecases.upkeep import SLOTS_PER_DECISION

__all__ = ["HANDLERS", "MAX_EXCEPTIONS", "SLOTS_PER_DECISION", "command_token", "decide"]
