"""`modelseal monitor --follow` replays only new entries: a run continues the replay of
the last run of the same process when the state still keeps that run's checkpoint, and
such a run refuses exactly what a run replaying the whole log refuses."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import verifier as v
from ledger.client._state import FileState, MemoryState
from ledger.monitor import DirSource, Follow, RuleViolationError, TileMismatchError, run_once
from ledger.monitor._run import describe
from tests import monitor_support
from tests.monitor_support import Log, grow, start_follow, write_log_dir


# the shared log fixture (tests/monitor_support.py; pytest finds it by this name)
log = monitor_support.log


class Spy:
    """A DirSource that records where each entries() read started and how many it gave."""

    def __init__(self, root: Path) -> None:
        self.inner = DirSource(root)
        self.where = str(root)
        self.reads: list[tuple[int, int]] = []

    def checkpoint(self) -> bytes:
        return self.inner.checkpoint()

    def tile(self, level: int, index: int, width: int) -> bytes:
        return self.inner.tile(level, index, width)

    def has_entries(self) -> bool:
        return self.inner.has_entries()

    def entries(self, size: int, start: int = 0) -> Iterator[bytes]:
        self.reads.append((start, 0))
        for data in self.inner.entries(size, start):
            self.reads[-1] = (start, self.reads[-1][1] + 1)
            yield data

    def close(self) -> None:
        self.inner.close()


def test_entries_from_any_start_are_the_logs_entries(log: Log) -> None:
    grow(log.ledger, 700)  # tiles of 256, 256 and a partial one of 188
    out = log.publish(with_entries=True)
    every = [log.ledger.entry(i) for i in range(700)]
    src = DirSource(out)
    starts = [0, 1, 255, 256, 257, 511, 512, 600, 699, 700]
    starts += random.Random(3).sample(range(701), 20)
    for start in starts:
        assert list(src.entries(700, start)) == every[start:], start
    assert list(src.entries(300, 290)) == every[290:300]
    for start, size in ((-1, 10), (11, 10)):
        with pytest.raises(ValueError, match="need 0 <= start <= size"):
            list(src.entries(size, start))


def test_a_follow_run_reads_and_replays_only_new_entries(log: Log) -> None:
    grow(log.ledger, 100)
    out = log.publish(with_entries=True)
    state, follow = MemoryState(), Follow()
    spy = Spy(out)
    first = run_once(spy, log.key, state, follow=follow)
    assert (first.entries, first.replayed_from, spy.reads) == (100, 0, [(0, 100)])
    grow(log.ledger, 700)
    log.publish(with_entries=True)
    second = run_once(spy, log.key, state, follow=follow)
    assert (second.size, second.previous, second.entries, second.replayed_from) == \
        (700, 100, 600, 100)
    assert spy.reads[-1] == (100, 600)
    line = describe(second, "pub", witnesses=0, threshold=0, kept=True)
    assert "entries 100..699 hash to their leaves and replay under the log's rules, after " \
           "entries 0..99, replayed by an earlier run of this process" in line
    third = run_once(spy, log.key, state, follow=follow)  # nothing new
    assert (third.entries, third.replayed_from, spy.reads[-1]) == (0, 700, (700, 0))
    assert "no new entries: entries 0..699 were replayed by an earlier run" in describe(
        third, "pub", witnesses=0, threshold=0, kept=True)
    # without Follow, every run replays the whole log
    again = run_once(spy, log.key, state)
    assert (again.entries, again.replayed_from, spy.reads[-1]) == (700, 0, (0, 700))


def test_a_resumed_run_refuses_what_a_full_run_refuses(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    good, bad, tampered = tmp_path / "good", tmp_path / "bad", tmp_path / "tampered"
    write_log_dir(good, entries, log, cp.time)
    write_log_dir(bad, entries + [entries[5]], log, cp.time + 1)  # entry 5 again, at 8
    write_log_dir(tampered, entries + [entries[5]], log, cp.time + 1)
    bundle = tampered / "tile/entries/000.p/9"
    data = bundle.read_bytes()
    bundle.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    for where, error, message in ((bad, RuleViolationError, "entry 8: entry at position 8"),
                                  (tampered, TileMismatchError, "entry 8 does not hash")):
        full, resumed = MemoryState(), MemoryState()
        follow = Follow()
        run_once(DirSource(good), log.key, full)
        run_once(DirSource(good), log.key, resumed, follow=follow)
        with pytest.raises(error, match=message):
            run_once(DirSource(where), log.key, full)
        spy = Spy(where)
        with pytest.raises(error, match=message):
            run_once(spy, log.key, resumed, follow=follow)
        assert spy.reads == [(8, 1)]  # the resumed run read only entry 8
        assert resumed.get() == full.get() and resumed.get().size == 8  # type: ignore[union-attr]
        # the replay that failed is spent: the next run replays the whole log again
        spy = Spy(good)
        assert run_once(spy, log.key, resumed, follow=follow).replayed_from == 0
        assert spy.reads == [(0, 8)]


def test_a_back_dated_entry_is_caught_by_a_resumed_run(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    early, later = tmp_path / "early", tmp_path / "later"
    write_log_dir(early, entries[:6], log, cp.time)  # says 6 entries at a time after all 8
    write_log_dir(later, entries, log, cp.time + 1)
    state, follow = MemoryState(), Follow()
    run_once(DirSource(early), log.key, state, follow=follow)
    spy = Spy(later)
    with pytest.raises(RuleViolationError, match="entry 6 was recorded at or before"):
        run_once(spy, log.key, state, follow=follow)
    assert spy.reads == [(6, 1)]


def test_a_same_tree_checkpoint_signed_before_its_entries_is_caught_resumed(
        log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    last_at = v.parse_entry(entries[7]).entry.recorded_at
    first, second = tmp_path / "first", tmp_path / "second"
    write_log_dir(first, entries, log, cp.time)
    write_log_dir(second, entries, log, last_at - 1)  # the same tree, signed too early
    with pytest.raises(RuleViolationError, match="entry 7 was recorded after the checkpoint"):
        run_once(DirSource(second), log.key, MemoryState())  # what a full replay says
    state, follow = MemoryState(), Follow()
    run_once(DirSource(first), log.key, state, follow=follow)
    with pytest.raises(RuleViolationError, match="an entry of the kept tree was recorded "
                                                 "after the checkpoint that holds it"):
        run_once(DirSource(second), log.key, state, follow=follow)


def test_a_state_moved_by_another_process_means_a_full_replay(log: Log, tmp_path: Path
                                                              ) -> None:
    grow(log.ledger, 10)
    out = log.publish(with_entries=True)
    state = FileState(tmp_path / "state.json", log.key)
    follow = Follow()
    run_once(DirSource(out), log.key, state, follow=follow)
    grow(log.ledger, 20)
    log.publish(with_entries=True)
    other = FileState(tmp_path / "state.json", log.key)
    run_once(DirSource(out), log.key, other)  # another process keeps size 20
    grow(log.ledger, 30)
    log.publish(with_entries=True)
    spy = Spy(out)
    done = run_once(spy, log.key, state, follow=follow)
    assert (done.previous, done.replayed_from, spy.reads) == (20, 0, [(0, 30)])
    spy = Spy(out)
    grow(log.ledger, 35)
    log.publish(with_entries=True)
    assert run_once(spy, log.key, state, follow=follow).replayed_from == 30
    assert spy.reads == [(30, 5)]


def test_cli_follow_replays_only_what_was_added(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 5)
    out = log.publish(with_entries=True)
    proc = start_follow(out, log.vkey)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        grow(log.ledger, 9)
        log.publish(with_entries=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "entries 5..8" not in lines[-1]:
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "5 entries hash to their leaves" in lines[0], lines
    assert "size 9" in lines[-1] and "entries 5..8 hash to their leaves and replay under the " \
        "log's rules, after entries 0..4, replayed by an earlier run of this process" \
        in lines[-1], lines
    assert all(line.startswith("OK ") for line in lines), lines
    assert proc.returncode == 0 and "Traceback" not in err + rest
