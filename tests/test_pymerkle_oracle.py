"""pymerkle (7.x, GPL-3.0-or-later, test-only) as an independent Merkle oracle.

Configuration. ``InmemoryTree(algorithm="sha256", disable_security=False)``:
with security on, pymerkle hashes a leaf as H(0x00 || data) and a node as
H(0x01 || left || right), and the empty tree as H(b"") -- exactly RFC 9162
§2.1.1. Its trees split at the largest power of two below the width, as MTH
does. (disable_security=True drops both prefixes; test_security_mode_matters
shows the roots then differ, so the configuration is load-bearing.)

Conventions. pymerkle counts leaves from ONE: leaf i of ours is its index i+1.
``get_root(size)`` is the MTH of the first ``size`` leaves (``get_state`` is a
deprecated alias in 7.0.0).

Inclusion proof mapping. ``prove_inclusion(i + 1, size)`` returns an
InclusionProof whose ``path`` is ``[leaf_hash(D[i])] + PATH(i, D[size])``:
the base leaf hash first, then exactly RFC 9162's sibling hashes bottom-up.
``rule`` has one bit per path entry; for k >= 0, ``rule[k]`` tells how
``path[k + 1]`` is combined: 0 = the accumulated hash is the left child
(sibling on the right), 1 = sibling on the left; the last rule bit is unused.

Consistency proof shape. pymerkle's ConsistencyProof is NOT RFC 9162's PROOF:
for old < new, its ``path`` is ``[leaf_hash(D[old])] + PATH(old, D[new])`` --
the inclusion proof of the first *new* leaf -- with a ``subset`` mask marking
the left siblings that fold into the old root; for old == new it is ``[root]``.
verifier.verify_consistency therefore rejects it (different length, or same
length but a different order); see test_consistency_proof_is_not_rfc_shape.
pymerkle also has no consistency proof from size 0 (InvalidChallenge).
"""

from __future__ import annotations

import warnings

import pymerkle  # a test dependency: import errors must fail loudly, not skip
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import verifier as v
from tests import reference as ref
from tests.test_merkle_vectors import LEAVES as RFC_LEAVES
from tests.test_merkle_vectors import ROOTS as RFC_ROOTS


def make_tree(leaves: list[bytes]):  # type: ignore[no-untyped-def]
    """An RFC 9162-configured pymerkle in-memory tree holding ``leaves``."""
    tree = pymerkle.InmemoryTree(algorithm="sha256", disable_security=False)
    for d in leaves:
        tree.append_entry(d)
    return tree


def pm_root(tree, size: int) -> bytes:  # type: ignore[no-untyped-def]
    """pymerkle's root of the first ``size`` leaves (get_root in 7.x, get_state before)."""
    if hasattr(tree, "get_root"):
        return tree.get_root(size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return tree.get_state(size)


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def sibling_on_left(m: int, n: int) -> list[bool]:
    """For PATH(m, D[n]) bottom-up, whether each sibling is the left child (RFC recursion)."""
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return sibling_on_left(m, k) + [False]
    return sibling_on_left(m - k, n - k) + [True]


leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=200)


def test_configuration_is_rfc9162() -> None:
    """The configured tree uses SHA-256 with 0x00/0x01 prefixes and H(b"") as empty root."""
    tree = make_tree([])
    assert tree.algorithm == "sha256"
    assert tree.leaf_prefix == b"\x00" and tree.node_prefix == b"\x01"
    assert tree.hash_empty() == v.EMPTY_ROOT
    assert pm_root(tree, 0) == v.EMPTY_ROOT
    assert tree.hash_buff(b"abc") == v.leaf_hash(b"abc")


def test_rfc_vectors() -> None:
    """pymerkle reproduces the RFC 6962 roots of every prefix of the vector leaves."""
    tree = make_tree(RFC_LEAVES)
    assert [pm_root(tree, n) for n in range(9)] == [RFC_ROOTS[n] for n in range(9)]


