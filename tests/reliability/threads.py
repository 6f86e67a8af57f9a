"""Part 8, threads and interrupts (issue 10).

- ``run_threads``: T threads share ONE Ledger; each writes W records, per call and in
  batches, and some batches abort at random (an exception in the block). Afterwards
  every acknowledged write is present exactly once, and no write of an aborted batch
  or refused call is present.
- ``run_interrupts``: a child process runs B batches (some with a signer that makes a
  bad signature now and then) while the parent sends it real SIGINTs at random
  moments. Never a hang (every batch ends within a bound), never a committed bad
  signature (audit verifies every one), every acknowledged batch present, every batch
  that raised absent.
- ``run_blocked_reader``: a reader process opens the store and answers while another
  process holds a batch open.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import verifier as v
from ledger import Ledger
from tests.reliability.common import REPO, build_store, open_writer


class _Abort(Exception):
    """Raised inside a batch block to discard it."""


def run_threads(workdir: Path, *, threads: int, writes: int, seed: int) -> dict[str, Any]:
    """``threads`` x ``writes`` through one shared Ledger; see the module docstring."""
    setup = build_store(workdir, writers=["load-writer"], models=[f"m{i}" for i in range(8)])
    led = open_writer(str(setup.path), str(setup.log_key_file),
                      str(setup.key_files["load-writer"]))
    acked: list[tuple[int, int, str]] = []
    discarded: list[tuple[int, int]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        rng = random.Random(seed * 1000 + t)
        i = 0
        while i < writes:
            try:
                if rng.random() < 0.3:
                    n = min(writes - i, rng.randint(2, 12))
                    abort = t % 4 == 0 and rng.random() < 0.4
                    got = []
                    try:
                        with led.batch():
                            for j in range(i, i + n):
                                got.append((t, j, led.record(f"m{rng.randrange(8)}", "load",
                                                             {"t": t, "i": j}).snapshot_hash))
                            if abort:
                                raise _Abort
                    except _Abort:
                        with lock:
                            discarded.extend((t, j) for j in range(i, i + n))
                    else:
                        with lock:
                            acked.extend(got)
                    i += n
                else:
                    snap = led.record(f"m{rng.randrange(8)}", "load", {"t": t, "i": i})
                    with lock:
                        acked.append((t, i, snap.snapshot_hash))
                    i += 1
            except Exception as exc:  # noqa: BLE001 - every error is reported, none expected
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                return

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for th in pool:
        th.start()
    hung = 0
    for th in pool:
        th.join(300)
        hung += th.is_alive()
    seconds = time.perf_counter() - t0
    size = led.audit()
    counts: Counter[tuple[int, int]] = Counter()
    by_hash: dict[str, tuple[int, int]] = {}
    for i in range(setup.base_size, size):
        data = led.entry(i)
        st = v.parse_entry(data).statement
        assert isinstance(st, v.Event)
        key = (st.payload["t"], st.payload["i"])
        counts[key] += 1
        by_hash[v.snapshot_hash(data)] = key
    led.close()
    return {
        "threads": threads, "writes_per_thread": writes, "seconds": round(seconds, 1),
        "acknowledged": len(acked), "aborted_writes": len(discarded),
        "new_entries": size - setup.base_size,
        "missing": sum(by_hash.get(h) != (t, i) for t, i, h in acked),
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "aborted_present": sum(counts[k] > 0 for k in discarded),
        "unacknowledged_present": len(set(counts) - {(t, i) for t, i, _ in acked}),
        "hung_threads": hung, "errors": errors[:20],
    }


_CHILD = r"""
import json, os, random, signal, sys, time
import verifier as v
from ledger import ActorKey, Ledger, LogKey

store, log_file, key_file, out, seed, batches = sys.argv[1:7]
rng = random.Random(int(seed))
led = Ledger.open(store, log_key=LogKey.load(log_file), signer=ActorKey.load(key_file))
real = led.signer._signer

class Faulty:
    def __init__(self, bad_at):
        self.n, self.bad_at = 0, bad_at
    def sign(self, message):
        self.n += 1
        sig = real.sign(message)
        return bytes([sig[0] ^ 0x40]) + sig[1:] if self.n == self.bad_at else sig

log = open(out, "a", buffering=1)
armed = False

def interrupt(signum, frame):
    # a real SIGINT, raised as Python does, wherever the batch's code is; ignored while
    # this harness writes down what happened (its own bookkeeping is not under test)
    if armed:
        raise KeyboardInterrupt

