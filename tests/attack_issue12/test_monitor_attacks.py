"""A hostile published directory or server feeding `modelseal monitor`, a tampered state
file, and a hostile terminal (ledger/monitor, cli/cmd_monitor.py)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import verifier as v
from ledger._tiles import tile_path
from ledger.client._state import FileState, MemoryState
from ledger.monitor import DirSource, RollbackDetectedError, run_once
from tests.cli_support import cli, ok, refused
from tests import monitor_support
from tests.monitor_support import Log, grow, write_log_dir

REPO = Path(__file__).resolve().parents[2]


# the shared log fixture (tests/monitor_support.py; pytest finds it by this name)
log = monitor_support.log


def _env() -> dict[str, str]:
    return {k: val for k, val in os.environ.items() if not k.startswith("MODELSEAL_")}


def _monitor_proc(*args: str, timeout: float, env: dict[str, str] | None = None,
                  stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", "from cli._entry import modelseal; modelseal()", "monitor",
                           *args], cwd=REPO, env=env or _env(), stdout=stdout,
                          stderr=subprocess.PIPE, timeout=timeout, check=False)


@pytest.mark.parametrize("where", ["checkpoint", "tile"])
def test_a_fifo_in_the_directory_does_not_hang_the_monitor(log: Log, where: str) -> None:
    # FINDING: medium: DirSource opens files with a plain open(): a FIFO planted as the checkpoint or a tile blocks the monitor forever (no timeout applies to a directory), a hostile share can stall every --follow run  # noqa: E501
    grow(log.ledger, 10)
    out = log.publish()
    target = out / "checkpoint" if where == "checkpoint" else out / "tile" / tile_path(0, 0, 10)
    target.unlink()
    os.mkfifo(target)
    try:
        done = _monitor_proc(str(out), "--key", log.vkey, "--timeout", "2", timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the monitor still blocked on a FIFO {where} after 10 s")
    assert done.returncode in (3, 13, 15), done
    assert b"Traceback" not in done.stderr


def test_a_truncated_length_prefix_in_an_entry_bundle(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 10)
    out = log.publish(with_entries=True)
    state = tmp_path / "state.json"
    ok(cli("monitor", out, "--key", log.vkey, "--state", state))
    before = state.read_bytes()
    grow(log.ledger, 12)
    log.publish(with_entries=True)
    bundle = out / "tile" / "entries" / "000.p" / "12"
    data = bundle.read_bytes()
    first = int.from_bytes(data[:2], "big")
    # cut inside the length prefix of the last entry, and inside an entry
    for cut in (len(data) - len(log.ledger.entry(11)) - 1, 2 + first - 3):
        bundle.write_bytes(data[:cut])
        run = cli("monitor", out, "--key", log.vkey, "--state", state)
        assert run.code in (3, 13, 15), run
        assert state.read_bytes() == before
    bundle.write_bytes(data + b"\x00")  # a trailing byte
    assert cli("monitor", out, "--key", log.vkey, "--state", state).code in (3, 13, 15)
    assert state.read_bytes() == before


def test_behind_with_the_kept_trees_tiles_partly_missing_is_a_rollback(
        log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 100)
    older = log.publish("older")
    grow(log.ledger, 600)
    new = log.publish("new")
    state = FileState(tmp_path / "state.json", log.key)
    run_once(DirSource(new), log.key, state)
    before = (tmp_path / "state.json").read_bytes()
    # the older checkpoint, its own tiles complete, the kept tree's level-1 tile gone
    hostile = tmp_path / "hostile"
    shutil.copytree(new, hostile)
    shutil.copy(older / "checkpoint", hostile / "checkpoint")
    (hostile / "tile" / tile_path(1, 0, 2)).unlink()
    with pytest.raises(RollbackDetectedError):
        run_once(DirSource(hostile), log.key, state)
    refused(cli("monitor", hostile, "--key", log.vkey, "--state", tmp_path / "state.json"), 11,
            "rollback")
    assert (tmp_path / "state.json").read_bytes() == before


def test_tiles_of_another_tree_that_hash_right_are_refused(log: Log, tmp_path: Path) -> None:
    """A fork's tiles are self-consistent: under the genuine checkpoint they give another
    root (15); a forked checkpoint with its own tiles against the kept state is a fork (10)."""
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    genuine = log.publish("genuine")
    forked = tmp_path / "forked"
    write_log_dir(forked, entries[:7] + [entries[6]], log, cp.time)
    mixed = tmp_path / "mixed"
    shutil.copytree(forked, mixed)
    shutil.copy(genuine / "checkpoint", mixed / "checkpoint")
    refused(cli("monitor", mixed, "--key", log.vkey, "--no-entries"), 15, "root")
    state = tmp_path / "state.json"
    ok(cli("monitor", genuine, "--key", log.vkey, "--state", state))
    refused(cli("monitor", forked, "--key", log.vkey, "--state", state, "--no-entries"), 10,
            "fork")


class _Trickle:
    """A server that answers 200 and then one byte every 0.3 s, forever."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(200):
                if self.stop.is_set():
                    break
                conn.sendall(b"1\r\nx\r\n")
                time.sleep(0.3)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_a_server_that_answers_endlessly_is_bounded_by_the_timeout(log: Log) -> None:
    server = _Trickle()
    try:
        start = time.monotonic()
        run = cli("monitor", server.url, "--key", log.vkey, "--timeout", "2")
        elapsed = time.monotonic() - start
    finally:
        server.close()
    assert run.code == 4, run
    assert elapsed < 10, elapsed


