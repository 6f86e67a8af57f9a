"""The compact bundle encoding's framing (specs/bundle.md §7): write it, and read it as a
stream with bounded memory.

A compact file is ``MAGIC``, one codec byte, then the body compressed with that codec
(standard library only). The body is a 4-byte big-endian header length, the header (a
bundle document without its ``entries``, JSON), then each entry as a 2-byte big-endian
length and its exact bytes, and nothing after the last. This module knows only the framing:
verifier/bundle.py decodes the header and checks everything else.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol

from .errors import MalformedInputError

__all__ = ["CODECS", "MAGIC", "CompactReader", "compact_chunks", "is_compact"]

MAGIC = b"\x89MSB\r\n\x1a\n"
"""The first 8 bytes of a compact bundle (never the start of a JSON text)."""
CODECS = {"none": 0, "zlib": 1, "xz": 2, "bz2": 3}
"""Codec name -> its byte after the magic."""
MAX_HEADER = 1 << 20
MAX_RECORD = 65_535  # verifier.entry.MAX_ENTRY_SIZE
_READ = 1 << 16  # compressed bytes read at a time
_OUT = 1 << 18  # decompressed bytes produced at a time, at most


def is_compact(prefix: bytes) -> bool:
    """Whether ``prefix`` (a file's first bytes, at least 8) starts a compact bundle."""
    return bytes(prefix[:len(MAGIC)]) == MAGIC


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes, /) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _compressor(codec: str) -> _Compressor:
    if codec == "xz":
        return lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                                   preset=6)
    if codec == "zlib":
        return zlib.compressobj(9)
    if codec == "bz2":
        return bz2.BZ2Compressor(9)
    if codec == "none":
        return _Identity()
    raise ValueError(f"unknown codec {codec!r}; one of {', '.join(CODECS)}")


def compact_chunks(header: bytes, entries: Iterable[bytes], codec: str = "zlib"
                   ) -> Iterator[bytes]:
    """A compact bundle's bytes in pieces, taking the entries one at a time.

    Preconditions: ``header`` is the bundle document without ``entries`` (JSON) and at
    most MAX_HEADER bytes; each entry is 1..65,535 bytes (ValueError otherwise).
    """
    if not 0 < len(header) <= MAX_HEADER:
        raise ValueError(f"a compact bundle's header is 1..{MAX_HEADER} bytes")
    comp = _compressor(codec)
    yield MAGIC + bytes([CODECS[codec]])
    pending = [struct.pack(">I", len(header)), header]
    size = 0
    for data in entries:
        if not 0 < len(data) <= MAX_RECORD:
            raise ValueError(f"an entry is 1..{MAX_RECORD} bytes, not {len(data)}")
        pending.append(struct.pack(">H", len(data)))
        pending.append(bytes(data))
        size += len(data) + 2
        if size >= _OUT:
            out = comp.compress(b"".join(pending))
            pending, size = [], 0
            if out:
                yield out
    out = comp.compress(b"".join(pending)) + comp.flush()
    if out:
        yield out


class _Inflater:
    """One codec's streaming decompressor, with output bounded per call."""

    def __init__(self, codec: int) -> None:
        self.codec = codec
        self._zlib = zlib.decompressobj() if codec == 1 else None
        self._lzma = lzma.LZMADecompressor(format=lzma.FORMAT_XZ) if codec == 2 else None
        self._bz2 = bz2.BZ2Decompressor() if codec == 3 else None
        self._tail = b""  # zlib's input not yet consumed

    def needs_input(self) -> bool:
        if self._zlib is not None:
            return not self._tail
        if self._lzma is not None:
            return self._lzma.needs_input
        if self._bz2 is not None:
            return self._bz2.needs_input
        return True

    def eof(self) -> bool:
        if self._zlib is not None:
            return self._zlib.eof
        if self._lzma is not None:
            return self._lzma.eof
        if self._bz2 is not None:
            return self._bz2.eof
        return False  # the identity has no end of its own: the file's end is its end

    def unused(self) -> bytes:
        """Input after the end of the compressed stream."""
        if self._zlib is not None:
            return self._zlib.unused_data
        if self._lzma is not None:
            return self._lzma.unused_data
        if self._bz2 is not None:
            return self._bz2.unused_data
        return b""

    def feed(self, data: bytes) -> bytes:
        """Decompress ``data`` (b"" to go on with input already given): at most _OUT bytes."""
        try:
            if self._zlib is not None:
                out = self._zlib.decompress(self._tail + data, _OUT)
                self._tail = self._zlib.unconsumed_tail
                return out
            if self._lzma is not None:
                return self._lzma.decompress(data, _OUT)
            if self._bz2 is not None:
                return self._bz2.decompress(data, _OUT)
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
            raise MalformedInputError(f"compact bundle: the compressed data is damaged "
                                      f"({exc})") from None
        return data


