"""A Ctrl-C while the commands' modules load (about half a second) ends the process with
130 and one line, not a KeyboardInterrupt traceback (adversary, session 19)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# Guard as the entry points do, say so, then "load" until the parent's SIGINT comes.
LOADING = """
import sys, time
from verifier import startup
guarded = startup.guard()
print("guarded" if guarded else "unguarded", flush=True)
{after}
time.sleep(30)
print("not interrupted", flush=True)
"""


def _interrupt(after: str = "", preexec_ignore: bool = False) -> tuple[str, int, str]:
    """Run LOADING, SIGINT it once it printed its first line; (first line, code, stderr)."""
    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(LOADING.format(after=after))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=ROOT, preexec_fn=ignore if preexec_ignore else None)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        proc.send_signal(signal.SIGINT)
        if preexec_ignore:  # an ignored SIGINT changes nothing: stop it another way
            proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    return first, proc.returncode, err


def test_ctrl_c_while_loading_is_quiet() -> None:
    first, code, err = _interrupt()
    assert (first, code, err) == ("guarded", 130, "interrupted\n")


def test_released_guard_gives_ctrl_c_back_to_python() -> None:
    first, code, err = _interrupt("startup.release(guarded)")
    assert first == "guarded"
    assert code != 130 and "KeyboardInterrupt" in err  # Python's own handler again


def test_an_ignored_sigint_stays_ignored() -> None:
    first, code, _ = _interrupt(preexec_ignore=True)
    assert first == "unguarded"
    assert code == -signal.SIGTERM  # the SIGINT did not end it; the SIGTERM did


def test_the_console_scripts_enter_through_the_guard() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'modelseal = "cli._entry:modelseal"' in text
    assert 'modelseal-verify = "verifier.startup:run_verifier"' in text
    standalone = (ROOT / "verifier" / "pyproject.toml").read_text(encoding="utf-8")
    assert 'modelseal-verify = "verifier.startup:run_verifier"' in standalone


@pytest.mark.parametrize("module", ["cli._entry", "verifier.startup", "verifier"])
def test_entry_module_loads_nothing_heavy(module: str) -> None:
    probe = (f"import sys\nimport {module}\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('verifier', 'ledger', 'click', 'cryptography', 'lmdb', 'httpx')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, env=ENV, cwd=ROOT)
    loaded = {"cli._entry": "['verifier', 'verifier.startup']", "verifier.startup":
              "['verifier', 'verifier.startup']", "verifier": "['verifier']"}[module]
    assert (done.returncode, done.stdout.strip()) == (0, loaded)


def test_entry_points_still_run_their_commands() -> None:
    for module, entry, argv in (("cli._entry", "modelseal", ["modelseal", "--version"]),
                                ("verifier.startup", "run_verifier",
                                 ["modelseal-verify", "--help"])):
        code = f"import sys\nsys.argv = {argv!r}\nfrom {module} import {entry}\n{entry}()\n"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=60, env=ENV, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() and "Traceback" not in done.stderr


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=ENV, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_lazy_package_gives_the_public_names() -> None:
    """`verifier` loads its names on first use; they are the very objects of the modules."""
    assert _fresh("import verifier, verifier.checkpoint as c\n"
                  "print(verifier.Checkpoint is c.Checkpoint, len(verifier.__all__) > 100,"
                  " all(hasattr(verifier, n) for n in verifier.__all__))") == "True True True"
    assert _fresh("from verifier import *\nprint(Checkpoint.__module__)") == "verifier.checkpoint"
    assert _fresh("import verifier\ntry:\n    verifier.no_such_name\nexcept AttributeError:\n"
                  "    print('refused')") == "refused"


@pytest.mark.parametrize("first", ["import verifier.replay", "from verifier.replay import Replayer",
                                   "import verifier.cli", ""])
def test_replay_means_the_function_whatever_loads_first(first: str) -> None:
    """`replay` is both a submodule and a public function: the name is the function, as it
    was before the package loaded lazily, whichever import comes first."""
    assert _fresh(f"{first}\nimport verifier\nfrom verifier import replay\n"
                  "import verifier.replay as r\n"
                  "print(replay.__module__, callable(replay), r is replay, "
                  "verifier.replay is replay)") == "verifier.replay True True True"
