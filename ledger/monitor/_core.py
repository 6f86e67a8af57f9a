"""The monitor's pure core: what it trusts, and one method per check. No I/O.

``TrustedLog`` starts from the pinned log key, the witnesses and their threshold, and the
checkpoint kept by the last run (or none). A run calls, in order:

1. ``check_checkpoint(note)``: the log's signature, the witnesses' cosignatures, the origin,
   and fork at the same size (another root). A smaller size than kept is *behind*: a log
   server shows its latest cosigned checkpoint, which may lag one it showed before;
2. ``check_tiles(read)`` (``read`` fetches one tile as it is needed), or ``tiles_needed(entries)``
   then ``check_tiles(tiles)`` with all of them: the tiles give the checkpoint's
   root, each full tile hashes to its parent's entry, and the same tiles give the kept
   root at the kept size (else fork): consistency computed from the tiles, no proof taken.
   Behind, the tiles must still give the kept tree (the source cannot: rollback) and the
   smaller checkpoint's root as its prefix (else fork); entries are not read again;
3. optionally ``check_entries(entries)``: every entry 0..size-1 hashes to its leaf in the
   (checked) tiles, read one level-0 tile at a time as the entries come (with a reader:
   never listed ahead, so a signed size far beyond what the source holds stops at the first
   missing tile, in bounded memory), and is replayed from the start with the verifier's rules
   (verifier/replay.py: the rules need the whole state), entries after the kept checkpoint
   recorded after its time, all before the new one's. Given the ``Replayed`` of the kept
   checkpoint (a run of the same process made it), only entries kept.size..size-1 are read
   and replayed on top of it: the tiles have shown the kept tree to be a prefix of this one,
   so entries 0..kept.size-1 are the ones already replayed;
4. ``updated()``: the checkpoint to keep (behind: the kept one), only once every step
   asked for has passed.

A failed step raises one of ledger/monitor/_errors.py's classes (or MalformedInputError)
and the object is then spent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from verifier import (
    Checkpoint,
    Inventory,
    MalformedInputError,
    VerificationError,
    VerifierError,
    VerifierKey,
    WitnessKey,
    leaf_hash,
    parse_entry,
    require_witnesses,
    root_from_leaf_hashes,
    verify_cosignatures,
)

from .. import _tiles
from .. import _tree as tree
from ..client._state import Kept
from ._errors import (
    CheckpointSignatureError,
    ForkDetectedError,
    MissingTileError,
    RollbackDetectedError,
    RuleViolationError,
    TileMismatchError,
)

TileId = tuple[int, int, int]
"""(level, index, width) of a hash tile."""

TileReader = Callable[[TileId], bytes]
"""Reads one hash tile's bytes when it is needed; raises MissingTileError if it is not there."""

_ZERO = bytes(32)
MAX_SIZE = 1 << (_tiles.HEIGHT * (_tiles.MAX_LEVEL + 1))  # 2**48


