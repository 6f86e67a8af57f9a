"""Regression tests for issue 9's format changes, one section per point of the issue:

* point 1, time: the checkpoint's ``modelseal-time`` line and what a bundle proves about
  time (TimeBoundError), and the replay rule on an actor's ``claimed_at`` (back-dating);
* point 3, log binding: every statement but the genesis names its log by the genesis
  snapshot hash (``"v": 2``, ``log``); the genesis's ``claim_skew``/``claim_window``;
* point 4, names: the name profile (verifier/names.py), event types, reserved event
  types, ``updated`` payloads, and retirement (``retired`` / ``reactivated``).

The negative cases are bytes stored under tests/data/issue9/, made by
tests/gen_issue9_data.py; the first test checks the stored files are exactly what the
generator makes, so they cannot rot. Each negative case also has a positive control: the
same input with the one defect undone is accepted, so the refusal is the defect's.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from tests import gen_issue9_data as gen
from tests import reference as ref
from tests.helpers import bundle_bytes, bundle_doc, inventory_state, sign_text
from tests.logsim import CLAIM_SKEW, CLAIM_WINDOW, DAY, T0, Log
from verifier import cli
from verifier.names import check_name, name_problem
from verifier.timeutil import iso

DATA = Path(__file__).resolve().parent / "data" / "issue9"
KEYS = [v.VerifierKey.parse((DATA / "log.vkey").read_text(encoding="ascii").strip())]
MODEL = gen.MODEL


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def checkpoint_of(bundle: bytes) -> v.Checkpoint:
    return v.Checkpoint.parse_note(bundle_doc(bundle)["checkpoint"].encode(), KEYS)


def trusted(name: str) -> v.Checkpoint:
    return v.Checkpoint.parse_note(data(name), KEYS)


def replay_refuses(entries: list[bytes], expected: type[Exception],
                   match: str) -> tuple[v.Inventory, v.ParsedEntry]:
    """Every entry but the last replays; the last raises exactly ``expected`` and changes
    nothing. Returns the inventory before the last entry and that entry, parsed."""
    inv = v.replay(entries[:-1])
    before = inventory_state(inv)
    with pytest.raises(expected, match=match) as info:
        inv.apply(entries[-1])
    assert info.type is expected
    assert inventory_state(inv) == before
    with pytest.raises(expected):
        v.replay(entries)
    return inv, v.parse_entry(entries[-1])


def stored_replay_refuses(name: str, expected: type[Exception],
                          match: str) -> tuple[v.Inventory, v.ParsedEntry]:
    return replay_refuses(gen.read_entries(data(name)), expected, match)


def reentry(p: v.ParsedEntry, **over: Any) -> bytes:
    """The entry ``p`` with some of the log's own fields changed (the signature stays valid)."""
    fields: dict[str, Any] = dict(index=p.entry.index, recorded_at=p.entry.recorded_at,
                                  prev=p.entry.prev, statement=p.statement_bytes,
                                  key_id=p.key_id, sig=p.sig)
    fields.update(over)
    return v.entry_bytes(**fields)


# -- the stored files ---------------------------------------------------------------------------

def test_stored_files_are_what_the_generator_makes() -> None:
    """tests/data/issue9/ holds exactly the files gen_issue9_data.cases() makes, byte for byte
    (regenerate with: python -m tests.gen_issue9_data)."""
    made = gen.cases()
    assert sorted(p.name for p in DATA.iterdir()) == sorted(made)
    for name, blob in made.items():
        assert data(name) == blob, f"{name} differs from what the generator makes"


# == point 1: time ================================================================================

def test_point1_time_whole_checkpoint_bundle_edited_to_later_time() -> None:
    """A bundle of the whole checkpoint, its at.time moved a day past the checkpoint's
    signing time: TimeBoundError. At the signing time itself it verifies."""
    bundle = data("time_whole_checkpoint_later_at.bundle.json")
    cp = checkpoint_of(bundle)
    doc = bundle_doc(bundle)
    assert cp.time is not None and doc["at"]["time"] == cp.time + DAY
    assert doc["at"]["size"] == cp.size and doc["next"] is None
    with pytest.raises(v.TimeBoundError, match="signed at"):
        v.verify_bundle(bundle, KEYS)
    doc["at"]["time"] = cp.time
    result = v.verify_bundle(bundle_bytes(doc), KEYS)
    assert result.proven_until == result.checkpoint_time == cp.time
    doc["at"]["time"] = cp.time + 1
    with pytest.raises(v.TimeBoundError):
        v.verify_bundle(bundle_bytes(doc), KEYS)


