"""Property tests: verifier's iterative RFC 9162 algorithms against the recursive
reference (tests/reference.py) on trees of up to MAX_N leaves.

Leaves, reference roots and reference proofs are cached so each hypothesis
example costs a few hash calls.

Mutated sizes need care: an inclusion proof does not always bind the tree size.
E.g. PATH(0, D[5]) also "verifies" as a proof for index 0 in a tree of size 6
against the size-5 root, because both shapes combine the three hashes in the
same left/right order (see test_size_change_can_be_legitimately_accepted).
RFC 9162's own algorithm accepts it too. So for changed sizes the expected
outcome is computed by a small *recursive* evaluator written from the PATH /
SUBPROOF definitions of RFC 9162 §2.1.3.1 / §2.1.4.1 (not from verifier's bit
arithmetic), and verifier must agree with it exactly, including the error
class. Changed leaf/root/proof bits and changed indices are always rejected.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from tests import reference as ref

MAX_N = 300
LEAVES = [
    hashlib.sha256(b"leaf %d" % i).digest()[: i % 23] + bytes([i % 256]) for i in range(MAX_N)
]

SETTINGS = settings(max_examples=100, deadline=None)
ACCEPTED = (v.MalformedInputError, v.VerificationError)


@cache
def root_of(n: int) -> bytes:
    """reference.mth of the first n cached leaves."""
    return ref.mth(LEAVES[:n])


@cache
def leaf_of(i: int) -> bytes:
    return ref.leaf(LEAVES[i])


@cache
def path_of(index: int, size: int) -> tuple[bytes, ...]:
    """reference.path(index, D[size]) over the cached leaves."""
    return tuple(ref.path(index, LEAVES[:size]))


@cache
def proof_of(old: int, new: int) -> tuple[bytes, ...]:
    """reference.proof(old, D[new]) over the cached leaves."""
    return tuple(ref.proof(old, LEAVES[:new]))


def _h(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


# ------------------------------------------------- recursive RFC evaluators


@cache
def path_sides(m: int, n: int) -> tuple[bool, ...]:
    """For PATH(m, D[n]), bottom-up: True where the proof hash is the *left* sibling."""
    if n == 1:
        return ()
    k = _k(n)
    if m < k:
        return path_sides(m, k) + (False,)
    return path_sides(m - k, n - k) + (True,)


def rfc_inclusion_outcome(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> Any:
    """What verify_inclusion must do, by the recursive RFC shape: None or an error class."""
    if index >= size:
        return v.MalformedInputError
    sides = path_sides(index, size)
    if len(sides) != len(proof):
        return v.MalformedInputError
    r = leaf
    for p, left in zip(proof, sides, strict=True):
        r = _h(p, r) if left else _h(r, p)
    return None if r == root else v.RootMismatchError


Expr = Any  # "FIRST" | int (position in the proof) | ("H", Expr, Expr)


@cache
def subproof_shape(m: int, n: int, b: bool) -> tuple[int, Expr, Expr]:
    """SUBPROOF(m, D[n], b) as (number of hashes, old-root expression, new-root expression).

    Expressions refer to proof positions (0-based, in output order); "FIRST" is
    the old root that the verifier already has (the omitted node when b holds).
    """
    if m == n:
        return (0, "FIRST", "FIRST") if b else (1, 0, 0)
    k = _k(n)
    if m <= k:
        count, old, new = subproof_shape(m, k, b)
        return count + 1, old, ("H", new, count)
    count, old, new = subproof_shape(m - k, n - k, False)
    return count + 1, ("H", count, old), ("H", count, new)


def _eval(expr: Expr, proof: list[bytes], first: bytes) -> bytes:
    if expr == "FIRST":
        return first
    if isinstance(expr, int):
        return proof[expr]
    return _h(_eval(expr[1], proof, first), _eval(expr[2], proof, first))


def rfc_consistency_outcome(old: int, new: int, proof: list[bytes], r1: bytes, r2: bytes) -> Any:
    """What verify_consistency must do (documented edge rules + recursive SUBPROOF shape)."""
    if old > new:
        return v.MalformedInputError
    if old == 0 or old == new:
        if proof:
            return v.MalformedInputError
        if old == 0 and r1 != v.EMPTY_ROOT:
            return v.ConsistencyError
        if old == 0 < new:
            return None  # an empty tree is a prefix of every tree
        return None if r1 == r2 else v.ConsistencyError
    count, old_expr, new_expr = subproof_shape(old, new, True)
    if count != len(proof):
        return v.MalformedInputError
    ok = _eval(old_expr, proof, r1) == r1 and _eval(new_expr, proof, r1) == r2
    return None if ok else v.ConsistencyError


def outcome(fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)``: None if it returns None, else the exact class of what it raised."""
    try:
        result = fn(*args)
    except (v.VerifierError, ValueError, TypeError) as exc:
        return type(exc)
    assert result is None, f"verify_* returned {result!r}"
    return None


