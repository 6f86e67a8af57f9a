"""The LMDB environment: named databases, write transactions, and errors
translated into StoreError.

One write is one LMDB write transaction: a caller's function runs inside it
and everything it put commits together or not at all. LMDB serialises
writers across processes; readers never block.

Opening an existing store never waits for a writer. Its named databases must
be opened once per environment, and py-lmdb publishes a database handle to the
environment only from a transaction that LMDB commits: a write transaction
(which waits for any other process's writer), or a read-only one in a read-only
environment (py-lmdb resets, rather than commits, a read-only transaction of a
writable environment, and the handles opened in it are lost). So an existing
store is opened read-only; the first write of the process makes it writable
(see ``_Env.make_writable``), and only that write waits for the writer lock.

The memory map is reserved once, when the environment opens, and never
resized: resizing it invalidates every transaction then open in the process,
including other threads' reads. MAX_MAP (1 TiB) is address space only; the
file holds just the pages in use. Where the address space is limited
(RLIMIT_AS), the map is halved until it can be made, down to MIN_MAP. A write
that does not fit raises StoreLimitError and stores nothing.
"""

from __future__ import annotations

import errno
import os
import resource
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from ._compress import Codec, DamagedEntry, make_dictionary

from ._writelock import WriteLock
from .errors import StoreError, StoreFullError, StoreLimitError

T = TypeVar("T")

FORMAT = b"modelseal-store 7"
MAX_MAP = 1 << 40  # the map reserved at open: address space, not disk
MIN_MAP = 64 << 20  # the smallest map accepted when the address space is limited
WRITE_WAIT = 60.0  # seconds a write of this process waits for another one of it
MAX_KEY = 511  # LMDB's key size limit
MAX_NAME_BYTES = MAX_KEY - 9  # a model name is a key, and with 9 bytes more a versions key
DB_NAMES = (
    "meta", "entries", "nodes", "snapshots", "stmt_ids", "by_time",
    "model_hashes", "models", "versions", "checkpoints",
)
LATER_DB_NAMES = ("cosigned",)
"""Databases added to format 7 later: a new store has them, a writer creates them in an
older store when it opens it writable, and a reader that finds one missing gets None as
its handle and reads it as empty (decisions §19)."""

FileId = tuple[int, int]  # (st_dev, st_ino) of a store's data.mdb


def u64(n: int) -> bytes:
    """8-byte big-endian: keys sort in numeric order."""
    return n.to_bytes(8, "big")


def from_u64(b: bytes) -> int:
    """Inverse of u64."""
    return int.from_bytes(b, "big")


class _Env:
    """The one LMDB environment of this process on a store's file (LMDB allows one per
    file per process), and what every handle on it shares.

    While it is read-only, read transactions taken through ``Store.reader`` are counted
    (``enter_read``/``leave_read``), so that ``make_writable`` can swap the environment
    when none is open.
    """

    def __init__(self, path: Path, file_id: FileId, env: lmdb.Environment,
                 db: dict[str, Any], readonly: bool) -> None:
        self.path = path  # absolute, as opened: a later os.chdir does not change it
        self.file_id = file_id
        self.env = env
        self.db = db
        self.readonly = readonly
        self.users = 1  # open Store handles; guarded by Store._lock
        self.write_lock = WriteLock()  # taken before any write transaction of the process
        self.mutex = threading.Lock()
        self.gate = threading.Condition(self.mutex)
        self.reading = 0  # read transactions open through Store.reader while read-only
        self.swapping = False
        self.local = threading.local()  # .reading: this thread's share of ``reading``

    def make_writable(self) -> None:
        """Replace the read-only environment by a writable one: wait until no read
        transaction of this process is open on it (new ones wait meanwhile), close it,
        open the file writable and its databases in a write transaction (which waits
        for any other process's writer). If that fails, the read-only environment is
        opened again and the failure raised as StoreError."""
        if not self.readonly:
            return
        if getattr(self.local, "reading", 0):
            raise StoreError("this thread is reading the store, which this process opened "
                             "read-only, so it cannot start its first write now: finish the "
                             "read first")
        with self.gate:
            while self.swapping:
                self.gate.wait()
            if not self.readonly:
                return
            self.swapping = True
        try:
            with self.gate:
                while self.reading:
                    self.gate.wait()
            self._swap()  # no lock held: it may wait for another process's writer
        finally:
            with self.gate:
                self.swapping = False
                self.gate.notify_all()

    def _swap(self) -> None:
        self.env.close()
        try:
            env = _open_env(self.path, readonly=False)
            try:
                db = _open_tables(env, self.path, self.file_id, write=True)
            except BaseException:
                env.close()
                raise
        except BaseException:
            # reads go on in a read-only environment, as before
            self.env = _open_env(self.path, readonly=True)
            self.db = _open_tables(self.env, self.path, self.file_id, write=False)
            raise
        self.env, self.db, self.readonly = env, db, False

    def enter_read(self) -> bool:
        """Count a read transaction about to begin, if the environment is read-only (then
        True: call ``leave_read`` when it ends). Waits while the environment is swapped."""
        if not self.readonly:
            return False
        with self.mutex:
            while self.swapping:
                self.gate.wait()
            self.reading += 1
        local = self.local
        local.reading = getattr(local, "reading", 0) + 1
        return True

    def leave_read(self) -> None:
        """A read transaction counted by ``enter_read`` has ended."""
        self.local.reading -= 1
        with self.mutex:
            self.reading -= 1
            if not self.reading and self.swapping:
                self.gate.notify_all()


