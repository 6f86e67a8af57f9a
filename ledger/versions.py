"""Model state history for point-in-time answers.

Every entry of a model's chain writes one row ``name NUL index``. A row is
either a full state (``F`` + msgpack) or, for a plain event (any event type
but ``updated``, ``retired``, ``validated``), a short note (``E`` + the index
of the model's last full row + time + event type): a plain event changes only
the newest snapshot and the last event. Reading a past state is therefore one
seek and at most one more lookup, however long the model's history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import lmdb

from verifier import Event, ModelState, ParsedEntry
from verifier.replay import RETIRE_EVENT, UPDATE_EVENT, VALIDATION_EVENT

from . import tree
from .codec import decode_state, encode_state
from .errors import StoreError
from .store import Store, from_u64, u64

_SPECIAL = {UPDATE_EVENT, RETIRE_EVENT, VALIDATION_EVENT}

Row = tuple[int, bytes]  # (entry index, row value)


def version_key(name: str, index: int) -> bytes:
    """The row key of a model's state after entry ``index``."""
    return name.encode() + b"\x00" + u64(index)


def is_plain(p: ParsedEntry) -> bool:
    """True for an event that changes nothing but the newest snapshot and last event."""
    return isinstance(p.statement, Event) and p.statement.event_type not in _SPECIAL


def version_value(p: ParsedEntry, state: ModelState, previous: Row | None) -> bytes:
    """The row for ``state`` after entry ``p``, given the model's previous row."""
    if is_plain(p) and previous is not None:
        index, value = previous
        full = index if value[:1] == b"F" else from_u64(value[1:9])
        assert isinstance(p.statement, Event)
        return b"E" + u64(full) + u64(p.entry.recorded_at) + p.statement.event_type.encode()
    return b"F" + encode_state(state)


def previous_row(store: Store, txn: lmdb.Transaction, name: str, index: int) -> Row | None:
    """The model's last row before entry ``index``, or None."""
    cur = txn.cursor(db=store.db["versions"])
    prefix = name.encode() + b"\x00"
    found = cur.prev() if cur.set_range(prefix + u64(index)) else cur.last()
    if found and bytes(cur.key()).startswith(prefix):
        return from_u64(bytes(cur.key())[-8:]), bytes(cur.value())
    return None


def states_before(store: Store, txn: lmdb.Transaction, names: Iterable[Any],
                  n: int) -> Iterator[ModelState]:
    """The states of the models ``names`` (encoded, in key order) after the first ``n``
    entries of the log; models not yet registered then are skipped. The hot loop of
    ``inventory_at`` in the past: one seek per model, one more lookup after a plain event."""
    cur: Any = txn.cursor(db=store.db["versions"])  # read transactions yield bytes here
    seek, prev, last, key, value = cur.set_range, cur.prev, cur.last, cur.key, cur.value
    get: Any = txn.get
    vdb, ndb = store.db["versions"], store.db["nodes"]
    cut = u64(n)
    for name in names:
        prefix = name + b"\x00"
        if not (prev() if seek(prefix + cut) else last()):
            continue
        k = key()
        if not k.startswith(prefix):
            continue
        row = value()
        if row[:1] == b"F":
            yield decode_state(row[1:])
            continue
        full = get(prefix + row[1:9], db=vdb)
        node = get(tree.node_key(0, from_u64(k[-8:])), db=ndb)
        if full is None or node is None:
            raise StoreError(f"store is damaged: the state history of {name!r} is incomplete")
        state = decode_state(full[1:])
        state.latest = state.head = node.hex()
        state.last_event_type = row[17:].decode()
        state.last_event_at = from_u64(row[9:17])
        yield state
