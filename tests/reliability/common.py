"""Shared by the reliability parts: a store with key files on disk (for child
processes) and child-process plumbing."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import verifier as v
from ledger import ActorKey, Ledger, LogKey
from tests.ledger_support import ORIGIN, Keys

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Setup:
    """A store made for a reliability part, and the key files its processes load."""

    path: Path
    log_key_file: Path
    key_files: dict[str, Path]
    log_vkey: str
    models: list[str]
    base_size: int
    keys: Keys = field(repr=False)

    @property
    def trusted(self) -> list[v.VerifierKey]:
        return [v.VerifierKey.parse(self.log_vkey)]


def build_store(base: Path, *, writers: Sequence[str] = (), models: Sequence[str] = ("m0",),
                store: Path | None = None) -> Setup:
    """A new store at ``store`` (default ``base/store``; real clock): the log key and admin
    saved 0600 under ``base/keys``, each of ``writers`` granted the writer role with its
    own key file, and ``models`` registered."""
    keys = Keys()
    keydir = base / "keys"
    keydir.mkdir(parents=True, mode=0o700)
    store = store or base / "store"
    led = Ledger.create(store, origin=ORIGIN, log_key=keys.log, admin=keys.admin)
    files = {keys.admin.name: keys.admin.save(keydir / f"{keys.admin.name}.key")}
    with led:
        for name in writers:
            key = ActorKey.generate(name)
            led.grant(key.vkey, role="writer")
            files[name] = key.save(keydir / f"{name}.key")
        with led.batch():
            for m in models:
                led.register(name=m, owner="risk-team", model_type="ml_model", tier="high",
                             purpose=f"scores {m}")
        size = led.size
        assert led.audit() == size
    return Setup(store, keys.log.save(keydir / "log.key"), files, keys.log.vkey,
                 list(models), size, keys)


def open_writer(store: str, log_key_file: str, key_file: str) -> Ledger:
    """What a child process does first: open the store with the log key and its own key."""
    return Ledger.open(store, log_key=LogKey.load(log_key_file),
                       signer=ActorKey.load(key_file))


def spawn(module: str, *args: Any) -> subprocess.Popen[bytes]:
    """``python -m module args`` from the repository root, stdout piped."""
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def wait_line(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> bytes:
    """The next line the child prints (b"" if it exits or ``timeout`` passes)."""
    assert proc.stdout is not None
    end = time.monotonic() + timeout
    line = b""
    fd = proc.stdout.fileno()
    while not line.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return line
        chunk = os.read(fd, 1)
        if not chunk:
            return line
        line += chunk
    return line


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """(fn(...), seconds)."""
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, round(time.perf_counter() - t, 2)
