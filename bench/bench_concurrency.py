"""Concurrency benchmark: prints one JSON object (progress on stderr).

What it measures, each run on a fresh store holding --models registered models:
- T threads (--threads, default 1,4,16,64) sharing ONE modelseal ``Ledger`` (opened with
  the log key and a signer), each calling ``ledger.record(model, "evaluated", payload)``
  one write at a time on a model drawn at random (seeded): acknowledged writes/s over a
  fixed wall-clock window (--seconds) or a fixed count per thread (--writes), and the
  latency of each call (p50/p99/max, ms);
- --processes P processes, each opening its own ``Ledger`` on one store, the same way;
- the peer, model-ledger 0.7.13 on SQLite, at the same thread counts and processes. It is
  installed only into its own venv (--peer-venv, made or reused here) and run there.

Every commit is synced: modelseal's store fsyncs each commit (LMDB sync and metasync, the
store's setting); model-ledger's SQLite runs WAL with synchronous=FULL (its setting, read
back and reported). Time is the real clock: a simulated one is neither shared by threads
nor by processes. After every run the bench checks that every acknowledged write is in the
log exactly once, under the hash it was acknowledged with (by index scan, by hash and
through each model's history), that no refused call left an entry, and audits the store
(SQLite: PRAGMA integrity_check). Each run is a child process with a time limit, so a
deadlocked writer is killed and reported, never waited for.

    python bench/bench_concurrency.py [--threads 1,4,16,64] [--seconds 5 | --writes N]
                                      [--processes 4] [--peer-venv DIR] [--no-peer]
    python bench/bench_concurrency.py --quick --no-peer
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PEER_VERSION = "0.7.13"
ORIGIN = "bench.example/models"
EVENT = "evaluated"
ACTOR = "ml-pipeline"
TARGETS = {"threads_16_writes_per_s": 4000.0, "threads_1_writes_per_s": 900.0,
           "threads_16_p99_ms": 20.0}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds else float("inf")


def register_args(i: int) -> dict[str, Any]:
    return {"name": f"model_{i:06d}", "owner": f"team-{i % 40:02d}", "model_type": "ml_model",
            "tier": ["high", "medium", "low"][i % 3], "purpose": f"Scoring use case {i}",
            "metadata": {"framework": ["xgboost", "pytorch", "sklearn"][i % 3], "version": "1.0"}}


def payload(rng: random.Random, run_id: str) -> dict[str, Any]:
    """An evaluation's figures; ``run_id`` is unique to the call, so the check can find it."""
    return {"accuracy": round(rng.uniform(0.8, 0.99), 4), "auc": round(rng.uniform(0.8, 0.99), 4),
            "rows": rng.randrange(10_000, 5_000_000), "run_id": run_id,
            "dataset": f"s3://ml-data/eval/2024-{rng.randrange(1, 13):02d}"}


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def fs_of(path: str | Path) -> dict[str, str]:
    """The file system a directory lives on (longest matching mount in /proc/mounts)."""
    real = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return {"path": real, "fs": kind, "mount": best or "unknown"}


# -- the two sides -------------------------------------------------------------------------
# A side makes a store, opens writers on it, records one event, and checks the store.
# Only the side being run is imported: the peer's child runs in the peer's venv, which has
# no modelseal, and the project's venv has no model-ledger.


