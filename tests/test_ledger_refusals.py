"""Refused writes raise the exact typed error and leave the store unchanged
(size, root and latest checkpoint equal before and after; audit still passes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

import verifier as v
from ledger import ActorKey, Ledger, sign_statement
from tests.ledger_support import ORIGIN, T0, Clock, Keys, fingerprint, make_ledger, register


@pytest.fixture
def pipe() -> ActorKey:
    return ActorKey.generate("ml-pipeline")


@pytest.fixture
def ledger(path: Path, keys: Keys, clock: Clock, pipe: ActorKey) -> Iterator[Ledger]:
    """A ledger with model 'fraud' (one event) and a granted writer 'ml-pipeline'."""
    led = make_ledger(path, keys, clock)
    led.grant(pipe.vkey, role="writer")
    register(led, "fraud")
    register(led, "churn")
    led.record("fraud", event="retrained")
    yield led
    led.close()


def refused(ledger: Ledger, exc: type[BaseException], fn: Callable[[], Any]) -> BaseException:
    """Run ``fn``; it must raise exactly ``exc`` and change nothing."""
    before = fingerprint(ledger)
    with pytest.raises(exc) as info:
        fn()
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    assert fingerprint(ledger) == before
    assert ledger.audit() == before[0]
    return info.value


_LOG_ID = {"id": "0" * 64}


@pytest.fixture(autouse=True)
def _log_id(request: pytest.FixtureRequest) -> None:
    """event() statements name the log of the test's ledger."""
    if "ledger" in request.fixturenames:
        _LOG_ID["id"] = request.getfixturevalue("ledger").log_id


def event(actor: ActorKey, origin: str = ORIGIN, **over: Any) -> bytes:
    """A signed event statement about 'fraud'."""
    fields: dict[str, Any] = dict(model="fraud", event_type="retrained", payload={})
    fields.update(over)
    return sign_statement(actor, origin, "event", log_id=_LOG_ID["id"], claimed_at=T0, **fields)


