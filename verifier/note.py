"""C2SP signed notes: parse, verify against trusted keys, and assemble."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .encoding import b64decode, b64encode, check_key_name
from .errors import MalformedInputError, SignatureError
from .keys import VerifierKey

DASH = "\u2014"
MAX_NOTE_SIZE = 1 << 20
MAX_SIGNATURES = 64


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    """A parsed note: the exact text bytes (with final newline) and its signatures."""

    text: bytes
    signatures: tuple[NoteSignature, ...]


def _check_chars(note: bytes) -> str:
    if not isinstance(note, (bytes, bytearray, memoryview)):
        raise TypeError(f"a note is bytes, not {type(note).__name__}")
    note = bytes(note)
    if len(note) > MAX_NOTE_SIZE:
        raise MalformedInputError(f"note is larger than {MAX_NOTE_SIZE} bytes")
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInputError("note is not valid UTF-8") from exc
    for ch in text:
        if ch < " " and ch != "\n":
            raise MalformedInputError(f"note contains control character U+{ord(ch):04X}")
    return text


def parse_note(note: bytes) -> SignedNote:
    """Split a signed note into its text and signature lines, strictly.

    Raises MalformedInputError for invalid UTF-8, control characters, a missing
    blank line, a signature line of the wrong form, or more than 64 signatures.
    """
    text = _check_chars(note)
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedInputError("note has no blank line before its signatures")
    body, sigs = text[: split + 1], text[split + 2 :]
    if not sigs.endswith("\n"):
        raise MalformedInputError("note does not end with a newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedInputError(f"note has more than {MAX_SIGNATURES} signatures")
    parsed = []
    for line in lines:
        if not line.startswith(DASH + " "):
            raise MalformedInputError("signature line must start with an em dash and a space")
        fields = line[2:].split(" ")
        if len(fields) != 2:
            raise MalformedInputError("signature line must be '— name base64'")
        name, b64 = fields
        check_key_name(name, "signature key name")
        blob = b64decode(b64, "note signature")
        if len(blob) < 5:
            raise MalformedInputError("note signature is shorter than a key ID and a signature")
        parsed.append(NoteSignature(name, blob[:4], blob[4:]))
    return SignedNote(body.encode("utf-8"), tuple(parsed))


def verify_note(note: bytes, keys: Sequence[VerifierKey]) -> tuple[SignedNote, tuple[str, ...]]:
    """Parse ``note`` and check its signatures against ``keys``.

    Signatures whose (name, key ID) match no key are ignored. A matching
    signature that fails rejects the note; so does having no verified signature.
    Returns the note and the names of the keys that verified.
    """
    parsed, verified = verify_note_keys(note, keys)
    return parsed, tuple(k.name for k in verified)


def verify_note_keys(
    note: bytes, keys: Sequence[VerifierKey]
) -> tuple[SignedNote, tuple[VerifierKey, ...]]:
    """``verify_note``, returning the keys that verified (each once, in signature order).
    """
    if isinstance(keys, (str, VerifierKey)):
        raise TypeError("keys must be a sequence of VerifierKey")
    parsed = parse_note(note)
    known = {(k.name, k.key_id): k for k in keys}
    verified: list[VerifierKey] = []
    for sig in parsed.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            continue
        if not key.verify(sig.signature, parsed.text):
            raise SignatureError(f"signature by known key {sig.name} does not verify")
        verified.append(key)
    if not verified:
        raise SignatureError("no signature by a trusted key")
    return parsed, tuple(dict.fromkeys(verified))


def signature_line(name: str, key_id: bytes, signature: bytes) -> bytes:
    """One note signature line: ``— name base64(key_id || signature)\\n``."""
    check_key_name(name)
    if len(key_id) != 4:
        raise ValueError("a key ID is 4 bytes")
    return f"{DASH} {name} {b64encode(key_id + signature)}\n".encode()


def assemble_note(text: bytes, lines: Sequence[bytes]) -> bytes:
    """Text (ending in a newline), a blank line, then the signature lines."""
    if not text.endswith(b"\n"):
        raise ValueError("note text must end with a newline")
    if not lines:
        raise ValueError("a signed note needs at least one signature")
    return text + b"\n" + b"".join(lines)
