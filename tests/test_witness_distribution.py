"""The log server sends its checkpoints to witnesses (ledger/server/_witnesses.py,
specs/api.md §7): in process against in-memory witnesses, then a real `modelseal serve`
with three `modelseal witness serve` processes on localhost."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import verifier as v
from ledger import ActorKey, Ledger, LogKey, sign_statement
from ledger.keys import WitnessSigner
from ledger.server import Distributor, WitnessEndpoint, read_witness_file
from ledger.witness import Witness, WitnessState, build_app as witness_app
from tests.cli_support import cli, ok, refused
from verifier.cosignature import require_witnesses, verify_cosignatures

ORIGIN = "example.org/witnessed"
ROOT = Path(__file__).resolve().parent.parent


class Log:
    """A ledger with a writer key, to write to directly or through a server."""

    def __init__(self, path: Path, origin: str = ORIGIN, log_key: LogKey | None = None) -> None:
        self.log_key = log_key or LogKey.generate()
        self.admin = ActorKey.generate("risk-admin")
        self.path = path
        self.led = Ledger.create(path, origin=origin, log_key=self.log_key, admin=self.admin)
        self.led.signer = self.admin
        self.led.register(name="m0", owner="risk", model_type="ml_model", tier="high",
                          purpose="scores")

    def statement(self, i: int) -> bytes:
        return sign_statement(self.admin, self.led.origin, "event", log_id=self.led.log_id,
                              claimed_at=datetime.now(timezone.utc), model="m0",
                              event_type="evaluated", payload={"i": i})


class Routes(httpx.AsyncBaseTransport):
    """Requests to http://<name>/... go to the application registered as <name>; a name
    mapped to None never answers (an absent witness that holds the connection)."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = {k: (None if a is None else httpx.ASGITransport(app=a))
                     for k, a in apps.items()}
        self.calls: dict[str, list[bytes]] = {k: [] for k in apps}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.calls[host].append(request.content)
        target = self.apps[host]
        if target is None:
            await anyio.sleep(3600)
            raise AssertionError("unreachable")
        return await target.handle_async_request(request)


def _witness(tmp: Path, name: str, log: Log) -> tuple[Witness, WitnessSigner]:
    signer = WitnessSigner.generate(f"{name}.example/w")
    return Witness(WitnessState(tmp / name), signer, [log.log_key.key]), signer


def _run_until(dist: Distributor, done: Callable[[], bool], limit: float,
               during: Callable[[], None] | None = None) -> float:
    """Run ``dist`` until ``done()`` (checked every 50 ms) or ``limit`` seconds; the
    seconds it took."""
    async def main() -> float:
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(dist.run)
            with anyio.move_on_after(limit):
                while not done():
                    if during is not None:
                        await anyio.to_thread.run_sync(during)
                    dist.poke()
                    await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        return anyio.current_time() - start

    return anyio.run(main)


def _cosigners(note: bytes | None, signers: list[WitnessSigner]) -> int:
    if note is None:
        return 0
    return len(verify_cosignatures(note, [s.witness_key for s in signers]))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    made = Log(tmp_path / "store")
    yield made
    made.led.close()


# -- in process -----------------------------------------------------------------------------

def test_checkpoints_are_cosigned_and_stored(tmp_path: Path, log: Log) -> None:
    (w1, s1), (w2, s2) = _witness(tmp_path, "w1", log), _witness(tmp_path, "w2", log)
    routes = Routes({"w1": witness_app(w1), "w2": witness_app(w2)})
    dist = Distributor(log.led, [WitnessEndpoint("http://w1", s1.witness_key),
                                 WitnessEndpoint("http://w2", s2.witness_key)],
                       interval=0.1, transport=routes)
    size = log.led.size
    assert ok(cli("--store", log.path, "checkpoint")).out_bytes == log.led.checkpoint()
    _run_until(dist, lambda: _cosigners(log.led.cosigned(size), [s1, s2]) == 2, 20)
    note = log.led.cosigned()
    assert note is not None
    assert ok(cli("--store", log.path, "checkpoint")).out_bytes == note
    cp = v.Checkpoint.parse_note(note, [log.log_key.key])
    assert cp.size == size
    require_witnesses(verify_cosignatures(note, [s1.witness_key, s2.witness_key]), 2)
    assert dist.cosigned == {"http://w1": size, "http://w2": size}
    # the log grows: the next checkpoint is sent with a consistency proof from the last
    log.led.record("m0", "evaluated", {"n": 1})
    log.led.record("m0", "evaluated", {"n": 2})
    grown = log.led.size
    _run_until(dist, lambda: _cosigners(log.led.cosigned(grown), [s1, s2]) == 2, 20)
    body = routes.calls["w1"][-1]
    assert body.startswith(f"old {size}\n".encode())
    for w in (w1, w2):
        rec = w.state.get(ORIGIN)
        assert rec is not None and rec.size == grown


