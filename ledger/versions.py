"""Model state history for point-in-time answers.

Every entry of a model's chain writes one row ``name NUL index``. A row is
either a full state (``F`` + JSON) or, for a plain event (any event type but
``updated``, ``retired``, ``validated``), a compact note (``E`` + run + time
+ event type): a plain event changes only the newest snapshot and the last
event. At most MAX_RUN compact rows follow a full one, so reading a past
state walks back a bounded number of rows.
"""

from __future__ import annotations

import lmdb

from verifier import Event, ModelState, ParsedEntry
from verifier.replay import RETIRE_EVENT, UPDATE_EVENT, VALIDATION_EVENT

from .codec import decode_state, encode_state
from .store import Store, from_u64, u64

MAX_RUN = 32
_SPECIAL = {UPDATE_EVENT, RETIRE_EVENT, VALIDATION_EVENT}


def version_key(name: str, index: int) -> bytes:
    """The row key of a model's state after entry ``index``."""
    return name.encode() + b"\x00" + u64(index)


def is_plain(p: ParsedEntry) -> bool:
    """True for an event that changes nothing but the newest snapshot and last event."""
    return isinstance(p.statement, Event) and p.statement.event_type not in _SPECIAL


def version_value(p: ParsedEntry, state: ModelState, previous: bytes | None) -> bytes:
    """The row for ``state`` after entry ``p``, given the model's previous row."""
    if is_plain(p):
        run = previous[1] + 1 if previous is not None and previous[:1] == b"E" else 1
        if run <= MAX_RUN:
            assert isinstance(p.statement, Event)
            return (b"E" + bytes([run]) + u64(p.entry.recorded_at)
                    + p.statement.event_type.encode())
    return b"F" + encode_state(state)


def previous_row(store: Store, txn: lmdb.Transaction, name: str, index: int) -> bytes | None:
    """The model's last row before entry ``index``, or None."""
    cur = txn.cursor(db=store.db["versions"])
    prefix = name.encode() + b"\x00"
    found = cur.prev() if cur.set_range(prefix + u64(index)) else cur.last()
    if found and bytes(cur.key()).startswith(prefix):
        return bytes(cur.value())
    return None


def state_before(store: Store, txn: lmdb.Transaction, cur: lmdb.Cursor, name: bytes,
                 n: int) -> ModelState | None:
    """The model's state after the first ``n`` entries of the log, or None."""
    prefix = name + b"\x00"
    found = cur.prev() if cur.set_range(prefix + u64(n)) else cur.last()
    newest: tuple[int, int, str] | None = None
    while found:
        key = bytes(cur.key())
        if not key.startswith(prefix):
            return None
        value = bytes(cur.value())
        if value[:1] == b"F":
            state = decode_state(value[1:])
            if newest is not None:
                index, at, event_type = newest
                from . import tree

                snap = store.need(txn, "nodes", tree.node_key(0, index)).hex()
                state.latest = state.head = snap
                state.last_event_type, state.last_event_at = event_type, at
            return state
        if newest is None:
            newest = (from_u64(key[-8:]), from_u64(value[2:10]), value[10:].decode())
        found = cur.prev()
    return None
