"""What the ledger's calls return: snapshots, model refs, tags, proofs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from verifier import (
    Event,
    MemberAdd,
    MemberRemove,
    ParsedEntry,
    Register,
    TagMove,
    format_add_checkpoint,
    format_tlog_proof,
    from_ns,
    op_name,
    statement_model,
)


@dataclass(frozen=True)
class Snapshot:
    """One entry of a model's chain, as recorded."""

    snapshot_hash: str
    index: int
    timestamp: datetime
    actor: str
    model: str
    model_hash: str
    op: str
    event_type: str
    payload: dict[str, Any]
    statement_id: str
    claimed_at: datetime
    prev: str | None

    @classmethod
    def from_entry(cls, p: ParsedEntry, model_hash: str) -> Snapshot:
        """Build from a parsed entry of a model chain."""
        st = p.statement
        payload: dict[str, Any]
        if isinstance(st, Register):
            event_type = "registered"
            payload = {"owner": st.owner, "model_type": st.model_type, "tier": st.tier,
                       "purpose": st.purpose, "status": st.status, "metadata": st.metadata}
        elif isinstance(st, Event):
            event_type, payload = st.event_type, st.payload
        elif isinstance(st, TagMove):
            event_type, payload = "tag_moved", {"tag": st.tag, "target": st.target}
        elif isinstance(st, MemberAdd):
            event_type, payload = "member_added", {"member": st.member, "role": st.role}
        elif isinstance(st, MemberRemove):
            event_type, payload = "member_removed", {"member": st.member, "reason": st.reason}
        else:
            raise ValueError("not a model entry")
        return cls(p.snapshot_hash, p.entry.index, from_ns(p.entry.recorded_at), st.actor,
                   statement_model(st) or "", model_hash, op_name(st), event_type, payload,
                   st.id, from_ns(st.claimed_at), p.entry.prev)


@dataclass(frozen=True)
class ModelRef:
    """A registered model: its permanent hash and its registration snapshot."""

    name: str
    model_hash: str
    owner: str
    model_type: str
    tier: str
    purpose: str
    status: str
    metadata: dict[str, Any]
    snapshot: Snapshot


@dataclass(frozen=True)
class Tag:
    """A tag of a model and the snapshot it points at, set by the move ``moved``."""

    model: str
    name: str
    target: str
    moved: Snapshot


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``."""

    index: int
    size: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes

    def to_text(self) -> bytes:
        """The c2sp.org/tlog-proof@v1 file."""
        return format_tlog_proof(self.index, self.hashes, self.checkpoint)


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 consistency proof from ``old_size`` to ``new_size``."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes

    def to_text(self) -> bytes:
        """The tlog-witness add-checkpoint body."""
        return format_add_checkpoint(self.old_size, self.hashes, self.checkpoint)


@dataclass(frozen=True)
class Receipt:
    """What ``Ledger.add`` answers for an appended (or already logged) statement: its
    entry's exact bytes and an inclusion proof under the first checkpoint holding it."""

    index: int
    snapshot_hash: str
    recorded_at: datetime
    entry: bytes
    proof: InclusionProof
    created: bool  # False: the same statement was already in the log


def tags_of(name: str, history: list[Snapshot]) -> dict[str, Tag]:
    """The tags of model ``name`` after its ``history`` (oldest first), by tag name."""
    out: dict[str, Tag] = {}
    for snap in history:
        if snap.op == "tag":
            tag = snap.payload["tag"]
            out[tag] = Tag(name, tag, snap.payload["target"], snap)
    return dict(sorted(out.items()))


def tag_moves(name: str, tag: str, history: list[Snapshot]) -> list[Tag]:
    """Every move of ``tag`` in model ``name``'s ``history``, oldest first."""
    return [Tag(name, tag, s.payload["target"], s) for s in history
            if s.op == "tag" and s.payload["tag"] == tag]
