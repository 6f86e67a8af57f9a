"""Part 2, concurrency: writer processes append signed records into one store at once
while reader processes ask for inventories and proofs. Each process opens its own
LMDB environment (spawned, never forked after opening); batches in one process make
the others' writes wait, and readers never wait for any of them."""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import verifier as v
from ledger import Ledger
from tests.reliability.common import build_store, open_writer

def writer(store: str, log_key: str, key: str, name: str, records: int, seed: int,
           out: str, start: Any) -> None:
    """Append ``records`` events (per call, and batches of 2..10) signed by ``name``."""
    rng = random.Random(seed)
    led = open_writer(store, log_key, key)
    models = sorted(led.inventory_at())
    done: list[tuple[int, str]] = []
    start.wait()
    i = 0
    while i < records:
        if rng.random() < 0.2:
            n = min(records - i, rng.randint(2, 10))
            got = []
            with led.batch():
                for j in range(i, i + n):
                    got.append((j, led.record(rng.choice(models), "load",
                                              {"w": name, "i": j}).snapshot_hash))
            done.extend(got)  # acknowledged when the batch has committed
            i += n
        else:
            done.append((i, led.record(rng.choice(models), "load",
                                       {"w": name, "i": i}).snapshot_hash))
            i += 1
    led.close()
    Path(out).write_text(json.dumps({"done": done}))


def reader(store: str, log_vkey: str, seed: int, out: str, start: Any, stop: Any) -> None:
    """Until ``stop``: inventories at random times, inclusion and consistency proofs,
    each checked against the checkpoint it came with; every checkpoint seen is kept."""
    rng = random.Random(seed)
    keys = [v.VerifierKey.parse(log_vkey)]
    led = Ledger.open(store)
    seen: dict[int, str] = {}
    errors: list[str] = []
    rounds = 0
    last: v.Checkpoint | None = None
    t0 = datetime.now(timezone.utc)
    start.wait()
    while not stop.is_set() or rounds < 3:
        rounds += 1
        try:
            cp = v.Checkpoint.parse_note(led.checkpoint(), keys)
            seen[cp.size] = cp.note.decode()
            when = t0 + (datetime.now(timezone.utc) - t0) * rng.random()
            inv = led.inventory_at(when)
            if not all(s.name == n for n, s in inv.items()):
                errors.append("inventory_at: a state under another name")
            index = rng.randrange(cp.size)
            inc = led.prove_inclusion(index)  # at the size current in its own transaction
            icp = v.Checkpoint.parse_note(inc.checkpoint, keys)
            v.verify_inclusion(v.leaf_hash(led.entry(index)), index, inc.size,
                               list(inc.hashes), icp.root)
            seen[icp.size] = icp.note.decode()
            if last is not None:
                con = led.prove_consistency(last.size)
                ccp = v.Checkpoint.parse_note(con.checkpoint, keys)
                v.verify_consistency(last.size, con.new_size, list(con.hashes), last.root,
                                     ccp.root)
                seen[ccp.size] = ccp.note.decode()
                last = ccp
            else:
                last = icp
        except Exception as exc:  # everything a reader meets is reported, none is expected
            errors.append(f"{type(exc).__name__}: {exc}")
    led.close()
    Path(out).write_text(json.dumps({"rounds": rounds, "seen": seen, "errors": errors[:20]}))


def run_concurrency(workdir: Path, *, writers: int, records: int, readers: int, seed: int
                    ) -> dict[str, Any]:
    """Run the writers and readers at once; check the result. Returns counts."""
    names = [f"load-writer-{w}" for w in range(writers)]
    setup = build_store(workdir, writers=names, models=[f"m{i}" for i in range(8)])
    ctx = mp.get_context("spawn")
    start, stop = ctx.Barrier(writers + readers + 1), ctx.Event()
    wprocs = [ctx.Process(target=writer, args=(
        str(setup.path), str(setup.log_key_file), str(setup.key_files[n]), n, records,
        seed * 100 + w, str(workdir / f"{n}.json"), start)) for w, n in enumerate(names)]
    rprocs = [ctx.Process(target=reader, args=(
        str(setup.path), setup.log_vkey, seed * 100 + 50 + r, str(workdir / f"reader-{r}.json"),
        start, stop)) for r in range(readers)]
    for p in wprocs + rprocs:
        p.start()
    start.wait(timeout=120)
    t0 = time.perf_counter()
    for p in wprocs:
        p.join()
    write_seconds = time.perf_counter() - t0
    stop.set()
    for p in rprocs:
        p.join()
    problems = [f"{p.name} exited {p.exitcode}" for p in wprocs + rprocs if p.exitcode != 0]

    with Ledger.open(setup.path) as led:
        size = led.audit()
        final = v.Checkpoint.parse_note(led.checkpoint(), setup.trusted)
        counts: Counter[tuple[str, int]] = Counter()
        by_hash: dict[str, tuple[str, int]] = {}
        for i in range(setup.base_size, size):
            data = led.entry(i)
            st = v.parse_entry(data).statement
            assert isinstance(st, v.Event) and st.actor == st.payload["w"], st
            counts[(st.payload["w"], st.payload["i"])] += 1
            by_hash[v.snapshot_hash(data)] = (st.payload["w"], st.payload["i"])
        expected = {(n, i) for n in names for i in range(records)}
        duplicates = sum(c - 1 for c in counts.values() if c > 1)
        missing = len(expected - set(counts))
        acked_bad = 0
        for n in names:
            out = workdir / f"{n}.json"
            doc: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {
                "done": []}
            for i, h in doc["done"]:
                acked_bad += by_hash.get(h) != (n, i)
        seen: dict[int, str] = {}
        rounds, reader_errors = 0, []
        for r in range(readers):
            out = workdir / f"reader-{r}.json"
            if out.exists():
                doc = json.loads(out.read_text())
                rounds += doc["rounds"]
                reader_errors += doc["errors"]
                seen.update({int(k): s for k, s in doc["seen"].items()})
        inconsistent = 0
        for n_seen, note in seen.items():
            cp = v.Checkpoint.parse_note(note.encode(), setup.trusted)
            proof = led.prove_consistency(n_seen, size)
            try:
                v.verify_consistency(n_seen, size, list(proof.hashes), cp.root, final.root)
            except v.VerificationError:
                inconsistent += 1
            inconsistent += cp.size != n_seen
    return {
        "writers": writers, "records_per_writer": records, "readers": readers,
        "new_entries": size - setup.base_size,
        "expected_new_entries": writers * records,
        "missing": missing, "duplicates": duplicates, "acknowledged_but_wrong": acked_bad,
        "reader_rounds": rounds, "reader_errors": reader_errors,
        "checkpoints_seen_by_readers": len(seen), "checkpoints_inconsistent": inconsistent,
        "data_file_bytes": (setup.path / "data.mdb").stat().st_size,
        "write_seconds": round(write_seconds, 1), "problems": problems,
    }
