"""The body of a tlog-witness ``add-checkpoint`` request, parsed strictly. Internal.

Layout (c2sp.org/tlog-witness, specs/bundle.md §6): ``old <decimal>\\n``, zero to 63
base64 hashes one a line, an empty line, then the checkpoint note, kept byte for byte. A
proof given with ``old 0`` parses here: the witness refuses it with 422 (the spec's
status), not 400.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier import MalformedInputError, parse_add_checkpoint

MAX_BODY = 64 * 1024  # bytes: 63 hashes and a checkpoint with its signatures fit many times


@dataclass(frozen=True)
class AddCheckpoint:
    """An add-checkpoint request: the old size, the proof hashes, the note's exact bytes."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def parse_request(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint body. MalformedInputError for anything but the layout above
    (over MAX_BODY bytes, a head that is not ASCII, no empty line, a bad ``old`` line or
    hash, more than 63 hashes). The note is not parsed here."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"a request body is bytes, not {type(body).__name__}")
    body = bytes(body)
    if len(body) > MAX_BODY:
        raise MalformedInputError(f"the request body is over {MAX_BODY} bytes")
    if body.startswith(b"old 0\n") and not body.startswith(b"old 0\n\n"):
        # proof lines after "old 0": well formed if they are with any other old size
        parsed = parse_add_checkpoint(b"old 1\n" + body[6:])
        return AddCheckpoint(0, parsed.hashes, parsed.checkpoint)
    parsed = parse_add_checkpoint(body)
    return AddCheckpoint(parsed.old_size, parsed.hashes, parsed.checkpoint)
