"""The append path: inside one LMDB write transaction, check each signed
statement against the replayed state (verifier's rules), assign index, time
and chain link, and store the entry, its tree nodes and index rows; then sign
one checkpoint for the new size."""

from __future__ import annotations

from collections.abc import Callable

import lmdb

from verifier import (
    ChainError,
    Genesis,
    Grant,
    Inventory,
    MalformedInputError,
    ParsedEntry,
    Register,
    Revoke,
    VerifierKey,
    assemble_note,
    checkpoint_text,
    parse_entry,
    parse_signed_statement,
    signature_line,
    time_line,
)
from verifier.entry import build_entry, statement_model
from verifier.replay import PendingSignature

from . import tree
from .codec import OwnerView, decode_keyring, encode_keyring, index_map, state_map
from .keys import LogKey
from .results import Snapshot
from .sodium import SodiumVerifierKey
from .statements import Signed
from .store import MAX_NAME_BYTES, Store, from_u64, u64
from .versions import previous_row, version_key, version_value


def load_inventory(store: Store, txn: lmdb.Transaction) -> Inventory:
    """The replay state as stored, backed by the transaction."""
    inv = Inventory(models=state_map(store, txn), statement_ids=index_map(store, txn, "stmt_ids"),
                    snapshot_owner=OwnerView(store, txn), keep_timelines=False)
    size = store.get(txn, "meta", b"size")
    if size is not None:
        inv.size = from_u64(size)
        inv.last_recorded_at = from_u64(store.need(txn, "meta", b"last_at"))
        inv.origin = store.need(txn, "meta", b"origin").decode()
        inv.log_key = VerifierKey.parse(store.need(txn, "meta", b"log_vkey").decode())
        inv.key_history = decode_keyring(store.need(txn, "meta", b"keyring"))
        for record in inv.key_history:  # the write path verifies through libsodium
            record.key = SodiumVerifierKey.of(record.key)
        inv.keys = {r.name: r for r in inv.key_history if r.revoked_index is None}
        inv.log_id = store.need(txn, "meta", b"log_id").decode()
        claim = store.need(txn, "meta", b"claim")
        inv.claim_skew, inv.claim_window = from_u64(claim[:8]), from_u64(claim[8:])
    return inv


class Appender:
    """Appends to the log inside one write transaction. Not reusable across transactions."""

    def __init__(self, store: Store, txn: lmdb.Transaction, now_ns: Callable[[], int],
                 *, pending: list[PendingSignature] | None = None) -> None:
        """``pending``: collect there the signature checks of statements signed in this
        process (``Signed``) instead of running them; the caller runs them all before
        it commits."""
        self.store, self.txn, self.now_ns = store, txn, now_ns
        self.pending = pending
        self.inv = load_inventory(store, txn)
        self.start_size = self.inv.size
        cp_at = store.get(txn, "meta", b"cp_at")
        # every entry after a checkpoint is recorded after that checkpoint's time
        self.after = 0 if cp_at is None else from_u64(cp_at) + 1
        self._keyring_changed = False
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
        inv = self.inv
        existing = inv.statement_ids.get(st.id)
        if existing is not None:
            old = parse_entry(self.store.entry(self.txn, existing))
            if (old.statement_bytes, old.key_id, old.sig) == (st_bytes, key_id, sig):
                return old, True
            raise ChainError(f"statement id {st.id} is already used by another statement")
        name = statement_model(st)
        if name is not None and len(name.encode()) > MAX_NAME_BYTES:
            raise MalformedInputError(f"model name is {len(name.encode())} bytes in UTF-8; "
                                      f"this store holds names of at most {MAX_NAME_BYTES}")
        prev = None
        if name is not None and not isinstance(st, Register) and name in inv.models:
            prev = inv.models[name].head
        # strictly after the entry before (so every tree size has a time that bounds it)
        # and after the latest checkpoint's time
        at = max(self.now_ns() if recorded_at is None else recorded_at,
                 inv.last_recorded_at + 1 if inv.size else 0, self.after)
        try:
            data, p = build_entry(index=inv.size, recorded_at=at, prev=prev, statement=st,
                                  statement_bytes=st_bytes, key_id=key_id, sig=sig)
        except ValueError as exc:
            raise MalformedInputError(f"statement does not fit in an entry: {exc}") from None
        inv.apply_parsed(p, pending=self.pending if isinstance(signed, Signed) else None)
        self._store_rows(p, data, name)
        self.store.put(self.txn, "meta", b"size", u64(inv.size))  # reads in a batch see it
        if isinstance(st, (Genesis, Grant, Revoke)):
            self._keyring_changed = True
        return p, False

    def snapshot(self, p: ParsedEntry) -> Snapshot | None:
        """The snapshot of an appended entry (None for keyring entries)."""
        name = statement_model(p.statement)
        if name is None:
            return None
        return Snapshot.from_entry(p, self.inv.models[name].model_hash)

    def _store_rows(self, p: ParsedEntry, data: bytes, name: str | None) -> None:
        s, txn, e = self.store, self.txn, p.entry
        s.put_entry(txn, e.index, data)
        tree.append_leaf(self._get, self._put, e.index, p.leaf_hash)
        s.put(txn, "snapshots", p.leaf_hash, u64(e.index), overwrite=False)
        s.put(txn, "by_time", u64(e.recorded_at) + u64(e.index), b"", append=True)
        if name is not None:
            state = self.inv.models[name]
            previous = previous_row(s, txn, name, e.index)
            s.put(txn, "versions", version_key(name, e.index),
                  version_value(p, state, previous))
            if isinstance(p.statement, Register):
                s.put(txn, "model_hashes", state.model_hash.encode(), name.encode(),
                      overwrite=False)

    def finish(self, log_key: LogKey) -> bytes | None:
        """Write the new size and sign its checkpoint; return the note (None if nothing grew)."""
        inv, s, txn = self.inv, self.store, self.txn
        if inv.size == self.start_size:
            return None
        assert inv.origin is not None
        if self.start_size == 0:
            assert inv.log_id is not None
            s.put(txn, "meta", b"origin", inv.origin.encode())
            s.put(txn, "meta", b"log_vkey", log_key.vkey.encode())
            s.put(txn, "meta", b"log_id", inv.log_id.encode())
            s.put(txn, "meta", b"claim", u64(inv.claim_skew) + u64(inv.claim_window))
        s.put(txn, "meta", b"size", u64(inv.size))
        s.put(txn, "meta", b"last_at", u64(inv.last_recorded_at))
        if self._keyring_changed:
            s.put(txn, "meta", b"keyring", encode_keyring(inv.key_history))
        root = tree.root(self._get, inv.size)
        at = inv.last_recorded_at  # complete up to its last entry; the clock is read once a write
        note = sign_checkpoint(log_key, inv.origin, inv.size, root, at)
        s.put(txn, "checkpoints", u64(inv.size), note, overwrite=False)
        s.put(txn, "meta", b"cp_at", u64(at))
        return note


def sign_checkpoint(log_key: LogKey, origin: str, size: int, root: bytes, at: int) -> bytes:
    """A C2SP checkpoint note for (origin, size, root) signed by the log key at time
    ``at`` (ns). Precondition: every entry of the tree was recorded at or before ``at``
    and every later entry is (or will be) recorded after it."""
    text = checkpoint_text(origin, size, root, [time_line(at)])
    return assemble_note(text, [signature_line(log_key.key.name, log_key.key_id,
                                               log_key.sign(text))])
