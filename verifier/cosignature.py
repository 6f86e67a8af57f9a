"""C2SP tlog-cosignature, Ed25519 ``cosignature/v1``: witness keys and cosignature lines.

A witness (cosigner) signs ``"cosignature/v1\\n" "time <t>\\n"`` followed by the checkpoint's
note text; its note signature line carries ``key ID (4) || u64 big-endian t || signature (64)``.
The key ID is ``SHA-256(name || "\\n" || 0x04 || public key)[:4]``. ``t`` is seconds since the
epoch, at most 2**63-1. This module only checks cosignatures; the log's own signature is
checked by ``checkpoint``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property, lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._ed25519 import key_problem
from .encoding import b64encode, check_key_name
from .errors import MalformedInputError, SignatureError, WitnessError
from .keys import split_vkey
from .note import NoteSignature, parse_note, signature_line
from .timeutil import iso

COSIGNATURE_V1: int = 0x04
"""The signed-note signature type of an Ed25519 ``cosignature/v1`` key."""
_YEAR_10000 = 253402300800  # 10000-01-01T00:00:00Z, in seconds
MAX_TIMESTAMP = 2**63 - 1
COSIGNATURE_SIZE = 8 + 64
"""Bytes after the key ID in a cosignature line: the timestamp and the signature."""
_HEADER = b"cosignature/v1\n"


def witness_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public_key)[:4]."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_V1]) + bytes(public_key)
    ).digest()[:4]


def _check_timestamp(timestamp: object) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError(f"a cosignature timestamp is an int, not {type(timestamp).__name__}")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"a cosignature timestamp is in 0..2**63-1, got {timestamp}")
    return timestamp


def cosignature_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    """The bytes a witness signs: header line, time line, then the note text.

    ``checkpoint_text`` is the note body up to and including its last newline (no blank line,
    no signatures). ValueError if it does not end with a newline or ``timestamp`` is out of
    0..2**63-1.
    """
    if not isinstance(checkpoint_text, (bytes, bytearray, memoryview)):
        raise TypeError("checkpoint text is bytes")
    text = bytes(checkpoint_text)
    if not text.endswith(b"\n"):
        raise ValueError("checkpoint text must end with a newline")
    return _HEADER + b"time %d\n" % _check_timestamp(timestamp) + text


@dataclass(frozen=True)
class WitnessKey:
    """A witness's Ed25519 cosignature/v1 public key. Build with ``parse`` or ``from_public``."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> WitnessKey:
        """Parse ``name+<8 lowercase hex>+base64(0x04 || 32-byte key)`` (cached).

        Splits on the first two '+' (base64 may hold '+'). MalformedInputError for any other
        shape, another key type (a log's 0x01 key among them), a key ID that is not the
        derivation of name and key, or a key that is not a valid Ed25519 point of order L.
        """
        if not isinstance(vkey, str):
            raise TypeError(f"a witness key is text, not {type(vkey).__name__}")
        return _parse_cached(vkey)

    @classmethod
    def _parse(cls, vkey: str) -> WitnessKey:
        name, kid, raw = split_vkey(vkey, "witness key")
        if not raw or raw[0] != COSIGNATURE_V1:
            kind = f"0x{raw[0]:02x}" if raw else "no"
            raise MalformedInputError(
                f"witness key has type {kind}, not 0x04 (Ed25519 cosignature/v1)")
        if len(raw) != 33:
            raise MalformedInputError("an Ed25519 witness key holds 32 bytes of key")
        public = raw[1:]
        if witness_key_id(name, public) != kid:
            raise MalformedInputError("witness key ID does not match its name and key")
        problem = key_problem(public)
        if problem is not None:
            raise MalformedInputError(f"witness key is not a valid Ed25519 public key: {problem}")
        return cls(name, kid, public)

    @classmethod
    def from_public(cls, name: str, public_key: bytes) -> WitnessKey:
        """The witness key for a raw 32-byte Ed25519 public key.

        ValueError for a name signed notes refuse, or a key that is not 32 bytes or not valid.
        """
        try:
            check_key_name(name, "witness key name")
        except MalformedInputError as exc:
            raise ValueError(str(exc)) from None
        public = bytes(public_key)
        if len(public) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        problem = key_problem(public)
        if problem is not None:
            raise ValueError(f"not a valid Ed25519 public key: {problem}")
        return cls(name, witness_key_id(name, public), public)

    def vkey(self) -> str:
        """The ``name+hex8+base64(0x04 || key)`` text form; ``parse`` reads it back."""
        raw = b64encode(bytes([COSIGNATURE_V1]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{raw}"

    def __str__(self) -> str:
        return self.vkey()

    @cached_property
    def _public(self) -> Ed25519PublicKey | None:
        try:
            return Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            return None

    def verify(self, checkpoint_text: bytes, timestamp: int, signature: bytes) -> bool:
        """True if ``signature`` is this witness's cosignature of ``checkpoint_text`` at
        ``timestamp``. False (never an exception) for a timestamp out of range, a signature
        that is not 64 bytes, or text without a final newline."""
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            return False
        if not 0 <= timestamp <= MAX_TIMESTAMP or len(signature) != 64:
            return False
        if not bytes(checkpoint_text).endswith(b"\n") or self._public is None:
            return False
        try:
            self._public.verify(bytes(signature), cosignature_message(checkpoint_text, timestamp))
        except InvalidSignature:
            return False
        return True


@lru_cache(maxsize=256)
def _parse_cached(vkey: str) -> WitnessKey:
    return WitnessKey._parse(vkey)


def cosignature_line(key: WitnessKey, timestamp: int, signature: bytes) -> bytes:
    """``— name base64(key ID || u64 big-endian timestamp || signature)\\n``.

    ValueError if the timestamp is out of 0..2**63-1 or the signature is not 64 bytes.
    """
    if len(signature) != 64:
        raise ValueError("an Ed25519 signature is 64 bytes")
    stamp = _check_timestamp(timestamp).to_bytes(8, "big")
    return signature_line(key.name, key.key_id, stamp + bytes(signature))


def split_cosignature(sig: NoteSignature) -> tuple[int, bytes]:
    """(timestamp, signature) of a cosignature line's bytes after its key ID.

    MalformedInputError if they are not 8 + 64 bytes or the timestamp exceeds 2**63-1.
    """
    if len(sig.signature) != COSIGNATURE_SIZE:
        raise MalformedInputError(
            f"cosignature by {sig.name} is {len(sig.signature)} bytes after its key ID, "
            f"not {COSIGNATURE_SIZE}")
    timestamp = int.from_bytes(sig.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedInputError(f"cosignature by {sig.name} has a timestamp above 2**63-1")
    return timestamp, sig.signature[8:]


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: who, when (seconds since the epoch, from the signed data), and
    the exact signature line it came from (with its newline)."""

    witness: WitnessKey
    timestamp: int
    line: bytes = b""

    @property
    def time(self) -> datetime:
        """``timestamp`` as an aware UTC datetime. ValueError past year 9999 (the signed
        range goes on to 2**63-1 seconds)."""
        try:
            return datetime.fromtimestamp(self.timestamp, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"cosignature time {self.timestamp} is past year 9999") from None


def witness_time_text(seconds: int) -> str:
    """A cosignature time for messages: ISO 8601 UTC, or, past year 9999 (the signed range
    goes on to 2**63-1 seconds), the count of seconds saying so."""
    if 0 <= seconds < _YEAR_10000:
        return iso(seconds * 10**9)
    return f"{seconds} s after 1970 (past year 9999)"


def _line_of(sig: NoteSignature) -> bytes:
    return signature_line(sig.name, sig.key_id, sig.signature)


def verify_cosignatures(note: bytes, witnesses: Sequence[WitnessKey]) -> tuple[Cosignature, ...]:
    """The cosignatures in ``note`` by ``witnesses``, each witness once, in note order.

    The note is parsed strictly (``note.parse_note``; MalformedInputError). Lines whose
    (name, key ID) match no witness are ignored (the log's own line among them). A matching
    line whose bytes are not 8 + 64 or whose timestamp exceeds 2**63-1 is malformed; one that
    no witness of that (name, key ID) verifies raises SignatureError. Witnesses that share a
    public key count as one (cosignature/v1 does not sign the name): only the first such
    line is kept. The log's signature is not checked here.
    """
    if isinstance(witnesses, (str, WitnessKey)) or not all(
            isinstance(w, WitnessKey) for w in witnesses):
        raise TypeError("witnesses must be a sequence of WitnessKey")
    parsed = parse_note(note)
    # a 4-byte key ID can be ground to collide: every pinned key of a (name, ID) is tried
    known: dict[tuple[str, bytes], list[WitnessKey]] = {}
    for w in witnesses:
        known.setdefault((w.name, w.key_id), []).append(w)
    found: dict[bytes, Cosignature] = {}
    for sig in parsed.signatures:
        candidates = known.get((sig.name, sig.key_id))
        if candidates is None:
            continue
        timestamp, signature = split_cosignature(sig)
        witness = next((w for w in candidates if w.verify(parsed.text, timestamp, signature)),
                       None)
        if witness is None:
            raise SignatureError(f"cosignature by witness {sig.name} does not verify")
        if witness.public_key not in found:
            found[witness.public_key] = Cosignature(witness, timestamp, _line_of(sig))
    return tuple(found.values())


def require_witnesses(cosigs: Sequence[Cosignature], threshold: int) -> None:
    """WitnessError unless ``cosigs`` hold at least ``threshold`` distinct witnesses.

    Distinct means distinct public keys. ValueError for a negative threshold.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise TypeError("a witness threshold is an int")
    if threshold < 0:
        raise ValueError("a witness threshold must not be negative")
    names: dict[bytes, str] = {}
    for c in cosigs:
        names.setdefault(c.witness.public_key, c.witness.name)
    if len(names) < threshold:
        who = ", ".join(names.values()) or "none"
        raise WitnessError(
            f"{len(names)} of the {threshold} required distinct witnesses cosigned the "
            f"checkpoint (cosigned: {who})")
