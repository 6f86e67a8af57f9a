"""A Ctrl-C that arrives after the outcome is written must not change it (CI, stop 18: a
verifier printed OK and was then killed by SIGINT while Python shut down, exit -2)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

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


# -- closed and full standard streams (an adversary's pass, session 19) ----------------------
# Python sets a stream that the process started with closed to None; /dev/full refuses every
# write with ENOSPC. Neither is a bug (exit 70) and neither may end in a traceback.

FULL = Path("/dev/full")
needs_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")


def _proc(argv: list[str], *, stdin: Any = subprocess.DEVNULL, stdout: Any = subprocess.PIPE,
          stderr: Any = subprocess.PIPE, close: tuple[int, ...] = ()) -> tuple[int, str, str]:
    """Run ``argv`` with the given streams; the fds in ``close`` closed in the child."""
    def closer() -> None:
        for fd in close:
            os.close(fd)
    done = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=ENV, cwd=ROOT,
                          timeout=120, preexec_fn=closer if close else None)
    out = done.stdout.decode("utf-8", "replace") if isinstance(done.stdout, bytes) else ""
    err = done.stderr.decode("utf-8", "replace") if isinstance(done.stderr, bytes) else ""
    assert "Traceback" not in out + err
    return done.returncode, out, err


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.helpers import bundle_bytes, bundle_doc
    from tests.logsim import T0, sample_log

    log, _ = sample_log(models=3, seed="streams")
    d = tmp_path_factory.mktemp("streams")
    good = log.bundle(T0 + 6 * log.step + 1)
    doc = bundle_doc(good)
    doc["entries"][2], doc["entries"][3] = doc["entries"][3], doc["entries"][2]
    (d / "good.json").write_bytes(good)
    (d / "bad.json").write_bytes(bundle_bytes(doc))
    return {"good": d / "good.json", "bad": d / "bad.json", "key": log.log_key.vkey}


VERIFY = [sys.executable, "-m", "verifier.cli"]


@needs_full
@pytest.mark.parametrize("which", ["good", "bad"])
def test_verifier_full_stdout_is_an_io_error(bundles: dict[str, Any], which: str) -> None:
    with open(FULL, "wb") as full:
        code, _, err = _proc([*VERIFY, str(bundles[which]), "--key", bundles["key"]],
                             stdout=full)
    assert code == 4 and "cannot write to standard output" in err, err


@needs_full
def test_verifier_full_stdout_with_json(bundles: dict[str, Any]) -> None:
    with open(FULL, "wb") as full:
        code, _, err = _proc([*VERIFY, str(bundles["good"]), "--key", bundles["key"], "--json"],
                             stdout=full)
    assert code == 4 and "No space left" in err


@pytest.mark.parametrize("which,expect", [("good", 0), ("bad", 1)])
def test_verifier_closed_stderr_keeps_the_verdict(bundles: dict[str, Any], which: str,
                                                  expect: int) -> None:
    code, out, _ = _proc([*VERIFY, str(bundles[which]), "--key", bundles["key"]],
                         stderr=None, close=(2,))
    assert code == expect
    assert out.startswith("OK:" if expect == 0 else "FAIL:")


@needs_full
def test_verifier_closed_stderr_and_full_stdout(bundles: dict[str, Any]) -> None:
    with open(FULL, "wb") as full:
        code, _, _ = _proc([*VERIFY, str(bundles["good"]), "--key", bundles["key"]],
                           stdout=full, stderr=None, close=(2,))
    assert code == 4


def test_verifier_closed_stdout_keeps_the_code(bundles: dict[str, Any]) -> None:
    code, _, err = _proc([*VERIFY, str(bundles["bad"]), "--key", bundles["key"]],
                         stdout=None, close=(1,))
    assert code == 1 and err == ""


WRITER = [sys.executable, "-c", "from cli.main import run; run()"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    base = tmp_path_factory.mktemp("store")
    code, out, err = _proc([*WRITER, "init", str(base / "s"), "--origin", "streams.example/m",
                            "--json"])
    assert code == 0, err
    import json
    doc = json.loads(out)
    return ["--store", doc["store"], "--log-key", doc["log_key_file"],
            "--key", doc["admin_key_file"]]


def test_writer_closed_stderr_is_not_a_bug(store: list[str]) -> None:
    code, out, _ = _proc([*WRITER, *store, "audit"], stderr=None, close=(2,))
    assert code == 0 and out.startswith("audit ok")


@needs_full
def test_writer_full_stdout_and_closed_stderr(store: list[str]) -> None:
    with open(FULL, "wb") as full:
        code, _, _ = _proc([*WRITER, *store, "audit"], stdout=full, stderr=None, close=(2,))
    assert code == 4


def test_writer_closed_stdin_for_a_payload(store: list[str]) -> None:
    code, _, err = _proc([*WRITER, *store, "register", "m1", "--owner", "o", "--type",
                          "ml_model", "--tier", "low", "--purpose", "p"])
    assert code == 0, err
    before = _proc([*WRITER, *store, "checkpoint"])[1]
    code, _, err = _proc([*WRITER, *store, "record", "m1", "--event", "evaluated",
                          "--payload", "-"], stdin=None, close=(0,))
    assert code == 2 and "standard input, which is closed" in err
    assert _proc([*WRITER, *store, "checkpoint"])[1] == before  # nothing written


# -- click's own output: help on a closed pipe, usage errors on a full stderr (session 20) ---

MODELSEAL = [sys.executable, "-c", "import sys; sys.argv[0] = 'modelseal'\n"
             "from cli._entry import modelseal; modelseal()"]


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["inventory", "--help"]])
def test_help_into_a_closed_pipe_is_success(argv: list[str]) -> None:
    """`modelseal --help | true`: the reader left, as Unix tools treat it (click said 1)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        code, _, err = _proc([*MODELSEAL, *argv], stdout=write_end)
    finally:
        os.close(write_end)
    assert (code, err) == (0, "")


@needs_full
@pytest.mark.parametrize("argv", [["no-such-command"], ["--no-such-option"],
                                  ["inventory", "--no-such-option"]])
def test_usage_error_with_full_stderr_keeps_its_code(argv: list[str]) -> None:
    with open(FULL, "wb") as full:
        code, _, _ = _proc([*MODELSEAL, *argv], stderr=full)
    assert code == 2


@pytest.mark.parametrize("argv", [["no-such-command"], ["--no-such-option"],
                                  ["inventory", "--no-such-option"]])
def test_usage_error_is_still_shown(argv: list[str]) -> None:
    code, out, err = _proc([*MODELSEAL, *argv])
    assert code == 2 and out == ""
    assert err.startswith("Usage: modelseal") and "Error: No such" in err
