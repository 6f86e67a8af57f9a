"""Where the store (or the server) and the keys come from: options, else the environment
(MODELSEAL_STORE, MODELSEAL_KEY, MODELSEAL_LOG_KEY; MODELSEAL_SERVER, MODELSEAL_LOG_VKEY,
MODELSEAL_CLIENT_STATE), and passphrases from MODELSEAL_KEY_PASSPHRASE
(MODELSEAL_LOG_KEY_PASSPHRASE for the log key, if set), each also as a file named by the
variable with _FILE appended, or a prompt on a terminal.

A log is local (a store directory) or remote (a server's URL), never both: an option beats
the other side's environment variable; the two sides' options together, or the two
sides' variables together, are a usage error."""

from __future__ import annotations

import os
import stat
import sys
import hashlib
from dataclasses import dataclass
from pathlib import Path

import click

from ledger import ActorKey, Ledger, LogKey
from ledger.client import Client
from verifier import VerifierError, VerifierKey
from ledger.errors import EncryptedKeyError, InsecureKeyFileError
from ledger._queries import MIN_PREFIX
from verifier.exitcodes import UsageProblem

from .infile import SMALL_FILE_LIMIT, read_at_most
from .output import is_terminal

__all__ = ["InsecureKeyFile", "Log", "Settings", "UsageProblem", "default_client_state",
           "entry_ref", "passphrase"]


class InsecureKeyFile(InsecureKeyFileError):
    """A key file readable by group or others, or a directory; exit code 4, with the CLI's
    own hint."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


Log = Ledger | Client
"""What a command reads or writes: a local store or a server."""


def entry_ref(ledger: Log, text: str) -> int | str:
    """What an entry argument names: decimal digits shorter than MIN_PREFIX are an entry
    index; anything else is a snapshot hash or a unique prefix of at least MIN_PREFIX hex
    digits (as tables print them), except that MIN_PREFIX or more decimal digits that begin
    no snapshot hash are an entry index."""
    if not (text.isascii() and text.isdigit()):
        return text
    if len(text) < MIN_PREFIX:
        return int(text)
    try:
        ledger.entry(text)
    except KeyError:
        return int(text)
    return text


_OWN_PASSPHRASE = {"log": "MODELSEAL_LOG_KEY_PASSPHRASE",
                   "witness": "MODELSEAL_WITNESS_KEY_PASSPHRASE"}


def passphrase_from_env(kind: str) -> str | None:
    """The passphrase the environment gives for a key of ``kind`` ("log", "witness" or
    another): its own variable first (``_FILE``, then plain), then MODELSEAL_KEY_PASSPHRASE
    (``_FILE``, then plain); None if none is set."""
    names = [_OWN_PASSPHRASE[kind]] if kind in _OWN_PASSPHRASE else []
    names.append("MODELSEAL_KEY_PASSPHRASE")
    for name in names:
        if os.environ.get(name + "_FILE"):  # e.g. a systemd credential
            source = Path(os.environ[name + "_FILE"])
            try:
                data = read_at_most(source, SMALL_FILE_LIMIT)
                if len(data) > SMALL_FILE_LIMIT:
                    raise UsageProblem(f"{name}_FILE {source} is larger than "
                                       f"{SMALL_FILE_LIMIT:,} bytes: it is no passphrase",
                                       "give the file that holds only the passphrase")
                return data.decode("utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageProblem(f"cannot read {name}_FILE {source}: {exc}",
                                   "give a readable UTF-8 file holding the passphrase") from None
        if os.environ.get(name):
            return os.environ[name]
    return None


def passphrase_variables(kind: str) -> str:
    """The variables ``passphrase_from_env(kind)`` reads, in words, for a hint."""
    own = _OWN_PASSPHRASE.get(kind)
    if own is None:
        return "MODELSEAL_KEY_PASSPHRASE (or its _FILE form)"
    return f"{own} or MODELSEAL_KEY_PASSPHRASE (or their _FILE forms)"


def passphrase(kind: str, path: Path) -> str | None:
    """The passphrase for an encrypted key file: environment, else a prompt on a terminal."""
    found = passphrase_from_env(kind)
    if found is not None:
        return found
    if is_terminal(sys.stdin):
        return str(click.prompt(f"passphrase for {path}", hide_input=True, err=True))
    raise UsageProblem(f"{path} is encrypted",
                       f"set {passphrase_variables(kind)}, or run on a terminal to be asked")


def _load(cls: type[LogKey] | type[ActorKey], path: Path, allow_insecure: bool
          ) -> LogKey | ActorKey:
    if path.is_dir():
        keys = sorted(p.name for p in path.glob("*.key"))
        where = f" (it holds {', '.join(keys)})" if keys else ""
        log = cls is LogKey
        fits = [k for k in keys if (k == "log.key") == log] or keys or ["log.key"]
        example = path / fits[0]
        raise InsecureKeyFile(f"{path} is a directory, not a key file{where}",
                              f"give the path of the key file itself, e.g. {example}")
    if path.exists() and not path.is_file():
        raise InsecureKeyFile(f"{path} is not a regular file, so not a key file",
                              "give the path of the key file itself")
    if not allow_insecure:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            mode = 0  # the load below reports it
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InsecureKeyFile(f"{path} is readable by group or others (mode {mode:04o})",
                                  f"run chmod 600 {path}, or pass --allow-insecure-key")
    try:
        return cls.load(path, allow_insecure=allow_insecure)
    except EncryptedKeyError:
        pass
    kind = "log" if cls is LogKey else "actor"
    return cls.load(path, passphrase(kind, path), allow_insecure=allow_insecure)


def default_client_state(vkey: str) -> Path:
    """Where the client keeps the checkpoint of the log ``vkey`` by default: one file per
    pinned log key under $XDG_STATE_HOME (default ~/.local/state)/modelseal."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    digest = hashlib.sha256(vkey.encode("utf-8")).hexdigest()[:16]
    return Path(base) / "modelseal" / f"client-{digest}.json"


