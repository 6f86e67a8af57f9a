"""Issue 9, point 7: the writer's local attack surface. The signature helper cannot be
replaced from the working directory and gets no secrets; key files use scrypt and an
AEAD, refuse short passphrases, downgrades, v1 files and non-regular files."""

from __future__ import annotations

import base64
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
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
from ledger.sigcheck import START_AT, helper_command, helper_env
from tests.ledger_support import Clock, Keys, fingerprint, make_ledger, register

REPO = Path(__file__).resolve().parent.parent
PW = "correct horse battery"

# A stand-in for the helper that answers "all verify" to every frame, and leaves a mark.
EVIL_WORKER = textwrap.dedent('''
    import os, struct, sys
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "PWNED"), "w").close()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while head := inp.read(4):
        (count,) = struct.unpack(">I", head)
        for _ in range(count):
            key, sig, size = struct.unpack(">32s64sI", inp.read(100))
            inp.read(size)
        out.write(struct.pack(">I", 0))
        out.flush()
''')


def plant_evil_ledger(where: Path) -> None:
    """A ``ledger`` package in ``where`` whose sigworker says every signature verifies."""
    pkg = where / "ledger"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sigworker.py").write_text(EVIL_WORKER)


def _frame(items: list[tuple[bytes, bytes, bytes]]) -> bytes:
    parts = [struct.pack(">I", len(items))]
    for key, sig, msg in items:
        parts.append(struct.pack(">32s64sI", key, sig, len(msg)) + msg)
    return b"".join(parts)


def _bad_item() -> tuple[bytes, bytes, bytes]:
    key = ActorKey.generate("x")
    sig = bytearray(key.sign(b"message"))
    sig[0] ^= 1
    return key.public_bytes, bytes(sig), b"message"


# -- the helper -----------------------------------------------------------------------------


