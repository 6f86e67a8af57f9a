"""The witness's one decision: cosign a checkpoint, or refuse it with the status
c2sp.org/tlog-witness names. Internal; no HTTP here (``_app`` maps ``Refused``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from verifier import (
    EMPTY_ROOT,
    Checkpoint,
    MalformedInputError,
    SignatureError,
    VerificationError,
    VerifierKey,
    parse_note,
    verify_consistency,
    verify_note,
)

from ..keys import WitnessSigner
from ._request import parse_request
from ._state import Record, WitnessState

log = logging.getLogger("modelseal.witness")
Clock = Callable[[], datetime]


class Refused(Exception):
    """A request the witness does not cosign: ``status`` (400, 403, 404, 409, 422) and,
    for 409, ``size``: the size of the latest checkpoint it cosigned for the origin."""

    def __init__(self, status: int, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.size = status, message, size


def origin_hash(origin: str) -> str:
    """The lower-case hex SHA-256 of ``origin``: the path of its checkpoint for monitors."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


class Witness:
    """Cosigns checkpoints of the logs whose keys it holds, never two that conflict.

    ``logs``: the logs' verifier keys; a key's name is its log's origin (several keys
    may share one). ``clock`` gives the cosignatures' time (default: the system clock)."""

    def __init__(self, state: WitnessState, signer: WitnessSigner,
                 logs: Sequence[VerifierKey], clock: Clock | None = None) -> None:
        if not logs:
            raise ValueError("a witness needs at least one log key")
        self.state, self.signer = state, signer
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._logs: dict[str, list[VerifierKey]] = {}
        for key in logs:
            if not isinstance(key, VerifierKey):
                raise TypeError("a log key is a VerifierKey")
            if len(key.name.encode("utf-8")) > 500:
                raise ValueError(f"the log origin {key.name[:60]!r}... is over 500 bytes")
            self._logs.setdefault(key.name, []).append(key)
        self._by_hash = {origin_hash(o): o for o in self._logs}

    @property
    def origins(self) -> tuple[str, ...]:
        """The origins of the logs this witness cosigns."""
        return tuple(self._logs)

    def add_checkpoint(self, body: bytes) -> bytes:
        """Check an add-checkpoint request body and cosign its checkpoint: the
        cosignature line(s), returned once the new state is on disk. ``Refused`` with the
        tlog-witness status otherwise; the state is then unchanged."""
        try:
            req = parse_request(body)
            note = parse_note(req.note)
            origin, size, root, _ = Checkpoint.parse_body(note.text)
        except MalformedInputError as exc:
            raise Refused(400, f"malformed request: {exc}") from None
        keys = self._logs.get(origin)
        if keys is None:
            raise Refused(404, f"unknown log origin {origin[:100]!r}")
        try:
            verify_note(req.note, keys)
        except SignatureError as exc:
            raise Refused(403, f"checkpoint not signed by the log's key: {exc}") from None
        if req.old_size > size:
            raise Refused(400, f"old size {req.old_size} is larger than the checkpoint's "
                               f"size {size}")
        # the log's lines, exact bytes: every line of a configured key verified (verify_note
        # refuses a note with one that does not); others, such as other witnesses'
        # cosignatures, are not the witness's to vouch for
        ids = {(k.name, k.key_id) for k in keys}
        lines = req.note[len(note.text) + 1:].split(b"\n")[:-1]
        # each line once: a repeated line would pad what monitors are served
        signed = b"".join(dict.fromkeys(
            line + b"\n" for line, sig in zip(lines, note.signatures, strict=True)
            if (sig.name, sig.key_id) in ids))

        def cas(current: Record | None) -> tuple[Record, bytes]:
            have = 0 if current is None else current.size
            if req.old_size != have:
                raise Refused(409, f"this witness last cosigned size {have}", have)
            if size == 0 and root != EMPTY_ROOT:
                raise Refused(422, "a checkpoint of size 0 must have the empty tree's root")
            if req.old_size == 0 and req.proof:
                raise Refused(422, "a proof from size 0 must be empty")
            if current is not None and have:
                try:
                    verify_consistency(have, size, req.proof, current.root, root)
                except (MalformedInputError, VerificationError) as exc:
                    log.warning("refused %s: size %d is not consistent with the cosigned "
                                "size %d: %s", origin, size, have, exc)
                    raise Refused(422, f"not consistent with the cosigned size {have}: "
                                       f"{exc}") from None
            line = self.signer.cosign(note.text, self._timestamp())
            return Record(size, root, note.text + b"\n" + signed + line), line

        return self.state.update(origin, cas)

    def latest(self, hashed_origin: str) -> bytes | None:
        """The latest checkpoint cosigned for the log whose origin hashes to
        ``hashed_origin`` (with the log's signatures and the cosignature), or None."""
        origin = self._by_hash.get(hashed_origin)
        if origin is None:
            return None
        record = self.state.get(origin)
        return None if record is None else record.note

    def _timestamp(self) -> int:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the witness's clock must give timezone-aware times")
        return max(1, int(now.timestamp()))

