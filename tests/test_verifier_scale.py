"""Issue 13, a verifier that scales: signature checks on a process pool (same verdicts as
inline, fail closed), the compact streaming encoding (round trip with JSON, a parser that
only ever refuses with MalformedInputError) and bounded memory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from verifier import bundle as bundle_mod
from verifier import sigpool
from verifier.compact import MAGIC, CompactReader, compact_chunks
from verifier.compact_bundle import compact_from_json, json_from_compact, verify_bundle_file
from verifier.errors import (
    IncompleteError,
    MalformedInputError,
    RuleError,
    SignatureError,
    VerificationError,
)

from .logsim import Log, Signer

ROOT = Path(__file__).resolve().parent.parent
VERIFY = [sys.executable, "-m", "verifier.cli"]


# -- logs ------------------------------------------------------------------------------


def _log(models: int = 30, events: int = 300, *, bad_sig_at: set[int] = frozenset(),
         rule_break_at: int | None = None) -> tuple[Log, Signer]:
    """A log of ``models`` registrations and ``events`` events. An event whose position in
    the log is in ``bad_sig_at`` carries a signature that does not verify; at position
    ``rule_break_at`` an event names a model never registered (RuleError)."""
    lg = Log.create(seed="scale")
    pipe = Signer("ml-pipeline", b"scale-pipe")
    lg.submit(lg.admin, "grant", key=pipe.vkey, role="writer")
    for i in range(models):
        lg.submit(pipe, "register", name=f"m{i:04d}", owner=f"team-{i % 5}",
                  model_type="ml_model", tier="high", purpose="p", status="active",
                  metadata={"i": i})
    for i in range(events):
        pos = len(lg.entries)
        name = "nobody" if pos == rule_break_at else f"m{i % models:04d}"
        st = lg.statement(pipe, "event", model=name, event_type="retrained",
                          payload={"run": i, "accuracy": 0.5 + (i % 50) / 100})
        sig = pipe.sign(st)
        if pos in bad_sig_at:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        lg.append(st, pipe.key.key_id, sig)
    return lg, pipe


def _bundle(lg: Log, trusted: int | None = None) -> bytes:
    return lg.bundle(lg.clock + 10**9, trusted=trusted)


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the pool from the first signature, in chunks of 32."""
    monkeypatch.setattr(bundle_mod, "_POOL_MIN", 0)
    monkeypatch.setattr(bundle_mod, "_CHUNK", 32)


def _summary(r: v.VerifiedInventory) -> dict[str, Any]:
    out = r.to_json()
    out.pop("signatures")
    return out


def _outcome(data: bytes, keys: list[v.VerifierKey], jobs: int) -> tuple[str, str]:
    try:
        r = v.verify_bundle(data, keys, jobs=jobs)
    except (MalformedInputError, VerificationError) as exc:
        return type(exc).__name__, str(exc)
    return "OK", json.dumps(_summary(r), sort_keys=True)


# -- the pool: same verdicts as inline --------------------------------------------------


def test_pool_and_inline_agree_on_a_good_bundle(small_pool: None) -> None:
    lg, _ = _log()
    data = _bundle(lg, trusted=40)
    keys = [lg.log_key.key]
    inline = v.verify_bundle(data, keys, jobs=1)
    pooled = v.verify_bundle(data, keys, jobs=2)
    assert _summary(inline) == _summary(pooled)
    assert inline.signatures is not None and pooled.signatures is not None
    assert inline.signatures.checked == pooled.signatures.checked == len(lg.entries)
    assert (inline.signatures.jobs, pooled.signatures.jobs) == (1, 2)
    assert pooled.signatures.per_core_per_s > 0
    assert pooled.to_json()["signatures"]["checked"] == len(lg.entries)


@pytest.mark.parametrize("bad, rule", [
    ({200}, None),            # one bad signature, in a late chunk
    ({45, 300}, None),        # the earliest of two is named
    ({250}, 120),             # a rule broken before the bad signature: RuleError
    ({90}, 260),              # a bad signature before the broken rule: SignatureError
])
def test_pool_and_inline_agree_on_tampered_bundles(small_pool: None, bad: set[int],
                                                   rule: int | None) -> None:
    lg, _ = _log(bad_sig_at=bad, rule_break_at=rule)
    data = _bundle(lg)
    keys = [lg.log_key.key]
    inline = _outcome(data, keys, 1)
    assert inline == _outcome(data, keys, 2)
    first = min(bad | ({rule} if rule is not None else set()))
    expected = RuleError if first == rule else SignatureError
    assert inline[0] == expected.__name__
    if expected is SignatureError:
        st = v.parse_entry(lg.entries[first]).statement
        assert st.id in inline[1]


