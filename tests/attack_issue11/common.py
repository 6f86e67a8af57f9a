"""Helpers for the issue-11 attack tests: a served world (in process with Starlette's
TestClient, in a thread on a real uvicorn with the server's protocol, or as a real
``modelseal serve`` process), raw sockets with bounded waits."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import uvicorn

from ledger import Ledger
from ledger.server import Limits, build_app
from ledger.server._protocol import LimitedHttpToolsProtocol
from tests.server_support import World

REPO = Path(__file__).resolve().parents[2]


def assert_problem(r: httpx.Response, status: int, name: str | None = None) -> dict[str, Any]:
    """An error answer of specs/api.md §1: the status, JSON with exactly error+message."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers.get("content-type") == "application/json", r.headers
    doc = r.json()
    assert set(doc) == {"error", "message"}, doc
    if name is not None:
        assert doc["error"] == name, doc
    assert "Traceback" not in r.text
    return doc


# -- a real uvicorn in a thread of this process (so the test can look at the store) ------

class ThreadServer:
    """The server's uvicorn configuration (as ``ledger.server.serve`` sets it) in a
    thread of this process, on 127.0.0.1 and a free port."""

    def __init__(self, led: Ledger, limits: Limits | None = None, **app_kw: Any) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(2048)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            build_app(led, limits, **app_kw), http=LimitedHttpToolsProtocol,
            lifespan="on", loop="asyncio", timeout_keep_alive=5, timeout_graceful_shutdown=5,
            limit_concurrency=4096, server_header=False, access_log=False,
            log_level="critical")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


# -- a real ``modelseal serve`` process ------------------------------------------------------

def free_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSEAL_")}
    env.update(extra)
    return env


def serve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from cli.main import main; main()", "serve", *args]


class Proc:
    """A ``modelseal serve`` process; ``url`` once it printed its "serving" line."""

    def __init__(self, store: Path, keyfile: Path, *more: str, env: dict[str, str] | None = None,
                 listen: str = "127.0.0.1:0", wait: bool = True) -> None:
        self.proc = subprocess.Popen(
            serve_cmd("--store", str(store), "--log-key", str(keyfile), "--listen", listen,
                      *more),
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=env if env is not None else free_env(), cwd=str(REPO))
        self.url = ""
        self.first_line = ""
        if wait:
            self.first_line = self._readline(30)
            assert "serving" in self.first_line, self.first_line
            self.url = self.first_line.rsplit(" ", 1)[1].strip()

    def _readline(self, timeout: float) -> str:
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(self.proc.stderr.readline()),  # type: ignore[union-attr]
                             daemon=True)
        t.start()
        t.join(timeout)
        return out[0] if out else ""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, sig: int | None = None, timeout: float = 40) -> tuple[int | None, str]:
        """Send ``sig`` (default SIGTERM), wait; (exit code or None, remaining stderr)."""
        import signal as _s
        if self.proc.poll() is None:
            self.proc.send_signal(sig if sig is not None else _s.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None, ""
        err = self.proc.stderr.read() if self.proc.stderr else ""  # type: ignore[union-attr]
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for f in (self.proc.stderr, self.proc.stdout):
            if f is not None:
                f.close()


@contextmanager
def served(tmp_path: Path, *more: str, world: World | None = None) -> Iterator[tuple[World, Proc]]:
    """A world's store served by a real process (the world's own handle closed)."""
    w = world or World(tmp_path / "store", client=False)
    w.close()
    keyfile = w.log_key.save(tmp_path / "log.key")
    p = Proc(w.path, keyfile, *more)
    try:
        yield w, p
    finally:
        p.kill()


# -- raw sockets --------------------------------------------------------------------------

def connect(url: str, timeout: float = 10) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    return s


def read_until_close(s: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes, or ``timeout`` seconds pass."""
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except (socket.timeout, TimeoutError):
            return out
        except (ConnectionResetError, BrokenPipeError):
            return out
        if not chunk:
            return out
        out += chunk


def raw(url: str, data: bytes, timeout: float = 10) -> bytes:
    with connect(url, timeout) as s:
        try:
            s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return read_until_close(s, timeout)


def http_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers in lower case, body) of the first response in ``data``."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body


def open_reader_txns(led: Ledger) -> int:
    """Read transactions open now in the store's LMDB environment (reader table rows
    with a transaction id)."""
    text = led._store.env.readers()
    n = 0
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[2] != "-":
            n += 1
    return n


def asgi_call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]],
              body: bytes = b"", query: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight through the ASGI interface (headers exactly as given)."""
    msgs = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return msgs.pop(0) if msgs else {"type": "http.disconnect"}

    async def send(m: dict[str, Any]) -> None:
        sent.append(m)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "headers": headers,
             "server": ("testserver", 80), "client": ("192.0.2.1", 1234)}
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body_out = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body_out
