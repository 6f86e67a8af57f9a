"""Where the store and the keys come from: options, else the environment
(MODELSEAL_STORE, MODELSEAL_KEY, MODELSEAL_LOG_KEY), and passphrases from
MODELSEAL_KEY_PASSPHRASE (MODELSEAL_LOG_KEY_PASSPHRASE for the log key, if
set), each also as a file named by the variable with _FILE appended, or a
prompt on a terminal."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from ledger import ActorKey, Ledger, LogKey
from ledger.errors import EncryptedKeyError, InsecureKeyFileError
from ledger._queries import MIN_PREFIX
from verifier.exitcodes import UsageProblem

__all__ = ["InsecureKeyFile", "Settings", "UsageProblem", "entry_ref", "passphrase"]


class InsecureKeyFile(InsecureKeyFileError):
    """A key file readable by group or others, or a directory; exit code 4, with the CLI's
    own hint."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def entry_ref(ledger: Ledger, text: str) -> int | str:
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


def passphrase(kind: str, path: Path) -> str | None:
    """The passphrase for an encrypted key file: environment, else a prompt on a terminal."""
    names = ["MODELSEAL_LOG_KEY_PASSPHRASE"] if kind == "log" else []
    names.append("MODELSEAL_KEY_PASSPHRASE")
    for name in names:
        if os.environ.get(name + "_FILE"):  # e.g. a systemd credential
            source = Path(os.environ[name + "_FILE"])
            try:
                return source.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageProblem(f"cannot read {name}_FILE {source}: {exc}",
                                   "give a readable UTF-8 file holding the passphrase") from None
        if os.environ.get(name):
            return os.environ[name]
    if sys.stdin.isatty():
        return str(click.prompt(f"passphrase for {path}", hide_input=True, err=True))
    raise UsageProblem(f"{path} is encrypted",
                       "set MODELSEAL_KEY_PASSPHRASE, or run on a terminal to be asked")


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


@dataclass
class Settings:
    """The global options, resolved lazily."""

    store: str | None
    key: str | None
    log_key: str | None
    allow_insecure_key: bool
    json: bool = False

    def store_path(self) -> Path:
        """The store directory, or a UsageProblem naming how to give it."""
        path = self.store or os.environ.get("MODELSEAL_STORE")
        if not path:
            raise UsageProblem("no store given",
                               "pass --store DIR or set MODELSEAL_STORE (see modelseal init)")
        return Path(path)

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

    def reader(self) -> Ledger:
        """The ledger opened read-only."""
        return Ledger.open(self.store_path())

    def signer_of_checkpoints(self) -> Ledger:
        """The ledger opened with the log key if one is given (so it can sign a fresh
        checkpoint), else read-only."""
        if self.log_key or os.environ.get("MODELSEAL_LOG_KEY"):
            return Ledger.open(self.store_path(), log_key=self.log_key_obj())
        return self.reader()

    def writer(self) -> Ledger:
        """The ledger opened with the log key and the actor key."""
        return Ledger.open(self.store_path(), log_key=self.log_key_obj(),
                           signer=self.actor_key())
