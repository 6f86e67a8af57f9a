"""The spec-only verifier (spec_verifier.py) against modelseal-verify.

Bundles come from the real tools (``modelseal demo``, ``modelseal export``) and from
spec_writer.py, a writer made from specs/ alone. Both verifiers run as subprocesses; they
must agree on the outcome: OK, malformed input (exit 3) or a verification failure (exit 1)
of the same error class.
"""

from __future__ import annotations

import base64
import hashlib
import bz2
import json
import lzma
import re
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

import spec_writer as w  # noqa: E402

CLI = [sys.executable, "-c", "from cli._entry import modelseal; modelseal()"]
VERIFY = [sys.executable, "-c", "from verifier.startup import run_verifier; run_verifier()"]
SPEC = [sys.executable, str(HERE / "spec_verifier.py")]
MAGIC = b"\x89MSB\r\n\x1a\n"


@dataclass(frozen=True)
class Outcome:
    """What one verifier said: exit code and, for exit 1, the error class."""

    code: int
    kind: str | None
    text: str


def _spec(path: Path, keys: list[str], extra: list[str] | None = None) -> Outcome:
    args = [str(path), *keys, *(extra or [])]
    r = subprocess.run(SPEC + args, capture_output=True, text=True, timeout=120)
    m = re.match(r"FAIL (\w+):", r.stdout)
    return Outcome(r.returncode, m.group(1) if m else None, r.stdout + r.stderr)


