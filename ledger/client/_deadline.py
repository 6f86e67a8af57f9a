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


class _Lookup:
    """One name lookup under way, shared by every caller that wants the same name."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: list[str] | OSError = OSError("no answer")


_LOOKUPS: dict[tuple[str, int], _Lookup] = {}
_LOOKUPS_LOCK = threading.Lock()


def _look_up(key: tuple[str, int], lookup: _Lookup) -> None:
    try:
        found = socket.getaddrinfo(key[0], key[1], type=socket.SOCK_STREAM)
        lookup.result = [str(addr[0]) for *_, addr in found]
    except OSError as exc:
        lookup.result = exc
    finally:
        with _LOOKUPS_LOCK:
            _LOOKUPS.pop(key, None)
        lookup.done.set()


def _addresses(host: str, port: int, timeout: float | None) -> list[str]:
    """The IP addresses of ``host``, looked up in a daemon thread waited for at most
    ``timeout`` seconds. A lookup still running then is left to end on its own, and
    callers that want the same name meanwhile wait for it rather than start another,
    so a name that hangs costs one thread, not one a call."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    key = (host, port)
    with _LOOKUPS_LOCK:
        lookup = _LOOKUPS.get(key)
        if lookup is None:
            lookup = _LOOKUPS[key] = _Lookup()
            threading.Thread(target=_look_up, args=(key, lookup), name="modelseal-resolve",
                             daemon=True).start()
    if not lookup.done.wait(timeout):
        raise httpcore.ConnectTimeout(f"looking up {host} took too long")
    got = lookup.result
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
    host = (parts.hostname or "").lower()
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if not url or _no_proxy(proxies.get("no", ""), host, port) \
            or urllib.request.proxy_bypass(host):
        return None
    return url if "://" in url else f"http://{url}"


def _no_proxy(entries: str, host: str, port: int | None) -> bool:
    """Whether NO_PROXY's comma-separated ``entries`` exclude ``host`` (lower case, IPv6
    without brackets) on ``port``: ``*``; a name, which also covers its subdomains (a
    leading dot is dropped); an IP address, bracketed for IPv6; a CIDR range; each with
    an optional ``:port``."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = \
            ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in entries.split(",")):
        if entry == "*":
            return True
        if entry.startswith("["):  # [v6] or [v6]:port
            name, _, rest = entry[1:].partition("]")
            wanted = rest[1:] if rest.startswith(":") else ""
        elif entry.count(":") == 1:  # name:port or v4:port (a bare v6 has more colons)
            name, wanted = entry.split(":")
        else:
            name, wanted = entry, ""
        if not name or (wanted and wanted != str(port)):
            continue
        if "/" in name:
            try:
                if address is not None and address in ipaddress.ip_network(name,
                                                                          strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def proxy_shown(proxy: str) -> str:
    """``proxy`` without its ``user:password@`` part (all before the last ``@``: a proxy's
    URL has no path), so its credentials never reach an error line, even unencoded."""
    scheme, sep, rest = proxy.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def _proxy_pool(proxy: str, ssl_context: ssl.SSLContext) -> httpcore.HTTPProxy:
    """An httpcore pool through the HTTP proxy ``proxy`` (CONNECT for https targets),
    on the deadline's backend. ValueError for a proxy that is not http:// or https://."""
    try:
        parts = urllib.parse.urlsplit(proxy)
        port = parts.port
    except ValueError:  # its text may quote the password: never shown
        raise ValueError(f"the proxy the environment names (HTTP_PROXY, HTTPS_PROXY or "
                         f"ALL_PROXY), {proxy_shown(proxy)}, is not a valid URL (in a user "
                         f"name or password, '/', '?', '#' and '@' must be percent-encoded)"
                         ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the proxy {parts.scheme}://{parts.hostname or ''} (from the "
                         "environment) is not an http:// or https:// proxy; only those "
                         "are supported")
    auth = None
    if parts.username is not None:  # Basic credentials, UTF-8 (RFC 7617)
        auth = (urllib.parse.unquote_to_bytes(parts.username),
                urllib.parse.unquote_to_bytes(parts.password or ""))
    return httpcore.HTTPProxy(
        proxy_url=httpcore.URL(scheme=parts.scheme, host=parts.hostname,
                               port=port, target="/"),
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
        self._proxied = proxy is not None
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
        host = url.raw_host
        if self._proxied and b":" in host:  # an IPv6 literal in the proxy's request line
            host = b"[" + host + b"]"
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=host, port=url.port,
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
