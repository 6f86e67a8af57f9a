"""The LMDB environment: named databases, write transactions that retry when
the map is full, and errors translated into StoreError.

One write is one LMDB write transaction: a caller's function runs inside it
and everything it put commits together or not at all. LMDB serialises
writers across processes; readers never block.
"""

from __future__ import annotations

import errno
import zlib
import os
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from .compress import Codec, make_dictionary

from .errors import StoreError

T = TypeVar("T")

FORMAT = b"modelseal-store 6"
INITIAL_MAP = 64 << 20
MAX_MAP = 1 << 40
MAX_KEY = 511  # LMDB's key size limit
MAX_NAME_BYTES = MAX_KEY - 9  # a model name is a key, and with 9 bytes more a versions key
DB_NAMES = (
    "meta", "entries", "nodes", "snapshots", "stmt_ids", "by_model", "by_time",
    "model_hashes", "models", "versions", "checkpoints",
)
_DUPSORT = {"by_model"}


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

    def __init__(self, path: Path, env: lmdb.Environment) -> None:
        self.path = path
        self.env = env
        self._closed = False
        self.codec = Codec(b"")
        self.db: dict[str, Any] = {
            name: env.open_db(name.encode(), dupsort=name in _DUPSORT, dupfixed=name in _DUPSORT)
            for name in DB_NAMES
        }

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: str | None = None) -> Store:
        """Open the store at directory ``path``; ``create=origin`` makes a new, empty
        one for the log ``origin``.

        Raises StoreError if it is missing (or, when creating, already holds a store).
        """
        target = Path(path)
        data_file = target / "data.mdb"
        if create:
            if data_file.exists():
                raise StoreError(f"{target} already holds a store")
            target.mkdir(parents=True, exist_ok=True)
        elif not data_file.exists():
            raise StoreError(f"no modelseal store at {target}")
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
            raise StoreError(f"cannot open store at {target}: {exc}") from None
        cls._open[real] = (env, 1)
        store = cls(target, env)
        if create is not None:
            zdict = make_dictionary(create)

            def init(txn: lmdb.Transaction) -> None:
                txn.put(b"format", FORMAT, db=store.db["meta"])
                txn.put(b"zdict", zdict, db=store.db["meta"])

            store.write(init)
        elif store.read(lambda txn: txn.get(b"format", db=store.db["meta"])) != FORMAT:
            store.close()
            raise StoreError(f"{target} is not a modelseal store of this version")
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
            try:
                with self.begin(write=True) as txn:
                    result = fn(txn)
                return result
            except lmdb.MapFullError:
                self._grow()
            except lmdb.Error as exc:
                raise self.error(exc) from None

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
            raise StoreError("the store has reached its maximum size")
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
        except zlib.error as exc:
            raise StoreError(f"store is damaged: entry {index} does not decompress ({exc})") \
                from None

    def put(self, txn: lmdb.Transaction, db: str, key: bytes, value: bytes, *,
            append: bool = False, overwrite: bool = True) -> None:
        """``txn.put`` that raises StoreError when py-lmdb reports False."""
        if not txn.put(key, value, db=self.db[db], append=append, overwrite=overwrite):
            raise StoreError(f"store refused a write to {db} (key exists or out of order)")


def _store_error(exc: lmdb.Error, path: Path | None = None) -> StoreError:
    text = str(exc)
    if "No space left" in text or getattr(exc, "errno", None) == errno.ENOSPC:
        return StoreError(f"disk full: the write was not stored ({text})")
    if "File too large" in text:
        return StoreError(f"file size limit reached: the write was not stored ({text})")
    if "Input/output error" in text and path is not None:
        # LMDB reports a write that stopped short as EIO: most often the disk filled up
        # (or the file size limit was reached) in the middle of the commit
        cause = _short_write_cause(path) or "I/O error (is the disk failing?)"
        return StoreError(f"{cause}: the write was not stored ({text})")
    return StoreError(f"store error: {text}")


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
