"""Issue 9, point 5: verification stays linear in time and memory.

* rule 17's cycle check walks down from the member and up from the group in turns and
  stops at the first side that runs out, with a hard limit (specs/entry.md §8.5);
* a metadata/payload object holds at most 4,096 JSON values (§1.3);
* timelines keep an entry's detail as canonical JSON bytes, not parsed objects.
"""

from __future__ import annotations

import gc
import importlib
import tracemalloc
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from tests.logsim import Log, Signer
from verifier import canonical

# the module: ``verifier.replay`` is also the name of the replay function
replay = importlib.import_module("verifier.replay")

VALUES = Path(__file__).resolve().parent / "testdata" / "values"


class CountingModels(dict[str, v.ModelState]):
    """A models map that counts reads by key: every model a membership walk visits."""

    reads = 0

    def __getitem__(self, name: str) -> v.ModelState:
        self.reads += 1
        return super().__getitem__(name)


def _log() -> tuple[Log, Signer]:
    log = Log.create(seed="issue9")
    pipe = Signer("ml-pipeline", b"issue9-pipe")
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    return log, pipe


def _register(log: Log, pipe: Signer, name: str) -> bytes:
    return log.submit(pipe, "register", name=name, owner="team", model_type="ml_model",
                      tier="high", purpose="", status="active", metadata={})


def _add(log: Log, pipe: Signer, group: str, member: str) -> bytes:
    return log.submit(pipe, "member_add", group=group, member=member, role=None)


def _remove(log: Log, pipe: Signer, group: str, member: str) -> bytes:
    return log.submit(pipe, "member_remove", group=group, member=member, reason=None)


def _replayed(log: Log) -> tuple[v.Inventory, CountingModels]:
    models = CountingModels()
    inv = v.Inventory(models=models)
    for data in log.entries:
        inv.apply(data)
    return inv, models


def _reads(inv: v.Inventory, models: CountingModels, data: bytes) -> int:
    before = models.reads
    inv.apply(data)
    return models.reads - before


# -- the cycle check ------------------------------------------------------------------------


def test_point5_cycle_check_cost_is_bounded() -> None:
    """Adding a group of K members to another group, K times, reads a constant number of
    models per entry (the old downward walk read all K members each time)."""
    log, pipe = _log()
    k = 1500
    for name in ("suite", "portfolio", "bank"):
        _register(log, pipe, name)
    for i in range(k):
        _register(log, pipe, f"m{i:04d}")
        _add(log, pipe, "suite", f"m{i:04d}")
    _add(log, pipe, "bank", "portfolio")
    inv, models = _replayed(log)
    reads = []
    for _ in range(40):
        reads.append(_reads(inv, models, _add(log, pipe, "portfolio", "suite")))
        reads.append(_reads(inv, models, _remove(log, pipe, "portfolio", "suite")))
    # a member_add reads the group and member to check them, walks "portfolio" up (two
    # reads: portfolio, bank) and writes back both; nothing depends on k
    assert max(reads) <= 8, reads
    # and a member with no members of its own needs one read to see it, nothing more
    leaf = _register(log, pipe, "leaf")
    inv.apply(leaf)
    assert _reads(inv, models, _add(log, pipe, "suite", "leaf")) <= 4


@pytest.mark.parametrize("limit,width,refused", [(8, 30, True), (30, 30, False),
                                                 (29, 30, True)])
def test_point5_cycle_check_cost_is_bounded_by_the_limit(limit: int, width: int,
                                                         refused: bool) -> None:
    """When both sides are wide, the walk stops after limit + 1 links on each side: the
    entry is refused (RuleError) if both have more than ``limit`` links, else accepted.
    ``big`` has ``width`` members; ``g`` is in ``width`` groups."""
    log, pipe = _log()
    for name in ("big", "g"):
        _register(log, pipe, name)
    for i in range(width):
        _register(log, pipe, f"leaf{i}")
        _add(log, pipe, "big", f"leaf{i}")
        _register(log, pipe, f"up{i}")
        _add(log, pipe, f"up{i}", "g")
    inv, models = _replayed(log)
    entry = _add(log, pipe, "g", "big")
    with mock.patch.object(replay, "MAX_MEMBERSHIP_WALK", limit):
        before = models.reads
        if refused:
            with pytest.raises(v.RuleError, match="more than"):
                inv.apply(entry)
        else:
            inv.apply(entry)
        reads = models.reads - before
    # one read per model expanded: at most limit + 1 links per side, plus the checks
    assert reads <= 2 * (min(limit, width) + 1) + 6, reads


