"""Canonical statement and entry bytes (specs/entry.md): encoding, strict parsing, ids."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from tests.logsim import T0, sample_log

LOG, PIPE = sample_log(models=3, seed="entry")
ENTRY = LOG.entries[2]  # a register by the pipeline
SIG = b"\x07" * 64
LOG_HEX = "0123456789abcdef" * 4  # a genesis snapshot hash: the log a statement is for


def reg(metadata: Any = None, **over: Any) -> v.Register:
    fields: dict[str, Any] = dict(
        v=2, id="stmt-000000000001-x", actor="ml-pipeline", origin="example.com/models",
        claimed_at=T0, log=LOG_HEX, name="m", owner="team", model_type="ml_model", tier="high",
        purpose="p", status="active", metadata={} if metadata is None else metadata)
    fields.update(over)
    return v.Register(**fields)


def event(payload: Any) -> v.Event:
    return v.Event(v=2, id="stmt-000000000002-x", actor="ml-pipeline", origin="example.com/models",
                   claimed_at=T0, log=LOG_HEX, model="m", event_type="note", payload=payload)


def make_entry(st_bytes: bytes, **over: Any) -> bytes:
    fields: dict[str, Any] = dict(index=3, recorded_at=T0, prev=None, statement=st_bytes,
                                  key_id=b"\x01\x02\x03\x04", sig=SIG)
    fields.update(over)
    return v.entry_bytes(**fields)


def entry_doc(data: bytes = ENTRY) -> dict[str, Any]:
    return json.loads(data)


def dumps(doc: Any, **kw: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, **kw).encode()


def canonical_py(doc: Any) -> bytes:
    """An independent canonical encoder (stdlib json), for documents without floats."""
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# -- canonical form ------------------------------------------------------------------

@pytest.mark.parametrize("i", range(len(LOG.entries)))
def test_entries_are_canonical(i: int) -> None:
    """Every logsim entry and its statement are sorted-key, whitespace-free JSON."""
    data = LOG.entries[i]
    doc = json.loads(data)
    st_doc = json.loads(doc["statement"])
    if not any(isinstance(x, float) for x in _leaves(st_doc)):
        assert canonical_py(st_doc) == doc["statement"].encode()
    assert canonical_py(doc) == data
    assert list(doc) == sorted(doc) and list(st_doc) == sorted(st_doc)


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [y for v_ in x.values() for y in _leaves(v_)]
    if isinstance(x, list):
        return [y for v_ in x for y in _leaves(v_)]
    return [x]


def test_entry_bytes_exact() -> None:
    """entry_bytes writes exactly the documented fields, sorted, hex key ID, base64 sig."""
    st_bytes = v.statement_bytes(reg())
    data = make_entry(st_bytes, prev="ab" * 32)
    assert data == canonical_py({
        "index": 3, "key_id": "01020304", "prev": "ab" * 32, "recorded_at": T0,
        "sig": "BwcH" * 21 + "Bw==",
        "statement": st_bytes.decode(), "v": 1})


def test_statement_bytes_exact() -> None:
    """statement_bytes sorts keys (the op tag too) and nested metadata keys."""
    data = v.statement_bytes(reg({"z": 1, "a": {"y": [1, "x"], "b": None}}))
    assert data == (
        b'{"actor":"ml-pipeline","claimed_at":1735689600000000000,"id":"stmt-000000000001-x",'
        b'"log":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",'
        b'"metadata":{"a":{"b":null,"y":[1,"x"]},"z":1},"model_type":"ml_model","name":"m",'
        b'"op":"register","origin":"example.com/models","owner":"team","purpose":"p",'
        b'"status":"active","tier":"high","v":2}')


def test_genesis_statement_bytes_exact() -> None:
    """A v2 genesis carries claim_skew and claim_window, and no ``log`` field."""
    data = v.statement_bytes(v.Genesis(
        v=2, id="stmt-000000000000-x", actor="risk-admin", origin="example.com/models",
        claimed_at=T0, log_key="k", admin_key="a", claim_skew=300 * 10**9,
        claim_window=86_400 * 10**9))
    assert data == (
        b'{"actor":"risk-admin","admin_key":"a","claim_skew":300000000000,'
        b'"claim_window":86400000000000,"claimed_at":1735689600000000000,'
        b'"id":"stmt-000000000000-x","log_key":"k","op":"genesis",'
        b'"origin":"example.com/models","v":2}')
    assert v.parse_statement(data).claim_window == 86_400 * 10**9
    with_log = data.replace(b'"log_key"', b'"log":"' + LOG_HEX.encode() + b'","log_key"')
    with pytest.raises(v.MalformedInputError, match="unknown field `log`"):
        v.parse_statement(with_log)
    without_skew = data.replace(b'"claim_skew":300000000000,', b"")
    with pytest.raises(v.MalformedInputError, match="claim_skew"):
        v.parse_statement(without_skew)


def test_parse_entry_fields() -> None:
    """parse_entry decodes key ID, signature, statement bytes and leaf hash."""
    p = v.parse_entry(ENTRY)
    doc = entry_doc()
    assert p.entry.index == 2 and p.key_id == PIPE.key.key_id
    assert p.statement_bytes == doc["statement"].encode()
    assert PIPE.key.verify(p.sig, p.statement_bytes)
    assert isinstance(p.statement, v.Register) and p.statement.name == "model_00"
    assert p.leaf_hash == hashlib.sha256(b"\x00" + ENTRY).digest()


def test_snapshot_hash() -> None:
    """snapshot_hash is the RFC 9162 leaf hash of the exact entry bytes, in hex."""
    for data in LOG.entries[:5]:
        expected = hashlib.sha256(b"\x00" + data).hexdigest()
        assert v.snapshot_hash(data) == v.leaf_hash(data).hex() == expected
        assert v.parse_entry(data).snapshot_hash == expected


def test_model_hash() -> None:
    """model_hash is SHA-256 of canonical {name, owner, registered_at}; each field matters."""
    expected = hashlib.sha256(
        b'{"name":"fraud","owner":"risk","registered_at":1735689600000000000}').hexdigest()
    assert v.model_hash("fraud", "risk", T0) == expected
    assert v.model_hash("fraud", "risk", T0) == v.model_hash("fraud", "risk", T0)
    others = {v.model_hash("fraud2", "risk", T0), v.model_hash("fraud", "risk2", T0),
              v.model_hash("fraud", "risk", T0 + 1)}
    assert expected not in others and len(others) == 3


def test_model_hash_unicode_not_escaped() -> None:
    """Non-ASCII names are hashed as raw UTF-8, not \\u escapes."""
    expected = hashlib.sha256(
        '{"name":"modèle","owner":"équipe","registered_at":0}'.encode()).hexdigest()
    assert v.model_hash("modèle", "équipe", 0) == expected


# -- parse_entry rejections --------------------------------------------------------------

def _reordered() -> bytes:
    doc = entry_doc()
    return dumps(dict(reversed(list(doc.items()))), separators=(",", ":"))


def _with_space() -> bytes:
    return ENTRY.replace(b'"index":', b'"index": ', 1)


def _duplicate_key() -> bytes:
    return ENTRY.replace(b'{"index":2,', b'{"index":2,"index":2,', 1)


def _field(**changes: Any) -> bytes:
    doc = entry_doc()
    for k, val in changes.items():
        if val is _DROP:
            del doc[k]
        else:
            doc[k] = val
    return canonical_py(doc)


_DROP = object()
_STMT = entry_doc()["statement"]

BAD_ENTRIES = [
    ("reordered keys", _reordered(), "canonical"),
    ("added space", _with_space(), "canonical"),
    ("trailing newline", ENTRY + b"\n", "canonical"),
    ("leading space", b" " + ENTRY, "canonical"),
    ("duplicate key", _duplicate_key(), "canonical|duplicate"),
    ("escaped char", ENTRY.replace(b'"index"', b'"\\u0069ndex"', 1), "canonical"),
    ("unknown field", _field(extra=1), "unknown|extra"),
    ("missing prev", _field(prev=_DROP), "missing|prev"),
    ("missing sig", _field(sig=_DROP), "missing|sig"),
    ("version 2", _field(v=2), "v"),
    ("version string", _field(v="1"), "v"),
    ("negative index", _field(index=-1), "index"),
    ("float index", ENTRY.replace(b'"index":2', b'"index":2.0', 1), "index"),
    ("recorded_at over int64", _field(recorded_at=2**63), "recorded_at"),
    ("prev not hex", _field(prev="AB" * 32), "prev"),
    ("prev short", _field(prev="ab" * 31), "prev"),
    ("key_id uppercase", _field(key_id=entry_doc()["key_id"].upper()), "key_id"),
    ("key_id bytes", _field(key_id="0102030"), "key_id"),
    ("sig 63 bytes", _field(sig="A" * 84), "64 bytes"),
    ("sig 65 bytes", _field(sig="A" * 87 + "="), "64 bytes"),
    ("sig bad base64", _field(sig="!" * 88), "base64"),
    ("statement not canonical", _field(statement=_STMT.replace('"v":2', '"v": 2')), "canonical"),
    ("statement unknown op", _field(statement=_STMT.replace('"register"', '"deregister"')),
     "op|tag"),
    ("statement v1", _field(statement=_STMT.replace('"v":2', '"v":1')), "v"),
    ("statement v3", _field(statement=_STMT.replace('"v":2', '"v":3')), "v"),
    ("statement without log", _field(statement=_STMT.replace(f'"log":"{LOG.log_id}",', '')),
     "log"),
    ("statement log uppercase",
     _field(statement=_STMT.replace(f'"log":"{LOG.log_id}"', f'"log":"{LOG.log_id.upper()}"')),
     "log"),
    ("statement log short",
     _field(statement=_STMT.replace(f'"log":"{LOG.log_id}"', f'"log":"{LOG.log_id[2:]}"')),
     "log"),
    ("statement extra field", _field(statement=_STMT[:-1] + ',"zz":1}'), "unknown|zz"),
    ("statement missing field", _field(statement=_STMT.replace('"tier":"high",', '')), "tier"),
    ("statement not JSON", _field(statement="not json"), "malformed|statement"),
    ("name trailing newline", _field(statement=_STMT.replace('model_00', 'model_00\\n')), "name"),
    ("actor trailing newline",
     _field(statement=_STMT.replace('"actor":"ml-pipeline"', '"actor":"ml-pipeline\\n"')),
     "actor"),
    ("id trailing newline", _field(statement=_STMT.replace('-ml-pipeline"', '-ml-pipeline\\n"', 1)),
     "id"),
    ("prev trailing newline", _field(prev="ab" * 32 + "\n"), "prev"),
    ("key_id trailing newline", _field(key_id=entry_doc()["key_id"] + "\n"), "key_id"),
    ("statement is array", _field(statement="[]"), "statement"),
    ("statement is object", ENTRY.replace(b'"statement":"', b'"statement":{"a":"', 1), "."),
    ("invalid UTF-8", ENTRY.replace(b"model_00", b"model_\xff0", 1), "."),
    ("invalid UTF-8 key", ENTRY.replace(b'"index"', b'"ind\xc3x"', 1), "."),
    ("lone surrogate escape", ENTRY.replace(b"model_00", b"model_\\ud800", 1), "."),
    ("not an object", b"[1,2]", "."),
    ("empty", b"", "."),
    ("oversize", b" " * 65_536, "65535"),
]


@pytest.mark.parametrize("data,reason", [(d, r) for _, d, r in BAD_ENTRIES],
                         ids=[i for i, _, _ in BAD_ENTRIES])
def test_parse_entry_rejects(data: bytes, reason: str) -> None:
    """Non-canonical, schema-violating or oversize entries are MalformedInputError."""
    assert data != ENTRY
    with pytest.raises(v.MalformedInputError, match=reason):
        v.parse_entry(data)


def test_field_helper_identity() -> None:
    """The field-editing helper reproduces the entry when nothing changes."""
    assert _field() == ENTRY


def _padded_entry(pad: int) -> bytes:
    st_bytes = msgspec.json.encode(reg({"pad": "x" * pad}), order="sorted")
    entry = v.Entry(v=1, index=3, recorded_at=T0, prev=None, statement=st_bytes.decode(),
                    key_id="01020304", sig="BwcH" * 21 + "Bw==")
    return msgspec.json.encode(entry, order="sorted")


def test_entry_size_limit_exact() -> None:
    """An entry of exactly 65,535 bytes parses; one byte more is MalformedInputError."""
    base = len(_padded_entry(0))
    at_limit = _padded_entry(65_535 - base)
    assert len(at_limit) == 65_535
    assert v.parse_entry(at_limit).entry.index == 3
    over = _padded_entry(65_536 - base)
    with pytest.raises(v.MalformedInputError, match="65535"):
        v.parse_entry(over)


def test_entry_bytes_refuses_oversize() -> None:
    """entry_bytes will not write more than 65,535 bytes (quotes escape into the entry)."""
    st_bytes = v.statement_bytes(reg({"q": '"' * 32_000}))
    with pytest.raises(ValueError):
        make_entry(st_bytes)


def test_entry_bytes_refuses_bad_key_id_or_sig() -> None:
    """entry_bytes needs a 4-byte key ID and a 64-byte signature."""
    st_bytes = v.statement_bytes(reg())
    with pytest.raises(ValueError):
        make_entry(st_bytes, key_id=b"\x01\x02\x03")
    with pytest.raises(ValueError):
        make_entry(st_bytes, sig=SIG[:63])


def test_parse_entry_type_error() -> None:
    """A str entry is API misuse."""
    with pytest.raises(TypeError):
        v.parse_entry(ENTRY.decode())  # type: ignore[arg-type]


def test_entry_round_trip() -> None:
    """entry_bytes -> parse_entry gives back every part."""
    st_bytes = v.statement_bytes(reg({"k": [1, 2.5, None, True, "é"]}))
    data = make_entry(st_bytes, prev="0f" * 32, index=9)
    p = v.parse_entry(data)
    assert (p.entry.index, p.entry.prev, p.statement_bytes, p.key_id, p.sig) == (
        9, "0f" * 32, st_bytes, b"\x01\x02\x03\x04", SIG)
    assert p.statement == reg({"k": [1, 2.5, None, True, "é"]})


# -- statement_bytes refusals ---------------------------------------------------------------

def _nested(levels: int) -> dict[str, Any]:
    m: Any = 1
    for _ in range(levels):
        m = {"a": m}
    return m


@pytest.mark.parametrize("bad,exc", [
    ({"x": math.nan}, ValueError),
    ({"x": math.inf}, ValueError),
    ({"x": [-math.inf]}, ValueError),
    ({1: "a"}, TypeError),
    ({"x": {None: 1}}, TypeError),
    ({"x": {(1, 2): 1}}, TypeError),
    ({"x": b"bytes"}, TypeError),
    ({"x": {1, 2}}, TypeError),
    ({"x": 2**63}, ValueError),
    ({"x": -(2**63) - 1}, ValueError),
    ({"x": [2**64]}, ValueError),
    ({"x": "\ud800"}, ValueError),
    (_nested(33), ValueError),
])
def test_statement_bytes_refuses(bad: dict[str, Any], exc: type[Exception]) -> None:
    """Values JSON cannot carry exactly are refused in metadata and payloads."""
    with pytest.raises(exc):
        v.statement_bytes(reg(bad))
    with pytest.raises(exc):
        v.statement_bytes(event(bad))


def test_statement_bytes_limits_ok() -> None:
    """int64 bounds and 32 levels of nesting are accepted."""
    for ok in ({"x": 2**63 - 1}, {"x": -(2**63)}, _nested(32), {"x": 1.5e300, "y": -0.0}):
        assert v.parse_statement(v.statement_bytes(reg(ok))) == reg(ok)


def test_statement_bytes_runs_schema() -> None:
    """statement_bytes refuses what parse_statement would refuse (e.g. a bad id), as
    ValueError (API misuse by the writer), not MalformedInputError."""
    for bad in (reg(id="short"), reg(name=""), reg(actor="has space"), reg(log="AB" * 32),
                reg(log="ab" * 31)):
        with pytest.raises(ValueError) as info:
            v.statement_bytes(bad)
        assert not isinstance(info.value, v.MalformedInputError)
        with pytest.raises(ValueError):
            v.encode_statement(bad)
    with pytest.raises(TypeError):
        v.statement_bytes({"op": "register"})  # type: ignore[arg-type]


def test_statement_bytes_oversize() -> None:
    """A statement too big for any entry is ValueError."""
    with pytest.raises(ValueError):
        v.statement_bytes(reg({"x": "y" * 65_400}))


def _raw_statement(metadata: Any) -> bytes:
    return msgspec.json.encode(reg(metadata), order="sorted")


@pytest.mark.parametrize("metadata", [_nested(33), {"x": 2**63}, {"x": 2**64 - 1},
                                      {"x": -(2**63) - 1}])
def test_parse_statement_rejects_payload(metadata: Any) -> None:
    """Payloads the encoder would refuse are MalformedInputError when parsed."""
    with pytest.raises(v.MalformedInputError):
        v.parse_statement(_raw_statement(metadata))


@pytest.mark.parametrize("text", [b'{"x":NaN}', b'{"x":Infinity}', b'{"x":1e400}'])
def test_parse_statement_rejects_non_finite(text: bytes) -> None:
    """NaN, Infinity and overflowing numbers never parse."""
    raw = _raw_statement({"x": 1}).replace(b'{"x":1}', text)
    with pytest.raises(v.MalformedInputError):
        v.parse_statement(raw)


@pytest.mark.parametrize("number", [b"1.50", b"1E2", b"1e2", b"-0", b"01", b"1.0e0"])
def test_parse_statement_rejects_noncanonical_numbers(number: bytes) -> None:
    """Numbers must be written the one way the encoder writes them."""
    raw = _raw_statement({"x": 1}).replace(b'{"x":1}', b'{"x":' + number + b"}")
    with pytest.raises(v.MalformedInputError):
        v.parse_statement(raw)


def test_parse_statement_rejects_unsorted_metadata() -> None:
    """Nested keys must be sorted too."""
    raw = _raw_statement({"a": 1, "b": 2}).replace(b'{"a":1,"b":2}', b'{"b":2,"a":1}')
    with pytest.raises(v.MalformedInputError, match="canonical"):
        v.parse_statement(raw)


def test_parse_statement_rejects_duplicate_metadata_key() -> None:
    """A duplicated metadata key is not canonical."""
    raw = _raw_statement({"a": 1}).replace(b'{"a":1}', b'{"a":1,"a":1}')
    with pytest.raises(v.MalformedInputError):
        v.parse_statement(raw)


# -- property: random JSON round-trips ---------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)
_objects = st.dictionaries(st.text(max_size=10), _json, max_size=5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata=_objects, payload=_objects)
def test_json_payload_round_trip(metadata: dict[str, Any], payload: dict[str, Any]) -> None:
    """Random JSON metadata/payloads survive statement_bytes -> parse_statement exactly."""
    for st_obj in (reg(metadata), event(payload)):
        data = v.statement_bytes(st_obj)
        back = v.parse_statement(data)
        assert back == st_obj
        assert v.statement_bytes(back) == data
        assert json.loads(data) == json.loads(msgspec.json.encode(st_obj))
        entry = make_entry(data)
        assert v.parse_entry(entry).statement_bytes == data