class Ours:
    name = "modelseal"
    mode = ("one Ledger (log key and signer) shared by all threads of a process; "
            "each process opens its own")

    def __init__(self) -> None:
        sys.path.insert(0, str(REPO))
        import ledger
        import verifier
        self.lg, self.v = ledger, verifier
        self.shared: Any = None

    def setup(self, work: Path, models: int) -> None:
        """A new store under ``work`` with ``models`` models; keys saved under work/keys."""
        lg = self.lg
        log_key, admin = lg.LogKey.generate(), lg.ActorKey.generate("risk-admin")
        pipe = lg.ActorKey.generate(ACTOR)
        with lg.Ledger.create(work / "store", origin=ORIGIN, log_key=log_key,
                              admin=admin) as led:
            led.grant(pipe.vkey, role="writer")
            led.signer = pipe
            with led.batch():
                for i in range(models):
                    led.register(**register_args(i))
        (work / "keys").mkdir(mode=0o700)
        log_key.save(work / "keys" / "log.key")
        pipe.save(work / "keys" / "pipe.key")

    def size(self, work: Path) -> int:
        with self.lg.Ledger.open(work / "store") as led:
            return int(led.size)

    def open(self, work: Path) -> Any:
        lg = self.lg
        return lg.Ledger.open(work / "store", log_key=lg.LogKey.load(work / "keys" / "log.key"),
                              signer=lg.ActorKey.load(work / "keys" / "pipe.key"))

    def start_threads(self, work: Path) -> None:
        self.shared = self.open(work)

    def thread_writer(self, work: Path) -> Any:
        return self.shared

    def close_thread_writer(self, writer: Any) -> None:
        pass  # shared: closed once, after the check

    def close(self, writer: Any) -> None:
        writer.close()

    def record(self, writer: Any, model: str, body: dict[str, Any]) -> str:
        snap = writer.record(model, EVENT, body)
        return str(snap.snapshot_hash)

    def check(self, work: Path, acks: list[tuple[str, str]], base: int, models: int,
              refused: int) -> dict[str, Any]:
        v = self.v
        led = self.shared if self.shared is not None else self.lg.Ledger.open(work / "store")
        try:
            size = led.size
            runs: Counter[str] = Counter()
            hash_of: dict[str, str] = {}
            for i in range(base, size):
                data = led.entry(i)
                st = v.parse_entry(data).statement
                run = st.payload.get("run_id") if isinstance(st, v.Event) else None
                run = run if isinstance(run, str) else f"<entry {i}: no run_id>"
                runs[run] += 1
                hash_of[run] = v.snapshot_hash(data)
            by_hash = 0
            for run, h in acks:
                try:
                    st = v.parse_entry(led.entry(h)).statement
                    by_hash += isinstance(st, v.Event) and st.payload.get("run_id") == run
                except Exception:
                    pass
            in_history: Counter[str] = Counter(
                s.snapshot_hash for i in range(models) for s in led.history(f"model_{i:06d}"))
            try:
                audited = led.audit()
                audit = "passed" if audited == size else f"checked {audited} of {size}"
            except Exception as exc:
                audit = f"failed: {type(exc).__name__}: {exc}"[:300]
            return tally(acks, runs, hash_of, by_hash, in_history, size - base, refused, audit)
        finally:
            led.close()
            self.shared = None

    def facts(self, work: Path) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        import lmdb
        try:
            ver = version("modelseal")
        except PackageNotFoundError:
            ver = "unknown"
        led = self.open(work)
        try:
            flags = led._store.env.flags()
        finally:
            led.close()
        return {"version": ver, "commit": git_commit(),
            "lmdb": ".".join(str(x) for x in lmdb.version()), "py_lmdb": lmdb.__version__,
            "store_sync": bool(flags.get("sync")), "store_metasync": bool(flags.get("metasync")),
            "durability": "every commit fsynced (LMDB sync + metasync)", "mode": self.mode}


