"""A hostile HTTP server feeding `modelseal monitor URL`: wrong sizes, errors, redirects,
garbage; and Ctrl-C while the monitor waits."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger._tiles import tile_path, tiles_of
from tests.cli_support import cli
from tests import monitor_support
from tests.monitor_support import Log, grow

REPO = Path(__file__).resolve().parents[2]
Answer = tuple[int, dict[str, str], bytes]


# the shared log fixture (tests/monitor_support.py; pytest finds it by this name)
log = monitor_support.log


class _Server:
    """Serves ``route(path)`` on 127.0.0.1 (a free port) until closed."""

    def __init__(self, route: Callable[[str], Answer]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                status, headers, body = route(self.path)
                self.send_response(status)
                for k, val in headers.items():
                    self.send_header(k, val)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _files(log: Log) -> dict[str, bytes]:
    out = {"/checkpoint": log.ledger.checkpoint()}
    cp_size = log.ledger.size
    for level, index, width in tiles_of(cp_size):
        data = log.ledger.tile(level, index, width)
        assert data is not None
        out["/tile/" + tile_path(level, index, width)] = data
    return out


def _run(log: Log, change: Callable[[str, Answer], Answer], *extra: str) -> tuple[int, str]:
    files = _files(log)

    def route(path: str) -> Answer:
        found = files.get(path)
        base: Answer = (404, {}, b"no") if found is None else (200, {}, found)
        return change(path, base)

    server = _Server(route)
    try:
        r = cli("monitor", server.url, "--key", log.vkey, "--timeout", "3", *extra)
    finally:
        server.close()
    assert "Traceback" not in r.out + r.err
    return r.code, r.out + r.err


def test_an_honest_static_server_passes(log: Log) -> None:
    grow(log.ledger, 300)
    code, out = _run(log, lambda p, a: a)
    assert code == 0, out


@pytest.mark.parametrize("case, codes", [
    ("tile too long", (1, 3, 15)),
    ("tile short", (1, 3, 15)),
    ("tile 500", (4,)),
    ("tile redirect", (1, 4, 13)),
    ("checkpoint huge", (1, 3)),
    ("checkpoint garbage", (3,)),
    ("checkpoint 404", (1, 4, 13)),
])
def test_hostile_answers_are_typed(log: Log, case: str, codes: tuple[int, ...]) -> None:
    grow(log.ledger, 300)

    def change(path: str, a: Answer) -> Answer:
        tile = path.startswith("/tile/")
        if case == "tile too long" and tile:
            return (200, {}, a[2] + bytes(32 * 256))
        if case == "tile short" and tile:
            return (200, {}, a[2][:-1])
        if case == "tile 500" and tile:
            return (500, {}, b"boom")
        if case == "tile redirect" and tile:
            return (302, {"Location": "http://127.0.0.1:9/x"}, b"")
        if case == "checkpoint huge" and path == "/checkpoint":
            return (200, {}, a[2] + b"x" * (2 << 20))
        if case == "checkpoint garbage" and path == "/checkpoint":
            return (200, {}, b"\xff\xfe\x00garbage\n\n")
        if case == "checkpoint 404" and path == "/checkpoint":
            return (404, {}, b"")
        return a

    code, out = _run(log, change)
    assert code in codes, (code, out)
    assert out.startswith("error:") or "error" in out.lower(), out


def test_ctrl_c_while_stuck_exits_130_without_a_traceback(log: Log, tmp_path: Path) -> None:
    """Ctrl-C while the monitor waits (here: for the state file's lock, which another
    monitor holds) exits 130 without a traceback. (This test first waited on a FIFO planted
    as the checkpoint; the monitor no longer blocks there: it refuses a FIFO at once,
    tests/attack_issue12/test_monitor_attacks.py, so the wait is now the lock's.)"""
    import fcntl

    grow(log.ledger, 5)
    out = log.publish()
    state = tmp_path / "state.json"
    fd = os.open(tmp_path / "state.json.lock", os.O_RDWR | os.O_CREAT, 0o600)
    env = {k: val for k, val in os.environ.items() if not k.startswith("MODELSEAL_")}
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-c", "from cli._entry import modelseal; modelseal()",
                                 "monitor", str(out), "--key", log.vkey, "--state", str(state),
                                 "--timeout", "60"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(2.0)  # let it reach the wait for the lock
            assert proc.poll() is None, proc.communicate(timeout=10)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    finally:
        os.close(fd)
    assert b"Traceback" not in err, err
    assert proc.returncode == 130, (proc.returncode, err)
    assert not state.exists()


def test_a_fifo_checkpoint_is_refused_at_once(log: Log) -> None:
    grow(log.ledger, 5)
    out = log.publish()
    (out / "checkpoint").unlink()
    os.mkfifo(out / "checkpoint")
    run = cli("monitor", out, "--key", log.vkey)
    assert run.code == 3 and "not a regular file" in run.err, run


def test_a_servers_error_text_cannot_write_to_the_terminal(log: Log) -> None:
    """An error body with escape sequences and a forged `OK` line is shown as one
    printable line."""
    grow(log.ledger, 5)
    body = (b'{"error": "StoreError", "message": "\\u001b[2J\\u001b[31mboom\\nOK http://x '
            b'size 999: all fine\\r"}')
    code, out = _run(log, lambda p, a: (500, {"Content-Type": "application/json"}, body)
                     if p.startswith("/tile") else a)
    assert code == 4, out
    assert "\x1b" not in out and "\r" not in out
    assert not any(line.startswith("OK ") for line in out.splitlines()), out
