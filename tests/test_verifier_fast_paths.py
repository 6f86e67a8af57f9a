"""Issue 13, the verifier's main-process per-entry path: every fast path agrees with the
slower code it replaces (same accept/refuse, same value, same error family), on random
and mutated inputs. The former implementations are kept here as references."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import re
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import canonical, names, sigpool
from verifier.compact import CompactReader, compact_chunks
from verifier.encoding import b64decode, b64encode
from verifier.errors import IncompleteError, MalformedInputError, SignatureError
from verifier.merkle import leaf_hash

from .logsim import Signer

# -- base64 ------------------------------------------------------------------------------

_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")


def _old_b64decode(text: str, what: str) -> bytes:
    """verifier.encoding.b64decode before issue 13's fast path."""
    if not isinstance(text, str):
        raise MalformedInputError(f"{what}: expected base64 text")
    if len(text) % 4 or not _B64.match(text):
        raise MalformedInputError(f"{what}: not canonical base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInputError(f"{what}: not canonical base64") from exc
    if base64.b64encode(data).decode("ascii") != text:
        raise MalformedInputError(f"{what}: not canonical base64")
    return data


def _b64_outcome(f: Any, text: Any) -> tuple[str, bytes | None]:
    try:
        return "ok", f(text, "x")
    except MalformedInputError:
        return "malformed", None


_B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_near_b64 = st.text(alphabet=_B64_CHARS + " \n\t-_.\x00\u00e9\U0001f600\ud800", max_size=24)


@st.composite
def _mutated_b64(draw: st.DrawFn) -> str:
    text = b64encode(draw(st.binary(max_size=70)))
    chars = list(text)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        pos = draw(st.integers(0, len(chars)))
        ch = draw(st.sampled_from(_B64_CHARS + " \n-_\u00e9"))
        if op == "set" and pos < len(chars):
            chars[pos] = ch
        elif op == "insert":
            chars.insert(pos, ch)
        elif chars and pos < len(chars):
            del chars[pos]
    return "".join(chars)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_near_b64, _mutated_b64(), st.binary(max_size=70).map(b64encode)))
def test_b64decode_agrees_with_the_former_decoder(text: str) -> None:
    assert _b64_outcome(b64decode, text) == _b64_outcome(_old_b64decode, text)


@pytest.mark.parametrize("text", [
    "", "AA==", "AB==", "AAA=", "AAB=", "AAAA", "A===", "====", "AA=A", "AA==AA==",
    " AA=", "AA\n=", "-_==", "aGk=", "aGk", "aGk==", 123, b"aGk=", None, "\u00e9AAA",
])
def test_b64decode_edge_cases_agree(text: Any) -> None:
    assert _b64_outcome(b64decode, text) == _b64_outcome(_old_b64decode, text)


def test_b64decode_round_trips_every_length() -> None:
    for n in range(0, 70):
        data = bytes(range(n))
        assert b64decode(b64encode(data), "x") == data


# -- names: the memory of valid names ----------------------------------------------------

_name_chars = st.sampled_from(
    list("ab Z09-_.+ ~\t\x7f") + ["\u00e9", "e\u0301", "\u0131", "\u03b1", "\u0430",
                                 "\u4e00", "\u3042", "\uac00", "\u05d0", "\u200b",
                                 "\ud800", "\U0001f600"])
_names = st.lists(_name_chars, max_size=12).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_names, st.booleans()), max_size=20))
def test_name_problem_with_memory_agrees_with_the_profile(calls: list[tuple[str, bool]]
                                                          ) -> None:
    for name, spaces in calls + calls:  # the second round hits the memory
        expected = names._name_problem(name, spaces=spaces)
        assert names.name_problem(name, spaces=spaces) == expected
        try:
            names.check_name(name, "name", spaces=spaces)
            got = None
        except ValueError as exc:
            got = str(exc)
        assert (got is None) == (expected is None)
        if got is not None:
            assert expected is not None and got.endswith(expected)


def test_a_name_valid_with_spaces_is_still_refused_as_a_key_name() -> None:
    assert names.name_problem("two words") is None
    names.check_name("two words", "owner")
    assert names.name_problem("two words", spaces=False) is not None
    with pytest.raises(ValueError, match="spaces"):
        names.check_name("two words", "actor", spaces=False)


