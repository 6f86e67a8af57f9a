"""A scoped key trying to escape its scope, and hostile policies, in replay of hand-built
logs (the verifier's rules, specs/entry.md §3.7, §3.8, §8.3 step 9b)."""

from __future__ import annotations

from typing import Any

import pytest

import verifier as v
from tests.helpers import model_doc, scope_doc
from tests.logsim import Log, Signer
from verifier.policy import make_policy, policy_from_doc

from .common import Scene


def _is(exc: Exception | None, cls: type[Exception]) -> None:
    assert exc is not None, "accepted"
    assert isinstance(exc, cls), repr(exc)


def test_membership_cannot_reach_outside_the_glob() -> None:
    """A key scoped to fraud_* cannot put its model into (or take it out of) a group
    outside the glob, nor pull an outside model into its own group."""
    s = Scene(scope_doc(models=["fraud_*"]), models={"fraud_a": "high", "credit_g": "high",
                                                 "fraud_g": "high", "credit_b": "low"})
    _is(s.try_(None, "member_add", group="credit_g", member="fraud_a", role=None),
        v.AuthorizationError)
    _is(s.try_(None, "member_add", group="fraud_g", member="credit_b", role=None),
        v.AuthorizationError)
    s.ok(None, "member_add", group="fraud_g", member="fraud_a", role=None)
    s.ok(s.pipe, "member_add", group="credit_g", member="fraud_a", role=None)
    _is(s.try_(None, "member_remove", group="credit_g", member="fraud_a", reason=None),
        v.AuthorizationError)


def test_a_group_tag_is_judged_by_the_group_not_its_members() -> None:
    """Tag moves on a group whose members are all in scope are still refused when the
    group itself is outside the models glob or tiers."""
    s = Scene(scope_doc(ops=["tag"], models=["fraud_*"], tiers=["low"]),
              models={"fraud_a": "low", "grp": "low", "fraud_hi": "high"})
    s.ok(s.pipe, "member_add", group="grp", member="fraud_a", role=None)
    _is(s.try_(None, "tag", model="grp", tag="production", target=s.head("grp")),
        v.AuthorizationError)
    _is(s.try_(None, "tag", model="fraud_hi", tag="production", target=s.head("fraud_hi")),
        v.AuthorizationError)
    s.ok(None, "tag", model="fraud_a", tag="production", target=s.head("fraud_a"))


def test_register_then_update_cannot_change_tier_out_of_scope() -> None:
    """Register inside the scope (name matches, tier low), then try to raise the tier by an
    `updated` event, with the tier key alone and among other keys."""
    s = Scene(scope_doc(models=["fraud_*"], tiers=["low"]))
    s.ok(None, "register", **model_doc("fraud_x", "low"))
    _is(s.try_(None, "register", **model_doc("fraud_y", "high")), v.AuthorizationError)
    for payload in ({"tier": "high"}, {"owner": "me", "tier": "high"},
                    {"tier": "high", "purpose": "x"}):
        _is(s.try_(None, "event", model="fraud_x", event_type="updated", payload=payload),
            v.AuthorizationError)
    s.ok(None, "event", model="fraud_x", event_type="updated", payload={"owner": "me"})
    # the pipeline moves it to high: now the scoped key may not touch it at all
    s.ok(s.pipe, "event", model="fraud_x", event_type="updated", payload={"tier": "high"})
    _is(s.try_(None, "event", model="fraud_x", event_type="updated", payload={"tier": "low"}),
        v.AuthorizationError)
    _is(s.try_(None, "event", model="fraud_x", event_type="retrained", payload={}),
        v.AuthorizationError)


@pytest.mark.parametrize("name,allowed", [
    ("fraud_", True), ("fraud_a", True), ("fraud_*", True), ("Fraud_a", False),
    ("xfraud_a", False), ("fraud", False), ("fraud-a", False)])
