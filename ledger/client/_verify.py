"""The client's checks of what a server shows it (specs/api.md §2 and §4): receipts,
checkpoints and their consistency with the kept one. Pure, but for ``prove``, which
fetches a consistency proof."""

from __future__ import annotations

from collections.abc import Callable

from verifier import (
    Checkpoint,
    ParsedEntry,
    VerifierError,
    VerifierKey,
    parse_add_checkpoint,
    parse_entry,
    parse_tlog_proof,
    verify_consistency,
    verify_inclusion,
)

from ..errors import StoreBusyError
from ._errors import (
    ArgumentRefusedError,
    ForkError,
    RollbackError,
    ServerError,
    ServerMisbehaviourError,
    ServerUnavailableError,
)
from ._state import Kept
from ._wire import RawReceipt, same_time

Prove = Callable[[int, int], bytes]
"""(old size, new size) -> the /proof/consistency answer body."""


def checkpoint(note: bytes, key: VerifierKey, origin: str, what: str) -> Checkpoint:
    """``note`` verified: signed by the pinned log ``key``, of the log ``origin``."""
    try:
        cp = Checkpoint.parse_note(note, [key])
    except VerifierError as exc:
        raise ServerMisbehaviourError(f"{what}: its checkpoint is not signed by the pinned "
                                      f"log key: {exc}") from None
    if cp.origin != origin:
        raise ServerMisbehaviourError(f"{what}: its checkpoint is of log {cp.origin!r}, not "
                                      f"{origin!r}")
    return cp


def receipt(r: RawReceipt, sent: tuple[bytes, bytes, bytes], key: VerifierKey,
            origin: str) -> tuple[ParsedEntry, Checkpoint]:
    """Check a receipt for the statement ``sent`` (its exact bytes, key ID, signature):
    the entry parses and carries those very bytes, its index and hash are the receipt's,
    and the proof includes it under a checkpoint the pinned key signed. The consistency
    with the kept checkpoint is the caller's (``advance``)."""
    try:
        p = parse_entry(r.entry)
    except VerifierError as exc:
        raise ServerMisbehaviourError(f"the receipt's entry does not parse: {exc}") from None
    if (p.statement_bytes, p.key_id, p.sig) != sent:
        raise ServerMisbehaviourError("the receipt's entry holds another statement (or "
                                      "another signature) than the one sent")
    if p.entry.index != r.index or p.snapshot_hash != r.snapshot:
        raise ServerMisbehaviourError(f"the receipt names entry {r.index} {r.snapshot[:16]}, "
                                      f"but its entry is {p.entry.index} "
                                      f"{p.snapshot_hash[:16]}")
    if not same_time(r.recorded_at, p.entry.recorded_at):
        raise ServerMisbehaviourError("the receipt's recorded_at is not its entry's time")
    cp = inclusion(r.proof, p.leaf_hash, r.index, key, origin, "the receipt's proof")
    return p, cp


def inclusion(proof: bytes, leaf: bytes, index: int, key: VerifierKey, origin: str,
              what: str, size: int | None = None) -> Checkpoint:
    """Check a tlog-proof text: it proves the leaf hash ``leaf`` at ``index`` (under a
    checkpoint of ``size``, if given) signed by the pinned key. Returns its checkpoint."""
    try:
        tp = parse_tlog_proof(proof)
    except VerifierError as exc:
        raise ServerMisbehaviourError(f"{what} does not parse: {exc}") from None
    if tp.index != index or tp.extra is not None:
        raise ServerMisbehaviourError(f"{what} is for entry {tp.index}, not {index}")
    cp = checkpoint(tp.checkpoint, key, origin, what)
    if size is not None and cp.size != size:
        raise ServerMisbehaviourError(f"{what} is under a checkpoint of size {cp.size}, not "
                                      f"{size}")
    try:
        verify_inclusion(leaf, index, cp.size, tp.hashes, cp.root)
    except VerifierError as exc:
        raise ServerMisbehaviourError(f"{what} does not include the entry under its "
                                      f"checkpoint: {exc}") from None
    return cp


def consistency_body(body: bytes, old: int, new: int | None, key: VerifierKey, origin: str
                     ) -> tuple[tuple[bytes, ...], Checkpoint]:
    """A /proof/consistency answer for ``old`` -> ``new`` (None: the latest): its hashes
    and its checkpoint (signed by the pinned key, of size ``new``). The proof itself is
    the caller's."""
    what = f"the consistency proof {old} -> {'latest' if new is None else new}"
    try:
        ac = parse_add_checkpoint(body)
    except VerifierError as exc:
        raise ServerMisbehaviourError(f"{what} does not parse: {exc}") from None
    cp = checkpoint(ac.checkpoint, key, origin, what)
    if ac.old_size != old or cp.size != (cp.size if new is None else new) or old > cp.size:
        raise ServerMisbehaviourError(f"{what} came as {ac.old_size} -> {cp.size}")
    return ac.hashes, cp


def advance(kept: Kept | None, cp: Checkpoint, key: VerifierKey, prove: Prove) -> Kept | None:
    """The checkpoint to keep after the server showed ``cp`` (verified), or None to keep
    ``kept`` (specs/api.md §4). Raises ForkError or RollbackError, keeping nothing."""
    if kept is None:
        return Kept.of(cp)
    if cp.origin != kept.origin:
        raise ForkError(f"the server showed a checkpoint of log {cp.origin!r}; the kept one "
                        f"is of {kept.origin!r}")
    if cp.size == kept.size:
        if cp.root != kept.root:
            raise ForkError(f"fork: the server showed two roots for size {cp.size}",
                            expected=kept.root, calculated=cp.root)
        return None
    if cp.size < kept.size:
        _prove(cp.size, cp.root, kept.size, kept.root, key, cp.origin, prove, RollbackError)
        return None
    _prove(kept.size, kept.root, cp.size, cp.root, key, cp.origin, prove, ForkError)
    return Kept.of(cp)


def _prove(old: int, old_root: bytes, new: int, new_root: bytes, key: VerifierKey,
           origin: str, prove: Prove, error: type[ServerMisbehaviourError]) -> None:
    """That the tree (old, old_root) is a prefix of (new, new_root), by the server's proof;
    else ``error``. Transport failures (ServerUnavailableError, StoreBusyError) pass."""
    kind = "rollback" if error is RollbackError else "fork"
    try:
        hashes, cp = consistency_body(prove(old, new), old, new, key, origin)
        if cp.root != new_root:
            raise ForkError(f"fork: the server showed two roots for size {new}",
                            expected=new_root, calculated=cp.root)
        verify_consistency(old, new, hashes, old_root, new_root)
    except (ServerUnavailableError, StoreBusyError, ForkError):
        raise
    except VerifierError as exc:  # a refused request or a failed proof
        raise error(f"{kind}: the server cannot prove its tree of size {old} is a prefix of "
                    f"the one of size {new}: {exc}") from None
    except (ServerError, ArgumentRefusedError) as exc:  # sizes it cannot answer, ...
        raise error(f"{kind}: the server did not prove its tree of size {old} is a prefix "
                    f"of the one of size {new}: {exc}") from None
