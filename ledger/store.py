"""The LMDB environment: named databases, write transactions that retry when
the map is full, and errors translated into StoreError.

One write is one LMDB write transaction: a caller's function runs inside it
and everything it put commits together or not at all. LMDB serialises
writers across processes; readers never block.
"""

from __future__ import annotations

import errno
import os
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from .compress import Codec, DamagedEntry, make_dictionary

from ._writelock import WriteLock
from .errors import StoreError, StoreFullError, StoreLimitError

T = TypeVar("T")

FORMAT = b"modelseal-store 7"
INITIAL_MAP = 64 << 20
MAX_MAP = 1 << 40
WRITE_WAIT = 60.0  # seconds a write of this process waits for another one of it
MAX_KEY = 511  # LMDB's key size limit
MAX_NAME_BYTES = MAX_KEY - 9  # a model name is a key, and with 9 bytes more a versions key
DB_NAMES = (
    "meta", "entries", "nodes", "snapshots", "stmt_ids", "by_time",
    "model_hashes", "models", "versions", "checkpoints",
)


def u64(n: int) -> bytes:
    """8-byte big-endian: keys sort in numeric order."""
    return n.to_bytes(8, "big")


def from_u64(b: bytes) -> int:
    """Inverse of u64."""
    return int.from_bytes(b, "big")


