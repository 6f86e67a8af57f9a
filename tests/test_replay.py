"""Replay scenarios: histories built with logsim, each bad entry raising one exact error
class and leaving the Inventory untouched; and fields as of each point of a history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import verifier as v
from tests.helpers import inventory_state
from tests.logsim import CLAIM_SKEW, CLAIM_WINDOW, DAY, T0, Log, Signer, sample_log

SEED = "replay"
META = {"framework": "torch"}
CLAIMS = dict(claim_skew=CLAIM_SKEW, claim_window=CLAIM_WINDOW)  # a genesis's claim limits


def pipe_signer() -> Signer:
    return Signer("ml-pipeline", f"{SEED}-pipe".encode())


def base() -> tuple[Log, Signer]:
    """Genesis, a writer key, model m1 with one event, model m2."""
    log = Log.create(seed=SEED)
    pipe = pipe_signer()
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    register(log, pipe, "m1")
    log.submit(pipe, "event", model="m1", event_type="retrained", payload={"acc": 0.9})
    register(log, pipe, "m2")
    return log, pipe


def register(log: Log, signer: Signer, name: str, **over: Any) -> bytes:
    fields = dict(name=name, owner="team", model_type="ml_model", tier="low", purpose="p",
                  status="active", metadata=META)
    fields.update(over)
    return log.submit(signer, "register", **fields)


def split(log: Log) -> tuple[list[bytes], bytes]:
    return log.entries[:-1], log.entries[-1]


def raw(log: Log, signer: Signer, op: str, *, index: int | None = None,
        recorded_at: int | None = None, prev: str | None = None, **body: Any) -> bytes:
    """Entry bytes with chosen index/time/prev, not appended to the log."""
    st_bytes = log.statement(signer, op, **body)
    return v.entry_bytes(index=len(log.entries) if index is None else index,
                         recorded_at=log.clock if recorded_at is None else recorded_at,
                         prev=prev, statement=st_bytes, key_id=signer.key.key_id,
                         sig=signer.sign(st_bytes))


# -- scenario builders: each returns (good prefix, bad entry) --------------------------------

Scenario = Callable[[], tuple[list[bytes], bytes]]


def no_genesis() -> tuple[list[bytes], bytes]:
    log = Log("example.com/models", Signer("example.com/models", b"l"), Signer("risk-admin", b"a"))
    log.submit(log.admin, "grant", key=pipe_signer().vkey, role="writer")
    return split(log)


def register_first() -> tuple[list[bytes], bytes]:
    log = Log("example.com/models", Signer("example.com/models", b"l"), Signer("risk-admin", b"a"))
    register(log, log.admin, "m1")
    return split(log)


def second_genesis() -> tuple[list[bytes], bytes]:
    log, _ = base()
    log.submit(log.admin, "genesis", log_key=log.log_key.vkey, admin_key=log.admin.vkey, **CLAIMS)
    return split(log)


def index_ahead() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    return log.entries, raw(log, pipe, "register", index=len(log.entries) + 1, name="m9",
                            owner="o", model_type="t", tier="t", purpose="", status="a",
                            metadata={})


def index_behind() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    return log.entries, raw(log, pipe, "register", index=len(log.entries) - 1, name="m9",
                            owner="o", model_type="t", tier="t", purpose="", status="a",
                            metadata={})


def time_back() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.clock -= log.step + 1  # one nanosecond before the last entry
    register(log, pipe, "m9")
    return split(log)


def wrong_prev_random() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    st_bytes = log.statement(pipe, "event", model="m1", event_type="x", payload={})
    log.append(st_bytes, pipe.key.key_id, pipe.sign(st_bytes), prev="00" * 32)
    return split(log)


def wrong_prev_none() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    st_bytes = log.statement(pipe, "event", model="m1", event_type="x", payload={})
    log.append(st_bytes, pipe.key.key_id, pipe.sign(st_bytes), prev=None)
    return split(log)


def wrong_prev_other_model() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    st_bytes = log.statement(pipe, "event", model="m1", event_type="x", payload={})
    log.append(st_bytes, pipe.key.key_id, pipe.sign(st_bytes), prev=log.heads["m2"])
    return split(log)


def wrong_prev_stale() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    st_bytes = log.statement(pipe, "event", model="m1", event_type="x", payload={})
    log.append(st_bytes, pipe.key.key_id, pipe.sign(st_bytes),
               prev=v.snapshot_hash(log.entries[2]))  # m1's register, not its latest event
    return split(log)


def prev_on_register() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    st_bytes = log.statement(pipe, "register", name="m9", owner="o", model_type="t", tier="t",
                             purpose="", status="a", metadata={})
    log.append(st_bytes, pipe.key.key_id, pipe.sign(st_bytes), prev=log.heads["m1"])
    return split(log)


def prev_on_grant() -> tuple[list[bytes], bytes]:
    log, _ = base()
    st_bytes = log.statement(log.admin, "grant", key=Signer("w2", b"w2").vkey, role="writer")
    log.append(st_bytes, log.admin.key.key_id, log.admin.sign(st_bytes), prev=log.heads["m1"])
    return split(log)


def duplicate_statement_id() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    st_bytes = log.statement(pipe, "event", model="m1", event_type="x", payload={})
    log.append(st_bytes, pipe.key.key_id, pipe.sign(st_bytes))
    log.append(st_bytes, pipe.key.key_id, pipe.sign(st_bytes))
    return split(log)


def duplicate_grant_id() -> tuple[list[bytes], bytes]:
    log, _ = base()
    st_bytes = log.statement(log.admin, "grant", key=Signer("w2", b"w2").vkey, role="writer")
    log.append(st_bytes, log.admin.key.key_id, log.admin.sign(st_bytes))
    log.append(st_bytes, log.admin.key.key_id, log.admin.sign(st_bytes))
    return split(log)


def other_origin() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.origin = "other.example/models"
    register(log, pipe, "m9")
    return split(log)


def unknown_actor() -> tuple[list[bytes], bytes]:
    log, _ = base()
    register(log, Signer("stranger", b"stranger"), "m9")
    return split(log)


def revoked_key() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(log.admin, "revoke", name="ml-pipeline", reason="rotated")
    log.submit(pipe, "event", model="m1", event_type="x", payload={})
    return split(log)


def writer_grants() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "grant", key=Signer("w2", b"w2").vkey, role="writer")
    return split(log)


def writer_grants_admin() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "grant", key=Signer("w2", b"w2").vkey, role="admin")
    return split(log)


def writer_revokes() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "revoke", name="risk-admin", reason=None)
    return split(log)


def same_name_other_key() -> tuple[list[bytes], bytes]:
    log, _ = base()
    register(log, Signer("ml-pipeline", b"an-impostor-key"), "m9")
    return split(log)


def admin_name_other_key() -> tuple[list[bytes], bytes]:
    log, _ = base()
    log.submit(Signer("risk-admin", b"impostor"), "grant", key=Signer("w2", b"w2").vkey,
               role="admin")
    return split(log)


def forged_signature() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    st_bytes = log.statement(pipe, "event", model="m1", event_type="x", payload={})
    log.append(st_bytes, pipe.key.key_id, Signer("ml-pipeline", b"impostor").sign(st_bytes))
    return split(log)


def signature_over_other_statement() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    other = log.statement(pipe, "event", model="m1", event_type="y", payload={})
    st_bytes = log.statement(pipe, "event", model="m1", event_type="x", payload={})
    log.append(st_bytes, pipe.key.key_id, pipe.sign(other))
    return split(log)


def forged_genesis() -> tuple[list[bytes], bytes]:
    log = Log("example.com/models", Signer("example.com/models", b"l"), Signer("risk-admin", b"a"))
    st_bytes = log.statement(log.admin, "genesis", log_key=log.log_key.vkey,
                             admin_key=log.admin.vkey, **CLAIMS)
    log.append(st_bytes, log.admin.key.key_id, log.log_key.sign(st_bytes))
    return split(log)


def genesis_other_signer() -> tuple[list[bytes], bytes]:
    log = Log("example.com/models", Signer("example.com/models", b"l"), Signer("risk-admin", b"a"))
    other = Signer("risk-admin", b"other")
    st_bytes = log.statement(log.admin, "genesis", log_key=log.log_key.vkey,
                             admin_key=log.admin.vkey, **CLAIMS)
    log.append(st_bytes, other.key.key_id, other.sign(st_bytes))
    return split(log)


def genesis_log_key_not_origin() -> tuple[list[bytes], bytes]:
    log = Log("example.com/models", Signer("elsewhere.example", b"l"), Signer("risk-admin", b"a"))
    log.submit(log.admin, "genesis", log_key=log.log_key.vkey, admin_key=log.admin.vkey, **CLAIMS)
    return split(log)


def register_twice() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    register(log, pipe, "m1", owner="someone-else")
    return split(log)


def event_unknown_model() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "event", model="nope", event_type="x", payload={})
    return split(log)


def tag_other_models_snapshot() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "tag", model="m1", tag="production", target=log.heads["m2"])
    return split(log)


def tag_random_target() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "tag", model="m1", tag="production", target="ab" * 32)
    return split(log)


def tag_unknown_model() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "tag", model="nope", tag="production", target=log.heads["m1"])
    return split(log)


def tag_tag_entry_target() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    tag = log.submit(pipe, "tag", model="m1", tag="staging", target=log.heads["m1"])
    log.submit(pipe, "tag", model="m1", tag="production", target=v.snapshot_hash(tag))
    return split(log)


def tag_member_entry_target() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    add = log.submit(pipe, "member_add", group="m1", member="m2", role=None)
    log.submit(pipe, "tag", model="m1", tag="production", target=v.snapshot_hash(add))
    return split(log)


def tag_genesis_target() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "tag", model="m1", tag="production", target=v.snapshot_hash(log.entries[0]))
    return split(log)


def member_add_duplicate() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "member_add", group="m1", member="m2", role=None)
    log.submit(pipe, "member_add", group="m1", member="m2", role="again")
    return split(log)


def member_add_self() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "member_add", group="m1", member="m1", role=None)
    return split(log)


def member_add_cycle() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "member_add", group="m1", member="m2", role=None)
    log.submit(pipe, "member_add", group="m2", member="m1", role=None)
    return split(log)


def member_add_long_cycle() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    register(log, pipe, "m3")
    log.submit(pipe, "member_add", group="m1", member="m2", role=None)
    log.submit(pipe, "member_add", group="m2", member="m3", role=None)
    log.submit(pipe, "member_add", group="m3", member="m1", role=None)
    return split(log)


def member_add_unknown_member() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "member_add", group="m1", member="nope", role=None)
    return split(log)


def member_add_unknown_group() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "member_add", group="nope", member="m1", role=None)
    return split(log)


def member_remove_non_member() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "member_add", group="m1", member="m2", role=None)
    register(log, pipe, "m3")
    log.submit(pipe, "member_remove", group="m1", member="m3", reason=None)
    return split(log)


def member_remove_twice() -> tuple[list[bytes], bytes]:
    log, pipe = base()
    log.submit(pipe, "member_add", group="m1", member="m2", role=None)
    log.submit(pipe, "member_remove", group="m1", member="m2", reason=None)
    log.submit(pipe, "member_remove", group="m1", member="m2", reason=None)
    return split(log)


def revoke_last_admin() -> tuple[list[bytes], bytes]:
    log, _ = base()
    log.submit(log.admin, "revoke", name="risk-admin", reason="oops")
    return split(log)


def revoke_unknown() -> tuple[list[bytes], bytes]:
    log, _ = base()
    log.submit(log.admin, "revoke", name="nobody", reason=None)
    return split(log)


def revoke_twice() -> tuple[list[bytes], bytes]:
    log, _ = base()
    log.submit(log.admin, "revoke", name="ml-pipeline", reason=None)
    log.submit(log.admin, "revoke", name="ml-pipeline", reason=None)
    return split(log)


def grant_existing_name() -> tuple[list[bytes], bytes]:
    log, _ = base()
    log.submit(log.admin, "grant", key=Signer("ml-pipeline", b"new").vkey, role="writer")
    return split(log)


def grant_malformed_key() -> tuple[list[bytes], bytes]:
    log, _ = base()
    log.submit(log.admin, "grant", key="ml-pipeline+00000000+AAAA", role="writer")
    return split(log)


def _updated(payload: dict[str, Any]) -> Scenario:
    def build() -> tuple[list[bytes], bytes]:
        log, pipe = base()
        log.submit(pipe, "event", model="m1", event_type="updated", payload=payload)
        return split(log)
    build.__name__ = f"updated {payload}"
    return build


SCENARIOS: list[tuple[Scenario, type[Exception]]] = [
    (no_genesis, v.ChainError),
    (register_first, v.ChainError),
    (second_genesis, v.ChainError),
    (index_ahead, v.ChainError),
    (index_behind, v.ChainError),
    (time_back, v.ChainError),
    (wrong_prev_random, v.ChainError),
    (wrong_prev_none, v.ChainError),
    (wrong_prev_other_model, v.ChainError),
    (wrong_prev_stale, v.ChainError),
    (prev_on_register, v.ChainError),
    (prev_on_grant, v.ChainError),
    (duplicate_statement_id, v.ChainError),
    (duplicate_grant_id, v.ChainError),
    (other_origin, v.RuleError),
    (unknown_actor, v.AuthorizationError),
    (revoked_key, v.AuthorizationError),
    (writer_grants, v.AuthorizationError),
    (writer_grants_admin, v.AuthorizationError),
    (writer_revokes, v.AuthorizationError),
    (same_name_other_key, v.AuthorizationError),
    (admin_name_other_key, v.AuthorizationError),
    (genesis_other_signer, v.AuthorizationError),
    (forged_signature, v.SignatureError),
    (signature_over_other_statement, v.SignatureError),
    (forged_genesis, v.SignatureError),
    (genesis_log_key_not_origin, v.RuleError),
    (register_twice, v.RuleError),
    (event_unknown_model, v.RuleError),
    (tag_other_models_snapshot, v.RuleError),
    (tag_random_target, v.RuleError),
    (tag_unknown_model, v.RuleError),
    (tag_genesis_target, v.RuleError),
    (tag_tag_entry_target, v.RuleError),
    (tag_member_entry_target, v.RuleError),
    (member_add_duplicate, v.RuleError),
    (member_add_self, v.RuleError),
    (member_add_cycle, v.RuleError),
    (member_add_long_cycle, v.RuleError),
    (member_add_unknown_member, v.RuleError),
    (member_add_unknown_group, v.RuleError),
    (member_remove_non_member, v.RuleError),
    (member_remove_twice, v.RuleError),
    (revoke_last_admin, v.RuleError),
    (revoke_unknown, v.RuleError),
    (revoke_twice, v.RuleError),
    (grant_existing_name, v.RuleError),
    (grant_malformed_key, v.MalformedInputError),
    (_updated({"color": "red"}), v.RuleError),
    (_updated({"name": "renamed"}), v.RuleError),
    (_updated({"model_hash": "00"}), v.RuleError),
    (_updated({}), v.RuleError),
    (_updated({"tier": 3}), v.RuleError),
    (_updated({"tier": ""}), v.RuleError),
    (_updated({"tier": "a\nb"}), v.RuleError),
    (_updated({"owner": "x" * 201}), v.RuleError),
    (_updated({"metadata": "not an object"}), v.RuleError),
    (_updated({"tier": "high", "colour": "red"}), v.RuleError),
]


@pytest.mark.parametrize("build,expected", SCENARIOS, ids=[b.__name__ for b, _ in SCENARIOS])
def test_bad_entry(build: Scenario, expected: type[Exception]) -> None:
    """The bad entry raises exactly its error class; the Inventory is left unchanged."""
    prefix, bad = build()
    inv = v.Inventory()
    for data in prefix:
        inv.apply(data)
    before = inventory_state(inv)
    with pytest.raises(expected) as info:
        inv.apply(bad)
    assert info.type is expected
    assert inventory_state(inv) == before
    # The same history through replay() fails the same way.
    with pytest.raises(expected):
        v.replay([*prefix, bad])


def test_base_history_is_valid() -> None:
    """The scenarios' common prefix replays cleanly, so each failure is the bad entry's."""
    log, pipe = base()
    log.submit(pipe, "event", model="m1", event_type="x", payload={})
    inv = v.replay(log.entries)
    assert inv.size == len(log.entries) == 6
    assert set(inv.models) == {"m1", "m2"}


def test_inventory_still_usable_after_failure() -> None:
    """After a refused entry the correct next entry still applies."""
    log, pipe = base()
    inv = v.Inventory()
    for data in log.entries:
        inv.apply(data)
    bad = raw(log, pipe, "event", model="m1", event_type="x", payload={}, prev="00" * 32)
    with pytest.raises(v.ChainError):
        inv.apply(bad)
    good = log.submit(pipe, "event", model="m1", event_type="x", payload={})
    assert inv.apply(good).entry.index == inv.size - 1 == 5


def test_malformed_entry_leaves_inventory() -> None:
    """Garbage bytes are MalformedInputError and change nothing."""
    log, _ = base()
    inv = v.replay(log.entries)
    before = inventory_state(inv)
    with pytest.raises(v.MalformedInputError):
        inv.apply(log.entries[-1][:-1])
    assert inventory_state(inv) == before


def test_equal_times_allowed() -> None:
    """Two entries may share a recorded_at; only going back is refused."""
    log, pipe = base()
    log.clock -= log.step
    register(log, pipe, "m9")
    assert v.replay(log.entries).size == len(log.entries)


def test_admin_may_write_and_second_admin_may_revoke_first() -> None:
    """Admins may write model entries; with two admins one may be revoked."""
    log, _ = base()
    other = Signer("second-admin", b"second")
    log.submit(log.admin, "grant", key=other.vkey, role="admin")
    register(log, log.admin, "by-admin")
    log.submit(other, "revoke", name="risk-admin", reason="rotated")
    inv = v.replay(log.entries)
    assert "risk-admin" not in inv.keys and inv.keys["second-admin"].role == "admin"
    assert inv.key_history[0].revoked_by == "second-admin"
    assert inv.timelines is not None and inv.timelines["by-admin"][0].actor == "risk-admin"


def test_regrant_after_revoke() -> None:
    """A revoked actor may get a new key; the old key stays refused."""
    log, pipe = base()
    new = Signer("ml-pipeline", b"rotated")
    log.submit(log.admin, "revoke", name="ml-pipeline", reason="rotated")
    log.submit(log.admin, "grant", key=new.vkey, role="writer")
    log.submit(new, "event", model="m1", event_type="x", payload={})
    inv = v.replay(log.entries)
    assert inv.keys["ml-pipeline"].vkey == new.vkey
    assert [r.vkey for r in inv.key_history if r.name == "ml-pipeline"] == [pipe.vkey, new.vkey]
    log.submit(pipe, "event", model="m1", event_type="x", payload={})
    with pytest.raises(v.AuthorizationError):
        inv.apply(log.entries[-1])


def test_replay_until() -> None:
    """replay(until=t) refuses entries recorded after t."""
    log, _ = base()
    last = v.parse_entry(log.entries[-1]).entry.recorded_at
    assert v.replay(log.entries, until=last).size == len(log.entries)
    with pytest.raises(v.ChainError):
        v.replay(log.entries, until=last - 1)


# -- positive: fields as of each point ---------------------------------------------------------

def history() -> tuple[Log, list[str]]:
    """One model's life, with a label per entry."""
    log = Log.create(seed=SEED)
    pipe = pipe_signer()
    labels = ["genesis", "grant"]
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    register(log, pipe, "credit", tier="low", metadata={"v": 1})
    labels.append("register")
    log.submit(log.admin, "event", model="credit", event_type="validated", payload={"ok": True})
    labels.append("validated")
    ev = log.submit(pipe, "event", model="credit", event_type="updated",
                    payload={"tier": "high", "metadata": {"v": 2}, "purpose": "Scoring"})
    labels.append("updated")
    log.submit(pipe, "tag", model="credit", tag="production", target=v.snapshot_hash(ev))
    labels.append("tag")
    register(log, pipe, "suite", model_type="group")
    labels.append("register suite")
    log.submit(pipe, "member_add", group="suite", member="credit", role="scorer")
    labels.append("member_add")
    log.submit(pipe, "member_remove", group="suite", member="credit", reason="split")
    labels.append("member_remove")
    log.submit(pipe, "event", model="credit", event_type="retired", payload={"why": "old"})
    labels.append("retired")
    return log, labels