def test_a_state_file_that_is_a_symlink_is_refused_and_its_target_kept(
        log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 5)
    out = log.publish()
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    state = tmp_path / "state.json"
    state.symlink_to(victim)
    run = cli("monitor", out, "--key", log.vkey, "--state", state)
    assert run.code != 0 and victim.read_bytes() == b"precious\n", run
    assert state.is_symlink()


def test_a_tampered_state_file_is_refused_unchanged(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 5)
    out = log.publish()
    state = tmp_path / "state.json"
    ok(cli("monitor", out, "--key", log.vkey, "--state", state))
    doc = json.loads(state.read_text())
    text = json.dumps(doc)
    for bad in (text.replace('"size": 5', '"size": 4'), text[:-3], "\xff".encode("latin-1"),
                json.dumps({**doc, "extra": 1})):
        raw = bad if isinstance(bad, bytes) else bad.encode()
        state.write_bytes(raw)
        if raw == text.encode():
            continue
        run = cli("monitor", out, "--key", log.vkey, "--state", state)
        assert run.code in (3, 12), run
        assert state.read_bytes() == raw


def test_a_non_utf8_terminal_and_a_non_ascii_path(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 5)
    out = tmp_path / "publié"
    from ledger._publish import publish
    publish(log.ledger, out)
    env = {**_env(), "PYTHONIOENCODING": "ascii:strict", "LC_ALL": "C"}
    done = _monitor_proc(str(out), "--key", log.vkey, timeout=60, env=env)
    assert b"Traceback" not in done.stderr + done.stdout, done
    assert done.returncode == 0, done


def test_a_closed_stdout_pipe(log: Log) -> None:
    grow(log.ledger, 5)
    out = log.publish()
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the monitor writes its line
    try:
        done = _monitor_proc(str(out), "--key", log.vkey, timeout=60, stdout=w)
    finally:
        os.close(w)
    assert b"Traceback" not in done.stderr, done
    assert done.returncode != 70, done


def test_a_far_future_cosignature_does_not_crash_the_monitor(log: Log) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from verifier.cosignature import MAX_TIMESTAMP, WitnessKey, cosignature_line, \
        cosignature_message
    grow(log.ledger, 5)
    note = log.ledger.checkpoint()
    private = Ed25519PrivateKey.generate()
    witness = WitnessKey.from_public("w.example/far", private.public_key().public_bytes_raw())
    text = v.parse_note(note).text
    line = cosignature_line(witness, MAX_TIMESTAMP,
                            private.sign(cosignature_message(text, MAX_TIMESTAMP)))
    out = log.publish()
    (out / "checkpoint").write_bytes(note + line)
    run = cli("monitor", str(out), "--key", log.vkey, "--witness", witness.vkey())
    assert run.code in (0, 3, 12), run
    assert run.code != 70
    assert isinstance(run_once(DirSource(out), log.key, MemoryState(),
                               witnesses=[witness], threshold=1).size, int)


def _limit_memory() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))


def test_a_signed_checkpoint_of_an_absurd_size_is_reported_not_enumerated(
        log: Log, tmp_path: Path) -> None:
    # FINDING: medium: with entries (a directory with tile/entries, or --actor-key), tiles_needed lists every level-0 tile of the checkpoint's size before reading any: a hostile log that signs a checkpoint of size 2**44 makes the monitor loop and grow memory without bound instead of reporting the missing tiles (exit 13)  # noqa: E501
    from ledger._writer import sign_checkpoint

    grow(log.ledger, 5)
    out = log.publish(with_entries=True)
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    note = sign_checkpoint(log.keys.log.named(log.ledger.origin), log.ledger.origin, 2**44,
                           bytes(32), cp.time)
    (out / "checkpoint").write_bytes(note)
    # without entries the missing tiles are found at once
    refused(cli("monitor", out, "--key", log.vkey, "--no-entries"), 13, "missing")
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from cli._entry import modelseal; modelseal()", "monitor", str(out),
             "--key", log.vkey], cwd=REPO, env=_env(), capture_output=True, timeout=30,
            check=False, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail("the monitor was still enumerating tiles after 30 s")
    assert done.returncode == 13, (done.returncode, done.stderr[-300:])


def test_a_state_file_locked_by_another_monitor_is_a_bounded_wait(
        log: Log, tmp_path: Path) -> None:
    import fcntl

    grow(log.ledger, 5)
    out = log.publish()
    state = tmp_path / "state.json"
    ok(cli("monitor", out, "--key", log.vkey, "--state", state))
    before = state.read_bytes()
    fd = os.open(tmp_path / "state.json.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        start = time.monotonic()
        run = cli("monitor", out, "--key", log.vkey, "--state", state, "--timeout", "1")
        elapsed = time.monotonic() - start
    finally:
        os.close(fd)
    assert run.code == 4 and "locked" in run.err, run
    assert elapsed < 10
    assert state.read_bytes() == before