class Store:
    """An open LMDB environment with modelseal's databases.

    LMDB allows one environment per file per process, so stores opened twice
    in one process share it (counted; the last close closes it).
    """

    _open: dict[str, tuple[lmdb.Environment, int]] = {}
    _write_locks: dict[str, WriteLock] = {}  # one per environment, kept with it

    def __init__(self, path: Path, env: lmdb.Environment) -> None:
        self.path = path
        self.env = env
        self._closed = False
        self.write_lock = Store._write_locks.setdefault(str(path.resolve()), WriteLock())
        """Taken before any write transaction of this process on the store."""
        self.codec = Codec(b"")
        self.db: dict[str, Any] = {
            name: env.open_db(name.encode()) for name in DB_NAMES
        }

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: str | None = None) -> Store:
        """Open the store at directory ``path``; ``create=origin`` makes a new, empty
        one for the log ``origin``.

        Raises StoreError if it is missing, is another program's LMDB environment (or, when
        creating, already holds a store). Creating cleans up after itself: if it fails
        (e.g. StoreFullError on a full disk), the files and directories it made are removed
        and a retry can succeed.
        """
        target = Path(path)
        data_file = target / "data.mdb"
        if create:
            if data_file.exists():
                raise StoreError(f"{target} already holds a store")
            with removed_on_failure(target):
                target.mkdir(parents=True, exist_ok=True)
                return cls._open_env(target, data_file, create)
        elif not data_file.exists():
            raise StoreError(f"no modelseal store at {target}")
        return cls._open_env(target, data_file, None)

    @classmethod
    def _open_env(cls, target: Path, data_file: Path, create: str | None) -> Store:
        real = str(target.resolve())
        if real in cls._open:
            env, count = cls._open[real]
            cls._open[real] = (env, count + 1)
            return cls(target, env)._with_codec()
        size = max(INITIAL_MAP, data_file.stat().st_size if data_file.exists() else 0)
        try:
            env = lmdb.open(real, map_size=size, max_dbs=len(DB_NAMES) + 1,
                            subdir=True, sync=True, metasync=True, readahead=False,
                            max_readers=256)
        except lmdb.Error as exc:
            if _is_full(exc):
                raise StoreFullError(f"disk full: cannot create the store at {target} ({exc})"
                                     ) from None
            raise StoreError(f"cannot open store at {target}: {exc}") from None
        if create is None:
            try:
                _check_length(env, data_file, target)
                _check_foreign(env, target)
            except BaseException:
                env.close()
                raise
        try:
            store = cls(target, env)
        except lmdb.Error as exc:
            env.close()
            raise _store_error(exc, target) from None
        cls._open[real] = (env, 1)
        if create is not None:
            zdict = make_dictionary(create)

            def init(txn: lmdb.Transaction) -> None:
                txn.put(b"format", FORMAT, db=store.db["meta"])
                txn.put(b"zdict", zdict, db=store.db["meta"])

            try:
                store.write(init)
            except BaseException:
                store.close()
                raise
        else:
            found = store.read(lambda txn: txn.get(b"format", db=store.db["meta"]))
            if found != FORMAT:
                store.close()
                what = "no format row" if found is None else \
                    f"format {bytes(found).decode('ascii', 'replace')!r}"
                raise StoreError(
                    f"{target} is not a modelseal store of this version ({what}; this "
                    f"modelseal reads {FORMAT.decode()} only, and earlier formats lack "
                    f"checkpoint times and log binding): make a new store")
        return store._with_codec()

    def _with_codec(self) -> Store:
        """Load the entry dictionary kept in the store."""
        zdict = self.read(lambda txn: self.get(txn, "meta", b"zdict"))
        if zdict is None:
            self.close()
            raise StoreError(f"store is damaged: meta row zdict (the entry dictionary) is missing "
                             f"in {self.path}")
        self.codec = Codec(zdict)
        return self

    def close(self) -> None:
        """Release the environment (closed when its last user closes it)."""
        if self._closed:
            return
        self._closed = True
        real = str(self.path.resolve())
        env, count = self._open.get(real, (self.env, 1))
        if count <= 1:
            self._open.pop(real, None)
            env.close()
        else:
            self._open[real] = (env, count - 1)

    def write(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``fn`` in one write transaction and commit; return its result.

        If the map fills, the transaction is aborted, the map doubled, and ``fn``
        run again from scratch (it must keep no state of its own between runs).
        Any exception from ``fn`` aborts and propagates; LMDB failures become
        StoreError. The result is returned only after the commit succeeded.
        """
        while True:
            self.write_lock.acquire(WRITE_WAIT)
            try:
                with self.begin(write=True) as txn:
                    result = fn(txn)
                return result
            except lmdb.MapFullError:
                self._grow()
            except lmdb.Error as exc:
                raise self.error(exc) from None
            finally:
                self.write_lock.release()

    def error(self, exc: lmdb.Error) -> StoreError:
        """An LMDB failure on this store as a StoreError that says what happened."""
        return _store_error(exc, self.path)

    def begin(self, *, write: bool = False) -> lmdb.Transaction:
        """Begin a transaction, adopting a map that another process has grown."""
        for _ in range(8):
            try:
                return self.env.begin(write=write, buffers=False)
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)
        raise StoreError("the store's map keeps being resized by another process")

    def read(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``fn`` in a read transaction (a consistent snapshot)."""
        with self.reader() as txn:
            return fn(txn)

    @contextmanager
    def reader(self) -> Iterator[lmdb.Transaction]:
        """A read transaction as a context manager."""
        try:
            txn = self.begin()
        except lmdb.Error as exc:
            raise self.error(exc) from None
        try:
            yield txn
        except lmdb.Error as exc:
            raise self.error(exc) from None
        finally:
            txn.abort()

    def _grow(self) -> None:
        size = self.env.info()["map_size"]
        if size >= MAX_MAP:
            raise StoreLimitError("the store has reached its maximum size")
        self.env.set_mapsize(min(size * 2, MAX_MAP))

    def get(self, txn: lmdb.Transaction, db: str, key: bytes) -> bytes | None:
        """The value at ``key`` in ``db``, or None."""
        value = txn.get(key, db=self.db[db])
        return None if value is None else bytes(value)

    def need(self, txn: lmdb.Transaction, db: str, key: bytes) -> bytes:
        """The value at ``key`` in ``db``; StoreError if it is missing (a damaged store)."""
        value = txn.get(key, db=self.db[db])
        if value is None:
            raise StoreError(f"store is damaged: {db} has no row {key.hex()}")
        return bytes(value)

    def put_entry(self, txn: lmdb.Transaction, index: int, data: bytes) -> None:
        """Store entry ``index`` (compressed); entries are only ever appended."""
        self.put(txn, "entries", u64(index), self.codec.pack(data), append=True)

    def entry(self, txn: lmdb.Transaction, index: int) -> bytes:
        """The exact bytes of entry ``index``; StoreError if missing or damaged."""
        stored = self.need(txn, "entries", u64(index))
        try:
            return self.codec.unpack(stored)
        except DamagedEntry as exc:
            raise StoreError(f"store is damaged: entry {index} does not decompress ({exc})") \
                from None

    def put(self, txn: lmdb.Transaction, db: str, key: bytes, value: bytes, *,
            append: bool = False, overwrite: bool = True) -> None:
        """``txn.put`` that raises StoreError when py-lmdb reports False."""
        if not txn.put(key, value, db=self.db[db], append=append, overwrite=overwrite):
            raise StoreError(f"store refused a write to {db} (key exists or out of order)")


def _check_length(env: lmdb.Environment, data_file: Path, target: Path) -> None:
    """Refuse a data file shorter than the pages its own header uses (a copy cut short):
    reading such a page through the memory map would kill the process (SIGBUS)."""
    need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    if data_file.stat().st_size < need:
        raise StoreError(f"store at {target} is truncated: data.mdb holds "
                         f"{data_file.stat().st_size} bytes but its pages reach {need}; "
                         f"restore a complete copy")


def _is_full(exc: lmdb.Error) -> bool:
    """Whether an LMDB failure is a full disk (ENOSPC) or the file size limit (EFBIG)."""
    # py-lmdb gives no errno: its message is the C library's strerror text
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG) or any(
        text in str(exc) for text in (os.strerror(errno.ENOSPC), os.strerror(errno.EFBIG)))


