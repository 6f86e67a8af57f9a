"""HTTP write benchmark: prints one JSON object (progress on stderr).

What it measures, each run on a fresh store holding --models registered models:
- modelseal: a real ``modelseal serve --listen 127.0.0.1:0`` process (read from its
  ``serving ... on http://HOST:PORT`` line), C clients (--clients, default 1,16,64), each
  on one keep-alive connection, posting distinct signed statements to ``POST /add``
  (specs/api.md §2) one at a time: acknowledged writes/s (201s per second over a fixed
  window, --seconds, after a --warmup), p50/p99/max latency, status counts, errors;
- the peer, model-ledger 0.7.13's REST app (FastAPI, ``POST /record``) on its SQLite
  backend, served by uvicorn from its own venv (--peer-venv, made or reused here), with the
  same load generator and the same C. As shipped it fails every request (its one sqlite3
  connection is used from FastAPI's worker threads); a launcher in the peer's venv passes
  ``check_same_thread=False`` to ``sqlite3.connect`` and nothing else, and the JSON says so.

The load generator is wrk (installed with apt-get if missing, unless --no-install) with a
Lua script that cycles through pre-made bodies, split between min(C, 2) threads so no body
is sent twice, and counts status codes and the acknowledged snapshot hashes; without wrk,
a Python asyncio generator in separate processes does the same (--loadgen). Every commit is
synced: the store fsyncs each commit; model-ledger's SQLite runs WAL, synchronous as read
back. After each run the server is stopped (SIGTERM) and the bench checks that every 201
landed exactly once (by hash, by statement, in its model's history), that the log holds
nothing it was not sent, that entries = registered + acknowledged writes + those still in
flight when the generator stopped (so nothing refused left an entry), and audits the store
(SQLite: PRAGMA integrity_check). Each run is a child process with a time limit; the
servers and generators it starts are killed with it.

    python bench/bench_server.py [--clients 1,16,64] [--seconds 10] [--warmup 2]
                                 [--models 200] [--loadgen auto|wrk|python]
                                 [--peer-venv DIR] [--no-peer]
    python bench/bench_server.py --quick --no-peer
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_concurrency: stdlib only
from bench_concurrency import (  # noqa: E402
    ACTOR, EVENT, PEER_VERSION, Ours, Peer, fs_of, log, payload, percentile, rate,
    peer_python as peer_base_python, run_measured,
)

TARGETS = {"clients_16_writes_per_s": 2500.0, "clients_16_vs_peer": 4.0,
           "clients_16_p99_ms": 50.0, "clients_1_writes_per_s": 600.0}
PEER_EXTRAS = ["fastapi", "uvicorn", "httptools"]
MODES = {"ours": "modelseal serve: one Ledger (with the log key) shared by the server's "
                 "worker threads; POST /add is Ledger.add of the exact bytes through the "
                 "group commit, answered after the synced commit",
         "peer": "model-ledger's REST app: one Ledger and one sqlite3 connection, used by "
                 "FastAPI's worker threads (check_same_thread=False, no lock); POST /record "
                 "is tools.record -> Ledger.record, one INSERT and one commit"}
WRK_TIMEOUT_S = 10  # a response slower than this is a timeout error (wrk --timeout)


def side_http(side: str) -> dict[str, Any]:
    """What the load generator posts to, and which answers acknowledge a write."""
    if side == "ours":
        return {"path": "/add", "ack": 201, "dup": 200, "id_field": "snapshot"}
    return {"path": "/record", "ack": 200, "dup": None, "id_field": "event_id"}


# -- the load generator --------------------------------------------------------------------
# One phase (warm-up or window) posts bodies-<tid>.txt (one body a line) from its directory,
# thread <tid> taking only its own file, and leaves result.json and acks.txt there.

LUA = r"""
-- bench_server.py: POST pre-made bodies (one per request, none twice unless they run out),
-- count status codes per thread, keep the id of every acknowledgement.
-- args: path, phase dir, ack status, id field
local threads, counter = {}, 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, dir = args[1], args[2]
  ack, idpat = tonumber(args[3]), '"' .. args[4] .. '":%s*"(%x+)"'
  result_file, acks_file = dir .. "/result.json", dir .. "/acks.txt"
  reqs = {}
  local f = assert(io.open(dir .. "/bodies-" .. tid .. ".txt", "rb"))
  for line in f:lines() do
    if #line > 0 then
      reqs[#reqs + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, line)
    end
  end
  f:close()
  nbodies, sent, statuses, acks = #reqs, 0, {}, {}
end

function request()
  sent = sent + 1
  return reqs[(sent - 1) % nbodies + 1]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == ack then
    acks[#acks + 1] = string.match(body, idpat) or "?"
  end
end

function done(summary, latency, requests)
  local first = threads[1]
  local out = assert(io.open(first:get("result_file"), "w"))
  local acks_out = assert(io.open(first:get("acks_file"), "w"))
  local parts = {}
  for _, t in ipairs(threads) do
    local st = {}
    for code, n in pairs(t:get("statuses")) do
      st[#st + 1] = string.format('"%s": %.0f', code, n)
    end
    for _, h in ipairs(t:get("acks")) do
      acks_out:write(h, "\n")
    end
    parts[#parts + 1] = string.format(
      '{"tid": %.0f, "sent": %.0f, "bodies": %.0f, "statuses": {%s}}',
      t:get("tid"), t:get("sent"), t:get("nbodies"), table.concat(st, ", "))
  end
  local e = summary.errors
  local none = summary.requests == 0
  out:write(string.format('{"duration_us": %.0f, "requests": %.0f, ' ..
    '"errors": {"connect": %.0f, "read": %.0f, "write": %.0f, "timeout": %.0f, "status": %.0f}, ' ..
    '"latency_us": {"p50": %.0f, "p99": %.0f, "max": %.0f, "mean": %.1f}, "threads": [%s]}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.timeout, e.status,
    none and 0 or latency:percentile(50), none and 0 or latency:percentile(99),
    none and 0 or latency.max, none and 0 or latency.mean, table.concat(parts, ", ")))
  out:close()
  acks_out:close()
end
"""


def find_wrk(install: bool) -> dict[str, Any]:
    """wrk's path and version; installed with apt-get (bounded) if missing and allowed."""
    out: dict[str, Any] = {"tool": "wrk", "installed_by_bench": False}
    path = shutil.which("wrk")
    if path is None and install and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                     ["apt-get", "install", "-y", "-q", "wrk"]):
            log(f"load generator: {' '.join(step)}")
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=300, env=env)
            except (OSError, subprocess.SubprocessError) as exc:
                out["install_error"] = f"{type(exc).__name__}: {exc}"[:300]
                break
            if step[1] == "install" and done.returncode == 0:
                break
            if done.returncode != 0:
                out["install_error"] = done.stderr.strip()[-300:]
        path = shutil.which("wrk")
        out["installed_by_bench"] = path is not None
    if path is None:
        out["available"] = False
        return out
    try:
        got = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10)
        version = (got.stdout or got.stderr).splitlines()[0].split(" [")[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "unknown"
    out.update(available=True, path=path, version=version)
    return out


def run_wrk(a: argparse.Namespace, url: str, phase_dir: Path, conns: int, threads: int,
            seconds: int) -> dict[str, Any]:
    """One wrk run of ``seconds`` (bounded: killed if it overruns)."""
    http = side_http(a.side)
    (phase_dir / "post.lua").write_text(LUA)
    cmd = [a.wrk, "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s",
           "--timeout", f"{WRK_TIMEOUT_S}s", "-s", str(phase_dir / "post.lua"), url, "--",
           http["path"], str(phase_dir), str(http["ack"]), http["id_field"]]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        return {"error": f"wrk did not finish within {seconds + 60} s (killed)"}
    result = phase_dir / "result.json"
    if done.returncode != 0 or not result.exists():
        return {"error": f"wrk exited {done.returncode}: {(done.stderr or done.stdout)[-300:]}"}
    doc: dict[str, Any] = json.loads(result.read_text())
    return doc


def run_pyloadgen(a: argparse.Namespace, url: str, phase_dir: Path, conns: int, threads: int,
                  seconds: int) -> dict[str, Any]:
    """The fallback: ``threads`` processes of the asyncio generator, merged like wrk's."""
    shares = [conns // threads + (k < conns % threads) for k in range(threads)]
    procs = [subprocess.Popen(
        [a.loadgen_python, "-I", str(Path(__file__).resolve()), "--child", "loadgen",
         "--url", url, "--work", str(phase_dir), "--k", str(k), "--c", str(shares[k]),
         "--seconds", str(seconds), "--side", a.side],
        stdout=subprocess.DEVNULL) for k in range(threads)]
    try:
        for p in procs:
            p.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        return {"error": f"the Python load generator overran {seconds + 60} s (killed)"}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    parts = []
    for k, p in enumerate(procs):
        f = phase_dir / f"result-{k}.json"
        if p.returncode != 0 or not f.exists():
            return {"error": f"load generator process {k} exited {p.returncode}"}
        parts.append(json.loads(f.read_text()))
    lat = sorted(x for d in parts for x in d.pop("lat_us"))
    errors: Counter[str] = Counter()
    for d in parts:
        errors.update(d.pop("errors"))
    statuses: Counter[str] = Counter()
    for d in parts:
        statuses.update(d["statuses"])
    with open(phase_dir / "acks.txt", "w", encoding="ascii") as out:
        for k in range(threads):
            out.write((phase_dir / f"acks-{k}.txt").read_text())
    return {"duration_us": max(d.pop("duration_us") for d in parts),
            "requests": sum(statuses.values()),
            "errors": {**{k: errors[k] for k in ("connect", "read", "write", "timeout")},
                       "status": sum(n for s, n in statuses.items() if int(s) > 399)},
            "latency_us": {"p50": percentile(lat, 0.50), "p99": percentile(lat, 0.99),
                           "max": lat[-1] if lat else 0,
                           "mean": round(sum(lat) / len(lat), 1) if lat else 0.0},
            "threads": parts}


def child_loadgen(a: argparse.Namespace) -> None:
    """One process of the fallback generator: ``a.c`` keep-alive connections, each posting
    the next body of bodies-<k>.txt when its previous answer has arrived."""
    http, work, k = side_http(a.side), Path(a.work), a.k
    host, port = a.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    bodies = [b for b in (work / f"bodies-{k}.txt").read_bytes().split(b"\n") if b]
    head = (f"POST {http['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    idpat = re.compile(rb'"' + http["id_field"].encode() + rb'":\s*"([0-9a-f]+)"')
    sent = [0]
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    acks: list[str] = []
    lat: list[int] = []

    async def answer(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
        status = int((await reader.readline()).split(b" ", 2)[1])
        length, close = None, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise ValueError("an answer without Content-Length")
        return status, close, await reader.readexactly(length)

    async def connection() -> None:
        writer: asyncio.StreamWriter | None = None
        reader: asyncio.StreamReader | None = None
        while True:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection(host, int(port))
                except OSError:
                    errors["connect"] += 1
                    await asyncio.sleep(0.05)
                    continue
            assert reader is not None
            body = bodies[sent[0] % len(bodies)]
            sent[0] += 1
            t = time.perf_counter()
            try:
                writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
            except OSError:
                errors["write"] += 1
                writer.close()
                writer = None
                continue
            try:
                status, close, data = await answer(reader)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                errors["read"] += 1
                writer.close()
                writer = None
                continue
            us = round((time.perf_counter() - t) * 1e6)
            statuses[str(status)] += 1
            if us > WRK_TIMEOUT_S * 1_000_000:
                errors["timeout"] += 1
            else:
                lat.append(us)
            if status == http["ack"]:
                m = idpat.search(data)
                acks.append(m.group(1).decode() if m else "?")
            if close:
                writer.close()
                writer = None

    async def main() -> float:
        start = time.perf_counter()
        tasks = [asyncio.create_task(connection()) for _ in range(a.c)]
        await asyncio.sleep(a.seconds)
        for task in tasks:
            task.cancel()  # an answer still awaited is abandoned, as wrk does
        await asyncio.gather(*tasks, return_exceptions=True)
        return time.perf_counter() - start

    seconds = asyncio.run(main())
    (work / f"acks-{k}.txt").write_text("".join(h + "\n" for h in acks), encoding="ascii")
    (work / f"result-{k}.json").write_text(json.dumps(
        {"tid": k, "sent": sent[0], "bodies": len(bodies), "statuses": dict(statuses),
         "errors": dict(errors), "lat_us": lat, "duration_us": round(seconds * 1e6)}))


# -- the servers -----------------------------------------------------------------------------


def start_server(cmd: list[str], log_file: Path, timeout: float = 60.0
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server whose stderr says ``serving ... on http://HOST:PORT``; its URL."""
    with open(log_file, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env={k: v for k, v in os.environ.items()
                                                 if not k.startswith("MODELSEAL_")})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"serving .* on (http://\S+)", log_file.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    raise RuntimeError(f"the server did not start (exit {proc.returncode}): "
                       f"{log_file.read_text(errors='replace')[-1500:]}")


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    """SIGTERM (a graceful stop: requests under way finish); SIGKILL if it overruns."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            return -9
    return int(proc.returncode)


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def pressure() -> dict[str, float]:
    """The kernel's CPU and I/O pressure (PSI: % of the last 60 s that some task stalled
    waiting), where the kernel reports it: others' load shows here too."""
    out: dict[str, float] = {}
    for kind in ("cpu", "io"):
        try:
            line = Path(f"/proc/pressure/{kind}").read_text().splitlines()[0]
            out[f"{kind}_some_avg60"] = float(line.split("avg60=")[1].split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return out


def ours_server_cmd(work: Path) -> list[str]:
    script = Path(sys.executable).parent / "modelseal"
    prog = [str(script)] if script.exists() else [
        sys.executable, "-c", "from cli.main import run; run()"]
    return prog + ["serve", "--store", str(work / "store"), "--log-key",
                   str(work / "keys" / "log.key"), "--listen", "127.0.0.1:0"]


def peer_server_cmd(work: Path, as_shipped: bool = False) -> list[str]:
    return [sys.executable, "-I", str(Path(__file__).resolve()), "--child", "peer-serve",
            "--work", str(work)] + (["--as-shipped"] if as_shipped else [])


def child_peer_serve(a: argparse.Namespace) -> None:
    """The peer's launcher (in its venv): model-ledger's REST app on its SQLite backend,
    on uvicorn with the settings ``modelseal serve`` uses. Unless --as-shipped, sqlite3
    connections are made with check_same_thread=False: the one change to the peer."""
    import socket
    import sqlite3

    if not a.as_shipped:
        connect = sqlite3.connect

        def cross_thread_connect(*args: Any, **kwargs: Any) -> Any:
            kwargs["check_same_thread"] = False
            return connect(*args, **kwargs)

        sqlite3.connect = cross_thread_connect
    import uvicorn
    from model_ledger.backends.sqlite_ledger import (  # type: ignore[import-not-found]
        SQLiteLedgerBackend,
    )
    from model_ledger.rest.app import create_app  # type: ignore[import-not-found]

    backend = SQLiteLedgerBackend(Peer.db(Path(a.work)))
    app = create_app(backend=backend)
    # IPPROTO_TCP, as uvicorn's own bind makes it: asyncio sets TCP_NODELAY on the
    # connections such a socket accepts (with proto 0 it does not: Nagle + delayed ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    print(f"serving model-ledger ({backend.count_all_snapshots()} snapshots) on "
          f"http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, http="httptools", loop="asyncio", timeout_keep_alive=5,
                            limit_concurrency=4096, server_header=False, access_log=False,
                            log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def peer_probe_as_shipped(work: Path, requests: int = 5) -> dict[str, Any]:
    """The peer's app exactly as shipped: a few /record posts, one at a time."""
    log_file = work / "peer-as-shipped.log"
    proc, url = start_server(peer_server_cmd(work, as_shipped=True), log_file)
    statuses: Counter[str] = Counter()
    body = ""
    try:
        for i in range(requests):
            data = json.dumps({"model_name": "model_000000", "event": EVENT, "actor": ACTOR,
                               "payload": {"run_id": f"as-shipped-{i}"}}).encode()
            req = urllib.request.Request(url + "/record", data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    statuses[str(r.status)] += 1
            except urllib.error.HTTPError as exc:
                statuses[str(exc.code)] += 1
                body = exc.read().decode(errors="replace")[:200]
            except OSError as exc:
                statuses[type(exc).__name__] += 1
    finally:
        code = stop_server(proc)
    errors = [ln for ln in log_file.read_text(errors="replace").splitlines()
              if re.match(r"\w+(\.\w+)*(Error|Exception): ", ln)]
    return {"requests": requests, "status": dict(statuses), "answer": body,
            "server_error": errors[-1][:300] if errors else None, "server_exit": code}


# -- one run: a fresh store, a server, warm-up, window, stop, check --------------------------


def make_bodies(a: argparse.Namespace, work: Path, phase: str, count: int,
                threads: int, rng: random.Random) -> list[list[str]]:
    """``count`` distinct bodies for one phase, split between ``threads`` files; returns
    each thread's run ids in order (what the check matches the log against)."""
    d = work / phase
    d.mkdir()
    per = math.ceil(count / threads)
    runs: list[list[str]] = []
    if a.side == "ours":
        import ledger as lg
        with lg.Ledger.open(work / "store") as led:
            origin, log_id = led.origin, led.log_id
        pipe = lg.ActorKey.load(work / "keys" / "pipe.key")
    for k in range(threads):
        ids = [f"{phase}-c{a.c}-t{k}-{i}" for i in range(per)]
        lines = []
        for run in ids:
            model = f"model_{rng.randrange(a.models):06d}"
            if a.side == "ours":
                lines.append(lg.sign_statement(
                    pipe, origin, "event", log_id=log_id, claimed_at=datetime.now(timezone.utc),
                    model=model, event_type=EVENT, payload=payload(rng, run)))
            else:
                lines.append(json.dumps({"model_name": model, "event": EVENT, "actor": ACTOR,
                                         "payload": payload(rng, run)}).encode())
        assert not any(b"\n" in b for b in lines)
        (d / f"bodies-{k}.txt").write_bytes(b"\n".join(lines) + b"\n")
        runs.append(ids)
    return runs


def phase_stats(a: argparse.Namespace, doc: dict[str, Any], runs: list[list[str]]
                ) -> dict[str, Any]:
    """A phase's figures from the generator's result (and which bodies it sent)."""
    http = side_http(a.side)
    statuses: Counter[str] = Counter()
    sent: list[str] = []
    wrapped = False
    for t in doc["threads"]:
        statuses.update({k: int(v) for k, v in t["statuses"].items()})
        ids = runs[int(t["tid"])]
        sent += ids[:int(t["sent"])]
        wrapped = wrapped or int(t["sent"]) > len(ids)
    seconds = doc["duration_us"] / 1e6
    total_sent = sum(int(t["sent"]) for t in doc["threads"])
    acked = statuses.get(str(http["ack"]), 0)
    dups = statuses.get(str(http["dup"]), 0) if http["dup"] else 0
    unexpected = sum(n for s, n in statuses.items() if s not in (str(http["ack"]),
                                                                  str(http["dup"])))
    e = doc["errors"]
    socket_errors = {k: int(e[k]) for k in ("connect", "read", "write", "timeout")}
    lat = doc["latency_us"]
    return {
        "seconds": round(seconds, 3), "acknowledged": acked,
        "writes_per_s": rate(acked, seconds),
        "p50_ms": round(lat["p50"] / 1e3, 3), "p99_ms": round(lat["p99"] / 1e3, 3),
        "max_ms": round(lat["max"] / 1e3, 3), "mean_ms": round(lat["mean"] / 1e3, 3),
        "status": dict(sorted(statuses.items())), "duplicates_answered": dups,
        "errors": sum(socket_errors.values()) + unexpected,
        "error_kinds": {**{k: v for k, v in socket_errors.items() if v},
                        **({"unexpected_status": unexpected} if unexpected else {})},
        "sent": total_sent, "responses": int(doc["requests"]),
        "in_flight_at_stop": total_sent - int(doc["requests"]),
        "bodies": {"made": sum(len(r) for r in runs), "wrapped": wrapped},
        "_sent_runs": sent,
    }


def run_phase(a: argparse.Namespace, url: str, work: Path, phase: str, seconds: int,
              count: int, rng: random.Random) -> dict[str, Any]:
    threads = min(a.c, 2)
    runs = make_bodies(a, work, phase, count, threads, rng)
    gen = run_wrk if a.loadgen == "wrk" else run_pyloadgen
    log(f"{a.side} C={a.c} {phase}: {seconds} s, {sum(len(r) for r in runs)} bodies")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    doc = gen(a, url, work / phase, a.c, threads, seconds)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if "error" in doc:
        return doc
    out = phase_stats(a, doc, runs)
    out["load_generator_cpu_s"] = round(after.ru_utime + after.ru_stime
                                        - before.ru_utime - before.ru_stime, 2)
    return out


def child_run(a: argparse.Namespace) -> dict[str, Any]:
    """One side at one C: set up, serve, warm up, measure, stop, check."""
    side, work = (Ours() if a.side == "ours" else Peer()), Path(a.work)
    side.setup(work, a.models)
    facts = side.facts(work) if a.facts else None
    if facts is not None:
        facts["mode"] = MODES[a.side]
        if a.side == "peer":
            facts["as_shipped_probe"] = peer_probe_as_shipped(work)
    base = side.size(work) if a.side == "ours" else 0
    rng = random.Random(a.seed * 10_007 + a.c)
    out: dict[str, Any] = {"clients": a.c, "threads": min(a.c, 2),
                           "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                           "pressure_start": pressure()}
    log_file = work / "server.log"
    try:
        proc, url = start_server(ours_server_cmd(work) if a.side == "ours"
                                 else peer_server_cmd(work), log_file)
    except RuntimeError as exc:
        log(f"{a.side} C={a.c}: {exc}")
        return {**out, "error": str(exc)[:3000]}
    log(f"{a.side} C={a.c}: serving on {url}")
    try:
        warm = run_phase(a, url, work, "warmup", a.warmup,
                         math.ceil(2 * a.expect * a.warmup) + 2 * a.c, rng)
        if "error" in warm:
            out.update(error=f"warm-up: {warm['error']}")
        else:
            time.sleep(0.5)  # what the warm-up left in flight commits before the window
            # bodies for twice the warm-up's rate, and never fewer than --expect's: a warm-up
            # slowed by other load must not leave the window too few (they would wrap round)
            expect = max(warm["writes_per_s"], a.expect / 2)
            cpu0 = cpu_seconds(proc.pid)
            win = run_phase(a, url, work, "window", a.seconds,
                            math.ceil(2 * expect * a.seconds) + 2 * a.c, rng)
            server_cpu = round(cpu_seconds(proc.pid) - cpu0, 2)
            if "error" in win:
                out.update(error=f"window: {win['error']}")
    finally:
        code = stop_server(proc)
    out["server_exit"] = code
    if "error" in out:
        out["server_stderr"] = log_file.read_text(errors="replace")[-3000:]
        return out
    sent = set(warm.pop("_sent_runs")) | set(win.pop("_sent_runs"))
    acks = [h for phase in ("warmup", "window")
            for h in (work / phase / "acks.txt").read_text().split()]
    out.update({k: v for k, v in win.items() if k != "load_generator_cpu_s"})
    out["cpu_s_in_window"] = {"server": server_cpu,
                              "load_generator": win["load_generator_cpu_s"]}
    out["warmup"] = {k: warm[k] for k in ("seconds", "acknowledged", "writes_per_s",
                                          "p99_ms", "errors", "status", "in_flight_at_stop")}
    in_flight = warm["in_flight_at_stop"] + win["in_flight_at_stop"]
    refused = warm["errors"] + win["errors"]
    log(f"{a.side} C={a.c}: {win['acknowledged']} acknowledged in {win['seconds']} s, "
        f"{win['errors']} errors; checking")
    check = check_ours(work, base, sent, acks, in_flight, refused, a.models) \
        if a.side == "ours" else check_peer(side, work, sent, acks, in_flight, refused, a.models)
    out.update(check)
    text = log_file.read_text(errors="replace")
    raised = Counter(ln[:200] for ln in text.splitlines()
                     if re.match(r"\w+(\.\w+)*(Error|Exception): ", ln))
    if raised:
        out["server_exceptions"] = dict(raised.most_common(5))
    clean_exit = code == 0 or (a.side == "peer" and code == -signal.SIGTERM)
    if not check["ok"] or not clean_exit or (a.side == "ours" and out["errors"]):
        out["server_stderr"] = text[-3000:]
        log(f"{a.side} C={a.c}: server stderr (exit {code}):\n{text[-3000:]}")
    if facts is not None:
        out["facts"] = facts
    return out


# -- the checks ------------------------------------------------------------------------------


def verdict(acks: list[str], acked_runs: dict[str, str], runs: Counter[str],
            hash_of: dict[str, str], in_history: Counter[str], sent: set[str], added: int,
            in_flight: int, refused: int, audit: str) -> dict[str, Any]:
    """The check's counts. ``acked_runs``: each acknowledged hash found in the log, with
    the run id of the body it holds; ``runs``: how often each run id is in the log's new
    entries; ``hash_of``: the hash each is stored under; ``in_history``: hashes in the
    models' histories. An entry nobody acknowledged is allowed only for a body still in
    flight when the generator stopped (the server commits it after): more than that many,
    or one from a body never sent, fails the run."""
    unacked = [r for r in runs if r not in set(acked_runs.values())]
    out = {
        "acknowledged_total": len(acks),
        "lost": sum(1 for h in acks if h not in acked_runs),
        "acknowledged_twice": len(acks) - len(set(acks)),
        "wrong_hash": sum(1 for h, r in acked_runs.items() if hash_of.get(r) != h),
        "duplicates": sum(c - 1 for c in runs.values() if c > 1),
        "not_once_in_history": sum(1 for h in set(acks) if in_history[h] != 1),
        "never_sent_in_log": sum(1 for r in runs if r not in sent),
        "unacknowledged_in_log": len(unacked),
        "in_flight_at_stop": in_flight,
        "refused_calls": refused,
        "entries_added": added,
        "audit": audit,
    }
    out["refused_left_an_entry"] = len(unacked) > in_flight
    out["ok"] = audit.startswith("passed") and added == len(set(acks)) + len(unacked) and not any(
        out[k] for k in ("lost", "acknowledged_twice", "wrong_hash", "duplicates",
                         "not_once_in_history", "never_sent_in_log", "refused_left_an_entry"))
    return out


def check_ours(work: Path, base: int, sent: set[str], acks: list[str], in_flight: int,
               refused: int, models: int) -> dict[str, Any]:
    """Reads the stopped server's store: every entry after the registrations, each
    acknowledged hash, every model's history, then audit()."""
    import ledger as lg
    import verifier as v

    def run_of(data: bytes) -> str | None:
        st = v.parse_entry(data).statement
        run = st.payload.get("run_id") if isinstance(st, v.Event) else None
        return run if isinstance(run, str) else None

    with lg.Ledger.open(work / "store") as led:
        size = led.size
        runs: Counter[str] = Counter()
        hash_of: dict[str, str] = {}
        for i in range(base, size):
            data = led.entry(i)
            run = run_of(data) or f"<entry {i}: no run_id>"
            runs[run] += 1
            hash_of[run] = v.snapshot_hash(data)
        acked_runs: dict[str, str] = {}
        for h in set(acks):
            try:
                found = run_of(led.entry(h))
            except Exception:
                continue
            if found is not None:
                acked_runs[h] = found
        in_history: Counter[str] = Counter(
            s.snapshot_hash for i in range(models) for s in led.history(f"model_{i:06d}"))
        try:
            audited = led.audit()
            audit = "passed" if audited == size else f"checked {audited} of {size}"
        except Exception as exc:
            audit = f"failed: {type(exc).__name__}: {exc}"[:300]
    return verdict(acks, acked_runs, runs, hash_of, in_history, sent, size - base, in_flight,
                   refused, audit)


def check_peer(side: Ours | Peer, work: Path, sent: set[str], acks: list[str], in_flight: int,
               refused: int, models: int) -> dict[str, Any]:
    """Reads the stopped peer's SQLite file: every event row, each acknowledged event id,
    every model's history, then PRAGMA integrity_check."""
    import sqlite3
    conn = sqlite3.connect(Peer.db(work))
    try:
        runs: Counter[str] = Counter()
        hash_of: dict[str, str] = {}
        for h, body in conn.execute("SELECT snapshot_hash, payload FROM snapshots "
                                    "WHERE event_type = ?", (EVENT,)):
            run = json.loads(body or "{}").get("run_id")
            run = run if isinstance(run, str) else f"<snapshot {h}: no run_id>"
            runs[run] += 1
            hash_of[run] = h
        acked_runs: dict[str, str] = {}
        for h in set(acks):
            row = conn.execute("SELECT payload FROM snapshots WHERE snapshot_hash = ?",
                               (h,)).fetchone()
            run = json.loads(row[0] or "{}").get("run_id") if row else None
            if isinstance(run, str):
                acked_runs[h] = run
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    led = side.open(work)
    try:
        in_history: Counter[str] = Counter(
            s.snapshot_hash for i in range(models) for s in led.history(f"model_{i:06d}"))
    finally:
        side.close(led)
    audit = "passed (PRAGMA integrity_check)" if integrity == "ok" else \
        f"failed: integrity_check {integrity}"
    return verdict(acks, acked_runs, runs, hash_of, in_history, sent, sum(runs.values()),
                   in_flight, refused, audit)


# -- the parent ----------------------------------------------------------------------------------


def run_child(python: list[str], a: argparse.Namespace, extra: list[str],
              label: str) -> dict[str, Any]:
    """Run one measurement in a child process with its own work directory and a time limit;
    a child that overruns is killed (with its server and load generator) and reported."""
    work = Path(tempfile.mkdtemp(prefix="modelseal-bench-server-", dir=a.dir))
    cmd = python + [str(Path(__file__).resolve()), "--work", str(work), "--models",
                    str(a.models), "--seconds", str(a.seconds), "--warmup", str(a.warmup),
                    "--seed", str(a.seed), "--expect", str(a.expect), "--loadgen", a.loadgen,
                    "--wrk", a.wrk or "", "--loadgen-python", sys.executable] + extra
    return run_measured(cmd, work, a.timeout, label, reap=True)


def peer_python(venv: Path) -> tuple[Path, dict[str, str]]:
    """The peer's venv (bench_concurrency's) with its REST extras and httptools added."""
    py = peer_base_python(venv)
    probe = [str(py), "-I", "-c", "import importlib.metadata as m, json; print(json.dumps("
             f"{{p: m.version(p) for p in {['model-ledger', 'starlette'] + PEER_EXTRAS!r}}}))"]
    got = subprocess.run(probe, capture_output=True, text=True, timeout=120)
    if got.returncode != 0:
        log(f"peer: installing model-ledger[rest-api]=={PEER_VERSION} and httptools")
        subprocess.run([str(py), "-m", "pip", "install", "-q",
                        f"model-ledger[rest-api]=={PEER_VERSION}", "httptools"],
                       check=True, timeout=600, stdout=sys.stderr)
        got = subprocess.run(probe, capture_output=True, text=True, timeout=120)
        if got.returncode != 0:
            raise RuntimeError(f"the peer's REST app is not importable: {got.stderr[-300:]}")
    return py, json.loads(got.stdout)


def side_runs(python: list[str], side: str, a: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"clients": {}}
    for i, n in enumerate(a.client_counts):
        extra = ["--child", "run", "--side", side, "--c", str(n)] + (["--facts"] if i == 0
                                                                     else [])
        doc = run_child(python, a, extra, f"{side} C={n}")
        if "facts" in doc:
            out["facts"] = doc.pop("facts")
        out["clients"][str(n)] = doc
    return out


def targets(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with what was measured and whether it passed (None if not
    measured). A run counts only if it was correct: no error, no duplicate answer, nothing
    lost, the store audited."""
    runs = ours.get("clients", {})

    def clean(r: dict[str, Any] | None) -> bool:
        return (r is not None and "error" not in r and r.get("errors") == 0
                and r.get("duplicates_answered") == 0 and bool(r.get("ok")))

    def one(clients: str, key: str, target: float, higher: bool) -> dict[str, Any]:
        r = runs.get(clients)  # None: not measured (pass None); a run that failed: False
        sign = ">=" if higher else "<="
        if r is None:
            return {"target": f"{sign} {target:g}", "measured": None, "run_clean": None,
                    "pass": None}
        measured = r.get(key)
        passed = clean(r) and measured is not None and (
            measured >= target if higher else measured <= target)
        return {"target": f"{sign} {target:g}", "measured": measured, "run_clean": clean(r),
                "pass": passed}

    peer16 = peer.get("clients", {}).get("16")
    ratio: dict[str, Any] = {"target": f">= {TARGETS['clients_16_vs_peer']:g}x the peer's "
                             "acknowledged writes/s at 16 clients, same run",
                             "measured": None, "peer_writes_per_s": None, "pass": None}
    if peer16 is not None and "16" in runs:
        ours16 = runs["16"].get("writes_per_s") or 0.0
        theirs = peer16.get("writes_per_s")
        ratio["peer_writes_per_s"] = theirs
        if theirs:
            ratio["measured"] = round(ours16 / theirs, 2)
        ratio["pass"] = bool(clean(runs["16"]) and "error" not in peer16 and (
            not theirs or ours16 / theirs >= TARGETS["clients_16_vs_peer"]))
    zero = {"target": "0 errors and every check passed, at every C", "measured": {
        c: None if r.get("errors") is None else r["errors"] + r.get("duplicates_answered", 0)
        for c, r in runs.items()}, "pass": bool(runs) and all(clean(r) for r in runs.values())}
    out: dict[str, Any] = {
        "clients_16_writes_per_s": one("16", "writes_per_s",
                                       TARGETS["clients_16_writes_per_s"], True),
        "clients_16_vs_peer": ratio,
        "clients_16_p99_ms": one("16", "p99_ms", TARGETS["clients_16_p99_ms"], False),
        "zero_errors": zero,
        "clients_1_writes_per_s": one("1", "writes_per_s",
                                      TARGETS["clients_1_writes_per_s"], True),
    }
    verdicts = [t["pass"] for t in out.values()]
    out["all_pass"] = None if None in verdicts else all(verdicts)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="1,16,64", help="client counts [1,16,64]")
    ap.add_argument("--seconds", type=int, default=10, help="measured window per run [10]")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up before each window [2]")
    ap.add_argument("--models", type=int, default=200, help="models registered first [200]")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--expect", type=float, default=5000.0,
                    help="writes/s the warm-up's bodies are made for, twice over (the "
                         "window's: twice the warm-up's rate, at least this) [5000]")
    ap.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                    help="wrk, the Python asyncio fallback, or wrk if it can be had [auto]")
    ap.add_argument("--no-install", action="store_true",
                    help="do not apt-get install wrk when it is missing")
    ap.add_argument("--peer-venv", type=Path,
                    default=Path(tempfile.gettempdir()) / "modelseal-bench-peer",
                    help="the peer's own venv, made or reused [TMPDIR/modelseal-bench-peer]")
    ap.add_argument("--no-peer", action="store_true", help="measure modelseal only")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 and 4 clients, 2 s, 1 s warm-up, 20 models")
    ap.add_argument("--dir", default=None, help="where stores go [the current directory]")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="limit per run, setup and check included "
                         "[180 s + 10 x (window + warm-up)]")
    # the children's arguments
    ap.add_argument("--child", choices=["run", "loadgen", "peer-serve"], help=argparse.SUPPRESS)
    ap.add_argument("--side", choices=["ours", "peer"], help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--c", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--wrk", help=argparse.SUPPRESS)
    ap.add_argument("--loadgen-python", help=argparse.SUPPRESS)
    ap.add_argument("--facts", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--as-shipped", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.child == "loadgen":
        child_loadgen(a)
        return
    if a.child == "peer-serve":
        child_peer_serve(a)
        return
    if a.child == "run":
        doc = child_run(a)
        doc["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]  # others' load shows here
        print(json.dumps(doc), flush=True)
        return
    if a.quick:
        a.clients, a.seconds, a.warmup, a.models = "1,4", 2, 1, 20
    a.client_counts = [int(x) for x in a.clients.split(",") if x.strip()]
    if not a.timeout:
        a.timeout = 180.0 + 10 * (a.seconds + a.warmup)
    a.dir = a.dir or os.getcwd()
    gen: dict[str, Any] = {"tool": "python-asyncio", "reason": "--loadgen python"}
    a.wrk = None
    if a.loadgen != "python":
        wrk = find_wrk(install=not a.no_install)
        if wrk["available"]:
            gen, a.wrk, a.loadgen = wrk, wrk["path"], "wrk"
        elif a.loadgen == "wrk":
            raise SystemExit(f"wrk is not available: {wrk}")
        else:
            gen = {"tool": "python-asyncio", "reason": "wrk could not be had", "wrk": wrk}
            a.loadgen = "python"
    if a.loadgen == "python":
        gen["how"] = ("min(C, 2) processes of an asyncio HTTP/1.1 client (this bench's "
                      "--child loadgen), each with its share of the C keep-alive connections; "
                      "latency: every answer's, nearest-rank percentiles")
    else:
        gen["how"] = ("wrk -t min(C, 2) -c C -d WINDOW with a Lua script cycling through "
                      "each thread's own pre-made bodies and counting statuses in a response "
                      "hook; latency: wrk's histogram (after wrk's coordinated-omission "
                      f"correction); --timeout {WRK_TIMEOUT_S} s")
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_start": os.getloadavg(),
                    "pressure_start": pressure(),
                    "store_dir": fs_of(a.dir), "temp_dir": fs_of(tempfile.gettempdir()),
                    "load_generator": gen},
        "settings": {"clients": a.client_counts, "threads": {str(c): min(c, 2) for c in
                                                             a.client_counts},
                     "window_s": a.seconds, "warmup_s": a.warmup, "models": a.models,
                     "seed": a.seed, "quick": a.quick,
                     "request": "one request at a time per keep-alive connection; bodies made "
                     "before each phase, distinct, split between the generator's threads",
                     "ours": "POST /add of a signed statement (sign_statement 'event', "
                     f"event_type {EVENT!r}, a model drawn at random); acknowledged: 201; 200 "
                     "(already in the log) is counted apart as a duplicate",
                     "peer": f"POST /record {{model_name, event: {EVENT!r}, payload, actor}} "
                     "on a model drawn at random; acknowledged: 200",
                     "writes_per_s": "acknowledgements in the window / the window's length",
                     "errors": "socket errors (connect, read, write), timeouts, and any "
                     "status but the acknowledgement and the duplicate answer",
                     "in_flight_at_stop": "requests sent and not answered when the generator "
                     "stopped: the server still commits them, so they may be in the log "
                     "unacknowledged (the check allows no more than that many)"},
    }
    log(f"modelseal: clients {a.client_counts}, load generator {gen['tool']}")
    result["ours"] = side_runs([sys.executable], "ours", a)
    if a.no_peer:
        result["peer"] = {"skipped": "--no-peer"}
    else:
        try:
            py, versions = peer_python(a.peer_venv)
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            log(f"peer: {exc}")
            result["peer"] = {"error": f"could not set up the peer's venv: {exc}"}
        else:
            log(f"model-ledger: clients {a.client_counts}")
            result["peer"] = {
                "venv": str(a.peer_venv), "versions": versions,
                "app": "model_ledger.rest.app.create_app(backend=SQLiteLedgerBackend(db)), "
                       "the sync POST /record endpoint (tools.record -> Ledger.record)",
                "server": "uvicorn, http=httptools, loop=asyncio, keep-alive 5 s, no access "
                          "log: the settings modelseal serve uses (httptools added to the "
                          "peer's venv for that); stopped by SIGTERM, which uvicorn re-raises "
                          "after its graceful stop (server_exit -15)",
                "changed": {"what": "sqlite3.connect is wrapped (in this bench's launcher, "
                                    "in the peer's venv) to pass check_same_thread=False; "
                                    "nothing else",
                            "why": "as shipped, the app's one sqlite3 connection is made in "
                                   "the main thread and FastAPI runs the sync endpoint in "
                                   "worker threads, so sqlite3 refuses every request (see "
                                   "facts.as_shipped_probe); the connection is then shared "
                                   "by those threads without a lock, and whatever fails of "
                                   "that is counted as errors"},
                **side_runs([str(py), "-I"], "peer", a)}
    result["targets"] = targets(result["ours"], result["peer"])
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["machine"]["pressure_end"] = pressure()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
