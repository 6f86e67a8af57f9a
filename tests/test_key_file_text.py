"""A key file's text: CRLF line ends, a UTF-8 BOM, and blank lines or spaces before its
first line or after its END line (what a secret store or a Windows editor may add) are the
same key; anything else still is not."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import ActorKey
from ledger.errors import KeyFileError, WrongPassphraseError

PASS = "correct horse battery"


def _saved(d: Path, passphrase: str | None) -> tuple[ActorKey, bytes]:
    key = ActorKey.generate("ml-pipeline")
    path = key.save(d / "k.key", passphrase)
    return key, path.read_bytes()


def _load(d: Path, data: bytes, passphrase: str | None) -> ActorKey:
    path = d / "copy.key"
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    path.chmod(0o600)
    return ActorKey.load(path, passphrase)


@settings(max_examples=30, deadline=None)
@given(crlf=st.booleans(), tail=st.text(" \t\n", max_size=6), bom=st.booleans(),
       lead=st.text(" \t\n", max_size=4), passphrase=st.sampled_from([None, PASS]))
def test_line_ends_and_blank_space_around_load_the_same_key(
        crlf: bool, tail: str, bom: bool, lead: str, passphrase: str | None) -> None:
    with tempfile.TemporaryDirectory() as d:
        key, data = _saved(Path(d), passphrase)
        text = ("\ufeff" if bom else "").encode() + lead.encode() + data + tail.encode()
        if crlf:
            text = text.replace(b"\n", b"\r\n")
        loaded = _load(Path(d), text, passphrase)
        assert loaded.vkey == key.vkey and loaded.name == key.name


@pytest.mark.parametrize("passphrase", [None, PASS])
def test_changes_inside_the_text_are_still_refused(tmp_path: Path,
                                                   passphrase: str | None) -> None:
    _, data = _saved(tmp_path, passphrase)
    lines = data.split(b"\n")
    body = lines.index(next(x for x in lines if x.startswith(b"-----BEGIN"))) + 1
    spaced = b"\n".join(lines[:body] + [lines[body] + b" "] + lines[body + 1:])
    with pytest.raises(KeyFileError):
        _load(tmp_path, spaced, passphrase)  # a space inside the block
    with pytest.raises(KeyFileError):
        _load(tmp_path, b"x\n" + data, passphrase)  # text before the magic
    with pytest.raises(KeyFileError):
        _load(tmp_path, data + b"x\n", passphrase)  # text after the END line
    if passphrase is not None:  # the authenticated head: a changed name does not open
        renamed = data.replace(b"name: ml-pipeline", b"name: ml-pipelinf")
        with pytest.raises(WrongPassphraseError):
            _load(tmp_path, renamed, passphrase)
