"""The concurrency bench's smoke run: it prints one JSON object, writes something at every
thread count and in processes, and its own check finds every acknowledged write."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_concurrency", REPO / "bench" / "bench_concurrency.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_check_finds_lost_and_unacknowledged_writes(tmp_path: Path) -> None:
    """The bench's check is not blind: an acknowledgement with nothing behind it is lost,
    an entry nobody acknowledged is reported, and either fails the run."""
    bench = load_bench()
    side = bench.Ours()
    side.setup(tmp_path, 3)
    base = side.size(tmp_path)
    side.start_threads(tmp_path)
    acks = [(f"r{i}", side.record(side.shared, f"model_{i:06d}", {"run_id": f"r{i}"}))
            for i in range(3)]
    side.record(side.shared, "model_000000", {"run_id": "never-acknowledged"})
    got = side.check(tmp_path, acks + [("ghost", "00" * 32)], base, 3, 0)
    assert got["lost"] == 1 and got["not_found_by_hash"] == 1, got
    assert got["not_once_in_history"] == 1 and got["unacknowledged_in_log"] == 1, got
    assert got["wrong_hash"] == 0 and got["duplicates"] == 0, got
    assert got["audit"] == "passed" and got["ok"] is False, got
    side.start_threads(tmp_path)
    again = side.check(tmp_path, acks + [("never-acknowledged", acks[0][1])], base, 3, 0)
    assert again["wrong_hash"] == 1 and again["unacknowledged_in_log"] == 0, again
    assert again["not_once_in_history"] == 0 and again["ok"] is False, again
