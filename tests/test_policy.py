"""The controlled vocabulary (specs/entry.md §3.8, §8.5 rule 15) and retired models
(rules 15–18; issue 13).

A genesis or an admin's ``policy`` entry declares the allowed event types and the payload
fields each requires; events outside the policy in force are refused by replay and by the
writer (PolicyError, a RuleError). While a policy is in force a retired model's
memberships no longer change; without one, old logs replay as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from ledger import ActorKey, AuditError, Ledger
from tests.cli_support import MODEL, cli, init_store, ok, refused, refused_json
from tests.helpers import model_doc
from tests.ledger_support import Clock, Keys, fingerprint, make_ledger, register
from tests.logsim import CLAIM_SKEW, CLAIM_WINDOW, Log, Signer
from verifier.policy import MAX_POLICY_EVENTS

VOCAB: dict[str, Any] = {"events": {"validated": {"required": ["profile", "result", "validator"]},
                    "retrained": {"required": []}, "retired": {"required": []},
                    "reactivated": {"required": []}, "updated": {"required": []}}}
FULL = {"profile": "sr_11_7", "result": "pass", "validator": "mrm-team"}


class Scene:
    """A log whose genesis declares ``policy`` (or none); writer 'ml-pipeline'; models
    a, b and group g."""

    def __init__(self, policy: dict[str, Any] | None) -> None:
        origin = "example.com/models"
        self.log = log = Log(origin, Signer(origin, b"policy-log"),
                             Signer("risk-admin", b"policy-admin"))
        body = {} if policy is None else {"policy": policy}
        log.submit(log.admin, "genesis", log_key=log.log_key.vkey, admin_key=log.admin.vkey,
                   claim_skew=CLAIM_SKEW, claim_window=CLAIM_WINDOW, **body)
        log.log_id = v.snapshot_hash(log.entries[0])
        self.pipe = Signer("ml-pipeline", b"policy-pipe")
        log.submit(log.admin, "grant", key=self.pipe.vkey, role="writer")
        for name in ("a", "b", "g"):
            log.submit(self.pipe, "register", **model_doc(name))

    def event(self, model: str, event_type: str, payload: dict[str, Any] | None = None
              ) -> tuple[str, dict[str, Any]]:
        return "event", dict(model=model, event_type=event_type, payload=payload or {})

    def outcome(self, op: str, body: dict[str, Any], signer: Signer | None = None
                ) -> Exception | None:
        """Apply one more statement after replaying the scene: None if accepted (it stays
        in the log), else the exception (it is taken out again)."""
        return self.log.outcome(signer or self.pipe, op, **body)

    def ok(self, op: str, body: dict[str, Any], signer: Signer | None = None) -> None:
        got = self.outcome(op, body, signer)
        assert got is None, got


# -- replay -------------------------------------------------------------------------------


def test_genesis_policy_allows_and_refuses() -> None:
    s = Scene(VOCAB)
    s.ok(*s.event("a", "validated", FULL))
    s.ok(*s.event("a", "validated", {**FULL, "extra": [1, 2]}))  # more fields are fine
    got = s.outcome(*s.event("a", "deployed"))
    assert type(got) is v.PolicyError and isinstance(got, v.RuleError)
    assert "'deployed' is not in the policy in force" in str(got)
    assert "allowed: reactivated, retired, retrained, updated, validated" in str(got)
    got = s.outcome(*s.event("a", "validated", {"profile": "x", "result": "pass"}))
    assert type(got) is v.PolicyError and "requires 'validated' events to give validator" \
        in str(got)
    got = s.outcome(*s.event("a", "validated", {**FULL, "validator": None}))
    assert type(got) is v.PolicyError  # null counts as missing
    inv = v.replay(s.log.entries)
    assert inv.policy is not None and sorted(inv.policy.events) == sorted(VOCAB["events"])
    assert [r.index for r in inv.policy_history] == [0]


def test_no_policy_is_todays_behaviour() -> None:
    s = Scene(None)
    s.ok(*s.event("a", "deployed"))
    s.ok(*s.event("a", "validated"))
    assert v.replay(s.log.entries).policy is None


def test_policy_entries_change_the_vocabulary_at_each_point() -> None:
    """A writer may not set a policy; an admin's policy applies from the next entry; null
    lifts it. A forged log whose event came after a narrowing is refused at that index."""
    s = Scene(None)
    narrow = {"events": {"validated": {"required": ["result"]}}}
    got = s.outcome("policy", {"policy": narrow})
    assert type(got) is v.AuthorizationError and "not an admin" in str(got)
    s.ok(*s.event("a", "deployed"))
    s.ok("policy", {"policy": narrow}, s.log.admin)
    assert type(s.outcome(*s.event("a", "deployed"))) is v.PolicyError
    assert type(s.outcome(*s.event("a", "validated"))) is v.PolicyError
    s.ok(*s.event("a", "validated", {"result": "fail"}))
    s.ok("policy", {"policy": None}, s.log.admin)
    s.ok(*s.event("a", "deployed"))
    inv = v.replay(s.log.entries)
    assert inv.policy is None
    assert [r.policy is None for r in inv.policy_history] == [False, True]

    forged = Scene(None)
    forged.ok("policy", {"policy": narrow}, forged.log.admin)
    at = len(forged.log.entries)
    forged.log.submit(forged.pipe, "event", model="a", event_type="deployed", payload={})
    inv = v.Inventory()
    for data in forged.log.entries[:at]:
        inv.apply(data)
    with pytest.raises(v.PolicyError):
        inv.apply(forged.log.entries[at])


def test_policy_is_checked_after_the_retirement_rule() -> None:
    """A retired model's other events stay plain RuleError (the older rule comes first);
    without 'reactivated' in the policy a retired model stays retired."""
    s = Scene({"events": {"retired": {"required": ["reason"]}}})
    assert type(s.outcome(*s.event("a", "retired"))) is v.PolicyError
    s.ok(*s.event("a", "retired", {"reason": "replaced"}))
    got = s.outcome(*s.event("a", "deployed"))
    assert type(got) is v.RuleError and "is retired" in str(got)
    assert type(s.outcome(*s.event("a", "reactivated"))) is v.PolicyError


# -- retired models ------------------------------------------------------------------------


def _retired_scene(policy: dict[str, Any] | None) -> Scene:
    s = Scene(policy)
    s.ok("member_add", dict(group="g", member="b", role=None))
    s.ok(*s.event("a", "retired"))
    s.ok(*s.event("g", "retired"))
    return s


def test_retired_model_without_policy_keeps_old_rules() -> None:
    """Old logs stay valid: events (other than reactivated) and tags are refused as before,
    memberships of retired models are accepted."""
    s = _retired_scene(None)
    assert type(s.outcome(*s.event("a", "retrained"))) is v.RuleError
    assert type(s.outcome("tag", dict(model="a", tag="production",
                                      target=v.snapshot_hash(s.log.entries[3])))) is v.RuleError
    s.ok("member_add", dict(group="b", member="a", role=None))  # a retired member
    s.ok("member_add", dict(group="g", member="a", role=None))  # into a retired group
    s.ok("member_remove", dict(group="g", member="b", reason=None))


def test_retired_model_with_policy_is_frozen() -> None:
    s = _retired_scene(VOCAB)
    assert type(s.outcome(*s.event("a", "retrained"))) is v.RuleError
    for body in (dict(group="b", member="a", role=None), dict(group="g", member="b", role=None)):
        got = s.outcome("member_add", body)
        assert type(got) is v.RuleError and "is retired" in str(got), got
    got = s.outcome("member_remove", dict(group="g", member="b", reason=None))
    assert type(got) is v.RuleError and "'g' is retired" in str(got)
    s.ok(*s.event("b", "retrained"))
    s.ok(*s.event("a", "reactivated"))  # the way back
    s.ok("member_add", dict(group="b", member="a", role=None))
    s.ok(*s.event("a", "retired"))
    s.ok("member_remove", dict(group="b", member="a", reason=None))  # a retired member leaves


# -- the wire format and the parsers ------------------------------------------------------


def _policy_statement(policy_json: bytes) -> bytes:
    s = Scene(None)
    data = s.log.statement(s.log.admin, "policy", policy=None)
    return data.replace(b'"policy":null', b'"policy":' + policy_json)


def test_wire_format() -> None:
    good = b'{"events":{"validated":{"required":["result","validator"]}}}'
    st_ = v.parse_statement(_policy_statement(good))
    assert isinstance(st_, v.SetPolicy) and st_.policy is not None
    assert st_.policy.events["validated"].required == ("result", "validator")
    assert isinstance(v.parse_statement(_policy_statement(b"null")), v.SetPolicy)
    for bad in (b'{"events":{"validated":{"required":["validator","result"]}}}',
                b'{"events":{"validated":{"required":["a","a"]}}}',
                b'{"events":{"Validated":{"required":[]}}}',
                b'{"events":{"validated":{}}}',
                b'{"events":{"validated":{"required":[]},"x":1}}',
                b'{"events":{},"other":1}',
                b'{"events":{"v":{"required":[""]}}}',
                b'{"events":{' + b",".join(b'"t%03d":{"required":[]}' % i
                                            for i in range(MAX_POLICY_EVENTS + 1)) + b"}}"):
        with pytest.raises(v.MalformedInputError):
            v.parse_statement(_policy_statement(bad))
    # a genesis has no policy field, or an object: never null
    s = Scene(VOCAB)
    genesis = v.parse_entry(s.log.entries[0]).statement_bytes
    assert b'"policy":{' in genesis
    with pytest.raises(v.MalformedInputError):
        v.parse_statement(genesis.replace(
            genesis[genesis.index(b'"policy":'):genesis.index(b',"v":2')], b'"policy":null'))


def test_make_policy_and_policy_from_doc() -> None:
    p = v.make_policy({"validated": ["validator", "result", "result"], "retired": []})
    assert p.events["validated"].required == ("result", "validator")
    assert v.policy_from_doc(VOCAB) == v.make_policy(
        {k: r["required"] for k, r in VOCAB["events"].items()})
    assert v.policy_from_doc({"events": {"x": {}}}).events["x"].required == ()
    bads: list[Any] = [{}, {"events": {"x": {"required": "result"}}}, {"events": {"X": {}}},
                       {"events": {"x": {"optional": []}}}, {"events": {}, "more": {}}, [1],
                       {"events": {"x": {"required": ["a\nb"]}}}]
    for bad in bads:
        with pytest.raises(ValueError):
            v.policy_from_doc(bad)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_ident = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
_docs = st.one_of(
    _json,
    st.fixed_dictionaries({"events": st.dictionaries(
        _ident | st.text(max_size=4),
        st.fixed_dictionaries({}, optional={"required": st.lists(st.text(max_size=5),
                                                                 max_size=4) | _json}),
        max_size=4)}),
)


@settings(max_examples=300, deadline=None)
@given(_docs)
def test_policy_from_doc_property(doc: Any) -> None:
    """Property: any document gives a Policy or ValueError; a Policy it gives is carried by
    a policy statement's canonical bytes and parsed back equal."""
    try:
        policy = v.policy_from_doc(doc)
    except ValueError:
        return
    data = _policy_statement(msgspec.json.encode(policy, order="sorted"))
    parsed = v.parse_statement(data)
    assert isinstance(parsed, v.SetPolicy) and parsed.policy == policy
    assert v.statement_bytes(parsed) == data


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json, max_size=5))
def test_policy_statement_parser_never_fails_otherwise(doc: dict[str, Any]) -> None:
    data = _policy_statement(msgspec.json.encode(doc, order="sorted"))
    try:
        parsed = v.parse_statement(data)
    except v.MalformedInputError:
        return
    assert v.statement_bytes(parsed) == data


