"""Runs every case in tests/testdata/merkle/*.json (written by tests/gen_testdata.py)
through verify_inclusion / verify_consistency and checks the exact outcome, and
checks that the files on disk are exactly what the generator produces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import verifier as v
from tests import gen_testdata

DATA = Path(__file__).resolve().parent / "testdata" / "merkle"
FILES = sorted(DATA.glob("*.json"))

EXPECT = {
    "ok": None,
    "MalformedInputError": v.MalformedInputError,
    "RootMismatchError": v.RootMismatchError,
    "ConsistencyError": v.ConsistencyError,
}
KEYS = {
    "inclusion": {"name", "kind", "leaf_hash", "index", "size", "proof", "root", "expect"},
    "consistency": {
        "name",
        "kind",
        "old_size",
        "new_size",
        "proof",
        "old_root",
        "new_root",
        "expect",
    },
}


def _run(case: dict[str, Any]) -> None:
    h = bytes.fromhex
    proof = [h(x) for x in case["proof"]]
    if case["kind"] == "inclusion":
        return v.verify_inclusion(
            h(case["leaf_hash"]), case["index"], case["size"], proof, h(case["root"])
        )
    return v.verify_consistency(
        case["old_size"], case["new_size"], proof, h(case["old_root"]), h(case["new_root"])
    )


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_case(path: Path) -> None:
    """The case's outcome is exactly the one named in "expect"."""
    case = json.loads(path.read_text())
    assert set(case) == KEYS[case["kind"]]
    assert case["name"] == path.stem
    want = EXPECT[case["expect"]]
    if want is None:
        assert _run(case) is None
    else:
        with pytest.raises(want) as info:
            _run(case)
        assert type(info.value) is want, f"raised {type(info.value).__name__}: {info.value}"
        assert issubclass(want, (v.MalformedInputError, v.VerificationError))


def test_files_match_generator() -> None:
    """The files on disk are byte for byte what gen_testdata.build() produces, and there
    are no extra files (rerun `python -m tests.gen_testdata` after changing the generator)."""
    built = gen_testdata.build()
    on_disk = {f.name: f.read_text() for f in FILES}
    assert sorted(on_disk) == sorted(built)
    for name, text in built.items():
        assert on_disk[name] == text, name


def test_testdata_covers_every_outcome_and_kind() -> None:
    """The data set is not empty or lopsided: each (kind, expected outcome) pair occurs."""
    seen = {(c["kind"], c["expect"]) for c in (json.loads(f.read_text()) for f in FILES)}
    assert seen == {
        ("inclusion", "ok"),
        ("inclusion", "MalformedInputError"),
        ("inclusion", "RootMismatchError"),
        ("consistency", "ok"),
        ("consistency", "MalformedInputError"),
        ("consistency", "ConsistencyError"),
    }
    assert len(FILES) >= 60