def test_point1_time_older_checkpoint_presented_as_later_date() -> None:
    """The size-6 checkpoint (signed just before entry 6) presented as the inventory a month
    later: TimeBoundError. As of its own signing time it verifies."""
    bundle = data("time_older_checkpoint_later_date.bundle.json")
    cp = checkpoint_of(bundle)
    doc = bundle_doc(bundle)
    assert cp.size == 6 and cp.time is not None and doc["at"]["time"] > cp.time + 29 * DAY
    with pytest.raises(v.TimeBoundError, match="checkpoint was signed at"):
        v.verify_bundle(bundle, KEYS)
    doc["at"]["time"] = cp.time
    result = v.verify_bundle(bundle_bytes(doc), KEYS)
    assert result.size == 6 and result.proven_until == cp.time


def test_point1_time_next_entry_recorded_after_checkpoint() -> None:
    """A checkpoint that holds entry 9 but says it was signed before entry 9 was recorded;
    the bundle's next entry is entry 9: TimeBoundError."""
    bundle = data("time_next_after_checkpoint.bundle.json")
    cp = checkpoint_of(bundle)
    doc = bundle_doc(bundle)
    nxt = v.parse_entry(base64.b64decode(doc["next"]["entry"]))
    assert cp.time is not None and nxt.entry.index == 9 and nxt.entry.recorded_at > cp.time
    assert doc["at"]["time"] <= cp.time
    with pytest.raises(v.TimeBoundError, match="after its checkpoint was signed"):
        v.verify_bundle(bundle, KEYS)


def test_point1_time_checkpoint_without_time_line() -> None:
    """A bundle whose checkpoint lacks the modelseal-time line is MalformedInputError (the
    note itself is a valid checkpoint, with no time)."""
    bundle = data("time_no_time_line.bundle.json")
    cp = checkpoint_of(bundle)
    assert cp.time is None and not any(x.startswith("modelseal-time") for x in cp.extensions)
    with pytest.raises(v.MalformedInputError, match="modelseal-time"):
        v.verify_bundle(bundle, KEYS)


@pytest.mark.parametrize("line", ["modelseal-time 01", "modelseal-time -1", "modelseal-time 1.5",
                                  "modelseal-time ", f"modelseal-time {2**63}",
                                  "modelseal-time  5"])
def test_point1_time_line_syntax(line: str) -> None:
    """The time line is one decimal without leading zeros, at most 2^63 - 1; else malformed."""
    log = Log.create(seed="issue9-line")
    text = v.checkpoint_text(log.origin, 1, ref.mth(log.entries), [line])
    with pytest.raises(v.MalformedInputError):
        v.Checkpoint.parse_note(sign_text(text, log.log_key), [log.log_key.key])


def test_point1_time_line_once_and_in_range() -> None:
    """Two time lines are malformed; time_line refuses what it cannot write; one parses."""
    log = Log.create(seed="issue9-line")
    text = v.checkpoint_text(log.origin, 1, ref.mth(log.entries),
                             [v.time_line(5), v.time_line(5)])
    with pytest.raises(v.MalformedInputError, match="more than one"):
        v.Checkpoint.parse_note(sign_text(text, log.log_key), [log.log_key.key])
    for bad in (-1, 2**63, True, 1.0):
        with pytest.raises(ValueError):
            v.time_line(bad)  # type: ignore[arg-type]
    assert v.time_line(2**63 - 1) == f"modelseal-time {2**63 - 1}"
    note = log.checkpoint(1, time=2**63 - 1)
    assert v.Checkpoint.parse_note(note, [log.log_key.key]).time == 2**63 - 1


def test_point1_time_backdated_validation() -> None:
    """A validation signed on 10 June, recorded with the log's clock set back to 1 March:
    ChainError. Recorded on 10 June, the same signed statement is accepted."""
    inv, p = stored_replay_refuses("time_backdated_validation.entries", v.ChainError,
                                   "back-dating")
    assert isinstance(p.statement, v.Event) and p.statement.event_type == "validated"
    assert p.statement.claimed_at == gen.JUNE_10 and p.entry.recorded_at == gen.MARCH_1
    inv.apply(reentry(p, recorded_at=gen.JUNE_10))
    assert inv.models[MODEL].last_validation_at == gen.JUNE_10


def test_point1_time_held_back_longer_than_claim_window() -> None:
    """A statement recorded one nanosecond more than claim_window after it was signed:
    ChainError; at exactly claim_window it is accepted."""
    inv, p = stored_replay_refuses("time_held_back.entries", v.ChainError, "claim_window")
    assert p.entry.recorded_at - p.statement.claimed_at == CLAIM_WINDOW + 1
    inv.apply(reentry(p, recorded_at=p.statement.claimed_at + CLAIM_WINDOW))


