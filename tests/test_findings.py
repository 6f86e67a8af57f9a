"""Findings profiles (specs/findings.md): the rule language's parser, each rule of each
shipped profile on hand-built timelines (firing and quiet), add_months, modelseal-verify
--profile (exit codes, JSON, report), and `modelseal findings` against it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from tests.cli_support import ORIGIN, cli, ok
from tests.logsim import DAY, T0, Log, Signer
from tests.test_cli_server import Served, served  # noqa: F401 (a fixture)
from tests.test_report import assert_self_contained
from verifier import cli as vcli
from verifier.canonical import canonical_json
from verifier.findings import Finding, add_months, evaluate, evaluate_model
from verifier.profile import (
    KINDS,
    Profile,
    ProfileError,
    builtin_profiles,
    load_profile,
    parse_profile,
)
from verifier.replay import ModelState, TimelineItem

BUILTIN = ("eu_ai_act", "nist_ai_rmf", "sr_11_7")


# -- hand-built timelines ------------------------------------------------------------------

def _model(tier: str = "high", model_type: str = "ml_model", status: str = "active"
           ) -> ModelState:
    return ModelState("m", "0" * 64, "team", model_type, tier, "p", status, {}, T0,
                      "a" * 64, "a" * 64)


class _Timeline:
    """Items appended in log order, one day apart unless ``day`` is given."""

    def __init__(self) -> None:
        self.items: list[TimelineItem] = []
        self.day = 0.0

    def add(self, what: str, actor: str = "dev", *, day: float | None = None) -> _Timeline:
        self.day = self.day + 1 if day is None else day
        i = len(self.items)
        snap = f"{i:064x}"
        at = T0 + int(self.day * DAY)
        if what.startswith("tag "):
            detail = canonical_json({"tag": what[4:], "target": "f" * 64})
            self.items.append(TimelineItem(i, at, snap, "tag", None, actor, detail))
        else:
            op = "register" if what == "registered" else "event"
            self.items.append(TimelineItem(i, at, snap, op, what, actor, b"{}"))
        return self

    def run(self, profile: str, rule: str, model: ModelState | None = None,
            as_of: int | None = None) -> list[Finding]:
        p = load_profile(profile)
        assert rule in p.rule_ids
        last = self.items[-1].recorded_at if self.items else T0
        found = evaluate_model(p, model or _model(), self.items, last if as_of is None
                               else as_of)
        return [f for f in found if f.rule == rule]


def tl(*whats: str, actor: str = "dev") -> _Timeline:
    t = _Timeline().add("registered", actor, day=0)
    for w in whats:
        t.add(w, actor)
    return t


# -- SR 11-7 --------------------------------------------------------------------------------

def test_sr_validated_before_production() -> None:
    rule = "validated_before_production"
    [f] = tl("retrained", "tag production", "validated").run("sr_11_7", rule)
    assert f.missing == ("validation",) and [e.index for e in f.entries] == [2]
    assert f.entries[0].what == "tag production" and f.model == "m"
    assert tl("validated", "tag production").run("sr_11_7", rule) == []
    assert tl("retrained", "validated").run("sr_11_7", rule) == []  # never in production
    assert tl("tag staging").run("sr_11_7", rule) == []
    # a group is no model to validate
    assert tl("tag production").run("sr_11_7", rule, _model(model_type="group")) == []


def test_sr_revalidation_due() -> None:
    rule = "revalidation_due"
    t = tl("validated")
    due = add_months(t.items[1].recorded_at, 12)
    assert t.run("sr_11_7", rule, as_of=due) == []
    [f] = t.run("sr_11_7", rule, as_of=due + 1)
    assert [e.index for e in f.entries] == [1] and f.missing == ()
    medium = _model(tier="medium")
    assert t.run("sr_11_7", rule, medium, as_of=due + 1) == []
    assert t.run("sr_11_7", rule, medium, as_of=add_months(due, 12) + 1) != []
    assert t.run("sr_11_7", rule, _model(tier="low"), as_of=due * 2) == []  # no period
    assert t.run("sr_11_7", rule, _model(status="retired"), as_of=due + 1) == []
    # never validated: counted from the registration
    never = tl("retrained")
    [f] = never.run("sr_11_7", rule, as_of=add_months(T0, 12) + 1)
    assert f.missing == ("validated",) and f.entries[0].what == "registered"
    assert never.run("sr_11_7", rule, as_of=add_months(T0, 12)) == []


def test_only_retired_may_be_excluded_by_status() -> None:
    """exclude_statuses may list only "retired", the one status the rules make final: any
    other status is text a writer sets (at registration or in an updated event) and would
    exempt a live model."""
    head = (b'format = "modelseal-findings-profile"\nversion = 1\nid = "own"\ntitle = "Own"\n'
            b'[[rule]]\nid = "due"\nkind = "max_age"\ntitle = "t"\nseverity = "high"\n'
            b'events = ["validated"]\nmonths = { high = 12 }\n')
    for listed in (b'["inactive"]', b'["retired", "inactive"]', b'["Retired"]'):
        with pytest.raises(ProfileError, match=r"rule\[0\]\.applies_to\.exclude_statuses "
                                               r"lists .*only 'retired' may be excluded"):
            parse_profile(head + b"applies_to = { exclude_statuses = " + listed + b" }\n",
                          "own.toml")
    profile = parse_profile(head + b'applies_to = { exclude_statuses = ["retired"] }\n',
                            "own.toml")
    t = tl("validated")
    as_of = add_months(t.items[1].recorded_at, 12) + 1
    assert evaluate_model(profile, _model(status="active"), t.items, as_of) != []
    assert evaluate_model(profile, _model(status="inactive"), t.items, as_of) != []
    assert evaluate_model(profile, _model(status="retired"), t.items, as_of) == []


def test_sr_independent_validation() -> None:
    rule = "independent_validation"
    t = _Timeline().add("registered", "pipe", day=0).add("retrained", "pipe")
    assert t.add("validated", "validators").run("sr_11_7", rule) == []
    [f] = t.add("validated", "pipe").run("sr_11_7", rule)
    assert [e.what for e in f.entries] == ["registered", "validated"]
    assert "pipe" in f.message
    # a trainer that validates first and retrains later is no more independent
    t2 = _Timeline().add("registered", "a", day=0).add("validation_failed", "b")
    t2.add("retrained", "b")
    [f2] = t2.run("sr_11_7", rule)
    assert [e.what for e in f2.entries] == ["validation_failed", "retrained"]


def test_sr_no_production_after_failed_validation() -> None:
    rule = "no_production_after_failed_validation"
    [f] = tl("validation_failed", "retrained", "tag production").run("sr_11_7", rule)
    assert [e.what for e in f.entries] == ["validation_failed", "tag production"]
    assert tl("validation_failed", "validated", "tag production").run("sr_11_7", rule) == []
    assert tl("tag production", "validation_failed").run("sr_11_7", rule) == []
    # every production move until a pass is one finding
    two = tl("validation_failed", "tag production", "tag production", "validated",
             "tag production")
    assert len(two.run("sr_11_7", rule)) == 2


# -- EU AI Act and NIST AI RMF --------------------------------------------------------------

EU_EVIDENCE = ("risk_assessed", "documented", "logging_verified", "oversight_assigned",
               "robustness_tested")


def test_eu_high_risk_evidence_before_deployment() -> None:
    rule = "high_risk_evidence_before_deployment"
    [f] = tl("deployed").run("eu_ai_act", rule)
    assert f.missing == ("risk_management", "technical_documentation", "record_keeping",
                         "human_oversight", "accuracy_robustness")
    assert tl(*EU_EVIDENCE, "deployed").run("eu_ai_act", rule) == []
    assert tl(*EU_EVIDENCE[:3], "validated", "oversight_assigned", "tag production").run(
        "eu_ai_act", rule) == []
    [f] = tl(*EU_EVIDENCE[:3], "tag production", "oversight_assigned", "validated").run(
        "eu_ai_act", rule)
    assert f.missing == ("human_oversight", "accuracy_robustness")
    assert tl("deployed").run("eu_ai_act", rule, _model(tier="medium")) == []
    assert tl("retrained").run("eu_ai_act", rule) == []  # not deployed


def test_nist_map_measure_before_deployment() -> None:
    rule = "map_measure_before_deployment"
    [f] = tl("validated", "deployed").run("nist_ai_rmf", rule)
    assert f.missing == ("map",)
    assert tl("context_mapped", "bias_tested", "tag production").run("nist_ai_rmf", rule) == []
    assert tl("retrained").run("nist_ai_rmf", rule) == []


def test_nist_manage_reviewed() -> None:
    rule = "manage_reviewed"
    t = tl("monitoring_reviewed")
    due = add_months(t.items[1].recorded_at, 6)
    assert t.run("nist_ai_rmf", rule, as_of=due) == []
    assert len(t.run("nist_ai_rmf", rule, as_of=due + 1)) == 1
    assert t.run("nist_ai_rmf", rule, _model(tier="low"), as_of=due + 1) == []
    assert t.run("nist_ai_rmf", rule, _model(status="retired"), as_of=due * 2) == []
    [f] = tl("deployed").run("nist_ai_rmf", rule, as_of=add_months(T0, 6) + 1)
    assert f.missing == ("monitoring_reviewed", "risk_treated", "incident_resolved")


def test_every_shipped_rule_is_tested() -> None:
    """The tests above name every rule of every shipped profile (so a new one needs its
    own positive and negative case)."""
    covered = {"sr_11_7": {"validated_before_production", "revalidation_due",
                           "independent_validation", "no_production_after_failed_validation"},
               "eu_ai_act": {"high_risk_evidence_before_deployment"},
               "nist_ai_rmf": {"map_measure_before_deployment", "manage_reviewed"}}
    assert builtin_profiles() == BUILTIN
    for name in BUILTIN:
        assert set(load_profile(name).rule_ids) == covered[name]


# -- add_months -----------------------------------------------------------------------------

def _ns(*args: int) -> int:
    return v.to_ns(datetime(*args).replace(tzinfo=timezone.utc))  # type: ignore[arg-type]


def test_add_months_clamps_to_the_month_end() -> None:
    assert add_months(_ns(2025, 1, 31, 10), 1) == _ns(2025, 2, 28, 10)
    assert add_months(_ns(2024, 1, 31, 10), 1) == _ns(2024, 2, 29, 10)
    assert add_months(_ns(2024, 2, 29), 12) == _ns(2025, 2, 28)
    assert add_months(_ns(2025, 11, 15) + 123, 3) == _ns(2026, 2, 15) + 123
    assert add_months(_ns(1969, 12, 31, 23), 1) == _ns(1970, 1, 31, 23)


@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**9),
       st.integers(min_value=1, max_value=1200))
def test_add_months_properties(ns: int, months: int) -> None:
    later = add_months(ns, months)
    assert 28 * months * DAY <= later - ns <= 31 * months * DAY
    assert (later - ns) % DAY == 0  # the time of day is kept, to the nanosecond
    assert add_months(ns + 1, months) > later


# -- the parser -----------------------------------------------------------------------------

GOOD = b'''format = "modelseal-findings-profile"
version = 1
id = "mine"
title = "Our policy"

[[rule]]
id = "approved"
kind = "required_before"
title = "Approved before production"
severity = "low"
evidence = { approval = ["approved"] }
before = { tags = ["production"] }
'''


def _bad(text: bytes, *fragments: str) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, "p.toml")
    message = str(info.value)
    assert message.startswith("p.toml: ")
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_builtin_profiles_parse() -> None:
    for name in BUILTIN:
        p = load_profile(name)
        assert p.id == name and p.source == f"builtin:{name}" and len(p.sha256) == 64
        assert all(r.kind in KINDS for r in p.rules)


def test_a_good_profile() -> None:
    p = parse_profile(GOOD, "p.toml")
    assert p.id == "mine" and p.rules[0].evidence == (("approval", ("approved",)),)
    assert p.rules[0].before is not None and p.rules[0].before.tags == ("production",)


@pytest.mark.parametrize(("change", "fragments"), [
    (b'colour = "red"\n', ("unknown key rule[0].colour",)),
    (b'[[rule]]\nid = "x"\nkind = "max_age"\ntitle = "t"\nseverity = "low"\n'
     b'events = ["validated"]\nmonths = { high = 0 }\n', ("rule[1].months.high",)),
    (b'[[rule]]\nid = "x"\nkind = "max_age"\ntitle = "t"\nseverity = "low"\n'
     b'events = ["validated"]\nmonths = { high = true }\n', ("rule[1].months.high",)),
    (b'[[rule]]\nid = "x"\nkind = "max_age"\ntitle = "t"\nseverity = "low"\n'
     b'events = ["validated"]\nmonths = { high = 12 }\nwithin = 3\n',
     ("unknown key rule[1].within",)),
    (b'[[rule]]\nid = "x"\nkind = "forbid"\ntitle = "t"\nseverity = "low"\n',
     ("rule[1].kind", "required_before")),
    (b'[[rule]]\nid = "approved"\nkind = "distinct_actors"\ntitle = "t"\nseverity = "low"\n'
     b'events = ["a"]\nnot_by_actors_of = ["b"]\n', ("rule[1].id", "earlier rule")),
    (b'[[rule]]\nid = "x"\nkind = "distinct_actors"\ntitle = "t"\nseverity = "low"\n'
     b'events = ["Validated"]\nnot_by_actors_of = ["b"]\n', ("rule[1].events[0]",)),
    (b'[[rule]]\nid = "x"\nkind = "distinct_actors"\ntitle = "t"\nseverity = "low"\n'
     b'events = ["a", "b"]\nnot_by_actors_of = ["b"]\n', ("rule[1].not_by_actors_of",)),
    (b'[[rule]]\nid = "x"\nkind = "distinct_actors"\ntitle = "t"\nseverity = "urgent"\n'
     b'events = ["a"]\nnot_by_actors_of = ["b"]\n', ("rule[1].severity",)),
    (b'[[rule]]\nid = "x"\nkind = "pass_after_fail"\ntitle = "t"\nseverity = "low"\n'
     b'fail = ["a"]\npass = ["a"]\nbefore = { tags = ["p"] }\n', ("rule[1].pass",)),
    (b'[[rule]]\nid = "x"\nkind = "pass_after_fail"\ntitle = "t"\nseverity = "low"\n'
     b'fail = ["a"]\npass = ["b"]\nbefore = { tags = [] }\n', ("rule[1].before",)),
    (b'[[rule]]\nid = "x"\nkind = "pass_after_fail"\ntitle = "t"\nseverity = "low"\n'
     b'fail = ["a"]\npass = ["b"]\n', ("rule[1].before is missing",)),
    (b'[[rule]]\nid = "x"\nkind = "required_before"\ntitle = "t"\nseverity = "low"\n'
     b'evidence = {}\n', ("rule[1].evidence",)),
    (b'[[rule]]\nid = "x"\nkind = "required_before"\ntitle = "t"\nseverity = "low"\n'
     b'evidence = { a = ["x", "x"] }\n', ("rule[1].evidence.a", "twice")),
    (b'[[rule]]\nid = "x"\nkind = "required_before"\ntitle = "t"\nseverity = "low"\n'
     b'evidence = { a = ["x"] }\napplies_to = { tier = ["high"] }\n',
     ("unknown key rule[1].applies_to.tier",)),
])
def test_bad_profiles_name_the_key(change: bytes, fragments: tuple[str, ...]) -> None:
    _bad(GOOD + change, *fragments)


def test_bad_documents() -> None:
    _bad(b'colour = "red"\n' + GOOD, "unknown key colour")
    _bad(GOOD.replace(b"version = 1", b"version = 2"), "version")
    _bad(GOOD.replace(b'format = "modelseal-findings-profile"\n', b""), "format")
    _bad(GOOD.replace(b'id = "mine"', b'id = "Mine"'), "id")
    _bad(GOOD.replace(b'title = "Our policy"', b'title = "Our\\npolicy"'), "title",
         "control characters")
    assert parse_profile(GOOD, "p").description == ""
    assert parse_profile(b'description = "a\\n\\tb"\n' + GOOD, "p").description == "a\n\tb"
    _bad(GOOD + b"x = [\n", "not valid TOML", "end of document")
    _bad(GOOD.replace(b"version = 1", b"version = = 1"), "not valid TOML", "line 2")
    _bad(b"\xff\xfe", "not UTF-8")
    _bad(b'format = "modelseal-findings-profile"\nversion = 1\nid = "a"\ntitle = "t"\n',
         "rule")
    _bad(b"a" * (1 << 20 + 1), "at most")
    with pytest.raises(TypeError):
        parse_profile("text", "p")  # type: ignore[arg-type]


def test_load_profile_refs(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no built-in profile 'nope'"):
        load_profile("nope")
    path = tmp_path / "mine.toml"
    path.write_bytes(GOOD)
    p = load_profile(str(path))
    assert p.source == str(path) and p.id == "mine"
    with pytest.raises(OSError):
        load_profile(str(tmp_path / "absent.toml"))


# hypothesis: generated profiles parse to what they say; anything else is a ProfileError

_ident = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
_types = st.lists(_ident, min_size=1, max_size=4, unique=True)
_names = st.lists(st.sampled_from(["high", "medium", "low", "group", "Tier 1", "retired"]),
                  max_size=3, unique=True)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(x) for x in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in value.items()) + " }"


@st.composite
def _rule(draw: st.DrawFn, rid: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    rule: dict[str, Any] = {"id": rid, "kind": kind, "title": draw(st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f"),
        min_size=1, max_size=40).filter(str.strip)),
        "severity": draw(st.sampled_from(["high", "medium", "low"]))}
    if draw(st.booleans()):
        rule["applies_to"] = {"tiers": draw(_names), "exclude_model_types": draw(_names)}
    trigger_events = draw(_types)

    def trigger(used: list[str]) -> dict[str, list[str]]:
        """A trigger whose events are none of ``used`` (the profile refuses those)."""
        return {"tags": ["production"], "events": [e for e in trigger_events if e not in used]}

    if kind == "required_before":
        rule["evidence"] = draw(st.dictionaries(_ident, _types, min_size=1, max_size=4))
        if draw(st.booleans()):
            rule["before"] = trigger([e for types in rule["evidence"].values() for e in types])
    elif kind == "max_age":
        rule["events"] = draw(_types)
        rule["months"] = draw(st.dictionaries(st.sampled_from(["high", "medium", "low"]),
                                              st.integers(1, 1200), min_size=1))
    else:  # two lists of event types with none in common
        both = draw(st.lists(_ident, min_size=2, max_size=6, unique=True))
        cut = draw(st.integers(1, len(both) - 1))
        if kind == "distinct_actors":
            rule["events"], rule["not_by_actors_of"] = both[:cut], both[cut:]
        else:
            rule["fail"], rule["pass"], rule["before"] = both[:cut], both[cut:], trigger(both)
    return rule


@st.composite
def _profile(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]]]:
    ids = draw(st.lists(_ident, min_size=1, max_size=5, unique=True))
    rules = [draw(_rule(rid)) for rid in ids]
    text = 'format = "modelseal-findings-profile"\nversion = 1\nid = "gen"\ntitle = "G"\n'
    for rule in rules:
        text += "\n[[rule]]\n" + "".join(f"{k} = {_toml(x)}\n" for k, x in rule.items())
    return text.encode("utf-8"), rules


@settings(max_examples=150, deadline=None)
@given(_profile())
def test_generated_profiles_parse(doc: tuple[bytes, list[dict[str, Any]]]) -> None:
    data, rules = doc
    p = parse_profile(data, "gen.toml")
    assert [r.id for r in p.rules] == [r["id"] for r in rules]
    for got, want in zip(p.rules, rules, strict=True):
        assert got.kind == want["kind"] and got.severity == want["severity"]
        if want["kind"] == "max_age":
            assert dict(got.months) == want["months"]
        if want["kind"] == "pass_after_fail":
            assert (list(got.fail), list(got.passes)) == (want["fail"], want["pass"])


@settings(max_examples=150, deadline=None)
@given(_profile(), st.data())
def test_an_unknown_key_anywhere_is_refused(doc: tuple[bytes, list[dict[str, Any]]],
                                            data: st.DataObject) -> None:
    _, rules = doc
    i = data.draw(st.integers(0, len(rules) - 1))
    rules[i]["zz_unknown"] = 1
    text = 'format = "modelseal-findings-profile"\nversion = 1\nid = "gen"\ntitle = "G"\n'
    for rule in rules:
        text += "\n[[rule]]\n" + "".join(f"{k} = {_toml(x)}\n" for k, x in rule.items())
    with pytest.raises(ProfileError, match=rf"unknown key rule\[{i}\]\.zz_unknown"):
        parse_profile(text.encode(), "gen.toml")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.builds(
    lambda b, cut, junk: GOOD[:cut] + junk + GOOD[cut:], st.just(b""),
    st.integers(0, len(GOOD)), st.binary(max_size=8)))
def test_mangled_profiles_raise_only_profile_error(data: bytes) -> None:
    try:
        parse_profile(data, "x.toml")
    except ProfileError as exc:
        assert str(exc).startswith("x.toml: ")


# -- modelseal-verify --profile --------------------------------------------------------------

def _log() -> tuple[Log, Signer, Signer]:
    """A log whose model `scorer` went to production unvalidated and was then validated by
    its own trainer, and whose `clean` was validated independently first."""
    log = Log.create(seed="findings")
    pipe, val = Signer("ml-pipeline", b"f-pipe"), Signer("validators", b"f-val")
    for s in (pipe, val):
        log.submit(log.admin, "grant", key=s.vkey, role="writer")
    for name in ("scorer", "clean"):
        log.submit(pipe, "register", name=name, owner="team", model_type="ml_model",
                   tier="high", purpose="p", status="active", metadata={})
    ev = log.submit(pipe, "event", model="scorer", event_type="retrained", payload={})
    log.submit(pipe, "tag", model="scorer", tag="production", target=v.snapshot_hash(ev))
    log.submit(pipe, "event", model="scorer", event_type="validated", payload={})
    ev = log.submit(val, "event", model="clean", event_type="validated", payload={})
    log.submit(pipe, "tag", model="clean", tag="production", target=v.snapshot_hash(ev))
    return log, pipe, val


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    log, _, _ = _log()
    path = tmp_path_factory.mktemp("findings") / "bundle.json"
    path.write_bytes(log.bundle(log.clock))
    return path, log.log_key.vkey


def _verify(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = vcli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_verify_prints_findings_after_ok(capsys: pytest.CaptureFixture[str],
                                         bundle_file: tuple[Path, str]) -> None:
    path, key = bundle_file
    code, out, _ = _verify(capsys, path, "--key", key, "--profile", "sr_11_7")
    assert code == 0 and out.startswith("OK: ")
    tail = out[out.index("\nFINDINGS: 2 (sr_11_7; as of "):]
    assert "sr_11_7/validated_before_production scorer:" in tail
    assert "sr_11_7/independent_validation scorer:" in tail
    assert "clean" not in tail
    code, out, _ = _verify(capsys, path, "--key", key, "--profile", "sr_11_7",
                           "--fail-on-findings")
    assert code == vcli.EXIT_FINDINGS == 6 and "FINDINGS: 2" in out
    code, out, _ = _verify(capsys, path, "--key", key)
    assert code == 0 and "FINDINGS" not in out


def test_verify_with_a_profile_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    bundle_file: tuple[Path, str]) -> None:
    path, key = bundle_file
    quiet = tmp_path / "quiet.toml"
    quiet.write_bytes(GOOD)  # nothing records `approved`, but `production` moved: 2 findings
    code, out, _ = _verify(capsys, path, "--key", key, "--profile", str(quiet),
                           "--fail-on-findings")
    assert code == 6 and "FINDINGS: 2 (mine;" in out
    quiet.write_bytes(GOOD.replace(b'tags = ["production"]', b'tags = ["canary"]'))
    code, out, _ = _verify(capsys, path, "--key", key, "--profile", str(quiet),
                           "--fail-on-findings")
    assert code == 0 and "FINDINGS: 0 (mine;" in out


def test_verify_profile_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               bundle_file: tuple[Path, str]) -> None:
    path, key = bundle_file
    code, out, err = _verify(capsys, path, "--key", key, "--profile", "sox")
    assert code == 2 and "no built-in profile 'sox'" in err and out == ""
    code, out, err = _verify(capsys, path, "--key", key, "--fail-on-findings")
    assert code == 2 and "needs at least one --profile" in err
    bad = tmp_path / "bad.toml"
    bad.write_bytes(GOOD + b"colour = 1\n")
    code, out, _ = _verify(capsys, path, "--key", key, "--profile", str(bad))
    assert code == 3 and out.startswith("FAIL: bad profile: ") and "colour" in out
    code, out, err = _verify(capsys, path, "--key", key, "--profile", str(bad), "--json")
    assert code == 3 and json.loads(out)["error"] == "malformed_input"
    assert json.loads(err)["error"]["exit_code"] == 3
    code, out, _ = _verify(capsys, path, "--key", key, "--profile", str(tmp_path / "no.toml"))
    assert code == 4 and "cannot read profile" in out
    code, out, _ = _verify(capsys, path, "--key", key, "--profile", "sr_11_7",
                           "--profile", "sr_11_7")
    assert code == 3 and "given twice" in out
    # a bundle that fails keeps its own code, whatever the profile
    tampered = tmp_path / "t.json"
    tampered.write_bytes(path.read_bytes().replace(b'"size":', b'"size": 1, "x":', 1))
    code, out, _ = _verify(capsys, tampered, "--key", key, "--profile", "sr_11_7",
                           "--fail-on-findings")
    assert code == 3


def test_verify_json_shape(capsys: pytest.CaptureFixture[str],
                           bundle_file: tuple[Path, str]) -> None:
    path, key = bundle_file
    code, out, _ = _verify(capsys, path, "--key", key, "--profile", "sr_11_7", "--profile",
                           "eu_ai_act", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True
    found = doc["findings"]
    assert set(found) == {"as_of", "as_of_ns", "profiles", "count", "items"}
    assert found["as_of_ns"] == doc["at"]["time_ns"] and found["as_of"] == doc["at"]["time"]
    assert [p["id"] for p in found["profiles"]] == ["sr_11_7", "eu_ai_act"]
    assert found["profiles"][0]["source"] == "builtin:sr_11_7"
    assert found["count"] == len(found["items"]) == 4  # 2 SR 11-7, both models for the AI Act
    item = found["items"][0]
    assert set(item) == {"profile", "rule", "kind", "severity", "title", "model", "message",
                         "entries", "missing"}
    assert item["rule"] == "validated_before_production" and item["missing"] == ["validation"]
    [entry] = item["entries"]
    assert set(entry) == {"index", "snapshot", "recorded_at", "what", "actor"}
    assert entry["what"] == "tag production" and len(entry["snapshot"]) == 64
    assert entry["index"] == 6  # genesis, 2 grants, 2 registrations, retrained, the tag


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.sections: list[str] = []
        self.finding_rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "section":
            self.sections.append(str(a.get("id")))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))
        if tag == "tr" and a.get("data-rule"):
            self.finding_rows += 1


def test_report_findings_section(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 bundle_file: tuple[Path, str]) -> None:
    path, key = bundle_file
    report = tmp_path / "r.html"
    code, _, _ = _verify(capsys, path, "--key", key, "--profile", "sr_11_7", "--report", report)
    assert code == 0
    html = report.read_text(encoding="utf-8")
    assert_self_contained(html)  # the links stay within the report
    parsed = _Links()
    parsed.feed(html)
    assert parsed.sections == ["verified", "inventory", "findings", "activity", "timelines"]
    assert parsed.finding_rows == 2
    assert parsed.hrefs and all(h.startswith("#model-") and h[1:] in parsed.ids
                                for h in parsed.hrefs)
    # without a profile there is no findings section, and the report is unchanged otherwise
    _verify(capsys, path, "--key", key, "--report", report)
    plain = _Links()
    plain.feed(report.read_text(encoding="utf-8"))
    assert "findings" not in plain.sections


def test_evaluate_needs_timelines() -> None:
    log, _, _ = _log()
    result = v.verify_bundle(log.bundle(log.clock), [log.log_key.key])
    found = evaluate([load_profile("sr_11_7")], result)
    assert found.as_of == result.time and len(found.items) == 2
    object.__setattr__(result.inventory.memory, "timelines", None)
    with pytest.raises(ValueError):
        evaluate([load_profile("sr_11_7")], result)


def test_profile_json_names_its_bytes() -> None:
    p: Profile = load_profile("sr_11_7")
    import hashlib
    from importlib import resources
    data = resources.files("verifier").joinpath("profiles", "sr_11_7.toml").read_bytes()
    assert p.to_json()["sha256"] == hashlib.sha256(data).hexdigest()


# -- modelseal findings ---------------------------------------------------------------------

def _store(base: Path) -> dict[str, str]:
    """A store through the Ledger API on a simulated clock; its environment."""
    from cli.scenario import DemoClock
    from ledger import ActorKey, Ledger, LogKey

    log_key, admin = LogKey.generate(ORIGIN), ActorKey.generate("risk-admin")
    pipe = ActorKey.generate("ml-pipeline")
    clock = DemoClock(datetime(2025, 1, 6, 9, tzinfo=timezone.utc))
    keys = base / "keys"
    keys.mkdir(mode=0o700)
    with Ledger.create(base / "store", origin=ORIGIN, log_key=log_key, admin=admin,
                       clock=clock) as led:
        led.grant(pipe.vkey, role="writer")
        led.signer = pipe
        led.register(name="scorer", owner="t", model_type="ml_model", tier="high",
                     purpose="p")
        snap = led.record("scorer", "retrained", {"auc": 0.9})
        led.tag("scorer", "production", snapshot=snap.snapshot_hash)
        clock.set(datetime(2025, 3, 1, tzinfo=timezone.utc))
        led.signer = admin
        led.record("scorer", "validation_failed", {"result": "fail"})
        led.signer = pipe
        led.tag("scorer", "production", snapshot=snap.snapshot_hash)
    log_key.save(keys / "log.key")
    admin.save(keys / "admin.key")
    return {"MODELSEAL_STORE": str(base / "store"), "MODELSEAL_LOG_KEY": str(keys / "log.key"),
            "MODELSEAL_KEY": str(keys / "admin.key")}


def test_modelseal_findings_equals_modelseal_verify(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from ledger import Ledger

    env = _store(tmp_path)
    for when in ("2025-02-01", "2025-06-30T12:00:00Z"):
        mine = ok(cli("findings", "--profile", "sr_11_7", "--profile", "eu_ai_act", "--at",
                      when, "--json", env=env)).json()
        bundle = tmp_path / f"b-{when[:10]}.json"
        ok(cli("export", "--at", when, "-o", bundle, env=env))
        with Ledger.open(Path(env["MODELSEAL_STORE"])) as led:
            key = led.log_vkey
        code, out, _ = _verify(capsys, bundle, "--key", key, "--profile", "sr_11_7",
                               "--profile", "eu_ai_act", "--json")
        assert code == 0
        assert json.loads(out)["findings"] == mine
    rules = [f["rule"] for f in mine["items"]]
    assert rules == ["validated_before_production", "no_production_after_failed_validation",
                     "high_risk_evidence_before_deployment"]
    text = ok(cli("findings", "--profile", "sr_11_7", "--at", "2025-06-30", env=env)).out
    assert text.startswith("verified: every entry the log recorded up to 2025-06-30")
    assert "\nFINDINGS: 2 (sr_11_7; as of 2025-06-30T23:59:59.999999Z)" in text
    # without --at: as of now (a checkpoint signed now), so revalidations have fallen due
    run = cli("findings", "--profile", "sr_11_7", "--fail-on-findings", env=env)
    assert run.code == 6 and "sr_11_7/revalidation_due" in run.out, run.out
    early = ok(cli("findings", "--profile", "sr_11_7", "--at", "2025-01-06T09:00:01Z",
                   "--fail-on-findings", env=env))
    assert "FINDINGS: 0" in early.out
    bad = cli("findings", "--profile", "sox", env=env)
    assert bad.code == 2 and "no built-in profile 'sox'" in bad.err
    broken = tmp_path / "broken.toml"
    broken.write_bytes(b"format = 1\n")
    assert cli("findings", "--profile", str(broken), env=env).code == 3


# -- the demo ---------------------------------------------------------------------------------

def test_the_demo_yields_its_findings(tmp_path: Path) -> None:
    """The demo's year holds five lapses, and the three profiles find exactly them (and
    nothing else) as of the quarter end the examiner receives."""
    from cli.demo import QUARTER_END
    from cli.scenario import START, DemoClock, run_year
    from ledger import ActorKey, Ledger, LogKey

    log_key, admin = LogKey.generate("demo.example/model-inventory"), ActorKey.generate("a")
    clock = DemoClock(START)
    with Ledger.create(tmp_path / "s", origin="demo.example/model-inventory", log_key=log_key,
                       admin=admin, clock=clock) as led:
        run_year(led, log_key, admin, clock, lambda done, total: None)
        bundle = led.export_bundle(at=QUARTER_END)
    result = v.verify_bundle(bundle, [log_key.key])
    found = evaluate([load_profile(n) for n in ("sr_11_7", "eu_ai_act", "nist_ai_rmf")],
                     result)
    assert sorted((f.profile, f.rule, f.model) for f in found.items) == [
        ("eu_ai_act", "high_risk_evidence_before_deployment", "fraud_bnpl_risk"),
        ("eu_ai_act", "high_risk_evidence_before_deployment", "pricing_mortgage_rate"),
        ("nist_ai_rmf", "manage_reviewed", "aml_customer_risk_rating"),
        ("nist_ai_rmf", "map_measure_before_deployment", "fraud_bnpl_risk"),
        ("sr_11_7", "independent_validation", "fraud_merchant_risk"),
        ("sr_11_7", "no_production_after_failed_validation", "credit_pd_retail"),
        ("sr_11_7", "validated_before_production", "fraud_bnpl_risk"),
    ]
    # every entry a finding cites is the model's own, at the index and hash it says
    timelines = result.inventory.timelines or {}
    for f in found.items:
        own = {(it.index, it.snapshot) for it in timelines[f.model]}
        assert {(e.index, e.snapshot) for e in f.entries} <= own


def test_modelseal_findings_through_a_server(served: Served) -> None:  # noqa: F811
    """--server gives what the store gives: the same bundle, verified and evaluated."""
    from tests.cli_support import MODEL

    ok(served.local("register", "m1", *MODEL))
    ok(served.local("record", "m1", "--event", "retrained"))
    ok(served.local("tag", "m1", "production"))
    args = ("findings", "--profile", "sr_11_7", "--profile", "eu_ai_act", "--json")
    local, remote = ok(served.local(*args)).json(), ok(served.remote(*args)).json()
    assert remote == local and local["count"] == 2
    run = served.remote("findings", "--profile", "sr_11_7", "--fail-on-findings")
    assert run.code == 6 and "sr_11_7/validated_before_production m1:" in run.out


# -- imported claims (specs/findings.md §6) ---------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(record=st.one_of(_json, st.fixed_dictionaries(
    {"source": st.sampled_from(["model-ledger", "other"]),
     "at": st.one_of(_json, st.datetimes(timezones=st.just(timezone.utc)).map(
         lambda d: d.isoformat().replace("+00:00", "Z"))),
     "actor": st.one_of(_json, st.sampled_from(["validation-team", " x", "a\u202eb"]))})),
    recorded=st.integers(0, 2**62))
def test_imported_claims_are_read_conservatively(record: Any, recorded: int) -> None:
    """Any payload: an ``imported`` record never raises, never makes an event fresher than
    the log recorded it, and an actor outside the name profile is not read."""
    from verifier.findings import _Claims

    item = TimelineItem(1, recorded, "ab" * 32, "event", "validated", "importer",
                        canonical_json({"imported": record}))
    claims = _Claims(ModelState("m", "h", "o", "ml_model", "high", "p", "active", {}, 0,
                                "s", "s"), [item])
    assert claims.time(item) <= recorded
    claim = claims.of(item)
    if claim is None:
        assert claims.actor(item) == "importer" and claims.time(item) == recorded
    else:
        assert record["source"] == "model-ledger"
        assert claim.actor is None or v.name_problem(claim.actor) is None
        assert claims.actor(item) == (claim.actor or "importer")
