"""The subset of RFC 8941 structured fields that HTTP message signatures need.

Parses a Dictionary (Signature-Input, Signature, Content-Digest) into members that are
Items or Inner Lists with Parameters, and serializes the pieces a signer writes. Bare
items: Integer, Decimal (kept as text, never re-serialized), String, Token, Byte
Sequence, Boolean. Stricter than RFC 8941 in two ways, both refusing input no honest
signer writes: a repeated dictionary key or parameter key is an error (RFC 8941 lets
the last one win), and a Byte Sequence must be canonical padded base64.

Every parse failure raises ``SfvError`` (a ValueError); nothing else escapes ``parse_dictionary``
for any ``str`` input.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Union

__all__ = [
    "Decimal", "InnerList", "Item", "SfvError", "Token", "parse_dictionary",
    "serialize_bytes", "serialize_inner_list", "serialize_string",
]

MAX_INTEGER = 999_999_999_999_999


class SfvError(ValueError):
    """The text is not a structured field of the expected shape."""


@dataclass(frozen=True)
class Token:
    """An RFC 8941 Token (an unquoted word)."""

    text: str


@dataclass(frozen=True)
class Decimal:
    """An RFC 8941 Decimal, kept as its text: signatures never need its value."""

    text: str


BareItem = Union[int, str, bytes, bool, Token, Decimal]
Params = tuple[tuple[str, BareItem], ...]


@dataclass(frozen=True)
class Item:
    """A bare item with its parameters (in order)."""

    value: BareItem
    params: Params = ()


@dataclass(frozen=True)
class InnerList:
    """A parenthesized list of items, with the list's own parameters (in order)."""

    items: tuple[Item, ...]
    params: Params = ()


Member = Union[Item, InnerList]

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
_UNESCAPE = re.compile(r"\\(.)")
_FIELD = re.compile(r"[\x20-\x7e\t]*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


class _Parser:
    """A cursor over one field value. Precondition: ``text`` is visible ASCII, SP, HTAB."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def key(self) -> str:
        m = _KEY.match(self.text, self.pos)
        if m is None:
            raise SfvError(f"expected a key at offset {self.pos}")
        self.pos = m.end()
        return m.group(0)

    def bare_item(self) -> BareItem:
        c = self.peek()
        if c == '"':
            m = _STRING.match(self.text, self.pos)
            if m is None:
                raise SfvError(f"bad string at offset {self.pos}")
            self.pos = m.end()
            text = m.group(1)
            return _UNESCAPE.sub(r"\1", text) if "\\" in text else text
        if c == ":":
            m = _BYTES.match(self.text, self.pos)
            if m is None:
                raise SfvError(f"bad byte sequence at offset {self.pos}")
            self.pos = m.end()
            return _b64decode(m.group(1))
        if c == "?":
            flag = self.text[self.pos + 1:self.pos + 2]
            if flag not in ("0", "1"):
                raise SfvError(f"bad boolean at offset {self.pos}")
            self.pos += 2
            return flag == "1"
        if c == "-" or c.isdigit():
            return self.number()
        m = _TOKEN.match(self.text, self.pos)
        if m is None:
            raise SfvError(f"expected an item at offset {self.pos}")
        self.pos = m.end()
        return Token(m.group(0))

    def number(self) -> int | Decimal:
        m = _NUMBER.match(self.text, self.pos)
        if m is None:
            raise SfvError(f"bad number at offset {self.pos}")
        text = m.group(0)
        digits = text.lstrip("-")
        if m.group(1) is None:
            if len(digits) > 15:
                raise SfvError("an integer has at most 15 digits")
            self.pos = m.end()
            return int(text)
        whole, frac = digits.split(".")
        if len(whole) > 12 or len(frac) > 3:
            raise SfvError("a decimal has at most 12 integer and 3 fraction digits")
        self.pos = m.end()
        return Decimal(text)

    def params(self) -> Params:
        out: list[tuple[str, BareItem]] = []
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            name = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            if any(k == name for k, _ in out):
                raise SfvError(f"parameter {name!r} appears twice")
            out.append((name, value))
        return tuple(out)

    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.params())

    def inner_list(self) -> InnerList:
        self.pos += 1  # "("
        items: list[Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return InnerList(tuple(items), self.params())
            if not self.peek():
                raise SfvError("an inner list is not closed")
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise SfvError(f"expected a space or ')' at offset {self.pos}")


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an RFC 8941 Dictionary (several field lines already joined with ", ").

    Precondition: ``text`` is a ``str``. Raises SfvError for anything but visible ASCII,
    SP and HTAB, for any syntax error and for a repeated key. An empty value is an empty
    dictionary."""
    if not isinstance(text, str):
        raise TypeError(f"a field value is text, not {type(text).__name__}")
    if not _FIELD.fullmatch(text):
        raise SfvError("a structured field holds only visible ASCII, spaces and tabs")
    p = _Parser(text.strip(" "))
    out: dict[str, Member] = {}
    while p.pos < len(p.text):
        name = p.key()
        member: Member
        if p.peek() == "=":
            p.pos += 1
            member = p.inner_list() if p.peek() == "(" else p.item()
        else:
            member = Item(True, p.params())
        if name in out:
            raise SfvError(f"dictionary key {name!r} appears twice")
        out[name] = member
        p.skip(" \t")
        if p.pos == len(p.text):
            break
        if p.peek() != ",":
            raise SfvError(f"expected ',' at offset {p.pos}")
        p.pos += 1
        p.skip(" \t")
        if p.pos == len(p.text):
            raise SfvError("a dictionary may not end with ','")
    return out


def _b64decode(text: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SfvError("a byte sequence is not base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise SfvError("a byte sequence is not canonical padded base64")
    return data


def serialize_string(value: str) -> str:
    """``value`` as an RFC 8941 String. ValueError unless it is printable ASCII."""
    if not _PRINTABLE.fullmatch(value):
        raise ValueError(f"a structured-field string is printable ASCII: {value[:40]!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_bytes(value: bytes) -> str:
    """``value`` as an RFC 8941 Byte Sequence (padded standard base64 between colons)."""
    return ":" + base64.b64encode(value).decode("ascii") + ":"


def _serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise ValueError(f"a structured-field integer has at most 15 digits: {value}")
        return str(value)
    if isinstance(value, str):
        return serialize_string(value)
    if isinstance(value, bytes):
        return serialize_bytes(value)
    if isinstance(value, Token):
        if not _TOKEN.fullmatch(value.text):
            raise ValueError(f"not a token: {value.text[:40]!r}")
        return value.text
    raise ValueError("decimals are parsed but never serialized here")


def _serialize_params(params: Params) -> str:
    out = []
    for name, value in params:
        if not _KEY.fullmatch(name):
            raise ValueError(f"not a structured-field key: {name[:40]!r}")
        out.append(f";{name}" if value is True else f";{name}={_serialize_bare(value)}")
    return "".join(out)


def serialize_inner_list(value: InnerList) -> str:
    """The RFC 8941 serialization of an Inner List with its parameters. ValueError for a
    value that cannot be serialized (a non-printable string, a Decimal, a bad key)."""
    items = " ".join(_serialize_bare(i.value) + _serialize_params(i.params) for i in value.items)
    return f"({items}){_serialize_params(value.params)}"