class Peer:
    name = "model-ledger"
    mode = ("one model_ledger.Ledger.from_sqlite per thread and per process (each its own "
            "sqlite3 connection): one shared across threads is refused by sqlite3 "
            "(check_same_thread) on every call from another thread")

    def __init__(self) -> None:
        import model_ledger
        self.ml = model_ledger

    @staticmethod
    def db(work: Path) -> str:
        return str(work / "peer.db")

    def setup(self, work: Path, models: int) -> None:
        led = self.ml.Ledger.from_sqlite(self.db(work))
        try:
            for i in range(models):
                led.register(actor=ACTOR, **register_args(i))
        finally:
            led.backend._conn.close()

    def size(self, work: Path) -> int:
        led = self.open(work)
        try:
            return self.count(led)
        finally:
            led.backend._conn.close()

    @staticmethod
    def count(led: Any) -> int:
        return int(led.backend.count_all_snapshots())

    def open(self, work: Path) -> Any:
        return self.ml.Ledger.from_sqlite(self.db(work))

    def start_threads(self, work: Path) -> None:
        pass

    def thread_writer(self, work: Path) -> Any:
        return self.open(work)  # in the thread that uses it (check_same_thread)

    def close_thread_writer(self, writer: Any) -> None:
        writer.backend._conn.close()

    def close(self, writer: Any) -> None:
        writer.backend._conn.close()

    def record(self, writer: Any, model: str, body: dict[str, Any]) -> str:
        snap = writer.record(model, event=EVENT, payload=body, actor=ACTOR)
        return str(snap.snapshot_hash)

    def check(self, work: Path, acks: list[tuple[str, str]], base: int, models: int,
              refused: int) -> dict[str, Any]:
        import sqlite3
        led = self.open(work)
        try:
            size = self.count(led)
            conn = sqlite3.connect(self.db(work))
            try:
                runs: Counter[str] = Counter()
                hash_of: dict[str, str] = {}
                rows = conn.execute("SELECT snapshot_hash, payload FROM snapshots "
                                    "WHERE event_type = ?", (EVENT,)).fetchall()
                for h, body in rows:
                    run = json.loads(body or "{}").get("run_id")
                    run = run if isinstance(run, str) else f"<snapshot {h}: no run_id>"
                    runs[run] += 1
                    hash_of[run] = h
                by_hash = 0
                for run, h in acks:
                    row = conn.execute("SELECT payload FROM snapshots WHERE snapshot_hash = ?",
                                       (h,)).fetchone()
                    by_hash += row is not None and json.loads(row[0] or "{}").get("run_id") == run
                integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                conn.close()
            in_history: Counter[str] = Counter(
                s.snapshot_hash for i in range(models) for s in led.history(f"model_{i:06d}"))
            audit = "passed (PRAGMA integrity_check)" if integrity == "ok" else \
                f"failed: integrity_check {integrity}"
            return tally(acks, runs, hash_of, by_hash, in_history, size - base, refused, audit)
        finally:
            led.backend._conn.close()

    def facts(self, work: Path) -> dict[str, Any]:
        import sqlite3
        led = self.open(work)
        try:
            conn = led.backend._conn
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            busy = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
            isolation = conn.isolation_level
        finally:
            led.backend._conn.close()
        shared: dict[str, Any] = {}
        led = self.open(work)

        def other_thread() -> None:
            try:
                led.record("model_000000", event="bench_probe", payload={}, actor=ACTOR)
                shared["allowed"] = True
            except Exception as exc:
                shared["allowed"] = False
                shared["error"] = f"{type(exc).__name__}: {exc}"[:200]

        probe = threading.Thread(target=other_thread, daemon=True)
        probe.start()
        probe.join(30)
        led.backend._conn.close()
        level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync))
        return {
            "version": self.ml.__version__, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "journal_mode": journal,
            "synchronous": level, "busy_timeout_ms": busy, "isolation_level": isolation,
            "durability": f"journal_mode={journal}, synchronous={level}"
                          + (": each commit() syncs the WAL" if level in ("FULL", "EXTRA")
                             else ": commits are NOT each synced"),
            "shared_instance_across_threads": shared,
            "record_call": "Ledger.record(model, event=, payload=, actor=): one INSERT OR "
                           "IGNORE into snapshots and one commit; before it, a model lookup "
                           "(cached per Ledger) and after it groups(): a read of the model's "
                           "snapshots to find parent groups (none here)",
            "snapshot_hash": "sha256(model_hash:timestamp:payload)[:32]; a repeated hash is "
                             "silently ignored (INSERT OR IGNORE), which the check would count",
            "mode": self.mode,
        }