# -- the writer ---------------------------------------------------------------------------


@pytest.fixture
def ledger(path: Path, keys: Keys) -> Iterator[Ledger]:
    led = Ledger.create(path, origin="example.com/models", log_key=keys.log, admin=keys.admin,
                        clock=Clock(), claim_window=timedelta(days=31),
                        policy=v.policy_from_doc(VOCAB))
    register(led, "a")
    register(led, "g", model_type="group")
    yield led
    led.close()


def test_writer_refuses_outside_the_policy(ledger: Ledger) -> None:
    record = ledger.policy()
    assert record is not None and record.index == 0 and record.by == "risk-admin"
    before = fingerprint(ledger)
    with pytest.raises(v.PolicyError, match="'deployed' is not in the policy"):
        ledger.record("a", "deployed")
    with pytest.raises(v.PolicyError, match="give profile, result, validator"):
        ledger.record("a", "validated")
    with ledger.batch() as batch:
        with pytest.raises(v.PolicyError):
            batch.record("a", "deployed")
    assert fingerprint(ledger) == before
    ledger.record("a", "validated", FULL)
    ledger.set_policy(v.make_policy({"deployed": ["env"]}))
    with pytest.raises(v.PolicyError):
        ledger.record("a", "validated", FULL)
    ledger.record("a", "deployed", {"env": "prod"})
    record = ledger.policy()
    assert record is not None and record.policy == v.make_policy({"deployed": ["env"]})
    ledger.set_policy(None)
    ledger.record("a", "anything_goes")
    assert ledger.audit() == ledger.size
    inv = v.replay([ledger.entry(i) for i in range(ledger.size)])
    assert [r.index for r in inv.policy_history] == [0, 4, 6]


