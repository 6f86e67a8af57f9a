"""The client against the real server (ledger.server on uvicorn, in process): signed
writes and signed reads (RFC 9421) end to end, and the CLI's remote mode."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

import verifier as v
from ledger import ActorKey, Ledger, LogKey
from ledger.client import Client, ServerMisbehaviourError, UnauthenticatedError
from tests.cli_support import MODEL as CLI_MODEL
from tests.cli_support import cli, init_store, ok, refused
from tests.client_support import RealServer

ORIGIN = "example.com/models"
MODEL = dict(owner="risk-team", model_type="ml_model", tier="high", purpose="scores cards")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Ledger, ActorKey, str]]:
    admin = ActorKey.generate("risk-admin")
    ledger = Ledger.create(tmp_path / "store", origin=ORIGIN,
                           log_key=LogKey.generate(ORIGIN), admin=admin)
    with RealServer(ledger) as server:
        yield ledger, admin, server.url
    ledger.close()


def test_verbs_and_signed_reads_against_the_server(served: tuple[Ledger, ActorKey, str],
                                                   tmp_path: Path) -> None:
    led, admin, url = served
    with Client(url, log_key=led.log_vkey, actor=admin,
                state_file=tmp_path / "state.json") as c:
        ref = c.register(name="m1", **MODEL)
        assert c.register(name="m1", **MODEL) == ref
        with pytest.raises(v.RuleError):
            c.register(name="m1", **{**MODEL, "tier": "low"})
        snap = c.record("m1", "trained", {"auc": 0.9})
        assert snap == led.history("m1")[-1]
        t = c.tag("m1", "production")
        assert t.target == snap.snapshot_hash
        c.register(name="m2", **MODEL)
        c.register_group(name="g", owner="o", tier="t", purpose="p", members=["m1", "m2"])
        assert c.members("g") == led.members("g") == {"m1": None, "m2": None}
        c.grant(ActorKey.generate("pipe").vkey)
        assert c.history("m1") == led.history("m1")
        assert c.history("nope") == []
        assert {n: s.to_json() for n, s in c.inventory_at().items()} == \
            {n: s.to_json() for n, s in led.inventory_at().items()}
        assert c.entry(1) == led.entry(1) and c.entry(snap.snapshot_hash) == led.entry(
            snap.index)
        assert c.prove_inclusion(snap) == led.prove_inclusion(snap.index)
        assert c.prove_consistency(1) == led.prove_consistency(1)
        out = io.BytesIO()
        c.export_bundle(out=out)
        assert out.getvalue() == led.export_bundle()
        assert c.checkpoint() == led.checkpoint() == c.kept_checkpoint()
    with Client(url, log_key=led.log_vkey) as anon, pytest.raises(UnauthenticatedError):
        anon.history("m1")
    with Client(url, log_key=led.log_vkey, actor=ActorKey.generate("risk-admin")) as fake, \
            pytest.raises(UnauthenticatedError):  # the name, not the key, of the admin
        fake.history("m1")
    rogue = LogKey.generate(ORIGIN)
    with Client(url, log_key=rogue.vkey, actor=admin) as c, \
            pytest.raises(ServerMisbehaviourError):
        c.record("m1", "x")


def test_the_cli_against_the_server_matches_the_store(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    ledger = Ledger.open(store.dir, log_key=LogKey.load(store.log_key))
    try:
        with RealServer(ledger) as server:
            env = {"MODELSEAL_SERVER": server.url, "MODELSEAL_LOG_VKEY": store.log_vkey,
                   "MODELSEAL_KEY": str(store.admin_key),
                   "MODELSEAL_CLIENT_STATE": str(tmp_path / "state.json")}
            ok(cli("register", "m1", *CLI_MODEL, env=env))
            ok(cli("record", "m1", "--event", "validated", "--payload", '{"a": 1}', env=env))
            ok(cli("tag", "m1", "production", env=env))
            for args in (["history", "m1"], ["history", "m1", "--json"], ["inventory"],
                         ["inventory", "--json"], ["tags", "m1"], ["show", "1"],
                         ["checkpoint", "--json"], ["prove", "consistency", "--old", "1"]):
                remote, local = cli(*args, env=env), store.run(*args)
                assert (remote.code, remote.out, remote.err) == \
                    (local.code, local.out, local.err), f"{remote}\n{local}"
            refused(cli("record", "nope", "--event", "x", env=env), 1, "nope")
            ok(cli("export", "-o", tmp_path / "r.json", env=env))
            ok(store.run("export", "-o", tmp_path / "l.json"))
            assert (tmp_path / "r.json").read_bytes() == (tmp_path / "l.json").read_bytes()
    finally:
        ledger.close()
