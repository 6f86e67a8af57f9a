"""Attacks on the verifier's fast paths: the FastDecoder (verifier/_fastdecode.py) against
``msgspec.json.Decoder(<the real schema>)`` directly, the names and event-type memories
(verifier/names.py), and the signature pool's answers (verifier/sigpool.py)."""
# ruff: noqa: E501  (the one-line FINDING comments)

from __future__ import annotations

from concurrent.futures import Future
from typing import Annotated, Any, Union

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import Meta, Struct

from tests.logsim import Signer
from verifier import IncompleteError, MalformedInputError, SignatureError, entry, names, sigpool
from verifier._fastdecode import FastDecoder
from verifier.canonical import canonical_json, decode_canonical

_SCHEMA: msgspec.json.Decoder[Any] = msgspec.json.Decoder(entry.Statement)

_BASE = {"id": "abcdefgh12345678", "actor": "ml-pipeline", "origin": "bench.example/m",
         "log": "0" * 64, "v": 2, "claimed_at": 5}
_texts = st.one_of(
    st.sampled_from(["fraud_*", "*", "", " a", "a ", "a  b", "\u00e9", "e\u0301", "x" * 201,
                     "ok", "a\nb", "\x00", "\u202e", "A" * 64, "validated", "Validated"]),
    st.text(alphabet="az*_ \n\x00\u00e9\u0301", max_size=12))
_lists = st.one_of(st.none(), st.lists(_texts, max_size=3))


@st.composite
def _grant_or_policy(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = dict(_BASE)
    if draw(st.booleans()):
        doc.update(op="grant", key="a+01020304+AQ==",
                   role=draw(st.sampled_from(["admin", "writer", "reader", "root", None])))
        if draw(st.booleans()):
            doc["scope"] = {"ops": draw(st.lists(st.sampled_from(
                ["event", "keyring", "tag", "x", ""]), max_size=3)),
                "event_types": draw(_lists), "tags": draw(_lists), "models": draw(_lists),
                "tiers": draw(_lists)}
            if draw(st.integers(0, 5)) == 0:
                doc["scope"]["extra"] = 1
    else:
        doc["op"] = "policy"
        doc["policy"] = draw(st.one_of(st.none(), st.fixed_dictionaries({"events": st.dictionaries(
            _texts, st.fixed_dictionaries({"required": st.lists(_texts, max_size=2)}),
            max_size=2)})))
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["actor", "origin", "log", "id"]))
        doc[key] = draw(_texts)
    return bytes(canonical_json(doc))


def _outcome(data: bytes, fast: FastDecoder[Any] | None) -> tuple[str, Any]:
    try:
        return "ok", decode_canonical(data, _SCHEMA, "statement", fast)
    except MalformedInputError as exc:
        return "malformed", str(exc)


@settings(max_examples=800, deadline=None)
@given(_grant_or_policy(), st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(
    b' "\\:,{}[]0aZ\x00\x7f+*')), max_size=2))
def test_fast_decoder_agrees_on_grants_scopes_and_policies(
        data: bytes, flips: list[tuple[int, int]]) -> None:
    raw = bytearray(data)
    for pos, byte in flips:
        raw[pos % len(raw)] = byte
    data = bytes(raw)
    fast = entry._fast_statement.decode(data)
    try:
        full = _SCHEMA.decode(data)
    except Exception:  # noqa: BLE001 - the schema refuses: the fast path must too
        assert fast is None
    else:
        assert fast is None or (type(fast) is type(full) and fast == full)
    assert _outcome(data, None) == _outcome(data, entry._fast_statement)


# -- a schema of our own: optional patterns, defaults, a tagged union ----------------------

_Hex = Annotated[str, Meta(pattern=r"^[0-9a-f]{4}$")]  # '$' also matches before a final \n
_Short = Annotated[str, Meta(min_length=2, max_length=5, pattern=r"[a-z]")]


class _A(Struct, tag="a", tag_field="k", forbid_unknown_fields=True, kw_only=True):
    h: _Hex
    s: _Short | None = None
    n: Annotated[int, Meta(ge=0)] = 0


class _B(Struct, tag="b", tag_field="k", kw_only=True):
    h: _Hex
    t: tuple[_Hex, ...] = ()


_values = st.one_of(st.none(), st.integers(-2, 3), st.sampled_from(
    ["beef", "beef\n", "BEEF", "bee", "beefs", "ab", "a", "abcdef", "12", "\u00e9\u00e9",
     "ab\n", ""]), st.lists(st.sampled_from(["beef", "beef\n", "x"]), max_size=2))


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.sampled_from(["k", "h", "s", "n", "t", "z"]), _values, max_size=5),
       st.sampled_from(["a", "b", "c", None]))
def test_fast_decoder_agrees_on_a_schema_of_its_own(doc: dict[str, Any], tag: str | None
                                                    ) -> None:
    if tag is not None:
        doc["k"] = tag
    data = msgspec.json.encode(doc)
    fast_dec: FastDecoder[Any] = FastDecoder([_A, _B])
    schema: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[_A, _B])
    for _ in range(2):  # the second time from the memory
        fast = fast_dec.decode(data)
        try:
            full = schema.decode(data)
        except msgspec.ValidationError:
            assert fast is None, (doc, fast)
        else:
            assert fast is None or (type(fast) is type(full) and fast == full), (doc, fast)


