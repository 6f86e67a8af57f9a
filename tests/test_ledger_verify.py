"""What the ledger hands out verifies with verifier/ alone: checkpoints, proofs, bundles.

The key property: for any history and any time t,
``ledger.inventory_at(t) == dict(verify_bundle(ledger.export_bundle(at=t), [key]).models)``,
and both equal an independent replay of the entries recorded by t.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import verifier as v
from ledger import ActorKey, Ledger
from tests import reference as ref
from tests.ledger_support import (
    MINUTE,
    ORIGIN,
    T0,
    Clock,
    Keys,
    entries,
    fingerprint,
    make_ledger,
    raw_rows,
    recorded_at,
    register,
)

US = timedelta(microseconds=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """A ledger of 40 entries: single writes, a batch, groups, tags, a pipeline."""
    keys = Keys()
    path = tmp_path_factory.mktemp("verify") / "store"
    led = make_ledger(path, keys)
    pipe = ActorKey.generate("ml-pipeline")
    led.grant(pipe.vkey)
    for name in ("fraud", "churn", "ltv"):
        register(led, name)
    with led.batch():
        for i in range(12):
            led.record(("fraud", "churn")[i % 2], event="retrained", payload={"i": i})
    led.signer = pipe
    for i in range(6):
        led.record("ltv", event="validated", payload={"auc": 0.8 + i / 100})
    led.signer = keys.admin
    led.tag("fraud", "production")
    led.register_group(name="ensemble", owner="risk", tier="high", purpose="vote",
                       members=["fraud", "churn"])
    led.update("churn", tier="low")
    led.remove_member("ensemble", "fraud")
    with led.batch():
        led.retire("fraud")
        led.record("ltv", event="note")
    while led.size < 40:
        led.record("churn", event="note")
    yield led, keys, entries(led)
    led.close()


# -- checkpoints and proofs -------------------------------------------------------------


def test_every_stored_checkpoint_verifies(built: Any) -> None:
    """Each stored note verifies with the log key and commits to the first n entries."""
    led, keys, ents = built
    rows = raw_rows(led, "checkpoints")
    assert len(rows) >= 20
    for key, note in rows.items():
        n = int.from_bytes(key, "big")
        cp = v.Checkpoint.parse_note(note, keys.trusted)
        assert (cp.origin, cp.size, cp.root) == (ORIGIN, n, ref.mth(ents[:n]))
        other = ActorKey.generate(ORIGIN).key  # same name, another key: refused
        with pytest.raises(v.SignatureError):
            v.Checkpoint.parse_note(note, [other])
    assert v.Checkpoint.parse_note(led.checkpoint(), keys.trusted).size == len(ents)


def test_inclusion_proofs_verify_for_every_entry_and_size(built: Any) -> None:
    """prove_inclusion(i, n) verifies as a tlog-proof and equals RFC 9162 PATH(i, D[n])."""
    led, keys, ents = built
    for n in range(1, len(ents) + 1):
        for i in range(n):
            proof = led.prove_inclusion(i, size=n)
            assert (proof.index, proof.size) == (i, n)
            assert list(proof.hashes) == ref.path(i, ents[:n])
            cp = v.verify_tlog_proof(proof.to_text(), led.entry(i), keys.trusted)
            assert (cp.size, cp.root) == (n, ref.mth(ents[:n]))
    other = ents[5]
    with pytest.raises(v.VerificationError):
        v.verify_tlog_proof(led.prove_inclusion(4).to_text(), other, keys.trusted)


def test_inclusion_proof_by_snapshot_hash(built: Any) -> None:
    """A snapshot hash names the same entry as its index."""
    led, keys, ents = built
    for snap in led.history("ensemble"):
        by_hash = led.prove_inclusion(snap.snapshot_hash)
        assert by_hash == led.prove_inclusion(snap.index)
        v.verify_tlog_proof(by_hash.to_text(), ents[snap.index], keys.trusted)


def test_consistency_proofs_verify_for_every_old_size(built: Any) -> None:
    """prove_consistency(m, n) verifies as add-checkpoint and equals RFC 9162 PROOF(m, D[n])."""
    led, keys, ents = built
    for n in range(1, len(ents) + 1):
        for m in range(n + 1):
            proof = led.prove_consistency(m, n)
            assert (proof.old_size, proof.new_size) == (m, n)
            assert list(proof.hashes) == ref.proof(m, ents[:n])
            cp = v.verify_add_checkpoint(proof.to_text(), keys.trusted, ref.mth(ents[:m]))
            assert cp.size == n
    with pytest.raises(v.ConsistencyError):
        v.verify_add_checkpoint(led.prove_consistency(7).to_text(), keys.trusted,
                                ref.mth(ents[:6]))


def test_proofs_at_sizes_without_a_stored_checkpoint(built: Any, tmp_path: Path) -> None:
    """Sizes inside a committed batch get a freshly signed checkpoint that agrees with the
    stored ones; a read-only handle cannot sign one and says so."""
    led, keys, ents = built
    stored = {int.from_bytes(k, "big") for k in raw_rows(led, "checkpoints")}
    missing = [n for n in range(1, len(ents) + 1) if n not in stored]
    assert missing
    for n in missing:
        proof = led.prove_inclusion(0, size=n)
        assert v.verify_tlog_proof(proof.to_text(), ents[0], keys.trusted).size == n
    ro = Ledger.open(led.path)
    try:
        with pytest.raises(ValueError):
            ro.prove_inclusion(0, size=missing[0])
        last = max(stored)
        assert ro.prove_inclusion(0, size=last) == led.prove_inclusion(0, size=last)
    finally:
        ro.close()


def test_no_signed_checkpoint_for_an_uncommitted_batch(tmp_path: Path) -> None:
    """Inside a batch, proofs and bundles that would need a head over its uncommitted
    writes are refused, so an aborted batch can never leave a forked signed head behind."""
    keys = Keys()
    with make_ledger(tmp_path / "s", keys) as led:
        ref_ = register(led, "fraud")
        committed = led.size
        before = fingerprint(led)
        with pytest.raises(RuntimeError):
            with led.batch():
                snap = led.record("fraud", event="retrained")
                with pytest.raises(ValueError):
                    led.prove_inclusion(snap.snapshot_hash)
                with pytest.raises(ValueError):
                    led.prove_consistency(committed)
                with pytest.raises(ValueError):
                    led.export_bundle()
                # what is already committed can still be proven
                p = led.prove_inclusion(ref_.snapshot.snapshot_hash, size=committed)
                v.verify_tlog_proof(p.to_text(), led.entry(ref_.snapshot.index), keys.trusted)
                raise RuntimeError("abort")
        assert fingerprint(led) == before
        led.record("fraud", event="other")
        cp = v.Checkpoint.parse_note(led.checkpoint(), keys.trusted)
        assert cp.root == ref.mth(entries(led))


# -- bundles ----------------------------------------------------------------------------


def oracle(ents: list[bytes], t: datetime, size: int | None = None) -> v.Inventory:
    """Independent replay of the entries (of the first ``size``) recorded by ``t``."""
    ns = v.to_ns(t)
    prefix = [e for e in ents[:size] if recorded_at(e) <= ns]
    return v.replay(prefix)


def check_bundle(led: Ledger, keys: Keys, ents: list[bytes], t: datetime, *,
                 size: int | None = None, trusted_size: int | None = None) -> None:
    """export_bundle(at=t, ...) verifies and proves exactly the oracle's inventory."""
    expect = oracle(ents, t, size)
    t_ns = v.to_ns(t)
    if size is not None:
        cp = v.Checkpoint.parse_note(led.prove_inclusion(0, size=size).checkpoint, keys.trusted)
        assert cp.time is not None
        if t_ns > cp.time:  # that checkpoint cannot prove a later time
            with pytest.raises(ValueError, match="cannot prove"):
                led.export_bundle(at=t, size=size, trusted_size=trusted_size)
            return
    try:
        bundle = led.export_bundle(at=t, size=size, trusted_size=trusted_size)
    except ValueError as exc:  # only a time after the log's clock is refused
        assert size is None and "in the future" in str(exc), exc
        assert t_ns > v.to_ns(led._clock.now)  # type: ignore[union-attr]
        return
    trusted = None
    if trusted_size is not None:
        note = led.prove_inclusion(0, size=trusted_size).checkpoint
        trusted = v.Checkpoint.parse_note(note, keys.trusted)
    out = v.verify_bundle(bundle, keys.trusted, trusted=trusted)
    assert out.size == expect.size and out.time == v.to_ns(t)
    assert out.checkpoint.size == (size or len(ents))
    assert dict(out.models) == dict(expect.models)
    if size is None:
        assert led.inventory_at(t) == dict(out.models)


