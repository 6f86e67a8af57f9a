"""Fixtures shared by the ledger tests: fresh keys, a deterministic clock, a store path.

``tests.ledger_support`` (which imports ``ledger``) is imported only when a ledger test
asks for a fixture, so that the verifier's tests load without the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.ledger_support import Clock, Keys


@pytest.fixture
def keys() -> Keys:
    from tests.ledger_support import Keys

    return Keys()


@pytest.fixture
def clock() -> Clock:
    from tests.ledger_support import Clock

    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store"
