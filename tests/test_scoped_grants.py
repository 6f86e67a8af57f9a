"""Scoped grants (specs/entry.md §3.7, §8.3 step 9b; issue 13).

Each scope dimension (ops, event types, tags, model globs, tiers) allows and refuses, in
replay of hand-built logs (the verifier) and in the writer (Ledger); the scope in force
at each point of the log is the one enforced; a grant without a scope, or with its role's
preset, behaves as before; the scope's wire format is strict; the glob matcher and the
scope parser have property tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from ledger import ActorKey, Ledger
from tests.helpers import model_doc, scope_doc
from tests.ledger_support import Clock, Keys, fingerprint, make_ledger, register
from tests.logsim import Log, Signer, sample_log
from verifier.report import render_report
from verifier.scope import MAX_SCOPE_ITEMS, scope_problem

# -- hand-built logs: the verifier's replay -------------------------------------------------


class Scene:
    """Admin, full writer 'ml-pipeline' and 'approver' granted ``role`` with ``scope``;
    models fraud_a (high), credit_b (low), group fraud_g (high), a retrained event on
    fraud_a."""

    def __init__(self, scope: dict[str, Any] | None, role: str = "writer") -> None:
        self.log = log = Log.create(seed="scopes")
        self.pipe = Signer("ml-pipeline", b"scopes-pipe")
        self.actor = Signer("approver", b"scopes-approver")
        log.submit(log.admin, "grant", key=self.pipe.vkey, role="writer")
        body = {} if scope is None else {"scope": scope}
        self.grant_entry = log.submit(log.admin, "grant", key=self.actor.vkey, role=role,
                                      **body)
        for name, tier in (("fraud_a", "high"), ("credit_b", "low"), ("fraud_g", "high")):
            log.submit(self.pipe, "register", **model_doc(name, tier))
        self.event = log.submit(self.pipe, "event", model="fraud_a", event_type="retrained",
                                payload={})

    def snap(self, model: str) -> str:
        return v.snapshot_hash(self.event if model == "fraud_a" else next(
            e for e in self.log.entries if f'\\"name\\":\\"{model}\\"' in e.decode()))

    def outcome(self, signer: Signer | None, op: str, **body: Any) -> Exception | None:
        """Replay the scene, then apply one more statement: None if accepted, else the
        exception. The replay of everything before it must succeed."""
        return self.log.outcome(signer or self.actor, op, **body)


# One statement of each kind the dimensions bear on; bodies use the scene's models.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "register_high": ("register", model_doc("fraud_new", "high")),
    "register_low": ("register", model_doc("credit_new", "low")),
    "event_validated": ("event", dict(model="fraud_a", event_type="validated", payload={})),
    "event_retrained": ("event", dict(model="fraud_a", event_type="retrained", payload={})),
    "event_low": ("event", dict(model="credit_b", event_type="validated", payload={})),
    "update_tier": ("event", dict(model="fraud_a", event_type="updated",
                                  payload={"tier": "low"})),
    "tag_production": ("tag", dict(model="fraud_a", tag="production")),
    "tag_staging": ("tag", dict(model="fraud_a", tag="staging")),
    "member_add": ("member_add", dict(group="fraud_g", member="fraud_a", role=None)),
    "member_add_credit": ("member_add", dict(group="fraud_g", member="credit_b", role=None)),
}


def _run(scene: Scene, case: str) -> Exception | None:
    op, body = CASES[case]
    body = dict(body)
    if op == "tag":
        body["target"] = scene.snap(body["model"])
    return scene.outcome(None, op, **body)


# scope -> (case -> allowed?)
DIMENSIONS: dict[str, tuple[dict[str, Any], dict[str, bool]]] = {
    "ops": (scope_doc(ops=["event"]), {
        "register_high": False, "event_validated": True, "tag_production": False,
        "member_add": False, "event_retrained": True}),
    "event_types": (scope_doc(event_types=["validated", "validation_failed"]), {
        "event_validated": True, "event_retrained": False, "register_high": True,
        "tag_production": True}),
    "tags": (scope_doc(tags=["production"]), {
        "tag_production": True, "tag_staging": False, "event_retrained": True}),
    "models": (scope_doc(models=["fraud_*"]), {
        "register_high": True, "register_low": False, "event_validated": True,
        "event_low": False, "member_add": True, "member_add_credit": False,
        "tag_production": True}),
    "tiers": (scope_doc(tiers=["high"]), {
        "register_high": True, "register_low": False, "event_validated": True,
        "event_low": False, "update_tier": False, "member_add": True,
        "member_add_credit": False}),
}


@pytest.mark.parametrize("dimension,case", [(d, c) for d, (_, cases) in DIMENSIONS.items()
                                            for c in cases])
def test_each_dimension_allows_and_refuses_in_replay(dimension: str, case: str) -> None:
    scope, expect = DIMENSIONS[dimension]
    got = _run(Scene(scope), case)
    if expect[case]:
        assert got is None, got
    else:
        assert type(got) is v.AuthorizationError, got
        assert "approver" in str(got) and "scope of its key" in str(got)
        label = {"ops": "allows ops", "event_types": "allows event types",
                 "tags": "allows tags", "models": "allows models matching",
                 "tiers": "allows tiers"}[dimension]
        assert label in str(got)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("role", ["writer", "admin", "reader"])
def test_preset_scope_equals_no_scope(case: str, role: str) -> None:
    """A grant naming its role's preset accepts and refuses exactly what a grant without a
    scope does (the old behaviour), with the same error class."""
    plain = _run(Scene(None, role), case)
    explicit = _run(Scene(msgspec.to_builtins(v.preset(role)), role), case)
    assert type(plain) is type(explicit)
    if role == "reader":
        assert type(plain) is v.AuthorizationError


def test_presets_are_as_specified() -> None:
    assert v.preset("admin").ops == ("event", "keyring", "membership", "register", "tag")
    assert v.preset("writer").ops == ("event", "membership", "register", "tag")
    assert v.preset("reader").ops == ()
    for role in v.ROLES:
        p = v.preset(role)
        assert (p.event_types, p.tags, p.models, p.tiers) == (None, None, None, None)
    with pytest.raises(ValueError):
        v.preset("owner")


def test_old_logs_replay_unchanged() -> None:
    """A log without scoped grants: every key record has scope None, and the effective
    scope is the role's preset."""
    log, _ = sample_log(models=4, seed="scopes-old")
    inv = v.replay(log.entries)
    assert all(r.scope is None for r in inv.key_history)
    assert [r.effective_scope for r in inv.key_history] == [
        v.preset(r.role) for r in inv.key_history]
    assert inv.policy is None and inv.policy_history == []


