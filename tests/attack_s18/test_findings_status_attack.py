"""Attacks on ``applies_to.exclude_statuses`` (verifier/profile.py, specs/findings.md): can
a writer exempt a live model from a rule by its status?"""
# ruff: noqa: E501  (the one-line FINDING comments)

from __future__ import annotations

import pytest

from tests.logsim import DAY
from tests.test_findings import _model, _Timeline, tl
from verifier.canonical import canonical_json
from verifier.findings import Finding, add_months, evaluate_model
from verifier.profile import ProfileError, parse_profile
from verifier.replay import TimelineItem

HEAD = (b'format = "modelseal-findings-profile"\nversion = 1\nid = "own"\ntitle = "Own"\n'
        b'[[rule]]\nid = "due"\nkind = "max_age"\ntitle = "t"\nseverity = "high"\n'
        b'events = ["validated"]\nmonths = { high = 12 }\n')
PROFILE = parse_profile(HEAD + b'applies_to = { exclude_statuses = ["retired"] }\n', "own.toml")


def _found(t: _Timeline, status: str) -> list[Finding]:
    as_of = add_months(t.items[0].recorded_at, 13)
    return evaluate_model(PROFILE, _model(status=status), t.items, as_of)


def _updated(t: _Timeline, payload: dict[str, object]) -> _Timeline:
    last = t.items[-1]
    t.items.append(TimelineItem(len(t.items), last.recorded_at + DAY, f"{len(t.items):064x}",
                                "event", "updated", "dev", canonical_json(payload)))
    return t


def test_a_live_model_registered_with_an_excluded_status_is_not_exempt() -> None:
    # FINDING: low: a writer registers a model that is in use (retrained, tagged production) with the free-text status "inactive": exclude_statuses exempted it from the rule for good. Fixed: a profile may exclude only "retired", the status the rules make final
    with pytest.raises(ProfileError, match="only 'retired' may be excluded"):
        parse_profile(HEAD + b'applies_to = { exclude_statuses = ["inactive", "retired"] }\n',
                      "own.toml")
    t = tl("retrained", "tag production", "retrained")
    assert _found(t, "active") != []
    assert _found(t, "inactive") != []  # a free-text status exempts nothing


def test_no_relabelling_exempts_a_live_model() -> None:
    """Whatever an updated event writes, and whatever the registration said, only the
    status 'retired' (which only the retired event sets) exempts."""
    for payload in ({"owner": "x", "status": "inactive", "tier": "high"}, {"status": "inactive"},
                    {"status": "Retired"}):
        assert _found(_updated(tl("validated"), payload), str(payload["status"])) != []
    assert _found(tl("validated", "retired"), "retired") == []
    assert _found(_updated(tl("validated", "retired", "reactivated"), {"status": "x"}), "x") != []
