"""Issue 9, point 7: the writer's local attack surface. Writes start no child process
(issue 10: signature checks run on threads), so nothing is imported from the working
directory and no secret is passed on; key files use scrypt and an AEAD, refuse short
passphrases, downgrades, v1 files and non-regular files."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import verifier as v
from ledger import (
    ActorKey, EncryptedKeyError, InsecureKeyFileError, KeyFileError, Ledger, LogKey,
    WrongPassphraseError,
)
from ledger import keys as lkeys
from tests.ledger_support import Clock, Keys, fingerprint, make_ledger, register

REPO = Path(__file__).resolve().parent.parent
PW = "correct horse battery"

def _corrupt_one(led: Ledger, at: int) -> None:
    """The ledger's signer makes a bad signature for its ``at``-th signature only."""
    signer = led.signer
    assert signer is not None
    real, count = signer._signer, [0]

    class OneBad:
        def sign(self, message: bytes) -> bytes:
            count[0] += 1
            sig = real.sign(message)
            return sig if count[0] != at else bytes([sig[0] ^ 0x40]) + sig[1:]

    signer._signer = OneBad()  # type: ignore[assignment]


@pytest.fixture
def hostile_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working directory holds a planted ``ledger`` package, PYTHONPATH points at it,
    and secrets are in the environment."""
    work = tmp_path / "work"
    work.mkdir()
    pkg = work / "ledger"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("open('PWNED', 'w').close()\n")
    monkeypatch.chdir(work)
    monkeypatch.setenv("PYTHONPATH", str(work))
    monkeypatch.setenv("MODELSEAL_KEY_PASSPHRASE", "hunter2-hunter2-secret")
    yield work


def test_point7_writes_start_no_child_process(tmp_path: Path, hostile_cwd: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 replaced the signature helper process with threads: no write, batch or
    big batch starts a child process, so none can import from the working directory or
    inherit a secret. A bad signature in a big batch is still refused."""
    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("a write started a child process")

    monkeypatch.setattr(subprocess, "Popen", no_child)
    monkeypatch.setattr(os, "fork", no_child)
    monkeypatch.setattr(os, "posix_spawn", no_child)
    keys = Keys()
    with make_ledger(tmp_path / "store", keys, Clock()) as led:
        register(led, "fraud")
        led.record("fraud", event="one")
        with led.batch():
            for i in range(700):
                led.record("fraud", event="retrained", payload={"i": i})
        before = fingerprint(led)
        _corrupt_one(led, at=450)
        with pytest.raises(v.SignatureError, match="does not verify"):
            with led.batch():
                for i in range(700):
                    led.record("fraud", event="retrained", payload={"i": i})
        assert fingerprint(led) == before
    assert not (hostile_cwd / "PWNED").exists()


# -- key files ------------------------------------------------------------------------------


def test_point7_scrypt_costs_at_least_100_ms() -> None:
    t = time.perf_counter()
    lkeys._kdf(b"x" * 12, b"s" * 16, lkeys.SCRYPT_N, lkeys.SCRYPT_R, lkeys.SCRYPT_P)
    assert time.perf_counter() - t >= 0.1


def test_point7_encrypted_key_file_round_trip_and_format(tmp_path: Path) -> None:
    key = ActorKey.generate("ml-pipeline")
    path = key.save(tmp_path / "a.key", PW)
    text = path.read_text()
    assert text.startswith("modelseal-key v2\nkind: actor\nname: ml-pipeline\n"
                           f"kdf: scrypt n={lkeys.SCRYPT_N} r=8 p=1 salt=")
    assert "-----BEGIN ENCRYPTED ED25519 SEED-----" in text
    seed = key._private.private_bytes_raw()
    assert base64.b64encode(seed).decode() not in text
    assert ActorKey.load(path, PW).vkey == key.vkey
    assert ActorKey.load(path, PW.encode()).vkey == key.vkey
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        ActorKey.load(path, PW + "!")
    for missing in (None, "", b""):
        with pytest.raises(EncryptedKeyError, match="is encrypted"):
            ActorKey.load(path, missing)


