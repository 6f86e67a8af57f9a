"""How the ledger stores derived state: model states (compact msgpack rows) and
the keyring (JSON).

These are caches of what replaying the log gives; ``audit()`` recomputes them.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Generic, TypeVar

import lmdb
import msgspec

from verifier import Event, KeyRecord, ModelState, Register, VerifierKey, parse_entry

from ._store import MAX_KEY, Store, from_u64, u64

V = TypeVar("V")

_state_enc = msgspec.json.Encoder(order="sorted")
_row_enc = msgspec.msgpack.Encoder(order="sorted")  # dict keys sorted: one encoding per state
_row_dec = msgspec.msgpack.Decoder(ModelState)


def encode_state(state: ModelState) -> bytes:
    """A model state as a compact msgpack row (an array in field order)."""
    return _row_enc.encode(state)


# Inverse of encode_state: the decoder's bound method itself, so that loops over many
# rows (inventory_at) make no Python-level call per row.
decode_state = _row_dec.decode


def encode_keyring(records: list[KeyRecord]) -> bytes:
    """The key history (grants and revocations) as JSON."""
    rows = [
        {"vkey": r.vkey, "role": r.role, "granted_index": r.granted_index,
         "granted_at": r.granted_at, "granted_by": r.granted_by,
         "revoked_index": r.revoked_index, "revoked_at": r.revoked_at,
         "revoked_by": r.revoked_by, "reason": r.reason}
        for r in records
    ]
    return _state_enc.encode(rows)


def decode_keyring(data: bytes) -> list[KeyRecord]:
    """Inverse of encode_keyring."""
    rows: list[dict[str, Any]] = msgspec.json.decode(data)
    out = []
    for row in rows:
        key = VerifierKey.parse(row.pop("vkey"))
        out.append(KeyRecord(key=key, **row))
    return out


class LmdbMap(MutableMapping[str, V], Generic[V]):
    """A str-keyed map over one LMDB database inside one transaction."""

    def __init__(self, store: Store, txn: lmdb.Transaction, db: str,
                 enc: Any, dec: Any, key_enc: Any = str.encode) -> None:
        self._store, self._txn, self._db = store, txn, store.db[db]
        self._name, self._enc, self._dec, self._kenc = db, enc, dec, key_enc
        # Decoded values read or written in this transaction; only this map
        # writes these rows while the transaction lives, so it stays exact.
        self._cache: dict[str, V | None] = {}

    def __getitem__(self, key: str) -> V:
        if key in self._cache:
            value = self._cache[key]
        else:
            k = self._kenc(key)
            data = self._txn.get(k, db=self._db) if 0 < len(k) <= MAX_KEY else None
            value = None if data is None else self._dec(data)
            self._cache[key] = value
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: V) -> None:
        self._store.put(self._txn, self._name, self._kenc(key), self._enc(value))
        self._cache[key] = value

    def __delitem__(self, key: str) -> None:
        self._cache.pop(key, None)
        if not self._txn.delete(self._kenc(key), db=self._db):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        raise TypeError("iterating a store-backed map is not supported")

    def __len__(self) -> int:
        return int(self._txn.stat(self._db)["entries"])


def state_map(store: Store, txn: lmdb.Transaction) -> LmdbMap[ModelState]:
    """name -> current ModelState."""
    return LmdbMap(store, txn, "models", encode_state, decode_state)


def index_map(store: Store, txn: lmdb.Transaction, db: str) -> LmdbMap[int]:
    """str -> entry index (statement ids)."""
    return LmdbMap(store, txn, db, u64, from_u64)


class OwnerView(MutableMapping[str, str]):
    """snapshot hash -> model name for registrations and events, derived from
    the snapshot index and the entry itself (nothing extra is stored)."""

    def __init__(self, store: Store, txn: lmdb.Transaction) -> None:
        self._store, self._txn = store, txn

    def __getitem__(self, snap: str) -> str:
        try:
            key = bytes.fromhex(snap)
        except ValueError:
            raise KeyError(snap) from None
        raw = self._store.get(self._txn, "snapshots", key)
        if raw is None:
            raise KeyError(snap)
        p = parse_entry(self._store.entry(self._txn, from_u64(raw)))
        if isinstance(p.statement, Register):
            return p.statement.name
        if isinstance(p.statement, Event):
            return p.statement.model
        raise KeyError(snap)

    def __setitem__(self, snap: str, name: str) -> None:
        """Nothing to store: the snapshot index and the entry already say it."""

    def __delitem__(self, snap: str) -> None:
        raise TypeError("snapshot owners are never removed")

    def __iter__(self) -> Iterator[str]:
        raise TypeError("iterating a store-backed map is not supported")

    def __len__(self) -> int:
        raise TypeError("the size of a derived map is not kept")
