"""C2SP tlog-checkpoint: the signed tree head of a log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .encoding import b64encode, decode_hash, parse_decimal
from .errors import MalformedInputError
from .keys import VerifierKey
from .note import parse_note, verify_note_keys

TIME_PREFIX = "modelseal-time "
MAX_NANOS = 2**63 - 1


def time_line(ns: int) -> str:
    """The extension line carrying the log's time when it signed a checkpoint."""
    if isinstance(ns, bool) or not isinstance(ns, int) or not 0 <= ns <= MAX_NANOS:
        raise ValueError("a checkpoint time is an int of nanoseconds in 0..2**63-1")
    return f"{TIME_PREFIX}{ns}"


def _time_of(extensions: Sequence[str]) -> int | None:
    """The one ``modelseal-time`` extension's value; None if there is none."""
    keyword = TIME_PREFIX.rstrip()  # the keyword alone, or with one space and a value;
    found = [line for line in extensions  # other lines (modelseal-timezone) are opaque
             if line == keyword or line.startswith(TIME_PREFIX)]
    if not found:
        return None
    if len(found) > 1:
        raise MalformedInputError("checkpoint has more than one modelseal-time line")
    if not found[0].startswith(TIME_PREFIX):
        raise MalformedInputError("checkpoint's modelseal-time line has no value")
    ns = parse_decimal(found[0][len(TIME_PREFIX):], "checkpoint time")
    if ns > MAX_NANOS:
        raise MalformedInputError("checkpoint time is out of range")
    return ns


def checkpoint_text(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> bytes:
    """The note text of a checkpoint: origin, size, base64 root, extension lines."""
    if not origin or "\n" in origin:
        raise ValueError("origin must be one non-empty line")
    if len(root) != 32:
        raise ValueError("root must be 32 bytes")
    lines = [origin, str(size), b64encode(root), *extensions]
    if any(not line or "\n" in line for line in lines[3:]):
        raise ValueError("extension lines must be single non-empty lines")
    return "".join(line + "\n" for line in lines).encode("utf-8")


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint. ``note`` holds the exact bytes it was parsed from."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]
    note: bytes
    signed_by: tuple[VerifierKey, ...]
    time: int | None = None
    """The log's time when it signed (nanoseconds, from the ``modelseal-time`` line)."""

    @property
    def signers(self) -> tuple[str, ...]:
        """The names of the trusted keys whose signatures verified."""
        return tuple(k.name for k in self.signed_by)

    @classmethod
    def parse_body(cls, text: bytes) -> tuple[str, int, bytes, tuple[str, ...]]:
        """Parse note text into (origin, size, root, extensions); strictly."""
        lines = text.decode("utf-8").split("\n")
        if lines[-1] != "":
            raise MalformedInputError("checkpoint text must end with a newline")
        lines = lines[:-1]
        if len(lines) < 3:
            raise MalformedInputError("checkpoint needs an origin, a size and a root hash")
        if any(not line for line in lines):
            raise MalformedInputError("checkpoint lines must not be empty")
        size = parse_decimal(lines[1], "checkpoint size")
        root = decode_hash(lines[2], "checkpoint root hash")
        return lines[0], size, root, tuple(lines[3:])

    @classmethod
    def parse_note(cls, note: bytes, keys: Sequence[VerifierKey]) -> Checkpoint:
        """Parse and verify a signed checkpoint note against trusted ``keys``.

        Malformed notes or bodies raise MalformedInputError (checked first);
        signature failures raise SignatureError.
        """
        parsed = parse_note(note)
        origin, size, root, ext = cls.parse_body(parsed.text)
        time = _time_of(ext)
        _, signed_by = verify_note_keys(note, keys)
        return cls(origin, size, root, ext, bytes(note), signed_by, time)
