"""Publishing the log as static files in the C2SP tlog-tiles layout (specs/tiles.md).

``publish`` writes ``checkpoint``, the hash tiles ``tile/<L>/<N>[.p/<W>]`` and, when
asked, the entry bundles ``tile/entries/<N>[.p/<W>]`` of one checkpoint into a directory
that any static web server can serve. The bytes of every tile are the log server's
(``ledger._tiles``). A run is incremental and safe to interrupt:

* every file is written to a temporary name, synced and linked into place (never over an
  existing file); a file already present is compared byte for byte when the new
  checkpoint needs it and the published one did not (a difference is a conflict,
  nothing replaced); files of the published checkpoint are trusted unless ``recheck``;
* the directories are synced, then the checkpoint is replaced last, so a reader never
  sees a checkpoint whose tiles are missing, and a killed run leaves the previous
  checkpoint with all its files: the next run completes the work;
* partial tiles of earlier checkpoints are kept (tlog-tiles allows deleting them; a
  client holding an older checkpoint may still fetch them);
* the published checkpoint never goes back: if the store's chosen checkpoint is older
  than the published one (a cosigned checkpoint lagging behind), the published one stays.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from verifier import Checkpoint, MalformedInputError, VerificationError, VerifierError, VerifierKey

from . import _tiles
from .errors import StoreError
from .ledger import Ledger

MAX_CHECKPOINT = 1 << 16
MAX_ENTRY = 0xFFFF  # an entry bundle prefixes each entry with a big-endian uint16 length
_TMP = ".tmp-"
_LOCK = ".publish.lock"


class PublishConflictError(VerificationError):
    """The directory holds a file that contradicts the log: a tile or bundle with other
    bytes, a checkpoint of another log or of a tree the store does not hold, or a link or
    a directory where a file belongs. Nothing was replaced."""


class PublishBusyError(StoreError):
    """Another ``publish`` holds the directory's lock."""


@dataclass(frozen=True)
class Published:
    """What one run did: the published size, and what it wrote or checked."""

    size: int
    previous: int | None
    """The size of the checkpoint the directory held before (None: none)."""
    tiles_written: int
    bundles_written: int
    files_checked: int
    checkpoint_written: bool
    kept_newer: bool
    """The directory's checkpoint is newer than the store's chosen one, so it was kept."""
    with_entries: bool = False
    """Entry bundles were written (asked for, or the directory already had ``tile/entries``)."""


def chosen_checkpoint(ledger: Ledger) -> bytes:
    """The note to publish: the latest cosigned checkpoint if the store holds one, else
    the latest checkpoint."""
    note = ledger.cosigned()
    return note if note is not None else ledger.checkpoint()


def publish(ledger: Ledger, directory: str | os.PathLike[str], *, with_entries: bool = False,
            recheck: bool = False, note: bytes | None = None) -> Published:
    """Publish ``note`` (default: ``chosen_checkpoint``) of ``ledger`` into ``directory``
    (made if missing) as the module says. ``with_entries`` adds entry bundles (entries
    are confidential: publish them only where readers may see them); a directory that
    already has ``tile/entries`` gets its bundles kept current even without it (else a
    monitor, which reads entries wherever they are, would find them missing). ``recheck``
    compares every file already present, not only the new ones.

    Raises PublishConflictError (nothing replaced), PublishBusyError, StoreError, OSError.
    """
    key = VerifierKey.parse(ledger.log_vkey)
    if note is None:
        note = chosen_checkpoint(ledger)
    cp = Checkpoint.parse_note(note, [key])  # the very bytes written below
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    out = _Dir(root)
    with out.locked():
        if ledger.root(cp.size) != cp.root:
            raise StoreError(f"the checkpoint of size {cp.size} does not match the store")
        old = out.published(key, cp.origin)
        if old is not None and ledger.root(old.size) != old.root:
            raise PublishConflictError(
                f"{root / 'checkpoint'} holds a tree of size {old.size} that this store "
                "does not hold (another log, a fork, or a store restored from an older "
                "copy): nothing was written")
        if old is not None and old.size > cp.size:
            return Published(old.size, old.size, 0, 0, 0, False, True)
        counts = _Counts()
        old_size = 0 if old is None else old.size
        with_entries = with_entries or out.has_entries()
        current: set[str] = set()
        for rel, made, known, bundle in _files(ledger, cp.size, old_size, with_entries):
            counts.add(out.put(rel, made, check=recheck or not known), bundle=bundle)
            current.add(rel)
        if recheck:  # the partial tiles kept from earlier checkpoints, too
            for rel, made in _kept_partials(ledger, out, cp.size, current):
                counts.add(out.put(rel, made, check=True), bundle=False)
        out.sync_dirs()
        wrote = old is None or old.note != cp.note
        if wrote:
            out.replace_checkpoint(cp.note)
        return Published(cp.size, None if old is None else old.size, counts.tiles,
                         counts.bundles, counts.checked, wrote, False, with_entries)


