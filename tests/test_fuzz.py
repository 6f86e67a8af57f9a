"""Fuzzing every parser and verifier entry point: arbitrary and mutated inputs may only
return or raise MalformedInputError / VerificationError, never anything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from tests import reference as ref
from tests.helpers import ACCEPTED, mutate, sign_text
from tests.logsim import T0, sample_log

LOG, PIPE = sample_log(models=2, seed="fuzz")
KEYS = [LOG.log_key.key]
S = len(LOG.entries)
NOTE = LOG.checkpoint(S)
COSIGNED = sign_text(v.checkpoint_text(LOG.origin, 3, ref.mth(LOG.entries[:3]), ["ext"]),
                     LOG.log_key, LOG.admin)
TLOG_PROOF = v.format_tlog_proof(5, LOG.inclusion(5, S), NOTE, extra=b"x")
ADD_CP = v.format_add_checkpoint(6, LOG.consistency(6, S), NOTE)
BUNDLE = LOG.bundle(T0 + 3 * LOG.step + 1, trusted=2)
ENTRIES = LOG.entries
STATEMENTS = [v.parse_entry(e).statement_bytes for e in ENTRIES]
TRUSTED = v.Checkpoint.parse_note(LOG.checkpoint(2), KEYS)
PREFIX = v.replay(ENTRIES[:8])

SETTINGS = settings(max_examples=500, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with one to three mutations (bit flip, truncation, insertion, deletion, overwrite)."""
    one = st.tuples(st.integers(0, 4), st.integers(0, 2**20), st.binary(min_size=1, max_size=6))

    def apply(args: tuple[bytes, list[tuple[int, int, bytes]]]) -> bytes:
        data, steps = args
        for kind, pos, payload in steps:
            data = mutate(data, kind, pos, payload)
        return data

    return st.tuples(st.sampled_from(seeds), st.lists(one, min_size=1, max_size=3)).map(apply)


def inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=400), mutated(seeds))


def only_verifier_errors(fn: Callable[[Any], Any], data: Any) -> None:
    try:
        fn(data)
    except ACCEPTED:
        pass


# -- sanity: the seeds are valid, so mutations start from accepted input ----------------

def test_seeds_are_valid() -> None:
    """Every fuzz seed is accepted unmutated."""
    assert v.verify_note(NOTE, KEYS) and v.verify_note(COSIGNED, KEYS)
    assert v.Checkpoint.parse_note(COSIGNED, KEYS).extensions == ("ext",)
    assert v.Checkpoint.parse_note(NOTE, KEYS).time is not None  # the modelseal-time line
    assert v.verify_tlog_proof(TLOG_PROOF, ENTRIES[5], KEYS).size == S
    assert v.verify_add_checkpoint(ADD_CP, KEYS, ref.mth(ENTRIES[:6])).size == S
    assert v.verify_bundle(BUNDLE, KEYS, trusted=TRUSTED).size == 4
    assert all(v.parse_statement(s) for s in STATEMENTS)
    assert PREFIX.size == 8


def test_mutate_changes_input() -> None:
    """Each mutation kind changes the seed (so the fuzz really varies inputs)."""
    for kind in range(5):
        assert mutate(NOTE, kind, 17, b"\x00\x01") != NOTE


def test_only_verifier_errors_lets_others_through() -> None:
    """The checker re-raises anything that is not a verifier error."""
    def boom(_: bytes) -> None:
        raise KeyError("x")
    with pytest.raises(KeyError):
        only_verifier_errors(boom, b"")


# -- targets -------------------------------------------------------------------------------

@SETTINGS
@given(inputs([NOTE, COSIGNED]))
def test_fuzz_parse_note(data: bytes) -> None:
    """parse_note and verify_note."""
    only_verifier_errors(v.parse_note, data)
    only_verifier_errors(lambda d: v.verify_note(d, KEYS), data)


@SETTINGS
@given(inputs([NOTE, COSIGNED]))
def test_fuzz_checkpoint(data: bytes) -> None:
    """Checkpoint.parse_note."""
    only_verifier_errors(lambda d: v.Checkpoint.parse_note(d, KEYS), data)


@SETTINGS
@given(st.one_of(
    st.text(max_size=120),
    mutated([k.encode() for k in (LOG.log_key.vkey, LOG.admin.vkey, PIPE.vkey)]).map(
        lambda b: b.decode("utf-8", "surrogateescape")),
))
def test_fuzz_verifier_key(text: str) -> None:
    """VerifierKey.parse on any text, including undecodable bytes from a command line."""
    only_verifier_errors(v.VerifierKey.parse, text)


@SETTINGS
@given(inputs([TLOG_PROOF]))
def test_fuzz_tlog_proof(data: bytes) -> None:
    """parse_tlog_proof and verify_tlog_proof."""
    only_verifier_errors(v.parse_tlog_proof, data)
    only_verifier_errors(lambda d: v.verify_tlog_proof(d, ENTRIES[5], KEYS), data)


@SETTINGS
@given(inputs([ADD_CP]))
def test_fuzz_add_checkpoint(data: bytes) -> None:
    """parse_add_checkpoint and verify_add_checkpoint."""
    only_verifier_errors(v.parse_add_checkpoint, data)
    only_verifier_errors(lambda d: v.verify_add_checkpoint(d, KEYS, ref.mth(ENTRIES[:6])), data)


@SETTINGS
@given(inputs(ENTRIES))
def test_fuzz_parse_entry(data: bytes) -> None:
    """parse_entry, and applying the result after a valid prefix."""
    only_verifier_errors(v.parse_entry, data)

    def apply(d: bytes) -> None:
        inv = v.replay(ENTRIES[:8])
        inv.apply(d)

    only_verifier_errors(apply, data)


@SETTINGS
@given(inputs(STATEMENTS))
def test_fuzz_parse_statement(data: bytes) -> None:
    """parse_statement."""
    only_verifier_errors(v.parse_statement, data)


@settings(SETTINGS, max_examples=600)
@given(inputs([BUNDLE]))
def test_fuzz_verify_bundle(data: bytes) -> None:
    """verify_bundle with and without a trusted checkpoint."""
    only_verifier_errors(lambda d: v.verify_bundle(d, KEYS), data)
    only_verifier_errors(lambda d: v.verify_bundle(d, KEYS, trusted=TRUSTED), data)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10)


@SETTINGS
@given(field=st.sampled_from(["format", "version", "checkpoint", "at", "consistency", "next",
                              "from_trusted", "entries"]), value=_json_values)
def test_fuzz_bundle_fields(field: str, value: Any) -> None:
    """A bundle with one top-level field replaced by arbitrary JSON."""
    import json
    doc = json.loads(BUNDLE)
    doc[field] = value
    try:
        data = json.dumps(doc).encode()
    except ValueError:  # pragma: no cover - json.dumps accepts every generated value
        return
    only_verifier_errors(lambda d: v.verify_bundle(d, KEYS, trusted=TRUSTED), data)