def test_a_tampered_root_wins_over_a_bad_signature(small_pool: None) -> None:
    """The order of specs/bundle.md §2: step 9 (root) before step 12 (replay)."""
    lg, _ = _log(bad_sig_at={100})
    doc = json.loads(_bundle(lg))
    doc["entries"][150], doc["entries"][151] = doc["entries"][151], doc["entries"][150]
    data = json.dumps(doc).encode()
    keys = [lg.log_key.key]
    assert _outcome(data, keys, 1)[0] == _outcome(data, keys, 2)[0] == "RootMismatchError"


def test_a_worker_killed_mid_run_fails_closed(small_pool: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers killed after the first chunks are sent: IncompleteError, never OK."""
    submitted = 0

    class Killing(sigpool.DeferredSignatures):
        def _submit(self) -> None:
            nonlocal submitted
            super()._submit()
            submitted += 1
            if submitted == 2 and self._pool is not None:
                for proc in list(self._pool._processes.values()):
                    os.kill(proc.pid, signal.SIGKILL)

    monkeypatch.setattr(bundle_mod, "DeferredSignatures", Killing)
    lg, _ = _log()
    with pytest.raises(IncompleteError, match="not completed"):
        v.verify_bundle(_bundle(lg), [lg.log_key.key], jobs=2)
    assert submitted >= 2


def test_deferred_signatures_alone() -> None:
    key = Signer("a", b"k1")
    msgs = [f"m{i}".encode() for i in range(100)]
    with sigpool.DeferredSignatures(2, chunk=8) as sigs:
        for m in msgs:
            assert sigs(key.key, key.sign(m), m) is True
        stats = sigs.settle()
    assert (stats.checked, stats.jobs) == (100, 2)
    with pytest.raises(ValueError):
        sigpool.DeferredSignatures(0)
    assert sigpool.default_jobs() >= 1


def test_cli_jobs_and_ctrl_c(tmp_path: Path) -> None:
    lg, _ = _log(models=40, events=9000)
    path = tmp_path / "b.msb"
    path.write_bytes(b"".join(compact_from_json(_bundle(lg))))
    vkey = lg.log_key.vkey
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*VERIFY, str(path), "--key", vkey, "--json", "--jobs", "2"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["signatures"]["jobs"] == 2 and out["signatures"]["checked"] == len(lg.entries)
    bad = subprocess.run([*VERIFY, str(path), "--key", vkey, "--jobs", "0"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2
    # Ctrl-C at a terminal reaches the whole process group: workers ignore it, the
    # verifier ends the pool and exits 130 without a traceback.
    # The signal comes sooner each time until one run is interrupted (a fast machine may
    # finish before it); a run that finished first must have verified.
    for delay in (2.0, 1.0, 0.5, 0.25):
        proc = subprocess.Popen([*VERIFY, str(path), "--key", vkey, "--jobs", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        out_text, err_text = proc.communicate(timeout=60)
        assert "Traceback" not in err_text
        if proc.returncode != 0:
            break
        assert out_text.startswith("OK"), out_text
    assert proc.returncode == 130, (delay, out_text, err_text)
    assert "interrupted" in err_text and "OK" not in out_text
    alive = _group(proc.pid)
    for _ in range(100):  # the forkserver and resource tracker end when their pipes close
        if not alive:
            break
        time.sleep(0.1)
        alive = _group(proc.pid)
    assert not alive, f"processes left in the group: {alive}"


def _group(pgid: int) -> list[str]:
    """The processes still in process group ``pgid`` (with their command lines)."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "-g", str(pgid)], capture_output=True,
                         text=True, timeout=10).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


# -- the compact encoding ---------------------------------------------------------------


@pytest.mark.parametrize("codec", ["zlib", "xz", "bz2", "none"])
def test_compact_json_round_trip(codec: str) -> None:
    lg, _ = _log(models=12, events=80)
    data = _bundle(lg, trusted=20)
    compact = b"".join(compact_from_json(data, codec))
    assert compact.startswith(MAGIC)
    assert b"".join(json_from_compact(io.BytesIO(compact))) == data
    keys = [lg.log_key.key]
    trusted = v.Checkpoint.parse_note(lg.checkpoint(20), keys)
    a = v.verify_bundle(data, keys, trusted=trusted)
    b = v.verify_bundle(compact, keys, trusted=trusted)
    c = verify_bundle_file(io.BytesIO(compact), keys, trusted=trusted)
    d = verify_bundle_file(io.BytesIO(data), keys, trusted=trusted)
    assert _summary(a) == _summary(b) == _summary(c) == _summary(d)


