"""`pip install ./verifier` into a fresh venv: no lmdb/click, a working `modelseal-verify`,
and `import verifier` from outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def _run(cmd: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.slow
def test_standalone_install(tmp_path: Path) -> None:
    """The verifier installs alone and verifies the example bundle offline."""
    before = {p.name for p in (REPO / "verifier").iterdir()}
    src = tmp_path / "src" / "verifier"
    shutil.copytree(REPO / "verifier", src,
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py, pip = bindir / "python", [str(bindir / "python"), "-m", "pip"]

    inst = _run([*pip, "install", "-q", str(src)], cwd=tmp_path)
    assert inst.returncode == 0, inst.stdout + inst.stderr

    listed = _run([*pip, "list", "--format=freeze"], cwd=tmp_path)
    assert listed.returncode == 0
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "modelseal-verifier" in names
    assert {"cryptography", "msgspec"} <= names
    assert not names & {"lmdb", "click", "modelseal"}, names

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    key = (EXAMPLES / "log.vkey").read_text().strip()
    res = _run([str(bindir / "modelseal-verify"), str(EXAMPLES / "bundle.json"), "--key", key,
                "--trusted", str(EXAMPLES / "trusted-checkpoint.txt")], cwd=outside)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("OK:")
    assert "Traceback" not in res.stderr

    rep = _run([str(bindir / "modelseal-verify"), str(EXAMPLES / "bundle.json"), "--key", key,
                "--report", "report.html"], cwd=outside)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "<svg" in (outside / "report.html").read_text(encoding="utf-8")

    # the built-in findings profiles are package data, installed with the verifier
    prof = _run([str(bindir / "modelseal-verify"), str(EXAMPLES / "bundle.json"), "--key", key,
                 "--profile", "sr_11_7", "--profile", "eu_ai_act", "--profile", "nist_ai_rmf"],
                cwd=outside)
    assert prof.returncode == 0, prof.stdout + prof.stderr
    assert "\nFINDINGS: " in prof.stdout

    bad = _run([str(bindir / "modelseal-verify"), str(EXAMPLES / "bundle.json"), "--key", "x"],
               cwd=outside)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr

    code = ("import verifier, sys; print(verifier.__file__); print(verifier.__version__); "
            "print(sorted(m for m in ('ledger', 'cli', 'lmdb', 'click') if m in sys.modules))")
    imp = _run([str(py), "-c", code], cwd=outside)
    assert imp.returncode == 0, imp.stderr
    file_line, version, loaded = imp.stdout.splitlines()
    assert Path(file_line).resolve().is_relative_to(venv.resolve())
    assert not Path(file_line).resolve().is_relative_to(REPO)
    assert version == "0.1.0" and loaded == "[]"

    # The build ran on the copy: the repository's verifier/ gained no build artefacts.
    new = {p.name for p in (REPO / "verifier").iterdir()} - before
    assert not {n for n in new if n in {"build", "dist"} or n.endswith(".egg-info")}, new


def test_every_package_is_installed_by_a_plain_install() -> None:
    """`pip install .` (README's first command) installs only the packages pyproject
    lists: every directory with an __init__.py under the three top packages is one."""
    import tomllib

    conf = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(conf["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts)
             for top in ("verifier", "ledger", "cli")
             for p in (REPO / top).rglob("__init__.py") if "__pycache__" not in p.parts}
    assert found <= listed, sorted(found - listed)
