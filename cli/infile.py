"""Files and streams the commands read whole (a payload, a policy, a passphrase or witness
file): at most a stated size, so a huge or endless input (a runaway producer, a FIFO,
/dev/zero) is refused after that many bytes instead of being held in memory."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from verifier.cli import open_now

PAYLOAD_LIMIT = 1 << 20
"""Bytes a payload's JSON text may have: 16 times an entry (65,535 bytes at most), so room
for any layout of a payload that fits one."""

SMALL_FILE_LIMIT = 1 << 20
"""Bytes a policy, passphrase or witness file may have."""


def read_at_most(source: Path | BinaryIO, limit: int) -> bytes:
    """The bytes of ``source`` (a file's path, or a binary stream open for reading), reading
    no more than ``limit`` + 1 of them: a result longer than ``limit`` means that the input
    is larger, and it was not read further. A path is opened without waiting for a writer
    (a FIFO nobody writes reads as empty; a pipe whose writer runs is read to its end).
    OSError as opening or reading raise it. Precondition: ``limit`` >= 0."""
    if isinstance(source, Path):
        with open_now(source) as fh:
            return _read(fh, limit)
    return _read(source, limit)


def _read(fh: BinaryIO, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:  # a pipe or a FIFO gives what it has: read until the end or the limit
        chunk = fh.read(min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
