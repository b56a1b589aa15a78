"""Input limits (domain/limits.py): the fast path that skips looking at strings and numbers when the raw
text holds nothing suspect gives the same verdict as the full walk, for any document."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.limits import check_json, load_json

hostile = st.sampled_from(["\x00", "\x07", "\x7f", "\ud800", "\udfff", "\t", "\n", "\u00e9", "\U0001f600", "\\u0000"])
text = st.lists(hostile | st.text(max_size=5), max_size=4).map("".join)
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True, allow_infinity=True)
documents = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


def _verdict(check: Any) -> str:
    try:
        check()
    except DomainError as refused:
        return refused.details[0]["message"].split(" at ")[0].split(" (")[0]
    return "ok"


@settings(max_examples=1500, deadline=None)
@given(documents, st.booleans())
def test_the_fast_path_agrees_with_the_full_walk(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")
    if b"NaN" in raw or b"Infinity" in raw:  # refused as malformed by both, before any walk
        return
    full = _verdict(lambda: check_json(json.loads(raw), scalars=True))
    assert _verdict(lambda: load_json(raw)) == full


def test_deep_documents_are_refused_however_plain() -> None:
    assert _verdict(lambda: load_json(b'{"a":' + b"[" * 40 + b"]" * 40 + b"}")).startswith("nested deeper")
