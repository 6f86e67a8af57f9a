"""Ed25519 signature checks on every core: a signature strategy for replay that checks later.

``DeferredSignatures`` is a ``SignatureCheck`` (verifier.state): replay calls it once per
statement; it answers True at once and queues (public key, signature, exact message)
triples, which a process pool checks in chunks while replay goes on. ``settle()`` waits for
every queued check and raises SignatureError for the earliest one (in log order) that does
not verify, so the verdict never depends on the order results arrive in. Nothing is OK until
``settle()`` has returned.

Fail closed: a worker that dies, a pool that breaks or a chunk not answered within
``timeout`` seconds raises ``IncompleteError`` (verification not done), never a verdict.
``jobs == 1`` checks inline (no process) with the same interface.

Workers are forked from a forkserver started with ``PYTHONSAFEPATH=1`` (so its ``-c``
start-up does not put the working directory on ``sys.path``); they preload only this
module, ignore SIGINT (Ctrl-C reaches the parent, which stops the pool) and hold no secret.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import signal
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .entry import parse_statement
from .errors import IncompleteError, MalformedInputError, SignatureError
from .keys import VerifierKey

__all__ = ["CHUNK", "CHUNK_BYTES", "DeferredSignatures", "SignatureStats", "default_jobs"]

CHUNK = 1024
"""Signatures per task sent to a worker."""
CHUNK_BYTES = 1 << 20
"""A task is sent once it reaches this many bytes packed, even with fewer signatures (so
what is in flight stays a few MB whatever the entries' size)."""
TIMEOUT = 120.0
"""Seconds to wait for one chunk's answer (a chunk takes well under a second)."""

Triple = tuple[bytes, bytes, bytes]


def default_jobs() -> int:
    """The CPUs this process may use (``os.process_cpu_count`` where it exists)."""
    count = getattr(os, "process_cpu_count", None)
    n = count() if count is not None else None
    if n is None and hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    return max(1, n or os.cpu_count() or 1)


@dataclass(frozen=True)
class SignatureStats:
    """How the signatures were checked: ``checked`` of them by ``jobs`` processes, using
    ``cpu_s`` CPU seconds in all (the checking processes' own time) over ``wall_s``."""

    checked: int
    jobs: int
    cpu_s: float
    wall_s: float

    @property
    def per_core_per_s(self) -> float:
        """Signatures checked per CPU second: the rate of one core."""
        return self.checked / self.cpu_s if self.cpu_s > 0 else 0.0

    def to_json(self) -> dict[str, float | int]:
        """A plain-JSON summary."""
        return {"checked": self.checked, "jobs": self.jobs, "cpu_s": round(self.cpu_s, 3),
                "wall_s": round(self.wall_s, 3),
                "per_core_per_s": round(self.per_core_per_s, 1)}


# -- the worker side ---------------------------------------------------------------------

_keys: dict[bytes, Ed25519PublicKey] = {}


def _init_worker() -> None:
    """Ctrl-C goes to the parent, which ends the pool: a worker never prints a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_triples(items: Iterable[Triple]) -> tuple[int, float]:
    """(index of the first triple whose signature does not verify, or -1; CPU seconds)."""
    t0 = time.process_time()
    for i, (public, sig, msg) in enumerate(items):
        key = _keys.get(public)
        if key is None:
            try:
                key = Ed25519PublicKey.from_public_bytes(public)
            except ValueError:
                return i, time.process_time() - t0
            if len(_keys) < 4096:
                _keys[public] = key
        try:
            key.verify(sig, msg)
        except InvalidSignature:
            return i, time.process_time() - t0
    return -1, time.process_time() - t0


def _answer_ok(first: object, cpu: object, count: int) -> bool:
    """Whether a worker's answer to a chunk of ``count`` checks is one ``_check_triples``
    gives: -1 or an index of the chunk (an int, not a bool), and a finite CPU time >= 0."""
    return type(first) is int and -1 <= first < count \
        and type(cpu) is float and 0.0 <= cpu < float("inf")


def _check_chunk(packed: bytes) -> tuple[int, float]:
    """``_check_triples`` over a chunk packed by ``_pack``: what a worker runs."""
    return _check_triples(_unpack(packed))


# -- a chunk's wire form -----------------------------------------------------------------
# A chunk travels to a worker as one bytes object (pickled as a single copy, not as a
# list of tuples): a 4-byte count of triples, then per triple a _RECORD header (the
# lengths of the public key, the signature and the message) and those three byte strings.

_COUNT = struct.Struct(">I")
_RECORD = struct.Struct(">HHI")


def _new_chunk() -> bytearray:
    """An empty chunk to fill with ``_pack_into`` and close with ``_seal``."""
    return bytearray(_COUNT.size)


def _pack_into(buf: bytearray, public: bytes, sig: bytes, msg: bytes) -> None:
    """Append one triple to the chunk ``buf``. ValueError if a part is too long for its
    header field (never so for Ed25519 keys, signatures and entry-sized messages)."""
    if len(public) > 0xFFFF or len(sig) > 0xFFFF or len(msg) > 0xFFFFFFFF:
        raise ValueError("a signature check's key, signature or message is too long")
    buf += _RECORD.pack(len(public), len(sig), len(msg))
    buf += public
    buf += sig
    buf += msg


def _seal(buf: bytearray, count: int) -> bytes:
    """The chunk's bytes, with ``count``, the number of triples packed into it."""
    _COUNT.pack_into(buf, 0, count)
    return bytes(buf)


def _unpack(packed: bytes) -> Iterator[Triple]:
    """The triples of a sealed chunk, in order. ValueError (no verdict, so the check fails
    closed) if the chunk is cut short, holds other than its count of triples, or has bytes
    after its last one."""
    if len(packed) < _COUNT.size:
        raise ValueError("a packed signature chunk has no count")
    (count,) = _COUNT.unpack_from(packed, 0)
    pos, end, size, seen = _COUNT.size, len(packed), _RECORD.size, 0
    while pos < end:
        if end - pos < size:
            raise ValueError("a packed signature chunk is cut short")
        a, b, c = _RECORD.unpack_from(packed, pos)
        pos += size
        if end - pos < a + b + c:
            raise ValueError("a packed signature chunk is cut short")
        seen += 1
        if seen > count:
            raise ValueError("a packed signature chunk holds more than its count")
        yield (packed[pos:pos + a], packed[pos + a:pos + a + b],
               packed[pos + a + b:pos + a + b + c])
        pos += a + b + c
    if seen != count:
        raise ValueError("a packed signature chunk holds fewer than its count")


def _message_at(packed: bytes, index: int) -> bytes:
    """The message of triple ``index`` of a packed chunk (precondition: it exists)."""
    for i, (_, _, msg) in enumerate(_unpack(packed)):
        if i == index:
            return msg
    raise ValueError(f"a packed chunk has no triple {index}")


# -- the parent side ---------------------------------------------------------------------


def _failure(msg: bytes) -> SignatureError:
    """The SignatureError replay raises inline for the statement ``msg``."""
    try:
        st = parse_statement(msg)
    except MalformedInputError:  # pragma: no cover - replay parsed these exact bytes
        return SignatureError("a statement's signature does not verify")
    return SignatureError(f"signature of {st.actor!r} on statement {st.id} does not verify")


class _SafePathEnv:
    """PYTHONSAFEPATH=1 in the environment while the forkserver starts, then as before."""

    def __enter__(self) -> None:
        self._old = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"

    def __exit__(self, *exc: object) -> None:
        if self._old is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = self._old


def _start_pool(jobs: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    ctx: multiprocessing.context.BaseContext
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        with _SafePathEnv():
            multiprocessing.forkserver.ensure_running()
    else:  # pragma: no cover - Windows: every worker is a fresh interpreter
        ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker)


@dataclass(frozen=True)
class _Chunk:
    """A task: ``count`` triples packed into ``packed``."""

    packed: bytes
    count: int


class DeferredSignatures:
    """A ``SignatureCheck`` that queues each check and runs them on ``jobs`` processes.

    Call it like ``check_signature``; it returns True (or raises the SignatureError of an
    earlier queued check already known to fail). ``settle()`` then raises the earliest
    failure, or returns the stats once every check verified. Use as a context manager (or
    call ``close``): the pool ends on leaving, at once on an exception (workers stopped).
    ``jobs == 1`` checks each signature inline, when it is called (so it raises the
    SignatureError at once), and only counts for the stats.
    """

    def __init__(self, jobs: int, *, chunk: int = CHUNK, timeout: float = TIMEOUT) -> None:
        """``jobs`` >= 1 processes; ``chunk`` signatures a task (or CHUNK_BYTES of
        messages); ``timeout`` seconds at most per answer awaited. The pool starts with the
        first task."""
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError("jobs is an int >= 1")
        if chunk < 1 or not timeout > 0:
            raise ValueError("chunk >= 1 and timeout > 0")
        self.jobs = jobs
        self._chunk, self._timeout = chunk, timeout
        self._buf = _new_chunk()  # the chunk being filled (see _pack_into)
        self._count = 0  # triples in it
        self._inflight: deque[tuple[Future[tuple[int, float]], _Chunk]] = deque()
        self._pool: ProcessPoolExecutor | None = None
        self._failed: SignatureError | None = None
        self._checked = 0
        self._cpu = 0.0
        self._t0 = time.perf_counter()

    def __call__(self, key: VerifierKey, signature: bytes, message: bytes) -> bool:
        if self._failed is not None:
            raise self._failed
        if self.jobs == 1:
            first, cpu = _check_triples([(key.public_key, bytes(signature), bytes(message))])
            self._record(first, cpu, 1, lambda _: bytes(message))
        else:
            _pack_into(self._buf, key.public_key, signature, message)
            self._count += 1
            if self._count >= self._chunk or len(self._buf) >= CHUNK_BYTES:
                self._submit()
        if self._failed is not None:
            raise self._failed
        return True

    def _take(self) -> _Chunk:
        chunk = _Chunk(_seal(self._buf, self._count), self._count)
        self._buf, self._count = _new_chunk(), 0
        return chunk

    def _record(self, first: int, cpu: float, count: int,
                message: Callable[[int], bytes]) -> None:
        """Count the answer for ``count`` triples; ``message(i)`` gives the i-th message."""
        self._cpu += cpu
        if first < 0:
            self._checked += count
        else:
            self._checked += first + 1
            self._failed = _failure(message(first))

    def _record_chunk(self, first: int, cpu: float, chunk: _Chunk) -> None:
        self._record(first, cpu, chunk.count, lambda i: _message_at(chunk.packed, i))

    def _submit(self) -> None:
        if self._pool is None:
            self._pool = _start_pool(self.jobs)
        chunk = self._take()
        try:
            self._inflight.append((self._pool.submit(_check_chunk, chunk.packed), chunk))
        except (BrokenProcessPool, RuntimeError) as exc:
            raise IncompleteError(f"the signature check pool failed ({exc}): verification "
                                  f"was not completed") from None
        while len(self._inflight) > 2 * self.jobs and self._failed is None:
            self._collect_oldest()

    def _collect_oldest(self) -> None:
        future, chunk = self._inflight.popleft()
        try:
            first, cpu = future.result(timeout=self._timeout)
        except FutureTimeout:
            raise IncompleteError(
                f"a signature check worker gave no answer within {self._timeout:g} s: "
                f"verification was not completed") from None
        except BrokenProcessPool as exc:
            raise IncompleteError(
                f"a signature check worker process ended abruptly ({exc}): verification "
                f"was not completed") from None
        except Exception as exc:  # the task raised (e.g. a chunk it could not unpack)
            raise IncompleteError(f"a signature check worker refused its task ({exc}): "
                                  f"verification was not completed") from None
        if not _answer_ok(first, cpu, chunk.count):
            raise IncompleteError(f"a signature check worker gave an answer that is not one "
                                  f"({first!r}, {cpu!r}): verification was not completed")
        self._record_chunk(first, cpu, chunk)

    def settle(self) -> SignatureStats:
        """Wait (bounded) for every queued check; raise SignatureError for the earliest that
        fails, IncompleteError if the pool failed; else the stats."""
        while self._inflight and self._failed is None:
            self._collect_oldest()
        if self._failed is None and self._count:
            chunk = self._take()
            self._record_chunk(*_check_chunk(chunk.packed), chunk)
        if self._failed is not None:
            raise self._failed
        jobs = self.jobs if self._pool is not None else 1
        return SignatureStats(self._checked, jobs, self._cpu, time.perf_counter() - self._t0)

    def close(self, abort: bool = False) -> None:
        """End the pool: ``abort`` stops the workers at once (after an error or Ctrl-C);
        otherwise they finish their current chunk. Idempotent."""
        pool, self._pool = self._pool, None
        self._inflight.clear()
        if pool is None:
            return
        if abort:
            # the executor's own map of its workers (no public way to stop them at once)
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                if proc.is_alive():
                    proc.terminate()
        # Waiting is bounded: the workers are gone or finish the one task they hold. It also
        # lets the executor's thread close its pipes, so nothing is left for the
        # interpreter's exit to write to (which would print an error after Ctrl-C).
        pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DeferredSignatures:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(abort=exc_type is not None)
