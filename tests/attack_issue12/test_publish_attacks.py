"""A hostile or damaged publication directory, and a store that went back under it
(ledger/_publish.py, `modelseal publish`)."""

from __future__ import annotations

import os
from datetime import timedelta
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Ledger
from ledger._publish import PublishBusyError, PublishConflictError, publish
from ledger.client._state import MemoryState
from ledger.monitor import DirSource, run_once
from tests.cli_support import cli
from tests.ledger_support import T0, Clock, Keys, make_ledger, register
from tests.test_publish import check_dir, files, grow
import verifier as v

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def led(tmp_path: Path) -> Iterator[Ledger]:
    ledger = make_ledger(tmp_path / "store", Keys())
    yield ledger
    ledger.close()


def _publish_in_child(store: Path, out: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from ledger import Ledger; from ledger._publish import publish\n"
            "with Ledger.open(sys.argv[1]) as l:\n"
            "    try:\n        publish(l, sys.argv[2])\n"
            "    except Exception as e:\n        print(type(e).__name__); sys.exit(1)\n")
    return subprocess.run([sys.executable, "-c", code, str(store), str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_a_fifo_where_the_checkpoint_goes_does_not_hang_publish(led: Ledger,
                                                                tmp_path: Path) -> None:
    # FINDING: medium: a FIFO (named pipe) planted as DIR/checkpoint makes publish block forever in open() (O_NOFOLLOW does not stop a FIFO): an unbounded wait that also holds the directory's lock  # noqa: E501
    grow(led, 10)
    out = tmp_path / "pub"
    out.mkdir()
    os.mkfifo(out / "checkpoint")
    try:
        done = _publish_in_child(tmp_path / "store", out, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("publish still blocked on a FIFO after 10 s")
    assert done.returncode == 1 and "PublishConflictError" in done.stdout, done


def test_a_fifo_where_a_tile_goes_is_a_conflict(led: Ledger, tmp_path: Path) -> None:
    grow(led, 10)
    out = tmp_path / "pub"
    (out / "tile" / "0").mkdir(parents=True)
    (out / "tile" / "0" / "000.p").mkdir()
    os.mkfifo(out / "tile" / "0" / "000.p" / "10")
    done = _publish_in_child(tmp_path / "store", out, timeout=20)
    assert done.returncode == 1 and "PublishConflictError" in done.stdout, done
    assert not (out / "checkpoint").exists()


def test_a_symlinked_lock_file_is_refused_without_following_it(led: Ledger,
                                                               tmp_path: Path) -> None:
    grow(led, 3)
    out = tmp_path / "pub"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (out / ".publish.lock").symlink_to(victim)
    with pytest.raises(OSError):
        publish(led, out)
    assert victim.read_bytes() == b"keep me"
    assert not (out / "checkpoint").exists()


def test_a_planted_temp_link_is_not_followed(led: Ledger, tmp_path: Path) -> None:
    grow(led, 3)
    out = tmp_path / "pub"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (out / ".tmp-checkpoint-000000000000").symlink_to(victim)
    publish(led, out)
    assert victim.read_bytes() == b"keep me"
    check_dir(out, led)


def test_a_store_rolled_back_and_regrown_under_a_directory_is_a_conflict(
        tmp_path: Path) -> None:
    """The directory publishes size 30; the store is replaced by a copy that forked at 20
    and grew to 40: nothing is written, the reader keeps the published tree."""
    keys = Keys()
    a = make_ledger(tmp_path / "a", keys)
    grow(a, 20)
    a.close()
    subprocess.run(["cp", "-a", str(tmp_path / "a"), str(tmp_path / "b")], check=True)
    a = Ledger.open(tmp_path / "a", log_key=keys.log, signer=keys.admin,
                    clock=Clock(T0 + timedelta(days=1)))
    grow(a, 30)
    out = tmp_path / "pub"
    publish(a, out)
    a.close()
    before = files(out)
    with Ledger.open(tmp_path / "b", log_key=keys.log, signer=keys.admin,
                     clock=Clock(T0 + timedelta(days=2))) as b:
        with b.batch():
            while b.size < 40:
                register(b, f"fork-{b.size}")
        with pytest.raises(PublishConflictError):
            publish(b, out)
        assert files(out) == before
        # the CLI says so with exit 1, no traceback
    r = cli("publish", str(out), "--store", str(tmp_path / "b"))
    assert r.code == 1 and "Traceback" not in r.out + r.err, r


def test_two_publishers_in_two_processes(led: Ledger, tmp_path: Path) -> None:
    """A second process finds the lock held: PublishBusyError, nothing written by it."""
    grow(led, 5)
    out = tmp_path / "pub"
    out.mkdir()
    import fcntl
    fd = os.open(out / ".publish.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        done = _publish_in_child(tmp_path / "store", out, timeout=30)
        assert done.returncode == 1 and "PublishBusyError" in done.stdout, done
        assert not (out / "checkpoint").exists()
    finally:
        os.close(fd)
    with pytest.raises(PublishBusyError):
        fd = os.open(out / ".publish.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            publish(led, out)
        finally:
            os.close(fd)


def test_publishing_without_entries_after_with_entries_keeps_the_directory_checkable(
        led: Ledger, tmp_path: Path) -> None:
    # FINDING: low: a directory once published --with-entries and then published without them holds stale entry bundles; the monitor (which reads entries wherever tile/entries exists) then reports a missing entry bundle (exit 13) for an honest log; publish should keep the bundles up to date or refuse  # noqa: E501
    grow(led, 100)
    out = tmp_path / "pub"
    publish(led, out, with_entries=True)
    grow(led, 300)
    publish(led, out)
    key = v.VerifierKey.parse(led.log_vkey)
    checked = run_once(DirSource(out), key, MemoryState())
    assert checked.size == 300


def test_a_checkpoint_of_another_key_with_the_same_origin_is_a_conflict(
        led: Ledger, tmp_path: Path) -> None:
    grow(led, 5)
    out = tmp_path / "pub"
    out.mkdir()
    other = make_ledger(tmp_path / "other", Keys())  # same origin, another log key
    grow(other, 5)
    (out / "checkpoint").write_bytes(other.checkpoint())
    other.close()
    with pytest.raises(PublishConflictError):
        publish(led, out)
    assert files(out) == {"checkpoint": (out / "checkpoint").read_bytes()}


@pytest.mark.parametrize("where", ["tile", "tile/0", "tile/0/001.p", "tile/1",
                                   "tile/entries", "tile/entries/001.p"])
def test_a_directory_link_anywhere_in_the_layout_is_refused(
        led: Ledger, tmp_path: Path, where: str) -> None:
    grow(led, 300)
    out = tmp_path / "pub"
    (out / where).parent.mkdir(parents=True, exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / where).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PublishConflictError):
        publish(led, out, with_entries=True)
    assert list(elsewhere.iterdir()) == []
    assert not (out / "checkpoint").exists()
