"""The operator's everyday reads: `keys`, inventory filters, `history --at`, `diff` and
`--csv` on every tabular read, locally and through --server."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cli.scenario import DemoClock
from ledger import ActorKey, Ledger, LogKey
from ledger.diff import diff_inventories

from .cli_support import ORIGIN, REPO, Run, Store, cli, ok, refused, refused_json, saved_store
from .client_support import FakeServer, SocketServer


def _at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store on a simulated clock (7 s per reading):

    * 2025-01-01 genesis; 01-02: models a (high, t1), b (low, t2), c (medium, t1) and a
      group g; a tagged production; writer `pipe` granted
    * 2025-02-01: d registered (high, t2); b retired; c's tier changed to high; a retrained
      and production moved to it; c tagged staging; `pipe` revoked
    """
    base = tmp_path_factory.mktemp("reads")
    log_key, admin = LogKey.generate(ORIGIN), ActorKey.generate("risk-admin")
    clock = DemoClock(_at(1, 1))
    pipe = ActorKey.generate("pipe")
    with Ledger.create(base / "s", origin=ORIGIN, log_key=log_key, admin=admin,
                       clock=clock) as led:
        clock.set(_at(1, 2))
        for name, tier, owner in (("a", "high", "t1"), ("b", "low", "t2"),
                                  ("c", "medium", "t1")):
            led.register(name=name, owner=owner, model_type="ml_model", tier=tier,
                         purpose=f"model {name}")
        led.register_group(name="g", owner="t1", tier="high", purpose="group", members=["a"])
        led.tag("a", "production")
        led.grant(pipe.vkey, role="writer")
        clock.set(_at(2, 1))
        led.register(name="d", owner="t2", model_type="rules", tier="high", purpose="model d")
        led.retire("b", reason="replaced by d")
        led.update("c", tier="high")
        led.record("a", "retrained", {"auc": 0.93, "note": "line one\nline, two \"q\""})
        led.tag("a", "production")
        led.tag("c", "staging")
        led.revoke("pipe", reason="rotated")
    return saved_store(base / "s", base / "keys", log_key, admin)


def _csv(run: Run) -> list[list[str]]:
    text = run.out_bytes.decode("utf-8")  # (click's ``out`` turns CRLF into LF)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), text[-20:]
    return list(csv.reader(io.StringIO(text, newline="")))


# -- inventory filters --------------------------------------------------------------------

def _models(run: Run) -> list[str]:
    return [row[0] for row in _csv(run)[1:]]


def test_inventory_filters(store: Store) -> None:
    assert _models(ok(store.run("inventory", "--csv"))) == ["a", "b", "c", "d", "g"]
    assert _models(ok(store.run("inventory", "--csv", "--tier", "high"))) == ["a", "c", "d", "g"]
    assert _models(ok(store.run("inventory", "--csv", "--owner", "t2"))) == ["b", "d"]
    assert _models(ok(store.run("inventory", "--csv", "--status", "retired"))) == ["b"]
    assert _models(ok(store.run("inventory", "--csv", "--tag", "production"))) == ["a"]
    assert _models(ok(store.run("inventory", "--csv", "--tag", "production", "--tag",
                                "staging"))) == ["a", "c"]
    # several filters: all must match; as the log stood on 2025-01-15
    assert _models(ok(store.run("inventory", "--csv", "--tier", "high", "--owner", "t1",
                                "--at", "2025-01-15"))) == ["a", "g"]
    text = ok(store.run("inventory", "--status", "active", "--owner", "t2")).out
    assert "1 model(s) matching --owner t2, --status active" in text
    doc = ok(store.run("inventory", "--json", "--status", "retired")).json()
    assert [m["name"] for m in doc["models"]] == ["b"]


# -- history --at -----------------------------------------------------------------------------

def test_history_at(store: Store) -> None:
    full = _csv(ok(store.run("history", "a", "--csv")))
    assert full[0] == ["entry", "recorded at", "event", "actor", "snapshot", "original",
                       "payload"]
    assert [r[2] for r in full[1:]] == ["registered", "tag_moved", "retrained", "tag_moved"]
    early = _csv(ok(store.run("history", "a", "--csv", "--at", "2025-01-15")))
    assert [r[2] for r in early[1:]] == ["registered", "tag_moved"]
    assert all(r[1] < "2025-01-15" for r in early[1:])
    none = ok(store.run("history", "a", "--at", "2024-12-31T00:00:00Z")).out
    assert "no entry of a was recorded by 2024-12-31T00:00:00Z" in none
    assert len(ok(store.run("history", "a", "--json", "--at", "2025-01-15")).json()) == 2
    refused(store.run("history", "nope", "--at", "2025-01-15"), 2, "no model named")


# -- diff -------------------------------------------------------------------------------------