def _real(path: Path, keys: list[str], extra: list[str] | None = None) -> Outcome:
    args = [a for k in keys for a in ("--key", k)]
    r = subprocess.run(
        VERIFY + [str(path), *args, *(extra or []), "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    m = re.match(r"FAIL: (\w+):", r.stdout)
    kind = m.group(1) if m and r.returncode == 1 else None
    return Outcome(r.returncode, kind, r.stdout + r.stderr)


def both(path: Path, keys: list[str], extra: list[str] | None = None) -> tuple[Outcome, Outcome]:
    return _spec(path, keys, extra), _real(path, keys, extra)


def assert_agree(
    path: Path, keys: list[str], extra: list[str] | None = None
) -> tuple[Outcome, Outcome]:
    s, r = both(path, keys, extra)
    assert s.code in (0, 1, 3), s.text
    assert (s.code, s.kind) == (r.code, r.kind), f"spec: {s.text}\nreal: {r.text}"
    return s, r


# --- bundles of the real tools


@dataclass(frozen=True)
class Demo:
    dir: Path
    vkey: str
    files: dict[str, Path]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    d = tmp_path_factory.mktemp("demo")
    out = subprocess.run(
        CLI + ["demo", str(d / "demo")], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "log verifier key" in line)
    vkey = lines[at + 1].strip()
    base = d / "demo"
    env_args = {
        "MODELSEAL_STORE": str(base / "store"),
        "MODELSEAL_LOG_KEY": str(base / "keys/log.key"),
        "MODELSEAL_KEY": str(base / "keys/risk-admin.key"),
    }
    import os

    env = {**os.environ, **env_args}
    files = {"demo": next(base.glob("bundle-2025-*.json"))}
    exports = {
        "small.json": ["--at", "2025-01-20"],
        "small.msb": ["--at", "2025-01-20", "--format", "compact"],
        "full.json": [],
        "full.msb": ["--format", "compact"],
        "before-genesis.json": ["--at", "2024-01-01"],
        "trusted.json": ["--at", "2025-03-01", "--trusted-size", "10"],
        "trusted389.json": ["--trusted-size", "389"],
        "trusted389.msb": ["--trusted-size", "389", "--format", "compact"],
    }
    for name, args in exports.items():
        r = subprocess.run(
            CLI + ["export", "-o", str(base / name), *args],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            env=env,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        files[name] = base / name
    return Demo(base, vkey, files)


@pytest.mark.parametrize(
    "name",
    [
        "demo",
        "small.json",
        "small.msb",
        "full.json",
        "full.msb",
        "before-genesis.json",
        "trusted.json",
    ],
)
def test_real_bundles_verify_in_both(demo: Demo, name: str) -> None:
    s, r = assert_agree(demo.files[name], [demo.vkey])
    assert s.code == 0 and s.text.startswith("OK "), s.text


def _recompress(data: bytes, codec: int, body: Callable[[bytes], bytes] | None = None) -> bytes:
    raw = zlib.decompress(data[9:])
    raw = body(raw) if body else raw
    if codec == 0:
        packed = raw
    elif codec == 1:
        packed = zlib.compress(raw)
    elif codec == 2:
        packed = lzma.compress(raw, format=lzma.FORMAT_XZ)
    else:
        packed = bz2.compress(raw)
    return MAGIC + bytes([codec]) + packed


@pytest.mark.parametrize("codec", [0, 1, 2, 3])
def test_compact_codecs(demo: Demo, tmp_path: Path, codec: int) -> None:
    p = tmp_path / "c.msb"
    p.write_bytes(_recompress(demo.files["small.msb"].read_bytes(), codec))
    s, _ = assert_agree(p, [demo.vkey])
    assert s.code == 0


def _json(demo: Demo) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(demo.files["small.json"].read_bytes())
    return doc


def _flip_entry(doc: dict[str, Any], i: int, pos: int) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(doc["entries"][i]))
    raw[pos % len(raw)] ^= 0x01
    entries = list(doc["entries"])
    entries[i] = base64.b64encode(bytes(raw)).decode()
    return {**doc, "entries": entries}


def _cp_size(doc: dict[str, Any], delta: int) -> dict[str, Any]:
    lines = doc["checkpoint"].split("\n")
    lines[1] = str(int(lines[1]) + delta)
    return {**doc, "checkpoint": "\n".join(lines)}


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], int, str | None]] = {
    "flip a byte of entry 5": (lambda d: _flip_entry(d, 5, 40), 1, "RootMismatchError"),
    "flip a byte of the last entry": (lambda d: _flip_entry(d, -1, 7), 1, "RootMismatchError"),
    "drop an entry": (lambda d: {**d, "entries": d["entries"][:3] + d["entries"][4:]}, 3, None),
    "drop an entry and lower at.size": (
        lambda d: {
            **d,
            "entries": d["entries"][:-1],
            "at": {**d["at"], "size": d["at"]["size"] - 1},
        },
        1,
        "RootMismatchError",
    ),
    "reorder two entries": (
        lambda d: {
            **d,
            "entries": [d["entries"][2], d["entries"][1], d["entries"][0]] + d["entries"][3:],
        },
        1,
        "RootMismatchError",
    ),
    "checkpoint size + 1": (lambda d: _cp_size(d, 1), 1, "SignatureError"),
    "checkpoint size - 1": (lambda d: _cp_size(d, -1), 1, "SignatureError"),
    "at.time after the checkpoint": (
        lambda d: {**d, "at": {**d["at"], "time": 2**63 - 1}},
        1,
        "TimeBoundError",
    ),
    "at.time at the next entry": (
        lambda d: {
            **d,
            "at": {
                **d["at"],
                "time": json.loads(base64.b64decode(d["next"]["entry"]))["recorded_at"],
            },
        },
        1,
        "ChainError",
    ),
    "next removed": (lambda d: {**d, "next": None}, 3, None),
    "next entry flipped": (
        lambda d: {
            **d,
            "next": {
                **d["next"],
                "entry": base64.b64encode(
                    base64.b64decode(d["next"]["entry"])[:-1] + b"!"
                ).decode(),
            },
        },
        1,
        "RootMismatchError",
    ),
    "consistency proof short": (lambda d: {**d, "consistency": d["consistency"][1:]}, 3, None),
    "consistency hashes swapped": (
        lambda d: {**d, "consistency": d["consistency"][::-1]},
        1,
        "ConsistencyError",
    ),
    "unknown member": (lambda d: {**d, "extra": 1}, 3, None),
    "version 1": (lambda d: {**d, "version": 1}, 3, None),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutated_json_bundles_refused_by_both(demo: Demo, tmp_path: Path, name: str) -> None:
    fn, code, kind = MUTATIONS[name]
    p = tmp_path / "m.json"
    p.write_text(json.dumps(fn(_json(demo))))
    s, r = assert_agree(p, [demo.vkey])
    assert (s.code, s.kind) == (code, kind), s.text


def _records(body: bytes) -> tuple[bytes, list[bytes]]:
    h = int.from_bytes(body[:4], "big")
    head, pos, recs = body[: 4 + h], 4 + h, []
    while pos < len(body):
        m = int.from_bytes(body[pos : pos + 2], "big")
        recs.append(body[pos + 2 : pos + 2 + m])
        pos += 2 + m
    return head, recs


def _join(head: bytes, recs: list[bytes]) -> bytes:
    return head + b"".join(len(r).to_bytes(2, "big") + r for r in recs)


COMPACT_MUTATIONS: dict[str, tuple[Callable[[bytes], bytes], int, str | None]] = {
    "flip a byte of record 3": (
        lambda b: _join(
            _records(b)[0],
            [
                r if i != 3 else r[:9] + bytes([r[9] ^ 1]) + r[10:]
                for i, r in enumerate(_records(b)[1])
            ],
        ),
        1,
        "RootMismatchError",
    ),
    "drop a record": (lambda b: _join(_records(b)[0], _records(b)[1][:-1]), 3, None),
    "reorder two records": (
        lambda b: _join(
            _records(b)[0], [_records(b)[1][1], _records(b)[1][0]] + _records(b)[1][2:]
        ),
        1,
        "RootMismatchError",
    ),
    "an extra record": (lambda b: _join(_records(b)[0], _records(b)[1] + [b"{}"]), 3, None),
    "a zero-length record": (lambda b: b + b"\x00\x00", 3, None),
}


@pytest.mark.parametrize("name", sorted(COMPACT_MUTATIONS))
def test_mutated_compact_bundles_refused_by_both(demo: Demo, tmp_path: Path, name: str) -> None:
    fn, code, kind = COMPACT_MUTATIONS[name]
    p = tmp_path / "m.msb"
    p.write_bytes(_recompress(demo.files["small.msb"].read_bytes(), 1, fn))
    s, _ = assert_agree(p, [demo.vkey])
    assert (s.code, s.kind) == (code, kind), s.text


def test_repeated_member_last_counts_in_both(demo: Demo, tmp_path: Path) -> None:
    """bundle.md §1 (as clarified): every occurrence fits the schema, the last counts."""
    src = demo.files["small.json"].read_bytes()
    p = tmp_path / "d.json"
    p.write_bytes(src.replace(b'{"at":', b'{"at":{"root":"x","size":1,"time":1},"at":', 1))
    assert assert_agree(p, [demo.vkey])[0].code == 0
    p.write_bytes(src.replace(b'{"at":', b'{"at":5,"at":', 1))
    assert assert_agree(p, [demo.vkey])[0].code == 3


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_byte_flip_json_agrees(demo: Demo, tmp_path: Path, data: st.DataObject) -> None:
    src = demo.files["small.json"].read_bytes()
    # bias half the flips into the parts that are not base64 entries
    head = src.index(b'"entries"')
    pos = data.draw(st.one_of(st.integers(0, len(src) - 1), st.integers(0, head - 1)))
    xor = data.draw(st.integers(1, 255))
    b = bytearray(src)
    b[pos] ^= xor
    p = tmp_path / "f.json"
    p.write_bytes(bytes(b))
    assert_agree(p, [demo.vkey])


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_byte_flip_compact_agrees(demo: Demo, tmp_path: Path, data: st.DataObject) -> None:
    raw = _recompress(demo.files["small.msb"].read_bytes(), 0)
    pos = data.draw(st.integers(0, len(raw) - 1))
    xor = data.draw(st.integers(1, 255))
    b = bytearray(raw)
    b[pos] ^= xor
    p = tmp_path / "f.msb"
    p.write_bytes(bytes(b))
    assert_agree(p, [demo.vkey])


# --- logs written from the spec


def _base() -> tuple[w.Log, w.Signer]:
    log = w.Log()
    log.genesis()
    writer = w.Signer.make("ml-pipeline")
    log.add(log.admin, "grant", key=writer.vkey, role="writer")
    return log, writer


def _register(log: w.Log, who: w.Signer, name: str, **over: Any) -> bytes:
    f: dict[str, Any] = {
        "name": name,
        "owner": "team",
        "model_type": "ml",
        "tier": "high",
        "purpose": "p",
        "status": "active",
        "metadata": {},
    }
    f.update(over)
    return log.add(who, "register", **f)


def case_valid() -> w.Log:
    log, wr = _base()
    _register(
        log,
        wr,
        "m1",
        metadata={
            "f": [1.5, 1e16, 1e-6, 0.00001, -0.0, 123456789012345.6],
            "s": "é/\u2028\x7f",
            "t": "tab\there",
        },
    )
    _register(log, wr, "m2")
    log.add(wr, "event", model="m1", event_type="validated", payload={"result": "pass"})
    snap = w.sv.leaf_hash(log.entries[-1]).hex()
    log.add(wr, "tag", model="m1", tag="production", target=snap)
    log.add(wr, "member_add", group="m2", member="m1", role=None)
    log.add(wr, "event", model="m1", event_type="retired", payload={})
    log.add(wr, "event", model="m1", event_type="reactivated", payload={})
    log.add(
        wr, "event", model="m1", event_type="updated", payload={"owner": "Ωμεγα", "tier": "low"}
    )
    log.add(wr, "member_remove", group="m2", member="m1", reason="done")
    reader = w.Signer.make("auditor")
    log.add(log.admin, "grant", key=reader.vkey, role="reader")
    log.add(log.admin, "revoke", name="auditor", reason=None)
    return log


def case_wrong_index() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="x", payload={}, entry_over={"index": 7})
    return log


