"""Part 6: key files 0600, open key files refused unless allowed explicitly, passphrases
from the environment and from a prompt on a real terminal (pty). Single cases are in
tests/test_ledger_store.py (API) and tests/test_cli.py (CLI)."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.keys import run_keys


def test_key_files(tmp_path: Path) -> None:
    result = run_keys(tmp_path, modes=(0o640, 0o604, 0o620))
    assert result["failures"] == [], result
    assert result["passed"] == result["checks"] > 30
