"""One HTTP exchange with retries: the same bytes again after a timeout, a broken
connection, ``503`` (after its Retry-After, capped) or another transient ``5xx``, with
exponential backoff and full jitter, bounded by a number of retries and a deadline."""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import httpx

from ._deadline import DeadlineTransport, environment_proxy, proxy_shown, within
from ._errors import ServerMisbehaviourError, ServerUnavailableError, error_from_answer

T = TypeVar("T")
BACKOFF_BASE = 0.2  # seconds before the first retry (at most; full jitter)
BACKOFF_CAP = 5.0
RETRY_AFTER_CAP = 30.0
MAX_ERROR_BODY = 1 << 16
MAX_DESCRIBED = 200  # characters of a transport error's text in a message
STREAM_PACE = 1 << 16  # a streamed body brings at least this much in each timeout window
_NOT_TRANSIENT = frozenset({501, 505, 507})  # retrying cannot change these answers

Sign = Callable[[str, str, Mapping[str, str], bytes], Mapping[str, str]]
"""(method, full URL, headers, body) -> headers to add: a protected read's signature,
made afresh for every attempt (a signature is good for one request)."""


@dataclass
class Answer:
    """A success answer (2xx): status, headers and the body read within its bound."""

    status: int
    headers: httpx.Headers
    body: bytes


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value[:12]), 10**9))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ssl.SSLError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


