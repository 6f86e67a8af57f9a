"""``audit()``: recompute everything the store holds from the entries and
compare, byte for byte. Raises AuditError naming what and where."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from typing import Any

import lmdb

from verifier import (
    Checkpoint,
    Inventory,
    Register,
    VerifierError,
    VerifierKey,
    parse_entry,
    statement_model,
)

from . import _cosigned
from . import _tree as tree
from ._codec import encode_keyring, encode_policy, encode_state
from ._compress import DamagedEntry, make_dictionary
from .errors import AuditError
from ._store import Store, from_u64, u64
from ._versions import version_key, version_value


def _rows(txn: lmdb.Transaction, db: Any) -> Iterator[tuple[bytes, bytes]]:
    cur = txn.cursor(db=db)
    for key, value in cur.iternext():
        yield bytes(key), bytes(value)


Progress = Callable[[int, int], None]


def audit(store: Store, log_vkey: str, progress: Progress | None = None) -> int:
    """Check the whole store; return the number of entries checked.

    ``progress(done, total)`` is called now and then, if given."""
    try:
        key = VerifierKey.parse(log_vkey)
    except VerifierError as exc:
        raise AuditError(f"the stored log key does not parse ({exc})", "meta log_vkey") from None
    with store.reader() as txn:
        return _audit(store, txn, key, progress or (lambda done, total: None))


def _audit(store: Store, txn: lmdb.Transaction, log_key: VerifierKey,
           progress: Progress) -> int:
    db = store.db
    meta_size = store.get(txn, "meta", b"size")
    size = 0 if meta_size is None else from_u64(meta_size)
    inv = Inventory(keep_timelines=False)
    expect: dict[str, dict[bytes, bytes]] = {
        name: {} for name in ("snapshots", "stmt_ids", "by_time", "model_hashes", "versions",
                              "nodes")
    }
    last_row: dict[str, tuple[int, bytes]] = {}
    nodes = expect["nodes"]

    def get(level: int, index: int) -> bytes:
        return nodes[tree.node_key(level, index)]

    def put(level: int, index: int, h: bytes) -> None:
        nodes[tree.node_key(level, index)] = h

    if size:
        _check_dictionary(store, txn)
    count = 0
    times = array("q")  # recorded_at by index, for the checkpoints' times
    for key, packed in _rows(txn, db["entries"]):
        if count % 4096 == 0:
            progress(count, size)
        if key != u64(count):
            raise AuditError("entry key out of sequence", f"entries row {key.hex()}")
        try:
            data = store.codec.unpack(packed)
        except DamagedEntry as exc:
            raise AuditError(f"stored entry does not decompress ({exc})",
                             f"entry {count}") from None
        try:
            p = parse_entry(data)
            inv.apply_parsed(p)
        except VerifierError as exc:
            raise AuditError(f"entry fails verification ({type(exc).__name__}: {exc})",
                             f"entry {count}") from None
        e = p.entry
        times.append(e.recorded_at)
        stored_leaf = store.get(txn, "nodes", tree.node_key(0, count))
        if (stored_leaf is not None and stored_leaf != p.leaf_hash
                and store.get(txn, "snapshots", stored_leaf) == key):
            # the tree and the snapshot index agree on another hash: the entry changed
            # (in a field its actor does not sign: index, time or prev)
            raise AuditError("entry differs from the leaf hash the tree and the snapshot "
                             "index hold for it", f"entry {count}")
        tree.append_leaf(get, put, count, p.leaf_hash)
        expect["snapshots"][p.leaf_hash] = u64(count)
        expect["stmt_ids"][p.statement.id.encode()] = u64(count)
        expect["by_time"][u64(e.recorded_at) + u64(count)] = b""
        name = statement_model(p.statement)
        if name is not None:
            state = inv.models[name]
            previous = last_row.get(name)
            row = version_value(p, state, previous)
            expect["versions"][version_key(name, count)] = row
            last_row[name] = (count, row)
            if isinstance(p.statement, Register):
                expect["model_hashes"][state.model_hash.encode()] = name.encode()
        count += 1
    if count != size:
        raise AuditError(f"meta says size {size} but {count} entries are stored", "meta size")
    for name, rows in expect.items():
        _compare(txn, db[name], rows, name)
    _compare(txn, db["models"], {n.encode(): encode_state(s) for n, s in inv.models.items()},
             "models")
    _check_meta(store, txn, inv, count)
    _check_checkpoints(store, txn, log_key, get, times)
    cp_at = store.get(txn, "meta", b"cp_at")
    _cosigned.audit(store, txn, log_key, get, _cosigned.Times(
        times.__getitem__, count, None if cp_at is None else from_u64(cp_at)))
    return count


def _check_dictionary(store: Store, txn: lmdb.Transaction) -> None:
    """The stored entry dictionary must be the one the log's origin gives. If it is not,
    name the row at fault: the genesis (read with the stored dictionary) tells which."""
    zdict = store.get(txn, "meta", b"zdict")
    origin = (store.get(txn, "meta", b"origin") or b"").decode("utf-8", "replace")
    if zdict == make_dictionary(origin):
        return
    try:
        genesis = parse_entry(store.codec.unpack(store.need(txn, "entries", u64(0)))).statement
        genesis_origin = genesis.origin
    except (DamagedEntry, VerifierError):
        genesis_origin = None
    if genesis_origin is not None and zdict == make_dictionary(genesis_origin):
        raise AuditError("meta row differs from the entries", "meta origin")
    raise AuditError("the entry dictionary differs from the one the origin gives", "meta zdict")


def _compare(txn: lmdb.Transaction, db: Any, want: dict[bytes, bytes], name: str) -> None:
    have = dict(_rows(txn, db))
    if have == want:
        return
    for key in sorted(set(have) | set(want)):
        if have.get(key) != want.get(key):
            if key not in have:
                raise AuditError(f"{name} lacks a row", f"{name} key {key.hex()}")
            if key not in want:
                raise AuditError(f"{name} has a row no entry explains", f"{name} key {key.hex()}")
            raise AuditError(f"{name} row differs from what the entries give",
                             f"{name} key {key.hex()}")


def _check_meta(store: Store, txn: lmdb.Transaction, inv: Inventory, count: int) -> None:
    if count == 0:
        return
    checks = {
        b"last_at": u64(inv.last_recorded_at),
        b"origin": (inv.origin or "").encode(),
        b"log_vkey": inv.log_key.vkey.encode() if inv.log_key else b"",
        b"log_id": (inv.log_id or "").encode(),
        b"claim": u64(inv.claim_skew) + u64(inv.claim_window),
    }
    for key, want in checks.items():
        if store.get(txn, "meta", key) != want:
            raise AuditError("meta row differs from the entries", f"meta {key.decode()}")
    if store.get(txn, "meta", b"zdict") != make_dictionary(inv.origin or ""):
        raise AuditError("the entry dictionary differs from the one the origin gives",
                         "meta zdict")
    raw = store.get(txn, "meta", b"keyring")
    if raw != encode_keyring(inv.key_history):
        raise AuditError("keyring differs from the grant and revoke entries", "meta keyring")
    history = inv.policy_history
    want_policy = encode_policy(history[-1]) if history else None
    if store.get(txn, "meta", b"policy") != want_policy:
        raise AuditError("the policy row differs from the genesis and policy entries",
                         "meta policy")


def _check_checkpoints(store: Store, txn: lmdb.Transaction, log_key: VerifierKey,
                       get: tree.Get, times: array[int]) -> None:
    last, last_time, count = 0, None, len(times)
    for key, note in _rows(txn, store.db["checkpoints"]):
        n = from_u64(key)
        where = f"checkpoint of size {n}"
        try:
            cp = Checkpoint.parse_note(note, [log_key])
        except VerifierError as exc:
            raise AuditError(f"checkpoint does not verify ({exc})", where) from None
        if cp.size != n or n > count or n == 0:
            raise AuditError("checkpoint size does not match its key or the log", where)
        if cp.root != tree.root(get, n):
            raise AuditError("checkpoint root differs from the tree (a fork)", where)
        if cp.time is None or cp.time < times[n - 1] or (n < count and cp.time >= times[n]):
            raise AuditError("checkpoint time does not lie between its last entry and the "
                             "next one", where)
        last, last_time = n, cp.time
    if count and last != count:
        raise AuditError(f"latest checkpoint is of size {last}, the log has {count}", "checkpoints")
    cp_at = store.get(txn, "meta", b"cp_at")
    if count and (cp_at is None or from_u64(cp_at) != last_time):
        raise AuditError("meta row differs from the latest checkpoint's time", "meta cp_at")