def envelope(signed: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.json.decode(signed)
    return doc


def reseal(doc: dict[str, Any]) -> bytes:
    return msgspec.json.encode(doc, order="sorted")


def foreign(actor: ActorKey, doc: dict[str, Any]) -> bytes:
    """A statement built and signed without sign_statement's checks (a foreign client)."""
    data = v.canonical_json(doc)
    return v.signed_statement_bytes(data, actor.key_id, actor.sign(data))


def base(actor: ActorKey, op: str = "event", **body: Any) -> dict[str, Any]:
    return {"v": 2, "op": op, "id": "foreign-statement-0001", "actor": actor.name,
            "origin": ORIGIN, "log": _LOG_ID["id"], "claimed_at": v.to_ns(T0), **body}


# -- who may write ------------------------------------------------------------------------


def test_unknown_actor(ledger: Ledger) -> None:
    """A key never granted is refused with AuthorizationError."""
    stranger = ActorKey.generate("stranger")
    refused(ledger, v.AuthorizationError, lambda: ledger.submit(event(stranger)))


def test_other_key_under_a_granted_name(ledger: Ledger) -> None:
    """A second key claiming a granted actor's name is refused."""
    impostor = ActorKey.generate("ml-pipeline")
    refused(ledger, v.AuthorizationError, lambda: ledger.submit(event(impostor)))


def test_revoked_key(ledger: Ledger, pipe: ActorKey) -> None:
    """After revoke, the key's statements (even ones signed before) are refused."""
    early = event(pipe)
    ledger.submit(event(pipe))
    ledger.revoke("ml-pipeline")
    refused(ledger, v.AuthorizationError, lambda: ledger.submit(early))
    refused(ledger, v.AuthorizationError, lambda: ledger.submit(event(pipe)))


def test_forged_signature(ledger: Ledger, pipe: ActorKey) -> None:
    """A flipped signature byte, a signature by another key, or an edited statement fail."""
    doc = envelope(event(pipe))
    sig = bytearray(v.encoding.b64decode(doc["sig"], "sig"))
    for pos in (0, 31, 63):
        bad = bytearray(sig)
        bad[pos] ^= 0x01
        forged = reseal({**doc, "sig": v.encoding.b64encode(bytes(bad))})
        refused(ledger, v.SignatureError, lambda f=forged: ledger.submit(f))
    stranger = ActorKey.generate("stranger")
    stolen = reseal({**doc, "sig": v.encoding.b64encode(stranger.sign(doc["statement"].encode()))})
    refused(ledger, v.SignatureError, lambda: ledger.submit(stolen))
    edited = reseal({**doc, "statement": doc["statement"].replace('"payload":{}',
                                                                  '"payload":{"x":1}')})
    assert edited != reseal(doc)
    refused(ledger, v.SignatureError, lambda: ledger.submit(edited))


def test_admin_name_with_a_forged_signature(ledger: Ledger, keys: Keys) -> None:
    """A grant claiming the admin (right key ID) but signed by someone else is refused."""
    stranger = ActorKey.generate("stranger")
    st = base(keys.admin, "grant", key=stranger.vkey, role="admin")
    data = v.canonical_json(st)
    forged = v.signed_statement_bytes(data, keys.admin.key_id, stranger.sign(data))
    refused(ledger, v.SignatureError, lambda f=forged: ledger.submit(f))


def test_writer_cannot_do_admin_work(ledger: Ledger, path: Path, keys: Keys,
                                     pipe: ActorKey) -> None:
    """grant and revoke by a writer raise AuthorizationError."""
    with Ledger.open(path, log_key=keys.log, signer=pipe) as as_pipe:
        refused(ledger, v.AuthorizationError,
                lambda: as_pipe.grant(ActorKey.generate("friend").vkey, role="admin"))
        refused(ledger, v.AuthorizationError, lambda: as_pipe.revoke("risk-admin"))
        refused(ledger, v.AuthorizationError, lambda: as_pipe.revoke("ml-pipeline"))
        assert as_pipe.record("fraud", event="retrained").actor == "ml-pipeline"


def test_keyring_rules(ledger: Ledger, keys: Keys) -> None:
    """No second active key per actor, no revoking the unknown or the last admin."""
    refused(ledger, v.RuleError,
            lambda: ledger.grant(ActorKey.generate("ml-pipeline").vkey))
    refused(ledger, v.RuleError, lambda: ledger.revoke("nobody"))
    refused(ledger, v.RuleError, lambda: ledger.revoke("risk-admin"))
    refused(ledger, ValueError, lambda: ledger.grant(ActorKey.generate("x").vkey, role="root"))


def test_second_genesis(ledger: Ledger, keys: Keys) -> None:
    """A genesis statement after the first entry is a ChainError."""
    signed = sign_statement(keys.admin, ORIGIN, "genesis", log_id=None, claimed_at=T0, claim_skew=0, claim_window=0,
                            log_key=keys.log.vkey, admin_key=keys.admin.vkey)
    refused(ledger, v.ChainError, lambda: ledger.submit(signed))


# -- malformed and oversize input ---------------------------------------------------------


def test_malformed_envelopes(ledger: Ledger, pipe: ActorKey) -> None:
    """Garbage, non-canonical or truncated envelopes raise MalformedInputError; str TypeError."""
    good = event(pipe)
    doc = envelope(good)
    for bad in (b"", b"not json", b"{}", good[:-1], good + b" ",
                msgspec.json.encode(dict(reversed(doc.items()))),  # keys not sorted
                good.replace(b'","', b'", "', 1),
                reseal({**doc, "extra": 1}),
                reseal({**doc, "sig": doc["sig"][:-4]}),
                reseal({**doc, "key_id": "XYZ"}),
                reseal({**doc, "statement": doc["statement"].replace('{"actor"', '{ "actor"')})):
        refused(ledger, v.MalformedInputError, lambda b=bad: ledger.submit(b))
    refused(ledger, TypeError, lambda: ledger.submit(good.decode()))  # type: ignore[arg-type]


def test_oversize_payload(ledger: Ledger, pipe: ActorKey) -> None:
    """Over 65,535 bytes: ValueError when signing, MalformedInputError when submitted."""
    refused(ledger, ValueError, lambda: ledger.record("fraud", event="e",
                                                      payload={"x": "a" * 70_000}))
    refused(ledger, ValueError, lambda: event(pipe, payload={"x": "a" * 65_300}))
    huge = foreign(pipe, base(pipe, model="fraud", event_type="e", payload={"x": "a" * 70_000}))
    assert len(huge) > v.MAX_ENTRY_SIZE
    refused(ledger, v.MalformedInputError, lambda: ledger.submit(huge))


def test_envelope_that_fits_but_its_entry_does_not(ledger: Ledger, pipe: ActorKey) -> None:
    """An envelope under the limit whose entry would exceed it is MalformedInputError, and
    the largest one that fits is accepted."""
    def sized(n: int) -> bytes:
        return foreign(pipe, {**base(pipe, model="fraud", event_type="e",
                                     payload={"x": "a" * n}), "id": f"foreign-size-{n:08d}"})

    n = 64_900
    while True:
        signed, before = sized(n), ledger.size
        try:
            ledger.submit(signed)
        except v.MalformedInputError:
            break
        assert ledger.size == before + 1 and len(ledger.entry(before)) <= v.MAX_ENTRY_SIZE
        n += 40
    assert n > 64_900  # some large ones fitted
    assert len(signed) <= v.MAX_ENTRY_SIZE  # the envelope itself fit
    refused(ledger, v.MalformedInputError, lambda: ledger.submit(signed))


def test_nan_and_infinity(ledger: Ledger, pipe: ActorKey) -> None:
    """NaN or Infinity anywhere in a payload raises ValueError."""
    for bad in (float("nan"), float("inf"), -float("inf")):
        refused(ledger, ValueError, lambda b=bad: ledger.record("fraud", event="e",
                                                                payload={"x": [1, {"y": b}]}))
        refused(ledger, ValueError, lambda b=bad: event(pipe, payload={"x": b}))
        refused(ledger, ValueError, lambda b=bad: register(ledger, "new", metadata={"x": b}))


def nest(levels: int) -> dict[str, Any]:
    """A payload of ``levels`` containers: the object plus levels - 1 nested lists."""
    inner: Any = 0
    for _ in range(levels - 1):
        inner = [inner]
    return {"x": inner}


def test_nesting_depth(ledger: Ledger, pipe: ActorKey) -> None:
    """32 levels are accepted; 33 or more raise ValueError (MalformedInputError if submitted)."""
    refused(ledger, ValueError, lambda: ledger.record("fraud", event="e", payload=nest(33)))
    refused(ledger, ValueError, lambda: ledger.record("fraud", event="e", payload=nest(200)))
    deep = foreign(pipe, base(pipe, model="fraud", event_type="e", payload=nest(33)))
    refused(ledger, v.MalformedInputError, lambda: ledger.submit(deep))
    size = ledger.size
    assert ledger.record("fraud", event="e", payload=nest(32)).payload == nest(32)
    assert ledger.size == size + 1


def test_non_string_keys(ledger: Ledger) -> None:
    """Non-string keys raise ValueError at the top of a payload, TypeError deeper."""
    refused(ledger, ValueError, lambda: ledger.record("fraud", event="e", payload={1: "a"}))
    refused(ledger, TypeError, lambda: ledger.record("fraud", event="e",
                                                     payload={"a": {(1, 2): "b"}}))
    refused(ledger, TypeError, lambda: ledger.record("fraud", event="e", payload={"a": b"x"}))
    refused(ledger, ValueError, lambda: ledger.record("fraud", event="e", payload={"a": 2**64}))


def test_invalid_names_and_fields(ledger: Ledger) -> None:
    """Control characters, empty names and unknown ops are refused at signing (ValueError)."""
    refused(ledger, ValueError, lambda: register(ledger, "bad\nname"))
    refused(ledger, ValueError, lambda: register(ledger, ""))
    refused(ledger, ValueError, lambda: ledger.record("fraud", event=""))
    refused(ledger, ValueError, lambda: sign_statement(ledger.signer, ORIGIN, "delete", log_id=ledger.log_id,
                                                       claimed_at=T0))
    refused(ledger, ValueError, lambda: sign_statement(ledger.signer, ORIGIN, "event", log_id=ledger.log_id,
                                                       claimed_at=T0, model="fraud",
                                                       event_type="e", payload={},
                                                       statement_id="short"))


def test_names_too_long_for_the_store(ledger: Ledger) -> None:
    """A 200-character name over LMDB's key limit (UTF-8) is outside the name profile (at
    most 400 bytes, so writer and verifier agree): refused before anything is stored, and
    lookups of such names find nothing."""
    long = "\u4e2d" * 200  # 600 bytes
    assert len(long.encode()) > 511
    refused(ledger, ValueError, lambda: register(ledger, long))
    refused(ledger, ValueError, lambda: ledger.record(long, event="e"))
    refused(ledger, ValueError, lambda: ledger.add_member("fraud", long))
    for name in (long, ""):
        assert ledger.history(name) == [] and ledger.latest(name) is None
        assert ledger.tags(name) == {} and ledger.members(name) == {}
    fits = "\u4e2d" * 133  # 399 bytes
    ref = register(ledger, fits)
    ledger.record(fits, event="retrained")
    assert [s.event_type for s in ledger.history(fits)] == ["registered", "retrained"]
    assert ledger.inventory_at()[fits].model_hash == ref.model_hash
    with ledger.batch():  # a refusal inside a batch does not break it
        with pytest.raises(ValueError, match="400 bytes"):
            register(ledger, long)
        ledger.record(fits, event="again")
    assert ledger.audit() == ledger.size


# -- inventory rules --------------------------------------------------------------------


def test_unknown_model(ledger: Ledger) -> None:
    """Every write about an unregistered model raises RuleError."""
    refused(ledger, v.RuleError, lambda: ledger.record("ghost", event="retrained"))
    refused(ledger, v.RuleError, lambda: ledger.update("ghost", tier="low"))
    refused(ledger, v.RuleError, lambda: ledger.retire("ghost"))
    refused(ledger, v.RuleError, lambda: ledger.tag("ghost", "production"))
    target = ledger.latest("fraud").snapshot_hash
    refused(ledger, v.RuleError, lambda: ledger.tag("ghost", "production", snapshot=target))
    refused(ledger, v.RuleError, lambda: ledger.add_member("ghost", "fraud"))
    refused(ledger, v.RuleError, lambda: ledger.add_member("fraud", "ghost"))
    refused(ledger, v.RuleError, lambda: ledger.remove_member("ghost", "fraud"))


def test_bad_updates(ledger: Ledger) -> None:
    """'updated' must name known fields with valid values."""
    refused(ledger, v.RuleError, lambda: ledger.update("fraud"))
    refused(ledger, v.RuleError, lambda: ledger.record("fraud", "updated", {"name": "x"}))
    refused(ledger, v.RuleError, lambda: ledger.update("fraud", tier="two\nlines"))
    refused(ledger, v.RuleError, lambda: ledger.update("fraud", tier=3))
    refused(ledger, v.RuleError, lambda: ledger.update("fraud", metadata=[1]))


def test_tag_target_of_another_model(ledger: Ledger) -> None:
    """A tag may only point at a registration or event of its own model."""
    other = ledger.latest("churn").snapshot_hash
    refused(ledger, v.RuleError, lambda: ledger.tag("fraud", "production", snapshot=other))
    moved = ledger.tag("fraud", "staging").moved.snapshot_hash  # a tag move is no target
    refused(ledger, v.RuleError, lambda: ledger.tag("fraud", "production", snapshot=moved))
    refused(ledger, v.RuleError, lambda: ledger.tag("fraud", "production", snapshot="ab" * 32))
    genesis = v.snapshot_hash(ledger.entry(0))
    refused(ledger, v.RuleError, lambda: ledger.tag("fraud", "production", snapshot=genesis))
    refused(ledger, ValueError, lambda: ledger.tag("fraud", "production", snapshot="xyz"))


def test_membership_rules(ledger: Ledger) -> None:
    """No duplicate members, no cycles, no removing a non-member."""
    ledger.add_member("fraud", "churn")
    refused(ledger, v.RuleError, lambda: ledger.add_member("fraud", "churn"))
    refused(ledger, v.RuleError, lambda: ledger.add_member("churn", "fraud"))
    refused(ledger, v.RuleError, lambda: ledger.add_member("fraud", "fraud"))
    refused(ledger, v.RuleError, lambda: ledger.remove_member("churn", "fraud"))


def test_statement_for_another_origin(ledger: Ledger, pipe: ActorKey) -> None:
    """A statement for another log is refused with RuleError."""
    refused(ledger, v.RuleError, lambda: ledger.submit(event(pipe, origin="other.example/x")))


def test_reused_statement_id(ledger: Ledger, pipe: ActorKey) -> None:
    """An id already logged with other content is a ChainError; the same bytes are a no-op."""
    first = sign_statement(pipe, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, statement_id="pipeline-run-0001",
                           model="fraud", event_type="retrained", payload={"run": 1})
    snap = ledger.submit(first)
    again = sign_statement(pipe, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, statement_id="pipeline-run-0001",
                           model="fraud", event_type="retrained", payload={"run": 2})
    refused(ledger, v.ChainError, lambda: ledger.submit(again))
    other_model = sign_statement(pipe, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0,
                                 statement_id="pipeline-run-0001", model="churn",
                                 event_type="retrained", payload={"run": 1})
    refused(ledger, v.ChainError, lambda: ledger.submit(other_model))
    assert ledger.submit(first) == snap


def test_refusal_inside_a_batch_is_typed_and_clean(ledger: Ledger, pipe: ActorKey) -> None:
    """Inside a batch a refusal raises the same type and the batch's other writes commit."""
    size = ledger.size
    with ledger.batch():
        ledger.record("fraud", event="a")
        for exc, fn in ((v.RuleError, lambda: ledger.record("ghost", event="a")),
                        (v.AuthorizationError,
                         lambda: ledger.submit(event(ActorKey.generate("stranger")))),
                        (v.MalformedInputError, lambda: ledger.submit(b"{}"))):
            with pytest.raises(exc) as info:
                fn()
            assert type(info.value) is exc
        ledger.record("fraud", event="b")
    assert ledger.size == size + 2 and ledger.audit() == size + 2


# -- time -------------------------------------------------------------------------------


def test_naive_datetimes(ledger: Ledger) -> None:
    """Naive datetimes are refused everywhere a time is taken."""
    naive = datetime(2024, 6, 1)
    refused(ledger, ValueError, lambda: ledger.inventory_at(naive))
    refused(ledger, ValueError, lambda: ledger.members("fraud", at=naive))
    refused(ledger, ValueError, lambda: ledger.groups("fraud", at=naive))
    refused(ledger, ValueError, lambda: ledger.export_bundle(at=naive))
    refused(ledger, ValueError, lambda: sign_statement(ledger.signer, ORIGIN, "event", log_id=ledger.log_id,
                                                       claimed_at=naive, model="fraud",
                                                       event_type="e", payload={}))
    refused(ledger, TypeError, lambda: ledger.inventory_at("2024-06-01"))  # type: ignore[arg-type]


def test_naive_clock(ledger: Ledger, path: Path, keys: Keys) -> None:
    """A clock returning naive datetimes makes every write raise ValueError."""
    with Ledger.open(path, log_key=keys.log, signer=keys.admin,
                     clock=lambda: datetime(2024, 6, 1)) as led:
        refused(ledger, ValueError, lambda: led.record("fraud", event="retrained"))
        refused(ledger, ValueError, lambda: register(led, "new"))
        refused(ledger, ValueError,
                lambda: led.submit(event(keys.admin)))  # the ledger's own time is naive too
        with pytest.raises(ValueError):
            with led.batch():
                led.record("fraud", event="retrained")
    assert ledger.audit() == ledger.size


def test_clock_before_1970(ledger: Ledger, path: Path, keys: Keys) -> None:
    """A clock before the epoch cannot sign a statement (ValueError)."""
    with Ledger.open(path, log_key=keys.log, signer=keys.admin,
                     clock=lambda: datetime(1960, 1, 1, tzinfo=timezone.utc)) as led:
        refused(ledger, ValueError, lambda: led.record("fraud", event="retrained"))


def test_clock_going_back_keeps_time_monotonic(ledger: Ledger, clock: Clock) -> None:
    """A clock stepping back is not a refusal: the entry gets the last recorded time."""
    last = ledger.latest("fraud").timestamp
    clock.now -= timedelta(days=1)
    snap = ledger.record("fraud", event="retrained")
    assert snap.timestamp == last and snap.claimed_at < last
    assert ledger.audit() == ledger.size
