"""Helpers for the session-19 process-boundary attack: run `modelseal` and
`modelseal-verify` as real processes with odd standard streams (closed, /dev/full, a pipe
whose reader left, a directory), interrupt them, and make small stores. Test-only."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRITER = [sys.executable, "-c", "from cli._entry import modelseal; modelseal()"]
VERIFY = [sys.executable, "-c", "from verifier.startup import run_verifier; run_verifier()"]
FULL = Path("/dev/full")
needs_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


def env(**extra: str) -> dict[str, str]:
    """The environment of a child: no MODELSEAL_* variable but those in ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODELSEAL_")}
    base["PYTHONPATH"] = str(ROOT)
    base.update(extra)
    return base


@dataclass
class Done:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--stdout--\n{self.out[-2000:]}\n--stderr--\n{self.err[-2000:]}"


def run(argv: list[str], *, stdout: str = "pipe", stderr: str = "pipe", stdin: str = "null",
        extra_env: dict[str, str] | None = None, timeout: float = 60,
        input: bytes | None = None) -> Done:
    """Run ``argv``; each stream is "pipe", "closed", "full" (/dev/full), "null", "gone" (a
    pipe whose reader already left: stdout/stderr only), "dir" (stdin only: /) or "data"
    (stdin only: ``input``)."""
    close: list[int] = []
    opened: list[Any] = []
    kw: dict[str, Any] = {}

    def pick(name: str, fd: int, how: str) -> Any:
        if how == "pipe":
            return subprocess.PIPE
        if how == "null":
            return subprocess.DEVNULL
        if how == "closed":
            close.append(fd)
            return None
        if how == "full":
            f = open(FULL, "wb")  # noqa: SIM115
            opened.append(f)
            return f
        if how == "gone":
            r, w = os.pipe()
            os.close(r)
            opened.append(w)
            return w
        if how == "dir":
            d = os.open("/", os.O_RDONLY)
            opened.append(d)
            return d
        if how == "data":
            return subprocess.PIPE
        raise ValueError(how)

    kw["stdout"] = pick("stdout", 1, stdout)
    kw["stderr"] = pick("stderr", 2, stderr)
    if stdin != "data":
        kw["stdin"] = pick("stdin", 0, stdin)

    def closer() -> None:
        for fd in close:
            os.close(fd)

    try:
        done = subprocess.run(argv, env=env(**(extra_env or {})), cwd=ROOT, timeout=timeout,
                              preexec_fn=closer if close else None,
                              input=input if stdin == "data" else None, **kw)
    finally:
        for f in opened:
            if isinstance(f, int):
                os.close(f)
            else:
                f.close()
    out = done.stdout.decode("utf-8", "replace") if isinstance(done.stdout, bytes) else ""
    err = done.stderr.decode("utf-8", "replace") if isinstance(done.stderr, bytes) else ""
    return Done(done.returncode, out, err)


def no_traceback(done: Done) -> None:
    assert "Traceback" not in done.out + done.err, str(done)


def interrupt(argv: list[str], delay: float, extra_env: dict[str, str] | None = None,
              timeout: float = 60) -> Done:
    """Start ``argv`` in its own process group, send SIGINT to the group after ``delay``
    seconds (as a terminal's Ctrl-C does), and wait (bounded)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env(**(extra_env or {})), cwd=ROOT,
                         start_new_session=True)
    time.sleep(delay)
    try:
        os.killpg(p.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        raise AssertionError(f"{argv} did not end within {timeout} s of Ctrl-C") from None
    return Done(p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


@dataclass
class Store:
    dir: Path
    log_key: Path
    admin_key: Path
    log_vkey: str

    @property
    def opts(self) -> list[str]:
        return ["--store", str(self.dir), "--log-key", str(self.log_key),
                "--key", str(self.admin_key)]

    def cli(self, *args: str, **kw: Any) -> Done:
        return run([*WRITER, *self.opts, *args], **kw)

    def audit(self) -> Done:
        return self.cli("audit")

    def checkpoint(self) -> str:
        done = self.cli("checkpoint")
        assert done.code == 0, str(done)
        return done.out


def make_store(base: Path, models: int = 2) -> Store:
    """`modelseal init` and ``models`` registered models (m0, m1, ...), each with one event."""
    done = run([*WRITER, "init", str(base / "store"), "--origin", "attack.example/s19",
                "--json"])
    assert done.code == 0, str(done)
    doc = json.loads(done.out)
    store = Store(Path(doc["store"]), Path(doc["log_key_file"]), Path(doc["admin_key_file"]),
                  doc["log_vkey"])
    for i in range(models):
        done = store.cli("register", f"m{i}", "--owner", "risk", "--type", "ml_model",
                         "--tier", "low", "--purpose", "p")
        assert done.code == 0, str(done)
    return store