def case_time_back() -> w.Log:
    log, wr = _base()
    log.add(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
        entry_over={"recorded_at": w.T0 - 1},
    )
    return log


def case_claim_ahead() -> w.Log:
    log, wr = _base()
    log.now += 0
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
    )
    st["claimed_at"] = log.now + 2 * w.HOUR
    log.append(wr, st)
    return log


def case_claim_held_back() -> w.Log:
    log, wr = _base()
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
    )
    st["claimed_at"] = log.now - 25 * w.HOUR
    log.append(wr, st)
    return log


def case_wrong_prev() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="x", payload={}, entry_over={"prev": "0" * 64})
    return log


def case_no_genesis() -> w.Log:
    log = w.Log()
    wr = w.Signer.make("ml-pipeline")
    log.log_id = "0" * 64
    _register(log, wr, "m1")
    return log


def case_second_genesis() -> w.Log:
    log, _ = _base()
    log.genesis()
    return log


def case_ungranted_actor() -> w.Log:
    log, _ = _base()
    _register(log, w.Signer.make("stranger"), "m1")
    return log


def case_reader_writes() -> w.Log:
    log, _ = _base()
    rd = w.Signer.make("auditor")
    log.add(log.admin, "grant", key=rd.vkey, role="reader")
    _register(log, rd, "m1")
    return log


def case_writer_grants() -> w.Log:
    log, wr = _base()
    log.add(wr, "grant", key=w.Signer.make("x1").vkey, role="writer")
    return log


def case_wrong_key_id() -> w.Log:
    log, wr = _base()
    log.add(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
        entry_over={"key_id": "00000000"},
    )
    return log


def case_reused_id() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.counter -= 1
    _register(log, wr, "m2")
    return log


def case_bad_signature() -> w.Log:
    log, wr = _base()
    other = w.Signer.make("ml-pipeline-other-secret")
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
    )
    log.append(wr, st, entry_over={"sig": base64.b64encode(other.sign(b"x")).decode()})
    return log


def case_statement_not_canonical() -> w.Log:
    log, wr = _base()
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
    )
    log.append(wr, st, st_bytes=json.dumps(st, sort_keys=True).encode())
    return log


def case_float_not_canonical() -> w.Log:
    log, wr = _base()
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={"f": 1.0},
    )
    sb = w.sv.canon(st).encode().replace(b'"f":1.0', b'"f":1e0')
    log.append(wr, st, st_bytes=sb)
    return log


def case_int_out_of_range() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1", metadata={"n": 2**63})
    return log


def case_too_deep() -> w.Log:
    log, wr = _base()
    v: Any = {}
    for _ in range(33):
        v = {"a": v}
    _register(log, wr, "m1", metadata=v)
    return log


def case_depth_limit_ok() -> w.Log:
    log, wr = _base()
    v: Any = {}
    for _ in range(32):
        v = {"a": v}
    _register(log, wr, "m1", metadata=v)
    return log


def case_too_many_values() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1", metadata={f"k{i:04d}": 0 for i in range(2048)})
    return log


def case_mixed_script_name() -> w.Log:
    log, wr = _base()
    _register(log, wr, "fraud_sc\u043ering")
    return log


def case_name_not_nfc() -> w.Log:
    log, wr = _base()
    _register(log, wr, "cafe\u0301")
    return log


def case_duplicate_register() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    _register(log, wr, "m1")
    return log


def case_event_unknown_model() -> w.Log:
    log, wr = _base()
    log.add(wr, "event", model="ghost", event_type="x", payload={})
    return log


def case_reserved_event() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="registered", payload={})
    return log


def case_event_on_retired() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="retired", payload={})
    log.add(wr, "event", model="m1", event_type="validated", payload={})
    return log


def case_tag_other_model() -> w.Log:
    log, wr = _base()
    raw = _register(log, wr, "m1")
    _register(log, wr, "m2")
    log.add(wr, "tag", model="m2", tag="prod", target=w.sv.leaf_hash(raw).hex())
    return log


def case_cycle() -> w.Log:
    log, wr = _base()
    _register(log, wr, "a")
    _register(log, wr, "b")
    log.add(wr, "member_add", group="a", member="b", role=None)
    log.add(wr, "member_add", group="b", member="a", role=None)
    return log


def case_remove_non_member() -> w.Log:
    log, wr = _base()
    _register(log, wr, "a")
    _register(log, wr, "b")
    log.add(wr, "member_remove", group="a", member="b", reason=None)
    return log


def case_revoke_last_admin() -> w.Log:
    log, _ = _base()
    log.add(log.admin, "revoke", name="root-admin", reason=None)
    return log


def case_grant_active_name() -> w.Log:
    log, wr = _base()
    log.add(log.admin, "grant", key=wr.vkey, role="writer")
    return log


def case_scope_model() -> w.Log:
    log, _ = _base()
    sc = w.Signer.make("fraud-bot")
    scope = {
        "ops": ["register"],
        "event_types": None,
        "tags": None,
        "models": ["fraud_*"],
        "tiers": None,
    }
    log.add(log.admin, "grant", key=sc.vkey, role="writer", scope=scope)
    _register(log, sc, "fraud_a")
    _register(log, sc, "credit_a")
    return log


