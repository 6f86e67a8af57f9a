"""Point-in-time proof bundles (specs/bundle.md): encode, and verify offline."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

import msgspec
from msgspec import Struct

from .checkpoint import Checkpoint
from .compact import MAGIC, CompactReader, is_compact
from .cosignature import WitnessKey, require_witnesses
from .encoding import MAX_UINT64, b64decode, b64encode, decode_hash
from .entry import ParsedEntry, parse_entry
from .errors import (
    ChainError,
    ConsistencyError,
    MalformedInputError,
    RootMismatchError,
    SignatureError,
    TimeBoundError,
    VerificationError,
    VerifierError,
)
from .keys import VerifierKey
from .merkle import EMPTY_ROOT, leaf_hash
from .proofs import verify_consistency, verify_inclusion
from .replay import Inventory, ModelState
from .sigpool import CHUNK, DeferredSignatures, SignatureStats
from .timeutil import from_ns, iso
from .witnessed import Witnessed, check_after_witnessed, witnessed

BUNDLE_FORMAT: Literal["modelseal-bundle"] = "modelseal-bundle"
BUNDLE_VERSION = 2
_sha256 = hashlib.sha256


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


class _Header(Struct, forbid_unknown_fields=True):
    """A bundle document without its entries: the compact encoding's header."""

    format: Literal["modelseal-bundle"]
    version: int
    checkpoint: str
    at: _At
    consistency: list[str]
    next: _Next | None
    from_trusted: _FromTrusted | None


class _Bundle(_Header, forbid_unknown_fields=True):
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
    return b"".join(bundle_chunks(
        checkpoint=checkpoint, size=size, time=time, root=root, consistency=consistency,
        entries=entries, next_entry=next_entry, next_proof=next_proof,
        from_trusted=from_trusted))


_ENTRIES = b'"entries":[]'


def bundle_chunks(
    *,
    checkpoint: bytes,
    size: int,
    time: int,
    root: bytes,
    consistency: Sequence[bytes],
    entries: Iterable[bytes],
    next_entry: bytes | None,
    next_proof: Sequence[bytes],
    from_trusted: tuple[int, Sequence[bytes]] | None = None,
) -> Iterator[bytes]:
    """``encode_bundle``'s bytes in pieces, taking the entries one at a time (so a
    bundle is never whole in memory). Same preconditions."""
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
        entries=[],
    )
    # Keys are sorted and JSON strings escape their quotes, so the first raw
    # '"entries":[]' is the member itself; base64 needs no escaping.
    head, sep, tail = msgspec.json.encode(doc, order="sorted").partition(_ENTRIES)
    assert sep, "the bundle encoding has no entries member"
    yield head + _ENTRIES[:-1]
    comma = b""
    for data in entries:
        yield comma + b'"' + b64encode(data).encode("ascii") + b'"'
        comma = b","
    yield b"]" + tail


