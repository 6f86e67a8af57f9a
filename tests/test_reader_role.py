"""The keyring's ``reader`` role (specs/entry.md §3.6, §8.3 step 9; decision 17).

A reader key is granted and revoked like any other, and may never write: every kind of
statement it signs is refused with AuthorizationError, by the writer (Ledger) and by the
standalone verifier replaying a log that holds it. ``verifier.may_read`` is the one answer
to "may this role use a log server's protected reads", and ``Ledger.active_key`` the
per-request lookup of an actor's active key and role.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ledger.ledger as ledger_module
import verifier as v
from ledger import ActorKey, Ledger, StoreError, sign_statement
from ledger._codec import active_keys
from tests.cli_support import MODEL, Store, cli, init_store, ok, refused, refused_json
from tests.helpers import model_doc
from tests.ledger_support import Clock, Keys, fingerprint, make_ledger, raw_write, register
from tests.logsim import Log, Signer
from verifier import cli as verify_cli

READERS_CANNOT_WRITE = "is a reader: readers cannot write"


# -- the verifier: replay of a log that holds a reader's statement -----------------------------


class Scene:
    """A logsim log: an admin, a writer 'ml-pipeline', an actor 'dashboard' granted
    ``role``, models a, b and group g (a is its member), a retrained event on a."""

    def __init__(self, role: str) -> None:
        self.log = log = Log.create(seed="reader-role")
        self.pipe = Signer("ml-pipeline", b"reader-role-pipe")
        self.actor = Signer("dashboard", b"reader-role-dashboard")
        log.submit(log.admin, "grant", key=self.pipe.vkey, role="writer")
        log.submit(log.admin, "grant", key=self.actor.vkey, role=role)
        for name in ("a", "b", "g"):
            self.first = log.submit(self.pipe, "register", **model_doc(name))
            if name == "a":
                self.a_registered = v.snapshot_hash(self.first)
        log.submit(self.pipe, "member_add", group="g", member="a", role=None)
        log.submit(self.pipe, "event", model="a", event_type="retrained", payload={"x": 1})
        self.prefix = len(log.entries)


# Every kind of statement but the genesis (which only the genesis admin key signs), each
# valid against a Scene: what 'dashboard' signs.
KINDS: dict[str, Callable[[Scene], dict[str, Any]]] = {
    "register": lambda s: model_doc("c"),
    "event": lambda s: dict(model="a", event_type="retrained", payload={"rows": 7}),
    "event_updated": lambda s: dict(model="a", event_type="updated", payload={"tier": "low"}),
    "event_retired": lambda s: dict(model="b", event_type="retired", payload={}),
    "event_validated": lambda s: dict(model="a", event_type="validated", payload={}),
    "tag": lambda s: dict(model="a", tag="production", target=s.a_registered),
    "member_add": lambda s: dict(group="g", member="b", role="challenger"),
    "member_remove": lambda s: dict(group="g", member="a", reason="split"),
    "grant": lambda s: dict(key=Signer("newcomer", b"reader-role-new").vkey, role="writer"),
    "grant_reader": lambda s: dict(key=Signer("newcomer", b"reader-role-new").vkey,
                                   role="reader"),
    "revoke": lambda s: dict(name="ml-pipeline", reason="rotated"),
}
OPS = {name: name.split("_")[0] if name.startswith(("event", "grant")) else name
       for name in KINDS}
KEYRING = {"grant", "grant_reader", "revoke"}


def scene_entry(role: str, kind: str) -> Scene:
    """A Scene with role ``role`` for 'dashboard', and its statement of ``kind`` appended."""
    s = Scene(role)
    s.log.submit(s.actor, OPS[kind], **KINDS[kind](s))
    return s


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_replay_refuses_every_kind_a_reader_signs(kind: str) -> None:
    """The last entry, signed by a reader, is refused with AuthorizationError by ``replay``
    and by ``Inventory.apply``, which then writes nothing; everything before it stands."""
    s = scene_entry("reader", kind)
    with pytest.raises(v.AuthorizationError) as info:
        v.replay(s.log.entries)
    assert str(info.value) == f"actor 'dashboard' {READERS_CANNOT_WRITE}"
    inv = v.replay(s.log.entries[:-1])
    size, models = inv.size, {n: m.fields() for n, m in inv.models.items()}
    with pytest.raises(v.AuthorizationError, match=READERS_CANNOT_WRITE):
        inv.apply(s.log.entries[-1])
    assert inv.size == size == s.prefix
    assert {n: m.fields() for n, m in inv.models.items()} == models
    assert inv.keys["dashboard"].role == "reader"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_same_statements_pass_for_an_admin(kind: str) -> None:
    """The control: the very same statements, 'dashboard' granted admin, are accepted (so
    the reader role alone is why they are refused); a writer's are accepted except the
    keyring kinds, refused because a writer is not an admin."""
    inv = v.replay(scene_entry("admin", kind).log.entries)
    assert inv.size == Scene("admin").prefix + 1
    writer = scene_entry("writer", kind).log.entries
    if kind in KEYRING:
        with pytest.raises(v.AuthorizationError, match="is a writer, not an admin"):
            v.replay(writer)
    else:
        assert v.replay(writer).size == inv.size


@pytest.mark.parametrize("kind", ["register", "grant", "revoke"])
def test_verify_bundle_refuses_a_log_with_a_reader_write(kind: str) -> None:
    """The examiner's path: a bundle whose entries hold a reader's statement fails
    verification (AuthorizationError), and modelseal-verify exits 1 naming the rule."""
    s = scene_entry("reader", kind)
    t = s.log.clock + 1
    bundle = s.log.bundle(t)
    with pytest.raises(v.AuthorizationError, match=READERS_CANNOT_WRITE):
        v.verify_bundle(bundle, [s.log.log_key.key])
    # the log up to the reader's grant and the writes before its statement verifies
    before = s.log.bundle(s.log.time_after(s.prefix), size=s.prefix)
    assert v.verify_bundle(before, [s.log.log_key.key]).size == s.prefix


def test_modelseal_verify_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = scene_entry("reader", "event")
    path = tmp_path / "bundle.json"
    path.write_bytes(s.log.bundle(s.log.clock + 1))
    code = verify_cli.main([str(path), "--key", s.log.log_key.vkey, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["ok"] is False
    assert READERS_CANNOT_WRITE in json.dumps(out)


def test_reader_refusal_comes_before_the_signature_and_the_rules() -> None:
    """Step 9 precedes steps 10-11 and the inventory rules: a reader's statement with a
    bad signature, a reused id or an unknown model is still refused for the role (so two
    verifiers agree on the class)."""
    s = Scene("reader")
    inv = v.replay(s.log.entries)
    st_bytes = s.log.statement(s.actor, "event", model="nope", event_type="retrained",
                               payload={})
    bad_sig = Signer("dashboard", b"forger").sign(st_bytes)
    entry = s.log.append(st_bytes, s.actor.key.key_id, bad_sig)
    with pytest.raises(v.AuthorizationError, match=READERS_CANNOT_WRITE):
        inv.apply(entry)
    # a writer's statement fails later, at the signature: the order is the spec's
    w = Scene("writer")
    winv = v.replay(w.log.entries)
    wst = w.log.statement(w.actor, "event", model="nope", event_type="retrained", payload={})
    with pytest.raises(v.SignatureError):
        winv.apply(w.log.append(wst, w.actor.key.key_id, Signer("dashboard", b"f").sign(wst)))


def test_keyring_of_readers_grant_revoke_regrant() -> None:
    """Readers are granted, revoked and granted again like other roles; a second grant
    while one is active is refused ('revoke it first'), also to change the role; revoking
    a reader needs no second admin, and the last admin stays protected."""
    log = Log.create(seed="reader-keyring")
    r1, r2 = Signer("auditor", b"r1"), Signer("auditor", b"r2")
    log.submit(log.admin, "grant", key=r1.vkey, role="reader")
    inv = v.replay(log.entries)
    assert (inv.keys["auditor"].role, inv.keys["auditor"].vkey) == ("reader", r1.vkey)
    for again in (dict(key=r2.vkey, role="reader"), dict(key=r2.vkey, role="writer"),
                  dict(key=r1.vkey, role="reader")):
        with pytest.raises(v.RuleError, match="already has an active key; revoke it first"):
            inv.apply(log.submit(log.admin, "grant", **again))
        log.entries.pop()
    with pytest.raises(v.RuleError, match="last admin"):
        inv.apply(log.submit(log.admin, "revoke", name="risk-admin", reason=None))
    log.entries.pop()
    log.submit(log.admin, "revoke", name="auditor", reason="left")  # the only admin remains
    log.submit(log.admin, "grant", key=r2.vkey, role="reader")
    log.submit(log.admin, "revoke", name="auditor", reason=None)
    log.submit(log.admin, "grant", key=r1.vkey, role="writer")  # the old key, now a writer
    log.submit(r1, "register", **model_doc("m"))  # and it writes
    inv = v.replay(log.entries)
    hist = [(r.name, r.role, r.vkey, r.revoked_index is not None) for r in inv.key_history]
    assert hist == [("risk-admin", "admin", log.admin.vkey, False),
                    ("auditor", "reader", r1.vkey, True), ("auditor", "reader", r2.vkey, True),
                    ("auditor", "writer", r1.vkey, False)]
    assert inv.memory.admin_count() == 1
    assert "m" in inv.models


# -- may_read -------------------------------------------------------------------------------


def test_may_read() -> None:
    assert v.ROLES == ("writer", "admin", "reader")
    assert {role: v.may_read(role) for role in v.ROLES} == {
        "writer": False, "admin": True, "reader": True}
    assert "may_read" in v.__all__ and "ROLES" in v.__all__
    for bad in ("", "Reader", "READER", "root", " reader", "reader\n"):
        with pytest.raises(ValueError, match="unknown role"):
            v.may_read(bad)
    for wrong in (None, b"reader", 1, ["reader"]):
        with pytest.raises(TypeError):
            v.may_read(wrong)  # type: ignore[arg-type]


@given(st.text(max_size=12))
def test_may_read_is_true_only_for_reader_and_admin(text: str) -> None:
    """Any text: True for 'reader' and 'admin', False for 'writer', else ValueError (an
    unknown role is never allowed)."""
    if text in v.ROLES:
        assert v.may_read(text) is (text in ("reader", "admin"))
    else:
        with pytest.raises(ValueError):
            v.may_read(text)


def test_the_schema_knows_the_roles() -> None:
    """A grant statement carries one of ROLES; any other role is malformed input."""
    log = Log.create(seed="schema")
    for role in v.ROLES:
        assert v.parse_statement(log.statement(log.admin, "grant", key=log.admin.vkey,
                                               role=role)).role == role  # type: ignore[union-attr]
    with pytest.raises(v.MalformedInputError):
        v.parse_statement(log.statement(log.admin, "grant", key=log.admin.vkey,
                                        role="writer").replace(b'"writer"', b'"viewer"'))


# -- random keyring histories against a model of the rules -----------------------------------

ACTORS = ["a1", "a2", "a3"]
_kstep = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from(ACTORS), st.sampled_from(v.ROLES),
              st.sampled_from([None, None, *ACTORS])),
    st.tuples(st.just("revoke"), st.sampled_from([*ACTORS, "risk-admin"]),
              st.sampled_from([None, None, *ACTORS])),
    st.tuples(st.just("write"), st.sampled_from(ACTORS)),
    st.tuples(st.just("write"), st.sampled_from(ACTORS)),
)


def _expected(active: dict[str, str], step: tuple[Any, ...]) -> str | None:
    """What the rules must say about ``step`` given each actor's active role: None
    (accepted) or the refusal's message fragment."""
    if step[0] == "write":
        signer: str = step[1]
    else:
        signer = step[-1] or "risk-admin"
    role = active.get(signer)
    if role is None:
        return "has no granted key"
    if role == "reader":
        return READERS_CANNOT_WRITE
    if step[0] == "write":
        return None
    if role != "admin":
        return "not an admin"
    if step[0] == "grant":
        return "already has an active key" if step[1] in active else None
    if step[1] not in active:
        return "has no active key to revoke"
    admins = sum(1 for r in active.values() if r == "admin")
    return "last admin" if active[step[1]] == "admin" and admins == 1 else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_kstep, min_size=1, max_size=30))
