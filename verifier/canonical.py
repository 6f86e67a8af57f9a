"""Canonical JSON: the one encoding of statements, entries and derived ids.

Canonical means msgspec's compact JSON with object keys (and struct fields)
sorted, UTF-8, no whitespace. Decoding insists on canonical input, so every
value has exactly one accepted byte string.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import msgspec

from .errors import MalformedInputError

MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

T = TypeVar("T")


def check_json_value(value: object, what: str, depth: int = 0) -> None:
    """Raise ValueError/TypeError unless ``value`` is plain JSON we accept.

    Accepted: dict with str keys, list, str, bool, None, int in the signed
    64-bit range, finite float; nesting at most MAX_DEPTH deep.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"{what} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"{what} holds a string that is not valid Unicode") from exc
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError(f"{what} holds an integer outside the signed 64-bit range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} holds NaN or Infinity, which JSON cannot carry")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what} has a non-string key {key!r}")
            check_json_value(key, what, depth + 1)
            check_json_value(item, what, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            check_json_value(item, what, depth + 1)
        return
    raise TypeError(f"{what} holds a {type(value).__name__}, which is not JSON")


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` (plain JSON or msgspec Structs) canonically."""
    return msgspec.json.encode(value, order="sorted")


def decode_canonical(data: bytes, decoder: msgspec.json.Decoder[T], what: str) -> T:
    """Decode ``data`` with ``decoder`` and insist that it is canonical.

    Raises MalformedInputError if it does not parse, does not fit the schema,
    or is not byte-for-byte the canonical encoding of what it decodes to.
    """
    try:
        value = decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise MalformedInputError(f"{what}: {exc}") from exc
    try:
        again = canonical_json(value)
    except (msgspec.EncodeError, UnicodeError, OverflowError) as exc:
        raise MalformedInputError(f"{what}: {exc}") from exc
    if again != data:
        raise MalformedInputError(f"{what} is not in canonical form (sorted keys, no spaces)")
    return value