def test_point5_cycle_check_at_the_real_limit() -> None:
    """At MAX_MEMBERSHIP_WALK itself: with more links than the limit both below the member
    and above the group, member_add is refused; one link fewer below, it is accepted and
    the walk reads at most limit + 1 models a side."""
    n = replay.MAX_MEMBERSHIP_WALK
    log, pipe = _log()
    for name in ("p", "g"):
        _register(log, pipe, name)
    for i in range(n + 1):
        _register(log, pipe, f"y{i}")
        _add(log, pipe, "p", f"y{i}")  # p: n + 1 members
        _register(log, pipe, f"z{i}")
        _add(log, pipe, f"z{i}", "g")  # g: in n + 1 groups
    inv, models = _replayed(log)
    with pytest.raises(v.RuleError, match=f"more than {n} membership links"):
        inv.apply(_add(log, pipe, "g", "p"))
    log.entries.pop()
    log.heads["g"] = inv.models["g"].head
    inv.apply(_remove(log, pipe, "p", "y0"))  # p: n members
    assert _reads(inv, models, _add(log, pipe, "g", "p")) <= 2 * (n + 1) + 6
    assert "g" in inv.models["p"].groups and "p" in inv.models["g"].members


def _reference(members: dict[str, set[str]], group: str, member: str,
               limit: int) -> bool:
    """Rule 17 from its definition: refused iff a cycle, or both link counts > limit."""
    def closure(start: str, step: dict[str, set[str]]) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in step[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    parents: dict[str, set[str]] = {name: set() for name in members}
    for g, ms in members.items():
        for m in ms:
            parents[m].add(g)
    down, up = closure(member, members), closure(group, parents)
    if member == group or group in down:
        return True
    links_down = sum(len(members[x]) for x in down)
    links_up = sum(len(parents[x]) for x in up)
    return links_down > limit and links_up > limit


NAMES = [f"n{i}" for i in range(6)]
_ops = st.lists(st.tuples(st.booleans(), st.sampled_from(NAMES), st.sampled_from(NAMES)),
                min_size=1, max_size=40)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops, limit=st.sampled_from([1, 2, 3, 5, 4096]))
def test_point5_cycles_still_refused(ops: list[tuple[bool, str, str]], limit: int) -> None:
    """Random adds and removes among six models: replay accepts and refuses exactly what
    the rule's definition (a naive full reachability check) says, limit included, and
    keeps every model's ``groups`` the reverse of the groups' ``members``."""
    log, pipe = _log()
    for name in NAMES:
        _register(log, pipe, name)
    inv = v.replay(log.entries)
    members: dict[str, set[str]] = {name: set() for name in NAMES}
    with mock.patch.object(replay, "MAX_MEMBERSHIP_WALK", limit):
        for add, group, member in ops:
            head = log.heads.get(group)
            if add:
                data = _add(log, pipe, group, member)
                refused = member in members[group] or _reference(members, group, member,
                                                                  limit)
            else:
                data = _remove(log, pipe, group, member)
                refused = member not in members[group]
            try:
                inv.apply(data)
            except v.RuleError:
                assert refused, (add, group, member, members)
                log.entries.pop()
                if head is not None:
                    log.heads[group] = head
                continue
            assert not refused, (add, group, member, members)
            (members[group].add if add else members[group].discard)(member)
    for name in NAMES:
        state = inv.models[name]
        assert set(state.members) == members[name]
        assert set(state.groups) == {g for g in NAMES if name in members[g]}


# -- the number of JSON values in a payload -------------------------------------------------


def _cases() -> list[Path]:
    return sorted(VALUES.glob("*.json"))


def _with_object(base: bytes, field: bytes, obj: bytes) -> bytes:
    marker = b'"' + field + b'":{}'
    assert base.count(marker) == 1
    return base.replace(marker, b'"' + field + b'":' + obj)


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.stem)
def test_point5_payload_value_limit(path: Path) -> None:
    """tests/testdata/values: an object of at most 4,096 JSON values (keys included) is
    accepted as an event payload and as register metadata; 4,097 is MalformedInputError
    when parsed (in a statement and in an entry) and ValueError when written."""
    obj = path.read_bytes()
    ok = path.name.startswith("ok-")
    assert ok or path.name.startswith("malformed-")
    log, pipe = _log()
    event = log.statement(pipe, "event", model="m", event_type="trained", payload={})
    register = log.statement(pipe, "register", name="m", owner="o", model_type="t",
                             tier="high", purpose="", status="active", metadata={})
    for base, field in ((event, b"payload"), (register, b"metadata")):
        data = _with_object(base, field, obj)
        entry = v.entry_bytes(index=5, recorded_at=0, prev=None, statement=data,
                              key_id=b"\0" * 4, sig=b"\0" * 64)
        if ok:
            parsed = v.parse_statement(data)
            assert v.parse_entry(entry).statement == parsed
            assert v.statement_bytes(parsed) == data
        else:
            with pytest.raises(v.MalformedInputError, match="4096 JSON values"):
                v.parse_statement(data)
            with pytest.raises(v.MalformedInputError, match="4096 JSON values"):
                v.parse_entry(entry)
            value = msgspec.json.decode(obj)
            with pytest.raises(ValueError, match="4096 JSON values"):
                v.check_json_value(value, "payload")


