"""Scoped grants: what a key may do (specs/entry.md §3.7).

A ``Scope`` names the operations a key may sign and, optionally, the event types,
tags, model names (glob patterns) and tiers it may touch. ``None`` in a dimension
means "any". A grant without a scope holds its role's preset (``preset``).
The rules that apply a scope to a statement live in ``verifier.replay``.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Annotated, Literal, NamedTuple, get_args

from msgspec import Meta, Struct

from .names import check_event_type, check_name

__all__ = [
    "MAX_SCOPE_ITEMS", "OPS", "Op", "Scope", "ScopeExcess", "describe_scope", "glob_covers",
    "glob_match", "make_scope", "preset", "scope_contains", "scope_excess", "scope_problem",
]

# The operations a grant can allow: the kinds of statement, by family.
Op = Literal["event", "keyring", "membership", "register", "tag"]
OPS: tuple[Op, ...] = get_args(Op)
MAX_SCOPE_ITEMS = 64  # entries in each list of a scope

_Item = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+\Z")]
_Items = Annotated[tuple[_Item, ...], Meta(max_length=MAX_SCOPE_ITEMS)]


class Scope(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What a key may do. Every list is sorted by code point, without repeats; ``None``
    allows any value of that dimension, ``()`` none."""

    ops: Annotated[tuple[Op, ...], Meta(max_length=len(OPS))]
    event_types: _Items | None
    tags: _Items | None
    models: _Items | None  # glob patterns: '*' matches any run of characters
    tiers: _Items | None


_PRESET_OPS: dict[str, tuple[Op, ...]] = {
    "admin": OPS,
    "writer": ("event", "membership", "register", "tag"),
    "reader": (),
}


_PRESETS: dict[str, Scope] = {
    role: Scope(ops=ops, event_types=None, tags=None, models=None, tiers=None)
    for role, ops in _PRESET_OPS.items()
}


def preset(role: str) -> Scope:
    """The scope a grant of ``role`` holds when it names none (one shared, frozen value).
    ValueError for an unknown role."""
    try:
        return _PRESETS[role]
    except KeyError:
        raise ValueError(f"unknown role {role!r}") from None


def scope_problem(scope: Scope, role: str) -> str | None:
    """Why ``scope`` cannot be granted with ``role`` (it allows an op the role's preset
    does not), or None."""
    extra = [op for op in scope.ops if op not in _PRESET_OPS.get(role, ())]
    if extra:
        return f"a {role} scope cannot allow {', '.join(extra)}"
    return None


def check_scope_fields(scope: Scope) -> None:
    """The rules the schema cannot state: sorted lists without repeats, event types as
    identifiers, names in the name profile. Raises ValueError."""
    for what in ("ops", "event_types", "tags", "models", "tiers"):
        items: tuple[str, ...] | None = getattr(scope, what)
        if items is None:
            continue
        if any(a >= b for a, b in pairwise(items)):
            raise ValueError(f"scope {what} must be sorted, without repeats")
        for item in items:
            if what == "event_types":
                check_event_type(item)
            elif what != "ops":
                check_name(item, f"scope {what[:-1]}")


def make_scope(*, ops: Iterable[str], event_types: Iterable[str] | None = None,
               tags: Iterable[str] | None = None, models: Iterable[str] | None = None,
               tiers: Iterable[str] | None = None) -> Scope:
    """A scope from any iterables (sorted and deduplicated here); None allows any value.
    ValueError for an unknown op or a value the scope's rules refuse."""
    def norm(items: Iterable[str] | None) -> tuple[str, ...] | None:
        if items is None:
            return None
        if isinstance(items, str):
            raise TypeError("give a list of strings, not one string")
        return tuple(sorted(set(items)))

    op_list = norm(ops) or ()
    unknown = [op for op in op_list if op not in OPS]
    if unknown:
        raise ValueError(f"unknown op {unknown[0]!r}; the ops are {', '.join(OPS)}")
    scope = Scope(ops=op_list, event_types=norm(event_types), tags=norm(tags),  # type: ignore[arg-type]
                  models=norm(models), tiers=norm(tiers))
    for what in ("event_types", "tags", "models", "tiers"):
        items = getattr(scope, what)
        if items is not None and len(items) > MAX_SCOPE_ITEMS:
            raise ValueError(f"a scope lists at most {MAX_SCOPE_ITEMS} {what}")
    check_scope_fields(scope)
    return scope


def glob_match(pattern: str, name: str) -> bool:
    """Whether ``name`` matches ``pattern``: ``*`` matches any run of characters (none
    included); every other character matches itself only (case-sensitive). There are no
    other wildcards and no escapes. Linear in ``len(pattern) * len(name)`` at worst."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == name
    first, last = parts[0], parts[-1]
    if len(first) + len(last) > len(name) or not name.startswith(first) \
            or not name.endswith(last):
        return False
    pos, end = len(first), len(name) - len(last)
    for part in parts[1:-1]:
        found = name.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def glob_covers(outer: str, inner: str) -> bool:
    """Whether glob ``outer`` matches every name glob ``inner`` matches, by the test of
    specs/entry.md §3.7: ``outer`` matches ``inner`` read as a literal string (so only a
    ``*`` of ``outer`` can absorb a ``*`` of ``inner``). Sound: True implies coverage.
    It also finds every coverage that holds over names of any characters and length."""
    return glob_match(outer, inner)


class ScopeExcess(NamedTuple):
    """Where a scope allows more than another: the dimension (a ``Scope`` field name)
    and the first value outside, or None when the wider scope allows any value there."""

    dimension: str
    value: str | None


def scope_excess(outer: Scope, inner: Scope) -> ScopeExcess | None:
    """The first dimension, in field order, in which ``inner`` allows more than ``outer``
    (specs/entry.md §3.7, containment), or None when ``outer`` contains ``inner``.

    ``ops``: a subset; an ``inner`` allowing no op (a reader's) is contained in any scope.
    ``event_types``, ``tags``, ``tiers``: ``outer`` None contains
    anything, else ``inner`` must list a subset. ``models``: ``outer`` None contains
    anything, else ``inner`` must list patterns each covered (``glob_covers``) by one of
    ``outer``'s."""
    for op in inner.ops:
        if op not in outer.ops:
            return ScopeExcess("ops", op)
    if not inner.ops:
        return None  # it signs nothing (reads go by role), so its other dimensions give nothing
    for what in ("event_types", "tags", "models", "tiers"):
        allowed: tuple[str, ...] | None = getattr(outer, what)
        granted: tuple[str, ...] | None = getattr(inner, what)
        if allowed is None:
            continue
        if granted is None:
            return ScopeExcess(what, None)
        for item in granted:
            if what == "models":
                inside = any(glob_covers(pattern, item) for pattern in allowed)
            else:
                inside = item in allowed
            if not inside:
                return ScopeExcess(what, item)
    return None


def scope_contains(outer: Scope, inner: Scope) -> bool:
    """Whether ``outer`` contains ``inner`` in every dimension (``scope_excess`` finds
    nothing)."""
    return scope_excess(outer, inner) is None


def describe_scope(scope: Scope) -> str:
    """A one-line summary for people, e.g. ``ops event; event types validated``."""
    out = [f"ops {', '.join(scope.ops) or 'none'}"]
    for what in ("event_types", "tags", "models", "tiers"):
        items = getattr(scope, what)
        if items is not None:
            out.append(f"{what.replace('_', ' ')} {', '.join(items) or 'none'}")
    return "; ".join(out)