def case_scope_exceeds_role() -> w.Log:
    log, _ = _base()
    scope = {"ops": ["keyring"], "event_types": None, "tags": None, "models": None, "tiers": None}
    log.add(log.admin, "grant", key=w.Signer.make("x2").vkey, role="writer", scope=scope)
    return log


def case_policy_refuses() -> w.Log:
    log, wr = _base()
    log.add(log.admin, "policy", policy={"events": {"validated": {"required": ["result"]}}})
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="validated", payload={"result": "ok"})
    log.add(wr, "event", model="m1", event_type="validated", payload={"result": None})
    return log


def case_bad_updated() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="updated", payload={"colour": "red"})
    return log


def case_other_log() -> w.Log:
    log, wr = _base()
    log.log_id = "ab" * 32
    _register(log, wr, "m1")
    return log


def case_log_key_not_origin() -> w.Log:
    log = w.Log(log_key=w.Signer.make("other.example/log"))
    log.genesis()
    return log


def case_scope_null_not_canonical() -> w.Log:
    log, _ = _base()
    log.add(log.admin, "grant", key=w.Signer.make("x3").vkey, role="writer", scope=None)
    return log


# name -> (builder, expected exit, expected class): what the spec says
CASES: dict[str, tuple[Callable[[], w.Log], int, str | None]] = {
    "valid": (case_valid, 0, None),
    "depth 32 is allowed": (case_depth_limit_ok, 0, None),
    "wrong index": (case_wrong_index, 1, "ChainError"),
    "recorded_at goes back": (case_time_back, 1, "ChainError"),
    "claimed_at ahead of recorded_at": (case_claim_ahead, 1, "ChainError"),
    "claimed_at held back": (case_claim_held_back, 1, "ChainError"),
    "wrong prev": (case_wrong_prev, 1, "ChainError"),
    "no genesis": (case_no_genesis, 1, "ChainError"),
    "second genesis": (case_second_genesis, 1, "ChainError"),
    "ungranted actor": (case_ungranted_actor, 1, "AuthorizationError"),
    "reader writes": (case_reader_writes, 1, "AuthorizationError"),
    "writer grants": (case_writer_grants, 1, "AuthorizationError"),
    "wrong key id": (case_wrong_key_id, 1, "AuthorizationError"),
    "reused statement id": (case_reused_id, 1, "ChainError"),
    "bad statement signature": (case_bad_signature, 1, "SignatureError"),
    "statement not canonical": (case_statement_not_canonical, 3, None),
    "float not canonical": (case_float_not_canonical, 3, None),
    "int64 overflow": (case_int_out_of_range, 3, None),
    "too deep": (case_too_deep, 3, None),
    "4097 values": (case_too_many_values, 3, None),
    "mixed scripts": (case_mixed_script_name, 3, None),
    "name not NFC": (case_name_not_nfc, 3, None),
    "scope null": (case_scope_null_not_canonical, 3, None),
    "duplicate register": (case_duplicate_register, 1, "RuleError"),
    "event on unknown model": (case_event_unknown_model, 1, "RuleError"),
    "reserved event type": (case_reserved_event, 1, "RuleError"),
    "event on retired model": (case_event_on_retired, 1, "RuleError"),
    "tag of another model": (case_tag_other_model, 1, "RuleError"),
    "membership cycle": (case_cycle, 1, "RuleError"),
    "remove a non-member": (case_remove_non_member, 1, "RuleError"),
    "revoke the last admin": (case_revoke_last_admin, 1, "RuleError"),
    "grant an active name": (case_grant_active_name, 1, "RuleError"),
    "outside the scope's models": (case_scope_model, 1, "AuthorizationError"),
    "scope beyond the role": (case_scope_exceeds_role, 1, "RuleError"),
    "policy: required field null": (case_policy_refuses, 1, "PolicyError"),
    "bad updated payload": (case_bad_updated, 1, "RuleError"),
    "statement for another log": (case_other_log, 1, "RuleError"),
    "log key name is not the origin": (case_log_key_not_origin, 1, "RuleError"),
}


def case_4096_values_ok() -> w.Log:
    log, wr = _base()
    md: dict[str, Any] = {f"k{i:04d}": 0 for i in range(2046)}
    md["z"] = [0]  # 1 + 2 * 2046 + 3 = 4096
    _register(log, wr, "m1", metadata=md)
    return log


def case_name_400_bytes() -> w.Log:
    log, wr = _base()
    _register(log, wr, "\u4e00" * 134)  # 402 bytes
    return log


def case_name_399_bytes_ok() -> w.Log:
    log, wr = _base()
    _register(log, wr, "\u4e00" * 133)
    return log


def case_actor_nbsp() -> w.Log:
    log, _ = _base()
    _register(log, w.Signer.make("ml\u00a0pipe"), "m1")
    return log


def case_claim_skew_boundary_ok() -> w.Log:
    log, wr = _base()
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
    )
    st["claimed_at"] = log.now + w.HOUR + 300_000_000_000
    log.append(wr, st)
    return log


def case_claim_window_boundary_ok() -> w.Log:
    log, wr = _base()
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
    )
    st["claimed_at"] = log.now + w.HOUR - 86_400_000_000_000
    log.append(wr, st)
    return log


def case_genesis_skew_too_big() -> w.Log:
    log = w.Log()
    log.genesis(claim_skew=3_600_000_000_001)
    return log


def case_scoped_admin_glob_cover() -> w.Log:
    log, _ = _base()
    adm = w.Signer.make("fraud-admin")
    scope = {
        "ops": ["keyring", "register"],
        "event_types": None,
        "tags": None,
        "models": ["a*c"],
        "tiers": None,
    }
    log.add(log.admin, "grant", key=adm.vkey, role="admin", scope=scope)
    sub = {
        "ops": ["register"],
        "event_types": None,
        "tags": None,
        "models": ["a*b*c"],
        "tiers": None,
    }
    log.add(adm, "grant", key=w.Signer.make("sub").vkey, role="writer", scope=sub)
    return log


def case_scoped_admin_glob_not_cover() -> w.Log:
    log, _ = _base()
    adm = w.Signer.make("fraud-admin")
    scope = {
        "ops": ["keyring", "register"],
        "event_types": None,
        "tags": None,
        "models": ["a*b"],
        "tiers": None,
    }
    log.add(log.admin, "grant", key=adm.vkey, role="admin", scope=scope)
    sub = {"ops": ["register"], "event_types": None, "tags": None, "models": ["a*"], "tiers": None}
    log.add(adm, "grant", key=w.Signer.make("sub").vkey, role="writer", scope=sub)
    return log


