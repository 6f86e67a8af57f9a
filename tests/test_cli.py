"""The `modelseal` command line: each command's success, --json output and refusals
with their exit codes (0 ok, 1 verification failed, 2 usage, 3 malformed input, 4 I/O
or store error); the store and keys by option or environment; passphrases; WHEN
arguments; `error: <what>` plus a hint and never a traceback; refused writes change
nothing; and `modelseal demo` end to end."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lmdb
import pytest

import verifier
from ledger import ActorKey, Ledger
from tests.cli_support import (
    MODEL,
    ORIGIN,
    Store,
    cli,
    init_store,
    ok,
    real,
    refused,
    refused_json,
    timed_store,
    usage_error,
)
from verifier import Checkpoint, VerifierKey, from_ns, to_ns

UTC = timezone.utc
QUARTER_END = datetime(2025, 9, 30, 23, 59, 59, tzinfo=UTC)


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh store with the admin key; nothing registered."""
    return init_store(tmp_path)


@pytest.fixture
def model(store: Store) -> Store:
    """A fresh store with model m1 registered and one event recorded."""
    ok(store.run("register", "m1", *MODEL))
    ok(store.run("record", "m1", "--event", "retrained", "--payload", '{"auc": 0.94}'))
    return store


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A store with entries at known times (see cli_support.timed_store). Read-only."""
    return timed_store(tmp_path_factory.mktemp("timed"))


def keys_of(store: Store) -> list[VerifierKey]:
    return [VerifierKey.parse(store.log_vkey)]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def unchanged(store: Store, before: bytes) -> None:
    """The log has exactly the checkpoint it had: nothing was written."""
    assert store.state() == before


def iso_ns(text: str) -> int:
    return to_ns(datetime.fromisoformat(text))


def history(store: Store, name: str) -> list[dict[str, Any]]:
    doc: list[dict[str, Any]] = ok(store.run("history", name, "--json")).json()
    return doc


def inventory(store: Store, *args: str) -> dict[str, dict[str, Any]]:
    doc = ok(store.run("inventory", "--json", *args)).json()
    return {m["name"]: m for m in doc["models"]}


# -- init ---------------------------------------------------------------------------------

def test_init_creates_store_and_private_keys_outside_it(tmp_path: Path) -> None:
    run = ok(cli("init", tmp_path / "inv", "--origin", ORIGIN))
    keys = tmp_path / "inv-keys"
    log_key, admin_key = keys / "log.key", keys / "risk-admin.key"
    assert (tmp_path / "inv" / "data.mdb").exists()
    assert mode(log_key) == 0o600 and mode(admin_key) == 0o600 and mode(keys) == 0o700
    assert not list((tmp_path / "inv").glob("*.key"))
    with Ledger.open(tmp_path / "inv") as led:
        vkey = led.log_vkey
    assert VerifierKey.parse(vkey).name == ORIGIN
    lines = run.out.splitlines()
    assert f"  {vkey}" in lines  # the verifier key, on a line of its own
    assert f"export MODELSEAL_STORE={tmp_path / 'inv'}" in run.out
    assert b"ENCRYPTED" not in log_key.read_bytes()


def test_init_json(tmp_path: Path) -> None:
    doc = ok(cli("init", tmp_path / "inv", "--origin", ORIGIN, "--admin", "boss",
                 "--keys-dir", tmp_path / "vault", "--json")).json()
    assert set(doc) == {"store", "origin", "log_vkey", "log_key_file", "admin", "admin_vkey",
                        "admin_key_file"}
    assert doc["origin"] == ORIGIN and doc["admin"] == "boss"
    assert doc["log_key_file"] == str(tmp_path / "vault" / "log.key")
    assert doc["admin_key_file"] == str(tmp_path / "vault" / "boss.key")
    assert ActorKey.load(doc["admin_key_file"]).vkey == doc["admin_vkey"]
    with Ledger.open(doc["store"]) as led:
        assert led.log_vkey == doc["log_vkey"]


def test_init_refuses_an_existing_store(tmp_path: Path, store: Store) -> None:
    before = store.state()
    keys_before = store.log_key.read_bytes(), store.admin_key.read_bytes()
    # default keys directory: the key files exist too
    refused(cli("init", store.dir, "--origin", ORIGIN), 2, "already")
    # a fresh keys directory: still refused, and no new directory or key is left behind
    refused(cli("init", store.dir, "--origin", ORIGIN, "--keys-dir", tmp_path / "other"), 2,
            f"{store.dir} already holds a store")
    assert not (tmp_path / "other").exists()
    unchanged(store, before)
    assert (store.log_key.read_bytes(), store.admin_key.read_bytes()) == keys_before


@pytest.mark.parametrize("inside", ["inv", "inv/keys", "inv/a/b"])
def test_init_refuses_key_files_inside_the_store(tmp_path: Path, inside: str) -> None:
    refused(cli("init", tmp_path / "inv", "--origin", ORIGIN, "--keys-dir", tmp_path / inside),
            2, "must not live inside the store", hint="--keys-dir")
    assert not (tmp_path / "inv").exists()


def test_init_refuses_keys_dir_that_is_another_store(tmp_path: Path, store: Store) -> None:
    refused(cli("init", tmp_path / "second", "--origin", ORIGIN, "--keys-dir", store.dir), 2,
            f"{store.dir} holds a store", hint="--keys-dir")
    # no store without keys is left behind (it could never be written to)
    assert not (tmp_path / "second" / "data.mdb").exists()


def test_init_usage_errors(tmp_path: Path) -> None:
    usage_error(cli("init", tmp_path / "inv"), "--origin")
    refused(cli("init", tmp_path / "inv", "--origin", "has space"), 2, "key name")
    assert not (tmp_path / "inv" / "data.mdb").exists()


# -- keygen -------------------------------------------------------------------------------

def test_keygen_writes_0600_and_prints_the_vkey(tmp_path: Path) -> None:
    path = tmp_path / "pipe.key"
    run = ok(cli("keygen", "ml-pipeline", "-o", path))
    assert mode(path) == 0o600
    assert run.out == ActorKey.load(path).vkey + "\n"
    assert VerifierKey.parse(run.out.strip()).name == "ml-pipeline"
    doc = ok(cli("keygen", "other", "-o", tmp_path / "o.key", "--json")).json()
    assert doc == {"name": "other", "vkey": ActorKey.load(tmp_path / "o.key").vkey,
                   "key_file": str(tmp_path / "o.key")}


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "pipe.key"
    ok(cli("keygen", "ml-pipeline", "-o", path))
    before = path.read_bytes()
    refused(cli("keygen", "ml-pipeline", "-o", path), 2, str(path), "exists",
            hint="never overwritten")
    assert path.read_bytes() == before and mode(path) == 0o600


def test_keygen_refusals(tmp_path: Path, store: Store) -> None:
    refused(cli("keygen", "bad name", "-o", tmp_path / "b.key"), 2, "key name")
    assert not (tmp_path / "b.key").exists()
    refused(cli("keygen", "x", "-o", store.dir / "x.key"), 4, "inside a store directory")
    usage_error(cli("keygen", "x"), "--output")


# -- grant / revoke -----------------------------------------------------------------------

def test_grant_and_revoke(store: Store, tmp_path: Path) -> None:
    key = tmp_path / "w.key"
    vkey = ok(cli("keygen", "w", "-o", key)).out.strip()
    assert ok(store.run("grant", vkey)).out == "granted w the writer role\n"
    ok(store.run("register", "m1", *MODEL, key=key))
    before = store.state()
    assert ok(store.run("revoke", "w", "--reason", "lost laptop")).out == "revoked the key of w\n"
    after_revoke = store.state()
    assert after_revoke != before
    refused(store.run("record", "m1", "--event", "retrained", key=key), 1,
            "'w' has no granted key", hint="grant")
    unchanged(store, after_revoke)
    hist = history(store, "m1")
    assert [h["actor"] for h in hist] == ["w"]


def test_only_admins_grant_and_revoke(store: Store, tmp_path: Path) -> None:
    writer = store.writer("w")
    other = ok(cli("keygen", "x", "-o", tmp_path / "x.key")).out.strip()
    before = store.state()
    refused(store.run("grant", other, key=writer), 1, "actor 'w' is a writer, not an admin",
            hint="admin")
    refused(store.run("grant", other, "--role", "admin", key=writer), 1, "not an admin")
    refused(store.run("revoke", "risk-admin", key=writer), 1, "not an admin")
    unchanged(store, before)


def test_grant_admin_role(store: Store, tmp_path: Path) -> None:
    key = tmp_path / "boss.key"
    vkey = ok(cli("keygen", "boss", "-o", key)).out.strip()
    assert "the admin role" in ok(store.run("grant", vkey, "--role", "admin")).out
    ok(store.run("grant", ok(cli("keygen", "w", "-o", tmp_path / "w.key")).out.strip(), key=key))
    ok(store.run("revoke", "w", key=key))


def test_grant_revoke_refusals(store: Store, tmp_path: Path) -> None:
    vkey = ok(cli("keygen", "w", "-o", tmp_path / "w.key")).out.strip()
    ok(store.run("grant", vkey))
    before = store.state()
    refused(store.run("revoke", "nobody"), 1, "'nobody' has no active key")
    refused(store.run("grant", vkey), 1, "already has an active key")
    refused(store.run("grant", "not-a-key"), 3, "verifier key", hint="format")
    refused(store.run("revoke", "risk-admin"), 1, "last admin")
    usage_error(store.run("grant", vkey, "--role", "owner"), "--role")
    unchanged(store, before)


# -- register -----------------------------------------------------------------------------

def test_register_text_and_json(store: Store) -> None:
    run = ok(store.run("register", "m1", *MODEL, "--metadata", '{"framework": "xgboost"}'))
    assert run.out.startswith("registered m1: model hash ")
    doc = ok(store.run("register", "m2", *MODEL, "--status", "development", "--json")).json()
    assert doc["name"] == "m2" and doc["status"] == "development" and doc["metadata"] == {}
    assert doc["snapshot"]["event_type"] == "registered" and doc["snapshot"]["index"] == 2
    assert doc["snapshot"]["timestamp"].endswith("Z")
    inv = inventory(store)
    assert inv["m1"]["metadata"] == {"framework": "xgboost"}
    assert inv["m1"]["owner"] == "risk-team" and inv["m2"]["status"] == "development"


def test_register_same_fields_again_is_a_no_op(store: Store) -> None:
    first = ok(store.run("register", "m1", *MODEL, "--json")).json()
    before = store.state()
    again = ok(store.run("register", "m1", *MODEL, "--json")).json()
    assert again == first
    unchanged(store, before)


def test_register_refusals(store: Store) -> None:
    ok(store.run("register", "m1", *MODEL))
    before = store.state()
    changed = ["--owner", "someone-else", *MODEL[2:]]
    refused(store.run("register", "m1", *changed), 1, "registered with other fields",
            hint="nothing was written")
    refused(store.run("register", "m2", *MODEL, "--metadata", "{not json"), 2,
            "--metadata is not valid JSON")
    refused(store.run("register", "m2", *MODEL, "--metadata", '{"a": NaN}'), 2,
            "not valid JSON", "NaN")
    refused(store.run("register", "m2", *MODEL, "--metadata", '{"a": Infinity}'), 2, "Infinity")
    refused(store.run("register", "m2", *MODEL, "--metadata", '{"a": 1e999}'), 2)
    refused(store.run("register", "m2", *MODEL, "--metadata", "[1, 2]"), 2,
            "--metadata must be a JSON object")
    refused(store.run("register", "m2", *MODEL, "--metadata", '{"a": 9223372036854775808}'), 2,
            "64-bit")
    refused(store.run("register", "x" * 300, *MODEL), 2, "name")
    usage_error(store.run("register", "m3", "--owner", "o"), "Missing option")
    unchanged(store, before)


# -- record -------------------------------------------------------------------------------

def test_record_payload_sources(model: Store, tmp_path: Path) -> None:
    run = ok(model.run("record", "m1", "--event", "validated", "--payload", '{"result": "pass"}'))
    assert run.out.startswith("recorded m1: validated at entry ")
    payload_file = tmp_path / "payload.json"
    payload_file.write_text('{"environment": "production", "ticket": "CHG-1"}')
    ok(model.run("record", "m1", "--event", "deployed", "--payload-file", payload_file))
    ok(model.run("record", "m1", "--event", "incident", "--payload", "-",
                 input='{"severity": "high"}\n'))
    doc = ok(model.run("record", "m1", "--event", "reviewed", "--json")).json()
    assert doc["event_type"] == "reviewed" and doc["payload"] == {} and doc["model"] == "m1"
    assert doc["op"] == "event" and doc["actor"] == "risk-admin"
    assert [(h["event_type"], h["payload"]) for h in history(model, "m1")][2:] == [
        ("validated", {"result": "pass"}),
        ("deployed", {"environment": "production", "ticket": "CHG-1"}),
        ("incident", {"severity": "high"}),
        ("reviewed", {}),
    ]


def test_record_refusals(model: Store, tmp_path: Path) -> None:
    payload_file = tmp_path / "p.json"
    payload_file.write_text("{}")
    bad_utf8 = tmp_path / "bad.json"
    bad_utf8.write_bytes(b"\xff\xfe{}")
    before = model.state()
    refused(model.run("record", "m1", "--event", "e", "--payload", "{}",
                      "--payload-file", payload_file), 2, "not both")
    refused(model.run("record", "nope", "--event", "e"), 1, "unknown model 'nope'",
            hint="history")
    refused(model.run("record", "m1", "--event", "e", "--payload", '{"a": NaN}'), 2, "NaN")
    refused(model.run("record", "m1", "--event", "e", "--payload", "-", input="[]"), 2,
            "must be a JSON object")
    refused(model.run("record", "m1", "--event", "e", "--payload", "{"), 2, "not valid JSON")
    refused(model.run("record", "m1", "--event", "e", "--payload-file", bad_utf8), 2)
    refused(model.run("record", "m1", "--event", "", "--payload", "{}"), 2, "--event must not be empty")
    big = json.dumps({"a": "x" * 70_000})
    refused(model.run("record", "m1", "--event", "e", "--payload", big), 2, "65535")
    usage_error(model.run("record", "m1", "--event", "e", "--payload-file", tmp_path / "none"),
                "does not exist")
    usage_error(model.run("record", "m1"), "--event")
    unchanged(model, before)


def test_record_with_a_revoked_key(model: Store) -> None:
    writer = model.writer("w")
    ok(model.run("record", "m1", "--event", "retrained", key=writer))
    ok(model.run("revoke", "w"))
    before = model.state()
    refused(model.run("record", "m1", "--event", "retrained", key=writer), 1,
            "has no granted key")
    unchanged(model, before)


# -- update / retire ----------------------------------------------------------------------

def test_update(model: Store) -> None:
    run = ok(model.run("update", "m1", "--tier", "low", "--metadata", '{"v": 2}'))
    assert run.out.startswith("updated m1: updated at entry ")
    doc = ok(model.run("update", "m1", "--owner", "new-team", "--json")).json()
    assert doc["event_type"] == "updated"
    m1 = inventory(model)["m1"]
    assert (m1["tier"], m1["owner"], m1["metadata"]) == ("low", "new-team", {"v": 2})


def test_update_refusals(model: Store) -> None:
    before = model.state()
    refused(model.run("update", "m1"), 2, "nothing to update", hint="--owner")
    refused(model.run("update", "nope", "--tier", "low"), 1, "unknown model")
    refused(model.run("update", "m1", "--metadata", "[]"), 2, "JSON object")
    unchanged(model, before)


def test_retire(model: Store) -> None:
    run = ok(model.run("retire", "m1", "--reason", "replaced"))
    assert run.out.startswith("retired m1: retired at entry ")
    assert inventory(model)["m1"]["status"] == "retired"
    before = model.state()
    refused(model.run("retire", "nope"), 1, "unknown model")
    unchanged(model, before)
    ok(model.run("register", "m2", *MODEL))
    doc = ok(model.run("retire", "m2", "--json")).json()
    assert (doc["event_type"], doc["payload"]) == ("retired", {})
    assert history(model, "m1")[-1]["payload"] == {"reason": "replaced"}


# -- tag / tags ---------------------------------------------------------------------------

def test_tag_and_tags(model: Store) -> None:
    snaps = history(model, "m1")
    registered, retrained = snaps[0]["snapshot_hash"], snaps[1]["snapshot_hash"]
    run = ok(model.run("tag", "m1", "production"))
    assert run.out == f"tag production of m1 -> {retrained}\n"
    doc = ok(model.run("tag", "m1", "candidate", "--snapshot", registered, "--json")).json()
    assert doc["name"] == "candidate" and doc["target"] == registered and doc["model"] == "m1"
    assert doc["moved"]["event_type"] == "tag_moved"
    tags = ok(model.run("tags", "m1", "--json")).json()
    assert {t: v["target"] for t, v in tags.items()} == {"candidate": registered,
                                                          "production": retrained}
    assert tags["production"]["moved_by"] == "risk-admin"
    assert tags["production"]["moved_at"].endswith("Z")
    text = ok(model.run("tags", "m1")).out
    assert text.splitlines()[0].split() == ["tag", "snapshot", "moved", "at", "by"]
    assert "production" in text and "candidate" in text
    assert inventory(model)["m1"]["tags"] == {"candidate": registered, "production": retrained}


def test_tag_refusals(model: Store) -> None:
    other = ok(model.run("register", "m2", *MODEL, "--json")).json()["snapshot"]["snapshot_hash"]
    before = model.state()
    refused(model.run("tag", "m1", "production", "--snapshot", other), 1,
            "is not a snapshot of 'm1'")
    refused(model.run("tag", "m1", "production", "--snapshot", "zz"), 2)
    refused(model.run("tag", "nope", "production"), 1, "nope")
    unchanged(model, before)


def test_tags_of_an_unknown_model(model: Store) -> None:
    refused(model.run("tags", "nope"), 2, "no model named 'nope'")
    assert ok(model.run("tags", "m1", "--json")).json() == {}


# -- groups / members ---------------------------------------------------------------------

def test_group_create_add_remove_members(model: Store) -> None:
    ok(model.run("register", "m2", *MODEL))
    ok(model.run("register", "m3", *MODEL))
    run = ok(model.run("group", "create", "suite", "--owner", "o", "--tier", "high",
                       "--purpose", "p", "--member", "m1", "--member", "m2"))
    assert run.out == "registered group suite with 2 member(s)\n"
    assert ok(model.run("members", "suite", "--json")).json() == {"m1": None, "m2": None}
    doc = ok(model.run("group", "add", "suite", "m3", "--role", "challenger", "--json")).json()
    assert doc["event_type"] == "member_added"
    assert doc["payload"] == {"member": "m3", "role": "challenger"}
    assert ok(model.run("group", "remove", "suite", "m1", "--reason", "x")).out.startswith(
        "removed from suite: member_removed at entry ")
    assert ok(model.run("members", "suite", "--json")).json() == {"m2": None, "m3": "challenger"}
    text = ok(model.run("members", "suite")).out.splitlines()
    assert text[0].split() == ["member", "role"] and text[3].split() == ["m3", "challenger"]
    g = ok(model.run("group", "create", "g2", "--owner", "o", "--tier", "low", "--purpose", "p",
                     "--json")).json()
    assert g["name"] == "g2" and g["model_type"] == "group"
    assert inventory(model)["suite"]["members"] == {"m2": None, "m3": "challenger"}


def test_group_refusals(model: Store) -> None:
    ok(model.run("group", "create", "suite", "--owner", "o", "--tier", "high", "--purpose", "p",
                 "--member", "m1"))
    before = model.state()
    refused(model.run("group", "create", "g2", "--owner", "o", "--tier", "h", "--purpose", "p",
                      "--member", "m1", "--member", "nope"), 1, "unknown model 'nope'")
    refused(model.run("group", "add", "suite", "m1"), 1, "already a member")
    refused(model.run("group", "add", "suite", "nope"), 1, "unknown model")
    refused(model.run("group", "remove", "suite", "nope"), 1)
    refused(model.run("group", "add", "suite", "suite"), 1)
    unchanged(model, before)
    assert "g2" not in inventory(model)  # the group and its members go in together or not


def test_members_of_an_unknown_group(model: Store) -> None:
    refused(model.run("members", "nope"), 2, "no model named 'nope'")
    refused(model.run("members", "nope", "--at", "2030-01-01"), 2, "nope")


def test_members_at(timed: Store) -> None:
    assert ok(timed.run("members", "suite", "--json")).json() == {}
    assert ok(timed.run("members", "suite", "--at", "2025-10-01", "--json")).json() == {
        "early": "champion"}
    assert ok(timed.run("members", "suite", "--at", "2025-10-02T11:00:00Z", "--json")
              ).json() == {}
    # 12:00 at +03:00 is 09:00 UTC: still a member
    assert ok(timed.run("members", "suite", "--at", "2025-10-02T12:00:00+03:00", "--json")
              ).json() == {"early": "champion"}
    # before the group existed
    assert ok(timed.run("members", "suite", "--at", "2025-09-30", "--json")).json() == {}
    usage_error(timed.run("members", "suite", "--at", "2025-10-02T12:00:00"), "no timezone")


# -- history ------------------------------------------------------------------------------

def test_history(model: Store) -> None:
    doc = history(model, "m1")
    assert [(h["index"], h["event_type"], h["actor"]) for h in doc] == [
        (1, "registered", "risk-admin"), (2, "retrained", "risk-admin")]
    assert doc[1]["prev"] == doc[0]["snapshot_hash"] and doc[1]["payload"] == {"auc": 0.94}
    assert all(h["timestamp"].endswith("Z") for h in doc)
    text = ok(model.run("history", "m1")).out.splitlines()
    assert text[0].split()[:3] == ["entry", "recorded", "at"]
    assert text[2].split()[0] == "1" and "registered" in text[2]
    assert "auc=0.94" in text[3]


def test_history_of_an_unknown_model(model: Store) -> None:
    refused(model.run("history", "nope"), 2, "no model named 'nope'", hint="inventory")
    err = refused_json(model.run("history", "nope", "--json"), 2, "nope", cls="UsageProblem")
    assert "inventory" in err["hint"]


# -- inventory and WHEN -------------------------------------------------------------------

def test_inventory_json_shape(timed: Store) -> None:
    doc = ok(timed.run("inventory", "--json")).json()
    assert set(doc) == {"at", "before_genesis", "genesis_at", "last_entry_at", "models"}
    assert doc["at"] is None and doc["before_genesis"] is False
    assert doc["genesis_at"].startswith("2025-09-30T12:00:") and doc["genesis_at"] < doc["last_entry_at"]
    assert [m["name"] for m in doc["models"]] == ["early", "late", "suite"]
    with Ledger.open(timed.dir) as led:
        states = led.inventory_at()
    times = ("registered_at", "last_event_at", "last_validation_at")
    for m in doc["models"]:
        want = states[m["name"]].fields()
        assert set(m) == set(want)
        assert {k: v for k, v in m.items() if k not in times} == \
            {k: v for k, v in want.items() if k not in times}
        for k in times:
            assert (None if m[k] is None else iso_ns(m[k])) == want[k]
            assert m[k] is None or m[k].endswith("Z")
    early = doc["models"][0]
    assert early["last_event_type"] == "retrained"
    assert early["registered_at"].startswith("2025-09-30T23:30:")


def names_at(store: Store, when: str) -> dict[str, str]:
    doc = ok(store.run("inventory", "--at", when, "--json")).json()
    return {m["name"]: m["last_event_type"] for m in doc["models"]}


def test_inventory_at_a_bare_date_is_the_end_of_that_day_utc(timed: Store) -> None:
    doc = ok(timed.run("inventory", "--at", "2025-09-30", "--json")).json()
    assert doc["at"] == "2025-09-30T23:59:59.999999Z"
    assert names_at(timed, "2025-09-30") == {"early": "registered"}
    assert names_at(timed, "2025-09-29") == {}
    assert names_at(timed, "2025-10-01") == {"early": "retrained", "late": "registered",
                                             "suite": "registered"}
    with Ledger.open(timed.dir) as led:
        want = led.inventory_at(datetime(2025, 9, 30, 23, 59, 59, 999_999, tzinfo=UTC))
    assert set(names_at(timed, "2025-09-30")) == set(want)


def test_inventory_at_iso_with_z_and_offsets(timed: Store) -> None:
    assert names_at(timed, "2025-09-30T23:30:00Z") == {}
    assert names_at(timed, "2025-09-30T23:31:00Z") == {"early": "registered"}
    # 01:00 at +02:00 is 23:00 UTC the day before: nothing yet
    assert names_at(timed, "2025-10-01T01:00:00+02:00") == {}
    # 02:35 at +02:00 is 00:35 UTC: late registered, early not yet retrained
    assert names_at(timed, "2025-10-01T02:35+02:00") == {"early": "registered",
                                                         "late": "registered"}
    # 20:45 at -04:00 on 09-30 is 00:45 UTC on 10-01: early retrained
    assert names_at(timed, "2025-09-30T20:45:00-04:00")["early"] == "retrained"
    doc = ok(timed.run("inventory", "--at", "2025-10-01T02:35:00+02:00", "--json")).json()
    assert doc["at"] == "2025-10-01T02:35:00+02:00"


@pytest.mark.parametrize("naive", ["2025-09-30T23:31:00", "2025-09-30 23:31"])
def test_inventory_refuses_a_time_without_a_timezone(timed: Store, naive: str) -> None:
    run = usage_error(timed.run("inventory", "--at", naive))
    assert "has no timezone: add Z (UTC) or an offset like +02:00" in run.err
    assert naive in run.err
    # with --json, click's own usage errors are the same JSON object as every other error
    refused_json(timed.run("inventory", "--at", naive, "--json"), 2, "has no timezone", naive,
                 cls="BadParameter")


def test_inventory_refuses_what_is_not_a_time(timed: Store) -> None:
    usage_error(timed.run("inventory", "--at", "yesterday"), "not an ISO 8601 date or time")
    usage_error(timed.run("inventory", "--at", "2025-02-30"),
                "'2025-02-30' is not a valid date: day is out of range for month")


@pytest.mark.parametrize("late", ["9999-12-31", "2600-01-01T00:00:00Z",
                                  "2262-04-12T01:00:00+01:00"])
def test_times_a_log_cannot_record_are_refused(timed: Store, tmp_path: Path, late: str) -> None:
    # beyond 2^63-1 ns a bundle's time is out of range: modelseal-verify calls it malformed
    out = tmp_path / "b.json"
    usage_error(timed.run("export", "--at", late, "-o", out), "is after 2262-04-11T23:47:16",
                "the last time a log can record")
    assert not out.exists()
    usage_error(timed.run("inventory", "--at", late), "is after 2262-04-11")
    # the last time a log can record is accepted as WHEN (a bundle as of then is refused
    # later, by the ledger: no checkpoint signed so far can prove it)
    ok(timed.run("inventory", "--at", "2262-04-11T23:47:16Z"))
    run = timed.run("export", "--at", "2262-04-11T23:47:16Z", "-o", out)
    assert "is after" not in run.err and "Usage:" not in run.err, str(run)


def test_inventory_text(timed: Store) -> None:
    out = ok(timed.run("inventory")).out
    lines = out.splitlines()
    assert lines[0].split() == ["model", "owner", "type", "tier", "status", "last", "event",
                                "at", "tags"]
    assert lines[-1] == "3 model(s)"
    assert ok(timed.run("inventory", "--at", "2025-09-30")).out.splitlines()[-1] == \
        "1 model(s) as of 2025-09-30T23:59:59.999999Z"


# -- show ---------------------------------------------------------------------------------

def test_show_by_hash_and_by_index(model: Store) -> None:
    snap = history(model, "m1")[1]
    by_hash = ok(model.run("show", snap["snapshot_hash"], "--json")).json()
    by_index = ok(model.run("show", "2", "--json")).json()
    assert by_hash == by_index
    with Ledger.open(model.dir) as led:
        data = led.entry(2)
    assert by_hash["entry_bytes"].encode() == data
    assert by_hash["index"] == 2 and by_hash["snapshot"] == snap["snapshot_hash"]
    assert by_hash["prev"] == history(model, "m1")[0]["snapshot_hash"]
    st = by_hash["statement"]
    assert (st["op"], st["event_type"], st["actor"], st["payload"]) == (
        "event", "retrained", "risk-admin", {"auc": 0.94})
    assert st["claimed_at"].endswith("Z") and by_hash["recorded_at"].endswith("Z")
    genesis = ok(model.run("show", "0", "--json")).json()
    assert genesis["statement"]["op"] == "genesis"
    text = ok(model.run("show", "2")).out
    assert f"snapshot     {snap['snapshot_hash']}" in text and "statement:" in text


def test_show_refusals(model: Store) -> None:
    refused(model.run("show", "99"), 2, "no entry 99")
    refused(model.run("show", "ab" * 32), 2, "no entry")
    refused(model.run("show", "xyz"), 2, "xyz")
    refused(model.run("show", "\u00b2"), 2, "is not a snapshot hash")  # '²'.isdigit()
    refused(model.run("prove", "inclusion", "\u00b2"), 2, "is not a snapshot hash")


# -- checkpoint ---------------------------------------------------------------------------

def test_checkpoint_is_byte_for_byte(model: Store) -> None:
    run = ok(model.run("checkpoint"))
    with Ledger.open(model.dir) as led:
        note, size = led.checkpoint(), led.size
    assert run.out_bytes == note
    cp = Checkpoint.parse_note(run.out_bytes, keys_of(model))
    assert cp.size == size == 3 and cp.origin == ORIGIN


def test_checkpoint_json(model: Store) -> None:
    """--json gives the checkpoint's parts and the exact note."""
    doc = ok(model.run("checkpoint", "--json")).json()
    with Ledger.open(model.dir) as led:
        note = led.checkpoint()
    cp = Checkpoint.parse_note(note, keys_of(model))
    assert cp.time is not None
    assert doc == {"origin": ORIGIN, "size": cp.size, "root": base64.b64encode(cp.root).decode(),
                   "signers": [ORIGIN], "note": note.decode(), "time_ns": cp.time,
                   "time": from_ns(cp.time).isoformat().replace("+00:00", "Z")}


