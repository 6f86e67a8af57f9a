"""Output files a careless user (or a hostile script) points commands at: a directory, a
FIFO, a device, a symlink to an input, the store's own files, the log key. The rule:
a clear refusal, and nothing clobbered; a failure part way leaves what was there."""
from __future__ import annotations

import os
import resource
import stat
import subprocess
from pathlib import Path

import pytest

from .common import VERIFY, WRITER, ROOT, Store, env, make_store, needs_full, needs_root, \
    no_traceback, run


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path)


def _audit_clean(store: Store) -> None:
    done = store.audit()
    assert done.code == 0 and done.out.startswith("audit ok"), str(done)


# -- modelseal export -o ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["direct", "symlink"])
def test_export_force_onto_the_store_itself_is_refused(store: Store, tmp_path: Path,
                                                       how: str) -> None:
    # FINDING: high: `modelseal export --force -o STORE/data.mdb` (or a symlink to it) truncates the live LMDB file: the process dies of SIGBUS and the store is destroyed
    target = store.dir / "data.mdb"
    if how == "symlink":
        link = tmp_path / "bundle.json"
        link.symlink_to(target)
        target_arg = link
    else:
        target_arg = target
    size = target.stat().st_size
    done = store.cli("export", "--force", "-o", str(target_arg), timeout=60)
    no_traceback(done)
    assert done.code == 2, str(done)
    assert target.stat().st_size == size
    _audit_clean(store)


@needs_root
def test_export_force_onto_a_device_does_not_delete_the_device(store: Store,
                                                               tmp_path: Path) -> None:
    # FINDING: high: `modelseal export --force -o /dev/full` fails (ENOSPC) and then unlinks the output path: as root it deletes the device node /dev/full itself
    node = tmp_path / "full-device"  # a private copy of /dev/full (char 1,7), not the real one
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    done = store.cli("export", "--force", "-o", str(node))
    no_traceback(done)
    assert done.code in (2, 4), str(done)
    assert node.exists() and stat.S_ISCHR(os.lstat(node).st_mode), "the device node was removed"