def test_keyring_op_and_role_bounds() -> None:
    """A writer scope cannot allow keyring (RuleError at the grant); an admin scope without
    keyring cannot grant (AuthorizationError)."""
    s = Scene(None)
    friend = Signer("friend", b"scopes-friend")
    got = s.outcome(s.log.admin, "grant", key=friend.vkey, role="writer",
                    scope=scope_doc(ops=["keyring", "tag"]))
    assert type(got) is v.RuleError and "a writer scope cannot allow keyring" in str(got)
    got = s.outcome(s.log.admin, "grant", key=friend.vkey, role="reader", scope=scope_doc(ops=[]))
    assert got is None
    s2 = Scene(scope_doc(ops=["tag"]), role="admin")
    got = s2.outcome(None, "grant", key=friend.vkey, role="writer")
    assert type(got) is v.AuthorizationError and "allows ops tag, not 'keyring'" in str(got)
    got = s2.outcome(None, "revoke", name="ml-pipeline", reason=None)
    assert type(got) is v.AuthorizationError


def test_scope_check_comes_before_signature_and_rules() -> None:
    """Step 9b precedes the id, signature and inventory checks: an out-of-scope statement
    with a bad signature is AuthorizationError, not SignatureError."""
    s = Scene(scope_doc(tags=["production"]))
    inv = v.replay(s.log.entries)
    st_bytes = s.log.statement(s.actor, "tag", model="fraud_a", tag="staging",
                               target=s.snap("fraud_a"))
    data = s.log.append(st_bytes, s.actor.key.key_id, b"\0" * 64)
    with pytest.raises(v.AuthorizationError):
        inv.apply(data)