# -- prove --------------------------------------------------------------------------------

def test_prove_inclusion(model: Store, tmp_path: Path) -> None:
    snap = history(model, "m1")[0]["snapshot_hash"]
    ok(model.run("record", "m1", "--event", "deployed"))
    entry = tmp_path / "entry.json"
    run = ok(model.run("prove", "inclusion", snap, "--entry-out", entry))
    assert run.out_bytes.startswith(b"c2sp.org/tlog-proof@v1\nindex 1\n")
    cp = verifier.verify_tlog_proof(run.out_bytes, entry.read_bytes(), keys_of(model))
    assert cp.size == 4
    with Ledger.open(model.dir) as led:
        assert entry.read_bytes() == led.entry(1)
    # by index, against an older tree
    old = ok(model.run("prove", "inclusion", "1", "--size", "2")).out_bytes
    assert verifier.verify_tlog_proof(old, entry.read_bytes(), keys_of(model)).size == 2
    # and the proof is not for just any bytes
    with pytest.raises(verifier.VerificationError):
        verifier.verify_tlog_proof(run.out_bytes, entry.read_bytes() + b" ", keys_of(model))


def test_prove_inclusion_refusals(model: Store, tmp_path: Path) -> None:
    refused(model.run("prove", "inclusion", "99"), 2, "no entry 99")
    refused(model.run("prove", "inclusion", "cd" * 32), 2, "no entry")
    refused(model.run("prove", "inclusion", "2", "--size", "1"), 2, "not in the tree of size 1")
    refused(model.run("prove", "inclusion", "1", "--size", "50"), 2, "size")
    refused(model.run("prove", "inclusion", "1", "--entry-out", tmp_path / "no" / "e.json"), 4,
            "No such file or directory")
    usage_error(model.run("prove", "inclusion", "1", "--size", "0"), "--size")


