"""Findings profiles (specs/findings.md): a small rule language, read from TOML and checked
strictly. A profile is data; ``verifier.findings`` evaluates it over a verified inventory.

``parse_profile(data, source)`` reads one profile's exact bytes; ``load_profile(ref)`` takes
a built-in profile's name (``builtin_profiles()``) or the path of a ``.toml`` file. Anything
outside the language raises ``ProfileError`` (a ``MalformedInputError``) naming the key.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from .errors import MalformedInputError
from .names import EVENT_TYPE_RE, name_problem
from .replay import RETIRED_STATUS

__all__ = [
    "KINDS", "PROFILE_FORMAT", "PROFILE_VERSION", "SEVERITIES", "AppliesTo", "Profile",
    "ProfileError", "Rule", "Trigger", "builtin_profiles", "is_profile_path", "load_profile",
    "parse_profile",
]

PROFILE_FORMAT = "modelseal-findings-profile"
PROFILE_VERSION = 1
KINDS = ("required_before", "max_age", "distinct_actors", "pass_after_fail")
SEVERITIES = ("high", "medium", "low")
MAX_PROFILE_BYTES = 1 << 20
MAX_RULES = 256
MAX_LIST = 64
MAX_MONTHS = 1200
_ID_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TEXT_MAX = 4000
_BUILTIN_DIR = "profiles"


class ProfileError(MalformedInputError):
    """A profile that is not valid TOML or not in the rule language; the message names the
    profile's source and the offending key (``rule[2].months.high``) or TOML line."""


@dataclass(frozen=True)
class AppliesTo:
    """Which models a rule looks at, by their state at the point in time (empty: all)."""

    tiers: tuple[str, ...] = ()
    exclude_model_types: tuple[str, ...] = ()
    exclude_statuses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trigger:
    """An entry that starts a rule's check: a move of one of ``tags``, or an event of one
    of ``events``."""

    tags: tuple[str, ...] = ()
    events: tuple[str, ...] = ()

    def describe(self) -> str:
        """``tag production or event deployed``: for messages."""
        parts = [f"tag {t}" for t in self.tags] + [f"event {e}" for e in self.events]
        return " or ".join(parts)


@dataclass(frozen=True)
class Rule:
    """One rule. Which parameters are set depends on ``kind`` (specs/findings.md §3)."""

    id: str
    kind: str
    title: str
    severity: str
    reference: str = ""
    applies_to: AppliesTo = AppliesTo()
    evidence: tuple[tuple[str, tuple[str, ...]], ...] = ()  # required_before
    before: Trigger | None = None  # required_before (optional), pass_after_fail
    events: tuple[str, ...] = ()  # max_age, distinct_actors
    months: tuple[tuple[str, int], ...] = ()  # max_age: (tier, months)
    not_by_actors_of: tuple[str, ...] = ()  # distinct_actors
    fail: tuple[str, ...] = ()  # pass_after_fail
    passes: tuple[str, ...] = ()  # pass_after_fail (the key ``pass``)


@dataclass(frozen=True)
class Profile:
    """A parsed profile; ``sha256`` is the hex digest of its exact bytes, ``source`` where
    it came from (``builtin:NAME`` or a path)."""

    id: str
    title: str
    description: str
    rules: tuple[Rule, ...]
    source: str
    sha256: str
    reference: str = ""
    rule_ids: frozenset[str] = field(default=frozenset(), compare=False)

    def to_json(self) -> dict[str, Any]:
        """id, title, source and sha256, for output."""
        return {"id": self.id, "title": self.title, "source": self.source,
                "sha256": self.sha256, "rules": len(self.rules)}


# -- the checks ----------------------------------------------------------------------------


class _Table:
    """A TOML table being read: every key must be read once, and ``done`` refuses the rest."""

    def __init__(self, value: object, path: str, src: str) -> None:
        if not isinstance(value, dict):
            raise ProfileError(f"{src}: {path or 'the document'} must be a table")
        self.value: dict[str, Any] = value
        self.path, self.src = path, src
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.src}: {self.key(name)} {problem}")

    def get(self, name: str, required: bool = True) -> Any:
        self.seen.add(name)
        if name not in self.value:
            if required:
                raise ProfileError(f"{self.src}: {self.key(name)} is missing")
            return None
        return self.value[name]

    def text(self, name: str, required: bool = True, limit: int = 200,
             multiline: bool = False) -> str:
        value = self.get(name, required)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise self.fail(name, f"must be non-empty text of at most {limit} characters")
        allowed = "\n\t" if multiline else ""
        if any((ord(c) < 0x20 and c not in allowed) or ord(c) == 0x7F for c in value):
            raise self.fail(name, "must not hold control characters"
                            + (" (but tab and newline)" if multiline else ""))
        return value

    def ident(self, name: str) -> str:
        value = self.get(name)
        if not isinstance(value, str) or not _ID_RE.fullmatch(value):
            raise self.fail(name, "must match [a-z][a-z0-9_]{0,63}")
        return value

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.get(name)
        if not isinstance(value, str) or value not in options:
            raise self.fail(name, f"must be one of {', '.join(options)}")
        return value

    def table(self, name: str, required: bool = True) -> _Table | None:
        value = self.get(name, required)
        return None if value is None else _Table(value, self.key(name), self.src)

    def names(self, name: str, *, event_types: bool, required: bool = True,
              empty_ok: bool = False) -> tuple[str, ...]:
        value = self.get(name, required)
        if value is None:
            return ()
        return _names(value, self.key(name), self.src, event_types, empty_ok)

    def done(self) -> None:
        extra = sorted(set(self.value) - self.seen)
        if extra:
            raise ProfileError(f"{self.src}: unknown key {self.key(extra[0])}")


