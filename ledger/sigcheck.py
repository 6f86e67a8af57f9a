"""Checking the signatures of a batch's own statements off the main thread.

In a batch, the statements the ledger signed itself have their signature
checks deferred (decision 10). They are independent of the rest of the write,
so a helper process (``ledger.sigworker``) checks them while the batch goes on;
a batch too small to be worth the process checks them at commit on two
threads (libsodium releases the GIL). Either way the batch waits for every
result before it commits, a failure aborts the whole batch, and anything the
helper could not answer is checked here: the checks fail closed.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from verifier.replay import PendingSignature

from .sigworker import ITEM, U32  # the one definition of the frames

MIN_PER_THREAD = 64  # below this, a thread costs more than it saves
CHUNK = 32  # checks sent to the helper at a time
START_AT = 512  # a batch this big starts the helper (it costs ~0.2 s once per ledger)


def run_checks(checks: Sequence[PendingSignature]) -> None:
    """Raise the SignatureError of the first check (in order) that fails; else return.
    Runs on up to 4 threads."""
    workers = min(os.cpu_count() or 1, 4, max(1, len(checks) // MIN_PER_THREAD))
    results = [False] * len(checks)  # fail closed: a thread that dies proves nothing

    def work(start: int) -> None:
        for i in range(start, len(checks), workers):
            results[i] = checks[i].ok()

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(1, workers)]
    for t in threads:
        t.start()
    try:
        work(0)
    finally:
        for t in threads:
            t.join()
    for check, ok in zip(checks, results, strict=True):
        if not ok:
            check.check()  # run again here: raises with the statement named


# Run by the helper: put the directory this ledger package was imported from first on
# sys.path, then serve. With -I, Python puts neither the working directory nor PYTHONPATH
# on sys.path, so a ``ledger/`` in the working directory cannot stand in for the helper.
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from ledger.sigworker import main; " \
        "sys.exit(main())"


def helper_command() -> list[str]:
    """The helper's command line: isolated mode (-I: no working directory, PYTHON*
    variables or user site on the path), importing this very ledger package."""
    home = str(Path(__file__).resolve().parent.parent)
    return [sys.executable, "-I", "-c", _BOOT, home]


def helper_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The helper's whole environment: PATH and the locale, nothing else (no passphrase,
    no MODELSEAL_* setting, no credential the writer happens to hold)."""
    return {k: val for k, val in environ.items()
            if k in ("PATH", "LANG") or k.startswith("LC_")}


class HelperError(Exception):
    """The helper process failed; the caller checks the signatures itself."""


class CheckHelper:
    """One helper process per ledger, started on first need, for one batch at a time.

    ``send`` passes checks to it; ``results`` waits for its answers. After any
    error the helper is stopped and not used again by this ledger."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._failed = os.environ.get("MODELSEAL_SIGNATURE_HELPER", "1") == "0"
        self._frames: list[tuple[int, int]] = []  # (first check, count) awaiting answers
        self._answered: list[int] = []  # failed positions (absolute) answered so far
        self._done = 0  # frames answered
        self._buf = b""
        self._reaper: Callable[[], object] = lambda: None

    @property
    def usable(self) -> bool:
        return not self._failed

    @property
    def running(self) -> bool:
        return self._proc is not None

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(helper_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, bufsize=0, close_fds=True,
                                cwd="/", env=helper_env(os.environ))
        assert proc.stdin is not None and proc.stdout is not None
        for fd in (proc.stdin.fileno(), proc.stdout.fileno()):
            try:  # room for a whole batch, so that sending rarely waits
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
        os.set_blocking(proc.stdout.fileno(), False)
        # also ended if the ledger is dropped without close(), or at interpreter exit
        self._reaper = weakref.finalize(self, _reap, proc)
        return proc

    def send(self, checks: Sequence[PendingSignature], start: int) -> None:
        """Send ``checks`` (positions ``start``... of the batch's list) to the helper."""
        if self._failed:
            raise HelperError("the helper is not in use")
        try:
            if self._proc is None:
                self._proc = self._start()
            parts = [U32.pack(len(checks))]
            for c in checks:
                parts.append(ITEM.pack(c.key.public_key, c.sig, len(c.data)))
                parts.append(c.data)
            assert self._proc.stdin is not None
            self._proc.stdin.write(b"".join(parts))
            self._frames.append((start, len(checks)))
            self._read(block=False)
        except (OSError, ValueError, struct.error) as exc:
            self.stop()
            raise HelperError(str(exc)) from None

    def _read(self, block: bool) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while self._done < len(self._frames):
            if not self._parse():
                os.set_blocking(fd, block)
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    return
                if not data:
                    raise OSError("the helper ended")
                self._buf += data

    def _parse(self) -> bool:
        """Take one whole answer from the buffer, if there is one."""
        if len(self._buf) < 4:
            return False
        (n,) = U32.unpack_from(self._buf)
        if len(self._buf) < 4 + 4 * n:
            return False
        start, count = self._frames[self._done]
        for k in range(n):
            (pos,) = U32.unpack_from(self._buf, 4 + 4 * k)
            if pos >= count:
                raise OSError("the helper answered out of range")
            self._answered.append(start + pos)
        self._buf = self._buf[4 + 4 * n:]
        self._done += 1
        return True

    def results(self) -> tuple[int, list[int]]:
        """Wait for every answer: (how many checks were answered, failed positions).
        Resets for the next batch. HelperError if the helper failed."""
        try:
            if self._frames:
                self._read(block=True)
        except (OSError, ValueError, struct.error) as exc:
            self.stop()
            raise HelperError(str(exc)) from None
        answered = sum(n for _, n in self._frames)
        out = (answered, sorted(self._answered))
        self._frames, self._answered, self._done, self._buf = [], [], 0, b""
        return out

    def stop(self) -> None:
        """Stop the helper for good (after a failure, or when the ledger closes)."""
        self._proc = None
        self._failed = True
        self._frames, self._answered, self._done, self._buf = [], [], 0, b""
        self._reaper()  # runs at most once


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """End a helper: close its input (it exits at end of input), then wait for it."""
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class BatchChecks(list[PendingSignature]):
    """A batch's deferred checks. ``pump()`` after each write hands whole chunks to the
    helper (starting it once the batch is big); ``finish()`` before the commit raises
    the SignatureError of the first failing check, or returns when all pass."""

    def __init__(self, helper: CheckHelper | None) -> None:
        super().__init__()
        self._helper = helper
        self._sent = 0

    def pump(self) -> None:
        h = self._helper
        if h is None or not h.usable or len(self) - self._sent < CHUNK:
            return
        if not h.running and len(self) < START_AT:
            return
        try:
            while len(self) - self._sent >= CHUNK:
                h.send(self[self._sent:self._sent + CHUNK], self._sent)
                self._sent += CHUNK
        except HelperError:
            self._helper = None  # everything is checked here at finish

    def finish(self) -> None:
        answered, failed = 0, list[int]()
        h = self._helper
        if h is not None and self._sent:
            try:
                if len(self) > self._sent:
                    h.send(self[self._sent:], self._sent)
                answered, failed = h.results()
            except HelperError:
                answered, failed = 0, []
        for i in failed:
            self[i].check()  # run again here: raises with the statement named
        run_checks(self[answered:])  # what the helper did not answer

    def abandon(self) -> None:
        """The batch is discarded: collect (and drop) the helper's answers."""
        h = self._helper
        if h is not None and self._sent:
            try:
                h.results()
            except HelperError:
                pass