class CompactReader:
    """Reads a compact bundle from a binary file as it goes: ``header`` (the JSON bytes, read
    on construction), then ``entries(n)``, which yields exactly ``n`` entries and checks
    that nothing follows. Holds at most a few hundred KB at a time.

    MalformedInputError for anything but a well-formed stream: another magic, an unknown
    codec, damaged compressed data, a length out of range, an early end or trailing bytes.
    """

    def __init__(self, fh: BinaryIO, prefix: bytes = b"") -> None:
        """``prefix``: bytes already read from the start of ``fh`` (at most the magic
        and codec byte, e.g. by format detection)."""
        self._fh = fh
        self._raw = bytes(prefix)
        self._buf = b""  # decompressed bytes not yet read start at _pos
        self._pos = 0
        start = self._raw_read(len(MAGIC) + 1)
        if len(start) < len(MAGIC) + 1 or not is_compact(start):
            raise MalformedInputError("not a compact modelseal bundle (bad magic)")
        codec = start[len(MAGIC)]
        if codec not in CODECS.values():
            raise MalformedInputError(f"compact bundle: unknown codec {codec}")
        self._inflate = _Inflater(codec)
        (length,) = struct.unpack(">I", self._read(4, "header length"))
        if not 0 < length <= MAX_HEADER:
            raise MalformedInputError(f"compact bundle: header length {length} is not "
                                      f"within 1..{MAX_HEADER}")
        self.header = self._read(length, "header")

    def _raw_read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the file, the prefix first."""
        if self._raw:
            out, self._raw = self._raw[:n], self._raw[n:]
            if len(out) == n:
                return out
            return out + self._fh.read(n - len(out))
        return self._fh.read(n)

    def _fill(self) -> bool:
        """Decompress more into the buffer; False at the end of the input."""
        idle = 0
        while True:
            if self._inflate.eof():
                return False
            data = b"" if not self._inflate.needs_input() else self._raw_read(_READ)
            if not data and self._inflate.needs_input():
                return False
            out = self._inflate.feed(data)
            if out:
                # called only when what is left is less than one record (< 64 KiB)
                self._buf = self._buf[self._pos:] + out
                self._pos = 0
                return True
            idle = 0 if data else idle + 1
            if idle > 64:  # no input taken and no output made: never spin
                raise MalformedInputError("compact bundle: the compressed data is damaged "
                                          "(the decompressor makes no progress)")

    def _read(self, n: int, what: str) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._fill():
                raise MalformedInputError(f"compact bundle ends early (in the {what})")
        out = self._buf[self._pos:self._pos + n]
        self._pos += n
        return out

    def entries(self, n: int) -> Iterator[bytes]:
        """The ``n`` entries, each its exact bytes; then the end is checked."""
        for i in range(n):
            buf, pos = self._buf, self._pos
            if len(buf) - pos >= 2:  # the length in the buffer: read in place
                length = buf[pos] << 8 | buf[pos + 1]
                self._pos = pos + 2
            else:
                (length,) = struct.unpack(">H", self._read(2, f"length of entry {i}"))
            if length == 0:
                raise MalformedInputError(f"compact bundle: entry {i} is empty")
            yield self._read(length, f"entry {i}")
        self._finish()

    def _finish(self) -> None:
        if len(self._buf) > self._pos or self._fill():
            raise MalformedInputError("compact bundle: data after the last entry")
        if self._inflate.codec != 0 and not self._inflate.eof():
            raise MalformedInputError("compact bundle: the compressed stream does not end")
        if self._inflate.unused() or self._raw_read(1):
            raise MalformedInputError("compact bundle: bytes after the compressed stream")
