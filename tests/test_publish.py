"""`modelseal publish`: the log as static C2SP tlog-tiles (ledger/_publish.py, specs/tiles.md).

Incremental runs write only new files and never rewrite a full tile; every published tile is
byte for byte what the log server answers; an interrupted run (a crash between two files, or
SIGKILL) leaves a directory whose checkpoint has all its tiles, and the next run completes
it; files already present that are not the log's stop the run, nothing replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings, strategies as st
from starlette.testclient import TestClient

import verifier as v
from ledger import Ledger
from ledger import _publish
from ledger._publish import (
    PublishBusyError,
    PublishConflictError,
    entry_bundle,
    publish,
    split_bundle,
)
from ledger._tiles import WIDTH, tile_path, tiles_of
from ledger.server import build_app
from tests.cli_support import cli, ok, refused
from tests.ledger_support import Keys, make_ledger, register
from verifier.cosignature import WitnessKey, cosignature_line, cosignature_message

REPO = Path(__file__).resolve().parent.parent


def grow(ledger: Ledger, to: int) -> None:
    """Register models until the log holds ``to`` entries (batched)."""
    with ledger.batch():
        while ledger.size < to:
            register(ledger, f"model-{ledger.size}")


@pytest.fixture()
def led(tmp_path: Path) -> Ledger:
    ledger = make_ledger(tmp_path / "store", Keys())
    yield ledger
    ledger.close()


def files(root: Path) -> dict[str, bytes]:
    """Every published file (the lock file aside), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.name != ".publish.lock"}


def check_dir(root: Path, ledger: Ledger) -> v.Checkpoint:
    """What a reader checks: the checkpoint verifies, every tile it needs is there with the
    log's bytes, and the tiles give its root."""
    cp = v.Checkpoint.parse_note((root / "checkpoint").read_bytes(),
                                 [v.VerifierKey.parse(ledger.log_vkey)])
    leaves: list[bytes] = []
    for level, index, width in tiles_of(cp.size):
        data = (root / "tile" / tile_path(level, index, width)).read_bytes()
        assert data == ledger.tile(level, index, width)
        if level == 0:
            leaves += [data[i:i + 32] for i in range(0, len(data), 32)]
    assert v.root_from_leaf_hashes(leaves) == cp.root
    return cp


# -- layout and incremental runs ----------------------------------------------------------------

def test_layout_of_one_checkpoint(led: Ledger, tmp_path: Path) -> None:
    grow(led, 300)
    out = tmp_path / "pub"
    done = publish(led, out)
    assert (done.size, done.previous, done.tiles_written) == (300, None, 3)
    assert sorted(files(out)) == ["checkpoint", "tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"]
    assert (out / "checkpoint").read_bytes() == led.checkpoint()
    check_dir(out, led)


def test_second_run_writes_only_new_files(led: Ledger, tmp_path: Path) -> None:
    grow(led, 200)
    out = tmp_path / "pub"
    publish(led, out)
    again = publish(led, out)
    assert (again.tiles_written, again.files_checked, again.checkpoint_written) == (0, 0, False)

    grow(led, 600)
    first_full = out / "tile/0/000"
    done = publish(led, out)
    # new: 0/000 (full), 0/001 (full), 0/002.p/88, 1/000.p/2; the old partial 0/000.p/200 stays
    assert (done.previous, done.size, done.tiles_written) == (200, 600, 4)
    inode = first_full.stat().st_ino
    grow(led, 700)
    done = publish(led, out)
    assert first_full.stat().st_ino == inode  # a full tile is written once, never again
    assert done.tiles_written == 1  # 0/002.p/188; 1/000.p/2 is the same as at size 600
    assert (out / "tile/0/000.p/200").exists() and (out / "tile/0/002.p/88").exists()
    check_dir(out, led)


