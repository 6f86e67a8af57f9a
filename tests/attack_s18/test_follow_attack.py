"""Attacks on `modelseal monitor --follow` (ledger/monitor: ``Follow``, ``run_once(follow=)``,
``check_entries(resume=)``): sources that change between runs, runs cut short, a state file
edited by hand, and a server URL source. Each resumed verdict is compared with what a run
replaying the whole log says."""
# ruff: noqa: E501  (the one-line FINDING comments)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import verifier as v
from ledger import ActorKey
from ledger.client._state import FileState, Kept, MemoryState, format_state
from ledger.monitor._run import describe
from ledger.monitor import (
    DirSource,
    Follow,
    ForkDetectedError,
    RuleViolationError,
    TileMismatchError,
    UrlSource,
    run_once,
)
from tests.client_support import RealServer
from tests import monitor_support
from tests.monitor_support import Log, grow, write_log_dir
from tests.test_monitor_follow import Spy


# the shared log fixture (tests/monitor_support.py; pytest finds it by this name)
log = monitor_support.log


def _verdict(src: object, log: Log, state: MemoryState, follow: Follow | None = None
             ) -> str:
    try:
        run_once(src, log.key, state, follow=follow)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the verdict is the class
        return type(exc).__name__
    return "ok"


def _alter_entry(bundle: Path, index_in_bundle: int) -> None:
    """Flip the last byte of one entry inside an entry bundle (lengths kept)."""
    data = bytearray(bundle.read_bytes())
    pos = 0
    for i in range(index_in_bundle + 1):
        n = int.from_bytes(data[pos:pos + 2], "big")
        if i == index_in_bundle:
            data[pos + 2 + n - 1] ^= 1
            break
        pos += 2 + n
    bundle.write_bytes(bytes(data))


def test_old_entries_altered_after_the_first_run_are_caught(log: Log) -> None:
    # FINDING: low: after a first --follow run, the log may alter (or drop) the published bundles of entries already replayed while its tiles stay: every later resumed run says OK, where a full replay refuses (TileMismatchError). Kept by design (specs/tiles.md §4 step 5): the tree is unchanged, and a resumed run's OK names only entries kept.size..size-1 as read; this test holds that it never claims more
    grow(log.ledger, 20)
    out = log.publish(with_entries=True)
    state, follow = MemoryState(), Follow()
    run_once(DirSource(out), log.key, state, follow=follow)
    grow(log.ledger, 30)
    log.publish(with_entries=True)
    _alter_entry(out / "tile/entries/000.p/30", 3)
    assert _verdict(DirSource(out), log, MemoryState()) == "TileMismatchError"
    checked = run_once(DirSource(out), log.key, state, follow=follow)
    line = describe(checked, "pub", witnesses=0, threshold=0, kept=True)
    assert (checked.replayed_from, checked.entries) == (20, 10)
    assert "entries 20..29 hash to their leaves" in line and "30 entries" not in line
    assert "after entries 0..19, replayed by an earlier run of this process" in line


def test_a_fork_at_a_larger_size_then_the_true_log_again(log: Log, tmp_path: Path) -> None:
    """Run 1 keeps size 20 (replay held); the source then shows a fork of size 30 (other
    entries below 20): ForkDetectedError, state and held replay unchanged; the true log of
    size 30 then resumes from 20, with the verdict and inventory of a full replay."""
    grow(log.ledger, 30)
    every = [log.ledger.entry(i) for i in range(30)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    first, forked, true = tmp_path / "a", tmp_path / "fork", tmp_path / "true"
    at19 = v.parse_entry(every[19]).entry.recorded_at  # before entry 20 was recorded
    write_log_dir(first, every[:20], log, at19)
    write_log_dir(forked, every[:10] + every[11:] + [every[10]], log, cp.time + 1)
    write_log_dir(true, every, log, cp.time + 2)
    state, follow = MemoryState(), Follow()
    run_once(DirSource(first), log.key, state, follow=follow)
    with pytest.raises(ForkDetectedError):
        run_once(DirSource(forked), log.key, state, follow=follow)
    spy = Spy(true)
    got = run_once(spy, log.key, state, follow=follow)
    full = run_once(DirSource(true), log.key, MemoryState())
    assert (got.size, full.size) == (30, 30)
    assert got.replayed_from in (0, 20)  # either is sound; 20 means the held replay survived
    assert spy.reads[-1][0] + spy.reads[-1][1] == 30


def test_rollback_then_regrow_differently_is_a_fork(log: Log, tmp_path: Path) -> None:
    """Kept size 20; the source rolls back to 15 (behind, a prefix: kept unchanged), then
    regrows to 25 with other entries after 15: a fork, resumed or not."""
    grow(log.ledger, 25)
    every = [log.ledger.entry(i) for i in range(25)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    a, back, regrown = tmp_path / "a", tmp_path / "back", tmp_path / "re"
    write_log_dir(a, every[:20], log, cp.time)
    write_log_dir(back, every[:15], log, cp.time + 1)
    write_log_dir(regrown, every[:15] + every[16:] + [every[15]], log, cp.time + 2)
    state, follow = MemoryState(), Follow()
    run_once(DirSource(a), log.key, state, follow=follow)
    with pytest.raises(Exception) as info:  # behind: the dir has no tiles of size 20
        run_once(DirSource(back), log.key, state, follow=follow)
    assert type(info.value).__name__ in ("RollbackDetectedError", "ForkDetectedError")
    assert _verdict(DirSource(regrown), log, state, follow) == "ForkDetectedError"
    full = MemoryState()
    run_once(DirSource(a), log.key, full)
    assert _verdict(DirSource(regrown), log, full) == "ForkDetectedError"


class _Interrupting(Spy):
    """A source whose entries() raises ``exc`` after ``after`` entries, once."""

    def __init__(self, root: Path, after: int, exc: BaseException) -> None:
        super().__init__(root)
        self.after, self.exc = after, exc

    def entries(self, size: int, start: int = 0) -> Iterator[bytes]:
        for n, data in enumerate(super().entries(size, start)):
            if n == self.after and self.exc is not None:
                exc, self.exc = self.exc, None  # type: ignore[assignment]
                raise exc
            yield data


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError("disk"), MemoryError()])
def test_a_run_cut_short_mid_replay_then_continued(log: Log, exc: BaseException) -> None:
    """A run interrupted while it replays resumed entries drops the (half-advanced) replay:
    the next run replays the whole log and agrees with a fresh full replay."""
    grow(log.ledger, 10)
    out = log.publish(with_entries=True)
    state, follow = MemoryState(), Follow()
    run_once(DirSource(out), log.key, state, follow=follow)
    grow(log.ledger, 40)
    log.publish(with_entries=True)
    src = _Interrupting(out, 5, exc)
    with pytest.raises(type(exc)):
        run_once(src, log.key, state, follow=follow)
    assert state.get() is not None and state.get().size == 10  # type: ignore[union-attr]
    again = run_once(src, log.key, state, follow=follow)
    assert (again.size, again.replayed_from, again.entries) == (40, 0, 40)
    grow(log.ledger, 45)
    log.publish(with_entries=True)
    assert run_once(src, log.key, state, follow=follow).replayed_from == 40