def test_security_mode_matters() -> None:
    """Without the domain-separation prefixes pymerkle's roots are NOT RFC roots."""
    insecure = pymerkle.InmemoryTree(algorithm="sha256", disable_security=True)
    for d in RFC_LEAVES:
        insecure.append_entry(d)
    assert all(pm_root(insecure, n) != RFC_ROOTS[n] for n in range(1, 9))


@settings(max_examples=25, deadline=None)
@given(leaf_lists)
def test_roots_agree_for_every_prefix(leaves: list[bytes]) -> None:
    """For every prefix size, pymerkle's root equals verifier.root (the full one: reference.mth)."""
    tree = make_tree(leaves)
    for size in range(len(leaves) + 1):
        assert pm_root(tree, size) == v.root(leaves[:size]), size
    assert pm_root(tree, len(leaves)) == ref.mth(leaves)


@settings(max_examples=25, deadline=None)
@given(leaf_lists, st.data())
def test_inclusion_paths_agree(leaves: list[bytes], data: st.DataObject) -> None:
    """pymerkle's path is [leaf hash] + RFC PATH; its rule bits match RFC sibling sides;
    verifier accepts pymerkle's siblings and pymerkle accepts verifier's root."""
    tree = make_tree(leaves)
    n = len(leaves)
    # Every leaf of the full tree: verifier accepts pymerkle's sibling hashes.
    full_root = pm_root(tree, n)
    for i in range(n):
        p = tree.prove_inclusion(i + 1, n)
        assert p.path[0] == v.leaf_hash(leaves[i])
        assert v.verify_inclusion(p.path[0], i, n, p.path[1:], full_root) is None
    # A few (index, size) pairs compared hash by hash with the reference.
    for _ in range(4):
        size = data.draw(st.integers(1, n), label="size")
        i = data.draw(st.integers(0, size - 1), label="index")
        p = tree.prove_inclusion(i + 1, size)
        rfc_path = ref.path(i, leaves[:size])
        assert p.path == [v.leaf_hash(leaves[i]), *rfc_path]
        assert len(p.rule) == len(p.path)
        assert [bit == 1 for bit in p.rule[:-1]] == sibling_on_left(i, size)
        our_root = v.root_from_inclusion_proof(p.path[0], i, size, rfc_path)
        p.verify(
            v.leaf_hash(leaves[i]), our_root, index=i + 1, size=size
        )  # raises InvalidProof if not
        assert our_root == pm_root(tree, size)


def test_pymerkle_rejects_a_wrong_root() -> None:
    """pymerkle's verify really checks (so the acceptance above is meaningful)."""
    tree = make_tree(RFC_LEAVES)
    p = tree.prove_inclusion(6, 8)
    with pytest.raises(pymerkle.InvalidProof):
        p.verify(v.leaf_hash(RFC_LEAVES[5]), RFC_ROOTS[7])


CONSISTENCY_N = 32


def test_consistency_proof_is_not_rfc_shape() -> None:
    """For every 1 <= old <= new <= 32: pymerkle's consistency proof is valid for pymerkle,
    has the documented [leaf(old)] + PATH(old, D[new]) form, differs from RFC PROOF, and
    verifier.verify_consistency rejects it (MalformedInputError if the length differs,
    ConsistencyError if only the order/content does)."""
    leaves = [b"c%d" % i for i in range(CONSISTENCY_N)]
    tree = make_tree(leaves)
    kinds = {v.MalformedInputError: 0, v.ConsistencyError: 0}
    for new in range(1, CONSISTENCY_N + 1):
        for old in range(1, new + 1):
            p = tree.prove_consistency(old, new)
            r1, r2 = pm_root(tree, old), pm_root(tree, new)
            p.verify(r1, r2, prior_size=old, later_size=new)  # pymerkle accepts its own proof
            if old < new:
                assert p.path == [v.leaf_hash(leaves[old]), *ref.path(old, leaves[:new])]
            else:
                assert p.path == [r2]
            rfc = ref.proof(old, leaves[:new])
            assert p.path != rfc
            want = (
                v.MalformedInputError
                if len(p.path) != v.consistency_proof_length(old, new)
                else v.ConsistencyError
            )
            with pytest.raises(want) as info:
                v.verify_consistency(old, new, p.path, r1, r2)
            assert type(info.value) is want
            kinds[want] += 1
    # Both rejection reasons occur: the shapes differ in length AND in order.
    assert kinds[v.MalformedInputError] > 0 and kinds[v.ConsistencyError] > 0


