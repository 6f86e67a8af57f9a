"""The checkpoint a client keeps (specs/api.md §4): in memory, or in a state file shared
by processes.

The file is JSON ``{"origin", "size", "root" (base64), "checkpoint" (the note)}``, mode
0600, replaced atomically (temporary file, fsync, rename, fsync of the directory) under
an ``fcntl`` lock on a ``.lock`` file beside it, so processes sharing it never lose an
update. Its note must be signed by the pinned log key and agree with the other members."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from verifier import Checkpoint, VerifierError, VerifierKey
from verifier.encoding import b64encode

from ._errors import StateFileError

MAX_STATE_FILE = 1 << 16
_POLL = 0.02


@dataclass(frozen=True)
class Kept:
    """A verified checkpoint: its origin, size, root and exact note."""

    origin: str
    size: int
    root: bytes
    note: bytes

    @classmethod
    def of(cls, cp: Checkpoint) -> Kept:
        """The kept form of a verified checkpoint."""
        return cls(cp.origin, cp.size, cp.root, cp.note)


def format_state(kept: Kept) -> bytes:
    """The state file's bytes for ``kept``."""
    doc = {"origin": kept.origin, "size": kept.size, "root": b64encode(kept.root),
           "checkpoint": kept.note.decode("utf-8")}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


def parse_state(data: bytes, key: VerifierKey, where: str = "state file") -> Kept:
    """The checkpoint a state file keeps. Any bytes: raises only StateFileError (a note
    not signed by ``key`` included)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_STATE_FILE:
        raise StateFileError(f"{where} is not a modelseal client state file (too large)")
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise StateFileError(f"{where} is not JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"origin", "size", "root", "checkpoint"}:
        raise StateFileError(f"{where} must hold exactly origin, size, root and checkpoint")
    origin, size, root, note = (doc[k] for k in ("origin", "size", "root", "checkpoint"))
    if not (isinstance(origin, str) and isinstance(size, int) and not isinstance(size, bool)
            and isinstance(root, str) and isinstance(note, str)):
        raise StateFileError(f"{where} has a member of the wrong type")
    try:
        raw = note.encode("utf-8")
        cp = Checkpoint.parse_note(raw, [key])
    except (VerifierError, ValueError, TypeError, UnicodeError) as exc:
        raise StateFileError(f"{where} does not hold a checkpoint signed by the log key "
                             f"{key.name}: {exc}") from None
    if (cp.origin, cp.size, b64encode(cp.root)) != (origin, size, root):
        raise StateFileError(f"{where}: origin, size or root differ from its checkpoint's")
    return Kept(cp.origin, cp.size, cp.root, raw)


Update = Callable[[Kept | None], Kept | None]
"""Given the kept checkpoint (None: none yet), the one to keep now (None: unchanged)."""


class MemoryState:
    """The kept checkpoint in memory: one per Client without a state file."""

    def __init__(self) -> None:
        self._kept: Kept | None = None
        self._lock = threading.Lock()

    def get(self) -> Kept | None:
        """The kept checkpoint."""
        return self._kept

    def update(self, fn: Update, timeout: float) -> Kept | None:
        """Run ``fn`` on the kept checkpoint and keep its answer; returns the kept one.
        Serialized; waits at most ``timeout`` seconds for another update. If ``fn``
        raises, the state is unchanged."""
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            raise TimeoutError("the client's kept checkpoint stayed busy")
        try:
            new = fn(self._kept)
            if new is not None:
                self._kept = new
            return self._kept
        finally:
            self._lock.release()


class FileState(MemoryState):
    """The kept checkpoint in a state file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], key: VerifierKey) -> None:
        super().__init__()
        self.path = Path(path)
        self._key = key
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def get(self) -> Kept | None:
        """The checkpoint the file keeps now (None if there is no file yet)."""
        return self._read()

    def _read(self) -> Kept | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateFileError(f"cannot read state file {self.path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_STATE_FILE + 1)
        return parse_state(data, self._key, f"state file {self.path}")

    @contextmanager
    def _flock(self, timeout: float) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + max(timeout, 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"state file {self.path} stayed locked by another "
                                           f"process") from None
                    time.sleep(_POLL)
            yield
        finally:
            os.close(fd)  # releases the lock

    def update(self, fn: Update, timeout: float) -> Kept | None:
        """Under the thread lock and the file lock: read the file, run ``fn``, and
        replace the file atomically if ``fn`` gives a new checkpoint."""
        start = time.monotonic()
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            raise TimeoutError("the client's kept checkpoint stayed busy")
        try:
            with self._flock(timeout - (time.monotonic() - start)):
                kept = self._read()
                new = fn(kept)
                if new is None:
                    return kept
                self._write(new)
                return new
        finally:
            self._lock.release()

    def _write(self, kept: Kept) -> None:
        data = format_state(kept)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:  # mkstemp makes it 0600
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
