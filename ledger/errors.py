"""Errors of the writer. Refused writes reuse the verifier's tree
(MalformedInputError, AuthorizationError, SignatureError, RuleError, ...)."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of the errors only the writer raises."""


class StoreError(LedgerError):
    """The store cannot be read or written (missing, locked, corrupt, disk full)."""


class StoreFullError(StoreError):
    """The disk or file size limit was reached; the write was not stored."""


class StoreLimitError(StoreError):
    """A store limit (map size, name length, ...) refuses the write."""


class KeyFileError(LedgerError):
    """A key file is missing, unreadable, too open, encrypted without a passphrase, or wrong."""


class EncryptedKeyError(KeyFileError):
    """The key file is encrypted and no passphrase was given."""


class WrongPassphraseError(KeyFileError):
    """The passphrase does not open the key file."""


class InsecureKeyFileError(KeyFileError):
    """The key file (or what stands at its path) is readable by others or not a file."""


class AuditError(LedgerError):
    """``audit()`` found a stored byte that does not match what it must be."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")
        self.what = what
        self.where = where


class StoreBusyError(StoreError):
    """A write waited its bounded time for the store's write lock; it was not stored."""


class ArgumentError(ValueError):
    """An argument the log cannot answer: an index, size, time or hash outside what it
    holds or what its checkpoints prove. A ValueError like any bad argument; its own
    class so that a server can answer its client (400) and tell it from a bug."""


class UnknownEntryError(KeyError):
    """No entry has that index or snapshot hash (a KeyError; a server answers 404)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such entry"
