"""``modelseal demo``: a year of a bank's model inventory, exported for an
examiner as of a past quarter end, verified offline, then tampered with."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import click

from ledger import ActorKey, Ledger, LogKey
from verifier import Checkpoint
from verifier import cli as verify_cli
from verifier.exitcodes import EXIT_INTERRUPTED

from .output import progress, table
from .scenario import ORIGIN, START, DemoClock, run_year

QUARTER_END = datetime(2025, 9, 30, 23, 59, 59, tzinfo=timezone.utc)


def _step(text: str) -> None:
    click.echo("")
    click.secho(f"== {text}", bold=True)


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def demo(directory: Path | None) -> None:
    """Run the end-to-end demo in DIRECTORY (default: a new temporary directory).

    Builds a store with a log key, an admin, two pipelines and a validation team; registers
    about 50 models in five groups; records a year of retrains, validations, deployments,
    an incident, a retirement and a key revocation; exports the inventory as of 2025-09-30;
    verifies it with the standalone verifier, with the SR 11-7, EU AI Act and NIST AI RMF
    findings, and writes the HTML report; then flips one byte of a copy and shows
    verification fail.
    """
    base = directory or Path(tempfile.mkdtemp(prefix="modelseal-demo-"))
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise click.UsageError(f"{directory} is not empty; give a new or empty directory")
    base.mkdir(parents=True, exist_ok=True)
    store, keys_dir = base / "store", base / "keys"
    keys_dir.mkdir(mode=0o700, exist_ok=True)

    _step(f"1. A new store in {store}")
    log_key, admin = LogKey.generate(ORIGIN), ActorKey.generate("risk-admin")
    clock = DemoClock(START)
    ledger = Ledger.create(store, origin=ORIGIN, log_key=log_key, admin=admin, clock=clock)
    log_key.save(keys_dir / "log.key")
    admin.save(keys_dir / "risk-admin.key")
    click.echo(f"log verifier key (what an examiner receives out of band):\n  {log_key.vkey}")

    _step("2. A year of model risk events (simulated clock, 2025)")
    with progress("months", False) as tick:
        sc = run_year(ledger, log_key, admin, clock, tick)
    for name, key in sc.keys.items():
        if name != "admin":
            key.save(keys_dir / f"{key.name}.key")
    click.echo(f"{ledger.size} entries, {len(ledger.inventory_at())} models and groups; "
               f"checkpoint size at Q2 end: {sc.quarter_sizes['Q2']}")
    click.echo("incident: fraud_card_txn (May); retired: credit_legacy_scorecard (August); "
               "revoked: the batch-pipeline key (July)")

    _step("3. Export the inventory as of 2025-09-30 for the examiner")
    bundle = base / "bundle-2025-09-30.json"
    bundle.write_bytes(ledger.export_bundle(at=QUARTER_END, trusted_size=sc.quarter_sizes["Q2"]))
    trusted = base / "checkpoint-2025-06-30.txt"
    q2 = ledger.prove_consistency(sc.quarter_sizes["Q2"], sc.quarter_sizes["Q2"]).checkpoint
    trusted.write_bytes(q2)
    Checkpoint.parse_note(q2, [log_key.key])
    click.echo(f"wrote {bundle.name} ({bundle.stat().st_size:,} bytes) and the Q2 checkpoint "
               f"the examiner already holds ({trusted.name})")

    _step("4. The examiner verifies it offline with modelseal-verify")
    report = base / "report.html"
    args = [str(bundle), "--key", log_key.vkey, "--trusted", str(trusted),
            "--profile", "sr_11_7", "--profile", "eu_ai_act", "--profile", "nist_ai_rmf",
            "--report", str(report)]
    click.echo("$ modelseal-verify " + " ".join(_quote(a) for a in args))
    code = _verify(args)
    if code != 0:
        raise click.ClickException("the demo bundle did not verify")

    _step("5. The inventory as of 2025-09-30, high tier")
    then = ledger.inventory_at(QUARTER_END)
    rows = [(m.name, m.owner, m.status, m.last_event_type,
             "yes" if "production" in m.tags else "")
            for m in sorted(then.values(), key=lambda m: m.name)
            if m.tier == "high" and m.model_type != "group"]
    table(rows, ["model", "owner", "status", "last event", "in production"])

    _step("6. Someone edits one byte of the bundle")
    tampered = base / "bundle-tampered.json"
    data = bytearray(bundle.read_bytes())
    spot = data.index(b'"entries":["') + 12 + 400
    data[spot] = ord("A") if data[spot] != ord("A") else ord("B")
    tampered.write_bytes(bytes(data))
    click.echo(f"$ modelseal-verify {tampered.name} --key ...")
    code = _verify([str(tampered), "--key", log_key.vkey])
    click.echo(f"(exit code {code})")
    if code == 0:
        raise click.ClickException("the tampered bundle verified; this must never happen")
    ledger.close()

    _step("Look further")
    env = (f"export MODELSEAL_STORE={store} MODELSEAL_LOG_KEY={keys_dir / 'log.key'} "
           f"MODELSEAL_KEY={keys_dir / 'risk-admin.key'}")
    for line in [env, "modelseal inventory --at 2025-06-30", "modelseal history fraud_card_txn",
                 "modelseal tags fraud_card_txn", "modelseal members credit_suite --at 2025-08-01",
                 f"modelseal show {sc.notes['incident']}",
                 f"modelseal prove inclusion {sc.notes['incident']} --entry-out entry.json",
                 f"modelseal prove consistency --old {sc.quarter_sizes['Q2']}",
                 "modelseal audit",
                 "modelseal findings --profile sr_11_7 --at 2025-09-30",
                 f"open {report}"]:
        click.echo(f"  {line}")


def _quote(text: str) -> str:
    return text if all(c.isalnum() or c in "/._-+=:" for c in text) else f"'{text}'"


COMMANDS = [demo]


def _verify(args: list[str]) -> int:
    """modelseal-verify's exit code for ``args``; a Ctrl-C during it stops the demo (it is
    not the verifier's verdict)."""
    code = verify_cli.main(args)
    if code == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    return code