def _files(ledger: Ledger, size: int, old_size: int, with_entries: bool
           ) -> Iterator[tuple[str, Callable[[], bytes], bool, bool]]:
    """(relative path, its bytes' maker, whether the tree of ``old_size`` had it too,
    whether it is an entry bundle) of every file of the tree of ``size``."""
    for level, index, width in _tiles.tiles_of(size):
        known = _tiles.width_at(level, index, old_size) in (width, _tiles.WIDTH)
        yield ("tile/" + _tiles.tile_path(level, index, width),
               partial(_hash_tile, ledger, level, index, width), known, False)
        if with_entries and level == 0:
            yield ("tile/entries/" + _tiles.tile_path(0, index, width).partition("/")[2],
                   partial(entry_bundle, ledger, index, width), known, True)


def _kept_partials(ledger: Ledger, out: _Dir, size: int, current: set[str]
                   ) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(relative path, its bytes' maker) of every partial tile (hash tile or entry bundle)
    present in ``out`` that is not one of the tree of ``size``'s own files: those of
    earlier checkpoints. One that a tree of ``size`` cannot hold is not this log's
    (PublishConflictError). Names that are no tile path are not ours to judge: skipped."""
    top = out.root / "tile"
    for dirpath, dirnames, filenames in os.walk(top):  # links are not followed: refused
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                raise PublishConflictError(
                    f"{os.path.join(dirpath, name)} is a link where the log's directory "
                    "belongs: nothing replaced")
        dirnames.sort()
        if not dirpath.endswith(".p"):
            continue
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), out.root).replace(os.sep, "/")
            if rel in current or name.startswith(_TMP):
                continue
            tile = rel.removeprefix("tile/")
            bundle = tile.startswith("entries/")
            try:
                level, index, width = _tiles.parse_tile_path(
                    "0/" + tile.removeprefix("entries/") if bundle else tile)
            except MalformedInputError:
                continue
            if bundle and level != 0:
                continue
            if not _tiles.available(level, index, width, size):
                raise PublishConflictError(
                    f"{out.root / rel} is a tile that the log's tree of size {size} does not "
                    "hold: another log's file, or tampered with; nothing was replaced")
            yield rel, (partial(entry_bundle, ledger, index, width) if bundle
                        else partial(_hash_tile, ledger, level, index, width))


def entry_bundle(ledger: Ledger, index: int, width: int) -> bytes:
    """The entry bundle of level-0 tile ``index`` of ``width`` entries: each entry as a
    big-endian uint16 length and its bytes. Precondition: the log holds them."""
    parts: list[bytes] = []
    for i in range(index * _tiles.WIDTH, index * _tiles.WIDTH + width):
        data = ledger.entry(i)
        if len(data) > MAX_ENTRY:
            raise StoreError(f"entry {i} is {len(data)} bytes: an entry bundle holds at most "
                             f"{MAX_ENTRY}")
        parts.append(len(data).to_bytes(2, "big") + data)
    return b"".join(parts)


def split_bundle(data: bytes, count: int) -> list[bytes]:
    """The ``count`` entries of an entry bundle's bytes; MalformedInputError unless the
    bytes are exactly ``count`` length-prefixed entries."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data) and len(out) < count:
        if pos + 2 > len(data):
            raise MalformedInputError("an entry bundle ends inside a length prefix")
        n = int.from_bytes(data[pos:pos + 2], "big")
        if pos + 2 + n > len(data):
            raise MalformedInputError("an entry bundle ends inside an entry")
        out.append(bytes(data[pos + 2:pos + 2 + n]))
        pos += 2 + n
    if len(out) != count or pos != len(data):
        raise MalformedInputError(f"an entry bundle must hold exactly {count} entries")
    return out


def _hash_tile(ledger: Ledger, level: int, index: int, width: int) -> bytes:
    data = ledger.tile(level, index, width)
    if data is None:  # the store shrank under us: impossible for a sound store
        raise StoreError(f"the store does not hold tile {level}/{index} of width {width}")
    return data


class _Counts:
    def __init__(self) -> None:
        self.tiles = self.bundles = self.checked = 0

    def add(self, outcome: str, *, bundle: bool) -> None:
        if outcome == "written":
            if bundle:
                self.bundles += 1
            else:
                self.tiles += 1
        elif outcome == "checked":
            self.checked += 1


class _Dir:
    """The output directory: locked, written atomically, never through a link."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[str] = set()  # relative directories made or checked in this run
        self._dirty: set[str] = {""}

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock file (refused at once if another run holds it)."""
        fd = os.open(self.root / _LOCK,
                     os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PublishConflictError(f"{self.root / _LOCK} is not a regular file: "
                                           "nothing written")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PublishBusyError(f"another publish is writing {self.root}") from None
            self._clean("")
            yield
        finally:
            os.close(fd)

    def published(self, key: VerifierKey, origin: str) -> Checkpoint | None:
        """The directory's checkpoint, verified with the log key (None if there is none)."""
        data = self._read("checkpoint", MAX_CHECKPOINT)
        if data is None:
            return None
        try:
            old = Checkpoint.parse_note(data, [key])
        except VerifierError as exc:
            raise PublishConflictError(f"{self.root / 'checkpoint'} is not a checkpoint this "
                                       f"log signed ({exc}): nothing was written") from None
        if old.origin != origin:
            raise PublishConflictError(f"{self.root / 'checkpoint'} is of log {old.origin!r}, "
                                       f"not {origin!r}: nothing was written")
        return old

    def has_entries(self) -> bool:
        """Whether ``tile/entries`` is there (whatever it is: a link or a file there is
        refused when the bundles are written)."""
        try:
            os.lstat(self.root / "tile" / "entries")
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def put(self, rel: str, make: Callable[[], bytes], *, check: bool) -> str:
        """Write ``rel`` if it is absent ("written"); if present, compare it with ``make()``
        when ``check`` ("checked"), else trust it ("kept")."""
        parent, _, name = rel.rpartition("/")
        self._mkdirs(parent)
        present = self._exists(rel)
        if present and not check:
            return "kept"
        data = make()
        if present:
            self._same(rel, data)
            return "checked"
        tmp = self._tmp_file(parent, name, data)
        try:
            os.link(tmp, self.root / rel, follow_symlinks=False)
        except FileExistsError:  # someone else's file appeared: it must be ours byte for byte
            self._same(rel, data)
            return "checked"
        finally:
            os.unlink(tmp)
        self._dirty.add(parent)
        return "written"

    def replace_checkpoint(self, note: bytes) -> None:
        """Replace ``checkpoint`` atomically and durably (after ``sync_dirs``)."""
        if self.root.joinpath("checkpoint").is_dir():
            raise PublishConflictError(f"{self.root / 'checkpoint'} is a directory")
        tmp = self._tmp_file("", "checkpoint", note)
        try:
            os.replace(tmp, self.root / "checkpoint")
        except BaseException:
            os.unlink(tmp)
            raise
        _fsync_dir(self.root)

    def sync_dirs(self) -> None:
        """fsync every directory this run linked a file into (and their parents)."""
        todo: set[str] = set()
        for rel in self._dirty:
            parts = rel.split("/") if rel else []
            for i in range(len(parts) + 1):
                todo.add("/".join(parts[:i]))
        for rel in sorted(todo, key=len, reverse=True):
            _fsync_dir(self.root / rel)
        self._dirty = set()

    # -- internals --------------------------------------------------------------------

    def _mkdirs(self, rel: str) -> None:
        if rel in self._dirs:
            return
        path = ""
        for part in rel.split("/"):
            path = f"{path}/{part}" if path else part
            if path in self._dirs:
                continue
            full = self.root / path
            try:
                os.mkdir(full, 0o755)
                self._dirty.add(path.rpartition("/")[0])
            except FileExistsError:
                mode = os.lstat(full).st_mode
                if not stat.S_ISDIR(mode):
                    raise PublishConflictError(f"{full} is not a directory (a link or a "
                                               "file): nothing written there") from None
            self._clean(path)
            self._dirs.add(path)

    def _clean(self, rel: str) -> None:
        """Remove temporary files an interrupted run left in ``rel``."""
        with os.scandir(self.root / rel) as it:
            for entry in it:
                if entry.name.startswith(_TMP) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)

    def _exists(self, rel: str) -> bool:
        try:
            mode = os.lstat(self.root / rel).st_mode
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(mode):
            raise PublishConflictError(f"{self.root / rel} is not a regular file (a link or a "
                                       "directory): nothing replaced")
        return True

    def _read(self, rel: str, limit: int) -> bytes | None:
        try:
            # O_NONBLOCK: a FIFO (or a device) at the path must not block the open; what
            # was opened is then checked with fstat (no race with a swap of the path)
            fd = os.open(self.root / rel,
                         os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR):
                raise PublishConflictError(f"{self.root / rel} is not a regular file (a link "
                                           "or a directory): nothing replaced") from None
            raise
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise PublishConflictError(f"{self.root / rel} is not a regular file (a FIFO, "
                                           "a socket or a device): nothing replaced")
            return fh.read(limit + 1)

    def _same(self, rel: str, data: bytes) -> None:
        found = self._read(rel, len(data))
        if found != data:
            raise PublishConflictError(
                f"{self.root / rel} exists with other bytes than the log's: another log's "
                "file, or tampered with; nothing was replaced (move the directory aside and "
                "publish again)")

    def _tmp_file(self, rel_dir: str, name: str, data: bytes) -> Path:
        path = self.root / rel_dir / f"{_TMP}{name}-{secrets.token_hex(6)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            os.unlink(path)
            raise
        return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