def test_tiles_match_the_server_byte_for_byte(led: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "pub"
    for size in (1, 255, 256, 257, 513, 700):
        grow(led, size)
        led.sign_checkpoint()
        publish(led, out, with_entries=True)
    client = TestClient(build_app(led), base_url="http://log.example")
    published = files(out)
    assert client.get("/checkpoint").content == published["checkpoint"]
    hash_tiles = [p for p in published if p.startswith("tile/") and "entries" not in p]
    assert len(hash_tiles) == 9  # 3 full, 4 level-0 partials, 2 level-1 partials
    for rel in hash_tiles:
        answer = client.get("/" + rel)
        assert answer.status_code == 200, rel
        assert answer.content == published[rel], rel
    # and every tile of the latest tree is published
    for level, index, width in tiles_of(led.size):
        assert f"tile/{tile_path(level, index, width)}" in published


def test_entry_bundles(led: Ledger, tmp_path: Path) -> None:
    grow(led, 300)
    out = tmp_path / "pub"
    done = publish(led, out, with_entries=True)
    assert done.bundles_written == 2
    full = split_bundle((out / "tile/entries/000").read_bytes(), WIDTH)
    part = split_bundle((out / "tile/entries/001.p/44").read_bytes(), 44)
    assert full + part == [led.entry(i) for i in range(300)]
    for i, entry in enumerate(full):
        assert v.leaf_hash(entry) == (out / "tile/0/000").read_bytes()[32 * i:32 * i + 32]
    assert not (tmp_path / "plain" / "tile" / "entries").exists()
    publish(led, tmp_path / "plain")
    assert not (tmp_path / "plain" / "tile" / "entries").exists()


def test_entries_added_to_a_directory_published_without_them(led: Ledger, tmp_path: Path) -> None:
    grow(led, 260)
    out = tmp_path / "pub"
    publish(led, out)
    done = publish(led, out, with_entries=True)
    assert (done.tiles_written, done.bundles_written, done.checkpoint_written) == (0, 2, False)


def test_a_cosigned_checkpoint_that_lags_never_takes_the_directory_back(
        led: Ledger, tmp_path: Path) -> None:
    grow(led, 10)
    older = led.checkpoint()
    grow(led, 20)
    out = tmp_path / "pub"
    publish(led, out)
    done = publish(led, out, note=older)
    assert done.kept_newer and not done.checkpoint_written
    assert v.Checkpoint.parse_note((out / "checkpoint").read_bytes(),
                                   [v.VerifierKey.parse(led.log_vkey)]).size == 20


def test_the_chosen_checkpoint_is_the_cosigned_one_when_the_store_has_one(
        led: Ledger, tmp_path: Path) -> None:
    grow(led, 10)
    older = led.checkpoint()
    grow(led, 20)
    assert _publish.chosen_checkpoint(led) == led.checkpoint()
    key = Ed25519PrivateKey.generate()
    witness = WitnessKey.from_public("witness.example/w1", key.public_key().public_bytes_raw())
    cp = v.Checkpoint.parse_note(older, [v.VerifierKey.parse(led.log_vkey)])
    assert cp.time is not None
    at = cp.time // 10**9 + 5
    text = v.parse_note(older).text
    led.add_cosignatures(older + cosignature_line(
        witness, at, key.sign(cosignature_message(text, at))), [witness])
    cosigned = _publish.chosen_checkpoint(led)
    assert cosigned.startswith(older) and cosigned != older  # the older, cosigned one
    out = tmp_path / "pub"
    assert publish(led, out).size == 10
    assert (out / "checkpoint").read_bytes() == cosigned
    check_dir(out, led)


# -- interruption -------------------------------------------------------------------------------

def test_a_run_that_dies_between_two_files_leaves_a_usable_directory(
        led: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grow(led, 100)
    out = tmp_path / "pub"
    publish(led, out, with_entries=True)
    before = files(out)
    grow(led, 1100)
    real_link = os.link
    calls = {"n": 0}

    def dying_link(src: object, dst: object, **kw: object) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # as a kill between two files: the temp file is left
        real_link(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_publish.os, "link", dying_link)
    monkeypatch.setattr(_publish.os, "unlink", lambda p: None)  # leave temp files behind
    with pytest.raises(KeyboardInterrupt):
        publish(led, out, with_entries=True)
    monkeypatch.undo()
    assert any(".tmp-" in p for p in files(out))
    assert (out / "checkpoint").read_bytes() == before["checkpoint"]
    assert check_dir(out, led).size == 100  # the reader still has a whole tree
    done = publish(led, out, with_entries=True)
    assert done.size == 1100 and done.checkpoint_written
    assert not any(".tmp-" in p for p in files(out))
    check_dir(out, led)


def test_sigkill_mid_run_then_the_next_run_completes(tmp_path: Path) -> None:
    keys = Keys()
    ledger = make_ledger(tmp_path / "store", keys)
    grow(ledger, 20_000)
    first = ledger.checkpoint()
    ledger.close()
    out = tmp_path / "pub"
    out.mkdir()
    (out / "checkpoint").write_bytes(first)  # nothing else yet: a reader sees a missing tile
    code = ("import sys; from ledger import Ledger; from ledger._publish import publish; "
            "l = Ledger.open(sys.argv[1]); publish(l, sys.argv[2], with_entries=True)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "store"), str(out)],
                            cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((out / "tile" / "0").glob("*"))) >= 10:
                break
            time.sleep(0.005)
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert killed, "the run ended before it could be killed: grow the log"
    assert (out / "checkpoint").read_bytes() == first  # the checkpoint is written last
    with Ledger.open(tmp_path / "store") as ledger:
        done = publish(ledger, out, with_entries=True)
        assert done.size == 20_000
        check_dir(out, ledger)
        bundles = sorted((out / "tile" / "entries").rglob("*"))
        assert len([b for b in bundles if b.is_file()]) == 79


# -- hostile directories ------------------------------------------------------------------------

def test_a_full_tile_with_other_bytes_stops_the_run(led: Ledger, tmp_path: Path) -> None:
    grow(led, 100)
    out = tmp_path / "pub"
    publish(led, out)
    grow(led, 300)
    bad = out / "tile/0/000"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"\x00" * 8192)
    cp = (out / "checkpoint").read_bytes()
    with pytest.raises(PublishConflictError, match="other bytes"):
        publish(led, out)
    assert bad.read_bytes() == b"\x00" * 8192 and (out / "checkpoint").read_bytes() == cp


def test_recheck_finds_a_tampered_old_tile(led: Ledger, tmp_path: Path) -> None:
    grow(led, 300)
    out = tmp_path / "pub"
    publish(led, out)
    tile = out / "tile/0/000"
    data = bytearray(tile.read_bytes())
    data[5] ^= 1
    tile.write_bytes(bytes(data))
    publish(led, out)  # trusted: the published checkpoint already covered it
    with pytest.raises(PublishConflictError):
        publish(led, out, recheck=True)


@pytest.mark.parametrize("rel", ["tile/0/001.p/44", "tile/entries/001.p/44"])
def test_recheck_compares_the_partial_tiles_kept_from_earlier_checkpoints(
        led: Ledger, tmp_path: Path, rel: str) -> None:
    grow(led, 300)
    out = tmp_path / "pub"
    publish(led, out, with_entries=True)
    grow(led, 310)
    again = publish(led, out)
    assert (out / rel).exists() and (out / rel.replace(".p/44", ".p/54")).exists()
    clean = publish(led, out, recheck=True)
    assert clean.files_checked == len(files(out)) - 1  # every file but the checkpoint
    assert again.files_checked < clean.files_checked
    data = bytearray((out / rel).read_bytes())
    data[-1] ^= 1
    (out / rel).write_bytes(bytes(data))
    publish(led, out)  # without --recheck a kept file is trusted
    with pytest.raises(PublishConflictError, match="other bytes"):
        publish(led, out, recheck=True)


def test_recheck_refuses_a_partial_tile_the_tree_cannot_hold(led: Ledger,
                                                             tmp_path: Path) -> None:
    grow(led, 300)
    out = tmp_path / "pub"
    publish(led, out)
    stray = out / "tile/0/001.p/90"  # 256 + 90 > 300 entries
    stray.write_bytes(b"\0" * 32 * 90)
    publish(led, out)
    with pytest.raises(PublishConflictError, match="does not hold"):
        publish(led, out, recheck=True)
    (out / "tile/0/001.p/README").write_text("not a tile")  # not a tile path: not ours
    stray.unlink()
    publish(led, out, recheck=True)


def test_a_link_where_a_directory_belongs_is_refused(led: Ledger, tmp_path: Path) -> None:
    grow(led, 10)
    out = tmp_path / "pub"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "tile").symlink_to(elsewhere)
    with pytest.raises(PublishConflictError, match="not a directory"):
        publish(led, out)
    assert list(elsewhere.iterdir()) == [] and not (out / "checkpoint").exists()


