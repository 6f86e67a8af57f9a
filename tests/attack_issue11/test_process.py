"""The ``modelseal serve`` process: signals with writes in flight, kill -9, restarts,
bad command lines and configurations (docs/deploy.md, specs/errors.md exit codes)."""
from __future__ import annotations

import base64
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from ledger import Ledger

from .common import REPO, Proc, World, free_env, serve_cmd


def _world(tmp_path: Path) -> tuple[World, Path]:
    w = World(tmp_path / "store", client=False)
    w.close()
    return w, w.log_key.save(tmp_path / "log.key")


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 20
         ) -> tuple[int | None, str]:
    """Run ``modelseal serve ARGS``; (exit code, stderr), or (None, stderr so far) if it
    was still running after ``timeout`` (then it is killed)."""
    p = subprocess.Popen(serve_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env or free_env(), cwd=str(REPO))
    try:
        _, err = p.communicate(timeout=timeout)
        return p.returncode, err
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate(timeout=10)
        return None, err


def _load(w: World, url: str, stmts: list[bytes], acks: list[tuple[int, dict]],
          stop: threading.Event) -> list[threading.Thread]:
    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=20) as c:
            for i in range(k, len(stmts), 8):
                if stop.is_set():
                    return
                try:
                    r = c.post("/add", content=stmts[i],
                               headers={"Content-Type": "application/json"})
                except httpx.HTTPError:
                    continue
                if r.status_code in (200, 201):
                    acks.append((i, r.json()))
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(8)]
    for t in threads:
        t.start()
    return threads


