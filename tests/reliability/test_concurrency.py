"""Part 2: writer and reader processes on one store at once (CI: 4 x 150; full: 4 x 2000).
(The bug it found, a batch whose map had to grow while another writer appended, is gone
with map growth itself: the map is reserved once, ledger/_store.py.)"""

from __future__ import annotations

from pathlib import Path

from tests.reliability.concurrency import run_concurrency


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    result = run_concurrency(tmp_path, writers=4, records=150, readers=2, seed=11)
    assert result["problems"] == [] and result["reader_errors"] == [], result
    assert result["new_entries"] == result["expected_new_entries"] == 600, result
    assert (result["missing"], result["duplicates"], result["acknowledged_but_wrong"]) == (
        0, 0, 0), result
    assert result["checkpoints_seen_by_readers"] > 10, result
    assert result["checkpoints_inconsistent"] == 0, result