def test_compact_is_smaller_and_verdicts_match_json() -> None:
    lg, _ = _log(bad_sig_at={77})
    data = _bundle(lg)
    compact = b"".join(compact_from_json(data))
    assert len(compact) * 3 < len(data)
    keys = [lg.log_key.key]
    assert _outcome(data, keys, 1) == _outcome(compact, keys, 1)
    assert _outcome(data, keys, 1)[0] == "SignatureError"


def _raw_stream(header: bytes, records: list[bytes], codec: int = 0,
                tail: bytes = b"") -> bytes:
    body = struct.pack(">I", len(header)) + header + b"".join(
        struct.pack(">H", len(r)) + r for r in records) + tail
    return MAGIC + bytes([codec]) + (zlib.compress(body) if codec == 1 else body)


def _read_all(data: bytes, n: int | None = None) -> list[bytes]:
    reader = CompactReader(io.BytesIO(data))
    if n is None:
        n = 3
    return list(reader.entries(n))


def test_compact_reader_refusals() -> None:
    good = _raw_stream(b"{}", [b"a", b"bc", b"d"])
    assert _read_all(good) == [b"a", b"bc", b"d"]
    zipped = _raw_stream(b"{}", [b"a", b"bc", b"d"], codec=1)
    assert _read_all(zipped) == [b"a", b"bc", b"d"]
    cases = {
        "bad magic": b"{" + good[1:],
        "unknown codec": MAGIC + b"\x09" + good[9:],
        "short": good[:-1],
        "trailing": good + b"x",
        "trailing after zlib": zipped + b"\x00",
        "more records": _raw_stream(b"{}", [b"a", b"bc", b"d", b"e"]),
        "empty record": _raw_stream(b"{}", [b"a", b"", b"d"]),
        "zero header": MAGIC + b"\x00" + struct.pack(">I", 0),
        "huge header": MAGIC + b"\x00" + struct.pack(">I", (1 << 20) + 1) + b"x" * 10,
        "damaged zlib": zipped[:12] + bytes([zipped[12] ^ 0xFF]) + zipped[13:],
    }
    for what, data in cases.items():
        with pytest.raises(MalformedInputError):
            _read_all(data)
            pytest.fail(what)


def test_compact_writer_preconditions() -> None:
    with pytest.raises(ValueError):
        list(compact_chunks(b"{}", [b""]))
    with pytest.raises(ValueError):
        list(compact_chunks(b"{}", [b"x" * 65_536]))
    with pytest.raises(ValueError):
        list(compact_chunks(b"{}", [b"x"], codec="gzip"))


_SMALL = _log(models=4, events=12)[0]
_SMALL_JSON = _bundle(_SMALL)
_SMALL_KEYS = [_SMALL.log_key.key]
_STREAMS = {c: b"".join(compact_from_json(_SMALL_JSON, c)) for c in ("none", "zlib", "xz",
                                                                       "bz2")}


def _verify_only_known_errors(data: bytes) -> None:
    try:
        v.verify_bundle(data, _SMALL_KEYS)
    except (MalformedInputError, VerificationError):
        pass
    try:
        verify_bundle_file(io.BytesIO(data), _SMALL_KEYS)
    except (MalformedInputError, VerificationError):
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codec=st.sampled_from(sorted(_STREAMS)), cut=st.integers(min_value=0),
       data=st.data())
def test_fuzz_truncated_streams(codec: str, cut: int, data: st.DataObject) -> None:
    stream = _STREAMS[codec]
    cut %= len(stream)
    with pytest.raises(MalformedInputError):
        v.verify_bundle(stream[:cut], _SMALL_KEYS)
    with pytest.raises(MalformedInputError):
        verify_bundle_file(io.BytesIO(stream[:cut]), _SMALL_KEYS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codec=st.sampled_from(sorted(_STREAMS)), edits=st.lists(
    st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
    min_size=1, max_size=4))
def test_fuzz_mutated_streams(codec: str, edits: list[tuple[int, int]]) -> None:
    buf = bytearray(_STREAMS[codec])
    for pos, value in edits:
        buf[pos % len(buf)] = value
    _verify_only_known_errors(bytes(buf))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([0, 1, 2, 3, 7]))
