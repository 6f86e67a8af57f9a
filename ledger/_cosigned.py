"""Cosigned checkpoints in the store: witness cosignature lines merged onto the log's own
checkpoints, kept in the named database ``cosigned`` (decisions §19).

Rows (keys sort by size, then by the checkpoint's time, which is the log's order):

* ``c`` u64(size) u64(checkpoint time, ns) -> the cosigned note: the checkpoint text, a
  blank line, the log's signature line, then one cosignature line per witness (distinct
  public keys), each the exact line as received, in the order they were added.
* ``k`` <witness vkey> -> empty: every witness key a stored line was verified with, so
  that ``audit`` verifies every stored cosignature again.

A store opened read-only before any writer created the database has no handle for it
(``Store.db["cosigned"]`` is None): every query here reads that as empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import lmdb

from verifier import (
    Checkpoint,
    Cosignature,
    MalformedInputError,
    NoteSignature,
    VerificationError,
    VerifierError,
    VerifierKey,
    WitnessKey,
    parse_note,
    signature_line,
    split_cosignature,
    verify_cosignatures,
)

from . import _tree as tree
from ._store import Store, from_u64, u64
from .errors import ArgumentError, AuditError, StoreError

DB = "cosigned"
NOTE = b"c"
KEY = b"k"


def handle(store: Store) -> Any:
    """The database's handle, or None where this process's store does not have it."""
    return store.db.get(DB)


def note_key(size: int, time: int) -> bytes:
    return NOTE + u64(size) + u64(time)


@dataclass(frozen=True)
class Row:
    """One stored cosigned checkpoint."""

    size: int
    time: int
    note: bytes


def _row(key: bytes, value: bytes) -> Row:
    return Row(from_u64(key[1:9]), from_u64(key[9:17]), value)


def rows(store: Store, txn: lmdb.Transaction, min_size: int = 0) -> Iterator[Row]:
    """The stored cosigned checkpoints of at least ``min_size`` entries, in log order."""
    db = handle(store)
    if db is None:
        return
    cur = txn.cursor(db=db)
    if not cur.set_range(NOTE + u64(min_size)):
        return
    for key, value in cur.iternext():
        if not bytes(key).startswith(NOTE):
            return
        yield _row(bytes(key), bytes(value))


def of_size(store: Store, txn: lmdb.Transaction, size: int) -> list[Row]:
    """The stored cosigned checkpoints of exactly ``size`` entries (one per signing time)."""
    found = []
    for row in rows(store, txn, size):
        if row.size != size:
            break
        found.append(row)
    return found


def latest_size(store: Store, txn: lmdb.Transaction) -> int | None:
    """The largest size with a stored cosigned checkpoint."""
    db = handle(store)
    if db is None:
        return None
    cur = txn.cursor(db=db)
    if cur.set_range(bytes([NOTE[0] + 1])):  # the first row after every ``c`` row
        if not cur.prev():
            return None
    elif not cur.last():
        return None
    key = bytes(cur.key())
    return from_u64(key[1:9]) if key.startswith(NOTE) else None


def _signatures(note: bytes) -> tuple[NoteSignature, ...]:
    """A stored note's cosignature lines (all but the log's first); StoreError if the row is
    damaged (``audit`` says how)."""
    try:
        sigs = parse_note(note).signatures[1:]
    except VerifierError as exc:
        raise StoreError(f"store is damaged: a cosigned checkpoint does not parse ({exc}); "
                         f"run audit()") from None
    if not sigs:
        raise StoreError("store is damaged: a cosigned checkpoint holds no cosignature; "
                         "run audit()")
    return sigs


def line_count(note: bytes) -> int:
    """How many cosignature lines a stored note holds."""
    return len(_signatures(note))


def best(candidates: Sequence[Row]) -> Row | None:
    """Of one size's rows, the one with the most cosignatures (the later one on a tie)."""
    chosen: Row | None = None
    for row in candidates:
        if chosen is None or line_count(row.note) >= line_count(chosen.note):
            chosen = row
    return chosen


def earliest(note: bytes) -> int:
    """The earliest timestamp among a stored note's cosignature lines (seconds)."""
    try:
        return min(split_cosignature(sig)[0] for sig in _signatures(note))
    except VerifierError as exc:
        raise StoreError(f"store is damaged: a stored cosignature is malformed ({exc}); "
                         f"run audit()") from None


# -- adding -----------------------------------------------------------------------------

def _check_tree(store: Store, txn: lmdb.Transaction, cp: Checkpoint, get: tree.Get,
                size: int, times: Times) -> None:
    """VerificationError unless ``cp`` is a checkpoint this log signed of its own tree: the
    stored checkpoint of its size, or one of the same tree at a time the entries allow (the
    log re-signs its current size with a later time, replacing the stored row)."""
    n = cp.size
    if not 0 < n <= size:
        raise VerificationError(f"a checkpoint this log never signed: size {n}, the log holds "
                                f"{size} entries")
    stored = store.get(txn, "checkpoints", u64(n))
    if stored is not None and parse_note(stored).text == parse_note(cp.note).text:
        return
    if cp.root != tree.root(get, n):
        raise VerificationError(f"a checkpoint this log never signed: its root of size {n} "
                                f"differs from the log's (a fork)")
    if not times.allow(n, cp.time):
        raise VerificationError(f"a checkpoint this log never signed: its time does not lie "
                                f"between entries {n - 1} and {n}")


