"""witness keygen, witness serve: a C2SP tlog-witness for other logs (specs/witness.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ledger.errors import WrongPassphraseError

from .cmd_serve import _bind, _listen, _only_server
from .context import UsageProblem, passphrase, passphrase_from_env, passphrase_variables
from .output import emit_json, is_terminal, log_line


def _witness_passphrase(path: Path, new: bool) -> str | None:
    """MODELSEAL_WITNESS_KEY_PASSPHRASE(_FILE), else MODELSEAL_KEY_PASSPHRASE(_FILE), else a
    prompt. A new key without any of them (and no terminal to ask on) is written plain, as
    ``keygen`` does."""
    if not new:
        return passphrase("witness", path)
    found = passphrase_from_env("witness")
    if found is not None:
        return found
    if is_terminal(sys.stdin):
        return str(click.prompt(f"passphrase for the new key {path} (empty: none)",
                                hide_input=True, confirmation_prompt=True, default="",
                                show_default=False, err=True)) or None
    return None


class WrongWitnessPassphraseError(WrongPassphraseError):
    """WrongPassphraseError (exit 4) with a hint naming the witness key's variables."""

    hint = (f"the passphrase does not open the witness key file: check "
            f"{passphrase_variables('witness')}")


@click.group()
def witness() -> None:
    """Run a witness: it cosigns other logs' checkpoints (C2SP tlog-witness), each only if
    it is consistent with the last one it cosigned for that log."""


@witness.command()
@click.option("--name", required=True, help="The witness's name, a schema-less URL such as "
              "witness.example.com/w1.")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="The key file to write (created 0600, never overwritten).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def keygen(name: str, out: Path, as_json: bool) -> None:
    """Make a witness key and print its verifier key (name+hex8+base64 of type 0x04): the
    key logs and verifiers pin. Encrypted with MODELSEAL_WITNESS_KEY_PASSPHRASE (or
    MODELSEAL_KEY_PASSPHRASE, or a passphrase asked on a terminal)."""
    from ledger.keys import WitnessSigner

    if out.exists():
        raise UsageProblem(f"{out} already exists", "a key file is never overwritten")
    key = WitnessSigner.generate(name)
    key.save(out, _witness_passphrase(out, new=True))
    if as_json:
        emit_json({"name": name, "vkey": key.vkey, "key_file": str(out)})
    else:
        click.echo(key.vkey)


@witness.command()
@click.option("--store", "store", required=True, type=click.Path(path_type=Path),
              metavar="DIR", help="The witness's state directory (made if missing).")
@click.option("--key", "key_file", required=True, type=click.Path(path_type=Path),
              metavar="FILE", help="The witness key file (witness keygen).")
@click.option("--log", "logs", multiple=True, required=True, metavar="VKEY",
              help="A log's verifier key, as `modelseal init` printed it; its name is the "
                   "log's origin. Repeat for each log.")
@click.option("--listen", "listen_at", default="127.0.0.1:8090", show_default=True,
              metavar="HOST:PORT", help="Where to listen (port 0: any free port).")
@click.option("--allow-insecure-key", is_flag=True,
              help="Accept a key file readable by group or others.")
def serve(store: Path, key_file: Path, logs: tuple[str, ...], listen_at: str,
          allow_insecure_key: bool) -> None:
    """Serve the witness: POST /add-checkpoint cosigns a log's checkpoint when it is
    consistent with the last one cosigned for that log (its state is on disk before it
    answers); GET /<sha256 of origin>/checkpoint shows that one to monitors.

    Stops on SIGTERM or Ctrl-C after the requests under way, then exits 0.
    """
    from ledger.errors import EncryptedKeyError
    from ledger.keys import WitnessSigner
    from ledger.witness import Witness, WitnessState, serve as run
    from verifier import VerifierError, VerifierKey

    keys = []
    for text in logs:
        try:
            keys.append(VerifierKey.parse(text))
        except (VerifierError, ValueError) as exc:
            raise UsageProblem(f"--log {text[:80]!r} is not a log verifier key: {exc}",
                               "give the key `modelseal init` printed") from None
    _listen(listen_at)  # a bad --listen is refused before the key is read
    try:
        signer = WitnessSigner.load(key_file, allow_insecure=allow_insecure_key)
    except EncryptedKeyError:
        try:
            signer = WitnessSigner.load(key_file, _witness_passphrase(key_file, new=False),
                                        allow_insecure=allow_insecure_key)
        except WrongPassphraseError as exc:
            raise WrongWitnessPassphraseError(str(exc)) from None
    try:
        store.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(f"cannot make the witness state directory {store}: "
                           f"{exc.strerror}") from None
    _only_server(store, "modelseal witness serve")
    state = WitnessState(store)
    try:
        sock, where = _bind(listen_at)
        w = Witness(state, signer, keys)

        def ready() -> None:
            log_line(f"witness {signer.name} ({len(w.origins)} logs) serving on "
                     f"http://{where}")

        run(w, sock, ready=ready)
    finally:
        state.close()
    log_line("stopped")


COMMANDS = [witness]
