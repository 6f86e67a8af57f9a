"""Measure facts about pymerkle for docs/decisions.md; print ONE JSON object.

Run from the repository root:

    python bench/pymerkle_probe.py              # default: exhaustive checks + cold proofs at 1e6
    python bench/pymerkle_probe.py --quick      # cold proofs at 1e4 only
    python bench/pymerkle_probe.py --cold-size 200000

(a) pymerkle's license, as its installed metadata states it.
(b) Whether pymerkle's proofs, with RFC 6962/9162 hashing (sha256, 0x00 leaf and
    0x01 node prefixes: pymerkle's default ``disable_security=False``), follow
    RFC 9162's PATH and PROOF: compared hash for hash with tests/reference.py and
    fed to verifier.verify_inclusion / verify_consistency.
(c) The cost of building a pymerkle tree of N leaves and of the first ("cold")
    and second proofs against it, for InmemoryTree and SqliteTree. Each backend
    runs in a child process so that its memory can be read cleanly.
Progress goes to stderr. Nothing is estimated: what could not be measured says so.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def log(msg: str) -> None:
    print(f"[probe {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def rss_mib() -> float | None:
    """Current resident set size of this process, MiB (Linux /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def entry_data(i: int) -> bytes:
    """A distinct 600-byte leaf: about the size of a modelseal entry."""
    return i.to_bytes(8, "big") + b"e" * 592


# -- (a) license --------------------------------------------------------------------


def probe_license() -> dict[str, Any]:
    dist = md.distribution("pymerkle")
    meta = dist.metadata
    classifiers = meta.get_all("Classifier") or []
    lic_classifiers = [c for c in classifiers if c.startswith("License ::")]
    out: dict[str, Any] = {
        "version": meta["Version"],
        "metadata_License": meta.get("License"),
        "metadata_License-Expression": meta.get("License-Expression"),
        "metadata_License-File": meta.get_all("License-File"),
        "license_classifiers": lic_classifiers,
        "home_page": meta.get("Home-page"),
    }
    first_lines = None
    for f in dist.files or []:
        if "LICENSE" in f.name.upper() or "COPYING" in f.name.upper():
            try:
                text = f.read_text()
            except (OSError, UnicodeDecodeError):
                continue
            first_lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:2]
            out["license_file"] = str(f)
            break
    out["license_file_first_lines"] = first_lines
    if any("GPLv3+" in c or "v3 or later" in c for c in lic_classifiers):
        out["spdx_reading"] = "GPL-3.0-or-later (from the classifier; our mapping to SPDX)"
    else:
        out["spdx_reading"] = None
    return out


# -- (b) RFC 9162 conformance -----------------------------------------------------------


