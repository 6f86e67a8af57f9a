"""Decoding the server's JSON answers (specs/api.md) and RFC 3339 times with nanoseconds.

Every decoder takes untrusted bytes and raises only ServerMisbehaviourError."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from verifier import ModelState

from ._errors import ServerMisbehaviourError

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                      r"([Zz]|[+-]\d{2}:\d{2})\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def rfc3339(ns: int) -> str:
    """``ns`` (since the epoch, UTC) as RFC 3339 with nanoseconds and Z, as the ledger
    prints times in JSON (``2026-12-01T06:18:42.742729123Z``)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, timezone.utc)
    return f"{whole:%Y-%m-%dT%H:%M:%S}.{frac:09d}Z"


def parse_rfc3339(text: str) -> tuple[int, int]:
    """(nanoseconds since the epoch, digits of the fraction given) of an RFC 3339 time with
    Z or an offset; ValueError otherwise."""
    m = _RFC3339.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text[:80]!r}")
    y, mo, d, h, mi, s = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    frac, zone = m.group(7) or "", m.group(8)
    when = datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc)  # ValueError if impossible
    ns = (when - _EPOCH) // timedelta(seconds=1) * 1_000_000_000 + int(frac.ljust(9, "0"))
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        ns -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000_000
    return ns, len(frac)


def same_time(text: str, ns: int) -> bool:
    """Whether ``text`` names the time ``ns`` (to the precision ``text`` gives, at least
    microseconds): how a receipt's ``recorded_at`` is checked against its entry."""
    try:
        got, digits = parse_rfc3339(text)
    except ValueError:
        return False
    if digits >= 9:
        return got == ns
    unit = 10 ** (9 - max(digits, 6))
    return digits >= 6 and got == ns - ns % unit


def _misbehaved(what: str, why: str) -> ServerMisbehaviourError:
    return ServerMisbehaviourError(f"the server's {what} is not what specs/api.md says: {why}")


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """``body`` as a JSON object."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _misbehaved(what, f"not JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise _misbehaved(what, "not a JSON object")
    return doc


def field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``doc[name]``, which must be of ``kind`` (a bool is never an int here)."""
    value = doc.get(name)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise _misbehaved(what, f"{name!r} is missing or not {getattr(kind, '__name__', kind)}")
    return value


def b64(text: str, what: str) -> bytes:
    """Strict standard base64 (canonical padding)."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise _misbehaved(what, "not base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise _misbehaved(what, "not canonical base64")
    return data


@dataclass(frozen=True)
class LogInfo:
    """``GET /log``: the log's origin, its key (checked against the pinned one), its id
    (the genesis snapshot hash) and its size when asked."""

    origin: str
    log_key: str
    log_id: str
    size: int


def log_info(body: bytes) -> LogInfo:
    """Decode ``GET /log``."""
    what = "/log answer"
    doc = json_object(body, what)
    info = LogInfo(field(doc, "origin", str, what), field(doc, "log_key", str, what),
                   field(doc, "log_id", str, what), field(doc, "size", int, what))
    if not _HEX64.match(info.log_id) or info.size < 1:
        raise _misbehaved(what, "log_id is not 64 hex digits, or size is not positive")
    return info


@dataclass(frozen=True)
class RawReceipt:
    """A ``POST /add`` answer, decoded but not yet verified."""

    index: int
    snapshot: str
    recorded_at: str
    entry: bytes
    proof: bytes


def receipt(body: bytes) -> RawReceipt:
    """Decode a receipt (specs/api.md §2); its checks are the caller's."""
    what = "receipt"
    doc = json_object(body, what)
    index = field(doc, "index", int, what)
    if index < 0:
        raise _misbehaved(what, "index is negative")
    return RawReceipt(index, field(doc, "snapshot", str, what),
                      field(doc, "recorded_at", str, what),
                      b64(field(doc, "entry", str, what), "receipt's entry"),
                      field(doc, "proof", str, what).encode("utf-8", "surrogatepass"))


def entry_list(body: bytes, key: str, what: str) -> tuple[dict[str, Any], list[bytes]]:
    """The document and its ``key`` list of base64 entries, decoded."""
    doc = json_object(body, what)
    items = field(doc, key, list, what)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise _misbehaved(what, f"entry {i} is not a string")
        out.append(b64(item, f"{what} entry {i}"))
    return doc, out


_STATE_TIMES = ("registered_at", "last_event_at", "last_validation_at")
_STATE_STR = ("name", "model_hash", "owner", "model_type", "tier", "purpose", "status",
              "latest", "head", "last_event_type")


def _time_value(value: Any, what: str) -> int:
    """A time given as integer nanoseconds or as RFC 3339 text."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)[0]
        except ValueError:
            pass
    raise _misbehaved(what, "a time is neither nanoseconds nor RFC 3339 text")


def model_state(doc: Any, what: str) -> ModelState:
    """A ModelState from the ledger's JSON of one (``ModelState.to_json`` or ``fields``)."""
    if not isinstance(doc, dict):
        raise _misbehaved(what, "a model state is not an object")
    args: dict[str, Any] = {k: field(doc, k, str, what) for k in _STATE_STR}
    args["metadata"] = field(doc, "metadata", dict, what)
    for k in ("registered_at", "last_event_at"):
        args[k] = _time_value(doc.get(k), what)
    lv = doc.get("last_validation_at")
    args["last_validation_at"] = None if lv is None else _time_value(lv, what)
    tags, members = field(doc, "tags", dict, what), field(doc, "members", dict, what)
    if not all(isinstance(v, str) for v in tags.values()) or not all(
            v is None or isinstance(v, str) for v in members.values()):
        raise _misbehaved(what, "tags or members hold other than text")
    return ModelState(**args, tags=dict(tags), members=dict(members))


@dataclass(frozen=True)
class InventoryAnswer:
    """``GET /inventory``: the time asked (ns; None: now), the log's size, the models."""

    at: int | None
    size: int
    models: dict[str, ModelState]


def inventory(body: bytes) -> InventoryAnswer:
    """Decode ``GET /inventory``."""
    what = "inventory"
    doc = json_object(body, what)
    at = None if doc.get("at") is None else _time_value(doc.get("at"), what)
    size = field(doc, "size", int, what)
    models = field(doc, "models", dict, what)
    out = {}
    for name, state in models.items():
        ms = model_state(state, what)
        if ms.name != name:
            raise _misbehaved(what, f"model {name!r} holds the state of {ms.name!r}")
        out[name] = ms
    return InventoryAnswer(at, size, out)