def test_prove_consistency(model: Store) -> None:
    old_note = model.state()
    old = Checkpoint.parse_note(old_note, keys_of(model))
    ok(model.run("record", "m1", "--event", "deployed"))
    ok(model.run("register", "m2", *MODEL))
    run = ok(model.run("prove", "consistency", "--old", str(old.size)))
    assert run.out_bytes.startswith(f"old {old.size}\n".encode())
    cp = verifier.verify_add_checkpoint(run.out_bytes, keys_of(model), old.root)
    assert cp.size == old.size + 2
    mid = ok(model.run("prove", "consistency", "--old", "1", "--new", str(old.size))).out_bytes
    assert verifier.verify_add_checkpoint(mid, keys_of(model),
                                          verifier.root_from_leaf_hashes(
                                              [verifier.leaf_hash(_entry(model, 0))])
                                          ).size == old.size
    with pytest.raises(verifier.ConsistencyError):
        verifier.verify_add_checkpoint(run.out_bytes, keys_of(model), bytes(32))


def _entry(store: Store, index: int) -> bytes:
    with Ledger.open(store.dir) as led:
        return led.entry(index)


def test_prove_consistency_refusals(model: Store) -> None:
    refused(model.run("prove", "consistency", "--old", "9"), 2, "old size")
    refused(model.run("prove", "consistency", "--old", "2", "--new", "9"), 2)
    usage_error(model.run("prove", "consistency"), "--old")
    usage_error(model.run("prove", "consistency", "--old", "-1"), "--old")