def test_bundles_at_every_boundary(built: Any) -> None:
    """At, just before and after every recorded time, and outside the log, bundles agree."""
    led, keys, ents = built
    times = sorted({v.from_ns(recorded_at(e)) for e in ents})
    probes = [T0 - timedelta(days=1), datetime(1970, 1, 1, tzinfo=timezone.utc)]
    for t in times:
        probes += [t - US, t, t + US]
    probes.append(times[-1] + timedelta(days=365))
    for t in probes:
        check_bundle(led, keys, ents, t)


def test_bundles_with_size_and_trusted(built: Any) -> None:
    """size= cuts the checkpoint; trusted_size= adds a proof verify_bundle(trusted=) checks."""
    led, keys, ents = built
    mid = v.from_ns(recorded_at(ents[20]))
    for size in (1, 2, 15, 21, 30, 40):
        for trusted_size in (None, 1, size // 2 or 1, size):
            for t in (mid - US, mid, mid + timedelta(days=1)):
                check_bundle(led, keys, ents, t, size=size, trusted_size=trusted_size)


def test_bundle_default_covers_the_log(built: Any) -> None:
    """export_bundle() is the whole log as of its last entry."""
    led, keys, ents = built
    out = v.verify_bundle(led.export_bundle(), keys.trusted)
    assert out.size == len(ents) and out.time == recorded_at(ents[-1])
    assert dict(out.models) == led.inventory_at()
    last15 = v.verify_bundle(led.export_bundle(size=15), keys.trusted)
    assert last15.size == 15 and last15.time == recorded_at(ents[14])


def test_bundle_trusted_checks_bite(built: Any) -> None:
    """A bundle without a proof from the trusted size, or older than it, is refused."""
    led, keys, _ = built
    trusted = v.Checkpoint.parse_note(led.prove_inclusion(0, size=30).checkpoint, keys.trusted)
    with pytest.raises(v.ConsistencyError):
        v.verify_bundle(led.export_bundle(), keys.trusted, trusted=trusted)
    with pytest.raises(v.ConsistencyError):
        v.verify_bundle(led.export_bundle(size=20, trusted_size=10), keys.trusted,
                        trusted=trusted)
    with pytest.raises(v.SignatureError):
        v.verify_bundle(led.export_bundle(), [ActorKey.generate(ORIGIN).key])


def test_export_bundle_bad_arguments(built: Any) -> None:
    """Sizes out of range, naive and pre-1970 times raise ValueError."""
    led = built[0]
    for kwargs in ({"size": 0}, {"size": 41}, {"trusted_size": 0}, {"trusted_size": 41},
                   {"size": 10, "trusted_size": 11}, {"at": datetime(2024, 1, 1)},
                   {"at": datetime(1969, 12, 31, tzinfo=timezone.utc)}):
        with pytest.raises(ValueError):
            led.export_bundle(**kwargs)  # type: ignore[arg-type]


def test_long_runs_of_plain_events(tmp_path: Path) -> None:
    """Point-in-time states stay exact across long runs of plain events on one model."""
    keys = Keys()
    with make_ledger(tmp_path / "s", keys) as led:
        register(led, "m")
        with led.batch():
            for i in range(75):
                led.record("m", event="note" if i % 40 else "validated", payload={"i": i})
        led.update("m", tier="low")
        for i in range(5):
            led.record("m", event="note")
        ents = entries(led)
        for e in ents[1:]:
            t = v.from_ns(recorded_at(e))
            assert led.inventory_at(t) == dict(oracle(ents, t).models)
        check_bundle(led, keys, ents, v.from_ns(recorded_at(ents[50])))
        assert led.audit() == len(ents)


# -- the property over random histories --------------------------------------------------

NAMES = ("m0", "m1", "m2", "g0", "late")  # all but "late" are registered up front
TIERS = ("high", "low")
EVENTS = ("retrained", "validated", "note")
STEPS = (timedelta(0), US, MINUTE, timedelta(hours=1), -timedelta(minutes=30))
KINDS = ("register", "record", "record", "update", "retire", "tag", "tag", "member_add",
         "member_add", "member_remove", "grant", "revoke", "batch")

# (kind, a, b, actor: admin / granted pipeline / ungranted ops-admin, clock step)
op_strategy = st.tuples(st.sampled_from(KINDS), st.integers(0, 4), st.integers(0, 4),
                        st.sampled_from([0, 0, 1, 1, 2]), st.integers(0, len(STEPS) - 1))


def apply_op(led: Ledger, actors: list[ActorKey], op: tuple[str, int, int, int, int]) -> None:
    """Run one random operation as actor ``op[3]``; refusals propagate."""
    kind, a, b, who, _ = op
    led.signer = actors[who]
    name, other = NAMES[a], NAMES[b]
    if kind == "register":
        register(led, name, tier=TIERS[b // 4])  # b == 4: other fields, refused if known
    elif kind == "record":
        led.record(name, event=EVENTS[b % 3], payload={"b": b})
    elif kind == "update":
        led.update(name, **({"tier": TIERS[b % 2]} if b < 2 else {"owner": f"team-{b}"}))
    elif kind == "retire":
        led.retire(name)
    elif kind == "tag":
        owner = other if b == 4 else name  # b == 4: another model's snapshot, refused
        hist = [s for s in led.history(owner) if s.op in ("register", "event")]
        target = hist[-1 - b % len(hist)].snapshot_hash if hist else None
        led.tag(name, f"t{b % 2}", snapshot=target)
    elif kind == "member_add":
        led.add_member(name, other, role=None if b % 2 else "challenger")
    elif kind == "member_remove":
        members = sorted(led.members(name))
        led.remove_member(name, members[b % len(members)] if members and b < 4 else other)
    elif kind == "grant":
        led.grant(actors[1 + b % 2].vkey, role=("writer", "admin")[a % 2])
    elif kind == "revoke":
        led.revoke(("ml-pipeline", "ops-admin", "risk-admin")[b % 3])
    elif kind == "batch":
        with led.batch():
            register(led, "late")
            led.record(name, event="note")
            led.record(other, event=EVENTS[a % 3])
            if a == b:
                led.tag(name, "batched")


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=st.lists(op_strategy, min_size=8, max_size=40), data=st.data())
def test_inventory_at_equals_verified_bundle(ops: list[Any], data: st.DataObject) -> None:
    """For random histories and times, inventory_at(t) == the verified bundle's models ==
    an independent replay; refused operations change nothing."""
    keys = Keys()
    actors = [keys.admin, ActorKey.generate("ml-pipeline"), ActorKey.generate("ops-admin")]
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        with make_ledger(Path(tmp) / "s", keys, clock) as led:
            led.grant(actors[1].vkey, role="writer")
            for name in NAMES[:-1]:
                register(led, name)
            for op in ops:
                clock.step = STEPS[op[4]]
                before = fingerprint(led)
                try:
                    apply_op(led, actors, op)
                except (v.RuleError, v.AuthorizationError):
                    assert fingerprint(led) == before
            led.signer = keys.admin
            ents = entries(led)
            event(f"entries: {len(ents) // 10 * 10}+")
            full = v.replay(ents)
            assert led.inventory_at() == dict(full.models)
            assert full.timelines is not None
            for name, state in full.models.items():
                assert [s.snapshot_hash for s in led.history(name)] == [
                    item.snapshot for item in full.timelines[name]]
                assert {k: t.target for k, t in led.tags(name).items()} == state.tags
                assert led.members(name) == state.members
            times = sorted({recorded_at(e) for e in ents})
            probes = [T0 - timedelta(days=1), v.from_ns(times[-1]) + timedelta(days=1)]
            for ns in times:
                probes += [v.from_ns(ns) - US, v.from_ns(ns)]
            for t in probes:
                check_bundle(led, keys, ents, t)
            for _ in range(3):
                size = data.draw(st.integers(1, len(ents)), label="size")
                trusted = data.draw(st.none() | st.integers(1, size), label="trusted")
                t = v.from_ns(data.draw(st.sampled_from(times), label="t")) + data.draw(
                    st.sampled_from([-US, timedelta(0), US]), label="dt")
                check_bundle(led, keys, ents, t, size=size, trusted_size=trusted)
            assert led.audit() == len(ents)
