"""Writes tests/testdata/merkle/*.json: named positive and negative Merkle proof
cases built from the RFC 6962 vectors. Run: python -m tests.gen_testdata

Each file is one case:

* inclusion:   {"name", "kind": "inclusion", "leaf_hash", "index", "size",
                "proof": [hex...], "root", "expect"}
* consistency: {"name", "kind": "consistency", "old_size", "new_size",
                "proof": [hex...], "old_root", "new_root", "expect"}

Hashes are lowercase hex; sizes and indices are JSON integers. "expect" is
"ok", "MalformedInputError", "RootMismatchError" or "ConsistencyError".
Expectations are written by hand from the RFC semantics, not computed with
verifier/, so tests/test_merkle_testdata.py checks verifier against them.
The proofs themselves come from tests/reference.py (and equal the published
vectors, which tests/test_merkle_vectors.py checks).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests import reference as ref

OUT = Path(__file__).resolve().parent / "testdata" / "merkle"

LEAVES = ref.RFC6962_LEAVES
EMPTY = hashlib.sha256(b"").digest()
OTHER = hashlib.sha256(b"some other data").digest()

OK = "ok"
MALFORMED = "MalformedInputError"
MISMATCH = "RootMismatchError"
INCONSISTENT = "ConsistencyError"


def _root(n: int) -> bytes:
    return ref.mth(LEAVES[:n])


def _leaf(i: int) -> bytes:
    return ref.leaf(LEAVES[i])


def _path(i: int, n: int) -> list[bytes]:
    return ref.path(i, LEAVES[:n])


def _proof(m: int, n: int) -> list[bytes]:
    return ref.proof(m, LEAVES[:n])


def _flip(h: bytes, bit: int = 3) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def _replace(hashes: list[bytes], i: int, h: bytes) -> list[bytes]:
    out = list(hashes)
    out[i] = h
    return out


def inclusion(
    name: str,
    expect: str,
    index: int,
    size: int,
    proof: list[bytes],
    root: bytes,
    leaf: bytes | None = None,
) -> dict[str, Any]:
    """One inclusion case; the leaf defaults to the leaf hash of LEAVES[index]."""
    return {
        "name": name,
        "kind": "inclusion",
        "leaf_hash": (_leaf(index) if leaf is None else leaf).hex(),
        "index": index,
        "size": size,
        "proof": [h.hex() for h in proof],
        "root": root.hex(),
        "expect": expect,
    }


def consistency(
    name: str, expect: str, old: int, new: int, proof: list[bytes], old_root: bytes, new_root: bytes
) -> dict[str, Any]:
    """One consistency case."""
    return {
        "name": name,
        "kind": "consistency",
        "old_size": old,
        "new_size": new,
        "proof": [h.hex() for h in proof],
        "old_root": old_root.hex(),
        "new_root": new_root.hex(),
        "expect": expect,
    }


def cases() -> list[dict[str, Any]]:
    """Every case, in a fixed order."""
    out: list[dict[str, Any]] = []
    # ---- inclusion, positive: the RFC vectors and the last leaf of 7.
    for i, n in [(0, 1), (0, 8), (5, 8), (2, 3), (1, 5), (6, 7)]:
        out.append(inclusion(f"inclusion-ok-{i}-of-{n}", OK, i, n, _path(i, n), _root(n)))
    # ---- inclusion, negative.
    p58, r8 = _path(5, 8), _root(8)
    out += [
        inclusion("inclusion-wrong-leaf", MISMATCH, 5, 8, p58, r8, leaf=_leaf(4)),
        inclusion("inclusion-wrong-root", MISMATCH, 5, 8, p58, _root(7)),
        inclusion("inclusion-empty-tree-root", MISMATCH, 5, 8, p58, EMPTY),
        inclusion("inclusion-truncated-proof", MALFORMED, 5, 8, p58[:-1], r8),
        inclusion("inclusion-extra-hash-end", MALFORMED, 5, 8, [*p58, r8], r8),
        inclusion("inclusion-extra-hash-front", MALFORMED, 5, 8, [r8, *p58], r8),
        inclusion("inclusion-empty-proof", MALFORMED, 5, 8, [], r8),
        inclusion(
            "inclusion-flipped-bit-proof-0", MISMATCH, 5, 8, _replace(p58, 0, _flip(p58[0])), r8
        ),
        inclusion(
            "inclusion-flipped-bit-proof-2", MISMATCH, 5, 8, _replace(p58, 2, _flip(p58[2], 7)), r8
        ),
        inclusion("inclusion-flipped-bit-root", MISMATCH, 5, 8, p58, _flip(r8, 0)),
        inclusion("inclusion-flipped-bit-leaf", MISMATCH, 5, 8, p58, r8, leaf=_flip(_leaf(5))),
        inclusion("inclusion-swapped-proof-hashes", MISMATCH, 5, 8, [p58[1], p58[0], p58[2]], r8),
        # (4, 8) also needs 3 hashes: same length, wrong position.
        inclusion("inclusion-wrong-index-same-length", MISMATCH, 4, 8, p58, r8, leaf=_leaf(5)),
        # An inclusion proof does not bind the size: (5, 7) has the same length AND the
        # same left/right shape as (5, 8), so RFC 9162's algorithm accepts the size-8
        # proof and root for a claimed size 7. Pinned as "ok" on purpose.
        inclusion("inclusion-ok-size-8-proof-also-fits-size-7", OK, 5, 7, p58, r8),
        # (5, 6) needs 2 hashes, (5, 16) needs 4.
        inclusion("inclusion-wrong-size-shorter", MALFORMED, 5, 6, p58, r8),
        inclusion("inclusion-wrong-size-larger", MALFORMED, 5, 16, p58, r8),
        inclusion("inclusion-index-equals-size", MALFORMED, 8, 8, p58, r8, leaf=_leaf(5)),
        inclusion("inclusion-index-beyond-size", MALFORMED, 9, 8, p58, r8, leaf=_leaf(5)),
        inclusion("inclusion-size-zero", MALFORMED, 0, 0, [], EMPTY),
        inclusion("inclusion-nonempty-proof-size-1", MALFORMED, 0, 1, [_leaf(1)], _root(1)),
        inclusion("inclusion-leaf-hash-31-bytes", MALFORMED, 5, 8, p58, r8, leaf=_leaf(5)[:31]),
        inclusion("inclusion-leaf-hash-33-bytes", MALFORMED, 5, 8, p58, r8, leaf=_leaf(5) + b"\0"),
        inclusion(
            "inclusion-proof-hash-31-bytes", MALFORMED, 5, 8, _replace(p58, 1, p58[1][:31]), r8
        ),
        inclusion("inclusion-proof-hash-empty", MALFORMED, 5, 8, _replace(p58, 1, b""), r8),
        inclusion("inclusion-root-33-bytes", MALFORMED, 5, 8, p58, r8 + b"\0"),
    ]
    # ---- consistency, positive: the RFC vectors, old == 0 and old == new.
    for m, n in [(1, 1), (1, 8), (6, 8), (2, 5), (6, 7), (4, 8), (8, 8)]:
        out.append(
            consistency(f"consistency-ok-{m}-to-{n}", OK, m, n, _proof(m, n), _root(m), _root(n))
        )
    out += [
        consistency("consistency-ok-0-to-0", OK, 0, 0, [], EMPTY, EMPTY),
        consistency("consistency-ok-0-to-8", OK, 0, 8, [], EMPTY, _root(8)),
        consistency("consistency-ok-0-to-8-any-new-root", OK, 0, 8, [], EMPTY, OTHER),
    ]
    # ---- consistency, negative.
    c68, r6 = _proof(6, 8), _root(6)
    out += [
        consistency("consistency-wrong-old-root", INCONSISTENT, 6, 8, c68, _root(5), r8),
        consistency("consistency-wrong-new-root", INCONSISTENT, 6, 8, c68, r6, _root(7)),
        consistency("consistency-swapped-roots", INCONSISTENT, 6, 8, c68, r8, r6),
        consistency("consistency-truncated-proof", MALFORMED, 6, 8, c68[:-1], r6, r8),
        consistency("consistency-extra-hash-end", MALFORMED, 6, 8, [*c68, r8], r6, r8),
        consistency("consistency-extra-hash-front", MALFORMED, 6, 8, [c68[0], *c68], r6, r8),
        consistency("consistency-empty-proof", MALFORMED, 6, 8, [], r6, r8),
    ]
    for i in range(len(c68)):
        out.append(
            consistency(
                f"consistency-flipped-bit-proof-{i}",
                INCONSISTENT,
                6,
                8,
                _replace(c68, i, _flip(c68[i])),
                r6,
                r8,
            )
        )
    out += [
        consistency("consistency-flipped-bit-old-root", INCONSISTENT, 6, 8, c68, _flip(r6, 0), r8),
        consistency("consistency-flipped-bit-new-root", INCONSISTENT, 6, 8, c68, r6, _flip(r8, 0)),
        # (1, 8) also needs 3 hashes; (5, 8) needs 4; (6, 16) needs 4.
        consistency("consistency-wrong-old-size-same-length", INCONSISTENT, 1, 8, c68, r6, r8),
        # Like inclusion, the proof does not bind the new size: PROOF(6, D[8]) has the
        # shape of PROOF(6, D[7]), so it "proves" 6 -> 7 against the size-8 root.
        consistency("consistency-ok-6-to-8-proof-also-fits-6-to-7", OK, 6, 7, c68, r6, r8),
        consistency("consistency-wrong-old-size", MALFORMED, 5, 8, c68, r6, r8),
        consistency("consistency-wrong-new-size-larger", MALFORMED, 6, 16, c68, r6, r8),
        consistency("consistency-old-greater-than-new", MALFORMED, 8, 6, c68, r8, r6),
        consistency("consistency-old-greater-than-new-empty", MALFORMED, 1, 0, [], _root(1), EMPTY),
        consistency("consistency-nonempty-proof-from-size-0", MALFORMED, 0, 8, [r8], EMPTY, r8),
        consistency("consistency-size-0-nonempty-old-root", INCONSISTENT, 0, 8, [], _root(1), r8),
        consistency("consistency-0-to-0-wrong-new-root", INCONSISTENT, 0, 0, [], EMPTY, _root(1)),
        consistency(
            "consistency-equal-sizes-different-roots", INCONSISTENT, 8, 8, [], r8, _root(7)
        ),
        consistency("consistency-equal-sizes-nonempty-proof", MALFORMED, 8, 8, [r8], r8, r8),
        consistency("consistency-old-root-31-bytes", MALFORMED, 6, 8, c68, r6[:31], r8),
        consistency("consistency-new-root-33-bytes", MALFORMED, 6, 8, c68, r6, r8 + b"\0"),
        consistency(
            "consistency-proof-hash-31-bytes",
            MALFORMED,
            6,
            8,
            _replace(c68, 1, c68[1][:31]),
            r6,
            r8,
        ),
    ]
    return out


def render(case: dict[str, Any]) -> str:
    """The exact file text of one case."""
    return json.dumps(case, indent=2) + "\n"


def build() -> dict[str, str]:
    """File name -> file text, for every case (the whole content of OUT)."""
    files: dict[str, str] = {}
    for case in cases():
        fname = case["name"] + ".json"
        if fname in files:
            raise ValueError(f"duplicate case name {case['name']}")
        files[fname] = render(case)
    return files


def main() -> None:
    files = build()
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for fname, text in files.items():
        (OUT / fname).write_text(text)
    print(f"wrote {len(files)} cases to {OUT}")


if __name__ == "__main__":
    main()
