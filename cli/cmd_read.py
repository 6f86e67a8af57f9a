"""history, inventory, tags, members, show, checkpoint: reads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from ledger import Snapshot
from ledger.diff import diff_inventories
from ledger.mlimport import imported_record, original_note
from verifier import Checkpoint, VerifierKey, from_ns, parse_entry, to_ns
from verifier.names import visible
from verifier.encoding import b64encode

from ledger.client import Client

from .context import Settings, UsageProblem, entry_ref
from .output import emit_csv, emit_json, iso, short, table
from .when import HELP as WHEN_HELP
from .when import when_callback

pass_settings = click.make_pass_decorator(Settings)
_json_flag = click.option("--json", "as_json", is_flag=True,
                          help="Print machine-readable JSON on stdout.")


_csv_flag = click.option("--csv", "as_csv", is_flag=True,
                         help="Print the table as CSV (RFC 4180, header row) on stdout.")


def _one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise UsageProblem("give --json or --csv, not both")


@click.command()
@click.argument("name")
@click.option("--at", "when", callback=when_callback, metavar="WHEN",
              help="Only the entries recorded by WHEN. " + WHEN_HELP)
@_json_flag
@_csv_flag
@pass_settings
def history(settings: Settings, name: str, when: datetime | None, as_json: bool,
            as_csv: bool) -> None:
    """Every entry of model NAME's chain, oldest first (up to WHEN with --at). An imported
    row shows its original time as "imported; originally at ...": the log's time is the
    import's."""
    _one_format(as_json, as_csv)
    with settings.reader() as ledger:
        snaps = ledger.history(name)
    if not snaps:
        raise UsageProblem(f"no model named {name!r}", "`modelseal inventory` lists the models")
    if when is not None:
        snaps = [s for s in snaps if s.timestamp <= when]
    if as_json:
        emit_json(snaps)
        return
    notes = [original_note(imported_record(s.payload, s.op == "register")) for s in snaps]
    headers = ["entry", "recorded at", "event", "actor", "snapshot", "original", "payload"]
    if as_csv:
        emit_csv([(s.index, iso(s.timestamp), s.event_type, s.actor, s.snapshot_hash, note,
                   json.dumps(s.payload, sort_keys=True, ensure_ascii=False))
                  for s, note in zip(snaps, notes, strict=True)], headers)
        return
    if when is not None and not snaps:
        click.echo(f"no entry of {name} was recorded by {iso(when)}")
        return
    if not any(notes):
        headers.remove("original")
    table([(s.index, iso(s.timestamp), s.event_type, s.actor, short(s.snapshot_hash),
            *((note,) if any(notes) else ()), _brief(_without_imported(s)))
           for s, note in zip(snaps, notes, strict=True)], headers, limit=72)


def _without_imported(s: Snapshot) -> dict[str, Any]:
    """The payload as a table shows it: the imported record is in its own column."""
    if s.op == "register" and isinstance(s.payload.get("metadata"), dict):
        meta = {k: v for k, v in s.payload["metadata"].items() if k != "imported"}
        return {**s.payload, "metadata": meta}
    return {k: v for k, v in s.payload.items() if k != "imported"}


def _brief(payload: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in payload.items())
    return text if len(text) <= 60 else text[:59] + "…"


@click.command()
@click.option("--at", "when", callback=when_callback, metavar="WHEN", help=WHEN_HELP)
@click.option("--tier", multiple=True, help="Only models of this tier (repeat for several).")
@click.option("--owner", multiple=True, help="Only models of this owner (repeat for several).")
@click.option("--status", multiple=True,
              help="Only models of this status, e.g. active or retired (repeat for several).")
@click.option("--tag", multiple=True,
              help="Only models that have this tag, e.g. production (repeat: any of them).")