@dataclass(frozen=True)
class VerifiedInventory:
    """What a bundle proves: the inventory as of (size, time) under a signed checkpoint.

    ``time`` is the bundle's point in time; the same inventory holds for every moment
    from the last entry's ``recorded_at`` up to ``proven_until``, the last nanosecond
    the signed data covers (the checkpoint's own time, or just before the next entry).
    ``before_genesis``: ``time`` is before the log's first entry (at ``genesis_at``).
    """

    checkpoint: Checkpoint
    size: int
    time: int
    root: bytes
    inventory: Inventory
    trusted: Checkpoint | None
    checks: tuple[str, ...] = field(default=())
    proven_until: int = 0
    before_genesis: bool = False
    genesis_at: int | None = None
    witnessed: Witnessed | None = None
    """What the configured witnesses attest about the checkpoint (None without witnesses)."""
    trusted_witnessed: Witnessed | None = None
    signatures: SignatureStats | None = None
    """How the entries' signatures were checked (count, processes, CPU time)."""

    @property
    def checkpoint_time(self) -> int:
        """When the log signed the checkpoint (nanoseconds)."""
        return self.checkpoint.time or 0

    def time_statement(self) -> str:
        """One sentence saying exactly what the bundle proves about time."""
        if self.before_genesis:
            if self.genesis_at is None:
                return f"the log held no entries at its checkpoint ({iso(self.proven_until)})"
            return (f"{iso(self.time)} is before the log's genesis at {iso(self.genesis_at)}: "
                    f"the log held no entries then")
        return (f"every entry the log recorded up to {iso(self.time)} is included, and no "
                f"other entry was recorded up to {iso(self.proven_until)} (checkpoint signed "
                f"at {iso(self.checkpoint_time)})")

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
                "time": iso(self.checkpoint_time), "time_ns": self.checkpoint_time,
                "signers": list(self.checkpoint.signers),
            },
            "at": {"size": self.size, "time": iso(self.time), "time_ns": self.time,
                   "root": b64encode(self.root),
                   "proven_until": iso(self.proven_until), "proven_until_ns": self.proven_until,
                   "before_genesis": self.before_genesis,
                   "genesis_at": None if self.genesis_at is None else iso(self.genesis_at),
                   "proven": self.time_statement()},
            "trusted": None if self.trusted is None
            else {"size": self.trusted.size, "root": b64encode(self.trusted.root),
                  "time": iso(self.trusted.time or 0)},
            "keys": [
                {"name": r.name, "key": r.vkey, "role": r.role, "granted_at": iso(r.granted_at),
                 "granted_by": r.granted_by,
                 "revoked_at": None if r.revoked_at is None else iso(r.revoked_at),
                 "revoked_by": r.revoked_by, "scope": msgspec.to_builtins(r.effective_scope),
                 "scope_is_preset": r.scope is None}
                for r in inv.key_history
            ],
            "policy": None if inv.policy is None else msgspec.to_builtins(inv.policy),
            "models": [m.to_json() for m in sorted(inv.models.values(), key=lambda m: m.name)],
            "checks": list(self.checks),
            "witnesses": None if self.witnessed is None else self.witnessed.to_json(),
            "trusted_witnesses": None if self.trusted_witnessed is None
            else self.trusted_witnessed.to_json(),
            "signatures": None if self.signatures is None else self.signatures.to_json(),
        }


def _decode(data: bytes) -> _Bundle:
    """The JSON bundle document (steps 1 and 2)."""
    return _decode_as(data, _Bundle)


def decode_header(data: bytes) -> _Header:
    """A compact bundle's header: steps 1 and 2 on the document without ``entries``."""
    return _decode_as(data, _Header)


_T = TypeVar("_T", _Bundle, _Header)


def _decode_as(data: bytes, kind: type[_T]) -> _T:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a bundle is bytes, not {type(data).__name__}")
    try:
        head = msgspec.json.decode(data, type=_Head)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise MalformedInputError(f"bundle is not a JSON object: {exc}") from exc
    if head.format != BUNDLE_FORMAT:
        raise MalformedInputError(f"not a {BUNDLE_FORMAT} file")
    if head.version != BUNDLE_VERSION:
        raise MalformedInputError(
            f"unsupported bundle version {head.version!r} (this verifier reads version "
            f"{BUNDLE_VERSION}; export the bundle again with a current modelseal)")
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise MalformedInputError(f"bundle: {exc}") from exc


def _hashes(items: list[str], what: str) -> list[bytes]:
    return [decode_hash(h, f"{what} {i}") for i, h in enumerate(items)]


def _log_time(cp: Checkpoint, what: str) -> int:
    if cp.time is None:
        raise MalformedInputError(f"{what} carries no modelseal-time line, so nothing bounds "
                                  f"its time (specs/checkpoint.md)")
    return cp.time


