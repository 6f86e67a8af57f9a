"""The append path: inside one LMDB write transaction, check each signed
statement against the replayed state (the verifier's rules, over the store-backed
state), assign index, time and chain link, and store the entry, its tree nodes and
index rows; then sign one checkpoint for the new size."""

from __future__ import annotations

from collections.abc import Callable

import lmdb

from verifier import (
    ChainError,
    MalformedInputError,
    ParsedEntry,
    Register,
    Replayer,
    SignatureCheck,
    assemble_note,
    build_entry,
    checkpoint_text,
    parse_entry,
    parse_signed_statement,
    signature_line,
    statement_model,
    time_line,
)

from . import _tree as tree
from ._state import StoreState
from ._codec import encode_keyring, encode_policy
from .keys import LogKey
from .results import Snapshot
from ._sodium import sodium_check
from .statements import Signed
from ._store import MAX_NAME_BYTES, Store, from_u64, u64
from ._versions import previous_row, version_key, version_value


class Appender:
    """Appends to the log inside one write transaction. Not reusable across transactions."""

    def __init__(self, store: Store, txn: lmdb.Transaction, now_ns: Callable[[], int],
                 check: SignatureCheck = sodium_check) -> None:
        """``check``: how statement signatures are checked (default: libsodium, at once).
        A writer that defers some checks must run them all before it commits."""
        self.store, self.txn, self.now_ns = store, txn, now_ns
        self.state = StoreState(store, txn)
        self.rules = Replayer(self.state, check_signature=check)
        self.start_size = self.state.size
        self.last_bytes = b""  # the exact bytes of the entry the last append answered
        cp_at = store.get(txn, "meta", b"cp_at")
        # every entry after a checkpoint is recorded after that checkpoint's time
        self.after = 0 if cp_at is None else from_u64(cp_at) + 1
        self._get: tree.Get = lambda level, index: store.need(txn, "nodes",
                                                              tree.node_key(level, index))
        self._put: tree.Put = lambda level, index, h: store.put(
            txn, "nodes", tree.node_key(level, index), h, append=True)

    def append(self, signed: bytes | Signed,
               recorded_at: int | None = None) -> tuple[ParsedEntry, bool]:
        """Check and append one signed statement; return (entry, False).

        If the same signed statement is already in the log, return (its entry,
        True) and append nothing. Raises the verifier's MalformedInputError or
        VerificationError subclasses when the statement is refused.
        """
        if isinstance(signed, Signed):
            st, st_bytes, key_id, sig = signed
        else:
            st, st_bytes, key_id, sig = parse_signed_statement(signed)
        state = self.state
        existing = state.statement_index(st.id)
        if existing is not None:
            stored = self.store.entry(self.txn, existing)
            old = parse_entry(stored)
            if (old.statement_bytes, old.key_id, old.sig) == (st_bytes, key_id, sig):
                self.last_bytes = stored
                return old, True
            raise ChainError(f"statement id {st.id} is already used by another statement")
        name = statement_model(st)
        if name is not None and len(name.encode()) > MAX_NAME_BYTES:
            raise MalformedInputError(f"model name is {len(name.encode())} bytes in UTF-8; "
                                      f"this store holds names of at most {MAX_NAME_BYTES}")
        prev = None
        if name is not None and not isinstance(st, Register):
            model = state.model(name)
            prev = None if model is None else model.head
        # strictly after the entry before (so every tree size has a time that bounds it)
        # and after the latest checkpoint's time
        at = max(self.now_ns() if recorded_at is None else recorded_at, self.floor())
        try:
            data, p = build_entry(index=state.size, recorded_at=at, prev=prev, statement=st,
                                  statement_bytes=st_bytes, key_id=key_id, sig=sig)
        except ValueError as exc:
            raise MalformedInputError(f"statement does not fit in an entry: {exc}") from None
        self.rules.apply_parsed(p)
        self._store_rows(p, data, name)
        self.last_bytes = data
        self.store.put(self.txn, "meta", b"size", u64(state.size))  # reads in a batch see it
        return p, False

    def node(self, level: int, index: int) -> bytes:
        """The stored tree node (level, index), as this transaction sees it."""
        return self._get(level, index)

    def floor(self) -> int:
        """The earliest time the next entry may be recorded at (ns): strictly after the
        entry before it and after the latest checkpoint's time."""
        state = self.state
        return max(state.last_recorded_at + 1 if state.size else 0, self.after)

    def stale(self, claimed: int) -> bool:
        """Whether a statement claimed at ``claimed`` (ns) would now be recorded later
        than the log's claim_window allows (the rules would refuse it)."""
        params = self.state.params
        return params is not None and self.floor() - claimed > params.claim_window

    def snapshot(self, p: ParsedEntry) -> Snapshot | None:
        """The snapshot of an appended entry (None for keyring entries)."""
        name = statement_model(p.statement)
        if name is None:
            return None
        model = self.state.model(name)
        assert model is not None
        return Snapshot.from_entry(p, model.model_hash)

    def _store_rows(self, p: ParsedEntry, data: bytes, name: str | None) -> None:
        s, txn, e = self.store, self.txn, p.entry
        s.put_entry(txn, e.index, data)
        tree.append_leaf(self._get, self._put, e.index, p.leaf_hash)
        s.put(txn, "snapshots", p.leaf_hash, u64(e.index), overwrite=False)
        s.put(txn, "by_time", u64(e.recorded_at) + u64(e.index), b"", append=True)
        if name is not None:
            state = self.state.model(name)
            assert state is not None
            previous = previous_row(s, txn, name, e.index)
            s.put(txn, "versions", version_key(name, e.index),
                  version_value(p, state, previous))
            if isinstance(p.statement, Register):
                s.put(txn, "model_hashes", state.model_hash.encode(), name.encode(),
                      overwrite=False)

    def finish(self, log_key: LogKey) -> bytes | None:
        """Write the new size and sign its checkpoint; return the note (None if nothing grew)."""
        state, s, txn = self.state, self.store, self.txn
        if state.size == self.start_size:
            return None
        params = state.params
        assert params is not None
        if state.params_changed:
            s.put(txn, "meta", b"origin", params.origin.encode())
            s.put(txn, "meta", b"log_vkey", log_key.vkey.encode())
            s.put(txn, "meta", b"log_id", params.log_id.encode())
            s.put(txn, "meta", b"claim", u64(params.claim_skew) + u64(params.claim_window))
        s.put(txn, "meta", b"size", u64(state.size))
        s.put(txn, "meta", b"last_at", u64(state.last_recorded_at))
        if state.keyring_changed:
            s.put(txn, "meta", b"keyring", encode_keyring(state.key_history))
        if state.policy_changed and state.policy is not None:
            s.put(txn, "meta", b"policy", encode_policy(state.policy))
        root = tree.root(self._get, state.size)
        at = state.last_recorded_at  # complete up to its last entry
        note = sign_checkpoint(log_key, params.origin, state.size, root, at)
        s.put(txn, "checkpoints", u64(state.size), note, overwrite=False)
        s.put(txn, "meta", b"cp_at", u64(at))
        return note


def sign_checkpoint(log_key: LogKey, origin: str, size: int, root: bytes, at: int) -> bytes:
    """A C2SP checkpoint note for (origin, size, root) signed by the log key at time
    ``at`` (ns). Precondition: every entry of the tree was recorded at or before ``at``
    and every later entry is (or will be) recorded after it."""
    text = checkpoint_text(origin, size, root, [time_line(at)])
    return assemble_note(text, [signature_line(log_key.key.name, log_key.key_id,
                                               log_key.sign(text))])
