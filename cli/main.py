"""``modelseal``: the command line over the ledger. Thin: every rule and byte
lives in ledger/ or verifier/."""

from __future__ import annotations

import errno
import io
import sys
from typing import Any, NoReturn

import click

import verifier
from verifier.cli import exit_decided, quiet_broken_pipe, safe_streams

from verifier.exitcodes import EXIT_INTERRUPTED, EXIT_IO

from .context import Settings, UsageProblem
from .output import Seconds
from .errors import fail


def _is_text(arg: str) -> bool:
    """Whether a command-line argument is valid Unicode (not bytes escaped as surrogates)."""
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _wants_json(ctx: click.Context) -> bool:
    """Whether the command line asks for --json (read from the raw arguments, since the
    error may come before the subcommand's options are parsed)."""
    tokens = [*getattr(ctx, "_protected_args", []), *ctx.args]
    if "--" in tokens:
        tokens = tokens[: tokens.index("--")]
    return "--json" in tokens


def _show_usage_error(exc: click.ClickException) -> NoReturn:
    """Print a usage error as click does and exit with its code (2), even when stderr
    is closed or cannot be written: the code is already decided."""
    if sys.stderr is not None:  # closed at start: click would write to stdout instead
        try:
            exc.show()
        except (OSError, ValueError):
            pass
    raise SystemExit(exc.exit_code) from None


class _ClosedOutput(io.TextIOBase):
    """Standard output for a process started with it closed: every write is an OSError
    (EBADF), as a write to the closed descriptor would be."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _interrupted() -> NoReturn:
    """Ctrl-C: `interrupted` on stderr (if it can be written), exit 130."""
    if sys.stderr is not None:
        try:
            click.echo("interrupted", err=True)
        except (OSError, ValueError):
            pass
    raise SystemExit(EXIT_INTERRUPTED) from None


class _Group(click.Group):
    """A click group that turns every error into `error: ...` (or a JSON error object with
    --json) and an exit code from the table in cli/errors.py, never a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        safe_streams()  # an encoding that cannot show a name escapes it instead of crashing
        if sys.stdout is None:  # started with stdout closed: output fails (exit 4), never
            sys.stdout = _ClosedOutput()  # vanishes with exit 0 as print would let it
        argv = args[0] if args else kwargs.get("args")
        for arg in sys.argv[1:] if argv is None else argv:
            if isinstance(arg, str) and not _is_text(arg):
                fail(UsageProblem(
                    f"argument {arg!r} is not valid UTF-8 text",
                    "check the terminal's encoding (e.g. LC_ALL=C.UTF-8); names are Unicode"),
                    "--json" in (sys.argv[1:] if argv is None else argv))
        stdout = sys.stdout
        try:
            return super().main(*args, **kwargs)
        except SystemExit as exc:
            if exc.code == 1 and sys.stdout is not stdout:
                # click met EPIPE writing its own output (`--help | true`): it then wraps
                # the streams and exits 1, which here means "verification failed"
                sys.stdout = stdout
                quiet_broken_pipe()
                raise SystemExit(0) from None
            raise
        except OSError as exc:  # click's own output (--help, --version, usage) not written
            if exc.errno == errno.EPIPE:
                quiet_broken_pipe()
                raise SystemExit(0) from None
            try:
                click.echo(f"error: cannot write the output: {exc.strerror or exc}", err=True)
            except (OSError, ValueError):
                pass
            raise SystemExit(EXIT_IO) from None

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:  # a usage error before any command
            _show_usage_error(exc)
        except KeyboardInterrupt:  # Ctrl-C while the options are read: nothing was done
            _interrupted()

    def invoke(self, ctx: click.Context) -> Any:
        as_json = _wants_json(ctx)
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # the reader went away (e.g. `| head`): stop quietly, as Unix tools do; whatever
            # the command did (a write) is done, so this is success
            quiet_broken_pipe()
            raise SystemExit(0) from None
        except KeyboardInterrupt:
            # Ctrl-C: a write in progress was not committed (or was, and is whole)
            _interrupted()
        except (click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except click.ClickException as exc:
            if not as_json:
                _show_usage_error(exc)  # click's usage text
            fail(exc, as_json=True)
        except Exception as exc:  # known errors, and bugs (exit 70): cli/errors.py
            fail(exc, as_json)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
@click.version_option(verifier.__version__, prog_name="modelseal")
@click.option("--store", metavar="DIR", help="The store directory [env: MODELSEAL_STORE].")
@click.option("--key", metavar="FILE", help="Your actor key file [env: MODELSEAL_KEY].")
@click.option("--log-key", metavar="FILE", help="The log key file [env: MODELSEAL_LOG_KEY].")
@click.option("--allow-insecure-key", is_flag=True,
              help="Accept key files readable by group or others.")
@click.option("--server", metavar="URL",
              help="Use the log a `modelseal serve` at URL serves, not a local store "
                   "[env: MODELSEAL_SERVER]. Needs --log-vkey; --key signs writes and reads.")
@click.option("--log-vkey", metavar="VKEY",
              help="With --server: the log's verifier key (name+hex8+base64, as init "
                   "printed it), pinned: every answer must be signed by it "
                   "[env: MODELSEAL_LOG_VKEY].")
@click.option("--client-state", metavar="FILE",
              help="With --server: where the latest verified checkpoint is kept, to catch a "
                   "server that forks or rolls back [env: MODELSEAL_CLIENT_STATE; default: "
                   "$XDG_STATE_HOME/modelseal/client-<key hash>.json].")
@click.option("--timeout", type=Seconds(min=0.1, max=3600), default=30,
              show_default=True, metavar="SECONDS",
              help="With --server: how long one request may take, whole (connecting, TLS, "
                   "the answer's headers and body) and retries included; an export's "
                   "bundle, streamed, must bring 64 KiB in each such time.")
@click.pass_context
def main(ctx: click.Context, store: str | None, key: str | None, log_key: str | None,
         allow_insecure_key: bool, server: str | None, log_vkey: str | None,
         client_state: str | None, timeout: float) -> None:
    """A tamper-evident model inventory: every change is a signed entry in an append-only,
    Merkle-hashed log with signed checkpoints. Examiners verify exported bundles offline with
    `modelseal-verify`.

    The log is a local store (--store) or a server (--server), with the same commands,
    output and exit codes; audit and init need the store itself.

    Exit codes: 0 ok, 1 verification failed, 2 usage, 3 malformed input, 4 I/O or store error,
    6 findings (`findings --fail-on-findings`), 70 internal error (a bug; MODELSEAL_DEBUG=1
    shows its traceback). With --server, a server's answer that fails the client's checks is
    1 and an unreachable server 4.
    """
    ctx.obj = Settings(store, key, log_key, allow_insecure_key, server=server,
                       log_vkey=log_vkey, client_state=client_state, timeout=timeout)


def _register_commands() -> None:
    from . import (cmd_findings, cmd_import, cmd_keys, cmd_monitor, cmd_proofs, cmd_publish,
                   cmd_read, cmd_serve, cmd_witness, cmd_write, demo)

    for module in (cmd_keys, cmd_write, cmd_read, cmd_proofs, cmd_findings, cmd_serve,
                   cmd_import, cmd_witness, cmd_publish, cmd_monitor, demo):
        for command in module.COMMANDS:
            main.add_command(command)


_register_commands()


def run() -> None:
    """Console-script entry point."""
    code: int | str | None = 0
    try:
        main()  # standalone: click ends with SystemExit, carrying the decided code
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # Ctrl-C between the command's handler and the exit
        code = EXIT_INTERRUPTED
    exit_decided(code)
