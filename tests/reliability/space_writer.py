"""The space part's writer process: writes (per call and in batches) until the store
reports that the disk (or, simulated, the file size limit) is full, then tries each
kind of write once more; prints what happened as JSON.

    python -m tests.reliability.space_writer STORE LOG_KEY KEY SIDE_FILE FSIZE_LIMIT
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

from ledger import StoreError
from tests.reliability.common import open_writer


def limit_file_size(limit: int) -> None:
    """Writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored): a simulated full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def main(argv: list[str]) -> None:
    store, log_key, key, side_file, limit = argv
    led = open_writer(store, log_key, key)
    if int(limit):
        limit_file_size(int(limit))
    side = os.open(side_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    blob = os.urandom(1500).hex()
    errors: list[tuple[str, str]] = []
    n = written = 0

    def call() -> list[str]:
        return [led.record("m0", "retrained", {"n": n, "blob": blob}).snapshot_hash]

    def batch() -> list[str]:
        with led.batch():
            return [led.record("m0", "monitored", {"n": n, "i": i, "blob": blob}).snapshot_hash
                    for i in range(5)]

    kinds = {"call": call, "batch": batch}

    def attempt(kind: str) -> bool:
        nonlocal n, written
        n += 1
        try:
            hashes = kinds[kind]()
        except StoreError as exc:
            errors.append((kind, str(exc)))
            return False
        written += len(hashes)
        os.write(side, "".join(h + "\n" for h in hashes).encode())
        os.fsync(side)
        return True

    # mixed writes until the disk is full, then each kind of write until it fails too
    while n < 100_000 and attempt("batch" if n % 3 == 2 else "call"):
        pass
    for kind in ("call", "batch"):
        for _ in range(500):
            if not attempt(kind):
                break
    led.close()
    print(json.dumps({"written": written, "errors": errors}))


if __name__ == "__main__":
    main(sys.argv[1:])