@pytest.mark.parametrize("offset,ok", [
    (0, True), (CLAIM_SKEW, True), (CLAIM_SKEW + 1, False),  # claimed after recorded
    (-CLAIM_WINDOW, True), (-CLAIM_WINDOW - 1, False),  # claimed before recorded
])
def test_point1_time_claim_limits_exact(offset: int, ok: bool) -> None:
    """claimed_at <= recorded_at + claim_skew and recorded_at - claimed_at <= claim_window,
    both bounds inclusive."""
    log, p = gen.base()
    recorded = log.clock
    log.clock = recorded + offset
    st_bytes = log.statement(p, "event", model=MODEL, event_type="retrained", payload={})
    log.clock = recorded
    log.append(st_bytes, p.key.key_id, p.sign(st_bytes))
    if ok:
        assert v.replay(log.entries).size == len(log.entries)
    else:
        replay_refuses(log.entries, v.ChainError, "claim_skew|claim_window")


@pytest.mark.parametrize("offset,ok", [(CLAIM_SKEW, True), (CLAIM_SKEW + 1, False),
                                       (-CLAIM_WINDOW, True), (-CLAIM_WINDOW - 1, False)])
def test_point1_time_genesis_own_claim_limits(offset: int, ok: bool) -> None:
    """The genesis is held to its own claim_skew and claim_window."""
    log = gen.create()
    p = v.parse_entry(log.entries[0])
    assert p.statement.claimed_at == p.entry.recorded_at
    moved = reentry(p, recorded_at=p.entry.recorded_at - offset)
    if ok:
        assert v.replay([moved]).claim_skew == CLAIM_SKEW
    else:
        replay_refuses([moved], v.ChainError, "claim_skew|claim_window")


@pytest.mark.parametrize("name", ["time_after_trusted_entry.bundle.json",
                                  "time_after_trusted_next.bundle.json"])
def test_point1_time_entry_after_trusted_recorded_before_it(name: str) -> None:
    """The examiner holds a checkpoint of size 6 signed at T; the bundle's entry 6 (among its
    entries, or as its next entry) says it was recorded at T: back-dated, TimeBoundError.
    Without the trusted checkpoint nothing shows it, and the bundle verifies."""
    bundle = data(name)
    tcp = trusted("time_after_trusted.checkpoint.txt")
    doc = bundle_doc(bundle)
    six = (base64.b64decode(doc["entries"][6]) if doc["at"]["size"] > 6
           else base64.b64decode(doc["next"]["entry"]))
    assert tcp.size == 6 and tcp.time == v.parse_entry(six).entry.recorded_at
    assert (doc["at"]["size"] == 6) == name.endswith("_next.bundle.json")
    with pytest.raises(v.TimeBoundError, match="back-dated"):
        v.verify_bundle(bundle, KEYS, trusted=tcp)
    assert v.verify_bundle(bundle, KEYS).size == doc["at"]["size"]


def test_point1_time_entry_after_trusted_recorded_later_is_fine() -> None:
    """The honest case: entry 6 recorded one nanosecond after the trusted checkpoint's time."""
    log, _ = gen.base()
    log.submit(gen.pipe(), "event", model=MODEL, event_type="retrained", payload={})
    tcp = v.Checkpoint.parse_note(log.checkpoint(5), KEYS)
    assert tcp.time == log.clock - 1
    log.submit(gen.pipe(), "event", model=MODEL, event_type="retrained", payload={})
    assert v.parse_entry(log.entries[5]).entry.recorded_at == tcp.time + 1
    for t in (tcp.time, log.clock - 1):
        result = v.verify_bundle(log.bundle(t, trusted=5), KEYS, trusted=tcp)
        assert result.trusted == tcp


def test_point1_time_larger_checkpoint_signed_before_smaller_trusted() -> None:
    """A bundle checkpoint of size 12 signed before the trusted checkpoint of size 6:
    TimeBoundError. Without the trusted checkpoint the bundle verifies."""
    bundle = data("time_trusted_signed_later.bundle.json")
    tcp = trusted("time_trusted_signed_later.checkpoint.txt")
    cp = checkpoint_of(bundle)
    assert tcp.size < cp.size and tcp.time is not None and cp.time is not None
    assert tcp.time > cp.time
    with pytest.raises(v.TimeBoundError, match="not after the smaller trusted checkpoint"):
        v.verify_bundle(bundle, KEYS, trusted=tcp)
    assert v.verify_bundle(bundle, KEYS).checkpoint.size == cp.size


