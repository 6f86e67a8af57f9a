"""Every attack_s20b test runs with the proxy variables unset (tests.client_support)."""

from __future__ import annotations

import pytest

from tests.client_support import clear_proxy_env


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_env(monkeypatch)
