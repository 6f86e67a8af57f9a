"""Files the commands write: never into the store or over a key, never a device or a FIFO,
whole or not at all (cli/outfile.py; specs/errors.md). Findings of session 19's adversary:
`export --force -o STORE/data.mdb` destroyed the store, `-o /dev/full` deleted the device
node, `prove inclusion --entry-out` overwrote the log key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.outfile import check_output, pieces_filler, write_output
from tests.cli_support import Store, init_store, ok, refused
from verifier.exitcodes import UsageProblem


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = init_store(tmp_path)
    ok(s.run("register", "m1", "--owner", "o", "--type", "ml_model", "--tier", "low",
             "--purpose", "p"))
    return s


def _audit_ok(s: Store) -> None:
    assert ok(s.run("audit")).out.startswith("audit ok")


def test_export_into_the_store_is_refused(store: Store) -> None:
    data = store.dir / "data.mdb"
    before = data.read_bytes()
    refused(store.run("export", "--force", "-o", data), 2, "inside the store")
    link = store.dir.parent / "link.json"
    link.symlink_to(data)
    refused(store.run("export", "--force", "-o", link), 2, "inside the store")
    assert data.read_bytes() == before
    _audit_ok(store)


def test_export_to_a_device_or_fifo_is_refused_and_leaves_it(store: Store) -> None:
    if Path("/dev/null").exists():
        refused(store.run("export", "--force", "-o", "/dev/null"), 2, "is a device")
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = store.dir.parent / "fifo"
    os.mkfifo(fifo)
    refused(store.run("export", "--force", "-o", fifo), 2, "is a FIFO")
    usage = store.run("export", "--force", "-o", store.dir.parent)  # click refuses it first
    assert usage.code == 2 and "is a directory" in usage.err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_prove_entry_out_never_overwrites_a_key_or_an_existing_file(store: Store) -> None:
    key_bytes = store.log_key.read_bytes()
    refused(store.run("prove", "inclusion", "0", "--entry-out", store.log_key, "--force"), 2,
            "is the key file")
    assert store.log_key.read_bytes() == key_bytes
    out = store.dir.parent / "entry.json"
    out.write_bytes(b"old")
    refused(store.run("prove", "inclusion", "0", "--entry-out", out), 2, "exists")
    assert out.read_bytes() == b"old"
    ok(store.run("prove", "inclusion", "0", "--entry-out", out, "--force"))
    assert out.read_bytes().startswith(b'{"index":0')
    refused(store.run("prove", "inclusion", "0", "--entry-out", store.dir / "x.json"), 2,
            "inside the store")
    _audit_ok(store)


def test_export_replaces_with_force_and_keeps_a_new_file_mode(store: Store) -> None:
    out = store.dir.parent / "b.json"
    ok(store.run("export", "-o", out))
    first = out.read_bytes()
    refused(store.run("export", "-o", out), 2, "exists")
    ok(store.run("prove", "inclusion", "0"))  # something else happens meanwhile
    ok(store.run("export", "--force", "-o", out))
    assert out.read_bytes().startswith(b"{") and out.read_bytes() != b""
    assert first.startswith(b"{")
    assert stat.S_IMODE(out.stat().st_mode) & 0o600 == 0o600
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


def _failing(n: int) -> Iterator[bytes]:
    for k in range(n):
        yield b"x" * 1000
    raise OSError(28, "No space left on device")


def test_a_write_that_fails_part_way_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    out.write_bytes(b"the old bundle")
    with pytest.raises(OSError):
        write_output(out, pieces_filler(_failing(5)), force=True)
    assert out.read_bytes() == b"the old bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.json"]
    with pytest.raises(KeyboardInterrupt):
        write_output(out, pieces_filler(b"x" if k < 3 else (_ for _ in ()).throw(
            KeyboardInterrupt) for k in range(5)), force=True)
    assert out.read_bytes() == b"the old bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.json"]


def test_without_force_a_file_made_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "new.json"
    check_output(out, force=False, option="-o")

    def pieces() -> Iterator[bytes]:
        yield b"mine"
        out.write_bytes(b"someone else's")  # appears between the check and the move

    with pytest.raises(UsageProblem):
        write_output(out, pieces_filler(pieces()), force=False)
    assert out.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json"]


def test_check_output_names_what_stands_there(tmp_path: Path) -> None:
    with pytest.raises(UsageProblem, match="a directory"):
        check_output(tmp_path, force=True, option="-o")
    key = tmp_path / "k.key"
    key.write_bytes(b"k")
    link = tmp_path / "alias"
    link.symlink_to(key)
    with pytest.raises(UsageProblem, match="key file"):
        check_output(link, force=True, option="-o", protected_files=[key])
    check_output(tmp_path / "fresh.json", force=False, option="-o",
                 protected_dirs=[tmp_path / "store"], protected_files=[key])
