"""Part 3, tamper: change the store through a raw LMDB handle (as someone with the
files, but not the log key, could) and check that audit() fails naming what and
where; roll the log back by deleting its last entries and check that a verifier
holding an older checkpoint detects it; fork it (rewrite, re-sign with the log
key) and check that the consistency proof from the older checkpoint fails."""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lmdb
import msgspec

import verifier as v
from ledger import AuditError, Ledger, StoreError
from ledger import _tree as tree
from ledger._codec import encode_keyring, encode_state
from ledger._compress import Codec
from ledger._store import DB_NAMES, from_u64, u64
from tests.ledger_support import flip
from tests.reliability.common import Setup, build_store

# Where audit() must say the damage is, by the database that was changed.
WHERE = {"entries": ("entry ", "entries "), "entry fields": ("entry ",),
         "checkpoints": ("checkpoint",)}
TARGETS = ("entries", "entry fields", "nodes", "snapshots", "stmt_ids", "by_time", "models", "versions", "model_hashes", "checkpoints", "meta")


def build_base(workdir: Path) -> Setup:
    """A store with a bit of everything: grants, a revocation, registrations, plain and
    special events, tag moves, groups, batches; one checkpoint per write."""
    setup = build_store(workdir, writers=["ml-pipeline", "validator"],
                        models=["fraud", "churn", "credit"])
    keys = setup.keys
    with Ledger.open(setup.path, log_key=keys.log, signer=keys.admin) as led:
        rng = random.Random(7)
        for i in range(12):
            led.record(rng.choice(setup.models), "retrained", {"auc": i / 100, "run": i})
        led.update("churn", tier="low")
        led.record("fraud", "validated", {"by": "validator"})
        led.tag("fraud", "production")
        led.register_group(name="suite", owner="o", tier="high", purpose="p",
                           members=["fraud", "churn"])
        with led.batch():
            for i in range(10):
                led.record(rng.choice(setup.models), "monitored", {"i": i})
        led.revoke("validator", reason="rotation")
        led.remove_member("suite", "churn", reason="replaced")
        led.tag("fraud", "production", led.history("fraud")[2].snapshot_hash)
        led.retire("credit", reason="old")
        for i in range(8):
            led.record("fraud", "retrained", {"run": 100 + i})
        assert led.audit() == led.size
    return setup


@contextmanager
def raw_env(path: Path) -> Iterator[tuple[lmdb.Environment, dict[str, Any]]]:
    """A raw LMDB handle on a store directory (no Ledger, no Store, no checks)."""
    size = max(64 << 20, 2 * (path / "data.mdb").stat().st_size)
    env = lmdb.open(str(path), map_size=size, max_dbs=len(DB_NAMES) + 1, subdir=True)
    try:
        dbs = {name: env.open_db(name.encode()) for name in DB_NAMES}
        yield env, dbs
    finally:
        env.close()


def copy_store(src: Path, dst: Path) -> Path:
    """A closed copy of a store (its data file; the lock file is made anew)."""
    dst.mkdir(parents=True)
    shutil.copyfile(src / "data.mdb", dst / "data.mdb")
    return dst


def flip_row(path: Path, rng: random.Random, db: str, part: str) -> str:
    """Flip one random bit of one random row's value (or key) in ``db``; describe it."""
    with raw_env(path) as (env, dbs):
        with env.begin(write=True, db=dbs[db]) as txn:
            rows = [(bytes(k), bytes(val)) for k, val in txn.cursor().iternext()]
            key, value = rows[rng.randrange(len(rows))]
            if not value:
                part = "key"  # by_time rows are all key
            pos = rng.randrange(len(key) if part == "key" else len(value))
            bit = 1 << rng.randrange(8)
            if part == "key":
                assert txn.delete(key, value)
                txn.put(flip(key, pos, bit), value)
            else:
                txn.put(key, flip(value, pos, bit))
    label = key.decode("ascii") if db == "meta" else key.hex()
    return f"{db} {part} of row {label} byte {pos}"