def test_a_409_is_followed_by_one_retry_from_the_witness_size(tmp_path: Path, log: Log) -> None:
    w1, s1 = _witness(tmp_path, "w1", log)
    w1.add_checkpoint(log.led.prove_consistency(0).to_text())  # the witness knows size 2
    known = log.led.size
    log.led.record("m0", "evaluated", {"n": 1})
    routes = Routes({"w1": witness_app(w1)})
    dist = Distributor(log.led, [WitnessEndpoint("http://w1", s1.witness_key)],
                       interval=0.1, transport=routes)
    _run_until(dist, lambda: log.led.cosigned(log.led.size) is not None, 20)
    assert [c.split(b"\n")[0] for c in routes.calls["w1"][:2]] == [
        b"old 0", f"old {known}".encode()]


def test_an_absent_witness_delays_nobody(tmp_path: Path, log: Log) -> None:
    """One witness never answers: the other's cosignatures are stored, and writes go on at
    their pace; the absent one is asked at most once per timeout, then less often."""
    w1, s1 = _witness(tmp_path, "w1", log)
    dead = WitnessSigner.generate("dead.example/w")
    routes = Routes({"w1": witness_app(w1), "dead": None})
    dist = Distributor(log.led, [WitnessEndpoint("http://w1", s1.witness_key),
                                 WitnessEndpoint("http://dead", dead.witness_key)],
                       interval=0.1, timeout=0.5, transport=routes)
    writes: list[float] = []

    def write() -> None:
        start = time.monotonic()
        log.led.record("m0", "evaluated", {"t": start})
        writes.append(time.monotonic() - start)

    took = _run_until(dist, lambda: len(writes) >= 30 and _cosigners(
        log.led.cosigned(log.led.size), [s1]) == 1, 30, during=write)
    assert took < 25
    assert max(writes) < 2.0
    assert 1 <= len(routes.calls["dead"]) <= took / 0.5 + 1


def test_requests_are_rate_limited(tmp_path: Path, log: Log) -> None:
    w1, s1 = _witness(tmp_path, "w1", log)
    routes = Routes({"w1": witness_app(w1)})
    dist = Distributor(log.led, [WitnessEndpoint("http://w1", s1.witness_key)],
                       interval=0.5, transport=routes)
    count = 0

    def write() -> None:
        nonlocal count
        count += 1
        log.led.record("m0", "evaluated", {"c": count})

    took = _run_until(dist, lambda: count >= 40, 30, during=write)
    # pokes every 50 ms with the log growing each time: at most one request per 0.5 s
    assert len(routes.calls["w1"]) <= took / 0.5 + 2
    assert len(routes.calls["w1"]) >= 2


def test_answers_that_are_not_cosignatures_are_not_stored(tmp_path: Path, log: Log) -> None:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    other = WitnessSigner.generate("other.example/w")
    pinned = WitnessSigner.generate("pinned.example/w")

    async def impostor(request: Any) -> Response:
        body = await request.body()
        note = body.split(b"\n\n", 1)[1]
        text = note.split(b"\n\n")[0] + b"\n"
        return Response(other.cosign(text, 5), 200)  # a valid cosignature by another key

    async def garbage(request: Any) -> Response:
        return Response(b"\xe2\x80\x94 pinned.example/w AAAA\n", 200)

    routes = Routes({"a": Starlette(routes=[Route("/add-checkpoint", impostor,
                                                  methods=["POST"])]),
                     "b": Starlette(routes=[Route("/add-checkpoint", garbage,
                                                  methods=["POST"])])})
    dist = Distributor(log.led, [WitnessEndpoint("http://a", pinned.witness_key),
                                 WitnessEndpoint("http://b", WitnessSigner.generate(
                                     "b.example/w").witness_key)],
                       interval=0.05, transport=routes)
    _run_until(dist, lambda: len(routes.calls["a"]) >= 2 and len(routes.calls["b"]) >= 2, 20)
    assert log.led.cosigned() is None
    assert dist.cosigned == {}


