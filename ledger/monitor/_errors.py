"""What the monitor finds, one class per finding, and the exit code of each (specs/tiles.md
§4). The codes are above those of verifier/exitcodes.py (0-4, 70, 130), which keep their
meaning: malformed input 3 (a damaged state file included), I/O 4 (a source that cannot be
read), usage 2."""

from __future__ import annotations

from verifier import AuthorizationError, ConsistencyError, SignatureError, VerificationError

EXIT_FORK = 10
EXIT_ROLLBACK = 11
EXIT_SIGNATURE = 12
EXIT_MISSING = 13
EXIT_RULE = 14
EXIT_MISMATCH = 15


class ForkDetectedError(ConsistencyError):
    """The log shows a tree that does not extend the kept one: another root for the same
    size, or a larger tree whose tiles give another root for the kept size."""


class RollbackDetectedError(ConsistencyError):
    """The log shows a smaller tree than the kept one."""


class CheckpointSignatureError(SignatureError):
    """The checkpoint is not signed by the log key, or fewer witnesses than required
    cosigned it (or a witness's cosignature does not verify)."""


class MissingTileError(VerificationError):
    """A tile or an entry bundle that the checkpoint requires is not there."""


class TileMismatchError(VerificationError):
    """A tile or an entry does not hash to what the checkpoint commits to."""


class RuleViolationError(VerificationError):
    """An entry breaks the log's rules when replayed (verifier/replay.py)."""


class SourceUnavailableError(ConnectionError):
    """The server did not answer in time (after the client's retries), or its TLS failed."""


class ReadRefusedError(AuthorizationError):
    """The server refused the signed read of entries (401/403): the actor key is not a
    reader's or an admin's, or the request's signature was refused."""