def test_point1_time_before_genesis() -> None:
    """A bundle at a time before the genesis verifies, holds no entry, says before_genesis,
    and its time statement says the log held nothing then."""
    log = gen.time_log()
    genesis_at = v.parse_entry(log.entries[0]).entry.recorded_at
    result = v.verify_bundle(log.bundle(genesis_at - 1), KEYS)
    assert result.size == 0 and result.before_genesis and result.genesis_at == genesis_at
    assert result.proven_until == genesis_at - 1
    assert "before the log's genesis" in result.time_statement()
    assert iso(genesis_at) in result.time_statement()
    at = result.to_json()["at"]
    assert at["before_genesis"] is True and at["genesis_at"] == iso(genesis_at)
    assert at["proven"] == result.time_statement()
    after = v.verify_bundle(log.bundle(genesis_at), KEYS)
    assert after.size == 1 and not after.before_genesis and after.genesis_at == genesis_at
    assert "before the log's genesis" not in after.time_statement()


def test_point1_time_cli_says_what_is_proven(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """modelseal-verify prints the checkpoint's time and a `  proven: ...` line."""
    log = gen.time_log()
    t = v.parse_entry(log.entries[7]).entry.recorded_at
    path = tmp_path / "bundle.json"
    path.write_bytes(log.bundle(t))
    result = v.verify_bundle(path.read_bytes(), KEYS)
    assert cli.main([str(path), "--key", KEYS[0].vkey]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"  proven: {result.time_statement()}" in lines
    assert iso(result.checkpoint_time) in lines[0]
    assert iso(result.proven_until) in result.time_statement()
    assert result.proven_until == v.parse_entry(log.entries[8]).entry.recorded_at - 1
    assert cli.main([str(path), "--key", KEYS[0].vkey, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["at"]["proven_until_ns"] == result.proven_until
    assert doc["checkpoint"]["time_ns"] == result.checkpoint_time


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gaps=st.lists(st.integers(0, 2 * DAY), max_size=10), size_pick=st.integers(0, 2**16),
       t_pick=st.integers(0, 2**62), on_entry=st.booleans())
def test_point1_time_proven_until_property(gaps: list[int], size_pick: int, t_pick: int,
                                           on_entry: bool) -> None:
    """For random logs (equal times allowed), checkpoint sizes and times t up to the
    checkpoint's time: proven_until >= t, every entry recorded at or before t is included
    and no other, and no entry left out was recorded up to proven_until.

    logsim signs a checkpoint of size s just before entry s. When entries s-1 and s share
    a time, no honest checkpoint of size s exists (it would be signed before an entry it
    holds); such a bundle may fail with TimeBoundError, and an honest one never does."""
    log, p = gen.base()
    for i, gap in enumerate(gaps):
        log.clock = log.clock - log.step + gap  # ``gap`` after the previous entry
        log.submit(p, "event", model=MODEL, event_type="retrained", payload={"i": i})
    s = size_pick % (len(log.entries) + 1)
    recs = [v.parse_entry(e).entry.recorded_at for e in log.entries[:s]]
    cp_time = log.time_after(s)
    lowest = T0 - DAY
    if on_entry and recs:
        t = recs[t_pick % len(recs)]
    else:
        t = lowest + t_pick % (cp_time - lowest + 1)
    honest = not recs or recs[-1] <= cp_time
    try:
        result = v.verify_bundle(log.bundle(t, size=s), KEYS)
    except v.TimeBoundError:
        assert not honest
        return
    n = result.size
    assert result.checkpoint.size == s and result.checkpoint_time == cp_time
    assert result.proven_until >= t and result.proven_until <= cp_time
    assert n == sum(1 for r in recs if r <= t)
    assert all(r <= t for r in recs[:n])
    assert [i < n for i in range(s)] == [r <= result.proven_until for r in recs]
    assert result.root == ref.mth(log.entries[:n]) and result.inventory.size == n
    assert result.before_genesis == (n == 0)


# == point 3: log binding ==========================================================================

def test_point3_log_binding_statement_signed_for_another_log() -> None:
    """Logs A and B share origin, log key, admin and pipeline key; a statement the pipeline
    signed for A, appended to B: RuleError. The same statement signed for B is accepted."""
    entries = gen.read_entries(data("log_other_log_statement.entries"))
    inv, p = replay_refuses(entries, v.RuleError, "belongs to one log")
    log_a, _ = gen.base()
    genesis_a, genesis_b = (v.parse_entry(log_a.entries[0]), v.parse_entry(entries[0]))
    assert isinstance(p.statement, v.Register) and p.statement.origin == inv.origin
    assert p.statement.log == v.snapshot_hash(log_a.entries[0]) != inv.log_id
    assert inv.log_id == v.snapshot_hash(entries[0])
    for field in ("origin", "log_key", "admin_key", "actor"):
        assert getattr(genesis_a.statement, field) == getattr(genesis_b.statement, field)
    assert inv.keys["ml-pipeline"].key.key_id == p.key_id  # granted in B too
    pipe = gen.pipe()
    for_b = v.statement_bytes(msgspec.structs.replace(p.statement, log=inv.log_id))
    inv.apply(reentry(p, statement=for_b, sig=pipe.sign(for_b)))
    assert "credit_scoring" in inv.models


def test_point3_every_statement_names_its_log() -> None:
    """Statements are v 2; each but the genesis carries the genesis snapshot hash."""
    log = gen.time_log()
    genesis = v.parse_entry(log.entries[0])
    assert isinstance(genesis.statement, v.Genesis) and genesis.statement.v == 2
    assert not hasattr(genesis.statement, "log")
    assert (genesis.statement.claim_skew, genesis.statement.claim_window) == (
        CLAIM_SKEW, CLAIM_WINDOW)
    for data_ in log.entries[1:]:
        st_ = v.parse_entry(data_).statement
        assert not isinstance(st_, v.Genesis)
        assert st_.v == 2 and st_.log == genesis.snapshot_hash


@pytest.mark.parametrize("name", ["log_genesis_claim_skew_over_1h.entries",
                                  "log_genesis_claim_window_over_31d.entries"])
def test_point3_genesis_claim_limits_refused(name: str) -> None:
    """A genesis allowing more than one hour of claim_skew or 31 days of claim_window."""
    (entry,) = gen.read_entries(data(name))
    st_ = v.parse_entry(entry).statement
    assert isinstance(st_, v.Genesis)
    assert st_.claim_skew == 3_600 * 10**9 + 1 or st_.claim_window == 31 * DAY + 1
    replay_refuses([entry], v.RuleError, "claim_skew")


def test_point3_genesis_claim_limits_at_maximum() -> None:
    """Exactly one hour and 31 days are accepted, and then govern the log."""
    log = gen.create(claim_skew=3_600 * 10**9, claim_window=31 * DAY)
    inv = v.replay(log.entries)
    assert (inv.claim_skew, inv.claim_window) == (3_600 * 10**9, 31 * DAY)


# == point 4: names, event types, retirement ======================================================

NAME_FILES = {
    "name_cyrillic_o.statement.json": ("name", "fraud_sc\u043ering", "mixes"),
    "name_rlo.statement.json": ("name", "fraud_scoring\u202e", "U\\+202E"),
    "name_not_nfc.statement.json": ("name", "mode\u0301le", "U\\+0301"),
    "name_zero_width_space.statement.json": ("name", "fraud\u200bscoring", "U\\+200B"),
    "event_type_capital.statement.json": ("event_type", "Deployed", "lower-case"),
    "event_type_space.statement.json": ("event_type", "tag moved", "lower-case"),
}


@pytest.mark.parametrize("name", sorted(NAME_FILES))
def test_point4_names_refused_at_parse(name: str) -> None:
    """Each stored statement is canonical and fits the schema, but its name or event type
    breaks the profile: MalformedInputError at parse (also inside a signed entry), and
    ValueError from statement_bytes."""
    raw = data(name)
    field, value, why = NAME_FILES[name]
    decoded = msgspec.json.decode(raw, type=v.Statement)  # the schema alone accepts it
    assert getattr(decoded, field) == value
    assert v.canonical.canonical_json(decoded) == raw  # and it is canonical
    with pytest.raises(v.MalformedInputError, match=why):
        v.parse_statement(raw)
    with pytest.raises(ValueError, match=why) as info:
        v.statement_bytes(decoded)
    assert not isinstance(info.value, v.MalformedInputError)
    pipe = gen.pipe()
    entry = v.entry_bytes(index=4, recorded_at=decoded.claimed_at, prev=None, statement=raw,
                          key_id=pipe.key.key_id, sig=pipe.sign(raw))
    with pytest.raises(v.MalformedInputError, match=why):
        v.parse_entry(entry)


@pytest.mark.parametrize("bad,good", [
    ("fraud_sc\u043ering", "fraud_scoring"),  # Cyrillic o among Latin letters
    ("fraud_scoring\u202e", "fraud_scoring"),  # right-to-left override at the end
    ("e\u0301", "\u00e9"),  # not NFC; its NFC form is accepted
    ("mode\u0301le", "mod\u00e8le"),
    ("fraud\u200bscoring", "fraudscoring"),  # zero-width space
    ("\u03bc\u03bf\u03bd\u03c4\u03ad\u03bb\u03bf_\u043c",  # Greek + Cyrillic
     "\u03bc\u03bf\u03bd\u03c4\u03ad\u03bb\u03bf"),
    ("\u0430pple", "apple"),  # Cyrillic a + Latin
    ("\u03bfk", "ok"),  # Greek omicron + Latin
])
def test_point4_names_lookalikes_refused(bad: str, good: str) -> None:
    """Look-alike, invisible, bidi and decomposed names are refused; the plain one is not."""
    assert name_problem(bad) is not None
    assert name_problem(good) is None
    assert unicodedata.normalize("NFC", good) == good


ACCEPTED_NAMES = [
    # Russian
    "\u043c\u043e\u0434\u0435\u043b\u044c_\u0441\u043a\u043e\u0440\u0438\u043d\u0433\u0430",
    "\u039c\u03bf\u03bd\u03c4\u03ad\u03bb\u03bf \u03b1\u03c0\u03ac\u03c4\u03b7\u03c2",  # Greek
    "\u4e0d\u6b63\u691c\u77e5\u30e2\u30c7\u30eb",  # Japanese: Han + Katakana
    "\u4e0d\u6b63\u691c\u77e5\u30e2\u30c7\u30eb_2",  # Japanese with ASCII digits
    "\u3072\u3089\u304c\u306a-1",  # Hiragana with ASCII punctuation
    "\uc0ac\uae30 \ud0d0\uc9c0 1",  # Korean with ASCII
    "mod\u00e8le-\u00e9quipe",  # Latin with accents
]


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_point4_names_accepted(name: str) -> None:
    """Names in one script (or Han/Kana/Hangul with ASCII) register, move tags and join
    groups."""
    assert name_problem(name) is None
    log, p = gen.base()
    gen.register(log, p, name, owner=name, tier=name)
    ev = log.submit(p, "event", model=name, event_type="retrained", payload={})
    log.submit(p, "tag", model=name, tag=name, target=v.snapshot_hash(ev))
    log.submit(p, "member_add", group=MODEL, member=name, role=None)
    inv = v.replay(log.entries)
    assert inv.models[name].tags == {name: v.snapshot_hash(ev)}
    assert inv.models[MODEL].members == {name: None}


LOOKALIKE = "fraud_sc\u043ering"


@pytest.mark.parametrize("op,field", [
    ("register", "name"), ("register", "owner"), ("register", "model_type"),
    ("register", "tier"), ("register", "status"), ("event", "model"), ("tag", "model"),
    ("tag", "tag"), ("member_add", "group"), ("member_add", "member"),
    ("member_remove", "group"), ("member_remove", "member"), ("revoke", "name"),
    ("grant", "actor"),
])
def test_point4_names_every_field_checked(op: str, field: str) -> None:
    """Every name field of every kind goes through the profile (ValueError when written,
    MalformedInputError when parsed); the same statement with a plain name is accepted."""
    bodies: dict[str, dict[str, Any]] = {
        "register": gen.register_body("m"),
        "event": dict(model="m", event_type="retrained", payload={}),
        "tag": dict(model="m", tag="production", target="ab" * 32),
        "member_add": dict(group="g", member="m", role=None),
        "member_remove": dict(group="g", member="m", reason=None),
        "revoke": dict(name="ml-pipeline", reason=None),
        "grant": dict(key="k", role="writer"),
    }
    doc = {"v": 2, "op": op, "id": "stmt-000000000001-x", "actor": "risk-admin",
           "origin": "example.com/models", "claimed_at": T0, "log": "ab" * 32, **bodies[op]}
    assert v.parse_statement(v.statement_bytes(msgspec.convert(doc, v.Statement)))
    doc[field] = LOOKALIKE
    bad = msgspec.convert(doc, v.Statement)
    with pytest.raises(ValueError, match="mixes"):
        v.statement_bytes(bad)
    with pytest.raises(v.MalformedInputError, match="mixes"):
        v.parse_statement(v.canonical.canonical_json(bad))


def test_point4_key_names_have_no_spaces() -> None:
    """An actor (key) name may not contain a space, even inside; a model name may."""
    assert name_problem("ml pipeline", spaces=False) is not None
    assert name_problem("ml pipeline") is None
    assert name_problem("\u6a5f\u68b0 \u5b66\u7fd2", spaces=False) is not None


@pytest.mark.parametrize("event_type,ok", [
    ("deployed", True), ("a", True), ("x_1", True), ("a" + "b" * 63, True),
    ("Deployed", False), ("tag moved", False), ("", False), ("1st", False),
    ("_x", False), ("a" + "b" * 64, False), ("d\u00e9ploy\u00e9", False), ("a-b", False),
])
def test_point4_event_types_are_identifiers(event_type: str, ok: bool) -> None:
    """Event types match [a-z][a-z0-9_]{0,63}."""
    doc = {"v": 2, "op": "event", "id": "stmt-000000000001-x", "actor": "ml-pipeline",
           "origin": "example.com/models", "claimed_at": T0, "log": "ab" * 32, "model": "m",
           "event_type": event_type, "payload": {}}
    try:
        raw = v.canonical.canonical_json(msgspec.convert(doc, v.Statement))
    except msgspec.ValidationError:  # "" is already refused by the schema
        assert not ok
        return
    if ok:
        parsed = v.parse_statement(raw)
        assert isinstance(parsed, v.Event) and parsed.event_type == event_type
    else:
        with pytest.raises(v.MalformedInputError):
            v.parse_statement(raw)


def test_point4_plain_event_tag_moved_refused() -> None:
    """A plain event of type tag_moved (what histories show for tag entries): RuleError."""
    inv, _ = stored_replay_refuses("event_reserved_tag_moved.entries", v.RuleError, "reserved")
    assert inv.models[MODEL].last_event_type == "retrained"


@pytest.mark.parametrize("event_type", ["registered", "tag_moved", "member_added",
                                        "member_removed"])
def test_point4_reserved_event_types(event_type: str) -> None:
    """Every reserved type is refused at replay; the statement itself parses."""
    log, p = gen.base()
    log.submit(p, "event", model=MODEL, event_type=event_type, payload={})
    replay_refuses(log.entries, v.RuleError, "reserved")


@pytest.mark.parametrize("name,match", [
    ("updated_owner_mixed_script.entries", "owner mixes"),
    ("updated_status_retired.entries", "retired"),
])
def test_point4_updated_payload_names(name: str, match: str) -> None:
    """An `updated` payload's owner/model_type/tier/status pass the profile, and status
    cannot become "retired" that way."""
    inv, p = stored_replay_refuses(name, v.RuleError, match)
    assert isinstance(p.statement, v.Event) and p.statement.event_type == "updated"
    assert inv.models[MODEL].status == "active"


def test_point4_updated_with_profile_names_accepted() -> None:
    """The control: plain names in an `updated` payload change the fields."""
    log, p = gen.base()
    log.submit(p, "event", model=MODEL, event_type="updated",
               payload={"owner": "\u30ea\u30b9\u30af", "status": "under_review", "tier": "low"})
    m = v.replay(log.entries).models[MODEL]
    assert (m.owner, m.status, m.tier) == ("\u30ea\u30b9\u30af", "under_review", "low")


@pytest.mark.parametrize("name,match", [
    ("retired_event.entries", "only event it takes"),
    ("retired_retired_again.entries", "only event it takes"),
    ("retired_tag_move.entries", "tags no longer move"),
    ("reactivated_active.entries", "not retired"),
    ("register_retired.entries", "registered active"),
])
def test_point4_retirement_refusals(name: str, match: str) -> None:
    """A retired model takes no event but `reactivated` and its tags do not move;
    `reactivated` needs a retired model; a model is not registered retired."""
    stored_replay_refuses(name, v.RuleError, match)


def test_point4_reactivated_then_events_again() -> None:
    """retired -> reactivated (status active again) -> events and tag moves are accepted."""
    log, p = gen.base()
    log.submit(p, "event", model=MODEL, event_type="retired", payload={"reason": "paused"})
    inv = v.replay(log.entries)
    assert inv.models[MODEL].status == "retired"
    log.submit(p, "event", model=MODEL, event_type="reactivated", payload={})
    ev = log.submit(p, "event", model=MODEL, event_type="retrained", payload={})
    log.submit(p, "tag", model=MODEL, tag="production", target=v.snapshot_hash(ev))
    for data_ in log.entries[inv.size:]:
        inv.apply(data_)
    m = inv.models[MODEL]
    assert m.status == "active" and m.last_event_type == "retrained"
    assert m.tags == {"production": v.snapshot_hash(ev)}
    log.submit(p, "event", model=MODEL, event_type="retired", payload={})
    log.submit(p, "event", model=MODEL, event_type="reactivated", payload={})
    assert v.replay(log.entries).models[MODEL].status == "active"


# -- property: the name profile -----------------------------------------------------------------

_INTERESTING = (
    "\u00e9\u00c0\u00df\u00f8\u0100\u017e\u1e00\u1ef9"  # Latin
    "\u03b1\u03c9\u0391\u03ad\u0386\u03bf"  # Greek
    "\u0430\u043e\u0410\u044f\u0451\u04ff"  # Cyrillic
    "\u3042\u30a2\u30fc\u309d"  # Kana
    "\u4e00\u6a5f\u9fff"  # Han
    "\uac00\ud7a3"  # Hangul
    "\u0301\u0308\u3099\u200b\u200d\u202e\u2066\u061c\u00ad\ufeff"  # marks, format chars
    "\u00a0\u2028\u2029\u0085\u3000\u0000\u001f\u007f\t\n"  # spaces, controls
    "\u05d0\u0627\uff21\u2126\u212b\ud7a4\U0001f600"  # RTL, fullwidth, singletons, emoji
)
_near_profile = st.text(st.one_of(st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                                  st.sampled_from(_INTERESTING)), max_size=210)
_anything = st.text(st.characters(exclude_categories=()), max_size=60)
_BAD_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Mn", "Cs"}


@settings(max_examples=1500, deadline=None)
@given(name=st.one_of(_near_profile, _anything), spaces=st.booleans())
def test_point4_name_problem_property(name: str, spaces: bool) -> None:
    """name_problem never raises; an accepted name is 1-200 characters, NFC, without
    edge spaces and without a control, format, separator or combining character; and
    check_name agrees with it."""
    problem = name_problem(name, spaces=spaces)
    if problem is None:
        assert 1 <= len(name) <= 200 and name == name.strip(" ")
        assert unicodedata.is_normalized("NFC", name)
        assert not {unicodedata.category(c) for c in name} & _BAD_CATEGORIES
        assert spaces or " " not in name
        check_name(name, "name", spaces=spaces)
    else:
        assert isinstance(problem, str) and problem
        with pytest.raises(ValueError):
            check_name(name, "name", spaces=spaces)


_ascii_name = (st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), min_size=1,
                       max_size=200).map(lambda s: s.strip(" ")).filter(bool)
               .filter(lambda s: "  " not in s))


@settings(max_examples=500, deadline=None)
@given(name=_ascii_name)
def test_point4_name_problem_accepts_printable_ascii(name: str) -> None:
    """Every printable-ASCII name of 1-200 characters without edge spaces or two spaces in a
    row is accepted (a key name too, when it has no space)."""
    assert name_problem(name) is None
    assert (name_problem(name, spaces=False) is None) == (" " not in name)


def test_point1_time_entry_held_by_trusted_dated_after_it() -> None:
    """Found by attacking the change: the examiner's trusted checkpoint of size 10, signed
    at T, already held entries 0..9; a bundle whose entries below 10 say they were recorded
    after T (so a date before them hides them) fails, whether the cut is below the trusted
    size or above it. With an honest trusted checkpoint the same bundles verify."""
    from tests.logsim import sample_log

    log, _ = sample_log(models=3)
    keys = [log.log_key.key]

    def rec(i: int) -> int:
        return v.parse_entry(log.entries[i]).entry.recorded_at

    early = v.Checkpoint.parse_note(log.checkpoint(10, time=rec(4) + 1), keys)
    honest = v.Checkpoint.parse_note(log.checkpoint(10), keys)
    below = log.bundle(rec(5) - 1, size=22, trusted=10)   # n = 5 < 10: next entry 5
    above = log.bundle(rec(15), size=22, trusted=10)      # n = 16 > 10: entry 9 held
    for bundle in (below, above):
        with pytest.raises(v.TimeBoundError, match="already held it"):
            v.verify_bundle(bundle, keys, trusted=early)
        assert v.verify_bundle(bundle, keys, trusted=honest).trusted == honest
    top = v.Checkpoint.parse_note(bundle_doc(above)["checkpoint"].encode(), keys)
    same_time = v.Checkpoint.parse_note(log.checkpoint(10, time=top.time), keys)
    with pytest.raises(v.TimeBoundError, match="not after the smaller trusted"):
        v.verify_bundle(above, keys, trusted=same_time)


def test_point1_time_bare_time_line_is_malformed() -> None:
    """A `modelseal-time` line without a value beside a valid one is not an opaque extension."""
    text = v.checkpoint_text("o", 1, b"\0" * 32, ["modelseal-time 5", "modelseal-time"])
    with pytest.raises(v.MalformedInputError, match="modelseal-time"):
        v.checkpoint._time_of(v.Checkpoint.parse_body(text)[3])
