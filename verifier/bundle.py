"""Point-in-time proof bundles (specs/bundle.md): encode, and verify offline."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import msgspec
from msgspec import Struct

from .checkpoint import Checkpoint
from .encoding import MAX_UINT64, b64decode, b64encode, decode_hash
from .entry import ParsedEntry, parse_entry
from .errors import (
    ChainError,
    ConsistencyError,
    MalformedInputError,
    RootMismatchError,
    SignatureError,
)
from .keys import VerifierKey
from .merkle import leaf_hash, root_from_leaf_hashes
from .proofs import verify_consistency, verify_inclusion
from .replay import Inventory, ModelState
from .timeutil import from_ns, iso

BUNDLE_FORMAT: Literal["modelseal-bundle"] = "modelseal-bundle"
BUNDLE_VERSION = 1


class _At(Struct, forbid_unknown_fields=True):
    size: int
    time: int
    root: str


class _Next(Struct, forbid_unknown_fields=True):
    entry: str
    proof: list[str]


class _FromTrusted(Struct, forbid_unknown_fields=True):
    old_size: int
    proof: list[str]


class _Bundle(Struct, forbid_unknown_fields=True):
    format: Literal["modelseal-bundle"]
    version: int
    checkpoint: str
    at: _At
    consistency: list[str]
    next: _Next | None
    from_trusted: _FromTrusted | None
    entries: list[str]


class _Head(Struct):
    format: Any = None
    version: Any = None


def encode_bundle(
    *,
    checkpoint: bytes,
    size: int,
    time: int,
    root: bytes,
    consistency: Sequence[bytes],
    entries: Sequence[bytes],
    next_entry: bytes | None,
    next_proof: Sequence[bytes],
    from_trusted: tuple[int, Sequence[bytes]] | None = None,
) -> bytes:
    """The bundle bytes. Preconditions: entries are 0..size-1 of the checkpoint's
    log; ``next_entry`` is entry ``size`` (None when size is the checkpoint size)."""
    doc = _Bundle(
        format=BUNDLE_FORMAT,
        version=BUNDLE_VERSION,
        checkpoint=checkpoint.decode("utf-8"),
        at=_At(size, time, b64encode(root)),
        consistency=[b64encode(h) for h in consistency],
        next=None if next_entry is None
        else _Next(b64encode(next_entry), [b64encode(h) for h in next_proof]),
        from_trusted=None if from_trusted is None
        else _FromTrusted(from_trusted[0], [b64encode(h) for h in from_trusted[1]]),
        entries=[b64encode(e) for e in entries],
    )
    return msgspec.json.encode(doc, order="sorted")


@dataclass(frozen=True)
class VerifiedInventory:
    """What a bundle proves: the inventory as of (size, time) under a signed checkpoint."""

    checkpoint: Checkpoint
    size: int
    time: int
    root: bytes
    inventory: Inventory
    trusted: Checkpoint | None
    checks: tuple[str, ...] = field(default=())

    @property
    def at(self) -> datetime:
        """The point in time, UTC."""
        return from_ns(self.time)

    @property
    def models(self) -> Mapping[str, ModelState]:
        """Each model's state as of the point in time, by name."""
        return self.inventory.models

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON summary: checkpoint, point in time, keys, models, checks."""
        inv = self.inventory
        return {
            "origin": self.checkpoint.origin,
            "checkpoint": {
                "size": self.checkpoint.size,
                "root": b64encode(self.checkpoint.root),
                "signers": list(self.checkpoint.signers),
            },
            "at": {"size": self.size, "time": iso(self.time), "time_ns": self.time,
                   "root": b64encode(self.root)},
            "trusted": None if self.trusted is None
            else {"size": self.trusted.size, "root": b64encode(self.trusted.root)},
            "keys": [
                {"name": r.name, "key": r.vkey, "role": r.role, "granted_at": iso(r.granted_at),
                 "granted_by": r.granted_by,
                 "revoked_at": None if r.revoked_at is None else iso(r.revoked_at),
                 "revoked_by": r.revoked_by}
                for r in inv.key_history
            ],
            "models": [m.to_json() for m in sorted(inv.models.values(), key=lambda m: m.name)],
            "checks": list(self.checks),
        }


def _decode(data: bytes) -> _Bundle:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a bundle is bytes, not {type(data).__name__}")
    try:
        head = msgspec.json.decode(data, type=_Head)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise MalformedInputError(f"bundle is not a JSON object: {exc}") from exc
    if head.format != BUNDLE_FORMAT:
        raise MalformedInputError(f"not a {BUNDLE_FORMAT} file")
    if head.version != BUNDLE_VERSION:
        raise MalformedInputError(f"unsupported bundle version {head.version!r}")
    try:
        return msgspec.json.decode(data, type=_Bundle)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise MalformedInputError(f"bundle: {exc}") from exc


def _hashes(items: list[str], what: str) -> list[bytes]:
    return [decode_hash(h, f"{what} {i}") for i, h in enumerate(items)]


def _check_trusted(b: _Bundle, cp: Checkpoint, trusted: Checkpoint, checks: list[str]) -> None:
    if trusted.origin != cp.origin:
        raise ConsistencyError(f"trusted checkpoint is for {trusted.origin!r}, not {cp.origin!r}")
    if trusted.size > cp.size:
        raise ConsistencyError(
            f"bundle checkpoint (size {cp.size}) is older than the trusted one "
            f"(size {trusted.size}): a rollback or a stale bundle"
        )
    if trusted.size == cp.size:
        if trusted.root != cp.root:
            raise ConsistencyError("two checkpoints of one size with different roots: a fork",
                                   expected=trusted.root, calculated=cp.root)
    else:
        if b.from_trusted is None or b.from_trusted.old_size != trusted.size:
            raise ConsistencyError(
                f"bundle has no consistency proof from the trusted size {trusted.size}"
            )
        verify_consistency(trusted.size, cp.size, _hashes(b.from_trusted.proof, "trusted proof"),
                           trusted.root, cp.root)
    checks.append(f"checkpoint {cp.size} extends the trusted checkpoint {trusted.size}")


def verify_bundle(
    bundle: bytes, keys: Sequence[VerifierKey], *, trusted: Checkpoint | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifiedInventory:
    """Verify a bundle with nothing but the log's keys; return the inventory it proves.

    Checks: the checkpoint's signature; consistency from ``trusted`` if given;
    the entries' Merkle root and its consistency with the checkpoint; the entry
    after the cut (inclusion and time) so no entry before the time is left out;
    every entry's order, chain, actor grant, signature and rule by replay.
    Raises MalformedInputError or a VerificationError subclass. ``progress(done,
    total)`` is called now and then during the replay, if given.
    """
    b = _decode(bytes(bundle))
    checks: list[str] = []
    cp = Checkpoint.parse_note(b.checkpoint.encode("utf-8"), keys)
    checks.append(f"checkpoint signed by {', '.join(cp.signers)}")
    if trusted is not None:
        _check_trusted(b, cp, trusted, checks)
    n, t = b.at.size, b.at.time
    if not 0 <= n <= cp.size:
        raise MalformedInputError(f"point-in-time size {n} is not within 0..{cp.size}")
    if not 0 <= t <= MAX_UINT64 >> 1:
        raise MalformedInputError("point-in-time time is out of range")
    if len(b.entries) != n:
        raise MalformedInputError(f"bundle says size {n} but holds {len(b.entries)} entries")
    at_root = decode_hash(b.at.root, "point-in-time root")
    entries = [b64decode(e, f"entry {i}") for i, e in enumerate(b.entries)]
    calculated = root_from_leaf_hashes(leaf_hash(e) for e in entries)
    if calculated != at_root:
        raise RootMismatchError("entries do not hash to the point-in-time root",
                                expected=at_root, calculated=calculated)
    checks.append(f"{n} entries hash to the root of size {n}")
    verify_consistency(n, cp.size, _hashes(b.consistency, "consistency proof"), at_root, cp.root)
    checks.append(f"tree of size {n} is a prefix of the checkpoint (size {cp.size})")
    nxt = _check_cut(b, cp, n, t)
    checks.append(f"entry {n}, the first after the time bound, is in the checkpoint and later"
                  if nxt is not None else f"the entries cover the whole checkpoint (size {n})")
    inv = Inventory()
    for i, data in enumerate(entries):
        if progress is not None and i % 1024 == 0:
            progress(i, n)
        p = inv.apply(data)
        if p.entry.recorded_at > t:
            raise ChainError(f"entry {p.entry.index} was recorded after the bundle's time")
    origin, log_key = inv.origin, inv.log_key
    if n == 0 and nxt is not None:
        first = Inventory(keep_timelines=False)
        first.apply_parsed(nxt)  # the log's genesis: its origin, keys and signature
        origin, log_key = first.origin, first.log_key
    if log_key is not None:
        if origin != cp.origin:
            raise ChainError(f"genesis origin differs from the checkpoint's {cp.origin!r}")
        if log_key not in cp.signed_by:
            raise SignatureError("the checkpoint is not signed by the log key named at genesis")
        checks.append(f"the checkpoint is signed by the log key named at genesis ({log_key.name})")
    if nxt is not None and nxt.entry.recorded_at < inv.last_recorded_at:
        raise ChainError(f"entry {n} was recorded before entry {n - 1}")
    checks.append("every entry's order, chain link, actor grant, signature and rules hold")
    return VerifiedInventory(cp, n, t, at_root, inv, trusted, tuple(checks))


def _check_cut(b: _Bundle, cp: Checkpoint, n: int, t: int) -> ParsedEntry | None:
    """Check that no entry recorded by time ``t`` is left out; return the next entry."""
    if n == cp.size:
        if b.next is not None:
            raise MalformedInputError("bundle has a next entry, but covers the whole checkpoint")
        return None
    if b.next is None:
        raise MalformedInputError("bundle lacks the entry after the time bound")
    data = b64decode(b.next.entry, "next entry")
    verify_inclusion(leaf_hash(data), n, cp.size, _hashes(b.next.proof, "next proof"), cp.root)
    nxt = parse_entry(data)
    if nxt.entry.index != n:
        raise ChainError(f"next entry says index {nxt.entry.index}, expected {n}")
    if nxt.entry.recorded_at <= t:
        raise ChainError(
            f"entry {n} was recorded at {iso(nxt.entry.recorded_at)}, not after the bundle's "
            f"time {iso(t)}: the bundle leaves out entries"
        )
    return nxt
