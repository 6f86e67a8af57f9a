"""ReadForbiddenError (403 ForbiddenRoleError) from a server that answers it where the
spec never does (a write), and on the reads a writer's register/record path makes and
expects to be refused (ledger/client/_writes.py catches AuthorizationError)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Ledger, LogKey
from tests.cli_support import MODEL, Run, Store, cli, init_store, ok
from tests.client_support import Answer, FakeServer, SocketServer, error


class _Served:
    def __init__(self, store: Store, fake: FakeServer, url: str, state: Path) -> None:
        self.store, self.fake, self.url, self.state = store, fake, url, state

    def remote(self, *args: str, key: Path | None = None) -> Run:
        return cli(*args, env={"MODELSEAL_SERVER": self.url,
                               "MODELSEAL_LOG_VKEY": self.store.log_vkey,
                               "MODELSEAL_KEY": str(key or self.store.admin_key),
                               "MODELSEAL_CLIENT_STATE": str(self.state)})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[_Served]:
    store = init_store(tmp_path)
    ledger = Ledger.open(store.dir, log_key=LogKey.load(store.log_key))
    fake = FakeServer(ledger)
    with SocketServer(fake) as server:
        yield _Served(store, fake, server.url, tmp_path / "state" / "client.json")
    ledger.close()


def _forbid_reads(path: str, answer: Answer) -> Answer:
    """Every protected read refused as for a writer's key (spec §6.3 step 15)."""
    if path.startswith(("/history/", "/entry/", "/entries", "/inventory", "/bundle",
                        "/proof/inclusion")):
        return error(403, "ForbiddenRoleError", "ml-pipeline's role 'writer' may not read")
    return answer


# Held: a writer's key whose reads are refused (403 ForbiddenRoleError) still registers
# and records through --server: the client's read of the model's history is skipped.
def test_writer_path_survives_read_forbidden(served: _Served) -> None:
    writer = served.store.writer("ml-pipeline")
    served.fake.tamper = _forbid_reads
    ok(served.remote("register", "fraud_scoring", *MODEL, key=writer))
    ok(served.remote("record", "fraud_scoring", "--event", "retrained", key=writer))


# Held: a read refused for the key's role gives the reader-role hint, exit 1.
def test_read_forbidden_hint(served: _Served) -> None:
    ok(served.remote("register", "fraud_scoring", *MODEL))
    served.fake.tamper = _forbid_reads
    run = served.remote("history", "fraud_scoring")
    assert run.code == 1, str(run)
    assert "--role reader" in run.err, str(run)


# FINDING (low): ledger/client/_errors.py:94 maps every 403 ForbiddenRoleError to
# ReadForbiddenError, whatever the request; a server (or a proxy in front of it) that
# answers a *write* with it makes `modelseal register --server` print "reads through
# --server need a key granted the reader or admin role ... modelseal grant <vkey> --role
# reader" (cli/errors.py:126): advice to grant a read role for a refused write. Expected:
# a ForbiddenRoleError to a POST is reported as the write refused (the writer hint), or as
# the server misbehaving (specs/api.md: only reads answer it).
def test_forbidden_role_on_a_write_is_not_given_the_reader_hint(served: _Served) -> None:
    def refuse_add(path: str, answer: Answer) -> Answer:
        if path == "/add":
            return error(403, "ForbiddenRoleError", "role may not read")
        return answer
    served.fake.tamper = refuse_add
    run = served.remote("register", "fraud_scoring", *MODEL)
    assert run.code != 0, str(run)
    assert "--role reader" not in run.err, str(run)