def test_export_force_onto_a_fifo_is_refused_not_a_hang(store: Store, tmp_path: Path) -> None:
    # FINDING: medium: `modelseal export --force -o FIFO` blocks forever waiting for a reader (an unbounded wait), where modelseal-verify --report refuses a FIFO
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    try:
        done = store.cli("export", "--force", "-o", str(fifo), timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("export --force -o FIFO was still waiting after 20 s")
    no_traceback(done)
    assert done.code == 2, str(done)


def test_export_force_that_fails_part_way_keeps_the_old_bundle(store: Store,
                                                               tmp_path: Path) -> None:
    # FINDING: medium: a `modelseal export --force -o OLD` that fails part way (disk full, file size limit, Ctrl-C) deletes OLD: the bundle it was to replace is lost (not written atomically)
    old = tmp_path / "old-bundle.json"
    old.write_bytes(b"the examiner's previous bundle\n")

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # Python ignores SIGXFSZ

    done = subprocess.run([*WRITER, *store.opts, "export", "--force", "-o", str(old)],
                          capture_output=True, env=env(), cwd=ROOT, timeout=60,
                          preexec_fn=small_files)
    err = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err
    assert done.returncode == 4, err
    assert old.exists() and old.read_bytes() == b"the examiner's previous bundle\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("kind", ["directory", "fifo", "existing"])
def test_export_without_force_refuses(store: Store, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "out"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.write_bytes(b"keep me")
    done = store.cli("export", "-o", str(target), timeout=20)
    no_traceback(done)
    assert done.code == 2 and done.out == "", str(done)
    if kind == "existing":
        assert target.read_bytes() == b"keep me"


def test_export_into_a_missing_directory_is_an_io_error(store: Store, tmp_path: Path) -> None:
    done = store.cli("export", "-o", str(tmp_path / "no" / "such" / "b.json"))
    no_traceback(done)
    assert done.code in (2, 4) and done.out == "", str(done)


# -- modelseal prove inclusion --entry-out ----------------------------------------------------

@pytest.mark.parametrize("victim", ["log-key", "store", "other-file"])
def test_entry_out_never_overwrites_an_existing_file(store: Store, tmp_path: Path,
                                                     victim: str) -> None:
    # FINDING: high: `modelseal prove inclusion N --entry-out FILE` silently overwrites any existing FILE, even the log key file or STORE/data.mdb (the store is then unopenable: MDB_INVALID)
    target = {"log-key": store.log_key, "store": store.dir / "data.mdb",
              "other-file": tmp_path / "notes.txt"}[victim]
    if victim == "other-file":
        target.write_bytes(b"keep me")
    before = target.read_bytes()
    done = store.cli("prove", "inclusion", "1", "--entry-out", str(target))
    no_traceback(done)
    assert done.code == 2 and done.out == "", str(done)
    assert target.read_bytes() == before
    _audit_clean(store)


def test_entry_out_to_a_fifo_is_refused_not_a_hang(store: Store, tmp_path: Path) -> None:
    # FINDING: medium: `modelseal prove inclusion N --entry-out FIFO` blocks forever waiting for a reader (an unbounded wait)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    try:
        done = store.cli("prove", "inclusion", "1", "--entry-out", str(fifo), timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("prove inclusion --entry-out FIFO was still waiting after 20 s")
    no_traceback(done)
    assert done.code == 2, str(done)


def test_entry_out_new_file_is_the_exact_entry(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "entry.bin"
    done = store.cli("prove", "inclusion", "1", "--entry-out", str(out))
    assert done.code == 0 and done.out.startswith("c2sp.org/tlog-proof@v1"), str(done)
    assert out.stat().st_size > 0


# -- keygen -o / witness keygen --out: never overwritten ------------------------------------

@pytest.mark.parametrize("kind", ["existing", "directory", "dangling-symlink", "fifo",
                                  pytest.param("dev-full", marks=needs_full)])
@pytest.mark.parametrize("cmd", ["keygen", "witness"])
def test_key_outputs_are_never_clobbered(tmp_path: Path, kind: str, cmd: str) -> None:
    target = tmp_path / "k.key"
    if kind == "existing":
        target.write_bytes(b"keep me")
    elif kind == "directory":
        target.mkdir()
    elif kind == "dangling-symlink":
        target.symlink_to(tmp_path / "elsewhere.key")
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target = Path("/dev/full")
    argv = ([*WRITER, "keygen", "pipeline", "-o", str(target)] if cmd == "keygen" else
            [*WRITER, "witness", "keygen", "--name", "w.example/w1", "--out", str(target)])
    done = run(argv, timeout=20)
    no_traceback(done)
    assert done.code in (2, 4) and done.out == "", str(done)
    assert not (tmp_path / "elsewhere.key").exists()
    if kind == "existing":
        assert target.read_bytes() == b"keep me"


# -- modelseal-verify --report ----------------------------------------------------------------

@pytest.fixture
def bundle(store: Store, tmp_path: Path) -> Path:
    out = tmp_path / "b.json"
    done = store.cli("export", "-o", str(out))
    assert done.code == 0, str(done)
    return out


@pytest.mark.parametrize("kind,code", [("symlink-to-bundle", 2), ("hardlink-to-bundle", 2),
                                       ("bundle", 2), ("fifo", 2), ("directory", 4),
                                       pytest.param("dev-full", 2, marks=needs_full)])
def test_verify_report_targets(store: Store, bundle: Path, tmp_path: Path, kind: str,
                               code: int) -> None:
    before = bundle.read_bytes()
    target: Path
    if kind == "symlink-to-bundle":
        target = tmp_path / "r.html"
        target.symlink_to(bundle)
    elif kind == "hardlink-to-bundle":
        target = tmp_path / "r.html"
        os.link(bundle, target)
    elif kind == "bundle":
        target = bundle
    elif kind == "fifo":
        target = tmp_path / "r.html"
        os.mkfifo(target)
    elif kind == "directory":
        target = tmp_path / "r.html"
        target.mkdir()
    else:
        target = Path("/dev/full")
    done = run([*VERIFY, str(bundle), "--key", store.log_vkey, "--report", str(target)],
               timeout=30)
    no_traceback(done)
    assert done.code == code, str(done)
    assert bundle.read_bytes() == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