def probe_rfc(max_exhaustive: int, random_size: int, random_pairs: int) -> dict[str, Any]:
    import inspect

    import pymerkle

    import verifier as v
    from tests import reference as ref
    from verifier.errors import VerificationError, VerifierError

    sig = str(inspect.signature(pymerkle.BaseMerkleTree.__init__))
    tree_cfg = {"class": "pymerkle.InmemoryTree", "algorithm": "sha256",
                "disable_security": False, "BaseMerkleTree.__init__": sig}

    def build(n: int) -> tuple[Any, list[bytes]]:
        leaves = [i.to_bytes(8, "big") for i in range(n)]
        t = pymerkle.InmemoryTree(algorithm="sha256", disable_security=False)
        for d in leaves:
            t.append_entry(d)
        return t, leaves

    small, small_leaves = build(max_exhaustive)
    hasher = {"leaf_prefix": small.leaf_prefix.hex(), "node_prefix": small.node_prefix.hex(),
              "algorithm": small.algorithm}

    # Roots: do pymerkle's tree heads equal RFC 9162 MTH?
    roots_equal = sum(small.get_root(n) == ref.mth(small_leaves[:n])
                      for n in range(1, max_exhaustive + 1))

    def accepts_inclusion(leaf: bytes, m: int, n: int, proof: list[bytes], root: bytes) -> bool:
        try:
            v.verify_inclusion(leaf, m, n, proof, root)
            return True
        except (VerifierError, VerificationError):
            return False

    def accepts_consistency(o: int, n: int, proof: list[bytes], r1: bytes, r2: bytes) -> bool:
        try:
            v.verify_consistency(o, n, proof, r1, r2)
            return True
        except (VerifierError, VerificationError):
            return False

    def run(tree: Any, leaves: list[bytes], inc_pairs: list[tuple[int, int]],
            con_pairs: list[tuple[int, int]]) -> dict[str, Any]:
        roots = {}

        def root(n: int) -> bytes:
            if n not in roots:
                roots[n] = tree.get_root(n)
            return roots[n]

        inc = dict(pairs=len(inc_pairs), pymerkle_self_verifies=0, raw_path_equals_rfc_path=0,
                   path_without_first_equals_rfc_path=0, first_element_is_leaf_hash=0,
                   rfc_verifier_accepts_raw_path=0, rfc_verifier_accepts_path_without_first=0)
        for m, n in inc_pairs:
            p = tree.prove_inclusion(m + 1, n)  # pymerkle counts leaves from one
            leaf = ref.leaf(leaves[m])
            r = ref.path(m, leaves[:n])
            try:
                pymerkle.verify_inclusion(leaf, root(n), p)
                inc["pymerkle_self_verifies"] += 1
            except pymerkle.InvalidProof:
                pass
            inc["raw_path_equals_rfc_path"] += p.path == r
            inc["path_without_first_equals_rfc_path"] += p.path[1:] == r
            inc["first_element_is_leaf_hash"] += p.path[0] == leaf
            inc["rfc_verifier_accepts_raw_path"] += accepts_inclusion(leaf, m, n, p.path, root(n))
            inc["rfc_verifier_accepts_path_without_first"] += accepts_inclusion(
                leaf, m, n, p.path[1:], root(n))

        con = dict(pairs=len(con_pairs), pymerkle_self_verifies=0, raw_path_equals_rfc_proof=0,
                   same_length_as_rfc=0, same_hashes_ignoring_order=0,
                   rfc_verifier_accepts_raw_path=0, rfc_verifier_accepts_path_without_first=0,
                   rfc_verifier_accepts_reversed_path=0, longer_than_rfc=0, extra_hashes_total=0,
                   equals_leaf_hash_of_old_then_rfc_path_of_old=0)
        examples = []
        for o, n in con_pairs:
            p = tree.prove_consistency(o, n)
            r = ref.proof(o, leaves[:n])
            try:
                pymerkle.verify_consistency(root(o), root(n), p)
                con["pymerkle_self_verifies"] += 1
            except pymerkle.InvalidProof:
                pass
            path = list(p.path)
            con["raw_path_equals_rfc_proof"] += path == r
            con["same_length_as_rfc"] += len(path) == len(r)
            con["same_hashes_ignoring_order"] += sorted(path) == sorted(r)
            con["longer_than_rfc"] += len(path) > len(r)
            con["extra_hashes_total"] += max(0, len(path) - len(r))
            if o < n:  # the inclusion proof of leaf `old` (the first new leaf), base first
                con["equals_leaf_hash_of_old_then_rfc_path_of_old"] += path == [
                    ref.leaf(leaves[o]), *ref.path(o, leaves[:n])]
            ok = accepts_consistency(o, n, path, root(o), root(n))
            con["rfc_verifier_accepts_raw_path"] += ok
            con["rfc_verifier_accepts_path_without_first"] += accepts_consistency(
                o, n, path[1:], root(o), root(n))
            con["rfc_verifier_accepts_reversed_path"] += accepts_consistency(
                o, n, path[::-1], root(o), root(n))
            if len(examples) < 4 and not ok and (o, n) in {(1, 2), (3, 5), (4, 8), (6, 8)}:
                examples.append({
                    "old": o, "new": n,
                    "pymerkle_path": [h.hex()[:8] for h in path],
                    "rfc_proof": [h.hex()[:8] for h in r],
                    "pymerkle_subset_mask": p.subset, "pymerkle_rule": p.rule,
                })
        con["examples_hash_prefixes"] = examples
        return {"inclusion": inc, "consistency": con}

    log(f"(b) exhaustive pairs up to size {max_exhaustive}")
    inc_pairs = [(m, n) for n in range(1, max_exhaustive + 1) for m in range(n)]
    con_pairs = [(o, n) for n in range(2, max_exhaustive + 1) for o in range(1, n)]
    exhaustive = run(small, small_leaves, inc_pairs, con_pairs)
    equal_sizes = run(small, small_leaves, [], [(n, n) for n in range(1, max_exhaustive + 1)])[
        "consistency"]
    equal_sizes["note"] = "old == new: RFC 9162 PROOF is the empty list"

    log(f"(b) {random_pairs} random pairs in a tree of {random_size}")
    rng = random.Random(5)
    big, big_leaves = build(random_size)
    rinc = []
    rcon = []
    for _ in range(random_pairs):
        n = rng.randint(2, random_size)
        rinc.append((rng.randrange(n), n))
        n = rng.randint(2, random_size)
        rcon.append((rng.randint(1, n - 1), n))
    randomised = run(big, big_leaves, rinc, rcon)

    return {
        "pymerkle_config": tree_cfg,
        "hasher": hasher,
        "roots_equal_rfc_mth": f"{roots_equal}/{max_exhaustive}",
        "exhaustive": {"sizes": f"1..{max_exhaustive}", **exhaustive,
                       "consistency_old_equals_new": equal_sizes},
        "random": {"tree_size": random_size, **randomised},
        "how": "pymerkle proofs from prove_inclusion(index+1, size) / prove_consistency(old, "
               "new); .path compared with tests/reference.path/proof over the same leaf data "
               "and passed unchanged (and with simple adapters) to verifier.verify_inclusion / "
               "verify_consistency with pymerkle's own roots, which equal RFC MTH",
    }


