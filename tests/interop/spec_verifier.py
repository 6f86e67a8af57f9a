#!/usr/bin/env python3
"""A second modelseal bundle verifier, written from specs/*.md alone.

Standalone: the standard library and ``cryptography`` only; it imports nothing
of the project. Usage::

    spec_verifier.py BUNDLE VKEY [VKEY ...] [--trusted CHECKPOINT_FILE]

Prints ``OK <checks>`` (exit 0), ``FAIL <ErrorClass>: <reason>`` (exit 1, a
verification failure; the class is the spec's), ``MALFORMED <reason>`` (exit 3),
``USAGE`` (2), ``IOERROR`` (4) or, for a bug of this script, ``ERROR`` (70).

Checked (bundle.md §2, in its order): the JSON and the compact encodings
(§1, §7: magic, codecs 0-3, header, records, trailing data); the checkpoint
note (checkpoint.md §2, §4: envelope, body, modelseal-time line, Ed25519
signatures with the given keys, §3.2 key parsing with the order-L rule); the
trusted checkpoint and ``from_trusted`` (step 4); ranges of ``n`` and ``t``;
the entry count; the MTH of the entries (merkle.md §2); the consistency proof
``n -> N`` and the inclusion proof of ``next`` with their length rules
(merkle.md §4-5); the cut (step 11); the replay of every entry (entry.md §8:
canonical JSON by re-encoding, the statement schema of every kind with the
name profile, scopes and policies, §1.3 value limits, position, time, claim
times, prev chains, genesis rules, roles, scopes with containment, statement
ids, each statement's Ed25519 signature by its actor's active key, keyring,
inventory and membership rules with the cycle and the 4,096-link walk limit);
the time bounds of the trusted checkpoint (step 12); the genesis tie to the
checkpoint's origin and log key (step 13) and the order at the cut (step 14).

Not done: witnesses (step 3a); the inventory's fields are replayed only as far
as the rules need them (status, tier, heads, members), not reported.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import hashlib
import json
import lzma
import math
import re
import sys
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


# --- errors


class Malformed(Exception):
    """Input could not be read as the format says (exit 3)."""


class Fail(Exception):
    """Well-formed input whose claims do not hold (exit 1); ``kind`` is the spec's class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


# --- text rules


_B64_RE = re.compile(r"\A[A-Za-z0-9+/]*={0,2}\Z")
MAX_U64 = 2**64 - 1
MAX_NANOS = 2**63 - 1


def b64(s: str) -> bytes:
    """Strict base64 (checkpoint.md §1.1)."""
    if len(s) % 4 or not _B64_RE.match(s):
        raise Malformed("not canonical base64")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed("not canonical base64") from exc
    if base64.b64encode(raw).decode("ascii") != s:
        raise Malformed("not canonical base64")
    return raw


def b64hash(s: Any) -> bytes:
    """A strict base64 32-byte hash."""
    if not isinstance(s, str):
        raise Malformed("hash is not a string")
    raw = b64(s)
    if len(raw) != 32:
        raise Malformed("hash is not 32 bytes")
    return raw


def decimal(s: str) -> int:
    """A decimal (checkpoint.md §1.2)."""
    if not s or not s.isascii() or not s.isdigit() or (len(s) > 1 and s[0] == "0"):
        raise Malformed(f"bad decimal {s!r}")
    v = int(s)
    if v > MAX_U64:
        raise Malformed("decimal above 2^64-1")
    return v


def key_name_ok(name: str) -> bool:
    """checkpoint.md §1.3."""
    if not name:
        return False
    for ch in name:
        o = ord(ch)
        if ch == "+" or o < 0x20 or o == 0x7F or 0xD800 <= o <= 0xDFFF or ch.isspace():
            return False
    return True


# --- Ed25519 keys

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

_Pt = tuple[int, int, int, int]


def _add(a: _Pt, b: _Pt) -> _Pt:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(k: int, pt: _Pt) -> _Pt:
    acc: _Pt = (0, 1, 1, 0)
    while k:
        if k & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        k >>= 1
    return acc


def _is_identity(pt: _Pt) -> bool:
    x, y, z, _ = pt
    return x % _P == 0 and (y - z) % _P == 0


def ed25519_key_ok(raw: bytes) -> bool:
    """checkpoint.md §3.2 rule 7: the canonical encoding of a point of order L."""
    n = int.from_bytes(raw, "little")
    y = n & ((1 << 255) - 1)
    sign = n >> 255
    if y >= _P:
        return False
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return False
    if x == 0 and sign == 1:
        return False
    if (x & 1) != sign:
        x = _P - x
    pt: _Pt = (x, y, 1, x * y % _P)
    if _is_identity(_mul(8, pt)):
        return False
    return _is_identity(_mul(_L, pt))


@dataclass(frozen=True)
class VKey:
    """A parsed Ed25519 verifier key (checkpoint.md §3.2)."""

    name: str
    key_id: bytes
    public: bytes

    def verify(self, sig: bytes, msg: bytes) -> bool:
        if len(sig) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(sig, msg)
        except InvalidSignature:
            return False
        return True


_VKEY_CACHE: dict[str, VKey] = {}


def parse_vkey(s: str) -> VKey:
    """checkpoint.md §3.2; every failure is Malformed."""
    if s in _VKEY_CACHE:
        return _VKEY_CACHE[s]
    if len(s) > 1024:
        raise Malformed("verifier key over 1024 characters")
    parts = s.split("+", 2)
    if len(parts) != 3:
        raise Malformed("verifier key is not name+id+key")
    name, hid, kb = parts
    if not key_name_ok(name):
        raise Malformed("bad key name")
    if not re.fullmatch(r"[0-9a-f]{8}", hid):
        raise Malformed("key ID is not 8 lowercase hex digits")
    raw = b64(kb)
    if len(raw) != 33 or raw[0] != 0x01:
        raise Malformed("not an Ed25519 (0x01) key of 32 bytes")
    try:
        nb = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Malformed("bad key name") from exc
    kid = hashlib.sha256(nb + b"\n" + raw).digest()[:4]
    if kid.hex() != hid:
        raise Malformed("key ID does not match the key")
    if not ed25519_key_ok(raw[1:]):
        raise Malformed("not a valid Ed25519 public key")
    key = VKey(name, kid, raw[1:])
    _VKEY_CACHE[s] = key
    return key


# --- notes, checkpoints


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: int | None
    signers: tuple[str, ...]
    signer_keys: tuple[VKey, ...]


