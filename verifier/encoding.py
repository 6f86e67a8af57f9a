"""Strict text encodings shared by every format: base64, decimals, names."""

from __future__ import annotations

import base64
import binascii
import re

from .errors import MalformedInputError

HASH_SIZE = 32
MAX_UINT64 = 2**64 - 1

_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)\Z")


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4) with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Decode canonical standard base64; anything else is malformed.

    Canonical means: standard alphabet, correct padding, no spare bits set, no
    whitespace. So each byte string has exactly one accepted encoding: the text is
    accepted iff encoding what it decodes to gives back the very same text.
    """
    if not isinstance(text, str):
        raise MalformedInputError(f"{what}: expected base64 text")
    if len(text) % 4 or not text.isascii():
        raise MalformedInputError(f"{what}: not canonical base64")
    raw = text.encode("ascii")
    try:
        data = binascii.a2b_base64(raw, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInputError(f"{what}: not canonical base64") from exc
    if binascii.b2a_base64(data, newline=False) != raw:
        raise MalformedInputError(f"{what}: not canonical base64")
    return data


def decode_hash(text: str, what: str) -> bytes:
    """Decode a base64 SHA-256 hash: exactly 32 bytes."""
    data = b64decode(text, what)
    if len(data) != HASH_SIZE:
        raise MalformedInputError(f"{what}: a hash must be {HASH_SIZE} bytes, got {len(data)}")
    return data


def parse_decimal(text: str, what: str, *, maximum: int = MAX_UINT64) -> int:
    """Parse an ASCII decimal with no sign and no leading zeros, at most ``maximum``."""
    if not _DECIMAL.match(text):
        raise MalformedInputError(f"{what}: {text[:40]!r} is not a decimal without leading zeros")
    if len(text) > len(str(maximum)):  # int() refuses over 4300 digits with ValueError
        raise MalformedInputError(f"{what}: {text[:40]}... is larger than {maximum}")
    value = int(text)
    if value > maximum:
        raise MalformedInputError(f"{what}: {value} is larger than {maximum}")
    return value


def check_key_name(name: str, what: str = "key name") -> str:
    """A signed-note key name: non-empty, no Unicode space, no '+', no control character,
    no lone surrogate (not encodable as UTF-8)."""
    if not name:
        raise MalformedInputError(f"{what} is empty")
    for ch in name:
        surrogate = "\ud800" <= ch <= "\udfff"
        if ch.isspace() or ch == "+" or ord(ch) < 0x20 or ch == "\x7f" or surrogate:
            raise MalformedInputError(
                f"{what} {name[:60]!r} has a space, '+', control character or surrogate")
    return name


def check_hash_bytes(value: object, what: str) -> bytes:
    """A hash passed through the API: ``bytes`` of length 32."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    data = bytes(value)
    if len(data) != HASH_SIZE:
        raise MalformedInputError(f"{what} must be {HASH_SIZE} bytes, got {len(data)}")
    return data


def check_count(value: object, what: str) -> int:
    """A tree size or index passed through the API: a non-negative ``int``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    if value > MAX_UINT64:
        raise ValueError(f"{what} must be at most 2**64-1, got {value}")
    return value
