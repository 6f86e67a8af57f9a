"""Issue 10, the seam: the ledger imports only the verifier's public names, and drives
replay through the narrow state interface with a signature strategy."""

from __future__ import annotations

import ast
from pathlib import Path

import verifier as v
from ledger._state import StoreState

REPO = Path(__file__).resolve().parent.parent


def _verifier_imports(path: Path) -> list[tuple[int, str]]:
    """(line, what) for every import of the verifier in a module."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module == "verifier" or node.module.startswith("verifier.")):
            out += [(node.lineno, f"{node.module}:{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("verifier")]
    return out


def test_the_ledger_imports_only_public_verifier_names() -> None:
    bad = []
    for path in sorted((REPO / "ledger").glob("*.py")):
        for line, what in _verifier_imports(path):
            module, _, name = what.partition(":")
            if module != "verifier" or (name and name not in v.__all__):
                bad.append(f"{path.name}:{line} {what}")
    assert bad == []


def test_the_public_names_exist() -> None:
    missing = [name for name in v.__all__ if not hasattr(v, name)]
    assert missing == []


def test_store_state_is_a_replay_state() -> None:
    """Static check for mypy, and a runtime look at the Protocol's members."""
    members = [n for n in dir(v.ReplayState) if not n.startswith("_")]
    missing = [n for n in members if not hasattr(StoreState, n)]
    assert missing == [] and len(members) >= 12


def _typed(state: StoreState) -> v.ReplayState:
    return state  # mypy fails here if StoreState does not implement the Protocol
