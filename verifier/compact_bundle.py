"""Compact bundles (specs/bundle.md §7): write one, verify one from a file as a stream, and
convert between the JSON and compact encodings without touching an entry's bytes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

import msgspec

from .bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    VerifiedInventory,
    _At,
    _decode,
    _FromTrusted,
    _Header,
    _Next,
    bundle_chunks,
    decode_header,
    verify_bundle,
    verify_parts,
)
from .checkpoint import Checkpoint
from .compact import MAGIC, CompactReader, compact_chunks, is_compact
from .cosignature import WitnessKey
from .encoding import b64decode, b64encode, decode_hash
from .errors import MalformedInputError
from .keys import VerifierKey

__all__ = ["compact_bundle_chunks", "compact_from_json", "json_from_compact",
           "verify_bundle_file"]

MAX_JSON_BUNDLE = 1 << 34
"""A JSON bundle is read whole; this bounds what is read (16 GiB)."""


def compact_bundle_chunks(
    *,
    checkpoint: bytes,
    size: int,
    time: int,
    root: bytes,
    consistency: Sequence[bytes],
    entries: Iterable[bytes],
    next_entry: bytes | None,
    next_proof: Sequence[bytes],
    from_trusted: tuple[int, Sequence[bytes]] | None = None,
    codec: str = "zlib",
) -> Iterator[bytes]:
    """``bundle_chunks`` in the compact encoding: the same arguments and preconditions,
    the entries taken one at a time and written as their exact bytes, compressed with
    ``codec`` ("xz", "zlib", "bz2" or "none")."""
    head = _Header(
        format=BUNDLE_FORMAT, version=BUNDLE_VERSION, checkpoint=checkpoint.decode("utf-8"),
        at=_At(size, time, b64encode(root)), consistency=[b64encode(h) for h in consistency],
        next=None if next_entry is None
        else _Next(b64encode(next_entry), [b64encode(h) for h in next_proof]),
        from_trusted=None if from_trusted is None
        else _FromTrusted(from_trusted[0], [b64encode(h) for h in from_trusted[1]]),
    )
    return compact_chunks(msgspec.json.encode(head, order="sorted"), entries, codec)


def _parts(h: _Header) -> dict[str, object]:
    """The header's fields as ``bundle_chunks`` arguments (hashes decoded strictly)."""
    nxt = h.next
    ft = h.from_trusted
    return {
        "checkpoint": h.checkpoint.encode("utf-8"), "size": h.at.size, "time": h.at.time,
        "root": decode_hash(h.at.root, "point-in-time root"),
        "consistency": [decode_hash(x, "consistency proof") for x in h.consistency],
        "next_entry": None if nxt is None else b64decode(nxt.entry, "next entry"),
        "next_proof": [] if nxt is None else [decode_hash(x, "next proof") for x in nxt.proof],
        "from_trusted": None if ft is None
        else (ft.old_size, [decode_hash(x, "trusted proof") for x in ft.proof]),
    }


def compact_from_json(bundle: bytes, codec: str = "zlib") -> Iterator[bytes]:
    """The compact encoding of a JSON bundle, with the same header fields and the same
    entry bytes (nothing is verified). MalformedInputError if it is not a bundle."""
    b = _decode(bundle)
    parts = _parts(b)
    entries = (b64decode(e, f"entry {i}") for i, e in enumerate(b.entries))
    return compact_bundle_chunks(**parts, entries=entries, codec=codec)  # type: ignore[arg-type]


def json_from_compact(fh: BinaryIO) -> Iterator[bytes]:
    """The JSON encoding of a compact bundle read from ``fh``, with the same header fields
    and entry bytes (nothing is verified). MalformedInputError for a bad stream."""
    reader = CompactReader(fh)
    head = decode_header(reader.header)
    parts = _parts(head)
    return bundle_chunks(**parts, entries=reader.entries(head.at.size))  # type: ignore[arg-type]


def verify_bundle_file(
    fh: BinaryIO, keys: Sequence[VerifierKey], *, trusted: Checkpoint | None = None,
    progress: Callable[[int, int], None] | None = None,
    witnesses: Sequence[WitnessKey] = (), witness_threshold: int = 0, jobs: int = 1,
) -> VerifiedInventory:
    """``verify_bundle`` on a binary file: a compact bundle (told by its magic) is read and
    verified as a stream, in bounded memory besides the inventory; a JSON bundle is read
    whole (at most MAX_JSON_BUNDLE bytes, else MalformedInputError)."""
    prefix = fh.read(len(MAGIC))
    if is_compact(prefix):
        reader = CompactReader(fh, prefix)
        head = decode_header(reader.header)
        return verify_parts(head, reader.entries, None, keys, trusted=trusted,
                            progress=progress, witnesses=witnesses,
                            witness_threshold=witness_threshold, jobs=jobs)
    data = prefix + fh.read(MAX_JSON_BUNDLE + 1 - len(prefix))
    if len(data) > MAX_JSON_BUNDLE:
        raise MalformedInputError("a JSON bundle this large cannot be read whole; export it "
                                  "in the compact encoding")
    return verify_bundle(data, keys, trusted=trusted, progress=progress, witnesses=witnesses,
                         witness_threshold=witness_threshold, jobs=jobs)
