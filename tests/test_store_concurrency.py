"""The store under concurrency: opening never waits for a writer (another process holding
a write transaction; the store is opened read-only, and the process's first write swaps in a
writable environment without breaking its readers), readers in other threads survive the
store growing (the map is reserved once and never resized), and the per-process registry of
environments (one per file, shared by every handle in the process) is keyed by the file,
not by a path, and is safe to use from many threads.

Processes that must not share this one's LMDB environment are started with ``subprocess``
(never forked after opening)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import lmdb
import pytest

import verifier as v
from ledger import Ledger, StoreError
from ledger import _store as lstore
from ledger.errors import StoreLimitError
from ledger._store import Store
from tests.ledger_support import T0, Clock, Keys, make_ledger, register
from tests.reliability.common import REPO, Setup, build_store, wait_line

HOLD_S = 60  # how long the child holds its write transaction at most
READ_TIMEOUT_S = 15  # a read that waited for that transaction would take HOLD_S


def child(code: str, *args: Any) -> subprocess.Popen[bytes]:
    """``python -c code args`` from the repository root, with pipes on every stream and no
    MODELSEAL_* settings inherited."""
    env = {k: val for k, val in os.environ.items() if not k.startswith("MODELSEAL_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], timeout: float, send: bytes | None = None
           ) -> tuple[str, str]:
    """Wait for a child (killed after ``timeout`` s, failing the test), having sent it
    ``send`` and closed its stdin; its stdout, stderr."""
    try:
        out, err = proc.communicate(send, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child did not finish within {timeout} s"
                    f"\n--stdout--\n{out.decode()}\n--stderr--\n{err.decode()}")
    text, errs = out.decode(), err.decode()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{text}\n{errs}"
    return text, errs


# -- 1. a read-only open does not wait for the writer lock ---------------------------------

HOLD = f"""
import select, sys
from tests.reliability.common import open_writer
led = open_writer(sys.argv[1], sys.argv[2], sys.argv[3])
with led.batch():
    led.record("m0", "held", {{"n": 1}})
    print("holding", flush=True)
    select.select([sys.stdin], [], [], {HOLD_S})  # until the parent lets go
print("committed", led.size, flush=True)
led.close()
"""


class Holder:
    """A child process inside ``with ledger.batch():``: it holds the store's write
    transaction (LMDB's writer lock) until released, or for HOLD_S seconds."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.proc = child(HOLD, setup.path, setup.log_key_file, setup.key_files["w"])
        line = wait_line(self.proc, 60)
        if line != b"holding\n":
            self.proc.kill()
            _, err = self.proc.communicate()
            pytest.fail(f"the holder did not start: {line!r}\n{err.decode()}")
        self.started = time.monotonic()

    def still_holding(self) -> bool:
        return self.proc.poll() is None

    def release(self) -> int:
        """Let the batch commit; the store's size after it."""
        out, _ = finish(self.proc, 60, b"go\n")
        word, size = out.split()
        assert word == "committed"
        return int(size)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Holder]:
    h = Holder(build_store(tmp_path, writers=["w"], models=("m0", "m1")))
    try:
        yield h
    finally:
        if h.still_holding():
            h.proc.kill()
            h.proc.communicate()


READ = """
import json, sys
from ledger import Ledger
import verifier as v
with Ledger.open(sys.argv[1]) as led:
    bundle = led.export_bundle()
    v.verify_bundle(bundle, [v.VerifierKey.parse(sys.argv[2])])
    print(json.dumps({
        "size": led.size,
        "models": sorted(led.inventory_at()),
        "history": len(led.history("m0")),
        "entry0": len(led.entry(0)),
        "proof": len(led.prove_inclusion(0).hashes),
        "checkpoint": led.checkpoint().decode(),
        "audit": led.audit(),
        "bundle": len(bundle),
    }))
"""


def test_read_only_open_and_reads_do_not_wait_for_a_writer(holder: Holder) -> None:
    """Found in use: ``Ledger.open(path)`` (read-only) hung while another process was inside
    ``with ledger.batch():``, because opening the named databases began a write
    transaction. A reader in a fresh process now opens and reads everything while the
    batch is open, and sees the store as it was before the batch."""
    setup = holder.setup
    out, _ = finish(child(READ, setup.path, setup.log_vkey), READ_TIMEOUT_S)
    assert holder.still_holding(), "the batch closed before the reader finished"
    got = json.loads(out)
    assert got["size"] == got["audit"] == setup.base_size  # the open batch is not visible
    assert got["models"] == ["m0", "m1"] and got["history"] == 1 and got["entry0"] > 0
    assert got["bundle"] > 0
    assert holder.release() == setup.base_size + 1