def case_scoped_admin_revokes_root() -> w.Log:
    log, _ = _base()
    adm = w.Signer.make("fraud-admin")
    scope = {"ops": ["keyring"], "event_types": None, "tags": None, "models": ["f*"], "tiers": None}
    log.add(log.admin, "grant", key=adm.vkey, role="admin", scope=scope)
    log.add(adm, "revoke", name="root-admin", reason=None)
    return log


def case_scoped_policy() -> w.Log:
    log, _ = _base()
    adm = w.Signer.make("fraud-admin")
    scope = {"ops": ["keyring"], "event_types": None, "tags": None, "models": ["f*"], "tiers": None}
    log.add(log.admin, "grant", key=adm.vkey, role="admin", scope=scope)
    log.add(adm, "policy", policy=None)
    return log


def case_reader_scope_contained() -> w.Log:
    log, _ = _base()
    adm = w.Signer.make("fraud-admin")
    scope = {"ops": ["keyring"], "event_types": [], "tags": [], "models": [], "tiers": []}
    log.add(log.admin, "grant", key=adm.vkey, role="admin", scope=scope)
    log.add(adm, "grant", key=w.Signer.make("aud").vkey, role="reader")
    return log


def case_tier_scope_existing() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1", tier="high")
    sc = w.Signer.make("low-bot")
    scope = {"ops": ["event"], "event_types": None, "tags": None, "models": None, "tiers": ["low"]}
    log.add(log.admin, "grant", key=sc.vkey, role="writer", scope=scope)
    log.add(sc, "event", model="m1", event_type="updated", payload={"tier": "low"})
    return log


def case_updated_status_retired() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="updated", payload={"status": "retired"})
    return log


def case_retired_member_no_policy_ok() -> w.Log:
    log, wr = _base()
    _register(log, wr, "g")
    _register(log, wr, "m")
    log.add(wr, "event", model="m", event_type="retired", payload={})
    log.add(wr, "member_add", group="g", member="m", role=None)
    return log


def case_retired_member_policy() -> w.Log:
    log, wr = _base()
    log.add(log.admin, "policy", policy={"events": {"retired": {"required": []}}})
    _register(log, wr, "g")
    _register(log, wr, "m")
    log.add(wr, "event", model="m", event_type="retired", payload={})
    log.add(wr, "member_add", group="g", member="m", role=None)
    return log


def case_reactivate_active() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="reactivated", payload={})
    return log


def case_register_retired() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1", status="retired")
    return log


def case_tag_target_tag() -> w.Log:
    log, wr = _base()
    raw = _register(log, wr, "m1")
    t1 = log.add(wr, "tag", model="m1", tag="a", target=w.sv.leaf_hash(raw).hex())
    log.add(wr, "tag", model="m1", tag="b", target=w.sv.leaf_hash(t1).hex())
    return log


def case_self_member() -> w.Log:
    log, wr = _base()
    _register(log, wr, "a")
    log.add(wr, "member_add", group="a", member="a", role=None)
    return log


def case_admin_revokes_self_other_remains() -> w.Log:
    log, _ = _base()
    a2 = w.Signer.make("admin-two")
    log.add(log.admin, "grant", key=a2.vkey, role="admin")
    log.add(log.admin, "revoke", name="root-admin", reason="rotate")
    log.add(a2, "grant", key=log.admin.vkey, role="admin")
    return log


def case_revoked_then_writes() -> w.Log:
    log, wr = _base()
    log.add(log.admin, "revoke", name="ml-pipeline", reason=None)
    _register(log, wr, "m1")
    return log


def case_event_type_upper() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(wr, "event", model="m1", event_type="Validated", payload={})
    return log


def case_lone_surrogate_statement() -> w.Log:
    log, wr = _base()
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="",
        status="active",
        metadata={},
    )
    sb = w.sv.canon(st).encode().replace(b'"purpose":""', b'"purpose":"\\ud800"')
    log.append(wr, st, st_bytes=sb)
    return log


def case_unicode_escape_not_canonical() -> w.Log:
    log, wr = _base()
    st = log.statement(
        wr,
        "register",
        name="m1",
        owner="o",
        model_type="t",
        tier="t",
        purpose="A",
        status="active",
        metadata={},
    )
    sb = w.sv.canon(st).encode().replace(b'"purpose":"A"', b'"purpose":"\\u0041"')
    log.append(wr, st, st_bytes=sb)
    return log


def case_sorted_by_codepoint() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1", metadata={"\uffff": 1, "\U0001f600": 2, "a": 3})
    return log


def case_trailing_newline_name() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1\n")
    return log


MORE: dict[str, tuple[Callable[[], w.Log], int, str | None]] = {
    "4096 values are allowed": (case_4096_values_ok, 0, None),
    "name of 402 bytes": (case_name_400_bytes, 3, None),
    "name of 399 bytes": (case_name_399_bytes_ok, 0, None),
    "actor with a no-break space": (case_actor_nbsp, 3, None),
    "claimed_at at the skew bound": (case_claim_skew_boundary_ok, 0, None),
    "claimed_at at the window bound": (case_claim_window_boundary_ok, 0, None),
    "genesis claim_skew over 1 h": (case_genesis_skew_too_big, 1, "RuleError"),
    "scoped admin: a*c covers a*b*c": (case_scoped_admin_glob_cover, 0, None),
    "scoped admin: a*b does not cover a*": (
        case_scoped_admin_glob_not_cover,
        1,
        "AuthorizationError",
    ),
    "scoped admin revokes the root admin": (
        case_scoped_admin_revokes_root,
        1,
        "AuthorizationError",
    ),
    "scoped admin sets a policy": (case_scoped_policy, 1, "AuthorizationError"),
    "an empty-ops scope is contained": (case_reader_scope_contained, 0, None),
    "tier scope: the model's current tier": (case_tier_scope_existing, 1, "AuthorizationError"),
    "updated sets status retired": (case_updated_status_retired, 1, "RuleError"),
    "retired member, no policy": (case_retired_member_no_policy_ok, 0, None),
    "retired member, policy": (case_retired_member_policy, 1, "RuleError"),
    "reactivated on an active model": (case_reactivate_active, 1, "RuleError"),
    "register retired": (case_register_retired, 1, "RuleError"),
    "tag target is a tag": (case_tag_target_tag, 1, "RuleError"),
    "group contains itself": (case_self_member, 1, "RuleError"),
    "admin revokes itself, another remains": (case_admin_revokes_self_other_remains, 0, None),
    "revoked key writes": (case_revoked_then_writes, 1, "AuthorizationError"),
    "upper-case event type": (case_event_type_upper, 3, None),
    "lone surrogate escape": (case_lone_surrogate_statement, 3, None),
    "\\u0041 escape": (case_unicode_escape_not_canonical, 3, None),
    "keys sorted by code point": (case_sorted_by_codepoint, 0, None),
    "name with a trailing newline": (case_trailing_newline_name, 3, None),
}
CASES.update(MORE)