class Http:
    """A keep-alive connection pool to one server (thread-safe, as httpx.Client is).
    ``transport`` (None: the network, through DeadlineTransport, which holds each
    exchange to its deadline) is for tests; only DeadlineTransport's waits see the
    deadline."""

    def __init__(self, base_url: str, *, timeout: float, retries: int,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        proxy = environment_proxy(self.base_url) if transport is None else None
        if transport is None:
            transport = DeadlineTransport(proxy=proxy)  # a bad proxy URL: ValueError here
        # what failure messages name: the server, and the proxy when one stands between
        shown = _server_shown(self.base_url)
        self._where = shown if proxy is None else f"{shown} through the proxy {proxy_shown(proxy)}"
        self._client = httpx.Client(base_url=self.base_url, transport=transport,
                                    follow_redirects=False, timeout=timeout,
                                    headers={"User-Agent": "modelseal-client/1"})
        self.sleep: Callable[[float], None] = time.sleep  # tests replace it

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
             content: bytes | None = None, headers: Mapping[str, str] | None = None,
             sign: Sign | None = None, max_bytes: int = 1 << 20) -> Answer:
        """Send the request, retrying as the module says, within ``timeout`` seconds in
        all; a success answer (2xx) is read, at most ``max_bytes`` (more:
        ServerMisbehaviourError). An error answer raises the class it maps to (after
        retries, for the transient ones); no answer at all raises
        ServerUnavailableError."""
        return self._exchange(
            method, path, params, content, headers, sign, False,
            lambda resp, deadline: Answer(resp.status_code, resp.headers,
                                          _bounded(resp, max_bytes, deadline, path)))

    def stream(self, method: str, path: str, read: Callable[[httpx.Response], T], *,
               params: Mapping[str, str] | None = None, sign: Sign | None = None) -> T:
        """``call``, handing a success answer open to ``read`` (a transport error in it is
        retried: ``read`` must then start over). The timeout bounds the call until the
        answer's headers are in (connection, TLS and retries included); then ``read``
        reads the body through ``paced``, which bounds the pace, not the whole transfer.
        A transfer that breaks off after its body began gives its retry a fresh timeout."""
        return self._exchange(method, path, params, None, None, sign, True,
                              lambda resp, deadline: read(resp))

    def paced(self, resp: httpx.Response) -> Iterator[bytes]:
        """A streamed answer's body (in ``stream``'s ``read``): each ``timeout`` window
        must bring at least STREAM_PACE bytes as sent (before content decoding), or the
        rest of the body, else httpx.ReadTimeout (which ``stream`` retries). So a server
        that trickles a bundle cannot hold the transfer for ever; a body of any size at a
        fair rate is fine."""
        chunks = resp.iter_bytes()
        window_end = time.monotonic() + self.timeout
        mark = resp.num_bytes_downloaded  # counted on the wire, before any decoding
        while True:
            with within(window_end):
                chunk = next(chunks, None)
            if chunk is None:
                return
            if resp.num_bytes_downloaded - mark >= STREAM_PACE:
                mark = resp.num_bytes_downloaded
                window_end = time.monotonic() + self.timeout
            yield chunk

    def _exchange(self, method: str, path: str, params: Mapping[str, str] | None,
                  content: bytes | None, headers: Mapping[str, str] | None,
                  sign: Sign | None, per_read: bool,
                  read: Callable[[httpx.Response, float], T]) -> T:
        # one deadline for the whole call; in a stream, a transfer that broke off once its
        # body had begun gives the next attempt a fresh one (the body itself is paced)
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            reading = False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerUnavailableError(f"{self._where} did not answer {method} "
                                             f"{path} within {self.timeout:g} s")
            wait: float | None = None
            last: BaseException
            try:
                request = self._client.build_request(method, path, params=params,
                                                     content=content, headers=headers,
                                                     timeout=httpx.Timeout(remaining))
                if sign is not None:
                    request.headers.update(sign(method, str(request.url),
                                                dict(request.headers), content or b""))
                with within(deadline):
                    resp = self._client.send(request, stream=True)
                    try:
                        status = resp.status_code
                        if 200 <= status < 300:  # a transport error in read is retried
                            if not per_read:
                                return read(resp, deadline)
                            reading = True
                            with within(None):
                                return read(resp, deadline)
                        body = _bounded(resp, MAX_ERROR_BODY, deadline, path, strict=False)
                    finally:
                        resp.close()
                last = error_from_answer(status, body, self._where,
                                         read=method in ("GET", "HEAD"))
                if status < 500 or status in _NOT_TRANSIENT or attempt >= self.retries:
                    raise last
                if status == 503:
                    wait = retry_after(resp.headers.get("retry-after"))
                    if wait is not None and (wait > RETRY_AFTER_CAP
                                             or wait > deadline - time.monotonic()):
                        raise last  # it asks to wait longer than this call may
            except httpx.TransportError as exc:
                tls = _tls_failure(exc)
                if tls is not None:
                    raise ServerUnavailableError(
                        f"TLS with {self._where} failed: "
                        f"{getattr(tls, 'reason', None) or tls}") from None
                if not reading and isinstance(exc, httpx.TimeoutException) \
                        and time.monotonic() >= deadline:  # the call's time is spent
                    raise ServerUnavailableError(f"{self._where} did not answer {method} "
                                                 f"{path} within {self.timeout:g} s"
                                                 ) from None
                if attempt >= self.retries:
                    raise ServerUnavailableError(
                        f"cannot reach {self._where} ({_describe(exc)}) after "
                        f"{attempt + 1} attempt(s)") from None
                last = exc
            attempt += 1
            if reading:
                deadline = time.monotonic() + self.timeout
            if wait is None:
                wait = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))
            if wait >= deadline - time.monotonic():
                if isinstance(last, httpx.TransportError):
                    raise ServerUnavailableError(
                        f"cannot reach {self._where} ({_describe(last)}) within "
                        f"{self.timeout:g} s") from None
                raise last
            self.sleep(wait)


def _server_shown(base_url: str) -> str:
    """The server's URL without a ``user:password@`` part, for error lines."""
    try:
        url = httpx.URL(base_url)
        return str(url.copy_with(username=None, password=None)) if url.userinfo else base_url
    except (httpx.InvalidURL, ValueError, TypeError):
        return "the server (--server)"


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc) or "connection failed"
        return "connection refused" if "refused" in text.lower() else text
    text = str(exc)
    if len(text) > MAX_DESCRIBED:  # a hostile server's bytes do not fill the error line
        text = text[:MAX_DESCRIBED] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _bounded(resp: httpx.Response, limit: int, deadline: float, path: str,
             strict: bool = True) -> bytes:
    """The body, at most ``limit`` bytes (more: ServerMisbehaviourError, or cut when not
    ``strict``), read before ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > limit:
            if not strict:
                chunks.append(chunk[: limit - (size - len(chunk))])
                break
            raise ServerMisbehaviourError(f"the answer to {path} is larger than {limit} bytes")
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the answer took too long", request=resp.request)
    return b"".join(chunks)
