"""An independent oracle for `modelseal publish`: Go's golang.org/x/mod/sumdb/tlog.

tests/interop/tiles_check.go reads a published directory with tlog.TileHashReader and
tlog.TreeHash (and checks the checkpoint's signature with .../sumdb/note), reads every leaf
hash through the authenticated reader, recomputes the root from the leaves, and checks the
entry bundles against the leaves. Built in GOPATH mode from Debian's golang-go and
golang-golang-x-mod-dev (offline). Skips, saying why, when Go or the module is missing;
fails instead when MODELSEAL_REQUIRE_GO=1 (as .ci/run sets it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Ledger
from ledger._publish import publish
from tests.ledger_support import Keys, make_ledger, register

REPO = Path(__file__).resolve().parent.parent
PROGRAM = REPO / "tests" / "interop" / "tiles_check.go"
GOPATH = Path("/usr/share/gocode")
MODULE = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb" / "tlog"


def _missing() -> str | None:
    if shutil.which("go") is None:
        return "Go is not installed (apt-get install golang-go golang-golang-x-mod-dev)"
    if not MODULE.is_dir():
        return f"{MODULE} is missing (apt-get install golang-golang-x-mod-dev)"
    return None


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    why = _missing()
    if why is not None:
        if os.environ.get("MODELSEAL_REQUIRE_GO") == "1":
            pytest.fail(f"MODELSEAL_REQUIRE_GO=1 but {why}")
        pytest.skip(why)
    base = tmp_path_factory.mktemp("go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": "",
           "GOPROXY": "off", "GOCACHE": str(base / "cache"), "CGO_ENABLED": "0"}
    binary = base / "tiles_check"
    built = subprocess.run(["go", "build", "-o", str(binary), str(PROGRAM)], env=env,
                           cwd=PROGRAM.parent, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    return binary


def go_check(checker: Path, directory: Path, vkey: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(checker), str(directory), vkey], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ledger, Path]]:
    base = tmp_path_factory.mktemp("log")
    ledger = make_ledger(base / "store", Keys())
    yield ledger, base
    ledger.close()


def grow(ledger: Ledger, to: int) -> None:
    while ledger.size < to:
        with ledger.batch():
            for _ in range(min(5000, to - ledger.size)):
                register(ledger, f"model-{ledger.size}")


# sizes around every tile edge, up to a tree with a level-2 tile
SIZES = [1, 2, 255, 256, 257, 511, 512, 513, 70_000]


def test_every_published_size_verifies_with_go(checker: Path, log: tuple[Ledger, Path]
                                               ) -> None:
    ledger, base = log
    out = base / "pub"
    for size in SIZES:
        grow(ledger, size)
        ledger.sign_checkpoint()
        publish(ledger, out, with_entries=True)
        run = go_check(checker, out, ledger.log_vkey)
        assert run.returncode == 0, f"size {size}: {run.stdout}{run.stderr}"
        words = run.stdout.split()
        assert words[0] == "ok" and int(words[1]) == size, run.stdout
        assert int(words[3]) == size and int(words[4]) == size, run.stdout  # leaves, entries
    assert (out / "tile/2/000.p/1").exists() and (out / "tile/1/001.p/17").exists()


def test_go_refuses_a_tampered_directory(checker: Path, tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "store", Keys())
    out = tmp_path / "pub"
    grow(ledger, 600)
    publish(ledger, out, with_entries=True)
    ledger.close()
    assert go_check(checker, out, ledger.log_vkey).returncode == 0
    tile = out / "tile/0/001"
    good = tile.read_bytes()
    tile.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    run = go_check(checker, out, ledger.log_vkey)
    assert run.returncode == 1 and run.stdout.startswith("FAIL"), run.stdout
    tile.write_bytes(good)
    bundle = next(p for p in (out / "tile/entries").rglob("*") if p.is_file())
    data = bundle.read_bytes()
    bundle.write_bytes(data[:10] + bytes([data[10] ^ 1]) + data[11:])
    run = go_check(checker, out, ledger.log_vkey)
    assert run.returncode == 1 and "does not hash to its leaf" in run.stdout, run.stdout
    bundle.write_bytes(data)
    other = Keys().log.named(ledger.origin).key.vkey
    run = go_check(checker, out, other)
    assert run.returncode == 1 and "signature" in run.stdout, run.stdout
