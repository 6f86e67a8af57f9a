"""Part 5: every write attack refused with a typed error and nothing written, alone and
inside a batch; 1,000 random bit flips of signed statements refused (full: 20,000).
Single cases with exact error types are in tests/test_ledger_refusals.py."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.attacks import run_attacks


def test_write_attacks_are_refused_and_write_nothing(tmp_path: Path) -> None:
    result = run_attacks(tmp_path, forgeries=1000, seed=9)
    assert result["failures"] == [], result
    assert result["forged_accepted"] == 0, result
    assert result["attacks_refused"] == result["attacks_tried"] > 60, result
