"""publish: the log as static C2SP tlog-tiles files (specs/tiles.md, docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path

import click

from .context import Settings
from .output import emit_json

pass_settings = click.make_pass_decorator(Settings)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--store", "store", metavar="DIR", help="The store directory [env: MODELSEAL_STORE].")
@click.option("--with-entries", is_flag=True,
              help="Also write entry bundles (tile/entries/...). Entries are confidential: "
                   "only for a directory that only readers of the log can see. A directory "
                   "that already has tile/entries gets its bundles kept current anyway.")
@click.option("--recheck", is_flag=True,
              help="Compare every file already in DIRECTORY with the log, not only those the "
                   "new checkpoint adds.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_settings
def publish(settings: Settings, directory: Path, store: str | None, with_entries: bool,
            recheck: bool, as_json: bool) -> None:
    """Write the log into DIRECTORY as C2SP tlog-tiles: `checkpoint` (the latest cosigned
    checkpoint if the store holds one, else the latest), hash tiles `tile/<L>/<N>[.p/<W>]`
    and, with --with-entries, entry bundles. Incremental and safe to interrupt: only new
    files are written, a file already present with other bytes stops the run (exit 1,
    nothing replaced), and the checkpoint is written last."""
    from ledger import Ledger
    from ledger._publish import publish as run

    settings.store = store or settings.store
    settings.local_only("publish")
    with Ledger.open(settings.store_path()) as ledger:
        done = run(ledger, directory, with_entries=with_entries, recheck=recheck)
    if as_json:
        emit_json({"directory": str(directory), "size": done.size, "previous": done.previous,
                   "tiles_written": done.tiles_written, "bundles_written": done.bundles_written,
                   "files_checked": done.files_checked,
                   "checkpoint_written": done.checkpoint_written, "kept_newer": done.kept_newer,
                   "with_entries": done.with_entries})
        return
    if done.kept_newer:
        click.echo(f"kept: {directory} already publishes a checkpoint of size {done.size}, "
                   "newer than the store's latest cosigned one")
        return
    what = f"{done.tiles_written} tiles"
    if done.with_entries:
        what += f", {done.bundles_written} entry bundles"
    cp = "checkpoint written" if done.checkpoint_written else "checkpoint unchanged"
    click.echo(f"published size {done.size} to {directory}: {what} written, "
               f"{done.files_checked} present files checked, {cp}")


COMMANDS = [publish]
