"""The HTTP client (ledger/client): every verb over specs/api.md, receipts and kept
checkpoints verified, retries, the error map and the state file."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from ledger import ActorKey, Ledger, LogKey, sign_statement
from ledger.client import (
    ArgumentRefusedError,
    Client,
    ForkError,
    NotFoundError,
    ReadForbiddenError,
    RollbackError,
    ServerError,
    ServerMisbehaviourError,
    ServerUnavailableError,
    StateFileError,
    UnauthenticatedError,
)
from ledger.client._errors import error_from_answer
from ledger.client._state import FileState, Kept, format_state, parse_state
from ledger.errors import StoreBusyError, StoreFullError
from tests.client_support import FakeServer, SocketServer, error

ORIGIN = "example.com/models"
MODEL = dict(owner="risk-team", model_type="ml_model", tier="high", purpose="scores cards")


@pytest.fixture
def admin() -> ActorKey:
    return ActorKey.generate("risk-admin")


@pytest.fixture
def log_key() -> LogKey:
    return LogKey.generate(ORIGIN)


@pytest.fixture
def led(tmp_path: Path, log_key: LogKey, admin: ActorKey) -> Iterator[Ledger]:
    ledger = Ledger.create(tmp_path / "store", origin=ORIGIN, log_key=log_key, admin=admin)
    yield ledger
    ledger.close()


@pytest.fixture
def fake(led: Ledger) -> FakeServer:
    return FakeServer(led)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(fake: FakeServer, actor: ActorKey | None, **kw: Any) -> Client:
    c = Client("http://log.test", log_key=fake.ledger.log_vkey, actor=actor,
               transport=fake.transport(), **kw)
    c._http.sleep = Sleeps()
    return c


@pytest.fixture
def client(fake: FakeServer, admin: ActorKey) -> Iterator[Client]:
    with make_client(fake, admin) as c:
        yield c


def _fake_of(client: Client) -> FakeServer:
    """The fake server behind a client's mock transport."""
    fake: FakeServer = client._http._client._transport.handler.__self__  # type: ignore
    return fake


def adds(fake: FakeServer) -> list[bytes]:
    return [body for method, path, body in fake.requests if path == "/add"]


# -- every verb ---------------------------------------------------------------------------

def test_every_verb_round_trips_and_answers_what_the_ledger_holds(
        client: Client, led: Ledger, admin: ActorKey) -> None:
    ref = client.register(name="m1", **MODEL, metadata={"team": "cards"})
    assert ref.snapshot == led.history("m1")[0] and ref.model_hash == \
        led.inventory_at()["m1"].model_hash
    snap = client.record("m1", "validated", {"score": 0.91})
    assert snap == led.history("m1")[-1] and snap.model_hash == ref.model_hash
    assert client.update("m1", tier="medium") == led.history("m1")[-1]
    t = client.tag("m1", "production")
    assert t.target == snap.snapshot_hash or t.target == led.history("m1")[-2].snapshot_hash
    assert t.moved == led.history("m1")[-1]
    t2 = client.tag("m1", "canary", snapshot=ref.snapshot.snapshot_hash)
    assert t2.target == ref.snapshot.snapshot_hash
    client.register(name="m2", **MODEL)
    g = client.register_group(name="g", owner="risk-team", tier="high", purpose="bundle",
                              members=["m1", "m2"])
    assert led.members("g") == {"m1": None, "m2": None} and g.model_type == "group"
    assert client.remove_member("g", "m2", reason="split") == led.history("g")[-1]
    assert client.add_member("g", "m2", role="backup") == led.history("g")[-1]
    assert client.retire("m2", reason="old") == led.history("m2")[-1]
    pipeline = ActorKey.generate("pipeline")
    assert client.grant(pipeline.vkey) is None
    assert client.revoke("pipeline", reason="rotated") is None
    data = sign_statement(admin, led.origin, "event", log_id=led.log_id,
                          claimed_at=v.from_ns(led._now_ns()), model="m1",
                          event_type="deployed", payload={})
    assert client.submit(data) == led.history("m1")[-1]
    assert client.submit(data) == led.history("m1")[-1]  # the same bytes: the same entry
    assert client.kept_checkpoint() == led.checkpoint()
    # reads agree with the ledger's
    assert client.history("m1") == led.history("m1")
    assert client.history("nope") == []
    assert client.tags("m1") == led.tags("m1")
    assert client.members("g") == led.members("g")
    assert client.latest("m1") == led.latest("m1")
    assert client.latest("m1", "canary") == led.latest("m1", "canary")
    assert {n: s.to_json() for n, s in client.inventory_at().items()} == \
        {n: s.to_json() for n, s in led.inventory_at().items()}
    assert client.entry(3) == led.entry(3)
    assert client.entry(snap.snapshot_hash) == led.entry(snap.index)
    with pytest.raises(NotFoundError):
        client.entry(10_000)
    assert client.size == led.size and client.log_id == led.log_id


