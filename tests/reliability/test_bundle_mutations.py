"""Part 4: mutated bundles are refused with MalformedInputError or a VerificationError,
100% (CI: hypothesis over every mutator + 1,000 seeded; full: 10,000 in bench/torture.py).
Byte-level fuzzing of every parser is in tests/test_fuzz.py; fixed tampering cases with
their exact error classes in tests/test_bundle.py."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from tests.helpers import mutate as byte_mutate
from tests.reliability.mutations import (
    MUTATORS,
    Base,
    build_base,
    m_log_control,
    mutate,
    run_mutations,
    verdict,
)

BASE: Base = build_base()


def test_the_base_bundle_verifies_and_has_no_slack() -> None:
    result = BASE.verify(BASE.bundle)
    assert result.size == BASE.n and result.trusted is not None
    nxt = v.parse_entry(BASE.entries[BASE.n]).entry.recorded_at
    assert result.time == nxt - 1  # any other time is a lie: the base bundle has no slack


def test_the_compromised_log_machinery_is_honest() -> None:
    """Rebuilt with no change, the compromised-log bundle verifies: its mutations are
    refused for what they change, not for a slip of the rebuild."""
    assert BASE.verify(m_log_control(random.Random(0), BASE)).size == BASE.n


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(MUTATORS)), seed=st.integers(0, 2**64 - 1))
def test_every_mutator_is_refused(name: str, seed: int) -> None:
    data = mutate(BASE, name, random.Random(seed))
    assert data != BASE.bundle
    assert verdict(BASE, data) is None, name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([0, 1]), st.integers(0, 2**20)), min_size=1,
                max_size=4))
def test_bit_flips_and_truncations_are_refused(steps: list[tuple[int, int]]) -> None:
    data = BASE.bundle
    for kind, pos in steps:
        data = byte_mutate(data, kind, pos, b"")
    if data != BASE.bundle:
        assert verdict(BASE, data) is None


def test_seeded_mutations_all_refused() -> None:
    result = run_mutations(None, count=1000, seed=1)
    assert result["failures"] == [], result
    assert result["tried"] == result["rejected"] == 1000, result
    assert result["controls_verified"] == "3/3"


@pytest.mark.parametrize("name", sorted(MUTATORS))
def test_each_mutator_changes_the_bundle(name: str) -> None:
    assert mutate(BASE, name, random.Random(name)) != BASE.bundle
