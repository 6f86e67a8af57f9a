"""Helpers for the session-20 attack on start-up and streams: the installed console scripts
(`modelseal`, `modelseal-verify` in this interpreter's bin directory), fresh interpreters,
and bundles to verify. Test-only."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.attack_s19.common import Done, env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODELSEAL = BIN / "modelseal"
VERIFY = BIN / "modelseal-verify"
needs_scripts = pytest.mark.skipif(not (MODELSEAL.exists() and VERIFY.exists()),
                                   reason="console scripts not installed beside python")


def py(code: str, *, timeout: float = 60, extra_env: dict[str, str] | None = None) -> Done:
    """Run ``code`` in a fresh interpreter (cwd: the repository)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env=env(**(extra_env or {})), cwd=ROOT, timeout=timeout,
                          capture_output=True, stdin=subprocess.DEVNULL)
    return Done(done.returncode, done.stdout.decode("utf-8", "replace"),
                done.stderr.decode("utf-8", "replace"))


def fresh_env(**extra: str) -> dict[str, str]:
    """A child's environment (no MODELSEAL_*), PYTHONPATH the repository."""
    return env(**extra)


def bundle_files(base: Path, models: int = 3) -> tuple[Path, Path, str]:
    """(a good bundle, a tampered one, the log's verifier key), from tests/logsim.py."""
    from tests.helpers import bundle_bytes, bundle_doc
    from tests.logsim import T0, sample_log

    log, _ = sample_log(models=models, seed=f"s20-{models}")
    t = T0 + len(log.entries) * log.step + 1
    good = log.bundle(t)
    doc = bundle_doc(good)
    doc["entries"][2], doc["entries"][3] = doc["entries"][3], doc["entries"][2]
    base.mkdir(parents=True, exist_ok=True)
    (base / "good.json").write_bytes(good)
    (base / "bad.json").write_bytes(bundle_bytes(doc))
    return base / "good.json", base / "bad.json", log.log_key.vkey


__all__ = ["BIN", "MODELSEAL", "ROOT", "VERIFY", "Done", "bundle_files", "fresh_env",
           "needs_scripts", "py"]
