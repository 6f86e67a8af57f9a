"""Files the commands write (-o, --entry-out): checked first, written whole or not at all.

An output is written to a temporary file beside it, synced, then moved into place, so a
failure part way (a full disk, Ctrl-C) leaves the old file as it was and no partial one.
A path that is not a regular file (a device, a FIFO, a directory) is refused before
anything is read or written, and so is any path inside the store or naming a key file:
no option may replace the store's own files or a key.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from verifier.exitcodes import UsageProblem

_EXISTS_HINT = "choose another file, or pass --force to replace it"


def check_output(path: Path, *, force: bool, option: str,
                 protected_dirs: Sequence[Path] = (), protected_files: Sequence[Path] = ()
                 ) -> None:
    """Refuse ``path`` (a UsageProblem) unless it is a new file or, with ``force``, an
    existing regular file; and unless it is outside every ``protected_dirs`` (the store)
    and not the same file as any of ``protected_files`` (keys)."""
    what = _not_a_regular_file(path)
    if what is not None:
        raise UsageProblem(f"{option} {path} is {what}; it must name a regular file or a "
                           "new one")
    target = path.resolve()
    for directory in protected_dirs:
        try:
            inside = target.is_relative_to(directory.resolve())
        except OSError:
            inside = False
        if inside:
            raise UsageProblem(f"{option} {path} is inside the store {directory}; a command "
                               "never writes there", "write the file outside the store")
    for key in protected_files:
        if _same_file(path, key):
            raise UsageProblem(f"{option} {path} is the key file {key}; a key is never "
                               "overwritten", "choose another file")
    if path.exists() and not force:
        raise UsageProblem(f"{path} exists; it is not overwritten", _EXISTS_HINT)


def write_output(path: Path, fill: Callable[[BinaryIO], int], *, force: bool) -> int:
    """Write ``path`` through a synced temporary file beside it, which ``fill`` writes
    (returning how many bytes); return that count. Without ``force`` an existing ``path``
    is never replaced (a UsageProblem, also when it appeared meanwhile). Precondition:
    ``check_output``."""
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            written = fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        if force:
            os.replace(tmp, path)  # a symlink at path is replaced, never its target
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise UsageProblem(f"{path} exists; it is not overwritten",
                                   _EXISTS_HINT) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return written


def pieces_filler(pieces: Iterable[bytes]) -> Callable[[BinaryIO], int]:
    """A ``fill`` for ``write_output`` that writes ``pieces`` as they come."""
    def fill(fh: BinaryIO) -> int:
        written = 0
        for piece in pieces:
            fh.write(piece)
            written += len(piece)
        return written
    return fill


def _not_a_regular_file(path: Path) -> str | None:
    """What stands at ``path`` if it is there and not a regular file (symlinks followed)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"not usable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