def test_scope_change_over_time_is_enforced_at_each_point() -> None:
    """approver may move only staging; an entry moving production is refused at that point.
    After a revoke and a new grant with production, the same move is accepted; a whole log
    holding a production move before the widening is refused at exactly that index."""
    s = Scene(scope_doc(ops=["tag"], tags=["staging"]))
    target = s.snap("fraud_a")
    assert type(s.outcome(None, "tag", model="fraud_a", tag="production", target=target)) \
        is v.AuthorizationError
    assert s.outcome(None, "tag", model="fraud_a", tag="staging", target=target) is None
    s.log.submit(s.log.admin, "revoke", name="approver", reason="now approves production")
    s.log.submit(s.log.admin, "grant", key=s.actor.vkey, role="writer",
                 scope=scope_doc(ops=["tag"], tags=["production", "staging"]))
    assert s.outcome(None, "tag", model="fraud_a", tag="production", target=target) is None
    inv = v.replay(s.log.entries)
    history = [r for r in inv.key_history if r.name == "approver"]
    assert [r.scope.tags if r.scope else None for r in history] == [
        ("staging",), ("production", "staging")]
    assert history[0].revoked_index is not None and history[1].revoked_index is None

    # a forged history: the production move placed before the widening
    bad = Scene(scope_doc(ops=["tag"], tags=["staging"]))
    at = len(bad.log.entries)
    bad.log.submit(bad.actor, "tag", model="fraud_a", tag="production", target=target)
    bad.log.submit(bad.log.admin, "revoke", name="approver", reason=None)
    bad.log.submit(bad.log.admin, "grant", key=bad.actor.vkey, role="writer",
                   scope=scope_doc(ops=["tag"], tags=["production", "staging"]))
    inv = v.Inventory()
    for i, data in enumerate(bad.log.entries):
        if i == at:
            with pytest.raises(v.AuthorizationError, match="allows tags staging"):
                inv.apply(data)
            break
        inv.apply(data)


# -- the wire format ----------------------------------------------------------------------


def _grant_bytes(scope_json: bytes | None) -> bytes:
    log = Log.create(seed="scopes-wire")
    friend = Signer("friend", b"scopes-friend")
    st_bytes = log.statement(log.admin, "grant", key=friend.vkey, role="writer")
    if scope_json is None:
        return st_bytes
    return st_bytes.replace(b',"v":2}', b',"scope":' + scope_json + b',"v":2}')


GOOD = b'{"event_types":null,"models":["fraud_*"],"ops":["event","tag"],"tags":null,"tiers":null}'


def test_wire_format_accepts_a_canonical_scope() -> None:
    st_ = v.parse_statement(_grant_bytes(GOOD))
    assert isinstance(st_, v.Grant) and st_.scope is not None
    assert st_.scope.models == ("fraud_*",) and st_.scope.ops == ("event", "tag")
    assert v.statement_bytes(st_) == _grant_bytes(GOOD)
    plain = v.parse_statement(_grant_bytes(None))
    assert isinstance(plain, v.Grant) and plain.scope is None
    assert b"scope" not in v.statement_bytes(plain)  # the old bytes, unchanged


