"""Ed25519 verifier keys in the C2SP signed-note form ``name+hex8+base64``."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._ed25519 import key_problem
from .encoding import b64decode, b64encode, check_key_name
from .errors import MalformedInputError

ED25519_TYPE = 0x01
_HEX8 = re.compile(r"[0-9a-f]{8}\Z")
MAX_VKEY_LEN = 1024


def key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || public_key)[:4] for an Ed25519 key."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public_key
    ).digest()[:4]


def split_vkey(text: str, what: str) -> tuple[str, bytes, bytes]:
    """(name, 4-byte key ID, decoded key bytes with their type byte) of a signed-note
    verifier key ``name+<8 lowercase hex>+base64``, split on the first two '+' only
    (base64 may hold '+'). MalformedInputError, naming ``what``, for any other shape."""
    if len(text) > MAX_VKEY_LEN:
        raise MalformedInputError(f"{what} is too long")
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise MalformedInputError(f"{what} must be name+keyid+key")
    name, hex_id, b64 = parts
    check_key_name(name, f"{what} name")
    if not _HEX8.match(hex_id):
        raise MalformedInputError(f"{what} ID must be 8 lowercase hex digits")
    return name, bytes.fromhex(hex_id), b64decode(b64, what)


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key. Build with ``parse`` or ``from_public_bytes``."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse ``name+<8 lowercase hex>+base64(0x01 || 32-byte key)`` (cached).

        See ``_parse`` for the rules.
        """
        if not isinstance(text, str):
            raise TypeError(f"a verifier key is text, not {type(text).__name__}")
        return _parse_cached(text)

    @classmethod
    def _parse(cls, text: str) -> VerifierKey:
        """Parse ``name+<8 lowercase hex>+base64(0x01 || 32-byte key)``.

        Splits on the first two '+' only (base64 may contain '+'). Raises
        MalformedInputError for any other shape, another key type, a key that is
        not a canonical encoding of a point of order L (small-order keys, keys with
        a small-order component, off-curve or non-canonical encodings: see
        ``_ed25519``), or a key ID that is not the derivation of the name and key.
        """
        key = cls._shape(text)
        problem = key_problem(key.public_key)  # about 1.5 ms; parse is cached
        if problem is not None:
            raise MalformedInputError(f"verifier key is not a valid Ed25519 public key: {problem}")
        return key

    @classmethod
    def parse_stored(cls, text: str) -> VerifierKey:
        """``parse`` without the check that the key is a valid curve point, for a key its
        writer parsed in full before storing it (the ledger's keyring row: ``audit``
        replays every grant with ``parse``). Shape, type and key ID are still checked
        (MalformedInputError). Constant time per key, where the point check costs ~1.5 ms."""
        if not isinstance(text, str):
            raise TypeError(f"a verifier key is text, not {type(text).__name__}")
        return cls._shape(text)

    @classmethod
    def _shape(cls, text: str) -> VerifierKey:
        name, kid, raw = split_vkey(text, "verifier key")
        if len(raw) < 1 or raw[0] != ED25519_TYPE:
            raise MalformedInputError("verifier key is not an Ed25519 (type 0x01) key")
        if len(raw) != 33:
            raise MalformedInputError("an Ed25519 verifier key holds 32 bytes of key")
        pub = raw[1:]
        if key_id(name, pub) != kid:
            raise MalformedInputError("verifier key ID does not match its name and key")
        return cls(name, kid, pub)

    @classmethod
    def from_public_bytes(cls, name: str, public_key: bytes) -> VerifierKey:
        """The verifier key for a raw 32-byte Ed25519 public key.

        ValueError if it is not 32 bytes or not a valid key (the rules of ``parse``).
        """
        check_key_name(name)
        if len(public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        problem = key_problem(bytes(public_key))
        if problem is not None:
            raise ValueError(f"not a valid Ed25519 public key: {problem}")
        return cls(name, key_id(name, public_key), bytes(public_key))

    def __str__(self) -> str:
        raw = bytes([ED25519_TYPE]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{b64encode(raw)}"

    @property
    def vkey(self) -> str:
        """The ``name+hex8+base64`` text form."""
        return str(self)

    @cached_property
    def _public(self) -> Ed25519PublicKey | None:
        try:
            return Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            return None

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is this key's Ed25519 signature over ``message``."""
        public = self._public
        if public is None or len(signature) != 64:
            return False
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@lru_cache(maxsize=1024)
def _parse_cached(text: str) -> VerifierKey:
    return VerifierKey._parse(text)