def tally(acks: list[tuple[str, str]], runs: Counter[str], hash_of: dict[str, str],
          by_hash: int, in_history: Counter[str], added: int, refused: int,
          audit: str) -> dict[str, Any]:
    """The check's counts. ``runs``: how often each run id is in the log's new entries;
    ``hash_of``: the hash it is stored under; ``by_hash``: acknowledged writes found by
    their hash holding their own run id; ``in_history``: hashes in the models' histories."""
    acked = dict(acks)
    out = {
        "lost": sum(1 for run, _ in acks if runs[run] == 0),
        "wrong_hash": sum(1 for run, h in acks if runs[run] and hash_of.get(run) != h),
        "duplicates": sum(c - 1 for c in runs.values() if c > 1),
        "not_found_by_hash": len(acks) - by_hash,
        "not_once_in_history": sum(1 for _, h in acks if in_history[h] != 1),
        "unacknowledged_in_log": sum(1 for run in runs if run not in acked),
        "refused_calls": refused,
        "entries_added": added,
        "audit": audit,
    }
    out["ok"] = audit.startswith("passed") and added == len(acks) and not any(
        out[k] for k in ("lost", "wrong_hash", "duplicates", "not_found_by_hash",
                         "not_once_in_history", "unacknowledged_in_log"))
    return out


def make_side(name: str) -> Ours | Peer:
    return Ours() if name == "ours" else Peer()


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- one writer's loop -----------------------------------------------------------------------


class Tally:
    """What one writer (thread or process) saw: acknowledgements, latencies, refusals."""

    def __init__(self) -> None:
        self.acks: list[tuple[str, str]] = []
        self.lat: list[float] = []
        self.errors: Counter[str] = Counter()
        self.end = 0.0


def write_loop(side: Ours | Peer, writer: Any, rng: random.Random, models: int, tag: str,
               deadline: float | None, count: int | None, out: Tally) -> None:
    """Record one event at a time until ``deadline`` (time.monotonic) or ``count`` calls.
    Every exception is one refused call; the loop goes on."""
    i = 0
    while (i < count) if count is not None else (time.monotonic() < (deadline or 0.0)):
        model = f"model_{rng.randrange(models):06d}"
        run = f"{tag}-{i}"
        body = payload(rng, run)
        t = time.perf_counter()
        try:
            h = side.record(writer, model, body)
        except Exception as exc:
            out.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
        else:
            out.lat.append(time.perf_counter() - t)
            out.acks.append((run, h))
        i += 1
    out.end = time.monotonic()


def summary(tallies: list[Tally], start: float, n_writers: int) -> dict[str, Any]:
    lat = sorted(x for t in tallies for x in t.lat)
    writes = sum(len(t.acks) for t in tallies)
    errors: Counter[str] = Counter()
    for t in tallies:
        errors.update(t.errors)
    ends = [t.end for t in tallies if t.end]
    seconds = (max(ends) - start) if ends else 0.0
    return {"writers": n_writers, "writes": writes, "seconds": round(seconds, 3),
            "writes_per_s": rate(writes, seconds),
            "p50_ms": round(percentile(lat, 0.50) * 1e3, 3),
            "p99_ms": round(percentile(lat, 0.99) * 1e3, 3),
            "max_ms": round(lat[-1] * 1e3, 3) if lat else 0.0,
            "errors": sum(errors.values()),
            "error_kinds": dict(errors.most_common(5))}


# -- children ----------------------------------------------------------------------------------


