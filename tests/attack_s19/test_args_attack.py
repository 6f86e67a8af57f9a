"""Careless and hostile option values: exit 2 (or the row of specs/errors.md that fits),
never 70 ("a bug") and never a traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from ledger import ActorKey, LogKey

from .common import WRITER, Store, make_store, no_traceback, run

VKEY = LogKey.generate("attack.example/s19").vkey


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return make_store(tmp_path_factory.mktemp("args"), models=1)


@pytest.mark.parametrize("port", ["99999", "65536"])
def test_server_url_with_a_port_out_of_range(tmp_path: Path, port: str) -> None:
    # FINDING: medium: `--server http://127.0.0.1:99999` (a mistyped port) exits 70 "internal error (a bug): ValueError: port '99999' is out of range"
    key = ActorKey.generate("reader").save(tmp_path / "reader.key")
    done = run([*WRITER, "--server", f"http://127.0.0.1:{port}", "--log-vkey", VKEY,
                "--key", str(key), "--client-state", str(tmp_path / "s.json"), "--timeout", "2",
                "inventory"])
    no_traceback(done)
    assert done.code in (2, 4), str(done)
    assert "internal error" not in done.err, str(done)


def test_monitor_timeout_nan(tmp_path: Path) -> None:
    # FINDING: low: `modelseal monitor URL --timeout nan` passes click's FloatRange and exits 70 "internal error (a bug): ValueError: Invalid value NaN"
    done = run([*WRITER, "monitor", "http://127.0.0.1:9", "--key", VKEY, "--timeout", "nan"])
    no_traceback(done)
    assert done.code == 2, str(done)


def test_global_timeout_nan_with_a_server_is_usage(tmp_path: Path) -> None:
    done = run([*WRITER, "--server", "http://127.0.0.1:9", "--log-vkey", VKEY, "--timeout",
                "nan", "--client-state", str(tmp_path / "s.json"), "inventory"])
    no_traceback(done)
    assert done.code == 2, str(done)


ODD = [
    ["export", "-o", "{tmp}/x.json", "--size", "99999999999999999999999"],
    ["export", "-o", "{tmp}/x.json", "--at", "9999-12-31T23:59:59Z"],
    ["export", "-o", "{tmp}/x.json", "--at", "0001-01-01T00:00:00Z"],
    ["prove", "consistency", "--old", "99999999999999999999999"],
    ["prove", "inclusion", "99999999999999999999999"],
    ["prove", "inclusion", "-1"],
    ["show", "0000000000000000000000000000000000000000000000000000000000000000ff"],
    ["inventory", "--at", "9999-12-31"],
    ["inventory", "--at", "0001-01-01"],
    ["history", "m0", "--at", "0001-01-01T00:00:00+14:00"],
    ["diff", "9999-12-31", "0001-01-01"],
    ["record", "m0", "--event", "evaluated", "--payload", "1e999"],
    ["record", "m0", "--event", "evaluated", "--payload", '{"a": 1e400}'],
    ["record", "m0", "--event", "evaluated", "--payload", '{"a": 99999999999999999999999}'],
    ["tag", "m0", "production", "--snapshot", "zz"],
    ["findings", "--profile", "/etc/passwd"],
    ["findings", "--profile", "/"],
    ["monitor", "/nonexistent", "--key", VKEY],
    ["--server", "file:///etc/passwd", "--log-vkey", VKEY, "inventory"],
    ["--server", "http://[::1", "--log-vkey", VKEY, "inventory"],
    ["--client-state", "/", "--server", "http://127.0.0.1:9", "--log-vkey", VKEY, "inventory"],
]


@pytest.mark.parametrize("args", ODD, ids=lambda a: " ".join(a)[:60])
def test_odd_values_are_not_bugs(store: Store, tmp_path: Path, args: list[str]) -> None:
    before = store.checkpoint()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = store.cli(*argv, timeout=60)
    no_traceback(done)
    assert done.code not in (0, 70) or args[0] in ("inventory", "history"), str(done)
    assert done.code != 70 and "internal error" not in done.err, str(done)
    assert store.checkpoint() == before
