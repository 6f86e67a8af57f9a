"""Client commands (`--server`, `monitor URL`) against servers that misbehave at the
transport: silent, trickling a body, trickling headers forever, gone. `--timeout SECONDS`
says how long one request may take, retries included: every wait is bounded."""
from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import ActorKey, LogKey

from ..attack_issue11.common import Proc, World
from .common import WRITER, Done, needs_full, no_traceback, run

VKEY = LogKey.generate("attack.example/s19").vkey


class Hostile:
    """A TCP server on 127.0.0.1 that reads a request and then misbehaves as ``mode``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)
                if self.mode == "silent":
                    self.stop.wait(120)
                elif self.mode == "body-trickle":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 100000\r\n\r\n")
                    while not self.stop.wait(0.3):
                        conn.sendall(b" ")
                elif self.mode == "header-trickle":
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not self.stop.wait(0.3):
                        conn.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass

    def __enter__(self) -> Hostile:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture(params=["silent", "body-trickle"])
def hostile(request: pytest.FixtureRequest) -> Iterator[Hostile]:
    with Hostile(request.param) as h:
        yield h


def _bounded(argv: list[str], limit: float = 25) -> tuple[Done, float]:
    start = time.monotonic()
    try:
        done = run(argv, timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still waiting after {limit} s with --timeout 2: {argv[3:]}")
    return done, time.monotonic() - start


ARGS = [["inventory"], ["checkpoint", "--json"], ["record", "m0", "--event", "evaluated"]]


def _client(url: str, tmp_path: Path, args: list[str]) -> None:
    key = ActorKey.generate("pipeline").save(tmp_path / "pipeline.key")
    done, took = _bounded([*WRITER, "--server", url, "--log-vkey", VKEY, "--key", str(key),
                           "--client-state", str(tmp_path / "state.json"), "--timeout", "2",
                           *args])
    no_traceback(done)
    assert done.code == 4, str(done)
    assert took < 20


def _monitor(url: str) -> None:
    done, took = _bounded([*WRITER, "monitor", url, "--key", VKEY, "--timeout", "2"])
    no_traceback(done)
    assert done.code == 4, str(done)
    assert took < 20


@pytest.mark.parametrize("args", ARGS, ids=["inventory", "checkpoint", "record"])
def test_client_commands_end_within_their_timeout(hostile: Hostile, tmp_path: Path,
                                                  args: list[str]) -> None:
    _client(hostile.url, tmp_path, args)


def test_monitor_ends_within_its_timeout(hostile: Hostile) -> None:
    _monitor(hostile.url)


def test_a_closed_port_is_exit_4_at_once(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done, took = _bounded([*WRITER, "--server", f"http://127.0.0.1:{port}", "--log-vkey", VKEY,
                           "--timeout", "2", "--client-state", str(tmp_path / "s.json"),
                           "inventory", "--json"])
    no_traceback(done)
    assert done.code == 4 and done.out == "", str(done)


# -- a real server, client output on odd streams ---------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], Path]]:
    base = tmp_path_factory.mktemp("served")
    w = World(base / "store", client=False)
    w.close()
    keyfile = w.log_key.save(base / "log.key")
    reader = w.reader.save(base / "reader.key")
    p = Proc(w.path, keyfile)
    try:
        yield ["--server", p.url, "--log-vkey", w.log_key.vkey, "--key", str(reader),
               "--timeout", "10"], base
    finally:
        p.kill()


# a reader gone is quiet success; a stdout closed from the start is exit 4 (session 21:
# the output of a read is its point, so it may not vanish with exit 0)
@pytest.mark.parametrize("stdout,code", [("gone", 0), ("closed", 4),
                                         pytest.param("full", 4, marks=needs_full)])
@pytest.mark.parametrize("args", [["inventory"], ["inventory", "--json"], ["history", "m0"],
                                  ["checkpoint"]], ids=" ".join)
def test_client_reads_on_odd_stdout(served: tuple[list[str], Path], args: list[str],
                                    stdout: str, code: int) -> None:
    opts, base = served
    done = run([*WRITER, *opts, "--client-state", str(base / f"st-{stdout}.json"), *args],
               stdout=stdout)
    no_traceback(done)
    assert done.code == code, str(done)
