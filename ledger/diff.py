"""What changed in the inventory between two times: a comparison of two inventories
(``Ledger.inventory_at`` or ``Client.inventory_at`` at each time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from verifier import ModelState

__all__ = ["Change", "diff_inventories"]

_FIELDS = ("owner", "model_type", "tier", "purpose", "status", "metadata")


@dataclass(frozen=True)
class Change:
    """One model's change: ``kind`` is registered, retired, reactivated, changed or
    re-tagged; ``detail`` says what, as ``field: before -> after`` parts."""

    kind: str
    model: str
    detail: str


def diff_inventories(before: Mapping[str, ModelState], after: Mapping[str, ModelState]
                     ) -> list[Change]:
    """The changes from ``before`` to ``after``, by model name, then in the order
    registered, retired/reactivated, changed, re-tagged. A model registered in between
    is only ``registered`` (with its status if it was retired again since)."""
    out: list[Change] = []
    for name in sorted(after):
        new = after[name]
        old = before.get(name)
        if old is None:
            out.append(Change("registered", name, f"tier {new.tier}, owner {new.owner}"
                              + ("" if new.status == "active" else f", now {new.status}")))
            continue
        if old.status != new.status and "retired" in (old.status, new.status):
            kind = "retired" if new.status == "retired" else "reactivated"
            out.append(Change(kind, name, f"status: {old.status} -> {new.status}"))
        changed = [f"{f}: {_show(getattr(old, f))} -> {_show(getattr(new, f))}"
                   for f in _FIELDS if getattr(old, f) != getattr(new, f)
                   and not (f == "status" and "retired" in (old.status, new.status))]
        if changed:
            out.append(Change("changed", name, "; ".join(changed)))
        moved = [f"{t}: {_short(old.tags.get(t))} -> {_short(new.tags.get(t))}"
                 for t in sorted(set(old.tags) | set(new.tags))
                 if old.tags.get(t) != new.tags.get(t)]
        if moved:
            out.append(Change("re-tagged", name, "; ".join(moved)))
    return out


def _show(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _short(target: str | None) -> str:
    return "(none)" if target is None else target[:12]
