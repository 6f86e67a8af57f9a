"""``Ledger``: the Python API of the writer (verbs follow model-ledger's)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lmdb

from verifier import (
    EMPTY_ROOT,
    Checkpoint,
    ModelState,
    RuleError,
    VerifierKey,
    encode_bundle,
    from_ns,
    parse_entry,
    to_ns,
)
from verifier.timeutil import iso

from . import queries as q
from . import tree
from .audit import audit
from .batch import Batch
from .errors import StoreError
from .keys import ActorKey, LogKey
from .results import ConsistencyProof, InclusionProof, ModelRef, Snapshot, Tag
from .sigcheck import CheckHelper
from .statements import Signed, build_signed
from .store import Store, from_u64, u64
from .writer import Appender, sign_checkpoint

Clock = Callable[[], datetime]
DEFAULT_CLAIM_SKEW = timedelta(minutes=5)
DEFAULT_CLAIM_WINDOW = timedelta(days=1)


def _span_ns(span: timedelta, what: str) -> int:
    if not isinstance(span, timedelta):
        raise TypeError(f"{what} is a timedelta, not {type(span).__name__}")
    if span < timedelta(0):
        raise ValueError(f"{what} must not be negative")
    return span // timedelta(microseconds=1) * 1000


class Ledger:
    """An open modelseal store. Writes need the log key and, for the convenience
    methods, a ``signer`` (the actor key that signs what they build)."""

    def __init__(self, store: Store, log_key: LogKey | None, signer: ActorKey | None,
                 clock: Clock | None) -> None:
        self._store = store
        self._log_key = log_key
        self.signer = signer
        self._clock = clock
        self._batch: Batch | None = None
        self._helper = CheckHelper()
        with store.reader() as txn:
            origin = store.get(txn, "meta", b"origin")
            vkey = store.get(txn, "meta", b"log_vkey")
            log_id = store.get(txn, "meta", b"log_id")
        # a damaged row must not stop the store from opening: audit() names it
        self.origin = origin.decode("utf-8", "replace") if origin else ""
        self.log_vkey = vkey.decode("utf-8", "replace") if vkey else ""
        self.log_id = log_id.decode("utf-8", "replace") if log_id else ""
        """The log's identity: its genesis entry's snapshot hash. Statements name it."""

    # -- opening ------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, origin: str, log_key: LogKey,
               admin: ActorKey, clock: Clock | None = None,
               claim_skew: timedelta = DEFAULT_CLAIM_SKEW,
               claim_window: timedelta = DEFAULT_CLAIM_WINDOW) -> Ledger:
        """Make a new store at ``path`` whose genesis names ``origin``, the log key and
        the first admin key; returns it open, with ``admin`` as signer.

        ``claim_skew`` (at most 1 hour) and ``claim_window`` (at most 31 days) are fixed
        for the log's life: a statement whose ``claimed_at`` is later than the log's time
        by more than ``claim_skew``, or earlier by more than ``claim_window``, is refused.
        """
        log_key.named(origin)
        # Sign the genesis before creating anything, so a bad clock or key leaves no store.
        now = clock() if clock is not None else datetime.now(timezone.utc)
        genesis = build_signed(admin, origin, "genesis", log_id=None, claimed_at=now,
                               log_key=log_key.vkey, admin_key=admin.vkey,
                               claim_skew=_span_ns(claim_skew, "claim_skew"),
                               claim_window=_span_ns(claim_window, "claim_window"))
        store = Store.open(path, create=origin)
        ledger = cls(store, log_key, admin, clock)
        ledger.origin, ledger.log_vkey = origin, log_key.vkey
        try:
            ledger._submit(genesis, to_ns(now))  # recorded at the time it claims
        except BaseException:
            store.close()
            raise
        ledger.log_id = parse_entry(ledger.entry(0)).snapshot_hash
        return ledger

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, log_key: LogKey | None = None,
             signer: ActorKey | None = None, clock: Clock | None = None) -> Ledger:
        """Open an existing store. Without ``log_key`` it is read-only."""
        store = Store.open(path)
        ledger = cls(store, None, signer, clock)
        if log_key is not None:
            expected = VerifierKey.parse(ledger.log_vkey)
            if log_key.public_bytes != expected.public_key or log_key.name not in (
                None, expected.name
            ):
                store.close()
                raise ValueError("that log key is not this store's log key")
            ledger._log_key = log_key.named(expected.name)
        return ledger

    def close(self) -> None:
        """Close the store (and stop the signature-check helper, if one was started)."""
        self._helper.stop()
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- time -------------------------------------------------------------------------

    def _now_ns(self) -> int:
        """The one place the ledger reads the time."""
        now = self._clock() if self._clock is not None else datetime.now(timezone.utc)
        return to_ns(now)

    # -- writing ----------------------------------------------------------------------

    def _need_log_key(self) -> LogKey:
        if self._log_key is None:
            raise ValueError("open the ledger with its log key to write")
        return self._log_key

    def submit(self, signed_statement: bytes) -> Snapshot | None:
        """Append a statement signed elsewhere (see ledger.statements.sign_statement):
        the envelope's exact bytes, which are parsed, checked and stored as given.

        Returns its snapshot (None for keyring statements). Submitting the same
        signed statement again returns the original and appends nothing.
        Refusals raise MalformedInputError or a VerificationError subclass and
        write nothing. Outside a batch, returns only after the commit.
        """
        if not isinstance(signed_statement, (bytes, bytearray, memoryview)):
            raise TypeError("submit takes the signed statement's bytes, not "
                            f"{type(signed_statement).__name__}")
        return self._submit(bytes(signed_statement))

    def _submit(self, signed_statement: bytes | Signed,
                at: int | None = None) -> Snapshot | None:
        """``submit``, or a statement this process just signed (``build_signed``) at the
        log's time ``at`` (then not read again)."""
        log_key = self._need_log_key()
        if self._batch is not None:
            p = self._batch.append(signed_statement, at)
            return self._batch.app.snapshot(p)

        def fn(txn: lmdb.Transaction) -> Snapshot | None:
            app = Appender(self._store, txn, self._now_ns)
            p, _ = app.append(signed_statement, at)
            snap = app.snapshot(p)
            app.finish(log_key)
            return snap

        return self._store.write(fn)

    def _sign_and_write(self, op: str, *, actor: ActorKey | None = None,
                        **body: Any) -> Snapshot | None:
        signer = actor or self.signer
        if signer is None:
            raise ValueError("open the ledger with a signer to use the convenience methods")
        now = self._now_ns()  # one reading: the claim and the log's time agree
        signed = build_signed(signer, self.origin, op, log_id=self.log_id,
                              claimed_at=from_ns(now), **body)
        return self._submit(signed, now)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Many writes, one transaction and one checkpoint. The writes are
        acknowledged when the block exits without an exception; if it raises,
        none of them is stored."""
        log_key = self._need_log_key()
        if self._batch is not None:
            raise ValueError("batches do not nest")
        self._batch = Batch(self._store, self._now_ns, self._helper)
        try:
            yield
        except BaseException:
            self._batch._abort()
            raise
        else:
            if self._batch.broken:
                raise StoreError("the batch was aborted by an earlier store error")
            self._batch.commit(log_key)
        finally:
            self._batch = None

    @contextmanager
    def _reader(self) -> Iterator[lmdb.Transaction]:
        if self._batch is not None:
            yield self._batch.txn
        else:
            with self._store.reader() as txn:
                yield txn

    def grant(self, vkey: str, role: str = "writer") -> None:
        """Grant an actor key (its ``name+hex8+base64`` string) a role: writer or admin."""
        self._sign_and_write("grant", key=vkey, role=role)

    def revoke(self, name: str, reason: str | None = None) -> None:
        """Revoke the active key of actor ``name``."""
        self._sign_and_write("revoke", name=name, reason=reason)

    def register(self, *, name: str, owner: str, model_type: str, tier: str, purpose: str,
                 status: str = "active", metadata: dict[str, Any] | None = None) -> ModelRef:
        """Register a model. The same fields again return the existing ref; other
        fields raise RuleError (record an ``updated`` event instead)."""
        fields: dict[str, Any] = {"owner": owner, "model_type": model_type, "tier": tier,
                                  "purpose": purpose, "status": status,
                                  "metadata": metadata or {}}
        with self._reader() as txn:
            existing = q.chain(self._store, txn, name)
            first = q.snapshot(self._store, txn, existing[0]) if existing else None
        if first is not None:
            if first.payload != fields:
                raise RuleError(f"model {name!r} is registered with other fields; "
                                f"record an 'updated' event to change them")
            return self._ref(first)
        snap = self._sign_and_write("register", name=name, **fields)
        assert snap is not None
        return self._ref(snap)

    def _ref(self, snap: Snapshot) -> ModelRef:
        p = snap.payload
        return ModelRef(snap.model, snap.model_hash, p["owner"], p["model_type"], p["tier"],
                        p["purpose"], p["status"], p["metadata"], snap)

    def record(self, name: str, event: str, payload: dict[str, Any] | None = None) -> Snapshot:
        """Record event ``event`` about model ``name``."""
        snap = self._sign_and_write("event", model=name, event_type=event, payload=payload or {})
        assert snap is not None
        return snap

    def update(self, name: str, **fields: Any) -> Snapshot:
        """Change identity fields (owner, model_type, tier, purpose, status, metadata)."""
        return self.record(name, "updated", fields)

    def retire(self, name: str, reason: str | None = None) -> Snapshot:
        """Mark a model retired."""
        return self.record(name, "retired", {} if reason is None else {"reason": reason})

    def tag(self, name: str, tag: str, snapshot: str | None = None) -> Tag:
        """Point ``tag`` at ``snapshot`` (default: the model's latest snapshot)."""
        if snapshot is None:
            current = self._state(name)
            if current is None:
                raise RuleError(f"unknown model {name!r}")
            snapshot = current.latest
        moved = self._sign_and_write("tag", model=name, tag=tag, target=snapshot)
        assert moved is not None
        return Tag(name, tag, snapshot, moved)

    def register_group(self, *, name: str, owner: str, model_type: str = "group",
                       tier: str, purpose: str, status: str = "active",
                       metadata: dict[str, Any] | None = None,
                       members: list[str] | None = None) -> ModelRef:
        """Register a group and add its members, in one transaction."""
        if self._batch is not None:
            return self._group(name, owner, model_type, tier, purpose, status, metadata, members)
        with self.batch():
            ref = self._group(name, owner, model_type, tier, purpose, status, metadata, members)
        return ref

    def _group(self, name: str, owner: str, model_type: str, tier: str, purpose: str,
               status: str, metadata: dict[str, Any] | None, members: list[str] | None
               ) -> ModelRef:
        ref = self.register(name=name, owner=owner, model_type=model_type, tier=tier,
                            purpose=purpose, status=status, metadata=metadata)
        current = self._state(name)
        present = set() if current is None else set(current.members)
        for member in members or []:
            if member not in present:  # a repeated call adds nothing twice
                self.add_member(name, member)
        return ref

    def add_member(self, group: str, member: str, role: str | None = None) -> Snapshot:
        """Add ``member`` to ``group``."""
        snap = self._sign_and_write("member_add", group=group, member=member, role=role)
        assert snap is not None
        return snap

    def remove_member(self, group: str, member: str, reason: str | None = None) -> Snapshot:
        """Remove ``member`` from ``group``."""
        snap = self._sign_and_write("member_remove", group=group, member=member, reason=reason)
        assert snap is not None
        return snap

    # -- reading ----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of entries in the log."""
        with self._reader() as txn:
            return q.size(self._store, txn)

    def checkpoint(self) -> bytes:
        """The latest signed checkpoint note, byte for byte."""
        with self._reader() as txn:
            latest = q.latest_checkpoint(self._store, txn)
        if latest is None:
            raise StoreError("the store has no checkpoint")
        return latest[1]

    def entry(self, ref: int | str) -> bytes:
        """The exact bytes of an entry, by index or snapshot hash."""
        with self._reader() as txn:
            return q.entry(self._store, txn, q.entry_index(self._store, txn, ref))

    def _state(self, name: str) -> ModelState | None:
        with self._reader() as txn:
            return q.state(self._store, txn, name)

    def history(self, name: str) -> list[Snapshot]:
        """Every entry of a model's chain, oldest first ([] for an unknown model)."""
        with self._reader() as txn:
            return q.history(self._store, txn, name)

    def latest(self, name: str, tag: str | None = None) -> Snapshot | None:
        """The model's newest snapshot, or the one ``tag`` points at; None if there is none."""
        current = self._state(name)
        if current is None:
            return None
        target = current.latest if tag is None else current.tags.get(tag)
        if target is None:
            return None
        with self._reader() as txn:
            return q.snapshot(self._store, txn, q.entry_index(self._store, txn, target))

    def tags(self, name: str) -> dict[str, Tag]:
        """The model's tags now, by tag name."""
        out: dict[str, Tag] = {}
        for snap in self.history(name):
            if snap.op == "tag":
                tag = snap.payload["tag"]
                out[tag] = Tag(name, tag, snap.payload["target"], snap)
        return dict(sorted(out.items()))

    def tag_history(self, name: str, tag: str) -> list[Tag]:
        """Every move of ``tag``, oldest first."""
        return [Tag(name, tag, s.payload["target"], s) for s in self.history(name)
                if s.op == "tag" and s.payload["tag"] == tag]

    def inventory_at(self, when: datetime | None = None) -> dict[str, ModelState]:
        """Every model as it stood at ``when`` (timezone-aware; default: after every entry
        so far), by the ledger-assigned time. A naive datetime raises ValueError."""
        t = None if when is None else to_ns(when)
        with self._reader() as txn:
            n = q.size(self._store, txn) if t is None else q.size_at(self._store, txn, t)
            return q.states_at(self._store, txn, n)

    def members(self, group: str, at: datetime | None = None) -> dict[str, str | None]:
        """The members of ``group`` (and their roles) now or at ``at``."""
        if at is None:
            current = self._state(group)
            return {} if current is None else dict(current.members)
        state = self.inventory_at(at).get(group)
        return {} if state is None else dict(state.members)

    def groups(self, member: str, at: datetime | None = None) -> list[str]:
        """The groups that hold ``member`` now or at ``at``."""
        states = self.inventory_at(at)
        return sorted(name for name, s in states.items() if member in s.members)

    # -- proofs and bundles -------------------------------------------------------------

    def _note_for(self, txn: lmdb.Transaction, n: int) -> bytes:
        note = q.checkpoint_note(self._store, txn, n)
        if note is not None:
            return note
        if self._batch is not None and n > self._batch.app.start_size:
            # never sign a tree head the batch might still abort (it would be a fork)
            raise ValueError("proofs of a batch's writes are available once it commits")
        log_key = self._need_log_key()
        # A size between two commits: its time must lie between entries n-1 and n.
        last = parse_entry(q.entry(self._store, txn, n - 1)).entry.recorded_at
        at = parse_entry(q.entry(self._store, txn, n)).entry.recorded_at - 1
        if at < last:
            raise ValueError(f"entries {n - 1} and {n} were recorded at the same instant, so no "
                             f"time bounds a tree of size {n}; choose another size")
        return sign_checkpoint(log_key, self.origin, n, tree.root(q.getter(self._store, txn), n),
                               at)

    def _cp_at(self, txn: lmdb.Transaction) -> int:
        """The latest checkpoint's time (the meta row the writer keeps; audit checks it)."""
        return from_u64(self._store.need(txn, "meta", b"cp_at"))

    def _note_time(self, note: bytes) -> int:
        cp = Checkpoint.parse_note(note, [VerifierKey.parse(self.log_vkey)])
        if cp.time is None:
            raise StoreError("a stored checkpoint carries no time; run audit()")
        return cp.time

    def sign_checkpoint(self) -> bytes:
        """Sign and store a fresh checkpoint of the current size at the log's time now,
        so a bundle can be complete up to now; returns its note. Needs the log key."""
        log_key = self._need_log_key()
        if self._batch is not None:
            raise ValueError("sign a fresh checkpoint outside a batch")

        def fn(txn: lmdb.Transaction) -> bytes:
            n = q.size(self._store, txn)
            # the latest checkpoint's time is at least the last entry's: never go back
            at = max(self._now_ns(), self._cp_at(txn))
            note = sign_checkpoint(log_key, self.origin, n,
                                   tree.root(q.getter(self._store, txn), n), at)
            self._store.put(txn, "checkpoints", u64(n), note)
            self._store.put(txn, "meta", b"cp_at", u64(at))
            return note

        return self._store.write(fn)

    def _size_arg(self, txn: lmdb.Transaction, n: int | None) -> int:
        current = q.size(self._store, txn)
        if n is None:
            return current
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= current:
            raise ValueError(f"size must be an int in 1..{current}")
        return n

    def prove_inclusion(self, ref: int | str, size: int | None = None) -> InclusionProof:
        """Inclusion proof of an entry (index or snapshot hash) in the tree of ``size``."""
        with self._reader() as txn:
            n = self._size_arg(txn, size)
            index = q.entry_index(self._store, txn, ref)
            if index >= n:
                raise ValueError(f"entry {index} is not in the tree of size {n}")
            hashes = tree.inclusion_proof(q.getter(self._store, txn), index, n)
            return InclusionProof(index, n, tuple(hashes), self._note_for(txn, n))

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Consistency proof from ``old_size`` to ``new_size`` (default: the current size)."""
        with self._reader() as txn:
            n = self._size_arg(txn, new_size)
            if (isinstance(old_size, bool) or not isinstance(old_size, int)
                    or not 0 <= old_size <= n):
                raise ValueError(f"old size must be an int in 0..{n}")
            hashes = tree.consistency_proof(q.getter(self._store, txn), old_size, n)
            return ConsistencyProof(old_size, n, tuple(hashes), self._note_for(txn, n))

    def export_bundle(self, at: datetime | None = None, size: int | None = None,
                      trusted_size: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> bytes:
        """A proof bundle (specs/bundle.md) of the inventory as of ``at`` (default: the
        time of the last entry) under the checkpoint of ``size`` (default: latest).
        ``trusted_size`` adds a consistency proof from that older size.

        A checkpoint proves the log only up to the time it was signed: a time ``at``
        after the checkpoint used raises ValueError, except that without ``size`` a
        ledger holding the log key first signs a fresh checkpoint (``sign_checkpoint``).
        A time in the future raises ValueError."""
        t_req = None
        if at is not None:
            t_req = to_ns(at)
            if not 0 <= t_req <= 2**63 - 1:
                raise ValueError("a bundle's time must be within 1970-01-01..2262-04-11")
            if size is None and self._batch is None and self._log_key is not None:
                now = self._now_ns()
                if t_req > now:
                    raise ValueError(f"{iso(t_req)} is in the future (the log's time is "
                                     f"{iso(now)}): no checkpoint can prove it")
                with self._reader() as txn:
                    latest_at = self._cp_at(txn)
                if t_req > latest_at:
                    self.sign_checkpoint()
        with self._reader() as txn:
            s = self._size_arg(txn, size)
            get = q.getter(self._store, txn)
            note = self._note_for(txn, s)
            cp_time = self._note_time(note)
            if t_req is None:
                last = parse_entry(q.entry(self._store, txn, s - 1))
                t = last.entry.recorded_at
            else:
                t = t_req
            if t > cp_time:
                raise ValueError(
                    f"the checkpoint of size {s} was signed at {iso(cp_time)}, so it cannot "
                    f"prove the inventory at {iso(t)}; choose an earlier time"
                    + ("" if size is not None or self._log_key is not None else
                       ", or open the store with its log key to sign a fresh checkpoint"))
            n = min(q.size_at(self._store, txn, t), s)
            entries = []
            for i in range(n):
                if progress is not None and i % 4096 == 0:
                    progress(i, n)
                entries.append(q.entry(self._store, txn, i))
            nxt = q.entry(self._store, txn, n) if n < s else None
            trusted = None
            if trusted_size is not None:
                if not 0 < trusted_size <= s:
                    raise ValueError(f"trusted size must be in 1..{s}")
                trusted = (trusted_size, tree.consistency_proof(get, trusted_size, s))
            return encode_bundle(
                checkpoint=note, size=n, time=t,
                root=tree.root(get, n) if n else EMPTY_ROOT,
                consistency=tree.consistency_proof(get, n, s), entries=entries,
                next_entry=nxt,
                next_proof=tree.inclusion_proof(get, n, s) if nxt is not None else [],
                from_trusted=trusted,
            )

    def audit(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Recompute every hash, tree node, index row, state and checkpoint signature
        from the entries; raise AuditError naming the first mismatch. Returns the
        number of entries checked."""
        return audit(self._store, self.log_vkey, progress)

    @property
    def path(self) -> Path:
        """The store's directory."""
        return self._store.path