def test_a_state_file_edited_back_by_hand_means_a_full_replay(log: Log, tmp_path: Path
                                                              ) -> None:
    grow(log.ledger, 10)
    out = log.publish(with_entries=True)
    old_note = (out / "checkpoint").read_bytes()
    path = tmp_path / "state.json"
    state, follow = FileState(path, log.key), Follow()
    run_once(DirSource(out), log.key, state, follow=follow)
    grow(log.ledger, 20)
    log.publish(with_entries=True)
    run_once(DirSource(out), log.key, state, follow=follow)
    # someone puts the size-10 checkpoint back in the state file
    path.write_bytes(format_state(Kept.of(v.Checkpoint.parse_note(old_note, [log.key]))))
    grow(log.ledger, 25)
    log.publish(with_entries=True)
    spy = Spy(out)
    got = run_once(spy, log.key, state, follow=follow)
    assert (got.previous, got.replayed_from, spy.reads) == (10, 0, [(0, 25)])


def test_a_new_note_of_the_same_tree_with_an_earlier_time(log: Log, tmp_path: Path) -> None:
    """Same size, same root, a note signed earlier than the kept one but after every
    entry: full and resumed runs agree (both accept), and a later entry recorded between
    the two times is judged the same way by both."""
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    last_at = v.parse_entry(entries[7]).entry.recorded_at
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    late, early = tmp_path / "late", tmp_path / "early"
    write_log_dir(late, entries, log, cp.time + 10_000)
    write_log_dir(early, entries, log, last_at)
    verdicts = []
    for follow in (None, Follow()):
        state = MemoryState()
        run_once(DirSource(late), log.key, state, follow=follow)
        verdicts.append(_verdict(DirSource(early), log, state, follow))
    assert verdicts[0] == verdicts[1], verdicts


def test_a_server_url_source_follows_across_pages(log: Log) -> None:
    """Through a real server and a reader's key: resumed runs across the 1000-entry page
    size of GET /entries read only the new entries and agree with a full replay."""
    reader = ActorKey.generate("auditor")
    log.ledger.grant(reader.vkey, role="reader")
    grow(log.ledger, 300)
    state, follow = MemoryState(), Follow()
    with RealServer(log.ledger) as server:
        src = UrlSource(server.url, actor=reader, timeout=10)
        try:
            assert run_once(src, log.key, state, follow=follow).entries == 300
            grow(log.ledger, 1305)
            got = run_once(src, log.key, state, follow=follow)
            assert (got.replayed_from, got.entries) == (300, 1305 - 300)
            full = run_once(src, log.key, MemoryState())
            assert (full.replayed_from, full.entries) == (0, 1305)
            again = run_once(src, log.key, state, follow=follow)
            assert (again.replayed_from, again.entries) == (1305, 0)
        finally:
            src.close()


def test_a_resume_given_another_checkpoint_is_api_misuse(log: Log) -> None:
    from ledger.monitor._core import Replayed, TrustedLog
    grow(log.ledger, 5)
    out = log.publish(with_entries=True)
    note = (out / "checkpoint").read_bytes()
    kept = Kept.of(v.Checkpoint.parse_note(note, [log.key]))
    t = TrustedLog(log.key, kept)
    t.check_checkpoint(note)
    t.check_tiles(lambda tid: DirSource(out).tile(*tid), True)
    bad = Replayed(note, 4, 0, v.Inventory(keep_timelines=False))
    with pytest.raises(ValueError, match="not of the kept checkpoint"):
        t.check_entries(iter(()), bad)


def test_rule_violation_class_is_the_same_resumed(log: Log, tmp_path: Path) -> None:
    """An entry appended twice after the kept size: the same error class either way."""
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    good, bad = tmp_path / "good", tmp_path / "bad"
    write_log_dir(good, entries, log, cp.time)
    write_log_dir(bad, entries + [entries[0]], log, cp.time + 1)
    out = []
    for follow in (None, Follow()):
        state = MemoryState()
        run_once(DirSource(good), log.key, state, follow=follow)
        out.append(_verdict(DirSource(bad), log, state, follow))
    assert out == [RuleViolationError.__name__] * 2
    assert TileMismatchError.__name__ not in out