def test_glob_edges_on_register(name: str, allowed: bool) -> None:
    s = Scene(scope_doc(models=["fraud_*"]))
    got = s.try_(None, "register", **model_doc(name))
    if allowed:
        assert got is None, got
    else:
        assert isinstance(got, (v.AuthorizationError, v.MalformedInputError)), repr(got)


def test_event_type_scope_cannot_retire_reactivate_or_update() -> None:
    s = Scene(scope_doc(ops=["event"], event_types=["retired", "validated"]),
              models={"m": "high"})
    s.ok(None, "event", model="m", event_type="validated", payload={})
    _is(s.try_(None, "event", model="m", event_type="updated", payload={"tier": "low"}),
        v.AuthorizationError)
    s.ok(None, "event", model="m", event_type="retired", payload={})
    _is(s.try_(None, "event", model="m", event_type="reactivated", payload={}),
        v.AuthorizationError)
    # the scope check comes before the retirement rule: the class names the scope
    _is(s.try_(None, "event", model="m", event_type="retrained", payload={}),
        v.AuthorizationError)


def test_scoped_admin_without_keyring_cannot_touch_the_keyring_or_policy() -> None:
    s = Scene(scope_doc(), role="admin", models={"m": "high"})
    other = Signer("other", b"attack13-other")
    _is(s.try_(None, "grant", key=other.vkey, role="writer"), v.AuthorizationError)
    _is(s.try_(None, "revoke", name="ml-pipeline", reason=None), v.AuthorizationError)
    _is(s.try_(None, "policy", policy=None), v.AuthorizationError)
    _is(s.try_(None, "policy", policy={"events": {"x": {"required": []}}}),
        v.AuthorizationError)
    # nor grant itself more: revoking itself is keyring too
    _is(s.try_(None, "revoke", name="scoped-x", reason=None), v.AuthorizationError)


def test_empty_ops_scope_writes_nothing() -> None:
    s = Scene(scope_doc(ops=[]), models={"m": "high"})
    for op, body in (("register", model_doc("n")),
                     ("event", dict(model="m", event_type="validated", payload={})),
                     ("tag", dict(model="m", tag="production", target=s.head("m"))),
                     ("member_add", dict(group="m", member="m", role=None))):
        _is(s.try_(None, op, **body), v.AuthorizationError)


def test_writer_scope_with_keyring_is_refused_and_reader_scope_too() -> None:
    s = Scene(None, models={"m": "high"})
    k = Signer("k", b"attack13-k")
    _is(s.try_(s.log.admin, "grant", key=k.vkey, role="writer",
               scope=scope_doc(ops=["event", "keyring"])), v.RuleError)
    _is(s.try_(s.log.admin, "grant", key=k.vkey, role="reader", scope=scope_doc(ops=["event"])),
        v.RuleError)


def test_revoke_and_regrant_wider_does_not_revalidate_the_past() -> None:
    """An out-of-scope entry followed by a wider grant: the log stays invalid."""
    s = Scene(scope_doc(ops=["tag"], tags=["production"]), models={"m": "high"})
    good = list(s.log.entries)
    s.log.submit(s.x, "tag", model="m", tag="staging", target=s.head("m"))
    s.log.submit(s.log.admin, "revoke", name="scoped-x", reason=None)
    s.log.submit(s.log.admin, "grant", key=s.x.vkey, role="writer")
    with pytest.raises(v.AuthorizationError):
        v.replay(s.log.entries)
    v.replay(good)


# -- hostile policies -------------------------------------------------------------------

def test_policy_before_genesis_is_a_chain_error() -> None:
    log = Log.create(seed="attack13-pol")
    pol = log.statement(log.admin, "policy", policy=None)
    data = v.entry_bytes(index=0, recorded_at=1, prev=None, statement=pol,
                         key_id=log.admin.key.key_id, sig=log.admin.sign(pol))
    with pytest.raises(v.ChainError):
        v.replay([data])


