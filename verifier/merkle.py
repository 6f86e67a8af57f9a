"""RFC 9162 §2.1.1 hashing: leaf and node hashes and the Merkle Tree Hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from .encoding import check_hash_bytes

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


_LEAF_PREFIX = _sha256(b"\x00")  # copied per leaf: the prefix is never copied in with the data


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry."""
    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"leaf data must be bytes, not {type(data).__name__}")
        data = bytes(data)  # a snapshot of the bytes, contiguous
    h = _LEAF_PREFIX.copy()
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    left = check_hash_bytes(left, "left hash")
    right = check_hash_bytes(right, "right hash")
    return _sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """The Merkle Tree Hash of a tree whose leaf hashes are given, in order.

    Pairs each level left to right and carries an odd last node up unchanged,
    which yields exactly RFC 9162's MTH. Precondition: every hash is 32 bytes.
    """
    # A stack of (height, hash) of complete subtrees, merged as they fill up.
    stack: list[tuple[int, bytes]] = []
    for h in hashes:
        if type(h) is not bytes or len(h) != 32:
            h = check_hash_bytes(h, "leaf hash")
        height = 0
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            h = _sha256(b"\x01" + left + h).digest()
            height += 1
        stack.append((height, h))
    if not stack:
        return EMPTY_ROOT
    _, acc = stack.pop()
    while stack:
        _, left = stack.pop()
        acc = _sha256(b"\x01" + left + acc).digest()
    return acc


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf *data* (not hashes): RFC 9162 §2.1.1."""
    return root_from_leaf_hashes(leaf_hash(d) for d in leaves)
