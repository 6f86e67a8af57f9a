"""How the ledger stores derived state: model states and the keyring, in msgspec JSON.

These are caches of what replaying the log gives; ``audit()`` recomputes them.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Generic, TypeVar

import lmdb
import msgspec

from verifier import KeyRecord, ModelState, VerifierKey

from .store import Store, from_u64, u64

V = TypeVar("V")

_state_enc = msgspec.json.Encoder(order="sorted")
_state_dec = msgspec.json.Decoder(ModelState)


def encode_state(state: ModelState) -> bytes:
    """Canonical JSON of a model state."""
    return _state_enc.encode(state)


def decode_state(data: bytes) -> ModelState:
    """Inverse of encode_state."""
    return _state_dec.decode(data)


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

    def __getitem__(self, key: str) -> V:
        data = self._txn.get(self._kenc(key), db=self._db)
        if data is None:
            raise KeyError(key)
        return self._dec(data)  # type: ignore[no-any-return]

    def __setitem__(self, key: str, value: V) -> None:
        self._store.put(self._txn, self._name, self._kenc(key), self._enc(value))

    def __delitem__(self, key: str) -> None:
        if not self._txn.delete(self._kenc(key), db=self._db):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._txn.get(self._kenc(key), db=self._db) is not None

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


def owner_map(store: Store, txn: lmdb.Transaction) -> LmdbMap[str]:
    """snapshot hash (hex) -> model name, stored with 32-byte keys."""
    return LmdbMap(store, txn, "snap_owner", str.encode, bytes.decode, key_enc=bytes.fromhex)