# -- (c) cold proof cost (child process) ---------------------------------------------------


def child(backend: str, n: int, seed: int) -> dict[str, Any]:
    import pymerkle

    rng = random.Random(seed)
    out: dict[str, Any] = {"backend": backend, "leaves": n, "leaf_bytes": 600}
    rss0 = rss_mib()
    t0 = time.perf_counter()
    data = [entry_data(i) for i in range(n)]
    out["make_data_s"] = round(time.perf_counter() - t0, 2)
    rss_data = rss_mib()
    out["rss_data_only_mib"] = None if rss0 is None or rss_data is None else round(
        rss_data - rss0, 1)

    tmp = None
    path = ""
    t0 = time.perf_counter()
    if backend == "inmemory":
        tree = pymerkle.InmemoryTree(algorithm="sha256", disable_security=False)
        for d in data:
            tree.append_entry(d)
        out["build"] = "InmemoryTree.append_entry per leaf"
    else:
        tmp = tempfile.TemporaryDirectory(prefix="pymerkle-probe-")
        path = os.path.join(tmp.name, "tree.db")
        tree = pymerkle.SqliteTree(path, algorithm="sha256", disable_security=False)
        tree.append_entries(data)
        out["build"] = "SqliteTree.append_entries (bulk, chunks of 100000)"
    out["build_s"] = round(time.perf_counter() - t0, 2)
    if backend == "sqlite":
        del data  # the tree lives on disk
        out["db_file_mib"] = round(os.path.getsize(path) / 2**20, 1)
    rss_built = rss_mib()
    out["rss_after_build_mib"] = rss_built
    out["rss_tree_minus_data_mib"] = (
        None if backend == "sqlite" or rss_built is None or rss_data is None
        else round(rss_built - rss_data, 1))
    out["rss_growth_from_start_mib"] = None if rss0 is None or rss_built is None else round(
        rss_built - rss0, 1)

    def timed(fn: Any) -> tuple[float, Any]:
        t = time.perf_counter()
        r = fn()
        return round(time.perf_counter() - t, 4), r

    size = tree.get_size()

    def fresh() -> Any:
        """The tree to prove from: for SqliteTree a newly opened one (empty subroot cache)."""
        nonlocal tree
        if backend == "sqlite":
            tree.close()
            tree = pymerkle.SqliteTree(path, algorithm="sha256", disable_security=False)
        return tree

    proofs: dict[str, Any] = {}
    i1, i2 = rng.randrange(size), rng.randrange(size)
    o1, o2 = rng.randint(1, size - 1), rng.randint(1, size - 1)
    t = fresh()
    proofs["inclusion_first_s"], p = timed(lambda: t.prove_inclusion(i1 + 1, size))
    proofs["inclusion_first_len"] = len(p.path)
    proofs["inclusion_second_s"], _ = timed(lambda: t.prove_inclusion(i2 + 1, size))
    t = fresh()
    proofs["consistency_first_s"], c = timed(lambda: t.prove_consistency(o1, size))
    proofs["consistency_first_len"] = len(c.path)
    proofs["consistency_second_s"], _ = timed(lambda: t.prove_consistency(o2, size))
    info = t.get_cache_info()
    proofs["subroot_cache_after_consistency"] = {"bytes": info.size, "hits": info.hits,
                                                 "misses": info.misses}
    t = fresh()
    proofs["get_root_first_s"], head = timed(lambda: t.get_root(size))
    proofs["get_root_second_s"], _ = timed(lambda: t.get_root(size))
    proofs["indices"] = {"inclusion": [i1, i2], "consistency_old": [o1, o2], "size": size}
    proofs["cold_means"] = (
        "first proof on a newly opened SqliteTree (empty subroot cache; the OS page cache "
        "holds the just-written file)" if backend == "sqlite"
        else "first proof right after building the in-memory tree")
    out["proofs"] = proofs
    # Sanity: the first inclusion proof verifies under pymerkle's own verifier.
    try:
        pymerkle.verify_inclusion(p.path[0], head, p)
        out["first_inclusion_proof_self_verifies"] = True
    except pymerkle.InvalidProof:
        out["first_inclusion_proof_self_verifies"] = False
    out["peak_rss_mib"] = peak_rss_mib()
    if tmp is not None:
        tree.close()
        tmp.cleanup()
    return out


