"""Part 6, keys: key files are created 0600 (whatever the umask), a private key readable
or writable by group or others is refused unless the user says otherwise explicitly
(``allow_insecure=True``, ``--allow-insecure-key``), and passphrase-protected keys work
from the environment and from a prompt on a real terminal (a pty)."""

from __future__ import annotations

import errno
import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ledger import ActorKey, KeyFileError, Ledger, LogKey
from tests.reliability.common import REPO

CLI = [sys.executable, "-c", "from cli.main import main; main()"]
PASSPHRASE = "correct horse battery staple"
MODES = (0o640, 0o604, 0o644, 0o660, 0o606, 0o620, 0o602, 0o610, 0o601, 0o666, 0o777)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: val for k, val in os.environ.items() if not k.startswith("MODELSEAL_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def cli(*args: Any, env: dict[str, str], umask: int | None = None
        ) -> subprocess.CompletedProcess[str]:
    """`modelseal ARGS` in a real process whose stdin is not a terminal."""
    def pre() -> None:
        if umask is not None:
            os.umask(umask)
    return subprocess.run([*CLI, *map(str, args)], cwd=REPO, env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=120,
                          preexec_fn=pre, check=False)


def on_terminal(args: list[str], env: dict[str, str], answers: list[str],
                timeout: float = 120.0) -> tuple[int, str]:
    """Run `modelseal ARGS` on a new pseudo-terminal; answer each passphrase prompt with
    the next of ``answers``. Returns (exit code, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once (nothing else runs after a fork)
        try:
            os.chdir(REPO)
            os.execve(sys.executable, [*CLI, *args], env)
        finally:
            os._exit(127)
    shown = b""
    asked = 0
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError as exc:  # EIO: the child closed the terminal
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            shown += chunk
            while shown.count(b"passphrase for") > asked and answers:
                os.write(fd, answers.pop(0).encode() + b"\n")
                asked += 1
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_keys(workdir: Path, modes: tuple[int, ...] = MODES) -> dict[str, Any]:
    """Every key-file check (``modes``: the open file modes tried); returns counts and the
    failures (must be none)."""
    failures: list[str] = []
    checks = 0

    def check(ok: bool, what: str) -> None:
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(what)

    # created 0600 whatever the umask: the API, `init` and `keygen`
    old = os.umask(0)
    try:
        for cls in (ActorKey, LogKey):
            key = cls.generate("k") if cls is ActorKey else cls.generate("example.com/x")
            path = key.save(workdir / f"api-{cls.__name__}.key")
            check(mode(path) == 0o600, f"{cls.__name__}.save under umask 000: {mode(path):o}")
    finally:
        os.umask(old)
    plain = cli("init", workdir / "plain", "--origin", "example.com/models", "--json",
                env=clean_env(), umask=0)
    check(plain.returncode == 0, f"init: {plain.stderr}")
    keys_dir = workdir / "plain-keys"
    for path in (keys_dir / "log.key", keys_dir / "risk-admin.key"):
        check(mode(path) == 0o600, f"init under umask 000 made {path} {mode(path):o}")
    check(mode(keys_dir) == 0o700, f"init made the keys directory {mode(keys_dir):o}")
    writer = workdir / "writer.key"
    gen = cli("keygen", "ml-pipeline", "-o", writer, env=clean_env(), umask=0)
    check(gen.returncode == 0 and mode(writer) == 0o600, f"keygen: {gen.stderr} {writer}")
    env = clean_env(MODELSEAL_STORE=str(workdir / "plain"),
                    MODELSEAL_LOG_KEY=str(keys_dir / "log.key"),
                    MODELSEAL_KEY=str(keys_dir / "risk-admin.key"))
    grant = cli("grant", gen.stdout.strip(), env=env)
    check(grant.returncode == 0, f"grant: {grant.stderr}")
    reg = cli("register", "m0", "--owner", "o", "--type", "t", "--tier", "high", "--purpose",
              "p", env=env)
    check(reg.returncode == 0, f"register: {reg.stderr}")

    # group- or other-readable (or writable) private keys: refused unless allowed explicitly
    for perm in modes:
        for path in (writer, keys_dir / "log.key"):
            os.chmod(path, perm)
            try:
                (ActorKey if path == writer else LogKey).load(path)
                failures.append(f"API loaded {path.name} at mode {perm:o}")
            except KeyFileError as exc:
                check("group or others" in str(exc), f"API message: {exc}")
            checks += 1
            (ActorKey if path == writer else LogKey).load(path, allow_insecure=True)
            run = cli("record", "m0", "--event", "e", env={**env, "MODELSEAL_KEY": str(writer)})
            check(run.returncode == 4 and run.stderr.startswith("error: ")
                  and "readable by group or others" in run.stderr
                  and "--allow-insecure-key" in run.stderr,
                  f"CLI at mode {perm:o}: {run.returncode} {run.stderr}")
            run = cli("--allow-insecure-key", "record", "m0", "--event", "e",
                      env={**env, "MODELSEAL_KEY": str(writer)})
            check(run.returncode == 0, f"--allow-insecure-key at {perm:o}: {run.stderr}")
            os.chmod(path, 0o600)
    with Ledger.open(workdir / "plain") as led:
        size_plain = led.size
    check(size_plain == 3 + 2 * len(modes),  # genesis, grant, register + the allowed writes
          f"the refused writes changed the store: size {size_plain}")

    # passphrase-protected keys: from the environment, and from a prompt on a terminal
    pw = {"MODELSEAL_KEY_PASSPHRASE": PASSPHRASE}
    enc = cli("init", workdir / "enc", "--origin", "example.com/models", env=clean_env(**pw))
    check(enc.returncode == 0, f"encrypted init: {enc.stderr}")
    ekeys = workdir / "enc-keys"
    for path in (ekeys / "log.key", ekeys / "risk-admin.key"):
        check(b"ENCRYPTED" in path.read_bytes() and mode(path) == 0o600,
              f"{path} is not encrypted 0600")
    eenv = clean_env(MODELSEAL_STORE=str(workdir / "enc"),
                     MODELSEAL_LOG_KEY=str(ekeys / "log.key"),
                     MODELSEAL_KEY=str(ekeys / "risk-admin.key"))
    model = ["--owner", "o", "--type", "t", "--tier", "high", "--purpose", "p"]
    run = cli("register", "from-env", *model, env={**eenv, **pw})
    check(run.returncode == 0, f"passphrase from the environment: {run.stderr}")
    run = cli("register", "no-terminal", *model, env=eenv)
    check(run.returncode == 2 and "is encrypted" in run.stderr,
          f"no passphrase, no terminal: {run.returncode} {run.stderr}")
    code, shown = on_terminal(["register", "from-prompt", *model], eenv,
                              [PASSPHRASE, PASSPHRASE])
    check(code == 0 and shown.count("passphrase for") == 2 and PASSPHRASE not in shown,
          f"prompt on a terminal: exit {code}: {shown!r}")
    code, shown = on_terminal(["register", "wrong-prompt", *model], eenv,
                              ["wrong", "wrong"])
    check(code == 4 and "wrong passphrase" in shown and "wrong" not in shown.split(
        "passphrase for")[1].split("\n", 1)[0], f"wrong passphrase on a terminal: {code} {shown!r}")
    with Ledger.open(workdir / "enc") as led:
        names = set(led.inventory_at())
    check(names == {"from-env", "from-prompt"}, f"models in the encrypted store: {names}")
    # the API: a passphrase given, missing or wrong
    check(LogKey.load(ekeys / "log.key", PASSPHRASE).vkey.startswith("example.com/models+"),
          "API load with the passphrase")
    for wrong in (None, "", "wrong"):
        try:
            LogKey.load(ekeys / "log.key", wrong)
            failures.append(f"API loaded an encrypted key with passphrase {wrong!r}")
        except KeyFileError:
            pass
        checks += 1
    return {"checks": checks, "passed": checks - len(failures), "failures": failures[:20]}
