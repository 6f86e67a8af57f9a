"""The log server's witnesses (specs/api.md §7): in the background, it sends the log's
latest checkpoint to each configured witness (C2SP tlog-witness ``add-checkpoint``) and
stores the cosignatures they answer. Internal to the server.

One task per witness, so that a slow or absent witness delays only itself; writes never
wait for a witness. A witness is sent a checkpoint only when the log grew past the size
it last cosigned, at most once per ``interval`` seconds, each request within
``timeout`` seconds. The witness's size is learnt from its answers: a 409 names it, and
the request is sent again once, with the proof from that size. Failures are logged and
retried later, waiting longer each time (up to MAX_BACKOFF seconds).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
from anyio import to_thread

from verifier import (
    WITNESS_DELAY,
    MalformedInputError,
    VerifierError,
    WitnessKey,
    verify_cosignatures,
)

from ..errors import ArgumentError, LedgerError
from ..ledger import Ledger

log = logging.getLogger("modelseal.server.witnesses")
T = TypeVar("T")

MAX_ANSWER = 16 * 1024  # bytes of a witness's answer read at most
MAX_BACKOFF = 60.0  # seconds between attempts, at most, after failures
SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log sends its checkpoints to: its submission prefix ``url``
    (``http(s)://host[:port][/path]``, no trailing slash) and its pinned key."""

    url: str
    key: WitnessKey

    @classmethod
    def parse(cls, text: str) -> WitnessEndpoint:
        """``URL=VKEY`` (the witness's URL, then its cosignature/v1 verifier key, as
        ``modelseal witness keygen`` printed it). ValueError for anything else."""
        if not isinstance(text, str):
            raise TypeError("a witness is given as text: URL=VKEY")
        url, sep, vkey = text.strip().partition("=")
        if not sep:
            raise ValueError(f"a witness is URL=VKEY, not {text[:80]!r}")
        try:
            key = WitnessKey.parse(vkey)
        except MalformedInputError as exc:
            raise ValueError(f"the witness key {vkey[:80]!r} is not a witness verifier key "
                             f"(name+hex8+base64 of type 0x04): {exc}") from None
        return cls(check_witness_url(url), key)


def check_witness_url(url: str) -> str:
    """An http(s) URL with a host, an optional path and no query, without its trailing
    slash; ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or "@" in parts.netloc or not url.isascii() or " " in url:
        raise ValueError(f"a witness URL is http(s)://host[:port][/path], not {url[:80]!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"the witness URL {url[:80]!r} has a bad port") from None
    return url.rstrip("/")


def read_witness_file(text: str) -> list[WitnessEndpoint]:
    """The witnesses of a file: one ``URL=VKEY`` a line; empty lines and lines starting
    with ``#`` are skipped. ValueError naming the line otherwise."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(WitnessEndpoint.parse(line))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return found


class _Failed(Exception):
    """One attempt failed; it is logged and retried later."""