def test_consistency_example_2_to_4() -> None:
    """A concrete case: RFC PROOF(2, D[4]) is [MTH(D[2:4])]; pymerkle sends
    [leaf 2, leaf 3, MTH(D[0:2])] with subset [0, 0, 1]."""
    leaves = [b"a", b"b", b"c", b"d"]
    tree = make_tree(leaves)
    p = tree.prove_consistency(2, 4)
    assert ref.proof(2, leaves) == [ref.mth(leaves[2:4])]
    assert p.path == [ref.leaf(b"c"), ref.leaf(b"d"), ref.mth(leaves[:2])]
    assert p.subset == [0, 0, 1]


def test_no_consistency_proof_from_size_zero() -> None:
    """pymerkle refuses old size 0, which RFC 9162 and verifier allow with an empty proof."""
    tree = make_tree([b"a", b"b"])
    with pytest.raises(pymerkle.InvalidChallenge):
        tree.prove_consistency(0, 2)
    assert v.verify_consistency(0, 2, [], v.EMPTY_ROOT, pm_root(tree, 2)) is None


@settings(max_examples=10, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=2, max_size=200), st.data())
# issue 9 point 10: four identical empty leaves, old 3, new 4. pymerkle's path is
# [leaf(D[3]), leaf(D[2]), MTH(D[0:2])] and the RFC proof [leaf(D[2]), leaf(D[3]), MTH(D[0:2])]:
# other positions, but equal hashes, so the two lists are equal and the proof is valid.
@example(leaves=[b"", b"", b"", b""], data=st.data()).via("issue 9 point 10")
def test_consistency_shape_on_random_trees(leaves: list[bytes], data: st.DataObject) -> None:
    """On random trees, pymerkle's consistency path is the inclusion proof of leaf ``old``,
    which has another shape than the RFC proof: on distinct leaves the two always differ and
    verifier rejects pymerkle's; on these leaves, verifier rejects it unless equal hashes
    make it the very list of the RFC proof (then it is that proof, and valid). The RFC proof
    is accepted for the same roots."""
    tree = make_tree(leaves)
    example_case = leaves == [b""] * 4 and len(leaves) == 4
    new = 4 if example_case else data.draw(st.integers(2, len(leaves)), label="new")
    old = 3 if example_case else data.draw(st.integers(1, new - 1), label="old")
    p = tree.prove_consistency(old, new)
    r1, r2 = pm_root(tree, old), pm_root(tree, new)
    rfc = ref.proof(old, leaves[:new])
    assert p.path == [v.leaf_hash(leaves[old]), *ref.path(old, leaves[:new])]
    # the shapes differ: with distinct leaves at the same sizes the lists are never equal
    distinct = [b"d%d" % i for i in range(new)]
    assert make_tree(distinct).prove_consistency(old, new).path != ref.proof(old, distinct)
    if p.path == rfc:  # equal hashes in the right places (e.g. identical leaves)
        assert v.verify_consistency(old, new, p.path, r1, r2) is None
    else:
        with pytest.raises((v.MalformedInputError, v.ConsistencyError)):
            v.verify_consistency(old, new, p.path, r1, r2)
    assert v.verify_consistency(old, new, rfc, r1, r2) is None
