"""A grant may not exceed its granter's scope (issue 13, separation of duties;
specs/entry.md §3.7 "Containment", §8.3 step 9b).

``scope_excess`` / ``scope_contains`` / ``glob_covers`` in verifier/scope.py, applied by
replay to every ``grant``: in hand-built logs (the verifier's replay and ``verify_bundle``),
in the writer (``Ledger.grant``) and through ``modelseal grant``. Property tests: the glob
cover test is sound (and exact over names of any characters), containment is reflexive and
transitive, and the admin preset contains every scope.
"""

from __future__ import annotations

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
from tests.cli_support import Store, cli, init_store, ok
from tests.ledger_support import Clock, Keys, fingerprint, make_ledger
from tests.logsim import Log, Signer
from verifier.scope import OPS, ScopeExcess, glob_covers, scope_contains, scope_excess

# -- the scope of the scoped admin used throughout ------------------------------------------

SCOPED_ADMIN = dict(ops=["event", "keyring", "register", "tag"], event_types=["validated"],
                    tags=["production"], models=["fraud_*"], tiers=["high"])
"""Keyring plus writes limited in every dimension but ops' membership."""


def _doc(**kw: Any) -> dict[str, Any]:
    """A scope as a statement carries it (plain JSON), built by make_scope."""
    out: dict[str, Any] = msgspec.to_builtins(v.make_scope(**kw))
    return out


NARROWER = dict(ops=["event"], event_types=["validated"], tags=["production"],
                models=["fraud_a*"], tiers=["high"])

# name -> (role, scope given to the grant or None for the role's preset, refused dimension)
ESCALATIONS: dict[str, tuple[str, dict[str, Any] | None, str]] = {
    "wider ops": ("writer", {**NARROWER, "ops": ["event", "membership"]}, "ops"),
    "membership to an admin": ("admin", {**NARROWER, "ops": ["event", "keyring",
                                                             "membership"]}, "ops"),
    "other event type": ("writer", {**NARROWER, "event_types": ["retrained"]},
                         "event_types"),
    "any event type": ("writer", {**NARROWER, "event_types": None}, "event_types"),
    "other tag": ("writer", {**NARROWER, "tags": ["production", "staging"]}, "tags"),
    "any tag": ("writer", {**NARROWER, "tags": None}, "tags"),
    "wider glob": ("writer", {**NARROWER, "models": ["*"]}, "models"),
    "other glob": ("writer", {**NARROWER, "models": ["credit_*"]}, "models"),
    "any model": ("writer", {**NARROWER, "models": None}, "models"),
    "other tier": ("writer", {**NARROWER, "tiers": ["high", "low"]}, "tiers"),
    "any tier": ("writer", {**NARROWER, "tiers": None}, "tiers"),
    "unscoped admin preset": ("admin", None, "ops"),
    "unscoped writer preset": ("writer", None, "ops"),
    "admin preset named": ("admin", msgspec.to_builtins(v.preset("admin")), "ops"),
}

ALLOWED: dict[str, tuple[str, dict[str, Any] | None]] = {
    "narrower writer": ("writer", NARROWER),
    "its own scope, as admin": ("admin", SCOPED_ADMIN),
    "narrower admin": ("admin", {**SCOPED_ADMIN, "ops": ["keyring"], "models": ["fraud_x"]}),
    "nothing at all": ("writer", dict(ops=[], event_types=[], tags=[], models=[], tiers=[])),
    "a scoped reader": ("reader", {**NARROWER, "ops": []}),
    # a reader signs nothing, and reads go by role: its preset's "any" dimensions give nothing
    "unscoped reader preset": ("reader", None),
}


# -- hand-built logs: the verifier's replay -------------------------------------------------