@_json_flag
@_csv_flag
@pass_settings
def inventory(settings: Settings, when: datetime | None, tier: tuple[str, ...],
              owner: tuple[str, ...], status: tuple[str, ...], tag: tuple[str, ...],
              as_json: bool, as_csv: bool) -> None:
    """Every model as it stood at WHEN (default: now), by the log's recorded times;
    --tier, --owner, --status and --tag keep only the models that match (each filter
    given: all of them must match; one filter repeated: any of its values)."""
    _one_format(as_json, as_csv)
    with settings.reader() as ledger:
        models = ledger.inventory_at(when)
        first = parse_entry(ledger.entry(0)).entry.recorded_at
        last = parse_entry(ledger.entry(ledger.size - 1)).entry.recorded_at
    rows = [m for m in sorted(models.values(), key=lambda m: m.name)
            if (not tier or m.tier in tier) and (not owner or m.owner in owner)
            and (not status or m.status in status) and (not tag or set(tag) & set(m.tags))]
    t = None if when is None else to_ns(when)
    before_genesis = t is not None and t < first
    if as_json:
        emit_json({"at": iso(when) if when else None, "before_genesis": before_genesis,
                   "genesis_at": iso(from_ns(first)), "last_entry_at": iso(from_ns(last)),
                   "models": [m.to_json() for m in rows]})
        return
    notes = [original_note(imported_record({"metadata": m.metadata}, True)) for m in rows]
    headers = ["model", "owner", "type", "tier", "status", "last event", "at", "tags"]
    if as_csv:
        emit_csv([(m.name, m.owner, m.model_type, m.tier, m.status, m.last_event_type,
                   iso(from_ns(m.last_event_at)), ",".join(sorted(m.tags)),
                   note.replace("originally at", "originally registered at"))
                  for m, note in zip(rows, notes, strict=True)], [*headers, "original"])
        return
    if before_genesis:
        click.echo(f"{iso(when)} is before the log's genesis at {iso(from_ns(first))}: "
                   f"the log held no entries then")
        return
    extra = any(notes)
    table([(m.name, m.owner, m.model_type, m.tier, m.status, m.last_event_type,
            iso(from_ns(m.last_event_at)), ",".join(sorted(m.tags)) or "-",
            *((note.replace("originally at", "originally registered at"),) if extra else ()))
           for m, note in zip(rows, notes, strict=True)],
          [*headers, *(("original",) if extra else ())], limit=72)
    filters = [f"{opt} {'|'.join(vals)}" for opt, vals in (("--tier", tier), ("--owner", owner),
                                                             ("--status", status),
                                                             ("--tag", tag)) if vals]
    click.echo(f"\n{len(rows)} model(s)" + (f" as of {iso(when)}" if when else "")
               + (f" matching {', '.join(filters)}" if filters else ""))
    if t is not None and t > last:
        click.echo(f"(the log's last entry was recorded at {iso(from_ns(last))}; this store "
                   f"shows nothing later yet, and a bundle proves a time only up to its "
                   f"checkpoint)")


@click.command()
@click.argument("when1", metavar="WHEN1", callback=when_callback)
@click.argument("when2", metavar="WHEN2", callback=when_callback)
@_json_flag
@_csv_flag
@pass_settings
def diff(settings: Settings, when1: datetime, when2: datetime, as_json: bool,
         as_csv: bool) -> None:
    """What changed in the inventory from WHEN1 to WHEN2, by the log's recorded times:
    models registered, retired (or reactivated), changed (owner, type, tier, purpose,
    status, metadata) and re-tagged. Each WHEN is ISO 8601 with a timezone, or a bare date
    meaning the end of that day in UTC."""
    _one_format(as_json, as_csv)
    if when1 > when2:
        raise UsageProblem(f"WHEN1 ({iso(when1)}) is later than WHEN2 ({iso(when2)}): a "
                           "diff runs forwards", f"modelseal diff {iso(when2)} {iso(when1)}")
    with settings.reader() as ledger:
        changes = diff_inventories(ledger.inventory_at(when1), ledger.inventory_at(when2))
    if as_json:
        emit_json({"from": iso(when1), "to": iso(when2),
                   "changes": [{"change": c.kind, "model": c.model, "detail": c.detail}
                               for c in changes]})
        return
    headers = ["change", "model", "detail"]
    rows = [(c.kind, c.model, c.detail) for c in changes]
    if as_csv:
        emit_csv(rows, headers)
        return
    if not changes:
        click.echo(f"no change between {iso(when1)} and {iso(when2)}")
        return
    table(rows, headers)
    kinds = ("registered", "retired", "reactivated", "changed", "re-tagged")
    counts = {k: n for k in kinds if (n := sum(c.kind == k for c in changes))}
    click.echo(f"\nfrom {iso(when1)} to {iso(when2)}: "
               + ", ".join(f"{n} {k}" for k, n in counts.items()))


