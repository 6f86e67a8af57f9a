"""write_timeout bounds, and a full disk in the middle of a group."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import lmdb
import pytest

import verifier as v
from ledger import StoreError
from ledger.errors import StoreBusyError, StoreFullError
from ledger._store import Store
from tests.attack_issue10.common import new_ledger


def test_a_queued_write_waits_about_twice_write_timeout(tmp_path: Path) -> None:
    """Docs: 'A write waits at most ledger.write_timeout seconds for its turn while another
    thread of the process holds the store'. A batch holds the store; B leads and waits
    write_timeout for the lock; C, queued just after B, is handed the lead when B fails
    and then waits write_timeout again: C waits ~2x the bound."""
    led, _, _ = new_ledger(tmp_path / "s")
    led.write_timeout = 1.0
    in_batch, end = threading.Event(), threading.Event()

    def holder() -> None:
        with led.batch():
            in_batch.set()
            end.wait(10)

    th = threading.Thread(target=holder)
    th.start()
    in_batch.wait(5)
    tb = threading.Thread(target=lambda: pytest.raises(StoreBusyError, led.record, "m0", "b"))
    tb.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    with pytest.raises(StoreBusyError):
        led.record("m1", "c")
    waited = time.monotonic() - t0
    end.set()
    th.join(5)
    tb.join(5)
    assert waited <= 1.2, f"waited {waited:.2f} s with write_timeout 1 s"


class _Txn:
    def __init__(self, txn: lmdb.Transaction) -> None:
        self._t = txn

    def commit(self) -> None:
        self._t.abort()
        raise lmdb.Error("mdb_txn_commit: No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *a: Any) -> None:
        self._t.abort()


def test_disk_full_mid_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    led, keys, _ = new_ledger(tmp_path / "s")
    before = led.size
    orig = Store.begin
    full = {"on": True}

    def begin(self: Store, *, write: bool = False) -> Any:
        txn = orig(self, write=write)
        return _Txn(txn) if write and full["on"] else txn

    monkeypatch.setattr(Store, "begin", begin)
    out: list[Any] = [None] * 12
    bar = threading.Barrier(12)

    def w(i: int) -> None:
        bar.wait()
        try:
            out[i] = led.record(f"m{i % 3}", "e", {"i": i})
        except BaseException as exc:  # noqa: BLE001
            out[i] = exc

    ts = [threading.Thread(target=w, args=(i,)) for i in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert all(isinstance(o, StoreFullError) for o in out), out
    assert led.size == before
    full["on"] = False
    assert led.record("m0", "after").index == before
    led.audit()
    vi = v.verify_bundle(led.export_bundle(), [keys.log.key])
    assert vi.size == led.size
