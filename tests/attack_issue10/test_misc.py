"""Two Ledger objects in one thread, close() under load, many threads."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import verifier as v
from ledger import Ledger
from tests.attack_issue10.common import new_ledger


def test_two_ledgers_one_thread_batch_then_record(tmp_path: Path) -> None:
    led, keys, pipe = new_ledger(tmp_path / "s")
    other = Ledger.open(tmp_path / "s", log_key=keys.log, signer=pipe)
    t0 = time.monotonic()
    with led.batch():
        led.record("m0", "b")
        with pytest.raises(ValueError):
            other.record("m1", "x")
    assert time.monotonic() - t0 < 1
    other.close()
    led.close()


def test_close_while_threads_write(tmp_path: Path) -> None:
    led, keys, _ = new_ledger(tmp_path / "s")
    acks: list[str] = []
    errs: list[BaseException] = []
    stop = threading.Event()

    def w(k: int) -> None:
        while not stop.is_set():
            try:
                acks.append(led.record(f"m{k % 3}", "e").snapshot_hash)
            except ValueError:
                return
            except BaseException as exc:  # noqa: BLE001
                errs.append(exc)
                return

    ts = [threading.Thread(target=w, args=(k,)) for k in range(16)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    led.close()
    stop.set()
    for t in ts:
        t.join(10)
        assert not t.is_alive()
    led2 = Ledger.open(tmp_path / "s")
    stored = {v.parse_entry(led2.entry(i)).snapshot_hash for i in range(led2.size)}
    assert not errs, errs[:3]
    assert all(a in stored for a in acks)
    led2.audit()
    led2.close()


def test_two_thousand_threads(tmp_path: Path) -> None:
    led, keys, _ = new_ledger(tmp_path / "s")
    out: list[Any] = []

    def w(k: int) -> None:
        try:
            out.append(led.record(f"m{k % 3}", "e").snapshot_hash)
        except BaseException as exc:  # noqa: BLE001
            out.append(exc)

    ts = [threading.Thread(target=w, args=(k,)) for k in range(2000)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    bad = [o for o in out if isinstance(o, BaseException)]
    assert not bad, bad[:3]
    assert len(set(out)) == 2000
    led.audit()
    vi = v.verify_bundle(led.export_bundle(), [keys.log.key])
    assert vi.inventory.models == led.inventory_at()