@pytest.mark.parametrize("how", ["term", "term-twice", "kill9"])
def test_stopping_with_writes_in_flight_loses_nothing_acknowledged(tmp_path: Path,
                                                                   how: str) -> None:
    w, keyfile = _world(tmp_path)
    reopened = Ledger.open(w.path)
    stmts = [w.statement() for _ in range(300)]  # w.led is closed; statement() needs log_id
    reopened.close()
    p = Proc(w.path, keyfile)
    acks: list[tuple[int, dict]] = []
    stop = threading.Event()
    try:
        threads = _load(w, p.url, stmts, acks, stop)
        time.sleep(1.0)
        if how == "kill9":
            p.proc.kill()
            code = p.proc.wait(10)
        else:
            p.proc.send_signal(signal.SIGTERM)
            if how == "term-twice":
                time.sleep(0.05)
                p.proc.send_signal(signal.SIGTERM)
            code = p.proc.wait(40)
        stop.set()
        for t in threads:
            t.join(30)
        err = p.proc.stderr.read() if p.proc.stderr else ""
    finally:
        p.kill()
    assert acks, "nothing was acknowledged before the stop"
    if how != "kill9":
        assert code == 0, err
        assert "Traceback" not in err
    with Ledger.open(w.path) as led:
        assert led.audit() == led.size
        for _, doc in acks:
            assert led.entry(doc["index"]) == base64.b64decode(doc["entry"])
    # and it serves again, answering a retried statement 200 with the same receipt
    p2 = Proc(w.path, keyfile)
    try:
        i, doc = acks[-1]
        with httpx.Client(base_url=p2.url, timeout=20) as c:
            r = c.post("/add", content=stmts[i], headers={"Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["index"] == doc["index"]
    finally:
        p2.kill()


def test_a_port_in_use_is_a_clean_usage_error(tmp_path: Path) -> None:
    w, keyfile = _world(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, err = _run(["--store", str(w.path), "--log-key", str(keyfile),
                          "--listen", f"127.0.0.1:{port}"])
    assert code == 2 and "Address already in use" in err and "Traceback" not in err


@pytest.mark.parametrize("listen", ["garbage", "127.0.0.1", ":80", "127.0.0.1:99999",
                                    "127.0.0.1:-1", "[zz]:0",
                                    "no.such.host.invalid:0", "192.0.2.1:0", ""])
def test_listen_garbage(tmp_path: Path, listen: str) -> None:
    w, keyfile = _world(tmp_path)
    code, err = _run(["--store", str(w.path), "--log-key", str(keyfile), "--listen", listen])
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and "serving" not in err


@pytest.mark.parametrize("url", ["https://x:abc", "https://x:99999", "https://a b",
                                 "https://bücher.example", "http://x:1:2", "https://[::1"])
def test_public_url_garbage_is_refused_at_start(tmp_path: Path, url: str) -> None:
    """``check_public_url`` only checks the scheme, a netloc, no path/query/fragment/@;
    ``https://x:abc``, ``https://x:99999``, a space or a non-ASCII host are accepted, the
    server starts, and then every signed read is refused 400 MalformedRequestError
    (the URL the server builds is not a valid target URI): a misconfiguration reported
    to every client as the client's error, instead of at start."""
    w, keyfile = _world(tmp_path)
    code, err = _run(["--store", str(w.path), "--log-key", str(keyfile), "--listen",
                      "127.0.0.1:0", "--public-url", url], timeout=8)
    assert code == 2, (code, err)
    assert err.startswith("error: ") and "Traceback" not in err


@pytest.mark.parametrize("case", ["no-key", "wrong-key", "missing-file", "encrypted",
                                  "wrong-passphrase", "no-store"])
def test_key_and_store_problems_are_clean_errors(tmp_path: Path, case: str) -> None:
    w, keyfile = _world(tmp_path)
    from ledger import LogKey
    args = ["--store", str(w.path), "--log-key", str(keyfile), "--listen", "127.0.0.1:0"]
    env = free_env()
    want = 2
    if case == "no-key":
        args = ["--store", str(w.path), "--listen", "127.0.0.1:0"]
    elif case == "wrong-key":
        args[3] = str(LogKey.generate().named("example.org/x").save(tmp_path / "x.key"))
    elif case == "missing-file":
        args[3], want = str(tmp_path / "nope.key"), 4
    elif case in ("encrypted", "wrong-passphrase"):
        args[3] = str(w.log_key.save(tmp_path / "enc.key", passphrase="correct horse battery"))
        if case == "wrong-passphrase":
            env["MODELSEAL_LOG_KEY_PASSPHRASE"], want = "wrong wrong wrong", 4
    elif case == "no-store":
        args[1], want = str(tmp_path / "nostore"), 4
    code, err = _run(args, env=env)
    assert code == want, err
    assert err.startswith("error: ") and "Traceback" not in err and "serving" not in err


def test_the_systemd_unit_of_deploy_md_starts(tmp_path: Path) -> None:
    """docs/deploy.md's unit passes the log key's passphrase as
    ``MODELSEAL_LOG_KEY_PASSPHRASE_FILE=%d/log-key-passphrase`` (systemd credentials).
    Nothing reads that variable: the service fails with "... is encrypted" (exit 2) and
    ``Restart=on-failure`` loops."""
    w, _ = _world(tmp_path)
    enc = w.log_key.save(tmp_path / "enc.key", passphrase="correct horse battery")
    cred = tmp_path / "log-key-passphrase"
    cred.write_text("correct horse battery")
    cred.chmod(0o600)
    p = Proc(w.path, enc, env=free_env(MODELSEAL_LOG_KEY_PASSPHRASE_FILE=str(cred)),
             wait=False)
    try:
        line = p._readline(20)
        assert "serving" in line, line
    finally:
        p.kill()


def test_tls_files_that_do_not_load_fail_before_serving_is_announced(tmp_path: Path) -> None:
    """deploy.md: it prints "serving ..." "when it is ready". With a missing (or
    unreadable) TLS certificate, it prints "serving ... on https://..." and only then
    fails, with "error: No such file or directory" (no file named), exit 4: a supervisor
    or script waiting for the line is told the server is up."""
    w, keyfile = _world(tmp_path)
    code, err = _run(["--store", str(w.path), "--log-key", str(keyfile), "--listen",
                      "127.0.0.1:0", "--tls-cert", str(tmp_path / "cert.pem"),
                      "--tls-key", str(tmp_path / "key.pem")])
    assert code in (2, 4), err
    assert "serving" not in err, err
    assert "cert.pem" in err, err


@pytest.mark.parametrize("env", [{"LC_ALL": "C"}, {"LC_ALL": "C", "PYTHONIOENCODING": "ascii"},
                                 {"LC_ALL": "C", "PYTHONUTF8": "0"}])
def test_a_c_locale_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    w, keyfile = _world(tmp_path)
    p = Proc(w.path, keyfile, env=free_env(**env))
    try:
        time.sleep(1.5)  # see test_sigterm_right_after_the_ready_line_is_a_graceful_stop
        code, err = p.stop()
        assert code == 0 and "Traceback" not in err
    finally:
        p.kill()
    code, err = _run(["--store", str(w.path), "--log-key", str(keyfile), "--listen",
                      "bücher:80"], env=free_env(**env))
    assert code == 2 and "Traceback" not in err, err


def test_sigterm_right_after_the_ready_line_is_a_graceful_stop(tmp_path: Path) -> None:
    """The "serving ..." line (deploy.md: printed "when it is ready") is printed before
    uvicorn installs its signal handlers; a SIGTERM in that window kills the process by
    the signal (exit -15, no "stopped", the ledger never closed) instead of the graceful
    stop that exits 0."""
    w, keyfile = _world(tmp_path)
    codes = []
    for _ in range(3):
        p = Proc(w.path, keyfile)
        try:
            code, err = p.stop()
            codes.append((code, "stopped" in err))
        finally:
            p.kill()
    assert codes == [(0, True)] * 3, codes


def test_fullwidth_digits_are_not_a_port(tmp_path: Path) -> None:
    """``--listen 127.0.0.1:８０`` (fullwidth digits) passes ``str.isdigit`` and
    ``int()`` reads it as 80: the server binds port 80 instead of refusing the
    argument (tested with a free port's digits in fullwidth)."""
    w, keyfile = _world(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wide = "".join(chr(0xFF10 + int(d)) for d in str(port))
    code, err = _run(["--store", str(w.path), "--log-key", str(keyfile), "--listen",
                      f"127.0.0.1:{wide}"], timeout=5)
    assert code == 2, err


def test_one_slow_body_does_not_hold_a_graceful_stop_for_30_seconds(tmp_path: Path) -> None:
    """A protected read whose announced body never arrives has no timeout (see
    test_http_limits), so one unauthenticated client holds a SIGTERM for the full
    30 s graceful period; then uvicorn cancels the task and the process prints a
    CancelledError traceback ("timeout graceful shutdown exceeded") on stderr. With the
    documented 5 s body limit, the stop would take about 5 s, without a traceback."""
    w, keyfile = _world(tmp_path)
    p = Proc(w.path, keyfile)
    try:
        time.sleep(1)
        host, port = p.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as s:
            s.sendall(b"GET /entries?start=0&count=1 HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 10\r\n\r\na")
            time.sleep(0.5)
            t0 = time.monotonic()
            code, err = p.stop(timeout=60)
            took = time.monotonic() - t0
    finally:
        p.kill()
    assert code == 0
    assert took < 10, f"the stop took {took:.1f} s"
    assert "Traceback" not in err, err[-500:]
