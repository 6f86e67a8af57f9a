"""Writes tests/testdata/values/*.json: metadata/payload objects at and just over the
limit of JSON values per object (specs/entry.md §1.3, 4,096 values, object keys
included). Run: python -m tests.gen_values_data

Each file holds the exact canonical JSON bytes of one object. The file name says
what a verifier must do with a statement carrying it as ``payload`` or
``metadata``: ``ok-*`` parses, ``malformed-*`` is MalformedInputError. The counts
are written here by hand from the rule, not computed with verifier/.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent / "testdata" / "values"


def _nulls(n: int) -> bytes:
    return b"[" + b",".join([b"null"] * n) + b"]"


def _keys(n: int, last: bytes = b"0") -> bytes:
    """An object of n keys k0000.. with value 0 (the last one's value is ``last``)."""
    items = [b'"k%04d":0' % i for i in range(n - 1)] + [b'"k%04d":' % (n - 1) + last]
    return b"{" + b",".join(items) + b"}"


CASES: dict[str, bytes] = {
    # {"a": [null x n]}: the object, its key "a", the array and n elements = n + 3
    "ok-array-4096": b'{"a":' + _nulls(4093) + b"}",
    "malformed-array-4097": b'{"a":' + _nulls(4094) + b"}",
    # {"a": [[], [], ...]}: empty arrays count one each, like any value
    "ok-empty-arrays-4096": b'{"a":[' + b",".join([b"[]"] * 4093) + b"]}",
    "malformed-empty-arrays-4097": b'{"a":[' + b",".join([b"[]"] * 4094) + b"]}",
    # n keys with scalar values: 1 + 2n; keys count, so 2,048 keys are one too many
    "ok-keys-4095": _keys(2047),
    "ok-keys-4096": _keys(2047, b"[0]"),
    "malformed-keys-4097": _keys(2048),
}


def _nested(nulls: int) -> bytes:
    """{"a": {"a": ... {} ...}, "b": [null x nulls]}: 31 objects under the top one. Values:
    the top object, its keys "a" and "b", the array, the nulls, and the 31 objects with
    the keys of 30 of them (61): nulls + 65."""
    inner = b"{}"
    for _ in range(30):
        inner = b'{"a":' + inner + b"}"
    return b'{"a":' + inner + b',"b":' + _nulls(nulls) + b"}"


# the count spans every level
CASES["ok-nested-4096"] = _nested(4031)
CASES["malformed-nested-4097"] = _nested(4032)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in CASES.items():
        (OUT / f"{name}.json").write_bytes(data)


if __name__ == "__main__":
    main()