def test_the_memory_is_bounded_and_never_remembers_a_refusal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names, "_CACHE_MAX", 8)
    monkeypatch.setattr(names, "_valid", {True: set(), False: set()})
    for i in range(50):
        assert names.name_problem(f"model-{i}") is None
        assert len(names._valid[True]) <= 8
    assert names.name_problem(" lead") is not None
    assert " lead" not in names._valid[True]
    assert names.name_problem(" lead") is not None


def test_a_str_subclass_is_never_remembered() -> None:
    class Sneaky(str):
        def __hash__(self) -> int:
            return hash("ok-name")

        def __eq__(self, other: object) -> bool:
            return True

    assert names.name_problem("ok-name") is None
    assert names.name_problem(Sneaky("\x00bad")) is not None
    with pytest.raises(ValueError):
        names.check_name(Sneaky("\x00bad"), "model")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="az09_A \n-\u00e9", max_size=66), max_size=10))
def test_check_event_type_with_memory_agrees_with_the_pattern(types: list[str]) -> None:
    for t in types + types:
        valid = re.fullmatch(r"[a-z][a-z0-9_]{0,63}", t) is not None
        try:
            names.check_event_type(t)
            ok = True
        except ValueError:
            ok = False
        assert ok == valid


# -- JSON values: the flat-object fast path ----------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=True),
    st.text(max_size=6), st.sampled_from(["\ud800", "\u00e9", "a"]),
    st.just([]), st.just({}), st.just(()), st.just(b"x"), st.just(set()))
_keys = st.one_of(st.text(max_size=5), st.sampled_from(["\ud800", "\u00e9"]), st.integers(0, 3),
                  st.just(None))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12)


def _json_outcome(check: Any, value: object, depth: int) -> str:
    try:
        check(value, depth)
    except ValueError:
        return "ValueError"
    except TypeError:
        return "TypeError"
    return "ok"


def _full(value: object, depth: int) -> None:
    canonical._count(value, "v", depth, canonical.MAX_VALUES)


def _fast(value: object, depth: int) -> None:
    canonical.check_json_value(value, "v", depth)


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6) | _values,
       st.sampled_from([0, 1, canonical.MAX_DEPTH - 1, canonical.MAX_DEPTH,
                        canonical.MAX_DEPTH + 1]))
def test_check_json_value_agrees_with_the_full_count(value: object, depth: int) -> None:
    assert _json_outcome(_fast, value, depth) == _json_outcome(_full, value, depth)


@pytest.mark.parametrize("members", [2046, 2047, 2048, 2049])
def test_the_fast_path_keeps_the_value_budget(members: int) -> None:
    value = {f"k{i}": i for i in range(members)}  # 1 + 2 * members values
    expected = _json_outcome(_full, value, 0)
    assert _json_outcome(_fast, value, 0) == expected
    assert (expected == "ok") == (1 + 2 * members <= canonical.MAX_VALUES)


def test_the_fast_path_still_refuses_what_json_cannot_carry() -> None:
    for bad in ({"a": math.nan}, {"a": 2**63}, {"a": "\ud800"}, {1: "a"}, {"\ud800": 1},
                {"a": b"x"}, {"a": {"b": math.inf}}):
        assert _json_outcome(_fast, bad, 0) != "ok"
        assert _json_outcome(_fast, bad, 0) == _json_outcome(_full, bad, 0)


# -- leaf hashes -------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_leaf_hash_of_every_bytes_type(data: bytes) -> None:
    expected = hashlib.sha256(b"\x00" + data).digest()
    assert leaf_hash(data) == expected
    assert leaf_hash(bytearray(data)) == expected  # type: ignore[arg-type]
    assert leaf_hash(memoryview(data)) == expected  # type: ignore[arg-type]
    doubled = memoryview(bytes(b for x in data for b in (x, 0)))[::2]  # not contiguous
    assert leaf_hash(doubled) == expected  # type: ignore[arg-type]


def test_leaf_hash_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        leaf_hash("text")  # type: ignore[arg-type]


# -- signature chunks packed as one bytes object -----------------------------------------

_triples = st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=70),
                              st.binary(max_size=300)), max_size=12)


def _packed(triples: list[tuple[bytes, bytes, bytes]]) -> bytes:
    buf = sigpool._new_chunk()
    for t in triples:
        sigpool._pack_into(buf, *t)
    return sigpool._seal(buf, len(triples))