def test_register_again_with_the_same_fields_returns_the_ref(client: Client, led: Ledger
                                                            ) -> None:
    first = client.register(name="m1", **MODEL)
    size = led.size
    assert client.register(name="m1", **MODEL) == first
    assert led.size == size
    with pytest.raises(v.RuleError, match="other fields"):
        client.register(name="m1", **{**MODEL, "tier": "low"})
    # a group registered again adds only the members it lacks
    client.register(name="m2", **MODEL)
    client.register_group(name="g", owner="o", tier="t", purpose="p", members=["m1"])
    client.register_group(name="g", owner="o", tier="t", purpose="p", members=["m1", "m2"])
    assert led.members("g") == {"m1": None, "m2": None}


def test_a_writer_that_may_not_read_gets_an_empty_model_hash(
        fake: FakeServer, client: Client) -> None:
    client.register(name="m1", **MODEL)
    with make_client(fake, client.actor) as other:
        fake.fail = lambda r: error(403, "AuthorizationError", "writers may not read") \
            if r.url.path.startswith("/history") else None
        snap = other.record("m1", "trained")
        assert snap.model_hash == "" and snap.event_type == "trained"
        with pytest.raises(v.RuleError):  # cannot tell the same fields from others
            other.register(name="m1", **MODEL)


def test_refusals_raise_the_ledgers_classes_and_write_nothing(
        client: Client, led: Ledger) -> None:
    with pytest.raises(v.RuleError):
        client.record("unknown", "trained")
    stranger = Client("http://log.test", log_key=led.log_vkey,
                      actor=ActorKey.generate("stranger"),
                      transport=client._http._client._transport)
    with pytest.raises(v.AuthorizationError):
        stranger.record("m", "x")
    with pytest.raises(v.MalformedInputError):
        client.submit(b"{not a statement")
    with pytest.raises(ValueError):
        client.record("m", "")  # the schema refuses it before anything is sent
    assert led.size == 1


def test_unsigned_protected_reads_are_refused(fake: FakeServer) -> None:
    with make_client(fake, None) as anon:
        assert anon.checkpoint() == fake.ledger.checkpoint()  # public
        with pytest.raises(UnauthenticatedError):
            anon.history("m1")
        with pytest.raises(ValueError, match="actor key"):
            anon.record("m1", "x")


def test_proofs_and_bundles(client: Client, led: Ledger) -> None:
    ref = client.register(name="m1", **MODEL)
    client.record("m1", "trained")
    proof = client.prove_inclusion(ref.snapshot)
    assert proof == led.prove_inclusion(ref.snapshot.index, proof.size)
    assert client.prove_inclusion(ref.snapshot.snapshot_hash, size=led.size).size == led.size
    assert client.prove_inclusion(1).index == 1
    cons = client.prove_consistency(1)
    assert cons == led.prove_consistency(1)
    out = io.BytesIO()
    n = client.export_bundle(out=out, trusted_size=1)
    assert out.getvalue() == led.export_bundle(trusted_size=1) and n == len(out.getvalue())
    v.verify_bundle(out.getvalue(), [v.VerifierKey.parse(led.log_vkey)])


