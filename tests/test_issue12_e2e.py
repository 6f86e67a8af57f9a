"""Issue 12 end to end, in real processes on localhost: a log server, three witnesses, a
client (the CLI with --server and a kept state) and a monitor (the CLI with a state file).

The operator's two lies are caught: a split view (another tree of the same log key shown to
the client and the monitor while the witnesses hold the genuine one) and a rollback (a
restored older copy of the store served again). With one witness down, checkpoints are still
cosigned by two of three, and a bundle exported under such a checkpoint verifies with
``--witness-threshold 2`` (and not with 3)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

import verifier as v
from tests.test_witness_distribution import ROOT, Deployment, Log, _env, _spawn


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from cli.main import main; main()", *args],
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from verifier.startup import run_verifier; run_verifier()", *args],
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=120)


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path)
    yield d
    d.close()


def _witness_args(d: Deployment) -> list[str]:
    return [a for s in d.signers for a in ("--witness", s.vkey)]


def _monitor(d: Deployment, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _cli("monitor", url, "--key", d.log.log_key.vkey, *_witness_args(d),
                "--state", str(d.tmp / "monitor.json"), "--no-entries", *extra)


def _client(d: Deployment, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _cli("--server", url, "--log-vkey", d.log.log_key.vkey,
                "--client-state", str(d.tmp / "client.json"), *args)


def test_split_view_and_rollback_are_caught(deployed: Deployment, tmp_path: Path) -> None:
    d = deployed
    d.write(3)
    d.cosigned(d.size(), 3)
    # a backup the operator will later serve as if it were current (a rollback)
    backup = tmp_path / "backup"
    done = subprocess.run([sys.executable, "-I", "-m", "lmdb", "copy", "-e",
                           str(tmp_path / "store"), str(backup)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    d.write(3)
    size = d.size()
    d.cosigned(size, 3)
    first = _monitor(d, d.url, "--witness-threshold", "2")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"OK {d.url} size {size}:"), first.stdout
    assert _client(d, d.url, "checkpoint").returncode == 0
    kept_monitor = (tmp_path / "monitor.json").read_bytes()
    kept_client = (tmp_path / "client.json").read_bytes()

    # split view: the same origin and log key, another tree, served to client and monitor
    fork = Log(tmp_path / "fork", log_key=d.log.log_key)
    while fork.led.size < size:
        fork.led.record("m0", "evaluated", {"fork": fork.led.size})
    fork.led.close()
    server, url = _spawn("serve", "--store", str(tmp_path / "fork"), "--log-key",
                         str(d.log_key_file), "--listen", "127.0.0.1:0",
                         *[a for i in range(3)
                           for a in ("--witness", f"{d.urls[i]}={d.signers[i].vkey}")])
    try:
        seen = _client(d, url, "checkpoint")
        assert seen.returncode != 0 and "fork" in seen.stderr.lower(), seen.stderr
        # no witness cosigns the fork's tree: the monitor refuses it for want of them ...
        time.sleep(2)  # the fork's server has tried its witnesses by now
        refused = _monitor(d, url, "--witness-threshold", "2")
        assert refused.returncode == 12, (refused.stdout, refused.stderr)
        # ... and, trusting no witness, by its tiles: the same size with another root
        alone = _cli("monitor", url, "--key", d.log.log_key.vkey, "--state",
                     str(tmp_path / "monitor.json"), "--no-entries")
        assert alone.returncode == 10 and "fork" in alone.stderr, (alone.stdout, alone.stderr)
        # every witness still holds the genuine size
        assert [d.witness_size(i) for i in range(3)] == [size] * 3
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    assert (tmp_path / "monitor.json").read_bytes() == kept_monitor
    assert (tmp_path / "client.json").read_bytes() == kept_client

    # rollback: the genuine server stops; the older copy is served in its place
    d.server.send_signal(signal.SIGTERM)
    assert d.server.wait(30) == 0
    old, old_url = _spawn("serve", "--store", str(backup), "--log-key", str(d.log_key_file),
                          "--listen", "127.0.0.1:0")
    try:
        seen = _client(d, old_url, "checkpoint")
        assert seen.returncode != 0 and "rollback" in seen.stderr.lower(), seen.stderr
        back = _monitor(d, old_url, "--witness-threshold", "2")
        assert back.returncode == 11 and "rollback" in back.stderr, (back.stdout, back.stderr)
    finally:
        old.send_signal(signal.SIGTERM)
        assert old.wait(30) == 0
    assert (tmp_path / "monitor.json").read_bytes() == kept_monitor
    assert (tmp_path / "client.json").read_bytes() == kept_client


def test_two_of_three_witnesses_cosign_and_the_bundle_verifies(deployed: Deployment,
                                                               tmp_path: Path) -> None:
    d = deployed
    d.write(2)
    d.cosigned(d.size(), 3)
    before = d.size()
    d.kill_witness(2)
    time.sleep(1.1)  # cosignature times are whole seconds: T falls between the two sizes
    t = datetime.now(timezone.utc)
    time.sleep(1.1)
    # the first checkpoint after T is cosigned by both live witnesses before the next
    # write (a witness sent only a later checkpoint never cosigns an earlier one)
    d.write(1)
    d.cosigned(before + 1, 2)
    d.write(2)
    size = d.size()
    d.cosigned(size, 2)
    assert _monitor(d, d.url, "--witness-threshold", "2").returncode == 0
    d.server.send_signal(signal.SIGTERM)
    assert d.server.wait(30) == 0
    bundle = tmp_path / "bundle.json"
    out = _cli("--store", str(tmp_path / "store"), "export", "--at", t.isoformat(), "-o",
               str(bundle))
    assert out.returncode == 0, out.stderr
    # the first checkpoint cosigned after T: one the writes after T made, by w0 and w1
    cp_note = json.loads(bundle.read_bytes())["checkpoint"].encode()
    assert before < v.Checkpoint.parse_note(cp_note, [d.log.log_key.key]).size <= size
    cosigs = v.verify_cosignatures(cp_note, [s.witness_key for s in d.signers])
    assert sorted(c.witness.name for c in cosigs) == ["w0.example/w", "w1.example/w"]
    good = _verify(str(bundle), "--key", d.log.log_key.vkey, *_witness_args(d),
                   "--witness-threshold", "2")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "attested by 2 witnesses" in good.stdout, good.stdout
    short = _verify(str(bundle), "--key", d.log.log_key.vkey, *_witness_args(d))
    assert short.returncode == 1 and "FAIL" in short.stdout + short.stderr, short.stdout
    shutil.rmtree(tmp_path / "w2", ignore_errors=True)
