"""history, inventory, tags, members, show, checkpoint: reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from verifier import Checkpoint, VerifierKey, from_ns, parse_entry, to_ns
from verifier.names import visible
from verifier.encoding import b64encode

from ledger.client import Client

from .context import Settings, UsageProblem, entry_ref
from .output import emit_json, iso, short, table
from .when import HELP as WHEN_HELP
from .when import when_callback

pass_settings = click.make_pass_decorator(Settings)
_json_flag = click.option("--json", "as_json", is_flag=True,
                          help="Print machine-readable JSON on stdout.")


@click.command()
@click.argument("name")
@_json_flag
@pass_settings
def history(settings: Settings, name: str, as_json: bool) -> None:
    """Every entry of model NAME's chain, oldest first."""
    with settings.reader() as ledger:
        snaps = ledger.history(name)
    if not snaps:
        raise UsageProblem(f"no model named {name!r}", "`modelseal inventory` lists the models")
    if as_json:
        emit_json(snaps)
        return
    table([(s.index, iso(s.timestamp), s.event_type, s.actor, short(s.snapshot_hash),
            _brief(s.payload)) for s in snaps],
          ["entry", "recorded at", "event", "actor", "snapshot", "payload"])


def _brief(payload: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in payload.items())
    return text if len(text) <= 60 else text[:59] + "…"


@click.command()
@click.option("--at", "when", callback=when_callback, metavar="WHEN", help=WHEN_HELP)
@_json_flag
@pass_settings
def inventory(settings: Settings, when: datetime | None, as_json: bool) -> None:
    """Every model as it stood at WHEN (default: now), by the log's recorded times."""
    with settings.reader() as ledger:
        models = ledger.inventory_at(when)
        first = parse_entry(ledger.entry(0)).entry.recorded_at
        last = parse_entry(ledger.entry(ledger.size - 1)).entry.recorded_at
    rows = sorted(models.values(), key=lambda m: m.name)
    t = None if when is None else to_ns(when)
    before_genesis = t is not None and t < first
    if as_json:
        emit_json({"at": iso(when) if when else None, "before_genesis": before_genesis,
                   "genesis_at": iso(from_ns(first)), "last_entry_at": iso(from_ns(last)),
                   "models": [m.to_json() for m in rows]})
        return
    if before_genesis:
        click.echo(f"{iso(when)} is before the log's genesis at {iso(from_ns(first))}: "
                   f"the log held no entries then")
        return
    table([(m.name, m.owner, m.model_type, m.tier, m.status, m.last_event_type,
            iso(from_ns(m.last_event_at)), ",".join(sorted(m.tags)) or "-") for m in rows],
          ["model", "owner", "type", "tier", "status", "last event", "at", "tags"])
    click.echo(f"\n{len(rows)} model(s)" + (f" as of {iso(when)}" if when else ""))
    if t is not None and t > last:
        click.echo(f"(the log's last entry was recorded at {iso(from_ns(last))}; this store "
                   f"shows nothing later yet, and a bundle proves a time only up to its "
                   f"checkpoint)")


@click.command()
@click.argument("name")
@_json_flag
@pass_settings
def tags(settings: Settings, name: str, as_json: bool) -> None:
    """The tags of model NAME and the snapshots they point at."""
    with settings.reader() as ledger:
        found = ledger.tags(name)
        if not found and not ledger.history(name):
            raise UsageProblem(f"no model named {name!r}", "`modelseal inventory` lists the models")
    if as_json:
        emit_json({t.name: {"target": t.target, "moved_at": t.moved.timestamp,
                            "moved_by": t.moved.actor} for t in found.values()})
        return
    table([(t.name, t.target, iso(t.moved.timestamp), t.moved.actor) for t in found.values()],
          ["tag", "snapshot", "moved at", "by"])


@click.command()
@click.argument("group_name", metavar="GROUP")
@click.option("--at", "when", callback=when_callback, metavar="WHEN", help=WHEN_HELP)
@_json_flag
@pass_settings
def members(settings: Settings, group_name: str, when: datetime | None, as_json: bool) -> None:
    """The members of GROUP now, or at WHEN."""
    with settings.reader() as ledger:
        found = ledger.members(group_name, at=when)
        if not found and not ledger.history(group_name):
            raise UsageProblem(f"no model named {group_name!r}",
                               "`modelseal inventory` lists the models and groups")
    if as_json:
        emit_json(found)
        return
    table(sorted(found.items()), ["member", "role"])


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
    import json

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


COMMANDS = [history, inventory, tags, members, show, checkpoint]
