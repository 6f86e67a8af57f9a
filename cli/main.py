"""``modelseal``: the command line over the ledger. Thin: every rule and byte
lives in ledger/ or verifier/."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

import verifier

from .context import Settings
from .errors import HANDLED, fail


class _Group(click.Group):
    """A click group that turns known errors into `error: ...` and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # the reader went away (e.g. `| head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        except HANDLED as exc:
            fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
@click.version_option(verifier.__version__, prog_name="modelseal")
@click.option("--store", metavar="DIR", help="The store directory [env: MODELSEAL_STORE].")
@click.option("--key", metavar="FILE", help="Your actor key file [env: MODELSEAL_KEY].")
@click.option("--log-key", metavar="FILE", help="The log key file [env: MODELSEAL_LOG_KEY].")
@click.option("--allow-insecure-key", is_flag=True,
              help="Accept key files readable by group or others.")
@click.pass_context
def main(ctx: click.Context, store: str | None, key: str | None, log_key: str | None,
         allow_insecure_key: bool) -> None:
    """A tamper-evident model inventory: every change is a signed entry in an append-only,
    Merkle-hashed log with signed checkpoints. Examiners verify exported bundles offline with
    `modelseal-verify`.

    Exit codes: 0 ok, 1 verification failed, 2 usage, 3 malformed input, 4 I/O or store error.
    """
    ctx.obj = Settings(store, key, log_key, allow_insecure_key)


def _register_commands() -> None:
    from . import cmd_keys, cmd_proofs, cmd_read, cmd_write, demo

    for module in (cmd_keys, cmd_write, cmd_read, cmd_proofs, demo):
        for command in module.COMMANDS:
            main.add_command(command)


_register_commands()


def run() -> None:
    """Console-script entry point."""
    main()