class Scene:
    """Log admin (unscoped), and ``boss``: an admin granted ``boss_scope``."""

    def __init__(self, boss_scope: dict[str, Any] | None = None) -> None:
        self.log = log = Log.create(seed="containment")
        self.boss = Signer("boss", b"containment-boss")
        self.friend = Signer("friend", b"containment-friend")
        body = {} if boss_scope is None else {"scope": boss_scope}
        log.submit(log.admin, "grant", key=self.boss.vkey, role="admin", **body)

    def outcome(self, signer: Signer, op: str, **body: Any) -> Exception | None:
        """Replay the scene, then apply one more statement: None if accepted (kept), else
        the exception (the statement is taken out again)."""
        return self.log.outcome(signer, op, **body)


def _made(scope: dict[str, Any] | None) -> v.Scope | None:
    return None if scope is None else v.make_scope(**scope)


def _grant_body(role: str, scope: dict[str, Any] | None) -> dict[str, Any]:
    return {"role": role} if scope is None else {"role": role, "scope": _doc(**scope)}


@pytest.mark.parametrize("case", sorted(ESCALATIONS))
def test_a_scoped_admin_cannot_grant_more_than_it_holds(case: str) -> None:
    role, scope, dimension = ESCALATIONS[case]
    s = Scene(_doc(**SCOPED_ADMIN))
    got = s.outcome(s.boss, "grant", key=s.friend.vkey, **_grant_body(role, scope))
    assert type(got) is v.AuthorizationError, got
    text = str(got)
    assert "'boss' may not sign this grant" in text and "granter's scope" in text
    assert f"allows {dimension.replace('_', ' ')} " in text, text
    assert "granted at entry 1" in text


@pytest.mark.parametrize("case", sorted(ESCALATIONS))
def test_the_granter_cannot_escalate_itself_either(case: str) -> None:
    """The same grants to the boss's own name under a second key (after revoking its key
    would leave it without one): a second active key is refused by the rules, but the scope
    check comes first, so the refusal is still AuthorizationError."""
    role, scope, _ = ESCALATIONS[case]
    s = Scene(_doc(**SCOPED_ADMIN))
    second = Signer("boss", b"containment-boss-2")
    got = s.outcome(s.boss, "grant", key=second.vkey, **_grant_body(role, scope))
    assert type(got) is v.AuthorizationError, got


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_a_scoped_admin_can_grant_within_its_scope(case: str) -> None:
    role, scope = ALLOWED[case]
    s = Scene(_doc(**SCOPED_ADMIN))
    assert s.outcome(s.boss, "grant", key=s.friend.vkey, **_grant_body(role, scope)) is None
    inv = v.replay(s.log.entries)
    assert inv.keys["friend"].scope == _made(scope)


@pytest.mark.parametrize("case", sorted(ESCALATIONS))
def test_an_unscoped_admin_can_grant_anything(case: str) -> None:
    role, scope, _ = ESCALATIONS[case]
    for boss_scope in (None, msgspec.to_builtins(v.preset("admin"))):
        s = Scene(boss_scope)
        assert s.outcome(s.boss, "grant", key=s.friend.vkey,
                         **_grant_body(role, scope)) is None
        assert s.outcome(s.log.admin, "revoke", name="friend", reason=None) is None
        assert s.outcome(s.log.admin, "grant", key=s.friend.vkey,
                         **_grant_body(role, scope)) is None


def test_revoke_and_policy_stay_within_the_scope() -> None:
    """A scoped admin revokes only keys whose scope is inside its own (itself included),
    and sets no policy (a policy binds every model); an unscoped admin does both."""
    s = Scene(_doc(**SCOPED_ADMIN))
    assert s.outcome(s.log.admin, "grant", key=s.friend.vkey, role="admin") is None
    refused = s.outcome(s.boss, "revoke", name="friend", reason="duties")
    assert type(refused) is v.AuthorizationError and "may not revoke the key of 'friend'" \
        in str(refused), refused
    refused = s.outcome(s.boss, "policy", policy={"events": {}})
    assert type(refused) is v.AuthorizationError and "a policy binds every model" \
        in str(refused), refused
    assert s.outcome(s.log.admin, "revoke", name="friend", reason="duties") is None
    assert s.outcome(s.boss, "grant", key=s.friend.vkey,
                     **_grant_body("writer", NARROWER)) is None
    assert s.outcome(s.boss, "revoke", name="friend", reason="duties") is None  # inside
    assert s.outcome(s.log.admin, "policy", policy={"events": {}}) is None
    assert s.outcome(s.boss, "revoke", name="boss", reason="leaving") is None  # itself


