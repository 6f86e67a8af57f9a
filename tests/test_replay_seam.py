"""The seam between the replay rules (``Replayer``) and their state (``ReplayState``).

A test double (``RecordingState``) implements the Protocol over plain dicts and records
every call. It stores models encoded and decodes a fresh copy on each read, as a store
does, so a change the rules make without ``put_model`` is lost and shows up as a
difference from ``Inventory``. The tests check that:

1. a Replayer over the double ends with the same state as an Inventory;
2. mypy accepts MemoryState (and the double) as a ReplayState, and refuses a half one;
3. a refused entry calls no write method of the state;
4. the signature strategy is called once per statement with (granted key, sig, exact
   statement bytes), in the same place in the order of checks; False is SignatureError,
   an exception propagates;
5. on random sequences of valid and invalid entries, both agree on every outcome and on
   the final state (hypothesis).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from tests.helpers import inventory_state
from tests.logsim import Log, Signer, sample_log
from tests.test_replay import SCENARIOS, Scenario, history
from verifier import (
    KeyRecord,
    LogParams,
    PolicyRecord,
    MemoryState,
    ModelState,
    ParsedEntry,
    Replayer,
    ReplayState,
    VerifierKey,
)

ROOT = Path(__file__).resolve().parent.parent
WRITES = frozenset({"set_params", "put_model", "add_key", "revoke_key", "set_policy",
                    "appended"})
_encode = msgspec.msgpack.encode
_decode_model = msgspec.msgpack.Decoder(ModelState).decode

Call = tuple[str, tuple[Any, ...]]


class RecordingState:
    """A ``ReplayState`` over dicts that records every call, reads included.

    Models are kept encoded and each read returns a new copy; key records are copied
    on read. Only what goes through the Protocol's writes is kept."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.p: LogParams | None = None
        self.n = 0
        self.last = 0
        self.models: dict[str, bytes] = {}
        self.keys: dict[str, KeyRecord] = {}
        self.key_history: list[KeyRecord] = []
        self.statement_ids: dict[str, int] = {}
        self.snapshot_owner: dict[str, str] = {}
        self.chains: dict[str, list[int]] = {}  # model -> indexes of its chain entries
        self.policy_record: PolicyRecord | None = None

    def _log(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    @property
    def params(self) -> LogParams | None:
        self._log("params")
        return self.p

    @property
    def size(self) -> int:
        self._log("size")
        return self.n

    @property
    def last_recorded_at(self) -> int:
        self._log("last_recorded_at")
        return self.last

    def model(self, name: str) -> ModelState | None:
        self._log("model", name)
        raw = self.models.get(name)
        return None if raw is None else _decode_model(raw)

    def statement_index(self, statement_id: str) -> int | None:
        self._log("statement_index", statement_id)
        return self.statement_ids.get(statement_id)

    def snapshot_model(self, snapshot: str) -> str | None:
        self._log("snapshot_model", snapshot)
        return self.snapshot_owner.get(snapshot)

    def active_key(self, actor: str) -> KeyRecord | None:
        self._log("active_key", actor)
        record = self.keys.get(actor)
        return None if record is None else dataclasses.replace(record)

    def admin_count(self) -> int:
        self._log("admin_count")
        return sum(1 for r in self.keys.values() if r.role == "admin")

    @property
    def policy(self) -> PolicyRecord | None:
        self._log("policy")
        return self.policy_record

    def set_policy(self, record: PolicyRecord) -> None:
        self._log("set_policy", record.index)
        self.policy_record = record

    def set_params(self, params: LogParams) -> None:
        self._log("set_params", params)
        assert self.p is None
        self.p = params

    def put_model(self, state: ModelState) -> None:
        self._log("put_model", state.name)
        self.models[state.name] = _encode(state)

    def add_key(self, record: KeyRecord) -> None:
        self._log("add_key", record.name)
        assert record.name not in self.keys
        self.keys[record.name] = record
        self.key_history.append(record)

    def revoke_key(self, actor: str, *, index: int, at: int, by: str,
                   reason: str | None) -> KeyRecord:
        self._log("revoke_key", actor, index, at, by, reason)
        record = self.keys.pop(actor)
        record.revoked_index, record.revoked_at = index, at
        record.revoked_by, record.reason = by, reason
        return record

    def appended(self, p: ParsedEntry, model: str | None, snapshot_of: str | None) -> None:
        self._log("appended", p.entry.index, model, snapshot_of)
        assert p.entry.index == self.n
        self.statement_ids[p.statement.id] = p.entry.index
        if snapshot_of is not None:
            assert snapshot_of == model
            self.snapshot_owner[p.snapshot_hash] = snapshot_of
        if model is not None:
            self.chains.setdefault(model, []).append(p.entry.index)
        self.n += 1
        self.last = p.entry.recorded_at

    def writes(self, since: int = 0) -> list[Call]:
        return [c for c in self.calls[since:] if c[0] in WRITES]


def _typed_states() -> list[ReplayState]:
    """Not a test: what mypy checks in ``test_mypy_accepts_memory_state_as_replay_state``."""
    s: ReplayState = MemoryState()
    r: ReplayState = RecordingState()
    replayers = [Replayer(s), Replayer(r, check_signature=v.check_signature)]
    return [x.state for x in replayers]


# -- comparing states --------------------------------------------------------------------------


def _rec(r: KeyRecord) -> tuple[Any, ...]:
    return (r.vkey, r.role, r.granted_index, r.granted_at, r.granted_by,
            r.revoked_index, r.revoked_at, r.revoked_by, r.reason)


def recorded_state(s: RecordingState) -> dict[str, Any]:
    """The double's state in the shape of ``inventory_state`` (timelines as indexes)."""
    models = {name: _decode_model(raw) for name, raw in s.models.items()}
    p = s.p
    return {
        "origin": None if p is None else p.origin,
        "log_key": None if p is None else p.log_key.vkey,
        "log_id": None if p is None else p.log_id,
        "claims": None if p is None else (p.claim_skew, p.claim_window),
        "size": s.n,
        "last_recorded_at": s.last,
        "keys": {name: _rec(r) for name, r in s.keys.items()},
        "key_history": [_rec(r) for r in s.key_history],
        "statement_ids": dict(s.statement_ids),
        "snapshot_owner": dict(s.snapshot_owner),
        "timelines": {name: list(ix) for name, ix in s.chains.items()},
        "models": {name: m.fields() for name, m in models.items()},
        "groups": {name: dict(m.groups) for name, m in models.items()},
    }


def memory_state(inv: v.Inventory) -> dict[str, Any]:
    """An Inventory's state in the same shape as ``recorded_state``."""
    out = inventory_state(inv)
    out["timelines"] = {name: [t.index for t in items]
                        for name, items in (inv.timelines or {}).items()}
    out["log_id"] = inv.log_id
    out["claims"] = None if inv.params is None else (inv.claim_skew, inv.claim_window)
    out["groups"] = {name: dict(m.groups) for name, m in inv.models.items()}
    return out


def outcome(apply: Callable[[bytes], object], data: bytes) -> tuple[str, str] | None:
    """None if the entry applies, else its error's class name and message."""
    try:
        apply(data)
    except v.VerifierError as exc:
        return type(exc).__name__, str(exc)
    return None


def both(entries: list[bytes]) -> tuple[v.Inventory, Replayer, RecordingState]:
    inv, state = v.Inventory(), RecordingState()
    rep = Replayer(state)
    for data in entries:
        inv.apply(data)
        rep.apply(data)
    return inv, rep, state


def membership_log() -> Log:
    """Groups of groups, removals, a retire and reactivate, a key rotation."""
    log = Log.create(seed="seam-groups")
    pipe, other = Signer("ml-pipeline", b"seam-pipe"), Signer("second-admin", b"seam-2nd")
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    log.submit(log.admin, "grant", key=other.vkey, role="admin")
    for name in ("a", "b", "c", "d"):
        log.submit(pipe, "register", name=name, owner="o", model_type="m", tier="t",
                   purpose="", status="active", metadata={})
    for group, member in (("a", "b"), ("b", "c"), ("a", "d"), ("d", "c")):
        log.submit(pipe, "member_add", group=group, member=member, role=None)
    log.submit(pipe, "member_remove", group="a", member="b", reason="split")
    log.submit(pipe, "member_add", group="a", member="b", role="back")
    log.submit(pipe, "event", model="d", event_type="retired", payload={})
    log.submit(pipe, "event", model="d", event_type="reactivated", payload={})
    log.submit(other, "revoke", name="risk-admin", reason="rotated")
    log.submit(other, "revoke", name="ml-pipeline", reason=None)
    log.submit(other, "grant", key=Signer("ml-pipeline", b"seam-pipe-2").vkey, role="writer")
    return log


LOGS: dict[str, Callable[[], list[bytes]]] = {
    "sample": lambda: sample_log(models=6, seed="seam")[0].entries,
    "history": lambda: history()[0].entries,
    "memberships": lambda: membership_log().entries,
}


# -- 1. same final state -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOGS))
def test_replayer_over_recording_state_matches_inventory(name: str) -> None:
    """A realistic log replayed through Replayer(double) ends with the Inventory's models,
    keys, key history, statement ids, snapshot owners, chains and log parameters."""
    entries = LOGS[name]()
    inv, rep, state = both(entries)
    assert rep.state is state
    assert recorded_state(state) == memory_state(inv)
    assert state.n == inv.size == len(entries)


def test_each_entry_reads_then_writes_and_ends_with_appended() -> None:
    """Per applied entry: the writes come after every read, ``appended`` is the last call
    and comes once, with the model whose chain grows and, for registrations and events
    only, that model as the snapshot's owner."""
    log, _ = sample_log(models=3, seed="seam")
    state = RecordingState()
    rep = Replayer(state)
    for data in log.entries:
        start = len(state.calls)
        p = rep.apply(data)
        calls = state.calls[start:]
        names = [c[0] for c in calls]
        first_write = min(i for i, n in enumerate(names) if n in WRITES)
        assert all(n in WRITES for n in names[first_write:]), names
        assert names.count("appended") == 1 and names[-1] == "appended"
        st_ = p.statement
        model = v.statement_model(st_)
        owner = model if isinstance(st_, (v.Register, v.Event)) else None
        assert calls[-1] == ("appended", (p.entry.index, model, owner))
        writes_of: dict[type[Any], list[str]] = {
            v.Genesis: ["set_params", "add_key"], v.Grant: ["add_key"],
            v.Revoke: ["revoke_key"], v.MemberAdd: ["put_model", "put_model"],
            v.MemberRemove: ["put_model", "put_model"],
        }
        expected_writes = writes_of.get(type(st_), ["put_model"])
        assert names[first_write:-1] == expected_writes


def test_memory_state_is_what_inventory_reads() -> None:
    """Inventory is a Replayer over a MemoryState; its attributes are the state's."""
    log, _ = sample_log(models=2, seed="seam")
    inv = v.replay(log.entries)
    assert isinstance(inv, Replayer) and isinstance(inv.state, MemoryState)
    assert inv.state is inv.memory
    mem = inv.memory
    assert inv.models is mem.models and inv.keys is mem.keys and inv.timelines is mem.timelines
    assert mem.params == LogParams(log.origin, log.log_key.key, v.snapshot_hash(log.entries[0]),
                                   inv.claim_skew, inv.claim_window)
    assert (inv.size, inv.last_recorded_at) == (mem.size, mem.last_recorded_at)
    with pytest.raises(AttributeError):
        inv.size = 0  # type: ignore[misc]  # read-only: the state is written by the rules


def test_empty_inventory_reads() -> None:
    inv = v.Inventory(keep_timelines=False)
    assert (inv.origin, inv.log_key, inv.log_id, inv.params) == (None, None, None, None)
    assert (inv.claim_skew, inv.claim_window, inv.size, inv.last_recorded_at) == (0, 0, 0, 0)
    assert inv.timelines is None and inv.models == {} and inv.key_history == []


# -- 2. typing ---------------------------------------------------------------------------------


HALF_STATE = '''
from verifier import MemoryState, ReplayState

class Half:
    """Reads only: no writes, so not a ReplayState."""
    params = None
    size = 0
    last_recorded_at = 0

ok: ReplayState = MemoryState()
bad: ReplayState = Half()
'''


@pytest.mark.slow
def test_mypy_accepts_memory_state_as_replay_state(tmp_path: Path) -> None:
    """mypy --strict passes this file (``_typed_states`` assigns MemoryState and the
    recording double to ReplayState) and refuses a class that lacks the writes."""
    half = tmp_path / "half_state.py"
    half.write_text(HALF_STATE)
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--no-error-summary", "--cache-dir", str(tmp_path / "cache"),
         str(Path(__file__)), str(half)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    bad_line = HALF_STATE.splitlines().index("bad: ReplayState = Half()") + 1
    assert len(errors) == 1, run.stdout  # none in this file, none for MemoryState
    assert errors[0].startswith(f"{half}:{bad_line}: error: Incompatible types in assignment")


# -- 3. a refused entry writes nothing ---------------------------------------------------------


KINDS = {  # the error classes the brief names, and a scenario of each
    "bad index": ("index_ahead", v.ChainError),
    "bad prev": ("wrong_prev_random", v.ChainError),
    "unknown actor": ("unknown_actor", v.AuthorizationError),
    "bad signature": ("forged_signature", v.SignatureError),
    "rule violation": ("register_twice", v.RuleError),
}


def test_scenarios_cover_each_kind() -> None:
    names = {build.__name__: expected for build, expected in SCENARIOS}
    for scenario, expected in KINDS.values():
        assert names[scenario] is expected


@pytest.mark.parametrize("build,expected", SCENARIOS, ids=[b.__name__ for b, _ in SCENARIOS])
def test_refused_entry_calls_no_write(build: Scenario, expected: type[Exception]) -> None:
    """Every refusal scenario of test_replay: the Replayer over the double raises the
    Inventory's exact class and message, and calls no write method of the state."""
    prefix, bad = build()
    inv, rep, state = both(prefix)
    want = outcome(inv.apply, bad)
    assert want is not None and want[0] == expected.__name__
    before, mark = recorded_state(state), len(state.calls)
    assert outcome(rep.apply, bad) == want
    assert state.writes(mark) == []
    assert recorded_state(state) == before == memory_state(inv)


def test_malformed_bytes_call_nothing() -> None:
    log, _ = sample_log(models=2, seed="seam")
    _, rep, state = both(log.entries[:-1])
    mark = len(state.calls)
    with pytest.raises(v.MalformedInputError):
        rep.apply(log.entries[-1][:-1])
    assert state.calls[mark:] == []


# -- 4. the signature strategy -----------------------------------------------------------------


class Strategy:
    """A SignatureCheck that records its calls and answers with ``answer``."""

    def __init__(self, answer: Callable[[VerifierKey, bytes, bytes], bool] = v.check_signature
                 ) -> None:
        self.calls: list[tuple[VerifierKey, bytes, bytes]] = []
        self.answer = answer

    def __call__(self, key: VerifierKey, sig: bytes, message: bytes) -> bool:
        self.calls.append((key, sig, message))
        return self.answer(key, sig, message)


def test_strategy_called_once_per_statement_with_granted_key() -> None:
    """Once per statement, with the key granted to its actor at that point (for the
    genesis, the admin key it names), the entry's signature and its exact statement
    bytes: the very bytes object the parsed entry holds."""
    log = membership_log()
    inv, check = v.Inventory(), Strategy()
    rep = Replayer(RecordingState(), check_signature=check)
    for data in log.entries:
        p = v.parse_entry(data)
        if isinstance(p.statement, v.Genesis):
            key = VerifierKey.parse(p.statement.admin_key)
        else:
            key = inv.keys[p.statement.actor].key
        before = len(check.calls)
        rep.apply_parsed(p)
        inv.apply_parsed(p)
        assert len(check.calls) == before + 1
        got_key, got_sig, got_bytes = check.calls[-1]
        assert got_key == key and got_sig == p.sig
        assert got_bytes is p.statement_bytes
    assert len(check.calls) == len(log.entries)


def test_inventory_takes_the_strategy_too() -> None:
    log, _ = sample_log(models=2, seed="seam")
    check = Strategy()
    inv = v.Inventory(check_signature=check)
    for data in log.entries:
        inv.apply(data)
    assert len(check.calls) == len(log.entries)
    assert inventory_state(inv) == inventory_state(v.replay(log.entries))


@contextmanager
def refused_last(strategy: Strategy) -> Iterator[tuple[RecordingState, Replayer, ParsedEntry]]:
    """A replayer over the double with every entry of a sample log but the last applied,
    the strategy set; yields it with the last entry, then checks nothing was written."""
    log, _ = sample_log(models=2, seed="seam")
    state = RecordingState()
    rep = Replayer(state, check_signature=strategy)
    for data in log.entries[:-1]:
        rep.apply(data)
    before, mark = recorded_state(state), len(state.calls)
    yield state, rep, v.parse_entry(log.entries[-1])
    assert state.writes(mark) == []
    assert recorded_state(state) == before


def test_strategy_false_is_signature_error() -> None:
    """False from the strategy is today's SignatureError and message; nothing written."""
    verdicts = iter([True] * 1000)
    check = Strategy(lambda k, s, m: next(verdicts))
    with refused_last(check) as (_, rep, p):
        verdicts = iter([False])
        with pytest.raises(v.SignatureError) as info:
            rep.apply_parsed(p)
    st_ = p.statement
    assert str(info.value) == (f"signature of {st_.actor!r} on statement {st_.id} "
                               "does not verify")
    # the same message as a real forged signature refused by Inventory
    forged = dict((b.__name__, b) for b, _ in SCENARIOS)["forged_signature"]
    prefix, bad = forged()
    inv = v.replay(prefix)
    with pytest.raises(v.SignatureError) as real:
        inv.apply(bad)
    bad_st = v.parse_entry(bad).statement
    assert str(real.value) == (f"signature of {bad_st.actor!r} on statement {bad_st.id} "
                               "does not verify")


class Boom(Exception):
    pass


def test_strategy_exception_propagates() -> None:
    """An exception from the strategy is not a verdict: it propagates as is (not as
    SignatureError), nothing is written, and the entry may be applied again later."""
    fail = [False]

    def answer(key: VerifierKey, sig: bytes, message: bytes) -> bool:
        if fail[0]:
            raise Boom("the signature helper died")
        return v.check_signature(key, sig, message)

    with refused_last(Strategy(answer)) as (_, rep, p):
        fail[0] = True
        with pytest.raises(Boom):
            rep.apply_parsed(p)
    fail[0] = False
    rep.apply_parsed(p)
    assert rep.state.size == p.entry.index + 1


def _scenario(name: str) -> tuple[list[bytes], bytes]:
    build = dict((b.__name__, b) for b, _ in SCENARIOS)[name]
    return build()


@pytest.mark.parametrize("name,expected,called", [
    ("unknown_actor", v.AuthorizationError, False),    # actor checks come first
    ("writer_grants", v.AuthorizationError, False),    # so does the role
    ("other_origin", v.RuleError, False),              # and the log the statement names
    ("duplicate_statement_id", v.ChainError, False),   # and a reused statement id
    ("wrong_prev_random", v.ChainError, False),        # the position before all
    ("register_twice", v.SignatureError, True),        # the signature before the rules
    ("member_add_cycle", v.SignatureError, True),
])
def test_signature_checked_between_authority_and_rules(
        name: str, expected: type[Exception], called: bool) -> None:
    """With a strategy that says False: entries refused before the signature check keep
    their error and never call it; a rule violation is refused for its signature."""
    prefix, bad = _scenario(name)
    verdict = [True]
    check = Strategy(lambda k, s, m: verdict[0])
    rep = Replayer(RecordingState(), check_signature=check)
    for data in prefix:
        rep.apply(data)
    verdict[0] = False
    mark = len(check.calls)
    with pytest.raises(expected) as info:
        rep.apply(bad)
    assert info.type is expected
    assert len(check.calls) - mark == (1 if called else 0)


def test_check_statement_alone_writes_nothing() -> None:
    """``check_statement`` (no position checks) runs the strategy and the rules, and
    never writes; it refuses what apply refuses for the statement's own reasons."""
    log, _ = sample_log(models=2, seed="seam")
    _, rep, state = both(log.entries[:-1])
    p = v.parse_entry(log.entries[-1])
    mark = len(state.calls)
    rep.check_statement(p.statement, p.statement_bytes, p.key_id, p.sig)
    assert state.writes(mark) == []
    with pytest.raises(v.SignatureError):
        rep.check_statement(p.statement, p.statement_bytes + b" ", p.key_id, p.sig)
    old = v.parse_entry(log.entries[-2])
    with pytest.raises(v.ChainError, match="already logged"):
        rep.check_statement(old.statement, old.statement_bytes, old.key_id, old.sig)
    assert state.writes(mark) == []


# -- 5. random sequences: Replayer over the double agrees with Inventory ------------------------


NAMES = ["a", "b", "c"]
EVENTS = ["retrained", "validated", "retired", "reactivated", "updated", "registered"]
CORRUPTIONS = ["index", "prev", "sig", "time", "claimed", "dup", "log"]

_event = st.tuples(st.just("event"), st.sampled_from(NAMES), st.sampled_from(EVENTS),
                   st.sampled_from(["high", "low", "", "a\nb", "x" * 201]))
_op = st.one_of(  # events first (the simplest example is valid) and three times as likely
    _event, _event, _event, st.tuples(st.just("register"), st.sampled_from(NAMES)),
    st.tuples(st.just("tag"), st.sampled_from(NAMES), st.integers(0, 60)),
    st.tuples(st.just("member_add"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("member_remove"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("grant"), st.sampled_from(["w2", "ml-pipeline", "bad"]),
              st.sampled_from(["writer", "admin", "reader"])),
    st.tuples(st.just("revoke"), st.sampled_from(["w2", "ml-pipeline", "risk-admin", "nobody"])),
)
# mostly the natural signer (admin for grants and revokes, the pipeline for models) and
# no corruption, so that histories grow and the rules see varied states
Step = tuple[tuple[Any, ...], str | None, str | None]  # (op, signer, corruption)
_step = st.tuples(_op, st.sampled_from([None] * 6 + ["admin", "pipe", "w2", "stranger"]),
                  st.sampled_from([None] * 10 + CORRUPTIONS))


class Fuzz:
    """Builds candidate entries on a logsim log; a refused one is taken back."""

    def __init__(self) -> None:
        self.log = Log.create(seed="seam-fuzz")
        self.signers = {"admin": self.log.admin,
                        "pipe": Signer("ml-pipeline", b"seam-fuzz-pipe"),
                        "w2": Signer("w2", b"seam-fuzz-w2"),
                        "stranger": Signer("stranger", b"seam-fuzz-stranger")}
        self.accepted: list[tuple[bytes, bytes, bytes]] = []  # statement, key id, sig
        self.last_at = 0  # recorded_at of the last accepted entry
        self.log.submit(self.log.admin, "grant", key=self.signers["pipe"].vkey, role="writer")
        for name in NAMES[:2]:  # "c" is left for the steps to register
            kind, body = self.body(("register", name))
            self.log.submit(self.signers["pipe"], kind, **body)

    def body(self, op: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
        kind = op[0]
        if kind == "register":
            return kind, dict(name=op[1], owner="o", model_type="m", tier="t", purpose="",
                              status="active", metadata={"k": 1})
        if kind == "event":
            payload: dict[str, Any] = {"tier": op[3]} if op[2] == "updated" else {"x": 1}
            return kind, dict(model=op[1], event_type=op[2], payload=payload)
        if kind == "tag":  # half the time the model's head, else any entry
            ents, head = self.log.entries, self.log.heads.get(op[1])
            target = head if head and op[2] < 30 else v.snapshot_hash(ents[op[2] % len(ents)])
            return kind, dict(model=op[1], tag="prod", target=target)
        if kind == "member_add":
            return kind, dict(group=op[1], member=op[2], role=None)
        if kind == "member_remove":
            return kind, dict(group=op[1], member=op[2], reason=None)
        if kind == "grant":
            key = "w2+00000000+AAAA" if op[1] == "bad" else (
                self.signers["w2" if op[1] == "w2" else "pipe"].vkey)
            return kind, dict(key=key, role=op[2])
        return kind, dict(name=op[1], reason=None)

    def entry(self, op: tuple[Any, ...], who: str | None, corruption: str | None) -> bytes:
        """The candidate entry, appended to the log (``run`` takes back a refused one).
        ``who`` None: the admin for grants and revokes, else the pipeline."""
        if who is None:
            who = "admin" if op[0] in ("grant", "revoke") else "pipe"
        log, signer = self.log, self.signers[who]
        kind, body = self.body(op)
        if corruption == "dup" and self.accepted:
            st_bytes, key_id, sig = self.accepted[len(self.log.entries) % len(self.accepted)]
            return log.append(st_bytes, key_id, sig)
        if corruption == "log":
            body["log"] = "ab" * 32
        if corruption == "time":  # recorded before the last entry (and signed then)
            log.clock = self.last_at - 1
        if corruption == "claimed":
            log.clock += 2 * 3_600 * 10**9  # signed two hours after the log records it
        st_bytes = log.statement(signer, kind, **body)
        if corruption == "claimed":
            log.clock -= 2 * 3_600 * 10**9
        sig = signer.sign(st_bytes)
        if corruption == "sig":
            sig = Signer(signer.name, b"seam-forger").sign(st_bytes)
        if corruption == "index":
            return v.entry_bytes(index=len(log.entries) + 1, recorded_at=log.clock, prev=None,
                                 statement=st_bytes, key_id=signer.key.key_id, sig=sig)
        prev: str | bool | None = "cd" * 32 if corruption == "prev" else True
        return log.append(st_bytes, signer.key.key_id, sig, prev=prev)

    def run(self, steps: list[Step]
            ) -> list[tuple[str, str] | None]:
        """Apply each step to an Inventory and a Replayer over the double; return the
        outcomes (None: accepted, else the error's class name and message)."""
        inv, state = v.Inventory(), RecordingState()
        rep = Replayer(state)
        for data in self.log.entries:
            inv.apply(data)
            rep.apply(data)
        self.last_at = inv.last_recorded_at
        outcomes: list[tuple[str, str] | None] = []
        for op, who, corruption in steps:
            heads, count, clock = dict(self.log.heads), len(self.log.entries), self.log.clock
            data = self.entry(op, who, corruption)
            mark = len(state.calls)
            want = outcome(inv.apply, data)
            assert outcome(rep.apply, data) == want, (op, who, corruption)
            outcomes.append(want)
            if want is None:
                p = v.parse_entry(data)
                self.accepted.append((p.statement_bytes, p.key_id, p.sig))
                self.last_at = p.entry.recorded_at
            else:
                assert state.writes(mark) == [], (op, who, corruption, want)
                del self.log.entries[count:]
                self.log.heads, self.log.clock = heads, clock
            assert state.n == inv.size
        assert recorded_state(state) == memory_state(inv)
        return outcomes


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_step, min_size=3, max_size=50))
def test_random_histories_agree(steps: list[Step]) -> None:
    """Random valid and invalid entries (wrong signer, role, index, prev, time, claimed
    time, log, signature, reused statement, and every inventory rule): the Replayer over
    the recording double and Inventory accept and refuse the same entries with the same
    error and message, a refused entry writes nothing, and the final states agree."""
    Fuzz().run(steps)


def test_fuzz_reaches_acceptance_and_each_refusal() -> None:
    """The generator is not vacuous: a fixed sequence is accepted in part and refused for
    several different reasons."""
    f = Fuzz()
    steps: list[Step] = [
        (("register", "a"), "pipe", None), (("event", "a", "retrained", ""), "pipe", None),
        (("member_add", "a", "b"), "pipe", None), (("member_add", "b", "a"), "pipe", None),
        (("tag", "a", 32), "pipe", None), (("event", "a", "updated", "high"), "pipe", None),
        (("event", "b", "retired", ""), "pipe", "sig"), (("register", "c"), "w2", None),
        (("grant", "w2", "writer"), "pipe", None), (("grant", "w2", "writer"), "admin", None),
        (("revoke", "risk-admin"), "admin", None), (("register", "c"), "w2", "index"),
        (("register", "c"), "w2", "time"), (("register", "c"), "w2", "claimed"),
        (("register", "c"), "w2", "log"), (("event", "a", "x", ""), "pipe", "prev"),
        (("register", "c"), "w2", "dup"), (("grant", "bad", "writer"), "admin", None),
        (("event", "a", "registered", ""), "pipe", None), (("register", "c"), "w2", None),
    ]
    outcomes = f.run(steps)
    assert [o is None for o in outcomes].count(True) == len(f.accepted) == 6
    assert {o[0] for o in outcomes if o is not None} == {
        "ChainError", "RuleError", "AuthorizationError", "SignatureError", "MalformedInputError"}
