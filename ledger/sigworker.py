"""The signature-check helper process, run as ``python -m ledger.sigworker``.

It reads frames from stdin and answers each on stdout, until stdin ends:

- a frame: u32 count, then ``count`` items of 32-byte Ed25519 public key,
  64-byte signature, u32 length and that many message bytes;
- its answer: u32 count of failures, then the position (u32) of each item in
  the frame whose signature does not verify (libsodium, see ``sodium``).

All integers are big-endian. Malformed input ends the process (exit 1); the
ledger then checks everything itself.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

from .sodium import sodium_verify

ITEM = struct.Struct(">32s64sI")  # public key, signature, message length
U32 = struct.Struct(">I")
MAX_MESSAGE = 1 << 17


def _read(inp: BinaryIO, n: int) -> bytes:
    data = inp.read(n)
    if len(data) != n:
        raise EOFError("input ended inside a frame")
    return data


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer frames until ``inp`` ends cleanly between frames."""
    while head := inp.read(4):
        if len(head) != 4:
            raise EOFError("input ended inside a frame header")
        (count,) = U32.unpack(head)
        bad = []
        for i in range(count):
            key, sig, size = ITEM.unpack(_read(inp, ITEM.size))
            if size > MAX_MESSAGE:
                raise ValueError(f"message of {size} bytes")
            if not sodium_verify(key, sig, _read(inp, size)):
                bad.append(i)
        out.write(U32.pack(len(bad)) + b"".join(U32.pack(i) for i in bad))
        out.flush()


def main() -> int:
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (EOFError, ValueError, struct.error, BrokenPipeError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