def test_serve_refuses_bad_witness_options(tmp_path: Path) -> None:
    key = WitnessSigner.generate("w.example/1").vkey
    for args in (["--witness", "junk"], ["--witness", f"http://a={key}", "--witness",
                                          f"http://b={key}"],
                 ["--witness-file", str(tmp_path / "missing.txt")]):
        refused(cli("serve", "--store", tmp_path, *args), 2, "witness")
    (tmp_path / "w.txt").write_text("http://a.example=nokey\n")
    refused(cli("serve", "--store", tmp_path, "--witness-file", tmp_path / "w.txt"), 2,
            "line 1")


def test_witness_configuration_parses_strictly() -> None:
    key = WitnessSigner.generate("w.example/1").witness_key
    ok = WitnessEndpoint.parse(f"https://w.example:8443/prefix/={key.vkey()}")
    assert (ok.url, ok.key) == ("https://w.example:8443/prefix", key)
    log_vkey = LogKey.generate("example.org/x").vkey
    for bad in [key.vkey(), f"ftp://w.example={key.vkey()}", f"http://w.example?x=1={key.vkey()}",
                f"http://={key.vkey()}", f"http://w.example={log_vkey}",
                f"http://w.example:99999={key.vkey()}", "http://w.example=junk"]:
        with pytest.raises(ValueError):
            WitnessEndpoint.parse(bad)
    text = f"# witnesses\n\nhttp://a.example={key.vkey()}\n"
    assert [w.url for w in read_witness_file(text)] == ["http://a.example"]
    with pytest.raises(ValueError, match="line 2"):
        read_witness_file(f"http://a.example={key.vkey()}\nnope\n")


# -- real processes -------------------------------------------------------------------------

def _env() -> dict[str, str]:
    return {k: val for k, val in os.environ.items() if not k.startswith("MODELSEAL_")}


