"""Part 2: writer and reader processes on one store at once (CI: 4 x 150; full: 4 x 2000),
and the bug it found: a batch whose map had to grow while another writer appended."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from ledger import Ledger, StoreError
from ledger import store as lstore
from tests.ledger_support import Keys, make_ledger, register
from tests.reliability.concurrency import run_concurrency


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    result = run_concurrency(tmp_path, writers=4, records=150, readers=2, seed=11)
    assert result["problems"] == [] and result["reader_errors"] == [], result
    assert result["new_entries"] == result["expected_new_entries"] == 600, result
    assert (result["missing"], result["duplicates"], result["acknowledged_but_wrong"]) == (
        0, 0, 0), result
    assert result["checkpoints_seen_by_readers"] > 10, result
    assert result["checkpoints_inconsistent"] == 0, result
    assert result["data_file_bytes"] > result["initial_map_bytes"], result  # grew under load


def test_batch_regrow_after_another_writer_appended(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the concurrency part: a batch that must grow the map aborts its transaction
    (LMDB resizes only then); if another writer appends in that gap, replaying the batch
    gave its writes other indexes and hashes than the snapshots already returned (27 of 45
    returned snapshots were not in the store). Now the batch stores nothing and says so."""
    monkeypatch.setattr(lstore, "INITIAL_MAP", 1 << 20)
    keys = Keys()
    led = make_ledger(tmp_path / "s", keys)
    register(led, "m")
    other = Ledger.open(tmp_path / "s", log_key=keys.log, signer=keys.admin, clock=led._clock)
    grow, fired = lstore.Store._grow, list[str]()

    def grow_then_someone_writes(self: lstore.Store) -> None:
        grow(self)
        if not fired:
            fired.append(other.record("m", "sneaked_in").snapshot_hash)

    monkeypatch.setattr(lstore.Store, "_grow", grow_then_someone_writes)
    returned = []
    with pytest.raises(StoreError, match="another writer appended meanwhile; nothing of the "
                                         "batch was stored"):
        with led.batch():
            for i in range(45):
                # ~40 KB that compresses poorly (entries are stored compressed)
                blob = base64.b64encode(b"".join(
                    hashlib.sha256(f"{i}-{j}".encode()).digest() for j in range(940))).decode()
                returned.append(led.record("m", "e", {"blob": blob}).snapshot_hash)
    assert fired and led.size == 3 and led.audit() == 3
    assert led.entry(fired[0])  # the other writer's entry is there, the batch's are not
    for h in returned:
        with pytest.raises(KeyError):
            led.entry(h)
    # run again, it commits as a whole
    with led.batch():
        snaps = [led.record("m", "e", {"blob": base64.b64encode(hashlib.sha256(
            str(i).encode()).digest() * 900).decode()}) for i in range(40)]
    assert [led.entry(s.snapshot_hash) for s in snaps] and led.audit() == led.size == 43
    other.close()
    led.close()
