"""Key files, the LMDB store (a full map, reopening), audit() against raw tampering,
and the Merkle node store against the RFC 9162 reference."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lmdb
import msgspec
import pytest

import verifier as v
from ledger import ActorKey, AuditError, KeyFileError, Ledger, LogKey, StoreError
from ledger import _tree as tree
from ledger.errors import StoreLimitError
from ledger import _store as lstore
from ledger._writer import sign_checkpoint
from tests import reference as ref
from tests.ledger_support import ORIGIN, Clock, Keys, entries, flip, make_ledger, register

# -- key files --------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("cls", [ActorKey, LogKey])
def test_key_file_is_0600_even_with_an_open_umask(tmp_path: Path, cls: Any) -> None:
    """save creates the file 0600 whatever the umask; load gives the same key back."""
    key = cls.generate("risk-admin") if cls is ActorKey else cls.generate(ORIGIN)
    old = os.umask(0)
    try:
        path = key.save(tmp_path / "k.key")
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    loaded = cls.load(path)
    assert (loaded.name, loaded.vkey) == (key.name, key.vkey)
    msg = b"message"
    assert loaded.key.verify(key.sign(msg), msg)


def test_save_never_overwrites(tmp_path: Path) -> None:
    """A second save to the same path raises KeyFileError and keeps the first key."""
    first, second = ActorKey.generate("a"), ActorKey.generate("a")
    path = first.save(tmp_path / "a.key")
    data = path.read_bytes()
    with pytest.raises(KeyFileError):
        second.save(path)
    assert path.read_bytes() == data
    (tmp_path / "other").write_text("not a key")
    with pytest.raises(KeyFileError):
        first.save(tmp_path / "other")
    assert (tmp_path / "other").read_text() == "not a key"


@pytest.mark.parametrize("perm", [0o640, 0o604, 0o660, 0o644, 0o610, 0o601])
def test_load_refuses_open_files(tmp_path: Path, perm: int) -> None:
    """A key file readable or writable by group or others needs allow_insecure=True."""
    key = ActorKey.generate("a")
    path = key.save(tmp_path / "a.key")
    os.chmod(path, perm)
    with pytest.raises(KeyFileError):
        ActorKey.load(path)
    assert ActorKey.load(path, allow_insecure=True).vkey == key.vkey
    os.chmod(path, 0o400)
    assert ActorKey.load(path).vkey == key.vkey


@pytest.mark.parametrize("passphrase", ["correct horse", b"correct horse"])
def test_passphrase_round_trip(tmp_path: Path, passphrase: str | bytes) -> None:
    """An encrypted key loads with its passphrase (str or bytes), and only with it."""
    key = LogKey.generate(ORIGIN)
    path = key.save(tmp_path / "log.key", passphrase=passphrase)
    raw = path.read_bytes()
    assert b"ENCRYPTED" in raw and mode(path) == 0o600
    assert LogKey.load(path, passphrase="correct horse").vkey == key.vkey
    assert LogKey.load(path, passphrase=b"correct horse").vkey == key.vkey
    for wrong in (None, "", "wrong", b"correct horsE"):
        with pytest.raises(KeyFileError):
            LogKey.load(path, passphrase=wrong)


def test_passphrase_given_for_a_plain_key(tmp_path: Path) -> None:
    """A passphrase for an unencrypted file is an error, not silently ignored."""
    path = ActorKey.generate("a").save(tmp_path / "a.key")
    with pytest.raises(KeyFileError):
        ActorKey.load(path, passphrase="x")


def test_key_file_kind_and_damage(tmp_path: Path) -> None:
    """Wrong kind, damaged, missing or foreign files raise KeyFileError."""
    actor = ActorKey.generate("a").save(tmp_path / "a.key")
    with pytest.raises(KeyFileError):
        LogKey.load(actor)
    damaged = tmp_path / "d.key"
    damaged.write_bytes(actor.read_bytes()[:-30])
    os.chmod(damaged, 0o600)
    with pytest.raises(KeyFileError):
        ActorKey.load(damaged)
    foreign = tmp_path / "f.key"
    foreign.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    os.chmod(foreign, 0o600)
    with pytest.raises(KeyFileError):
        ActorKey.load(foreign)
    with pytest.raises(KeyFileError):
        ActorKey.load(tmp_path / "missing.key")


def test_key_names(tmp_path: Path) -> None:
    """Actor names follow signed-note key name rules; an unnamed log key cannot be saved."""
    for bad in ("", "has space", "plus+sign", "tab\t"):
        with pytest.raises(ValueError):
            ActorKey.generate(bad)
    with pytest.raises(ValueError):
        LogKey.generate().save(tmp_path / "log.key")
    assert not (tmp_path / "log.key").exists()
    with pytest.raises(ValueError):
        LogKey.generate("a.example").named("b.example")


def test_keys_refused_inside_the_store(tmp_path: Path) -> None:
    """Saving a key into a store directory raises KeyFileError and writes nothing."""
    keys = Keys()
    with make_ledger(tmp_path / "s", keys) as led:
        for key in (keys.log, keys.admin):
            with pytest.raises(KeyFileError):
                key.save(led.path / "my.key")
        assert sorted(p.name for p in led.path.iterdir()) == ["data.mdb", "lock.mdb"]


# -- the store ---------------------------------------------------------------------------


def big_payload(i: int) -> dict[str, Any]:
    """~40 KB of base64 that compresses poorly (entries are stored compressed)."""
    raw = b"".join(hashlib.sha256(f"{i}-{j}".encode()).digest() for j in range(940))
    return {"i": i, "blob": base64.b64encode(raw).decode()}


def test_a_batch_that_outgrows_the_map_stores_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The map is never grown: a batch whose writes do not fit in it (2 MiB here, a test
    setting) raises StoreLimitError and stores none of them; the store stays usable."""
    monkeypatch.setattr(lstore, "MAX_MAP", 2 << 20)
    keys = Keys()
    with make_ledger(tmp_path / "s", keys) as led:
        register(led, "m")
        before = (led.size, led.checkpoint())
        with pytest.raises(StoreLimitError, match="maximum map size"):
            with led.batch():
                for i in range(100):
                    led.record("m", event="e", payload=big_payload(i))
        assert (led.size, led.checkpoint()) == before
        assert led.audit() == before[0]
        with led.batch():
            led.record("m", event="after")
        assert led.size == before[0] + 1 and led.audit() == before[0] + 1
        v.verify_bundle(led.export_bundle(), keys.trusted)


