"""`modelseal --server`: the same commands, output and exit codes against a server as
against the store it serves; what only makes sense on one side is refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import verifier as v
from ledger import Ledger, LogKey
from tests.cli_support import MODEL, Run, Store, cli, init_store, ok, refused, refused_json
from tests.client_support import FakeServer, SocketServer


@dataclass
class Served:
    """A store, and the server in front of it."""

    store: Store
    fake: FakeServer
    url: str
    state: Path

    @property
    def env(self) -> dict[str, str]:
        return {"MODELSEAL_SERVER": self.url, "MODELSEAL_LOG_VKEY": self.store.log_vkey,
                "MODELSEAL_KEY": str(self.store.admin_key),
                "MODELSEAL_CLIENT_STATE": str(self.state)}

    def remote(self, *args: Any, env: dict[str, str] | None = None) -> Run:
        return cli(*args, env={**self.env, **(env or {})})

    def local(self, *args: Any) -> Run:
        return self.store.run(*args)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    store = init_store(tmp_path)
    ledger = Ledger.open(store.dir, log_key=LogKey.load(store.log_key))
    fake = FakeServer(ledger)
    with SocketServer(fake) as server:
        yield Served(store, fake, server.url, tmp_path / "state" / "client.json")
    ledger.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_writes_then_reads_match_the_local_store(served: Served, tmp_path: Path) -> None:
    r = ok(served.remote("register", "m1", *MODEL, "--metadata", '{"team": "cards"}'))
    first = served.fake.ledger.history("m1")[0]
    assert r.out == f"registered m1: model hash {first.model_hash}, " \
                    f"snapshot {first.snapshot_hash}\n"
    assert ok(served.remote("register", "m1", *MODEL, "--metadata", '{"team": "cards"}')
              ).out == r.out  # the same fields again: the same answer
    r = ok(served.remote("record", "m1", "--event", "validated", "--payload", '{"auc": 0.9}'))
    snap = served.fake.ledger.history("m1")[-1]
    assert r.out == f"recorded m1: validated at entry {snap.index}, snapshot " \
                    f"{snap.snapshot_hash}\n"
    ok(served.remote("update", "m1", "--tier", "medium"))
    ok(served.remote("register", "m2", *MODEL))
    ok(served.remote("tag", "m1", "production"))
    ok(served.remote("tag", "m1", "canary", "--snapshot", first.snapshot_hash[:12]))
    ok(served.remote("group", "create", "g", "--owner", "o", "--tier", "t", "--purpose", "p",
                     "--member", "m1", "--member", "m2"))
    ok(served.remote("group", "remove", "g", "m2", "--reason", "split"))
    ok(served.remote("group", "add", "g", "m2", "--role", "backup"))
    ok(served.remote("retire", "m2", "--reason", "old"))
    vkey = ok(cli("keygen", "pipe", "-o", tmp_path / "pipe.key")).out.strip()
    assert ok(served.remote("grant", vkey)).out == "granted pipe the writer role\n"
    assert ok(served.remote("revoke", "pipe")).out == "revoked the key of pipe\n"
    r = ok(served.remote("record", "m1", "--event", "deployed", "--json"))
    assert r.json() == ok(served.local("show", r.json()["snapshot_hash"], "--json")).json() \
        or r.json()["snapshot_hash"] == served.fake.ledger.history("m1")[-1].snapshot_hash
    size = served.fake.ledger.size
    for args in (["history", "m1"], ["history", "m1", "--json"], ["inventory"],
                 ["inventory", "--json"], ["tags", "m1"], ["tags", "m1", "--json"],
                 ["members", "g"], ["members", "g", "--json"], ["show", "3"],
                 ["show", first.snapshot_hash], ["show", "2", "--json"], ["checkpoint"],
                 ["checkpoint", "--json"], ["prove", "inclusion", first.snapshot_hash],
                 ["prove", "inclusion", "1", "--size", str(size)],
                 ["prove", "consistency", "--old", "2"],
                 ["history", "nope"], ["show", "999"]):
        remote, local = served.remote(*args), served.local(*args)
        assert (remote.code, remote.out, remote.err) == (local.code, local.out, local.err), \
            f"{remote}\n{local}"
    for name in ("remote.json", "local.json"):
        runner = served.remote if name.startswith("remote") else served.local
        out = ok(runner("export", "-o", tmp_path / name, "--trusted-size", "2"))
        assert out.out.startswith(f"wrote {tmp_path / name} (")
    assert (tmp_path / "remote.json").read_bytes() == (tmp_path / "local.json").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    refused(served.remote("export", "-o", tmp_path / "remote.json"), 2, "exists")
    ok(served.remote("export", "-o", tmp_path / "remote.json", "--force"))
    v.verify_bundle((tmp_path / "remote.json").read_bytes(),
                    [v.VerifierKey.parse(served.store.log_vkey)])


def test_refusals_have_the_local_exit_codes(served: Served, tmp_path: Path) -> None:
    for args in (["record", "nope", "--event", "x"], ["tag", "nope", "prod"],
                 ["record", "m", "--event", ""], ["prove", "consistency", "--old", "9"],
                 ["export", "-o", tmp_path / "b.json", "--trusted-size", "99"],
                 ["prove", "inclusion", "0", "--size", "99"]):
        remote, local = served.remote(*args), served.local(*args)
        assert (remote.code, remote.out) == (local.code, local.out), f"{remote}\n{local}"
        assert remote.err.splitlines()[0] == local.err.splitlines()[0] or remote.code == \
            local.code
    ok(served.remote("register", "m1", *MODEL))
    refused(served.remote("register", "m1", *MODEL[:-1], "other"), 1, "other fields")
    refused_json(served.remote("record", "nope", "--event", "x", "--json"), 1,
                 cls="RuleError")


def test_options_of_the_other_side_are_refused(served: Served, tmp_path: Path) -> None:
    s = served.store
    refused(cli("--server", served.url, "--store", s.dir, "checkpoint"), 2, "--store",
            hint="--log-vkey")
    refused(cli("--server", served.url, "--log-key", s.log_key, "checkpoint"), 2, "--log-key")
    refused(cli("--log-vkey", s.log_vkey, "--store", s.dir, "checkpoint"), 2, "--log-vkey")
    refused(cli("checkpoint", env={"MODELSEAL_SERVER": served.url,
                                   "MODELSEAL_STORE": str(s.dir)}), 2, "both")
    # an option beats the other side's variable
    assert ok(cli("--store", s.dir, "checkpoint", env={"MODELSEAL_SERVER": "http://x"})).out \
        == ok(served.remote("checkpoint")).out
    refused(cli("--server", served.url, "checkpoint"), 2, "no log verifier key")
    refused(cli("--server", served.url, "--log-vkey", "nonsense", "checkpoint"), 2,
            "--log-vkey")
    refused(cli("--server", "ftp://x", "--log-vkey", s.log_vkey, "checkpoint"), 2, "--server")
    refused(served.remote("audit"), 2, "local store")
    refused(cli("--server", served.url, "init", tmp_path / "new", "--origin", "x.org/m"), 2,
            "init")
    assert not (tmp_path / "new").exists()
    assert "--server URL" in ok(cli("--help")).out and "--log-vkey" in ok(cli("--help")).out


def test_network_failures_are_one_line_and_exit_4(served: Served) -> None:
    port = _closed_port()
    refused_json(served.remote("--timeout", "3", "checkpoint", "--json", env={
        "MODELSEAL_SERVER": f"http://127.0.0.1:{port}"}), 4, "connection refused",
        cls="ServerUnavailableError")
    r = refused(cli("--server", f"http://127.0.0.1:{port}", "--timeout", "1", "record", "m",
                    "--event", "x", env={**served.env, "MODELSEAL_SERVER": ""}), 4,
                "connection refused", hint="safe")
    assert len(r.err.splitlines()) == 2
    refused(cli("--server", served.url.replace("http:", "https:"), "--timeout", "2",
                "checkpoint", env={**served.env, "MODELSEAL_SERVER": ""}), 4, "TLS")


def test_a_misbehaving_server_is_exit_1_and_the_state_is_kept(
        served: Served, tmp_path: Path) -> None:
    ok(served.remote("register", "m1", *MODEL))
    state = served.state.read_bytes()
    rogue = LogKey.generate(served.fake.ledger.origin)
    refused(served.remote("checkpoint", env={"MODELSEAL_LOG_VKEY": rogue.vkey}), 1,
            "not the pinned", hint="evidence")
    served.fake.tamper = lambda path, a: (a[0], a[1], a[2].replace(b"\n\n", b"\nx\n\n", 1)) \
        if path == "/checkpoint" else a
    refused(served.remote("checkpoint"), 1)
    assert served.state.read_bytes() == state
    served.fake.tamper = None
    refused(served.remote("history", "m1", env={"MODELSEAL_KEY": ""}), 1, hint="--key")
    served.state.write_bytes(b"{}")
    refused(served.remote("checkpoint"), 3, "state file", hint="--client-state")
