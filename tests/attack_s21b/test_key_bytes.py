"""ledger/keys.py reading key files whose bytes a copy-paste, an editor or a CI secret
store changed: CRLF (accepted today), CR alone, CR CR LF, a BOM, trailing NULs, blank
space before the magic. Each either loads the same key or is refused as a KeyFileError
(never another exception)."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import ActorKey, LogKey
from ledger.errors import KeyFileError
from ledger.keys import WitnessSigner

PASS = "correct horse battery staple"


def _saved(tmp_path: Path, encrypted: bool) -> tuple[ActorKey, Path, str | None]:
    key = ActorKey.generate("ml-pipeline")
    path = tmp_path / "k.key"
    key.save(path, PASS) if encrypted else key.save(path)
    return key, path, PASS if encrypted else None


def _rewrite(path: Path, change: Callable[[bytes], bytes]) -> None:
    data = change(path.read_bytes())
    os.chmod(path, 0o600)
    path.write_bytes(data)


# Held: CRLF line ends, and blank lines or spaces after END, load the same key, plain
# or encrypted (the head that the encryption authenticates is read back as written).
@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("change", [
    lambda d: d.replace(b"\n", b"\r\n"),
    lambda d: d + b"\n\n  \t\n",
    lambda d: d.replace(b"\n", b"\r\n") + b"\r\n\r\n",
], ids=["crlf", "blank-after", "crlf-blank-after"])
def test_line_end_variants_load_the_same_key(tmp_path: Path, encrypted: bool,
                                             change: Callable[[bytes], bytes]) -> None:
    key, path, pw = _saved(tmp_path, encrypted)
    _rewrite(path, change)
    assert ActorKey.load(path, pw).vkey == key.vkey


# Held: damage that is not a line-end convention is refused as a KeyFileError.
@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("change", [
    lambda d: d.replace(b"\n", b"\r"),              # classic Mac line ends
    lambda d: d.replace(b"\n", b"\r\r\n"),          # CRLF converted twice
    lambda d: d + b"\x00\x00",                      # trailing NULs
    lambda d: d.replace(b"\n", b"\n\x00", 1),       # a NUL in the head
    lambda d: d + b"\r",                            # a lone CR after END
    lambda d: d.replace(b"-----END", b"\n-----END"),  # blank line inside the block
], ids=["cr", "crcrlf", "nul-tail", "nul-head", "cr-tail", "blank-in-block"])
def test_other_damage_is_a_key_file_error(tmp_path: Path, encrypted: bool,
                                          change: Callable[[bytes], bytes]) -> None:
    _, path, pw = _saved(tmp_path, encrypted)
    _rewrite(path, change)
    with pytest.raises(KeyFileError):
        ActorKey.load(path, pw)


# Held: an encrypted file's head cannot be edited through the CRLF allowance: a CR added
# inside a head line (not before LF) is refused, not silently dropped.
def test_cr_inside_a_head_line_is_refused(tmp_path: Path) -> None:
    _, path, pw = _saved(tmp_path, True)
    _rewrite(path, lambda d: d.replace(b"name: ml-pipeline", b"name: ml-pipe\rline"))
    with pytest.raises(KeyFileError):
        ActorKey.load(path, pw)


# FINDING (low): ledger/keys.py:184-190 accepts CRLF "a secret pasted on Windows" but not
# the UTF-8 byte-order mark that Windows PowerShell 5 (`Set-Content -Encoding UTF8`,
# `Out-File -Encoding utf8`) puts at the start of the same file, nor a blank line before
# the magic (a secret pasted with a leading newline): "is not a modelseal actor key
# file", though the bytes after the BOM/blank line are the very file `save` wrote.
# Expected: the same key, as for CRLF and trailing blank lines.
@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"\n", b"\r\n"], ids=["bom", "lf", "crlf"])
def test_leading_bom_or_blank_line_loads_the_same_key(tmp_path: Path, prefix: bytes) -> None:
    key, path, pw = _saved(tmp_path, False)
    _rewrite(path, lambda d: prefix + d)
    assert ActorKey.load(path, pw).vkey == key.vkey


# Held: one `load` on the base: each class loads its own kind only (a log key file is no
# actor key, a witness file no log key), and returns its own class.
def test_load_keeps_kinds_apart(tmp_path: Path) -> None:
    log = LogKey.generate("example.com/att21")
    log.save(tmp_path / "log.key")
    wit = WitnessSigner.generate("witness.example/w1")
    wit.save(tmp_path / "w.key")
    assert type(LogKey.load(tmp_path / "log.key")) is LogKey
    assert type(WitnessSigner.load(tmp_path / "w.key")) is WitnessSigner
    for cls, path in ((ActorKey, "log.key"), (LogKey, "w.key"), (WitnessSigner, "log.key")):
        with pytest.raises(KeyFileError):
            cls.load(tmp_path / path)
