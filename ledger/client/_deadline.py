"""A whole-exchange deadline under httpx: the transport ``Http`` uses for the network.

httpx applies a timeout to each socket wait, so a server that sends one byte just before
each wait ends keeps a request open for ever. Here every wait of a connection (connect,
TLS handshake, each read and write) is cut to the time left before the deadline that
``within`` holds for the calling thread (a ContextVar: each thread and context has its
own), and a wait that starts after it has passed fails at once with a timeout; httpx then
raises ``httpx.ConnectTimeout``/``ReadTimeout``/``WriteTimeout`` as for any timeout.
Without a deadline held, a wait keeps the timeout httpx gives it. The name lookup runs in
a thread of its own so that it too ends (for the caller) by the deadline, and each address
it gives is tried within the time left, not a full timeout each.
"""

from __future__ import annotations

import contextlib
import ipaddress
import queue
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

_DEADLINE: ContextVar[float | None] = ContextVar("modelseal_http_deadline", default=None)
_WRITE_PIECE = 1 << 14  # a write is sent in pieces so the deadline is checked between them
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20,
                       keepalive_expiry=5.0)  # httpx.Client's defaults


@contextlib.contextmanager
def within(deadline: float | None) -> Iterator[None]:
    """Hold ``deadline`` (a ``time.monotonic()`` value; None: none) for the waits of
    connections this thread makes inside the block."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _cap(timeout: float | None, late: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` cut to the time left before the deadline held; ``late`` raised when
    none is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise late("the exchange's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every wait ends by the deadline held (see the module)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _WRITE_PIECE):
            self._inner.write(buffer[start:start + _WRITE_PIECE],
                              _cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        # The handshake is one socket operation in CPython's ssl module: its timeout
        # bounds the whole handshake, not each wait in it.
        return _Stream(self._inner.start_tls(ssl_context, server_hostname,
                                             _cap(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _addresses(host: str, port: int, timeout: float | None) -> list[str]:
    """The IP addresses of ``host``, looked up in a daemon thread waited for at most
    ``timeout`` seconds (a lookup still running then is left to end on its own)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    answer: queue.Queue[list[str] | OSError] = queue.Queue(1)

    def look_up() -> None:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            answer.put([str(addr[0]) for *_, addr in found])
        except OSError as exc:
            answer.put(exc)

    threading.Thread(target=look_up, name="modelseal-resolve", daemon=True).start()
    try:
        got = answer.get(timeout=timeout)
    except queue.Empty:
        raise httpcore.ConnectTimeout(f"looking up {host} took too long") from None
    if isinstance(got, OSError):
        raise httpcore.ConnectError(str(got)) from got
    return got


class _Backend(httpcore.NetworkBackend):
    """httpcore's blocking backend, its connections wrapped in ``_Stream``; a name is
    looked up here (bounded) and its addresses tried in turn, each within the time
    left."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        found = _addresses(host, port, _cap(timeout, httpcore.ConnectTimeout))
        last: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in dict.fromkeys(found):
            wait = _cap(timeout, httpcore.ConnectTimeout)
            try:
                return _Stream(self._inner.connect_tcp(address, port, wait, local_address,
                                                       socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        if last is None:
            raise httpcore.ConnectError(f"{host} has no address")
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(
            path, _cap(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpcore's errors as httpx's, most specific first (httpx names them alike).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            with _as_httpx():
                close()


def environment_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, with ``NO_PROXY`` honoured, as urllib reads them), or None: connect
    directly."""
    parts = urllib.parse.urlsplit(base_url)
    proxies = urllib.request.getproxies()
    url = proxies.get(parts.scheme) or proxies.get("all")
    if not url or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return url if "://" in url else f"http://{url}"


def _proxy_pool(proxy: str, ssl_context: ssl.SSLContext) -> httpcore.HTTPProxy:
    """An httpcore pool through the HTTP proxy ``proxy`` (CONNECT for https targets),
    on the deadline's backend. ValueError for a proxy that is not http:// or https://."""
    parts = urllib.parse.urlsplit(proxy)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the proxy {parts.scheme}://{parts.hostname or ''} (from the "
                         "environment) is not an http:// or https:// proxy; only those "
                         "are supported")
    auth = None
    if parts.username is not None:
        auth = (urllib.parse.unquote(parts.username),
                urllib.parse.unquote(parts.password or ""))
    return httpcore.HTTPProxy(
        proxy_url=httpcore.URL(scheme=parts.scheme, host=parts.hostname,
                               port=parts.port, target="/"),
        proxy_auth=auth, ssl_context=ssl_context,
        max_connections=_LIMITS.max_connections,
        max_keepalive_connections=_LIMITS.max_keepalive_connections,
        keepalive_expiry=_LIMITS.keepalive_expiry,
        http1=True, http2=False, retries=0, network_backend=_Backend())


class DeadlineTransport(httpx.BaseTransport):
    """httpx's default transport (HTTP/1.1, TLS verified against the system's or
    ``SSL_CERT_FILE``'s roots, httpx's pool limits, no retries of its own), its
    connections bounded by the deadline ``within`` holds; through the HTTP ``proxy``
    if given (see ``environment_proxy``), else directly. Thread-safe, as httpcore's
    pool is."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None,
                 proxy: str | None = None) -> None:
        context = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        self._pool: httpcore.ConnectionPool = (
            _proxy_pool(proxy, context) if proxy is not None else httpcore.ConnectionPool(
                ssl_context=context,
                max_connections=_LIMITS.max_connections,
                max_keepalive_connections=_LIMITS.max_keepalive_connections,
                keepalive_expiry=_LIMITS.keepalive_expiry,
                http1=True, http2=False, retries=0, network_backend=_Backend()))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("DeadlineTransport sends a synchronous request body only")
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream,
            extensions=request.extensions)
        with _as_httpx():
            resp = self._pool.handle_request(core)
        if not isinstance(resp.stream, Iterable):
            raise TypeError("httpcore gave an asynchronous body")  # never, with this pool
        return httpx.Response(status_code=resp.status, headers=resp.headers,
                              stream=_Body(resp.stream), extensions=resp.extensions)

    def close(self) -> None:
        self._pool.close()
