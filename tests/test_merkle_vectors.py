"""RFC 6962 / RFC 9162 reference vectors for verifier's Merkle hashing and proofs.

The vectors are the ones used by certificate-transparency-go and
transparency-dev/merkle (leaves D[0..7], roots of every prefix, a handful of
inclusion and consistency proofs). Each vector is also fed through the
transparency-dev style corruptions (``corruptInclusionProof`` and
``corruptConsistencyProof`` in transparency-dev/merkle/proof/verify_test.go),
and every corruption must be rejected with the *exact* error class.

Which class is expected is derived here from tests/reference.py (proof lengths
come from the recursive RFC definitions, not from verifier's bit formulas):
a proof of the wrong length, an impossible index/size or a hash that is not 32
bytes is ``MalformedInputError``; well-formed input with wrong data is
``RootMismatchError`` (inclusion) or ``ConsistencyError`` (consistency).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache

import pytest

import verifier as v
from tests import reference as ref

U64 = 2**64  # transparency-dev uses uint64: index - 1 for index 0 wraps around.

LEAVES = ref.RFC6962_LEAVES

EMPTY_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

ROOTS = {
    0: bytes.fromhex(EMPTY_HEX),
    1: bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    2: bytes.fromhex("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    3: bytes.fromhex("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    4: bytes.fromhex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    5: bytes.fromhex("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    6: bytes.fromhex("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    7: bytes.fromhex("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    8: bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
}

H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_D37E = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
H_FAC5 = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
H_6E34 = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
H_B086 = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"


def _hashes(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


# (index, size, proof): 0-based leaf index.
INCLUSION = [
    (0, 1, _hashes()),
    (0, 8, _hashes(H_96A2, H_5F08, H_6B47)),
    (5, 8, _hashes(H_BC1A, H_CA85, H_D37E)),
    (2, 3, _hashes(H_FAC5)),
    (1, 5, _hashes(H_6E34, H_5F08, H_BC1A)),
]

# (old_size, new_size, proof)
CONSISTENCY = [
    (1, 1, _hashes()),
    (1, 8, _hashes(H_96A2, H_5F08, H_6B47)),
    (6, 8, _hashes(H_0EBC, H_CA85, H_D37E)),
    (2, 5, _hashes(H_5F08, H_BC1A)),
    (6, 7, _hashes(H_0EBC, H_B086, H_D37E)),
]

SOME_HASH = hashlib.sha256(b"some other data").digest()  # transparency-dev's "random root"


def _incl_id(vec: tuple[int, int, list[bytes]]) -> str:
    return f"i{vec[0]}-n{vec[1]}"


def _cons_id(vec: tuple[int, int, list[bytes]]) -> str:
    return f"{vec[0]}-to-{vec[1]}"


def _flip(h: bytes, bit: int = 3) -> bytes:
    """``h`` with one bit flipped in its first byte (transparency-dev flips bit 3)."""
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def _expect(call: Callable[[], object], expected: type[BaseException] | None) -> None:
    """Run ``call``; it must return None, or raise exactly ``expected`` (not a subclass)."""
    if expected is None:
        assert call() is None
        return
    with pytest.raises(expected) as info:
        call()
    assert type(info.value) is expected, f"raised {type(info.value).__name__}: {info.value}"


# ---------------------------------------------------------------- RFC lengths


@cache
def ref_inclusion_len(index: int, size: int) -> int | None:
    """len(PATH(index, D[size])) from the recursive reference; None if index >= size."""
    if not 0 <= index < size:
        return None
    return len(ref.path(index, [b""] * size))


@cache
def ref_consistency_len(old: int, new: int) -> int | None:
    """len(PROOF(old, D[new])) from the recursive reference; None if old > new."""
    if not 0 <= old <= new:
        return None
    return len(ref.proof(old, [b""] * new))


# ---------------------------------------------------------------- positive


def test_empty_root() -> None:
    """EMPTY_ROOT, root([]) and the reference MTH of nothing are SHA-256 of nothing."""
    assert v.EMPTY_ROOT == ROOTS[0] == bytes.fromhex(EMPTY_HEX)
    assert v.root([]) == ROOTS[0]
    assert v.root_from_leaf_hashes([]) == ROOTS[0]
    assert ref.mth([]) == ROOTS[0]


@pytest.mark.parametrize("size", range(9))
def test_root_of_each_prefix(size: int) -> None:
    """root(), root_from_leaf_hashes() and reference.mth() give the RFC root of D[0:size]."""
    prefix = LEAVES[:size]
    assert v.root(prefix) == ROOTS[size]
    assert v.root_from_leaf_hashes([v.leaf_hash(d) for d in prefix]) == ROOTS[size]
    assert ref.mth(prefix) == ROOTS[size]


def test_leaf_and_node_hash_vectors() -> None:
    """Leaf hashes of D[0], D[1] and their node hash are the RFC values."""
    assert v.leaf_hash(LEAVES[0]) == ROOTS[1]
    assert v.leaf_hash(LEAVES[1]) == bytes.fromhex(H_96A2)
    assert v.node_hash(ROOTS[1], bytes.fromhex(H_96A2)) == ROOTS[2]


@pytest.mark.parametrize("vec", INCLUSION, ids=_incl_id)
def test_inclusion_vector_verifies(vec: tuple[int, int, list[bytes]]) -> None:
    """Each RFC inclusion proof has the required length and reproduces the root."""
    index, size, proof = vec
    leaf = v.leaf_hash(LEAVES[index])
    assert v.inclusion_proof_length(index, size) == len(proof)
    assert v.root_from_inclusion_proof(leaf, index, size, proof) == ROOTS[size]
    assert v.verify_inclusion(leaf, index, size, proof, ROOTS[size]) is None


@pytest.mark.parametrize("vec", INCLUSION, ids=_incl_id)
def test_reference_reproduces_inclusion_vector(vec: tuple[int, int, list[bytes]]) -> None:
    """tests/reference.path yields exactly the RFC inclusion proof."""
    index, size, proof = vec
    assert ref.path(index, LEAVES[:size]) == proof


@pytest.mark.parametrize("vec", CONSISTENCY, ids=_cons_id)
def test_consistency_vector_verifies(vec: tuple[int, int, list[bytes]]) -> None:
    """Each RFC consistency proof has the required length and links the two roots."""
    old, new, proof = vec
    assert v.consistency_proof_length(old, new) == len(proof)
    assert v.root_from_consistency_proof(old, new, proof, ROOTS[old]) == ROOTS[new]
    assert v.verify_consistency(old, new, proof, ROOTS[old], ROOTS[new]) is None


@pytest.mark.parametrize("vec", CONSISTENCY, ids=_cons_id)
def test_reference_reproduces_consistency_vector(vec: tuple[int, int, list[bytes]]) -> None:
    """tests/reference.proof yields exactly the RFC consistency proof."""
    old, new, proof = vec
    assert ref.proof(old, LEAVES[:new]) == proof


# ---------------------------------------------------------------- corruptions


def _incl_class_for(index: int, size: int, proof_len: int) -> type[Exception]:
    """The class a changed (index, size) must raise with an otherwise valid proof."""
    if index >= U64 or size >= U64:
        return ValueError
    want = ref_inclusion_len(index, size)
    if want is None or want != proof_len:
        return v.MalformedInputError
    return v.RootMismatchError


def inclusion_probes(index: int, size: int, proof: list[bytes]) -> list[tuple[str, tuple, type]]:
    """transparency-dev's corruptInclusionProof, plus an inserted hash and a short leaf.

    Each probe is (description, verify_inclusion args, expected exception class).
    """
    root = ROOTS[size]
    leaf = v.leaf_hash(LEAVES[index])
    n = len(proof)
    probes: list[tuple[str, tuple, type]] = []
    for desc, i2 in [
        ("index-1", (index - 1) % U64),
        ("index+1", index + 1),
        ("index^2", index ^ 2),
    ]:
        probes.append((desc, (leaf, i2, size, proof, root), _incl_class_for(i2, size, n)))
    for desc, s2 in [("size*2", size * 2), ("size//2", size // 2)]:
        probes.append((desc, (leaf, index, s2, proof, root), _incl_class_for(index, s2, n)))
    probes += [
        ("wrong-leaf", (v.leaf_hash(b"WrongLeaf"), index, size, proof, root), v.RootMismatchError),
        ("short-wrong-leaf", (b"WrongLeaf", index, size, proof, root), v.MalformedInputError),
        ("empty-tree-root", (leaf, index, size, proof, v.EMPTY_ROOT), v.RootMismatchError),
        ("random-root", (leaf, index, size, proof, SOME_HASH), v.RootMismatchError),
        ("trailing-garbage", (leaf, index, size, [*proof, b""], root), v.MalformedInputError),
        ("trailing-root", (leaf, index, size, [*proof, root], root), v.MalformedInputError),
        ("preceding-garbage", (leaf, index, size, [b"", *proof], root), v.MalformedInputError),
        ("preceding-root", (leaf, index, size, [root, *proof], root), v.MalformedInputError),
        (
            "inserted-component",
            (leaf, index, size, [*proof[: n // 2], SOME_HASH, *proof[n // 2 :]], root),
            v.MalformedInputError,
        ),
    ]
    for i in range(n):
        wrong = list(proof)
        wrong[i] = _flip(wrong[i])
        probes.append((f"flip-proof[{i}]", (leaf, index, size, wrong, root), v.RootMismatchError))
    if n:
        probes.append(
            ("removed-component", (leaf, index, size, proof[:-1], root), v.MalformedInputError)
        )
    return probes


def _cons_class_for(
    old: int, new: int, proof: list[bytes], r1: bytes, r2: bytes
) -> type[Exception] | None:
    """The outcome of verify_consistency for changed sizes, from the documented semantics
    and reference lengths. None means the call must succeed."""
    if old > new:
        return v.MalformedInputError
    if old == 0:
        if proof:
            return v.MalformedInputError
        return None if r1 == v.EMPTY_ROOT else v.ConsistencyError
    if ref_consistency_len(old, new) != len(proof):
        return v.MalformedInputError
    return v.ConsistencyError


def consistency_probes(
    old: int, new: int, proof: list[bytes]
) -> list[tuple[str, tuple, type | None]]:
    """transparency-dev's corruptConsistencyProof, plus an inserted hash and 32-byte wrong roots.

    Probes that leave the input unchanged (swapped equal roots, an 'empty' proof
    that was already empty) are dropped, as transparency-dev skips trivial proofs.
    """
    r1, r2 = ROOTS[old], ROOTS[new]
    original = (old, new, proof, r1, r2)
    n = len(proof)
    probes: list[tuple[str, tuple, type | None]] = []
    for desc, o2 in [("old-1", (old - 1) % U64), ("old+1", old + 1), ("old^2", old ^ 2)]:
        probes.append((desc, (o2, new, proof, r1, r2), _cons_class_for(o2, new, proof, r1, r2)))
    for desc, n2 in [("new*2", new * 2), ("new//2", new // 2)]:
        probes.append((desc, (old, n2, proof, r1, r2), _cons_class_for(old, n2, proof, r1, r2)))
    mismatch = v.ConsistencyError
    probes += [
        ("short-wrong-old-root", (old, new, proof, b"WrongRoot", r2), v.MalformedInputError),
        ("short-wrong-new-root", (old, new, proof, r1, b"WrongRoot"), v.MalformedInputError),
        ("wrong-old-root", (old, new, proof, SOME_HASH, r2), mismatch),
        ("wrong-new-root", (old, new, proof, r1, SOME_HASH), mismatch),
        ("empty-tree-old-root", (old, new, proof, v.EMPTY_ROOT, r2), mismatch),
        ("swapped-roots", (old, new, proof, r2, r1), mismatch),
        ("empty-proof", (old, new, [], r1, r2), v.MalformedInputError),
        ("trailing-garbage", (old, new, [*proof, b""], r1, r2), v.MalformedInputError),
        ("trailing-old-root", (old, new, [*proof, r1], r1, r2), v.MalformedInputError),
        ("trailing-new-root", (old, new, [*proof, r2], r1, r2), v.MalformedInputError),
        ("preceding-garbage", (old, new, [b"", *proof], r1, r2), v.MalformedInputError),
        ("preceding-old-root", (old, new, [r1, *proof], r1, r2), v.MalformedInputError),
        ("preceding-new-root", (old, new, [r2, *proof], r1, r2), v.MalformedInputError),
        (
            "inserted-component",
            (old, new, [*proof[: n // 2], SOME_HASH, *proof[n // 2 :]], r1, r2),
            v.MalformedInputError,
        ),
    ]
    if n:
        probes.append(
            ("preceding-proof[0]", (old, new, [proof[0], *proof], r1, r2), v.MalformedInputError)
        )
        probes.append(("truncated", (old, new, proof[:-1], r1, r2), v.MalformedInputError))
    for i in range(n):
        wrong = list(proof)
        wrong[i] = _flip(wrong[i])
        probes.append((f"flip-proof[{i}]", (old, new, wrong, r1, r2), mismatch))
    return [p for p in probes if p[1] != original]


INCLUSION_PROBES = [
    pytest.param(args, want, id=f"{_incl_id(vec)}-{desc}")
    for vec in INCLUSION
    for desc, args, want in inclusion_probes(*vec)
]

CONSISTENCY_PROBES = [
    pytest.param(args, want, id=f"{_cons_id(vec)}-{desc}")
    for vec in CONSISTENCY
    for desc, args, want in consistency_probes(*vec)
]


@pytest.mark.parametrize(("args", "want"), INCLUSION_PROBES)
def test_inclusion_corruption_rejected(args: tuple, want: type[Exception]) -> None:
    """A corrupted inclusion vector raises exactly the expected class."""
    _expect(lambda: v.verify_inclusion(*args), want)


@pytest.mark.parametrize(("args", "want"), CONSISTENCY_PROBES)
def test_consistency_corruption_rejected(args: tuple, want: type[Exception] | None) -> None:
    """A corrupted consistency vector raises exactly the expected class."""
    _expect(lambda: v.verify_consistency(*args), want)


def test_corruption_tables_are_substantial() -> None:
    """Guards against the probe tables silently shrinking (e.g. a filter bug)."""
    assert len(INCLUSION_PROBES) >= 5 * 14
    assert len(CONSISTENCY_PROBES) >= 4 * 20
    # Every consistency probe of a non-trivial vector is a rejection.
    assert all(p.values[1] is not None for p in CONSISTENCY_PROBES)
    assert {p.values[1] for p in INCLUSION_PROBES} == {
        v.MalformedInputError,
        v.RootMismatchError,
    }


def test_root_mismatch_carries_roots() -> None:
    """RootMismatchError exposes the expected and the calculated root."""
    index, size, proof = INCLUSION[2]
    leaf = v.leaf_hash(LEAVES[index])
    with pytest.raises(v.RootMismatchError) as info:
        v.verify_inclusion(leaf, index, size, proof, SOME_HASH)
    assert info.value.expected == SOME_HASH
    assert info.value.calculated == ROOTS[size]
    assert isinstance(info.value, v.VerificationError)
    assert not isinstance(info.value, v.MalformedInputError)