def test_the_pattern_memory_is_bounded_and_never_answers_for_other_strings() -> None:
    """After many distinct valid actors (the memory cleared on the way), refusals stay."""
    for i in range(3 * 4096 + 7):
        doc = {**_BASE, "op": "revoke", "name": f"n{i}", "reason": None, "actor": f"actor-{i}"}
        assert entry._fast_statement.decode(canonical_json(doc)) is not None
    for bad in ("actor 1", "actor\u00001", "", "a" * 201, "actor-1\n"):
        doc = {**_BASE, "op": "revoke", "name": "n", "reason": None, "actor": bad}
        assert entry._fast_statement.decode(canonical_json(doc)) is None
        with pytest.raises(MalformedInputError):
            entry.parse_statement(canonical_json(doc))


# -- the names memory ------------------------------------------------------------------------


class _Liar(str):
    """Hashes and compares as another (valid) string."""

    def __hash__(self) -> int:
        return hash("valid-name")

    def __eq__(self, other: object) -> bool:
        return True

    __ne__ = lambda self, other: False  # noqa: E731


def test_a_str_subclass_cannot_ride_a_remembered_name() -> None:
    names.check_name("valid-name", "model")
    names.check_event_type("validated")
    bad = _Liar("bad\u0000name")
    with pytest.raises(ValueError):
        names.check_name(bad, "model")
    assert names.name_problem(bad) is not None
    with pytest.raises(ValueError):
        names.check_event_type(_Liar("Not An Identifier"))


def test_a_name_valid_with_spaces_never_passes_as_a_key_name() -> None:
    for _ in range(2):
        assert names.name_problem("two words") is None
        assert names.name_problem("two words", spaces=False) is not None
        with pytest.raises(ValueError):
            names.check_name("two words", "key", spaces=False)


def test_huge_and_many_names_keep_the_memory_bounded() -> None:
    for i in range(2 * names._CACHE_MAX + 3):
        names.check_name(f"m{i}", "model")
    assert all(len(s) <= names._CACHE_MAX for s in names._valid.values())
    assert names.name_problem("x" * 10_000_000) is not None
    assert names.name_problem("x" * 10_000_000) is not None  # never remembered


# -- the signature pool: what a worker answers ---------------------------------------------


class _FakePool:
    """An executor whose every task answers ``answer`` (or raises it)."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def submit(self, fn: object, *args: object) -> Future[Any]:
        fut: Future[Any] = Future()
        if isinstance(self.answer, BaseException):
            fut.set_exception(self.answer)
        else:
            fut.set_result(self.answer)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _run_with_answer(answer: object, bad: bool) -> str:
    key = Signer("a", b"k1")
    sigs = sigpool.DeferredSignatures(2, chunk=4)
    sigs._pool = _FakePool(answer)  # type: ignore[assignment]
    try:
        for i in range(8):  # two full chunks: both go to the (fake) workers
            m = f"m{i}".encode()
            sig = key.sign(m)
            if bad and i == 2:
                sig = bytes([sig[0] ^ 1]) + sig[1:]
            sigs(key.key, sig, m)
        sigs.settle()
    except IncompleteError:
        return "incomplete"
    except SignatureError:
        return "signature"
    except Exception as exc:  # noqa: BLE001 - what escapes is exit 70 in the CLI
        return type(exc).__name__
    finally:
        sigs._pool = None
    return "ok"


@pytest.mark.parametrize("answer", [(-1, 0.0, 1), ("x",), EOFError("pipe"), None])
def test_a_malformed_worker_answer_is_incomplete(answer: object) -> None:
    assert _run_with_answer(answer, bad=True) == "incomplete"


@pytest.mark.parametrize("answer", [(-2, 0.0), (4, 0.0), (99, 0.0), ("0", 0.0), (0.5, 0.0),
                                    (True, 0.0)])
def test_an_out_of_range_worker_answer_is_incomplete(answer: object) -> None:
    # FINDING: low: the pool trusts the worker's (first, cpu) answer unchecked: any negative int (e.g. -2) is taken as "every signature verified" (OK over a bad signature), an index >= the chunk's count or a non-int ends in ValueError/TypeError (exit 70), never IncompleteError (exit 5)
    assert _run_with_answer(answer, bad=True) == "incomplete", answer


@pytest.mark.parametrize("first,second", [("ml-pipeline", "ml pipeline  x"),
                                          ("bad\u0000", "ml-pipeline"),
                                          ("ml-pipeline", "ml-pipeline")])
def test_duplicate_keys_are_refused_by_both_paths(first: str, second: str) -> None:
    """A statement naming ``actor`` twice (hand-made bytes): never accepted, fast or not."""
    doc = canonical_json({**_BASE, "op": "revoke", "name": "n", "reason": None})
    head, _, tail = bytes(doc).partition(b'"actor":"ml-pipeline",')
    data = head + msgspec.json.encode(
        {"actor": first})[1:-1] + b"," + msgspec.json.encode({"actor": second})[1:-1] + b"," + tail
    assert _outcome(data, None)[0] == "malformed"
    assert _outcome(data, entry._fast_statement) == _outcome(data, None)