def test_fields_as_of_each_point() -> None:
    """Replaying each prefix shows the model's fields as they were at that point."""
    log, labels = history()
    t = [v.parse_entry(e).entry.recorded_at for e in log.entries]
    snaps = [v.snapshot_hash(e) for e in log.entries]
    expect: dict[str, dict[str, Any]] = {
        "register": dict(tier="low", status="active", last_validation_at=None, tags={},
                         metadata={"v": 1}, purpose="p", last_event_type="registered",
                         latest=snaps[2], head=snaps[2], registered_at=t[2],
                         last_event_at=t[2]),
        "validated": dict(tier="low", last_validation_at=t[3], last_event_type="validated",
                          latest=snaps[3], head=snaps[3], last_event_at=t[3]),
        "updated": dict(tier="high", metadata={"v": 2}, purpose="Scoring",
                        last_validation_at=t[3], last_event_type="updated", latest=snaps[4],
                        head=snaps[4]),
        "tag": dict(tags={"production": snaps[4]}, latest=snaps[4], head=snaps[5],
                    last_event_type="updated", last_event_at=t[4]),
        "retired": dict(status="retired", tier="high", last_event_type="retired",
                        tags={"production": snaps[4]}, latest=snaps[9], head=snaps[9],
                        last_event_at=t[9]),
    }
    suite_members = {"register suite": {}, "member_add": {"credit": "scorer"},
                     "member_remove": {}}
    for k, label in enumerate(labels):
        inv = v.replay(log.entries[: k + 1])
        assert inv.size == k + 1
        if label in expect:
            fields = inv.models["credit"].fields()
            for key, want in expect[label].items():
                assert fields[key] == want, (label, key)
            assert fields["model_hash"] == v.model_hash("credit", "team", t[2])
        if label in suite_members:
            assert inv.models["suite"].members == suite_members[label]
        if k < 2:
            assert inv.models == {}