def test_a_link_or_directory_where_a_file_belongs_is_refused(led: Ledger, tmp_path: Path) -> None:
    grow(led, 10)
    out = tmp_path / "pub"
    (out / "tile" / "0" / "000.p").mkdir(parents=True)
    target = tmp_path / "secret"
    target.write_bytes(b"x")
    (out / "tile/0/000.p/10").symlink_to(target)
    with pytest.raises(PublishConflictError, match="not a regular file"):
        publish(led, out)
    assert target.read_bytes() == b"x"
    (out / "tile/0/000.p/10").unlink()
    (out / "tile/0/000.p/10").mkdir()
    with pytest.raises(PublishConflictError):
        publish(led, out)


def test_another_logs_checkpoint_is_refused(led: Ledger, tmp_path: Path) -> None:
    grow(led, 5)
    other = make_ledger(tmp_path / "other", Keys())
    out = tmp_path / "pub"
    publish(other, out)
    other.close()
    with pytest.raises(PublishConflictError, match="not a checkpoint this log signed"):
        publish(led, out)
    (out / "checkpoint").write_bytes(b"garbage")
    with pytest.raises(PublishConflictError):
        publish(led, out)


def test_a_checkpoint_the_store_does_not_hold_is_refused(tmp_path: Path) -> None:
    keys = Keys()
    led = make_ledger(tmp_path / "store", keys)
    grow(led, 5)
    out = tmp_path / "pub"
    publish(led, out)
    # a copy of the store taken now, then the original grows and publishes further
    led.close()
    import shutil
    shutil.copytree(tmp_path / "store", tmp_path / "old-copy")
    led = Ledger.open(tmp_path / "store", log_key=keys.log, signer=keys.admin)
    grow(led, 9)
    publish(led, out)
    led.close()
    with Ledger.open(tmp_path / "old-copy") as old:
        with pytest.raises(PublishConflictError, match="does not hold"):
            publish(old, out)


