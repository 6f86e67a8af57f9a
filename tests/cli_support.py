"""Helpers for the `modelseal` command-line tests: one way to run the CLI (in
process with click's CliRunner, or as a real subprocess), and every run is
checked for a traceback. Test-only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner

from cli.main import main

if TYPE_CHECKING:
    from ledger import ActorKey, LogKey

REPO = Path(__file__).resolve().parent.parent
ORIGIN = "example.com/models"
ENV_NAMES = ("MODELSEAL_STORE", "MODELSEAL_KEY", "MODELSEAL_LOG_KEY",
             "MODELSEAL_KEY_PASSPHRASE", "MODELSEAL_LOG_KEY_PASSPHRASE",
             "MODELSEAL_KEY_PASSPHRASE_FILE", "MODELSEAL_LOG_KEY_PASSPHRASE_FILE",
             "MODELSEAL_SERVER", "MODELSEAL_LOG_VKEY", "MODELSEAL_CLIENT_STATE")
MODEL = ("--owner", "risk-team", "--type", "ml_model", "--tier", "high",
         "--purpose", "scores card transactions")


@dataclass
class Run:
    """The outcome of one invocation."""

    args: list[str]
    code: int
    out: str
    err: str
    out_bytes: bytes = b""

    def json(self) -> Any:
        """stdout parsed as JSON (it must be nothing else)."""
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"modelseal {' '.join(self.args)} -> {self.code}\n--stdout--\n{self.out}" \
               f"\n--stderr--\n{self.err}"


def assert_no_traceback(run: Run) -> None:
    """No traceback ever reaches the user, on either stream."""
    for text in (run.out, run.err):
        assert "Traceback" not in text, str(run)


def cli(*args: Any, env: dict[str, str] | None = None, input: str | bytes | None = None
        ) -> Run:
    """Run ``modelseal ARGS`` in process. MODELSEAL_* variables are cleared unless ``env``
    gives them. An exception that escapes click fails the test with its traceback."""
    full: dict[str, str | None] = {name: None for name in ENV_NAMES}
    full.update(env or {})
    argv = [str(a) for a in args]
    result = CliRunner().invoke(main, argv, env=full, input=input, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        raise AssertionError("uncaught exception in `modelseal " + " ".join(argv) + "`:\n"
                             + "".join(traceback.format_exception(*result.exc_info)))
    run = Run(argv, result.exit_code, result.stdout, result.stderr, result.stdout_bytes)
    assert_no_traceback(run)
    return run


def real(*args: Any, env: dict[str, str] | None = None, input: bytes | None = None) -> Run:
    """Run ``modelseal ARGS`` as a real process (stdin is not a terminal)."""
    full = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    full.update(env or {})
    argv = [str(a) for a in args]
    proc = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *argv], cwd=REPO, env=full,
        input=input if input is not None else b"", capture_output=True, timeout=60, check=False)
    run = Run(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"),
              proc.stderr.decode("utf-8", "replace"), proc.stdout)
    assert_no_traceback(run)
    return run


def bare(home: Path, *args: Any, extra_env: dict[str, str] | None = None,
         timeout: float = 60) -> Run:
    """Run ``modelseal ARGS`` through its console entry point (``cli._entry``) as a real
    process whose environment is only PATH, HOME and XDG_STATE_HOME (``home``) and
    ``extra_env``; at most ``timeout`` seconds. No traceback may show."""
    argv = [str(a) for a in args]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_STATE_HOME": str(home),
           **(extra_env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", "from cli._entry import modelseal; modelseal()", *argv],
        cwd=REPO, capture_output=True, timeout=timeout, check=False, env=env)
    run = Run(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"),
              proc.stderr.decode("utf-8", "replace"), proc.stdout)
    assert_no_traceback(run)
    return run


def ok(run: Run) -> Run:
    """Assert exit 0 and nothing on stderr."""
    assert run.code == 0, str(run)
    assert run.err == "", str(run)
    return run


def refused(run: Run, code: int, *fragments: str, hint: str | None = None) -> Run:
    """Assert exit ``code``, ``error: <what>`` on stderr containing every fragment, nothing
    on stdout, and (if given) a ``hint:`` line containing ``hint``."""
    assert run.code == code, str(run)
    assert run.out == "", str(run)
    lines = run.err.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors, str(run)
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}\n{run}"
    if hint is not None:
        hints = [line for line in lines if line.startswith("hint: ")]
        assert hints and hint in hints[0], f"no hint with {hint!r}\n{run}"
    return run


def refused_json(run: Run, code: int, *fragments: str, cls: str | None = None) -> dict[str, Any]:
    """Assert exit ``code`` under --json: nothing on stdout, and stderr is exactly one JSON
    object {"error": {"class", "message", "hint", "exit_code"}} whose message holds every
    fragment. Returns the inner object."""
    assert run.code == code, str(run)
    assert run.out == "", str(run)
    doc = json.loads(run.err)
    assert set(doc) == {"error"}, str(run)
    err = doc["error"]
    assert set(err) == {"class", "message", "hint", "exit_code"}, str(run)
    assert err["exit_code"] == code, str(run)
    assert cls is None or err["class"] == cls, str(run)
    for fragment in fragments:
        assert fragment in err["message"], f"{fragment!r} not in {err['message']!r}\n{run}"
    return dict(err)


def usage_error(run: Run, *fragments: str) -> Run:
    """Assert a usage error reported by click itself: exit 2, its usage text, the message."""
    assert run.code == 2, str(run)
    assert run.out == "", str(run)
    assert "Usage:" in run.err and "Error:" in run.err, str(run)
    for fragment in fragments:
        assert fragment in run.err, f"{fragment!r} not in stderr\n{run}"
    return run


@dataclass
class Store:
    """A store made by `modelseal init`, and the environment that selects it."""

    dir: Path
    log_key: Path
    admin_key: Path
    log_vkey: str
    admin_vkey: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"MODELSEAL_STORE": str(self.dir), "MODELSEAL_LOG_KEY": str(self.log_key),
                "MODELSEAL_KEY": str(self.admin_key), **self.extra}

    def opts(self, key: Path | None = None) -> list[str]:
        """The same selection as global options."""
        return ["--store", str(self.dir), "--log-key", str(self.log_key),
                "--key", str(key or self.admin_key)]

    def run(self, *args: Any, key: Path | None = None, input: str | bytes | None = None,
            env: dict[str, str] | None = None) -> Run:
        """Run with this store selected by the environment (and ``key`` as actor)."""
        full = self.env
        if key is not None:
            full["MODELSEAL_KEY"] = str(key)
        full.update(env or {})
        return cli(*args, env=full, input=input)

    def state(self) -> bytes:
        """The latest checkpoint note: what a refused write must leave unchanged."""
        return ok(cli("checkpoint", env=self.env)).out_bytes

    def writer(self, name: str) -> Path:
        """A new actor key file for ``name``, granted the writer role."""
        path = self.dir.parent / f"{name}.key"
        vkey = ok(cli("keygen", name, "-o", path)).out.strip()
        ok(self.run("grant", vkey))
        return path


def init_store(base: Path, name: str = "store", env: dict[str, str] | None = None) -> Store:
    """`modelseal init BASE/NAME --json` with the default keys directory."""
    run = ok(cli("init", base / name, "--origin", ORIGIN, "--json", env=env))
    doc = run.json()
    return Store(Path(doc["store"]), Path(doc["log_key_file"]), Path(doc["admin_key_file"]),
                 doc["log_vkey"], doc["admin_vkey"])


def registered_store(base: Path, name: str = "fraud_scoring") -> Store:
    """``init_store(base)`` with the model ``name`` registered (MODEL's fields)."""
    s = init_store(base)
    ok(s.run("register", name, *MODEL))
    return s


def saved_store(store_dir: Path, keys: Path, log_key: LogKey, admin: ActorKey) -> Store:
    """The Store of a ledger at ``store_dir`` written through the Ledger API: its log and
    admin keys saved (unencrypted) as ``log.key`` and ``risk-admin.key`` in the new
    directory ``keys`` (0700)."""
    keys.mkdir(mode=0o700)
    log_key.save(keys / "log.key")
    admin.save(keys / "risk-admin.key")
    return Store(store_dir, keys / "log.key", keys / "risk-admin.key", log_key.vkey, admin.vkey)


def timed_store(base: Path) -> Store:
    """A store written through the Ledger API on a simulated clock (DemoClock: set a
    time, then 7 s per reading), so that --at answers are exact:

    * 2025-09-30T12:00Z  genesis
    * 2025-09-30T23:30Z  register `early`
    * 2025-10-01T00:30Z  register `late`; event `retrained` on `early` at 00:40
    * 2025-10-01T01:00Z  group `suite` with member `early` (role champion)
    * 2025-10-02T10:00Z  `early` removed from `suite`
    """
    from datetime import datetime, timezone

    from cli.scenario import DemoClock
    from ledger import ActorKey, Ledger, LogKey

    def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2025, month, day, hour, minute, tzinfo=timezone.utc)

    log_key, admin = LogKey.generate(ORIGIN), ActorKey.generate("risk-admin")
    clock = DemoClock(at(9, 30, 12))
    store_dir, keys = base / "timed", base / "timed-keys"
    led = Ledger.create(store_dir, origin=ORIGIN, log_key=log_key, admin=admin, clock=clock)
    with led:
        clock.set(at(9, 30, 23, 30))
        led.register(name="early", owner="risk-team", model_type="ml_model", tier="high",
                     purpose="p")
        clock.set(at(10, 1, 0, 30))
        led.register(name="late", owner="risk-team", model_type="rules", tier="low",
                     purpose="p")
        clock.set(at(10, 1, 0, 40))
        led.record("early", "retrained", {"auc": 0.91})
        clock.set(at(10, 1, 1))
        led.register_group(name="suite", owner="risk-team", tier="high", purpose="p",
                           members=[])
        led.add_member("suite", "early", role="champion")
        clock.set(at(10, 2, 10))
        led.remove_member("suite", "early", reason="replaced")
    return saved_store(store_dir, keys, log_key, admin)