def _check_trusted(b: _Header, cp: Checkpoint, trusted: Checkpoint, checks: list[str]) -> None:
    # a larger checkpoint holds an entry recorded after the smaller one's time
    if _log_time(trusted, "the trusted checkpoint") >= _log_time(cp, "the checkpoint") and (
            trusted.size < cp.size):
        raise TimeBoundError(
            f"the bundle's checkpoint (size {cp.size}) was signed at {iso(cp.time or 0)}, "
            f"not after the smaller trusted checkpoint ({iso(trusted.time or 0)})")
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


def _witness(cp: Checkpoint, trusted: Checkpoint | None, witnesses: Sequence[WitnessKey],
             threshold: int, checks: list[str]) -> tuple[Witnessed | None, Witnessed | None]:
    """The witnesses' cosignatures of the checkpoint (at least ``threshold`` distinct ones,
    else WitnessError) and of the trusted checkpoint; neither post-dated."""
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise ValueError("the witness threshold is a non-negative int")
    if threshold > len({w.public_key for w in witnesses}):
        raise ValueError(f"a threshold of {threshold} needs at least {threshold} distinct "
                         f"witness keys, {len(witnesses)} given")
    if not witnesses:
        return None, None
    own = {k.public_key for k in cp.signed_by}
    if any(w.public_key in own for w in witnesses):
        raise ValueError("a witness key holds the log's own key: the log cannot witness "
                         "itself")
    w = witnessed(cp, witnesses, threshold)
    require_witnesses(w.cosignatures, threshold)
    checks.append(f"cosigned by {len(w.cosignatures)} of {len(witnesses)} configured "
                  f"witnesses (threshold {threshold}), not post-dated: {w.statement()}")
    tw = None
    if trusted is not None:
        tw = witnessed(trusted, witnesses, threshold, "the trusted checkpoint")
        if tw.by is not None:
            checks.append(f"trusted checkpoint: {tw.statement()}")
    return w, tw


def verify_bundle(
    bundle: bytes, keys: Sequence[VerifierKey], *, trusted: Checkpoint | None = None,
    progress: Callable[[int, int], None] | None = None,
    witnesses: Sequence[WitnessKey] = (), witness_threshold: int = 0, jobs: int = 1,
) -> VerifiedInventory:
    """Verify a bundle with nothing but the log's keys; return the inventory it proves.

    Checks: the checkpoint's signature; consistency from ``trusted`` if given;
    the entries' Merkle root and its consistency with the checkpoint; the entry
    after the cut (inclusion and time) so no entry before the time is left out;
    every entry's order, chain, actor grant, signature and rule by replay.
    With ``witnesses``: at least ``witness_threshold`` of them cosigned the checkpoint
    (WitnessError), which is not post-dated past their cosignatures; a cosigned trusted
    checkpoint also bounds the first entry it left out from below (specs/checkpoint.md).
    ValueError if the threshold exceeds the distinct witnesses given.
    Raises MalformedInputError or a VerificationError subclass. ``progress(done,
    total)`` is called now and then during the replay, if given. ``bundle`` is JSON or
    the compact encoding (told by its first bytes; verifier.compact_bundle reads a compact
    file as a stream). ``jobs`` > 1 checks signatures on that many worker processes
    (verifier.sigpool); a worker lost is IncompleteError, never a verdict.
    """
    if not isinstance(bundle, (bytes, bytearray, memoryview)):
        raise TypeError(f"a bundle is bytes, not {type(bundle).__name__}")
    data = bytes(bundle)
    if is_compact(data[:len(MAGIC)]):
        reader = CompactReader(io.BytesIO(data))
        head = decode_header(reader.header)
        return verify_parts(head, reader.entries, None, keys, trusted=trusted,
                            progress=progress, witnesses=witnesses,
                            witness_threshold=witness_threshold, jobs=jobs)
    b = _decode(data)
    del data

    def entries(n: int) -> Iterator[bytes]:
        for i, e in enumerate(b.entries):
            yield b64decode(e, f"entry {i}")

    return verify_parts(b, entries, len(b.entries), keys, trusted=trusted,
                        progress=progress, witnesses=witnesses,
                        witness_threshold=witness_threshold, jobs=jobs)


