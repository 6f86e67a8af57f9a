"""The floor under a write that is acknowledged only after a synced commit.

Prints one JSON object: on the working disk (a temporary directory under the
current one, or --dir), the cost of
- fdatasync after rewriting one 4 KiB page, and after appending one;
- a raw LMDB commit of one small row into one database (sync + metasync, as
  the ledger opens its store), and of one row into each of N databases;
- the same single-row commit with metasync=False and with writemap=True
  (settings the ledger does not use: shown only to say what bounds what).
No ledger code runs: this is what the disk allows before any work.

    python bench/bench_commit_floor.py [--n 400] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lmdb


def fdatasync_us(base: Path, n: int, append: bool) -> float:
    path = base / ("append.bin" if append else "rewrite.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b"\0" * 4096 * n, 0)
        os.fsync(fd)
        page = os.urandom(4096)
        times = []
        for i in range(n):
            offset = 4096 * (n + i) if append else 4096 * i
            t = time.perf_counter()
            os.pwrite(fd, page, offset)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    return round(statistics.median(times) * 1e6, 1)


def lmdb_commit_us(base: Path, n: int, dbs: int, **flags: Any) -> float:
    path = base / f"lmdb-{dbs}-{'-'.join(sorted(flags)) or 'sync'}"
    settings: dict[str, Any] = {"sync": True, "metasync": True, **flags}
    env = lmdb.open(str(path), map_size=1 << 30, max_dbs=max(dbs, 1), subdir=True,
                    readahead=False, **settings)
    try:
        handles = [env.open_db(f"db{i}".encode()) for i in range(dbs)]
        with env.begin(write=True) as txn:  # some rows, so every tree has depth
            for db in handles:
                for j in range(5_000):
                    txn.put(j.to_bytes(8, "big"), os.urandom(60), db=db)
        times = []
        for i in range(n):
            t = time.perf_counter()
            with env.begin(write=True) as txn:
                for db in handles:
                    txn.put((10_000 + i).to_bytes(8, "big"), os.urandom(60), db=db)
            times.append(time.perf_counter() - t)
    finally:
        env.close()
    return round(statistics.median(times) * 1e6, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=400, help="commits measured per figure")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="modelseal-floor-", dir=a.dir or os.getcwd()))
    try:
        one = lmdb_commit_us(base, a.n, 1)
        out: dict[str, Any] = {
            "fdatasync_rewrite_4k_us": fdatasync_us(base, a.n, append=False),
            "fdatasync_append_4k_us": fdatasync_us(base, a.n, append=True),
            "lmdb_commit_1_row_us": one,
            "lmdb_commit_1_row_max_per_s": round(1e6 / one),
            "lmdb_commit_1_row_per_db_us": {str(k): lmdb_commit_us(base, a.n, k)
                                            for k in (2, 4, 8, 11)},
            "not_used_lmdb_commit_1_row_metasync_off_us":
                lmdb_commit_us(base, a.n, 1, metasync=False),
            "not_used_lmdb_commit_1_row_writemap_us": lmdb_commit_us(base, a.n, 1, writemap=True),
            "loadavg": os.getloadavg(),
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
