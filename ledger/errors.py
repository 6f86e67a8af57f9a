"""Errors of the writer. Refused writes reuse the verifier's tree
(MalformedInputError, AuthorizationError, SignatureError, RuleError, ...)."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of the errors only the writer raises."""


class StoreError(LedgerError):
    """The store cannot be read or written (missing, locked, corrupt, disk full)."""

    exit_code = 4


class KeyFileError(LedgerError):
    """A key file is missing, unreadable, too open, encrypted without a passphrase, or wrong."""

    exit_code = 4


class AuditError(LedgerError):
    """``audit()`` found a stored byte that does not match what it must be."""

    exit_code = 1

    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")
        self.what = what
        self.where = where