def parse_note(data: bytes) -> tuple[bytes, list[tuple[str, bytes, bytes]]]:
    """checkpoint.md §2 steps 1-7."""
    if len(data) > 1 << 20:
        raise Malformed("note over 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed("note is not UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise Malformed("control character in note")
    cut = data.rfind(b"\n\n")
    if cut < 0:
        raise Malformed("note has no blank line")
    body, block = data[: cut + 1], data[cut + 2 :]
    if not block.endswith(b"\n"):
        raise Malformed("signature block does not end in a newline")
    lines = block[:-1].decode("utf-8").split("\n")
    if len(lines) > 64:
        raise Malformed("more than 64 signatures")
    sigs: list[tuple[str, bytes, bytes]] = []
    for line in lines:
        if not line.startswith("\u2014 "):
            raise Malformed("signature line does not start with an em dash")
        fields = line[2:].split(" ")
        if len(fields) != 2:
            raise Malformed("signature line is not 'name base64'")
        name, sb = fields
        if not key_name_ok(name):
            raise Malformed("bad key name in signature line")
        raw = b64(sb)
        if len(raw) < 5:
            raise Malformed("signature shorter than 5 bytes")
        sigs.append((name, raw[:4], raw[4:]))
    return body, sigs


def parse_checkpoint(data: bytes, keys: list[VKey]) -> Checkpoint:
    """checkpoint.md §4.2: envelope, body, then signatures."""
    body, sigs = parse_note(data)
    lines = body.decode("utf-8").split("\n")[:-1]
    if len(lines) < 3:
        raise Malformed("checkpoint has fewer than 3 lines")
    if any(line == "" for line in lines):
        raise Malformed("empty line in checkpoint")
    size = decimal(lines[1])
    root = b64hash(lines[2])
    time: int | None = None
    seen_time = False
    for ext in lines[3:]:
        if ext == "modelseal-time" or ext.startswith("modelseal-time "):
            if time is not None or seen_time:
                raise Malformed("two modelseal-time lines")
            seen_time = True
            time = decimal(ext[len("modelseal-time ") :])
            if time > MAX_NANOS:
                raise Malformed("modelseal-time above 2^63-1")
    verified: list[str] = []
    vkeys: list[VKey] = []
    for name, kid, sig in sigs:
        for key in keys:
            if key.name == name and key.key_id == kid:
                if not key.verify(sig, body):
                    raise Fail("SignatureError", f"signature by known key {name} does not verify")
                if name not in verified:
                    verified.append(name)
                if key not in vkeys:
                    vkeys.append(key)
    if not verified:
        raise Fail("SignatureError", "no signature by a trusted key")
    return Checkpoint(lines[0], size, root, time, tuple(verified), tuple(vkeys))


# --- Merkle (merkle.md)

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def node_hash(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def mth(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes, recursively as merkle.md §2 defines it."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(h: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    if index >= size:
        raise Malformed("index not in the tree")
    inner = (index ^ (size - 1)).bit_length()
    if len(proof) != inner + bin(index >> inner).count("1"):
        raise Malformed("inclusion proof of the wrong length")
    fn, sn, r = index, size - 1, h
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if r != root:
        raise Fail("RootMismatchError", f"inclusion proof gives {r.hex()}, expected {root.hex()}")


def _consistency_len(old: int, new: int) -> int:
    if old == 0 or old == new:
        return 0
    shift = (old & -old).bit_length() - 1
    inner = ((old - 1) ^ (new - 1)).bit_length() - shift
    border = bin((old - 1) >> (inner + shift)).count("1")
    return (0 if old & (old - 1) == 0 else 1) + inner + border


def verify_consistency(
    old: int, new: int, proof: list[bytes], old_root: bytes, new_root: bytes
) -> None:
    if old > new:
        raise Malformed("old size above new size")
    if len(proof) != _consistency_len(old, new):
        raise Malformed("consistency proof of the wrong length")
    if old == 0:
        if old_root != EMPTY_ROOT or (new == 0 and new_root != EMPTY_ROOT):
            raise Fail("ConsistencyError", "empty tree with a root other than the empty root")
        return
    if old == new:
        if old_root != new_root:
            raise Fail(
                "ConsistencyError", f"roots differ at equal size: {old_root.hex()} {new_root.hex()}"
            )
        return
    hashes = ([old_root] if old & (old - 1) == 0 else []) + proof
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if fr != old_root:
        raise Fail("ConsistencyError", "proof does not reproduce the old root")
    if sr != new_root:
        raise Fail("ConsistencyError", f"proof does not reproduce the new root {new_root.hex()}")


# --- canonical JSON (entry.md §1)


def _fmt_float(x: float) -> str:
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    r = repr(abs(x))
    sign = "-" if x < 0 else ""
    mant, _, exp_s = r.partition("e")
    exp = int(exp_s) if exp_s else 0
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    # decimal exponent of the first significant digit
    if ip.strip("0"):
        x10 = len(ip.lstrip("0")) - 1 + exp
    else:
        x10 = -(len(fp) - len(fp.lstrip("0")) + 1) + exp
    digits = digits.rstrip("0") or "0"
    if -5 <= x10 <= 15:
        if x10 >= 0:
            whole = digits[: x10 + 1].ljust(x10 + 1, "0")
            frac = digits[x10 + 1 :] or "0"
        else:
            whole = "0"
            frac = "0" * (-x10 - 1) + digits
        return f"{sign}{whole}.{frac}"
    m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{m}e{x10}"


def canon(v: Any) -> str:
    """entry.md §1.1 (Python's json string escaping is exactly the listed one)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _fmt_float(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(canon(k) + ":" + canon(v[k]) for k in sorted(v)) + "}"
    raise TypeError(type(v).__name__)


def _no_constant(s: str) -> Any:
    raise Malformed(f"{s} is not JSON")


def _float(s: str) -> float:
    f = float(s)
    if not math.isfinite(f):
        raise Malformed("number too large for a double")
    return f


def decode_canonical(data: bytes, what: str) -> dict[str, Any]:
    """Parse, re-encode canonically, compare byte for byte (entry.md §1.2)."""
    try:
        text = data.decode("utf-8")
        obj = json.loads(text, parse_constant=_no_constant, parse_float=_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Malformed(f"{what} is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise Malformed(f"{what} is not a JSON object")
    try:
        again = canon(obj).encode("utf-8")
    except (UnicodeEncodeError, RecursionError) as exc:
        raise Malformed(f"{what}: lone surrogate or too deep") from exc
    if again != data:
        raise Malformed(f"{what} is not in canonical form")
    return obj


# --- names (entry.md §3.4)

_LATIN = [
    (0x41, 0x5A),
    (0x61, 0x7A),
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0x130),
    (0x134, 0x137),
    (0x139, 0x13E),
    (0x141, 0x148),
    (0x14A, 0x17E),
    (0x1A0, 0x1A1),
    (0x1AF, 0x1B0),
    (0x218, 0x21B),
    (0x1EA0, 0x1EF9),
]
_GREEK = [(0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3CE)]
_CYRILLIC = [(0x400, 0x481), (0x48A, 0x4FF)]
_KANA = [(0x3041, 0x3096), (0x309D, 0x309F), (0x30A1, 0x30FA), (0x30FC, 0x30FF)]
_HAN = [(0x4E00, 0x9FFF)]
_HANGUL = [(0xAC00, 0xD7A3)]
_SCRIPTS = {
    "Latin": _LATIN,
    "Greek": _GREEK,
    "Cyrillic": _CYRILLIC,
    "Kana": _KANA,
    "Han": _HAN,
    "Hangul": _HANGUL,
}
_SETS = [{"Latin"}, {"Greek"}, {"Cyrillic"}, {"Han", "Kana"}, {"Han", "Hangul"}]


def _script(o: int) -> str | None:
    for name, ranges in _SCRIPTS.items():
        if any(a <= o <= b for a, b in ranges):
            return name
    return None


def name_problem(s: str, *, no_space: bool = False) -> str | None:
    """The name profile; None when ``s`` is inside it."""
    if not 1 <= len(s) <= 200 or len(s.encode("utf-8", "surrogatepass")) > 400:
        return "length"
    used: set[str] = set()
    for ch in s:
        o = ord(ch)
        sc = _script(o)
        if sc is None:
            if not 0x20 <= o <= 0x7E:
                return f"character U+{o:04X}"
            continue
        if sc != "Latin" or o > 0x7A:
            used.add(sc)
        elif ch.isalpha():
            used.add("Latin")
    if s[0] == " " or s[-1] == " " or "  " in s:
        return "spaces"
    if no_space and " " in s:
        return "space in a key name"
    if used and not any(used <= st for st in _SETS):
        return "mixed scripts"
    if unicodedata.normalize("NFC", s) != s:
        return "not NFC"
    return None


# --- statement schema (entry.md §3)

_NAME_RE = re.compile(r"[^\x00-\x1f\x7f]+")
_TEXT_RE = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f]*")
_KEYNAME_RE = re.compile(r"[^\s+\x00-\x1f\x7f]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_SID = re.compile(r"[A-Za-z0-9._:-]{16,128}")
_EVT = re.compile(r"[a-z][a-z0-9_]{0,63}")
RESERVED = {"registered", "tag_moved", "member_added", "member_removed"}
ROLES = {"writer", "admin", "reader"}
ALL_OPS = ["event", "keyring", "membership", "register", "tag"]
PRESETS: dict[str, dict[str, Any]] = {
    "admin": {"event_types": None, "models": None, "ops": ALL_OPS, "tags": None, "tiers": None},
    "writer": {
        "event_types": None,
        "models": None,
        "ops": ["event", "membership", "register", "tag"],
        "tags": None,
        "tiers": None,
    },
    "reader": {"event_types": None, "models": None, "ops": [], "tags": None, "tiers": None},
}
OP_GROUP = {
    "register": "register",
    "event": "event",
    "tag": "tag",
    "member_add": "membership",
    "member_remove": "membership",
    "grant": "keyring",
    "revoke": "keyring",
    "policy": "keyring",
}


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise Malformed(msg)


def _int(v: Any, lo: int, hi: int, what: str) -> int:
    _need(type(v) is int and lo <= v <= hi, f"{what} is not an integer in range")
    assert isinstance(v, int)
    return v


def _str(v: Any, what: str) -> str:
    _need(isinstance(v, str), f"{what} is not a string")
    assert isinstance(v, str)
    return v


def t_name(v: Any, what: str, profile: bool = True) -> str:
    s = _str(v, what)
    _need(1 <= len(s) <= 200 and bool(_NAME_RE.fullmatch(s)), f"{what} is not a Name")
    if profile:
        p = name_problem(s)
        _need(p is None, f"{what} outside the name profile: {p}")
    return s


def t_text(v: Any, what: str) -> str:
    s = _str(v, what)
    _need(len(s) <= 4000 and bool(_TEXT_RE.fullmatch(s)), f"{what} is not a Text")
    return s


def t_keyname(v: Any, what: str) -> str:
    s = _str(v, what)
    _need(1 <= len(s) <= 200 and bool(_KEYNAME_RE.fullmatch(s)), f"{what} is not a KeyName")
    p = name_problem(s, no_space=True)
    _need(p is None, f"{what} outside the name profile: {p}")
    return s


def t_re(v: Any, rx: re.Pattern[str], what: str) -> str:
    s = _str(v, what)
    _need(bool(rx.fullmatch(s)), f"{what} has a bad form")
    return s


def check_value(v: Any) -> None:
    """entry.md §1.3 on a metadata/payload object."""
    _need(isinstance(v, dict), "metadata/payload is not an object")
    count = 0

    def walk(x: Any, depth: int) -> None:
        nonlocal count
        count += 1
        _need(depth <= 32, "value nested deeper than 32")
        _need(count <= 4096, "more than 4096 values")
        if isinstance(x, dict):
            for y in x.values():
                count += 1
                _need(depth + 1 <= 32 and count <= 4096, "value too deep or too many values")
                walk(y, depth + 1)
        elif isinstance(x, list):
            for y in x:
                walk(y, depth + 1)
        elif type(x) is int:
            _need(-(2**63) <= x <= MAX_NANOS, "integer outside int64")
        elif isinstance(x, float):
            _need(math.isfinite(x), "float not finite")

    walk(v, 0)


def _sorted_unique(lst: list[Any]) -> bool:
    return all(a < b for a, b in zip(lst, lst[1:], strict=False))


def t_scope(v: Any) -> dict[str, Any]:
    _need(
        isinstance(v, dict) and set(v) == {"ops", "event_types", "tags", "models", "tiers"},
        "scope has the wrong fields",
    )
    ops = v["ops"]
    _need(
        isinstance(ops, list)
        and len(ops) <= 5
        and all(o in ALL_OPS for o in ops)
        and _sorted_unique(ops),
        "scope ops",
    )
    for dim in ("event_types", "tags", "models", "tiers"):
        lst = v[dim]
        if lst is None:
            continue
        _need(
            isinstance(lst, list)
            and len(lst) <= 64
            and all(isinstance(x, str) for x in lst)
            and _sorted_unique(lst),
            f"scope {dim}",
        )
        for x in lst:
            if dim == "event_types":
                t_re(x, _EVT, "scope event type")
            else:
                t_name(x, f"scope {dim} item")
    return dict(v)


def t_policy(v: Any) -> dict[str, Any]:
    _need(isinstance(v, dict) and set(v) == {"events"}, "policy has the wrong fields")
    ev = v["events"]
    _need(isinstance(ev, dict) and len(ev) <= 256, "policy events")
    for et, rule in ev.items():
        t_re(et, _EVT, "policy event type")
        _need(et not in RESERVED, "policy names a reserved event type")
        _need(isinstance(rule, dict) and set(rule) == {"required"}, "policy rule fields")
        req = rule["required"]
        _need(
            isinstance(req, list)
            and len(req) <= 64
            and all(isinstance(x, str) for x in req)
            and _sorted_unique(req),
            "policy required list",
        )
        for x in req:
            t_name(x, "policy required field")
    return dict(v)


_KIND_FIELDS: dict[str, set[str]] = {
    "genesis": {"log_key", "admin_key", "claim_skew", "claim_window"},
    "grant": {"key", "role"},
    "revoke": {"name", "reason"},
    "policy": {"policy"},
    "register": {"name", "owner", "model_type", "tier", "purpose", "status", "metadata"},
    "event": {"model", "event_type", "payload"},
    "tag": {"model", "tag", "target"},
    "member_add": {"group", "member", "role"},
    "member_remove": {"group", "member", "reason"},
}
_OPTIONAL = {"genesis": {"policy"}, "grant": {"scope"}}


def check_statement(st: dict[str, Any]) -> str:
    """The statement schema (entry.md §3); returns its op."""
    op = st.get("op")
    _need(isinstance(op, str) and op in _KIND_FIELDS, "unknown op")
    assert isinstance(op, str)
    common = {"v", "op", "id", "actor", "origin", "claimed_at"} | (
        {"log"} if op != "genesis" else set()
    )
    req = common | _KIND_FIELDS[op]
    opt = _OPTIONAL.get(op, set())
    keys = set(st)
    _need(req <= keys and keys <= req | opt, f"{op} statement has missing or unknown fields")
    _need(type(st["v"]) is int and st["v"] == 2, "statement version is not 2")
    t_re(st["id"], _SID, "id")
    t_keyname(st["actor"], "actor")
    o = _str(st["origin"], "origin")
    _need(1 <= len(o) <= 400 and bool(_NAME_RE.fullmatch(o)), "origin")
    if op != "genesis":
        t_re(st["log"], _HEX64, "log")
    _int(st["claimed_at"], 0, MAX_NANOS, "claimed_at")
    if op == "genesis":
        _need(isinstance(st["log_key"], str) and len(st["log_key"]) <= 1024, "log_key")
        _need(isinstance(st["admin_key"], str) and len(st["admin_key"]) <= 1024, "admin_key")
        _int(st["claim_skew"], 0, MAX_NANOS, "claim_skew")
        _int(st["claim_window"], 0, MAX_NANOS, "claim_window")
        if "policy" in st:
            t_policy(st["policy"])
    elif op == "grant":
        _need(isinstance(st["key"], str) and len(st["key"]) <= 1024, "key")
        _need(st["role"] in ROLES, "role")
        if "scope" in st:
            t_scope(st["scope"])
    elif op == "revoke":
        t_keyname(st["name"], "name")
        if st["reason"] is not None:
            t_text(st["reason"], "reason")
    elif op == "policy":
        if st["policy"] is not None:
            t_policy(st["policy"])
    elif op == "register":
        for f in ("name", "owner", "model_type", "tier", "status"):
            t_name(st[f], f)
        t_text(st["purpose"], "purpose")
        check_value(st["metadata"])
    elif op == "event":
        t_name(st["model"], "model")
        t_re(st["event_type"], _EVT, "event_type")
        check_value(st["payload"])
    elif op == "tag":
        t_name(st["model"], "model")
        t_name(st["tag"], "tag")
        t_re(st["target"], _HEX64, "target")
    else:
        t_name(st["group"], "group")
        t_name(st["member"], "member")
        extra = "role" if op == "member_add" else "reason"
        if st[extra] is not None:
            t_text(st[extra], extra)
    return op


@dataclass(frozen=True)
class Entry:
    raw: bytes
    index: int
    recorded_at: int
    prev: str | None
    statement_bytes: bytes
    st: dict[str, Any]
    op: str
    key_id: str
    sig: bytes


def parse_entry(raw: bytes) -> Entry:
    """entry.md §4: every failure is Malformed."""
    _need(len(raw) <= 65535, "entry over 65,535 bytes")
    e = decode_canonical(raw, "entry")
    _need(
        set(e) == {"v", "index", "recorded_at", "prev", "statement", "key_id", "sig"},
        "entry has missing or unknown fields",
    )
    _need(type(e["v"]) is int and e["v"] == 1, "entry version is not 1")
    index = _int(e["index"], 0, 10**4300, "index")  # no upper bound (entry.md §4)
    rec = _int(e["recorded_at"], 0, MAX_NANOS, "recorded_at")
    prev = e["prev"]
    if prev is not None:
        t_re(prev, _HEX64, "prev")
    kid = t_re(e["key_id"], _HEX8, "key_id")
    s = _str(e["statement"], "statement")
    try:
        sb = s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Malformed("statement is not UTF-8") from exc
    st = decode_canonical(sb, "statement")
    op = check_statement(st)
    sig = b64(_str(e["sig"], "sig"))
    _need(len(sig) == 64, "sig is not 64 bytes")
    return Entry(raw, index, rec, prev, sb, st, op, kid, sig)


# --- replay (entry.md §8)


def glob_match(pat: str, s: str) -> bool:
    """``*`` matches any run; everything else itself (entry.md §3.7)."""
    parts = pat.split("*")
    if len(parts) == 1:
        return pat == s
    if not s.startswith(parts[0]) or not s[len(parts[0]) :].endswith(parts[-1]):
        return False
    if len(parts[0]) + len(parts[-1]) > len(s):
        return False
    pos = len(parts[0])
    end = len(s) - len(parts[-1])
    for mid in parts[1:-1]:
        i = s.find(mid, pos, end)
        if i < 0:
            return False
        pos = i + len(mid)
    return True


def contains(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """None when scope ``a`` contains ``b``, else the first dimension that does not."""
    if not b["ops"]:
        return None
    if not set(b["ops"]) <= set(a["ops"]):
        return "ops"
    for dim in ("event_types", "tags", "models", "tiers"):
        av, bv = a[dim], b[dim]
        if av is None:
            continue
        if bv is None:
            return dim
        if dim == "models":
            if not all(any(glob_match(q, p) for q in av) for p in bv):
                return dim
        elif not set(bv) <= set(av):
            return dim
    return None


@dataclass
class ActiveKey:
    key: VKey
    role: str
    scope: dict[str, Any]


@dataclass
class Model:
    status: str
    tier: str
    head: str
    snapshots: set[str]
    members: set[str] = field(default_factory=set)
    parents: set[str] = field(default_factory=set)


@dataclass
class State:
    count: int = 0
    last_at: int | None = None
    origin: str | None = None
    log_key: VKey | None = None
    log_id: str | None = None
    claim_skew: int = 0
    claim_window: int = 0
    policy: dict[str, Any] | None = None
    keys: dict[str, ActiveKey] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)
    models: dict[str, Model] = field(default_factory=dict)
    sigs_checked: int = 0


def _reach(models: dict[str, Model], start: str, target: str) -> bool:
    seen = {start}
    stack = [start]
    while stack:
        x = stack.pop()
        if x == target:
            return True
        m = models.get(x)
        for y in m.members if m else ():
            if y not in seen:
                seen.add(y)
                stack.append(y)
    return False


def _closure(models: dict[str, Model], start: str, down: bool) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        m = models[stack.pop()]
        for y in m.members if down else m.parents:
            if y not in seen:
                seen.add(y)
                stack.append(y)
    return seen


def _over_walk_limit(models: dict[str, Model], member: str, group: str) -> bool:
    """entry.md §8.5 rule 17: more than 4,096 links both below ``member`` and above ``group``."""
    down = sum(len(models[x].members) for x in _closure(models, member, True))
    up = sum(len(models[x].parents) for x in _closure(models, group, False))
    return down > 4096 and up > 4096


def apply(state: State, raw: bytes) -> Entry:
    """Apply one entry (entry.md §8), raising at the first broken rule."""
    e = parse_entry(raw)
    st, op = e.st, e.op
    if e.index != state.count:
        raise Fail("ChainError", f"entry index {e.index} is not {state.count}")
    if state.last_at is not None and e.recorded_at < state.last_at:
        raise Fail("ChainError", "recorded_at goes back")
    if op == "genesis" and state.origin is None:
        skew, window = st["claim_skew"], st["claim_window"]
    else:
        skew, window = state.claim_skew, state.claim_window
    if state.origin is not None or op == "genesis":
        if st["claimed_at"] > e.recorded_at + skew:
            raise Fail("ChainError", "claimed_at after recorded_at + claim_skew")
        if e.recorded_at - st["claimed_at"] > window:
            raise Fail("ChainError", "statement held back longer than claim_window")
    # prev (§4.1)
    if op in ("genesis", "grant", "revoke", "policy", "register"):
        want: str | None = None
    else:
        mname = st["model"] if op in ("event", "tag") else st["group"]
        m = state.models.get(mname)
        want = m.head if m else None
    if e.prev != want:
        raise Fail("ChainError", "wrong prev")
    signer: VKey
    if op == "genesis":
        if state.count or state.origin is not None:
            raise Fail("ChainError", "a genesis entry may only open the log")
        log_key = parse_vkey(st["log_key"])
        admin = parse_vkey(st["admin_key"])
        _need(name_problem(admin.name, no_space=True) is None, "admin key name outside the profile")
        if log_key.name != st["origin"]:
            raise Fail("RuleError", "log key name is not the origin")
        if admin.name != st["actor"] or admin.key_id.hex() != e.key_id:
            raise Fail("AuthorizationError", "genesis not signed by the admin key it names")
        if st["claim_skew"] > 3_600_000_000_000 or st["claim_window"] > 2_678_400_000_000_000:
            raise Fail("RuleError", "claim parameters too large")
        signer = admin
    else:
        if state.origin is None:
            raise Fail("ChainError", "the first entry of a log must be its genesis")
        if st["origin"] != state.origin:
            raise Fail("RuleError", "statement for another origin")
        if st["log"] != state.log_id:
            raise Fail("RuleError", "statement for another log")
        ak = state.keys.get(st["actor"])
        if ak is None:
            raise Fail("AuthorizationError", f"actor {st['actor']!r} has no active key")
        if ak.key.key_id.hex() != e.key_id:
            raise Fail("AuthorizationError", "key_id is not the actor's active key")
        if ak.role == "reader":
            raise Fail("AuthorizationError", "readers cannot write")
        if op in ("grant", "revoke", "policy") and ak.role != "admin":
            raise Fail("AuthorizationError", "only an admin may sign keyring statements")
        _check_scope(state, ak, st, op)
        signer = ak.key
    if st["id"] in state.ids:
        raise Fail("ChainError", "statement id reused")
    if not signer.verify(e.sig, e.statement_bytes):
        raise Fail("SignatureError", f"entry {e.index}: statement signature does not verify")
    state.sigs_checked += 1
    _rules_and_effects(state, e)
    state.ids.add(st["id"])
    state.count += 1
    state.last_at = e.recorded_at
    return e


def _check_scope(state: State, ak: ActiveKey, st: dict[str, Any], op: str) -> None:
    sc = ak.scope
    grp = OP_GROUP[op]
    if grp not in sc["ops"]:
        raise Fail("AuthorizationError", f"scope: op {grp} not allowed")
    if op == "grant":
        granted = st.get("scope") or PRESETS[st["role"]]
        dim = contains(sc, granted)
        if dim:
            raise Fail("AuthorizationError", f"scope: grant exceeds the signer's {dim}")
        return
    if op == "revoke":
        target = state.keys.get(st["name"])
        if target is not None:
            dim = contains(sc, target.scope)
            if dim:
                raise Fail("AuthorizationError", f"scope: revoked key exceeds the signer's {dim}")
        return
    if op == "policy":
        if any(sc[d] is not None for d in ("event_types", "tags", "models", "tiers")):
            raise Fail("AuthorizationError", "scope: policy needs an unrestricted scope")
        return
    if (
        op == "event"
        and sc["event_types"] is not None
        and st["event_type"] not in sc["event_types"]
    ):
        raise Fail("AuthorizationError", "scope: event type")
    if op == "tag" and sc["tags"] is not None and st["tag"] not in sc["tags"]:
        raise Fail("AuthorizationError", "scope: tag")
    if op == "register":
        names = [st["name"]]
    elif op in ("event", "tag"):
        names = [st["model"]]
    else:
        names = [st["group"], st["member"]]
    if sc["models"] is not None:
        for n in names:
            if not any(glob_match(g, n) for g in sc["models"]):
                raise Fail("AuthorizationError", f"scope: model {n}")
    if sc["tiers"] is not None:
        tiers = [st["tier"]] if op == "register" else []
        for n in names:
            if n in state.models:
                tiers.append(state.models[n].tier)
        if (
            op == "event"
            and st["event_type"] == "updated"
            and isinstance(st["payload"].get("tier"), str)
        ):
            tiers.append(st["payload"]["tier"])
        for t in tiers:
            if t not in sc["tiers"]:
                raise Fail("AuthorizationError", f"scope: tier {t}")


_UPDATABLE = {"owner", "model_type", "tier", "purpose", "status", "metadata"}


def _rules_and_effects(state: State, e: Entry) -> None:
    st, op = e.st, e.op
    snap = leaf_hash(e.raw).hex()
    if op == "genesis":
        state.origin = st["origin"]
        state.log_key = parse_vkey(st["log_key"])
        state.log_id = snap
        state.claim_skew, state.claim_window = st["claim_skew"], st["claim_window"]
        admin = parse_vkey(st["admin_key"])
        state.keys[st["actor"]] = ActiveKey(admin, "admin", PRESETS["admin"])
        state.policy = st.get("policy")
    elif op == "grant":
        key = parse_vkey(st["key"])
        _need(name_problem(key.name, no_space=True) is None, "granted key name outside the profile")
        if key.name in state.keys:
            raise Fail("RuleError", "name already has an active key: revoke it first")
        scope = st.get("scope")
        if scope is not None and not set(scope["ops"]) <= set(PRESETS[st["role"]]["ops"]):
            raise Fail("RuleError", "scope allows more than its role")
        state.keys[key.name] = ActiveKey(key, st["role"], scope or PRESETS[st["role"]])
    elif op == "revoke":
        target = state.keys.get(st["name"])
        if target is None:
            raise Fail("RuleError", "revoke of a name with no active key")
        admins = [n for n, k in state.keys.items() if k.role == "admin"]
        if target.role == "admin" and admins == [st["name"]]:
            raise Fail("RuleError", "cannot revoke the last admin")
        del state.keys[st["name"]]
    elif op == "policy":
        state.policy = st["policy"]
    elif op == "register":
        if st["name"] in state.models:
            raise Fail("RuleError", "model already registered")
        if st["status"] == "retired":
            raise Fail("RuleError", "cannot register a retired model")
        state.models[st["name"]] = Model(st["status"], st["tier"], snap, {snap})
    elif op == "event":
        _event(state, st, snap)
    elif op == "tag":
        m = state.models.get(st["model"])
        if m is None or m.status == "retired":
            raise Fail("RuleError", "tag on an unknown or retired model")
        if st["target"] not in m.snapshots:
            raise Fail("RuleError", "tag target is not a register/event snapshot of that model")
        m.head = snap
    else:
        _membership(state, st, op, snap)


def _event(state: State, st: dict[str, Any], snap: str) -> None:
    m = state.models.get(st["model"])
    if m is None:
        raise Fail("RuleError", "event on an unknown model")
    et = st["event_type"]
    if et in RESERVED:
        raise Fail("RuleError", "reserved event type")
    if m.status == "retired" and et != "reactivated":
        raise Fail("RuleError", "a retired model takes only reactivated")
    if m.status != "retired" and et == "reactivated":
        raise Fail("RuleError", "reactivated on a model that is not retired")
    pol = state.policy
    if pol is not None:
        rule = pol["events"].get(et)
        if rule is None:
            raise Fail("PolicyError", f"event type {et} not in the policy")
        missing = [f for f in rule["required"] if st["payload"].get(f) is None]
        if missing:
            raise Fail("PolicyError", f"payload lacks {missing}")
    payload = st["payload"]
    if et == "updated":
        if not payload:
            raise Fail("RuleError", "empty updated payload")
        for k, v in payload.items():
            if k not in _UPDATABLE:
                raise Fail("RuleError", f"updated field {k}")
            if k == "metadata":
                if not isinstance(v, dict):
                    raise Fail("RuleError", "metadata is not an object")
            elif k == "purpose":
                if not (isinstance(v, str) and len(v) <= 4000 and _TEXT_RE.fullmatch(v)):
                    raise Fail("RuleError", "bad purpose")
            else:
                if not (
                    isinstance(v, str)
                    and len(v) <= 200
                    and _NAME_RE.fullmatch(v)
                    and name_problem(v) is None
                ):
                    raise Fail("RuleError", f"bad {k}")
                if k == "status" and v == "retired":
                    raise Fail("RuleError", "status cannot be set to retired")
        if isinstance(payload.get("tier"), str):
            m.tier = payload["tier"]
        if isinstance(payload.get("status"), str):
            m.status = payload["status"]
    if et == "retired":
        m.status = "retired"
    elif et == "reactivated":
        m.status = "active"
    m.head = snap
    m.snapshots.add(snap)


def _membership(state: State, st: dict[str, Any], op: str, snap: str) -> None:
    g, mem = st["group"], st["member"]
    grp = state.models.get(g)
    if grp is None:
        raise Fail("RuleError", "unknown group")
    if op == "member_add":
        mm = state.models.get(mem)
        if mm is None:
            raise Fail("RuleError", "unknown member")
        if state.policy is not None and (grp.status == "retired" or mm.status == "retired"):
            raise Fail("RuleError", "membership of a retired model under a policy")
        if mem in grp.members:
            raise Fail("RuleError", "already a member")
        if mem == g or _reach(state.models, mem, g):
            raise Fail("RuleError", "membership cycle")
        if _over_walk_limit(state.models, mem, g):
            raise Fail("RuleError", "member_add over the 4,096-link walk limit")
        grp.members.add(mem)
        mm.parents.add(g)
    else:
        if state.policy is not None and grp.status == "retired":
            raise Fail("RuleError", "membership change on a retired group under a policy")
        if mem not in grp.members:
            raise Fail("RuleError", "not a member")
        grp.members.discard(mem)
        state.models[mem].parents.discard(g)
    grp.head = snap


def _check_trusted(tr: Checkpoint, cp: Checkpoint, ft: Any) -> None:
    """bundle.md §2 step 4 (``ft`` is the bundle's ``from_trusted``, schema-checked)."""
    if tr.time is None:
        raise Malformed("the trusted checkpoint has no modelseal-time line")
    assert cp.time is not None
    if tr.size < cp.size and not tr.time < cp.time:
        raise Fail("TimeBoundError", "the trusted checkpoint is not older than the bundle's")
    if tr.origin != cp.origin:
        raise Fail("ConsistencyError", "the trusted checkpoint is of another origin")
    if tr.size > cp.size:
        raise Fail("ConsistencyError", "the bundle's checkpoint is smaller than the trusted one")
    if tr.size == cp.size:
        if tr.root != cp.root:
            raise Fail("ConsistencyError", "a fork: same size, another root")
        return
    if ft is None or ft["old_size"] != tr.size:
        raise Fail("ConsistencyError", "no consistency proof from the trusted size")
    proof = [b64hash(x) for x in ft["proof"]]
    verify_consistency(tr.size, cp.size, proof, tr.root, cp.root)


# --- bundle framing


MAGIC = b"\x89MSB\r\n\x1a\n"
_TOP = {"format", "version", "checkpoint", "at", "consistency", "next", "from_trusted", "entries"}


class _Obj(dict[str, Any]):
    """A JSON object that remembers the earlier occurrences of a member given twice."""

    dups: list[tuple[str, Any]]


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj()
    obj.dups = []
    for k, v in pairs:
        if k in obj:
            obj.dups.append((k, obj[k]))
        obj[k] = v
    return obj


def _variants(obj: Any) -> list[Any]:
    """``obj`` and, per earlier occurrence of a repeated member, ``obj`` holding that one."""
    if not isinstance(obj, _Obj):
        return [obj]
    return [obj] + [_Obj({**obj, k: v}) for k, v in obj.dups]


def load_json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        # a member given twice: each occurrence has to fit the schema, the last one counts
        # (bundle.md §1)
        obj = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_pairs,
            parse_constant=_no_constant,
            parse_float=_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, Malformed):
            raise
        raise Malformed(f"{what} is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise Malformed(f"{what} is not a JSON object")
    return obj


def _hash_list(v: Any, what: str) -> list[Any]:
    _need(
        isinstance(v, list) and all(isinstance(x, str) for x in v),
        f"{what} is not a list of strings",
    )
    assert isinstance(v, list)
    return v


def check_schema(doc: dict[str, Any], compact: bool) -> None:
    """bundle.md §1 (strict schema, step 2); base64 is decoded later (step 8)."""
    for variant in _variants(doc):
        _check_schema_one(variant, compact)


def _check_schema_one(doc: dict[str, Any], compact: bool) -> None:
    want = _TOP - ({"entries"} if compact else set())
    _need(set(doc) == want, "bundle has missing or unknown members")
    identify(doc)
    _need(isinstance(doc["checkpoint"], str), "checkpoint is not a string")
    for at in _variants(doc["at"]):
        _need(isinstance(at, dict) and set(at) == {"size", "time", "root"}, "at has wrong members")
        _need(type(at["size"]) is int and type(at["time"]) is int, "at.size/at.time not integers")
        _need(isinstance(at["root"], str), "at.root is not a string")
    _hash_list(doc["consistency"], "consistency")
    for nxt in _variants(doc["next"]):
        if nxt is None:
            continue
        _need(isinstance(nxt, dict) and set(nxt) == {"entry", "proof"}, "next has wrong members")
        _need(isinstance(nxt["entry"], str), "next.entry is not a string")
        _hash_list(nxt["proof"], "next.proof")
    for ft in _variants(doc["from_trusted"]):
        if ft is None:
            continue
        _need(isinstance(ft, dict) and set(ft) == {"old_size", "proof"}, "from_trusted members")
        _need(type(ft["old_size"]) is int, "from_trusted.old_size")
        _hash_list(ft["proof"], "from_trusted.proof")
    if not compact:
        _hash_list(doc["entries"], "entries")


def identify(doc: dict[str, Any]) -> None:
    """bundle.md §2 step 1."""
    if doc.get("format") != "modelseal-bundle":
        raise Malformed("not a bundle")
    v = doc.get("version")
    if type(v) is not int or v != 2:
        raise Malformed("unsupported version")


class _Stream:
    """The decompressed body of a compact bundle, read in bounded pieces."""

    def __init__(self, codec: int, body: bytes) -> None:
        self.codec = codec
        self.body = body
        self.buf = b""
        self.pos = 0
        self.dec: Any
        if codec == 0:
            self.dec = None
            self.buf = body
        elif codec == 1:
            self.dec = zlib.decompressobj()
        elif codec == 2:
            self.dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        elif codec == 3:
            self.dec = bz2.BZ2Decompressor()
        else:
            raise Malformed(f"unknown codec {codec}")
        self.fed = False

    def _more(self) -> bool:
        if self.dec is None:
            return False
        try:
            if self.codec == 1:
                if not self.fed:
                    self.fed = True
                    out = self.dec.decompress(self.body, 1 << 18)
                else:
                    out = self.dec.decompress(self.dec.unconsumed_tail, 1 << 18)
            else:
                if self.dec.eof:
                    return False
                data, self.fed = (b"" if self.fed else self.body), True
                out = self.dec.decompress(data, max_length=1 << 18)
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
            raise Malformed(f"damaged compressed data: {exc}") from exc
        if out:
            self.buf = self.buf[self.pos :] + out
            self.pos = 0
            return True
        return False

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            if not self._more():
                raise Malformed("compact body ends early")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def finish(self) -> None:
        if len(self.buf) - self.pos or self._more():
            raise Malformed("bytes after the last record")
        if self.dec is not None:
            if not self.dec.eof:
                raise Malformed("compressed stream does not end")
            if self.dec.unused_data:
                raise Malformed("bytes after the compressed stream")


# --- verification (bundle.md §2)


@dataclass
class Result:
    checks: list[str]
    n: int
    size: int
    models: int


def verify(data: bytes, keys: list[VKey], trusted: Checkpoint | None = None) -> Result:
    """bundle.md §2 without witnesses; ``trusted`` was verified with ``keys`` by the caller."""
    compact = data.startswith(b"\x89")
    stream: _Stream | None = None
    if compact:
        _need(data[:8] == MAGIC and len(data) >= 9, "bad compact magic")
        stream = _Stream(data[8], data[9:])
        h = int.from_bytes(stream.read(4), "big")
        _need(1 <= h <= 1 << 20, "compact header length out of range")
        doc = load_json_object(stream.read(h), "compact header")
    else:
        doc = load_json_object(data, "bundle")
    checks: list[str] = []
    identify(doc)  # step 1
    check_schema(doc, compact)  # step 2
    try:
        cp_bytes = doc["checkpoint"].encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Malformed("checkpoint holds a lone surrogate") from exc
    cp = parse_checkpoint(cp_bytes, keys)  # step 3
    if cp.time is None:
        raise Malformed("checkpoint has no modelseal-time line")
    big_n, big_r, big_t = cp.size, cp.root, cp.time
    checks.append(f"checkpoint of size {big_n} signed by {', '.join(cp.signers)}")
    if trusted is not None:  # step 4
        _check_trusted(trusted, cp, doc["from_trusted"])
        checks.append(f"extends the trusted checkpoint of size {trusted.size}")
    at = doc["at"]
    n, t = at["size"], at["time"]
    _need(0 <= n <= big_n, "at.size outside 0..N")  # step 5
    _need(0 <= t <= MAX_NANOS, "at.time outside 0..2^63-1")  # step 6
    if t > big_t:
        raise Fail("TimeBoundError", "the bundle's time is after its checkpoint's")
    raws: list[bytes]
    if stream is not None:  # step 7 while reading
        raws = []
        for _ in range(n):
            m = int.from_bytes(stream.read(2), "big")
            _need(m >= 1, "record length 0")
            raws.append(stream.read(m))
        stream.finish()
    else:
        _need(len(doc["entries"]) == n, "entry count differs from at.size")  # step 7
        raws = [b64(s) for s in doc["entries"]]  # step 8
    at_root = b64hash(at["root"])
    leaves = [leaf_hash(r) for r in raws]
    calc = mth(leaves)  # step 9
    if calc != at_root:
        raise Fail("RootMismatchError", f"entries hash to {calc.hex()}, at.root is {at_root.hex()}")
    checks.append(f"{n} entries hash to at.root")
    cons = [b64hash(x) for x in doc["consistency"]]  # step 10
    verify_consistency(n, big_n, cons, at_root, big_r)
    checks.append(f"consistency proof {n} -> {big_n}")
    nxt_entry: Entry | None = None  # step 11
    nxt_raw: bytes | None = None
    if n == big_n:
        _need(doc["next"] is None, "next present although n == N")
    else:
        _need(doc["next"] is not None, "next missing although n < N")
        nxt_raw = b64(doc["next"]["entry"])
        proof = [b64hash(x) for x in doc["next"]["proof"]]
        verify_inclusion(leaf_hash(nxt_raw), n, big_n, proof, big_r)
        nxt_entry = parse_entry(nxt_raw)
        if nxt_entry.index != n:
            raise Fail("ChainError", "next entry has the wrong index")
        if nxt_entry.recorded_at <= t:
            raise Fail("ChainError", "next entry is not later than the bundle's time")
        if nxt_entry.recorded_at > big_t:
            raise Fail("TimeBoundError", "next entry recorded after the checkpoint's time")
        checks.append(f"next entry {n} proven in the checkpoint, recorded after t")
    state = State()  # step 12
    first: Entry | None = None
    last: Entry | None = None
    ts = trusted.size if trusted is not None else None
    tt = trusted.time if trusted is not None and trusted.time is not None else 0
    if ts is not None and n < ts and nxt_entry is not None and nxt_entry.recorded_at > tt:
        raise Fail("TimeBoundError", "an entry the trusted checkpoint holds is dated after it")
    for raw in raws:
        e = apply(state, raw)
        if e.recorded_at > t:
            raise Fail("ChainError", f"entry {e.index} recorded after the bundle's time")
        if ts is not None and e.index == min(n, ts) - 1 and e.recorded_at > tt:
            raise Fail("TimeBoundError", "an entry the trusted checkpoint holds is dated after it")
        if ts is not None and ts < big_n and e.index == ts and e.recorded_at <= tt:
            raise Fail("TimeBoundError", "an entry the trusted checkpoint left out is back-dated")
        first = first or e
        last = e
    if ts is not None and ts == n < big_n and nxt_entry is not None and nxt_entry.recorded_at <= tt:
        raise Fail("TimeBoundError", "an entry the trusted checkpoint left out is back-dated")
    if n:
        checks.append(f"replayed {n} entries ({state.sigs_checked} statement signatures)")
    genesis = first  # step 13
    if n == 0 and nxt_raw is not None:
        genesis = apply(state, nxt_raw)
    if genesis is not None:
        if genesis.st.get("origin") != cp.origin:
            raise Fail("ChainError", "genesis origin is not the checkpoint's origin")
        if genesis.op != "genesis" or parse_vkey(genesis.st["log_key"]) not in cp.signer_keys:
            raise Fail(
                "SignatureError", "the checkpoint is not signed by the log key named at genesis"
            )
        checks.append("checkpoint signed by the genesis log key")
    if nxt_entry is not None and last is not None:  # step 14
        if nxt_entry.recorded_at < last.recorded_at:
            raise Fail("ChainError", "next entry recorded before entry n-1")
    return Result(checks, n, big_n, len(state.models))


def main(argv: list[str]) -> int:
    sys.set_int_max_str_digits(4300)  # entry.md §1.2: longer ones are malformed, whatever the env
    args = argv[1:]
    trusted_path: str | None = None
    if "--trusted" in args:
        i = args.index("--trusted")
        if i + 1 >= len(args):
            print("USAGE --trusted needs a file")
            return 2
        trusted_path = args[i + 1]
        del args[i : i + 2]
    if len(args) < 2:
        print("USAGE spec_verifier.py BUNDLE VKEY [VKEY ...] [--trusted CHECKPOINT]")
        return 2
    try:
        keys = [parse_vkey(s.strip()) for s in args[1:]]
    except Malformed as exc:
        print(f"USAGE bad key: {exc}")
        return 2
    try:
        with open(args[0], "rb") as fh:
            data = fh.read()
        tdata = None
        if trusted_path is not None:
            with open(trusted_path, "rb") as fh:
                tdata = fh.read()
    except OSError as exc:
        print(f"IOERROR {exc}")
        return 4
    try:
        trusted = parse_checkpoint(tdata, keys) if tdata is not None else None
        res = verify(data, keys, trusted)
    except Malformed as exc:
        print(f"MALFORMED {exc}")
        return 3
    except Fail as exc:
        print(f"FAIL {exc}")
        return 1
    except Exception as exc:  # a bug of this script, never a verdict
        print(f"ERROR internal: {type(exc).__name__}: {exc}")
        return 70
    print(f"OK {res.n} of {res.size} entries, {res.models} models; " + "; ".join(res.checks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