class _TileTree:
    """Node hashes of the tree of ``size`` leaves, read from its tiles: a full tile is used
    only once it hashes to its parent's entry; partial tiles are checked by the caller
    against the root. ``tiles`` is a mapping of the tiles, or a ``TileReader`` (then
    ``lazy``); None: a dry run that records which tiles it reads."""

    def __init__(self, size: int, tiles: Mapping[TileId, bytes] | TileReader | None) -> None:
        self.size = size
        self.tiles = tiles
        self.lazy = tiles is not None and not isinstance(tiles, Mapping)
        self.used: list[TileId] = []
        self._hashes: dict[tuple[int, int], list[bytes]] = {}

    def _read(self, tid: TileId) -> bytes:
        name = "tile/" + _tiles.tile_path(*tid)
        if isinstance(self.tiles, Mapping):
            data = self.tiles.get(tid)
            if data is None:
                raise MissingTileError(f"{name} is missing")
            return data
        assert self.tiles is not None
        return self.tiles(tid)

    def forget(self, level: int, index: int) -> None:
        """Drop a tile's hashes once no longer needed (it is read again if asked for)."""
        self._hashes.pop((level, index), None)

    def tile(self, level: int, index: int) -> list[bytes]:
        found = self._hashes.get((level, index))
        if found is not None:
            return found
        width = _tiles.width_at(level, index, self.size)
        if width == 0:
            raise ValueError(f"the tree of size {self.size} has no tile {level}/{index}")
        tid = (level, index, width)
        self.used.append(tid)
        if self.tiles is None:
            hashes = [_ZERO] * width
        else:
            data = self._read(tid)
            name = "tile/" + _tiles.tile_path(*tid)
            if len(data) != 32 * width:
                raise TileMismatchError(f"{name} is {len(data)} bytes, not {32 * width}")
            hashes = [data[i:i + 32] for i in range(0, len(data), 32)]
        if width == _tiles.WIDTH:
            parent = self.node(_tiles.HEIGHT * (level + 1), index)
            if self.tiles is not None and root_from_leaf_hashes(hashes) != parent:
                raise TileMismatchError(f"tile/{_tiles.tile_path(*tid)} does not hash to its "
                                        f"entry in the tile above")
        self._hashes[(level, index)] = hashes
        return hashes

    def node(self, height: int, index: int) -> bytes:
        """The hash of the complete subtree of 2**height leaves at ``index``."""
        level, rest = divmod(height, _tiles.HEIGHT)
        first = index << rest
        tile_index, offset = divmod(first, _tiles.WIDTH)
        hashes = self.tile(level, tile_index)[offset:offset + (1 << rest)]
        if len(hashes) != 1 << rest:
            raise ValueError(f"node {height}/{index} is not complete in size {self.size}")
        return hashes[0] if rest == 0 else root_from_leaf_hashes(hashes)

    def root(self, size: int) -> bytes:
        """The root of the first ``size`` leaves (size <= self.size)."""
        return tree.root(self.node, size)


@dataclass
class Checked:
    """What one run checked, to report it (never more than was checked)."""

    size: int = 0
    previous: int | None = None
    witnesses: int = 0
    tiles: int = 0
    entries: int = 0  # entries read, hashed and replayed by this run
    replayed_from: int | None = None  # the first of them; None: entries not checked
    behind: bool = False  # a smaller size than kept, shown to be its prefix


@dataclass
class Replayed:
    """The replay of entries 0..size-1 of the tree of the checkpoint ``note``, which a later
    run of the same process may continue (``check_entries(..., resume=)``). ``last_at``: the
    latest time any of them was recorded (0 if none). The inventory is mutable: once a
    ``check_entries`` given this object has failed, it is spent and must not be used again."""

    note: bytes
    size: int
    last_at: int
    inventory: Inventory


