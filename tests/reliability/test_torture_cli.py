"""bench/torture.py runs (tiny counts, every part) and prints its JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.reliability.common import REPO


def test_torture_script_runs_and_reports() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/torture.py", "--quick", "--kills", "2", "--records", "20",
         "--mutations", "40", "--tamper-trials", "12", "--rollbacks", "1", "--forgeries", "50",
         "--key-modes", "1", "--threads", "4", "--thread-writes", "20",
         "--sigint-batches", "5", "--server-clients", "4", "--server-writes", "5",
         "--server-kills", "1", "--seed", "1"], cwd=REPO, capture_output=True, text=True,
        timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    s = doc["summary"]
    assert doc["ok"] is True
    assert (s["lost"], s["partial"], s["forged_accepted"]) == (0, 0, 0)
    assert s["mutations_tried"] == s["mutations_rejected"] == 40
    assert set(doc["timings_s"]) == {"crash", "concurrency", "tamper", "mutations", "attacks",
                                     "keys", "space", "threads", "server"}
    assert s["server_kills"] == 1 and s["server_missing"] == s["server_duplicates"] == 0
    assert s["threads_missing"] == s["sigint_partial"] == 0 and s["reader_not_blocked"]
