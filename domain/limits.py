"""Input limits, in one place: what any message crossing into the service may contain.

Every JSON document that enters (a NATS or HTTP body, a command envelope or a decision
record read from a topic) is read by `load_json`, which refuses what PostgreSQL or JSON
cannot carry (NUL and other control characters, lone surrogates, NaN/Infinity), documents
nested deeper than `MAX_DEPTH` and bodies over `MAX_BODY_BYTES`. Times are bounded to
[`EARLIEST`, `LATEST`) after conversion to UTC, so no arithmetic on them can overflow.
A violation is a `VALIDATION_FAILED` naming the field, never an exception of another kind.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from domain.errors import DomainError, validation_error

#: a command body, an envelope or a decision record larger than this is refused (HTTP: 413)
MAX_BODY_BYTES = 256 * 1024
#: nesting of objects and arrays; the deepest legitimate command nests 5 levels
MAX_DEPTH = 32
#: what the service itself writes around a body (an envelope, a decision record echoing a refused
#: body) may be larger and deeper; a record beyond these was not written by the service
MAX_RECORD_BYTES = 900 * 1024  # below Kafka's default message limit of 1 MiB
MAX_RECORD_DEPTH = MAX_DEPTH + 8
#: integers beyond this (PostgreSQL's bigint) are refused
MAX_INTEGER = 2**63 - 1
#: the earliest and latest instants a time may name, in UTC
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: characters no text field may hold: NUL (PostgreSQL text cannot store it), other C0 controls but
#: tab/newline/carriage return, DEL, and lone UTF-16 surrogates (no UTF-8 encoding exists for them)
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: names (ids, keys, tenants) travel in NATS headers and subjects too: no control character at all
FORBIDDEN_IN_NAMES = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def text_problem(value: str, forbidden: re.Pattern[str] = FORBIDDEN_CHARACTERS) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    found = forbidden.search(value)
    if found is None:
        return None
    return f"contains a forbidden character (U+{ord(found.group()):04X}) at position {found.start()}"


def scrub(value: str) -> str:
    """`value` with every forbidden character replaced by U+FFFD: for echoing what was refused, never for data."""
    return FORBIDDEN_CHARACTERS.sub("\ufffd", value)


def safe_text(value: str) -> str:
    """A pydantic after-validator: refuse text PostgreSQL or JSON cannot carry."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def safe_name(value: str) -> str:
    """A pydantic after-validator for ids and keys: no control character at all."""
    problem = text_problem(value, FORBIDDEN_IN_NAMES)
    if problem is not None:
        raise ValueError(problem)
    return value


def bounded_utc(value: datetime) -> datetime:
    """An aware time converted to UTC and checked against [EARLIEST, LATEST); a ValueError otherwise.

    Converting `0001-01-01T00:00:00+14:00` to UTC overflows (OverflowError, which pydantic does not
    turn into a validation error): that is refused here as out of range too.
    """
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_range_message()) from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(_range_message())
    return utc


def _range_message() -> str:
    return f"must lie between {EARLIEST.year} and {LATEST.year - 1} (UTC)"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(
    raw: bytes | str, what: str = "body", *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Decode a JSON document within the limits, or raise VALIDATION_FAILED naming the offending field."""
    if len(raw) > max_bytes:
        raise too_large(what, max_bytes)
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise _invalid(what, f"nested deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, ValueError):
        raise _invalid(what, "malformed JSON") from None
    text = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    check_json(value, what, max_depth, scalars=_SUSPECT.search(text) is not None)
    return value


def load_record(raw: bytes, what: str) -> Any:
    """A JSON record read from a topic: the limits of what the service itself writes."""
    return load_json(raw, what, max_bytes=MAX_RECORD_BYTES, max_depth=MAX_RECORD_DEPTH)


#: what in JSON text can carry a forbidden character or an out-of-range number: DEL, a raw UTF-8 surrogate
#: (json decodes with surrogatepass), the short escapes \b and \f, a \u escape of a control character or
#: surrogate, a long exponent or a long run of digits. Text without any of these needs no look at its
#: strings and numbers (only at its depth).
_SUSPECT = re.compile(
    rb"\x7f|\xed[\xa0-\xbf]|\\[bf]|\\u00[01][0-9a-fA-F]|\\u007[fF]|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[eE][+-]?\d{3}|\d{19}"
)


def check_json(value: Any, root: str = "body", max_depth: int = MAX_DEPTH, *, scalars: bool = True) -> None:
    """Walk a decoded document (iteratively: depth is what is being checked) for the limits above.

    With `scalars` false (the text was found free of suspects), only the nesting is walked. A field's
    path is spelled out only for an error.
    """
    # each entry: (node, depth, parent entry index, key in the parent); paths are rebuilt from these
    trail: list[tuple[int, str]] = []
    if not isinstance(value, dict | list):
        if scalars:
            _check_scalar(value, trail, -1, root)
        return
    stack: list[tuple[Any, int, int]] = [(value, 1, -1)]
    while stack:
        node, depth, at = stack.pop()
        if depth > max_depth:
            raise _invalid(_path(trail, at) or root, f"nested deeper than {max_depth} levels")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if scalars and isinstance(key, str):
                _check_scalar(key, trail, at, root, member=True)
            if isinstance(child, dict | list):
                trail.append((at, str(key)))
                stack.append((child, depth + 1, len(trail) - 1))
            elif scalars:
                trail.append((at, str(key)))
                _check_scalar(child, trail, len(trail) - 1, root)
                trail.pop()


def _check_scalar(node: Any, trail: list[tuple[int, str]], at: int, root: str, *, member: bool = False) -> None:
    if isinstance(node, str):
        problem = text_problem(node)
        if problem is not None:
            raise _invalid(_path(trail, at) or root, f"a member name {problem}" if member else problem)
    elif isinstance(node, float) and not math.isfinite(node):
        raise _invalid(_path(trail, at) or root, "a number out of range")
    elif isinstance(node, int) and not isinstance(node, bool) and not -MAX_INTEGER <= node <= MAX_INTEGER:
        raise _invalid(_path(trail, at) or root, "a number out of range")


def _path(trail: list[tuple[int, str]], at: int) -> str:
    keys: list[str] = []
    while at >= 0:
        at, key = trail[at]
        keys.append(key)
    return ".".join(reversed(keys))


def too_large(what: str, max_bytes: int = MAX_BODY_BYTES) -> DomainError:
    return validation_error([{"field": what, "message": f"larger than {max_bytes} bytes"}], f"{what} too large")


def _invalid(field: str, message: str) -> DomainError:
    return validation_error([{"field": field, "message": message}], message if field == "body" else "invalid input")