class TrustedLog:
    """The monitor's trusted state and its checks (see the module docstring)."""

    def __init__(self, log_key: VerifierKey, kept: Kept | None, *,
                 witnesses: Sequence[WitnessKey] = (), threshold: int = 0) -> None:
        """Preconditions: ``kept`` (if any) was signed by ``log_key`` (the state file's
        reader checks it); 0 <= threshold <= len(witnesses)."""
        if not 0 <= threshold <= len(witnesses):
            raise ValueError("the witness threshold must be in 0..the number of witnesses")
        self.log_key = log_key
        self.kept = kept
        self.witnesses = tuple(witnesses)
        self.threshold = threshold
        self.checked = Checked(previous=None if kept is None else kept.size)
        self._cp: Checkpoint | None = None
        self._tree: _TileTree | None = None
        self._behind = False
        self._entries_ok = False
        self._with_entries = False
        self.replayed: Replayed | None = None  # set by a check_entries that passed

    # -- step 1 ------------------------------------------------------------------------

    def check_checkpoint(self, note: bytes) -> Checkpoint:
        """Verify the checkpoint note (its exact bytes) against the kept state."""
        if self._cp is not None:
            raise ValueError("check_checkpoint is the first step, once")
        try:
            cp = Checkpoint.parse_note(note, [self.log_key])
        except MalformedInputError:
            raise
        except VerificationError as exc:
            raise CheckpointSignatureError(f"the checkpoint is not signed by the log key "
                                           f"{self.log_key.name}: {exc}") from None
        if self.witnesses:
            try:
                cosigs = verify_cosignatures(note, self.witnesses)
                require_witnesses(cosigs, self.threshold)
            except MalformedInputError:
                raise
            except VerificationError as exc:
                raise CheckpointSignatureError(f"witnesses: {exc}") from None
            self.checked.witnesses = len(cosigs)
        if cp.size >= MAX_SIZE:
            raise MalformedInputError(f"a tree of {cp.size} entries: tiles of levels 0..5 "
                                      f"hold at most {MAX_SIZE - 1}")
        kept = self.kept
        if kept is not None:
            if cp.origin != kept.origin:
                raise CheckpointSignatureError(f"the checkpoint is of log {cp.origin!r}, not "
                                               f"of the kept {kept.origin!r}")
            self._behind = self.checked.behind = cp.size < kept.size
            if cp.size == kept.size and cp.root != kept.root:
                raise ForkDetectedError(f"fork: size {cp.size} with root {cp.root.hex()}, "
                                        f"but the kept root is {kept.root.hex()}")
        self._cp = cp
        self.checked.size = cp.size
        return cp

    # -- step 2 ------------------------------------------------------------------------

    def tiles_needed(self, entries: bool = False) -> list[TileId]:
        """The tiles ``check_tiles`` reads: those giving the new and the kept root, with
        the chain above each full one; with ``entries``, every level-0 tile too (a list as
        long as the signed size / 256: for a source that may sign any size, give
        ``check_tiles`` a ``TileReader`` instead)."""
        cp = self._need_cp()
        dry = _TileTree(self._tree_size(cp), None)
        self._walk(dry, cp, entries)
        return list(dict.fromkeys(dry.used))

    @property
    def behind(self) -> bool:
        """Whether the checkpoint is smaller than the kept one (step 1 told)."""
        return self._behind

    def missing(self, exc: MissingTileError) -> MissingTileError | RollbackDetectedError:
        """What a missing tile means: behind, that the source cannot show the kept tree
        (a rollback); else itself."""
        if not self._behind or self.kept is None or self._cp is None:
            return exc
        return RollbackDetectedError(
            f"rollback: the log shows size {self._cp.size}, smaller than the kept size "
            f"{self.kept.size}, and cannot show the kept tree ({exc})")

    def _tree_size(self, cp: Checkpoint) -> int:
        """The size whose tiles are read: the kept size when behind."""
        return self.kept.size if self._behind and self.kept is not None else cp.size

    def check_tiles(self, tiles: Mapping[TileId, bytes] | TileReader,
                    entries: bool = False) -> None:
        """Check the tiles against the checkpoint and the kept root: ``tiles`` holds those
        ``tiles_needed(entries)`` listed, or is a ``TileReader`` called for each tile as it
        is needed (then, with ``entries``, the level-0 tiles are read by ``check_entries``
        as the entries come, not here)."""
        cp = self._need_cp()
        if self._tree is not None:
            raise ValueError("check_tiles runs once")
        t = _TileTree(self._tree_size(cp), tiles)
        try:
            self._walk(t, cp, entries)
        except MissingTileError as exc:
            raise self.missing(exc) from None
        self._tree, self._with_entries = t, entries and not self._behind
        self.checked.tiles = len(set(t.used))

    def _walk(self, t: _TileTree, cp: Checkpoint, entries: bool) -> None:
        kept = self.kept
        if self._behind and kept is not None:
            self._walk_behind(t, cp, kept)
            return
        if cp.size == 0:
            return
        got = t.root(cp.size)  # reads every partial tile: they are checked by this root
        if t.tiles is not None and got != cp.root:
            raise TileMismatchError(f"the tiles give root {got.hex()}, but the checkpoint "
                                    f"says {cp.root.hex()}")
        if kept is not None and 0 < kept.size < cp.size:
            old = t.root(kept.size)
            if t.tiles is not None and old != kept.root:
                raise ForkDetectedError(
                    f"fork: the tiles of size {cp.size} give root {old.hex()} for the kept "
                    f"size {kept.size}, whose kept root is {kept.root.hex()}")
        if entries and not t.lazy:
            for index in range(0, cp.size, _tiles.WIDTH):
                t.tile(0, index // _tiles.WIDTH)

    def _walk_behind(self, t: _TileTree, cp: Checkpoint, kept: Kept) -> None:
        """Behind: the tiles give the kept root at the kept size, and the checkpoint's
        root at its smaller size (so it is a prefix of the kept tree)."""
        got = t.root(kept.size)
        if t.tiles is not None and got != kept.root:
            raise ForkDetectedError(
                f"fork: the log shows size {cp.size}, and its tiles give root {got.hex()} "
                f"for the kept size {kept.size}, whose kept root is {kept.root.hex()}")
        if cp.size == 0:
            return
        old = t.root(cp.size)
        if t.tiles is not None and old != cp.root:
            raise ForkDetectedError(
                f"fork: the checkpoint of size {cp.size} (root {cp.root.hex()}) is not a "
                f"prefix of the kept tree of size {kept.size}: its tiles give {old.hex()}")

    # -- step 3 ------------------------------------------------------------------------

    def check_entries(self, entries: Iterable[bytes],
                      resume: Replayed | None = None) -> Inventory:
        """Check that ``entries`` are entries 0..size-1 (each hashes to its leaf in the
        checked tiles) and replay them, as they come, with the verifier's rules; or, with
        ``resume`` (the replay of the kept checkpoint), that they are entries
        kept.size..size-1, replayed on top of it (``resume`` is then spent). Sets
        ``replayed``. Preconditions: ``check_tiles(..., entries=True)``; ``resume``, if
        given, is of the kept checkpoint (its note)."""
        cp = self._need_cp()
        t = self._tree
        if t is None or not self._with_entries:
            raise ValueError("check_tiles(..., entries=True) comes before check_entries")
        kept = self.kept
        kept_time = None if kept is None else Checkpoint.parse_note(
            kept.note, [self.log_key]).time
        start, last_at = 0, 0
        if resume is None:
            inv = Inventory(keep_timelines=False)
        else:
            if kept is None or resume.note != kept.note or resume.size != kept.size:
                raise ValueError("the replay to resume is not of the kept checkpoint")
            start, last_at, inv = resume.size, resume.last_at, resume.inventory
            if cp.time is not None and last_at > cp.time:
                raise RuleViolationError("an entry of the kept tree was recorded after the "
                                         "checkpoint that holds it was signed")
        count = 0
        for i, data in enumerate(entries, start):
            if i >= cp.size:
                raise TileMismatchError(f"more entries than the tree's {cp.size}")
            tile_index, offset = divmod(i, _tiles.WIDTH)
            if leaf_hash(data) != t.tile(0, tile_index)[offset]:
                raise TileMismatchError(f"entry {i} does not hash to its leaf in the tiles")
            if offset == _tiles.WIDTH - 1:
                t.forget(0, tile_index)  # memory: one level-0 tile at a time
            try:
                p = parse_entry(data)
                inv.apply_parsed(p)
            except VerifierError as exc:
                raise RuleViolationError(f"entry {i}: {exc}") from None
            at = p.entry.recorded_at
            if cp.time is not None and at > cp.time:
                raise RuleViolationError(f"entry {i} was recorded after the checkpoint that "
                                         "holds it was signed")
            if kept is not None and kept_time is not None and i >= kept.size \
                    and at <= kept_time:
                raise RuleViolationError(f"entry {i} was recorded at or before the time of the "
                                         "kept checkpoint, which left it out (back-dated)")
            last_at = max(last_at, at)
            count += 1
        if count != cp.size - start:
            raise MissingTileError(f"{start + count} entries for a tree of size {cp.size}")
        if cp.size and (inv.log_key is None or inv.origin != cp.origin
                        or inv.log_key.public_key != self.log_key.public_key):
            raise RuleViolationError("the genesis names another log key or origin than the "
                                     "checkpoint's")
        self._entries_ok = True
        self.checked.entries, self.checked.replayed_from = count, start
        self.replayed = Replayed(cp.note, cp.size, last_at, inv)
        return inv

    # -- step 4 ------------------------------------------------------------------------

    def updated(self) -> Kept:
        """The checkpoint to keep now. Precondition: steps 1 and 2 passed (and 3, if the
        tiles were checked for entries)."""
        cp = self._need_cp()
        if self._tree is None and cp.size > 0:
            raise ValueError("check_tiles comes before updated")
        if self._with_entries and not self._entries_ok:
            raise ValueError("check_entries comes before updated")
        if self._behind and self.kept is not None:
            return self.kept
        return Kept.of(cp)

    def _need_cp(self) -> Checkpoint:
        if self._cp is None:
            raise ValueError("check_checkpoint comes first")
        return self._cp