# -- receipts and checkpoints that must not be believed ---------------------------------

def _receipt(answer: tuple[int, dict[str, str], bytes]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(answer[2])
    return doc


def _with(answer: tuple[int, dict[str, str], bytes], **changes: Any
          ) -> tuple[int, dict[str, str], bytes]:
    doc = {**_receipt(answer), **changes}
    return answer[0], answer[1], json.dumps(doc).encode()


def _flip(entry_b64: str) -> str:
    raw = bytearray(base64.b64decode(entry_b64))
    i = raw.index(b'validated') + 2
    raw[i] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _other_log(tmp: Path, log_key: LogKey, admin: ActorKey, events: int) -> Ledger:
    other = Ledger.create(tmp, origin=ORIGIN, log_key=log_key, admin=admin)
    other.register(name="m1", **MODEL)
    for i in range(events):
        other.record("m1", f"other{i}")
    return other


@pytest.mark.parametrize("attack", ["byte", "other-statement", "other-index", "other-proof",
                                    "other-key", "recorded-at"])
def test_a_receipt_that_does_not_prove_the_statement_is_refused(
        attack: str, client: Client, led: Ledger, tmp_path: Path) -> None:
    client.register(name="m1", **MODEL)
    client.record("m1", "trained")
    kept = client.kept_checkpoint()
    older = led.receipt(1)

    def tamper(path: str, answer: tuple[int, dict[str, str], bytes]
               ) -> tuple[int, dict[str, str], bytes]:
        if path != "/add":
            return answer
        doc = _receipt(answer)
        if attack == "byte":
            return _with(answer, entry=_flip(doc["entry"]))
        if attack == "other-statement":
            return _with(answer, entry=base64.b64encode(older.entry).decode(),
                         index=older.index, snapshot=older.snapshot_hash,
                         proof=older.proof.to_text().decode())
        if attack == "other-index":
            return _with(answer, index=doc["index"] - 1)
        if attack == "other-proof":  # a valid proof of this entry's index, other checkpoint
            text = led.prove_inclusion(1, 2).to_text().decode()
            return _with(answer, proof=text.replace("index 1", f"index {doc['index']}"))
        if attack == "recorded-at":
            return _with(answer, recorded_at="2020-01-01T00:00:00.000000000Z")
        rogue = LogKey.generate(ORIGIN)  # same origin, another key
        note = led.prove_inclusion(doc["index"]).checkpoint
        cp = v.Checkpoint.parse_note(note, [led._log_key.key])  # type: ignore[union-attr]
        text = v.checkpoint_text(cp.origin, cp.size, cp.root, cp.extensions)
        forged = v.assemble_note(text, [v.signature_line(ORIGIN, rogue.key_id,
                                                         rogue.sign(text))])
        proof = doc["proof"].encode()
        return _with(answer, proof=(proof[: proof.index(b"\n\n") + 2] + forged).decode())

    fake = _fake_of(client)
    fake.tamper = tamper
    with pytest.raises(ServerMisbehaviourError, match=WHY[attack]):
        client.record("m1", "validated", {"score": 1})
    assert client.kept_checkpoint() == kept  # nothing kept from it


WHY = {"byte": "does not parse|another statement", "other-statement": "another statement",
       "other-index": "names entry", "other-proof": "does not include",
       "other-key": "not signed by the pinned", "recorded-at": "recorded_at"}


def test_a_fork_at_the_same_size_is_refused(client: Client, led: Ledger, log_key: LogKey,
                                            admin: ActorKey, tmp_path: Path) -> None:
    client.register(name="m1", **MODEL)
    client.record("m1", "trained")
    kept = client.kept_checkpoint()
    other = _other_log(tmp_path / "fork", log_key, admin, events=1)
    assert other.size == led.size
    fake = _fake_of(client)
    fake.ledger = other
    with pytest.raises(ForkError, match="two roots"):
        client.checkpoint()
    assert client.kept_checkpoint() == kept
    # a larger tree that does not extend the kept one: a fork too
    other.record("m1", "more")
    with pytest.raises(ForkError):
        client.checkpoint()
    assert client.kept_checkpoint() == kept
    other.close()


def test_a_rollback_is_refused_and_an_honest_old_checkpoint_is_not(
        client: Client, led: Ledger, log_key: LogKey, admin: ActorKey, tmp_path: Path
) -> None:
    client.register(name="m1", **MODEL)
    client.record("m1", "trained")
    kept = client.kept_checkpoint()
    assert kept is not None
    # an honest server shows an older checkpoint (a receipt of an early entry): fine
    client.prove_inclusion(0)
    assert client.kept_checkpoint() == kept
    # a server that lost its last entries: it cannot prove its smaller tree
    short = _other_log(tmp_path / "short", log_key, admin, events=0)
    fake = _fake_of(client)
    fake.ledger = short
    with pytest.raises(RollbackError):
        client.checkpoint()
    assert client.kept_checkpoint() == kept
    short.close()


def test_a_server_with_another_log_key_is_refused(fake: FakeServer, admin: ActorKey) -> None:
    rogue = LogKey.generate(ORIGIN)
    c = Client("http://log.test", log_key=rogue.vkey, actor=admin,
               transport=fake.transport())
    with pytest.raises(ServerMisbehaviourError, match="not the pinned"):
        c.record("m1", "x")
    assert adds(fake) == []  # nothing was sent
    with pytest.raises(ServerMisbehaviourError):
        c.checkpoint()


# -- retries -----------------------------------------------------------------------------

def test_retries_resend_the_same_bytes_and_land_once(fake: FakeServer, client: Client,
                                                     led: Ledger) -> None:
    client.register(name="m1", **MODEL)
    failures = iter(["connect", "503", "500", "lost-answer"])

    def fail(request: httpx.Request) -> Any:
        if request.url.path != "/add":
            return None
        kind = next(failures, None)
        if kind == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if kind == "503":
            return error(503, "Busy", "queue full")
        if kind == "500":
            return error(500, "InternalError", "oops")
        if kind == "lost-answer":  # appended, but the answer never came
            fake.answer("POST", "/add", {}, request.read())
            raise httpx.ReadTimeout("timed out", request=request)
        return None

    fake.fail = fail
    size = led.size
    snap = client.record("m1", "trained")
    bodies = adds(fake)[-5:]
    assert len(set(bodies)) == 1 and len(bodies) == 5
    assert led.size == size + 1 and snap == led.history("m1")[-1]


def test_503_retry_after_is_honoured_and_capped(fake: FakeServer, client: Client,
                                                led: Ledger) -> None:
    client.register(name="m1", **MODEL)
    answers = iter([error(503, "Busy", "full", **{"retry-after": "2"})])
    fake.fail = lambda r: next(answers, None) if r.url.path == "/add" else None
    client.record("m1", "trained")
    assert 2.0 in client._http.sleep  # type: ignore[operator]
    fake.fail = lambda r: error(503, "Busy", "full", **{"retry-after": "3600"}) \
        if r.url.path == "/add" else None
    with pytest.raises(StoreBusyError):
        client.record("m1", "again")


def test_retries_run_out(fake: FakeServer, led: Ledger, admin: ActorKey) -> None:
    def refuse(request: httpx.Request) -> Any:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    fake.fail = refuse
    with make_client(fake, admin, retries=2) as c, \
            pytest.raises(ServerUnavailableError, match="connection refused"):
        c.checkpoint()
    assert len(fake.requests) == 3
    fake.fail = lambda r: error(500, "InternalError", "boom")
    with make_client(fake, admin, retries=1) as c, pytest.raises(ServerError) as info:
        c.checkpoint()
    assert info.value.status == 500
    fake.fail = lambda r: error(507, "StoreFullError", "disk full")
    with make_client(fake, admin) as c, pytest.raises(StoreFullError):
        c.record("m", "x")


def test_connection_refused_on_a_real_socket(led: Ledger, admin: ActorKey) -> None:
    with SocketServer(FakeServer(led)) as server:
        url = server.url
        with Client(url, log_key=led.log_vkey) as c:
            assert c.checkpoint() == led.checkpoint()
    with Client(url, log_key=led.log_vkey, retries=1, timeout=5) as c, \
            pytest.raises(ServerUnavailableError, match="refused"):
        c.checkpoint()


# -- the error map -------------------------------------------------------------------------

@pytest.mark.parametrize("status,name,cls", [
    (400, "MalformedInputError", v.MalformedInputError),
    (401, "Unauthenticated", UnauthenticatedError),
    (401, "ExpiredSignatureError", UnauthenticatedError),
    (400, "MalformedRequestError", v.MalformedInputError),
    (400, "ArgumentError", ArgumentRefusedError),
    (403, "ForbiddenRoleError", ReadForbiddenError),  # an AuthorizationError
    (503, "NonceCacheFullError", StoreBusyError),
    (403, "AuthorizationError", v.AuthorizationError),
    (403, "SignatureError", v.SignatureError),
    (404, "NotFound", NotFoundError),
    (409, "RuleError", v.RuleError),
    (409, "ChainError", v.ChainError),
    (409, "TimeBoundError", v.TimeBoundError),
    (503, "Busy", StoreBusyError),
    (507, "StoreFullError", StoreFullError),
    (409, "MalformedInputError", ServerError),  # a name with a status it never has
    (500, "InternalError", ServerError),
    (418, "Teapot", ServerError),
])
def test_error_names_map_to_the_ledgers_classes(status: int, name: str, cls: type) -> None:
    exc = error_from_answer(status, error(status, name, "why\nnot")[2])
    assert type(exc) is cls and "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.integers(100, 599), st.one_of(
    st.binary(max_size=300),
    st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
        st.sampled_from(["error", "message", "x"]),
        st.one_of(st.text(max_size=40), st.integers(), st.none(), st.lists(st.integers())),
        max_size=3))))
