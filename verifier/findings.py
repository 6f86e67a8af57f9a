"""Findings: a profile's rules (``verifier.profile``) evaluated over a verified inventory.

``evaluate(profiles, verified)`` reads each model's state and timeline as of the bundle's
point in time (``VerifiedInventory.time``) and returns ``Findings``: each finding names the
model, the rule and the entries it rests on (index and snapshot hash), or the evidence that
is missing. The semantics of every rule kind are in specs/findings.md §4; this module is
their one implementation (``modelseal findings`` calls it too).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .bundle import VerifiedInventory
from .profile import Profile, Rule, Trigger
from .replay import UPDATE_EVENT, ModelState, TimelineItem
from .names import name_problem, visible
from .timeutil import MAX_NS, iso, parse_time, to_ns

__all__ = ["IMPORT_SOURCES", "Finding", "FindingEntry", "Findings", "Imported", "add_months",
           "evaluate", "evaluate_model"]

_DAY_NS = 86_400 * 10**9
_TAG_OP = "tag"
_EVENT_OP = "event"
_REGISTER_OP = "register"
_IMPORTED_KEY = "imported"
IMPORT_SOURCES = frozenset({"model-ledger"})
"""The ``source`` values of the ``imported`` records findings read (specs/findings.md §6)."""
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True)
class FindingEntry:
    """An entry a finding rests on: its index, snapshot hash, time, what it is (an event
    type, ``registered``, or ``tag NAME``) and its actor."""

    index: int
    snapshot: str
    recorded_at: int
    what: str
    actor: str
    imported: Imported | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, times as ISO 8601 UTC; ``imported`` only for an imported entry."""
        out: dict[str, Any] = {"index": self.index, "snapshot": self.snapshot,
                               "recorded_at": iso(self.recorded_at), "what": self.what,
                               "actor": self.actor}
        if self.imported is not None:
            out["imported"] = self.imported.to_json()
        return out

    def note(self) -> str:
        """`` (imported: originally at T by A, as its signed payload claims)`` or ""."""
        return "" if self.imported is None else f" ({self.imported.describe()})"


@dataclass(frozen=True)
class Imported:
    """What an imported entry's ``imported`` record claims (specs/findings.md §6): the
    original time (ns) and actor, each None if absent or unreadable. A claim signed by the
    entry's actor, never the log's time."""

    at: int | None
    actor: str | None

    def to_json(self) -> dict[str, Any]:
        """``{"at": ISO or null, "actor": name or null}``."""
        return {"at": None if self.at is None else iso(self.at), "actor": self.actor}

    def describe(self) -> str:
        """For people, e.g. ``imported: originally at T by A, as its signed payload claims``."""
        when = "original time unknown" if self.at is None else f"originally at {iso(self.at)}"
        by = "" if self.actor is None else f" by {visible(self.actor)}"
        return f"imported: {when}{by}, as its signed payload claims"


@dataclass(frozen=True)
class Finding:
    """One finding: ``model`` breaks ``rule`` of ``profile``; ``entries`` are the entries it
    rests on, ``missing`` the evidence (slot names or event types) the log does not hold."""

    profile: str
    rule: str
    kind: str
    severity: str
    title: str
    model: str
    message: str
    entries: tuple[FindingEntry, ...] = ()
    missing: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"profile": self.profile, "rule": self.rule, "kind": self.kind,
                "severity": self.severity, "title": self.title, "model": self.model,
                "message": self.message, "entries": [e.to_json() for e in self.entries],
                "missing": list(self.missing)}