def test_containment_is_checked_before_the_role_bounds() -> None:
    """A grant that both exceeds the granter and gives a writer keyring: step 9b refuses it
    (AuthorizationError) before rule 12 (RuleError)."""
    s = Scene(_doc(ops=["keyring", "tag"], models=["fraud_*"]))
    got = s.outcome(s.boss, "grant", key=s.friend.vkey, role="writer",
                    scope=_doc(ops=["keyring", "tag"], models=["*"]))
    assert type(got) is v.AuthorizationError and "models" in str(got)
    got = s.outcome(s.boss, "grant", key=s.friend.vkey, role="writer",
                    scope=_doc(ops=["keyring", "tag"], models=["fraud_x"]))
    assert type(got) is v.RuleError and "writer scope cannot allow keyring" in str(got)


def test_verify_bundle_refuses_an_escalating_grant() -> None:
    """The examiner's path: a log in which the scoped boss granted a friend the full admin
    preset fails verification at that entry; cut just before it, the log verifies."""
    s = Scene(_doc(**SCOPED_ADMIN))
    good = len(s.log.entries)
    s.log.submit(s.boss, "grant", key=s.friend.vkey, role="admin")
    s.log.submit(s.friend, "register", name="credit_z", owner="o", model_type="ml_model",
                 tier="low", purpose="p", status="active", metadata={})
    t_all = s.log.time_after(len(s.log.entries))
    with pytest.raises(v.AuthorizationError, match="may not sign this grant"):
        v.verify_bundle(s.log.bundle(t_all), [s.log.log_key.key])
    result = v.verify_bundle(s.log.bundle(s.log.time_after(good)), [s.log.log_key.key])
    assert result.size == good


# -- the writer -----------------------------------------------------------------------------

BOSS = ActorKey.generate("boss")


@pytest.fixture
def ledger(path: Path, keys: Keys) -> Iterator[Ledger]:
    led = make_ledger(path, keys, Clock())
    led.grant(BOSS.vkey, role="admin", scope=v.make_scope(**SCOPED_ADMIN))
    yield led
    led.close()


def _as_boss(path: Path, keys: Keys) -> Ledger:
    return Ledger.open(path, log_key=keys.log, signer=BOSS,
                       clock=Clock(step=timedelta(seconds=1)))


def test_the_writer_refuses_a_revoke_or_policy_outside_the_scope(ledger: Ledger, path: Path,
                                                                  keys: Keys) -> None:
    before = fingerprint(ledger)
    with _as_boss(path, keys) as boss:
        with pytest.raises(v.AuthorizationError, match="may not revoke the key of 'risk-admin'"):
            boss.revoke("risk-admin", "takeover")
        with pytest.raises(v.AuthorizationError, match="a policy binds every model"):
            boss.set_policy(v.Policy(events={}))
    assert fingerprint(ledger) == before
    assert ledger.audit() == ledger.size


