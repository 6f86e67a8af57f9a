"""Helpers for the session-21 attack (a new user following the docs): run `modelseal` and
`modelseal-verify` as real processes, bounded, optionally under an address-space limit,
and make large sparse files. Test-only."""
from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.attack_s19.common import ROOT, Done, env

WRITER = [sys.executable, "-c", "from cli._entry import modelseal; modelseal()"]
VERIFY = [sys.executable, "-c", "from verifier.startup import run_verifier; run_verifier()"]
GIB = 1 << 30


def _limit(max_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    return apply


def proc(argv: list[str], *, extra_env: dict[str, str] | None = None, timeout: float = 90,
         stdin: Path | None = None, memory: int | None = None) -> Done:
    """Run ``argv`` (cwd: the repository, no MODELSEAL_* but ``extra_env``), stdin from
    ``stdin`` (else the null device), its address space capped at ``memory`` bytes."""
    src = stdin.open("rb") if stdin is not None else subprocess.DEVNULL
    try:
        done = subprocess.run(argv, env=env(**(extra_env or {})), cwd=ROOT, timeout=timeout,
                              stdin=src, capture_output=True, check=False,
                              preexec_fn=_limit(memory) if memory is not None else None)
    finally:
        if stdin is not None and not isinstance(src, int):
            src.close()
    return Done(done.returncode, done.stdout.decode("utf-8", "replace"),
                done.stderr.decode("utf-8", "replace"))


def sparse(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes that takes no disk space: ``head``, then zeros."""
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


__all__ = ["GIB", "ROOT", "VERIFY", "WRITER", "Done", "proc", "sparse"]
