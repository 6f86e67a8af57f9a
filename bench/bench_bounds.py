"""Upper bounds that this machine puts on the throughput targets of issues 10, 11 and 13.

Prints one JSON object. Every figure is measured here, in this run; the bounds are
arithmetic on them, stated with what they assume:

- ``writer``: the ledger's own write path (200 models, one pipeline key).
  - ``per_call_us``: one thread, ``record()`` one write at a time, every commit synced, on
    the working disk (a temporary directory under the current one, or --dir) and on tmpfs
    (/dev/shm). Their difference, ``sync_share_us``, is what the synced commit of one
    write's pages costs on the disk: one thread cannot beat ``1e6 / sync_share_us`` writes
    a second even with no CPU work at all.
  - ``batched_us``: one thread's writes in batches of --batch on tmpfs (one commit a
    batch): the per-write CPU of the write path with no disk. A group commit runs the same
    CPU under the GIL, so no number of threads beats ``1e6 / batched_us``, less the
    Ed25519 work that libsodium does without the GIL (``gil_bound_per_s``: signing and
    checking the statement, which other threads may do on the second core).
- ``verifier``: Ed25519 verification through ``cryptography`` (the verifier's only
  signature library) and libsodium (the writer's), one core. With ``cpus`` cores and
  nothing else to do, checking --entries signatures takes at least
  ``signature_floor_s`` of wall time; reading, parsing, hashing and replaying the entries
  come on top.

    python bench/bench_bounds.py [--n 1500] [--batch 1000] [--entries 240802] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair

import ledger as lg

MODELS = 200


def _median_us(fn: Callable[[], object], n: int, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the mean time of ``n`` calls, in µs."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n)
    return round(statistics.median(runs) * 1e6, 1)


def ed25519_us(n: int) -> dict[str, float]:
    """Sign and verify a 600-byte message, one core: cryptography and libsodium."""
    message = os.urandom(600)
    key = Ed25519PrivateKey.generate()
    public, sig = key.public_key(), key.sign(message)
    pk, sk = crypto_sign_seed_keypair(os.urandom(32))
    signed = crypto_sign(message, sk)
    return {
        "cryptography_verify_us": _median_us(lambda: public.verify(sig, message), n),
        "libsodium_verify_us": _median_us(lambda: crypto_sign_open(signed, pk), n),
        "libsodium_sign_us": _median_us(lambda: crypto_sign(message, sk), n),
    }


def _store(work: Path) -> tuple[lg.LogKey, lg.ActorKey]:
    """A store in ``work`` with MODELS models and a pipeline key allowed to write."""
    log_key, admin = lg.LogKey.generate(), lg.ActorKey.generate("risk-admin")
    pipe = lg.ActorKey.generate("ml-pipeline")
    with lg.Ledger.create(work / "store", origin="bench.example/models", log_key=log_key,
                          admin=admin) as led:
        led.grant(pipe.vkey, role="writer")
        led.signer = pipe
        with led.batch():
            for i in range(MODELS):
                led.register(name=f"model_{i:06d}", owner="team", model_type="ml_model",
                             tier="high", purpose="bench", metadata={})
    return log_key, pipe


def writes_us(base: Path, n: int, batch: int) -> float:
    """Mean µs a write over ``n`` records in a new store under ``base``: one per call
    (batch 0) or ``batch`` per commit."""
    work = Path(tempfile.mkdtemp(prefix="modelseal-bounds-", dir=base))
    rng = random.Random(7)
    try:
        log_key, pipe = _store(work)
        with lg.Ledger.open(work / "store", log_key=log_key, signer=pipe) as led:
            t = time.perf_counter()
            done = 0
            while done < n:
                todo = min(batch or 1, n - done)
                if batch:
                    with led.batch():
                        for k in range(todo):
                            _record(led, rng, done + k)
                else:
                    _record(led, rng, done)
                done += todo
            return round((time.perf_counter() - t) / n * 1e6, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _record(led: lg.Ledger, rng: random.Random, k: int) -> None:
    led.record(f"model_{rng.randrange(MODELS):06d}", "evaluated",
               {"accuracy": 0.9, "run_id": f"run-{k}", "rows": 1000})


def main() -> None:
    try:
        _main()
    except KeyboardInterrupt:
        print("bench_bounds: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except OSError as exc:
        print(f"bench_bounds: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1500, help="writes measured per figure")
    ap.add_argument("--batch", type=int, default=1000, help="writes per batch")
    ap.add_argument("--entries", type=int, default=240_802,
                    help="signatures for the verifier's floor (issue 13's scale)")
    ap.add_argument("--dir", default=None, help="the working disk (default: under cwd)")
    a = ap.parse_args()
    disk = Path(a.dir or os.getcwd())
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        raise SystemExit("bench_bounds: needs a writable /dev/shm (tmpfs) for the no-disk figures")
    cpus = len(os.sched_getaffinity(0))
    load_start = os.getloadavg()
    crypto = ed25519_us(2000)
    disk_us = writes_us(disk, a.n, 0)
    tmpfs_us = writes_us(shm, a.n, 0)
    batched = writes_us(shm, max(a.n, a.batch * 3), a.batch)
    sync_share = round(disk_us - tmpfs_us, 1)
    gil_us = batched - crypto["libsodium_sign_us"] - crypto["libsodium_verify_us"]
    floor = a.entries * crypto["cryptography_verify_us"] / 1e6 / cpus
    out: dict[str, Any] = {
        "cpus": cpus,
        "ed25519": crypto,
        "writer": {
            "per_call_us": {"disk": disk_us, "tmpfs": tmpfs_us},
            "per_call_per_s": {"disk": round(1e6 / disk_us), "tmpfs": round(1e6 / tmpfs_us)},
            "sync_share_us": sync_share,
            "one_thread_bound_per_s_with_no_cpu": round(1e6 / sync_share) if sync_share > 0
            else None,
            "batched_us": batched,
            "batched_per_s": round(1e6 / batched),
            "gil_bound_per_s": round(1e6 / gil_us) if gil_us > 0 else None,
        },
        "verifier": {
            "entries": a.entries,
            "signature_floor_s": round(floor, 1),
            "signature_cpu_s": round(a.entries * crypto["cryptography_verify_us"] / 1e6, 1),
        },
        "loadavg": {"start": load_start, "end": os.getloadavg()},
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
