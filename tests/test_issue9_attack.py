"""Issue 9: what attacking the change found, each fixed at its root and pinned here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import verifier as v
from tests.logsim import DAY, T0, Log, sample_log
from verifier.names import name_problem

REPO = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = {k: x for k, x in os.environ.items() if not k.startswith("MODELSEAL_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _verify(*args: object, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "from verifier.startup import run_verifier; run_verifier()",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(), cwd=REPO, **kw)  # type: ignore[call-overload]


def test_point8_report_never_replaces_a_device_link_or_pipe(tmp_path: Path) -> None:
    """`--report /dev/null` as root replaced the device with a regular file: anything at the
    path that is not a regular file is refused (exit 2) and left as it was."""
    log, _ = sample_log(models=2)
    bundle = tmp_path / "b.json"
    bundle.write_bytes(log.bundle(T0 + DAY))
    fifo, link = tmp_path / "fifo", tmp_path / "link"
    os.mkfifo(fifo)
    link.symlink_to(tmp_path / "elsewhere.html")
    for target in (fifo, link):
        proc = _verify(bundle, "--key", log.log_key.vkey, "--report", target)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, err
        assert b"--report must name a regular file" in err
    assert fifo.is_fifo() and link.is_symlink() and not (tmp_path / "elsewhere.html").exists()
    report = tmp_path / "r.html"
    report.write_text("old")
    proc = _verify(bundle, "--key", log.log_key.vkey, "--report", report)
    assert proc.communicate(timeout=60) and proc.returncode == 0
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_point8_ctrl_c_during_verification_is_quiet(tmp_path: Path) -> None:
    """SIGINT while replaying gave a traceback: now `interrupted` and exit 130."""
    log = Log.create(seed="big")
    pipe = log.admin
    log.submit(pipe, "register", name="m", owner="o", model_type="t", tier="high",
               purpose="p", status="active", metadata={})
    log.step = 1_000
    for i in range(30_000):
        log.submit(pipe, "event", model="m", event_type="retrained", payload={"i": i})
    bundle = tmp_path / "big.json"
    bundle.write_bytes(log.bundle(log.clock - 1))
    proc = _verify(bundle, "--key", log.log_key.vkey)
    time.sleep(1.5)  # imports done, replay running (30,000 entries take several seconds)
    assert proc.poll() is None, "verification ended before the interrupt: make it longer"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"interrupted" in err and not out


@pytest.mark.parametrize("name", [
    "mode\u01c0_a",          # LATIN LETTER DENTAL CLICK, looks like l
    "fraud_scor\u0131ng",    # dotless i
    "\u01f3ebt",             # the dz ligature
    "fil\u0133",             # the ij ligature
    "ca\u017fe",             # long s
    "fraud\u4e00scoring",    # Han 'one' used as a dash between Latin letters
    "GPT\u30e2\u30c7\u30eb",  # Latin with Kana
    "two  spaces",           # two spaces look like one in HTML
])
def test_point4_lookalikes_found_by_attack_are_refused(name: str) -> None:
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["\u30e2\u30c7\u30eb\u4e00", "\u00e9t\u00e9_2025",
                                  "\u0219coal\u0103", "m\u00f4 h\u00ecnh_\u1ea1"])
def test_point4_real_names_still_accepted(name: str) -> None:
    """Japanese, French, Romanian (s-comma below), Vietnamese."""
    assert name_problem(name) is None, name_problem(name)


def test_point4_name_fits_the_store() -> None:
    """200 Han characters were valid for replay but refused by the store (600 bytes): the
    profile bounds names in bytes too, so writer and verifier agree."""
    assert name_problem("\u4e00" * 133) is None
    assert "bytes" in (name_problem("\u4e00" * 134) or "")


def test_point4_retired_status_lookalike_refused() -> None:
    """`updated` with status 'ret\u0131red' showed as retired while the model was active."""
    assert name_problem("ret\u0131red") is not None


def test_point1_time_whole_log_checkpoint_covers_trusted() -> None:
    """Sanity for the trusted-checkpoint rules: an honest log and trusted checkpoint verify
    at every cut, below, at and above the trusted size."""
    log, _ = sample_log(models=3)
    keys = [log.log_key.key]
    honest = v.Checkpoint.parse_note(log.checkpoint(10), keys)
    for i in (3, 9, 10, 11, 20):
        t = v.parse_entry(log.entries[i]).entry.recorded_at
        assert v.verify_bundle(log.bundle(t, size=22, trusted=10), keys, trusted=honest)


def test_point8_surrogate_arguments_are_usage_errors(tmp_path: Path) -> None:
    """`modelseal history $'bad\\xff'` and names typed under LC_ALL=C were exit 70
    ("internal error"): an argument that is not valid text is a usage error."""
    from tests.cli_support import cli, init_store, refused

    store = init_store(tmp_path)
    for argv in (["history", "bad\udcff"], ["register", "x\udcff", "--owner", "o",
                                             "--type", "t", "--tier", "high",
                                             "--purpose", "p"]):
        refused(store.run(*argv), 2, "not valid UTF-8 text", hint="encoding")
    assert cli("--version").code == 0


def test_point8_inventory_says_before_genesis_and_after_the_last_entry(tmp_path: Path) -> None:
    """`inventory --at 2099` printed '... as of 2099' and a date before the log '0 models':
    the store's own reads now say what the log holds."""
    from tests.cli_support import init_store, ok

    store = init_store(tmp_path)
    before = ok(store.run("inventory", "--at", "2000-01-01"))
    assert "before the log's genesis" in before.out and "model(s)" not in before.out
    after = ok(store.run("inventory", "--at", "2099-01-01"))
    assert "last entry was recorded at" in after.out
    doc = ok(store.run("inventory", "--at", "2000-01-01", "--json")).json()
    assert doc["before_genesis"] is True and doc["models"] == []


def test_point4_invisible_characters_are_shown_escaped() -> None:
    """A payload or purpose may hold U+202E: tables, `show` and the report print it as
    \\u202e, so it cannot reorder what follows."""
    from verifier.names import visible
    from verifier.report import _e

    assert visible("a\u202eb\u200bc") == "a\\u202eb\\u200bc"
    assert "\u202e" not in _e("x\u202ey") and "\\u202e" in _e("x\u202ey")
    assert visible("mod\u00e8le\n\tok") == "mod\u00e8le\n\tok"


def test_point8_ctrl_c_during_a_modelseal_command_is_quiet(tmp_path: Path) -> None:
    """Ctrl-C during a command printed click's `Aborted!` with exit 1 ("verification
    failed"): now `interrupted`, exit 130, no traceback, nothing written. The command here
    waits for its payload on stdin, so the interrupt lands mid-command every time."""
    from ledger import Ledger
    from tests.cli_support import init_store, ok

    store = init_store(tmp_path)
    ok(store.run("register", "m", "--owner", "o", "--type", "t", "--tier", "high",
                 "--purpose", "p"))
    env = {**_env(), **store.env}
    proc = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()",
                             "record", "m", "--event", "retrained", "--payload", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=REPO)
    time.sleep(2.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"interrupted" in err and b"Traceback" not in err, err
    with Ledger.open(store.dir) as led:
        assert led.audit() == led.size and [s.event_type for s in led.history("m")] == [
            "registered"]


def test_point8_truncated_store_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """A data.mdb cut short killed every command with SIGBUS: now a StoreError (exit 4)."""
    from ledger import Ledger, StoreError
    from tests.cli_support import init_store, refused

    store = init_store(tmp_path)
    for i in range(40):
        store.run("register", f"m{i}", "--owner", "o", "--type", "t", "--tier", "high",
                  "--purpose", "p" * 500)
    data = store.dir / "data.mdb"
    with open(data, "r+b") as fh:
        fh.truncate(data.stat().st_size // 2)
    with pytest.raises(StoreError, match="truncated"):
        Ledger.open(store.dir)
    proc = subprocess.run([sys.executable, "-c", "from cli.main import main; main()",
                           "inventory"], env={**_env(), **store.env}, cwd=REPO,
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 4 and b"truncated" in proc.stderr, proc.stderr
    refused(store.run("audit"), 4, "truncated")


def test_point1_cli_export_signs_a_fresh_checkpoint_only_with_the_log_key(
        tmp_path: Path) -> None:
    """`export --at` a date after the latest checkpoint: with the log key a fresh checkpoint
    is signed and the bundle verifies up to it; without it, a clear refusal; a future date
    is refused either way."""
    from datetime import datetime, timedelta, timezone

    from tests.cli_support import cli, init_store, ok, refused

    store = init_store(tmp_path)
    soon = (datetime.now(timezone.utc) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(3)  # `soon` is now after the latest checkpoint and not in the future
    without = {k: x for k, x in store.env.items() if k != "MODELSEAL_LOG_KEY"}
    refused(cli("export", "--at", soon, "-o", tmp_path / "a.json", env=without), 2, "log key")
    ok(store.run("export", "--at", soon, "-o", tmp_path / "b.json"))
    out = v.verify_bundle((tmp_path / "b.json").read_bytes(),
                          [v.VerifierKey.parse(store.log_vkey)])
    assert out.proven_until >= out.time == v.to_ns(datetime.fromisoformat(soon[:-1] + "+00:00"))
    refused(store.run("export", "--at", "2200-01-01", "-o", tmp_path / "c.json"), 2, "future")

