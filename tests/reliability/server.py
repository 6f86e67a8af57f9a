"""Part 9, the server under kill -9 (issue 11).

``run_server_kills``: a ``modelseal serve`` process on a fixed port; C clients (each its
own ``ledger.client.Client``, retrying) submit W distinct signed statements each, one at a
time, while the server is killed with SIGKILL K times at random moments and started again
on the same store and port. Afterwards (specs/api.md §2):

- every statement a client holds a receipt for is in the log, at the index and under the
  snapshot hash the receipt names;
- every statement is in the log at most once, and every one a client got no answer for
  was retried with the same bytes (the client does that), so lands exactly once or the
  client reports that it gave up;
- the store audits clean, and each client's receipts verified as they came (the client
  raises otherwise).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import verifier as v
from ledger import ActorKey, Ledger, sign_statement
from ledger.client import Client
from tests.reliability.common import REPO, build_store

SERVE = "from cli.main import main; main()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """One ``modelseal serve`` process at a time on ``port``, restarted at will."""

    def __init__(self, store: Path, log_key: Path, port: int, log: Path) -> None:
        self.store, self.log_key, self.port, self.log = store, log_key, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, limit: float = 60) -> None:
        env = {k: val for k, val in os.environ.items() if not k.startswith("MODELSEAL_")}
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, "serve", "--store", str(self.store),
                 "--log-key", str(self.log_key), "--listen", f"127.0.0.1:{self.port}"],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    self.starts += 1
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start listening in time")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None


def run_server_kills(workdir: Path, *, clients: int, writes: int, kills: int, seed: int,
                     max_gap: float = 0.6) -> dict[str, Any]:
    """See the module docstring. ``max_gap``: the longest wait between a restart and the
    next kill."""
    rng = random.Random(seed)
    setup = build_store(workdir, writers=["ci-pipeline"], models=[f"m{i}" for i in range(8)])
    with Ledger.open(setup.path) as led:
        origin, log_id = led.origin, led.log_id
    writer = ActorKey.load(setup.key_files["ci-pipeline"])
    planned: list[list[bytes]] = [[
        sign_statement(writer, origin, "event", log_id=log_id,
                       claimed_at=datetime.now(timezone.utc), model=f"m{(c + i) % 8}",
                       event_type="trained", payload={"client": c, "i": i})
        for i in range(writes)] for c in range(clients)]
    ids = {v.parse_signed_statement(s)[0].id: (c, i)
           for c, batch in enumerate(planned) for i, s in enumerate(batch)}
    server = _Server(setup.path, setup.log_key_file, _free_port(), workdir / "server.log")
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    receipts: dict[tuple[int, int], tuple[int, str]] = {}
    gave_up: list[tuple[int, int, str]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(c: int) -> None:
        with Client(url, log_key=setup.log_vkey, actor=writer, retries=60, timeout=120) as cl:
            for i, data in enumerate(planned[c]):
                try:
                    snap = cl.submit(data)
                except Exception as exc:  # noqa: BLE001 - counted, and checked below
                    with lock:
                        gave_up.append((c, i, f"{type(exc).__name__}: {exc}"))
                    continue
                assert snap is not None
                with lock:
                    receipts[(c, i)] = (snap.index, snap.snapshot_hash)

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    killed = 0
    try:
        while killed < kills and any(t.is_alive() for t in threads):
            time.sleep(rng.uniform(0.05, max_gap))
            server.kill()
            killed += 1
            server.start()
    except Exception as exc:  # noqa: BLE001 - reported
        errors.append(f"server: {type(exc).__name__}: {exc}")
    for t in threads:
        t.join(600)
    hung = sum(t.is_alive() for t in threads)
    elapsed = time.monotonic() - t0
    exit_code = server.stop()

    with Ledger.open(setup.path) as led:
        size = led.size
        seen: Counter[str] = Counter()
        at: dict[str, tuple[int, str]] = {}
        for index in range(setup.base_size, size):
            p = v.parse_entry(led.entry(index))
            seen[p.statement.id] += 1
            at[p.statement.id] = (index, p.snapshot_hash)
        audited = led.audit()
    by_pos = {pos: sid for sid, pos in ids.items()}
    missing = [pos for pos, r in receipts.items() if at.get(by_pos[pos]) != r]
    duplicates = sum(1 for n in seen.values() if n > 1)
    strangers = sum(1 for sid in seen if sid not in ids)
    unanswered_lost = [(c, i) for c, i, _ in gave_up if seen[by_pos[(c, i)]] == 0]
    return {
        "clients": clients, "writes_per_client": writes, "kills": killed,
        "server_starts": server.starts, "seconds": round(elapsed, 2),
        "acknowledged": len(receipts), "gave_up": len(gave_up),
        "gave_up_examples": [g[2] for g in gave_up[:3]],
        "gave_up_and_absent": len(unanswered_lost), "new_entries": size - setup.base_size,
        "missing_or_moved": len(missing), "duplicates": duplicates, "strangers": strangers,
        "audit": audited == size, "hung_clients": hung, "final_exit_code": exit_code,
        "errors": errors,
    }
