"""Entries are stored deflate-compressed with a preset dictionary.

An entry is about 600 bytes of JSON whose keys, field names and quoting
repeat in every entry; a dictionary made of an entry's skeleton and the
log's common words shrinks it to about 230 bytes. The dictionary is made
once when the store is created and kept in it, so a store always reads back
with the dictionary it was written with. What is hashed and served is always
the decompressed, exact entry bytes.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

from verifier import canonical_json

def _entry(origin: str, index: int, prev: str | None, body: dict[str, object]) -> bytes:
    statement = canonical_json({
        "actor": "ml-pipeline", "claimed_at": 1_760_000_000_123_456_789,
        "id": hashlib.md5(b"id").hexdigest(), "origin": origin, "v": 1, **body,
    }).decode()
    return canonical_json({
        "index": index, "key_id": "0a1b2c3d", "prev": prev,
        "recorded_at": 1_760_000_000_123_456_789,
        "sig": base64.b64encode(hashlib.sha512(b"sig").digest()).decode(),
        "statement": statement, "v": 1,
    })


def make_dictionary(origin: str) -> bytes:
    """The preset dictionary for a log: two entries shaped like the log's own, with
    placeholder values (the most common shape last, where deflate looks first).
    Kept near 1 KB: a larger dictionary made compression several times slower."""
    h = hashlib.sha256(origin.encode()).hexdigest()  # placeholder with no inner repeats
    return b"".join([
        _entry(origin, 2, None, {"op": "register", "name": "model_name", "owner": "team",
                                 "model_type": "ml_model", "tier": "high", "purpose": "Scoring",
                                 "status": "active", "metadata": {"framework": "xgboost"}}),
        _entry(origin, 5, h, {"op": "event", "model": "model_name", "event_type": "retrained",
                              "payload": {"accuracy": 0.9, "rows": 100000, "dataset": ""}}),
    ])


class Codec:
    """Compresses and decompresses entries with one store's dictionary."""

    def __init__(self, dictionary: bytes) -> None:
        self.dictionary = dictionary

    def pack(self, entry: bytes) -> bytes:
        """The stored form of ``entry``: raw deflate (4 KiB window, the dictionary), then a
        CRC-32 of those bytes, so that a change even to the stream's unused padding bits,
        which decompress to the same entry, is still seen.

        (A fresh compressor per entry measured faster than copying a primed one.)"""
        c = zlib.compressobj(6, zlib.DEFLATED, -12, 6, zlib.Z_DEFAULT_STRATEGY, self.dictionary)
        packed = c.compress(entry) + c.flush()
        return packed + zlib.crc32(packed).to_bytes(4, "big")

    def unpack(self, stored: bytes) -> bytes:
        """The exact entry bytes; zlib.error if ``stored`` was damaged."""
        packed, crc = stored[:-4], stored[-4:]
        if len(stored) < 5 or zlib.crc32(packed).to_bytes(4, "big") != crc:
            raise zlib.error("stored entry fails its checksum")
        d = zlib.decompressobj(-15, self.dictionary)
        data = d.decompress(packed, 1 << 17)
        if d.unconsumed_tail or not d.eof or d.unused_data:
            raise zlib.error("stored entry is truncated or has trailing bytes")
        return data