def test_writer_frozen_retired_and_non_admin(ledger: Ledger, path: Path, keys: Keys) -> None:
    pipe = ActorKey.generate("ml-pipeline")
    ledger.grant(pipe.vkey)
    ledger.add_member("g", "a")
    ledger.retire("g")
    with pytest.raises(v.RuleError, match="'g' is retired"):
        ledger.remove_member("g", "a")
    with Ledger.open(path, log_key=keys.log, signer=pipe,
                     clock=Clock(step=timedelta(seconds=1))) as as_pipe:
        with pytest.raises(v.AuthorizationError, match="not an admin"):
            as_pipe.set_policy(None)
    assert ledger.audit() == ledger.size


def test_audit_notices_a_changed_policy_row(ledger: Ledger) -> None:
    assert ledger.audit() == ledger.size
    store = ledger._store
    with store.env.begin(write=True) as txn:
        txn.put(b"policy", b'{"at":0,"by":"x","index":0,"policy":null}', db=store.db["meta"])
    with pytest.raises(AuditError, match="policy row"):
        ledger.audit()
    with store.env.begin(write=True) as txn:
        txn.delete(b"policy", db=store.db["meta"])
    with pytest.raises(AuditError, match="policy row"):
        ledger.audit()


def test_old_store_has_no_policy_row(tmp_path: Path) -> None:
    led = make_ledger(tmp_path / "s", Keys(), Clock())
    register(led, "a")
    assert led.policy() is None
    assert led.audit() == led.size
    led.close()


