"""`modelseal-verify --trusted FILE` (verifier/cli.py _read_note), now read up to
MAX_NOTE_SIZE: at the bound and over it, /dev/zero, a directory, a FIFO nobody writes,
and `-` for both the bundle and --trusted."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ledger import LogKey
from tests.attack_s21.common import VERIFY, proc
from tests.cli_support import REPO
from verifier.note import MAX_NOTE_SIZE


@pytest.fixture(scope="module")
def vkey() -> str:
    return LogKey.generate("example.com/att21").vkey


def _trusted(vkey: str, trusted: Path | str, bundle: str = os.devnull) -> tuple[int, str]:
    done = proc([*VERIFY, bundle, "--key", vkey, "--trusted", str(trusted)], timeout=60)
    assert "Traceback" not in done.out + done.err, str(done)
    return done.code, done.out + done.err


# Held: exactly MAX_NOTE_SIZE bytes is read (and found malformed as a note: 3, not
# "larger than"); one byte more, and /dev/zero, are refused as too large (3); a
# directory is an I/O error (4).
def test_trusted_at_the_bound_and_over(vkey: str, tmp_path: Path) -> None:
    f = tmp_path / "cp"
    f.write_bytes(b"a" * MAX_NOTE_SIZE)
    code, text = _trusted(vkey, f)
    assert code == 3 and "larger than" not in text, text
    f.write_bytes(b"a" * (MAX_NOTE_SIZE + 1))
    code, text = _trusted(vkey, f)
    assert code == 3 and "larger than" in text, text
    code, text = _trusted(vkey, "/dev/zero")
    assert code == 3 and "larger than" in text, text
    code, text = _trusted(vkey, tmp_path)
    assert code == 4, text


# FINDING (low): verifier/cli.py:138 opens --trusted with a blocking open(), so a FIFO
# that nobody writes (`--trusted <(cmd)` whose cmd failed to start, a wrong path) hangs
# modelseal-verify for ever; "every wait is bounded", and ledger/keys.py opens its files
# O_NONBLOCK for this reason. Expected: refused at once (exit 4 or 2).
def test_trusted_fifo_without_writer_does_not_hang(vkey: str, tmp_path: Path) -> None:
    fifo = tmp_path / "cp.fifo"
    os.mkfifo(fifo)
    try:
        subprocess.run([*VERIFY, os.devnull, "--key", vkey, "--trusted", str(fifo)],
                       cwd=REPO, capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("modelseal-verify hung on a --trusted FIFO with no writer")


# FINDING (low): verifier/cli.py:135 lets both the bundle and --trusted be `-`: the
# trusted note then swallows standard input (up to 1 MiB, the bundle included) and the
# run fails as "malformed input" (3) on the checkpoint, which tells the user nothing
# about the cause. Expected: a usage error (2): only one of them can read standard input.
def test_bundle_and_trusted_both_stdin_is_a_usage_error(vkey: str, tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.write_bytes(b'{"bundle": "whatever"}\n')
    done = proc([*VERIFY, "-", "--key", vkey, "--trusted", "-"], stdin=data, timeout=60)
    assert "Traceback" not in done.err, str(done)
    assert done.code == 2, str(done)
