"""The crash part's writer process: appends signed events for ever (per-call
commits, batches of random sizes, some big enough to spread their signature checks
over threads, registrations and tag moves), and after each
acknowledgement appends the acknowledged snapshot hashes to a side file and
fsyncs it. The parent kills it with SIGKILL at a random moment.

    python -m tests.reliability.crash_writer STORE LOG_KEY KEY SIDE_FILE SEED
"""

from __future__ import annotations

import os
import random
import sys

from ledger import Ledger
from tests.reliability.common import open_writer

BIG_BATCH = 512


def payload(rng: random.Random, n: int) -> dict[str, object]:
    """Small mostly; now and then ~20 KB, so entries spill over pages."""
    body: dict[str, object] = {"n": n, "auc": round(rng.random(), 6)}
    if rng.random() < 0.05:
        body["blob"] = os.urandom(10_000).hex()
    return body


def run(led: Ledger, side: int, rng: random.Random, pid: int) -> None:
    models = sorted(led.inventory_at())
    n = 0

    def ack(kind: str, hashes: list[str]) -> None:
        # only now, after the write call (or the batch block) returned, is it acknowledged
        os.write(side, "".join(f"{h} {kind}\n" for h in hashes).encode())
        os.fsync(side)

    while True:
        n += 1
        r = rng.random()
        if r < 0.45:
            snap = led.record(rng.choice(models), "retrained", payload(rng, n))
            ack("call", [snap.snapshot_hash])
        elif r < 0.9:
            # now and then a batch big enough to check its signatures on several threads
            size = rng.randint(2, 40) if r < 0.87 else BIG_BATCH + rng.randint(1, 200)
            hashes = []
            with led.batch():
                for _ in range(size):
                    hashes.append(led.record(rng.choice(models), "monitored",
                                             payload(rng, n)).snapshot_hash)
            ack("batch", hashes)
        elif r < 0.95:
            name = f"crash-{pid}-{n}"
            ref = led.register(name=name, owner="risk-team", model_type="ml_model",
                               tier="low", purpose="made by the crash writer")
            models.append(name)
            ack("call", [ref.snapshot.snapshot_hash])
        else:
            tag = led.tag(rng.choice(models), rng.choice(["production", "staging"]))
            ack("call", [tag.moved.snapshot_hash])


def main(argv: list[str]) -> None:
    store, log_key, key, side_file, seed = argv
    led = open_writer(store, log_key, key)
    side = os.open(side_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    run(led, side, random.Random(int(seed)), os.getpid())


if __name__ == "__main__":
    main(sys.argv[1:])
