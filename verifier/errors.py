"""The verifier's exception tree.

Two families, never mixed:

* ``MalformedInputError``: the input cannot be parsed, has the wrong version,
  a bad length or an impossible shape. Nothing was verified.
* ``VerificationError``: the input parsed, but a check failed (wrong root, bad
  signature, inconsistent trees, a broken log rule).

Misuse of the API (a negative size, a ``str`` where ``bytes`` are due, a
naive datetime) raises the built-in ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations


class VerifierError(Exception):
    """Base of every error this package raises on purpose."""


class MalformedInputError(VerifierError):
    """Input that cannot be parsed, has the wrong version, length or shape."""


class VerificationError(VerifierError):
    """Well-formed input that fails a check."""


class RootMismatchError(VerificationError):
    """A recomputed Merkle root differs from the expected one."""

    def __init__(self, message: str, *, expected: bytes, calculated: bytes) -> None:
        super().__init__(
            f"{message}: expected root {expected.hex()}, calculated {calculated.hex()}"
        )
        self.expected = expected
        self.calculated = calculated


class ConsistencyError(VerificationError):
    """Two tree heads are not consistent (fork, rollback or bad proof)."""

    def __init__(
        self,
        message: str,
        *,
        expected: bytes | None = None,
        calculated: bytes | None = None,
    ) -> None:
        if expected is not None and calculated is not None:
            message = f"{message}: expected {expected.hex()}, calculated {calculated.hex()}"
        super().__init__(message)
        self.expected = expected
        self.calculated = calculated


class SignatureError(VerificationError):
    """A signature from a known key does not verify, or no trusted key signed."""


class AuthorizationError(VerificationError):
    """An entry's actor key was not granted, was revoked, or lacks the role."""


class ChainError(VerificationError):
    """An entry breaks the log's order: index, time, ``prev`` link or a replayed id."""


class TimeBoundError(VerificationError):
    """A time the signed data does not bound: a point in time after the checkpoint was
    signed, or an entry recorded at or before the time of a checkpoint that left it out."""


class RuleError(VerificationError):
    """An entry breaks an inventory rule (unknown model, duplicate name, ...)."""


class PolicyError(RuleError):
    """An event outside the log's controlled vocabulary in force: a type the policy does
    not allow, or a payload without a field the policy requires for its type."""


class WitnessError(VerificationError):
    """Fewer distinct witnesses cosigned a checkpoint than the verifier requires, or what
    the witnesses attest contradicts the log (a checkpoint post-dated past its cosignatures)."""


class IncompleteError(VerifierError):
    """Verification could not be completed (a signature check worker died or gave no
    answer in time): neither a verdict on the input nor malformed input. Never OK."""
