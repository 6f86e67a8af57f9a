"""findings: a profile's findings over the log as of a time, by the verifier's own code.

The bundle for WHEN is made in memory (as ``export`` would write it), verified with the
log's key, and the profiles are evaluated by ``verifier.findings``: the output is what
``modelseal-verify --profile`` prints for that bundle.
"""

from __future__ import annotations

import io
import json
from datetime import datetime

import click

from ledger import Ledger
from verifier import Checkpoint, VerifierKey, from_ns, verify_bundle
from verifier.cli import findings_exit, load_profiles
from verifier.findings import evaluate
from verifier.profile import builtin_profiles, is_profile_path

from .context import Settings, UsageProblem
from .output import progress
from .when import HELP as WHEN_HELP
from .when import when_callback

pass_settings = click.make_pass_decorator(Settings)


@click.command()
@click.option("--profile", "refs", multiple=True, required=True, metavar="NAME|FILE.toml",
              help="A built-in profile (sr_11_7, eu_ai_act, nist_ai_rmf) or a profile file "
              "(specs/findings.md); repeatable.")
@click.option("--at", "when", callback=when_callback, metavar="WHEN",
              help="The point in time [default: now, under a checkpoint signed now if the "
              "log key is given, else the latest checkpoint's time]. " + WHEN_HELP)
@click.option("--fail-on-findings", is_flag=True,
              help="Exit 6 (not 0) when there are findings.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the findings as JSON (modelseal-verify --json's `findings`).")
@pass_settings
def findings(settings: Settings, refs: tuple[str, ...], when: datetime | None,
             fail_on_findings: bool, as_json: bool) -> None:
    """Evaluate findings profiles over the inventory as of WHEN (default: now, so a
    revalidation that fell due after the last entry is seen): the bundle `export --at
    WHEN` would write is made in memory, verified with the log's key and evaluated exactly
    as `modelseal-verify --profile` does. Exit 6 with --fail-on-findings if any."""
    for ref in refs:
        if not is_profile_path(ref) and ref not in builtin_profiles():
            raise UsageProblem(f"no built-in profile {ref!r}",
                               f"the built-in profiles are {', '.join(builtin_profiles())}; "
                               f"or give a FILE.toml")
    profiles = load_profiles(refs)
    if settings.remote():
        with settings.client(need_actor=False) as client:
            vkey = client.log_vkey
            if when is None:
                when = _checkpoint_time(client.checkpoint(), vkey)
            buf = io.BytesIO()
            client.export_bundle(at=when, out=buf)
            bundle = buf.getvalue()
    else:
        with settings.signer_of_checkpoints() as ledger, progress("export", as_json) as tick:
            vkey = ledger.log_vkey
            if when is None:
                when = _checkpoint_time(_now_checkpoint(ledger), vkey)
            bundle = ledger.export_bundle(at=when, progress=tick)
    verified = verify_bundle(bundle, [VerifierKey.parse(vkey)])
    found = evaluate(profiles, verified)
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=1, sort_keys=True))
    else:
        click.echo(f"verified: {verified.time_statement()}")
        click.echo(found.text())
    code = findings_exit(found, fail_on_findings)
    if code:
        raise SystemExit(code)


def _now_checkpoint(ledger: Ledger) -> bytes:
    """A checkpoint signed now if the ledger holds the log key (as ``export`` signs one for
    a later WHEN), else the latest one."""
    try:
        return ledger.sign_checkpoint()
    except ValueError:  # opened without the log key: the latest checkpoint is all there is
        return ledger.checkpoint()


def _checkpoint_time(note: bytes, vkey: str) -> datetime | None:
    """The log's time in the checkpoint ``note`` (verified with ``vkey``): the latest
    moment the log proves; None for a checkpoint without a time (then: the last entry)."""
    ns = Checkpoint.parse_note(note, [VerifierKey.parse(vkey)]).time
    return None if ns is None else from_ns(ns)


COMMANDS = [findings]
