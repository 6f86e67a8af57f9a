"""The read-only -> writable swap of the first write in a process (store.py)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from ledger import Ledger
from tests.ledger_support import ORIGIN, Keys, register

REPO = Path(__file__).resolve().parents[2]

_BATCH_CHILD = """
import sys, time
from ledger import Ledger, LogKey, ActorKey
led = Ledger.open(sys.argv[1], log_key=LogKey.load(sys.argv[2]), signer=ActorKey.load(sys.argv[3]))
with led.batch():
    led.record("m0", "child_batch")
    print("ready", flush=True)
    time.sleep(float(sys.argv[4]))
"""


def test_first_write_makes_every_reader_of_the_process_wait_for_another_process(
        tmp_path: Path) -> None:
    """Another process holds a batch (LMDB's writer lock) for 4 s. This process opened
    the store read-only; one thread's first write swaps the environment and, inside the
    swap, begins a write transaction that waits for the other process. Meanwhile every
    new read of this process (ledger.size) waits too (enter_read waits while swapping).
    Docs: 'Readers ... never wait for a writer'. Also the write's wait is unbounded by
    write_timeout."""
    keys = Keys()
    with Ledger.create(tmp_path / "s", origin=ORIGIN, log_key=keys.log, admin=keys.admin) as led:
        register(led, "m0")
    log_file = keys.log.save(tmp_path / "log.key")
    admin_file = keys.admin.save(tmp_path / "admin.key")
    child = subprocess.Popen([sys.executable, "-c", _BATCH_CHILD, str(tmp_path / "s"),
                              str(log_file), str(admin_file), "4"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    led = Ledger.open(tmp_path / "s", log_key=keys.log, signer=keys.admin)
    led.write_timeout = 1.0
    w = threading.Thread(target=lambda: led.record("m0", "parent"), daemon=True)
    t0 = time.monotonic()
    w.start()
    time.sleep(0.3)
    r0 = time.monotonic()
    size = led.size  # a plain read
    read_wait = time.monotonic() - r0
    w.join(10)
    write_wait = time.monotonic() - t0
    child.communicate(timeout=10)
    led.close()
    assert read_wait < 0.5, f"a read waited {read_wait:.2f} s for another process's batch"
    assert write_wait < 2.0, f"the write waited {write_wait:.2f} s (write_timeout 1 s)"