def child_threads(a: argparse.Namespace) -> dict[str, Any]:
    """T threads on one side's shared writer (ours) or per-thread writers (peer)."""
    side, work, n = make_side(a.side), Path(a.work), a.t
    side.setup(work, a.models)
    facts = side.facts(work) if a.facts else None
    base = side.size(work)
    side.start_threads(work)
    log(f"{side.name}: {a.models} models registered; {n} thread(s) start")
    tallies = [Tally() for _ in range(n)]
    open_errors: list[str] = []
    start = [0.0]
    barrier = threading.Barrier(n + 1, action=lambda: start.__setitem__(0, time.monotonic()))

    def thread(k: int) -> None:
        rng = random.Random(a.seed * 10_007 + k)
        writer = None
        try:
            writer = side.thread_writer(work)
        except Exception as exc:  # counted; the other threads run
            open_errors.append(f"{type(exc).__name__}: {exc}"[:200])
        try:
            barrier.wait(timeout=120)
            if writer is not None:
                deadline = None if a.writes else start[0] + a.seconds
                write_loop(side, writer, rng, a.models, f"t{n}-{k}", deadline, a.writes or None,
                           tallies[k])
        except threading.BrokenBarrierError:
            pass
        finally:
            if writer is not None:
                try:
                    side.close_thread_writer(writer)
                except Exception:
                    pass

    threads = [threading.Thread(target=thread, args=(k,), daemon=True) for k in range(n)]
    for th in threads:
        th.start()
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        return {"threads": n, "error": "threads could not start", "open_errors": open_errors}
    limit = time.monotonic() + (a.timeout if a.writes else a.seconds) + a.grace
    for th in threads:
        th.join(timeout=max(0.0, limit - time.monotonic()))
    hung = sum(th.is_alive() for th in threads)
    out = {"threads": n, **summary(tallies, start[0], n), "open_errors": len(open_errors)}
    if open_errors:
        out["open_error_kinds"] = dict(Counter(open_errors).most_common(5))
    if hung:
        out["error"] = f"{hung} thread(s) still in a call {a.grace} s after the window: " \
                       "not checked"
        return out
    acks = [x for t in tallies for x in t.acks]
    log(f"{side.name} T={n}: {out['writes']} writes in {out['seconds']} s, "
        f"{out['errors']} refused; checking")
    out.update(side.check(work, acks, base, a.models, out["errors"]))
    if facts is not None:
        out["facts"] = facts
    return out