def test_any_error_answer_maps_to_a_typed_error(status: int, body: bytes) -> None:
    exc = error_from_answer(status, body)
    assert isinstance(exc, (ServerError, v.VerifierError, StoreBusyError, StoreFullError))


# -- the state file ----------------------------------------------------------------------

def test_state_file_keeps_the_latest_and_survives_reopening(
        fake: FakeServer, admin: ActorKey, tmp_path: Path) -> None:
    state = tmp_path / "state" / "client.json"
    with make_client(fake, admin, state_file=state) as c:
        c.register(name="m1", **MODEL)
    assert os.stat(state).st_mode & 0o777 == 0o600
    doc = json.loads(state.read_text())
    assert set(doc) == {"origin", "size", "root", "checkpoint"}
    assert doc["size"] == fake.ledger.size and doc["checkpoint"] == \
        fake.ledger.checkpoint().decode()
    with make_client(fake, admin, state_file=state) as c:
        assert c.kept_checkpoint() == fake.ledger.checkpoint()
    state.write_text(state.read_text().replace('"size": ', '"size": 1'))
    with make_client(fake, admin, state_file=state) as c, pytest.raises(StateFileError):
        c.checkpoint()


def test_state_file_shared_by_two_processes(led: Ledger, admin: ActorKey, tmp_path: Path
                                            ) -> None:
    led.register(name="m1", **MODEL)
    state = tmp_path / "shared.json"
    admin.save(tmp_path / "admin.key")
    script = textwrap.dedent("""
        import sys
        from ledger import ActorKey
        from ledger.client import Client
        url, vkey, key, state = sys.argv[1:5]
        with Client(url, log_key=vkey, actor=ActorKey.load(key), state_file=state) as c:
            for i in range(15):
                c.record("m1", "trained", {"i": i})
                c.checkpoint()
    """)
    with SocketServer(FakeServer(led)) as server:
        args = [sys.executable, "-c", script, server.url, led.log_vkey,
                str(tmp_path / "admin.key"), str(state)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        procs = [subprocess.Popen(args, env=env, stderr=subprocess.PIPE) for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()
    kept = parse_state(state.read_bytes(), v.VerifierKey.parse(led.log_vkey))
    assert kept.size == led.size == 32 and kept.note == led.checkpoint()


def test_a_refused_update_leaves_the_file_unchanged(tmp_path: Path, log_key: LogKey,
                                                    led: Ledger) -> None:
    fs = FileState(tmp_path / "s.json", log_key.key)
    cp = v.Checkpoint.parse_note(led.checkpoint(), [log_key.key])
    fs.update(lambda kept: Kept.of(cp), 5)
    before = (tmp_path / "s.json").read_bytes()

    def refuse(kept: Kept | None) -> Kept | None:
        raise ForkError("no")

    with pytest.raises(ForkError):
        fs.update(refuse, 5)
    assert (tmp_path / "s.json").read_bytes() == before
    assert format_state(parse_state(before, log_key.key)) == before


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=400),
    st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
        st.sampled_from(["origin", "size", "root", "checkpoint", "x"]),
        st.one_of(st.text(max_size=60), st.integers(), st.booleans(), st.none()),
        max_size=5))))