def _flip(h: bytes, bit: int) -> bytes:
    out = bytearray(h)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# ------------------------------------------------- strategies

sizes = st.integers(1, MAX_N)


@st.composite
def index_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(0, size - 1)), size


@st.composite
def old_new(draw: st.DrawFn, min_old: int = 0) -> tuple[int, int]:
    new = draw(st.integers(max(min_old, 1), MAX_N))
    return draw(st.integers(min_old, new)), new


@st.composite
def strict_old_new(draw: st.DrawFn) -> tuple[int, int]:
    """0 < old < new, so the proof is non-empty."""
    new = draw(st.integers(2, MAX_N))
    return draw(st.integers(1, new - 1)), new


# ------------------------------------------------- positive properties


@SETTINGS
@given(index_size())
def test_reference_inclusion_proof_verifies(pair: tuple[int, int]) -> None:
    """Every reference PATH verifies, has the predicted length and implies the root."""
    index, size = pair
    proof = list(path_of(index, size))
    assert len(proof) == v.inclusion_proof_length(index, size)
    assert v.root_from_inclusion_proof(leaf_of(index), index, size, proof) == root_of(size)
    assert v.verify_inclusion(leaf_of(index), index, size, proof, root_of(size)) is None


@SETTINGS
@given(old_new())
def test_reference_consistency_proof_verifies(pair: tuple[int, int]) -> None:
    """Every reference PROOF verifies, has the predicted length and implies the new root."""
    old, new = pair
    proof = list(proof_of(old, new))
    assert len(proof) == v.consistency_proof_length(old, new)
    assert v.verify_consistency(old, new, proof, root_of(old), root_of(new)) is None
    if old > 0:
        assert v.root_from_consistency_proof(old, new, proof, root_of(old)) == root_of(new)


@SETTINGS
@given(st.integers(0, MAX_N))
def test_root_from_leaf_hashes_matches_reference(n: int) -> None:
    """root_from_leaf_hashes and root agree with reference.mth on every prefix size."""
    assert v.root_from_leaf_hashes([leaf_of(i) for i in range(n)]) == root_of(n)
    assert v.root(LEAVES[:n]) == root_of(n)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=70))
def test_root_matches_reference_on_random_data(leaves: list[bytes]) -> None:
    """root() equals reference.mth on arbitrary leaf data (including empty leaves)."""
    assert v.root(leaves) == ref.mth(leaves)


# ------------------------------------------------- mutations