def test_diff_shows_all_four_kinds(store: Store) -> None:
    rows = _csv(ok(store.run("diff", "2025-01-15", "2025-02-15", "--csv")))
    assert rows[0] == ["change", "model", "detail"]
    got = {(r[0], r[1]) for r in rows[1:]}
    assert got == {("registered", "d"), ("retired", "b"), ("changed", "c"),
                   ("re-tagged", "a"), ("re-tagged", "c")}
    detail = {(r[0], r[1]): r[2] for r in rows[1:]}
    assert detail[("changed", "c")] == "tier: medium -> high"
    assert detail[("re-tagged", "c")].startswith("staging: (none) -> ")
    text = ok(store.run("diff", "2025-01-15", "2025-02-15")).out
    assert "1 registered, 1 retired, 1 changed, 2 re-tagged" in text
    assert "no change between" in ok(store.run("diff", "2025-01-03", "2025-01-20")).out
    doc = ok(store.run("diff", "2025-01-15", "2025-02-15", "--json")).json()
    assert len(doc["changes"]) == 5
    # backwards would read a retirement as a reactivation: refused as usage, naming the way
    back = store.run("diff", "2025-02-15", "2025-01-15", "--csv")
    assert back.code == 2 and "later than WHEN2" in back.err and back.out == ""


def test_diff_inventories_directly(store: Store) -> None:
    with Ledger.open(store.dir) as led:
        same = led.inventory_at(_at(2, 15))
        assert diff_inventories(same, same) == []
        changes = diff_inventories({}, same)
    assert [c.kind for c in changes] == ["registered"] * 5
    assert any(c.model == "b" and "now retired" in c.detail for c in changes)


# -- keys ------------------------------------------------------------------------------------

def test_keys(store: Store) -> None:
    active = _csv(ok(store.run("keys", "--csv")))
    assert active[0][:5] == ["actor", "role", "scope", "key_id", "vkey"]
    assert [r[0] for r in active[1:]] == ["risk-admin"]
    every = {r[0]: r for r in _csv(ok(store.run("keys", "--all", "--csv")))[1:]}
    cols = active[0]
    pipe = dict(zip(cols, every["pipe"], strict=True))
    assert pipe["role"] == "writer" and pipe["scope"] == "all models"
    assert pipe["granted_by"] == "risk-admin" and pipe["granted_at"].startswith("2025-01-02")
    assert pipe["revoked_by"] == "risk-admin" and pipe["revoked_at"].startswith("2025-02-01")
    assert pipe["reason"] == "rotated" and int(pipe["revoked_entry"]) > int(
        pipe["granted_entry"])
    assert pipe["vkey"].startswith("pipe+" + pipe["key_id"] + "+")
    admin = dict(zip(cols, every["risk-admin"], strict=True))
    assert admin["granted_entry"] == "0" and admin["revoked_at"] == ""
    text = ok(store.run("keys", "--all")).out
    assert "rotated" in text and "all models; grants, revokes and policy" in text
    doc = ok(store.run("keys", "--json")).json()
    assert [k["actor"] for k in doc] == ["risk-admin"]
    refused_json(store.run("keys", "--json", "--csv"), 2, "not both")


# -- csv --------------------------------------------------------------------------------------

def test_csv_round_trips_exact_values(store: Store) -> None:
    rows = _csv(ok(store.run("history", "a", "--csv")))
    payload = json.loads(rows[3][6])
    assert payload == {"auc": 0.93, "note": "line one\nline, two \"q\""}
    assert len(rows[3][4]) == 64  # the full snapshot hash, not the table's 12
    tags = _csv(ok(store.run("tags", "a", "--csv")))
    assert tags[0] == ["tag", "snapshot", "moved at", "by"]
    assert tags[1][:2] == ["production", rows[3][4]]  # moved to the retrained snapshot
    members = _csv(ok(store.run("members", "g", "--csv")))
    assert members == [["member", "role"], ["a", ""]]
    refused_json(store.run("inventory", "--csv", "--json"), 2, "not both")


def _real(store: Store, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full = {"PATH": "/usr/bin:/bin", "MODELSEAL_STORE": str(store.dir), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", *args],
                            cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_csv_survives_a_closed_pipe_and_a_non_utf8_terminal(store: Store) -> None:
    proc = _real(store, "history", "a", "--csv")
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # like `| head -1`
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert first.startswith(b"entry,") and b"Traceback" not in err
    ascii_run = _real(store, "inventory", "--csv", env={"PYTHONIOENCODING": "ascii"})
    out, err = ascii_run.communicate(timeout=60)
    assert ascii_run.returncode == 0 and b"Traceback" not in err and out.startswith(b"model,")


# -- through --server -----------------------------------------------------------------------

@pytest.fixture
def served(store: Store, tmp_path: Path) -> Iterator[dict[str, str]]:
    ledger = Ledger.open(store.dir, log_key=LogKey.load(store.log_key))
    with SocketServer(FakeServer(ledger)) as server:
        yield {"MODELSEAL_SERVER": server.url, "MODELSEAL_LOG_VKEY": store.log_vkey,
               "MODELSEAL_KEY": str(store.admin_key),
               "MODELSEAL_CLIENT_STATE": str(tmp_path / "client.json")}
    ledger.close()


def test_reads_through_the_server_match_the_store(store: Store, served: dict[str, str]
                                                  ) -> None:
    for args in (("inventory", "--csv", "--tier", "high"), ("history", "a", "--csv", "--at",
                                                           "2025-01-15"),
                 ("diff", "2025-01-15", "2025-02-15", "--csv"), ("members", "g", "--csv")):
        assert ok(cli(*args, env=served)).out == ok(store.run(*args)).out, args
    refused(cli("keys", env=served), 2, "keys needs a local store", hint="--store DIR")