class Store:
    """An open LMDB environment with modelseal's databases.

    LMDB allows one environment per file per process, so stores opened twice
    in one process share it (counted; the last close closes it). The share is
    keyed by the data file's identity (device and inode), taken at open: a
    relative path that means another directory after ``os.chdir``, or a second
    path to the same file, finds the same entry. Opening and closing are safe
    from any thread.

    Read transactions are taken with ``reader``/``read``, write transactions with
    ``write`` or ``begin(write=True)``.
    """

    _open: dict[FileId, _Env] = {}
    _lock = threading.RLock()

    def __init__(self, path: Path, shared: _Env) -> None:
        self.path = path
        self.codec = Codec(b"")
        self._shared = shared
        self._closed = False

    @property
    def env(self) -> lmdb.Environment:
        """The LMDB environment (replaced once if the process opened the store read-only
        and then writes: do not keep it)."""
        return self._shared.env

    @property
    def write_lock(self) -> WriteLock:
        """Taken (with a timeout) before any write transaction of this process on the
        store: see ``ledger._writelock``."""
        return self._shared.write_lock

    @property
    def db(self) -> dict[str, Any]:
        """The named databases' handles in ``env``."""
        return self._shared.db

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: str | None = None) -> Store:
        """Open the store at directory ``path``; ``create=origin`` makes a new, empty
        one for the log ``origin``.

        Raises StoreError if it is missing, is another program's LMDB environment (or, when
        creating, already holds a store). Creating cleans up after itself: if it fails
        (e.g. StoreFullError on a full disk), the files and directories it made are removed
        and a retry can succeed. Opening an existing store begins no write transaction, so
        it never waits for a writer.
        """
        target = Path(path)
        data_file = target / "data.mdb"
        if not create:
            with cls._lock:
                store = cls._open_existing(target, data_file)
            return store._with_codec()
        with cls._lock:
            if data_file.exists():
                raise StoreError(f"{target} already holds a store")
            with removed_on_failure(target):
                target.mkdir(parents=True, exist_ok=True)
                return cls._open_new(target, data_file, create)._with_codec()

    @classmethod
    def open_count(cls, path: str | os.PathLike[str]) -> int:
        """How many handles of this process have the store at ``path`` open (0 if none)."""
        try:
            file_id = _file_id(Path(path) / "data.mdb")
        except OSError:
            return 0
        with cls._lock:
            shared = cls._open.get(file_id)
            return 0 if shared is None else shared.users

    @classmethod
    def _open_existing(cls, target: Path, data_file: Path) -> Store:
        try:
            file_id = _file_id(data_file)
        except (FileNotFoundError, NotADirectoryError):
            raise StoreError(f"no modelseal store at {target}") from None
        except OSError as exc:
            raise StoreError(f"cannot open store at {target}: {exc}") from None
        shared = cls._open.get(file_id)
        if shared is not None:
            shared.users += 1
            return cls(target, shared)
        where = target.absolute()
        env = _open_env(where, readonly=True)
        try:
            _check_length(env, data_file, target)
            _check_foreign(env, target)
            db = _open_tables(env, where, file_id, write=False)
        except BaseException:
            env.close()
            raise
        shared = cls._open[file_id] = _Env(where, file_id, env, db, readonly=True)
        return cls(target, shared)

    @classmethod
    def _open_new(cls, target: Path, data_file: Path, origin: str) -> Store:
        where = target.absolute()
        env = _open_env(where, readonly=False)
        try:
            db = _create_tables(env, target, origin)
            file_id = _file_id(data_file)
        except OSError as exc:
            env.close()
            raise StoreError(f"cannot create the store at {target}: {exc}") from None
        except BaseException:
            env.close()
            raise
        shared = cls._open[file_id] = _Env(where, file_id, env, db, readonly=False)
        return cls(target, shared)

    def _with_codec(self) -> Store:
        """Load the entry dictionary kept in the store."""
        try:
            zdict = self.read(lambda txn: self.get(txn, "meta", b"zdict"))
        except BaseException:
            self.close()
            raise
        if zdict is None:
            self.close()
            raise StoreError(f"store is damaged: meta row zdict (the entry dictionary) is missing "
                             f"in {self.path}")
        self.codec = Codec(zdict)
        return self

    def close(self) -> None:
        """Release the environment (closed when its last user closes it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            shared = self._shared
            shared.users -= 1
            if shared.users == 0:
                if self._open.get(shared.file_id) is shared:
                    del self._open[shared.file_id]
                shared.env.close()

    def write(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``fn`` in one write transaction and commit; return its result.

        Any exception from ``fn`` aborts and propagates; LMDB failures become
        StoreError (a full map StoreLimitError). The result is returned only after
        the commit succeeded.
        """
        try:
            self.write_lock.acquire(WRITE_WAIT)
            with self.begin(write=True) as txn:
                result = fn(txn)
            return result
        except lmdb.Error as exc:
            raise self.error(exc) from None
        finally:
            self.write_lock.release_if_mine()

    def error(self, exc: lmdb.Error) -> StoreError:
        """An LMDB failure on this store as a StoreError that says what happened."""
        return _store_error(exc, self.path, self._shared.env)

    def begin(self, *, write: bool = False) -> lmdb.Transaction:
        """Begin a transaction (for reads, use ``reader``: it is counted, see ``_Env``).
        A write makes the environment writable first if the process opened the store
        read-only. StoreError if another process has written past this process's map
        (possible only when the address space allowed a smaller one)."""
        if write:
            self._shared.make_writable()
        try:
            return self._shared.env.begin(write=write, buffers=False)
        except lmdb.MapResizedError:
            raise _resized_error(self.path, self._shared.env) from None

    def make_writable(self) -> None:
        """Switch this process's environment on the store to writable now (a writer does
        at open, so that its first write does not make this process's readers wait while
        it waits for another process's writer). Waits for the store's writer lock."""
        self._shared.make_writable()

    def read(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``fn`` in a read transaction (a consistent snapshot)."""
        with self.reader() as txn:
            return fn(txn)

    @contextmanager
    def reader(self) -> Iterator[lmdb.Transaction]:
        """A read transaction as a context manager."""
        shared = self._shared
        counted = shared.enter_read()
        try:
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
        finally:
            if counted:
                shared.leave_read()

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


def _file_id(data_file: Path) -> FileId:
    """The identity of a store's data file: the same for every path that reaches it."""
    st = data_file.stat()
    return st.st_dev, st.st_ino


def _open_env(target: Path, *, readonly: bool) -> lmdb.Environment:
    """Open the environment at ``target`` with the largest map this process can make:
    MAX_MAP, halved while the address space refuses it (RLIMIT_AS), down to MIN_MAP."""
    size = MAX_MAP
    while True:
        try:
            return lmdb.open(str(target), map_size=size,
                             max_dbs=len(DB_NAMES) + len(LATER_DB_NAMES) + 1,
                             subdir=True, readonly=readonly, sync=True, metasync=True,
                             readahead=False, max_readers=256)
        except lmdb.Error as exc:
            if _is_full(exc):
                raise StoreFullError(f"disk full: cannot create the store at {target} ({exc})"
                                     ) from None
            if not _is_no_memory(exc):
                raise StoreError(f"cannot open store at {target}: {exc}") from None
            if size <= MIN_MAP:
                raise StoreError(
                    f"cannot open store at {target}: not even a {size >> 20} MiB memory map "
                    f"fits in this process's address space ({exc}); raise its limit "
                    f"(ulimit -v)") from None
            size = max(size // 2, MIN_MAP)


def _is_no_memory(exc: lmdb.Error) -> bool:
    """Whether an LMDB failure is ENOMEM: the memory map did not fit."""
    return isinstance(exc, lmdb.MemoryError) or getattr(exc, "errno", None) == errno.ENOMEM \
        or os.strerror(errno.ENOMEM) in str(exc)


def _create_tables(env: lmdb.Environment, target: Path, origin: str) -> dict[str, Any]:
    """Create every named database and the format and dictionary rows, in one write
    transaction; the databases' handles."""
    try:
        with env.begin(write=True, buffers=False) as txn:
            db = {name: env.open_db(name.encode(), txn=txn, create=True)
                  for name in DB_NAMES + LATER_DB_NAMES}
            txn.put(b"format", FORMAT, db=db["meta"])
            txn.put(b"zdict", make_dictionary(origin), db=db["meta"])
    except lmdb.Error as exc:
        raise _store_error(exc, target, env) from None
    return db


def _open_tables(env: lmdb.Environment, target: Path, file_id: FileId, *,
                 write: bool) -> dict[str, Any]:
    """The handles of an existing store's named databases; StoreError unless its format is
    this one, or if ``target`` is no longer the file ``file_id``.

    In a read-only environment they are opened in a read-only transaction that LMDB
    commits (py-lmdb does so for a read-only environment), so this never waits for a
    writer; in a writable one (``write``), in a write transaction, which does."""
    try:
        if write:
            with env.begin(write=True, buffers=False) as txn:
                db = {name: env.open_db(name.encode(), txn=txn, create=False)
                      for name in DB_NAMES}
                db.update({name: env.open_db(name.encode(), txn=txn, create=True)
                           for name in LATER_DB_NAMES})
        else:
            db = {name: env.open_db(name.encode(), create=False) for name in DB_NAMES}
            db.update({name: _open_later(env, name) for name in LATER_DB_NAMES})
        with env.begin(buffers=False) as txn:
            found = txn.get(b"format", db=db["meta"])
    except lmdb.MapResizedError:
        raise _resized_error(target, env) from None
    except lmdb.NotFoundError as exc:
        raise StoreError(f"{target} is not a modelseal store of this version ({exc})") from None
    except lmdb.Error as exc:
        raise _store_error(exc, target, env) from None
    try:
        same = _file_id(target / "data.mdb") == file_id
    except OSError:
        same = False
    if not same:
        raise StoreError(f"the store at {target} was moved or replaced while it was opened")
    if found != FORMAT:
        what = "no format row" if found is None else \
            f"format {bytes(found).decode('ascii', 'replace')!r}"
        raise StoreError(
            f"{target} is not a modelseal store of this version ({what}; this "
            f"modelseal reads {FORMAT.decode()} only, and earlier formats lack "
            f"checkpoint times and log binding): make a new store")
    return db


def _open_later(env: lmdb.Environment, name: str) -> Any:
    """The handle of a database added to the format later, or None if this (read-only)
    environment's store does not have it yet: readers take that as empty."""
    with env.begin(buffers=False) as txn:
        present = txn.get(name.encode()) is not None
    return env.open_db(name.encode(), create=False) if present else None


def _map_full_error(env: lmdb.Environment | None) -> StoreLimitError:
    size = "" if env is None else f" ({_map_size(env) >> 20} MiB)"
    return StoreLimitError(f"the store has reached its maximum map size{size}: the write was "
                           f"not stored")


def _resized_error(target: Path, env: lmdb.Environment) -> StoreError:
    return StoreError(
        f"another process has written the store at {target} past this process's memory map "
        f"({_map_size(env) >> 20} MiB, all the address space it could reserve when it opened "
        f"the store): nothing was read or written; close every handle on the store and "
        f"reopen it with more address space (ulimit -v)")


def _map_size(env: lmdb.Environment) -> int:
    try:
        return int(env.info()["map_size"])
    except lmdb.Error:
        return 0


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


def _store_error(exc: lmdb.Error, path: Path | None = None,
                 env: lmdb.Environment | None = None) -> StoreError:
    if isinstance(exc, lmdb.MapFullError):
        return _map_full_error(env)
    if isinstance(exc, lmdb.MapResizedError) and path is not None and env is not None:
        return _resized_error(path, env)
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
