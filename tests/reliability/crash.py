"""Part 1, crash: a writer process (crash_writer.py) is killed with SIGKILL at
random moments; after each kill the store must reopen, audit clean, hold every
acknowledged write, contain no partial entry, and its latest checkpoint must be
of the tree's size."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import verifier as v
from ledger import AuditError, Ledger
from ledger import _queries as q
from ledger._store import u64
from tests.reliability.common import Setup, build_store, spawn, wait_line



def acknowledged(side_file: Path) -> list[str]:
    """The snapshot hashes in the side file; an unfinished last line is not one."""
    if not side_file.exists():
        return []
    text = side_file.read_text()
    lines = text.split("\n")[:-1]  # the part after the last newline was cut off mid-write
    return [line.split(" ")[0] for line in lines]


def check_store(setup: Setup, acked: list[str]) -> dict[str, Any]:
    """Reopen the store and check it. Returns {size, lost, problems}."""
    problems: list[str] = []
    with Ledger.open(setup.path) as led:
        try:
            audited = led.audit()
        except AuditError as exc:
            problems.append(f"audit: {exc}")
            audited = -1
        store = led._store
        with store.reader() as txn:
            size = q.size(store, txn)
            keys = [bytes(k) for k in txn.cursor(db=store.db["entries"]).iternext(values=False)]
            latest = q.latest_checkpoint(store, txn)
        if keys != [u64(i) for i in range(len(keys))]:
            problems.append("entries are not contiguous from 0")
        if len(keys) != size or (audited != -1 and audited != size):
            problems.append(f"meta size {size}, {len(keys)} entries, audit counted {audited}")
        if latest is None:
            problems.append("no checkpoint")
        else:
            cp = v.Checkpoint.parse_note(latest[1], setup.trusted)
            if not latest[0] == cp.size == size:
                problems.append(f"latest checkpoint is of size {cp.size}, the tree {size}")
        lost = 0
        for h in acked:
            try:
                data = led.entry(h)
            except KeyError:
                lost += 1
                continue
            if v.snapshot_hash(data) != h:
                problems.append(f"snapshot {h} maps to an entry with another hash")
    return {"size": size, "lost": lost, "problems": problems}


def run_crash(workdir: Path, *, kills: int, seed: int, max_delay: float = 0.1,
              log: Any = None) -> dict[str, Any]:
    """Kill the writer ``kills`` times; return the counts (lost, partial, ...)."""
    rng = random.Random(seed)
    setup = build_store(workdir, writers=["crash-writer"], models=["m0", "m1", "m2"])
    side = workdir / "acknowledged.txt"
    lost_total = partial = not_ready = 0
    problems: list[str] = []
    acked: list[str] = []
    sizes = [setup.base_size]
    t0 = time.perf_counter()
    for k in range(kills):
        proc = spawn("tests.reliability.crash_writer", setup.path, setup.log_key_file,
                     setup.key_files["crash-writer"], side, rng.getrandbits(32))
        if wait_line(proc) != b"ready\n":
            not_ready += 1
        time.sleep(rng.uniform(0, max_delay))
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        if proc.returncode != -signal.SIGKILL:
            problems.append(f"kill {k}: writer exited {proc.returncode} before the kill: "
                            f"{err.decode(errors='replace')[-2000:]}")
        acked = acknowledged(side)
        try:
            result = check_store(setup, acked)
        except Exception as exc:  # the store does not even reopen: count it, keep going
            result = {"size": sizes[-1], "lost": 0,
                      "problems": [f"reopening: {type(exc).__name__}: {exc}"]}
        lost_total += result["lost"]
        if result["problems"]:
            partial += 1
            problems.extend(f"kill {k}: {p}" for p in result["problems"])
        sizes.append(result["size"])
        if log is not None and (k + 1) % 10 == 0:
            log(f"crash: {k + 1}/{kills} kills, {result['size']} entries, "
                f"{len(acked)} acknowledged, lost {lost_total}, partial {partial}")
    data_file = setup.path / "data.mdb"
    return {
        "kills": kills,
        "entries": sizes[-1],
        "acknowledged": len(acked),
        "committed_not_acknowledged": sizes[-1] - setup.base_size - len(acked),
        "kills_that_grew_the_log": sum(b > a for a, b in zip(sizes, sizes[1:])),
        "data_file_bytes": data_file.stat().st_size,
        "writer_not_ready": not_ready,
        "lost": lost_total,
        "partial": partial,
        "problems": problems[:20],
        "seconds": round(time.perf_counter() - t0, 1),
    }