def test_reopen_preserves_everything(tmp_path: Path) -> None:
    """Closing and reopening a store of some MiB keeps every entry, index and checkpoint;
    writing continues where it stopped."""
    keys, clock, path = Keys(), Clock(), tmp_path / "s"
    led = make_ledger(path, keys, clock)
    register(led, "m")
    led.register_group(name="g", owner="o", tier="high", purpose="p", members=["m"])
    for i in range(40):
        led.record("m", event="e", payload=big_payload(i))
    led.tag("m", "production")
    state = (led.size, led.checkpoint(), entries(led), led.history("m"), led.inventory_at(),
             led.tags("m"), led.members("g"))
    led.close()
    assert (path / "data.mdb").stat().st_size > 1 << 20
    with Ledger.open(path) as ro:
        assert (ro.size, ro.checkpoint(), entries(ro), ro.history("m"), ro.inventory_at(),
                ro.tags("m"), ro.members("g")) == state
        assert ro.audit() == state[0]
    with Ledger.open(path, log_key=keys.log, signer=keys.admin, clock=clock) as led2:
        snap = led2.record("m", event="after")
        assert snap.index == state[0] and snap.prev == state[3][-1].snapshot_hash
        assert led2.audit() == state[0] + 1
    with Ledger.open(path) as again:
        assert again.size == state[0] + 1 and again.audit() == state[0] + 1


