"""bench/bench_bounds.py as a new user meets it: Ctrl-C while it runs, and a working
directory it cannot write."""
# ruff: noqa: E501  (the one-line FINDING comments)

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
SHM = Path("/dev/shm")
needs_shm = pytest.mark.skipif(not (SHM.is_dir() and os.access(SHM, os.W_OK)),
                               reason="bench_bounds needs a writable /dev/shm")


def _ours(where: Path) -> set[str]:
    return {p.name for p in where.glob("modelseal-bounds-*")}


def _interrupt_when_a_store_appears(where: Path) -> tuple[int, str, set[str]]:
    """Start the bench on ``where``, Ctrl-C it as soon as its first store directory exists
    (while the store is being filled), and return (exit code, stderr, dirs left)."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "bench_bounds.py"), "--n", "40", "--batch", "20",
         "--entries", "1000", "--dir", str(where)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=where)
    try:
        deadline = time.monotonic() + 120
        while not _ours(where) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return proc.returncode, err, _ours(where)


@needs_shm
def test_ctrl_c_while_the_store_is_filled_leaves_nothing(tmp_path: Path) -> None:
    # FINDING: low: bench_bounds.py Ctrl-C while it fills a store (_store runs before the try/finally of writes_us) leaves a modelseal-bounds-* directory with a 200-model LMDB store behind (under --dir/cwd, or in /dev/shm, i.e. in RAM), and prints a traceback
    shm_before = _ours(SHM)
    code, err, left = _interrupt_when_a_store_appears(tmp_path)
    shm_left = _ours(SHM) - shm_before
    assert code != 0
    assert left == set() and shm_left == set(), (left, shm_left)
    assert "Traceback" not in err, err[-2000:]


def test_an_unwritable_working_directory_is_said_plainly(tmp_path: Path) -> None:
    """--dir that cannot hold a directory (a regular file: root cannot write into it either):
    a one-line error, not a traceback."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_bounds.py"), "--n", "5", "--batch",
         "5", "--entries", "10", "--dir", str(not_a_dir)], capture_output=True, text=True,
        timeout=300, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-1500:]
    assert proc.stderr.startswith("bench_bounds: ") and "Traceback" not in proc.stderr, \
        proc.stderr[-1500:]
