"""Issue 9 point 5: is verification linear in time and memory? Before and after.

Run from the repository root:

    python bench/bench_linear.py             # K = 8,000 and bundles of about 60 MB
    python bench/bench_linear.py --quick     # K = 1,000 and bundles of about 8 MB

Prints ONE JSON object on stdout; progress goes to stderr.

Time: a log with a group ``suite`` of K members, then K pairs of member_add and
member_remove of ``suite`` into a group ``portfolio``; the control has the same
entries but the pairs move one leaf model instead. Replay (``verifier.replay``, with
signatures) is timed. A third log is the new rule's worst case that is still accepted:
a group of MAX_MEMBERSHIP_WALK members added to and removed from a group that is in
MAX_MEMBERSHIP_WALK + 1 groups.

Memory: peak RSS of ``verify_bundle`` in a fresh process on bundles of about the same
size whose event payloads are (a) as many empty lists as fit in an entry, (b) 4,093
empty lists (4,096 JSON values, the new limit), (c) one string of the same length
(the control).

"before" is the same code with the committed versions of the changed pieces put back,
read from ``git show HEAD:...`` (``Inventory._reaches``, ``check_json_value``,
``TimelineItem`` and timelines keeping parsed payloads); "after" is the working tree.
Each run is a separate process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

import verifier as v  # noqa: E402

# modules (``verifier.replay`` is also a function), typed Any: "before" patches them
replay_mod: Any = importlib.import_module("verifier.replay")
entry_mod: Any = importlib.import_module("verifier.entry")
canonical_mod: Any = importlib.import_module("verifier.canonical")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the committed code, for "before" ------------------------------------------------------


def _head(path: str) -> str:
    return subprocess.run(["git", "show", f"HEAD:{path}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def _block(source: str, header: str) -> str:
    """The text of the def or class starting with line ``header``, dedented."""
    lines = source.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(header))
    start = first - 1 if first > 0 and lines[first - 1].lstrip().startswith("@") else first
    indent = len(header) - len(header.lstrip())
    end = first + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and len(line) - len(line.lstrip()) <= indent \
                and not line.lstrip().startswith(")"):
            break
        end += 1
    return textwrap.dedent("\n".join(lines[start:end])) + "\n"


def use_committed_code() -> None:
    """Put back the committed cycle check, JSON value check and timeline items."""
    replay_src, canonical_src = _head("verifier/replay.py"), _head("verifier/canonical.py")
    ns: dict[str, Any] = dict(vars(replay_mod))
    exec(_block(replay_src, "    def _reaches("), ns)  # noqa: S102
    replay_mod.Inventory._reaches = ns["_reaches"]
    exec(_block(replay_src, "class TimelineItem"), ns)  # noqa: S102
    replay_mod.TimelineItem = ns["TimelineItem"]
    replay_mod.canonical_json = lambda detail: detail  # the parsed payload itself
    ns = dict(vars(canonical_mod))
    exec(_block(canonical_src, "def check_json_value("), ns)  # noqa: S102
    entry_mod.check_json_value = ns["check_json_value"]


# -- building the inputs ---------------------------------------------------------------------


def _register(lg: Any, pipe: Any, name: str) -> None:
    lg.submit(pipe, "register", name=name, owner="team", model_type="ml_model", tier="high",
              purpose="", status="active", metadata={})


def build_cycle_logs(k: int) -> dict[str, list[bytes]]:
    from tests.logsim import Log, Signer

    out = {}
    for case in ("cycle", "control"):
        lg = Log.create(seed="bench-linear")
        pipe = Signer("ml-pipeline", b"bench-linear-pipe")
        lg.submit(lg.admin, "grant", key=pipe.vkey, role="writer")
        for name in ("suite", "portfolio"):
            _register(lg, pipe, name)
        for i in range(k):
            _register(lg, pipe, f"m{i:05d}")
            lg.submit(pipe, "member_add", group="suite", member=f"m{i:05d}", role=None)
        moved = "suite" if case == "cycle" else "m00000"
        for _ in range(k):
            lg.submit(pipe, "member_add", group="portfolio", member=moved, role=None)
            lg.submit(pipe, "member_remove", group="portfolio", member=moved, reason=None)
        out[case] = lg.entries
    return out


def build_worst_log(pairs: int) -> list[bytes]:
    from tests.logsim import Log, Signer

    n = replay_mod.MAX_MEMBERSHIP_WALK
    lg = Log.create(seed="bench-worst")
    pipe = Signer("ml-pipeline", b"bench-worst-pipe")
    lg.submit(lg.admin, "grant", key=pipe.vkey, role="writer")
    for name in ("p", "g"):
        _register(lg, pipe, name)
    for i in range(n + 1):
        _register(lg, pipe, f"z{i}")
        lg.submit(pipe, "member_add", group=f"z{i}", member="g", role=None)
        if i < n:
            _register(lg, pipe, f"y{i}")
            lg.submit(pipe, "member_add", group="p", member=f"y{i}", role=None)
    for _ in range(pairs):
        lg.submit(pipe, "member_add", group="g", member="p", role=None)
        lg.submit(pipe, "member_remove", group="g", member="p", reason=None)
    return lg.entries


def build_memory_bundles(target: int) -> tuple[dict[str, bytes], str, dict[str, Any]]:
    """Three bundles of about ``target`` bytes; built with the committed JSON check, so
    payloads over the new limit can be made at all."""
    from tests.logsim import Log, Signer

    saved = entry_mod.check_json_value
    ns = dict(vars(canonical_mod))
    exec(_block(_head("verifier/canonical.py"), "def check_json_value("), ns)  # noqa: S102
    entry_mod.check_json_value = ns["check_json_value"]
    try:
        cases = {
            "empty_lists_full_entry": 21_500,  # as many as fit in one entry
            "empty_lists_at_limit": 4_093,  # {"a": [...]}: 4,096 values
        }
        bundles: dict[str, bytes] = {}
        info: dict[str, Any] = {}
        vkey = ""
        for name, count in cases.items():
            payloads = {name: {"a": [[]] * count},
                        f"control_for_{name}": {"a": "x" * (3 * count - 1)}}
            for label, payload in payloads.items():
                lg = Log.create(seed="bench-memory")
                pipe = Signer("ml-pipeline", b"bench-memory-pipe")
                lg.submit(lg.admin, "grant", key=pipe.vkey, role="writer")
                _register(lg, pipe, "m")
                entry_size = len(lg.submit(pipe, "event", model="m", event_type="trained",
                                           payload=payload))
                per_entry = entry_size * 4 // 3 + 3  # base64 in the bundle
                while len(lg.entries) * per_entry < target:
                    lg.submit(pipe, "event", model="m", event_type="trained", payload=payload)
                bundles[label] = lg.bundle(lg.clock - 1)
                vkey = lg.log_key.vkey
                info[label] = {"entries": len(lg.entries), "entry_bytes": entry_size,
                               "bundle_bytes": len(bundles[label])}
        return bundles, vkey, info
    finally:
        entry_mod.check_json_value = saved


# -- the measuring children ---------------------------------------------------------------


def _rss_mib(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident size, in MiB. Not
    ru_maxrss: Linux carries that over from the parent across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(kind: str, mode: str, data_path: str, extra: str) -> dict[str, Any]:
    """``extra``: the log key for "memory"; for "replay", optionally the number of
    entries to time apart from the rest."""
    if mode == "before":
        use_committed_code()
    raw = Path(data_path).read_bytes()
    if kind == "replay":
        entries = msgspec.msgpack.decode(raw, type=list[bytes])
        split = int(extra or len(entries))
        inv = v.Inventory()
        t0 = time.perf_counter()
        for data in entries[:split]:
            inv.apply(data)
        t1 = time.perf_counter()
        for data in entries[split:]:
            inv.apply(data)
        s = time.perf_counter() - t0
        out = {"entries": len(entries), "s": round(s, 3),
               "entries_per_s": round(len(entries) / s), "models": len(inv.models)}
        if split < len(entries):
            rest = len(entries) - split
            out["last_entries"] = rest
            out["last_entries_us_each"] = round((time.perf_counter() - t1) / rest * 1e6, 1)
            out["first_entries_us_each"] = round((t1 - t0) / split * 1e6, 1)
        return out
    baseline = _rss_mib("VmRSS")
    t0 = time.perf_counter()
    try:
        result = v.verify_bundle(raw, [v.VerifierKey.parse(extra)])
        outcome = f"verified {result.size} entries"
    except v.VerifierError as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
    s = time.perf_counter() - t0
    peak = _rss_mib()
    return {"bundle_mib": round(len(raw) / 2**20, 1), "rss_before_verify_mib": baseline,
            "peak_rss_mib": peak, "peak_minus_before_mib": round(peak - baseline, 1),
            "s": round(s, 2), "outcome": outcome}


def run_child(kind: str, mode: str, path: Path, extra: str = "") -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--mode", mode,
                           "--data", str(path), "--extra", extra],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} {mode} {path.name} failed: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--k", type=int, default=None, help="members of the big group")
    ap.add_argument("--bundle-mb", type=float, default=None, help="size of each bundle")
    ap.add_argument("--worst-pairs", type=int, default=None)
    ap.add_argument("--child", choices=("replay", "memory"), help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=("before", "after"), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--extra", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.mode, args.data, args.extra)))
        return 0
    k = args.k or (1000 if args.quick else 8000)
    target = int((args.bundle_mb or (8 if args.quick else 60)) * 1e6)
    pairs = args.worst_pairs or (100 if args.quick else 1000)
    out: dict[str, Any] = {"python": sys.version.split()[0],
                           "max_membership_walk": replay_mod.MAX_MEMBERSHIP_WALK,
                           "max_json_values": canonical_mod.MAX_VALUES}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        log(f"building the membership logs, K = {k}")
        logs = build_cycle_logs(k)
        for name, entries in logs.items():
            (d / f"{name}.msgpack").write_bytes(msgspec.msgpack.encode(entries))
        log(f"building the worst accepted case, {pairs} pairs")
        (d / "worst.msgpack").write_bytes(msgspec.msgpack.encode(build_worst_log(pairs)))
        cycle: dict[str, Any] = {"k": k}
        for name in ("cycle", "control"):
            for mode in ("before", "after"):
                log(f"replay {name} {mode}")
                cycle[f"{name}_{mode}"] = run_child("replay", mode, d / f"{name}.msgpack")
        for mode in ("before", "after"):
            cycle[f"{mode}_ratio_cycle_to_control"] = round(
                cycle[f"cycle_{mode}"]["s"] / cycle[f"control_{mode}"]["s"], 2)
        log("replay worst accepted case (after)")
        setup = 2 + 2 + 4 * replay_mod.MAX_MEMBERSHIP_WALK + 2
        worst = run_child("replay", "after", d / "worst.msgpack", str(setup))
        worst["note"] = (f"{setup} setup entries, then {pairs} pairs: each member_add walks "
                         f"{replay_mod.MAX_MEMBERSHIP_WALK} links down and as many up")
        cycle["worst_accepted_after"] = worst
        out["membership_cycle_check"] = cycle
        log(f"building bundles of about {target / 1e6:.0f} MB")
        bundles, vkey, info = build_memory_bundles(target)
        memory: dict[str, Any] = {}
        for name, data in bundles.items():
            path = d / f"{name}.json"
            path.write_bytes(data)
            memory[name] = dict(info[name])
            for mode in ("before", "after"):
                log(f"verify_bundle {name} {mode}")
                memory[name][mode] = run_child("memory", mode, path, vkey)
        out["verify_bundle_memory"] = memory
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