def test_point7_evil_ledger_in_cwd_would_replace_a_plain_m_helper(tmp_path: Path) -> None:
    """The threat is real: ``python -m ledger.sigworker`` in that directory runs the
    planted module, which calls a bad signature good; the helper's command does not."""
    plant_evil_ledger(tmp_path)
    frame = _frame([_bad_item()])
    env = {**helper_env(os.environ), "PYTHONPATH": str(tmp_path)}
    old = subprocess.run([sys.executable, "-m", "ledger.sigworker"], input=frame, cwd=tmp_path,
                         capture_output=True, timeout=60, env=env, check=False)
    assert old.stdout == struct.pack(">I", 0) and (tmp_path / "PWNED").exists()
    (tmp_path / "PWNED").unlink()
    new = subprocess.run(helper_command(), input=frame, cwd=tmp_path, capture_output=True,
                         timeout=60, env=env, check=False)
    assert new.returncode == 0, new.stderr
    assert new.stdout == struct.pack(">II", 1, 0)  # one failure, at position 0
    assert not (tmp_path / "PWNED").exists()


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
    plant_evil_ledger(work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("PYTHONPATH", str(work))
    monkeypatch.setenv("MODELSEAL_KEY_PASSPHRASE", "hunter2-hunter2-secret")
    monkeypatch.setenv("MODELSEAL_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-children")
    monkeypatch.delenv("MODELSEAL_SIGNATURE_HELPER", raising=False)
    yield work


def test_point7_bad_signature_in_a_big_batch_is_caught_despite_an_evil_cwd(
        tmp_path: Path, hostile_cwd: Path) -> None:
    keys = Keys()
    with make_ledger(tmp_path / "store", keys, Clock()) as led:
        register(led, "fraud")
        before = fingerprint(led)
        _corrupt_one(led, at=START_AT + 40)  # a check the helper answers
        with pytest.raises(v.SignatureError, match="does not verify"):
            with led.batch():
                for i in range(START_AT + 100):
                    led.record("fraud", event="retrained", payload={"i": i})
        assert led._helper.running  # the helper was in use, and was not fooled
        assert fingerprint(led) == before
        assert [s.event_type for s in led.history("fraud")] == ["registered"]
    assert not (hostile_cwd / "PWNED").exists()


def test_point7_helper_environment_holds_no_secrets(tmp_path: Path, hostile_cwd: Path) -> None:
    """The running helper's /proc environ and command line: -I, no MODELSEAL_*, no secret."""
    with make_ledger(tmp_path / "store", Keys(), Clock()) as led:
        register(led, "fraud")
        with led.batch():
            for i in range(START_AT + 10):
                led.record("fraud", event="retrained", payload={"i": i})
        proc = led._helper._proc
        assert proc is not None and proc.poll() is None
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        cwd = os.readlink(f"/proc/{proc.pid}/cwd")
    names = {item.split(b"=", 1)[0].decode() for item in environ.split(b"\0") if item}
    assert not {n for n in names if n not in ("PATH", "LANG") and not n.startswith("LC_")}
    assert b"hunter2" not in environ and b"not-for-children" not in environ
    assert cmdline[1] == b"-I" and cwd == "/"


def test_point7_helper_env_and_command() -> None:
    env = helper_env({"PATH": "/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "HOME": "/root",
                      "MODELSEAL_KEY_PASSPHRASE": "s3cret-s3cret", "MODELSEAL_LOG_KEY": "/k",
                      "PYTHONPATH": ".", "PYTHONSTARTUP": "/x.py", "LD_PRELOAD": "/evil.so",
                      "GITHUB_TOKEN": "t"})
    assert env == {"PATH": "/bin", "LANG": "C.UTF-8", "LC_ALL": "C"}
    cmd = helper_command()
    assert cmd[:3] == [sys.executable, "-I", "-c"]
    assert Path(cmd[4]) == REPO  # this checkout: where the tests imported ledger from


@pytest.mark.slow
def test_point7_helper_from_a_normal_install(tmp_path: Path) -> None:
    """``pip install .`` into a fresh venv: from a hostile directory, a big batch starts
    the helper from site-packages and a bad signature is still refused."""
    src = tmp_path / "src"
    src.mkdir()
    for part in ("verifier", "ledger", "cli"):
        shutil.copytree(REPO / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, src / part)
    venv = tmp_path / "venv"
    env = {k: val for k, val in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert made.returncode == 0, made.stderr
    py = str(venv / "bin" / "python")
    inst = subprocess.run([py, "-m", "pip", "install", "-q", str(src)], capture_output=True,
                          text=True, timeout=600, env=env, check=False)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    work = tmp_path / "work"
    work.mkdir()
    plant_evil_ledger(work)
    script = textwrap.dedent(f'''
        import ledger, verifier as v
        from ledger import ActorKey, Ledger, LogKey
        from ledger.sigcheck import START_AT
        led = Ledger.create({str(tmp_path / "store")!r}, origin="example.com/m",
                            log_key=LogKey.generate(), admin=ActorKey.generate("a"))
        led.register(name="m", owner="o", model_type="t", tier="high", purpose="p")
        real, n = led.signer._signer, [0]
        class OneBad:
            def sign(self, m):
                n[0] += 1
                s = real.sign(m)
                return s if n[0] != START_AT + 40 else bytes([s[0] ^ 64]) + s[1:]
        led.signer._signer = OneBad()
        size = led.size
        try:
            with led.batch():
                for i in range(START_AT + 100):
                    led.record("m", event="e", payload={{"i": i}})
        except v.SignatureError:
            print("refused", led._helper.running, led.size == size)
        print(ledger.__file__)
        led.close()
    ''')
    # the parent runs -I, as an installed console script does (no cwd on its path); the
    # helper it starts must not pick up the planted package either
    run = subprocess.run([py, "-I", "-c", script], cwd=work, capture_output=True, text=True,
                         timeout=300, env=env, check=False)
    assert run.returncode == 0, run.stderr
    refused, where = run.stdout.splitlines()
    assert refused == "refused True True"
    assert Path(where).resolve().is_relative_to(venv.resolve())
    assert not (work / "PWNED").exists()


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