def _names(value: object, path: str, src: str, event_types: bool,
           empty_ok: bool = False) -> tuple[str, ...]:
    """A list of distinct event types (EVENT_TYPE_RE) or names (the name profile)."""
    if not isinstance(value, list) or len(value) > MAX_LIST or (not value and not empty_ok):
        raise ProfileError(f"{src}: {path} must be a list of 1 to {MAX_LIST} "
                           f"{'event types' if event_types else 'names'}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ProfileError(f"{src}: {path}[{i}] must be a string")
        if event_types and not EVENT_TYPE_RE.fullmatch(item):
            raise ProfileError(f"{src}: {path}[{i}] {item!r} is not an event type "
                               f"([a-z][a-z0-9_]{{0,63}})")
        if not event_types and (problem := name_problem(item)) is not None:
            raise ProfileError(f"{src}: {path}[{i}] {item!r} {problem}")
    if len(set(value)) != len(value):
        raise ProfileError(f"{src}: {path} lists a value twice")
    return tuple(value)


def _trigger(t: _Table | None) -> Trigger | None:
    if t is None:
        return None
    tags = t.names("tags", event_types=False, required=False, empty_ok=True)
    events = t.names("events", event_types=True, required=False, empty_ok=True)
    t.done()
    if not tags and not events:
        raise ProfileError(f"{t.src}: {t.path} must name tags, events or both")
    return Trigger(tags, events)


def _disjoint(before: Trigger | None, types: tuple[str, ...], other: str, src: str,
              path: str) -> None:
    """Refuse a trigger event that is also one of ``types`` (the list at key ``other``):
    such a rule would fire on every such event (evidence) or never (pass, fail)."""
    shared = [e for e in (before.events if before else ()) if e in types]
    if shared:
        raise ProfileError(f"{src}: {path}.before.events shares the event type "
                           f"{shared[0]!r} with {other}")


def _rule(value: object, path: str, src: str) -> Rule:
    t = _Table(value, path, src)
    rid, kind = t.ident("id"), t.choice("kind", KINDS)
    title, severity = t.text("title"), t.choice("severity", SEVERITIES)
    reference = t.text("reference", required=False)
    at = t.table("applies_to", required=False)
    applies = AppliesTo()
    if at is not None:
        applies = AppliesTo(*(at.names(key, event_types=False, required=False, empty_ok=True)
                              for key in ("tiers", "exclude_model_types", "exclude_statuses")))
        at.done()
        other = [s for s in applies.exclude_statuses if s != RETIRED_STATUS]
        if other:
            raise ProfileError(
                f"{src}: {path}.applies_to.exclude_statuses lists {other[0]!r}: only "
                f"{RETIRED_STATUS!r} may be excluded, the one status the log's rules make "
                f"final (a retired model takes no event but 'reactivated' and no tag move); "
                f"any other status is text a writer sets, and would exempt a live model")
    rule = Rule(rid, kind, title, severity, reference, applies)
    if kind == "required_before":
        ev = t.table("evidence")
        assert ev is not None
        if not ev.value or len(ev.value) > MAX_LIST:
            raise t.fail("evidence", f"must name 1 to {MAX_LIST} kinds of evidence")
        slots = []
        for slot in ev.value:
            if not _ID_RE.fullmatch(slot):
                raise ProfileError(f"{src}: {ev.key(slot)}: an evidence name must match "
                                   f"[a-z][a-z0-9_]{{0,63}}")
            slots.append((slot, ev.names(slot, event_types=True)))
        ev.done()
        before = _trigger(t.table("before", False))
        for slot, types in slots:
            _disjoint(before, types, f"{ev.key(slot)}", src, path)
        rule = replace(rule, evidence=tuple(slots), before=before)
    elif kind == "max_age":
        mt = t.table("months")
        assert mt is not None
        if not mt.value:
            raise t.fail("months", "must give at least one tier")
        months = []
        for tier, n in mt.value.items():
            mt.seen.add(tier)
            if (problem := name_problem(tier)) is not None:
                raise ProfileError(f"{src}: {mt.key(tier)}: tier {tier!r} {problem}")
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_MONTHS:
                raise ProfileError(f"{src}: {mt.key(tier)} must be a whole number of months "
                                   f"from 1 to {MAX_MONTHS}")
            months.append((tier, n))
        rule = replace(rule, events=t.names("events", event_types=True),
                        months=tuple(months))
    elif kind == "distinct_actors":
        events, others = t.names("events", event_types=True), t.names(
            "not_by_actors_of", event_types=True)
        if set(events) & set(others):
            raise t.fail("not_by_actors_of", "shares an event type with events")
        rule = replace(rule, events=events, not_by_actors_of=others)
    else:
        fail, passes = t.names("fail", event_types=True), t.names("pass", event_types=True)
        if set(fail) & set(passes):
            raise t.fail("pass", "shares an event type with fail")
        before = _trigger(t.table("before"))
        _disjoint(before, fail, t.key("fail"), src, path)
        _disjoint(before, passes, t.key("pass"), src, path)
        rule = replace(rule, fail=fail, passes=passes, before=before)
    t.done()
    return rule


def parse_profile(data: bytes, source: str = "<profile>") -> Profile:
    """The profile in ``data`` (UTF-8 TOML, at most 1 MiB); ProfileError if it is not
    valid TOML (nesting too deep for the parser included) or breaks the rule language
    (specs/findings.md). TypeError if not bytes."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"a profile is bytes, not {type(data).__name__}")
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{source}: a profile is at most {MAX_PROFILE_BYTES} bytes")
    try:
        doc = tomllib.loads(bytes(data).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                           ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays/tables
        raise ProfileError(f"{source}: not valid TOML: arrays or tables nested too deep"
                           ) from None
    t = _Table(doc, "", source)
    if t.get("format") != PROFILE_FORMAT:
        raise t.fail("format", f"must be {PROFILE_FORMAT!r}")
    version = t.get("version")
    if isinstance(version, bool) or version != PROFILE_VERSION:
        raise t.fail("version", f"must be {PROFILE_VERSION} (this verifier reads version "
                                f"{PROFILE_VERSION} of the rule language)")
    pid, title = t.ident("id"), t.text("title")
    description = t.text("description", required=False, limit=_TEXT_MAX, multiline=True)
    reference = t.text("reference", required=False)
    raw_rules = t.get("rule")
    if not isinstance(raw_rules, list) or not 1 <= len(raw_rules) <= MAX_RULES:
        raise t.fail("rule", f"must be 1 to {MAX_RULES} [[rule]] tables")
    rules = tuple(_rule(r, f"rule[{i}]", source) for i, r in enumerate(raw_rules))
    t.done()
    ids = [r.id for r in rules]
    for i, rid in enumerate(ids):
        if rid in ids[:i]:
            raise ProfileError(f"{source}: rule[{i}].id {rid!r} is used by an earlier rule")
    return Profile(pid, title, description, rules, source, hashlib.sha256(data).hexdigest(),
                   reference, frozenset(ids))


def builtin_profiles() -> tuple[str, ...]:
    """The names of the profiles shipped with the verifier, sorted."""
    folder = resources.files(__package__ or "verifier").joinpath(_BUILTIN_DIR)
    return tuple(sorted(p.name[:-5] for p in folder.iterdir()
                        if p.name.endswith(".toml") and _ID_RE.fullmatch(p.name[:-5])))


def is_profile_path(ref: str) -> bool:
    """Whether ``load_profile`` reads ``ref`` as a file: it ends in ``.toml`` or holds a
    path separator (else it is a built-in profile's name)."""
    return ref.endswith(".toml") or "/" in ref or "\\" in ref


def load_profile(ref: str) -> Profile:
    """A built-in profile by name (``sr_11_7``), or the profile in the file ``ref`` (a
    path ending in ``.toml`` or holding a ``/``). ProfileError for an unknown name or a bad
    profile; OSError if the file cannot be read."""
    if is_profile_path(ref):
        with open(ref, "rb") as fh:
            data = fh.read(MAX_PROFILE_BYTES + 1)
        return parse_profile(data, ref)
    known = builtin_profiles()
    if ref not in known:
        raise ProfileError(f"no built-in profile {ref!r}; the built-in profiles are "
                           f"{', '.join(known)} (or give a FILE.toml)")
    data = resources.files(__package__ or "verifier").joinpath(
        _BUILTIN_DIR, f"{ref}.toml").read_bytes()
    return parse_profile(data, f"builtin:{ref}")

