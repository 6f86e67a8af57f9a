"""Text proof files: C2SP tlog-proof (inclusion) and the tlog-witness
add-checkpoint body (consistency), each ending in a verbatim checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .checkpoint import Checkpoint
from .encoding import b64decode, b64encode, decode_hash, parse_decimal
from .errors import MalformedInputError
from .keys import VerifierKey
from .merkle import leaf_hash
from .proofs import verify_consistency, verify_inclusion

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_LINES = 63
MAX_FILE_SIZE = 1 << 20


def _lines(data: bytes, what: str) -> tuple[list[str], bytes]:
    """Split off the header lines up to the first empty line; return them and the rest."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} is bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_FILE_SIZE:
        raise MalformedInputError(f"{what} is larger than {MAX_FILE_SIZE} bytes")
    end = data.find(b"\n\n")
    if end < 0:
        raise MalformedInputError(f"{what} has no empty line before its checkpoint")
    try:
        head = data[:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedInputError(f"{what} header is not ASCII") from exc
    return head.split("\n"), data[end + 2 :]


def _hashes(lines: list[str], what: str) -> list[bytes]:
    if len(lines) > MAX_PROOF_LINES:
        raise MalformedInputError(f"{what} has more than {MAX_PROOF_LINES} hashes")
    return [decode_hash(line, f"{what} line {i + 1}") for i, line in enumerate(lines)]


@dataclass(frozen=True)
class TlogProof:
    """A parsed tlog-proof: optional extra data, index, hashes, checkpoint note bytes."""

    extra: bytes | None
    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes


def format_tlog_proof(
    index: int, hashes: Sequence[bytes], checkpoint_note: bytes, extra: bytes | None = None
) -> bytes:
    """The c2sp.org/tlog-proof@v1 text for one entry."""
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append("extra " + b64encode(extra))
    lines.append(f"index {index}")
    lines.extend(b64encode(h) for h in hashes)
    return ("\n".join(lines) + "\n\n").encode("ascii") + checkpoint_note


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse a tlog-proof file strictly; the checkpoint is kept verbatim, not yet verified."""
    lines, note = _lines(data, "tlog-proof")
    if lines[0] != TLOG_PROOF_HEADER:
        raise MalformedInputError(f"tlog-proof must start with {TLOG_PROOF_HEADER}")
    pos, extra = 1, None
    if pos < len(lines) and lines[pos].startswith("extra "):
        extra = b64decode(lines[pos][6:], "tlog-proof extra")
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise MalformedInputError("tlog-proof needs an 'index N' line")
    index = parse_decimal(lines[pos][6:], "tlog-proof index")
    hashes = _hashes(lines[pos + 1 :], "tlog-proof")
    return TlogProof(extra, index, tuple(hashes), note)


def verify_tlog_proof(data: bytes, entry: bytes, keys: Sequence[VerifierKey]) -> Checkpoint:
    """Verify that ``entry`` (exact bytes) is in the log at the proof's checkpoint.

    Returns the verified checkpoint. MalformedInputError or VerificationError otherwise.
    """
    proof = parse_tlog_proof(data)
    cp = Checkpoint.parse_note(proof.checkpoint, keys)
    verify_inclusion(leaf_hash(entry), proof.index, cp.size, proof.hashes, cp.root)
    return cp


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint body: old size, consistency hashes, checkpoint note bytes."""

    old_size: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes


def format_add_checkpoint(old_size: int, hashes: Sequence[bytes], checkpoint_note: bytes) -> bytes:
    """The tlog-witness add-checkpoint request body."""
    lines = [f"old {old_size}", *(b64encode(h) for h in hashes)]
    return ("\n".join(lines) + "\n\n").encode("ascii") + checkpoint_note


def parse_add_checkpoint(data: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint body strictly; the checkpoint is kept verbatim."""
    lines, note = _lines(data, "add-checkpoint body")
    if not lines[0].startswith("old "):
        raise MalformedInputError("add-checkpoint body must start with 'old N'")
    old = parse_decimal(lines[0][4:], "old size")
    hashes = _hashes(lines[1:], "consistency proof")
    if old == 0 and hashes:
        raise MalformedInputError("a consistency proof from size 0 must be empty")
    return AddCheckpoint(old, tuple(hashes), note)


def verify_add_checkpoint(
    data: bytes, keys: Sequence[VerifierKey], old_root: bytes
) -> Checkpoint:
    """Verify the body's checkpoint and that it extends the tree (old size, ``old_root``)."""
    body = parse_add_checkpoint(data)
    cp = Checkpoint.parse_note(body.checkpoint, keys)
    if body.old_size > cp.size:
        raise MalformedInputError(f"old size {body.old_size} exceeds checkpoint size {cp.size}")
    verify_consistency(body.old_size, cp.size, body.hashes, old_root, cp.root)
    return cp
