"""Real SIGINTs (setitimer) at random times while the main thread writes in a loop with 8
other threads: checks every answer against the log. Run: python -m tests.attack_issue10.fuzz_sigint N"""
from __future__ import annotations

import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import verifier as v
from ledger import StoreError
from ledger.errors import StoreBusyError
from tests.attack_issue10.common import new_ledger


def one(seed: int) -> list[str]:
    rnd = random.Random(seed)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        led, _, _ = new_ledger(Path(d) / "s")
        led.write_timeout = 3.0
        acks: list[str] = []
        refused: list[str] = []  # event types reported "nothing stored"
        stop = threading.Event()
        lock = threading.Lock()

        def worker(k: int) -> None:
            i = 0
            while not stop.is_set():
                ev = f"w{k}_{i}"
                i += 1
                try:
                    led.record(f"m{k % 3}", ev)
                    with lock:
                        acks.append(ev)
                except StoreBusyError as exc:
                    with lock:
                        refused.append(ev)
                    problems.append(f"busy: {exc}")
                    return
                except StoreError:
                    with lock:
                        refused.append(ev)

        ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(8)]
        for t in ts:
            t.start()
        signal.setitimer(signal.ITIMER_REAL, rnd.uniform(0.05, 0.4))
        signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
        i = 0
        try:
            while True:
                led.record("m0", f"main_{i}")
                i += 1
        except KeyboardInterrupt:
            pass
        except StoreBusyError as exc:
            problems.append(f"main busy: {exc}")
        time.sleep(0.3)
        stop.set()
        for t in ts:
            t.join(8)
        hung = sum(t.is_alive() for t in ts)
        if hung:
            problems.append(f"{hung} worker(s) hung")
        evs = Counter()
        for j in range(led.size):
            st = v.parse_entry(led.entry(j)).statement
            if isinstance(st, v.Event):
                evs[st.event_type] += 1
        for a in acks:
            if evs[a] != 1:
                problems.append(f"acknowledged {a} present {evs[a]} times")
        for r in refused:
            if evs[r]:
                problems.append(f"{r} reported not stored but present")
        if not hung:
            led.close()
    return problems


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    bad = 0
    for s in range(n):
        p = one(s)
        if p:
            bad += 1
            print(s, sorted(set(p))[:4], flush=True)
    print(f"{bad}/{n} runs with problems")