def _verdict(value: Any, depth: int = 0) -> tuple[int, bool]:
    """(values, acceptable) from §1.3's definition, depth and scalar rules included."""
    ok = depth <= 32
    if isinstance(value, dict):
        n = 1
        for key, item in value.items():
            kn, kok = _verdict(key, depth + 1)
            vn, vok = _verdict(item, depth + 1)
            n, ok = n + kn + vn, ok and kok and vok
        return n, ok
    if isinstance(value, list):
        n = 1
        for item in value:
            vn, vok = _verdict(item, depth + 1)
            n, ok = n + vn, ok and vok
        return n, ok
    if isinstance(value, str):
        return 1, ok and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, float):
        return 1, ok and value == value and abs(value) != float("inf")
    if isinstance(value, int) and not isinstance(value, bool):
        return 1, ok and -(2**63) <= value < 2**63
    return 1, ok


_leaf = (st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats()
         | st.text(max_size=3)
         | st.text(st.characters(min_codepoint=0xD7FE, max_codepoint=0xE001,
                                 exclude_categories=()), max_size=2))
_wide = st.builds(lambda n, x: [x] * n, st.integers(0, 1400), _leaf)


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


_json = st.recursive(_leaf | _wide | st.builds(_deep, st.integers(28, 34)),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=4), _json, max_size=4))
def test_point5_value_count_property(obj: dict[str, Any]) -> None:
    """check_json_value accepts an object iff it holds at most MAX_VALUES values and
    every value is acceptable (the fast path for common scalars changes nothing)."""
    count, ok = _verdict(obj)
    if ok and count <= canonical.MAX_VALUES:
        v.check_json_value(obj, "payload")
    else:
        with pytest.raises(ValueError):
            v.check_json_value(obj, "payload")
        if ok:
            with pytest.raises(ValueError, match="JSON values"):
                v.check_json_value(obj, "payload")


# -- timelines keep raw details -------------------------------------------------------------


def test_point5_timeline_keeps_raw_payload() -> None:
    """A timeline item holds its detail as the canonical JSON bytes (an event's payload
    exactly as signed), decoded again on each read; replay retains about the payloads'
    size, not the ~20x of parsed objects."""
    log, pipe = _log()
    _register(log, pipe, "m")
    payload: dict[str, Any] = {"a": [[]] * 4093}  # 4,096 values, 12 KB of JSON
    for _ in range(60):
        log.submit(pipe, "event", model="m", event_type="trained", payload=payload)
    target = log.heads["m"]
    log.submit(pipe, "tag", model="m", tag="prod", target=target)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        inv = v.replay(log.entries)
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert inv.timelines is not None
    items = inv.timelines["m"]
    raw = msgspec.json.encode(payload)
    for item, data in zip(items, log.entries[2:], strict=True):
        st_bytes = v.parse_entry(data).statement_bytes
        assert isinstance(item.detail_json, bytes)
        assert not hasattr(item, "__dict__")  # slots: nothing else is kept
        if item.op == "event":
            assert item.detail_json == raw and raw in st_bytes
            assert item.detail == payload and item.detail is not item.detail
    assert items[0].detail == {} and items[-1].detail == {"tag": "prod", "target": target}
    payload_bytes = 60 * len(raw)
    # parsed, the 60 payloads would hold 60 * 4,093 list objects (over 15 MB)
    assert retained < 2 * payload_bytes, (retained, payload_bytes)


# -- the writer stores the groups too -------------------------------------------------------


def test_point5_ledger_stores_groups(path: Path, keys: Any, clock: Any) -> None:
    """The ledger's stored states carry ``groups`` (its cycle checks walk up through the
    store); every past state it answers equals the verifier's replay up to that entry,
    ``groups`` included; audit recomputes and agrees; a cycle found by walking up is
    refused and stores nothing."""
    from tests.ledger_support import entries, make_ledger, recorded_at, register

    led = make_ledger(path, keys, clock)
    try:
        for name in ("a", "b", "g1", "g2"):
            register(led, name)
        led.add_member("g1", "a")
        led.add_member("g2", "g1")
        led.add_member("g2", "b")
        led.record("a", event="retrained")
        led.remove_member("g1", "a")
        led.add_member("b", "a")
        size = led.size
        with pytest.raises(v.RuleError, match="cycle"):
            led.add_member("a", "g2")  # g2 -> b -> a
        assert led.size == size
        data = entries(led)
        for n in range(1, len(data) + 1):
            want = v.replay(data[:n]).models
            at = led.inventory_at(v.from_ns(recorded_at(data[n - 1])))
            assert at == dict(want), n
        assert led.inventory_at()["a"].groups == {"b": None}
        assert led.inventory_at()["g1"].groups == {"g2": None}
        assert led.audit() == len(data)
    finally:
        led.close()
