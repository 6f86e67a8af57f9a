"""``Ledger``: the Python API of the writer (verbs follow model-ledger's)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lmdb
import msgspec

from verifier import (
    EMPTY_ROOT,
    KeyRecord,
    Policy,
    PolicyRecord,
    Checkpoint,
    Cosignature,
    VerificationError,
    WitnessKey,
    parse_note,
    verify_cosignatures,
    witness_time_text,
    WITNESS_DELAY,
    WITNESS_SKEW,
    TimeBoundError,
    ModelState,
    ParsedEntry,
    Statement,
    VerifierError,
    VerifierKey,
    bundle_chunks,
    compact_bundle_chunks,
    from_ns,
    iso,
    parse_entry,
    parse_signed_statement,
    to_ns,
)

from . import _cosigned
from . import _queries as q
from . import _tiles
from . import _tree as tree
from ._commit import GroupCommitter, Status, Write
from ._checks import Deferred, check_all
from ._codec import active_keys, decode_keyring, decode_policy
from ._sodium import sodium_verify
from ._verbs import Make, Prepare, Verbs
from ._audit import audit
from .batch import Batch
from .errors import ArgumentError, StoreError
from .keys import ActorKey, LogKey
from .results import (
    ConsistencyProof,
    InclusionProof,
    ModelRef,
    Receipt,
    Snapshot,
    Tag,
    tag_moves,
    tags_of,
)
from .statements import Signed, build_signed
from ._store import Store, from_u64, u64
from ._writer import Appender, sign_checkpoint

BUNDLE_ENCODINGS = ("json", "compact")
"""What ``export_bundle`` writes: JSON (specs/bundle.md §1) or the compact encoding (§7)."""

Clock = Callable[[], datetime]
DEFAULT_CLAIM_SKEW = timedelta(minutes=5)
DEFAULT_CLAIM_WINDOW = timedelta(days=1)


def _span_ns(span: timedelta, what: str) -> int:
    if not isinstance(span, timedelta):
        raise TypeError(f"{what} is a timedelta, not {type(span).__name__}")
    if span < timedelta(0):
        raise ValueError(f"{what} must not be negative")
    return span // timedelta(microseconds=1) * 1000


class _GroupCheck:
    """A group commit's signature strategy: every check is recorded with its write and
    run at the end, all at once on threads (``check_all``); a write a rule refuses
    drops its recorded checks."""

    def __init__(self) -> None:
        self.deferred: list[tuple[Deferred, Write]] = []
        self.statement: Statement | None = None
        # (public key, signature, statement bytes) already checked for the current write
        self.verified: tuple[bytes, bytes, bytes] | None = None
        self._write: Write | None = None
        self._mark = 0

    def start(self, w: Write) -> None:
        """The next checks belong to ``w``."""
        self._write, self._mark = w, len(self.deferred)
        self.statement = self.verified = None

    def drop(self) -> None:
        """The current write was refused: forget its checks."""
        del self.deferred[self._mark:]

    def __call__(self, key: VerifierKey, sig: bytes, data: bytes) -> bool:
        if self.verified is not None and self.verified == (key.public_key, sig, data):
            return True  # the caller's thread checked these very bytes before queueing
        st = self.statement
        assert self._write is not None and st is not None
        self.deferred.append((Deferred(key, sig, data, st.actor, st.id), self._write))
        return True


def _snapshot(app: Appender, p: ParsedEntry, existed: bool) -> Snapshot | None:
    return app.snapshot(p)


class _Proved:
    """What ``add`` waits for: the entry, its bytes, and (for a new entry) its inclusion
    proof under the checkpoint its commit signs, made by the group's leader."""

    __slots__ = ("p", "existed", "data", "size", "hashes", "note")

    def __init__(self, p: ParsedEntry, existed: bool, data: bytes) -> None:
        self.p, self.existed, self.data = p, existed, data
        self.size = 0
        self.hashes: list[bytes] = []
        self.note: bytes | None = None


def _proved(app: Appender, p: ParsedEntry, existed: bool) -> _Proved:
    return _Proved(p, existed, app.last_bytes)


def _prove_group(app: Appender, live: list[Write], note: bytes) -> None:
    """Give each new entry of the group that asks for it (``_Proved``) its inclusion proof
    under ``note`` (the group's checkpoint): one pass over the tree's nodes, shared."""
    size = app.state.size
    cache: dict[tuple[int, int], bytes] = {}

    def get(level: int, index: int) -> bytes:
        found = cache.get((level, index))
        if found is None:
            found = cache[(level, index)] = app.node(level, index)
        return found

    for w in live:
        r = w.result
        if isinstance(r, _Proved) and not r.existed and w.error is None:
            r.size, r.note = size, note
            r.hashes = tree.inclusion_proof(get, r.p.entry.index, size)


