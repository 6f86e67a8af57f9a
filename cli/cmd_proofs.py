"""prove, export, audit: what goes to examiners and witnesses, and the self-check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
import msgspec

from ledger.client import Client
from verifier import VerifierError, parse_note
from verifier.compact import CompactReader, is_compact

from .outfile import check_output, pieces_filler, write_output
from .context import Settings, UsageProblem, entry_ref
from .output import emit_json, progress
from .remote import export_to
from .when import HELP as WHEN_HELP
from .when import when_callback

pass_settings = click.make_pass_decorator(Settings)


@click.group()
def prove() -> None:
    """Proof files in the C2SP text formats."""


@prove.command("inclusion")
@click.argument("snapshot")
@click.option("--size", type=click.IntRange(min=1),
              help="Prove against the tree of this size [default: the latest].")
@click.option("--entry-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the entry's exact bytes to this file (a new one).")
@click.option("--force", is_flag=True, help="Replace the --entry-out file if it exists.")
@pass_settings
def prove_inclusion(settings: Settings, snapshot: str, size: int | None,
                    entry_out: Path | None, force: bool) -> None:
    """Print a c2sp.org/tlog-proof@v1 file for the entry SNAPSHOT (hash, unique prefix of 8+
    hex digits, or index)."""
    if entry_out is not None:
        dirs, files = settings.protected()
        check_output(entry_out, force=force, option="--entry-out", protected_dirs=dirs,
                     protected_files=files)
    with settings.reader() as ledger:
        try:
            ref = entry_ref(ledger, snapshot)
            proof = ledger.prove_inclusion(ref, size=size)
            entry = ledger.entry(ref)
        except KeyError:
            raise UsageProblem(f"no entry {snapshot}") from None
    if entry_out is not None:
        write_output(entry_out, pieces_filler([entry]), force=force)
    click.echo(proof.to_text(), nl=False)


@prove.command("consistency")
@click.option("--old", "old_size", type=click.IntRange(min=0), required=True,
              help="The size of the older tree (a checkpoint you hold).")
@click.option("--new", "new_size", type=click.IntRange(min=1),
              help="The size of the newer tree [default: the latest].")
@pass_settings
def prove_consistency(settings: Settings, old_size: int, new_size: int | None) -> None:
    """Print the tlog-witness add-checkpoint body proving OLD is a prefix of NEW."""
    with settings.reader() as ledger:
        proof = ledger.prove_consistency(old_size, new_size)
    click.echo(proof.to_text(), nl=False)


@click.command()
@click.option("--at", "when", callback=when_callback, metavar="WHEN",
              help="The point in time [default: the last entry]; the first checkpoint "
              "witnesses cosigned after it is used where the store holds one. " + WHEN_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the bundle (JSON).")
@click.option("--size", type=click.IntRange(min=1),
              help="Under the checkpoint of this size [default: the latest].")
@click.option("--trusted-size", type=click.IntRange(min=1),
              help="Add a consistency proof from this older checkpoint size.")
@click.option("--format", "encoding", type=click.Choice(["json", "compact"]), default="json",
              show_default=True,
              help="json: one JSON document any JSON tool reads; compact: the entries' raw "
              "bytes, zlib-compressed, read by modelseal-verify as a stream (about a sixth of "
              "the size; specs/bundle.md §7).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_settings
def export(settings: Settings, when: datetime | None, output: Path, size: int | None,
           trusted_size: int | None, encoding: str, force: bool, as_json: bool) -> None:
    """Write a point-in-time proof bundle for examiners (verify it with modelseal-verify).
    An existing OUTPUT is never replaced without --force. A bundle proves a time only up to
    its checkpoint's: for a later WHEN (not in the future) the log key, if given, signs a
    fresh checkpoint; without it such a WHEN is refused."""
    dirs, files = settings.protected()
    check_output(output, force=force, option="-o", protected_dirs=dirs, protected_files=files)
    if settings.remote():
        if encoding != "json":
            raise UsageProblem("a log server exports JSON bundles only",
                               "export with --format json, or on the store itself")
        with settings.client(need_actor=False) as client:
            written = export_to(client, output, force, when, size, trusted_size)
            _exported(output, written, client.log_vkey, as_json)
        return
    with settings.signer_of_checkpoints() as ledger, progress("export", as_json) as tick:
        pieces = ledger.iter_bundle(at=when, size=size, trusted_size=trusted_size,
                                    progress=tick, encoding=encoding)
        vkey = ledger.log_vkey
        written, cosigs = _write_pieces(output, pieces, force)
    _exported(output, written, vkey, as_json, cosigs)


def _write_pieces(output: Path, pieces: Iterator[bytes], force: bool) -> tuple[int, int]:
    """Write the bundle's pieces to ``output`` as they come (never whole in memory), whole
    or not at all (``write_output``); return (bytes written, witness cosignatures on its
    checkpoint)."""
    first: list[bytes] = []

    def noting_the_head() -> Iterator[bytes]:
        for piece in pieces:
            if not first:
                first.append(piece)  # JSON: the document up to '"entries":['
            yield piece

    written = write_output(output, pieces_filler(noting_the_head()), force=force)
    head = first[0] if first else b""
    if is_compact(head):
        with output.open("rb") as fh:
            try:
                return written, _cosignatures(CompactReader(fh).header)
            except VerifierError:
                return written, 0
    return written, _cosignatures(head + b"]}")


class _CheckpointOnly(msgspec.Struct):
    checkpoint: str


def _cosignatures(bundle: bytes) -> int:
    """How many signature lines besides the log's the bundle's checkpoint carries."""
    try:
        note = msgspec.json.decode(bundle, type=_CheckpointOnly).checkpoint.encode("utf-8")
        return len(parse_note(note).signatures) - 1
    except (msgspec.DecodeError, VerifierError):
        return 0


def _exported(output: Path, size: int, vkey: str, as_json: bool, cosignatures: int = 0
              ) -> None:
    if as_json:
        extra = {"cosignatures": cosignatures} if cosignatures else {}
        emit_json({"bundle": str(output), "bytes": size, "log_vkey": vkey, **extra})
    else:
        click.echo(f"wrote {output} ({size:,} bytes)")
        click.echo(f"verify with: modelseal-verify {output} --key {vkey}")
        if cosignatures:
            click.echo(f"its checkpoint carries {cosignatures} witness cosignature"
                       f"{'s' if cosignatures > 1 else ''}: add --witness VKEY for each "
                       f"witness you pin (docs/examiners.md)")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_settings
def audit(settings: Settings, as_json: bool) -> None:
    """Recompute every hash, node, index row, state and signature of the store."""
    settings.local_only("audit")
    with settings.reader() as ledger, progress("audit", as_json) as tick:
        assert not isinstance(ledger, Client)
        count = ledger.audit(progress=tick)
    if as_json:
        emit_json({"ok": True, "entries": count})
    else:
        click.echo(f"audit ok: {count} entries, every hash, node, index and signature matches")


COMMANDS = [prove, export, audit]
