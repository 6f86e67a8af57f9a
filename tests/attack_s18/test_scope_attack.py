"""Attacks on scope containment (verifier/scope.py, replay step 9b, specs/entry.md §3.7):
a model-scoped admin trying to act beyond its models, and the glob cover test's soundness
checked by brute force on adversarial patterns."""
# ruff: noqa: E501  (the one-line FINDING comments)

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from tests.logsim import Signer
from tests.test_scope_containment import Scene
from verifier.scope import glob_covers, glob_match, scope_excess

TEAM: dict[str, Any] = dict(ops=["event", "keyring", "register"], event_types=None, tags=None,
            models=["fraud_*"], tiers=None)
"""An admin whose duties are the fraud team's models only."""


def _doc(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(v.make_scope(**kw))
    return out


def test_a_model_scoped_admin_cannot_revoke_the_unrestricted_admin() -> None:
    # FINDING: medium: a model-scoped admin may revoke the log's unrestricted admin (and then re-grant that name a key of its own scope): the log is left with no key that can ever grant or act outside fraud_* (entry.md §3.7 says "no escalation", but it is a takeover of the keyring)
    s = Scene(_doc(**TEAM))
    got = s.outcome(s.boss, "revoke", name=s.log.admin.name, reason="takeover")
    assert isinstance(got, v.AuthorizationError), got


def test_after_the_takeover_the_admin_name_is_the_scoped_admins() -> None:
    """What the revoke above allows today (a probe, documents the consequence): the scoped
    admin grants the revoked admin's own name a key it holds, within its own scope; every
    later statement signed as the log's admin is the scoped admin's."""
    s = Scene(_doc(**TEAM))
    if s.outcome(s.boss, "revoke", name=s.log.admin.name, reason="takeover") is not None:
        return  # refused: the finding above is fixed
    fake = Signer(s.log.admin.name, b"impostor-key")
    assert s.outcome(s.boss, "grant", key=fake.vkey, role="admin", scope=_doc(**TEAM)) is None
    inv = v.replay(s.log.entries)
    assert inv.keys[s.log.admin.name].scope == v.make_scope(**TEAM)
    # and nobody can ever give anyone a scope outside fraud_* again
    friend = Signer("friend", b"friend-key")
    got = s.outcome(fake, "grant", key=friend.vkey, role="writer")
    assert isinstance(got, v.AuthorizationError)


def test_a_model_scoped_admin_cannot_set_the_policy_for_every_model() -> None:
    # FINDING: medium: a model-scoped admin (models fraud_*) may put in force a policy that binds every model of the log (here: no event type at all), stopping the writers of other teams' models (documented in entry.md §3.7, but it is power outside its scope)
    s = Scene(_doc(**TEAM))
    got = s.outcome(s.boss, "policy", policy={"events": {}})
    assert isinstance(got, v.AuthorizationError), got


def test_a_reader_grant_never_becomes_a_writer_without_a_new_grant() -> None:
    """A scoped admin grants a plain reader (allowed); the reader cannot then sign a
    register of any model, nor can the admin 'upgrade' the name without a revoke, and the
    grant after the revoke is still bounded."""
    s = Scene(_doc(**TEAM))
    friend = Signer("friend", b"friend-key")
    assert s.outcome(s.boss, "grant", key=friend.vkey, role="reader") is None
    got = s.outcome(friend, "register", name="fraud_a", owner="o", model_type="ml_model",
                    tier="low", purpose="p", status="active", metadata={})
    assert isinstance(got, v.AuthorizationError)
    got = s.outcome(s.boss, "grant", key=friend.vkey, role="writer", scope=_doc(
        ops=["event"], models=["fraud_*"]))
    assert isinstance(got, v.RuleError)  # revoke it first
    assert s.outcome(s.boss, "revoke", name="friend", reason=None) is None
    got = s.outcome(s.boss, "grant", key=friend.vkey, role="writer")
    assert isinstance(got, v.AuthorizationError)


def test_an_admin_with_keyring_only_still_cannot_grant_wider_models() -> None:
    s = Scene(_doc(**TEAM))
    friend = Signer("friend", b"friend-key")
    for models in (["*"], ["fraud*"], ["*fraud_*"], ["*", "fraud_**"], ["fraud_*", "x"], None):
        got = s.outcome(s.boss, "grant", key=friend.vkey, role="admin",
                        scope={"ops": ["keyring"], "event_types": None, "tags": None,
                               "models": models, "tiers": None})
        assert isinstance(got, v.AuthorizationError), (models, got)
    ok = s.outcome(s.boss, "grant", key=friend.vkey, role="admin", scope=_doc(
        ops=["keyring"], models=["fraud_**", "fraud_x*y*"]))
    assert ok is None
    # the narrower admin cannot then widen through a grant either
    third = Signer("third", b"third-key")
    got = s.outcome(friend, "grant", key=third.vkey, role="writer", scope=_doc(
        ops=["event"], models=["fraud*"]))
    assert isinstance(got, v.AuthorizationError)


def test_odd_globs_are_refused_or_bounded() -> None:
    """Empty strings, controls and non-NFC text never reach the cover test: the scope's
    schema and the name profile refuse them."""
    s = Scene(_doc(**TEAM))
    friend = Signer("friend", b"friend-key")
    for models in ([""], ["fraud_\u0000*"], ["frau\u0064\u0301_*"], ["fraud_\u202e*"],
                   ["fraud_\u0430*"], ["*" * 201]):
        scope = {"ops": ["event"], "event_types": None, "tags": None, "models": models,
                 "tiers": None}
        with pytest.raises((ValueError, msgspec.ValidationError)):
            v.make_scope(ops=["event"], models=models)  # the writer's side
        try:  # the statement itself, signed by hand: refused as malformed or unauthorized
            got: Exception | None = s.outcome(s.boss, "grant", key=friend.vkey,
                                              role="writer", scope=scope)
        except (ValueError, msgspec.ValidationError):
            continue  # the log simulator's own encoder refuses to write it
        assert got is not None, models


# -- the cover test by brute force -------------------------------------------------------

_ALPHA = "ab*"


def _names(max_len: int) -> list[str]:
    return ["".join(p) for n in range(max_len + 1) for p in itertools.product("abc*", repeat=n)]


_ALL = _names(5)


@settings(max_examples=400, deadline=None)
@given(st.text(_ALPHA, min_size=1, max_size=6), st.text(_ALPHA, min_size=1, max_size=6))
def test_glob_covers_is_sound_on_short_names(outer: str, inner: str) -> None:
    """If outer covers inner, every name (over a, b, c and a literal '*', length <= 5)
    that inner matches, outer matches."""
    if glob_covers(outer, inner):
        for name in _ALL:
            if glob_match(inner, name):
                assert glob_match(outer, name), (outer, inner, name)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text("ab*", min_size=1, max_size=4), min_size=1, max_size=3),
       st.text("ab*", min_size=1, max_size=6))
def test_scope_excess_of_models_is_per_glob_and_sound(outer: list[str], inner: str) -> None:
    o = v.make_scope(ops=["event"], models=outer)
    i = v.make_scope(ops=["event"], models=[inner])
    if scope_excess(o, i) is None:
        for name in _ALL:
            if glob_match(inner, name):
                assert any(glob_match(p, name) for p in o.models or ()), (outer, inner, name)


def test_glob_match_is_fast_on_many_stars() -> None:
    """Patterns of 200 characters, mostly '*', against names of 200: no blow-up."""
    import time
    t0 = time.perf_counter()
    for _ in range(200):
        assert glob_match("*a" * 99 + "*b", "a" * 199 + "b")
        assert not glob_match("*a" * 100, "a" * 99 + "b")
        assert not glob_covers("a*" * 100, "*" * 200)
    assert time.perf_counter() - t0 < 2.0