# -- export -------------------------------------------------------------------------------

def test_export_verifies(model: Store, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    run = ok(model.run("export", "-o", out))
    assert run.out.splitlines() == [f"wrote {out} ({out.stat().st_size:,} bytes)",
                                    f"verify with: modelseal-verify {out} --key {model.log_vkey}"]
    result = verifier.verify_bundle(out.read_bytes(), keys_of(model))
    with Ledger.open(model.dir) as led:
        assert dict(result.models) == led.inventory_at()
        assert result.size == led.size == result.checkpoint.size
    # and modelseal-verify agrees
    from verifier import cli as verify_cli
    assert verify_cli.main([str(out), "--key", model.log_vkey]) == 0


def test_export_at_and_trusted_size(timed: Store, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    doc = ok(timed.run("export", "--at", "2025-09-30", "-o", out, "--trusted-size", "2",
                       "--json")).json()
    assert doc == {"bundle": str(out), "bytes": out.stat().st_size, "log_vkey": timed.log_vkey}
    with Ledger.open(timed.dir) as led:
        trusted_note = led.prove_consistency(2, 2).checkpoint
        want = led.inventory_at(QUARTER_END)
    trusted = Checkpoint.parse_note(trusted_note, keys_of(timed))
    result = verifier.verify_bundle(out.read_bytes(), keys_of(timed), trusted=trusted)
    assert set(result.models) == {"early"} and dict(result.models) == want
    assert result.at == datetime(2025, 9, 30, 23, 59, 59, 999_999, tzinfo=UTC)
    assert result.trusted is not None and result.trusted.size == 2
    # with an offset: 02:35 at +02:00 is 00:35 UTC
    out2 = tmp_path / "b2.json"
    ok(timed.run("export", "--at", "2025-10-01T02:35:00+02:00", "-o", out2))
    result2 = verifier.verify_bundle(out2.read_bytes(), keys_of(timed))
    assert set(result2.models) == {"early", "late"}
    assert result2.models["early"].last_event_type == "registered"


def test_export_refusals(timed: Store, tmp_path: Path) -> None:
    usage_error(timed.run("export", "--at", "2025-09-30T12:00:00", "-o", tmp_path / "b.json"),
                "no timezone")
    refused(timed.run("export", "-o", tmp_path / "missing" / "b.json"), 4,
            "No such file or directory")
    refused(timed.run("export", "-o", tmp_path / "b.json", "--trusted-size", "99"), 2, "size")
    refused(timed.run("export", "-o", tmp_path / "b.json", "--at", "1969-12-31"), 2, "1970")
    usage_error(timed.run("export"), "--output")
    assert not (tmp_path / "b.json").exists()


# -- audit --------------------------------------------------------------------------------

def test_audit_ok(model: Store) -> None:
    assert ok(model.run("audit")).out == \
        "audit ok: 3 entries, every hash, node, index and signature matches\n"
    assert ok(model.run("audit", "--json")).json() == {"ok": True, "entries": 3}


def tamper(store_dir: Path, db: str) -> None:
    """Flip one bit of the last row of database ``db``, through a raw LMDB handle."""
    env = lmdb.open(str(store_dir), max_dbs=16, subdir=True)
    try:
        with env.begin(write=True) as txn:
            handle = env.open_db(db.encode(), txn=txn, create=False)
            cur = txn.cursor(db=handle)
            assert cur.last()
            key, value = bytes(cur.key()), bytearray(cur.value())
            value[len(value) // 2] ^= 0x01
            assert txn.put(key, bytes(value), db=handle)
    finally:
        env.close()


@pytest.mark.parametrize(("db", "message"), [
    ("nodes", "nodes row differs from what the entries give at nodes key"),
    ("models", "models row differs from what the entries give at models key"),
    ("snapshots", "snapshots row differs from what the entries give at snapshots key"),
    ("entries", "stored entry does not decompress"),  # entries are stored compressed + CRC
])
def test_audit_finds_a_tampered_byte(model: Store, db: str, message: str) -> None:
    tamper(model.dir, db)
    run = refused(model.run("audit"), 1, message, hint="evidence")
    if db == "entries":
        assert "at entry 2" in run.err
    err = refused_json(model.run("audit", "--json"), 1, message, cls="AuditError")
    assert "evidence" in err["hint"]


# -- the store and keys: options, environment, files --------------------------------------

def test_options_and_environment_are_equivalent(model: Store) -> None:
    by_env = ok(model.run("inventory", "--json")).json()
    by_opt = ok(cli("--store", model.dir, "inventory", "--json")).json()
    assert by_env == by_opt
    ok(cli(*model.opts(), "record", "m1", "--event", "deployed"))
    assert history(model, "m1")[-1]["event_type"] == "deployed"
    # an option wins over the environment
    bogus = {"MODELSEAL_STORE": str(model.dir.parent / "nowhere"),
             "MODELSEAL_KEY": "/nonexistent.key", "MODELSEAL_LOG_KEY": "/nonexistent.key"}
    ok(cli(*model.opts(), "record", "m1", "--event", "validated", env=bogus))
    assert history(model, "m1")[-1]["event_type"] == "validated"


def test_reads_need_no_keys(model: Store) -> None:
    env = {"MODELSEAL_STORE": str(model.dir)}
    for args in (["inventory"], ["history", "m1"], ["checkpoint"], ["audit"], ["show", "1"],
                 ["prove", "inclusion", "1"], ["tags", "m1"]):
        ok(cli(*args, env=env))


def test_missing_store_or_key_is_a_usage_error(model: Store) -> None:
    refused(cli("inventory"), 2, "no store given", hint="MODELSEAL_STORE")
    refused(cli("record", "m1", "--event", "e"), 2, "no store given", hint="--store DIR")
    only_store = {"MODELSEAL_STORE": str(model.dir)}
    refused(cli("record", "m1", "--event", "e", env=only_store), 2, "no log key given",
            hint="MODELSEAL_LOG_KEY")
    refused(cli("record", "m1", "--event", "e",
                env={**only_store, "MODELSEAL_LOG_KEY": str(model.log_key)}), 2,
            "no actor key given", hint="MODELSEAL_KEY")


def test_a_store_that_is_not_there_is_an_io_error(tmp_path: Path) -> None:
    refused(cli("--store", tmp_path / "nowhere", "inventory"), 4,
            f"no modelseal store at {tmp_path / 'nowhere'}", hint="modelseal init")
    (tmp_path / "empty").mkdir()
    refused(cli("--store", tmp_path / "empty", "audit"), 4, "no modelseal store")
    (tmp_path / "file").write_text("x")
    refused(cli("--store", tmp_path / "file", "checkpoint"), 4, "no modelseal store")


def test_key_file_problems(model: Store, tmp_path: Path) -> None:
    before = model.state()
    refused(model.run("record", "m1", "--event", "e", key=tmp_path / "none.key"), 4,
            "cannot read key file", hint="key file")
    refused(model.run("record", "m1", "--event", "e", key=model.log_key), 4,
            "not a modelseal actor key file")
    refused(cli("--store", model.dir, "--log-key", model.admin_key, "--key", model.admin_key,
                "record", "m1", "--event", "e"), 4, "not a modelseal log key file")
    unchanged(model, before)


def test_a_key_file_readable_by_others_is_refused(model: Store) -> None:
    model.admin_key.chmod(0o644)
    before = model.state()
    run = refused(model.run("record", "m1", "--event", "e"), 4, str(model.admin_key),
                  "readable by group or others", hint="chmod 600")
    assert "--allow-insecure-key" in run.err
    assert "allow_insecure=True" not in run.err  # the Python API's wording, not the CLI's
    unchanged(model, before)
    ok(model.run("--allow-insecure-key", "record", "m1", "--event", "e"))
    ok(cli("--allow-insecure-key", *model.opts(), "record", "m1", "--event", "e2"))
    model.log_key.chmod(0o640)
    refused(model.run("record", "m1", "--event", "e3"), 4, str(model.log_key))


# -- passphrases --------------------------------------------------------------------------

PW = {"MODELSEAL_KEY_PASSPHRASE": "correct horse"}


def test_passphrase_protected_keys(tmp_path: Path) -> None:
    st = init_store(tmp_path, env=PW)
    for path in (st.log_key, st.admin_key):
        assert b"ENCRYPTED" in path.read_bytes() and mode(path) == 0o600
    # without the passphrase and without a terminal: a usage error with a hint
    refused(st.run("register", "m1", *MODEL), 2, "is encrypted",
            hint="MODELSEAL_KEY_PASSPHRASE")
    # with it: fine
    ok(st.run("register", "m1", *MODEL, env=PW))
    # a wrong one: the key file cannot be loaded
    before = st.state()
    refused(st.run("register", "m2", *MODEL, env={"MODELSEAL_KEY_PASSPHRASE": "wrong"}), 4,
            "wrong passphrase", hint="passphrase")
    unchanged(st, before)
    # reads need no key at all
    assert set(inventory(st)) == {"m1"}
    # keygen encrypts too
    ok(cli("keygen", "w", "-o", tmp_path / "w.key", env=PW))
    assert b"ENCRYPTED" in (tmp_path / "w.key").read_bytes()


def test_a_separate_log_key_passphrase(tmp_path: Path) -> None:
    st = init_store(tmp_path, env={"MODELSEAL_KEY_PASSPHRASE": "log-passphrase-1"})
    writer = tmp_path / "w.key"
    vkey = ok(cli("keygen", "w", "-o", writer,
                  env={"MODELSEAL_KEY_PASSPHRASE": "writer-passphrase"})
              ).out.strip()
    ok(st.run("grant", vkey, env={"MODELSEAL_KEY_PASSPHRASE": "log-passphrase-1"}))
    both = {"MODELSEAL_LOG_KEY_PASSPHRASE": "log-passphrase-1",
            "MODELSEAL_KEY_PASSPHRASE": "writer-passphrase"}
    ok(st.run("register", "m1", *MODEL, key=writer, env=both))
    assert history(st, "m1")[0]["actor"] == "w"


def test_a_passphrase_from_a_file(tmp_path: Path) -> None:
    """MODELSEAL_KEY_PASSPHRASE_FILE (e.g. a systemd credential) names a file holding the
    passphrase; its last line break is not part of it."""
    st = init_store(tmp_path, env=PW)
    secret = tmp_path / "pw"
    secret.write_text("correct horse\n")
    ok(st.run("register", "m1", *MODEL, env={"MODELSEAL_KEY_PASSPHRASE_FILE": str(secret)}))
    secret.write_text("wrong horse\n")
    refused(st.run("register", "m2", *MODEL,
                   env={"MODELSEAL_KEY_PASSPHRASE_FILE": str(secret)}), 4, "wrong passphrase")
    refused(st.run("register", "m2", *MODEL,
                   env={"MODELSEAL_KEY_PASSPHRASE_FILE": str(tmp_path / "missing")}), 2,
            "cannot read MODELSEAL_KEY_PASSPHRASE_FILE")


def test_passphrase_prompt_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    st = init_store(tmp_path, env=PW)
    import cli.context

    monkeypatch.setattr(cli.context, "sys",
                        SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True)))
    run = st.run("register", "m1", *MODEL, input="correct horse\ncorrect horse\n")
    assert run.code == 0, str(run)
    assert f"passphrase for {st.log_key}" in run.err
    assert f"passphrase for {st.admin_key}" in run.err
    assert "correct horse" not in run.out + run.err


# -- real processes: exit codes and no traceback ------------------------------------------

def test_real_process_exit_codes(model: Store, tmp_path: Path) -> None:
    run = real("inventory", "--json", env=model.env)
    assert run.code == 0 and run.err == "" and "m1" in {m["name"] for m in run.json()["models"]}

    run = real("inventory", "--at", "2025-09-30T17:00:00", env=model.env)
    assert run.code == 2 and run.out == ""
    assert "has no timezone: add Z (UTC) or an offset like +02:00" in run.err

    run = real("--store", tmp_path / "nowhere", "history", "m1")
    assert (run.code, run.out) == (4, "")
    assert run.err.startswith("error: no modelseal store at ") and "hint: " in run.err

    tamper(model.dir, "models")
    run = real("audit", env=model.env)
    assert (run.code, run.out) == (1, "")
    assert run.err.startswith("error: models row differs") and "hint: " in run.err


def test_real_process_encrypted_key_without_a_terminal(tmp_path: Path) -> None:
    st = init_store(tmp_path, env=PW)
    run = real("record", "x", "--event", "e", env=st.env)
    assert (run.code, run.out) == (2, "")
    assert run.err.splitlines() == [
        f"error: {st.log_key} is encrypted",
        "hint: set MODELSEAL_LOG_KEY_PASSPHRASE or MODELSEAL_KEY_PASSPHRASE (or their _FILE "
        "forms), or run on a terminal to be asked"]


# -- help ---------------------------------------------------------------------------------

def test_help_and_version() -> None:
    run = ok(cli("--help"))
    assert "Exit codes: 0 ok, 1 verification failed, 2 usage, 3 malformed input" in run.out
    for command in ("init", "keygen", "grant", "revoke", "register", "record", "update",
                    "retire", "tag", "group", "history", "inventory", "tags", "members", "show",
                    "checkpoint", "prove", "export", "audit", "demo"):
        assert command in run.out
        ok(cli(command, "--help"))
    assert ok(cli("--version")).out == f"modelseal, version {verifier.__version__}\n"
    usage_error(cli("no-such-command"), "No such command")


# -- demo ---------------------------------------------------------------------------------

def test_demo_end_to_end(tmp_path: Path) -> None:
    base = tmp_path / "demo"
    run = ok(cli("demo", base))
    lines = run.out.splitlines()
    assert any(line.startswith("OK: demo.example/model-inventory: inventory as of "
                               "2025-09-30T23:59:59") for line in lines), run.out
    assert any(line.startswith("FAIL: ") for line in lines), run.out
    assert (base / "bundle-2025-09-30.json").is_file()
    report = (base / "report.html").read_text(encoding="utf-8")
    assert "<html" in report.lower() and "fraud_card_txn" in report
    keys = sorted((base / "keys").glob("*.key"))
    assert {k.name for k in keys} >= {"log.key", "risk-admin.key"}
    assert all(mode(k) == 0o600 for k in keys)
    assert (base / "store" / "data.mdb").is_file()
    # the bundle verifies and proves what the store says was the inventory at quarter end
    with Ledger.open(base / "store") as led:
        vkey = led.log_vkey
        want = led.inventory_at(QUARTER_END)
    assert f"  {vkey}" in lines
    result = verifier.verify_bundle((base / "bundle-2025-09-30.json").read_bytes(),
                                    [VerifierKey.parse(vkey)])
    assert result.at == QUARTER_END and len(want) > 40
    assert dict(result.models) == want
    # the demo store is a working store for the other commands
    env = {"MODELSEAL_STORE": str(base / "store")}
    assert ok(cli("audit", "--json", env=env)).json()["ok"] is True
    assert "credit_legacy_scorecard" in ok(cli("inventory", "--at", "2025-09-30", env=env)).out


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("mine")
    run = usage_error(cli("demo", tmp_path), "not empty")
    assert sorted(os.listdir(tmp_path)) == ["x.txt"]
    assert run.out == ""


def test_demo_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    usage_error(cli("demo", tmp_path / "f"), "is a file")


def test_demo_into_an_existing_empty_directory(tmp_path: Path) -> None:
    assert "FAIL: " in ok(cli("demo", tmp_path)).out



def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`modelseal inventory | head -1` stops without an error when head exits early."""
    import subprocess
    import sys

    from ledger import ActorKey, Ledger, LogKey

    store = tmp_path / "s"
    ledger = Ledger.create(store, origin="example.com/pipe", log_key=LogKey.generate(),
                           admin=ActorKey.generate("risk-admin"))
    with ledger.batch():
        for i in range(1500):  # far more output than a pipe buffer holds
            ledger.register(name=f"model_{i:05d}", owner="o", model_type="t", tier="low",
                            purpose="p")
    ledger.close()
    root = Path(__file__).resolve().parent.parent
    cmd = (f"{sys.executable} -c 'from cli.main import main; main()' --store {store} "
           f"inventory | head -n 1")
    res = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("model")
    assert res.stderr == ""