def _store_error(exc: lmdb.Error, path: Path | None = None) -> StoreError:
    text = str(exc)
    if os.strerror(errno.ENOSPC) in text or getattr(exc, "errno", None) == errno.ENOSPC:
        return StoreFullError(f"disk full: the write was not stored ({text})")
    if os.strerror(errno.EFBIG) in text or getattr(exc, "errno", None) == errno.EFBIG:
        return StoreFullError(f"file size limit reached: the write was not stored ({text})")
    if "Input/output error" in text and path is not None:
        # LMDB reports a write that stopped short as EIO: most often the disk filled up
        # (or the file size limit was reached) in the middle of the commit
        cause = _short_write_cause(path)
        if cause is not None:
            return StoreFullError(f"{cause}: the write was not stored ({text})")
        return StoreError(f"I/O error (is the disk failing?): the write was not stored ({text})")
    return StoreError(f"store error: {text}")


def _check_foreign(env: lmdb.Environment, target: Path) -> None:
    """StoreError unless ``env`` has modelseal's named databases: another program's LMDB
    environment is refused before anything (a database of ours) is created in it."""
    try:
        with env.begin() as txn:
            present = [name for name in DB_NAMES if txn.get(name.encode()) is not None]
    except lmdb.Error as exc:
        raise StoreError(f"{target} is not a modelseal store ({exc})") from None
    if "meta" not in present:
        raise StoreError(f"{target} is not a modelseal store: it is an LMDB database without "
                         "modelseal's tables (another program's?)")
    if len(present) != len(DB_NAMES):
        raise StoreError(f"{target} is not a modelseal store of this version")


@contextmanager
def removed_on_failure(target: Path) -> Iterator[None]:
    """Run the creation of a store at ``target``; if it raises, remove what it made there,
    and only that: the store's files that did not exist before, then the directories that
    did not exist before, if they are empty. A retry then finds nothing in its way."""
    new_dirs: list[Path] = []
    here = target.absolute()
    while not here.exists() and here != here.parent:
        new_dirs.append(here)
        here = here.parent
    new_files = [target / name for name in ("data.mdb", "lock.mdb")
                 if not (target / name).exists()]
    try:
        yield
    except BaseException:
        for path in new_files:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        for directory in new_dirs:  # deepest first; a directory holding others' files stays
            try:
                directory.rmdir()
            except OSError:
                break
        raise


def _short_write_cause(path: Path) -> str | None:
    """Why a write to the store at ``path`` may have stopped short, if that can be seen."""
    try:
        fs = os.statvfs(path)
        if fs.f_bavail * fs.f_frsize < 1 << 20:
            return "disk full"
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY and (path / "data.mdb").stat().st_size > soft - (1 << 20):
            return "file size limit reached"
    except OSError:
        pass
    return None