@pytest.mark.parametrize("name", sorted(CASES))
def test_spec_written_logs(tmp_path: Path, name: str) -> None:
    build, code, kind = CASES[name]
    log = build()
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle())
    s, _ = assert_agree(p, [log.log_key.vkey])
    assert (s.code, s.kind) == (code, kind), s.text


def test_spec_written_cut(tmp_path: Path) -> None:
    """A bundle with a cut (n < N) and one before genesis, written from the spec."""
    log = case_valid()
    for n in (0, 1, 5, len(log.entries) - 1):
        t = w.T0 + (n) * w.HOUR  # entry i is recorded at T0 + (i + 1) h
        p = tmp_path / f"cut{n}.json"
        p.write_bytes(log.bundle(n=n, t=t))
        s, _ = assert_agree(p, [log.log_key.vkey])
        assert s.code == 0, s.text


def test_checkpoint_not_signed_by_genesis_log_key(tmp_path: Path) -> None:
    log, _ = _base()
    other = w.Signer.make("spec.example/log-other")
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle(signers=[other]))
    s, _ = assert_agree(p, [log.log_key.vkey, other.vkey])
    assert (s.code, s.kind) == (1, "SignatureError")


def test_opaque_extension_line_is_ignored(tmp_path: Path) -> None:
    log, _ = _base()
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle(extensions=[f"modelseal-time {log.now}", "example.org/ext 42"]))
    s, _ = assert_agree(p, [log.log_key.vkey])
    assert s.code == 0


def test_bare_time_keyword_is_malformed(tmp_path: Path) -> None:
    """checkpoint.md §4.1 (as clarified): the bare keyword is a time line with no value."""
    log, _ = _base()
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle(extensions=[f"modelseal-time {log.now}", "modelseal-time"]))
    s, _ = assert_agree(p, [log.log_key.vkey])
    assert s.code == 3


# FINDING (low): verifier/checkpoint.py counts every extension line that merely begins with
# "modelseal-time" (startswith without the space) as the time line, so a checkpoint carrying an
# opaque extension such as "modelseal-timezone UTC" beside its time line is refused as malformed
# ("more than one modelseal-time line"), though checkpoint.md §4.1 makes the time line
# `modelseal-time <decimal>` and every other extension line opaque (tlog-checkpoint).
def test_finding_time_line_prefix(tmp_path: Path) -> None:
    log, _ = _base()
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle(extensions=[f"modelseal-time {log.now}", "modelseal-timezone UTC"]))
    s, r = both(p, [log.log_key.vkey])
    assert s.code == 0, s.text
    assert r.code == 0, r.text


@pytest.mark.parametrize("name", ["demo", "trusted389.json", "trusted389.msb"])
def test_real_bundles_with_trusted_checkpoint(demo: Demo, name: str) -> None:
    cp = next(demo.dir.glob("checkpoint-2025-*.txt"))
    s, _ = assert_agree(demo.files[name], [demo.vkey], ["--trusted", str(cp)])
    assert s.code == 0 and "extends the trusted checkpoint of size 389" in s.text, s.text


def test_real_bundle_without_proof_from_trusted(demo: Demo) -> None:
    cp = next(demo.dir.glob("checkpoint-2025-*.txt"))
    s, _ = assert_agree(demo.files["small.json"], [demo.vkey], ["--trusted", str(cp)])
    assert (s.code, s.kind) == (1, "ConsistencyError"), s.text


def _trusted_case(tmp_path: Path, ts: int, tt_delta: int, **kw: Any) -> tuple[int, str | None]:
    """case_valid's log, a trusted checkpoint of size ``ts`` dated at entry ts-1 + delta."""
    log = case_valid()
    rec = [json.loads(e)["recorded_at"] for e in log.entries]
    tt = (rec[ts - 1] if ts else w.T0) + tt_delta
    tp = tmp_path / "trusted.txt"
    tp.write_bytes(log.checkpoint(ts, tt, origin=kw.pop("origin", None)))
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle(trusted_size=kw.pop("trusted_size", ts), **kw))
    s, _ = assert_agree(p, [log.log_key.vkey], ["--trusted", str(tp)])
    return s.code, s.kind


TRUSTED: dict[str, tuple[dict[str, Any], tuple[int, str | None]]] = {
    "valid": ({"ts": 5, "tt_delta": 0}, (0, None)),
    "valid, the same size": ({"ts": 13, "tt_delta": 0, "trusted_size": None}, (0, None)),
    "valid, size 0": ({"ts": 0, "tt_delta": 0}, (0, None)),
    "valid, cut below the trusted size": (
        {"ts": 8, "tt_delta": 0, "n": 3, "t": w.T0 + 3 * w.HOUR},
        (0, None),
    ),
    "valid, cut at the trusted size": (
        {"ts": 8, "tt_delta": 0, "n": 8, "t": w.T0 + 8 * w.HOUR},
        (0, None),
    ),
    "held entry dated after the trusted time": ({"ts": 5, "tt_delta": -1}, (1, "TimeBoundError")),
    "left-out entry back-dated": ({"ts": 5, "tt_delta": w.HOUR}, (1, "TimeBoundError")),
    "cut below: next dated after the trusted time": (
        {"ts": 8, "tt_delta": -5 * w.HOUR, "n": 3, "t": w.T0 + 3 * w.HOUR},
        (1, "TimeBoundError"),
    ),
    "cut at: next back-dated": (
        {"ts": 8, "tt_delta": w.HOUR, "n": 8, "t": w.T0 + 8 * w.HOUR},
        (1, "TimeBoundError"),
    ),
    "another origin": (
        {"ts": 5, "tt_delta": 0, "origin": "spec.example/x"},
        (1, "ConsistencyError"),
    ),
    "from_trusted of another size": (
        {"ts": 5, "tt_delta": 0, "trusted_size": 4},
        (1, "ConsistencyError"),
    ),
    "no from_trusted": ({"ts": 5, "tt_delta": 0, "trusted_size": None}, (1, "ConsistencyError")),
    "trusted not older than the checkpoint": (
        {"ts": 5, "tt_delta": 100 * w.HOUR},
        (1, "TimeBoundError"),
    ),
}