def edit_entry_fields(path: Path, rng: random.Random) -> str:
    """Change a field of one entry that its actor does not sign (its time, chain link or
    index), keeping the entry canonical JSON: only the log's own hashes can tell."""
    with raw_env(path) as (env, dbs):
        with env.begin(write=True, db=dbs["entries"]) as txn:
            codec = codec_of(txn, dbs)
            rows = [(bytes(k), codec.unpack(bytes(x))) for k, x in txn.cursor().iternext()]
            i = rng.randrange(len(rows))
            doc = msgspec.json.decode(rows[i][1])
            field = rng.choice(["recorded_at", "prev", "index"])
            if field == "recorded_at":
                doc[field] += rng.choice([1, -1, 1000, 10**9])
            elif field == "prev":
                doc[field] = v.snapshot_hash(rows[rng.randrange(len(rows))][1])
            else:
                doc[field] = rng.randrange(len(rows) + 5)
            data = msgspec.json.encode(doc, order="sorted")
            if data == rows[i][1]:
                doc["recorded_at"] += 1
                data = msgspec.json.encode(doc, order="sorted")
            txn.put(rows[i][0], codec.pack(data))  # entries are stored compressed
    return f"entry {i} field {field}"


def judge(path: Path, db: str) -> dict[str, Any]:
    """Open and audit a tampered store: how (and whether) the change was found."""
    try:
        with Ledger.open(path) as led:
            led.audit()
    except AuditError as exc:
        expect = WHERE.get(db, (db,))
        return {"found": "audit", "named": exc.where.startswith(expect), "what": exc.what,
                "where": exc.where}
    except StoreError as exc:  # a changed format row: the store does not open
        named = "not a modelseal store" in str(exc) or "meta row" in str(exc)
        return {"found": "open", "named": db == "meta" and named,
                "what": str(exc), "where": "store"}
    return {"found": None, "named": False}


def run_flips(workdir: Path, setup: Setup, *, trials: int, seed: int) -> dict[str, Any]:
    """``trials`` random one-bit changes across every database, values and keys."""
    rng = random.Random(seed)
    found = named = 0
    misses: list[str] = []
    by_db: dict[str, int] = {}
    for t in range(trials):
        db = TARGETS[t % len(TARGETS)]
        part = "key" if rng.random() < 0.25 else "value"
        path = copy_store(setup.path, workdir / f"flip-{t}")
        if db == "entry fields":
            change = edit_entry_fields(path, rng)
        else:
            change = flip_row(path, rng, db, part)
        verdict = judge(path, db)
        shutil.rmtree(path)
        by_db[db] = by_db.get(db, 0) + 1
        found += verdict["found"] is not None
        named += verdict["named"]
        if not verdict["named"]:
            misses.append(f"{change}: {verdict}")
    return {"trials": trials, "detected": found, "named": named, "by_db": by_db,
            "misses": misses[:20]}


def codec_of(txn: lmdb.Transaction, dbs: dict[str, Any]) -> Codec:
    """The store's entry codec, read through a raw handle."""
    return Codec(need(txn, b"zdict", dbs["meta"]))


def need(txn: lmdb.Transaction, key: bytes, db: Any) -> bytes:
    value = txn.get(key, db=db)
    assert value is not None, key
    return bytes(value)