def test_the_state_parser_raises_only_its_own_error(data: bytes) -> None:
    key = v.VerifierKey.parse(_STATE_KEY.vkey)
    with pytest.raises(StateFileError):
        parse_state(data, key)


_STATE_KEY = LogKey.generate(ORIGIN)


def test_one_client_shared_by_threads(client: Client, led: Ledger) -> None:
    import threading

    client.register(name="m1", **MODEL)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                client.record("m1", "trained", {"thread": n, "i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and led.size == 2 + 30
    assert client.checkpoint() == led.checkpoint() == client.kept_checkpoint()


def test_an_export_cut_short_starts_over(fake: FakeServer, client: Client, led: Ledger
                                         ) -> None:
    client.register(name="m1", **MODEL)
    cuts = iter([True])

    class Cut(httpx.SyncByteStream):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self) -> Iterator[bytes]:
            yield self.data[:100]
            raise httpx.ReadError("connection reset")

    original = fake.handle

    def handle(request: httpx.Request) -> httpx.Response:
        resp = original(request)
        if request.url.path == "/bundle" and next(cuts, False):
            # framed as a streamed answer is (chunked), and cut part way
            return httpx.Response(200, headers={"Transfer-Encoding": "chunked"},
                                  stream=Cut(resp.content))
        return resp

    c = Client("http://log.test", log_key=led.log_vkey, actor=client.actor,
               transport=httpx.MockTransport(handle))
    c._http.sleep = Sleeps()
    out = io.BytesIO()
    out.write(b"keep")
    c.export_bundle(out=out)
    assert out.getvalue() == b"keep" + led.export_bundle()
    cuts = iter([True])

    class NoSeek(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            return len(b)

    with pytest.raises(ServerUnavailableError, match="rewound"):
        c.export_bundle(out=NoSeek())  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**63 - 1))
def test_times_round_trip_with_nanoseconds(ns: int) -> None:
    from ledger.client._wire import parse_rfc3339, rfc3339, same_time

    text = rfc3339(ns)
    assert parse_rfc3339(text) == (ns, 9) and same_time(text, ns)
    assert same_time(v.iso(ns), ns)  # microseconds, as the ledger prints for people
    assert parse_rfc3339(text[:-1] + "+01:00")[0] == ns - 3600 * 10**9