def _spawn(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", *args],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=_env(), cwd=ROOT)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "serving" not in line:
        proc.kill()
        proc.wait(10)
        raise AssertionError(line + proc.stderr.read())
    return proc, line.rsplit(" ", 1)[1].strip()


class Deployment:
    """A log server and three witness processes on localhost."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = Log(tmp / "store")
        self.log.led.close()
        self.log_key_file = self.log.log_key.save(tmp / "log.key")
        self.signers = [WitnessSigner.generate(f"w{i}.example/w") for i in range(3)]
        self.procs: list[subprocess.Popen[str] | None] = [None, None, None]
        self.urls = ["", "", ""]
        for i in range(3):
            self.start_witness(i)
        args = [a for i in range(3)
                for a in ("--witness", f"{self.urls[i]}={self.signers[i].vkey}")]
        self.server, self.url = _spawn("serve", "--store", str(tmp / "store"), "--log-key",
                                       str(self.log_key_file), "--listen", "127.0.0.1:0",
                                       *args)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.written = 0

    def start_witness(self, i: int) -> None:
        key = self.tmp / f"w{i}.key"
        if not key.exists():
            self.signers[i].save(key)
        # a restarted witness listens where it did, so the log server finds it again
        listen = self.urls[i].removeprefix("http://") or "127.0.0.1:0"
        self.procs[i], self.urls[i] = _spawn(
            "witness", "serve", "--store", str(self.tmp / f"w{i}"), "--key", str(key),
            "--log", self.log.log_key.vkey, "--listen", listen)

    def kill_witness(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(sig)
        proc.wait(20)
        self.procs[i] = None

    def write(self, n: int = 1) -> None:
        for _ in range(n):
            self.written += 1
            r = self.http.post("/add", content=self.log.statement(self.written),
                               headers={"Content-Type": "application/json"})
            assert r.status_code == 201, r.text

    def size(self) -> int:
        return int(self.http.get("/log").json()["size"])

    def cosigned(self, size: int, at_least: int, limit: float = 30) -> bytes:
        """GET /checkpoint until it is of ``size`` with ``at_least`` cosignatures."""
        deadline = time.monotonic() + limit
        while True:
            note = self.http.get("/checkpoint").content
            cp = v.Checkpoint.parse_note(note, [self.log.log_key.key])
            if cp.size == size and _cosigners(note, self.signers) >= at_least:
                return note
            assert time.monotonic() < deadline, (size, note.decode())
            time.sleep(0.1)

    def witness_size(self, i: int) -> int:
        path = f"/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"
        note = httpx.get(self.urls[i] + path, timeout=10).content
        return v.Checkpoint.parse_note(note, [self.log.log_key.key]).size

    def close(self) -> None:
        self.http.close()
        for proc in [self.server, *self.procs]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(20)


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path)
    yield d
    d.close()


def test_three_witnesses_cosign_and_two_of_three_suffice(deployed: Deployment) -> None:
    d = deployed
    d.write(3)
    note = d.cosigned(d.size(), 3)
    cosigs = verify_cosignatures(note, [s.witness_key for s in d.signers])
    require_witnesses(cosigs, 3)
    # the CLI, through the server, prints the cosigned checkpoint
    out = subprocess.run([sys.executable, "-c", "from cli.main import main; main()",
                          "--server", d.url, "--log-vkey", d.log.log_key.vkey,
                          "--client-state", str(d.tmp / "client.json"), "checkpoint"],
                         capture_output=True, env=_env(), cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert _cosigners(out.stdout, d.signers) >= 3
    # one witness down: writes go on, and two of three still cosign each new size
    d.kill_witness(2)
    started = time.monotonic()
    d.write(5)
    assert time.monotonic() - started < 5
    note = d.cosigned(d.size(), 2)
    require_witnesses(verify_cosignatures(note, [s.witness_key for s in d.signers]), 2)
    with pytest.raises(v.VerificationError):
        require_witnesses(verify_cosignatures(note, [d.signers[2].witness_key]), 1)
    # back up: it is sent the log's growth since the size it cosigned (409, then a proof)
    d.start_witness(2)
    d.write(1)
    d.cosigned(d.size(), 3)
    d.server.send_signal(signal.SIGTERM)
    assert d.server.wait(30) == 0


def test_a_witness_killed_and_restarted_refuses_a_split_view(deployed: Deployment,
                                                           tmp_path: Path) -> None:
    d = deployed
    d.write(4)
    size = d.size()
    d.cosigned(size, 3)
    held = d.witness_size(0)
    assert held == size
    d.kill_witness(0)  # SIGKILL: no clean shutdown
    d.start_witness(0)
    assert d.witness_size(0) == held
    # a fork: the same origin and log key, other entries; shown at the cosigned size and
    # beyond, with a proof that holds in the fork's own tree
    fork = Log(tmp_path / "fork", log_key=d.log.log_key)
    try:
        while fork.led.size < held + 3:
            fork.led.record("m0", "evaluated", {"fork": fork.led.size})
        url = d.urls[0] + "/add-checkpoint"
        for body, status in [
            (fork.led.prove_consistency(0, held).to_text(), 409),  # it holds size `held`
            (fork.led.prove_consistency(held, held).to_text(), 422),  # same size, other root
            (fork.led.prove_consistency(held).to_text(), 422),  # beyond, from the fork's tree
        ]:
            r = httpx.post(url, content=body, timeout=10)
            assert r.status_code == status, r.text
            if status == 409:
                assert r.text == f"{held}\n"
    finally:
        fork.led.close()
    assert d.witness_size(0) == held
    # the genuine log goes on being cosigned by the restarted witness
    d.write(1)
    d.cosigned(d.size(), 3)
    assert d.witness_size(0) == d.size()


def test_a_witness_timeout_beyond_the_verifiers_delay_bound_is_refused() -> None:
    from verifier.witnessed import WITNESS_DELAY

    from ledger.server._witnesses import Distributor

    with pytest.raises(ValueError, match="at most"):
        Distributor(None, (), timeout=WITNESS_DELAY + 1)  # type: ignore[arg-type]
    Distributor(None, (), timeout=WITNESS_DELAY)  # type: ignore[arg-type]