def test_policy_by_a_writer_is_refused_and_lifting_reopens_the_vocabulary() -> None:
    pol = {"events": {"validated": {"required": ["result"]}}}
    s = Scene(None, models={"m": "high"}, policy=pol)
    _is(s.try_(s.pipe, "policy", policy=None), v.AuthorizationError)
    _is(s.try_(s.pipe, "event", model="m", event_type="retrained", payload={}), v.PolicyError)
    _is(s.try_(s.pipe, "event", model="m", event_type="validated", payload={"result": None}),
        v.PolicyError)
    s.ok(s.pipe, "event", model="m", event_type="validated", payload={"result": "pass"})
    # the policy omits `retired`: no model can be retired (documented)
    _is(s.try_(s.pipe, "event", model="m", event_type="retired", payload={}), v.PolicyError)
    s.ok(s.log.admin, "policy", policy=None)
    s.ok(s.pipe, "event", model="m", event_type="retrained", payload={})


def test_a_policy_cannot_be_used_to_retire_a_model_for_good_without_listing_reactivated(
) -> None:
    """Retire, then a policy without `reactivated`: the model is frozen until an admin
    changes the policy (documented); memberships frozen too."""
    s = Scene(None, models={"m": "high", "g": "high"})
    s.ok(s.pipe, "event", model="m", event_type="retired", payload={})
    s.ok(s.log.admin, "policy", policy={"events": {"validated": {"required": []}}})
    _is(s.try_(s.pipe, "event", model="m", event_type="reactivated", payload={}),
        v.PolicyError)
    _is(s.try_(s.pipe, "member_add", group="g", member="m", role=None), v.RuleError)
    s.ok(s.log.admin, "policy", policy={"events": {"reactivated": {"required": []}}})
    s.ok(s.pipe, "event", model="m", event_type="reactivated", payload={})


@pytest.mark.parametrize("doc", [
    {"events": {"validated": {"required": ["b", "a"]}}},      # unsorted
    {"events": {"validated": {"required": ["a", "a"]}}},      # repeat
    {"events": {"Validated": {"required": []}}},               # not an identifier
    {"events": {"validated": {"required": [""]}}},             # empty field
    {"events": {"validated": {"required": ["a\u202eb"]}}},     # bidi control
    {"events": {"validated": {"required": []}}, "x": 1},       # unknown member
    {"events": {"validated": {}, "retired": {"required": [], "why": 1}}},
])
def test_malformed_policy_members_are_refused_at_parse(doc: dict[str, Any]) -> None:
    log = Log.create(seed="attack13-bad")
    import msgspec
    body = msgspec.json.encode(doc)
    raw = log.statement(log.admin, "policy", policy=None).replace(b'"policy":null',
                                                                  b'"policy":' + body)
    with pytest.raises(v.MalformedInputError):
        v.parse_statement(raw)


def test_a_huge_policy_is_refused_by_the_entry_limit_not_by_a_crash() -> None:
    big = {f"e{i:03d}": [f"f{j:02d}" + "x" * 190 for j in range(64)] for i in range(256)}
    policy = make_policy(big)  # fine as a value: 256 x 64 x 200 characters
    log = Log.create(seed="attack13-big")
    with pytest.raises((ValueError, v.MalformedInputError)):
        data = log.statement(log.admin, "policy", policy=policy)
        v.parse_statement(data)


def test_policy_refuses_reserved_event_types() -> None:
    # FINDING: low: a policy may list a reserved event type (e.g. `registered` requiring fields); the rule can never apply and reads as if registrations needed those fields  # noqa: E501
    for reserved in ("registered", "tag_moved", "member_added", "member_removed"):
        with pytest.raises(ValueError):
            make_policy({reserved: ["approved_by"]})
        with pytest.raises(ValueError):
            policy_from_doc({"events": {reserved: {"required": ["approved_by"]}}})
