"""register, record, update, retire, tag, group: writes, each a signed statement."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ledger import Snapshot
from ledger.client import Client
from verifier import MAX_ENTRY_SIZE, parse_entry
from verifier.canonical import check_json_value

from .context import Log, Settings, UsageProblem
from .infile import PAYLOAD_LIMIT, read_at_most
from .output import emit_json
from .remote import snapshot_of

pass_settings = click.make_pass_decorator(Settings)
_json_flag = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_twice)
    except RecursionError:
        raise UsageProblem(f"{what} is nested too deeply to read (a log value may nest at "
                           "most 32 levels)") from None
    except ValueError as exc:
        raise UsageProblem(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageProblem(f"{what} must be a JSON object")
    try:
        check_json_value(value, what)  # depth, size, int64, NaN: the rules of every log value
    except (ValueError, TypeError) as exc:
        raise UsageProblem(str(exc)) from None
    return value


def _payload_text(payload: str | None, payload_file: Path | None) -> str | None:
    """The payload's text: --payload, stdin (``--payload -``) or --payload-file; None if
    none was given. Empty input is refused: it is what a failed producer leaves."""
    if payload is None and payload_file is None:
        return None
    data: bytes
    if payload_file is not None:
        data, source = read_at_most(payload_file, PAYLOAD_LIMIT), str(payload_file)
    elif payload == "-":
        if sys.stdin is None:
            raise UsageProblem("--payload - reads standard input, which is closed",
                               "pipe the payload in, or use --payload-file")
        data, source = read_at_most(sys.stdin.buffer, PAYLOAD_LIMIT), "standard input"
    else:
        assert payload is not None
        data, source = payload.encode("utf-8", "surrogateescape"), "--payload"
    if len(data) > PAYLOAD_LIMIT:
        raise UsageProblem(
            f"the payload from {source} is larger than {PAYLOAD_LIMIT:,} bytes; nothing was "
            f"recorded (it was not read further)",
            f"an entry holds at most {MAX_ENTRY_SIZE:,} bytes: record a digest or a summary "
            "of large results, not the results themselves")
    if not data.strip():
        raise UsageProblem(
            f"the payload from {source} is empty; nothing was recorded",
            "the program that should have written it probably failed; to record an event "
            "without a payload, leave out --payload (or give --payload '{}')")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageProblem(f"the payload from {source} is not valid UTF-8 ({exc.reason} at "
                           f"byte {exc.start})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_twice(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose every member name is given once (JSON itself would keep the last
    of two silently, which is not what the writer meant either time)."""
    value: dict[str, Any] = {}
    for key, member in pairs:
        if key in value:
            raise ValueError(f"the member {key!r} is given twice in one object")
        value[key] = member
    return value


