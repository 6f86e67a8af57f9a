"""Running a batch's deferred signature checks on every core before it commits.

In a batch, the statements the ledger signed itself have their signatures
checked at commit rather than one by one (decision 10): the checks are
independent, and libsodium releases the GIL, so they run on several threads.
A failure aborts the whole batch; nothing of it is stored.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from verifier.replay import PendingSignature

MIN_PER_THREAD = 64  # below this, a thread costs more than it saves


def run_checks(checks: Sequence[PendingSignature]) -> None:
    """Raise the SignatureError of the first check (in order) that fails; else return."""
    workers = min(os.cpu_count() or 1, 4, max(1, len(checks) // MIN_PER_THREAD))
    results = [False] * len(checks)  # fail closed: a thread that dies proves nothing

    def work(start: int) -> None:
        for i in range(start, len(checks), workers):
            results[i] = checks[i].ok()

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(1, workers)]
    for t in threads:
        t.start()
    try:
        work(0)
    finally:
        for t in threads:
            t.join()
    for check, ok in zip(checks, results, strict=True):
        if not ok:
            check.check()  # run again here: raises with the statement named
