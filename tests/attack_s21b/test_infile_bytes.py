"""cli/infile.read_at_most and its callers, fed hostile bytes: a payload, a policy file and
a passphrase file at exactly the bound and one byte over, /dev/zero, a directory, a
symlink loop, NUL bytes, non-UTF-8, a member given twice, a FIFO nobody writes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.infile import PAYLOAD_LIMIT, SMALL_FILE_LIMIT
from tests.attack_s19.common import run
from tests.attack_s21.common import WRITER
from tests.cli_support import MODEL, REPO, Store, init_store, ok, refused, registered_store

EVENT = ("record", "fraud_scoring", "--event", "retrained")
POLICY = b'{"events": {"validated": {"required": ["result"]}}}'


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return registered_store(tmp_path)


def _padded(doc: bytes, size: int) -> bytes:
    """``doc`` followed by spaces up to ``size`` bytes (still the same JSON value)."""
    assert len(doc) <= size
    return doc + b" " * (size - len(doc))


# Held: a payload of exactly PAYLOAD_LIMIT bytes is read and recorded (blank space is
# layout); one byte more is refused (exit 2) without recording anything.
def test_payload_at_the_bound_is_recorded(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_bytes(_padded(b'{"auc": 0.91}', PAYLOAD_LIMIT))
    ok(store.run(*EVENT, "--payload-file", f))


def test_payload_one_byte_over_is_refused(store: Store, tmp_path: Path) -> None:
    before = store.state()
    f = tmp_path / "p.json"
    f.write_bytes(_padded(b'{"auc": 0.91}', PAYLOAD_LIMIT + 1))
    refused(store.run(*EVENT, "--payload-file", f), 2, "larger than")
    refused(store.run(*EVENT, "--payload", "-", input=f.read_bytes()), 2, "larger than")
    assert store.state() == before


def test_payload_from_dev_zero_is_refused(store: Store) -> None:
    refused(store.run(*EVENT, "--payload-file", "/dev/zero"), 2, "larger than")


@pytest.mark.parametrize("doc", [
    b'{"auc": 1, "\\u0061uc": 2}',             # the same name, one escaped
    b'{"m": {"x": 1, "x": 1}}',                 # nested, the same value twice
    b'{"l": [{"k": 1}, {"k": 2, "k": 3}]}',    # inside an array
])
def test_payload_member_twice_is_refused(store: Store, tmp_path: Path, doc: bytes) -> None:
    f = tmp_path / "p.json"
    f.write_bytes(doc)
    refused(store.run(*EVENT, "--payload-file", f), 2, "twice")


@pytest.mark.parametrize("doc", [b'{"a": "\x00"}', b'{"a": "\xff\xfe"}', b"\xef\xbb\xbf{}",
                                 b"\x00" * 100])
def test_payload_hostile_bytes_refused_cleanly(store: Store, tmp_path: Path, doc: bytes
                                               ) -> None:
    f = tmp_path / "p.json"
    f.write_bytes(doc)
    run = store.run(*EVENT, "--payload-file", f)
    assert run.code == 2, str(run)


def test_payload_file_directory_and_loop(store: Store, tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for path in (tmp_path, loop):
        run = store.run(*EVENT, "--payload-file", path)
        assert run.code in (2, 4), str(run)  # click itself refuses a directory (exit 2)


# Held: the policy file at exactly the bound is read; one byte over is malformed (3);
# a symlink loop is an I/O fault (4) (click refuses a directory: 2); NUL or non-UTF-8
# is malformed (3).
def test_policy_at_the_bound_and_over(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "policy.json"
    f.write_bytes(_padded(POLICY, SMALL_FILE_LIMIT))
    ok(store.run("policy", "set", f))
    f.write_bytes(_padded(POLICY, SMALL_FILE_LIMIT + 1))
    refused(store.run("policy", "set", f), 3, "larger than")


@pytest.mark.parametrize(("name", "data"), [
    ("p.json", POLICY.replace(b"result", b"res\x00ult")),
    ("p.json", POLICY.replace(b"result", b"r\xe9sult")),
    ("p.toml", b"[events.validated]\nrequired = [\"r\xe9sult\"]\n"),
    ("p.toml", b"\x00"),
])
def test_policy_hostile_bytes_exit_3(store: Store, tmp_path: Path, name: str, data: bytes
                                     ) -> None:
    f = tmp_path / name
    f.write_bytes(data)
    run = store.run("policy", "set", f)
    assert run.code == 3, str(run)


def test_policy_directory_and_loop_refused(store: Store, tmp_path: Path) -> None:
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    d = tmp_path / "dir.json"
    d.mkdir()
    for path, code in ((d, 2), (loop, 4)):
        run = store.run("policy", "set", path)
        assert run.code == code, str(run)
        assert "Errno" not in run.err, str(run)


def _modelseal(tmp_path: Path, timeout: float, *args: str, **extra: str) -> str:
    """`modelseal ARGS` (a real process, a bare environment plus ``extra``); "timeout" if
    it has not ended within ``timeout`` seconds (it is then killed), else its exit code
    and stderr."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path),
           **extra}
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from cli._entry import modelseal; modelseal()", *args],
            cwd=REPO, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout"
    return f"exit {done.returncode}: {done.stderr.decode('utf-8', 'replace')}"