def raw_truncate(path: Path, new_size: int) -> None:
    """Roll the store back to its first ``new_size`` entries through a raw handle, as an
    attacker without the log key would: delete the later entries, their tree nodes, index
    rows and checkpoints, and rewrite the derived rows so the store is self-consistent."""
    with raw_env(path) as (env, dbs):
        with env.begin(write=True) as txn:
            def rows(db: str) -> list[tuple[bytes, bytes]]:
                return [(bytes(k), bytes(x)) for k, x in txn.cursor(db=dbs[db]).iternext()]

            inv = v.Inventory(keep_timelines=False)
            codec = codec_of(txn, dbs)
            for i in range(new_size):
                inv.apply(codec.unpack(need(txn, u64(i), dbs["entries"])))
            gone = set(range(new_size, from_u64(need(txn, b"size", dbs["meta"]))))
            for k, _ in rows("entries"):
                if from_u64(k) in gone:
                    txn.delete(k, db=dbs["entries"])
            for k, _ in rows("nodes"):
                if tree.split_node_key(k) and from_u64(k[:8]) >= new_size:
                    txn.delete(k, db=dbs["nodes"])
            for db in ("snapshots", "stmt_ids"):
                for k, x in rows(db):
                    if from_u64(x) in gone:
                        txn.delete(k, db=dbs[db])
            for k, _ in rows("by_time"):
                if from_u64(k[8:]) in gone:
                    txn.delete(k, db=dbs["by_time"])
            for k, _ in rows("versions"):
                if from_u64(k[-8:]) in gone:
                    txn.delete(k, db=dbs["versions"])
            for k, _ in rows("models"):
                txn.delete(k, db=dbs["models"])
            for name, state in inv.models.items():
                txn.put(name.encode(), encode_state(state), db=dbs["models"])
            for k, x in rows("model_hashes"):
                if x.decode() not in inv.models:
                    txn.delete(k, db=dbs["model_hashes"])
            for k, _ in rows("checkpoints"):
                if from_u64(k) > new_size:
                    txn.delete(k, db=dbs["checkpoints"])
            txn.put(b"size", u64(new_size), db=dbs["meta"])
            txn.put(b"last_at", u64(inv.last_recorded_at), db=dbs["meta"])
            note = need(txn, u64(new_size), dbs["checkpoints"])
            body = v.Checkpoint.parse_body(v.parse_note(note).text)
            cp_at = next(int(x.split(" ")[1]) for x in body[3] if x.startswith("modelseal-time"))
            txn.put(b"cp_at", u64(cp_at), db=dbs["meta"])
            txn.put(b"keyring", encode_keyring(inv.key_history), db=dbs["meta"])


def crude_truncate(path: Path, k: int) -> None:
    """Delete the last ``k`` entries and nothing else."""
    with raw_env(path) as (env, dbs):
        with env.begin(write=True, db=dbs["entries"]) as txn:
            cur = txn.cursor()
            for _ in range(k):
                cur.last()
                cur.delete()


def audit_of(path: Path) -> int:
    with Ledger.open(path) as led:
        return led.audit()


def expect_rejected(fn: Any, *errors: type[Exception]) -> str | None:
    """None if ``fn()`` raised one of ``errors``; otherwise what happened."""
    try:
        fn()
    except errors:
        return None
    except Exception as exc:  # a wrong kind of failure counts as undetected
        return f"{type(exc).__name__}: {exc}"
    return "accepted"


