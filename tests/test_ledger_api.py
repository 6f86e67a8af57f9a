"""The Ledger API: every call's success path and the values it returns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import verifier as v
from ledger import ActorKey, Ledger, LogKey, ModelRef, Snapshot, StoreError, Tag, sign_statement
from ledger import _queries as lq
from ledger._store import Store
from tests.ledger_support import (
    MINUTE,
    ORIGIN,
    T0,
    Clock,
    Keys,
    entries,
    make_ledger,
    raw_rows,
    recorded_at,
    register,
)

US = timedelta(microseconds=1)


@pytest.fixture
def ledger(path: Path, keys: Keys, clock: Clock):
    led = make_ledger(path, keys, clock)
    yield led
    led.close()


@pytest.fixture
def pipe(ledger: Ledger) -> ActorKey:
    key = ActorKey.generate("ml-pipeline")
    ledger.grant(key.vkey, role="writer")
    return key


# -- creating and opening -------------------------------------------------------------


def test_create_writes_a_signed_genesis(ledger: Ledger, keys: Keys, path: Path) -> None:
    """A new ledger holds one genesis entry under a checkpoint of size 1."""
    assert ledger.size == 1
    assert ledger.origin == ORIGIN and ledger.log_vkey == keys.log.vkey
    assert ledger.path == path
    cp = v.Checkpoint.parse_note(ledger.checkpoint(), keys.trusted)
    assert (cp.origin, cp.size) == (ORIGIN, 1)
    gen = v.parse_entry(ledger.entry(0)).statement
    assert isinstance(gen, v.Genesis)
    assert (gen.actor, gen.log_key, gen.admin_key) == ("risk-admin", keys.log.vkey, keys.admin.vkey)
    assert ledger.audit() == 1


def test_create_refuses_an_existing_store(ledger: Ledger, path: Path) -> None:
    """Creating over an existing store raises StoreError."""
    with pytest.raises(StoreError):
        Ledger.create(path, origin=ORIGIN, log_key=LogKey.generate(),
                      admin=ActorKey.generate("risk-admin"))


def test_open_missing_store_raises(tmp_path: Path) -> None:
    """Opening a directory with no store raises StoreError."""
    with pytest.raises(StoreError):
        Ledger.open(tmp_path / "nothing")


def test_create_with_a_naive_clock_leaves_no_store(tmp_path: Path, keys: Keys) -> None:
    """A create that fails on its clock leaves nothing behind: the path can be created again."""
    path = tmp_path / "s"
    with pytest.raises(ValueError):
        Ledger.create(path, origin=ORIGIN, log_key=keys.log, admin=keys.admin,
                      clock=lambda: datetime(2024, 1, 1))
    assert Store.open_count(path) == 0
    with make_ledger(path, keys) as led:
        assert led.size == 1 and led.audit() == 1


def test_open_sees_the_same_store(ledger: Ledger, path: Path, keys: Keys) -> None:
    """A second handle in the same process shares the environment and sees every write."""
    register(ledger, "fraud")
    with Ledger.open(path, log_key=keys.log) as other:
        assert other.size == ledger.size == 2
        assert other.checkpoint() == ledger.checkpoint()
        assert other.history("fraud") == ledger.history("fraud")
    register(ledger, "churn")  # the first handle still works after the second closed
    assert ledger.size == 3


def test_open_without_log_key_is_read_only(ledger: Ledger, path: Path, keys: Keys,
                                           pipe: ActorKey) -> None:
    """Without the log key every write raises ValueError; reads work."""
    register(ledger, "fraud")
    before = ledger.size
    signed = sign_statement(keys.admin, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, model="fraud",
                            event_type="note", payload={})
    for signer in (None, keys.admin):
        with Ledger.open(path, signer=signer) as ro:
            assert ro.history("fraud") == ledger.history("fraud")
            assert ro.size == before
            with pytest.raises(ValueError):
                ro.record("fraud", event="note")
            with pytest.raises(ValueError):
                ro.submit(signed)
            with pytest.raises(ValueError):
                with ro.batch():
                    pass
            with pytest.raises(ValueError):
                ro.grant(ActorKey.generate("someone").vkey)
    assert ledger.size == before


def test_open_with_a_wrong_log_key_raises(ledger: Ledger, path: Path) -> None:
    """Another key, or one named for another origin, is refused without leaking the store."""
    count = Store.open_count(path)
    assert count == 1
    for wrong in (LogKey.generate(), LogKey.generate(ORIGIN), LogKey.generate("other.example")):
        with pytest.raises(ValueError):
            Ledger.open(path, log_key=wrong)
        assert Store.open_count(path) == count
    assert ledger.size == 1


def test_open_with_the_saved_log_key_writes(ledger: Ledger, path: Path, keys: Keys,
                                           tmp_path: Path) -> None:
    """A log key saved and loaded again opens the store for writing."""
    keys.log.save(tmp_path / "log.key")
    keys.admin.save(tmp_path / "admin.key")
    with Ledger.open(path, log_key=LogKey.load(tmp_path / "log.key"),
                     signer=ActorKey.load(tmp_path / "admin.key")) as led:
        register(led, "fraud")
        assert led.size == 2
    assert v.Checkpoint.parse_note(ledger.checkpoint(), keys.trusted).size == 2


def test_context_manager_closes(path: Path, keys: Keys) -> None:
    """``with Ledger`` closes the environment on exit."""
    with make_ledger(path, keys):
        assert Store.open_count(path) == 1
    assert Store.open_count(path) == 0


# -- registering and recording --------------------------------------------------------


def test_register_returns_a_ref(ledger: Ledger) -> None:
    """register returns the fields, the registration snapshot and the model hash."""
    ref = ledger.register(name="fraud_scoring", owner="risk-team", model_type="ml_model",
                          tier="high", purpose="card fraud", metadata={"framework": "xgb"})
    assert isinstance(ref, ModelRef)
    assert (ref.name, ref.owner, ref.model_type, ref.tier, ref.purpose, ref.status) == (
        "fraud_scoring", "risk-team", "ml_model", "high", "card fraud", "active")
    assert ref.metadata == {"framework": "xgb"}
    snap = ref.snapshot
    assert (snap.index, snap.op, snap.event_type, snap.actor, snap.prev) == (
        1, "register", "registered", "risk-admin", None)
    data = ledger.entry(snap.index)
    assert snap.snapshot_hash == v.snapshot_hash(data)
    assert ref.model_hash == v.model_hash("fraud_scoring", "risk-team", recorded_at(data))
    assert ledger.inventory_at()["fraud_scoring"].model_hash == ref.model_hash


def test_model_hash_is_stable(ledger: Ledger) -> None:
    """Events, updates (even of the owner) and tags keep the model hash."""
    ref = register(ledger, "fraud")
    register(ledger, "other")
    ledger.record("fraud", event="retrained")
    ledger.update("fraud", owner="new-team")
    ledger.tag("fraud", "production")
    hashes = {s.model_hash for s in ledger.history("fraud")}
    assert hashes == {ref.model_hash}
    assert ledger.latest("fraud").model_hash == ref.model_hash
    assert ledger.inventory_at()["fraud"].model_hash == ref.model_hash
    assert ledger.inventory_at()["other"].model_hash != ref.model_hash


def test_record_returns_the_snapshot(ledger: Ledger, clock: Clock) -> None:
    """record's snapshot carries index, ledger time, actor, event, payload and chain link."""
    ref = register(ledger, "fraud")
    snap = ledger.record("fraud", event="retrained", payload={"accuracy": 0.94})
    assert isinstance(snap, Snapshot)
    data = ledger.entry(snap.index)
    p = v.parse_entry(data)
    assert snap.index == ledger.size - 1 == p.entry.index
    assert snap.snapshot_hash == p.snapshot_hash
    assert snap.timestamp == clock.now == v.from_ns(p.entry.recorded_at)
    assert snap.claimed_at == clock.now  # one reading of the clock per write
    assert (snap.actor, snap.model, snap.op, snap.event_type) == (
        "risk-admin", "fraud", "event", "retrained")
    assert snap.payload == {"accuracy": 0.94}
    assert snap.model_hash == ref.model_hash
    assert snap.prev == ref.snapshot.snapshot_hash == p.entry.prev
    assert snap.statement_id == p.statement.id
    assert ledger.entry(snap.snapshot_hash) == data