def test_store_open_refuses_other_lmdb(tmp_path: Path) -> None:
    """An LMDB environment that is not a modelseal store is refused with StoreError."""
    env = lmdb.open(str(tmp_path / "x"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"k", b"v")
    env.close()
    with pytest.raises(StoreError):
        Ledger.open(tmp_path / "x")


# -- audit against tampering -------------------------------------------------------------


@pytest.fixture
def tampered() -> Iterator[Callable[..., Ledger]]:
    """Factory: a ledger with a bit of everything; closed at teardown."""
    opened: list[Ledger] = []

    def make(path: Path) -> Ledger:
        keys = Keys()
        led = make_ledger(path, keys)
        led._keys = keys  # type: ignore[attr-defined]
        led.grant(ActorKey.generate("ml-pipeline").vkey)
        register(led, "fraud")
        register(led, "churn")
        led.record("fraud", event="note", payload={"note": "aaaa"})
        led.record("fraud", event="note", payload={"note": "bbbb"})
        led.update("churn", tier="low")
        led.tag("fraud", "production")
        led.register_group(name="g", owner="o", tier="high", purpose="p", members=["fraud"])
        led.record("fraud", event="validated")
        assert led.audit() == led.size
        opened.append(led)
        return led

    yield make
    for led in opened:
        led.close()


def rows(led: Ledger, db: str) -> list[tuple[bytes, bytes]]:
    s = led._store
    with s.env.begin(db=s.db[db]) as txn:
        return [(bytes(k), bytes(val)) for k, val in txn.cursor().iternext()]


def put(led: Ledger, db: str, key: bytes, value: bytes, *, delete: bytes | None = None) -> None:
    s = led._store
    with s.env.begin(write=True) as txn:
        if delete is not None:
            assert txn.delete(delete, db=s.db[db])
        assert txn.put(key, value, db=s.db[db])


def note_entry_index(led: Ledger) -> int:
    return next(i for i in range(led.size) if b"aaaa" in led.entry(i))


def tamper_entry_payload(led: Ledger) -> None:
    i = note_entry_index(led)
    changed = led.entry(i).replace(b"aaaa", b"aaab")
    put(led, "entries", lstore.u64(i), led._store.codec.pack(changed))  # stored compressed


def tamper_entry_sig(led: Ledger) -> None:
    i = note_entry_index(led)
    doc = msgspec.json.decode(led.entry(i))
    sig = bytearray(v.encoding.b64decode(doc["sig"], "sig"))
    sig[10] ^= 0x80
    doc["sig"] = v.encoding.b64encode(bytes(sig))
    put(led, "entries", lstore.u64(i),
        led._store.codec.pack(msgspec.json.encode(doc, order="sorted")))


def flip_value(db: str, pick: int = -1) -> Callable[[Ledger], None]:
    def run(led: Ledger) -> None:
        key, value = rows(led, db)[pick]
        put(led, db, key, flip(value, len(value) // 2))
    return run


def tamper_index_value(db: str) -> Callable[[Ledger], None]:
    """Point an index row at another entry."""
    def run(led: Ledger) -> None:
        key, value = rows(led, db)[2]
        put(led, db, key, lstore.u64(lstore.from_u64(value) + 1))
    return run


def tamper_by_time(led: Ledger) -> None:
    key, _ = rows(led, "by_time")[3]
    put(led, "by_time", flip(key, 7), b"", delete=key)



def tamper_model_hash(led: Ledger) -> None:
    key, _ = rows(led, "model_hashes")[0]
    put(led, "model_hashes", key, b"someone-else")


def tamper_checkpoint_sig(led: Ledger) -> None:
    key, note = rows(led, "checkpoints")[1]
    put(led, "checkpoints", key, flip(note, len(note) - 10))


def forked_checkpoint(led: Ledger) -> None:
    """A correctly signed checkpoint over another root: a fork."""
    key, _ = rows(led, "checkpoints")[2]
    n = lstore.from_u64(key)
    note = sign_checkpoint(led._log_key, ORIGIN, n, b"\x07" * 32, 2**62)
    put(led, "checkpoints", key, note)


def checkpoint_beyond_the_log(led: Ledger) -> None:
    n = led.size + 1
    note = sign_checkpoint(led._log_key, ORIGIN, n, b"\x07" * 32, 2**62)
    put(led, "checkpoints", lstore.u64(n), note)


def tamper_meta(key: bytes) -> Callable[[Ledger], None]:
    def run(led: Ledger) -> None:
        s = led._store
        with s.env.begin(write=True) as txn:
            value = bytes(txn.get(key, db=s.db["meta"]))
            txn.put(key, flip(value, len(value) - 2), db=s.db["meta"])
    return run


def delete_last_entry(led: Ledger) -> None:
    s = led._store
    with s.env.begin(write=True) as txn:
        assert txn.delete(lstore.u64(led.size - 1), db=s.db["entries"])


def delete_last_entry_and_size(led: Ledger) -> None:
    """Truncate the entries and the size row, but leave the derived rows."""
    s, n = led._store, led.size
    with s.env.begin(write=True) as txn:
        assert txn.delete(lstore.u64(n - 1), db=s.db["entries"])
        txn.put(b"size", lstore.u64(n - 1), db=s.db["meta"])


TAMPERS = {
    "entry payload": (tamper_entry_payload, "entry "),
    "entry signature": (tamper_entry_sig, "entry "),
    "node": (flip_value("nodes"), "nodes"),
    "first node": (flip_value("nodes", 0), "nodes"),
    "snapshots": (tamper_index_value("snapshots"), "snapshots"),
    "by_time": (tamper_by_time, "by_time"),
    "stmt_ids": (tamper_index_value("stmt_ids"), "stmt_ids"),
    "models": (flip_value("models"), "models"),
    "versions": (flip_value("versions"), "versions"),
    "first version": (flip_value("versions", 0), "versions"),
    "model_hashes": (tamper_model_hash, "model_hashes"),
    "checkpoint signature": (tamper_checkpoint_sig, "checkpoint of size"),
    "forked checkpoint": (forked_checkpoint, "checkpoint of size"),
    "checkpoint beyond the log": (checkpoint_beyond_the_log, "checkpoint of size"),
    "meta keyring": (tamper_meta(b"keyring"), "meta keyring"),
    "meta last_at": (tamper_meta(b"last_at"), "meta last_at"),
    "meta origin": (tamper_meta(b"origin"), "meta origin"),
    "meta log_vkey": (tamper_meta(b"log_vkey"), "meta log_vkey"),
    "last entry deleted": (delete_last_entry, "meta size"),
    "last entry and size deleted": (delete_last_entry_and_size, ""),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_audit_detects_tampering(tmp_path: Path, tampered: Callable[..., Ledger],
                                 name: str) -> None:
    """Each raw change raises AuditError naming where it is."""
    led = tampered(tmp_path / "s")
    fn, where = TAMPERS[name]
    fn(led)
    with pytest.raises(AuditError) as info:
        led.audit()
    assert where in info.value.where, (info.value.what, info.value.where)
    assert info.value.what and str(info.value) == f"{info.value.what} at {info.value.where}"


@pytest.mark.parametrize("key", [b"log_vkey", b"origin"])
def test_audit_of_a_reopened_store_with_damaged_meta(tmp_path: Path,
                                                     tampered: Callable[..., Ledger],
                                                     key: bytes) -> None:
    """A store reopened after its log key or origin row was damaged fails audit with
    AuditError (not a parsing error)."""
    led = tampered(tmp_path / "s")
    tamper_meta(key)(led)
    with Ledger.open(led.path) as again:
        with pytest.raises(AuditError) as info:
            again.audit()
    assert info.value.where.startswith("meta") or "checkpoint" in info.value.where


def test_audit_names_the_tampered_entry(tmp_path: Path, tampered: Callable[..., Ledger]) -> None:
    """A changed entry is reported by its index."""
    led = tampered(tmp_path / "s")
    i = note_entry_index(led)
    tamper_entry_payload(led)
    with pytest.raises(AuditError) as info:
        led.audit()
    assert info.value.where == f"entry {i}"
    assert "SignatureError" in info.value.what


def test_audit_of_an_untouched_store_passes(tmp_path: Path,
                                            tampered: Callable[..., Ledger]) -> None:
    """Baseline: audit counts every entry, and rewriting a row with its own bytes is fine."""
    led = tampered(tmp_path / "s")
    key, value = rows(led, "versions")[3]
    put(led, "versions", key, value)
    assert led.audit() == led.size


# -- the node store against the reference --------------------------------------------------


LEAVES = [f"leaf {i}".encode() for i in range(130)]


@pytest.fixture(scope="module")
def dict_tree() -> tuple[dict[tuple[int, int], bytes], list[bytes]]:
    """Nodes of a 130-leaf tree built with append_leaf; node keys in creation order."""
    nodes: dict[tuple[int, int], bytes] = {}
    order: list[bytes] = []

    def put(level: int, index: int, h: bytes) -> None:
        assert (level, index) not in nodes
        nodes[(level, index)] = h
        order.append(tree.node_key(level, index))

    for i, leaf in enumerate(LEAVES):
        tree.append_leaf(lambda lv, ix: nodes[(lv, ix)], put, i, v.leaf_hash(leaf))
    return nodes, order


def getter(nodes: dict[tuple[int, int], bytes]) -> tree.Get:
    return lambda level, index: nodes[(level, index)]


def test_tree_roots_match_reference(dict_tree: Any) -> None:
    """root(n) equals MTH(D[n]) for every n up to 130, including the empty tree."""
    nodes, _ = dict_tree
    get = getter(nodes)
    for n in range(len(LEAVES) + 1):
        assert tree.root(get, n) == ref.mth(LEAVES[:n])
    assert tree.root(get, 0) == v.EMPTY_ROOT


def test_tree_inclusion_matches_reference(dict_tree: Any) -> None:
    """inclusion_proof(i, n) equals PATH(i, D[n]) for every i < n <= 130."""
    nodes, _ = dict_tree
    get = getter(nodes)
    for n in range(1, len(LEAVES) + 1):
        for i in range(n):
            assert tree.inclusion_proof(get, i, n) == ref.path(i, LEAVES[:n]), (i, n)


def test_tree_consistency_matches_reference(dict_tree: Any) -> None:
    """consistency_proof(m, n) equals PROOF(m, D[n]) for every 0 <= m <= n <= 130."""
    nodes, _ = dict_tree
    get = getter(nodes)
    for n in range(1, len(LEAVES) + 1):
        for m in range(n + 1):
            assert tree.consistency_proof(get, m, n) == ref.proof(m, LEAVES[:n]), (m, n)


def test_tree_nodes_are_complete_subtrees(dict_tree: Any) -> None:
    """Node (level, i) is MTH of leaves [i*2^level, (i+1)*2^level); exactly the complete ones."""
    nodes, _ = dict_tree
    want = {(lv, i) for lv in range(8) for i in range(len(LEAVES) >> lv)}
    assert set(nodes) == want
    for (lv, i), h in nodes.items():
        assert h == ref.mth(LEAVES[i << lv:(i + 1) << lv])


def test_node_keys_only_ever_append(dict_tree: Any) -> None:
    """Nodes are created in strictly increasing key order (the store appends), and keys
    round-trip through split_node_key."""
    nodes, order = dict_tree
    assert order == sorted(order) and len(set(order)) == len(order)
    for lv, i in nodes:
        key = tree.node_key(lv, i)
        assert len(key) == 9 and tree.split_node_key(key) == (lv, i)


def test_tree_bad_arguments(dict_tree: Any) -> None:
    """Out-of-range proofs raise ValueError."""
    get = getter(dict_tree[0])
    for i, n in ((0, 0), (5, 5), (-1, 3)):
        with pytest.raises(ValueError):
            tree.inclusion_proof(get, i, n)
    for m, n in ((4, 3), (-1, 2)):
        with pytest.raises(ValueError):
            tree.consistency_proof(get, m, n)


def test_ledger_nodes_match_the_dict_tree(tmp_path: Path) -> None:
    """The LMDB nodes database holds exactly the complete subtrees of its entries."""
    keys = Keys()
    with make_ledger(tmp_path / "s", keys) as led:
        register(led, "m")
        with led.batch():
            for i in range(35):
                led.record("m", event="e", payload={"i": i})
        ents = entries(led)
        stored = {tree.split_node_key(k): val for k, val in rows(led, "nodes")}
        want = {(lv, i): ref.mth(ents[i << lv:(i + 1) << lv])
                for lv in range(7) for i in range(len(ents) >> lv)}
        assert stored == want
