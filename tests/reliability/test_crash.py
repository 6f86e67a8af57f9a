"""Part 1: SIGKILL a writer process at random moments (CI: 10 kills; full: bench/torture.py)."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.crash import acknowledged, run_crash


def test_acknowledged_ignores_a_line_cut_off_mid_write(tmp_path: Path) -> None:
    side = tmp_path / "side"
    side.write_text("aa call\nbb batch\ncc bat")
    assert acknowledged(side) == ["aa", "bb"]
    assert acknowledged(tmp_path / "none") == []


def test_killed_writer_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """After each of 10 kills: the store reopens, audit() passes, every acknowledged
    snapshot is present, entries are contiguous, meta size == entries == latest checkpoint."""
    result = run_crash(tmp_path, kills=10, seed=20251126, max_delay=0.1)
    assert result["problems"] == [], result
    assert (result["lost"], result["partial"], result["writer_not_ready"]) == (0, 0, 0), result
    assert result["acknowledged"] > 100, result  # the kills landed while it was writing