signal.signal(signal.SIGINT, interrupt)
print("ready", flush=True)
for b in range(int(batches)):
    n = rng.choice([1, 5, 40, 200, 700])
    bad = rng.random() < 0.3
    led.signer._signer = Faulty(rng.randint(1, n)) if bad else real
    hashes, outcome = [], "committed"
    t0 = time.monotonic()
    try:
        armed = True
        with led.batch():
            for i in range(n):
                hashes.append(led.record("m0", "load", {"b": b, "i": i}).snapshot_hash)
        armed = False
    except KeyboardInterrupt:
        armed = False
        outcome = "interrupted"
    except v.SignatureError:
        armed = False
        outcome = "bad_signature"
    log.write(json.dumps({"b": b, "n": n, "bad": bad, "outcome": outcome, "hashes": hashes,
                          "seconds": round(time.monotonic() - t0, 3)}) + "\n")
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is over: exit cleanly
led.signer._signer = real
led.close()
print("done", flush=True)
"""


def run_interrupts(workdir: Path, *, batches: int, seed: int) -> dict[str, Any]:
    """Real SIGINTs at random moments into a child running ``batches`` batches."""
    setup = build_store(workdir, writers=["load-writer"], models=["m0"])
    out = workdir / "batches.jsonl"
    rng = random.Random(seed)
    env = {k: val for k, val in os.environ.items() if k in ("PATH", "LANG", "HOME")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(setup.path), str(setup.log_key_file),
         str(setup.key_files["load-writer"]), str(out), str(seed), str(batches)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    sent = 0
    deadline = time.monotonic() + 60 + batches * 3
    hung = False
    while proc.poll() is None:
        if time.monotonic() > deadline:
            hung = True
            proc.kill()
            break
        time.sleep(rng.uniform(0.002, 0.06))
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)
                sent += 1
            except ProcessLookupError:
                break
    _, err = proc.communicate(timeout=60)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    outcomes = Counter(r["outcome"] for r in rows)
    with Ledger.open(setup.path) as led:
        size = led.audit()  # verifies every signature with OpenSSL
        present: Counter[tuple[int, int]] = Counter()
        for i in range(setup.base_size, size):
            st = v.parse_entry(led.entry(i)).statement
            assert isinstance(st, v.Event)
            present[(st.payload["b"], st.payload["i"])] += 1
        lost = 0
        for r in rows:
            for h in r["hashes"] if r["outcome"] == "committed" else []:
                try:
                    lost += v.parse_entry(led.entry(h)).snapshot_hash != h
                except KeyError:
                    lost += 1
    by_batch = {r["b"]: r for r in rows}
    batch_counts: Counter[int] = Counter(b for b, _ in present)
    return {
        "batches": batches, "sigints_sent": sent, "ready": ready.strip() == "ready",
        "finished": len(rows), "outcomes": dict(outcomes), "hung": hung,
        "exit_code": proc.returncode, "stderr_tail": err[-400:] if proc.returncode else "",
        "lost": lost,
        # a batch is all or nothing: an interrupted one may have committed (the interrupt
        # came after its commit), but never in part
        "partial_batches": sum(1 for b, c in batch_counts.items()
                               if b in by_batch and c != by_batch[b]["n"]),
        "bad_signature_committed": sum(1 for r in rows if r["outcome"] == "bad_signature"
                                       and batch_counts[r["b"]]),
        "duplicates": sum(c - 1 for c in present.values() if c > 1),
        "longest_batch_s": max((r["seconds"] for r in rows), default=0),
        "audited_entries": size,
    }


_HOLDER = r"""
import sys, time
from ledger import ActorKey, Ledger, LogKey
store, log_file, key_file = sys.argv[1:4]
led = Ledger.open(store, log_key=LogKey.load(log_file), signer=ActorKey.load(key_file))
with led.batch():
    led.record("m0", "held")
    print("holding", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""

_READER = r"""
import sys
from ledger import Ledger
with Ledger.open(sys.argv[1]) as led:
    print(led.size, len(led.inventory_at()), len(led.export_bundle(size=led.size)))
"""


def run_blocked_reader(workdir: Path) -> dict[str, Any]:
    """A reader process finishes while another process holds a batch open."""
    setup = build_store(workdir, writers=["load-writer"], models=["m0"])
    env = {k: val for k, val in os.environ.items() if k in ("PATH", "LANG", "HOME")}
    env["PYTHONPATH"] = str(REPO)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(setup.path), str(setup.log_key_file),
         str(setup.key_files["load-writer"])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=env, cwd=REPO)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        t0 = time.perf_counter()
        try:
            reader = subprocess.run([sys.executable, "-c", _READER, str(setup.path)],
                                    capture_output=True, text=True, env=env, cwd=REPO,
                                    timeout=30)
            finished, answer = reader.returncode == 0, reader.stdout.strip() or reader.stderr
        except subprocess.TimeoutExpired:
            finished, answer = False, "timed out"
        seconds = time.perf_counter() - t0
        holder.stdin.write("\n")
        holder.stdin.flush()
        released = holder.stdout.readline().strip() == "released"
    finally:
        try:
            holder.wait(30)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
    return {"reader_finished": finished, "reader_seconds": round(seconds, 2),
            "reader_answer": answer, "holder_released": released,
            "base_size": setup.base_size}
