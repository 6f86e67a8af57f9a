"""Torture run of the reliability suite (issue 5; docs/reliability.md): crash, concurrency,
tamper, bundle mutation, write attacks, key files, a full disk, threads sharing one
Ledger with real SIGINTs into batches (issue 10), and the server killed with SIGKILL while
clients write (issue 11), at full counts.
Prints one JSON object on stdout (progress on stderr); exits 1 if any invariant broke.

    python bench/torture.py                       # full counts (a few minutes)
    python bench/torture.py --quick               # the CI-sized run
    python bench/torture.py --parts crash,mutations --kills 300 --seed 7

The same code runs, at smaller counts, as tests/reliability (pytest).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability.attacks import run_attacks  # noqa: E402
from tests.reliability.concurrency import run_concurrency  # noqa: E402
from tests.reliability.crash import run_crash  # noqa: E402
from tests.reliability.keys import MODES, run_keys  # noqa: E402
from tests.reliability.mutations import run_mutations  # noqa: E402
from tests.reliability.space import run_space  # noqa: E402
from tests.reliability.tamper import run_tamper  # noqa: E402
from tests.reliability.server import run_server_kills  # noqa: E402
from tests.reliability.threads import (  # noqa: E402
    run_blocked_reader,
    run_interrupts,
    run_threads,
)

PARTS = ("crash", "concurrency", "tamper", "mutations", "attacks", "keys", "space", "threads",
         "server")
FULL = dict(kills=100, concurrency_writers=4, records=2000, readers=2, mutations=10_000,
            tamper_trials=1200, rollbacks=20, forgeries=20_000, key_modes=len(MODES),
            threads=16, thread_writes=500, sigint_batches=200,
            server_clients=16, server_writes=100, server_kills=20)
QUICK = dict(kills=10, concurrency_writers=4, records=200, readers=2, mutations=1000,
             tamper_trials=120, rollbacks=3, forgeries=2000, key_modes=3,
             threads=16, thread_writes=60, sigint_batches=30,
             server_clients=16, server_writes=12, server_kills=3)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the small counts CI uses")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {PARTS}")
    ap.add_argument("--kills", type=int, help="crash: SIGKILLs of the writer [100]")
    ap.add_argument("--max-delay", type=float, default=0.1,
                    help="crash: longest wait after the writer is ready before the kill [0.1 s]")
    ap.add_argument("--concurrency-writers", type=int, help="concurrency: writer processes [4]")
    ap.add_argument("--records", type=int, help="concurrency: records per writer [2000]")
    ap.add_argument("--readers", type=int, help="concurrency: reader processes [2]")
    ap.add_argument("--mutations", type=int, help="bundles: mutations to try [10000]")
    ap.add_argument("--tamper-trials", type=int, help="tamper: one-bit changes [1200]")
    ap.add_argument("--rollbacks", type=int, help="tamper: rollback/fork rounds [20]")
    ap.add_argument("--forgeries", type=int, help="attacks: bit-flipped statements [20000]")
    ap.add_argument("--key-modes", type=int, help=f"keys: open file modes tried [{len(MODES)}]")
    ap.add_argument("--threads", type=int, help="threads: threads sharing one Ledger [16]")
    ap.add_argument("--thread-writes", type=int, help="threads: writes per thread [500]")
    ap.add_argument("--sigint-batches", type=int, help="threads: batches under SIGINTs [200]")
    ap.add_argument("--server-clients", type=int, help="server: clients writing [16]")
    ap.add_argument("--server-writes", type=int, help="server: statements per client [100]")
    ap.add_argument("--server-kills", type=int, help="server: SIGKILLs of the server [20]")
    ap.add_argument("--space-mode", choices=["auto", "tmpfs", "rlimit"], default="auto",
                    help="space: a 4 MiB tmpfs where permitted (auto), or simulated ENOSPC")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    ap.add_argument("--workdir", type=Path, help="where the stores go [a new temp dir]")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    counts = dict(QUICK if args.quick else FULL)
    for name in counts:
        if getattr(args, name) is not None:
            counts[name] = getattr(args, name)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts: {sorted(unknown)}")
    work = Path(tempfile.mkdtemp(prefix="modelseal-torture-", dir=args.workdir))
    seed = args.seed
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    log(f"seed {seed}, work directory {work}, counts {counts}")
    try:
        for part in parts:
            t = time.perf_counter()
            log(f"{part} ...")
            where = work / part
            where.mkdir()
            if part == "crash":
                results[part] = run_crash(where, kills=counts["kills"], seed=seed,
                                          max_delay=args.max_delay, log=log)
            elif part == "concurrency":
                results[part] = run_concurrency(where, writers=counts["concurrency_writers"],
                                                records=counts["records"],
                                                readers=counts["readers"], seed=seed)
            elif part == "tamper":
                results[part] = run_tamper(where, trials=counts["tamper_trials"],
                                           rollbacks=counts["rollbacks"], seed=seed)
            elif part == "mutations":
                results[part] = run_mutations(where, count=counts["mutations"], seed=seed)
            elif part == "attacks":
                results[part] = run_attacks(where, forgeries=counts["forgeries"], seed=seed)
            elif part == "keys":
                results[part] = run_keys(where, MODES[:counts["key_modes"]])
            elif part == "space":
                results[part] = run_space(where, mode=args.space_mode)
            elif part == "threads":
                (where / "shared").mkdir()
                (where / "sigint").mkdir()
                (where / "reader").mkdir()
                results[part] = {
                    "shared": run_threads(where / "shared", threads=counts["threads"],
                                          writes=counts["thread_writes"], seed=seed),
                    "sigint": run_interrupts(where / "sigint",
                                             batches=counts["sigint_batches"], seed=seed),
                    "blocked_reader": run_blocked_reader(where / "reader"),
                }
            elif part == "server":
                results[part] = run_server_kills(where, clients=counts["server_clients"],
                                                 writes=counts["server_writes"],
                                                 kills=counts["server_kills"], seed=seed)
            timings[part] = round(time.perf_counter() - t, 1)
            log(f"{part}: {timings[part]} s")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary, ok = summarise(results)
    doc = {"summary": summary, "ok": ok, "seed": seed, "counts": counts,
           "timings_s": timings, "parts": results,
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "platform": platform.platform()}}
    print(json.dumps(doc, indent=1))
    return 0 if ok else 1


def summarise(r: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The headline figures and whether every invariant held."""
    s: dict[str, Any] = {}
    ok = True

    def need(cond: bool) -> None:
        nonlocal ok
        ok = ok and cond

    if "crash" in r:
        c = r["crash"]
        s.update(kills=c["kills"], lost=c["lost"], partial=c["partial"],
                 acknowledged_writes=c["acknowledged"])
        need(c["lost"] == 0 and c["partial"] == 0 and not c["problems"])
    if "concurrency" in r:
        c = r["concurrency"]
        s.update(concurrent_new_entries=c["new_entries"],
                 concurrent_expected=c["expected_new_entries"],
                 concurrent_missing=c["missing"], concurrent_duplicates=c["duplicates"],
                 reader_checkpoints_inconsistent=c["checkpoints_inconsistent"])
        need(c["new_entries"] == c["expected_new_entries"] and c["missing"] == 0
             and c["duplicates"] == 0 and c["acknowledged_but_wrong"] == 0
             and c["checkpoints_inconsistent"] == 0 and not c["reader_errors"]
             and not c["problems"])
    if "tamper" in r:
        f, b = r["tamper"]["flips"], r["tamper"]["rollbacks_and_forks"]
        s.update(tamper_tried=f["trials"], tamper_detected=f["detected"],
                 tamper_named=f["named"], rollback_fork_cases=b["cases"],
                 rollback_fork_detected=b["detected"])
        need(f["detected"] == f["trials"] == f["named"] and b["cases"] == b["detected"])
    if "attacks" in r:
        a = r["attacks"]
        s.update(forged_accepted=a["forged_accepted"], write_attacks_tried=a["attacks_tried"]
                 + a["bitflip_forgeries_tried"],
                 write_attacks_refused=a["attacks_refused"] + a["bitflip_forgeries_tried"]
                 - a["bitflip_forgeries_accepted"])
        need(a["forged_accepted"] == 0 and not a["failures"])
    if "mutations" in r:
        m = r["mutations"]
        s.update(mutations_tried=m["tried"], mutations_rejected=m["rejected"])
        need(m["tried"] == m["rejected"] and not m["failures"])
    if "keys" in r:
        k = r["keys"]
        s.update(key_checks=k["checks"], key_checks_passed=k["passed"])
        need(k["checks"] == k["passed"])
    if "space" in r:
        sp = r["space"]
        s.update(full_disk=sp["mode"], full_disk_lost=sp["lost"],
                 full_disk_problems=len(sp["problems"]))
        need(sp["lost"] == 0 and not sp["problems"])
    if "threads" in r:
        sh, si, rd = r["threads"]["shared"], r["threads"]["sigint"], r["threads"]["blocked_reader"]
        s.update(threads_acknowledged=sh["acknowledged"], threads_missing=sh["missing"],
                 threads_duplicates=sh["duplicates"], threads_aborted_present=sh["aborted_present"],
                 sigint_batches=si["finished"], sigints_sent=si["sigints_sent"],
                 sigint_outcomes=si["outcomes"], sigint_partial=si["partial_batches"],
                 sigint_bad_signature_committed=si["bad_signature_committed"],
                 reader_not_blocked=rd["reader_finished"])
        need(not sh["errors"] and sh["hung_threads"] == 0 and sh["missing"] == 0
             and sh["duplicates"] == 0 and sh["aborted_present"] == 0
             and sh["unacknowledged_present"] == 0
             and sh["new_entries"] == sh["acknowledged"]
             and si["ready"] and not si["hung"] and si["exit_code"] == 0 and si["lost"] == 0
             and si["partial_batches"] == 0 and si["bad_signature_committed"] == 0
             and si["duplicates"] == 0 and rd["reader_finished"] and rd["holder_released"])
    if "server" in r:
        sv = r["server"]
        s.update(server_kills=sv["kills"], server_acknowledged=sv["acknowledged"],
                 server_missing=sv["missing_or_moved"], server_duplicates=sv["duplicates"],
                 server_gave_up=sv["gave_up"])
        need(not sv["errors"] and sv["hung_clients"] == 0 and sv["missing_or_moved"] == 0
             and sv["duplicates"] == 0 and sv["strangers"] == 0 and sv["audit"]
             and sv["new_entries"] == sv["acknowledged"] + sv["gave_up"]
             - sv["gave_up_and_absent"] and sv["final_exit_code"] == 0)
    return s, ok


if __name__ == "__main__":
    sys.exit(main())