def test_random_keyring_histories(steps: list[tuple[Any, ...]]) -> None:
    """Grants (any role), revokes and writes by random actors: replay accepts exactly what a
    plain model of the rules accepts (readers never write, only admins grant and revoke,
    one active key per actor, never the last admin revoked), refuses the rest with the
    model's reason, and ends with the model's keyring."""
    log = Log.create(seed="keyring-fuzz")
    log.submit(log.admin, "register", **model_doc("m"))
    inv = v.replay(log.entries)
    active = {"risk-admin": "admin"}
    keys: dict[str, Signer] = {"risk-admin": log.admin}
    grants = 0
    for step in steps:
        heads = dict(log.heads)
        if step[0] == "write":
            signer = keys.get(step[1]) or Signer(step[1], b"never-granted")
            data = log.submit(signer, "event", model="m", event_type="retrained", payload={})
        elif step[0] == "grant":
            grants += 1
            new = Signer(step[1], f"k{grants}".encode())
            signer = keys.get(step[3] or "risk-admin") or Signer(step[3], b"never-granted")
            data = log.submit(signer, "grant", key=new.vkey, role=step[2])
        else:
            signer = keys.get(step[2] or "risk-admin") or Signer(step[2], b"never-granted")
            data = log.submit(signer, "revoke", name=step[1], reason=None)
        want = _expected(active, step)
        if want is None:
            inv.apply(data)
            if step[0] == "grant":
                active[step[1]], keys[step[1]] = step[2], new
            elif step[0] == "revoke":
                del active[step[1]]
        else:
            with pytest.raises(v.VerificationError, match=want) as info:
                inv.apply(data)
            assert isinstance(info.value, (v.AuthorizationError, v.RuleError))
            assert isinstance(info.value, v.RuleError) == (want in (
                "already has an active key", "has no active key to revoke", "last admin"))
            log.entries.pop()
            log.heads = heads
        assert {n: r.role for n, r in inv.keys.items()} == active
    assert v.replay(log.entries).size == inv.size


