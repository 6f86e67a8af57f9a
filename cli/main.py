"""``modelseal``: the command line over the ledger (commands arrive with issue 4)."""

from __future__ import annotations

import click

import verifier


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(verifier.__version__, prog_name="modelseal")
def main() -> None:
    """A tamper-evident model inventory. Verify bundles with `modelseal-verify`."""


def run() -> None:
    """Console-script entry point."""
    main()