def test_fuzz_random_streams(body: bytes, codec: int) -> None:
    data = MAGIC + bytes([codec]) + body
    with pytest.raises(MalformedInputError):
        v.verify_bundle(data, _SMALL_KEYS)
    try:
        reader = CompactReader(io.BytesIO(data))
        list(reader.entries(5))
    except MalformedInputError:
        pass


# -- memory ------------------------------------------------------------------------------


# ru_maxrss would carry the parent's peak over exec on Linux: VmHWM is this process's own.
_HWM = """
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""
_MEASURE = _HWM + """
import sys
from verifier import VerifierKey
from verifier.compact_bundle import verify_bundle_file
with open(sys.argv[1], "rb") as fh:
    before = hwm()
    r = verify_bundle_file(fh, [VerifierKey.parse(sys.argv[2])], jobs=1)
print(r.size, before, hwm())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_streaming_memory_is_bounded(tmp_path: Path) -> None:
    """A compact bundle of about 50 MB of entries verifies in a process whose peak RSS grows
    by far less than the entries' size; the same bundle as JSON needs several times more."""
    lg = Log.create(seed="mem")
    pipe = Signer("ml-pipeline", b"mem-pipe")
    lg.submit(lg.admin, "grant", key=pipe.vkey, role="writer")
    lg.submit(pipe, "register", name="big", owner="o", model_type="t", tier="high",
              purpose="p", status="active", metadata={})
    for i in range(1700):
        noise = "".join(hashlib.sha256(f"{i}-{k}".encode()).hexdigest() for k in range(440))
        lg.submit(pipe, "event", model="big", event_type="retrained", payload={"blob": noise})
    data = _bundle(lg)
    # Each event's payload stays in its model's timeline (the report shows it), so the
    # inventory itself holds about 47 MB; the JSON path also holds the whole file and its
    # decoded entries.
    compact = tmp_path / "b.msb"
    compact.write_bytes(b"".join(compact_from_json(data, "none")))
    js = tmp_path / "b.json"
    js.write_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    vkey = lg.log_key.vkey
    peaks = {}
    for name, path in (("compact", compact), ("json", js)):
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(path), vkey],
                             capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr
        size, before, after = map(int, out.stdout.split())
        assert size == len(lg.entries)
        peaks[name] = after - before  # KiB
    raw = sum(len(e) for e in lg.entries) // 1024
    assert peaks["compact"] < peaks["json"] / 2, (peaks, raw)
    assert peaks["compact"] < raw * 1.6, (peaks, raw)  # the timelines' payloads, and little more


_READ_ONLY = _HWM + """
import sys
from verifier.compact import CompactReader
with open(sys.argv[1], "rb") as fh:
    reader = CompactReader(fh)
    before = hwm()
    total = sum(len(e) for e in reader.entries(int(sys.argv[2])))
print(total, before, hwm())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("codec", ["zlib", "none"])
def test_reader_streams_in_bounded_memory(tmp_path: Path, codec: str) -> None:
    """80 MB of entries read through CompactReader: peak RSS grows by under 16 MB."""
    records = [hashlib.sha256(str(i).encode()).hexdigest().encode() * 100
               for i in range(12_500)]  # 6,400 bytes each, 80 MB in all
    path = tmp_path / f"r.{codec}"
    with path.open("wb") as fh:
        for piece in compact_chunks(b"{}", records, codec):
            fh.write(piece)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _READ_ONLY, str(path), str(len(records))],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    total, before, after = map(int, out.stdout.split())
    assert total == sum(map(len, records))
    assert after - before < 16 * 1024, (before, after)


# -- the commands ------------------------------------------------------------------------


def test_export_format_compact_and_verify(tmp_path: Path) -> None:
    from verifier import cli as verify_cli

    from .cli_support import ok, refused, timed_store

    store = timed_store(tmp_path)
    js, compact = tmp_path / "b.json", tmp_path / "b.msb"
    ok(store.run("export", "-o", js))
    doc = ok(store.run("export", "-o", compact, "--format", "compact", "--json")).json()
    assert doc["bytes"] == compact.stat().st_size
    assert compact.read_bytes().startswith(MAGIC)
    assert b"".join(json_from_compact(io.BytesIO(compact.read_bytes()))) == js.read_bytes()
    refused(store.run("export", "-o", compact, "--format", "compact"), 2, "exists")
    assert verify_cli.main([str(compact), "--key", store.log_vkey, "--jobs", "1"]) == 0
    broken = tmp_path / "broken.msb"
    broken.write_bytes(compact.read_bytes()[:-3])
    assert verify_cli.main([str(broken), "--key", store.log_vkey]) == 3
