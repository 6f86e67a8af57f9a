"""One monitor run: read a source, run the core's steps in order, and keep the new
checkpoint in the state only once every step passed."""

from __future__ import annotations

from collections.abc import Sequence

from verifier import VerifierKey, WitnessKey

from ..client._state import Kept, MemoryState
from ._core import Checked, TrustedLog
from ._sources import Source


def run_once(source: Source, log_key: VerifierKey, state: MemoryState, *,
             witnesses: Sequence[WitnessKey] = (), threshold: int = 0,
             entries: bool | None = None, timeout: float = 30.0) -> Checked:
    """Check the source's checkpoint, tiles and (``entries`` True, or None and the source
    has them) entries against the kept checkpoint in ``state`` (a MemoryState or the
    client's FileState: locked, atomic, 0600), and keep the new checkpoint if all passed.
    Raises what the core raises (ledger/monitor/_errors.py), MalformedInputError,
    StateFileError, or the source's I/O errors; the state is then unchanged."""
    with_entries = source.has_entries() if entries is None else entries
    result: list[Checked] = []

    def step(kept: Kept | None) -> Kept | None:
        trusted = TrustedLog(log_key, kept, witnesses=witnesses, threshold=threshold)
        cp = trusted.check_checkpoint(source.checkpoint())
        # each tile read when the check needs it, never listed ahead: a signed size far
        # beyond what the source holds stops at its first missing tile
        trusted.check_tiles(lambda t: source.tile(*t), with_entries)
        if with_entries and not trusted.behind:
            trusted.check_entries(source.entries(cp.size))
        new = trusted.updated()
        result.append(trusted.checked)
        return None if kept is not None and kept.note == new.note else new

    state.update(step, timeout)
    return result[0]


def describe(checked: Checked, where: str, *, witnesses: int, threshold: int,
             kept: bool) -> str:
    """One line saying what a passed run checked (and nothing more)."""
    parts = ["log signature"]
    if witnesses:
        parts.append(f"{checked.witnesses} of {witnesses} witnesses cosigned "
                     f"(threshold {threshold})")
    if checked.size:
        parts.append(f"{checked.tiles} tiles give the root")
    if checked.previous is None:
        parts.append("first checkpoint kept" if kept else "no state kept")
    elif checked.behind:
        parts.append(f"behind the kept size {checked.previous}: the tiles give the kept tree "
                     f"and this one as its prefix; kept unchanged")
    elif checked.previous == checked.size:
        parts.append(f"same tree as kept (size {checked.previous})")
    else:
        parts.append(f"consistent with kept size {checked.previous}")
    if checked.behind:
        pass
    elif checked.entries:
        parts.append(f"{checked.entries} entries hash to their leaves and replay under the "
                     "log's rules")
    else:
        parts.append("entries not checked")
    return f"OK {where} size {checked.size}: " + "; ".join(parts)


__all__ = ["describe", "run_once"]
