"""Read-side lookups over one read (or the batch's write) transaction."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import lmdb

from verifier import ModelState, parse_entry, statement_model

from . import _tree as tree
from ._codec import decode_state
from .results import Snapshot
from .errors import ArgumentError, UnknownEntryError
from ._store import MAX_NAME_BYTES, Store, from_u64, u64
from ._versions import states_before


def size(store: Store, txn: lmdb.Transaction) -> int:
    """The number of entries."""
    raw = store.get(txn, "meta", b"size")
    return 0 if raw is None else from_u64(raw)


def getter(store: Store, txn: lmdb.Transaction) -> tree.Get:
    """A node getter for the tree functions."""
    return lambda level, index: store.need(txn, "nodes", tree.node_key(level, index))


MIN_PREFIX = 8
"""The shortest snapshot-hash prefix accepted, in hex digits (tables print 12)."""


def entry_index(store: Store, txn: lmdb.Transaction, ref: int | str) -> int:
    """The index of an entry given by index, snapshot hash, or a unique prefix of at least
    MIN_PREFIX hex digits of one (either case); KeyError if absent, ValueError if ``ref``
    is not hex, too short, or a prefix of more than one snapshot hash."""
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise TypeError("give an entry index (int) or a snapshot hash (hex str)")
    if isinstance(ref, int):
        if not 0 <= ref < size(store, txn):
            raise UnknownEntryError(f"no entry {ref}")
        return ref
    text = ref.lower()
    if not (MIN_PREFIX <= len(text) <= 64 and all(c in "0123456789abcdef" for c in text)):
        raise ArgumentError(f"{ref!r} is not a snapshot hash: give its 64 hex digits, or a unique "
                         f"prefix of at least {MIN_PREFIX}")
    if len(text) == 64:
        raw = store.get(txn, "snapshots", bytes.fromhex(text))
        if raw is None:
            raise UnknownEntryError(f"no snapshot {ref}")
        return from_u64(raw)
    cur = txn.cursor(db=store.db["snapshots"])
    found: list[tuple[str, int]] = []
    if cur.set_range(bytes.fromhex(text[: len(text) // 2 * 2])):
        for key, value in cur.iternext(keys=True, values=True):
            hex_key = bytes(key).hex()
            if not hex_key.startswith(text):
                if hex_key[: len(text)] > text:
                    break
                continue
            found.append((hex_key, from_u64(bytes(value))))
            if len(found) > 1:
                raise ArgumentError(f"snapshot prefix {ref} is ambiguous: it begins "
                                 f"{found[0][0][:16]}... and {found[1][0][:16]}...; "
                                 "give more hex digits")
    if not found:
        raise UnknownEntryError(f"no snapshot {ref}")
    return found[0][1]


def entry(store: Store, txn: lmdb.Transaction, index: int) -> bytes:
    """The exact bytes of entry ``index``."""
    return store.entry(txn, index)


def state(store: Store, txn: lmdb.Transaction, name: str) -> ModelState | None:
    """A model's current state, or None."""
    if not 0 < len(name.encode()) <= MAX_NAME_BYTES:
        return None
    raw = store.get(txn, "models", name.encode())
    return None if raw is None else decode_state(raw)


def chain(store: Store, txn: lmdb.Transaction, name: str) -> list[int]:
    """The indexes of a model's entries, oldest first."""
    if not 0 < len(name.encode()) <= MAX_NAME_BYTES:
        return []
    prefix = name.encode() + b"\x00"
    cur = txn.cursor(db=store.db["versions"])
    if not cur.set_range(prefix):
        return []
    out = []
    for key in cur.iternext(keys=True, values=False):
        key = bytes(key)
        if not key.startswith(prefix):
            break
        out.append(from_u64(key[-8:]))
    return out


def history(store: Store, txn: lmdb.Transaction, name: str) -> list[Snapshot]:
    """A model's entries as snapshots, oldest first."""
    current = state(store, txn, name)
    if current is None:
        return []
    return [Snapshot.from_entry(parse_entry(entry(store, txn, i)), current.model_hash)
            for i in chain(store, txn, name)]


def snapshot(store: Store, txn: lmdb.Transaction, index: int) -> Snapshot:
    """The snapshot of model entry ``index``."""
    p = parse_entry(entry(store, txn, index))
    name = statement_model(p.statement)
    if name is None:
        raise ValueError(f"entry {index} is a keyring entry, not a model snapshot")
    current = state(store, txn, name)
    assert current is not None
    return Snapshot.from_entry(p, current.model_hash)


def size_at(store: Store, txn: lmdb.Transaction, t: int) -> int:
    """How many entries were recorded at or before ``t`` (ns)."""
    if t < 0:
        return 0
    cur = txn.cursor(db=store.db["by_time"])
    if t >= 2**64 - 1 or not cur.set_range(u64(t + 1)):
        return size(store, txn)
    return from_u64(bytes(cur.key())[8:])


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic objects (it would
    otherwise rescan them again and again: about a fifth of inventory_at's time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def states_at(store: Store, txn: lmdb.Transaction, n: int) -> dict[str, ModelState]:
    """Every model's state after the first ``n`` entries, by name."""
    with _no_gc():
        return _states_at(store, txn, n)


def _states_at(store: Store, txn: lmdb.Transaction, n: int) -> dict[str, ModelState]:
    if n == 0:
        return {}
    if n == size(store, txn):
        rows = txn.cursor(db=store.db["models"]).iternext(keys=False, values=True)
        return {state.name: state for state in map(decode_state, rows)}
    return states_before(store, txn, n)


def checkpoint_note(store: Store, txn: lmdb.Transaction, n: int) -> bytes | None:
    """The stored checkpoint note of size ``n``, if one was signed."""
    return store.get(txn, "checkpoints", u64(n))


def latest_checkpoint(store: Store, txn: lmdb.Transaction) -> tuple[int, bytes] | None:
    """(size, note) of the newest checkpoint."""
    cur = txn.cursor(db=store.db["checkpoints"])
    if not cur.last():
        return None
    return from_u64(bytes(cur.key())), bytes(cur.value())




def first_checkpoint(store: Store, txn: lmdb.Transaction,
                     min_size: int) -> tuple[int, bytes] | None:
    """(size, note) of the smallest stored checkpoint of at least ``min_size`` entries."""
    cur = txn.cursor(db=store.db["checkpoints"])
    if not cur.set_range(u64(min_size)):
        return None
    return from_u64(bytes(cur.key())), bytes(cur.value())