def run_child(backend: str, n: int, seed: int, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", backend, "--cold-size", str(n),
           "--seed", str(seed)]
    log(f"(c) {backend} tree of {n} leaves in a child process (load {loadavg()})")
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"backend": backend, "leaves": n,
                "error": f"not measured: child exceeded {timeout:.0f}s and was stopped"}
    if r.returncode != 0:
        return {"backend": backend, "leaves": n,
                "error": f"not measured: child exited {r.returncode}: {r.stderr[-500:]}"}
    out = json.loads(r.stdout)
    out["child_wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    ap.add_argument("--cold-size", type=int, default=None,
                    help="leaves for the cold-proof trees (default 1000000; quick 10000)")
    ap.add_argument("--backends", default="inmemory,sqlite")
    ap.add_argument("--timeout", type=float, default=300.0, help="per child process, seconds")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--child", choices=["inmemory", "sqlite"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, args.cold_size, args.seed)))
        return 0

    q = args.quick
    cold = args.cold_size or (10_000 if q else 1_000_000)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {
        "probe": "pymerkle facts for docs/decisions.md",
        "mode": "quick" if q else "default",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": loadavg(),
    }
    log("(a) license from installed metadata")
    result["license"] = probe_license()
    result["rfc9162_conformance"] = probe_rfc(32 if q else 64, 300 if q else 2000,
                                              100 if q else 500)
    result["rfc9162_conformance"]["parent_cpu_s"] = round(time.process_time() - cpu0, 1)
    cold_results = []
    for backend in [b for b in args.backends.split(",") if b]:
        cold_results.append(run_child(backend, cold, args.seed, args.timeout))
    result["cold_proof_cost"] = {
        "leaves": cold,
        "note": "a first and a second proof of each kind, timed with the meaning given in each "
                "result's proofs.cold_means; InmemoryTree reads perfect "
                "subtree roots off its node objects, SqliteTree stores only leaves and "
                "computes subtree roots from them on demand (LRU cache of subroots of width "
                ">= 128); RSS from /proc/self/status in a fresh child process per backend",
        "results": cold_results,
    }
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    result["loadavg_end"] = loadavg()
    result["wall_s"] = round(wall, 1)
    result["parent_cpu_s"] = round(cpu, 1)
    result["busy_note"] = (
        f"loadavg over {os.cpu_count()} shared CPUs; child timings are wall-clock and include "
        "any wait for a CPU")
    print(json.dumps(result, indent=2))
    log(f"done in {wall:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
