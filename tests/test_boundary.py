"""The trust core's import boundary: verifier/ uses only the standard library,
cryptography and msgspec, and never the writer (ledger, cli) or its dependencies."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

VERIFIER = Path(__file__).resolve().parent.parent / "verifier"
FORBIDDEN = {"ledger", "cli", "lmdb", "click"}
ALLOWED_THIRD_PARTY = {"cryptography", "msgspec"}
SKIP_DIRS = {"build", "dist", "__pycache__"}


def source_files() -> list[Path]:
    """Every .py file under verifier/, except build artefacts."""
    files = []
    for path in sorted(VERIFIER.rglob("*.py")):
        parts = set(path.relative_to(VERIFIER).parts[:-1])
        if parts & SKIP_DIRS or any(p.endswith(".egg-info") or p.startswith(".") for p in parts):
            continue
        files.append(path)
    return files


def imported_top_levels(source: str, filename: str = "<src>") -> set[str]:
    """Top-level names of absolute imports, including importlib/__import__ with a literal."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if fname in {"import_module", "__import__"} and node.args:
                arg = node.args[0]
                if (isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                        and not arg.value.startswith(".")):
                    names.add(arg.value.split(".")[0])
    return names


def violations(names: set[str]) -> tuple[set[str], set[str]]:
    """(forbidden names, names outside stdlib + allowed third party + verifier itself)."""
    forbidden = names & FORBIDDEN
    outside = {n for n in names
               if n not in sys.stdlib_module_names and n not in ALLOWED_THIRD_PARTY
               and n != "verifier"}
    return forbidden, outside


def test_finds_the_sources() -> None:
    """The scan sees the verifier's modules (so an empty scan cannot pass)."""
    names = {p.name for p in source_files()}
    assert {"__init__.py", "bundle.py", "replay.py", "note.py", "cli.py"} <= names


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(VERIFIER)))
def test_no_forbidden_or_third_party_imports(path: Path) -> None:
    """No module imports ledger/cli/lmdb/click or anything beyond stdlib, cryptography, msgspec."""
    names = imported_top_levels(path.read_text(encoding="utf-8"), str(path))
    forbidden, outside = violations(names)
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"
    assert not outside, f"{path.name} imports non-standard modules {sorted(outside)}"


def test_uses_its_allowed_dependencies() -> None:
    """The scan does see cryptography and msgspec (so it really parses imports)."""
    names: set[str] = set()
    for path in source_files():
        names |= imported_top_levels(path.read_text(encoding="utf-8"))
    assert ALLOWED_THIRD_PARTY <= names


@pytest.mark.parametrize("source,bad", [
    ("import lmdb", {"lmdb"}),
    ("import click.testing as t", {"click"}),
    ("from ledger._store import Store", {"ledger"}),
    ("from cli import main", {"cli"}),
    ("def f():\n    import ledger\n", {"ledger"}),
    ("try:\n    import lmdb\nexcept ImportError:\n    pass\n", {"lmdb"}),
    ("import importlib\nimportlib.import_module('ledger._store')", {"ledger"}),
    ("__import__('click')", {"click"}),
])
def test_checker_catches(source: str, bad: set[str]) -> None:
    """The checker flags forbidden imports in any form."""
    forbidden, _ = violations(imported_top_levels(source))
    assert forbidden == bad


@pytest.mark.parametrize("source,ok", [
    ("from . import cli", True),
    ("from .cli import main", True),
    ("import verifier.cli", True),
    ("import hashlib, json\nfrom collections.abc import Sequence", True),
    ("import numpy", False),
    ("from requests import get", False),
    ("import pymerkle", False),
    ("# import lmdb\nx = 'import click'", True),
])
def test_checker_third_party(source: str, ok: bool) -> None:
    """Relative and stdlib imports pass, other packages fail; comments/strings don't count."""
    forbidden, outside = violations(imported_top_levels(source))
    assert (not forbidden and not outside) is ok


def test_standalone_pyproject_dependencies() -> None:
    """verifier/pyproject.toml depends on cryptography and msgspec only."""
    meta = tomllib.loads((VERIFIER / "pyproject.toml").read_text())
    deps = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower()
            for d in meta["project"]["dependencies"]}
    assert deps == ALLOWED_THIRD_PARTY
    assert meta["project"]["scripts"]["modelseal-verify"] == "verifier.startup:run_verifier"
