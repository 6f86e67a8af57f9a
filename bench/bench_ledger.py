"""Ledger benchmark: prints one JSON object (progress on stderr).

Default scale is model-ledger's published one: 28,800 models and 212,000
events; --big N then grows the same store to N entries and measures again,
to show how costs grow. Writes go to a store in a temporary directory on the
working disk, with full fsync on every commit (the shipping setting).

    python bench/bench_ledger.py [--models 28800] [--events 212000] [--big 1000000]
    python bench/bench_ledger.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import verifier  # noqa: E402
from ledger import ActorKey, Ledger, LogKey  # noqa: E402

EVENTS = ["retrained", "deployed", "monitored", "drift_checked", "validated", "retrained"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Clock:
    """Simulated time: 2 seconds per reading, from 2024-01-01."""

    def __init__(self) -> None:
        self.t = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=2)
        return self.t


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds else float("inf")


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def payload(rng: random.Random, i: int) -> dict[str, object]:
    return {"accuracy": round(rng.uniform(0.8, 0.99), 4), "auc": round(rng.uniform(0.8, 0.99), 4),
            "rows": rng.randrange(10_000, 5_000_000), "run_id": f"run-{i:08d}",
            "dataset": f"s3://ml-data/train/2024-{rng.randrange(1, 13):02d}"}


def register_args(i: int) -> dict[str, object]:
    return {"name": f"model_{i:06d}", "owner": f"team-{i % 40:02d}", "model_type": "ml_model",
            "tier": ["high", "medium", "low"][i % 3], "purpose": f"Scoring use case {i}",
            "metadata": {"framework": ["xgboost", "pytorch", "sklearn"][i % 3], "version": "1.0"}}


def disk(path: Path, ledger: Ledger) -> dict[str, float]:
    size = (path / "data.mdb").stat().st_size
    store = ledger._store
    with store.env.begin() as txn:
        pages = sum(txn.stat(db)["branch_pages"] + txn.stat(db)["leaf_pages"]
                    + txn.stat(db)["overflow_pages"] for db in store.db.values())
        per_db = {name: round((txn.stat(db)["branch_pages"] + txn.stat(db)["leaf_pages"]
                               + txn.stat(db)["overflow_pages"]) * 4096 / ledger.size, 1)
                  for name, db in store.db.items()}
    n = ledger.size
    return {"file_bytes_per_entry": round(size / n, 1),
            "used_page_bytes_per_entry": round(pages * 4096 / n, 1),
            "used_bytes_per_entry_by_db": per_db}


def measure_reads(ledger: Ledger, rng: random.Random, models: int, past: datetime,
                  repeat: int) -> dict[str, object]:
    out: dict[str, object] = {}
    names = [f"model_{rng.randrange(models):06d}" for _ in range(300)]
    ks, hist = [], []
    for name in names:
        t = time.perf_counter()
        h = ledger.history(name)
        hist.append(time.perf_counter() - t)
        ks.append(len(h))
    out["history_ms_median"] = round(statistics.median(hist) * 1e3, 3)
    out["history_entries_median"] = statistics.median(ks)
    ten = [t for t, k in zip(hist, ks) if 8 <= k <= 12]
    if ten:
        out["history_ms_median_for_8_to_12_entries"] = round(statistics.median(ten) * 1e3, 3)
    now = timed(lambda: ledger.inventory_at(), repeat)
    then = timed(lambda: ledger.inventory_at(past), repeat)
    out["inventory_at_now_ms_median"] = round(statistics.median(now) * 1e3, 1)
    out["inventory_at_past_ms_median"] = round(statistics.median(then) * 1e3, 1)
    out["inventory_models_now"] = len(ledger.inventory_at())
    out["inventory_models_past"] = len(ledger.inventory_at(past))
    size = ledger.size
    incl, cons = [], []
    for _ in range(1000):
        i = rng.randrange(size)
        t = time.perf_counter()
        ledger.prove_inclusion(i)
        incl.append(time.perf_counter() - t)
        old = rng.randrange(1, size)
        t = time.perf_counter()
        ledger.prove_consistency(old)
        cons.append(time.perf_counter() - t)
    out["prove_inclusion_us_median"] = round(statistics.median(incl) * 1e6, 1)
    out["prove_consistency_us_median"] = round(statistics.median(cons) * 1e6, 1)
    return out


def one_model(ledger: Ledger, rng: random.Random, events: int, batch: int) -> dict[str, object]:
    """Record cost as one model's own history grows: batched rates over its first and last
    ``2 * batch`` events, and history() time for the whole chain (O(k) in its own events)."""
    ledger.register(**{**register_args(0), "name": "hot_model"})  # type: ignore[arg-type]
    rates = []
    for start in range(0, events, batch):
        t = time.perf_counter()
        with ledger.batch():
            for i in range(start, min(start + batch, events)):
                ledger.record("hot_model", EVENTS[i % len(EVENTS)], payload(rng, i))
        rates.append(rate(min(batch, events - start), time.perf_counter() - t))
    hist = timed(lambda: ledger.history("hot_model"), 5)
    return {"one_model_events": events,
            "one_model_record_batched_per_s_first": round(statistics.mean(rates[:2]), 1),
            "one_model_record_batched_per_s_last": round(statistics.mean(rates[-2:]), 1),
            "one_model_history_ms": round(statistics.median(hist) * 1e3, 1),
            "one_model_history_us_per_entry": round(statistics.median(hist) * 1e6 / (events + 1),
                                                    2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", type=int, default=28_800)
    ap.add_argument("--events", type=int, default=212_000)
    ap.add_argument("--percall", type=int, default=3_000, help="writes measured one commit each")
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--big", type=int, default=0, help="then grow to this many entries")
    ap.add_argument("--no-verify", action="store_true", help="skip verify_bundle timing")
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--audit", action="store_true", help="also time a full audit()")
    ap.add_argument("--dir", default=None, help="where to put the store (default: a temp dir)")
    a = ap.parse_args()
    if a.quick:
        a.models, a.events, a.percall, a.big = 300, 2_000, 200, 0
    rng = random.Random(7)
    base = Path(tempfile.mkdtemp(prefix="modelseal-bench-", dir=a.dir or os.getcwd()))
    result: dict[str, object] = {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
        "models": a.models, "events": a.events, "durability": "fsync on every commit",
    }
    try:
        clock = Clock()
        log_key, admin, pipe = LogKey.generate(), ActorKey.generate("risk-admin"), \
            ActorKey.generate("ml-pipeline")
        ledger = Ledger.create(base / "store", origin="bench.example/models", log_key=log_key,
                               admin=admin, clock=clock)
        ledger.grant(pipe.vkey, role="writer")
        ledger.signer = pipe

        pc = min(a.percall, a.models)
        t = time.perf_counter()
        for i in range(pc):
            ledger.register(**register_args(i))  # type: ignore[arg-type]
        result["register_per_call_per_s"] = rate(pc, time.perf_counter() - t)
        t = time.perf_counter()
        for start in range(pc, a.models, a.batch):
            with ledger.batch():
                for i in range(start, min(start + a.batch, a.models)):
                    ledger.register(**register_args(i))  # type: ignore[arg-type]
        result["register_batched_per_s"] = rate(a.models - pc, time.perf_counter() - t)
        log(f"registered {a.models}")

        def record(i: int) -> None:
            name = f"model_{rng.randrange(a.models):06d}"
            ledger.record(name, EVENTS[i % len(EVENTS)], payload(rng, i))

        pc = min(a.percall, a.events)
        t = time.perf_counter()
        for i in range(pc):
            record(i)
        result["record_per_call_per_s"] = rate(pc, time.perf_counter() - t)
        past = clock.t
        t = time.perf_counter()
        for start in range(pc, a.events, a.batch):
            with ledger.batch():
                for i in range(start, min(start + a.batch, a.events)):
                    record(i)
        result["record_batched_per_s"] = rate(a.events - pc, time.perf_counter() - t)
        result["entries"] = ledger.size
        log(f"recorded {a.events}; size {ledger.size}")
        past = past + (clock.t - past) / 2
        result.update(measure_reads(ledger, rng, a.models, past, 5))
        t = time.perf_counter()
        bundle = ledger.export_bundle(at=past)
        result["export_bundle_s"] = round(time.perf_counter() - t, 2)
        result["bundle_bytes"] = len(bundle)
        if not a.no_verify:
            t = time.perf_counter()
            v = verifier.verify_bundle(bundle, [log_key.key])
            dt = time.perf_counter() - t
            result["verify_bundle_s"] = round(dt, 2)
            result["verify_bundle_entries"] = v.size
            result["verify_bundle_entries_per_s"] = rate(v.size, dt)
        result.update(disk(base / "store", ledger))
        result.update(one_model(ledger, rng, 2_000 if a.quick else 20_000, a.batch))
        log("one model's history grown")
        if a.big > ledger.size:
            log(f"growing to {a.big}")
            big: dict[str, object] = {}
            i = a.events
            curve: dict[str, float] = {}  # batched rate over each step of 100,000 entries
            t, n0 = time.perf_counter(), ledger.size
            while ledger.size < a.big - 20_000:
                with ledger.batch():
                    for _ in range(a.batch):
                        record(i)
                        i += 1
                if ledger.size - n0 >= 100_000:
                    curve[str(ledger.size)] = rate(ledger.size - n0, time.perf_counter() - t)
                    t, n0 = time.perf_counter(), ledger.size
            big["record_batched_per_s_by_size"] = curve
            t = time.perf_counter()
            n0 = ledger.size
            while ledger.size < a.big - 500:
                with ledger.batch():
                    for _ in range(a.batch):
                        record(i)
                        i += 1
            big["record_batched_per_s"] = rate(ledger.size - n0, time.perf_counter() - t)
            t = time.perf_counter()
            n0 = ledger.size
            while ledger.size < a.big:
                record(i)
                i += 1
            big["record_per_call_per_s"] = rate(ledger.size - n0, time.perf_counter() - t)
            big["entries"] = ledger.size
            big.update(measure_reads(ledger, rng, a.models, past, 3))
            big.update(disk(base / "store", ledger))
            result["at_big"] = big
        if a.audit:
            t = time.perf_counter()
            result["audit_entries"] = ledger.audit()
            result["audit_s"] = round(time.perf_counter() - t, 2)
        ledger.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