@dataclass
class Settings:
    """The global options, resolved lazily."""

    store: str | None
    key: str | None
    log_key: str | None
    allow_insecure_key: bool
    json: bool = False
    server: str | None = None
    log_vkey: str | None = None
    client_state: str | None = None
    timeout: float = 30.0

    def server_url(self) -> str | None:
        """The server's URL if the log is remote, else None; a UsageProblem for settings
        that name both a store and a server, or name one side's needs for the other."""
        env_server = os.environ.get("MODELSEAL_SERVER") or None
        local_opts = [o for o, v in (("--store", self.store), ("--log-key", self.log_key)) if v]
        if self.server:
            if local_opts:
                raise UsageProblem(
                    f"{' and '.join(local_opts)} name a local store; --server a remote log",
                    "give one of them: with --server, the log's verifier key is --log-vkey")
            return self.server
        remote_opts = [o for o, v in (("--log-vkey", self.log_vkey),
                                      ("--client-state", self.client_state)) if v]
        if env_server and not local_opts:
            if os.environ.get("MODELSEAL_STORE"):
                raise UsageProblem("both MODELSEAL_SERVER and MODELSEAL_STORE are set",
                                   "unset one, or choose with --server URL or --store DIR")
            return env_server
        if remote_opts:
            raise UsageProblem(f"{' and '.join(remote_opts)} apply only to a remote log",
                               "give --server URL (or set MODELSEAL_SERVER)")
        return None

    def remote(self) -> bool:
        """Whether the log is a server's."""
        return self.server_url() is not None

    def local_only(self, what: str) -> None:
        """Refuse ``what`` (a command that needs the store itself) for a remote log."""
        if self.remote():
            raise UsageProblem(f"{what} works on a local store, not through --server",
                               "run it where the store is, with --store DIR")

    def client(self, need_actor: bool) -> Client:
        """A client of the server, with the pinned log key and the kept checkpoint; the
        actor key if one is given (required when ``need_actor``)."""
        url = self.server_url()
        assert url is not None
        vkey = self.log_vkey or os.environ.get("MODELSEAL_LOG_VKEY")
        if not vkey:
            raise UsageProblem("no log verifier key given for the server",
                               "pass --log-vkey VKEY or set MODELSEAL_LOG_VKEY: the key "
                               "`modelseal init` printed (name+hex8+base64)")
        try:
            VerifierKey.parse(vkey)
        except (VerifierError, ValueError) as exc:
            raise UsageProblem(f"--log-vkey is not a verifier key: {exc}") from None
        actor = self.actor_key() if need_actor or self.key or os.environ.get(
            "MODELSEAL_KEY") else None
        state = (self.client_state or os.environ.get("MODELSEAL_CLIENT_STATE")
                 or default_client_state(vkey))
        try:
            from . import remote

            return Client(url, log_key=vkey, actor=actor, state_file=state,
                          timeout=self.timeout, transport=remote.transport())
        except ValueError as exc:
            raise UsageProblem(f"--server: {exc}") from None

    def store_path(self) -> Path:
        """The store directory, or a UsageProblem naming how to give it."""
        path = self.store or os.environ.get("MODELSEAL_STORE")
        if not path:
            raise UsageProblem("no store given",
                               "pass --store DIR or set MODELSEAL_STORE (see modelseal init)")
        return Path(path)

    def protected(self) -> tuple[list[Path], list[Path]]:
        """(directories, files) no output may be written into or over: the store, if one
        is named, and the key files named (log key, actor key)."""
        store = self.store or os.environ.get("MODELSEAL_STORE")
        keys = [self.log_key or os.environ.get("MODELSEAL_LOG_KEY"),
                self.key or os.environ.get("MODELSEAL_KEY")]
        return ([Path(store)] if store else []), [Path(k) for k in keys if k]

    def _key_file(self, given: str | None, env: str, what: str, hint: str) -> Path:
        path = given or os.environ.get(env)
        if not path:
            raise UsageProblem(f"no {what} given", hint)
        return Path(path)

    def actor_key(self) -> ActorKey:
        """The actor key that signs what this command writes."""
        path = self._key_file(self.key, "MODELSEAL_KEY", "actor key",
                              "pass --key FILE or set MODELSEAL_KEY (see modelseal keygen)")
        key = _load(ActorKey, path, self.allow_insecure_key)
        assert isinstance(key, ActorKey)
        return key

    def log_key_obj(self) -> LogKey:
        """The log key that signs checkpoints."""
        path = self._key_file(self.log_key, "MODELSEAL_LOG_KEY", "log key",
                              "pass --log-key FILE or set MODELSEAL_LOG_KEY (made by init)")
        key = _load(LogKey, path, self.allow_insecure_key)
        assert isinstance(key, LogKey)
        return key

    def reader(self) -> Log:
        """The ledger opened read-only, or the server's client (signing reads with the
        actor key, if one is given)."""
        if self.remote():
            return self.client(need_actor=False)
        return Ledger.open(self.store_path())

    def signer_of_checkpoints(self) -> Ledger:
        """The ledger opened with the log key if one is given (so it can sign a fresh
        checkpoint), else read-only. Local only."""
        self.local_only("signing a checkpoint")
        if self.log_key or os.environ.get("MODELSEAL_LOG_KEY"):
            return Ledger.open(self.store_path(), log_key=self.log_key_obj())
        return Ledger.open(self.store_path())

    def writer(self) -> Log:
        """The ledger opened with the log key and the actor key, or the server's client
        with the actor key."""
        if self.remote():
            return self.client(need_actor=True)
        return Ledger.open(self.store_path(), log_key=self.log_key_obj(),
                           signer=self.actor_key())
