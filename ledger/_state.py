"""The replay state as the store holds it: ``verifier.ReplayState`` over one write
transaction. Internal to the ledger.

Reads come from the transaction (model states are cached as decoded); writes go to
it at once, except the log's parameters and keyring, which ``Appender.finish``
writes once per commit. Only this object writes these rows while its transaction
lives, so its cache stays exact.
"""

from __future__ import annotations

from dataclasses import replace

import lmdb

from verifier import (
    Event,
    KeyRecord,
    LogParams,
    ModelState,
    ParsedEntry,
    PolicyRecord,
    Register,
    VerifierKey,
    parse_entry,
)

from ._codec import decode_keyring, decode_policy, decode_state, encode_state
from ._store import MAX_KEY, Store, from_u64, u64


_last_keyring: tuple[bytes, tuple[KeyRecord, ...]] = (b"", ())


def _keyring(raw: bytes) -> tuple[KeyRecord, ...]:
    """The keyring row decoded, reusing the last decoding while the row is unchanged
    (every group commit reads it). The records are shared: never change one in place."""
    global _last_keyring
    last = _last_keyring
    if last[0] != raw:
        last = _last_keyring = (bytes(raw), tuple(decode_keyring(raw)))
    return last[1]


class StoreState:
    """The replayed state of the log in ``txn`` (a write transaction)."""

    def __init__(self, store: Store, txn: lmdb.Transaction) -> None:
        self._store, self._txn = store, txn
        self._models: dict[str, ModelState | None] = {}
        self.keyring_changed = False
        self.params_changed = False
        self.policy_changed = False
        self._policy: PolicyRecord | None = None
        raw = store.get(txn, "meta", b"size")
        self._size = 0 if raw is None else from_u64(raw)
        self._params: LogParams | None = None
        self._last_at = 0
        self.key_history: list[KeyRecord] = []
        if self._size:
            need = store.need
            self._last_at = from_u64(need(txn, "meta", b"last_at"))
            claim = need(txn, "meta", b"claim")
            self._params = LogParams(
                origin=need(txn, "meta", b"origin").decode(),
                log_key=VerifierKey.parse(need(txn, "meta", b"log_vkey").decode()),
                log_id=need(txn, "meta", b"log_id").decode(),
                claim_skew=from_u64(claim[:8]), claim_window=from_u64(claim[8:]))
            self.key_history = list(_keyring(need(txn, "meta", b"keyring")))
            raw_policy = store.get(txn, "meta", b"policy")
            if raw_policy is not None:
                self._policy = decode_policy(raw_policy)
        self._active = {r.name: r for r in self.key_history if r.revoked_index is None}

    # -- reads ----------------------------------------------------------------------

    @property
    def params(self) -> LogParams | None:
        return self._params

    @property
    def size(self) -> int:
        return self._size

    @property
    def last_recorded_at(self) -> int:
        return self._last_at

    def model(self, name: str) -> ModelState | None:
        if name in self._models:
            return self._models[name]
        key = name.encode()
        data = self._txn.get(key, db=self._store.db["models"]) if 0 < len(key) <= MAX_KEY \
            else None
        state = None if data is None else decode_state(data)
        self._models[name] = state
        return state

    def statement_index(self, statement_id: str) -> int | None:
        key = statement_id.encode()
        if not 0 < len(key) <= MAX_KEY:
            return None
        raw = self._txn.get(key, db=self._store.db["stmt_ids"])
        return None if raw is None else from_u64(bytes(raw))

    def snapshot_model(self, snapshot: str) -> str | None:
        try:
            key = bytes.fromhex(snapshot)
        except ValueError:
            return None
        raw = self._store.get(self._txn, "snapshots", key)
        if raw is None:
            return None
        st = parse_entry(self._store.entry(self._txn, from_u64(raw))).statement
        if isinstance(st, Register):
            return st.name
        if isinstance(st, Event):
            return st.model
        return None

    def active_key(self, actor: str) -> KeyRecord | None:
        return self._active.get(actor)

    def admin_count(self) -> int:
        return sum(1 for r in self._active.values() if r.role == "admin")

    @property
    def policy(self) -> PolicyRecord | None:
        return self._policy

    # -- writes (after every check passed) --------------------------------------------

    def set_params(self, params: LogParams) -> None:
        self._params = params
        self.params_changed = True

    def set_policy(self, record: PolicyRecord) -> None:
        self._policy = record
        self.policy_changed = True

    def put_model(self, state: ModelState) -> None:
        self._store.put(self._txn, "models", state.name.encode(), encode_state(state))
        self._models[state.name] = state

    def add_key(self, record: KeyRecord) -> None:
        self.key_history.append(record)
        self._active[record.name] = record
        self.keyring_changed = True

    def revoke_key(self, actor: str, *, index: int, at: int, by: str,
                   reason: str | None) -> KeyRecord:
        old = self._active.pop(actor)
        # a new record: the old one may be shared with other transactions (``_keyring``)
        record = replace(old, revoked_index=index, revoked_at=at, revoked_by=by, reason=reason)
        self.key_history = [record if r is old else r for r in self.key_history]
        self.keyring_changed = True
        return record

    def appended(self, p: ParsedEntry, model: str | None, snapshot_of: str | None) -> None:
        # the snapshot's model needs no row: the snapshot index and the entry say it
        self._store.put(self._txn, "stmt_ids", p.statement.id.encode(), u64(p.entry.index))
        self._size += 1
        self._last_at = p.entry.recorded_at
