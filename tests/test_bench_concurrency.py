"""The concurrency bench's smoke run: it prints one JSON object, writes something at every
thread count and in processes, and its own check finds every acknowledged write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_concurrency_quick(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_concurrency.py"), "--quick", "--no-peer",
         "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    runs = {f"threads {n}": r for n, r in doc["ours"]["threads"].items()}
    runs["processes"] = doc["ours"]["processes"]
    assert set(runs) == {"threads 1", "threads 4", "processes"}
    for label, r in runs.items():
        assert "error" not in r, (label, r)
        assert r["writes"] > 0, (label, r)
        assert r["lost"] == 0, (label, r)
        assert r["wrong_hash"] == 0 and r["duplicates"] == 0, (label, r)
        assert r["entries_added"] == r["writes"], (label, r)
        assert r["audit"] == "passed", (label, r)
        assert r["writes_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], (label, r)
    assert doc["peer"] == {"skipped": "--no-peer"}
    assert doc["machine"]["cpus"] >= 1 and doc["machine"]["store_dir"]["fs"]
    assert set(doc["targets"]) >= {"threads_16_writes_per_s", "threads_1_writes_per_s",
                                   "threads_16_p99_ms"}
    assert not list(tmp_path.glob("modelseal-bench-*")), "the bench left a store behind"
