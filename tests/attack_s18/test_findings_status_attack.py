"""Attacks on ``applies_to.exclude_statuses`` (verifier/findings.py ``_restatused``,
specs/findings.md): can a writer exempt a live model from a rule by its status?"""
# ruff: noqa: E501  (the one-line FINDING comments)

from __future__ import annotations

from tests.logsim import DAY
from tests.test_findings import _model, _Timeline, tl
from verifier.canonical import canonical_json
from verifier.findings import Finding, add_months, evaluate_model
from verifier.profile import parse_profile
from verifier.replay import TimelineItem

PROFILE = parse_profile(
    b'format = "modelseal-findings-profile"\nversion = 1\nid = "own"\ntitle = "Own"\n'
    b'[[rule]]\nid = "due"\nkind = "max_age"\ntitle = "t"\nseverity = "high"\n'
    b'applies_to = { exclude_statuses = ["inactive", "retired"] }\n'
    b'events = ["validated"]\nmonths = { high = 12 }\n', "own.toml")


def _found(t: _Timeline, status: str) -> list[Finding]:
    as_of = add_months(t.items[0].recorded_at, 13)
    return evaluate_model(PROFILE, _model(status=status), t.items, as_of)


def _updated(t: _Timeline, payload: dict[str, object]) -> _Timeline:
    last = t.items[-1]
    t.items.append(TimelineItem(len(t.items), last.recorded_at + DAY, f"{len(t.items):064x}",
                                "event", "updated", "dev", canonical_json(payload)))
    return t


def test_a_live_model_registered_with_an_excluded_status_is_not_exempt() -> None:
    # FINDING: low: a writer registers a model that is in use (retrained, tagged production) with the free-text status "inactive": exclude_statuses exempts it from the rule for good, as only updated-written statuses are distrusted (the registration's status is the writer's choice too)
    t = tl("retrained", "tag production", "retrained")
    assert _found(t, "active") != []  # the rule fires for the same timeline
    assert _found(t, "inactive") != []


def test_updated_with_status_among_other_fields_still_counts() -> None:
    """An updated that sets status together with other fields, or sets it to the value it
    already had, or a later updated of other fields: the status stays distrusted."""
    t = _updated(tl("validated"), {"owner": "x", "status": "inactive", "tier": "high"})
    assert _found(t, "inactive") != []
    t = _updated(_updated(tl("validated"), {"status": "inactive"}), {"owner": "y"})
    assert _found(t, "inactive") != []


def test_retire_then_reactivate_then_relabel_is_distrusted() -> None:
    t = _updated(tl("validated", "retired", "reactivated"), {"status": "inactive"})
    assert _found(t, "inactive") != []
    # retired for real: exempt (the log's own retired event), whatever came before
    t = _updated(tl("validated"), {"status": "inactive"}).add("retired")
    assert _found(t, "retired") == []


def test_a_tag_move_or_other_event_named_like_status_does_not_reset() -> None:
    """Only 'retired' and 'reactivated' events reset the distrust: an event whose type
    merely resembles them (or a tag named 'retired') does not."""
    t = _updated(tl("validated"), {"status": "inactive"})
    for what in ("tag retired", "retire", "reactivate", "retired_soon"):
        t.add(what)
    assert _found(t, "inactive") != []
