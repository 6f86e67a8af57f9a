"""Model state history for point-in-time answers.

Every entry of a model's chain writes one row ``name NUL index``. A row is
either a full state (the state's msgpack array, as in ``models``) or, for a
plain event (any event type but ``updated``, ``retired``, ``validated``), a
short note: ``E`` (a byte no msgpack array starts with) + the index of the
model's last full row + time + the entry's leaf hash + event type. A plain
event changes only the newest snapshot and the last event. Reading a past
state is therefore one seek and at most one more lookup (on the same cursor,
usually within the same page), however long the model's history.
"""

from __future__ import annotations

import struct
from typing import Any

import lmdb

from verifier import (
    RETIRE_EVENT,
    UPDATE_EVENT,
    VALIDATION_EVENT,
    Event,
    ModelState,
    ParsedEntry,
)

from ._codec import decode_state, encode_state
from .errors import StoreError
from ._store import Store, from_u64, u64

_SPECIAL = {UPDATE_EVENT, RETIRE_EVENT, VALIDATION_EVENT}
_E = ord("E")
_NOTE = struct.Struct(">8xQ32s")  # a note after its "E": full row index, time, leaf hash

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
        full = from_u64(value[1:9]) if value[0] == _E else index
        assert isinstance(p.statement, Event)
        return (b"E" + u64(full) + u64(p.entry.recorded_at) + p.leaf_hash
                + p.statement.event_type.encode())
    return encode_state(state)


def previous_row(store: Store, txn: lmdb.Transaction, name: str, index: int) -> Row | None:
    """The model's last row before entry ``index``, or None."""
    cur = txn.cursor(db=store.db["versions"])
    prefix = name.encode() + b"\x00"
    found = cur.prev() if cur.set_range(prefix + u64(index)) else cur.last()
    if found and bytes(cur.key()).startswith(prefix):
        return from_u64(bytes(cur.key())[-8:]), bytes(cur.value())
    return None


def states_before(store: Store, txn: lmdb.Transaction, n: int) -> dict[str, ModelState]:
    """Every model's state after the first ``n`` entries of the log, by name (models not
    yet registered then are left out). The hot path of ``inventory_at`` in the past: per
    model one seek, and after a plain event one lookup of its full row near the cursor;
    then all full rows are decoded in one pass and the notes applied."""
    # transactions here are opened with buffers=False: keys and values are bytes
    models: Any = txn.cursor(db=store.db["models"])
    cur: Any = txn.cursor(db=store.db["versions"])
    seek, prev, last, item, get = cur.set_range, cur.prev, cur.last, cur.item, cur.get
    cut, e = u64(n), _E
    fulls: list[bytes] = []  # each model's full row, in name order
    notes: list[bytes | None] = []  # and the note to apply to it, if any
    keep, note = fulls.append, notes.append
    for name in models.iternext(keys=True, values=False):
        prefix = name + b"\x00"
        if not (prev() if seek(prefix + cut) else last()):
            continue
        key, row = item()
        if not key.startswith(prefix):
            continue  # registered later
        if row[0] != e:
            keep(row)
            note(None)
            continue
        full = get(prefix + row[1:9])  # the same cursor: usually on the same page
        if full is None or full[0] == e:
            raise StoreError(f"store is damaged: the state history of {name!r} is incomplete")
        keep(full)
        note(row)
    states = list(map(decode_state, fulls))
    unpack, skip = _NOTE.unpack_from, _NOTE.size + 1
    for state, row in zip(states, notes, strict=True):
        if row is not None:
            at, leaf = unpack(row, 1)
            state.latest = state.head = leaf.hex()
            state.last_event_type = row[skip:].decode()
            state.last_event_at = at
    by_name = {state.name: state for state in states}
    # A row holds a model's groups as of its own last entry; a group's later member_add
    # or member_remove changed them without writing a row for the member. Rebuild them
    # from the groups' members, which the rows do hold exactly.
    for state in states:
        if state.groups:
            state.groups = {}
    for state in states:
        for member in state.members:
            held = by_name.get(member)
            if held is None:
                raise StoreError(f"store is damaged: {state.name!r} holds {member!r}, which "
                                 "was not registered then")
            held.groups[state.name] = None
    return by_name
