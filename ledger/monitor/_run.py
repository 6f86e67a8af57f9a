"""One monitor run: read a source, run the core's steps in order, and keep the new
checkpoint in the state only once every step passed."""

from __future__ import annotations

from collections.abc import Sequence

from verifier import VerifierKey, WitnessKey

from ..client._state import Kept, MemoryState
from ._core import Checked, Replayed, TrustedLog
from ._sources import Source


class Follow:
    """What one run leaves to the next run of the same process (``--follow``): the replay
    of the entries it checked, so that the next run reads and replays only the entries
    after them. Used only through ``run_once``; not shared between threads."""

    def __init__(self) -> None:
        self._replayed: Replayed | None = None

    def take(self, kept: Kept | None) -> Replayed | None:
        """The replay of ``kept``'s tree, if held; from now on not held (a run that fails
        with it leaves it spent)."""
        replayed, self._replayed = self._replayed, None
        if replayed is None or kept is None or replayed.note != kept.note:
            return None
        return replayed

    def keep(self, replayed: Replayed | None) -> None:
        self._replayed = replayed


def run_once(source: Source, log_key: VerifierKey, state: MemoryState, *,
             witnesses: Sequence[WitnessKey] = (), threshold: int = 0,
             entries: bool | None = None, timeout: float = 30.0,
             follow: Follow | None = None) -> Checked:
    """Check the source's checkpoint, tiles and (``entries`` True, or None and the source
    has them) entries against the kept checkpoint in ``state`` (a MemoryState or the
    client's FileState: locked, atomic, 0600), and keep the new checkpoint if all passed.
    With ``follow``, entries already replayed by an earlier run with the same ``follow``
    (of the checkpoint the state keeps now) are not read again.
    Raises what the core raises (ledger/monitor/_errors.py), MalformedInputError,
    StateFileError, or the source's I/O errors; the state is then unchanged."""
    with_entries = source.has_entries() if entries is None else entries
    result: list[Checked] = []
    done: list[Replayed | None] = []

    def step(kept: Kept | None) -> Kept | None:
        trusted = TrustedLog(log_key, kept, witnesses=witnesses, threshold=threshold)
        cp = trusted.check_checkpoint(source.checkpoint())
        # each tile read when the check needs it, never listed ahead: a signed size far
        # beyond what the source holds stops at its first missing tile
        trusted.check_tiles(lambda t: source.tile(*t), with_entries)
        if with_entries and not trusted.behind:
            resume = None if follow is None else follow.take(kept)
            trusted.check_entries(source.entries(cp.size, 0 if resume is None
                                                 else resume.size), resume)
        new = trusted.updated()
        result.append(trusted.checked)
        done.append(trusted.replayed)
        return None if kept is not None and kept.note == new.note else new

    state.update(step, timeout)
    if follow is not None and done and done[0] is not None:
        follow.keep(done[0])  # only once the state keeps its checkpoint
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
    first = checked.replayed_from
    if checked.behind:
        pass
    elif first is None:
        parts.append("entries not checked")
    elif first == 0:
        parts.append(f"{checked.entries} entries hash to their leaves and replay under the "
                     "log's rules")
    elif checked.entries:
        parts.append(f"entries {first}..{first + checked.entries - 1} hash to their leaves "
                     f"and replay under the log's rules, after entries 0..{first - 1}, "
                     "replayed by an earlier run of this process")
    else:
        parts.append(f"no new entries: entries 0..{first - 1} were replayed by an earlier "
                     "run of this process")
    return f"OK {where} size {checked.size}: " + "; ".join(parts)


__all__ = ["Follow", "describe", "run_once"]
