"""What witnesses attest about a checkpoint's time, and the two time rules that follow
(specs/checkpoint.md §Witnesses).

A cosignature at time W says the witness saw the tree of the checkpoint's size by W, so
entries ``0..size-1`` were in the log by W. With a threshold of k witnesses, the time
stated is the k-th earliest cosignature: k witnesses attest it, so fewer than k lying
witnesses cannot move it. Two rules follow, each with a stated tolerance:

* not post-dated: the log signs a checkpoint before a witness sees it, so the log's time
  on it is at most that witnessed time plus ``WITNESS_SKEW`` (clocks disagree);
* not back-dated: the log presents to witnesses only its latest checkpoint, read at most
  ``WITNESS_DELAY`` before a witness answers. An entry the checkpoint did not hold was
  appended after that read, so it is recorded after the witnessed time minus
  ``WITNESS_DELAY`` + ``WITNESS_SKEW``. (An honest log may append it between the read and
  the answer: that is why the tolerance cannot be zero.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .checkpoint import Checkpoint
from .cosignature import Cosignature, WitnessKey, verify_cosignatures, witness_time_text
from .errors import TimeBoundError
from .timeutil import iso

WITNESS_SKEW = 300
"""Seconds a witness's clock may be behind the log's (or a timestamp truncated)."""
WITNESS_DELAY = 60
"""Seconds from the log reading its latest checkpoint to a witness's cosignature of it: the
bound the log's witness exchange keeps (specs/checkpoint.md)."""
NS = 10**9


@dataclass(frozen=True)
class Witnessed:
    """The verified cosignatures of one checkpoint by the configured witnesses."""

    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]
    threshold: int

    @property
    def quorum(self) -> int:
        """How many witnesses must attest a time: the threshold, at least one."""
        return max(self.threshold, 1)

    @property
    def by(self) -> int | None:
        """The time (seconds) by which ``quorum`` distinct witnesses saw the tree; None if
        fewer cosigned."""
        times = sorted(c.timestamp for c in self.cosignatures)
        return times[self.quorum - 1] if len(times) >= self.quorum else None

    @property
    def seen_after(self) -> int | None:
        """The time (seconds) at or after which ``quorum`` distinct witnesses each saw the
        tree: the k-th latest cosignature. The back-dating rule reads it, so that fewer than
        k witnesses with fast clocks cannot convict an honest log. None if fewer cosigned."""
        times = sorted((c.timestamp for c in self.cosignatures), reverse=True)
        return times[self.quorum - 1] if len(times) >= self.quorum else None

    def statement(self) -> str:
        """One sentence saying what the witnesses attest, and no more."""
        n = self.checkpoint.size
        if not self.cosignatures:
            return f"no configured witness cosigned the checkpoint of size {n}"
        who = ", ".join(f"{c.witness.name} at {witness_time_text(c.timestamp)}"
                        for c in self.cosignatures)
        if self.by is None:
            return (f"only {len(self.cosignatures)} of the {self.quorum} witnesses needed "
                    f"cosigned the checkpoint of size {n} ({who})")
        entries = f"entries 0..{n - 1}" if n else "the empty tree"
        return (f"{entries} were in the log by {witness_time_text(self.by)}, attested by "
                f"{self.quorum} witness{'es' if self.quorum > 1 else ''} ({who})")

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.checkpoint.size,
            "threshold": self.threshold,
            "cosigned_by": [{"name": c.witness.name, "key": c.witness.vkey(),
                             "time": witness_time_text(c.timestamp),
                             "timestamp": c.timestamp}
                            for c in self.cosignatures],
            "in_log_by": None if self.by is None else witness_time_text(self.by),
            "proven": self.statement(),
        }


def witnessed(cp: Checkpoint, witnesses: Sequence[WitnessKey], threshold: int,
              what: str = "the checkpoint") -> Witnessed:
    """Verify ``cp``'s cosignatures by ``witnesses`` and check that the log did not
    post-date it: TimeBoundError if its time is later than the witnessed time plus
    WITNESS_SKEW. Does not enforce the threshold (``require_witnesses`` does)."""
    w = Witnessed(cp, verify_cosignatures(cp.note, witnesses), threshold)
    by = w.by
    if by is not None and cp.time is not None and cp.time > (by + WITNESS_SKEW) * NS:
        raise TimeBoundError(
            f"{what} (size {cp.size}) says the log signed it at {iso(cp.time)}, but "
            f"{w.quorum} witness{'es' if w.quorum > 1 else ''} had cosigned it by "
            f"{witness_time_text(by)}: post-dated by more than {WITNESS_SKEW} s")
    return w


def check_after_witnessed(recorded_at: int, index: int, w: Witnessed) -> None:
    """Entry ``index`` (the first the witnessed checkpoint left out) must be recorded after
    the time ``quorum`` witnesses each saw the checkpoint (``seen_after``) less
    WITNESS_DELAY + WITNESS_SKEW; else TimeBoundError (back-dated)."""
    seen = w.seen_after
    if seen is None:
        return
    floor = (seen - WITNESS_DELAY - WITNESS_SKEW) * NS
    if recorded_at < floor:
        raise TimeBoundError(
            f"entry {index} says it was recorded at {iso(recorded_at)}, but {w.quorum} "
            f"witness{'es' if w.quorum > 1 else ''} saw a checkpoint without it (size "
            f"{w.checkpoint.size}) at or after {witness_time_text(seen)}: back-dated by more "
            f"than {WITNESS_DELAY + WITNESS_SKEW} s")