@pytest.mark.parametrize("bad", [
    b"null",  # absent, never null
    b"{}",  # every field required
    GOOD.replace(b'"ops":["event","tag"]', b'"ops":["tag","event"]'),  # unsorted
    GOOD.replace(b'"ops":["event","tag"]', b'"ops":["event","event"]'),  # repeated
    GOOD.replace(b'"ops":["event","tag"]', b'"ops":["grant"]'),  # unknown op
    GOOD.replace(b'"tags":null', b'"tags":["Prod\\u0000"]'),  # control character
    GOOD.replace(b'"event_types":null', b'"event_types":["Validated"]'),  # not an identifier
    GOOD.replace(b'"models":["fraud_*"]', b'"models":[""]'),  # empty
    GOOD.replace(b'"tiers":null', b'"tiers":null,"x":1'),  # unknown field
    GOOD.replace(b'"models":["fraud_*"]', b'"models":"fraud_*"'),  # not a list
    GOOD.replace(b'"tags":null', b'"tags":[' + b",".join(
        b'"t%03d"' % i for i in range(MAX_SCOPE_ITEMS + 1)) + b"]"),  # too many
    GOOD.replace(b'"models":["fraud_*"]', b'"models":["fraud_\xd0\xbe*"]'),  # mixed scripts
])
def test_wire_format_refuses(bad: bytes) -> None:
    with pytest.raises(v.MalformedInputError):
        v.parse_statement(_grant_bytes(bad))


def test_make_scope_sorts_and_refuses() -> None:
    s = v.make_scope(ops=["tag", "event", "tag"], tags=["staging", "production"])
    assert s.ops == ("event", "tag") and s.tags == ("production", "staging")
    with pytest.raises(ValueError, match="unknown op"):
        v.make_scope(ops=["grant"])
    with pytest.raises(ValueError):
        v.make_scope(ops=[], event_types=["Not-An-Identifier"])
    with pytest.raises(TypeError):
        v.make_scope(ops=[], tags="production")
    with pytest.raises(ValueError, match="at most"):
        v.make_scope(ops=[], tiers=[f"t{i}" for i in range(MAX_SCOPE_ITEMS + 1)])
    assert scope_problem(v.make_scope(ops=["keyring"]), "writer") is not None
    assert scope_problem(v.make_scope(ops=["keyring"]), "admin") is None


_names = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), min_size=1,
                 max_size=12).filter(lambda s: s.strip() == s and "  " not in s)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(v.OPS)), st.none() | st.lists(_names, max_size=5),
       st.none() | st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), max_size=5))
def test_scope_round_trips_through_a_statement(ops: list[str], tags: list[str] | None,
                                               events: list[str] | None) -> None:
    """Property: any scope make_scope accepts is carried by a grant's canonical bytes and
    parsed back equal."""
    try:
        scope = v.make_scope(ops=ops, tags=tags, event_types=events, models=tags)
    except ValueError:
        return  # a name outside the profile
    data = _grant_bytes(msgspec.json.encode(scope, order="sorted"))
    parsed = v.parse_statement(data)
    assert isinstance(parsed, v.Grant) and parsed.scope == scope


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_scope_like = st.fixed_dictionaries({}, optional={
    "ops": st.lists(st.sampled_from([*v.OPS, "grant", 1]), max_size=4) | _json,
    "event_types": st.none() | st.lists(st.text(max_size=5), max_size=3) | _json,
    "tags": st.none() | st.lists(st.text(max_size=5), max_size=3),
    "models": st.none() | st.lists(st.text(max_size=5), max_size=3),
    "tiers": st.none() | st.lists(st.text(max_size=5), max_size=3),
    "extra": _json,
})


@settings(max_examples=300, deadline=None)
@given(_scope_like)
def test_scope_parser_never_fails_otherwise(doc: dict[str, Any]) -> None:
    """Property: arbitrary scope-like JSON in a grant either parses (and then re-encodes to
    the same bytes) or is MalformedInputError; nothing else escapes."""
    data = _grant_bytes(msgspec.json.encode(doc, order="sorted"))
    try:
        parsed = v.parse_statement(data)
    except v.MalformedInputError:
        return
    assert v.statement_bytes(parsed) == data