def _done(snap: Snapshot | Any, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(snap)
        return
    click.echo(f"{verb} {snap.model}: {snap.event_type} at entry {snap.index}, "
               f"snapshot {snap.snapshot_hash}")


def _snapshot_hash(ledger: Log, name: str, ref: str) -> str:
    """The full snapshot hash that ``ref`` (a hash or a unique prefix) names."""
    if isinstance(ledger, Client):
        return snapshot_of(ledger, name, ref)
    try:
        data = ledger.entry(ref)
    except KeyError:
        raise UsageProblem(f"no snapshot {ref}",
                           "`modelseal history NAME` lists a model's snapshots") from None
    return parse_entry(data).snapshot_hash


@click.command()
@click.argument("name")
@click.option("--owner", required=True)
@click.option("--type", "model_type", required=True, help="e.g. ml_model, rules, llm")
@click.option("--tier", required=True, help="Risk tier, e.g. high, medium, low.")
@click.option("--purpose", required=True)
@click.option("--status", default="active", show_default=True)
@click.option("--metadata", help="A JSON object of extra fields.")
@_json_flag
@pass_settings
def register(settings: Settings, name: str, owner: str, model_type: str, tier: str,
             purpose: str, status: str, metadata: str | None, as_json: bool) -> None:
    """Register model NAME. The same fields again change nothing."""
    meta = _json_object(metadata, "--metadata") if metadata else {}
    with settings.writer() as ledger:
        ref = ledger.register(name=name, owner=owner, model_type=model_type, tier=tier,
                              purpose=purpose, status=status, metadata=meta)
    if as_json:
        emit_json(ref)
    else:
        click.echo(f"registered {ref.name}: model hash {ref.model_hash}, "
                   f"snapshot {ref.snapshot.snapshot_hash}")


@click.command()
@click.argument("name")
@click.option("--event", required=True, help="The event type, e.g. retrained, deployed.")
@click.option("--payload", help="A JSON object, or - to read it from stdin.")
@click.option("--payload-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the JSON object from this file.")
@_json_flag
@pass_settings
def record(settings: Settings, name: str, event: str, payload: str | None,
           payload_file: Path | None, as_json: bool) -> None:
    """Record an EVENT about model NAME, with an optional JSON payload."""
    if payload is not None and payload_file is not None:
        raise UsageProblem("give --payload or --payload-file, not both")
    text = _payload_text(payload, payload_file)
    body = _json_object(text, "the payload") if text is not None else {}
    with settings.writer() as ledger:
        snap = ledger.record(name, event, body)
    _done(snap, as_json, "recorded")


@click.command()
@click.argument("name")
@click.option("--owner")
@click.option("--type", "model_type")
@click.option("--tier")
@click.option("--purpose")
@click.option("--status")
@click.option("--metadata", help="A JSON object that replaces the metadata.")
@_json_flag
@pass_settings
def update(settings: Settings, name: str, owner: str | None, model_type: str | None,
           tier: str | None, purpose: str | None, status: str | None, metadata: str | None,
           as_json: bool) -> None:
    """Change identity fields of model NAME (recorded as an `updated` event)."""
    fields: dict[str, Any] = {k: v for k, v in {
        "owner": owner, "model_type": model_type, "tier": tier, "purpose": purpose,
        "status": status}.items() if v is not None}
    if metadata is not None:
        fields["metadata"] = _json_object(metadata, "--metadata")
    if not fields:
        raise UsageProblem("nothing to update", "give at least one of --owner --type --tier "
                           "--purpose --status --metadata")
    with settings.writer() as ledger:
        snap = ledger.update(name, **fields)
    _done(snap, as_json, "updated")


@click.command()
@click.argument("name")
@click.option("--reason")
@_json_flag
@pass_settings
def retire(settings: Settings, name: str, reason: str | None, as_json: bool) -> None:
    """Mark model NAME retired."""
    with settings.writer() as ledger:
        snap = ledger.retire(name, reason=reason)
    _done(snap, as_json, "retired")


@click.command()
@click.argument("name")
@click.argument("tag")
@click.option("--snapshot", help="The snapshot hash to point at, or a unique prefix of at "
              "least 8 hex digits as tables print it [default: the latest].")
@_json_flag
@pass_settings
def tag(settings: Settings, name: str, tag: str, snapshot: str | None, as_json: bool) -> None:
    """Point TAG (e.g. production) of model NAME at a snapshot."""
    with settings.writer() as ledger:
        target = None if snapshot is None else _snapshot_hash(ledger, name, snapshot)
        moved = ledger.tag(name, tag, snapshot=target)
    if as_json:
        emit_json(moved)
    else:
        click.echo(f"tag {tag} of {name} -> {moved.target}")


@click.group()
def group() -> None:
    """Groups of models (composites): create, add, remove."""


@group.command("create")
@click.argument("name")
@click.option("--owner", required=True)
@click.option("--tier", required=True)
@click.option("--purpose", required=True)
@click.option("--type", "model_type", default="group", show_default=True)
@click.option("--member", "members", multiple=True, help="A member model (repeatable).")
@_json_flag
@pass_settings
def group_create(settings: Settings, name: str, owner: str, tier: str, purpose: str,
                 model_type: str, members: tuple[str, ...], as_json: bool) -> None:
    """Register group NAME and add its members, in one transaction."""
    with settings.writer() as ledger:
        ref = ledger.register_group(name=name, owner=owner, model_type=model_type, tier=tier,
                                    purpose=purpose, members=list(members))
    if as_json:
        emit_json(ref)
    else:
        click.echo(f"registered group {name} with {len(members)} member(s)")


@group.command("add")
@click.argument("group_name", metavar="GROUP")
@click.argument("member")
@click.option("--role")
@_json_flag
@pass_settings
def group_add(settings: Settings, group_name: str, member: str, role: str | None,
              as_json: bool) -> None:
    """Add MEMBER to GROUP."""
    with settings.writer() as ledger:
        snap = ledger.add_member(group_name, member, role=role)
    _done(snap, as_json, "added to")


@group.command("remove")
@click.argument("group_name", metavar="GROUP")
@click.argument("member")
@click.option("--reason")
@_json_flag
@pass_settings
def group_remove(settings: Settings, group_name: str, member: str, reason: str | None,
                 as_json: bool) -> None:
    """Remove MEMBER from GROUP."""
    with settings.writer() as ledger:
        snap = ledger.remove_member(group_name, member, reason=reason)
    _done(snap, as_json, "removed from")


COMMANDS = [register, record, update, retire, tag, group]