# -- the writer ------------------------------------------------------------------------------


@pytest.fixture
def ledger(path: Path, keys: Keys, clock: Clock) -> Iterator[Ledger]:
    """A ledger with writer 'ml-pipeline', reader 'dashboard', models fraud, churn and group
    suite (fraud its member)."""
    led = make_ledger(path, keys, clock)
    led.grant(PIPE.vkey, role="writer")
    led.grant(READER.vkey, role="reader")
    register(led, "fraud")
    register(led, "churn")
    register(led, "suite", model_type="group")
    led.add_member("suite", "fraud")
    led.record("fraud", event="retrained")
    yield led
    led.close()


PIPE = ActorKey.generate("ml-pipeline")
READER = ActorKey.generate("dashboard")


@pytest.fixture
def as_reader(ledger: Ledger, path: Path, keys: Keys) -> Iterator[Ledger]:
    with Ledger.open(path, log_key=keys.log, signer=READER,
                     clock=Clock(step=timedelta(seconds=1))) as led:
        yield led


def refused_write(ledger: Ledger, fn: Callable[[], Any]) -> None:
    """``fn`` raises exactly AuthorizationError for the reader role, and changes nothing."""
    before = fingerprint(ledger)
    with pytest.raises(v.AuthorizationError) as info:
        fn()
    assert type(info.value) is v.AuthorizationError
    assert str(info.value) == f"actor 'dashboard' {READERS_CANNOT_WRITE}"
    assert fingerprint(ledger) == before
    assert ledger.audit() == before[0]