# -- the glob matcher ----------------------------------------------------------------------


def _oracle(pattern: str, name: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, name, re.DOTALL) is not None


@pytest.mark.parametrize("pattern,name,want", [
    ("*", "anything", True), ("*", "", True), ("fraud_*", "fraud_a", True),
    ("fraud_*", "fraud_", True), ("fraud_*", "xfraud_a", False), ("*_v2", "m_v2", True),
    ("a*b*c", "abc", True), ("a*b*c", "acb", False), ("a*a", "a", False),
    ("fraud?", "fraud1", False), ("fraud?", "fraud?", True), ("[ab]", "a", False),
    ("[ab]", "[ab]", True), ("Fraud", "fraud", False), ("**", "x", True),
])
def test_glob_examples(pattern: str, name: str, want: bool) -> None:
    assert v.glob_match(pattern, name) is want


_glob_chars = st.sampled_from("ab*?[]_")


@settings(max_examples=500, deadline=None)
@given(st.text(_glob_chars, max_size=8), st.text(st.sampled_from("ab?[]_"), max_size=10))
def test_glob_matches_the_oracle(pattern: str, name: str) -> None:
    """Property: '*' is the only wildcard, every other character is literal."""
    assert v.glob_match(pattern, name) is _oracle(pattern, name)


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from("ab*"), max_size=8), st.text(st.sampled_from("ab"), max_size=8))
def test_glob_with_star_only_agrees_with_fnmatch(pattern: str, name: str) -> None:
    import fnmatch
    assert v.glob_match(pattern, name) is fnmatch.fnmatchcase(name, pattern)


# -- the writer ---------------------------------------------------------------------------


APPROVER = ActorKey.generate("approver")
PIPE = ActorKey.generate("ml-pipeline")


@pytest.fixture
def ledger(path: Path, keys: Keys) -> Iterator[Ledger]:
    led = make_ledger(path, keys, Clock())
    led.grant(PIPE.vkey, role="writer")
    register(led, "fraud_a")
    register(led, "credit_b", tier="low")
    register(led, "fraud_g", model_type="group")
    yield led
    led.close()


def _as(path: Path, keys: Keys, key: ActorKey) -> Ledger:
    return Ledger.open(path, log_key=keys.log, signer=key,
                       clock=Clock(step=timedelta(seconds=1)))


WRITES: dict[str, Any] = {
    "register_low": lambda led: led.register(name="credit_new", owner="o",
                                             model_type="ml_model", tier="low", purpose="p"),
    "register_fraud": lambda led: led.register(name="fraud_new", owner="o",
                                               model_type="ml_model", tier="high", purpose="p"),
    "validated": lambda led: led.record("fraud_a", "validated", {"result": "pass"}),
    "retrained": lambda led: led.record("fraud_a", "retrained"),
    "validated_low": lambda led: led.record("credit_b", "validated"),
    "update_tier": lambda led: led.update("fraud_a", tier="low"),
    "production": lambda led: led.tag("fraud_a", "production"),
    "staging": lambda led: led.tag("fraud_a", "staging"),
    "member": lambda led: led.add_member("fraud_g", "fraud_a"),
    "member_credit": lambda led: led.add_member("fraud_g", "credit_b"),
}

WRITER_DIMENSIONS: dict[str, tuple[v.Scope, dict[str, bool]]] = {
    "ops": (v.make_scope(ops=["event"]), {"validated": True, "production": False,
                                          "register_fraud": False, "member": False}),
    "event_types": (v.make_scope(ops=["event"], event_types=["validated"]), {
        "validated": True, "retrained": False}),
    "tags": (v.make_scope(ops=["tag"], tags=["production"]), {
        "production": True, "staging": False}),
    "models": (v.make_scope(ops=["event", "membership", "register", "tag"],
                            models=["fraud_*"]), {
        "register_fraud": True, "register_low": False, "validated": True,
        "validated_low": False, "member": True, "member_credit": False}),
    "tiers": (v.make_scope(ops=["event", "membership", "register"], tiers=["high"]), {
        "register_fraud": True, "register_low": False, "validated": True,
        "validated_low": False, "update_tier": False, "member_credit": False}),
}


