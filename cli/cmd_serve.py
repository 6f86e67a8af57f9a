"""serve: the log over HTTP (specs/api.md, docs/deploy.md)."""

from __future__ import annotations

import fcntl
import os
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .context import Settings, UsageProblem
from .infile import SMALL_FILE_LIMIT, read_at_most
from .output import log_line

if TYPE_CHECKING:
    from ledger.server import WitnessEndpoint

pass_settings = click.make_pass_decorator(Settings)


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not (port.isascii() and port.isdigit()) or len(port) > 5 \
            or not 0 <= int(port) <= 65535:
        raise UsageProblem(f"--listen {text!r} is not HOST:PORT",
                           "e.g. --listen 127.0.0.1:8080, or [::1]:8080")
    return host, int(port)


def _bind(listen_at: str) -> tuple[socket.socket, str]:
    """A listening socket for ``--listen`` (UsageProblem if it cannot be had) and the
    ``host:port`` it is bound to, as a URL names it."""
    from ledger.server import listen

    host, port = _listen(listen_at)
    try:
        sock = listen(host, port)
    except OSError as exc:
        raise UsageProblem(f"cannot listen on {listen_at}: {exc.strerror}",
                           "choose another --listen address or port") from None
    bound = sock.getsockname()
    return sock, f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"


def _check_tls(cert: str, key: str) -> None:
    """Load the certificate chain and key once, before anything is announced."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except OSError as exc:
        name = getattr(exc, "filename", None) or f"{cert} or {key}"
        raise UsageProblem(f"cannot read the TLS files ({name}): {exc.strerror or exc}",
                           "give a PEM certificate chain and its private key") from None
    except ssl.SSLError as exc:
        raise UsageProblem(f"the TLS files {cert} and {key} do not load: {exc.reason or exc}",
                           "give a PEM certificate chain and its private key") from None


def _witnesses(args: tuple[str, ...], file: Path | None) -> list[WitnessEndpoint]:
    """The witnesses of --witness and --witness-file, each key once."""
    from ledger.server import WitnessEndpoint, read_witness_file

    found = []
    for arg in args:
        try:
            found.append(WitnessEndpoint.parse(arg))
        except ValueError as exc:
            raise UsageProblem(f"--witness: {exc}",
                               "give URL=VKEY, e.g. http://127.0.0.1:8090=witness.example/w1+"
                               "1234abcd+BK...") from None
    if file is not None:
        try:
            data = read_at_most(file, SMALL_FILE_LIMIT)
            if len(data) > SMALL_FILE_LIMIT:
                raise UsageProblem(f"--witness-file {file} is larger than "
                                   f"{SMALL_FILE_LIMIT:,} bytes; it lists a few witnesses")
            found += read_witness_file(data.decode("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"cannot read --witness-file {file}: {exc}") from None
        except ValueError as exc:
            raise UsageProblem(f"--witness-file {file}: {exc}") from None
    keys = [w.key.public_key for w in found]
    if len(set(keys)) != len(keys):
        raise UsageProblem("a witness key is given twice", "give each witness once")
    return found


_held: list[int] = []  # the lock file's descriptor, held for the process's life


def _only_server(store: Path, what: str = "modelseal serve") -> None:
    """Hold an exclusive lock on ``store/serve.lock``: one server per store (its replay
    cache and its write queue are per process)."""
    path = store / "serve.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UsageProblem(f"another {what} is serving {store}",
                           "stop it first; one server serves one store") from None
    _held.append(fd)


@click.command()
@click.option("--store", "store", metavar="DIR", help="The store directory [env: MODELSEAL_STORE].")
@click.option("--log-key", "log_key", metavar="FILE",
              help="The log key file [env: MODELSEAL_LOG_KEY].")
@click.option("--listen", "listen_at", default="127.0.0.1:8080", show_default=True,
              metavar="HOST:PORT", help="Where to listen (port 0: any free port). Binds to "
              "this machine only unless told otherwise.")
@click.option("--tls-cert", metavar="FILE", help="Serve HTTPS with this certificate chain.")
@click.option("--tls-key", metavar="FILE", help="The certificate's private key.")
@click.option("--public-url", metavar="URL", help="The address clients use "
              "(https://log.example.com): signed reads must be signed for it. Default: "
              "whatever Host the request names.")
@click.option("--witness", "witness_args", multiple=True, metavar="URL=VKEY",
              help="A witness to send checkpoints to: its URL, '=', its verifier key (as "
                   "`modelseal witness keygen` printed it). Repeatable.")
@click.option("--witness-file", type=click.Path(path_type=Path), metavar="FILE",
              help="More witnesses, one URL=VKEY a line (# starts a comment).")
@pass_settings
def serve(settings: Settings, store: str | None, log_key: str | None, listen_at: str,
          tls_cert: str | None, tls_key: str | None, public_url: str | None,
          witness_args: tuple[str, ...], witness_file: Path | None) -> None:
    """Serve the log over HTTP: pipelines POST signed statements to /add and get receipts;
    checkpoints, tiles and consistency proofs are public; entries, histories, inventories
    and bundles need a request signed by a reader's or an admin's key.

    With witnesses, it sends each one the latest checkpoint (at most once a second, when
    the log grew) and keeps their cosignatures; GET /checkpoint then serves the latest
    cosigned checkpoint.

    Stops on SIGTERM or Ctrl-C: no new connections, the requests under way finish (their
    writes commit), then it exits 0.
    """
    from ledger import Ledger
    from ledger.server import check_public_url, serve as run

    if (tls_cert is None) != (tls_key is None):
        raise UsageProblem("--tls-cert and --tls-key go together", "give both, or neither")
    if tls_cert is not None and tls_key is not None:
        _check_tls(tls_cert, tls_key)
    witnesses = _witnesses(witness_args, witness_file)
    settings.store = store or settings.store
    settings.log_key = log_key or settings.log_key
    _listen(listen_at)  # a bad --listen is refused before the store is opened
    if public_url is not None:
        try:
            check_public_url(public_url)
        except ValueError as exc:
            raise UsageProblem(str(exc), "e.g. --public-url https://log.example.com") from None
    key = settings.log_key_obj()
    ledger = Ledger.open(settings.store_path(), log_key=key)
    try:
        _only_server(ledger.path)
        sock, where = _bind(listen_at)
        scheme = "https" if tls_cert else "http"

        def ready() -> None:
            also = f", {len(witnesses)} witnesses" if witnesses else ""
            log_line(f"serving {ledger.origin} ({ledger.size} entries{also}) on "
                     f"{scheme}://{where}")

        run(ledger, sock, tls_cert=tls_cert, tls_key=tls_key, public_url=public_url,
            ready=ready, witnesses=witnesses)
    finally:
        ledger.close()
    log_line("stopped")


COMMANDS = [serve]
