"""The stored form of entries: zstd with the store's dictionary, then a CRC-32."""

from __future__ import annotations

import threading
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as hs

from ledger._compress import MAX_STORED_ENTRY, Codec, DamagedEntry, make_dictionary

CODEC = Codec(make_dictionary("example.com/models"))


def _with_crc(packed: bytes) -> bytes:
    return packed + zlib.crc32(packed).to_bytes(4, "big")


def _raw_frame(data: bytes) -> bytes:
    """``data`` compressed as the codec does, without the CRC."""
    return CODEC._contexts()[0].compress(data)


@settings(max_examples=200, deadline=None)
@given(data=hs.binary(max_size=70_000))
def test_round_trip(data: bytes) -> None:
    stored = CODEC.pack(data)
    if data:
        assert CODEC.unpack(stored) == data
    else:
        with pytest.raises(DamagedEntry):  # no entry is empty; a frame of nothing is refused
            CODEC.unpack(stored)


@settings(max_examples=300, deadline=None)
@given(pos=hs.integers(0, 10_000), bit=hs.integers(0, 7))
def test_any_flipped_bit_is_damage(pos: int, bit: int) -> None:
    stored = bytearray(CODEC.pack(b'{"index":1,"statement":"{\\"op\\":\\"event\\"}","v":1}'))
    stored[pos % len(stored)] ^= 1 << bit
    with pytest.raises(DamagedEntry):
        CODEC.unpack(bytes(stored))


@pytest.mark.parametrize("stored", [
    b"", b"\x00\x00\x00\x00", b"\x01\x02\x03\x04\x05",
    _with_crc(b"not a zstd frame at all"),
    _with_crc(_raw_frame(b'{"v":1}')[:-1]),           # truncated, CRC made to fit
    _with_crc(_raw_frame(b'{"v":1}') + b"\x00"),      # trailing bytes, CRC made to fit
    _with_crc(_raw_frame(b"x" * (MAX_STORED_ENTRY + 1))),  # claims more than any entry
], ids=["empty", "crc-only", "five-bytes", "garbage", "truncated", "trailing", "oversize"])
def test_malformed_stored_forms_are_damage(stored: bytes) -> None:
    with pytest.raises(DamagedEntry):
        CODEC.unpack(stored)


def test_another_dictionary_does_not_read_it_back() -> None:
    other = Codec(make_dictionary("other.example/models"))
    data = b'{"index":7,"key_id":"0a1b2c3d","prev":null,"v":1}'
    try:
        assert other.unpack(CODEC.pack(data)) != data
    except DamagedEntry:
        pass


def test_contexts_are_per_thread() -> None:
    """Threads packing and unpacking at once each get their own zstd contexts."""
    errors: list[BaseException] = []
    seen: list[object] = []  # the contexts themselves, kept alive so ids stay unique

    def work(i: int) -> None:
        try:
            seen.append(CODEC._contexts()[0])
            for j in range(300):
                data = f'{{"index":{i * 1000 + j},"v":1}}'.encode() * (1 + j % 7)
                assert CODEC.unpack(CODEC.pack(data)) == data
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len({id(c) for c in seen}) == 4


def test_the_frame_carries_no_magic_checksum_or_dictionary_id() -> None:
    frame = _raw_frame(b'{"v":1}' * 10)
    assert not frame.startswith(b"\x28\xb5\x2f\xfd")
    params = zstandard.get_frame_parameters(frame, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
    assert (params.has_checksum, params.dict_id, params.content_size) == (False, 0, 70)