@click.command()
@click.argument("name")
@_json_flag
@_csv_flag
@pass_settings
def tags(settings: Settings, name: str, as_json: bool, as_csv: bool) -> None:
    """The tags of model NAME and the snapshots they point at."""
    _one_format(as_json, as_csv)
    with settings.reader() as ledger:
        found = ledger.tags(name)
        if not found and not ledger.history(name):
            raise UsageProblem(f"no model named {name!r}", "`modelseal inventory` lists the models")
    if as_json:
        emit_json({t.name: {"target": t.target, "moved_at": t.moved.timestamp,
                            "moved_by": t.moved.actor} for t in found.values()})
        return
    rows = [(t.name, t.target, iso(t.moved.timestamp), t.moved.actor) for t in found.values()]
    headers = ["tag", "snapshot", "moved at", "by"]
    (emit_csv if as_csv else table)(rows, headers)


@click.command()
@click.argument("group_name", metavar="GROUP")
@click.option("--at", "when", callback=when_callback, metavar="WHEN", help=WHEN_HELP)
@_json_flag
@_csv_flag
@pass_settings
def members(settings: Settings, group_name: str, when: datetime | None, as_json: bool,
            as_csv: bool) -> None:
    """The members of GROUP now, or at WHEN."""
    _one_format(as_json, as_csv)
    with settings.reader() as ledger:
        found = ledger.members(group_name, at=when)
        if not found and not ledger.history(group_name):
            raise UsageProblem(f"no model named {group_name!r}",
                               "`modelseal inventory` lists the models and groups")
    if as_json:
        emit_json(found)
        return
    (emit_csv if as_csv else table)(sorted(found.items()), ["member", "role"])


@click.command()
@click.argument("snapshot")
@_json_flag
@pass_settings
def show(settings: Settings, snapshot: str, as_json: bool) -> None:
    """One entry, by snapshot hash (or a unique prefix of 8+ hex digits, or an index): its
    exact bytes, parsed."""
    with settings.reader() as ledger:
        try:
            data = ledger.entry(entry_ref(ledger, snapshot))
        except KeyError:
            raise UsageProblem(f"no entry {snapshot}") from None
    p = parse_entry(data)
    doc: dict[str, Any] = {"index": p.entry.index, "snapshot": p.snapshot_hash,
                           "recorded_at": iso(from_ns(p.entry.recorded_at)),
                           "prev": p.entry.prev,
                           "key_id": p.entry.key_id,
                           "statement": _statement_json(p.statement_bytes),
                           "entry_bytes": data.decode("utf-8")}
    if as_json:
        emit_json(doc)
        return
    for key in ("index", "snapshot", "recorded_at", "prev", "key_id"):
        click.echo(f"{key:12} {doc[key]}")
    click.echo("statement:")
    for key, value in doc["statement"].items():
        click.echo(f"  {key:12} {visible(str(value))}")


def _statement_json(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(data)
    value["claimed_at"] = iso(from_ns(value["claimed_at"]))
    return value


@click.command()
@_json_flag
@pass_settings
def checkpoint(settings: Settings, as_json: bool) -> None:
    """Print the latest signed checkpoint note, byte for byte (or, with --json, its parts):
    the latest one witnesses cosigned, with their cosignatures, if there is one (as a
    server's GET /checkpoint serves it)."""
    with settings.reader() as ledger:
        note = ledger.checkpoint() if isinstance(ledger, Client) else \
            (ledger.cosigned() or ledger.checkpoint())
        cp = Checkpoint.parse_note(note, [VerifierKey.parse(ledger.log_vkey)])
    if as_json:
        emit_json({"origin": cp.origin, "size": cp.size, "root": b64encode(cp.root),
                   "time": None if cp.time is None else iso(from_ns(cp.time)), "time_ns": cp.time,
                   "signers": list(cp.signers), "note": note.decode("utf-8")})
        return
    click.echo(note, nl=False)


COMMANDS = [history, inventory, diff, tags, members, show, checkpoint]