VERBS: dict[str, Callable[[Ledger], Any]] = {
    "register": lambda led: led.register(name="new", owner="o", model_type="ml_model",
                                         tier="low", purpose="p"),
    "record": lambda led: led.record("fraud", "retrained", {"rows": 1}),
    "update": lambda led: led.update("fraud", tier="low"),
    "retire": lambda led: led.retire("churn"),
    "tag": lambda led: led.tag("fraud", "production"),
    "add_member": lambda led: led.add_member("suite", "churn"),
    "remove_member": lambda led: led.remove_member("suite", "fraud"),
    "register_group": lambda led: led.register_group(name="g2", owner="o", tier="t",
                                                     purpose="p", members=["churn"]),
    "grant": lambda led: led.grant(ActorKey.generate("friend").vkey, role="writer"),
    "grant_reader": lambda led: led.grant(ActorKey.generate("friend").vkey, role="reader"),
    "revoke": lambda led: led.revoke("ml-pipeline"),
    "revoke_self": lambda led: led.revoke("dashboard"),
}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_writer_refuses_every_verb_of_a_reader(verb: str, ledger: Ledger, as_reader: Ledger,
                                               path: Path, keys: Keys) -> None:
    """Each convenience verb signed by the reader key is refused; the same verb by the admin
    is then accepted (the control)."""
    refused_write(ledger, lambda: VERBS[verb](as_reader))

    def in_batch() -> None:  # in a batch too, and the batch stores nothing
        with as_reader.batch():
            VERBS[verb](as_reader)

    refused_write(ledger, in_batch)
    size = ledger.size
    VERBS[verb](ledger)
    assert ledger.size > size
    assert v.replay([ledger.entry(i) for i in range(ledger.size)]).size == ledger.size


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_writer_refuses_every_submitted_kind_of_a_reader(kind: str, ledger: Ledger,
                                                        keys: Keys, clock: Clock) -> None:
    """Envelopes signed elsewhere by the reader (``submit``) are refused for every kind."""
    fraud = ledger.latest("fraud")
    assert fraud is not None
    s = Scene("reader")  # only for the bodies; names fixed up to this ledger's models
    body = KINDS[kind](s)
    body = {k: {"a": "fraud", "b": "churn", "g": "suite"}.get(v_, v_) if isinstance(v_, str)
            else v_ for k, v_ in body.items()}
    if kind == "tag":
        body["target"] = fraud.snapshot_hash
    if kind == "member_remove":
        body["member"] = "fraud"
    claimed = clock()
    envelope = sign_statement(READER, ledger.origin, OPS[kind], log_id=ledger.log_id,
                              claimed_at=claimed, **body)
    refused_write(ledger, lambda: ledger.submit(envelope))
    # the control: the same body from the admin is accepted
    admin_env = sign_statement(keys.admin, ledger.origin, OPS[kind], log_id=ledger.log_id,
                               claimed_at=claimed, **body)
    size = ledger.size
    ledger.submit(admin_env)
    assert ledger.size == size + 1