class Times:
    """What times a checkpoint of size n may carry: from entry n-1's time, before entry n's
    (for the current size: up to the latest checkpoint's time)."""

    def __init__(self, recorded_at: Callable[[int], int], size: int,
                 cp_at: int | None) -> None:
        self._recorded_at = recorded_at  # index -> recorded_at (ns)
        self._size = size
        self._cp_at = cp_at

    def allow(self, n: int, t: int | None) -> bool:
        """Whether a checkpoint of size ``n`` (1..size) may carry time ``t``."""
        if t is None or t < self._recorded_at(n - 1):
            return False
        if n < self._size:
            return t < self._recorded_at(n)
        return self._cp_at is not None and t <= self._cp_at


def add(store: Store, txn: lmdb.Transaction, cp: Checkpoint, log_line: bytes,
        new: Sequence[Cosignature], witnesses: Sequence[WitnessKey], get: tree.Get,
        times: Times) -> tuple[Cosignature, ...]:
    """Merge ``new`` (verified cosignatures of ``cp``) into the stored row of ``cp``'s size
    and time; return the ones added (witnesses whose public key the row did not hold).
    VerificationError if ``cp`` is not a checkpoint of this log's tree (nothing written)."""
    size = from_u64(store.get(txn, "meta", b"size") or u64(0))
    _check_tree(store, txn, cp, get, size, times)
    assert cp.time is not None
    key = note_key(cp.size, cp.time)
    db = handle(store)
    raw = txn.get(key, db=db)
    text = parse_note(cp.note).text
    if raw is None:
        lines, present = [log_line], set()
    else:
        stored = bytes(raw)
        lines = [line_of(sig) for sig in parse_note(stored).signatures]
        known = {(k.name, k.key_id): k for k in [*stored_keys(store, txn), *witnesses]}
        held = verify_cosignatures(stored, list(known.values()))
        present = {c.witness.public_key for c in held}
    added = []
    for c in new:
        if c.witness.public_key in present:
            continue
        present.add(c.witness.public_key)
        lines.append(c.line)
        added.append(c)
    if not added:
        return ()
    merged = text + b"\n" + b"".join(lines)
    try:
        parse_note(merged)
    except MalformedInputError as exc:  # more lines than a signed note may hold
        raise ArgumentError(f"the cosigned checkpoint would be too large: {exc}") from None
    store.put(txn, DB, key, merged)
    for c in added:
        store.put(txn, DB, KEY + c.witness.vkey().encode("utf-8"), b"")
    return tuple(added)


def line_of(sig: NoteSignature) -> bytes:
    # the exact line: a signature line has one canonical base64 encoding (note.parse_note)
    return signature_line(sig.name, sig.key_id, sig.signature)


def stored_keys(store: Store, txn: lmdb.Transaction) -> list[WitnessKey]:
    """The witness keys recorded with the stored cosignatures."""
    db = handle(store)
    if db is None:
        return []
    cur = txn.cursor(db=db)
    found = []
    if cur.set_range(KEY):
        for key in cur.iternext(keys=True, values=False):
            raw = bytes(key)
            if not raw.startswith(KEY):
                break
            found.append(WitnessKey.parse(raw[1:].decode("utf-8")))
    return found


# -- audit ------------------------------------------------------------------------------

def audit(store: Store, txn: lmdb.Transaction, log_key: VerifierKey, get: tree.Get,
          times: Times) -> None:
    """Check every stored cosigned checkpoint: key, log signature, a checkpoint of the
    log's own tree at a time its entries allow, and each cosignature line verified by a
    recorded witness key (one line per witness)."""
    db = handle(store)
    if db is None:
        return
    where_keys = "cosigned witness keys"
    try:
        witnesses = stored_keys(store, txn)
    except (VerifierError, UnicodeDecodeError) as exc:
        raise AuditError(f"a recorded witness key does not parse ({exc})", where_keys) from None
    size = from_u64(store.get(txn, "meta", b"size") or u64(0))
    cur = txn.cursor(db=db)
    for raw_key, raw_value in cur.iternext():
        key, note = bytes(raw_key), bytes(raw_value)
        if key.startswith(KEY):
            continue
        where = f"cosigned row {key.hex()}"
        if not key.startswith(NOTE) or len(key) != 17:
            raise AuditError("cosigned holds a row of unknown shape", where)
        row = _row(key, note)
        where = f"cosigned checkpoint of size {row.size} at {row.time}"
        try:
            cp = Checkpoint.parse_note(note, [log_key])
            if cp.size != row.size or cp.time != row.time:
                raise AuditError("cosigned checkpoint does not match its key", where)
            _check_tree(store, txn, cp, get, size, times)
            parsed = parse_note(note)
            if parsed.signatures[0].name != log_key.name or \
                    parsed.signatures[0].key_id != log_key.key_id:
                raise AuditError("cosigned checkpoint's first line is not the log's", where)
            cosigs = verify_cosignatures(note, witnesses)
        except VerifierError as exc:
            raise AuditError(f"cosigned checkpoint does not verify ({exc})", where) from None
        if len(cosigs) != len(parsed.signatures) - 1 or not cosigs:
            raise AuditError("cosigned checkpoint holds a line that is no recorded witness's "
                             "cosignature, or none", where)
