"""The bounds bench's smoke run: one JSON object whose derived bounds follow from its own
measured figures, and no store left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHM = Path("/dev/shm")


def _ours(where: Path) -> set[str]:
    return {p.name for p in where.glob("modelseal-bounds-*")}


@pytest.mark.skipif(not (SHM.is_dir() and os.access(SHM, os.W_OK)),
                    reason="bench_bounds measures the no-disk figures on /dev/shm (tmpfs)")
def test_bench_bounds_quick(tmp_path: Path) -> None:
    shm_before = _ours(SHM)
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_bounds.py"), "--n", "40", "--batch", "20",
         "--entries", "1000", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    w, v, e = doc["writer"], doc["verifier"], doc["ed25519"]
    assert doc["cpus"] >= 1
    assert all(x > 0 for x in e.values()), e
    assert w["per_call_us"]["disk"] > 0 and w["per_call_us"]["tmpfs"] > 0
    assert w["per_call_per_s"]["disk"] == round(1e6 / w["per_call_us"]["disk"])
    assert w["sync_share_us"] == round(w["per_call_us"]["disk"] - w["per_call_us"]["tmpfs"], 1)
    assert w["batched_per_s"] == round(1e6 / w["batched_us"])
    gil = w["batched_us"] - e["libsodium_sign_us"] - e["libsodium_verify_us"]
    assert w["gil_bound_per_s"] == (round(1e6 / gil) if gil > 0 else None)
    assert v["entries"] == 1000
    assert v["signature_cpu_s"] == round(1000 * e["cryptography_verify_us"] / 1e6, 1)
    assert v["signature_floor_s"] == round(1000 * e["cryptography_verify_us"] / 1e6
                                           / doc["cpus"], 1)
    assert not _ours(tmp_path), "the bench left a store behind on the disk"
    assert _ours(SHM) <= shm_before, "the bench left a store behind on tmpfs"