def test_ledger_grant_revoke_regrant_reader(ledger: Ledger, path: Path, keys: Keys) -> None:
    """Through the Ledger: re-granting an active reader is refused, revoke then grant works,
    a reader turned writer writes, and the store audits and replays."""
    with pytest.raises(v.RuleError, match="revoke it first"):
        ledger.grant(ActorKey.generate("dashboard").vkey, role="reader")
    ledger.revoke("dashboard", reason="rotated")
    assert ledger.active_key("dashboard") is None
    second = ActorKey.generate("dashboard")
    ledger.grant(second.vkey, role="reader")
    assert ledger.active_key("dashboard") == (second.key, "reader")
    ledger.revoke("dashboard")
    ledger.grant(second.vkey, role="writer")
    with Ledger.open(path, log_key=keys.log, signer=second, clock=ledger._clock) as as_second:
        assert as_second.record("fraud", "retrained").actor == "dashboard"
    with pytest.raises(v.RuleError, match="last admin"):
        ledger.revoke("risk-admin")
    ledger.audit()
    inv = v.replay([ledger.entry(i) for i in range(ledger.size)])
    assert [(r.name, r.role) for r in inv.key_history if r.name == "dashboard"] == [
        ("dashboard", "reader"), ("dashboard", "reader"), ("dashboard", "writer")]


# -- Ledger.active_key ------------------------------------------------------------------------


def test_active_key_answers(ledger: Ledger, keys: Keys) -> None:
    """admin, writer and reader: their key and role; unknown and revoked actors: None."""
    assert ledger.active_key("risk-admin") == (keys.admin.key, "admin")
    assert ledger.active_key("ml-pipeline") == (PIPE.key, "writer")
    assert ledger.active_key("dashboard") == (READER.key, "reader")
    key, role = ledger.active_key("dashboard") or (None, None)
    assert isinstance(key, v.VerifierKey) and key.vkey == READER.vkey and role == "reader"
    assert ledger.active_key("nobody") is None
    assert ledger.active_key("") is None
    ledger.revoke("ml-pipeline")
    assert ledger.active_key("ml-pipeline") is None
    assert [v.may_read(ak[1]) for ak in map(ledger.active_key, ("risk-admin", "dashboard"))
            if ak] == [True, True]
    with pytest.raises(TypeError):
        ledger.active_key(b"dashboard")  # type: ignore[arg-type]


def test_active_key_sees_a_commit_at_once(ledger: Ledger, path: Path) -> None:
    """A grant or revoke is answered as soon as it is committed, also by a read-only
    ledger on the same store (what a server opens); a batch's grant only once it commits."""
    with Ledger.open(path) as ro:
        new = ActorKey.generate("examiner")
        assert ro.active_key("examiner") is None
        ledger.grant(new.vkey, role="reader")
        assert ro.active_key("examiner") == (new.key, "reader")
        assert ledger.active_key("examiner") == (new.key, "reader")
        ledger.revoke("examiner")
        assert ro.active_key("examiner") is None
        other = ActorKey.generate("other")
        with ledger.batch() as batch:
            batch.grant(other.vkey, role="reader")
            assert ledger.active_key("other") is None  # not committed yet
            assert ro.active_key("other") is None
        assert ro.active_key("other") == (other.key, "reader")