@pytest.mark.parametrize("case", sorted(ESCALATIONS))
def test_the_writer_refuses_the_same_grants(case: str, ledger: Ledger, path: Path,
                                            keys: Keys) -> None:
    role, scope, dimension = ESCALATIONS[case]
    before = fingerprint(ledger)
    friend = ActorKey.generate("friend")
    with _as_boss(path, keys) as boss:
        with pytest.raises(v.AuthorizationError, match="granter's scope") as info:
            boss.grant(friend.vkey, role=role,
                       scope=None if scope is None else v.make_scope(**scope))
    assert type(info.value) is v.AuthorizationError
    assert f"allows {dimension.replace('_', ' ')} " in str(info.value)
    assert fingerprint(ledger) == before
    assert ledger.audit() == ledger.size


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_the_writer_accepts_grants_within_scope(case: str, ledger: Ledger, path: Path,
                                                keys: Keys) -> None:
    role, scope = ALLOWED[case]
    friend = ActorKey.generate("friend")
    with _as_boss(path, keys) as boss:
        boss.grant(friend.vkey, role=role, scope=_made(scope))
    assert ledger.keyring()[-1].scope == _made(scope)
    assert ledger.audit() == ledger.size
    inv = v.replay([ledger.entry(i) for i in range(ledger.size)])
    assert inv.keys["friend"].scope == _made(scope)


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> tuple[Store, Path, str]:
    """A store whose admin granted ``boss`` a scoped admin key; and a friend's vkey."""
    store = init_store(tmp_path)
    boss_vkey = ok(cli("keygen", "boss", "-o", tmp_path / "boss.key")).out.strip()
    friend = ok(cli("keygen", "friend", "-o", tmp_path / "friend.key")).out.strip()
    run = store.run("grant", boss_vkey, "--role", "admin", "--ops", "keyring,event",
                    "--models", "fraud_*")
    assert run.code == 0, str(run)
    return store, tmp_path / "boss.key", friend


@pytest.mark.parametrize("args,fragment", [
    (["--role", "admin"], "allows ops event, keyring"),
    (["--ops", "event"], "any models"),
    (["--ops", "event", "--models", "*"], "models '*'"),
    (["--ops", "tag", "--models", "fraud_*"], "ops 'tag'"),
])
def test_modelseal_grant_refuses_cleanly(store: tuple[Store, Path, str], args: list[str],
                                         fragment: str) -> None:
    s, boss_key, friend = store
    state = s.state()
    run = s.run("grant", friend, *args, key=boss_key)
    assert run.code == 1 and run.out == "", str(run)
    assert run.err.startswith("error: ") and fragment in run.err, str(run)
    assert "granter's scope" in run.err and "Traceback" not in run.err
    assert s.state() == state


def test_modelseal_grant_within_scope(store: tuple[Store, Path, str]) -> None:
    s, boss_key, friend = store
    run = s.run("grant", friend, "--ops", "event", "--models", "fraud_a*", key=boss_key)
    assert run.code == 0 and "granted friend" in run.out, str(run)
    assert "Traceback" not in run.err


def test_the_keyring_note_no_longer_claims_any_scope(tmp_path: Path) -> None:
    """The CLI's note on a narrowed admin that keeps keyring says what keyring still allows
    and no longer that the key may grant any scope."""
    store = init_store(tmp_path)
    vkey = ok(cli("keygen", "x", "-o", tmp_path / "x.key")).out.strip()
    run = store.run("grant", vkey, "--role", "admin", "--models", "fraud_*")
    assert run.code == 0 and "keyring" in run.err, str(run)
    assert "any scope" not in run.err and "revoke" in run.err


# -- properties -----------------------------------------------------------------------------

_globs = st.text(alphabet="ab*", max_size=7)


@settings(max_examples=400, deadline=None)
@given(q=_globs, p=_globs, fills=st.lists(st.text(alphabet="ab*c", max_size=4), min_size=7,
                                          max_size=7))
def test_glob_cover_is_sound(q: str, p: str, fills: list[str]) -> None:
    """Whenever q covers p, q matches every expansion of p (each '*' of p replaced by any
    run of characters, '*' and a letter q never uses included)."""
    parts = p.split("*")
    expansion = parts[0] + "".join(fill + part for fill, part in zip(fills, parts[1:],
                                                                     strict=False))
    assert v.glob_match(p, expansion)  # it is one of p's names
    if glob_covers(q, p):
        assert v.glob_match(q, expansion)