class Distributor:
    """Sends ``ledger``'s latest checkpoint to ``witnesses`` while ``run`` runs."""

    def __init__(self, ledger: Ledger, witnesses: Sequence[WitnessEndpoint], *,
                 interval: float = 1.0, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not interval > 0 or not timeout > 0:
            raise ValueError("interval and timeout are positive numbers of seconds")
        if timeout > WITNESS_DELAY:
            # the verifier's back-dating rule trusts that a witness answers within
            # WITNESS_DELAY of the log reading the checkpoint it sends (specs/checkpoint.md)
            raise ValueError(f"a witness request's timeout is at most {WITNESS_DELAY} s")
        keys = [w.key.public_key for w in witnesses]
        if len(set(keys)) != len(keys):
            raise ValueError("each witness key is given once")
        self.ledger, self.witnesses = ledger, tuple(witnesses)
        self.interval, self.timeout = interval, timeout
        self._transport = transport
        self._wake: list[anyio.Event] = []
        self._limiter = anyio.CapacityLimiter(2)  # store calls of the witnesses, at once
        self.cosigned: dict[str, int] = {}  # witness URL -> the largest size it cosigned

    def poke(self) -> None:
        """Tell the tasks that the log may have grown (call on the event loop)."""
        for event in self._wake:
            event.set()

    async def run(self) -> None:
        """One task per witness, until cancelled."""
        if not self.witnesses:
            return
        async with httpx.AsyncClient(transport=self._transport, timeout=self.timeout,
                                     follow_redirects=False) as http:
            async with anyio.create_task_group() as tg:
                for witness in self.witnesses:
                    tg.start_soon(self._serve_one, http, witness)

    async def _store(self, fn: Callable[..., T], *args: Any) -> T:
        return await to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def _serve_one(self, http: httpx.AsyncClient, witness: WitnessEndpoint) -> None:
        known: int | None = None  # the witness's size, once an answer told it
        failures = 0
        while True:
            size = await self._store(lambda: self.ledger.size)
            if known is None or size > known:
                started = anyio.current_time()
                try:
                    known = await self._add(http, witness, known or 0)
                    failures = 0
                except _Failed as exc:
                    failures += 1
                    log.warning("witness %s: %s", witness.url, exc)
                wait = self.interval if not failures else \
                    min(MAX_BACKOFF, self.interval * 2 ** min(failures, 10))
                await anyio.sleep(max(0.0, started + wait - anyio.current_time()))
                if failures:
                    continue
            event = anyio.Event()
            self._wake.append(event)
            try:
                with anyio.move_on_after(self.interval):
                    await event.wait()
            finally:
                self._wake.remove(event)

    async def _add(self, http: httpx.AsyncClient, witness: WitnessEndpoint, old: int) -> int:
        """Send the latest checkpoint with a proof from ``old``; on a 409, once more
        from the size the witness names. Returns the size the witness now holds."""
        for attempt in (1, 2):
            try:
                proof = await self._store(self.ledger.prove_consistency, old)
            except ArgumentError:
                raise _Failed(f"it cosigned size {old}, beyond this log's size: the log was "
                              f"rolled back (restored?) or forked since") from None
            status, answer, ctype = await self._post(http, witness, proof.to_text())
            if status == 200:
                await self._keep(witness, proof.checkpoint, answer, proof.new_size)
                return proof.new_size
            if status == 409 and attempt == 1 and ctype == SIZE_TYPE:
                old = _size(answer)
                continue
            text = _printable(answer[:200].decode("utf-8", "replace").strip())
            raise _Failed(f"answered {status} to size {proof.new_size} from {old}: {text}")
        raise AssertionError("unreachable")

    async def _post(self, http: httpx.AsyncClient, witness: WitnessEndpoint, body: bytes
                    ) -> tuple[int, bytes, str]:
        try:
            with anyio.fail_after(self.timeout):
                async with http.stream("POST", witness.url + "/add-checkpoint", content=body,
                                       headers={"Content-Type": "text/plain"}) as r:
                    chunks, got = [], 0
                    async for chunk in r.aiter_bytes():
                        got += len(chunk)
                        if got > MAX_ANSWER:
                            raise _Failed(f"its answer is over {MAX_ANSWER} bytes")
                        chunks.append(chunk)
                    ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
                    return r.status_code, b"".join(chunks), ctype
        except TimeoutError:
            raise _Failed(f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise _Failed(f"cannot reach it: {type(exc).__name__}: {exc}") from None

    async def _keep(self, witness: WitnessEndpoint, note: bytes, lines: bytes,
                    size: int) -> None:
        try:
            if not verify_cosignatures(note + lines, [witness.key]):
                raise _Failed(f"its answer to size {size} holds no cosignature by its key")
            await self._store(self.ledger.add_cosignatures, note + lines, [witness.key])
        except (VerifierError, LedgerError, ValueError) as exc:
            raise _Failed(f"its answer to size {size} was not kept: {exc}") from None
        self.cosigned[witness.url] = max(size, self.cosigned.get(witness.url, 0))


def _printable(text: str) -> str:
    """``text`` on one line for the log: each character that is not printable (a newline,
    an escape sequence) shown as its code, so an answer cannot forge log lines."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256
                   else f"\\u{ord(ch):04x}" for ch in text)


def _size(answer: bytes) -> int:
    text = answer.decode("ascii", "replace")
    if not text.endswith("\n") or not text[:-1].isdigit() or len(text) > 21 \
            or (len(text) > 2 and text[0] == "0"):
        raise _Failed(f"its 409 answer is not a size: {text[:40]!r}")
    return int(text[:-1])