@given(_triples, st.data())
def test_packed_chunks_round_trip_and_refuse_any_cut(
        triples: list[tuple[bytes, bytes, bytes]], data: st.DataObject) -> None:
    packed = _packed(triples)
    assert list(sigpool._unpack(packed)) == triples
    for i, t in enumerate(triples):
        assert sigpool._message_at(packed, i) == t[2]
    cut = data.draw(st.integers(1, len(packed)))
    with pytest.raises(ValueError):
        list(sigpool._unpack(packed[:-cut]))  # even at a record boundary: the count differs
    with pytest.raises(ValueError):
        list(sigpool._unpack(packed + data.draw(st.binary(min_size=1, max_size=20))))


@given(_triples, st.integers(0, 20))
def test_a_chunk_whose_count_is_wrong_is_refused(triples: list[tuple[bytes, bytes, bytes]],
                                                  count: int) -> None:
    packed = bytearray(_packed(triples))
    struct.pack_into(">I", packed, 0, count)
    if count == len(triples):
        assert list(sigpool._unpack(bytes(packed))) == triples
    else:
        with pytest.raises(ValueError):
            list(sigpool._unpack(bytes(packed)))


def test_a_cut_chunk_is_never_a_verdict() -> None:
    key = Signer("a", b"k1")
    packed = _packed([(key.key.public_key, key.sign(b"m"), b"m")])
    with pytest.raises(ValueError):
        sigpool._check_chunk(packed[:-1])
    assert sigpool._check_chunk(packed)[0] == -1


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("bad", [None, 0, 7, 29])
def test_packed_chunks_name_the_earliest_bad_signature(jobs: int, bad: int | None) -> None:
    key = Signer("a", b"k1")
    msgs = [f'{{"id":"{i}"}}'.encode() for i in range(30)]
    with sigpool.DeferredSignatures(jobs, chunk=8) as sigs:
        try:
            for i, m in enumerate(msgs):
                sig = key.sign(m)
                if i == bad:
                    sig = bytes([sig[0] ^ 1]) + sig[1:]
                sigs(key.key, sig, bytearray(m) if i % 2 else memoryview(m))  # type: ignore[arg-type]
            stats = sigs.settle()
        except SignatureError as exc:
            assert bad is not None
            assert "does not verify" in str(exc)
            assert sigs._checked == bad + 1 or jobs == 1
            return
    assert bad is None and stats.checked == len(msgs)