@pytest.mark.parametrize("dimension,case", [(d, c) for d, (_, cases) in
                                            WRITER_DIMENSIONS.items() for c in cases])
def test_each_dimension_in_the_writer(dimension: str, case: str, ledger: Ledger, path: Path,
                                      keys: Keys) -> None:
    scope, expect = WRITER_DIMENSIONS[dimension]
    ledger.grant(APPROVER.vkey, role="writer", scope=scope)
    before = fingerprint(ledger)
    with _as(path, keys, APPROVER) as approver:
        if expect[case]:
            WRITES[case](approver)
            assert ledger.size == before[0] + 1
        else:
            with pytest.raises(v.AuthorizationError, match="scope of its key") as info:
                WRITES[case](approver)
            assert type(info.value) is v.AuthorizationError
            assert fingerprint(ledger) == before
    assert ledger.audit() == ledger.size
    inv = v.replay([ledger.entry(i) for i in range(ledger.size)])
    assert inv.keys["approver"].scope == scope


def test_keyring_and_audit_carry_scopes(ledger: Ledger, path: Path, keys: Keys) -> None:
    scope = v.make_scope(ops=["tag"], tags=["production"])
    before = ledger.keyring()
    ledger.grant(APPROVER.vkey, role="writer", scope=scope)
    records = ledger.keyring()
    assert records[:-1] == before and records[-1].scope == scope
    assert all(r.scope is None for r in before)
    ledger.revoke("approver", reason="widen")
    ledger.grant(APPROVER.vkey, role="writer", scope=v.make_scope(ops=["tag", "event"]))
    hist = [r for r in ledger.keyring() if r.name == "approver"]
    assert [r.scope.ops for r in hist if r.scope] == [("tag",), ("event", "tag")]
    assert ledger.audit() == ledger.size
    with pytest.raises(v.RuleError, match="writer scope cannot allow keyring"):
        ledger.grant(ActorKey.generate("x").vkey, role="writer",
                     scope=v.make_scope(ops=["keyring"]))


def test_report_shows_scopes() -> None:
    s = Scene(scope_doc(ops=["tag"], tags=["production"]))
    t = s.log.time_after(len(s.log.entries))
    result = v.verify_bundle(s.log.bundle(t), [s.log.log_key.key])
    html = render_report(result)
    assert "<th scope=\"col\">Scope</th>" in html
    assert "ops tag; tags production" in html
    assert "role preset: ops event, membership, register, tag" in html
    keys_json = result.to_json()["keys"]
    approver = next(k for k in keys_json if k["name"] == "approver")
    assert list(approver["scope"]["tags"]) == ["production"] and not approver["scope_is_preset"]


def test_a_bundle_with_an_out_of_scope_entry_fails_verification() -> None:
    """The examiner's path: verify_bundle over a hand-built log in which the approver moved
    a tag its scope did not allow is refused (AuthorizationError); the same log cut just
    before that entry verifies."""
    s = Scene(scope_doc(ops=["tag"], tags=["production"]))
    good = len(s.log.entries)
    s.log.submit(s.actor, "tag", model="fraud_a", tag="staging", target=s.snap("fraud_a"))
    t_all = s.log.time_after(len(s.log.entries))
    with pytest.raises(v.AuthorizationError, match="allows tags production"):
        v.verify_bundle(s.log.bundle(t_all), [s.log.log_key.key])
    t_before = s.log.time_after(good)
    result = v.verify_bundle(s.log.bundle(t_before), [s.log.log_key.key])
    assert result.size == good