def test_one_run_at_a_time(led: Ledger, tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "pub"
    out.mkdir()
    fd = os.open(out / ".publish.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(PublishBusyError):
            publish(led, out)
    finally:
        os.close(fd)
    publish(led, out)


# -- entry bundles: the parser ------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_bundles_round_trip(entries: list[bytes]) -> None:
    data = b"".join(len(e).to_bytes(2, "big") + e for e in entries)
    assert split_bundle(data, len(entries)) == entries


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=300))
def test_any_bytes_parse_or_are_malformed(data: bytes, count: int) -> None:
    try:
        found = split_bundle(data, count)
    except v.MalformedInputError:
        return
    assert len(found) == count
    assert b"".join(len(e).to_bytes(2, "big") + e for e in found) == data


def test_an_entry_bundle_is_the_entries_with_their_lengths(led: Ledger) -> None:
    grow(led, 3)
    data = entry_bundle(led, 0, 3)
    first = led.entry(0)
    assert data[:2] == len(first).to_bytes(2, "big") and data[2:2 + len(first)] == first


# -- the command --------------------------------------------------------------------------------

def test_cli_publish(tmp_path: Path) -> None:
    from tests.cli_support import init_store

    store = init_store(tmp_path)
    out = tmp_path / "pub"
    run = ok(cli("publish", out, "--store", store.dir))
    assert run.out.startswith("published size 1 to ") and "checkpoint written" in run.out
    run = ok(cli("publish", out, "--json", env={"MODELSEAL_STORE": str(store.dir)}))
    assert run.json()["checkpoint_written"] is False
    (out / "tile/0/000.p/1").write_bytes(b"\x01" * 32)
    refused(cli("publish", out, "--store", store.dir, "--recheck"), 1, "other bytes",
            hint="move the directory aside")


def test_publish_and_the_server_show_the_same_cosigned_checkpoint(led: Ledger,
                                                                   tmp_path: Path) -> None:
    grow(led, 300)
    note = led.checkpoint()
    key = Ed25519PrivateKey.generate()
    witness = WitnessKey.from_public("witness.example/w1", key.public_key().public_bytes_raw())
    cp = v.Checkpoint.parse_note(note, [v.VerifierKey.parse(led.log_vkey)])
    assert cp.time is not None
    at = cp.time // 10**9 + 5
    led.add_cosignatures(note + cosignature_line(
        witness, at, key.sign(cosignature_message(v.parse_note(note).text, at))), [witness])
    grow(led, 400)
    out = tmp_path / "pub"
    assert publish(led, out).size == 300
    client = TestClient(build_app(led), base_url="http://log.example")
    published = files(out)
    assert client.get("/checkpoint").content == published["checkpoint"] == led.cosigned()
    for rel in published:
        if rel.startswith("tile/"):
            assert client.get("/" + rel).content == published[rel], rel