@SETTINGS
@given(index_size(), st.data())
def test_inclusion_mutations_rejected(pair: tuple[int, int], data: st.DataObject) -> None:
    """Flipping any bit of a proof hash, the leaf or the root, or changing the index,
    is rejected with the exact class; a changed size is judged by the RFC shape."""
    index, size = pair
    proof = list(path_of(index, size))
    leaf, root = leaf_of(index), root_of(size)
    bit = data.draw(st.integers(0, 255), label="bit")

    if proof:
        pos = data.draw(st.integers(0, len(proof) - 1), label="proof position")
        bad = list(proof)
        bad[pos] = _flip(bad[pos], bit)
        assert outcome(v.verify_inclusion, leaf, index, size, bad, root) is v.RootMismatchError
    assert (
        outcome(v.verify_inclusion, _flip(leaf, bit), index, size, proof, root)
        is v.RootMismatchError
    )
    assert (
        outcome(v.verify_inclusion, leaf, index, size, proof, _flip(root, bit))
        is v.RootMismatchError
    )

    other_index = data.draw(st.integers(0, 2 * MAX_N).filter(lambda i: i != index), label="index")
    want = rfc_inclusion_outcome(leaf, other_index, size, proof, root)
    assert want in (v.MalformedInputError, v.RootMismatchError)  # never accepted
    assert outcome(v.verify_inclusion, leaf, other_index, size, proof, root) is want

    other_size = data.draw(st.integers(0, 2 * MAX_N).filter(lambda s: s != size), label="size")
    want = rfc_inclusion_outcome(leaf, index, other_size, proof, root)
    assert outcome(v.verify_inclusion, leaf, index, other_size, proof, root) is want


@SETTINGS
@given(strict_old_new(), st.data())
def test_consistency_mutations_rejected(pair: tuple[int, int], data: st.DataObject) -> None:
    """Flipping any bit of a proof hash or of either root is a ConsistencyError; changed
    old/new sizes give exactly the outcome of the recursive RFC evaluator."""
    old, new = pair
    proof = list(proof_of(old, new))
    r1, r2 = root_of(old), root_of(new)
    bit = data.draw(st.integers(0, 255), label="bit")

    pos = data.draw(st.integers(0, len(proof) - 1), label="proof position")
    bad = list(proof)
    bad[pos] = _flip(bad[pos], bit)
    assert outcome(v.verify_consistency, old, new, bad, r1, r2) is v.ConsistencyError
    assert outcome(v.verify_consistency, old, new, proof, _flip(r1, bit), r2) is v.ConsistencyError
    assert outcome(v.verify_consistency, old, new, proof, r1, _flip(r2, bit)) is v.ConsistencyError

    other_old = data.draw(st.integers(0, 2 * MAX_N).filter(lambda o: o != old), label="old")
    want = rfc_consistency_outcome(other_old, new, proof, r1, r2)
    assert outcome(v.verify_consistency, other_old, new, proof, r1, r2) is want

    other_new = data.draw(st.integers(0, 2 * MAX_N).filter(lambda n: n != new), label="new")
    want = rfc_consistency_outcome(old, other_new, proof, r1, r2)
    assert outcome(v.verify_consistency, old, other_new, proof, r1, r2) is want


# ------------------------------------------------- exhaustive sweeps

SWEEP = 64
MUTATE_SWEEP = 24  # pairs whose sizes are additionally swept over every other size


def test_sweep_all_inclusion_proofs() -> None:
    """ALL (index, size) with size <= 64: reference proof verifies, length agrees with the
    formula and with the recursive shape; for size <= 24 every other size and index
    gives exactly the recursive evaluator's outcome."""
    checked = 0
    for size in range(1, SWEEP + 1):
        root = root_of(size)
        for index in range(size):
            proof = list(path_of(index, size))
            leaf = leaf_of(index)
            assert (
                len(proof) == v.inclusion_proof_length(index, size) == len(path_sides(index, size))
            )
            assert rfc_inclusion_outcome(leaf, index, size, proof, root) is None
            assert v.verify_inclusion(leaf, index, size, proof, root) is None
            checked += 1
            if size > MUTATE_SWEEP:
                continue
            for s2 in range(2 * MUTATE_SWEEP + 2):
                if s2 != size:
                    want = rfc_inclusion_outcome(leaf, index, s2, proof, root)
                    assert outcome(v.verify_inclusion, leaf, index, s2, proof, root) is want, (
                        index,
                        size,
                        s2,
                    )
            for i2 in range(size + 2):
                if i2 != index:
                    want = rfc_inclusion_outcome(leaf, i2, size, proof, root)
                    assert want is not None
                    assert outcome(v.verify_inclusion, leaf, i2, size, proof, root) is want, (
                        index,
                        size,
                        i2,
                    )
    assert checked == SWEEP * (SWEEP + 1) // 2


