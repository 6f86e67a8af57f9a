"""Benchmarks of verifier/: proof verification, bundle hashing, end-to-end bundles.

Run from the repository root:

    python bench/bench_verifier.py            # default, about 1-3 minutes
    python bench/bench_verifier.py --quick    # CI smoke run, a few seconds
    python bench/bench_verifier.py --sizes 1e3,1e9 --bundle-sizes 1e4
    python bench/bench_verifier.py --scale [--codecs]   # issue 13: 240,802 entries, JSON vs compact

Prints ONE JSON object on stdout; progress goes to stderr.

How the proofs are made (trees of 1e9 leaves are never built): each scale uses
a *synthetic* tree, an infinite sequence of leaves where leaf ``i`` carries the
data ``i.to_bytes(8, "big")`` if ``i`` is in a small set S of "special" indices
(every index, old size and new size used by the benchmark at that scale, plus
some random ones) and the constant ``b"filler"`` otherwise. A range of leaves
with no special index has a hash that depends only on its width, computed in
O(log width) from precomputed perfect-subtree hashes; ranges holding special
indices are split per RFC 9162 section 2.1.1 and memoised, so any subtree hash,
root, PATH or PROOF costs O(|S| log n) hashes in all. The generator is checked
against tests/reference.py on explicit small trees; every generated proof is
verified before timing, and a copy with one bit flipped must fail.
SHA-256's cost does not depend on the bytes hashed, so verifying these proofs
costs exactly what verifying proofs of a real tree of the same size costs.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

import verifier as v  # noqa: E402
from verifier.errors import (  # noqa: E402
    ConsistencyError,
    MalformedInputError,
    RootMismatchError,
)

_sha256 = hashlib.sha256


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -- the synthetic tree ----------------------------------------------------------

FILLER = b"filler"


def _leaf(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class SyntheticTree:
    """An unbounded leaf sequence: special indices carry their own data, others FILLER."""

    def __init__(self, specials: set[int]):
        self.specials = sorted(specials)
        self._special_set = set(specials)
        self._perfect = [_leaf(FILLER)]  # hash of 2**k filler leaves
        for _ in range(70):
            self._perfect.append(_node(self._perfect[-1], self._perfect[-1]))
        self._uniform: dict[int, bytes] = {}
        self._memo: dict[tuple[int, int], bytes] = {}

    def leaf_data(self, i: int) -> bytes:
        return i.to_bytes(8, "big") if i in self._special_set else FILLER

    def leaf_hash(self, i: int) -> bytes:
        return _leaf(self.leaf_data(i))

    def _has_special(self, start: int, n: int) -> bool:
        j = bisect.bisect_left(self.specials, start)
        return j < len(self.specials) and self.specials[j] < start + n

    def _uniform_hash(self, n: int) -> bytes:
        """MTH of n filler leaves."""
        if n & (n - 1) == 0:
            return self._perfect[n.bit_length() - 1]
        h = self._uniform.get(n)
        if h is None:
            k = _split(n)
            h = _node(self._perfect[k.bit_length() - 1], self._uniform_hash(n - k))
            self._uniform[n] = h
        return h

    def mth(self, start: int, n: int) -> bytes:
        """MTH of leaves start..start+n-1 (n >= 1)."""
        if not self._has_special(start, n):
            return self._uniform_hash(n)
        if n == 1:
            return self.leaf_hash(start)
        key = (start, n)
        h = self._memo.get(key)
        if h is None:
            k = _split(n)
            h = _node(self.mth(start, k), self.mth(start + k, n - k))
            self._memo[key] = h
        return h

    def root(self, size: int) -> bytes:
        return v.EMPTY_ROOT if size == 0 else self.mth(0, size)

    def inclusion(self, m: int, size: int) -> list[bytes]:
        """RFC 9162 PATH(m, D[size]), iteratively from the top, then reversed."""
        out: list[bytes] = []
        start, n = 0, size
        while n > 1:
            k = _split(n)
            if m < k:
                out.append(self.mth(start + k, n - k))
                n = k
            else:
                out.append(self.mth(start, k))
                m, start, n = m - k, start + k, n - k
        out.reverse()
        return out

    def consistency(self, old: int, new: int) -> list[bytes]:
        """RFC 9162 PROOF(old, D[new]) = SUBPROOF(old, D[new], true)."""
        if old == 0 or old == new:
            return []
        out: list[bytes] = []
        start, m, n, b = 0, old, new, True
        while m != n:
            k = _split(n)
            if m <= k:
                out.append(self.mth(start + k, n - k))
                n = k
            else:
                out.append(self.mth(start, k))
                m, start, n, b = m - k, start + k, n - k, False
        if not b:
            out.append(self.mth(start, n))
        out.reverse()
        return out


def crosscheck_generator(max_n: int) -> dict[str, Any]:
    """Compare SyntheticTree with tests/reference.py on every (m, n) with n <= max_n."""
    from tests import reference as ref

    rng = random.Random(7)
    specials = {i for i in range(max_n) if rng.random() < 0.3}
    tree = SyntheticTree(specials)
    leaves = [tree.leaf_data(i) for i in range(max_n)]
    checked = mismatches = 0
    for n in range(1, max_n + 1):
        d = leaves[:n]
        if tree.root(n) != ref.mth(d):
            mismatches += 1
        for m in range(n):
            checked += 2
            if tree.inclusion(m, n) != ref.path(m, d):
                mismatches += 1
            if tree.consistency(m + 1, n) != ref.proof(m + 1, d):
                mismatches += 1
    return {"max_size": max_n, "proofs_compared": checked, "mismatches": mismatches}


# -- timing helpers ----------------------------------------------------------------


def time_batch(fn: Callable[[], object], ops_per_call: int, repeat: int,
               min_time: float) -> dict[str, Any]:
    """timeit-style: calibrate loops so one repeat takes >= min_time, then repeat."""
    timer = timeit.Timer(fn)
    loops = 1
    while True:
        t = timer.timeit(loops)
        if t >= min_time or loops >= 1 << 20:
            break
        loops *= 2 if t * 4 > min_time else 8
    times = timer.repeat(repeat=repeat, number=loops)
    per_op = [t / (loops * ops_per_call) for t in times]
    med = statistics.median(per_op)
    return {
        "us_per_op_median": round(med * 1e6, 3),
        "us_per_op_min": round(min(per_op) * 1e6, 3),
        "us_per_op_max": round(max(per_op) * 1e6, 3),
        "ops_per_s_median": round(1 / med, 1),
        "repeats": repeat,
        "loops_per_repeat": loops,
        "ops_per_loop": ops_per_call,
    }


def flip(proof: list[bytes], rng: random.Random) -> list[bytes]:
    out = list(proof)
    j = rng.randrange(len(out))
    h = bytearray(out[j])
    h[rng.randrange(32)] ^= 1 << rng.randrange(8)
    out[j] = bytes(h)
    return out


def lengths(proofs: list[list[bytes]]) -> dict[str, Any]:
    ls = [len(p) for p in proofs]
    return {"min": min(ls), "mean": round(statistics.fmean(ls), 2), "max": max(ls)}


# -- 1. proof verification at scale ----------------------------------------------


def bench_proofs(scale: int, pairs: int, repeat: int, min_time: float,
                 seed: int) -> dict[str, Any]:
    rng = random.Random(seed * 1_000_003 + scale)
    lo = max(2, scale // 2 + 1)
    inc_pairs = []
    for _ in range(pairs):
        size = rng.randint(lo, scale)
        inc_pairs.append((rng.randrange(size), size))
    con_pairs = []
    for _ in range(pairs):
        new = rng.randint(lo, scale)
        con_pairs.append((rng.randint(1, new - 1), new))
    specials = {i for i, _ in inc_pairs}
    for old, new in con_pairs:
        specials.update({old - 1, old, new - 1})
    specials.update(rng.randrange(scale) for _ in range(32))

    t0 = time.perf_counter()
    tree = SyntheticTree(specials)
    inc = [(tree.leaf_hash(i), i, s, tree.inclusion(i, s), tree.root(s)) for i, s in inc_pairs]
    con = [(o, n, tree.consistency(o, n), tree.root(o), tree.root(n)) for o, n in con_pairs]
    gen_s = time.perf_counter() - t0

    # Every proof must verify, and a proof with one bit flipped must not.
    bad: list[str] = []
    rejected_flip = rejected_short = 0
    for lh, i, s, p, r in inc:
        try:
            v.verify_inclusion(lh, i, s, p, r)
        except Exception as exc:  # noqa: BLE001
            bad.append(f"inclusion {i}/{s}: {exc!r}")
        try:
            v.verify_inclusion(lh, i, s, flip(p, rng), r)
        except RootMismatchError:
            rejected_flip += 1
        try:
            v.verify_inclusion(lh, i, s, p[:-1], r)
        except MalformedInputError:
            rejected_short += 1
    c_flip = c_short = 0
    for o, n, p, r1, r2 in con:
        try:
            v.verify_consistency(o, n, p, r1, r2)
        except Exception as exc:  # noqa: BLE001
            bad.append(f"consistency {o}->{n}: {exc!r}")
        try:
            v.verify_consistency(o, n, flip(p, rng), r1, r2)
        except ConsistencyError:
            c_flip += 1
        try:
            v.verify_consistency(o, n, p[:-1], r1, r2)
        except MalformedInputError:
            c_short += 1
    if bad:
        raise SystemExit(f"generated proofs fail to verify at scale {scale}: {bad[:3]}")

    vi, vc = v.verify_inclusion, v.verify_consistency

    def run_inc() -> None:
        for lh, i, s, p, r in inc:
            vi(lh, i, s, p, r)

    def run_con() -> None:
        for o, n, p, r1, r2 in con:
            vc(o, n, p, r1, r2)

    inc_t = time_batch(run_inc, len(inc), repeat, min_time)
    con_t = time_batch(run_con, len(con), repeat, min_time)
    inc_len, con_len = lengths([x[3] for x in inc]), lengths([x[2] for x in con])
    inc_t["us_per_proof_hash"] = round(inc_t["us_per_op_median"] / inc_len["mean"], 3)
    con_t["us_per_proof_hash"] = round(con_t["us_per_op_median"] / con_len["mean"], 3)
    return {
        "scale": scale,
        "size_range": [lo, scale],
        "pairs": pairs,
        "distinct_special_leaves": len(specials),
        "generation_s": round(gen_s, 3),
        "inclusion": {
            **inc_t,
            "proof_length": inc_len,
            "all_generated_verified": True,
            "bit_flipped_rejected": f"{rejected_flip}/{len(inc)}",
            "truncated_rejected_as_malformed": f"{rejected_short}/{len(inc)}",
        },
        "consistency": {
            **con_t,
            "proof_length": con_len,
            "all_generated_verified": True,
            "bit_flipped_rejected": f"{c_flip}/{len(con)}",
            "truncated_rejected_as_malformed": f"{c_short}/{len(con)}",
        },
    }


def check_max_size(seed: int) -> dict[str, Any]:
    """Correctness only (not timed): proofs in a tree of 2**64-1 leaves, the largest size."""
    n = 2**64 - 1
    rng = random.Random(seed)
    idx = [rng.randrange(n) for _ in range(8)] + [0, n - 1]
    olds = [rng.randrange(1, n) for _ in range(8)] + [1, 2**63, n - 1]
    tree = SyntheticTree(set(idx) | set(olds) | {o - 1 for o in olds} | {n - 1})
    inc_len, con_len, ok = [], [], 0
    for i in idx:
        p = tree.inclusion(i, n)
        v.verify_inclusion(tree.leaf_hash(i), i, n, p, tree.root(n))
        inc_len.append(len(p))
        ok += 1
    for o in olds:
        p = tree.consistency(o, n)
        v.verify_consistency(o, n, p, tree.root(o), tree.root(n))
        con_len.append(len(p))
        ok += 1
    return {"size": n, "verified": f"{ok}/{len(idx) + len(olds)}",
            "inclusion_lengths": sorted(set(inc_len)), "consistency_lengths": sorted(set(con_len))}


def malleability_check() -> dict[str, Any]:
    """Correctness only: re-encodings of one real entry must all be refused by parse_entry."""
    from tests.logsim import sample_log

    lg, _ = sample_log(models=2, seed="malleable")
    e = lg.entries[3]
    d = json.loads(e)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sig = d["sig"]
    spare = sig[:-3] + alphabet[alphabet.index(sig[-3]) ^ 1] + "=="
    st_spaced = dict(d, statement=d["statement"].replace('"v":2', '"v": 2'))
    variants = {
        "space after a colon": e.replace(b'"index":', b'"index": ', 1),
        "trailing newline": e + b"\n",
        "keys in another order": json.dumps(dict(reversed(list(d.items()))),
                                            separators=(",", ":")).encode(),
        "\\u escape for an ASCII key": e.replace(b'"v":1', b'"\\u0076":1', 1),
        "duplicate key": e[:-1] + b',"v":1}',
        "1e0 for the integer 1": e.replace(b'"v":1', b'"v":1e0', 1),
        "spare base64 bits in sig": json.dumps(dict(d, sig=spare), separators=(",", ":"),
                                               sort_keys=True).encode(),
        "space inside the embedded statement": json.dumps(st_spaced, separators=(",", ":"),
                                                          sort_keys=True).encode(),
    }
    v.parse_entry(e)
    out = {}
    for name, data in variants.items():
        assert data != e
        try:
            v.parse_entry(data)
            out[name] = "ACCEPTED"
        except MalformedInputError as exc:
            out[name] = f"rejected: {str(exc)[:70]}"
    return {"original_accepted": True, "variants": out,
            "rejected": f"{sum(x.startswith('rejected') for x in out.values())}/{len(out)}"}


def verifier_imports() -> dict[str, Any]:
    """Top-level non-stdlib modules loaded by `import verifier` in a fresh interpreter."""
    import subprocess

    code = ("import sys; b = {m.split('.')[0] for m in sys.modules}; import verifier; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} - b"
            " - set(sys.stdlib_module_names) - {'verifier'})))")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       check=False)
    return {"third_party_top_level_added_by_import": r.stdout.split() if r.returncode == 0
            else None,
            "note": "modules already loaded at interpreter start (site .pth hooks) are excluded; "
                    "_cffi_backend/_openssl belong to cryptography, typing_extensions is an "
                    "optional import of msgspec",
            "error": r.stderr[-300:] if r.returncode else None,
            "import_wall_s": round(time.perf_counter() - t0, 3)}


# -- 2. full-bundle hashing --------------------------------------------------------


def realistic_entries(n: int, target: int = 600) -> list[bytes]:
    """n canonical entry bytes of about ``target`` bytes, built with entry_bytes.

    Statements are real canonical event statements; the signature field holds 64
    hash-derived bytes (hashing does not look at whether it verifies).
    """
    base = dict(v=2, op="event", actor="ml-pipeline", origin="example.com/models", log="0" * 64,
                event_type="retrained", payload={"accuracy": 0.9, "rows": 0, "note": ""})
    # Size the padding once so entries come out near the target.
    probe = _entry(0, base, "")
    pad = "x" * max(0, target - len(probe))
    out = []
    for i in range(n):
        out.append(_entry(i, base, pad))
    return out


_encoder_statement = msgspec.json.Encoder(order="sorted")


def _entry(i: int, base: dict[str, Any], pad: str) -> bytes:
    t = 1_735_689_600 * 10**9 + i * 60 * 10**9
    doc = dict(base, id=f"stmt-{i:012d}-ml-pipeline", claimed_at=t, model=f"model_{i % 500:03d}",
               payload={"accuracy": 0.9 + (i % 97) / 1000, "rows": i * 13, "note": pad})
    st = _encoder_statement.encode(doc)
    digest = _sha256(i.to_bytes(8, "big")).digest()
    return v.entry_bytes(index=i, recorded_at=t, prev=_sha256(st).hexdigest(), statement=st,
                         key_id=b"\x7e\x9e\x65\xe0", sig=digest + digest)


def bench_bundle_hashing(n: int, repeat: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    entries = realistic_entries(n)
    build_s = time.perf_counter() - t0
    sizes = [len(e) for e in entries]
    v.parse_entry(entries[-1])  # well-formed, canonical entry bytes
    lh, rf = v.leaf_hash, v.root_from_leaf_hashes
    leaf_hashes = [lh(e) for e in entries]
    expected = v.root(entries)
    assert rf(leaf_hashes) == expected
    if n <= 20_000:
        from tests import reference as ref
        assert ref.mth(entries) == expected, "root_from_leaf_hashes disagrees with the reference"

    def full() -> bytes:
        return rf(lh(e) for e in entries)

    def root_only() -> bytes:
        return rf(leaf_hashes)

    def leaf_only() -> list[bytes]:
        return [lh(e) for e in entries]

    out: dict[str, Any] = {"entries": n, "entry_bytes": {"min": min(sizes),
                           "mean": round(statistics.fmean(sizes), 1), "max": max(sizes)},
                           "entry_generation_s": round(build_s, 2)}
    for name, fn in (("hash_entries_and_root", full), ("root_from_precomputed_leaf_hashes",
                     root_only), ("leaf_hash_only", leaf_only)):
        ts = timeit.Timer(fn).repeat(repeat=repeat, number=1)
        med = statistics.median(ts)
        out[name] = {"s_median": round(med, 4), "s_min": round(min(ts), 4),
                     "leaves_per_s_median": round(n / med), "us_per_leaf": round(med / n * 1e6, 3),
                     "repeats": repeat}
    return out


# -- 3. end-to-end verify_bundle ---------------------------------------------------


def build_logsim_bundle(target_entries: int) -> tuple[bytes, list[v.VerifierKey], int, dict]:
    from tests.logsim import DAY, T0, Log, Signer

    lg = Log.create(seed="bench")
    pipe = Signer("ml-pipeline", b"bench-pipe")
    lg.submit(lg.admin, "grant", key=pipe.vkey, role="writer")
    models = [f"model_{i:03d}" for i in range(max(4, target_entries // 40))]
    for i, name in enumerate(models):
        lg.submit(pipe, "register", name=name, owner=f"team-{i % 7}", model_type="ml_model",
                  tier=["high", "medium", "low"][i % 3], purpose=f"Scores {name} for the desk",
                  status="active", metadata={"framework": "sklearn", "version": f"1.{i}"})
    rng = random.Random(11)
    snapshot = dict(lg.heads)  # a tag may point at a register or event entry of its model
    while len(lg.entries) < target_entries:
        name = rng.choice(models)
        r = rng.random()
        if r < 0.6:
            e = lg.submit(pipe, "event", model=name, event_type="retrained",
                      payload={"accuracy": round(rng.random(), 4), "rows": rng.randrange(10**7),
                               "dataset": f"s3://bucket/training/{name}/{len(lg.entries)}.parquet",
                               "commit": hashlib.sha1(str(len(lg.entries)).encode()).hexdigest()})
            snapshot[name] = v.snapshot_hash(e)
        elif r < 0.8:
            e = lg.submit(lg.admin, "event", model=name, event_type="validated",
                          payload={"by": "independent-validation", "result": "pass",
                                   "report": f"VAL-{len(lg.entries):06d}"})
            snapshot[name] = v.snapshot_hash(e)
        else:
            lg.submit(pipe, "tag", model=name, tag="production", target=snapshot[name])
    total = len(lg.entries)
    # As of a time just before the last 2% of entries; the bundle also extends
    # a trusted checkpoint at 10% of the log.
    cut = int(total * 0.98)
    t = T0 + cut * lg.step - 1
    trusted_size = total // 10
    bundle = lg.bundle(t, trusted=trusted_size)
    keys = [lg.log_key.key]
    trusted = v.Checkpoint.parse_note(lg.checkpoint(trusted_size), keys)
    sizes = [len(e) for e in lg.entries]
    info = {"log_entries": total, "trusted_size": trusted_size, "bundle_bytes": len(bundle),
            "entry_bytes_mean": round(statistics.fmean(sizes), 1), "day_ns": DAY}
    return bundle, keys, trusted, info


def bench_verify_bundle(target_entries: int, repeat: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    bundle, keys, trusted, info = build_logsim_bundle(target_entries)
    info["build_s"] = round(time.perf_counter() - t0, 2)
    info.pop("day_ns")
    res = v.verify_bundle(bundle, keys, trusted=trusted)
    n = res.size
    ts = timeit.Timer(lambda: v.verify_bundle(bundle, keys, trusted=trusted)).repeat(
        repeat=repeat, number=1)
    med = statistics.median(ts)

    # A rough breakdown of the same work, each part timed on its own.
    doc = msgspec.json.decode(bundle)
    entries = [v.encoding.b64decode(e, "e") for e in doc["entries"]]
    parsed = [v.parse_entry(e) for e in entries]
    key_of = {k.key_id: k for k in [v.VerifierKey.parse(x) for x in
                                    (parsed[0].statement.admin_key,)]}
    for p in parsed:
        st = p.statement
        if isinstance(st, v.Grant):
            k = v.VerifierKey.parse(st.key)
            key_of[k.key_id] = k
    sig_items = [(key_of[p.key_id], p.sig, p.statement_bytes) for p in parsed]

    def sigs() -> None:
        for k, s, m in sig_items:
            k.verify(s, m)

    parts = {
        "json_decode_bundle_s": statistics.median(timeit.Timer(
            lambda: msgspec.json.decode(bundle)).repeat(repeat=repeat, number=1)),
        "parse_entry_all_s": statistics.median(timeit.Timer(
            lambda: [v.parse_entry(e) for e in entries]).repeat(repeat=repeat, number=1)),
        "ed25519_verify_all_s": statistics.median(timeit.Timer(sigs).repeat(
            repeat=repeat, number=1)),
        "merkle_root_all_s": statistics.median(timeit.Timer(
            lambda: v.root(entries)).repeat(repeat=repeat, number=1)),
    }
    return {
        **info,
        "verified_entries": n,
        "checks": len(res.checks),
        "s_median": round(med, 4),
        "s_min": round(min(ts), 4),
        "entries_per_s_median": round(n / med, 1),
        "us_per_entry": round(med / n * 1e6, 2),
        "repeats": repeat,
        "breakdown_s_median": {k: round(x, 4) for k, x in parts.items()},
        "breakdown_us_per_entry": {k.replace("_s", "_us"): round(x / n * 1e6, 2)
                                   for k, x in parts.items()},
        "note": "verify_bundle = base64 + msgspec decoding, canonical re-encoding checks, "
                "Ed25519 per entry, Merkle root, consistency and next-entry proofs, replay; "
                "the breakdown parts overlap and are timed separately",
    }


# -- the issue-13 scale: a real store, JSON and compact bundles, the CLI verifier ----------

SCALE_EVENTS = ["retrained", "deployed", "monitored", "drift_checked", "validated", "retrained"]


def scale_store(models: int, events: int, cache: str) -> dict[str, Any]:
    """A ledger store of ``models`` registrations and ``events`` events (bench_ledger.py's
    mix, simulated clock 2 s a write, batches of 1,000), built once under ``cache`` and
    reused while its ``meta.json`` says the same counts. Returns that meta (the store path,
    the log's verifier key, entries, build seconds)."""
    from datetime import datetime, timedelta, timezone

    from ledger import ActorKey, Ledger, LogKey

    base = Path(cache)
    meta_path = base / "meta.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        if (meta.get("models"), meta.get("events")) == (models, events):
            meta["cached"] = True
            return meta
    if base.exists():
        import shutil
        shutil.rmtree(base)
    base.mkdir(parents=True)
    t0 = time.perf_counter()
    now = [datetime(2024, 1, 1, tzinfo=timezone.utc)]

    def clock() -> datetime:
        now[0] += timedelta(seconds=2)
        return now[0]

    rng = random.Random(7)
    log_key, admin, pipe = LogKey.generate(), ActorKey.generate("risk-admin"), \
        ActorKey.generate("ml-pipeline")
    ledger = Ledger.create(base / "store", origin="bench.example/models", log_key=log_key,
                           admin=admin, clock=clock)
    try:
        ledger.grant(pipe.vkey, role="writer")
        ledger.signer = pipe
        for start in range(0, models, 1000):
            with ledger.batch():
                for i in range(start, min(start + 1000, models)):
                    ledger.register(
                        name=f"model_{i:06d}", owner=f"team-{i % 40:02d}",
                        model_type="ml_model", tier=["high", "medium", "low"][i % 3],
                        purpose=f"Scoring use case {i}",
                        metadata={"framework": ["xgboost", "pytorch", "sklearn"][i % 3],
                                  "version": "1.0"})
        log(f"scale store: registered {models}")
        for start in range(0, events, 1000):
            with ledger.batch():
                for i in range(start, min(start + 1000, events)):
                    ledger.record(
                        f"model_{rng.randrange(models):06d}", SCALE_EVENTS[i % 6],
                        {"accuracy": round(rng.uniform(0.8, 0.99), 4),
                         "auc": round(rng.uniform(0.8, 0.99), 4),
                         "rows": rng.randrange(10_000, 5_000_000), "run_id": f"run-{i:08d}",
                         "dataset": f"s3://ml-data/train/2024-{rng.randrange(1, 13):02d}"})
            if start % 20_000 == 0:
                log(f"scale store: {start + 1000} events")
        ledger.sign_checkpoint()
        meta = {"models": models, "events": events, "store": str(base / "store"),
                "log_vkey": ledger.log_vkey, "entries": ledger.size,
                "build_s": round(time.perf_counter() - t0, 1)}
    finally:
        ledger.close()
    meta_path.write_text(json.dumps(meta))
    meta["cached"] = False
    return meta


_VERIFY_WRAPPER = """
import json, resource, sys
from verifier.cli import main
code = main(sys.argv[1:])
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"exit": code, "vm_hwm_kib": hwm, "cpu_s": ru.ru_utime + ru.ru_stime}),
      file=sys.stderr)
"""


def _verify_cli(path: Path, vkey: str, jobs: int) -> dict[str, Any]:
    """``modelseal-verify PATH --json --jobs N`` in a fresh process: wall time, the
    signature stats it reports, and its own peak RSS (VmHWM; ru_maxrss would carry the
    parent's peak across exec). Worker processes are not counted in the peak."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _VERIFY_WRAPPER, str(path), "--key", vkey,
                           "--json", "--jobs", str(jobs)], capture_output=True, text=True,
                          timeout=3600, cwd="/")
    wall = time.perf_counter() - t0
    tail = json.loads(done.stderr.strip().splitlines()[-1])
    if tail["exit"] != 0:
        raise RuntimeError(f"verification failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    out = json.loads(done.stdout)
    sig = out["signatures"]
    return {"jobs": jobs, "wall_s": round(wall, 2), "entries": out["at"]["size"],
            "signatures_checked": sig["checked"], "signature_processes": sig["jobs"],
            "signature_cpu_s": sig["cpu_s"], "signatures_per_s_per_core": sig["per_core_per_s"],
            "peak_rss_mib": round(tail["vm_hwm_kib"] / 1024, 1),
            "main_process_cpu_s": round(tail["cpu_s"], 2),
            # what the wall time would be with the CPUs to ourselves: the main process's
            # own work, or all the CPU work shared by the cores, whichever is longer
            "idle_machine_estimate_s": round(max(
                tail["cpu_s"], (tail["cpu_s"] + (sig["cpu_s"] if sig["jobs"] > 1 else 0))
                / min(jobs, os.cpu_count() or 1)), 1)}


def bench_scale(models: int, events: int, cache: str, jobs: int, work: Path
                ) -> dict[str, Any]:
    """The issue-13 figures: for JSON and compact bundles of the whole log, size, export
    time, and ``modelseal-verify`` with one process and with ``jobs``."""
    from ledger import Ledger

    meta = scale_store(models, events, cache)
    log(f"scale store: {meta}")
    out: dict[str, Any] = {"models": models, "events": events, "entries": meta["entries"],
                           "store_cached": meta["cached"], "jobs_all": jobs,
                           "loadavg_start": loadavg()}
    ledger = Ledger.open(meta["store"])
    try:
        for encoding in ("json", "compact"):
            path = work / f"scale.{encoding}"
            log(f"scale: exporting {encoding} (load {loadavg()})")
            t0 = time.perf_counter()
            with path.open("wb") as fh:
                for piece in ledger.iter_bundle(encoding=encoding):
                    fh.write(piece)
            out[encoding] = {"bytes": path.stat().st_size,
                             "mb": round(path.stat().st_size / 1e6, 1),
                             "export_s": round(time.perf_counter() - t0, 2)}
    finally:
        ledger.close()
    for encoding in ("json", "compact"):
        path = work / f"scale.{encoding}"
        runs = []
        for j in (1, jobs):
            log(f"scale: modelseal-verify {encoding} --jobs {j} (load {loadavg()})")
            runs.append(_verify_cli(path, meta["log_vkey"], j))
        out[encoding]["verify"] = runs
        path.unlink()
    out["loadavg_end"] = loadavg()
    return out


def bench_codecs(cache: str, limit: int | None = None) -> dict[str, Any]:
    """Each stdlib codec over the scale store's raw entry stream (2-byte lengths and exact
    bytes): compressed size, compress and decompress seconds."""
    import bz2
    import lzma
    import struct
    import zlib

    from ledger import Ledger

    meta = json.loads((Path(cache) / "meta.json").read_text())
    ledger = Ledger.open(meta["store"])
    try:
        n = ledger.size if limit is None else min(limit, ledger.size)
        raw = b"".join(struct.pack(">H", len(e)) + e
                       for e in (ledger.entry(i) for i in range(n)))
    finally:
        ledger.close()
    out: dict[str, Any] = {"entries": n, "raw_bytes": len(raw)}
    codecs: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
        "zlib-9": (lambda b: zlib.compress(b, 9), zlib.decompress),
        "bz2-9": (lambda b: bz2.compress(b, 9), bz2.decompress),
        "xz-6": (lambda b: lzma.compress(b, preset=6), lzma.decompress),
    }
    for name, (comp, dec) in codecs.items():
        log(f"codec {name} over {len(raw):,} bytes")
        t0 = time.perf_counter()
        c = comp(raw)
        t1 = time.perf_counter()
        dec(c)
        t2 = time.perf_counter()
        out[name] = {"bytes": len(c), "mb": round(len(c) / 1e6, 1),
                     "compress_s": round(t1 - t0, 1), "decompress_s": round(t2 - t1, 1)}
    return out


# -- main ---------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small repeats, for a CI smoke run")
    ap.add_argument("--sizes", default="1e3,1e4,1e5,1e6,1e7,1e8,1e9",
                    help="tree sizes for proof verification, comma separated")
    ap.add_argument("--bundle-sizes", default=None,
                    help="entry counts for bundle hashing (default 1e4,1e5,1e6; quick: 1e4)")
    ap.add_argument("--bundle-entries", type=int, default=None,
                    help="entries in the logsim bundle for verify_bundle (default 3000)")
    ap.add_argument("--pairs", type=int, default=None, help="random pairs per size")
    ap.add_argument("--repeat", type=int, default=None, help="timing repeats")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", action="store_true",
                    help="only the issue-13 figures: JSON and compact bundles of a store of "
                    "--models/--events (built once, cached under --cache), exported and "
                    "verified with modelseal-verify --jobs 1 and --jobs all")
    ap.add_argument("--models", type=int, default=28_800)
    ap.add_argument("--events", type=int, default=212_000)
    ap.add_argument("--cache", default="/tmp/modelseal-scale-store",
                    help="where the scale store is kept between runs")
    ap.add_argument("--codecs", action="store_true",
                    help="with --scale: also time each stdlib codec on the raw entries")
    args = ap.parse_args(argv)
    if args.scale:
        import tempfile

        jobs = v.sigpool.default_jobs()
        with tempfile.TemporaryDirectory(prefix="modelseal-scale-") as work:
            res = {"benchmark": "modelseal verifier at scale (issue 13)",
                   "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
                   "scale": bench_scale(args.models, args.events, args.cache, jobs,
                                        Path(work))}
        if args.codecs:
            res["codecs"] = bench_codecs(args.cache)
        print(json.dumps(res, indent=2))
        return 0

    q = args.quick
    pairs = args.pairs or (64 if q else 256)
    repeat = args.repeat or (3 if q else 7)
    min_time = 0.05 if q else 0.25
    sizes = parse_sizes(args.sizes)
    bsizes = parse_sizes(args.bundle_sizes or ("1e4" if q else "1e4,1e5,1e6"))
    bentries = args.bundle_entries or (500 if q else 3000)
    hash_repeat = args.repeat or (2 if q else 5)
    e2e_repeat = args.repeat or (2 if q else 5)

    wall0, cpu0 = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {
        "benchmark": "modelseal verifier",
        "mode": "quick" if q else "default",
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "loadavg_start": loadavg(),
        "verifier_module": str(Path(v.__file__).resolve().relative_to(ROOT)),
        "msgspec": msgspec.__version__,
        "seed": args.seed,
        "method": {
            "proofs": "synthetic tree per scale: leaf i holds i.to_bytes(8,'big') for i in a set "
                      "S of special indices (all benchmarked indices, old-1, old, new-1, plus 32 "
                      "random) and b'filler' otherwise; filler-only subtrees are hashed in "
                      "O(log width) from precomputed perfect-subtree hashes, other subtrees by "
                      "the RFC 9162 recursion with memoisation; PATH and PROOF follow RFC 9162 "
                      "section 2.1.3/2.1.4 over that tree. Generator cross-checked against "
                      "tests/reference.py; every proof verified before timing; a one-bit flip "
                      "must raise RootMismatchError/ConsistencyError and a proof one hash short "
                      "MalformedInputError.",
            "pairs": "per scale: size (or new size) uniform in (scale/2, scale], index uniform "
                     "in [0, size), old size uniform in [1, new-1]",
            "timing": "timeit loops over all pairs, loops calibrated so one repeat takes at "
                      f"least {min_time}s, {repeat} repeats, median reported; µs per "
                      "verification includes argument checks (types, 32-byte hashes, proof "
                      "length); as in timeit, the garbage collector is off while timing",
        },
    }

    log("cross-checking the synthetic proof generator against tests/reference.py")
    result["generator_crosscheck"] = crosscheck_generator(24 if q else 64)
    if result["generator_crosscheck"]["mismatches"]:
        print(json.dumps(result, indent=2))
        log("generator disagrees with the reference; stopping")
        return 1

    proofs = []
    for scale in sizes:
        log(f"proof verification at scale {scale:.0e} ({pairs} pairs, load {loadavg()})")
        proofs.append(bench_proofs(scale, pairs, repeat, min_time, args.seed))
    result["proof_verification"] = proofs
    log("correctness spot check at size 2**64-1")
    result["max_size_check"] = check_max_size(args.seed)
    result["proof_verification_summary"] = [
        {"scale": p["scale"], "inclusion_per_s": p["inclusion"]["ops_per_s_median"],
         "inclusion_us": p["inclusion"]["us_per_op_median"],
         "inclusion_us_min": p["inclusion"]["us_per_op_min"],
         "inclusion_len_mean": p["inclusion"]["proof_length"]["mean"],
         "consistency_per_s": p["consistency"]["ops_per_s_median"],
         "consistency_us": p["consistency"]["us_per_op_median"],
         "consistency_us_min": p["consistency"]["us_per_op_min"],
         "consistency_len_mean": p["consistency"]["proof_length"]["mean"]}
        for p in proofs
    ]

    hashing = []
    for n in bsizes:
        log(f"bundle hashing over {n} entries (load {loadavg()})")
        hashing.append(bench_bundle_hashing(n, hash_repeat))
    result["bundle_hashing"] = hashing

    log(f"end-to-end verify_bundle on a logsim bundle of ~{bentries} entries (load {loadavg()})")
    result["verify_bundle"] = bench_verify_bundle(bentries, e2e_repeat)

    result["canonical_malleability_check"] = malleability_check()
    result["verifier_imports"] = verifier_imports()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    result["loadavg_end"] = loadavg()
    result["wall_s"] = round(wall, 1)
    result["cpu_s"] = round(cpu, 1)
    result["cpu_share_of_wall"] = round(cpu / wall, 3)
    result["busy_note"] = (
        "loadavg is the 1/5/15-minute run-queue average of the whole machine "
        f"({os.cpu_count()} CPUs, shared with other workers); cpu_share_of_wall well below 1.0 "
        "means this single-threaded process waited for a CPU and timings are pessimistic"
    )
    print(json.dumps(result, indent=2))
    log(f"done in {wall:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
