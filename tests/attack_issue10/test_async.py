"""Batches and asyncio: context variables are copied into tasks and to_thread."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from ledger import StoreError
from tests.attack_issue10.common import new_ledger


def test_task_outside_a_batch_blocks_the_loop_for_write_timeout(tmp_path: Path) -> None:
    """Task A holds a batch across an await; task B (created outside it) writes through
    the ledger in the same thread while another thread's write leads (waiting for the
    lock A's batch holds). B's record() blocks the event loop thread in _wait, so A can
    never end its batch: the loop is frozen for write_timeout, the other thread's write
    fails StoreBusyError, then B gets ValueError. Expected (§15): 'a thread that asks for a
    second write transaction on a store while its batch is open gets ValueError instead
    of waiting for itself' -- at once, and the other thread's write should just wait."""
    led, _, _ = new_ledger(tmp_path / "s")
    led.write_timeout = 3.0
    other_err: list[BaseException] = []

    def other_thread() -> None:
        try:
            led.record("m2", "other_thread")
        except BaseException as exc:  # noqa: BLE001
            other_err.append(exc)

    async def a(in_batch: asyncio.Event, go: asyncio.Event) -> None:
        with led.batch():
            led.record("m0", "task_a")
            in_batch.set()
            await go.wait()

    async def b(in_batch: asyncio.Event, go: asyncio.Event) -> float:
        await in_batch.wait()
        t = threading.Thread(target=other_thread)
        t.start()
        await asyncio.sleep(0.2)  # the other thread leads, blocked on the batch's lock
        t0 = time.monotonic()
        try:
            led.record("m1", "task_b")
        except ValueError:
            pass
        finally:
            go.set()
        return time.monotonic() - t0

    async def main() -> float:
        in_batch, go = asyncio.Event(), asyncio.Event()
        ta = asyncio.create_task(a(in_batch, go))
        waited = await b(in_batch, go)
        await ta
        return waited

    waited = asyncio.run(main())
    assert waited < 1.0 and not other_err, (
        f"the event loop thread waited {waited:.1f} s for its own batch; the other "
        f"thread's write got {other_err!r}")


def test_task_created_in_a_batch_writes_after_it_ended(tmp_path: Path) -> None:
    """A task created inside ``with ledger.batch()`` inherits the batch's context
    variable; if it runs after the block (no await in the block), its ledger.record()
    is sent to the ended batch and raises StoreError 'this batch has ended' instead of
    writing through the group commit."""
    led, _, _ = new_ledger(tmp_path / "s")

    async def later() -> None:
        await asyncio.sleep(0)
        led.record("m0", "from_task")

    async def main() -> None:
        with led.batch():
            led.record("m1", "in_batch")
            task = asyncio.create_task(later())
        await task

    try:
        asyncio.run(main())
    except StoreError as exc:
        pytest.fail(f"a plain ledger.record() in a task raised {exc!r}")


def test_to_thread_read_inside_a_batch_raises(tmp_path: Path) -> None:
    """``asyncio.to_thread`` copies the context: a read (ledger.size, history) run there
    while the caller's batch is open raises ValueError ('a batch is used only by the
    thread that opened it'). Docs: 'Readers never wait for a writer'; another thread's
    writes 'wait until it ends' -- here they raise instead."""
    led, _, _ = new_ledger(tmp_path / "s")

    async def main() -> list[str]:
        errs: list[str] = []
        with led.batch():
            led.record("m1", "in_batch")
            for fn in (lambda: led.size, lambda: led.history("m0")):
                try:
                    await asyncio.to_thread(fn)
                except ValueError as exc:
                    errs.append(str(exc))
        return errs

    errs = asyncio.run(main())
    assert not errs, errs
