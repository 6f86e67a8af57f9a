"""The HTTP bench's smoke run: it prints one JSON object, a real ``modelseal serve`` takes
writes at every client count, and the bench's own check finds every acknowledged write;
once with wrk (skipped where wrk is not installed) and once with the Python fallback."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("loadgen", ["wrk", "python"])
def test_bench_server_quick(tmp_path: Path, loadgen: str) -> None:
    if loadgen == "wrk" and shutil.which("wrk") is None:
        # CI installs wrk and sets MODELSEAL_REQUIRE_WRK=1: there, its absence fails
        absent = pytest.fail if os.environ.get("MODELSEAL_REQUIRE_WRK") == "1" else pytest.skip
        absent("wrk is not installed (Debian: apt-get install wrk); the Python "
               "fallback generator is tested on its own")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_server.py"), "--quick", "--no-peer",
         "--no-install", "--loadgen", loadgen, "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    gen = doc["machine"]["load_generator"]
    assert gen["tool"] == ("wrk" if loadgen == "wrk" else "python-asyncio"), gen
    runs = doc["ours"]["clients"]
    assert set(runs) == {"1", "4"}
    for c, r in runs.items():
        assert "error" not in r, (c, r)
        assert r["clients"] == int(c) and r["threads"] == min(int(c), 2), (c, r)
        assert r["acknowledged"] > 0 and r["status"].get("201") == r["acknowledged"], (c, r)
        assert r["errors"] == 0 and r["duplicates_answered"] == 0, (c, r)
        assert r["writes_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], (c, r)
        assert not r["bodies"]["wrapped"] and r["server_exit"] == 0, (c, r)
        # the check ran: every 201 found once, nothing else in the log but bodies in flight
        assert r["acknowledged_total"] >= r["acknowledged"], (c, r)
        assert r["lost"] == 0 and r["wrong_hash"] == 0 and r["duplicates"] == 0, (c, r)
        assert r["not_once_in_history"] == 0 and r["never_sent_in_log"] == 0, (c, r)
        assert r["unacknowledged_in_log"] <= r["in_flight_at_stop"], (c, r)
        assert r["entries_added"] == r["acknowledged_total"] + r["unacknowledged_in_log"], r
        assert r["audit"] == "passed" and r["ok"] is True, (c, r)
    assert doc["ours"]["facts"]["store_sync"] is True
    assert doc["peer"] == {"skipped": "--no-peer"}
    assert doc["machine"]["cpus"] >= 1 and doc["machine"]["store_dir"]["fs"]
    assert len(doc["machine"]["loadavg_start"]) == 3
    assert set(doc["targets"]) == {"clients_16_writes_per_s", "clients_16_vs_peer",
                                   "clients_16_p99_ms", "zero_errors",
                                   "clients_1_writes_per_s", "all_pass"}
    assert doc["targets"]["zero_errors"]["pass"] is True
    assert doc["targets"]["clients_16_vs_peer"]["pass"] is None  # no peer, no 16 clients
    assert not list(tmp_path.glob("modelseal-bench-*")), "the bench left a store behind"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_server", REPO / "bench" / "bench_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_server_check_is_not_blind() -> None:
    """An acknowledgement with nothing behind it is lost; more unacknowledged entries
    than requests in flight means a refused write left one; either fails the run."""
    bench = load_bench()
    sent = {"a", "b", "c"}
    good = bench.verdict(["h1", "h2"], {"h1": "a", "h2": "b"}, Counter({"a": 1, "b": 1, "c": 1}),
                         {"a": "h1", "b": "h2", "c": "h3"}, Counter({"h1": 1, "h2": 1}), sent,
                         3, 1, 0, "passed")
    assert good["ok"] and good["unacknowledged_in_log"] == 1, good
    lost = bench.verdict(["h1", "h9"], {"h1": "a"}, Counter({"a": 1}), {"a": "h1"},
                         Counter({"h1": 1}), sent, 1, 0, 0, "passed")
    assert lost["lost"] == 1 and lost["not_once_in_history"] == 1 and not lost["ok"], lost
    refused = bench.verdict(["h1"], {"h1": "a"}, Counter({"a": 1, "b": 1, "c": 1}),
                            {"a": "h1", "b": "h2", "c": "h3"}, Counter({"h1": 1}), sent,
                            3, 1, 1, "passed")
    assert refused["refused_left_an_entry"] and not refused["ok"], refused
    foreign = bench.verdict([], {}, Counter({"z": 2}), {"z": "h"}, Counter(), sent, 2, 5, 0,
                            "passed")
    assert foreign["never_sent_in_log"] == 1 and foreign["duplicates"] == 1, foreign
    assert not foreign["ok"]
