"""Issue 9 on the writer's side: time bounded by signed checkpoints (point 1), a statement
belongs to one log (point 3), names and retirement through the Ledger API (point 4), and
the writer checks and stores the same bytes (point 6)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import verifier as v
from ledger import ActorKey, Ledger, sign_statement
from ledger.statements import build_signed
from tests.ledger_support import ORIGIN, T0, Clock, Keys, fingerprint, register

JUNE_10 = datetime(2025, 6, 10, tzinfo=timezone.utc)
MARCH_1 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def new_ledger(tmp: Path, clock: Clock, keys: Keys | None = None, name: str = "s") -> Ledger:
    keys = keys or Keys()
    return Ledger.create(tmp / name, origin=ORIGIN, log_key=keys.log, admin=keys.admin,
                         clock=clock)


def unchanged(led: Ledger, exc: type[BaseException], fn: object,
              match: str | None = None) -> None:
    before = fingerprint(led)
    with pytest.raises(exc, match=match):
        fn()  # type: ignore[operator]
    assert fingerprint(led) == before
    assert led.audit() == led.size


# -- point 1: time is bounded by signed data only ----------------------------------------


def test_point1_checkpoints_carry_the_log_time(tmp_path: Path) -> None:
    """Every stored checkpoint carries its time; it lies between its last entry and the
    next, and the next write is recorded after it."""
    clock = Clock(start=MARCH_1)
    led = new_ledger(tmp_path, clock)
    register(led, "fraud")
    cp = v.Checkpoint.parse_note(led.checkpoint(), [v.VerifierKey.parse(led.log_vkey)])
    last = v.parse_entry(led.entry(led.size - 1)).entry.recorded_at
    assert cp.time == last
    clock.now -= timedelta(days=1)  # the clock steps back: later entries still come after
    snap = led.record("fraud", "retrained")
    assert v.parse_entry(led.entry(snap.index)).entry.recorded_at > cp.time
    assert led.audit() == led.size


def test_point1_export_refuses_a_future_time(tmp_path: Path) -> None:
    """`export --at 2030-01-01` no longer verifies as 'as of 2030': it is refused."""
    led = new_ledger(tmp_path, Clock(start=MARCH_1))
    register(led, "fraud")
    with pytest.raises(ValueError, match="in the future"):
        led.export_bundle(at=datetime(2030, 1, 1, tzinfo=timezone.utc))


def test_point1_export_signs_a_fresh_checkpoint_with_the_log_key(tmp_path: Path) -> None:
    """A time after the latest checkpoint: the ledger holding the log key signs a fresh one,
    and the bundle proves exactly up to it."""
    clock = Clock(start=MARCH_1)
    keys = Keys()
    led = new_ledger(tmp_path, clock, keys)
    register(led, "fraud")
    old_note = led.checkpoint()
    clock.now += timedelta(days=30)
    at = clock.now - timedelta(days=1)
    out = v.verify_bundle(led.export_bundle(at=at), keys.trusted)
    assert out.time == v.to_ns(at) <= out.proven_until == out.checkpoint_time
    assert led.checkpoint() != old_note and led.checkpoint() == out.checkpoint.note
    assert "up to " + v.timeutil.iso(v.to_ns(at)) in out.time_statement()
    assert led.audit() == led.size
    # a write after it is recorded after the fresh checkpoint's time
    clock.now = v.from_ns(out.checkpoint_time) - timedelta(hours=1)  # a clock gone back
    snap = led.record("fraud", "retrained")
    assert v.parse_entry(led.entry(snap.index)).entry.recorded_at > out.checkpoint_time


def test_point1_read_only_export_refuses_a_time_after_its_checkpoint(tmp_path: Path) -> None:
    """Without the log key no fresh checkpoint can be signed: the export is refused."""
    clock = Clock(start=MARCH_1)
    led = new_ledger(tmp_path, clock)
    register(led, "fraud")
    led.close()
    with Ledger.open(tmp_path / "s", clock=clock) as ro:
        clock.now += timedelta(days=3)
        with pytest.raises(ValueError, match="log key"):
            ro.export_bundle(at=clock.now - timedelta(days=1))
        ro.export_bundle()  # its own checkpoint's time is fine


def test_point1_an_older_checkpoint_cannot_prove_a_later_date(tmp_path: Path) -> None:
    """export_bundle(at=later, size=old) hid everything recorded in between: refused."""
    clock = Clock(start=MARCH_1)
    led = new_ledger(tmp_path, clock)
    register(led, "fraud")
    old = led.size
    for i in range(3):
        led.record("fraud", "retrained", {"run": i})
    with pytest.raises(ValueError, match="cannot prove"):
        led.export_bundle(at=clock.now, size=old)


def test_point1_a_date_before_genesis_is_reported_as_such(tmp_path: Path) -> None:
    keys = Keys()
    led = new_ledger(tmp_path, Clock(start=MARCH_1), keys)
    register(led, "fraud")
    out = v.verify_bundle(led.export_bundle(at=MARCH_1 - timedelta(days=30)), keys.trusted)
    assert out.before_genesis and out.size == 0 and not out.models
    assert out.genesis_at == v.parse_entry(led.entry(0)).entry.recorded_at
    assert "before the log's genesis" in out.time_statement()
    assert out.to_json()["at"]["before_genesis"] is True


def test_point1_backdated_write_refused_by_the_writer(tmp_path: Path) -> None:
    """A validation signed on 10 June, submitted while the log's clock says 1 March, is
    refused: it cannot make a bundle 'as of 31 March' show the model validated."""
    clock = Clock(start=MARCH_1 - timedelta(days=1), step=timedelta(seconds=1))
    led = new_ledger(tmp_path, clock)
    register(led, "fraud")
    signed = sign_statement(led.signer, ORIGIN, "event", log_id=led.log_id,  # type: ignore
                            claimed_at=JUNE_10, model="fraud", event_type="validated",
                            payload={})
    unchanged(led, v.ChainError, lambda: led.submit(signed), "back-dating")


def test_point1_statement_held_back_longer_than_the_window_refused(tmp_path: Path) -> None:
    clock = Clock(start=JUNE_10, step=timedelta(seconds=1))
    led = new_ledger(tmp_path, clock)
    register(led, "fraud")
    late = sign_statement(led.signer, ORIGIN, "event", log_id=led.log_id,  # type: ignore
                          claimed_at=JUNE_10 - timedelta(days=2), model="fraud",
                          event_type="retrained", payload={})
    unchanged(led, v.ChainError, lambda: led.submit(late), "claim_window")
    ok = sign_statement(led.signer, ORIGIN, "event", log_id=led.log_id,  # type: ignore
                        claimed_at=JUNE_10 + timedelta(minutes=4), model="fraud",
                        event_type="retrained", payload={})  # within the 5-minute skew
    assert led.submit(ok) is not None


def test_point1_claim_parameters_are_fixed_at_genesis(tmp_path: Path) -> None:
    keys = Keys()
    led = Ledger.create(tmp_path / "s", origin=ORIGIN, log_key=keys.log, admin=keys.admin,
                        clock=Clock(), claim_skew=timedelta(0), claim_window=timedelta(hours=1))
    genesis = v.parse_entry(led.entry(0)).statement
    assert isinstance(genesis, v.Genesis)
    assert (genesis.claim_skew, genesis.claim_window) == (0, 3_600 * 10**9)
    with pytest.raises(v.RuleError, match="at most"):
        Ledger.create(tmp_path / "t", origin=ORIGIN, log_key=keys.log, admin=keys.admin,
                      clock=Clock(), claim_window=timedelta(days=40))
    assert not (tmp_path / "t" / "data.mdb").exists() or Ledger.open(tmp_path / "t").size == 0


# -- point 3: a statement belongs to one log ---------------------------------------------


def test_point3_statement_from_another_log_with_the_same_origin_refused(tmp_path: Path) -> None:
    """Staging and production (or a store re-created after a loss): same origin, same
    pipeline key granted in both; a statement lifted from one is refused by the other."""
    keys = Keys()
    pipe = ActorKey.generate("ml-pipeline")
    a = new_ledger(tmp_path, Clock(), keys, "a")
    b = new_ledger(tmp_path, Clock(), keys, "b")
    assert a.log_id != b.log_id and a.origin == b.origin
    for led in (a, b):
        led.grant(pipe.vkey)
        register(led, "fraud")
    lifted = sign_statement(pipe, ORIGIN, "event", log_id=a.log_id, claimed_at=T0,
                            model="fraud", event_type="validated", payload={})
    assert a.submit(lifted) is not None
    unchanged(b, v.RuleError, lambda: b.submit(lifted), "belongs to one log")
    assert v.parse_entry(a.entry(a.size - 1)).statement.log == a.log_id  # type: ignore


# -- point 4: names and retirement through the API ---------------------------------------


def test_point4_lookalike_and_bidi_names_refused_by_the_writer(tmp_path: Path) -> None:
    led = new_ledger(tmp_path, Clock())
    for bad in ("fraud_sc\u043ering", "fraud_scoring\u202e", "fraud\u200bscoring"):
        unchanged(led, ValueError, lambda b=bad: register(led, b), "name")  # type: ignore
    register(led, "скоринг_мошенничества")  # one script is fine


def test_point4_plain_event_named_like_a_tag_move_refused(tmp_path: Path) -> None:
    """A plain event 'tag_moved' was read back by tags() as a tag move: now refused."""
    led = new_ledger(tmp_path, Clock())
    register(led, "fraud")
    register(led, "other")
    target = led.latest("other").snapshot_hash  # type: ignore[union-attr]
    unchanged(led, v.RuleError, lambda: led.record(
        "fraud", "tag_moved", {"tag": "production", "target": target}), "reserved")
    unchanged(led, ValueError, lambda: led.record("fraud", "Deployed"), "lower-case")
    assert led.tags("fraud") == {}


def test_point4_retired_model_takes_only_a_reactivation(tmp_path: Path) -> None:
    led = new_ledger(tmp_path, Clock())
    register(led, "fraud")
    led.retire("fraud", reason="replaced")
    unchanged(led, v.RuleError, lambda: led.record("fraud", "retrained"), "retired")
    unchanged(led, v.RuleError, lambda: led.tag("fraud", "production"), "retired")
    unchanged(led, v.RuleError, lambda: led.retire("fraud"), "retired")
    led.record("fraud", "reactivated", {"reason": "back in use"})
    assert led.inventory_at()["fraud"].status == "active"
    led.record("fraud", "retrained")
    unchanged(led, v.RuleError, lambda: led.record("fraud", "reactivated"), "not retired")


# -- point 6: the writer checks and stores the same bytes ---------------------------------


def test_point6_submit_takes_bytes_only(tmp_path: Path) -> None:
    """A pre-parsed Signed whose statement and bytes differ was checked on one and stored as
    the other (a writer granting an admin key); submit now takes bytes only."""
    led = new_ledger(tmp_path, Clock())
    pipe = ActorKey.generate("ml-pipeline")
    led.grant(pipe.vkey)
    harmless = build_signed(pipe, ORIGIN, "event", log_id=led.log_id, claimed_at=T0,
                            model="x", event_type="e", payload={})
    evil = build_signed(pipe, ORIGIN, "grant", log_id=led.log_id, claimed_at=T0,
                        key=ActorKey.generate("rogue").vkey, role="admin")
    mixed = harmless._replace(data=evil.data, sig=evil.sig)
    for bad in (mixed, evil, evil.data.decode()):
        unchanged(led, TypeError, lambda b=bad: led.submit(b))  # type: ignore[arg-type]
    unchanged(led, v.AuthorizationError, lambda: led.submit(evil.envelope()))


def test_point6_built_statements_are_parsed_back_from_their_bytes() -> None:
    """What the ledger checks for its own writes is what the bytes say, not the object the
    caller built."""
    actor = ActorKey.generate("ml-pipeline")
    s = build_signed(actor, ORIGIN, "event", log_id="ab" * 32, claimed_at=T0, model="m",
                     event_type="e", payload={"b": 1, "a": [1.5, "x"]})
    assert s.statement == v.parse_statement(s.data)
    assert s.statement is not None and v.statement_bytes(s.statement) == s.data
