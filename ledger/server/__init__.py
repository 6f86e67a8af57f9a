"""The log as a service: an ASGI application (Starlette) over one ``Ledger``, run on
uvicorn. specs/api.md is the contract; docs/deploy.md says how to run it.

``build_app(ledger)`` gives the application (for tests or another ASGI server);
``serve(ledger, ...)`` runs it until SIGTERM or SIGINT, then stops accepting, lets
the requests under way finish (their writes commit) and returns.
"""

from __future__ import annotations

import contextlib
import re
import socket
import signal
import ssl
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from ..ledger import Ledger
from ._app import Limits, build
from ._auth import signed_request_authorizer
from ._protocol import MAX_CONNECTIONS, LimitedHttpToolsProtocol
from ._witnesses import Distributor, WitnessEndpoint, read_witness_file

__all__ = ["Distributor", "Limits", "WitnessEndpoint", "build_app", "check_public_url",
           "listen", "read_witness_file", "run_asgi", "serve"]

Clock = Callable[[], datetime]


def build_app(ledger: Ledger, limits: Limits | None = None, clock: Clock | None = None,
              public_url: str | None = None,
              witnesses: Sequence[WitnessEndpoint] | Distributor = ()) -> Starlette:
    """The application serving ``ledger``. Precondition: opened with its log key.
    ``clock`` gives the time that signed reads are checked against (default: the
    system clock, UTC). ``public_url`` (``https://host[:port]``) is the address that
    clients sign reads for: set it so that a read signed for another server sharing
    the same reader keys is refused here; without it, the request's Host header.
    ``witnesses``: while the application runs, the log's checkpoints are sent to them
    and their cosignatures stored (a ``Distributor`` to set its pace and transport)."""
    if ledger._log_key is None:
        raise ValueError("the server writes: open the ledger with its log key")
    if public_url is not None:
        public_url = check_public_url(public_url)
    now = clock or (lambda: datetime.now(timezone.utc))
    distributor = witnesses if isinstance(witnesses, Distributor) else \
        Distributor(ledger, witnesses) if witnesses else None
    return build(ledger, signed_request_authorizer(ledger, now, public_url), limits,
                 distributor)


_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}"
                   r"[a-z0-9])?|\[[0-9a-f:.]+\]")


def check_public_url(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL with no path, lower case; ValueError
    otherwise (a host of ASCII letters, digits, dots and hyphens, or a bracketed IPv6
    address; a port in 1..65535)."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    bad = ValueError(f"the public URL is http(s)://host[:port], not {url!r}")
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc \
            or parts.path not in ("", "/") or parts.query or parts.fragment \
            or "@" in parts.netloc or not parts.netloc.isascii():
        raise bad
    netloc = parts.netloc.lower()
    if netloc.startswith("["):  # [IPv6]:port
        host, _, rest = netloc.partition("]")
        host += "]"
        if rest and not rest.startswith(":"):
            raise bad
        port = rest[1:] if rest else None
    else:
        host, sep, tail = netloc.partition(":")
        port = tail if sep else None
    if not _HOST.fullmatch(host) or (port is not None and not (
            port.isascii() and port.isdigit() and 0 < int(port) < 65536)):
        raise bad
    return f"{parts.scheme}://{parts.netloc.lower()}"


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: any free one).

    Made with ``IPPROTO_TCP`` (as ``loop.create_server(host, port)`` makes its own): asyncio
    turns Nagle off (TCP_NODELAY) only on connections accepted from such a socket. With
    proto 0, every answer after the first on a keep-alive connection waited ~40 ms for
    the client's delayed ACK (the head and the body are two writes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(ledger: Ledger, sock: socket.socket, *, tls_cert: str | None = None,
          tls_key: str | None = None, limits: Limits | None = None,
          public_url: str | None = None, graceful: int = 30,
          ready: Callable[[], None] | None = None,
          witnesses: Sequence[WitnessEndpoint] = ()) -> None:
    """Serve ``ledger`` on the listening ``sock`` until SIGTERM/SIGINT; then stop
    accepting and wait (at most ``graceful`` seconds) for the requests under way.
    ``ready`` is called once the server accepts connections and the signals that stop
    it are handled. ``witnesses``: see ``build_app``."""
    run_asgi(build_app(ledger, limits, public_url=public_url, witnesses=witnesses), sock,
             tls_cert=tls_cert,
             tls_key=tls_key, graceful=graceful, ready=ready)


def run_asgi(app: Starlette, sock: socket.socket, *, tls_cert: str | None = None,
             tls_key: str | None = None, graceful: int = 30,
             ready: Callable[[], None] | None = None) -> None:
    """Run ``app`` on uvicorn with the server's limits (bounded request heads, a bounded
    number of connections) on the listening ``sock`` until SIGTERM/SIGINT, then stop as
    ``serve`` does. Also runs the witness (ledger/witness)."""
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("TLS needs both a certificate and its key")
    config = uvicorn.Config(
        app, http=LimitedHttpToolsProtocol,
        lifespan="on", loop="asyncio", timeout_keep_alive=5, timeout_graceful_shutdown=graceful,
        limit_concurrency=MAX_CONNECTIONS, server_header=False, access_log=False,
        log_level="warning", use_colors=False,  # no isatty() on a stream started closed
        ssl_certfile=tls_cert, ssl_keyfile=tls_key,
        ssl_version=ssl.PROTOCOL_TLS_SERVER)
    _Server(config, ready).run(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM or SIGINT that asked for the graceful stop it
    completed is not raised again afterwards: the stop is the expected end (exit 0)."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._ready = ready
        # started with SIGINT ignored (`serve &` in a script): Ctrl-C in that terminal is
        # not for this server; SIGTERM still stops it
        self._sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT and self._sigint_ignored:
            return
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._ready is not None and self.started:
            self._ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()
