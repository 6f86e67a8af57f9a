"""Canonical JSON: the one encoding of statements, entries and derived ids.

Canonical means msgspec's compact JSON with object keys (and struct fields)
sorted, UTF-8, no whitespace. Decoding insists on canonical input, so every
value has exactly one accepted byte string.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar, cast

import msgspec

from ._fastdecode import FastDecoder
from .errors import MalformedInputError

MAX_DEPTH = 32
MAX_VALUES = 4096  # JSON values in one metadata/payload object, keys included (entry.md §1.3)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

T = TypeVar("T")


def check_json_value(value: object, what: str, depth: int = 0) -> None:
    """Raise ValueError/TypeError unless ``value`` is plain JSON we accept.

    Accepted: dict with str keys, list, str, bool, None, int in the signed
    64-bit range, finite float; nesting at most MAX_DEPTH deep; at most
    MAX_VALUES values in all, counting ``value`` itself, every object key,
    member and array element at any depth.
    """
    if type(value) is dict and depth < MAX_DEPTH and 1 + 2 * len(value) <= MAX_VALUES:
        # The common flat object (ASCII keys, members that pass on their own) is checked
        # in one loop; anything else is counted in full, as before.
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not _plain(item):
                break
        else:
            return
    _count(value, what, depth, MAX_VALUES)


def _count(value: object, what: str, depth: int, budget: int) -> int:
    """How many JSON values ``value`` holds; ValueError as soon as there are more than
    ``budget`` (so a huge value is refused without being walked to its end)."""
    if budget < 1:
        raise ValueError(f"{what} holds more than {MAX_VALUES} JSON values")
    if depth > MAX_DEPTH:
        raise ValueError(f"{what} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"{what} holds a string that is not valid Unicode") from exc
        return 1
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError(f"{what} holds an integer outside the signed 64-bit range")
        return 1
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} holds NaN or Infinity, which JSON cannot carry")
        return 1
    used = 1
    fast = depth < MAX_DEPTH  # members may be counted inline (below) if this deep
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what} has a non-string key {key!r}")
            if fast and used < budget and type(key) is str and key.isascii():
                used += 1
            else:
                used += _count(key, what, depth + 1, budget - used)
            if fast and used < budget and _plain(item):
                used += 1
            else:
                used += _count(item, what, depth + 1, budget - used)
        return used
    if isinstance(value, (list, tuple)):
        for item in value:
            if fast and used < budget and _plain(item):
                used += 1
            else:
                used += _count(item, what, depth + 1, budget - used)
        return used
    raise TypeError(f"{what} holds a {type(value).__name__}, which is not JSON")


def _plain(value: object) -> bool:
    """True for a value that certainly passes on its own: a common case checked fast.
    False says nothing (``_count`` then checks it in full)."""
    t = type(value)
    if value is None or t is bool:
        return True
    if t is int:
        return INT_MIN <= cast(int, value) <= INT_MAX
    if t is str:
        return cast(str, value).isascii()
    if t is float:
        return math.isfinite(cast(float, value))
    return (t is list or t is dict) and not value


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` (plain JSON or msgspec Structs) canonically."""
    return msgspec.json.encode(value, order="sorted")


def decode_canonical(data: bytes, decoder: msgspec.json.Decoder[T], what: str,
                     fast: FastDecoder[T] | None = None) -> T:
    """Decode ``data`` with ``decoder`` and insist that it is canonical.

    Raises MalformedInputError if it does not parse, does not fit the schema,
    or is not byte-for-byte the canonical encoding of what it decodes to.
    ``fast``: a FastDecoder of the same schema, tried first; whatever it does not
    accept is decoded again by ``decoder`` (which gives the error).
    """
    if fast is not None:
        value = fast.decode(data)
        if value is not None:
            try:
                if canonical_json(value) == data:
                    return value
            except (msgspec.EncodeError, UnicodeError, OverflowError):
                pass
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
