"""A stand-in for ``modelseal serve`` in the client's tests: specs/api.md over a real
``Ledger``, as an httpx MockTransport handler (with hooks to tamper with answers and to
fail requests) or on a real socket (for the CLI). Test-only."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

import verifier as v
from ledger import Ledger
from ledger.client import _wire
from ledger.errors import StoreBusyError, StoreFullError

Answer = tuple[int, dict[str, str], bytes]
PROTECTED = ("/entry/", "/entries", "/history/", "/inventory", "/proof/inclusion", "/bundle")
_STATUS = {"MalformedInputError": 400, "AuthorizationError": 403, "SignatureError": 403,
           "RuleError": 409, "ChainError": 409, "TimeBoundError": 409}


PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
              "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")
"""The environment variables that choose a proxy (REQUEST_METHOD: httpx ignores the
proxy variables under CGI)."""


def clear_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every PROXY_VARS variable for this test (so the host's proxy never applies)."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def error(status: int, name: str, message: str, **headers: str) -> Answer:
    body = json.dumps({"error": name, "message": message}).encode()
    return status, {"content-type": "application/json", **headers}, body


def _time(text: str) -> datetime:
    return v.from_ns(_wire.parse_rfc3339(text)[0])


class FakeServer:
    """specs/api.md over ``ledger``. ``requests`` records (method, path, body) of each
    request; ``fail`` (if set) may answer a request instead of the ledger (return None
    to let it through); ``tamper`` may change an answer."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.requests: list[tuple[str, str, bytes]] = []
        self.fail: Callable[[httpx.Request], Answer | None] | None = None
        self.tamper: Callable[[str, Answer], Answer] | None = None
        self.lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        with self.lock:
            self.requests.append((request.method, request.url.path, body))
        if self.fail is not None:
            failed = self.fail(request)
            if failed is not None:
                return httpx.Response(failed[0], headers=failed[1], content=failed[2])
        status, headers, content = self.answer(request.method, request.url.raw_path.decode(),
                                               dict(request.headers), body)
        return httpx.Response(status, headers=headers, content=content)

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> Answer:
        """The answer to one request (``tamper`` applied)."""
        out = self._answer(method, target, headers, body)
        if self.tamper is not None:
            out = self.tamper(urlsplit(target).path, out)
        return out

    def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes
                ) -> Answer:
        parts = urlsplit(target)
        path = parts.path
        query = {k: vs[-1] for k, vs in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            if path == "/add":
                if method != "POST":
                    return error(405, "MethodNotAllowed", "POST only", allow="POST")
                return self._add(body)
            if method != "GET":
                return error(405, "MethodNotAllowed", "GET only", allow="GET")
            if path.startswith(PROTECTED) and "signature" not in {k.lower() for k in headers}:
                return error(401, "Unauthenticated", "this read must be signed")
            return self._get(path, query)
        except KeyError as exc:
            return error(404, "NotFound", str(exc.args[0] if exc.args else "not found"))
        except StoreBusyError as exc:
            return error(503, "Busy", str(exc), **{"retry-after": "1"})
        except StoreFullError as exc:
            return error(507, "StoreFullError", str(exc))
        except v.VerifierError as exc:
            name = type(exc).__name__
            return error(_STATUS.get(name, 400), name, str(exc))
        except ValueError as exc:
            return error(400, "ArgumentError", str(exc))

    def _add(self, body: bytes) -> Answer:
        r = self.ledger.add(body)
        doc = {"index": r.index, "snapshot": r.snapshot_hash,  # as the server: microseconds
               "recorded_at": v.iso(v.to_ns(r.recorded_at)),
               "entry": base64.b64encode(r.entry).decode(),
               "proof": r.proof.to_text().decode()}
        return 201 if r.created else 200, {"content-type": "application/json"}, \
            json.dumps(doc).encode()

    def _get(self, path: str, q: dict[str, str]) -> Answer:
        led = self.ledger
        js = {"content-type": "application/json"}
        if path == "/log":
            doc = {"origin": led.origin, "log_key": led.log_vkey, "log_id": led.log_id,
                   "size": led.size}
            return 200, js, json.dumps(doc).encode()
        if path == "/checkpoint":
            return 200, {"content-type": "text/plain; charset=utf-8"}, led.checkpoint()
        if path == "/proof/consistency":
            new = int(q["new"]) if "new" in q else None
            return 200, {}, led.prove_consistency(int(q["old"]), new).to_text()
        if path == "/proof/inclusion":
            index = v.parse_entry(led.entry(q["snapshot"])).entry.index
            size = int(q["size"]) if "size" in q else led.receipt(index).proof.size
            return 200, {}, led.prove_inclusion(index, size).to_text()
        if path.startswith("/entry/"):
            ref = unquote(path[len("/entry/"):])
            return 200, {}, led.entry(int(ref) if ref.isdigit() and len(ref) < 8 else ref)
        if path.startswith("/history/"):
            name = unquote(path[len("/history/"):])
            entries = [led.entry(s.index) for s in led.history(name)]
            if not entries:
                return error(404, "NotFound", f"no model {name!r}")
            doc = {"model": name, "entries": [base64.b64encode(e).decode() for e in entries]}
            return 200, js, json.dumps(doc).encode()
        if path == "/inventory":
            at = _time(q["at"]) if "at" in q else None
            models = led.inventory_at(at)
            size = led.size  # the fake does not compute the size at T
            doc = {"at": v.iso(v.to_ns(at)) if at else None, "size": size,
                   "models": {n: s.to_json() for n, s in models.items()}}
            return 200, js, json.dumps(doc).encode()
        if path == "/bundle":
            at = _time(q["at"]) if "at" in q else None
            data = b"".join(led.iter_bundle(
                at, int(q["size"]) if "size" in q else None,
                int(q["trusted"]) if "trusted" in q else None))
            return 200, js, data
        return error(404, "NotFound", f"no route {path}")


class SocketServer:
    """``FakeServer`` on 127.0.0.1 (a real socket), in a thread; a context manager."""

    def __init__(self, fake: FakeServer) -> None:
        outer = fake

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, content = outer.answer(self.command, self.path,
                                                        dict(self.headers), body)
                self.send_response(status)
                for k, val in headers.items():
                    self.send_header(k, val)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SocketServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class RealServer:
    """``modelseal serve``'s application (ledger.server) on uvicorn, 127.0.0.1 and a free
    port, in a thread; a context manager."""

    def __init__(self, ledger: Ledger) -> None:
        import uvicorn

        from ledger.server import build_app, listen

        self.sock = listen("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(build_app(ledger), lifespan="on", log_level="warning",
                                access_log=False, timeout_keep_alive=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> RealServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "the server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()