@pytest.mark.parametrize("name", sorted(TRUSTED))
def test_spec_written_trusted(tmp_path: Path, name: str) -> None:
    kw, want = TRUSTED[name]
    assert _trusted_case(tmp_path, **kw) == want


def _one_register(tmp_path: Path, **over: Any) -> tuple[Outcome, Outcome]:
    log, wr = _base()
    _register(log, wr, over.pop("name", "m1"), **over)
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle())
    return assert_agree(p, [log.log_key.vkey])


_JSON_SCALARS = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
    | st.booleans()
    | st.none()
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(_JSON_SCALARS, min_size=1, max_size=40),
    keys=st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=6), max_size=10),
)
def test_free_form_metadata_is_canonical_in_both(
    tmp_path: Path, values: list[Any], keys: list[str]
) -> None:
    """entry.md §1.1: floats, escapes and key order as this writer encodes them verify."""
    md: dict[str, Any] = {"v": values, "o": {k: i for i, k in enumerate(keys)}}
    s, _ = _one_register(tmp_path, metadata=md)
    assert s.code == 0, s.text


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("m\u00d7x", False),  # multiplication sign inside Latin-1
        ("\u0131stanbul", False),  # dotless i
        ("\u017fhip", False),  # long s
        ("\u0138", False),  # kra
        ("\u00e9t\u00e9 2025", True),
        ("\u65e5\u672c\u30e2\u30c7\u30eb", True),  # Han + Kana
        ("\ud55c\uad6d\u5b57", True),  # Hangul + Han
        ("\u30ab\ud55c", False),  # Kana + Hangul
        ("\u043c\u043e\u0434\u0435\u043b\u044c-7", True),  # Cyrillic + digits
        ("a  b", False),  # two spaces
        (" ab", False),
        ("a\u202eb", False),  # bidi control
        ("Vi\u1ec7t", True),  # Vietnamese
        ("\u0218tef", True),  # Romanian S comma
    ],
)
def test_name_profile_agrees(tmp_path: Path, name: str, ok: bool) -> None:
    s, _ = _one_register(tmp_path, name=name)
    assert s.code == (0 if ok else 3), s.text


def _walk_log(down_full: int) -> w.Log:
    """M holds A1..A64, ``down_full`` of which hold B1..B64; G is in P1..P64, each in Q1..Q64.

    Links below M: 64 + 64 * down_full; links above G: 64 + 64 * 64 = 4,160. The last entry
    adds M to G (no cycle)."""
    log, wr = _base()
    names = ["M", "G"] + [f"{c}{i:02d}" for c in "ABPQ" for i in range(64)]
    for name in names:
        _register(log, wr, name)

    def add(g: str, m: str) -> None:
        log.add(wr, "member_add", group=g, member=m, role=None)

    for i in range(64):
        add("M", f"A{i:02d}")
        add(f"P{i:02d}", "G")
    for i in range(down_full):
        for j in range(64):
            add(f"A{i:02d}", f"B{j:02d}")
    for i in range(64):
        for j in range(64):
            add(f"Q{j:02d}", f"P{i:02d}")
    add("G", "M")
    return log


@pytest.mark.parametrize(("down_full", "want"), [(63, (0, None)), (64, (1, "RuleError"))])
def test_member_add_walk_limit(
    tmp_path: Path, down_full: int, want: tuple[int, str | None]
) -> None:
    """entry.md §8.5 rule 17: 4,096 links below is allowed, 4,160 on both sides is not."""
    log = _walk_log(down_full)
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle())
    s, _ = assert_agree(p, [log.log_key.vkey])
    assert (s.code, s.kind) == want, s.text


def _vkey_of(name: str, pub: bytes) -> str:
    kid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    body = base64.b64encode(b"\x01" + pub).decode()
    return f"{name}+{kid.hex()}+{body}"


def _with_torsion(pub: bytes) -> bytes:
    """P + (0, -1): the point (-x, -y), which has a component of order 2."""
    p = w.sv._P
    n = int.from_bytes(pub, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    yy = (p - y) % p
    # -x has the opposite parity of x (x != 0), so the sign bit flips
    return (yy | ((sign ^ 1) << 255)).to_bytes(32, "little")


@pytest.mark.parametrize(
    "pub",
    [
        (1).to_bytes(32, "little"),  # the identity
        (w.sv._P - 1).to_bytes(32, "little"),  # (0, -1), order 2
        (1 | (1 << 255)).to_bytes(32, "little"),  # x = 0 with the sign bit set
        (w.sv._P + 1).to_bytes(32, "little"),  # y >= p
        "torsion",
    ],
)
def test_granted_key_must_have_order_l(tmp_path: Path, pub: bytes | str) -> None:
    """checkpoint.md §3.2 rule 7, through a grant (entry.md §8.4 step 12: malformed)."""
    raw = _with_torsion(w.Signer.make("mixed").public) if pub == "torsion" else pub
    assert isinstance(raw, bytes)
    log, _ = _base()
    log.add(log.admin, "grant", key=_vkey_of("weak", raw), role="writer")
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle())
    s, _ = assert_agree(p, [log.log_key.vkey])
    assert s.code == 3, s.text


