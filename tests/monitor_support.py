"""The monitor tests' log: a ledger with its keys that publishes to a directory, its
``log`` fixture (a test module binds it to the name ``log``), ``grow`` and a hand-made
tiles directory (``write_log_dir``). Test-only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import verifier as v
from ledger import Ledger
from ledger import _tiles
from ledger import _tree as tree
from ledger._publish import publish
from ledger._writer import sign_checkpoint
from tests.ledger_support import Keys, make_ledger, register

REPO = Path(__file__).resolve().parent.parent


def grow(ledger: Ledger, to: int, prefix: str = "model") -> None:
    with ledger.batch():
        while ledger.size < to:
            register(ledger, f"{prefix}-{ledger.size}")


class Log:
    """A test log: its store, keys and a directory it publishes to."""

    def __init__(self, base: Path, keys: Keys | None = None) -> None:
        self.base = base
        self.keys = keys or Keys()
        self.ledger = make_ledger(base / "store", self.keys)
        self.vkey = self.ledger.log_vkey
        self.key = v.VerifierKey.parse(self.vkey)

    def publish(self, name: str = "pub", **kw: bool) -> Path:
        out = self.base / name
        publish(self.ledger, out, **kw)
        return out


@pytest.fixture()
def log(tmp_path: Path) -> Iterator[Log]:
    """Fixture: a fresh ``Log`` under ``tmp_path``, its ledger closed afterwards."""
    made = Log(tmp_path)
    yield made
    made.ledger.close()


def start_follow(source: Path, vkey: str) -> subprocess.Popen[str]:
    """``modelseal monitor SOURCE --key VKEY --follow --interval 1`` started in a child
    (no MODELSEAL_* variables; text pipes for stdout and stderr). The caller stops it."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("MODELSEAL_")}
    return subprocess.Popen(
        [sys.executable, "-c", "from cli._entry import modelseal; modelseal()", "monitor",
         str(source), "--key", vkey, "--follow", "--interval", "1"], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_log_dir(root: Path, entries: list[bytes], log: Log, at: int) -> None:
    """A tlog-tiles directory of ``entries`` (any bytes), with tiles, bundles and a
    checkpoint signed by the log key: what a log that broke its own rules would publish."""
    nodes: dict[tuple[int, int], bytes] = {}
    for i, e in enumerate(entries):
        tree.append_leaf(lambda lv, ix: nodes[(lv, ix)],
                         lambda lv, ix, h: nodes.__setitem__((lv, ix), h), i, v.leaf_hash(e))
    get = lambda lv, ix: nodes[(lv, ix)]  # noqa: E731
    for level, index, width in _tiles.tiles_of(len(entries)):
        path = root / "tile" / _tiles.tile_path(level, index, width)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_tiles.tile_bytes(get, level, index, width))
        if level == 0:
            bundle = root / "tile/entries" / _tiles.tile_path(0, index, width)[2:]
            bundle.parent.mkdir(parents=True, exist_ok=True)
            part = entries[index * 256:index * 256 + width]
            bundle.write_bytes(b"".join(len(e).to_bytes(2, "big") + e for e in part))
    note = sign_checkpoint(log.keys.log.named(log.ledger.origin), log.ledger.origin,
                           len(entries), tree.root(get, len(entries)), at)
    (root / "checkpoint").write_bytes(note)