def _verified(signed: Signed, key: bytes | None) -> tuple[bytes, bytes, bytes] | None:
    """(key, signature, bytes) if the 32-byte public ``key`` verifies the signature of
    ``signed`` (libsodium), else None: the rules then check it in the group."""
    if key is None or not sodium_verify(key, signed.sig, signed.data):
        return None
    return key, signed.sig, signed.data


class Ledger(Verbs):
    """An open modelseal store. Writes need the log key and, for the convenience
    methods, a ``signer`` (the actor key that signs what they build).

    Safe to share across threads: concurrent writes are committed together (group
    commit), each acknowledged after the synced commit that holds it, each refused on
    its own; a batch belongs to the thread and context that opened it. Readers never
    wait for writers. A write waits at most ``write_timeout`` seconds for its turn;
    if it is still queued then, it raises StoreBusyError and is not stored.
    """

    write_timeout = 60.0

    def __init__(self, store: Store, log_key: LogKey | None, signer: ActorKey | None,
                 clock: Clock | None) -> None:
        self._store = store
        self._log_key = log_key
        self.signer = signer
        self._clock = clock
        self._batch: ContextVar[Batch | None] = ContextVar(f"modelseal-batch-{id(self)}",
                                                           default=None)
        self._committer = GroupCommitter(self._run_group)
        # the keyring row last read, and the key and role it grants each active actor
        self._keyring: tuple[bytes | None, dict[str, tuple[VerifierKey, str]]] = (None, {})
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
               claim_window: timedelta = DEFAULT_CLAIM_WINDOW,
               policy: Policy | None = None) -> Ledger:
        """Make a new store at ``path`` whose genesis names ``origin``, the log key and
        the first admin key (and ``policy``, the first controlled vocabulary, if given);
        returns it open, with ``admin`` as signer.

        ``claim_skew`` (at most 1 hour) and ``claim_window`` (at most 31 days) are fixed
        for the log's life: a statement whose ``claimed_at`` is later than the log's time
        by more than ``claim_skew``, or earlier by more than ``claim_window``, is refused.
        """
        log_key.named(origin)
        # Sign the genesis before creating anything, so a bad clock or key leaves no store.
        now = clock() if clock is not None else datetime.now(timezone.utc)
        extra: dict[str, Any] = {} if policy is None else {"policy": policy}
        genesis = build_signed(admin, origin, "genesis", log_id=None, claimed_at=now,
                               log_key=log_key.vkey, admin_key=admin.vkey,
                               claim_skew=_span_ns(claim_skew, "claim_skew"),
                               claim_window=_span_ns(claim_window, "claim_window"), **extra)
        store = Store.open(path, create=origin)
        ledger = cls(store, log_key, admin, clock)
        ledger.origin, ledger.log_vkey = origin, log_key.vkey
        try:
            ledger._write(lambda _: genesis, at=to_ns(now))  # recorded at the time it claims
        except BaseException:
            store.close()
            raise
        ledger.log_id = parse_entry(ledger.entry(0)).snapshot_hash
        return ledger

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, log_key: LogKey | None = None,
             signer: ActorKey | None = None, clock: Clock | None = None) -> Ledger:
        """Open an existing store. Without ``log_key`` it is read-only, and opening takes
        no lock: it neither waits for nor blocks a writer. With ``log_key``, opening waits
        (as the first write would) while another process holds the store's writer lock."""
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
            try:
                store.make_writable()
            except BaseException:
                store.close()
                raise
        return ledger

    def close(self) -> None:
        """Close the store. Writes already queued by other threads are committed first
        (waiting at most ``write_timeout``); later ones raise ValueError. Close a ledger
        once no other thread uses it: a batch still open in another thread fails."""
        self._committer.close(self.write_timeout)
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- time -------------------------------------------------------------------------

    def _identity(self) -> tuple[ActorKey | None, str, str]:
        return self.signer, self.origin, self.log_id

    def _now_ns(self) -> int:
        """The one place the ledger reads the time."""
        now = self._clock() if self._clock is not None else datetime.now(timezone.utc)
        return to_ns(now)

    # -- writing ----------------------------------------------------------------------

    def _need_log_key(self) -> LogKey:
        if self._log_key is None:
            raise ValueError("open the ledger with its log key to write")
        return self._log_key

    def _write(self, statement: bytes | Make, prepare: Prepare | None = None,
               at: int | None = None) -> Any:
        """Write through the caller's batch if this context has one, else through the
        group commit (returns after the synced commit)."""
        batch = self._own_batch()
        if batch is not None:
            return batch._write(statement, prepare, at)
        return self._group_write(statement, prepare, at, _snapshot)

    def add(self, signed_statement: bytes) -> Receipt:
        """Append a statement signed elsewhere, like ``submit``, and return its receipt:
        the entry's exact bytes and its inclusion proof under the first checkpoint that
        holds it (for a new entry, the one its commit signed). The same statement again
        appends nothing and gives the same receipt (``created`` False). Not in a batch
        (ValueError): a receipt needs the commit."""
        if not isinstance(signed_statement, (bytes, bytearray, memoryview)):
            raise TypeError("add takes the signed statement's bytes, not "
                            f"{type(signed_statement).__name__}")
        if self._own_batch() is not None:
            raise ValueError("add() answers after its commit: call it outside a batch")
        r: _Proved = self._group_write(bytes(signed_statement), None, None, _proved)
        return self._receipt_of(r)

    def add_many(self, signed_statements: list[bytes]) -> list[Receipt | VerifierError]:
        """``add`` for many statements at once, from one thread: each is parsed, queued
        in order and committed in the group commits they share; returns, in order, each
        one's receipt or the refusal ``add`` would raise for it (MalformedInputError or a
        VerificationError). Anything else (StoreBusyError, StoreError, an interrupt) is
        raised; writes already committed then stand. Not in a batch (ValueError)."""
        if not isinstance(signed_statements, list):
            raise TypeError("add_many takes a list of signed statements' bytes")
        statements = list(signed_statements)  # walked once, whatever a subclass does
        if not all(isinstance(b, bytes) for b in statements):
            raise TypeError("add_many takes a list of signed statements' bytes")
        if self._own_batch() is not None:
            raise ValueError("add_many() answers after its commits: call it outside a batch")
        self._not_in_batch()
        refused: dict[int, VerifierError] = {}
        applies: list[Callable[[Any], Any]] = []
        for k, data in enumerate(statements):
            try:
                applies.append(self._group_apply(data, None, None, _proved, check_now=False))
            except VerifierError as exc:
                refused[k] = exc
        answers = iter(self._committer.submit_many(applies, self.write_timeout))
        out: list[Receipt | VerifierError] = []
        for k in range(len(statements)):
            if k in refused:
                out.append(refused[k])
                continue
            r, error = next(answers)
            if error is None:
                out.append(self._receipt_of(r))
            elif isinstance(error, VerifierError):
                out.append(error)
            else:
                raise error
        return out

    def _receipt_of(self, r: _Proved) -> Receipt:
        """The receipt of a write ``_proved`` answered."""
        if r.existed or r.note is None:
            return self.receipt(r.p.entry.index)
        index = r.p.entry.index
        return Receipt(index, r.p.snapshot_hash, from_ns(r.p.entry.recorded_at), r.data,
                       InclusionProof(index, r.size, tuple(r.hashes), r.note), True)

    def receipt(self, ref: int | str) -> Receipt:
        """The receipt of an entry (index or snapshot hash): its bytes and its inclusion
        proof under the first stored checkpoint whose tree holds it (``created`` False)."""
        with self._reader() as txn:
            index = q.entry_index(self._store, txn, ref)
            first = q.first_checkpoint(self._store, txn, index + 1)
            if first is None:
                raise StoreError("store is damaged: no checkpoint holds its last entries")
            size, note = first
            data = q.entry(self._store, txn, index)
            hashes = tree.inclusion_proof(q.getter(self._store, txn), index, size)
        p = parse_entry(data)
        return Receipt(index, p.snapshot_hash, from_ns(p.entry.recorded_at), data,
                       InclusionProof(index, size, tuple(hashes), note), False)

    def _group_write(self, statement: bytes | Make, prepare: Prepare | None, at: int | None,
                     result: Callable[[Appender, ParsedEntry, bool], Any]) -> Any:
        """Write through the group commit; returns ``result(appender, entry, existed)``
        (or what ``prepare`` returned) after the synced commit."""
        self._not_in_batch()
        apply = self._group_apply(statement, prepare, at, result, check_now=True)
        return self._committer.submit(apply, self.write_timeout)

    def _not_in_batch(self) -> None:
        self._need_log_key()
        if self._store.write_lock.busy_here():
            raise ValueError("this thread has a batch open on this store (through another "
                             "Ledger object or context): write through that batch, or end "
                             "it first")

    def _group_apply(self, statement: bytes | Make, prepare: Prepare | None, at: int | None,
                     result: Callable[[Appender, ParsedEntry, bool], Any], *,
                     check_now: bool) -> Callable[[tuple[Appender, _GroupCheck]], Any]:
        """What the group's leader runs for this write. ``check_now``: check a parsed
        statement's signature here (this thread's work runs beside the leader's); else the
        leader checks it with the group's other checks, on threads."""
        # Made or parsed, and its signature checked, here before queueing: this
        # thread's work runs beside the leader's, not in its turn.
        when = at
        made: Make | None = None
        if isinstance(statement, bytes):
            signed = Signed(*parse_signed_statement(statement))
            verified = _verified(signed, self._granted_key(signed.statement.actor)) \
                if check_now else None
        else:
            made = statement
            if when is None:
                when = self._now_ns()  # one reading: the claim and the log's time agree
            signed = made(when)  # ValueError/TypeError: fields the schema refuses
            signer = self.signer
            verified = _verified(signed, None if signer is None else signer.public_bytes)

        def apply(group: tuple[Appender, _GroupCheck]) -> Any:
            app, check = group
            if prepare is not None:
                found = prepare(app)
                if found is not None:
                    return found
            mine, at_ns, done = signed, when, verified
            if made is not None and at is None and when is not None and app.stale(when):
                # queued for longer than the log's claim_window allows: made afresh
                at_ns, done = self._now_ns(), None
                try:
                    mine = made(at_ns)
                except (ValueError, TypeError):
                    at_ns = when  # the first one stands, and the rules refuse it
            check.statement, check.verified = mine.statement, done
            p, existed = app.append(mine, at_ns)
            return result(app, p, existed)

        return apply

    def _run_group(self, take: Callable[[], list[Write]], deadline: float,
                   status: Status) -> BaseException | None:
        """One group commit (see ledger._commit): wait for the store until ``deadline``,
        apply each write in one transaction, check every signature at once (on
        threads), sign one checkpoint, commit. Returns an interrupt that came after
        the commit.

        A write whose signature fails is answered SignatureError and the group is
        applied again without it (a later write may have depended on it)."""
        log_key = self._need_log_key()
        store = self._store
        lock = store.write_lock
        try:
            lock.acquire(deadline - time.monotonic())
            live = take()
            while True:
                note: bytes | None = None
                try:
                    txn = store.begin(write=True)
                except lmdb.Error as exc:
                    raise store.error(exc) from None
                try:
                    app, bad = self._apply_group(store, txn, live)
                    if bad:
                        txn.abort()
                        live = [w for w in live if w not in bad]
                        continue
                    note = app.finish(log_key)
                    if note is not None:
                        _prove_group(app, live, note)
                    txn.commit()
                    status.committed = True
                    return None
                except lmdb.Error as exc:
                    txn.abort()
                    raise store.error(exc) from None
                except BaseException as exc:
                    if status.committed or (note is not None and self._stored(note)):
                        status.committed = True
                        return exc  # interrupted after the commit: the results stand
                    txn.abort()
                    raise
        finally:
            lock.release_if_mine()

    def _apply_group(self, store: Store, txn: lmdb.Transaction, live: list[Write]
                     ) -> tuple[Appender, set[Write]]:
        """Apply each write (its own result or refusal), then run the group's signature
        checks at once. Returns the appender and the writes whose signature failed
        (answered with SignatureError; the transaction must then be discarded)."""
        check = _GroupCheck()
        app = Appender(store, txn, self._now_ns, check)
        for w in live:
            w.result = w.error = None
            check.start(w)
            try:
                w.result = w.apply((app, check))
            except VerifierError as exc:  # refused before anything of it was stored
                w.error = exc
                check.drop()
        bad: set[Write] = set()
        results = check_all([c for c, _ in check.deferred])
        for (c, w), ok in zip(check.deferred, results, strict=True):
            if not ok and w not in bad:
                bad.add(w)
                w.result, w.error = None, c.error()
        return app, bad

    def _granted_key(self, actor: str) -> bytes | None:
        """The public key the keyring grants ``actor`` now, if any (a hint only: the
        rules decide at append which key counts)."""
        found = self.active_key(actor)
        return None if found is None else found[0].public_key

    def _stored(self, note: bytes) -> bool:
        """Whether the checkpoint ``note`` was committed (its size's row holds it)."""
        size = Checkpoint.parse_note(note, [VerifierKey.parse(self.log_vkey)]).size
        with self._store.reader() as txn:
            return q.checkpoint_note(self._store, txn, size) == note

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Many writes, one transaction and one checkpoint; yields the ``Batch``. The
        writes are acknowledged when the block exits without an exception; if it raises,
        none of them is stored. The ledger's verbs called in the same thread and context
        join the batch; other threads' writes wait until it ends."""
        log_key = self._need_log_key()
        if self._own_batch() is not None:
            raise ValueError("batches do not nest")
        batch = Batch(self, log_key, self._now_ns)
        token = self._batch.set(batch)
        try:
            yield batch
        except BaseException:
            batch.abort()
            raise
        else:
            batch.commit()
        finally:
            self._batch.reset(token)

    def _own_batch(self) -> Batch | None:
        """The batch this caller opened and may use: one in this context, opened by
        this thread, not ended. (A context copied into another thread or into a task
        that outlives the batch carries it too; there it is not the caller's.)"""
        batch = self._batch.get()
        if batch is None or batch._thread != threading.get_ident() or batch._done:
            return None
        return batch

    @contextmanager
    def _reader(self) -> Iterator[lmdb.Transaction]:
        batch = self._own_batch()
        if batch is not None:
            with batch._reader() as txn:
                yield txn
        else:
            with self._store.reader() as txn:
                yield txn

    def register_group(self, *, name: str, owner: str, model_type: str = "group",
                       tier: str, purpose: str, status: str = "active",
                       metadata: dict[str, Any] | None = None,
                       members: list[str] | None = None) -> ModelRef:
        """Register a group and add its members, in one transaction."""
        if self._own_batch() is not None:
            return self._group(name, owner, model_type, tier, purpose, status, metadata, members)
        with self.batch():
            ref = self._group(name, owner, model_type, tier, purpose, status, metadata, members)
        return ref

    # -- reading ----------------------------------------------------------------------

    def active_key(self, actor: str) -> tuple[VerifierKey, str] | None:
        """The active key of ``actor`` and its role (``writer``, ``admin`` or ``reader``)
        in the latest committed state; None if ``actor`` has no active key (never granted,
        or revoked since its last grant).

        What a log server asks to authorise a request signed as ``actor`` (with
        ``verifier.may_read(role)``). Reads one read transaction: never waits for a
        writer, and sees a grant or revoke as soon as it is committed (not before: a batch's
        own grants count once it commits). Cheap: the keyring row is decoded again only when
        it changed. TypeError if ``actor`` is not a str; StoreError if the store is
        damaged. Thread-safe.
        """
        if not isinstance(actor, str):
            raise TypeError(f"an actor name is a str, not {type(actor).__name__}")
        with self._store.reader() as txn:
            raw = self._store.get(txn, "meta", b"keyring")
        if raw is None:
            return None
        seen, keys = self._keyring  # one tuple: threads swap it whole, never mutate it
        if raw != seen:
            keys = active_keys(raw)
            self._keyring = raw, keys
        return keys.get(actor)

    def keyring(self) -> list[KeyRecord]:
        """Every grant of an actor key, oldest first, each with its revocation if any
        (who, when, at which entry, why), from the latest committed state. StoreError if
        the stored keyring does not decode (``audit()`` names it)."""
        with self._reader() as txn:
            raw = self._store.get(txn, "meta", b"keyring")
        if raw is None:
            return []
        try:
            return decode_keyring(raw)
        except (msgspec.MsgspecError, VerifierError, ValueError, TypeError, KeyError) as exc:
            raise StoreError(f"store is damaged: its keyring row does not decode ({exc}); "
                             "run audit()") from None

    def policy(self) -> PolicyRecord | None:
        """The last policy put in force or lifted (its ``policy`` None), with the entry,
        time and admin that did it; None if the log never had one. From the latest
        committed state; StoreError if the stored row does not decode."""
        with self._reader() as txn:
            raw = self._store.get(txn, "meta", b"policy")
        if raw is None:
            return None
        try:
            return decode_policy(raw)
        except (msgspec.MsgspecError, ValueError, TypeError) as exc:
            raise StoreError(f"store is damaged: its policy row does not decode ({exc}); "
                             "run audit()") from None

    @property
    def size(self) -> int:
        """The number of entries in the log."""
        with self._reader() as txn:
            return q.size(self._store, txn)

    def root(self, size: int) -> bytes | None:
        """The Merkle tree hash (RFC 9162) of the first ``size`` entries, or None while the
        log holds fewer (a past root never changes). ValueError for a negative size."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ArgumentError("a tree size is an int >= 0")
        with self._reader() as txn:
            if size > q.size(self._store, txn):
                return None
            return tree.root(q.getter(self._store, txn), size)

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

    def statement_entry(self, statement_id: str) -> int | None:
        """The index of the entry holding the statement of id ``statement_id``, or None
        (inside a batch, its own writes count)."""
        if not isinstance(statement_id, str):
            raise TypeError(f"a statement id is a str, not {type(statement_id).__name__}")
        key = statement_id.encode("utf-8", "replace")
        if not 0 < len(key) <= 128:  # ids are 16-128 ASCII characters
            return None
        with self._reader() as txn:
            raw = self._store.get(txn, "stmt_ids", key)
        return None if raw is None else from_u64(raw)

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
        return tags_of(name, self.history(name))

    def tag_history(self, name: str, tag: str) -> list[Tag]:
        """Every move of ``tag``, oldest first."""
        return tag_moves(name, tag, self.history(name))

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
        batch = self._own_batch()
        if batch is not None and n > batch.start_size:
            # never sign a tree head the batch might still abort (it would be a fork)
            raise ValueError("proofs of a batch's writes are available once it commits")
        log_key = self._need_log_key()
        # A size between two commits: its time must lie between entries n-1 and n.
        last = parse_entry(q.entry(self._store, txn, n - 1)).entry.recorded_at
        at = parse_entry(q.entry(self._store, txn, n)).entry.recorded_at - 1
        if at < last:
            raise ArgumentError(f"entries {n - 1} and {n} were recorded at the same instant, so no "
                             f"time bounds a tree of size {n}; choose another size")
        return sign_checkpoint(log_key, self.origin, n, tree.root(q.getter(self._store, txn), n),
                               at)

    def _cp_at(self, txn: lmdb.Transaction) -> int:
        """The latest checkpoint's time (the meta row the writer keeps; audit checks it)."""
        return from_u64(self._store.need(txn, "meta", b"cp_at"))

    def _cosigned_of(self, txn: lmdb.Transaction, n: int, t: int) -> bytes | None:
        """The stored cosigned checkpoint of size ``n`` with the most cosignatures, if it
        can prove the log at ``t`` (signed, and first cosigned, no earlier); else None."""
        row = _cosigned.best([r for r in _cosigned.of_size(self._store, txn, n)
                              if r.time >= t and _cosigned.earliest(r.note) * 10**9 >= t])
        return None if row is None else row.note

    def _note_time(self, note: bytes) -> int:
        cp = Checkpoint.parse_note(note, [VerifierKey.parse(self.log_vkey)])
        if cp.time is None:
            raise StoreError("a stored checkpoint carries no time; run audit()")
        return cp.time

    def sign_checkpoint(self) -> bytes:
        """Sign and store a fresh checkpoint of the current size at the log's time now,
        so a bundle can be complete up to now; returns its note. Needs the log key."""
        log_key = self._need_log_key()
        if self._own_batch() is not None:
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
            raise ArgumentError(f"size must be an int in 1..{current}")
        return n

    def prove_inclusion(self, ref: int | str, size: int | None = None) -> InclusionProof:
        """Inclusion proof of an entry (index or snapshot hash) in the tree of ``size``."""
        with self._reader() as txn:
            n = self._size_arg(txn, size)
            index = q.entry_index(self._store, txn, ref)
            if index >= n:
                raise ArgumentError(f"entry {index} is not in the tree of size {n}")
            hashes = tree.inclusion_proof(q.getter(self._store, txn), index, n)
            return InclusionProof(index, n, tuple(hashes), self._note_for(txn, n))

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Consistency proof from ``old_size`` to ``new_size`` (default: the current size)."""
        with self._reader() as txn:
            n = self._size_arg(txn, new_size)
            if (isinstance(old_size, bool) or not isinstance(old_size, int)
                    or not 0 <= old_size <= n):
                raise ArgumentError(f"old size must be an int in 0..{n}")
            hashes = tree.consistency_proof(q.getter(self._store, txn), old_size, n)
            return ConsistencyProof(old_size, n, tuple(hashes), self._note_for(txn, n))

    def export_bundle(self, at: datetime | None = None, size: int | None = None,
                      trusted_size: int | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      encoding: str = "json") -> bytes:
        """A proof bundle (specs/bundle.md) of the inventory as of ``at`` (default: the
        time of the last entry) under the checkpoint of ``size`` (default: latest).
        ``trusted_size`` adds a consistency proof from that older size. ``encoding``:
        "json" (§1) or "compact" (§7, zlib-compressed raw entries); else ValueError.

        With ``at`` and no ``size``, the first cosigned checkpoint that can prove ``at``
        (``first_cosigned_after``, holding ``trusted_size`` if given) is used, byte for
        byte, where the store has one; otherwise the checkpoint of the bundle's size
        carries the cosignatures the store holds for it, if they can prove the time.
        A checkpoint proves the log only up to the time it was signed: a time ``at``
        after the checkpoint used raises ValueError, except that without ``size`` a
        ledger holding the log key first signs a fresh checkpoint (``sign_checkpoint``).
        A time in the future raises ValueError."""
        return b"".join(self.iter_bundle(at, size, trusted_size, progress, encoding))

    def iter_bundle(self, at: datetime | None = None, size: int | None = None,
                    trusted_size: int | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    encoding: str = "json") -> Iterator[bytes]:
        """``export_bundle``'s bytes in pieces, the entries read as the pieces are taken
        (never all in memory). The arguments are checked, the proofs computed and a
        fresh checkpoint signed if needed before this returns."""
        if encoding not in BUNDLE_ENCODINGS:
            raise ValueError(f"a bundle's encoding is one of {', '.join(BUNDLE_ENCODINGS)}")
        t_req = None
        note = None
        if at is not None:
            t_req = to_ns(at)
            if not 0 <= t_req <= 2**63 - 1:
                raise ArgumentError("a bundle's time must be within 1970-01-01..2262-04-11")
            if size is None:
                note = self._first_cosigned(to_ns(at), trusted_size or 0)
            if note is not None:
                size = Checkpoint.parse_body(parse_note(note).text)[1]
            elif size is None and self._own_batch() is None and self._log_key is not None:
                now = self._now_ns()
                if t_req > now:
                    raise ArgumentError(f"{iso(t_req)} is in the future (the log's time is "
                                     f"{iso(now)}): no checkpoint can prove it")
                with self._reader() as txn:
                    latest_at = self._cp_at(txn)
                if t_req > latest_at:
                    self.sign_checkpoint()
        with self._reader() as txn:
            return self._bundle_pieces(txn, t_req, size, trusted_size, progress, note,
                                       encoding)

    def _bundle_pieces(self, txn: lmdb.Transaction, t_req: int | None, size: int | None,
                       trusted_size: int | None,
                       progress: Callable[[int, int], None] | None,
                       note: bytes | None = None, encoding: str = "json"
                       ) -> Iterator[bytes]:
        """Check the bundle's arguments and compute its proofs in ``txn`` now; return
        its pieces, whose entries are read (immutable) in a later read transaction.
        ``note``: the checkpoint to use (a cosigned one of ``size``), else the stored one."""
        s = self._size_arg(txn, size)
        get = q.getter(self._store, txn)
        if t_req is None:
            t = parse_entry(q.entry(self._store, txn, s - 1)).entry.recorded_at
        else:
            t = t_req
        if note is None:
            note = self._cosigned_of(txn, s, t) or self._note_for(txn, s)
        cp_time = self._note_time(note)
        if t > cp_time:
            raise ArgumentError(
                f"the checkpoint of size {s} was signed at {iso(cp_time)}, so it cannot "
                f"prove the inventory at {iso(t)}; choose an earlier time"
                + ("" if size is not None or self._log_key is not None else
                   ", or open the store with its log key to sign a fresh checkpoint"))
        n = min(q.size_at(self._store, txn, t), s)
        trusted = None
        if trusted_size is not None:
            if isinstance(trusted_size, bool) or not isinstance(trusted_size, int) \
                    or not 0 < trusted_size <= s:
                raise ArgumentError(f"trusted size must be in 1..{s}")
            trusted = (trusted_size, tree.consistency_proof(get, trusted_size, s))
        nxt = q.entry(self._store, txn, n) if n < s else None
        chunks = compact_bundle_chunks if encoding == "compact" else bundle_chunks
        return chunks(
            checkpoint=note, size=n, time=t,
            root=tree.root(get, n) if n else EMPTY_ROOT,
            consistency=tree.consistency_proof(get, n, s), entries=self._entries(n, progress),
            next_entry=nxt,
            next_proof=tree.inclusion_proof(get, n, s) if nxt is not None else [],
            from_trusted=trusted,
        )

    def _entries(self, n: int, progress: Callable[[int, int], None] | None,
                 chunk: int = 512) -> Iterator[bytes]:
        """Entries 0..n-1, read ``chunk`` at a time, each chunk in its own short read
        transaction (entries never change), so a consumer that stops taking them holds
        no reader slot of the store."""
        for start in range(0, n, chunk):
            if progress is not None:
                progress(start, n)
            with self._reader() as txn:
                part = [q.entry(self._store, txn, i) for i in range(start, min(n, start + chunk))]
            yield from part

    # -- witnesses ----------------------------------------------------------------------

    def add_cosignatures(self, note: bytes,
                         witnesses: Sequence[WitnessKey]) -> tuple[Cosignature, ...]:
        """Store the cosignatures by ``witnesses`` in ``note``, one of this log's checkpoints
        with cosignature lines; return those not held before (one per witness public key).

        Checks, before anything is written: the log's signature (MalformedInputError,
        SignatureError); that the note is a checkpoint of this log's own tree, the stored
        checkpoint of its size or one the log re-signed since (else VerificationError, a
        checkpoint this log never signed); each configured witness's line
        (``verify_cosignatures``). The merged note (the checkpoint, the log's line, every
        valid cosignature seen for it, exact lines) is written in one synced transaction.
        Lines by other keys are dropped. Needs the log key; not inside a batch.
        """
        self._need_log_key()
        if self._own_batch() is not None:
            raise ValueError("add cosignatures outside a batch")
        log_key = VerifierKey.parse(self.log_vkey)
        cp = Checkpoint.parse_note(note, [log_key])
        if cp.origin != self.origin:
            raise VerificationError(f"a checkpoint of {cp.origin!r}, not of this log "
                                    f"({self.origin!r})")
        cosigs = verify_cosignatures(note, witnesses)
        if not cosigs:
            return ()
        self._check_cosignature_times(cp, cosigs)
        log_line = next(_cosigned.line_of(sig) for sig in parse_note(note).signatures
                        if (sig.name, sig.key_id) == (log_key.name, log_key.key_id))

        def fn(txn: lmdb.Transaction) -> tuple[Cosignature, ...]:
            return _cosigned.add(self._store, txn, cp, log_line, cosigs, witnesses,
                                 q.getter(self._store, txn), self._times(txn))

        return self._store.write(fn)

    def _check_cosignature_times(self, cp: Checkpoint, cosigs: Sequence[Cosignature]) -> None:
        """TimeBoundError for a cosignature no honest witness makes of this checkpoint: timed
        before the log signed it (less the skew the verifier allows, else the checkpoint
        would fail as post-dated) or after the log's time now (plus the skew and the
        exchange's delay, else the log's next entries would fail as back-dated)."""
        now = self._now_ns() // 10**9
        signed = (cp.time or 0) // 10**9
        for c in cosigs:
            if not signed - WITNESS_SKEW <= c.timestamp <= now + WITNESS_DELAY + WITNESS_SKEW:
                raise TimeBoundError(
                    f"witness {c.witness.name} cosigned the checkpoint of size {cp.size} at "
                    f"{witness_time_text(c.timestamp)}, outside {iso(signed * 10**9)} less "
                    f"{WITNESS_SKEW} s .. the log's time now plus "
                    f"{WITNESS_DELAY + WITNESS_SKEW} s: not kept")

    def _times(self, txn: lmdb.Transaction) -> _cosigned.Times:
        raw = self._store.get(txn, "meta", b"cp_at")
        return _cosigned.Times(
            lambda i: parse_entry(q.entry(self._store, txn, i)).entry.recorded_at,
            q.size(self._store, txn), None if raw is None else from_u64(raw))

    def cosigned(self, size: int | None = None) -> bytes | None:
        """The stored cosigned checkpoint of ``size`` (default: the largest size that has
        one), or None. Of several signings of one size, the one with the most
        cosignatures (the later on a tie)."""
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or size < 0):
            raise ArgumentError("size must be a non-negative int")
        with self._reader() as txn:
            n = _cosigned.latest_size(self._store, txn) if size is None else size
            if n is None:
                return None
            row = _cosigned.best(_cosigned.of_size(self._store, txn, n))
        return None if row is None else row.note

    def first_cosigned_after(self, t: datetime) -> bytes | None:
        """The first stored cosigned checkpoint (in the log's order) that can prove the log
        at ``t``: signed by the log at or after ``t`` and cosigned no earlier than ``t``
        (its earliest cosignature). None if there is none."""
        return self._first_cosigned(to_ns(t))

    def _first_cosigned(self, t_ns: int, min_size: int = 0) -> bytes | None:
        """``first_cosigned_after``, among checkpoints of at least ``min_size`` entries."""
        with self._reader() as txn:
            n = q.size_at(self._store, txn, t_ns)
            for row in _cosigned.rows(self._store, txn, max(n, min_size, 1)):
                if row.time >= t_ns and _cosigned.earliest(row.note) * 10**9 >= t_ns:
                    return row.note
        return None

    def tile(self, level: int, index: int, width: int) -> bytes | None:
        """The hash tile (C2SP tlog-tiles) at ``level``/``index`` of ``width`` hashes, or
        None while the log does not hold all of them."""
        with self._reader() as txn:
            if not _tiles.available(level, index, width, q.size(self._store, txn)):
                return None
            return _tiles.tile_bytes(q.getter(self._store, txn), level, index, width)

    def audit(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Recompute every hash, tree node, index row, state and checkpoint signature
        from the entries; raise AuditError naming the first mismatch. Returns the
        number of entries checked."""
        return audit(self._store, self.log_vkey, progress)

    @property
    def path(self) -> Path:
        """The store's directory."""
        return self._store.path
