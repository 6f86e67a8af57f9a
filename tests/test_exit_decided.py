"""A Ctrl-C that arrives after the outcome is written must not change it (CI, stop 18: a
verifier printed OK and was then killed by SIGINT while Python shut down, exit -2)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# SIGINT sent to itself from an exit hook, i.e. after the entry point decided the code.
LATE_SIGINT = """
import atexit, os, signal, time
def late():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
atexit.register(late)
"""


def _run(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(LATE_SIGINT + body)],
                          capture_output=True, text=True, timeout=60, env=ENV, cwd=ROOT)


def test_verifier_entry_point_keeps_its_code() -> None:
    done = _run("import verifier.cli as c\nc.main = lambda argv=None: 1\nc.run()\n")
    assert (done.returncode, done.stderr) == (1, "")


def test_writer_entry_point_keeps_its_code() -> None:
    done = _run("import sys\nsys.argv = ['modelseal', '--version']\n"
                "import cli.main as c\nc.run()\n")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("modelseal")


def test_writer_usage_error_code_survives() -> None:
    done = _run("import sys\nsys.argv = ['modelseal', '--no-such-option']\n"
                "import cli.main as c\nc.run()\n")
    assert done.returncode == 2
    assert "KeyboardInterrupt" not in done.stderr and "no-such-option" in done.stderr


def test_exit_decided_flushes_and_exits() -> None:
    done = _run("import sys\nsys.stdout.write('partial line')\n"
                "from verifier.cli import exit_decided\nexit_decided(5)\n")
    assert (done.returncode, done.stdout, done.stderr) == (5, "partial line", "")
