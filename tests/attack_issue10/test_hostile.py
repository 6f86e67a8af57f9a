"""Hostile submit(bytes) mixed into groups with valid writes, then the seam check."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import verifier as v
from ledger import ActorKey, sign_statement
from tests.attack_issue10.common import new_ledger


def _flip(env: bytes) -> bytes:
    """The envelope with one bit of its signature flipped (the signature is the last
    base64 token); we forge by re-encoding."""
    st, st_bytes, key_id, sig = v.parse_signed_statement(env)
    bad = bytes([sig[0] ^ 1]) + sig[1:]
    out = env.replace(__import__("base64").b64encode(sig), __import__("base64").b64encode(bad))
    assert out != env
    return out


def test_hostile_groups_and_seam(tmp_path: Path) -> None:
    led, keys, pipe = new_ledger(tmp_path / "s")
    now = lambda: datetime.now(timezone.utc)  # noqa: E731
    rogue = ActorKey.generate("rogue")
    results: dict[str, Any] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(24)

    def put(k: str, val: Any) -> None:
        with lock:
            results[k] = val

    def call(k: str, fn: Any) -> None:
        barrier.wait()
        for _ in range(5):
            try:
                put(k, fn())
            except BaseException as exc:  # noqa: BLE001
                put(k, exc)
            k = k + "'"

    dup = sign_statement(pipe, led.origin, "event", log_id=led.log_id, claimed_at=now(),
                         model="m0", event_type="dup", payload={})
    # a forged grant (admin's statement, bad signature) for rogue, and rogue's writes
    forged_grant = _flip(sign_statement(keys.admin, led.origin, "grant", log_id=led.log_id,
                                        claimed_at=now(), key=rogue.vkey, role="writer"))
    forged_reg = _flip(sign_statement(pipe, led.origin, "register", log_id=led.log_id,
                                      claimed_at=now(), name="evil", owner="x",
                                      model_type="ml_model", tier="high", purpose="p",
                                      status="active", metadata={}))
    threads = []
    for i in range(10):
        threads.append(threading.Thread(target=call, args=(
            f"rec{i}", lambda i=i: led.record(f"m{i % 3}", "ok", {"i": i}))))
    for i in range(4):
        threads.append(threading.Thread(target=call, args=(
            f"forged_grant{i}", lambda: led.submit(forged_grant))))
    for i in range(4):
        threads.append(threading.Thread(target=call, args=(
            f"forged_reg{i}", lambda: led.submit(forged_reg))))
    for i in range(2):
        threads.append(threading.Thread(target=call, args=(
            f"rogue{i}", lambda: led.submit(sign_statement(
                rogue, led.origin, "event", log_id=led.log_id, claimed_at=now(),
                model="m0", event_type="rogue", payload={})))))
    for i in range(2):
        threads.append(threading.Thread(target=call, args=(
            f"evil{i}", lambda: led.submit(sign_statement(
                pipe, led.origin, "event", log_id=led.log_id, claimed_at=now(),
                model="evil", event_type="dep", payload={})))))
    for i in range(2):
        threads.append(threading.Thread(target=call, args=(f"dup{i}", lambda: led.submit(dup))))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    stored = Counter(v.parse_entry(led.entry(i)).snapshot_hash for i in range(led.size))
    problems = []
    for k, val in results.items():
        if k.startswith(("forged", "rogue", "evil")):
            if not isinstance(val, v.VerifierError):
                problems.append(f"{k}: {val!r}")
        elif k.startswith("dup"):
            if isinstance(val, BaseException):
                problems.append(f"{k}: {val!r}")
        elif isinstance(val, BaseException) or stored[val.snapshot_hash] != 1 or \
                v.parse_entry(led.entry(val.snapshot_hash)).snapshot_hash != val.snapshot_hash:
            problems.append(f"{k}: {val!r}")
    assert not problems, problems
    assert len({results[k].snapshot_hash for k in results if k.startswith("dup")}) == 1
    assert "evil" not in led.inventory_at()
    led.audit()
    vi = v.verify_bundle(led.export_bundle(), [keys.log.key])
    mine = led.inventory_at()
    assert set(vi.inventory.models) == set(mine)
    for name, st in mine.items():
        assert vi.inventory.models[name] == st, name
