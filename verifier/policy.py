"""The log's controlled vocabulary (specs/entry.md §3.8): which event types are
allowed and which payload fields each requires.

A ``Policy`` is declared by the genesis or by an admin's ``policy`` statement; the one
in force applies to every later entry. No policy: any event type (today's behaviour).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from .names import EVENT_TYPE_RE, RESERVED_EVENTS, check_event_type, check_name

__all__ = ["MAX_POLICY_EVENTS", "MAX_REQUIRED_FIELDS", "EventRule", "Policy", "make_policy",
           "policy_from_doc", "policy_refusal"]

MAX_POLICY_EVENTS = 256
MAX_REQUIRED_FIELDS = 64

_Field = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+\Z")]
_EventType = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}\Z")]


class EventRule(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What one allowed event type requires: payload fields present and not null."""

    required: Annotated[tuple[_Field, ...], Meta(max_length=MAX_REQUIRED_FIELDS)]


class Policy(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The allowed event types (every one; no other is accepted) and their rules."""

    events: Annotated[dict[_EventType, EventRule], Meta(max_length=MAX_POLICY_EVENTS)]


def check_policy_fields(policy: Policy) -> None:
    """The rules the schema cannot state: event types are identifiers and not reserved
    (specs/entry.md §3.5), required fields are sorted without repeats and inside the name
    profile. Raises ValueError."""
    for event_type, rule in policy.events.items():
        check_event_type(event_type)
        if event_type in RESERVED_EVENTS:
            raise ValueError(f"policy: event type {event_type!r} is reserved for the log's "
                             f"own entries")
        req = rule.required
        if any(a >= b for a, b in pairwise(req)):
            raise ValueError(f"policy: the required fields of {event_type!r} must be sorted, "
                             f"without repeats")
        for name in req:
            check_name(name, "policy field")


def make_policy(events: Mapping[str, Iterable[str]]) -> Policy:
    """A policy allowing exactly the event types of ``events``, each requiring the
    payload fields listed (sorted and deduplicated here). ValueError for values the
    policy's rules refuse."""
    if len(events) > MAX_POLICY_EVENTS:
        raise ValueError(f"a policy allows at most {MAX_POLICY_EVENTS} event types")
    rules = {}
    for event_type, fields in events.items():
        if isinstance(fields, str):
            raise TypeError("required fields are a list of strings, not one string")
        req = tuple(sorted(set(fields)))
        if len(req) > MAX_REQUIRED_FIELDS:
            raise ValueError(f"an event type requires at most {MAX_REQUIRED_FIELDS} fields")
        if not isinstance(event_type, str) or not EVENT_TYPE_RE.fullmatch(event_type):
            raise ValueError(f"policy event type {event_type!r} must be a lower-case "
                             f"identifier")
        rules[event_type] = EventRule(required=req)
    policy = Policy(events=rules)
    check_policy_fields(policy)
    return policy


def policy_from_doc(doc: Any) -> Policy:
    """A policy from a plain document ``{"events": {TYPE: {"required": [FIELD, ...]}}}``
    (a parsed TOML or JSON file). ValueError for any other shape or value."""
    try:
        loose = msgspec.convert(doc, dict[str, dict[str, dict[str, list[str]]]])
    except msgspec.ValidationError as exc:
        raise ValueError(f"policy: {exc}") from None
    if set(loose) != {"events"}:
        raise ValueError("policy: the document has exactly one table, 'events'")
    events: dict[str, list[str]] = {}
    for event_type, rule in loose["events"].items():
        if set(rule) - {"required"}:
            raise ValueError(f"policy: event {event_type!r} may only name 'required'")
        events[event_type] = rule.get("required", [])
    return make_policy(events)


def policy_refusal(policy: Policy, event_type: str, payload: Mapping[str, Any]) -> str | None:
    """Why ``policy`` refuses an event of ``event_type`` with ``payload``, or None."""
    rule = policy.events.get(event_type)
    if rule is None:
        allowed = ", ".join(sorted(policy.events)) or "none"
        return f"event type {event_type!r} is not in the policy in force (allowed: {allowed})"
    missing = [name for name in rule.required if payload.get(name) is None]
    if missing:
        return (f"the policy in force requires {event_type!r} events to give "
                f"{', '.join(missing)} in the payload")
    return None