@settings(max_examples=400, deadline=None)
@given(q=_globs, p=_globs)
def test_glob_cover_is_exact_over_an_open_alphabet(q: str, p: str) -> None:
    """The test finds every cover that holds: if q matches p with each '*' replaced by a
    letter q does not use ('c'), then q covers p (the fresh-letter argument of §3.7)."""
    assert glob_covers(q, p) == v.glob_match(q, p.replace("*", "c"))


@pytest.mark.parametrize("q,p,covered", [
    ("fraud_*", "*", False), ("a*b", "a*", False), ("*", "*", True), ("*", "x", True),
    ("fraud_*", "fraud_a*", True), ("fraud_*", "fraud_", True), ("fraud_*", "fraud", False),
    ("a*", "a", True), ("a*c", "a*b*c", True), ("a*b*c", "a*c", False), ("x", "x", True),
    ("x", "x*", False), ("*a*", "b*a", True),
])
def test_glob_cover_examples(q: str, p: str, covered: bool) -> None:
    assert glob_covers(q, p) is covered


_items = st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "c"]), max_size=3))
_model_items = st.one_of(st.none(), st.lists(
    st.text(alphabet="ab*", min_size=1, max_size=4), max_size=3))


@st.composite
def _scopes(draw: st.DrawFn) -> v.Scope:
    return v.make_scope(ops=draw(st.lists(st.sampled_from(OPS), max_size=5)),
                        event_types=draw(_items), tags=draw(_items),
                        models=draw(_model_items), tiers=draw(_items))


@settings(max_examples=300, deadline=None)
@given(a=_scopes())
def test_containment_is_reflexive_and_the_admin_preset_contains_all(a: v.Scope) -> None:
    assert scope_contains(a, a) and scope_excess(a, a) is None
    assert scope_contains(v.preset("admin"), a)
    for role in v.ROLES:
        assert scope_contains(v.preset("admin"), v.preset(role))
    nothing = v.make_scope(ops=[], event_types=[], tags=[], models=[], tiers=[])
    assert scope_contains(a, nothing)


@settings(max_examples=500, deadline=None)
@given(a=_scopes(), b=_scopes(), c=_scopes())
def test_containment_is_transitive(a: v.Scope, b: v.Scope, c: v.Scope) -> None:
    if scope_contains(a, b) and scope_contains(b, c):
        assert scope_contains(a, c)


def _oracle(a: v.Scope, b: v.Scope) -> bool:
    """Containment written out plainly, dimension by dimension."""
    if not set(b.ops) <= set(a.ops):
        return False
    if not b.ops:
        return True  # a scope that allows no op gives nothing in any other dimension
    for what in ("event_types", "tags", "tiers", "models"):
        outer, inner = getattr(a, what), getattr(b, what)
        if outer is None:
            continue
        if inner is None:
            return False
        for item in inner:
            if what == "models":
                if not any(glob_covers(q, item) for q in outer):
                    return False
            elif item not in outer:
                return False
    return True


@settings(max_examples=300, deadline=None)
@given(a=_scopes(), b=_scopes())
def test_the_excess_names_a_value_outside(a: v.Scope, b: v.Scope) -> None:
    """scope_excess agrees with the plain definition, and what it reports is really outside
    ``a`` and inside ``b``."""
    excess = scope_excess(a, b)
    assert (excess is None) == _oracle(a, b) == scope_contains(a, b)
    if excess is None:
        return
    assert isinstance(excess, ScopeExcess)
    allowed = getattr(a, excess.dimension)
    granted = getattr(b, excess.dimension)
    if excess.dimension == "ops":
        assert excess.value in b.ops and excess.value not in a.ops
        return
    assert allowed is not None
    if excess.value is None:
        assert granted is None
    else:
        assert excess.value in granted
        if excess.dimension == "models":
            assert not any(glob_covers(q, excess.value) for q in allowed)
        else:
            assert excess.value not in allowed
