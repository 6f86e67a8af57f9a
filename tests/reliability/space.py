"""Part 7, space: a full disk gives a clear StoreError (CLI: exit 4,
``error: ...``) after which the store still audits clean with every acknowledged write.

The full disk is a 4 MiB tmpfs where mounting is permitted (root); otherwise it is
simulated with RLIMIT_FSIZE in the writing processes (writes then fail with EFBIG)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ledger import Ledger, LogKey
from tests.reliability.common import REPO, Setup, build_store, spawn
from tests.reliability.crash import acknowledged

TMPFS_SIZE = "4m"


def mount_tmpfs(where: Path) -> bool:
    """Mount a small tmpfs at ``where``; False if this machine does not permit it."""
    where.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                           str(where)], capture_output=True, check=False)
    return proc.returncode == 0


def unmount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True, check=False)


def cli_record(setup: Setup, limit: int, payload: Path) -> subprocess.CompletedProcess[bytes]:
    """`modelseal record` in a real process (under the file size limit, if any)."""
    def preexec() -> None:
        if limit:
            from tests.reliability.space_writer import limit_file_size
            limit_file_size(limit)

    env = {**os.environ, "MODELSEAL_STORE": str(setup.path),
           "MODELSEAL_LOG_KEY": str(setup.log_key_file),
           "MODELSEAL_KEY": str(setup.key_files["space-writer"]), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "record",
                           "m0", "--event", "retrained", "--payload-file", str(payload)],
                          cwd=REPO, env=env, capture_output=True, preexec_fn=preexec,
                          timeout=120, check=False)


def run_space(workdir: Path, *, mode: str = "auto") -> dict[str, Any]:
    """Fill the disk under a writer; check the errors and the store afterwards.
    ``mode``: "tmpfs", "rlimit", or "auto" (tmpfs where permitted, else rlimit)."""
    full = workdir / "full"
    mounted = mode in ("auto", "tmpfs") and mount_tmpfs(full)
    if mode == "tmpfs" and not mounted:
        raise RuntimeError("mounting a tmpfs is not permitted here")
    try:
        return _run(workdir, full, mounted)
    finally:
        if mounted:
            unmount(full)


def _run(workdir: Path, full: Path, mounted: bool) -> dict[str, Any]:
    full.mkdir(parents=True, exist_ok=True)
    setup = build_store(workdir / "setup", writers=["space-writer"], models=["m0"],
                        store=full / "store")
    filler = full / "filler"
    if mounted:
        filler.write_bytes(b"\0" * (512 << 10))  # deleted later, to free space again
        limit = 0
    else:
        limit = (setup.path / "data.mdb").stat().st_size + (2 << 20)
    side = workdir / "acknowledged.txt"
    proc = spawn("tests.reliability.space_writer", setup.path, setup.log_key_file,
                 setup.key_files["space-writer"], side, limit)
    out, err = proc.communicate(timeout=600)
    problems: list[str] = []
    if proc.returncode != 0:
        problems.append(f"writer exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
        report: dict[str, Any] = {"written": 0, "errors": []}
    else:
        report = json.loads(out)
    errors = report["errors"]
    kinds = {kind for kind, _ in errors}
    if kinds != {"call", "batch"}:
        problems.append(f"expected a full disk under both kinds of write, got {errors}")
    unclear = [msg for _, msg in errors if not msg.startswith(("disk full", "file size limit"))]
    if unclear:
        problems.append(f"unclear messages: {unclear}")

    payload = workdir / "payload.json"
    payload.write_text(json.dumps({"blob": os.urandom(30_000).hex()}))
    cli = [cli_record(setup, limit, payload) for _ in range(3)]
    refused = [c for c in cli if c.returncode == 4]
    cli_err = refused[0].stderr.decode(errors="replace") if refused else ""
    if not refused or not cli_err.startswith(("error: disk full", "error: file size limit")) \
            or "Traceback" in cli_err or refused[0].stdout:
        problems.append("the CLI did not refuse with exit 4 and a clear `error: ...`: "
                        + "; ".join(f"{c.returncode} {c.stderr[-500:]!r}" for c in cli))

    acked = acknowledged(side)
    with Ledger.open(setup.path) as led:
        size = led.audit()
        lost = 0
        for h in acked:
            try:
                led.entry(h)
            except KeyError:
                lost += 1
    if filler.exists():
        filler.unlink()
    # with space again (the filler gone, or no limit in this process) writing goes on
    with Ledger.open(setup.path, log_key=LogKey.load(setup.log_key_file),
                     signer=setup.keys.admin) as led:
        try:
            led.record("m0", "after_the_disk_was_full", {})
            after = led.audit()
        except Exception as exc:
            problems.append(f"writing after space was freed: {type(exc).__name__}: {exc}")
            after = -1
    shutil.rmtree(setup.path, ignore_errors=True)
    return {
        "mode": f"tmpfs {TMPFS_SIZE}" if mounted else "RLIMIT_FSIZE (simulated, EFBIG)",
        "writes_acknowledged_before_full": len(acked), "size_after": size,
        "errors": [f"{kind}: {msg}" for kind, msg in errors[:2]],
        "cli_exit": refused[0].returncode if refused else [c.returncode for c in cli],
        "cli_stderr": cli_err.strip().splitlines()[:2],
        "lost": lost, "audit_after_full": size, "audit_after_space_freed": after,
        "problems": problems,
    }