def test_history_is_oldest_first_per_model(ledger: Ledger) -> None:
    """history lists only that model's entries, oldest first, each linked to the one before."""
    register(ledger, "a")
    register(ledger, "b")
    for i in range(4):
        ledger.record("a", event=f"a{i}")
        ledger.record("b", event=f"b{i}")
    ha = ledger.history("a")
    assert [s.event_type for s in ha] == ["registered", "a0", "a1", "a2", "a3"]
    assert [s.index for s in ha] == sorted(s.index for s in ha)
    assert {s.model for s in ha} == {"a"}
    assert [s.prev for s in ha[1:]] == [s.snapshot_hash for s in ha[:-1]]
    assert [s.event_type for s in ledger.history("b")][1:] == ["b0", "b1", "b2", "b3"]
    assert ledger.history("unknown") == []


def test_history_reads_only_its_own_entries(ledger: Ledger,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """history(name) reads k entries for a chain of k, however many other entries exist."""
    register(ledger, "small")
    ledger.record("small", event="one")
    register(ledger, "big")
    with ledger.batch():
        for i in range(60):
            ledger.record("big", event="e", payload={"i": i})
    ledger.record("small", event="two")
    reads: list[int] = []
    real = lq.entry

    def counting(store, txn, index):  # type: ignore[no-untyped-def]
        reads.append(index)
        return real(store, txn, index)

    monkeypatch.setattr(lq, "entry", counting)
    hist = ledger.history("small")
    assert len(hist) == 3
    assert sorted(reads) == [s.index for s in hist]


def test_latest_with_and_without_tag(ledger: Ledger) -> None:
    """latest is the newest registration or event; with a tag, what the tag points at."""
    ref = register(ledger, "fraud")
    assert ledger.latest("fraud") == ref.snapshot
    s1 = ledger.record("fraud", event="retrained")
    ledger.tag("fraud", "production")
    s2 = ledger.record("fraud", event="retrained")
    ledger.tag("fraud", "staging")  # tag moves are not "latest"
    assert ledger.latest("fraud") == s2
    assert ledger.latest("fraud", tag="production") == s1
    assert ledger.latest("fraud", tag="staging") == s2
    assert ledger.latest("fraud", tag="missing") is None
    assert ledger.latest("unknown") is None


def test_tags_and_tag_history(ledger: Ledger) -> None:
    """tag returns the move; tags() shows current targets; tag_history every move in order."""
    ref = register(ledger, "fraud")
    s1 = ledger.record("fraud", event="retrained")
    t1 = ledger.tag("fraud", "production")
    assert isinstance(t1, Tag)
    assert (t1.model, t1.name, t1.target) == ("fraud", "production", s1.snapshot_hash)
    assert t1.moved.event_type == "tag_moved" and t1.moved.op == "tag"
    assert t1.moved.payload == {"tag": "production", "target": s1.snapshot_hash}
    t2 = ledger.tag("fraud", "production", snapshot=ref.snapshot.snapshot_hash)
    t3 = ledger.tag("fraud", "canary", snapshot=s1.snapshot_hash)
    tags = ledger.tags("fraud")
    assert list(tags) == ["canary", "production"]
    assert tags["production"] == t2 and tags["canary"] == t3
    assert ledger.tag_history("fraud", "production") == [t1, t2]
    assert ledger.tag_history("fraud", "nope") == []
    assert ledger.inventory_at()["fraud"].tags == {"production": ref.snapshot.snapshot_hash,
                                                    "canary": s1.snapshot_hash}
    assert ledger.tags("unknown") == {}


def test_update_and_retire_apply_from_their_time(ledger: Ledger) -> None:
    """inventory_at before an update or retirement shows the old values."""
    ref = register(ledger, "fraud")
    up = ledger.update("fraud", tier="low", metadata={"k": 1})
    assert up.event_type == "updated" and up.payload == {"tier": "low", "metadata": {"k": 1}}
    ret = ledger.retire("fraud", reason="replaced")
    assert ret.event_type == "retired" and ret.payload == {"reason": "replaced"}
    before = ledger.inventory_at(up.timestamp - US)["fraud"]
    assert (before.tier, before.status, before.metadata) == ("high", "active", {})
    at_up = ledger.inventory_at(up.timestamp)["fraud"]
    assert (at_up.tier, at_up.status, at_up.metadata) == ("low", "active", {"k": 1})
    assert ledger.inventory_at(ret.timestamp - US)["fraud"].status == "active"
    now = ledger.inventory_at(ret.timestamp)["fraud"]
    assert (now.tier, now.status, now.last_event_type) == ("low", "retired", "retired")
    assert ledger.inventory_at() == ledger.inventory_at(ret.timestamp)
    assert ledger.inventory_at(ref.snapshot.timestamp - US) == {}


def test_inventory_at_returns_fresh_states(ledger: Ledger) -> None:
    """Each call builds new states (now, and in the past after plain events): changing
    one answer changes no other."""
    register(ledger, "fraud")
    ledger.record("fraud", "deployed", {"env": "prod"})
    mid = ledger.record("fraud", "monitored")
    ledger.record("fraud", "deployed")
    for when in (None, mid.timestamp):
        first, second = ledger.inventory_at(when), ledger.inventory_at(when)
        assert first == second
        a, b = first["fraud"], second["fraud"]
        assert a is not b and a.metadata is not b.metadata and a.tags is not b.tags
        assert a.members is not b.members
        a.metadata["k"], a.tags["t"], a.members["m"], a.latest = 1, "x", None, "y"
        assert ledger.inventory_at(when) == second != first
    assert ledger.inventory_at(mid.timestamp)["fraud"].latest == mid.snapshot_hash


def test_inventory_at_times_outside_the_log(ledger: Ledger) -> None:
    """Before genesis (even before 1970) nothing is registered; far ahead, everything."""
    register(ledger, "fraud")
    for early in (T0 - timedelta(days=1), datetime(1970, 1, 1, tzinfo=timezone.utc),
                  datetime(1960, 1, 1, tzinfo=timezone.utc)):
        assert ledger.inventory_at(early) == {}
    assert list(ledger.inventory_at(datetime(9999, 1, 1, tzinfo=timezone.utc))) == ["fraud"]


def test_inventory_at_default_is_the_whole_log(tmp_path: Path, keys: Keys) -> None:
    """inventory_at() and groups() without a time reflect every write, even if the clock
    went back (the ledger keeps recorded times monotonic)."""
    clock = Clock()
    with make_ledger(tmp_path / "s", keys, clock) as led:
        register(led, "m")
        clock.now += timedelta(hours=1)
        led.register_group(name="g", owner="o", tier="high", purpose="p", members=["m"])
        clock.now -= timedelta(hours=2)  # NTP stepped the clock back
        assert sorted(led.inventory_at()) == ["g", "m"]
        assert led.groups("m") == ["g"]
        assert led.members("g") == {"m": None}


def test_register_same_fields_returns_existing(ledger: Ledger) -> None:
    """Registering again with the same fields appends nothing and returns the same ref."""
    ref = register(ledger, "fraud", metadata={"a": [1, 2]})
    size, cp = ledger.size, ledger.checkpoint()
    again = register(ledger, "fraud", metadata={"a": [1, 2]})
    assert again == ref
    assert (ledger.size, ledger.checkpoint()) == (size, cp)


def test_register_other_fields_raises(ledger: Ledger) -> None:
    """Registering a name again with other fields raises RuleError and appends nothing."""
    register(ledger, "fraud")
    size = ledger.size
    for over in ({"tier": "low"}, {"owner": "x"}, {"metadata": {"a": 1}}, {"status": "draft"}):
        with pytest.raises(v.RuleError):
            register(ledger, "fraud", **over)
    assert ledger.size == size


# -- groups ---------------------------------------------------------------------------


def test_members_and_groups_now_and_then(ledger: Ledger) -> None:
    """members/groups follow adds and removals; ``at`` gives the past view."""
    for name in ("a", "b", "c"):
        register(ledger, name)
    g = ledger.register_group(name="ensemble", owner="risk", tier="high", purpose="vote",
                              members=["a", "b"])
    assert g.model_type == "group" and g.name == "ensemble"
    assert ledger.members("ensemble") == {"a": None, "b": None}
    added = ledger.add_member("ensemble", "c", role="challenger")
    assert added.event_type == "member_added"
    assert added.payload == {"member": "c", "role": "challenger"}
    t_full = added.timestamp
    removed = ledger.remove_member("ensemble", "a", reason="retired")
    assert removed.event_type == "member_removed"
    assert removed.payload == {"member": "a", "reason": "retired"}
    assert ledger.members("ensemble") == {"b": None, "c": "challenger"}
    assert ledger.members("ensemble", at=t_full) == {"a": None, "b": None, "c": "challenger"}
    assert ledger.members("ensemble", at=g.snapshot.timestamp) == {}
    assert ledger.members("ensemble", at=T0) == {}
    assert ledger.groups("a") == [] and ledger.groups("c") == ["ensemble"]
    assert ledger.groups("a", at=t_full) == ["ensemble"]
    assert ledger.groups("c", at=t_full - US) == []
    assert ledger.members("unknown") == {}
    # membership entries extend the group's chain
    assert [s.event_type for s in ledger.history("ensemble")] == [
        "registered", "member_added", "member_added", "member_added", "member_removed"]


def test_nested_groups(ledger: Ledger) -> None:
    """A group can hold a group; groups() names only direct parents."""
    register(ledger, "m")
    ledger.register_group(name="inner", owner="o", tier="high", purpose="p", members=["m"])
    ledger.register_group(name="outer", owner="o", tier="high", purpose="p", members=["inner"])
    assert ledger.groups("m") == ["inner"]
    assert ledger.groups("inner") == ["outer"]


def test_register_group_with_unknown_member_stores_nothing(ledger: Ledger) -> None:
    """register_group is one transaction: a bad member leaves no group behind."""
    register(ledger, "a")
    size, cp = ledger.size, ledger.checkpoint()
    with pytest.raises(v.RuleError):
        ledger.register_group(name="g", owner="o", tier="high", purpose="p",
                              members=["a", "ghost"])
    assert (ledger.size, ledger.checkpoint()) == (size, cp)
    assert ledger.history("g") == [] and "g" not in ledger.inventory_at()


# -- keys -----------------------------------------------------------------------------


def test_grant_and_revoke(ledger: Ledger, path: Path, keys: Keys, clock: Clock) -> None:
    """A granted writer writes under its own name; after revoke it cannot."""
    register(ledger, "fraud")
    pipe = ActorKey.generate("ml-pipeline")
    size = ledger.size
    assert ledger.grant(pipe.vkey, role="writer") is None
    assert ledger.size == size + 1
    assert isinstance(v.parse_entry(ledger.entry(size)).statement, v.Grant)
    with Ledger.open(path, log_key=keys.log, signer=pipe, clock=clock) as as_pipe:
        snap = as_pipe.record("fraud", event="retrained")
        assert snap.actor == "ml-pipeline"
        ledger.revoke("ml-pipeline", reason="rotated")
        with pytest.raises(v.AuthorizationError):
            as_pipe.record("fraud", event="retrained")
    inv = v.verify_bundle(ledger.export_bundle(), keys.trusted).inventory
    rec = [r for r in inv.key_history if r.name == "ml-pipeline"]
    assert len(rec) == 1 and rec[0].revoked_by == "risk-admin" and rec[0].reason == "rotated"
    assert "ml-pipeline" not in inv.keys


def test_grant_admin_role(ledger: Ledger, path: Path, keys: Keys) -> None:
    """An admin granted by the first admin can grant in turn."""
    second = ActorKey.generate("second-admin")
    ledger.grant(second.vkey, role="admin")
    with Ledger.open(path, log_key=keys.log, signer=second) as led:
        led.grant(ActorKey.generate("ml-pipeline").vkey)
        led.revoke("ml-pipeline")
    assert v.verify_bundle(ledger.export_bundle(), keys.trusted).inventory.keys.keys() == {
        "risk-admin", "second-admin"}


# -- submit -----------------------------------------------------------------------------


def test_submit_statement_signed_elsewhere(ledger: Ledger, pipe: ActorKey) -> None:
    """A statement signed by a pipeline is appended; a keyring statement returns None."""
    register(ledger, "fraud")
    signed = sign_statement(pipe, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, model="fraud",
                            event_type="validated", payload={"auc": 0.9})
    snap = ledger.submit(signed)
    assert snap is not None
    assert (snap.actor, snap.event_type, snap.payload) == ("ml-pipeline", "validated", {"auc": 0.9})
    assert snap.claimed_at == T0
    p = v.parse_entry(ledger.entry(snap.index))
    _, st_bytes, key_id, sig = v.parse_signed_statement(signed)
    assert (p.statement_bytes, p.key_id, p.sig) == (st_bytes, key_id, sig)
    assert ledger.inventory_at()["fraud"].last_validation_at == p.entry.recorded_at
    grant = sign_statement(ledger.signer, ORIGIN, "grant", log_id=ledger.log_id, claimed_at=T0,
                           key=ActorKey.generate("other").vkey, role="writer")
    assert ledger.submit(grant) is None
    assert ledger.size == snap.index + 2


def test_submit_same_statement_twice(ledger: Ledger, pipe: ActorKey) -> None:
    """The same signed bytes again return the original snapshot and append nothing."""
    register(ledger, "fraud")
    signed = sign_statement(pipe, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, model="fraud",
                            event_type="retrained", payload={})
    first = ledger.submit(signed)
    ledger.record("fraud", event="other")
    size, cp = ledger.size, ledger.checkpoint()
    assert ledger.submit(signed) == first
    assert (ledger.size, ledger.checkpoint()) == (size, cp)
    grant = sign_statement(ledger.signer, ORIGIN, "grant", log_id=ledger.log_id, claimed_at=T0,
                           key=ActorKey.generate("other").vkey, role="writer")
    ledger.submit(grant)
    assert ledger.submit(grant) is None and ledger.size == size + 1
    assert ledger.audit() == size + 1


def test_identical_content_new_statement_appends(ledger: Ledger, pipe: ActorKey) -> None:
    """Two statements with the same content but their own ids are two entries."""
    register(ledger, "fraud")
    a = sign_statement(pipe, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, model="fraud",
                       event_type="retrained", payload={"x": 1})
    b = sign_statement(pipe, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, model="fraud",
                       event_type="retrained", payload={"x": 1})
    sa, sb = ledger.submit(a), ledger.submit(b)
    assert sa is not None and sb is not None
    assert sb.index == sa.index + 1 and sa.snapshot_hash != sb.snapshot_hash
    assert sb.prev == sa.snapshot_hash


# -- batches ----------------------------------------------------------------------------


def test_batch_many_writes_one_checkpoint(ledger: Ledger, keys: Keys) -> None:
    """A batch signs one checkpoint, of its final size; intermediate sizes have none."""
    register(ledger, "fraud")
    start = ledger.size
    with ledger.batch():
        for i in range(10):
            ledger.record("fraud", event="e", payload={"i": i})
        register(ledger, "churn")
    end = ledger.size
    assert end == start + 11
    cps = {int.from_bytes(k, "big") for k in raw_rows(ledger, "checkpoints")}
    assert cps == set(range(1, start + 1)) | {end}
    assert v.Checkpoint.parse_note(ledger.checkpoint(), keys.trusted).size == end
    assert ledger.audit() == end


def test_batch_exception_stores_nothing(ledger: Ledger, pipe: ActorKey) -> None:
    """An exception inside a batch discards every write of it."""
    register(ledger, "fraud")
    size, cp = ledger.size, ledger.checkpoint()
    signed = sign_statement(pipe, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, model="fraud",
                            event_type="retrained", payload={})
    with pytest.raises(RuntimeError):
        with ledger.batch():
            ledger.record("fraud", event="a")
            ledger.submit(signed)
            register(ledger, "churn")
            raise RuntimeError("boom")
    assert (ledger.size, ledger.checkpoint()) == (size, cp)
    assert [s.event_type for s in ledger.history("fraud")] == ["registered"]
    assert ledger.history("churn") == [] and "churn" not in ledger.inventory_at()
    snap = ledger.submit(signed)  # its id was not kept either
    assert snap is not None and snap.index == size
    assert ledger.audit() == size + 1


def test_batch_refusal_inside_aborts_the_batch(ledger: Ledger) -> None:
    """A refused write that escapes the block discards the batch's earlier writes."""
    register(ledger, "fraud")
    size = ledger.size
    with pytest.raises(v.RuleError):
        with ledger.batch():
            ledger.record("fraud", event="a")
            ledger.record("ghost", event="a")
    assert ledger.size == size


def test_batch_caught_refusal_keeps_the_rest(ledger: Ledger) -> None:
    """A refusal caught inside the batch leaves the batch's other writes intact."""
    register(ledger, "fraud")
    size = ledger.size
    with ledger.batch():
        ledger.record("fraud", event="a")
        with pytest.raises(v.RuleError):
            ledger.record("ghost", event="a")
        ledger.record("fraud", event="b")
    assert ledger.size == size + 2
    assert [s.event_type for s in ledger.history("fraud")] == ["registered", "a", "b"]
    assert ledger.audit() == size + 2


def test_reads_inside_batch_see_its_writes(ledger: Ledger) -> None:
    """Inside a batch, size, history, latest, entry, tags and inventory include its writes."""
    register(ledger, "fraud")
    size = ledger.size
    with ledger.batch():
        ref = register(ledger, "churn")
        snap = ledger.record("churn", event="retrained")
        ledger.tag("churn", "production")
        assert ledger.size == size + 3
        assert [s.event_type for s in ledger.history("churn")] == [
            "registered", "retrained", "tag_moved"]
        assert ledger.latest("churn") == snap
        assert ledger.latest("churn", tag="production") == snap
        assert ledger.entry(snap.snapshot_hash) == ledger.entry(snap.index)
        assert ledger.tags("churn")["production"].target == snap.snapshot_hash
        assert sorted(ledger.inventory_at()) == ["churn", "fraud"]
        assert register(ledger, "churn") == ref  # idempotent inside the batch too
        assert ledger.size == size + 3
    assert ledger.size == size + 3


def test_batches_do_not_nest(ledger: Ledger) -> None:
    """A batch inside a batch raises ValueError (and the outer one is discarded)."""
    size = ledger.size
    with pytest.raises(ValueError):
        with ledger.batch():
            register(ledger, "a")
            with ledger.batch():
                pass
    assert ledger.size == size


def test_empty_batch_changes_nothing(ledger: Ledger) -> None:
    """A batch with no writes signs no checkpoint."""
    cp = ledger.checkpoint()
    with ledger.batch():
        pass
    assert ledger.checkpoint() == cp and ledger.size == 1


# -- reading entries, proofs, audit ----------------------------------------------------


def test_entry_by_index_and_hash(ledger: Ledger) -> None:
    """entry() takes an index or a snapshot hash; bad references raise."""
    ref = register(ledger, "fraud")
    assert ledger.entry(1) == ledger.entry(ref.snapshot.snapshot_hash)
    genesis_hash = v.snapshot_hash(ledger.entry(0))
    assert ledger.entry(genesis_hash) == ledger.entry(0)
    with pytest.raises(KeyError):
        ledger.entry(2)
    with pytest.raises(KeyError):
        ledger.entry(-1)
    with pytest.raises(KeyError):
        ledger.entry("00" * 32)
    with pytest.raises(ValueError):
        ledger.entry("not hex")
    with pytest.raises(TypeError):
        ledger.entry(True)  # type: ignore[arg-type]


def test_size_and_checkpoint_follow_every_write(ledger: Ledger, keys: Keys) -> None:
    """After each write the latest checkpoint is signed for the new size."""
    register(ledger, "fraud")
    for i in range(5):
        ledger.record("fraud", event=f"e{i}")
        cp = v.Checkpoint.parse_note(ledger.checkpoint(), keys.trusted)
        assert cp.size == ledger.size == 3 + i
        assert cp.root == v.root_from_leaf_hashes(v.leaf_hash(e) for e in entries(ledger))


def test_proof_objects(ledger: Ledger) -> None:
    """prove_inclusion/prove_consistency return index, size, hashes and text."""
    ref = register(ledger, "fraud")
    for _ in range(4):
        ledger.record("fraud", event="e")
    inc = ledger.prove_inclusion(ref.snapshot.snapshot_hash)
    assert (inc.index, inc.size, len(inc.hashes)) == (1, 6, 3)
    assert inc.to_text().startswith(b"c2sp.org/tlog-proof@v1\nindex 1\n")
    assert ledger.prove_inclusion(1, size=2).size == 2
    con = ledger.prove_consistency(3)
    assert (con.old_size, con.new_size) == (3, 6) and con.to_text().startswith(b"old 3\n")
    assert ledger.prove_consistency(6).hashes == ()
    for bad in (0, 7, True, "2"):
        with pytest.raises(ValueError):
            ledger.prove_inclusion(0, size=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ledger.prove_inclusion(4, size=3)
    with pytest.raises(ValueError):
        ledger.prove_consistency(4, 3)
    with pytest.raises(ValueError):
        ledger.prove_consistency(-1)


def test_export_bundle_and_audit(ledger: Ledger, keys: Keys) -> None:
    """The default bundle covers the whole log; audit counts every entry."""
    register(ledger, "fraud")
    ledger.record("fraud", event="e")
    out = v.verify_bundle(ledger.export_bundle(), keys.trusted)
    assert out.size == ledger.size == out.checkpoint.size
    assert out.time == recorded_at(ledger.entry(ledger.size - 1))
    assert dict(out.models) == ledger.inventory_at()
    assert ledger.audit() == ledger.size


def test_register_group_twice_adds_nothing(ledger: Ledger) -> None:
    """A repeated register_group with the same arguments returns the group and appends nothing."""
    register(ledger, "a")
    register(ledger, "b")
    first = ledger.register_group(name="g", owner="o", tier="high", purpose="p",
                                  members=["a", "b"])
    size = ledger.size
    again = ledger.register_group(name="g", owner="o", tier="high", purpose="p",
                                  members=["a", "b"])
    assert again.model_hash == first.model_hash
    assert ledger.size == size
    assert ledger.members("g") == {"a": None, "b": None}


def test_open_with_a_foreign_unnamed_log_key_leaves_it_unnamed(tmp_path: Path) -> None:
    """Opening with the wrong log key raises and does not rename the caller's key."""
    keys = Keys()
    make_ledger(tmp_path / "s", keys).close()
    stranger = LogKey.generate()
    with pytest.raises(ValueError, match="not this store's log key"):
        Ledger.open(tmp_path / "s", log_key=stranger)
    assert stranger.name is None


def test_root_of_any_past_size_and_none_beyond(tmp_path: Path) -> None:
    keys = Keys()
    led = make_ledger(tmp_path / "s", keys)
    try:
        first = v.Checkpoint.parse_note(led.checkpoint(), keys.trusted)
        register(led, "m-root")
        now = v.Checkpoint.parse_note(led.checkpoint(), keys.trusted)
        assert led.root(first.size) == first.root and led.root(now.size) == now.root
        assert led.root(0) == v.EMPTY_ROOT and led.root(now.size + 1) is None
        for bad in (-1, True, 1.0):
            with pytest.raises(ValueError):
                led.root(bad)  # type: ignore[arg-type]
    finally:
        led.close()
