"""Telling a record's fault from an outage: the one decides parking, the other retrying.

A consumer that meets an error must know which it is. If the record cannot be read or
applied (wrong types, values PostgreSQL refuses, a payload NATS refuses), retrying it
forever would wedge the partition: it is parked and the consumer moves on. If a dependency
is away (connection refused, closed, timed out, the server shutting down), parking would
lose a good record: the consumer waits and retries, and commits nothing meanwhile.
"""

from __future__ import annotations

import asyncpg
import nats.errors
import nats.js.errors
from pydantic import ValidationError

#: SQLSTATE classes that mean the database, not the statement, is the problem: connection exceptions,
#: insufficient resources, operator intervention (shutdown), system errors, transaction rollbacks
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58", "40"})


def is_record_fault(exc: BaseException) -> bool:
    """True when retrying cannot help: the record itself is what fails."""
    if isinstance(exc, ValidationError | KeyError | TypeError | ValueError | UnicodeError):
        return not isinstance(exc, asyncpg.InterfaceError)
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return sqlstate[:2] not in _OUTAGE_SQLSTATE_CLASSES
    if isinstance(exc, nats.errors.MaxPayloadError | nats.errors.BadSubjectError):
        return True
    if isinstance(exc, nats.js.errors.ServiceUnavailableError):
        return False
    # JetStream refusing the message itself (too large for the stream, bad headers): 400-class API errors
    return isinstance(exc, nats.js.errors.APIError) and isinstance(exc.code, int) and 400 <= exc.code < 500


def is_outage(exc: BaseException) -> bool:
    """True when a dependency (PostgreSQL, a connection) is away, not the request: answered 503, retried later."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "")[:2] in _OUTAGE_SQLSTATE_CLASSES
    return isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | nats.errors.Error)