def test_point7_plain_key_file(tmp_path: Path) -> None:
    key = LogKey.generate("example.com/models")
    path = key.save(tmp_path / "log.key")
    assert "ENCRYPTED" not in path.read_text()
    assert LogKey.load(path).vkey == key.vkey
    with pytest.raises(KeyFileError, match="not encrypted"):
        LogKey.load(path, PW)


@pytest.mark.parametrize("short", ["", "a", "x" * 11, b"y" * 11])
def test_point7_short_passphrase_refused_at_save(tmp_path: Path, short: str | bytes) -> None:
    path = tmp_path / "a.key"
    if not short:  # empty means no encryption, as before
        ActorKey.generate("a").save(path, short)
        assert "ENCRYPTED" not in path.read_text()
        return
    with pytest.raises(ValueError, match="at least 12 characters"):
        ActorKey.generate("a").save(path, short)
    assert not path.exists()
    ActorKey.generate("a").save(path, "x" * 12)  # twelve is enough


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("old,new", [
    (f"n={lkeys.SCRYPT_N} ", "n=16384 "), (" r=8 ", " r=1 "), (" r=8 ", " r=9 "),
    ("kind: actor\nname: a\n", "kind: actor\nname: b\n"),
])
def test_point7_header_edits_are_refused(tmp_path: Path, old: str, new: str) -> None:
    """A cheaper scrypt is refused before any work; any other header edit breaks the AEAD."""
    path = ActorKey.generate("a").save(tmp_path / "a.key", PW)
    _edit(path, old, new)
    with pytest.raises(KeyFileError) as info:
        ActorKey.load(path, PW)
    if "n=16384" in new or "r=1" in new:
        assert "cheaper" in str(info.value) and not isinstance(info.value, WrongPassphraseError)
    else:
        assert isinstance(info.value, WrongPassphraseError)


def test_point7_absurd_scrypt_cost_refused(tmp_path: Path) -> None:
    path = ActorKey.generate("a").save(tmp_path / "a.key", PW)
    _edit(path, f"n={lkeys.SCRYPT_N} ", f"n={2**30} ")
    with pytest.raises(KeyFileError, match="1 GiB"):
        ActorKey.load(path, PW)


def test_point7_v1_key_file_refused_with_a_clear_error(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"x"))
    path = tmp_path / "old.key"
    path.write_bytes(b"modelseal-key v1\nkind: actor\nname: a\n" + pem)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"old \(v1\) key file.*make a new key"):
        ActorKey.load(path, "x")


def test_point7_directory_and_fifo_refused_as_key_files(tmp_path: Path) -> None:
    d = tmp_path / "dir.key"
    d.mkdir(mode=0o700)
    with pytest.raises(InsecureKeyFileError, match="is a directory") as info:
        ActorKey.load(d)
    assert "chmod" not in str(info.value)
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(InsecureKeyFileError, match="not a regular file"):
        ActorKey.load(fifo)  # and does not hang waiting for a writer


def test_point7_open_file_is_insecure(tmp_path: Path) -> None:
    path = ActorKey.generate("a").save(tmp_path / "a.key")
    path.chmod(0o640)
    with pytest.raises(InsecureKeyFileError, match="chmod 600"):
        ActorKey.load(path)


def test_point7_damaged_sealed_key_is_refused(tmp_path: Path) -> None:
    path = ActorKey.generate("a").save(tmp_path / "a.key", PW)
    text = path.read_text()
    body = re.search(r"-----\n(.+)\n-----END", text)
    assert body is not None
    raw = bytearray(base64.b64decode(body.group(1)))
    raw[20] ^= 1
    path.write_text(text.replace(body.group(1), base64.b64encode(bytes(raw)).decode()))
    with pytest.raises(WrongPassphraseError):
        ActorKey.load(path, PW)