def test_timeline_and_snapshots() -> None:
    """A model's timeline lists its chain entries with ops, event types and actors."""
    log, _ = history()
    inv = v.replay(log.entries)
    assert inv.timelines is not None
    assert [(i.index, i.op, i.event_type, i.actor) for i in inv.timelines["credit"]] == [
        (2, "register", "registered", "ml-pipeline"),
        (3, "event", "validated", "risk-admin"),
        (4, "event", "updated", "ml-pipeline"),
        (5, "tag", None, "ml-pipeline"),
        (9, "event", "retired", "ml-pipeline"),
    ]
    assert {s for s, m in inv.snapshot_owner.items() if m == "credit"} == {
        v.snapshot_hash(log.entries[i]) for i in (2, 3, 4, 9)}
    assert [(i.op, i.detail) for i in inv.timelines["suite"][1:]] == [
        ("member_add", {"member": "credit", "role": "scorer"}),
        ("member_remove", {"member": "credit", "reason": "split"}),
    ]
    assert inv.statement_ids == {
        v.parse_entry(e).statement.id: i for i, e in enumerate(log.entries)}


def test_sample_log_final_state() -> None:
    """logsim's sample history replays to the expected keys and models."""
    log, pipe = sample_log(models=4, seed=SEED)
    inv = v.replay(log.entries)
    assert inv.origin == log.origin and inv.log_key == log.log_key.key
    assert inv.key_history[1].vkey == pipe.vkey
    assert list(inv.keys) == ["risk-admin"]
    assert [(r.name, r.role, r.revoked_by) for r in inv.key_history] == [
        ("risk-admin", "admin", None), ("ml-pipeline", "writer", "risk-admin")]
    assert inv.key_history[1].reason == "rotated"
    assert sorted(inv.models) == ["fraud_suite", "model_00", "model_01", "model_02", "model_03"]
    assert inv.models["model_03"].tier == "high" and inv.models["model_02"].status == "retired"
    assert inv.models["fraud_suite"].members == {"model_01": "component",
                                                 "model_02": "component"}
    assert all(m.last_validation_at for n, m in inv.models.items() if n != "fraud_suite")
    assert inv.last_recorded_at == T0 + (len(log.entries) - 1) * (DAY // 4)


def test_tag_targets_registration_or_any_event() -> None:
    """A tag may point at the registration or any earlier event of its own model."""
    log, pipe = base()
    reg_snap = v.snapshot_hash(log.entries[2])
    ev_snap = v.snapshot_hash(log.entries[3])
    log.submit(pipe, "event", model="m1", event_type="retrained", payload={})
    log.submit(pipe, "tag", model="m1", tag="production", target=reg_snap)
    log.submit(pipe, "tag", model="m1", tag="production", target=ev_snap)
    log.submit(pipe, "tag", model="m1", tag="old", target=reg_snap)
    inv = v.replay(log.entries)
    assert inv.models["m1"].tags == {"production": ev_snap, "old": reg_snap}
    assert inv.models["m1"].latest == v.snapshot_hash(log.entries[5])
    assert inv.models["m1"].head == v.snapshot_hash(log.entries[-1])


def test_without_timelines_same_state() -> None:
    """keep_timelines=False changes nothing but the timelines."""
    log, _ = history()
    full, lean = v.Inventory(), v.Inventory(keep_timelines=False)
    for data in log.entries:
        full.apply(data)
        lean.apply(data)
    a, b = inventory_state(full), inventory_state(lean)
    assert b.pop("timelines") is None and a.pop("timelines")
    assert a == b
