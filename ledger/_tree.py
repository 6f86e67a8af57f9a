"""The Merkle node store: every complete subtree hash, kept as leaves are appended.

Node (level, i) is the hash of leaves [i * 2**level, (i + 1) * 2**level).
Appending a leaf writes its hash and each subtree it completes (two writes
per leaf on average). Any past root and any proof then costs O(log n) reads
(O(log^2 n) at worst for the right border), never a pass over the leaves.
The storage is a pair of callables, so the same code runs on LMDB or a dict.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

from verifier import EMPTY_ROOT

Get = Callable[[int, int], bytes]
Put = Callable[[int, int, bytes], None]
_key = struct.Struct(">QB")
_sha256 = hashlib.sha256


def node_key(level: int, index: int) -> bytes:
    """The 9-byte store key of node (level, index): the index of its last leaf,
    then its level. Nodes are created in exactly this order as leaves are
    appended, so the store only ever appends (full pages, no splits)."""
    return _key.pack(((index + 1) << level) - 1, level)


def split_node_key(key: bytes) -> tuple[int, int]:
    """(level, index) of a store key."""
    last, level = _key.unpack(key)
    return level, ((last + 1) >> level) - 1


def _lp2(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def append_leaf(get: Get, put: Put, size: int, leaf_hash: bytes) -> None:
    """Store leaf ``size`` (the current tree size) and every subtree it completes."""
    put(0, size, leaf_hash)
    level, index, h = 0, size, leaf_hash
    while index & 1:
        h = _sha256(b"\x01" + get(level, index - 1) + h).digest()
        level, index = level + 1, index >> 1
        put(level, index, h)


def range_hash(get: Get, start: int, end: int) -> bytes:
    """MTH of leaves [start, end) where [start, end) is a subtree in RFC 9162's
    recursion of some tree (start aligned to the largest power of two < end - start)."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return get(level, start >> level)
    k = _lp2(n)
    right = range_hash(get, start + k, end)
    return _sha256(b"\x01" + range_hash(get, start, start + k) + right).digest()


def root(get: Get, size: int) -> bytes:
    """The root of the tree of the first ``size`` leaves."""
    return range_hash(get, 0, size)


def inclusion_proof(get: Get, index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[size]). Precondition: 0 <= index < size."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not inside a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _lp2(end - start)
        if index < start + k:
            proof.append(range_hash(get, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(get, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(get: Get, old: int, new: int) -> list[bytes]:
    """RFC 9162 PROOF(old, D[new]); empty when old is 0 or old == new.

    Precondition: 0 <= old <= new.
    """
    if not 0 <= old <= new:
        raise ValueError(f"need 0 <= old <= new, got {old}, {new}")
    if old == 0 or old == new:
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, new, old, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(range_hash(get, start, end))
            break
        k = _lp2(n)
        if m <= k:
            proof.append(range_hash(get, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(get, start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof
