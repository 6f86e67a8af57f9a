"""modelseal-verify: exit codes, OK/FAIL lines, --json, --trusted; in-process and as
`python -m verifier.cli`; never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import bundle_bytes, bundle_doc
from tests.logsim import T0, Signer, sample_log
from verifier import cli

REPO = Path(__file__).resolve().parent.parent
LOG, PIPE = sample_log(models=3, seed="cli")
VKEY = LOG.log_key.vkey
S = len(LOG.entries)
T = T0 + 6 * LOG.step + 1  # entries 0..6


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    good = LOG.bundle(T, trusted=4)
    doc = bundle_doc(good)
    doc["entries"][2], doc["entries"][3] = doc["entries"][3], doc["entries"][2]
    paths = {
        "good": d / "bundle.json", "tampered": d / "tampered.json", "garbage": d / "garbage.json",
        "trusted": d / "trusted.txt", "newer": d / "newer.txt", "bad_trusted": d / "bad.txt",
        "utf8": d / "utf8.json", "deep": d / "deep.json", "empty": d / "empty.json",
    }
    paths["good"].write_bytes(good)
    paths["tampered"].write_bytes(bundle_bytes(doc))
    paths["garbage"].write_bytes(b"this is not json\n")
    paths["trusted"].write_bytes(LOG.checkpoint(4))
    paths["newer"].write_bytes(LOG.checkpoint(S))
    paths["bad_trusted"].write_bytes(b"not a checkpoint\n")
    paths["utf8"].write_bytes(b'{"format":"modelseal-bundle","version":1,"checkpoint":"\xff"}')
    paths["deep"].write_bytes(b'{"format":' + b"[" * 100_000 + b"}")
    paths["empty"].write_bytes(b"")
    good_at_size = LOG.bundle(T, size=6)  # checkpoint 6 is older than trusted 'newer'
    paths["old"] = d / "old.json"
    paths["old"].write_bytes(good_at_size)
    return paths


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def run_sub(*args: str, stdin: bytes | None = None, cwd: Path = REPO) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "verifier.cli", *args], input=stdin,
                          capture_output=True, cwd=cwd, env=env, timeout=60, check=False)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in out + err
    return proc.returncode, out, err


# -- in process ------------------------------------------------------------------------------

def test_ok(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """A good bundle prints a line starting 'OK:' and exits 0."""
    code, out, _ = run_main(capsys, str(files["good"]), "--key", VKEY)
    assert code == 0
    assert out.startswith("OK: example.com/models: inventory as of ")
    assert "(entries 0..6 of " + str(S) + ")" in out
    assert "model_00" in out and "models: 3" in out


def test_json(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """--json prints one JSON document with ok true and the models."""
    code, out, _ = run_main(capsys, str(files["good"]), "--key", VKEY, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True
    assert [m["name"] for m in doc["models"]] == ["model_00", "model_01", "model_02"]
    assert doc["at"]["size"] == 7 and doc["checkpoint"]["size"] == S
    assert doc["origin"] == LOG.origin and doc["checks"]


def test_tampered(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """A tampered bundle prints 'FAIL:' with the error class and exits 1."""
    code, out, _ = run_main(capsys, str(files["tampered"]), "--key", VKEY)
    assert code == 1
    assert out.startswith("FAIL: RootMismatchError")


def test_tampered_json(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """In --json mode a failure is a JSON document with ok false."""
    code, out, _ = run_main(capsys, str(files["tampered"]), "--key", VKEY, "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc == {"ok": False, "error": "verification_failed", "reason": doc["reason"]}


def test_wrong_key(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """A valid key that did not sign the checkpoint: FAIL, exit 1."""
    other = Signer(LOG.origin, b"not-the-log").vkey
    code, out, _ = run_main(capsys, str(files["good"]), "--key", other)
    assert code == 1 and out.startswith("FAIL: SignatureError")


def test_several_keys(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """--key is repeatable; one right key suffices."""
    other = Signer("other", b"o").vkey
    code, out, _ = run_main(capsys, str(files["good"]), "--key", other, "--key", VKEY)
    assert code == 0 and out.startswith("OK:")


@pytest.mark.parametrize("name", ["garbage", "utf8", "deep", "empty"])
def test_malformed(capsys: pytest.CaptureFixture[str], files: dict[str, Path], name: str) -> None:
    """Unparseable bundles print 'FAIL: malformed input' and exit 3."""
    code, out, _ = run_main(capsys, str(files[name]), "--key", VKEY)
    assert code == 3
    assert out.startswith("FAIL: malformed input")


def test_malformed_json(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """--json reports malformed input as error 'malformed_input'."""
    code, out, _ = run_main(capsys, str(files["garbage"]), "--key", VKEY, "--json")
    assert code == 3 and json.loads(out)["error"] == "malformed_input"


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A bundle that cannot be read exits 4."""
    code, out, _ = run_main(capsys, str(tmp_path / "nope.json"), "--key", VKEY)
    assert code == 4 and out.startswith("FAIL: cannot read")
    code, out, _ = run_main(capsys, str(tmp_path / "nope.json"), "--key", VKEY, "--json")
    assert code == 4 and json.loads(out)["error"] == "io_error"


def test_directory_as_bundle(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A directory instead of a file is an I/O error."""
    code, _, _ = run_main(capsys, str(tmp_path), "--key", VKEY)
    assert code == 4


@pytest.mark.parametrize("key", ["", "nonsense", VKEY[:-1], VKEY.replace("+", " ", 1),
                                 VKEY + "=", "a" * 5000])
def test_bad_key(capsys: pytest.CaptureFixture[str], files: dict[str, Path], key: str) -> None:
    """A malformed --key is a usage error: exit 2, message on stderr."""
    code, out, err = run_main(capsys, str(files["good"]), "--key", key)
    assert code == 2 and "bad --key" in err and out == ""


def test_missing_key(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """Without --key argparse exits 2 with a usage message."""
    code, _, err = run_main(capsys, str(files["good"]))
    assert code == 2 and "--key" in err


def test_no_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    """No arguments at all: usage error, exit 2."""
    code, _, err = run_main(capsys)
    assert code == 2 and "usage" in err


def test_trusted(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """--trusted with an older checkpoint the bundle extends: OK and the check is listed."""
    code, out, _ = run_main(capsys, str(files["good"]), "--key", VKEY,
                            "--trusted", str(files["trusted"]))
    assert code == 0 and out.startswith("OK:")
    assert "extends the trusted checkpoint 4" in out


def test_trusted_json(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """--trusted shows up in the JSON output."""
    code, out, _ = run_main(capsys, str(files["good"]), "--key", VKEY, "--json",
                            "--trusted", str(files["trusted"]))
    assert code == 0 and json.loads(out)["trusted"]["size"] == 4


def test_trusted_newer(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """A bundle older than the trusted checkpoint fails: exit 1."""
    code, out, _ = run_main(capsys, str(files["old"]), "--key", VKEY,
                            "--trusted", str(files["newer"]))
    assert code == 1 and out.startswith("FAIL: ConsistencyError")


def test_trusted_without_proof(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """A trusted checkpoint the bundle carries no proof from: exit 1."""
    code, out, _ = run_main(capsys, str(files["old"]), "--key", VKEY,
                            "--trusted", str(files["trusted"]))
    assert code == 1 and out.startswith("FAIL: ConsistencyError")


def test_trusted_malformed(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """A --trusted file that is not a checkpoint: exit 3."""
    code, out, _ = run_main(capsys, str(files["good"]), "--key", VKEY,
                            "--trusted", str(files["bad_trusted"]))
    assert code == 3 and out.startswith("FAIL: malformed input")


def test_trusted_missing(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                         tmp_path: Path) -> None:
    """A --trusted file that cannot be read: exit 4."""
    code, _, _ = run_main(capsys, str(files["good"]), "--key", VKEY,
                          "--trusted", str(tmp_path / "missing.txt"))
    assert code == 4


def test_example_files(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped examples verify, with their trusted checkpoint."""
    key = (REPO / "examples" / "log.vkey").read_text().strip()
    code, out, _ = run_main(capsys, str(REPO / "examples" / "bundle.json"), "--key", key,
                            "--trusted", str(REPO / "examples" / "trusted-checkpoint.txt"))
    assert code == 0 and out.startswith("OK:")


# -- as a subprocess ----------------------------------------------------------------------

def test_sub_ok(files: dict[str, Path]) -> None:
    """python -m verifier.cli: OK, exit 0."""
    code, out, err = run_sub(str(files["good"]), "--key", VKEY)
    assert code == 0 and out.startswith("OK:") and err == ""


def test_sub_json_stdin(files: dict[str, Path]) -> None:
    """The bundle may come on stdin as '-'."""
    code, out, _ = run_sub("-", "--key", VKEY, "--json", stdin=files["good"].read_bytes())
    assert code == 0 and json.loads(out)["ok"] is True


def test_sub_failures(files: dict[str, Path], tmp_path: Path) -> None:
    """Subprocess exit codes: 1 tampered, 3 malformed, 4 missing, 2 bad/missing key."""
    assert run_sub(str(files["tampered"]), "--key", VKEY)[0] == 1
    assert run_sub(str(files["deep"]), "--key", VKEY)[0] == 3
    assert run_sub(str(files["utf8"]), "--key", VKEY)[0] == 3
    assert run_sub(str(tmp_path / "nope"), "--key", VKEY)[0] == 4
    assert run_sub(str(files["good"]), "--key", "garbage")[0] == 2
    assert run_sub(str(files["good"]))[0] == 2


def test_sub_trusted(files: dict[str, Path]) -> None:
    """--trusted through the subprocess."""
    code, out, _ = run_sub(str(files["good"]), "--key", VKEY, "--trusted", str(files["trusted"]))
    assert code == 0 and "extends the trusted checkpoint" in out


def test_sub_undecodable_key(files: dict[str, Path]) -> None:
    """A --key argument that is not valid UTF-8 is a usage error, not a crash."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    key = b"\xff" + VKEY.encode()[VKEY.index("+"):]
    proc = subprocess.run([sys.executable.encode(), b"-m", b"verifier.cli",
                           str(files["good"]).encode(), b"--key", key],
                          capture_output=True, cwd=REPO, env=env, timeout=60, check=False)
    assert proc.returncode == 2
    assert b"Traceback" not in proc.stdout + proc.stderr
    assert b"bad --key" in proc.stderr


def test_sub_help() -> None:
    """--help documents the exit codes."""
    code, out, _ = run_sub("--help")
    assert code == 0 and "Exit codes" in out and "--trusted" in out


def test_bad_key_json(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    """With --json a bad --key is still exit 2, reported as a JSON usage error."""
    code, out, _ = run_main(capsys, str(files["good"]), "--key", "nonsense", "--json")
    assert code == 2
    doc = json.loads(out)
    assert doc["ok"] is False and doc["error"] == "usage" and "bad --key" in doc["reason"]