@pytest.fixture
def sealed(tmp_path: Path) -> Store:
    """A store whose keys are encrypted (MODELSEAL_KEY_PASSPHRASE at init)."""
    return init_store(tmp_path, env={"MODELSEAL_KEY_PASSPHRASE": "correct horse battery"})


def _register(store: Store, tmp_path: Path, source: Path, timeout: float) -> str:
    return _modelseal(tmp_path, timeout, "register", "fraud_scoring", *MODEL,
                      MODELSEAL_STORE=str(store.dir), MODELSEAL_KEY=str(store.admin_key),
                      MODELSEAL_LOG_KEY=str(store.log_key),
                      MODELSEAL_KEY_PASSPHRASE_FILE=str(source))


# Held: the passphrase file read right opens the encrypted keys (the bytes the file
# holds, less its line end).
def test_passphrase_file_opens_sealed_keys(sealed: Store, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"correct horse battery\r\n")
    outcome = _register(sealed, tmp_path, pw, timeout=60)
    assert outcome.startswith("exit 0"), outcome


# FINDING (low): cli/infile.py:24 opens a passphrase (or policy, payload, witness) file
# with a blocking open, so MODELSEAL_KEY_PASSPHRASE_FILE naming a FIFO that nobody
# writes (a secrets agent that is not running) hangs `modelseal` for ever; the key files
# themselves are opened O_NONBLOCK for exactly this reason (ledger/keys.py
# _read_private), and "every wait is bounded". Expected: refused at once (exit 2).
def test_passphrase_file_fifo_without_writer_does_not_hang(sealed: Store, tmp_path: Path
                                                           ) -> None:
    fifo = tmp_path / "pass.fifo"
    os.mkfifo(fifo)
    outcome = _register(sealed, tmp_path, fifo, timeout=20)
    assert outcome != "timeout", "modelseal register hung on a FIFO with no writer"


# Held: a passphrase file of /dev/zero is refused after the bound, not swallowed.
def test_passphrase_file_dev_zero_refused(sealed: Store, tmp_path: Path) -> None:
    outcome = _register(sealed, tmp_path, Path("/dev/zero"), timeout=60)
    assert outcome.startswith("exit 2") and "larger than" in outcome, outcome


# FINDING (medium): cli/cmd_keys.py:35 `_new_passphrase` reads only
# MODELSEAL_KEY_PASSPHRASE, so `modelseal init` (and keygen) under
# MODELSEAL_KEY_PASSPHRASE_FILE -- the form docs/deploy.md recommends, and the one every
# later command reads -- writes the log and admin keys UNENCRYPTED, silently (exit 0);
# `witness keygen` does honour the _FILE form. Expected: the keys encrypted with the
# file's passphrase (or a refusal).
def test_init_under_passphrase_file_encrypts_the_keys(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"correct horse battery\n")
    outcome = _modelseal(tmp_path, 60, "init", str(tmp_path / "s"), "--origin",
                         "example.com/att21", MODELSEAL_KEY_PASSPHRASE_FILE=str(pw))
    assert outcome.startswith("exit 0"), outcome
    keys = sorted((tmp_path / "s-keys").glob("*.key"))
    assert len(keys) == 2, keys
    for key in keys:
        assert b"ENCRYPTED" in key.read_bytes(), f"{key} written in the clear"


# Held: `--payload -` with standard input closed, ending in a NUL, or not UTF-8: a
# usage error (2) naming the cause, nothing recorded; exactly PAYLOAD_LIMIT bytes on a
# pipe is read whole (a pipe gives its bytes in pieces).
@pytest.mark.parametrize(("stdin", "data", "fragment"), [
    ("closed", b"", "closed"),
    ("data", b'{"a": 1}\x00', "not valid JSON"),
    ("data", b'\xff{"a": 1}', "not valid UTF-8"),
])
def test_payload_stdin_hostile(store: Store, stdin: str, data: bytes, fragment: str) -> None:
    before = store.state()
    done = run([*WRITER, *EVENT, "--payload", "-"], stdin=stdin, input=data,
               extra_env=store.env)
    assert done.code == 2 and fragment in done.err, str(done)
    assert "Traceback" not in done.err, str(done)
    assert store.state() == before


def test_payload_stdin_pipe_at_the_bound(store: Store) -> None:
    data = _padded(b'{"auc": 0.5}', PAYLOAD_LIMIT)
    done = run([*WRITER, *EVENT, "--payload", "-"], stdin="data", input=data,
               extra_env=store.env)
    assert done.code == 0, str(done)
    over = run([*WRITER, *EVENT, "--payload", "-"], stdin="data", input=data + b" ",
               extra_env=store.env)
    assert over.code == 2 and "larger than" in over.err, str(over)
