"""`publish --recheck` (ledger/_publish.py _kept_partials) over a hostile published
directory: links, a FIFO and a huge file among the kept partial tiles, stray files, `.p`
directories at the wrong place, a `.p` directory that is itself a link."""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Ledger
from ledger._publish import PublishConflictError, publish
from tests.ledger_support import Keys, make_ledger, register


def grow(ledger: Ledger, to: int) -> None:
    with ledger.batch():
        while ledger.size < to:
            register(ledger, f"model-{ledger.size}")


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    ledger = make_ledger(tmp_path / "store", Keys())
    yield ledger
    ledger.close()


@pytest.fixture
def out(led: Ledger, tmp_path: Path) -> Path:
    """A directory published at 300 entries (with bundles), then at 310."""
    grow(led, 300)
    d = tmp_path / "pub"
    publish(led, d, with_entries=True)
    grow(led, 310)
    publish(led, d)
    assert (d / "tile/0/001.p/44").is_file() and (d / "tile/entries/001.p/44").is_file()
    return d


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


# Held: a link or a FIFO where a kept partial tile was is a conflict, at
# once (no blocking open on the FIFO); a huge file is a conflict, not read whole.
@pytest.mark.parametrize("what", ["symlink", "fifo", "huge"])
def test_odd_file_in_a_p_directory_is_a_conflict(led: Ledger, out: Path, what: str) -> None:
    target = out / "tile/0/001.p/44"
    target.unlink()
    if what == "symlink":
        target.symlink_to(out / "tile/0/001.p/54")
    elif what == "fifo":
        os.mkfifo(target)
    else:
        with target.open("wb") as fh:
            fh.truncate(8 << 30)
    start = time.monotonic()
    with pytest.raises(PublishConflictError):
        publish(led, out, recheck=True)
    assert time.monotonic() - start < 60


# Held: thousands of stray names and `.p` directories at wrong places are not ours to
# judge: skipped; a partial tile the tree cannot hold is a conflict.
def test_stray_names_skipped(led: Ledger, out: Path) -> None:
    stray = out / "tile/0/001.p"
    for i in range(3000):
        (stray / f"junk{i}").write_bytes(b"x")
    (out / "tile/000.p").mkdir()
    (out / "tile/000.p/5").write_bytes(b"y")
    (out / "tile/entries/0/000.p").mkdir(parents=True)
    (out / "tile/entries/0/000.p/5").write_bytes(b"z")
    (out / "tile/0/001.p/044").write_bytes(b"non-canonical")
    publish(led, out, recheck=True)


def test_partial_beyond_the_tree_is_a_conflict(led: Ledger, out: Path) -> None:
    (out / "tile/0/001.p/200").write_bytes(b"\x00" * 32 * 200)
    with pytest.raises(PublishConflictError, match="does not hold"):
        publish(led, out, recheck=True)


# FINDING (medium): ledger/_publish.py:147 walks `tile/` with os.walk, which does not
# descend into a directory link, and says nothing of it: once the tree has grown past a
# tile (size 520: tile 0/001 is full), its `.p` directory holds only earlier checkpoints'
# partial tiles, and replacing `tile/0/001.p` with a link to a directory of tampered
# copies passes `publish --recheck` clean; a web server that follows links serves the
# tampered bytes. (The tree's own files are refused through a link, _Dir._mkdirs.)
# Expected: a link where a `.p` directory is, is a PublishConflictError, as elsewhere.
def test_p_directory_replaced_by_a_link_is_not_skipped(led: Ledger, out: Path,
                                                       tmp_path: Path) -> None:
    grow(led, 520)
    publish(led, out)
    p_dir = out / "tile/0/001.p"
    assert (p_dir / "44").is_file() and (out / "tile/0/001").is_file()  # full now
    publish(led, out, recheck=True)  # clean so far
    evil = tmp_path / "evil"
    shutil.copytree(p_dir, evil)
    _tamper(evil / "44")
    shutil.rmtree(p_dir)
    p_dir.symlink_to(evil, target_is_directory=True)
    with pytest.raises(PublishConflictError):
        publish(led, out, recheck=True)


# Held: the same tampering in the real directory is found.
def test_tampered_old_partial_in_place_is_found(led: Ledger, out: Path) -> None:
    grow(led, 520)
    publish(led, out)
    _tamper(out / "tile/0/001.p/44")
    with pytest.raises(PublishConflictError, match="other bytes"):
        publish(led, out, recheck=True)
