"""Fixtures shared by the ledger tests: fresh keys, a deterministic clock, a store path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger_support import Clock, Keys


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store"