def child_procs(a: argparse.Namespace) -> dict[str, Any]:
    """P worker processes, each opening its own writer on one store."""
    side, work, n = make_side(a.side), Path(a.work), a.processes
    side.setup(work, a.models)
    base = side.size(work)
    log(f"{side.name}: {a.models} models registered; {n} processes start")
    cmd = [sys.executable] + (["-I"] if a.side == "peer" else []) + [
        str(Path(__file__).resolve()), "--child", "worker", "--side", a.side, "--work", str(work),
        "--models", str(a.models), "--seconds", str(a.seconds), "--seed", str(a.seed)]
    if a.writes:
        cmd += ["--writes", str(a.writes)]
    procs = [subprocess.Popen(cmd + ["--k", str(k)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for k in range(n)]
    try:
        for p in procs:  # each says "ready" once its writer is open
            line = p.stdout.readline() if p.stdout else ""
            if line.strip() != "ready":
                return {"processes": n, "error": f"a worker did not start ({line.strip()!r})"}
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.close()
        limit = time.monotonic() + (a.seconds if not a.writes else a.timeout) + a.grace
        for p in procs:
            try:
                p.wait(timeout=max(0.1, limit - time.monotonic()))
            except subprocess.TimeoutExpired:
                return {"processes": n, "error": "a worker did not finish in time: not checked"}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    tallies, starts, failed = [], [], []
    for k, p in enumerate(procs):
        f = work / f"worker-{k}.json"
        if p.returncode != 0 or not f.exists():
            failed.append(f"worker {k} exited {p.returncode}")
            continue
        doc = json.loads(f.read_text())
        t = Tally()
        t.acks = [(r, h) for r, h in doc["acks"]]
        t.lat, t.errors, t.end = doc["lat"], Counter(doc["errors"]), doc["end"]
        tallies.append(t)
        starts.append(doc["start"])
    out = {"processes": n, **summary(tallies, min(starts) if starts else 0.0, n)}
    if failed:
        out["failed_workers"] = failed
    acks = [x for t in tallies for x in t.acks]
    log(f"{side.name} P={n}: {out['writes']} writes in {out['seconds']} s, "
        f"{out['errors']} refused; checking")
    out.update(side.check(work, acks, base, a.models, out["errors"]))
    return out


def child_worker(a: argparse.Namespace) -> None:
    """One process of child_procs: open, say ready, wait for go, write, save a JSON file."""
    side, work = make_side(a.side), Path(a.work)
    writer = side.open(work)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    t = Tally()
    write_loop(side, writer, random.Random(a.seed * 10_007 + 1000 + a.k), a.models,
               f"p{a.k}", None if a.writes else start + a.seconds, a.writes or None, t)
    side.close(writer)
    (work / f"worker-{a.k}.json").write_text(json.dumps(
        {"acks": t.acks, "lat": t.lat, "errors": dict(t.errors), "start": start, "end": t.end}))


# -- the parent ----------------------------------------------------------------------------------


def run_child(python: list[str], a: argparse.Namespace, extra: list[str],
              label: str) -> dict[str, Any]:
    """Run one measurement in a child process with its own work directory and a time limit;
    a child that overruns is killed (with its workers) and reported."""
    work = Path(tempfile.mkdtemp(prefix="modelseal-bench-conc-", dir=a.dir))
    cmd = python + [str(Path(__file__).resolve()), "--work", str(work), "--models",
                    str(a.models), "--seconds", str(a.seconds), "--seed", str(a.seed),
                    "--grace", str(a.grace), "--timeout", str(a.timeout)] + extra
    if a.writes:
        cmd += ["--writes", str(a.writes)]
    return run_measured(cmd, work, a.timeout, label)


def run_measured(cmd: list[str], work: Path, timeout: float, label: str,
                 reap: bool = False) -> dict[str, Any]:
    """Run the measurement child ``cmd`` in its own session, at most ``timeout`` seconds
    (then its whole process group is killed), remove ``work`` afterwards, and return the
    JSON object it printed last (or an ``error``). ``reap``: also kill whatever the child
    left running in its group (a server, a load generator)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's own process group, made above
        proc.communicate()
        log(f"{label}: killed after {timeout} s")
        return {"error": f"killed after {timeout} s (hung or too slow)"}
    finally:
        if reap:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    lines = stdout.strip().splitlines()
    try:
        doc: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"the child exited {proc.returncode} without a result (see stderr)"}
    if "error" not in doc:
        log(f"{label}: {doc.get('writes_per_s')} writes/s, p99 {doc.get('p99_ms')} ms, "
            f"errors {doc.get('errors')}, ok {doc.get('ok')}")
    else:
        log(f"{label}: {doc['error']}")
    return doc


def peer_python(venv: Path) -> Path:
    """The python of the peer's own venv, made (or reused) with model-ledger installed."""
    py = venv / "bin" / "python"
    probe = [str(py), "-I", "-c",
             "import importlib.metadata as m; print(m.version('model-ledger'))"]

    def installed() -> bool:
        if not py.exists():
            return False
        got = subprocess.run(probe, capture_output=True, text=True, timeout=120)
        return got.returncode == 0 and got.stdout.strip() == PEER_VERSION

    if installed():
        log(f"peer: reusing {venv}")
        return py
    if not py.exists():
        log(f"peer: creating a venv at {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    log(f"peer: installing model-ledger=={PEER_VERSION} into {venv}")
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"model-ledger=={PEER_VERSION}"],
                   check=True, timeout=600, stdout=sys.stderr)
    if not installed():
        raise RuntimeError(f"model-ledger {PEER_VERSION} is not importable from {venv}")
    return py


def side_runs(python: list[str], side: str, a: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"threads": {}}
    for i, n in enumerate(a.thread_counts):
        extra = ["--child", "threads", "--side", side, "--t", str(n)] + (["--facts"] if i == 0
                                                                         else [])
        doc = run_child(python, a, extra, f"{side} T={n}")
        if "facts" in doc:
            out["facts"] = doc.pop("facts")
        out["threads"][str(n)] = doc
    if a.processes:
        out["processes"] = run_child(
            python, a, ["--child", "procs", "--side", side, "--processes", str(a.processes)],
            f"{side} P={a.processes}")
    return out


def targets(ours: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with what was measured and whether it passed (None if not
    measured). A run counts only if it was correct: no refused call, nothing lost, audited."""
    runs = ours.get("threads", {})

    def clean(r: dict[str, Any] | None) -> bool:
        return (r is not None and "error" not in r and r.get("errors") == 0
                and not r.get("open_errors") and bool(r.get("ok")))

    def one(threads: str, key: str, target: float, higher: bool) -> dict[str, Any]:
        r = runs.get(threads)  # None: not measured (pass None); a run that failed: False
        if r is None:
            return {"target": f"{'>=' if higher else '<='} {target:g}", "measured": None,
                    "run_clean": None, "pass": None}
        measured = r.get(key)
        passed = clean(r) and measured is not None and (
            measured >= target if higher else measured <= target)
        return {"target": f"{'>=' if higher else '<='} {target:g}", "measured": measured,
                "run_clean": clean(r), "pass": passed}

    out = {
        "threads_16_writes_per_s": one("16", "writes_per_s", TARGETS["threads_16_writes_per_s"],
                                       True),
        "threads_1_writes_per_s": one("1", "writes_per_s", TARGETS["threads_1_writes_per_s"],
                                      True),
        "threads_16_p99_ms": one("16", "p99_ms", TARGETS["threads_16_p99_ms"], False),
    }
    verdicts = [t["pass"] for t in out.values()]
    out["all_pass"] = None if None in verdicts else all(verdicts)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,4,16,64", help="thread counts [1,4,16,64]")
    ap.add_argument("--seconds", type=float, default=5.0, help="window per run [5]")
    ap.add_argument("--writes", type=int, default=0,
                    help="instead of a window: this many writes per thread or process")
    ap.add_argument("--processes", type=int, default=4, help="processes run; 0: none [4]")
    ap.add_argument("--models", type=int, default=200, help="models registered first [200]")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--peer-venv", type=Path,
                    default=Path(tempfile.gettempdir()) / "modelseal-bench-peer",
                    help="the peer's own venv, made or reused [TMPDIR/modelseal-bench-peer]")
    ap.add_argument("--no-peer", action="store_true", help="measure modelseal only")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 and 4 threads, 2 processes, 1 s, 50 models")
    ap.add_argument("--dir", default=None, help="where stores go [the current directory]")
    ap.add_argument("--grace", type=float, default=30.0,
                    help="after the window, how long a call may still take before the run "
                         "is declared hung [30 s]")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="limit per run, setup and check included [120 s + 10 x window]")
    # the children's arguments
    ap.add_argument("--child", choices=["threads", "procs", "worker"], help=argparse.SUPPRESS)
    ap.add_argument("--side", choices=["ours", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--t", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--facts", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.child:
        if a.child == "worker":
            child_worker(a)
            return
        doc = child_threads(a) if a.child == "threads" else child_procs(a)
        doc["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]  # others' load shows here
        print(json.dumps(doc), flush=True)
        os._exit(0)  # a thread still stuck in a call must not hold the exit
    if a.quick:
        a.threads, a.seconds, a.models, a.processes = "1,4", 1.0, 50, min(a.processes, 2)
    a.thread_counts = [int(x) for x in a.threads.split(",") if x.strip()]
    if not a.timeout:
        a.timeout = 600.0 if a.writes else 120.0 + 10 * a.seconds
    a.dir = a.dir or os.getcwd()
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_start": os.getloadavg(),
                    "store_dir": fs_of(a.dir), "temp_dir": fs_of(tempfile.gettempdir())},
        "settings": {"threads": a.thread_counts, "processes": a.processes,
                     "window_s": None if a.writes else a.seconds,
                     "writes_per_writer": a.writes or None, "models": a.models,
                     "seed": a.seed, "call": f"record(model, {EVENT!r}, payload), one "
                     "write per call, models drawn at random", "quick": a.quick},
    }
    log(f"modelseal: threads {a.thread_counts}, processes {a.processes}")
    result["ours"] = side_runs([sys.executable], "ours", a)
    if a.no_peer:
        result["peer"] = {"skipped": "--no-peer"}
    else:
        try:
            py = peer_python(a.peer_venv)
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            log(f"peer: {exc}")
            result["peer"] = {"error": f"could not set up the peer's venv: {exc}"}
        else:
            log(f"model-ledger: threads {a.thread_counts}, processes {a.processes}")
            result["peer"] = {"venv": str(a.peer_venv),
                              **side_runs([str(py), "-I"], "peer", a)}
    result["targets"] = targets(result["ours"])
    result["machine"]["loadavg_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