def cli_run(*args: Any) -> subprocess.Popen[bytes]:
    return child("from cli.main import main; main()", *args)


def test_cli_reads_do_not_wait_for_a_writer(holder: Holder, tmp_path: Path) -> None:
    """`modelseal inventory`, `audit`, `export` and `history` (no log key: read-only) finish
    while another process holds the store's write transaction."""
    store = holder.setup.path
    base = holder.setup.base_size
    bundle = tmp_path / "bundle.json"
    for args, check in [
        (("inventory", "--json"),
         lambda doc: [m["name"] for m in doc["models"]] == ["m0", "m1"]),
        (("audit", "--json"), lambda doc: doc == {"ok": True, "entries": base}),
        (("export", "-o", bundle, "--json"), lambda doc: doc["bytes"] > 0),
        (("history", "m0", "--json"), lambda doc: len(doc) == 1),
    ]:
        out, _ = finish(cli_run("--store", store, *args), READ_TIMEOUT_S)
        assert check(json.loads(out)), (args, out)
        assert holder.still_holding(), f"the batch closed before {args} finished"
    v.verify_bundle(bundle.read_bytes(), holder.setup.trusted)
    assert holder.release() == base + 1


class RecordingEnv:
    """A stand-in for an lmdb.Environment that notes every write transaction begun, and
    every named database opened in a writable environment without a transaction (py-lmdb
    then begins a write transaction of its own)."""

    def __init__(self, env: lmdb.Environment, readonly: bool, log: list[str]) -> None:
        self._env, self._readonly, self._log = env, readonly, log

    def begin(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("write") or args[1:2] == (True,):
            self._log.append("begin(write=True)")
        return self._env.begin(*args, **kwargs)

    def open_db(self, key: Any = None, txn: Any = None, **kwargs: Any) -> Any:
        if txn is None and not self._readonly:
            self._log.append(f"open_db({key!r}) without a transaction")
        return self._env.open_db(key, txn=txn, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)


@pytest.fixture
def lazy_swap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ledger.open with the log key switches to writable at once (so that its first write
    never makes readers wait for another process); these tests exercise the store's own
    switch at the first write, which any other user of Store still gets."""
    monkeypatch.setattr(lstore.Store, "make_writable", lambda self: None)



def test_opening_an_existing_store_begins_no_write_transaction(
        path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch, lazy_swap: None) -> None:
    """Creating writes (the format row, the databases); opening never does, and neither
    do reads. The first write of a process that opened the store does."""
    make_ledger(path, keys).close()
    log: list[str] = []
    real_open = lmdb.open
    monkeypatch.setattr(lstore.lmdb, "open", lambda *a, **kw: RecordingEnv(
        real_open(*a, **kw), bool(kw.get("readonly")), log))
    with Ledger.open(path, log_key=keys.log, signer=keys.admin, clock=Clock()) as led:
        assert led.size == 1 and led.inventory_at() == {} and led.audit() == 1
        with Ledger.open(path) as again:  # shares the environment
            assert again.size == 1
        assert log == []
        register(led, "m")  # the check can fail
        assert "begin(write=True)" in log
    assert Store.open_count(path) == 0


def test_the_first_write_waits_for_this_process_readers_and_breaks_none(
        path: Path, keys: Keys, lazy_swap: None) -> None:
    """A store opened with its log key is read-only until the process writes; the first
    write swaps in a writable environment once no read of the process is open (new reads
    wait meanwhile). Two threads reading without pause see no error."""
    clock = Clock()
    with make_ledger(path, keys, clock) as led:
        register(led, "m")
    led = Ledger.open(path, log_key=keys.log, signer=keys.admin, clock=clock)
    assert led._store._shared.readonly
    stop = threading.Event()
    errors: list[str] = []
    reads = [0, 0]

    def reader(slot: int) -> None:
        while not stop.is_set():
            try:
                hist = led.history("m")
                assert "m" in led.inventory_at() and led.entry(hist[-1].snapshot_hash)
            except Exception as exc:  # any failure is the finding
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            reads[slot] += 1

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        while min(reads) < 5 and not errors:
            time.sleep(0.01)
        for i in range(20):
            led.record("m", "e", {"i": i})
        while min(reads) < 50 and not errors:
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert errors == [], errors
    assert not led._store._shared.readonly
    assert led.size == 22 and led.audit() == 22
    led.close()


def test_a_thread_that_reads_cannot_start_the_first_write(path: Path, keys: Keys, lazy_swap: None) -> None:
    """The swap waits for every open read of the process; one of the writing thread's own
    would never end: that is a StoreError, not a hang."""
    make_ledger(path, keys).close()
    with Ledger.open(path, log_key=keys.log, signer=keys.admin, clock=Clock()) as led:
        with led._store.reader():
            with pytest.raises(StoreError, match="finish the read first"):
                register(led, "m")
        assert led.size == 1
        register(led, "m")
        assert led.size == 2 and led.audit() == 2


def test_a_failed_swap_leaves_the_store_readable(
        path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch, lazy_swap: None) -> None:
    """If the writable environment cannot be opened, the write raises StoreError and the
    read-only environment is back: reads go on, and a later write can succeed."""
    make_ledger(path, keys).close()
    real = lstore._open_env

    def no_writes(target: Path, *, readonly: bool) -> lmdb.Environment:
        if not readonly:
            raise StoreError(f"cannot open store at {target}: Permission denied")
        return real(target, readonly=readonly)

    monkeypatch.setattr(lstore, "_open_env", no_writes)
    with Ledger.open(path, log_key=keys.log, signer=keys.admin, clock=Clock()) as led:
        with pytest.raises(StoreError, match="Permission denied"):
            register(led, "m")
        assert led.size == 1 and led.audit() == 1 and led._store._shared.readonly
        monkeypatch.setattr(lstore, "_open_env", real)
        register(led, "m")
        assert led.size == 2 and led.audit() == 2


def test_an_existing_file_without_every_table_is_refused(tmp_path: Path) -> None:
    """A store missing one of its databases is refused with StoreError, not an LMDB
    error, and left unchanged (nothing is created in it)."""
    target = tmp_path / "s"
    env = lmdb.open(str(target), map_size=1 << 20, max_dbs=len(lstore.DB_NAMES) + 1)
    with env.begin(write=True) as txn:
        for name in lstore.DB_NAMES[:-1]:
            env.open_db(name.encode(), txn=txn)
        txn.put(b"format", lstore.FORMAT, db=env.open_db(b"meta", txn=txn))
    env.close()
    before = (target / "data.mdb").read_bytes()
    with pytest.raises(StoreError, match="not a modelseal store of this version"):
        Ledger.open(target)
    assert (target / "data.mdb").read_bytes() == before
    assert Store.open_count(target) == 0


# -- 2. the map is reserved once and never resized ---------------------------------------

PAYLOAD_BYTES = 44 << 10  # random, so it does not compress: ~45 KiB stored per entry


def blob() -> str:
    """44 KiB of random bytes in base64 (an entry holds at most 65,535 bytes)."""
    return base64.b64encode(os.urandom(PAYLOAD_BYTES)).decode()


def test_readers_in_other_threads_survive_the_store_growing(tmp_path: Path) -> None:
    """Found in use: when a write had to grow the map (``set_mapsize``), every transaction
    then open in other threads was invalidated ("Attempt to operate on closed/deleted/
    dropped object"). One thread now writes past the old 64 MiB initial map, one synced
    commit per write, while two threads read on the same Ledger: no reader error."""
    keys = Keys()
    led = make_ledger(tmp_path / "s", keys)
    register(led, "m")
    map_size = led._store.env.info()["map_size"]
    stop = threading.Event()
    errors: list[str] = []
    reads = [0, 0]

    def reader(slot: int) -> None:
        while not stop.is_set():
            try:
                inv = led.inventory_at()
                hist = led.history("m")
                assert "m" in inv and led.entry(hist[-1].snapshot_hash)
                assert len(hist) >= 1
            except Exception as exc:  # any failure is the finding
                errors.append(f"{type(exc).__name__}: {exc}")
                if len(errors) > 20:
                    return
            reads[slot] += 1

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    target = 68 << 20
    written = 0
    started = time.monotonic()
    try:
        while (tmp_path / "s" / "data.mdb").stat().st_size < target and not errors:
            led.record("m", "blob", {"i": written, "b": blob()})
            written += 1
            assert time.monotonic() - started < 600, "too slow to reach 68 MiB"
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert errors == [], errors[:5]
    assert min(reads) > 10, reads
    assert (tmp_path / "s" / "data.mdb").stat().st_size >= target
    assert led._store.env.info()["map_size"] == map_size == lstore.MAX_MAP
    assert led.size == written + 2
    assert [s.index for s in led.history("m")] == list(range(1, written + 2))
    led.close()


def test_a_fresh_store_is_small_although_its_map_is_reserved(path: Path, keys: Keys) -> None:
    """The map is address space only: LMDB (without writemap) does not size the file to
    it."""
    with make_ledger(path, keys) as led:
        assert led._store.env.info()["map_size"] == lstore.MAX_MAP == 1 << 40
        register(led, "m")
        size = (path / "data.mdb").stat().st_size
    assert size < 1 << 20, size
    with Ledger.open(path) as ro:
        assert ro._store.env.info()["map_size"] == lstore.MAX_MAP
    assert (path / "data.mdb").stat().st_size == size


LIMITED = """
import json, resource, sys
from ledger import Ledger, StoreError
from ledger._store import Store
from tests.ledger_support import Keys, make_ledger, register
limit = int(sys.argv[2])
if limit < 0:  # just above what the process uses now: not even the floor fits
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    limit = vm + (16 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
try:
    keys = Keys()
    with make_ledger(__import__("pathlib").Path(sys.argv[1]), keys) as led:
        register(led, "m")
        size = led._store.env.info()["map_size"]
    with Ledger.open(sys.argv[1]) as ro:
        print(json.dumps({"map": size, "reopened": ro._store.env.info()["map_size"],
                          "models": sorted(ro.inventory_at()), "audit": ro.audit()}))
except StoreError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_the_map_falls_back_when_address_space_is_limited(tmp_path: Path) -> None:
    """Under RLIMIT_AS = 4 GiB a 1 TiB map cannot be made: the store halves it until it
    fits, and works."""
    out, _ = finish(child(LIMITED, tmp_path / "s", 4 << 30), 60)
    got = json.loads(out)
    assert "error" not in got, got
    assert 1 << 30 <= got["map"] < 4 << 30 and got["reopened"] == got["map"], got
    assert got["models"] == ["m"] and got["audit"] == 2


def test_no_room_for_the_smallest_map_is_a_store_error(tmp_path: Path) -> None:
    """When not even the 64 MiB floor can be mapped, creating raises StoreError saying so,
    and leaves nothing behind."""
    out, _ = finish(child(LIMITED, tmp_path / "s", -1), 60)
    got = json.loads(out)
    assert "address space" in got.get("error", ""), got
    assert not (tmp_path / "s").exists()


def test_a_full_map_refuses_the_write_and_stores_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a map of 2 MiB (a test setting), a write that does not fit raises
    StoreLimitError; nothing of it is stored, and the store reads, audits and, reopened
    with the full map, takes writes again."""
    monkeypatch.setattr(lstore, "MAX_MAP", 2 << 20)
    keys = Keys()
    with make_ledger(tmp_path / "s", keys) as led:
        register(led, "m")
        assert led._store.env.info()["map_size"] == 2 << 20
        for _ in range(200):
            before = (led.size, led.checkpoint())
            try:
                led.record("m", "blob", {"b": blob()})
            except StoreLimitError as exc:
                assert "maximum map size" in str(exc) and "not stored" in str(exc)
                break
        else:
            pytest.fail("200 writes of 45 KiB fitted in a 2 MiB map")
        assert (led.size, led.checkpoint()) == before
        assert led.audit() == led.size
        assert led._store.env.info()["map_size"] == 2 << 20
    monkeypatch.undo()
    with Ledger.open(tmp_path / "s", log_key=keys.log, signer=keys.admin,
                     clock=Clock(T0 + timedelta(days=1))) as led:
        assert (led.size, led.checkpoint()) == before
        led.record("m", "blob", {"b": blob()})
        assert led.audit() == led.size == before[0] + 1


SMALL_MAP = """
import sys
from ledger import Ledger, StoreError
from ledger import _store as lstore
lstore.MAX_MAP = 1 << 20  # as if the address space allowed no more
with Ledger.open(sys.argv[1]) as led:
    print(led.size, flush=True)
    sys.stdin.readline()  # the parent writes past this process's map meanwhile
    try:
        print("read", led.size)
    except StoreError as exc:
        print("error", exc)
"""


def test_a_store_grown_past_this_process_map_is_a_clear_error(tmp_path: Path) -> None:
    """A process whose map is smaller than what another process has since written cannot
    read the new pages; it gets a StoreError saying so, rather than resizing the map
    under its other threads' open transactions."""
    keys = Keys()
    with make_ledger(tmp_path / "s", keys) as led:
        register(led, "m")
        small = child(SMALL_MAP, tmp_path / "s")
        assert wait_line(small, 60) == f"{led.size}\n".encode()
        for _ in range(60):  # ~2.7 MiB
            led.record("m", "blob", {"b": blob()})
        out, _ = finish(small, 60, b"go\n")
    assert out.startswith("error ") and "map" in out and "address space" in out, out


# -- 3. the registry of environments ------------------------------------------------------


def test_closing_after_chdir_leaves_the_other_handle_open(
        tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in use: two Ledgers opened on a relative path; after ``os.chdir`` closing one
    looked the environment up under another path, took itself for its last user and closed
    the environment under the other."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    clock = Clock()
    make_ledger(Path("s"), keys, clock).close()
    first = Ledger.open("s", log_key=keys.log, signer=keys.admin, clock=clock)
    second = Ledger.open("s")
    monkeypatch.chdir(tmp_path / "b")
    second.close()
    assert first.size == 1
    register(first, "m")
    assert [s.index for s in first.history("m")] == [1]
    assert first.audit() == 2
    first.close()
    assert Store.open_count(tmp_path / "a" / "s") == 0


def test_two_paths_to_one_store_share_its_environment(tmp_path: Path, keys: Keys) -> None:
    """A store reached by two paths (here a symlink) is one environment in the process."""
    make_ledger(tmp_path / "s", keys).close()
    (tmp_path / "link").symlink_to(tmp_path / "s")
    a = Ledger.open(tmp_path / "s")
    b = Ledger.open(tmp_path / "link")
    assert a._store.env is b._store.env
    assert Store.open_count(tmp_path / "link") == 2
    a.close()
    assert b.size == 1
    b.close()
    assert Store.open_count(tmp_path / "s") == 0


MANY_THREADS = """
import json, sys, threading, time
from pathlib import Path
from ledger import Ledger
from ledger._store import Store
from tests.ledger_support import Clock, Keys, make_ledger, register

base = Path(sys.argv[1])
kept_path, other_path = base / "kept", base / "other"
make_ledger(other_path, Keys()).close()
kept = make_ledger(kept_path, Keys(), Clock())
register(kept, "m")
errors, rounds = [], 50
sys.setswitchinterval(1e-5)  # switch threads often: races show

def worker(seed):
    try:
        for i in range(rounds):
            target = kept_path if (seed + i) % 2 else other_path
            with Ledger.open(target) as led:
                assert led.size >= 1
                assert led.checkpoint()
    except Exception as exc:  # any failure is the finding
        errors.append(f"{type(exc).__name__}: {exc}")

threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
written = 0
while any(t.is_alive() for t in threads):
    kept.record("m", "tick", {"i": written})
    written += 1
    assert kept.history("m")[-1].payload == {"i": written - 1}
for t in threads:
    t.join()
counts = [Store.open_count(other_path), Store.open_count(kept_path)]
audit = kept.audit() == kept.size == written + 2
kept.close()
counts.append(Store.open_count(kept_path))
with Ledger.open(other_path) as led:
    audit = audit and led.audit() == 1
print(json.dumps({"errors": errors[:5], "counts": counts, "audit": audit,
                  "written": written}))
"""


def test_open_and_close_from_many_threads(tmp_path: Path) -> None:
    """Eight threads open and close handles on two stores (one kept open meanwhile by a
    Ledger that keeps writing, one with no other user, so its environment itself is opened
    and closed again and again): every handle works, the kept Ledger is never closed under
    its user, and when every handle is closed no environment is left open. (In a child
    process: unguarded, the same races left threads stuck in LMDB.)"""
    out, _ = finish(child(MANY_THREADS, tmp_path), 180)
    got = json.loads(out)
    assert got["errors"] == [], got
    assert got["counts"] == [0, 1, 0] and got["audit"] and got["written"] > 0, got


def test_open_count_follows_the_handles(tmp_path: Path, keys: Keys) -> None:
    """``Store.open_count``: the handles in this process on a store, 0 when none."""
    assert Store.open_count(tmp_path / "s") == 0  # no store there at all
    led = make_ledger(tmp_path / "s", keys)
    assert Store.open_count(tmp_path / "s") == 1
    with Ledger.open(tmp_path / "s") as other:
        assert Store.open_count(tmp_path / "s") == 2
        assert other.size == 1
    assert Store.open_count(tmp_path / "s") == 1
    led.close()
    led.close()  # closing twice counts once
    assert Store.open_count(tmp_path / "s") == 0