@pytest.mark.parametrize(
    ("index", "want"),
    [
        (2**64, (1, "ChainError")),
        (10**4299, (1, "ChainError")),  # 4,300 digits
        (10**4300, (3, None)),  # 4,301 digits: the parser's limit (entry.md §1.2)
        (-1, (3, None)),
    ],
    ids=["2^64", "4300 digits", "4301 digits", "-1"],
)
def test_entry_index_range(tmp_path: Path, index: int, want: tuple[int, str | None]) -> None:
    """entry.md §4 (as clarified): `index` has no upper bound but the digit limit."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        log, wr = _base()
        _register(log, wr, "m1", entry_over={"index": index})
    finally:
        sys.set_int_max_str_digits(old)
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle())
    s, _ = assert_agree(p, [log.log_key.vkey])
    assert (s.code, s.kind) == want, s.text


def _zero_sig() -> dict[str, Any]:
    return {"sig": base64.b64encode(b"\0" * 64).decode()}


def _plain(**extra: Any) -> dict[str, Any]:
    f: dict[str, Any] = {"name": "m1", "owner": "o", "model_type": "t", "tier": "t"}
    f.update({"purpose": "", "status": "active", "metadata": {}}, **extra)
    return f


def order_reader_reuse_badsig() -> w.Log:
    log, _ = _base()
    rd = w.Signer.make("aud")
    log.add(log.admin, "grant", key=rd.vkey, role="reader")
    log.counter -= 1
    log.add(rd, "register", entry_over=_zero_sig(), **_plain())
    return log


def order_unknown_model_badsig() -> w.Log:
    log, wr = _base()
    log.add(wr, "event", model="ghost", event_type="x", payload={}, entry_over=_zero_sig())
    return log


def order_prev_unknown_actor() -> w.Log:
    log, wr = _base()
    _register(log, wr, "m1")
    log.add(w.Signer.make("nobody"), "event", model="m1", event_type="x", payload={},
            entry_over={"prev": None})  # fmt: skip
    return log


def order_origin_badsig() -> w.Log:
    log, wr = _base()
    st_ = log.statement(wr, "register", **_plain())
    st_["origin"] = "x.example"
    log.append(wr, st_, entry_over=_zero_sig())
    return log


def order_reuse_badsig() -> w.Log:
    log, wr = _base()
    log.counter -= 1
    log.add(wr, "register", entry_over=_zero_sig(), **_plain())
    return log


def order_writer_grants_badsig() -> w.Log:
    log, _ = _base()
    log.add(w.Signer.make("ml-pipeline"), "grant", key=w.Signer.make("q").vkey, role="writer",
            entry_over=_zero_sig())  # fmt: skip
    return log


def order_junk_key_badsig() -> w.Log:
    log, _ = _base()
    log.add(log.admin, "grant", key="junk", role="writer", entry_over=_zero_sig())
    return log


def order_malformed_and_index() -> w.Log:
    log, wr = _base()
    log.add(wr, "register", entry_over={"index": 9}, **_plain(tier="t\n"))
    return log


ORDER: dict[str, tuple[Callable[[], w.Log], int, str | None]] = dict(
    {
        "order: reader, reused id, bad signature": (
            order_reader_reuse_badsig,
            1,
            "AuthorizationError",
        ),
        "order: unknown model, bad signature": (order_unknown_model_badsig, 1, "SignatureError"),
        "order: wrong prev, unknown actor": (order_prev_unknown_actor, 1, "ChainError"),
        "order: other origin, bad signature": (order_origin_badsig, 1, "RuleError"),
        "order: reused id, bad signature": (order_reuse_badsig, 1, "ChainError"),
        "order: writer grants, bad signature": (
            order_writer_grants_badsig,
            1,
            "AuthorizationError",
        ),
        "order: junk granted key, bad signature": (order_junk_key_badsig, 1, "SignatureError"),
        "order: malformed name, wrong index": (order_malformed_and_index, 3, None),
    }
)


@pytest.mark.parametrize("name", sorted(ORDER))
def test_rule_order(tmp_path: Path, name: str) -> None:
    """entry.md §8: one entry breaking several rules gives the class of the first in order."""
    build, code, kind = ORDER[name]
    log = build()
    p = tmp_path / "b.json"
    p.write_bytes(log.bundle())
    s, _ = assert_agree(p, [log.log_key.vkey])
    assert (s.code, s.kind) == (code, kind), s.text


def _note_variant(kind: str) -> tuple[bytes, list[str]]:
    log = case_valid()
    d = json.loads(log.bundle())
    cp: str = d["checkpoint"]
    text, sigs = cp.split("\n\n")
    lk = log.log_key

    def b(x: bytes) -> str:
        return base64.b64encode(x).decode()

    extra = {
        "63-byte signature by the log key": [f"\u2014 {lk.name} " + b(lk.key_id + b"\1" * 63)],
        "log key name, another key ID": [f"\u2014 {lk.name} " + b(b"\0\0\0\0" + b"\1" * 64)],
        "64 signature lines": [f"\u2014 x{i} AAAAAAA=" for i in range(63)],
        "65 signature lines": [f"\u2014 x{i} AAAAAAA=" for i in range(64)],
        "a 4-byte signature": ["\u2014 x AAAAAA=="],
        "a name with +": ["\u2014 x+y AAAAAAA="],
        "a name with U+0085": ["\u2014 x\u0085y AAAAAAA="],
        "a name with U+00A0": ["\u2014 x\u00a0y AAAAAAA="],
    }.get(kind)
    if extra is not None:
        d["checkpoint"] = text + "\n\n" + sigs + "".join(line + "\n" for line in extra)
    elif kind == "NUL in the note":
        d["checkpoint"] = cp.replace("\n\n", "\n\0\n", 1)
    elif kind == "C1 control in the signed text":
        d["checkpoint"] = cp.replace(log.origin + "\n", log.origin + "\u0085\n", 1)
    return json.dumps(d).encode(), [lk.vkey]


@pytest.mark.parametrize(
    ("kind", "want"),
    [
        ("63-byte signature by the log key", (1, "SignatureError")),
        ("log key name, another key ID", (0, None)),
        ("64 signature lines", (0, None)),
        ("65 signature lines", (3, None)),
        ("a 4-byte signature", (3, None)),
        ("a name with +", (3, None)),
        ("a name with U+0085", (3, None)),
        ("a name with U+00A0", (3, None)),
        ("NUL in the note", (3, None)),
        ("C1 control in the signed text", (1, "SignatureError")),
    ],
)
def test_signed_note_rules(tmp_path: Path, kind: str, want: tuple[int, str | None]) -> None:
    """checkpoint.md §2: envelope rules and which signature lines count."""
    data, keys = _note_variant(kind)
    p = tmp_path / "b.json"
    p.write_bytes(data)
    s, _ = assert_agree(p, keys)
    assert (s.code, s.kind) == want, s.text