def run_rollbacks(workdir: Path, setup: Setup, *, trials: int, seed: int) -> dict[str, Any]:
    """Rollbacks (crude and careful, and an older copy of the data file put back) and
    forks (history rewritten and re-signed with the log key, to the same size or beyond).
    A verifier holding the checkpoint of the untouched store must detect each one."""
    rng = random.Random(seed)
    keys, trusted = setup.keys, setup.trusted
    with Ledger.open(setup.path) as led:
        m = led.size
        old = v.Checkpoint.parse_note(led.checkpoint(), trusted)
    cases = detected = 0
    failures: list[str] = []

    def check(label: str, outcome: str | None) -> None:
        nonlocal cases, detected
        cases += 1
        if outcome is None:
            detected += 1
        else:
            failures.append(f"{label}: {outcome}")

    for t in range(trials):
        k = rng.randint(1, min(12, m - 2))
        # 1. crude: only the entries deleted; audit names the gap
        path = copy_store(setup.path, workdir / f"crude-{t}")
        crude_truncate(path, k)
        check(f"crude rollback by {k}", expect_rejected(lambda: audit_of(path), AuditError))
        shutil.rmtree(path)

        # 2. careful: a self-consistent store of m - k entries (audit cannot tell)
        path = copy_store(setup.path, workdir / f"rollback-{t}")
        raw_truncate(path, m - k)
        with Ledger.open(path) as led:
            if led.audit() != m - k:
                failures.append("careful rollback did not audit clean")
            bundle = led.export_bundle()
            check(f"rollback by {k}: bundle against the older checkpoint",
                  expect_rejected(lambda: v.verify_bundle(bundle, trusted, trusted=old),
                                  v.ConsistencyError))
            check(f"rollback by {k}: consistency proof to the older size",
                  expect_rejected(lambda: led.prove_consistency(m), ValueError))
        # 3. fork: the attacker holds the log key, appends other entries and re-signs
        extra = k + rng.randint(0, 3)  # back to size m (same size, other root) or beyond
        with Ledger.open(path, log_key=keys.log, signer=keys.admin) as led:
            for i in range(extra):
                led.record("fraud", "retrained", {"forged": i})
            n = led.size
            cp = v.Checkpoint.parse_note(led.checkpoint(), trusted)
            bundle = led.export_bundle(trusted_size=m)
            proof = led.prove_consistency(m)
            if n == m:
                check("fork at the same size: two checkpoints, one size, two roots",
                      expect_rejected(lambda: v.verify_bundle(bundle, trusted, trusted=old),
                                      v.ConsistencyError))
                check("fork at the same size: roots differ", None if cp.root != old.root
                      else "same root")
            else:
                check(f"fork to size {n}: bundle with a proof from the older checkpoint",
                      expect_rejected(lambda: v.verify_bundle(bundle, trusted, trusted=old),
                                      v.ConsistencyError))
            check(f"fork to size {n}: consistency proof from the older checkpoint",
                  expect_rejected(lambda: v.verify_consistency(
                      m, n, list(proof.hashes), old.root, cp.root),
                      v.ConsistencyError, v.RootMismatchError))
            check(f"fork to size {n}: witness add-checkpoint body",
                  expect_rejected(lambda: v.verify_add_checkpoint(
                      proof.to_text(), trusted, old.root), v.VerificationError))
        shutil.rmtree(path)

    # 4. an older copy of the data file put back (a restored backup)
    path = workdir / "restore"
    shutil.copytree(setup.path, path / "older", ignore=shutil.ignore_patterns("lock.mdb"))
    with Ledger.open(path / "older", log_key=keys.log, signer=keys.admin) as led:
        for i in range(5):
            led.record("fraud", "retrained", {"later": i})
        newer = v.Checkpoint.parse_note(led.checkpoint(), trusted)
    shutil.copyfile(setup.path / "data.mdb", path / "older" / "data.mdb")
    with Ledger.open(path / "older") as led:
        led.audit()
        bundle = led.export_bundle()
    check("older data file put back",
          expect_rejected(lambda: v.verify_bundle(bundle, trusted, trusted=newer),
                          v.ConsistencyError))
    shutil.rmtree(path)
    return {"cases": cases, "detected": detected, "failures": failures[:20]}


def run_tamper(workdir: Path, *, trials: int, rollbacks: int, seed: int) -> dict[str, Any]:
    """The whole tamper part."""
    t0 = time.perf_counter()
    setup = build_base(workdir / "base")
    flips = run_flips(workdir, setup, trials=trials, seed=seed)
    t1 = time.perf_counter()
    rolls = run_rollbacks(workdir, setup, trials=rollbacks, seed=seed)
    return {"flips": flips, "rollbacks_and_forks": rolls,
            "flip_seconds": round(t1 - t0, 1),
            "rollback_seconds": round(time.perf_counter() - t1, 1)}