# -- the CLI ------------------------------------------------------------------------------


def test_cli_policy_and_scoped_grant(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    ok(store.run("register", "fraud", *MODEL))
    toml = tmp_path / "policy.toml"
    toml.write_text('[events.validated]\nrequired = ["result", "validator"]\n'
                    '[events.retrained]\nrequired = []\n', encoding="utf-8")
    assert "2 event types" in ok(store.run("policy", "set", toml)).out
    shown = ok(store.run("policy", "show", "--json")).json()
    assert shown["policy"]["events"]["validated"]["required"] == ["result", "validator"]
    assert "result, validator" in ok(store.run("policy", "show")).out
    run = store.run("record", "fraud", "--event", "deployed")
    refused(run, 1, "'deployed' is not in the policy", hint="modelseal policy show")
    err = refused_json(store.run("record", "fraud", "--event", "validated", "--json"), 1,
                       "give result, validator", cls="PolicyError")
    assert err["hint"]
    ok(store.run("record", "fraud", "--event", "validated", "--payload",
                 json.dumps({"result": "pass", "validator": "mrm"})))
    bad = tmp_path / "bad.json"
    bad.write_text('{"events": {"validated": {"required": "result"}}}', encoding="utf-8")
    refused(store.run("policy", "set", bad), 3, "is not a policy")  # malformed input
    refused(store.run("policy", "set", tmp_path / "missing.toml"), 4, "cannot read")  # I/O
    assert "no policy in force" in ok(store.run("policy", "clear")).out
    ok(store.run("record", "fraud", "--event", "deployed"))

    key = tmp_path / "approver.key"
    vkey = ok(cli("keygen", "approver", "-o", key)).out.strip()
    out = ok(store.run("grant", vkey, "--ops", "tag", "--tags", "production")).out
    assert "scope: ops tag; tags production" in out
    refused(store.run("tag", "fraud", "staging", key=key), 1, "allows tags production",
            hint="scope")
    ok(store.run("tag", "fraud", "production", key=key))
    refused(store.run("grant", vkey, "--ops", "nope"), 2, "unknown op")
    rows = ok(store.run("keys", "--json")).json()
    assert next(r for r in rows if r["actor"] == "approver")["scope"] == \
        "ops tag; tags production"
    ok(store.run("audit"))


def test_client_sets_policy_and_scoped_grants_through_the_server(tmp_path: Path) -> None:
    """The client's grant(scope=) and set_policy go through a real server; a refusal comes
    back as the same class (PolicyError, AuthorizationError)."""
    from ledger import LogKey
    from ledger.client import Client
    from tests.client_support import RealServer

    admin, pipe = ActorKey.generate("risk-admin"), ActorKey.generate("ml-pipeline")
    origin = "example.com/models"
    led = Ledger.create(tmp_path / "store", origin=origin, log_key=LogKey.generate(origin),
                        admin=admin)
    try:
        with RealServer(led) as server, \
                Client(server.url, log_key=led.log_vkey, actor=admin,
                       state_file=tmp_path / "a.json") as c:
            c.register(name="m", owner="o", model_type="ml_model", tier="high", purpose="p")
            c.set_policy(v.make_policy({"validated": ["result"]}))
            c.grant(pipe.vkey, scope=v.make_scope(ops=["event"], event_types=["validated"]))
            with pytest.raises(v.PolicyError):
                c.record("m", "validated")
            with Client(server.url, log_key=led.log_vkey, actor=pipe,
                        state_file=tmp_path / "p.json") as as_pipe:
                with pytest.raises(v.AuthorizationError, match="allows ops event"):
                    as_pipe.tag("m", "production", snapshot=led.history("m")[0].snapshot_hash)
                as_pipe.record("m", "validated", {"result": "pass"})
        assert led.keyring()[-1].scope == v.make_scope(ops=["event"], event_types=["validated"])
        assert led.audit() == led.size
    finally:
        led.close()


def test_cli_init_with_a_policy(tmp_path: Path) -> None:
    """`modelseal init --policy FILE`: the genesis declares the first policy; a bad file
    leaves no store behind."""
    doc = tmp_path / "policy.json"
    doc.write_text(json.dumps(VOCAB), encoding="utf-8")
    run = ok(cli("init", tmp_path / "s", "--origin", "example.com/models", "--policy", doc,
                 "--json"))
    env = {"MODELSEAL_STORE": run.json()["store"],
           "MODELSEAL_LOG_KEY": run.json()["log_key_file"],
           "MODELSEAL_KEY": run.json()["admin_key_file"]}
    shown = ok(cli("policy", "show", "--json", env=env)).json()
    assert shown["entry"] == 0 and shown["by"] == "risk-admin"
    assert sorted(shown["policy"]["events"]) == sorted(VOCAB["events"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[events\n", encoding="utf-8")
    refused(cli("init", tmp_path / "t", "--origin", "example.com/models", "--policy", bad),
            3, "does not parse")  # malformed input, as policy set
    assert not (tmp_path / "t").exists() and not (tmp_path / "t-keys").exists()