def test_active_key_decodes_the_keyring_once_per_change(ledger: Ledger,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyring row is decoded again only when it changed (a model write does not)."""
    calls: list[bytes] = []

    def counting(raw: bytes) -> Any:
        calls.append(raw)
        return active_keys(raw)

    monkeypatch.setattr(ledger_module, "active_keys", counting)
    for _ in range(50):
        assert ledger.active_key("dashboard") == (READER.key, "reader")
    assert len(calls) == 1
    ledger.record("fraud", "retrained")
    assert ledger.active_key("ml-pipeline") == (PIPE.key, "writer")
    assert len(calls) == 1
    ledger.revoke("dashboard")
    assert ledger.active_key("dashboard") is None
    assert ledger.active_key("risk-admin") is not None
    assert len(calls) == 2


def test_active_key_under_concurrent_grants(ledger: Ledger) -> None:
    """Threads asking while another grants and revokes readers always get an answer of a
    committed state: None or one of the keys granted, as a reader."""
    granted: list[v.VerifierKey] = []
    done = threading.Event()
    seen: list[Any] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            while not done.is_set():
                seen.append(ledger.active_key("rotating"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(15):
            key = ActorKey.generate("rotating")
            granted.append(key.key)
            ledger.grant(key.vkey, role="reader")
            if i < 14:
                ledger.revoke("rotating")
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors
    assert seen and all(a is None or (a[1] == "reader" and a[0] in granted) for a in seen)
    assert ledger.active_key("rotating") == (granted[-1], "reader")


def test_active_key_of_a_damaged_keyring_row(ledger: Ledger) -> None:
    """A keyring row that does not decode, or names an unknown role, is a StoreError (never
    an answer); a missing row answers None."""
    with raw_write(ledger) as txn:
        good = bytes(txn.get(b"keyring", db=ledger._store.db["meta"]))
    for bad in (b"not json", b"{}", b'[{"vkey": "x"}]',
                good.replace(b'"reader"', b'"root"')):
        with raw_write(ledger) as txn:
            txn.put(b"keyring", bad, db=ledger._store.db["meta"])
        with pytest.raises(StoreError, match="keyring"):
            ledger.active_key("dashboard")
    with raw_write(ledger) as txn:
        txn.delete(b"keyring", db=ledger._store.db["meta"])
    assert ledger.active_key("dashboard") is None
    with raw_write(ledger) as txn:
        txn.put(b"keyring", good, db=ledger._store.db["meta"])
    assert ledger.active_key("dashboard") == (READER.key, "reader")


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return init_store(tmp_path)


def test_cli_grant_reader(store: Store, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """grant --role reader; the reader's writes are refused (exit 1, the rule, a hint that
    names readers; JSON class AuthorizationError); the bundle and the report show the role."""
    key = tmp_path / "dash.key"
    vkey = ok(cli("keygen", "dash", "-o", key)).out.strip()
    assert ok(store.run("grant", vkey, "--role", "reader")).out == \
        "granted dash the reader role\n"
    ok(store.run("register", "m1", *MODEL))
    before = store.state()
    refused(store.run("register", "m2", *MODEL, key=key), 1,
            f"actor 'dash' {READERS_CANNOT_WRITE}", hint="reader")
    refused(store.run("record", "m1", "--event", "retrained", key=key), 1, READERS_CANNOT_WRITE)
    refused(store.run("revoke", "risk-admin", key=key), 1, READERS_CANNOT_WRITE)
    err = refused_json(store.run("tag", "m1", "prod", "--json", key=key), 1,
                       READERS_CANNOT_WRITE, cls="AuthorizationError")
    assert "reader" in err["hint"]
    assert store.state() == before
    refused(store.run("grant", vkey, "--role", "writer"), 1, "already has an active key")
    assert "reader" in ok(cli("grant", "--help")).out
    bundle = tmp_path / "b.json"
    ok(store.run("export", "-o", bundle))
    assert verify_cli.main([str(bundle), "--key", store.log_vkey, "--json",
                            "--report", str(tmp_path / "r.html")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {(k["name"], k["role"]) for k in doc["keys"]} == {("risk-admin", "admin"),
                                                             ("dash", "reader")}
    html = (tmp_path / "r.html").read_text()
    table = html.split('<table class="keys">')[1].split("</table>")[0]
    row = next(r for r in table.split("</tr>") if "<td>dash</td>" in r)
    assert "<td>reader</td>" in row and "pill active" in row
    assert ok(store.run("revoke", "dash")).out == "revoked the key of dash\n"
    refused(store.run("register", "m2", *MODEL, key=key), 1, "'dash' has no granted key")