def test_a_worker_that_cannot_unpack_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk a worker refuses is IncompleteError (never OK, never a traceback)."""
    key = Signer("a", b"k1")
    sigs = sigpool.DeferredSignatures(2, chunk=4)
    real_take = sigs._take

    def cut() -> sigpool._Chunk:
        chunk = real_take()
        return sigpool._Chunk(chunk.packed[:-1], chunk.count)

    monkeypatch.setattr(sigs, "_take", cut)
    with sigs, pytest.raises(IncompleteError, match="not completed"):
        for i in range(16):
            m = f"m{i}".encode()
            sigs(key.key, key.sign(m), m)
        sigs.settle()


# -- the compact reader: entries across buffer boundaries --------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 65_535), min_size=1, max_size=14), st.sampled_from(["none",
                                                                                   "zlib"]))
def test_compact_reader_returns_each_entry_exactly(sizes: list[int], codec: str) -> None:
    entries = [struct.pack(">I", i) * (n // 4) + bytes([i % 256]) * (n % 4)
               for i, n in enumerate(sizes)]
    blob = b"".join(compact_chunks(b"{}", entries, codec))
    reader = CompactReader(io.BytesIO(blob))
    assert reader.header == b"{}"
    got = list(reader.entries(len(entries)))
    assert got == entries
    assert all(type(e) is bytes for e in got)
    with pytest.raises(MalformedInputError):
        list(CompactReader(io.BytesIO(blob)).entries(len(entries) + 1))
    if len(entries) > 1:
        with pytest.raises(MalformedInputError):
            list(CompactReader(io.BytesIO(blob)).entries(len(entries) - 1))


# -- statements: the FastDecoder (patterns checked with a memory) ------------------------

_field_text = st.one_of(
    st.sampled_from(["ml-pipeline", "team-01", "a", "", " ", "x+y", "a b", "a\tb", "a\nb",
                     "\x7f", "\u00e9t\u00e9", "0" * 64, "f" * 64, "F" * 64, "0" * 63,
                     "abcdefgh12345678", "abc:def.ghi-jkl_", "1" * 129, "x" * 201]),
    st.text(alphabet="az09 +-_.:\t\n\x00\x1f\x7f\u00e9\u200b", max_size=20))
_ops = {
    "register": ["name", "owner", "model_type", "tier", "purpose", "status", "metadata"],
    "event": ["model", "event_type", "payload"],
    "tag": ["model", "tag", "target"],
    "member_add": ["group", "member", "role"],
    "member_remove": ["group", "member", "reason"],
    "revoke": ["name", "reason"],
    "grant": ["key", "role"],
}


_VALID = {"id": "abcdefgh12345678", "actor": "ml-pipeline", "origin": "bench.example/m",
          "log": "0" * 64, "name": "model_1", "owner": "team-01", "model_type": "ml",
          "tier": "high", "purpose": "", "status": "active", "model": "model_1",
          "event_type": "trained", "tag": "prod", "target": "f" * 64, "group": "g1",
          "member": "model_1", "role": None, "reason": "gone",
          "key": "a+01020304+AQ==", "metadata": {"k": "v"}, "payload": {}}


@st.composite
def _statement_docs(draw: st.DrawFn) -> bytes:
    """Mostly valid statements, with up to two fields (or v, claimed_at) changed."""
    op = draw(st.sampled_from(sorted(_ops)))
    fields = ["id", "actor", "origin", "log"] + _ops[op]
    doc: dict[str, Any] = {"op": op, "v": 2, "claimed_at": 5}
    doc.update({f: _VALID[f] for f in fields})
    if op == "grant":
        doc["role"] = "writer"
    for _ in range(draw(st.integers(0, 2))):
        f = draw(st.sampled_from(fields + ["v", "claimed_at"]))
        if f == "v":
            doc[f] = draw(st.sampled_from([1, 3, "2"]))
        elif f == "claimed_at":
            doc[f] = draw(st.sampled_from([0, -1, 2**63 - 1, 2**63]))
        elif f in ("metadata", "payload"):
            doc[f] = draw(st.sampled_from([{}, {"k": [1, 2.5, None]}, [], None]))
        elif f in ("role", "reason") and draw(st.booleans()):
            doc[f] = None
        else:
            doc[f] = draw(_field_text)
    if draw(st.integers(0, 9)) == 0:
        doc.pop(draw(st.sampled_from(sorted(doc))))
    if draw(st.integers(0, 9)) == 0:
        doc["extra"] = 1
    return bytes(canonical.canonical_json(doc))


@st.composite
def _mutated_statements(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(_statement_docs()))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.sampled_from(b' "\\:,{}[]0aZ\x00\x7f+'))
    return bytes(data)


def _statement_outcome(data: bytes, fast: bool) -> tuple[str, Any]:
    from verifier import entry
    try:
        return "ok", canonical.decode_canonical(
            data, entry._statement_decoder, "statement",
            entry._fast_statement if fast else None)
    except MalformedInputError as exc:
        return "malformed", str(exc)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_statement_docs(), _mutated_statements()))
def test_fast_statement_decoding_agrees_with_the_schema(data: bytes) -> None:
    from verifier import entry
    fast = entry._fast_statement.decode(data)
    try:
        full = entry._statement_decoder.decode(data)
    except Exception:  # noqa: BLE001 - any refusal: the fast path must not accept
        assert fast is None
    else:
        assert fast is None or (type(fast) is type(full) and fast == full)
    old, new = _statement_outcome(data, False), _statement_outcome(data, True)
    assert old == new
    if old[0] == "ok":
        assert type(old[1]) is type(new[1])


def test_fast_statement_decoding_remembers_only_matches() -> None:
    from verifier import entry
    good = _statement_doc_bytes(actor="ml-pipeline")
    assert entry._fast_statement.decode(good) is not None
    for bad in ("ml pipeline", "ml+pipeline", "ml\npipeline", ""):
        assert entry._fast_statement.decode(_statement_doc_bytes(actor=bad)) is None
        with pytest.raises(MalformedInputError):
            entry.parse_statement(_statement_doc_bytes(actor=bad))
    assert entry._fast_statement.decode(good) is not None


def _statement_doc_bytes(**over: Any) -> bytes:
    doc: dict[str, Any] = {
        "op": "event", "v": 2, "claimed_at": 1, "id": "abcdefgh12345678", "actor": "a",
        "origin": "o", "log": "0" * 64, "model": "m", "event_type": "trained",
        "payload": {}}
    doc.update(over)
    return bytes(canonical.canonical_json(doc))
