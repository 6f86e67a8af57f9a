"""RFC 9162 §2.1.3-2.1.4 inclusion and consistency proof verification.

Pure functions. A proof is only a list of hashes: its expected length is
derived from (index, size) or (old_size, new_size) and checked before any
hashing; no shape or direction information is ever read from the proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .encoding import check_count, check_hash_bytes
from .errors import ConsistencyError, MalformedInputError, RootMismatchError
from .merkle import EMPTY_ROOT

_sha256 = hashlib.sha256


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def inclusion_proof_length(index: int, size: int) -> int:
    """The number of hashes in the inclusion proof of ``index`` in a tree of ``size``.

    Precondition: 0 <= index < size.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner + border


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """The number of hashes in the consistency proof old_size -> new_size.

    Zero when old_size is 0 or equal to new_size. Precondition: old <= new.
    """
    if old_size == 0 or old_size == new_size:
        return 0
    shift = (old_size & -old_size).bit_length() - 1
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length() - shift
    border = bin((old_size - 1) >> (inner + shift)).count("1")
    seed = 0 if old_size == 1 << shift else 1
    return seed + inner + border


def _check_proof(proof: Sequence[bytes], expected_len: int, what: str) -> list[bytes]:
    if isinstance(proof, (bytes, str)):
        raise TypeError(f"{what} must be a sequence of hashes, not {type(proof).__name__}")
    if len(proof) != expected_len:
        raise MalformedInputError(
            f"{what} has {len(proof)} hashes, but its sizes require {expected_len}"
        )
    return [check_hash_bytes(h, f"{what} hash {i}") for i, h in enumerate(proof)]


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root implied by ``proof`` for ``leaf_hash`` at ``index`` in a tree of ``size``.

    Raises MalformedInputError when index >= size, a hash is not 32 bytes, or the
    proof length differs from the one (index, size) requires.
    """
    leaf = check_hash_bytes(leaf_hash, "leaf hash")
    index = check_count(index, "index")
    size = check_count(size, "size")
    if index >= size:
        raise MalformedInputError(f"index {index} is not inside a tree of size {size}")
    hashes = _check_proof(proof, inclusion_proof_length(index, size), "inclusion proof")
    # RFC 9162 §2.1.3.2.
    fn, sn, r = index, size - 1, leaf
    for p in hashes:
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Return None if ``proof`` shows ``leaf_hash`` at ``index`` in the tree ``root``.

    Raises RootMismatchError when the implied root differs, MalformedInputError
    for impossible input (see root_from_inclusion_proof).
    """
    expected = check_hash_bytes(root, "root")
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if calculated != expected:
        raise RootMismatchError(
            f"inclusion proof for index {index} in size {size} fails",
            expected=expected,
            calculated=calculated,
        )


def root_from_consistency_proof(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes
) -> bytes:
    """The new root implied by ``proof`` from the tree (old_size, old_root).

    Checks on the way that the proof reproduces ``old_root`` (ConsistencyError if
    not). old_size == new_size needs an empty proof and returns ``old_root``.
    old_size == 0 < new_size is a ValueError: an empty tree is a prefix of every
    tree, so no proof determines the new root; use verify_consistency.
    """
    old_size = check_count(old_size, "old size")
    new_size = check_count(new_size, "new size")
    first = check_hash_bytes(old_root, "old root")
    if old_size > new_size:
        raise MalformedInputError(f"old size {old_size} is larger than new size {new_size}")
    hashes = _check_proof(
        proof, consistency_proof_length(old_size, new_size), "consistency proof"
    )
    if old_size == 0:
        if first != EMPTY_ROOT:
            raise ConsistencyError(
                "the root of an empty tree must be SHA-256 of nothing",
                expected=EMPTY_ROOT,
                calculated=first,
            )
        if new_size:
            raise ValueError("a consistency proof from size 0 does not determine the new root")
        return first
    if old_size == new_size:
        return first
    # RFC 9162 §2.1.4.2.
    if old_size & (old_size - 1) == 0:
        hashes = [first, *hashes]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    if fr != first:
        raise ConsistencyError(
            f"consistency proof {old_size} -> {new_size} does not reproduce the old root",
            expected=first,
            calculated=fr,
        )
    return sr


def verify_consistency(
    old_size: int,
    new_size: int,
    proof: Sequence[bytes],
    old_root: bytes,
    new_root: bytes,
) -> None:
    """Return None if ``proof`` shows (old_size, old_root) is a prefix of (new_size, new_root).

    Raises ConsistencyError when it does not, MalformedInputError for impossible
    input (old > new, wrong proof length, hashes not 32 bytes).
    """
    second = check_hash_bytes(new_root, "new root")
    if check_count(old_size, "old size") == 0 and check_count(new_size, "new size") > 0:
        root_from_consistency_proof(0, 0, proof, old_root)  # empty proof, empty old root
        if len(proof):
            raise MalformedInputError("a consistency proof from size 0 must be empty")
        return
    calculated = root_from_consistency_proof(old_size, new_size, proof, old_root)
    if calculated != second:
        raise ConsistencyError(
            f"consistency proof {old_size} -> {new_size} does not reproduce the new root",
            expected=second,
            calculated=calculated,
        )