_POOL_MIN = 8192
"""A bundle of fewer entries is checked without worker processes (starting them costs
more than it saves)."""
_CHUNK = CHUNK


def verify_parts(
    b: _Header, entries: Callable[[int], Iterable[bytes]], count: int | None,
    keys: Sequence[VerifierKey], *, trusted: Checkpoint | None = None,
    progress: Callable[[int, int], None] | None = None,
    witnesses: Sequence[WitnessKey] = (), witness_threshold: int = 0, jobs: int = 1,
) -> VerifiedInventory:
    """``verify_bundle`` over a decoded header and ``entries(n)``, an iterable of the
    exact entry bytes taken once, in order (it may raise MalformedInputError, e.g. for a
    stream that ends early, or yield more or fewer than ``n``: both are refused).
    ``count``: the number of entries when known before reading them (step 7), else None.

    The entries are hashed and replayed in one pass, with bounded memory besides the
    inventory; the verdict is that of the steps in the order of specs/bundle.md §2:
    a failure found during the replay is held until the root, the consistency proof and
    the cut have been checked, and a signature failure (checked later, perhaps on other
    processes) is reported for the earliest entry it concerns.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError("jobs is an int >= 1")
    checks: list[str] = []
    cp = Checkpoint.parse_note(b.checkpoint.encode("utf-8"), keys)
    cp_time = _log_time(cp, "the checkpoint")
    checks.append(f"checkpoint signed by {', '.join(cp.signers)} at {iso(cp_time)}")
    cp_w, trusted_w = _witness(cp, trusted, witnesses, witness_threshold, checks)
    if trusted is not None:
        _check_trusted(b, cp, trusted, checks)
    n, t = b.at.size, b.at.time
    if not 0 <= n <= cp.size:
        raise MalformedInputError(f"point-in-time size {n} is not within 0..{cp.size}")
    if not 0 <= t <= MAX_UINT64 >> 1:
        raise MalformedInputError("point-in-time time is out of range")
    if t > cp_time:
        raise TimeBoundError(
            f"the bundle claims the inventory as of {iso(t)}, but its checkpoint was signed at "
            f"{iso(cp_time)}: nothing signed proves what the log held after that")
    if count is not None and count != n:
        raise MalformedInputError(f"bundle says size {n} but holds {count} entries")
    at_root = decode_hash(b.at.root, "point-in-time root")
    # Steps 10 and 11 need no entry: checked now, a failure reported after step 9.
    held: VerifierError | None = None
    nxt: ParsedEntry | None = None
    try:
        verify_consistency(n, cp.size, _hashes(b.consistency, "consistency proof"), at_root,
                           cp.root)
        nxt = _check_cut(b, cp, n, t)
        if nxt is not None and nxt.entry.recorded_at > cp_time:
            raise TimeBoundError(f"entry {n} was recorded at {iso(nxt.entry.recorded_at)}, "
                                 f"after its checkpoint was signed ({iso(cp_time)})")
        if trusted is not None and nxt is not None and n < trusted.size:
            _check_before_trusted(nxt, trusted)
    except (MalformedInputError, VerificationError) as exc:
        held = exc
    # The trusted checkpoint bounds the entries on both sides of its size: the last it holds
    # was recorded by its time, the first it left out after it (times never go back).
    last_old = None if trusted is None or trusted.size == 0 else min(n, trusted.size) - 1
    first_new = None if trusted is None or trusted.size >= cp.size else trusted.size
    sigs = DeferredSignatures(jobs if n >= _POOL_MIN else 1, chunk=_CHUNK)
    inv = Inventory(check_signature=sigs)
    genesis_at: int | None = None
    replay_error: VerifierError | None = None
    roots = _RootBuilder()
    done = 0
    with sigs:
        for i, data in enumerate(entries(n)):
            if i >= n:
                raise MalformedInputError(f"bundle says size {n} but holds more entries")
            if progress is not None and i % 1024 == 0:
                progress(i, n)
            done = i + 1
            if held is not None or replay_error is not None:
                roots.add(leaf_hash(data))
                continue
            try:
                p = inv.apply(data)
            except (MalformedInputError, VerificationError) as exc:
                replay_error = exc
                roots.add(leaf_hash(data))
                continue
            roots.add(p.leaf_hash)
            try:
                if p.entry.recorded_at > t:
                    raise ChainError(f"entry {p.entry.index} was recorded after the bundle's "
                                     f"time")
                if i == first_new:
                    _check_after_trusted(p, trusted, trusted_w)
                if i == last_old:
                    _check_before_trusted(p, trusted)
            except VerificationError as exc:
                replay_error = exc
            if i == 0:
                genesis_at = p.entry.recorded_at
        if done != n:
            raise MalformedInputError(f"bundle says size {n} but holds {done} entries")
        calculated = roots.root()
        if calculated != at_root:
            raise RootMismatchError("entries do not hash to the point-in-time root",
                                    expected=at_root, calculated=calculated)
        checks.append(f"{n} entries hash to the root of size {n}")
        if held is not None:
            raise held
        checks.append(f"tree of size {n} is a prefix of the checkpoint (size {cp.size})")
        checks.append(f"entry {n}, the first after the time bound, is in the checkpoint and "
                      f"later" if nxt is not None
                      else f"the entries cover the whole checkpoint (size {n})")
        stats = sigs.settle()
    if replay_error is not None:
        raise replay_error
    if first_new == n and nxt is not None:
        _check_after_trusted(nxt, trusted, trusted_w)
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
    proven_until = cp_time if nxt is None else nxt.entry.recorded_at - 1
    before_genesis = n == 0
    if n == 0 and nxt is not None:
        genesis_at = nxt.entry.recorded_at
    checks.append(f"no other entry was recorded up to {iso(proven_until)}")
    return VerifiedInventory(cp, n, t, at_root, inv, trusted, tuple(checks), proven_until,
                             before_genesis, genesis_at, cp_w, trusted_w, stats)


class _RootBuilder:
    """RFC 9162's MTH over leaf hashes added one at a time, in O(log n) memory."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []

    def add(self, h: bytes) -> None:
        stack, height = self._stack, 0
        while stack and stack[-1][0] == height:
            h = _sha256(b"\x01" + stack.pop()[1] + h).digest()
            height += 1
        stack.append((height, h))

    def root(self) -> bytes:
        """The root of the leaves added so far (the empty root for none)."""
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            acc = _sha256(b"\x01" + left + acc).digest()
        return acc


def _check_before_trusted(p: ParsedEntry, trusted: Checkpoint | None) -> None:
    """An entry the trusted checkpoint holds was recorded by that checkpoint's time; else
    the log dated it later than it was committed (and could hide it from a date)."""
    assert trusted is not None and trusted.time is not None
    if p.entry.recorded_at > trusted.time:
        raise TimeBoundError(
            f"entry {p.entry.index} says it was recorded at {iso(p.entry.recorded_at)}, but the "
            f"trusted checkpoint signed at {iso(trusted.time)} already held it")


def _check_after_trusted(p: ParsedEntry, trusted: Checkpoint | None,
                         w: Witnessed | None = None) -> None:
    """Entry ``trusted.size`` (the first the trusted checkpoint left out) must have been
    recorded after that checkpoint was signed, and not long before witnesses cosigned it;
    else it was back-dated."""
    assert trusted is not None and trusted.time is not None
    if w is not None:
        check_after_witnessed(p.entry.recorded_at, p.entry.index, w)
    if p.entry.recorded_at <= trusted.time:
        raise TimeBoundError(
            f"entry {p.entry.index} says it was recorded at {iso(p.entry.recorded_at)}, but the "
            f"trusted checkpoint signed at {iso(trusted.time)} did not include it: back-dated")


def _check_cut(b: _Header, cp: Checkpoint, n: int, t: int) -> ParsedEntry | None:
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