@dataclass(frozen=True)
class Findings:
    """The findings of some profiles as of ``as_of`` (ns): the bundle's point in time."""

    as_of: int
    profiles: tuple[Profile, ...]
    items: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``findings`` member of ``modelseal-verify --json`` (specs/findings.md §5)."""
        return {"as_of": iso(self.as_of), "as_of_ns": self.as_of,
                "profiles": [p.to_json() for p in self.profiles],
                "count": len(self.items), "items": [f.to_json() for f in self.items]}

    def text(self) -> str:
        """Lines for people: a heading, then one block per finding."""
        names = ", ".join(p.id for p in self.profiles)
        lines = [f"FINDINGS: {len(self.items)} ({names}; as of {iso(self.as_of)})"]
        for f in self.items:
            lines.append(f"  [{f.severity}] {f.profile}/{f.rule} {f.model}: {f.message}")
            for e in f.entries:
                lines.append(f"      entry {e.index} {e.snapshot} {iso(e.recorded_at)} "
                             f"{e.what} by {e.actor}{e.note()}")
        return "\n".join(lines)


def add_months(ns: int, months: int) -> int:
    """``ns`` plus ``months`` calendar months, in UTC: the same time of day on the same day
    of the month, or on the month's last day if it is shorter (31 Jan + 1 = 28/29 Feb).
    Precondition: the result is within years 1..9999."""
    days, rest = divmod(ns, _DAY_NS)
    start = date(1970, 1, 1).toordinal() + days
    d = date.fromordinal(start)
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return (date(year, month, day).toordinal() - date(1970, 1, 1).toordinal()) * _DAY_NS + rest


def _what(item: TimelineItem) -> str:
    if item.op == _TAG_OP:
        return f"tag {item.detail.get('tag')}"
    return item.event_type or item.op


class _Claims:
    """The ``imported`` records of one model's timeline items, read on demand. A
    registration's is in the model's metadata, read only while no ``updated`` event
    replaced the metadata (it is then the registration's own)."""

    def __init__(self, model: ModelState, items: Sequence[TimelineItem]) -> None:
        self.model, self.items = model, items
        self.cache: dict[int, Imported | None] = {}
        self._meta_ok: bool | None = None

    def meta_ok(self) -> bool:
        if self._meta_ok is None:
            self._meta_ok = not any(it.event_type == UPDATE_EVENT and "metadata" in it.detail
                                    for it in self.items)
        return self._meta_ok

    def of(self, item: TimelineItem) -> Imported | None:
        if item.index not in self.cache:
            record: object = None
            if item.op == _EVENT_OP:
                record = item.detail.get(_IMPORTED_KEY)
            elif item.op == _REGISTER_OP and self.meta_ok():
                record = self.model.metadata.get(_IMPORTED_KEY)
            self.cache[item.index] = _imported(record)
        return self.cache[item.index]

    def ref(self, item: TimelineItem) -> FindingEntry:
        return FindingEntry(item.index, item.snapshot, item.recorded_at, _what(item),
                            item.actor, self.of(item))

    def time(self, item: TimelineItem) -> int:
        """For freshness: the earlier of the log's time and the claimed original time."""
        claim = self.of(item)
        if claim is None or claim.at is None:
            return item.recorded_at
        return min(item.recorded_at, claim.at)

    def actor(self, item: TimelineItem) -> str:
        """For separation of duties: the claimed original actor, else the signing one."""
        claim = self.of(item)
        return item.actor if claim is None or claim.actor is None else claim.actor


def _imported(record: object) -> Imported | None:
    """The claims of an ``imported`` record (specs/findings.md §6), None if it is none."""
    if not isinstance(record, dict) or record.get("source") not in IMPORT_SOURCES:
        return None
    at: int | None = None
    text = record.get("at")
    if isinstance(text, str) and _ISO_TIME.fullmatch(text):
        try:
            ns = to_ns(parse_time(text))
        except ValueError:
            ns = -1
        at = ns if 0 <= ns <= MAX_NS else None
    actor = record.get("actor")
    if not isinstance(actor, str) or name_problem(actor) is not None:
        actor = None
    return Imported(at, actor)


def _is_trigger(item: TimelineItem, trigger: Trigger) -> bool:
    if item.op == _TAG_OP:
        return bool(trigger.tags) and item.detail.get("tag") in trigger.tags
    return item.event_type is not None and item.event_type in trigger.events


def _retyped(items: Sequence[TimelineItem]) -> bool:
    """Whether an ``updated`` event of the timeline set the model's ``model_type``."""
    return any(it.event_type == UPDATE_EVENT and "model_type" in it.detail for it in items)


def _applies(rule: Rule, model: ModelState, retyped: bool) -> bool:
    a = rule.applies_to
    if a.tiers and model.tier not in a.tiers:
        return False
    if model.model_type in a.exclude_model_types and not retyped:
        return False
    if model.status in a.exclude_statuses:  # only "retired": the rules make it final
        return False
    if rule.kind == "max_age":
        return model.tier in dict(rule.months)
    return True


def _required_before(p: Profile, r: Rule, m: ModelState, items: Sequence[TimelineItem],
                     as_of: int, c: _Claims) -> list[Finding]:
    end, trigger = len(items), None
    entries: tuple[FindingEntry, ...]
    if r.before is not None:
        trigger = next((i for i, it in enumerate(items) if _is_trigger(it, r.before)), None)
        if trigger is None:
            return []
        end = trigger
    seen = {it.event_type for it in items[:end] if it.event_type is not None}
    missing = tuple(slot for slot, types in r.evidence if not seen.intersection(types))
    if not missing:
        return []
    wanted = "no evidence of " + ", ".join(
        f"{slot} ({' or '.join(dict(r.evidence)[slot])})" for slot in missing)
    if trigger is not None:
        assert r.before is not None
        first = items[trigger]
        message = (f"{wanted} before its first {_what(first)} (entry {first.index}, "
                   f"{iso(first.recorded_at)})")
        entries = (c.ref(first),)
    else:
        message = f"{wanted} recorded by {iso(as_of)}"
        entries = (c.ref(items[0]),) if items else ()
    return [_finding(p, r, m, message, entries, missing)]


def _max_age(p: Profile, r: Rule, m: ModelState, items: Sequence[TimelineItem],
             as_of: int, c: _Claims) -> list[Finding]:
    months = dict(r.months)[m.tier]
    # the freshest event by its time for freshness (the earlier of log and claimed time)
    last = max((it for it in items if it.event_type in r.events),
               key=lambda it: (c.time(it), it.index), default=None)
    if last is None:
        reg = items[0] if items else None
        start = m.registered_at if reg is None else c.time(reg)
        due = add_months(start, months)
        if as_of <= due:
            return []
        message = (f"tier {m.tier}: no {' or '.join(r.events)} in the {months} months since "
                   f"registration ({iso(start)}); due by {iso(due)}")
        return [_finding(p, r, m, message, () if reg is None else (c.ref(reg),), r.events)]
    at = c.time(last)
    due = add_months(at, months)
    if as_of <= due:
        return []
    claimed = "" if at == last.recorded_at else f" (recorded {iso(last.recorded_at)}, imported)"
    message = (f"tier {m.tier}: last {last.event_type} at {iso(at)}{claimed} (entry "
               f"{last.index}) is more than {months} months before {iso(as_of)}; it was due "
               f"again by {iso(due)}")
    return [_finding(p, r, m, message, (c.ref(last),))]


def _distinct_actors(p: Profile, r: Rule, m: ModelState, items: Sequence[TimelineItem],
                     as_of: int, c: _Claims) -> list[Finding]:
    checks: dict[str, TimelineItem] = {}
    others: dict[str, TimelineItem] = {}
    for it in items:
        if it.event_type in r.events:
            checks.setdefault(c.actor(it), it)
        if it.event_type in r.not_by_actors_of:
            others.setdefault(c.actor(it), it)
    out = []
    for actor in sorted(set(checks) & set(others)):
        a, b = checks[actor], others[actor]
        message = (f"actor {actor} recorded {a.event_type} (entry {a.index}) and also "
                   f"{b.event_type} (entry {b.index}) of the same model")
        out.append(_finding(p, r, m, message, tuple(c.ref(x) for x in sorted(
            (a, b), key=lambda x: x.index))))
    return out


def _pass_after_fail(p: Profile, r: Rule, m: ModelState, items: Sequence[TimelineItem],
                     as_of: int, c: _Claims) -> list[Finding]:
    assert r.before is not None
    out, failed = [], None
    for it in items:
        if it.event_type in r.fail:
            failed = it
        elif it.event_type in r.passes:
            failed = None
        elif failed is not None and _is_trigger(it, r.before):
            message = (f"{_what(it)} (entry {it.index}) after {failed.event_type} (entry "
                       f"{failed.index}, {iso(failed.recorded_at)}) with no "
                       f"{' or '.join(r.passes)} in between")
            out.append(_finding(p, r, m, message, (c.ref(failed), c.ref(it))))
    return out


_KINDS = {"required_before": _required_before, "max_age": _max_age,
          "distinct_actors": _distinct_actors, "pass_after_fail": _pass_after_fail}


def _finding(p: Profile, r: Rule, m: ModelState, message: str,
             entries: tuple[FindingEntry, ...], missing: tuple[str, ...] = ()) -> Finding:
    return Finding(p.id, r.id, r.kind, r.severity, r.title, m.name, message, entries, missing)


def evaluate_model(profile: Profile, model: ModelState, items: Sequence[TimelineItem],
                   as_of: int) -> list[Finding]:
    """The findings of ``profile`` for one model. Preconditions: ``items`` is the model's
    timeline in log order (registration first), every item recorded at or before
    ``as_of``, and ``model`` its state after the last item."""
    out: list[Finding] = []
    retyped, claims = _retyped(items), _Claims(model, items)
    for rule in profile.rules:
        if _applies(rule, model, retyped):
            out.extend(_KINDS[rule.kind](profile, rule, model, items, as_of, claims))
    return out


def evaluate(profiles: Iterable[Profile], verified: VerifiedInventory) -> Findings:
    """Every finding of ``profiles`` over the verified inventory, as of its point in time;
    in profile order, then model name, then rule order. ValueError if the inventory was
    replayed without timelines."""
    timelines: Mapping[str, list[TimelineItem]] | None = verified.inventory.timelines
    if timelines is None:
        raise ValueError("findings need the models' timelines (an Inventory with "
                         "keep_timelines=True)")
    profiles = tuple(profiles)
    items: list[Finding] = []
    models = sorted(verified.models.values(), key=lambda m: m.name)
    for profile in profiles:
        for model in models:
            items.extend(evaluate_model(profile, model, timelines.get(model.name, []),
                                        verified.time))
    return Findings(verified.time, profiles, tuple(items))
