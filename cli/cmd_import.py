"""import model-ledger: bring a model-ledger SQLite database into the log."""

from __future__ import annotations

from pathlib import Path

import click

from ledger import Ledger
from ledger.mlimport import LOST, ImportReport, import_model_ledger
from verifier.names import visible

from .context import Settings
from .output import emit_json, progress

pass_settings = click.make_pass_decorator(Settings)
_SHOWN = 100  # refusals listed in text; --json has them all


@click.group("import")
def import_group() -> None:
    """Bring another inventory's records into the log."""


@import_group.command("model-ledger")
@click.argument("database", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True,
              help="Check everything and write nothing: show what would be written.")
@click.option("--chunk", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Statements per committed batch.")
@click.option("--quiet", is_flag=True, help="No progress bar on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_settings
def model_ledger(settings: Settings, database: Path, dry_run: bool, chunk: int, quiet: bool,
                 as_json: bool) -> None:
    """Import DATABASE, a model-ledger SQLite file (read-only), as statements signed by
    --key, in model-ledger's order. Each original time, actor and hash is kept under
    "imported" in the payload (the metadata for a registration); the log's time is the
    import's. Running it again writes only what is not in the log yet. Needs a local
    store and the log key."""
    settings.local_only("import")
    signer = settings.actor_key()
    with Ledger.open(settings.store_path(), log_key=settings.log_key_obj(),
                     signer=signer) as ledger, progress("importing", quiet or as_json) as bar:
        report = import_model_ledger(ledger, database, signer=signer, chunk=chunk,
                                     dry_run=dry_run, progress=bar)
    if as_json:
        emit_json(report.to_json())
    else:
        _print(report)


def _print(report: ImportReport) -> None:
    verb = "would write" if report.dry_run else "wrote"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.written.items())) or "nothing"
    click.echo(f"read {report.rows} row(s); {verb} {kinds}")
    if report.already:
        click.echo(f"{report.already} statement(s) were already in the log from an earlier "
                   f"import and were skipped")
    for original, ours in sorted(report.renamed.items()):
        click.echo(f"event type {original!r} is written as {ours!r} (the original is kept)")
    if report.refused:
        click.echo(f"not imported ({len(report.refused)}):")
        for what, why in report.refused[:_SHOWN]:
            click.echo(visible(f"  {what}: {why}"))
        if len(report.refused) > _SHOWN:
            click.echo(f"  and {len(report.refused) - _SHOWN} more (--json lists them all)")
    if report.untimed:
        click.echo(f"time unreadable ({len(report.untimed)}), so taken out of time order "
                   "(a registration first, any other row after all the others):")
        for what in report.untimed[:_SHOWN]:
            click.echo(visible(f"  {what}"))
        if len(report.untimed) > _SHOWN:
            click.echo(f"  and {len(report.untimed) - _SHOWN} more (--json lists them all)")
    if report.other_tables:
        click.echo(f"tables not read: {', '.join(report.other_tables)}")
    click.echo(LOST)
    if report.dry_run:
        click.echo("dry run: nothing was written")


COMMANDS = [import_group]
