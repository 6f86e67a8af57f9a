"""Hostile findings profiles (TOML bombs, odd numbers, unknown keys, unicode, rules that
can never or always fire) and findings that claim more than the log proves (the "as of"
time, cuts, imported history)."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

import verifier as v
from cli.scenario import DemoClock
from ledger import ActorKey, Ledger, LogKey
from ledger.mlimport import import_model_ledger
from tests.cli_support import init_store, saved_store
from tests.logsim import DAY, Log, Signer
from verifier import cli as vcli
from verifier.findings import add_months, evaluate
from verifier.report import render_report
from verifier.profile import MAX_PROFILE_BYTES, ProfileError, load_profile, parse_profile

DATA = Path(__file__).resolve().parent.parent / "data" / "model_ledger"
HEAD = b'format = "modelseal-findings-profile"\nversion = 1\nid = "ours"\ntitle = "Ours"\n'
GOOD_RULE = (b'[[rule]]\nid = "r"\nkind = "max_age"\ntitle = "t"\nseverity = "low"\n'
             b'events = ["validated"]\nmonths = { high = 12 }\n')


def _refused(data: bytes) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        parse_profile(data, "ours.toml")
    return info.value


# -- hostile profiles ---------------------------------------------------------------------

def test_moderately_nested_toml_is_a_profile_error() -> None:
    for bomb in (b"x = " + b"[" * 200 + b"]" * 200 + b"\n",
                 b"x = " + b"{a=" * 200 + b"1" + b"}" * 200 + b"\n"):
        assert "unknown key x" in str(_refused(HEAD + bomb + GOOD_RULE))


def test_deeply_nested_toml_is_a_profile_error() -> None:
    # FINDING: medium: a profile of nested arrays/inline tables (10 KB) makes parse_profile raise RecursionError, not ProfileError (read_policy catches it, the profile reader does not)  # noqa: E501
    for bomb in (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
                 b"x = " + b"{a=" * 5000 + b"1" + b"}" * 5000 + b"\n"):
        _refused(HEAD + bomb + GOOD_RULE)


def test_deeply_nested_profile_file_exits_3_in_modelseal_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # FINDING: medium: (same root cause, CLI side) modelseal-verify --profile bomb.toml exits 70 as an internal error rather than 3 (malformed input)  # noqa: E501
    bomb = tmp_path / "bomb.toml"
    bomb.write_bytes(HEAD + b"x = " + b"[" * 3000 + b"]" * 3000 + b"\n" + GOOD_RULE)
    log = Log.create(seed="a13-bomb")
    bundle = tmp_path / "b.json"
    bundle.write_bytes(log.bundle(log.clock))
    code = vcli.main([str(bundle), "--key", log.log_key.vkey, "--profile", str(bomb)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == 3, (code, err)
    store = init_store(tmp_path)  # the operator's side: same profile reader
    run = store.run("findings", "--profile", str(bomb))
    assert run.code == 3, (run.code, run.err)


@pytest.mark.parametrize("months", [b"0", b"-1", b"1201", b"99999999999999999999999999",
                                    b"1.5", b"true", b"inf", b"nan", b'"12"', b"[12]"])
def test_odd_month_counts_are_refused(months: bytes) -> None:
    err = _refused(HEAD + GOOD_RULE.replace(b"high = 12", b"high = " + months))
    assert "rule[0].months.high" in str(err)


@pytest.mark.parametrize("change", [
    (b'events = ["validated"]', b'events = ["valid\xc3\xa1ted"]'),       # non-ASCII letter
    (b'events = ["validated"]', b'events = ["validated\\u200b"]'),       # zero-width
    (b'events = ["validated"]', b'events = ["VALIDATED"]'),
    (b'months = { high = 12 }', b'months = { "h\\u0456gh" = 12 }'),       # Cyrillic i
    (b'months = { high = 12 }', b'months = { "high\\u202e" = 12 }'),      # bidi control
    (b'severity = "low"', b'severity = "LOW"'),
    (b'severity = "low"', b'severity = "low"\nextra = 1'),
    (b'kind = "max_age"', b'kind = "max_age "'),
])
def test_unicode_tricks_and_unknown_keys_are_refused(change: tuple[bytes, bytes]) -> None:
    _refused(HEAD + GOOD_RULE.replace(*change))


def test_size_and_rule_count_limits() -> None:
    _refused(HEAD + b"#" * MAX_PROFILE_BYTES + b"\n" + GOOD_RULE)
    many = b"".join(GOOD_RULE.replace(b'id = "r"', f'id = "r{i}"'.encode())
                    for i in range(257))
    _refused(HEAD + many)
    _refused(HEAD + GOOD_RULE + GOOD_RULE)  # one id twice
    _refused(b"\xff\xfe" + HEAD + GOOD_RULE)  # not UTF-8
    _refused(HEAD.replace(b"version = 1", b"version = true") + GOOD_RULE)


def test_rules_that_can_never_or_always_fire_are_refused() -> None:
    # FINDING: low: the rule language accepts rules whose trigger is one of their own evidence/pass types: a required_before that fires on every validated model, a pass_after_fail that can never fire  # noqa: E501
    always = (b'[[rule]]\nid = "r"\nkind = "required_before"\ntitle = "t"\n'
              b'severity = "low"\nevidence = { v = ["validated"] }\n'
              b'before = { events = ["validated"] }\n')
    never = (b'[[rule]]\nid = "r"\nkind = "pass_after_fail"\ntitle = "t"\n'
             b'severity = "low"\nfail = ["validation_failed"]\npass = ["validated"]\n'
             b'before = { events = ["validated"] }\n')
    _refused(HEAD + always)
    _refused(HEAD + never)


# -- what a finding claims ------------------------------------------------------------------

def _validated_log() -> tuple[Log, int]:
    """Model `m` (high) registered, then validated by `val`; returns the log and the time
    its validation was recorded."""
    log = Log.create(seed="a13-asof")
    pipe, val = Signer("pipe", b"a13-pipe"), Signer("val", b"a13-val")
    for s in (pipe, val):
        log.submit(log.admin, "grant", key=s.vkey, role="writer")
    log.submit(pipe, "register", name="m", owner="o", model_type="ml_model", tier="high",
               purpose="p", status="active", metadata={})
    at = log.clock
    log.submit(val, "event", model="m", event_type="validated", payload={})
    return log, at


def test_max_age_boundary_and_cuts_use_the_bundle_time() -> None:
    """As of exactly the due time there is no finding, one nanosecond later there is; a
    bundle cut before the validation sees no validation and counts from registration."""
    log, at = _validated_log()
    due = add_months(at, 12)
    log.clock = due + 10 * DAY  # the checkpoint is signed after both cut times
    log.submit(log.admin, "revoke", name="val", reason=None)
    sr = [load_profile("sr_11_7")]
    for t, expected in ((due, 0), (due + 1, 1)):
        res = v.verify_bundle(log.bundle(t), [log.log_key.key])
        found = [f for f in evaluate(sr, res).items if f.rule == "revalidation_due"]
        assert len(found) == expected, (t, found)
        assert evaluate(sr, res).as_of == t
    # cut before the validation: nothing about validation is claimed as done
    res = v.verify_bundle(log.bundle(at - 1), [log.log_key.key])
    assert evaluate(sr, res).as_of == at - 1
    assert all(e.recorded_at <= at - 1 for f in evaluate(sr, res).items for e in f.entries)


def test_a_finding_never_cites_an_entry_after_as_of() -> None:
    log, at = _validated_log()
    pipe = Signer("pipe", b"a13-pipe")
    snap = log.heads["m"]
    log.submit(pipe, "tag", model="m", tag="production", target=snap)
    cut = log.clock - 1
    log.submit(pipe, "event", model="m", event_type="validation_failed", payload={})
    log.submit(pipe, "tag", model="m", tag="production", target=snap)
    sr = [load_profile("sr_11_7")]
    res = v.verify_bundle(log.bundle(cut), [log.log_key.key])
    found = evaluate(sr, res)
    assert [f.rule for f in found.items] == []
    res = v.verify_bundle(log.bundle(log.clock), [log.log_key.key])
    rules = sorted(f.rule for f in evaluate(sr, res).items)
    assert rules == ["independent_validation", "no_production_after_failed_validation"]


def _imported(tmp_path: Path) -> v.VerifiedInventory:
    """small.db (fraud_scoring validated on 2025-03-02 by validation-team, registered and
    trained by others) imported on 2027-06-01."""
    db = Path(shutil.copy(DATA / "small.db", tmp_path / "inv.db"))
    origin = "example.com/models"
    clock = DemoClock(datetime(2027, 6, 1, tzinfo=timezone.utc))
    log_key = LogKey.generate(origin)
    with Ledger.create(tmp_path / "store", origin=origin, log_key=log_key,
                       admin=ActorKey.generate("risk-admin"), clock=clock) as led:
        importer = ActorKey.generate("importer")
        led.grant(importer.vkey, role="writer")
        import_model_ledger(led, db, signer=importer, clock=clock)
        bundle = led.export_bundle()
    return v.verify_bundle(bundle, [log_key.key])


def test_an_imported_old_validation_does_not_count_as_fresh(tmp_path: Path) -> None:
    # FINDING: medium: import model-ledger re-records a 2025 validation at import time (2027), so sr_11_7 revalidation_due stays silent for a high-tier model last validated 27 months earlier; neither import output nor docs warn  # noqa: E501
    found = evaluate([load_profile("sr_11_7")], _imported(tmp_path))
    due = [f for f in found.items if f.model == "fraud_scoring"
           and f.rule == "revalidation_due"]
    assert due, found.text()


def test_imported_history_is_not_blamed_on_the_importing_actor(tmp_path: Path) -> None:
    # FINDING: low: every imported entry is signed by the importer, so independent_validation reports "actor importer recorded validated and also registered" for models whose original validator (validation-team) never registered or trained them  # noqa: E501
    found = evaluate([load_profile("sr_11_7")], _imported(tmp_path))
    blamed = [f for f in found.items if f.rule == "independent_validation"]
    assert blamed == [], found.text()


def test_hostile_names_in_findings_are_escaped_in_the_report() -> None:
    log = Log.create(seed="a13-xss")
    pipe = Signer("pipe", b"a13-xss-pipe")
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    name = "<img src=x onerror=alert(1)>"
    ev = log.submit(pipe, "register", name=name, owner="<b>o</b>", model_type="ml_model",
                    tier="high", purpose="p", status="active", metadata={})
    log.submit(pipe, "tag", model=name, tag="production", target=v.snapshot_hash(ev))
    log.submit(pipe, "tag", model=name, tag="<script>x</script>", target=v.snapshot_hash(ev))
    profile = parse_profile(HEAD.replace(b'"Ours"', b'"<script>alert(2)</script>"') + (
        b'[[rule]]\nid = "r"\nkind = "required_before"\ntitle = "<i>t</i>"\n'
        b'severity = "high"\nevidence = { v = ["validated"] }\n'
        b'before = { tags = ["<script>x</script>"] }\n'), "<ours>.toml")
    res = v.verify_bundle(log.bundle(log.clock), [log.log_key.key])
    found = evaluate([profile, load_profile("sr_11_7")], res)
    assert {f.rule for f in found.items} >= {"r", "validated_before_production"}
    html = render_report(res, found)
    for raw in ("<img", "<script", "<b>o", "<i>t"):
        assert raw not in html, raw
    anchors = {f'href="#{a}"' for a in __import__("re").findall(r'id="(model-[0-9a-f]{16})"',
                                                                  html)}
    assert anchors and all(a in anchors for a in __import__("re").findall(
        r'href="#model-[0-9a-f]{16}"', html))


def test_policy_files_that_are_too_big_or_too_deep_are_malformed_input(tmp_path: Path) -> None:
    # session 21: a policy file that is no policy is malformed input (3), as a bad profile
    # is for `findings --profile`; one that cannot be read is an I/O error (4)
    import json
    store = init_store(tmp_path)
    big = {"events": {f"e{i:03d}": {"required": [f"f{j:02d}" + "x" * 190 for j in range(64)]}
                      for i in range(256)}}
    (tmp_path / "big.json").write_text(json.dumps(big))
    (tmp_path / "deep.json").write_text('{"events":' + "[" * 100000 + "]" * 100000 + "}")
    state = store.state()
    for f in ("big.json", "deep.json"):
        run = store.run("policy", "set", str(tmp_path / f))
        assert run.code == 3, (f, run.code, run.err)
    assert store.state() == state


def test_relabelling_a_model_as_a_group_does_not_erase_its_findings() -> None:
    # FINDING: medium: any writer can exempt a model from every sr_11_7 rule by an `updated` event setting model_type to "group" (the profile excludes by that free-text field, as of as_of); a production model never validated then has no finding  # noqa: E501
    log = Log.create(seed="a13-relabel")
    pipe = Signer("pipe", b"a13-relabel-pipe")
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    ev = log.submit(pipe, "register", name="m", owner="o", model_type="ml_model", tier="high",
                    purpose="p", status="active", metadata={})
    log.submit(pipe, "tag", model="m", tag="production", target=v.snapshot_hash(ev))
    sr = [load_profile("sr_11_7")]
    before = evaluate(sr, v.verify_bundle(log.bundle(log.clock), [log.log_key.key]))
    assert [f.rule for f in before.items] == ["validated_before_production"]
    log.submit(pipe, "event", model="m", event_type="updated",
               payload={"model_type": "group"})
    after = evaluate(sr, v.verify_bundle(log.bundle(log.clock), [log.log_key.key]))
    assert [f.rule for f in after.items] == ["validated_before_production"], after.text()


def test_operator_findings_default_time_is_not_the_last_entry(tmp_path: Path) -> None:
    # FINDING: low: `modelseal findings` without --at evaluates as of the last entry, so after a quiet year an overdue revalidation (due 12 months after the last validation) is not reported although the fresh checkpoint proves nothing was logged since  # noqa: E501
    origin = "example.com/models"
    log_key, admin = LogKey.generate(origin), ActorKey.generate("risk-admin")
    clock = DemoClock(datetime(2024, 1, 1, tzinfo=timezone.utc))
    with Ledger.create(tmp_path / "s", origin=origin, log_key=log_key, admin=admin,
                       clock=clock) as led:
        led.register(name="m", owner="o", model_type="ml_model", tier="high", purpose="p")
        led.record("m", "validated", {})
    store = saved_store(tmp_path / "s", tmp_path / "keys", log_key, admin)
    run = store.run("findings", "--profile", "sr_11_7", "--json")
    assert run.code == 0, run.err
    rules = [f["rule"] for f in run.json()["items"]]
    assert "revalidation_due" in rules, run.json()["as_of"]
