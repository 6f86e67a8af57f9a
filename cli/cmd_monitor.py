"""monitor: check a published log (directory or server) against the checkpoint kept last
time (specs/tiles.md §4, docs/deploy.md)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from verifier import MalformedInputError, VerifierKey, WitnessKey

from .context import Settings, UsageProblem
from .output import Seconds

pass_settings = click.make_pass_decorator(Settings)


def _parse_keys(log_vkey: str, witness_vkeys: tuple[str, ...]
                ) -> tuple[VerifierKey, list[WitnessKey]]:
    try:
        key = VerifierKey.parse(log_vkey)
    except (MalformedInputError, ValueError) as exc:
        raise UsageProblem(f"--key is not a log verifier key: {exc}",
                           "give the log's vkey (name+hex8+base64), as init printed it"
                           ) from None
    witnesses: list[WitnessKey] = []
    for text in witness_vkeys:
        try:
            witnesses.append(WitnessKey.parse(text))
        except (MalformedInputError, ValueError) as exc:
            raise UsageProblem(f"--witness {text!r} is not a witness verifier key: {exc}"
                               ) from None
    # as modelseal-verify: one public key is one witness whatever its name, so a repeated
    # key would raise the default threshold above the witnesses there can be
    if len({w.public_key for w in witnesses}) < len(witnesses):
        raise UsageProblem("two --witness keys share one public key: a cosignature/v1 key "
                           "makes one witness whatever its name", "give each witness once")
    if any(w.public_key == key.public_key for w in witnesses):
        raise UsageProblem("a --witness key is the log's own key: a witness must be another "
                           "party")
    return key, witnesses


@click.command()
@click.argument("source")
@click.option("--key", "log_vkey", required=True, metavar="VKEY",
              help="The log's verifier key (name+hex8+base64), pinned.")
@click.option("--witness", "witness_vkeys", multiple=True, metavar="VKEY",
              help="A witness's cosignature/v1 verifier key (repeat for each witness).")
@click.option("--witness-threshold", type=click.IntRange(min=0), metavar="N",
              help="How many of the --witness keys must cosign [default: all of them].")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Where the last verified checkpoint is kept (JSON, 0600, locked); "
                   "without it nothing is kept between runs.")
@click.option("--actor-key", metavar="FILE",
              help="With a server URL: a reader's (or admin's) key file, to read and check "
                   "the entries.")
@click.option("--no-entries", is_flag=True,
              help="Check the checkpoint and the tiles only, even where entries can be read "
                   "(the entry check reads and replays the whole log; with --follow, each run "
                   "after the first reads only the entries added since).")
@click.option("--follow", is_flag=True, help="Check again every --interval seconds, until "
              "a finding or Ctrl-C.")
@click.option("--interval", type=Seconds(min=1, max=86_400), default=60.0,
              show_default=True, metavar="SECONDS", help="With --follow: the wait between runs.")
@click.option("--timeout", type=Seconds(min=0.1, max=3600), default=30.0,
              show_default=True, metavar="SECONDS",
              help="How long one request to a server may take, whole (connecting, TLS, the "
                   "answer's headers and body) and retries included, and the "
                   "longest wait for the state file's lock.")
@pass_settings
def monitor(settings: Settings, source: str, log_vkey: str, witness_vkeys: tuple[str, ...],
            witness_threshold: int | None, state_file: Path | None, actor_key: str | None,
            no_entries: bool, follow: bool, interval: float, timeout: float) -> None:
    """Check the log published at SOURCE (a `modelseal publish` directory, or a log
    server's http(s) URL): the checkpoint's signature (and cosignatures), that its tiles give
    its root, that the tree extends the checkpoint kept in --state (else fork or rollback),
    and, where entries can be read (a directory published --with-entries, or a server with
    --actor-key), that every entry hashes to its leaf and replays under the log's rules.
    Prints one line per run; the state changes only when everything passed.

    Exit codes: 0 ok; 10 fork; 11 rollback; 12 bad signature or too few witnesses; 13 a
    missing tile or entry; 14 an entry breaks the log's rules; 15 a tile or entry that does
    not hash to the checkpoint; 3 malformed data or state file; 4 source unreachable;
    2 usage.
    """
    from ledger.client import ServerError
    from ledger.client._state import FileState, MemoryState
    from ledger.monitor import Follow, describe, open_source, run_once

    key, witnesses = _parse_keys(log_vkey, witness_vkeys)
    threshold = len(witnesses) if witness_threshold is None else witness_threshold
    if threshold > len(witnesses):
        raise UsageProblem(f"--witness-threshold {threshold} is more than the "
                           f"{len(witnesses)} --witness keys given")
    is_url = source.startswith(("http://", "https://"))
    if actor_key is not None and not is_url:
        raise UsageProblem("--actor-key reads entries from a server URL",
                           "a directory has entries if it was published --with-entries")
    actor = None
    if actor_key is not None:
        settings.key = actor_key
        actor = settings.actor_key()
    if not is_url and not Path(source).is_dir():
        raise UsageProblem(f"{source} is not a directory nor an http(s) URL")
    from . import remote

    try:
        src = open_source(source, actor=actor, timeout=timeout, transport=remote.transport())
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    state = MemoryState() if state_file is None else FileState(state_file, key)
    replays = Follow() if follow else None  # each run replays only the entries after the last
    try:
        while True:
            try:
                checked = run_once(src, key, state, witnesses=witnesses, threshold=threshold,
                                   entries=False if no_entries else None, timeout=timeout,
                                   follow=replays)
            except (OSError, ServerError) as exc:
                if not follow:
                    raise
                click.echo(f"could not check: {exc}; again in {interval:g} s", err=True)
            else:
                click.echo(describe(checked, src.where, witnesses=len(witnesses),
                                    threshold=threshold, kept=state_file is not None or follow))
            if not follow:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        if not follow:
            raise
        click.echo("stopped", err=True)
    finally:
        src.close()


COMMANDS = [monitor]
