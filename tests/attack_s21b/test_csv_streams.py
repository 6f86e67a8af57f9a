"""cli/output.emit_csv now writes UTF-8 bytes to stdout's buffer: what happens when that
stdout is a pipe whose reader left (`| head -1`), /dev/full, closed, or declared in another
encoding (PYTHONIOENCODING). Real processes, bounded."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.attack_s19.common import needs_full, run
from tests.attack_s21.common import WRITER
from tests.cli_support import MODEL, REPO, Store, init_store, ok

NAMES = ("μ", "\\u03bc", "modèle", "模型")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = init_store(tmp_path_factory.mktemp("csv"))
    for name in NAMES:
        ok(s.run("register", name, *MODEL))
    return s


def _no_trace(text: str) -> None:
    assert "Traceback" not in text and "internal error" not in text, text


# Held: whatever PYTHONIOENCODING says, the CSV is UTF-8 and every name exact.
@pytest.mark.parametrize("encoding", ["latin-1", "ascii", "utf-16", "cp1252:strict"])
def test_csv_is_utf8_whatever_the_declared_encoding(store: Store, encoding: str) -> None:
    done = subprocess.run([*WRITER, "inventory", "--csv"], cwd=REPO, capture_output=True,
                          timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": encoding,
                               **store.env})
    _no_trace(done.stderr.decode("utf-8", "replace"))
    assert done.returncode == 0, done.stderr
    cells = {line.split(b",")[0].decode("utf-8") for line in done.stdout.split(b"\r\n")[1:]
             if line}
    assert cells >= set(NAMES), cells


# Held: the reader gone (`| head -1` after its line): quiet, exit 0, as Unix tools do.
def test_csv_into_a_pipe_whose_reader_left(store: Store) -> None:
    done = run([*WRITER, "inventory", "--csv"], stdout="gone", extra_env=store.env)
    _no_trace(done.err)
    assert done.code == 0 and done.err == "", str(done)


def test_csv_into_head_1(store: Store) -> None:
    done = subprocess.run(
        ["/bin/sh", "-c", 'python3 -c "from cli._entry import modelseal; modelseal()" '
                          'inventory --csv | head -1'],
        cwd=REPO, capture_output=True, timeout=60, check=False,
        env={"PATH": f"{Path(__import__('sys').executable).parent}:/usr/bin:/bin",
             **store.env})
    _no_trace(done.stderr.decode("utf-8", "replace"))
    assert done.stdout.startswith(b"model,") and done.stdout.count(b"\n") == 1, done.stdout
    assert done.stderr == b"", done.stderr


# Held: a full disk is an I/O error (4) with a message, not a traceback or a success.
@needs_full
def test_csv_onto_a_full_disk(store: Store) -> None:
    done = run([*WRITER, "inventory", "--csv"], stdout="full", extra_env=store.env)
    _no_trace(done.err)
    assert done.code == 4, str(done)
    assert done.err.startswith("error: "), str(done)


# FINDING (low): cli/output.py:91 (click.echo) writes nothing and reports nothing when
# standard output is closed (`modelseal inventory --csv >&-`, a cron line that lost its
# redirection): sys.stdout is None and click.echo returns silently, so the CSV export
# "succeeds" (exit 0) with no output; the same holds for the table and --json reads.
# /dev/full, by contrast, is exit 4. Expected: exit 4 "cannot write the output".
def test_csv_with_stdout_closed(store: Store) -> None:
    done = run([*WRITER, "inventory", "--csv"], stdout="closed", extra_env=store.env)
    _no_trace(done.err)
    assert done.code != 0, str(done)
