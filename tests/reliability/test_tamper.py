"""Part 3: raw changes to the store found and named by audit(); rollbacks and forks
detected by a verifier holding an older checkpoint. (More fixed cases in
tests/test_ledger_store.py::test_audit_detects_tampering.)"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ledger import AuditError, Ledger
from tests.reliability.common import Setup
from tests.reliability.tamper import (
    TARGETS,
    codec_of,
    build_base,
    copy_store,
    edit_entry_fields,
    need,
    raw_env,
    run_flips,
    run_rollbacks,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return build_base(tmp_path_factory.mktemp("tamper"))


def test_one_bit_anywhere_is_found_and_named(base: Setup, tmp_path: Path) -> None:
    """8 random one-bit changes (value or key) in each database, and 8 edits of the fields
    an actor does not sign: each fails audit() (or, for the format row, opening) and the
    error names the database, entry or checkpoint that was changed."""
    result = run_flips(tmp_path, base, trials=8 * len(TARGETS), seed=3)
    assert result["misses"] == [], result
    assert result["detected"] == result["named"] == result["trials"], result


def test_rollbacks_and_forks_are_detected(base: Setup, tmp_path: Path) -> None:
    result = run_rollbacks(tmp_path, base, trials=2, seed=5)
    assert result["failures"] == [], result
    assert result["detected"] == result["cases"] >= 10, result


def test_audit_names_an_entry_changed_in_an_unsigned_field(base: Setup, tmp_path: Path) -> None:
    """Found by the tamper part: a changed recorded_at of the last entry (still canonical,
    still in order) was reported as 'snapshots lacks a row', not at the entry."""
    path = copy_store(base.path, tmp_path / "s")
    with raw_env(path) as (env, dbs):
        with env.begin(write=True, db=dbs["entries"]) as txn:
            cur = txn.cursor()
            cur.last()
            codec = codec_of(txn, dbs)
            doc = msgspec.json.decode(codec.unpack(bytes(cur.value())))
            doc["recorded_at"] += 1
            txn.put(bytes(cur.key()), codec.pack(msgspec.json.encode(doc, order="sorted")))
            index = doc["index"]
    with Ledger.open(path) as led, pytest.raises(AuditError) as info:
        led.audit()
    assert info.value.where == f"entry {index}", info.value


def test_random_unsigned_field_edits_name_an_entry(base: Setup, tmp_path: Path) -> None:
    import random
    rng = random.Random(1)
    for t in range(12):
        path = copy_store(base.path, tmp_path / f"s{t}")
        change = edit_entry_fields(path, rng)
        with Ledger.open(path) as led, pytest.raises(AuditError) as info:
            led.audit()
        assert info.value.where.startswith("entry "), (change, info.value)


@pytest.mark.parametrize("key", [b"origin", b"log_vkey"])
def test_a_store_with_invalid_utf8_in_meta_opens_and_fails_audit(base: Setup, tmp_path: Path,
                                                                 key: bytes) -> None:
    """Found by the tamper part: Ledger.open raised UnicodeDecodeError (the CLI: exit 2,
    a usage error) when the origin or log key row was not UTF-8; now the store opens and
    audit() names the row."""
    path = copy_store(base.path, tmp_path / "s")
    with raw_env(path) as (env, dbs):
        with env.begin(write=True, db=dbs["meta"]) as txn:
            txn.put(key, b"\xff" + need(txn, key, dbs["meta"])[1:])
    with Ledger.open(path) as led, pytest.raises(AuditError) as info:
        led.audit()
    assert info.value.where == f"meta {key.decode()}", info.value
