"""Part 8 (issue 10): threads sharing one Ledger, real SIGINTs into batches, and a
reader that is not blocked by another process's batch. CI-sized counts; the torture
run (bench/torture.py --parts threads) uses 16 x 500 and 200 batches."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.threads import run_blocked_reader, run_interrupts, run_threads


def test_threads_share_one_ledger(tmp_path: Path) -> None:
    r = run_threads(tmp_path, threads=16, writes=60, seed=3)
    assert r["errors"] == [] and r["hung_threads"] == 0, r
    assert r["acknowledged"] + r["aborted_writes"] == 16 * 60, r
    assert r["new_entries"] == r["acknowledged"], r
    assert (r["missing"], r["duplicates"], r["aborted_present"],
            r["unacknowledged_present"]) == (0, 0, 0, 0), r
    assert r["aborted_writes"] > 0, r  # the run did abort batches


def test_sigints_into_batches(tmp_path: Path) -> None:
    r = run_interrupts(tmp_path, batches=40, seed=5)
    assert r["ready"] and not r["hung"] and r["exit_code"] == 0, r
    assert r["sigints_sent"] > 10 and r["outcomes"].get("interrupted", 0) > 3, r
    assert (r["lost"], r["partial_batches"], r["bad_signature_committed"],
            r["duplicates"]) == (0, 0, 0, 0), r
    assert r["outcomes"].get("committed", 0) > 0, r


def test_a_reader_finishes_while_another_process_holds_a_batch(tmp_path: Path) -> None:
    r = run_blocked_reader(tmp_path)
    assert r["reader_finished"] and r["holder_released"], r
    size, models, _ = r["reader_answer"].split()
    assert int(size) == r["base_size"] and int(models) == 1, r