def test_sweep_all_consistency_proofs() -> None:
    """ALL (old, new) with new <= 64: reference proof verifies and has the predicted length;
    for new <= 24 every other old and new size gives exactly the evaluator's outcome."""
    checked = 0
    for new in range(SWEEP + 1):
        r2 = root_of(new)
        for old in range(new + 1):
            proof = list(proof_of(old, new))
            r1 = root_of(old)
            assert len(proof) == v.consistency_proof_length(old, new)
            if 0 < old < new:
                assert subproof_shape(old, new, True)[0] == len(proof)
            assert rfc_consistency_outcome(old, new, proof, r1, r2) is None
            assert v.verify_consistency(old, new, proof, r1, r2) is None
            checked += 1
            if new > MUTATE_SWEEP or not 0 < old < new:
                continue
            for o2 in range(new + 2):
                if o2 != old:
                    want = rfc_consistency_outcome(o2, new, proof, r1, r2)
                    assert outcome(v.verify_consistency, o2, new, proof, r1, r2) is want, (
                        old,
                        new,
                        o2,
                    )
            for n2 in range(2 * MUTATE_SWEEP + 2):
                if n2 != new:
                    want = rfc_consistency_outcome(old, n2, proof, r1, r2)
                    assert outcome(v.verify_consistency, old, n2, proof, r1, r2) is want, (
                        old,
                        new,
                        n2,
                    )
    assert checked == (SWEEP + 1) * (SWEEP + 2) // 2


def test_evaluators_reject_wrong_data() -> None:
    """The recursive evaluators used as oracles are not vacuous: they reject a flipped hash."""
    proof = list(path_of(5, 13))
    proof[1] = _flip(proof[1], 0)
    assert rfc_inclusion_outcome(leaf_of(5), 5, 13, proof, root_of(13)) is v.RootMismatchError
    cproof = list(proof_of(5, 13))
    cproof[0] = _flip(cproof[0], 0)
    assert rfc_consistency_outcome(5, 13, cproof, root_of(5), root_of(13)) is v.ConsistencyError
    assert (
        rfc_consistency_outcome(5, 13, list(proof_of(5, 13)), root_of(5), root_of(12))
        is v.ConsistencyError
    )


def test_size_change_can_be_legitimately_accepted() -> None:
    """Documents why size mutations are judged by the RFC shape and not 'always rejected':
    PATH(0, D[5]) and PATH(0, D[6]) have the same shape (all siblings on the right), so
    the size-5 proof and root also verify for a claimed size 6 (by RFC 9162's algorithm
    too); likewise PROOF(4, D[5]) = [leaf 4] verifies for 4 -> 6 against the size-5 root."""
    assert path_sides(0, 5) == path_sides(0, 6)
    assert v.verify_inclusion(leaf_of(0), 0, 6, list(path_of(0, 5)), root_of(5)) is None
    assert rfc_inclusion_outcome(leaf_of(0), 0, 6, list(path_of(0, 5)), root_of(5)) is None
    assert v.verify_consistency(4, 6, list(proof_of(4, 5)), root_of(4), root_of(5)) is None
    assert rfc_consistency_outcome(4, 6, list(proof_of(4, 5)), root_of(4), root_of(5)) is None
    # ... but not against the real size-6 root.
    with pytest.raises(v.RootMismatchError):
        v.verify_inclusion(leaf_of(0), 0, 6, list(path_of(0, 5)), root_of(6))
    with pytest.raises(v.ConsistencyError):
        v.verify_consistency(4, 6, list(proof_of(4, 5)), root_of(4), root_of(6))
