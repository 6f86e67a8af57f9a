"""The body of a tlog-witness ``add-checkpoint`` request, parsed strictly. Internal.

Layout (c2sp.org/tlog-witness): ``old <decimal>\\n``, zero to 63 base64 hashes one a
line, an empty line, then the checkpoint note, kept byte for byte. A proof given with
``old 0`` parses here: the witness refuses it with 422 (the spec's status), not 400.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier import MalformedInputError
from verifier.encoding import decode_hash, parse_decimal

MAX_PROOF_LINES = 63
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
    end = body.find(b"\n\n")
    if end < 0:
        raise MalformedInputError("the request has no empty line before its checkpoint")
    try:
        lines = body[:end].decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise MalformedInputError("the request's old size and proof lines are not ASCII") \
            from None
    if not lines[0].startswith("old "):
        raise MalformedInputError("the request must start with 'old <size>'")
    old = parse_decimal(lines[0][4:], "old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise MalformedInputError(f"the proof has more than {MAX_PROOF_LINES} lines")
    proof = tuple(decode_hash(line, f"proof line {i}") for i, line in enumerate(lines[1:], 1))
    return AddCheckpoint(old, proof, body[end + 2:])
