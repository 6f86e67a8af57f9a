"""The witness (ledger/witness, specs/witness.md): C2SP tlog-witness add-checkpoint, every
status it answers, its request parser, its compare-and-swap, and its state across restarts
and a kill -9 of a real process."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings, strategies as st
from starlette.testclient import TestClient

import verifier as v
from ledger.errors import StoreError
from ledger.keys import LogKey, WitnessSigner
from ledger.witness import MAX_BODY, Refused, Witness, WitnessState, build_app, parse_request
from tests import reference as ref
from tests import witness_support
from tests.witness_support import ORIGIN, T0, Clock, FakeLog
from verifier.cosignature import WitnessKey, verify_cosignatures
from verifier.encoding import b64encode

ROOT = Path(__file__).resolve().parent.parent


# the witness fixtures shared with tests/attack_issue12 (pytest finds them by these names)
signer, log, state = witness_support.signer, witness_support.log, witness_support.state


@pytest.fixture
def witness(state: WitnessState, signer: WitnessSigner, log: FakeLog) -> Witness:
    return Witness(state, signer, [log.key.key], clock=Clock())


@pytest.fixture
def client(witness: Witness) -> Iterator[TestClient]:
    with TestClient(build_app(witness), base_url="http://witness.test") as c:
        yield c


def cosigned(note: bytes, lines: bytes, signer: WitnessSigner) -> int:
    """The timestamp of ``signer``'s one verified cosignature in ``lines`` over ``note``."""
    found = verify_cosignatures(note + lines, [signer.witness_key])
    assert len(found) == 1 and lines.count(b"\n") == 1
    return found[0].timestamp


# -- the protocol ---------------------------------------------------------------------------

def test_cosigns_a_first_checkpoint_then_its_extensions(
        client: TestClient, log: FakeLog, signer: WitnessSigner, state: WitnessState) -> None:
    r = client.post("/add-checkpoint", content=log.body(0))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    stamp = cosigned(log.note(), r.content, signer)
    assert stamp == int((T0 + timedelta(seconds=1)).timestamp())
    rec = state.get(ORIGIN)
    assert rec is not None and rec.size == 5 and rec.root == ref.mth(log.leaves)
    for grow in (1, 2, 7, 50):
        old = len(log.leaves)
        log.grow(grow)
        r = client.post("/add-checkpoint", content=log.body(old))
        assert r.status_code == 200, r.text
        cosigned(log.note(), r.content, signer)
    # the same size again, with its own root: cosigned again (a fresh timestamp)
    r = client.post("/add-checkpoint", content=log.body(len(log.leaves)))
    assert r.status_code == 200
    assert cosigned(log.note(), r.content, signer) > stamp


def test_the_monitors_checkpoint_holds_the_log_signature_and_the_cosignature(
        client: TestClient, log: FakeLog, signer: WitnessSigner) -> None:
    path = f"/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"
    assert client.get(path).status_code == 404
    other = WitnessSigner.generate("other.example/w")
    foreign = other.cosign(v.checkpoint_text(ORIGIN, 5, ref.mth(log.leaves)), 7)
    r = client.post("/add-checkpoint", content=v.format_add_checkpoint(
        0, [], log.note(extra_sig=foreign)))
    assert r.status_code == 200
    got = client.get(path)
    assert got.status_code == 200
    assert got.content == log.note() + r.content  # another witness's line is not kept
    cp = v.Checkpoint.parse_note(got.content, [log.key.key])
    assert cp.size == 5
    assert len(verify_cosignatures(got.content, [signer.witness_key])) == 1
    assert client.get("/" + "0" * 64 + "/checkpoint").status_code == 404
    assert client.get("/nothex/checkpoint").status_code == 404


def test_409_names_the_size_the_witness_cosigned(client: TestClient, log: FakeLog) -> None:
    log.grow(3)
    r = client.post("/add-checkpoint", content=log.body(3))  # the witness knows nothing: 0
    assert r.status_code == 409
    assert r.headers["content-type"] == "text/x.tlog.size"
    assert r.content == b"0\n"
    assert client.post("/add-checkpoint", content=log.body(0, 5)).status_code == 200
    for old in (0, 4, 6):
        r = client.post("/add-checkpoint", content=log.body(old))
        assert (r.status_code, r.content) == (409, b"5\n")
    assert client.post("/add-checkpoint", content=log.body(5)).status_code == 200


def test_400_for_malformed_requests(client: TestClient, log: FakeLog,
                                    state: WitnessState) -> None:
    note = log.note()
    h = b64encode(bytes(32))
    bodies = [
        b"", b"old 0\n", b"old 0" + note, b"old x\n\n" + note, b"old 01\n\n" + note,
        b"old -1\n\n" + note, b"Old 0\n\n" + note, b"old 0 \n\n" + note,
        ("old 0\n" + h + "=\n\n").encode() + note,  # not base64
        ("old 0\n" + h[:-2] + "\n\n").encode() + note,  # not 32 bytes
        ("old 0\n" + "\n".join([h] * 64) + "\n\n").encode() + note,  # 64 lines
        b"old 0\n\n" + note.replace(b"\n\n", b"\n"),  # a note without signatures
        b"old 0\n\nexample.com/log\nnot a size\nAAAA\n\n" + note.split(b"\n\n")[1],
        b"old 0\xff\n\n" + note,
        b"old 6\n\n" + note,  # old above the checkpoint's size
    ]
    for body in bodies:
        r = client.post("/add-checkpoint", content=body)
        assert r.status_code == 400, (body, r.text)
        assert r.headers["content-type"].startswith("text/plain")
        assert "Traceback" not in r.text
    assert state.get(ORIGIN) is None


def test_403_without_a_valid_signature_of_the_log(client: TestClient, log: FakeLog) -> None:
    # another key with the log's name: no trusted signature
    impostor = FakeLog(key=LogKey.generate(ORIGIN))
    impostor.leaves = list(log.leaves)
    assert client.post("/add-checkpoint", content=impostor.body(0)).status_code == 403
    # the log's key ID and name, a signature that fails
    note = log.note()
    bad = bytearray(note)
    bad[-5] ^= 1
    r = client.post("/add-checkpoint", content=b"old 0\n\n" + bytes(bad))
    assert r.status_code in (400, 403)  # a flipped base64 char may break the encoding
    # a signature line with the log's name and key ID whose signature fails: 403
    head, _, line = note.partition(b"\n\n")
    name = line.split(b" ")[1]
    forged = head + b"\n\n\xe2\x80\x94 " + name + b" " + \
        b64encode(log.key.key_id + bytes(64)).encode() + b"\n"
    assert client.post("/add-checkpoint", content=b"old 0\n\n" + forged).status_code == 403
    # only another witness's cosignature: no signature of the log
    other = WitnessSigner.generate("other.example/w")
    text = head + b"\n"
    only = text + b"\n" + other.cosign(text, 9)
    assert client.post("/add-checkpoint", content=b"old 0\n\n" + only).status_code == 403


def test_404_for_an_unknown_origin(client: TestClient) -> None:
    other = FakeLog("example.com/other")
    other.grow(2)
    r = client.post("/add-checkpoint", content=other.body(0))
    assert r.status_code == 404
    assert client.get("/add-checkpoint").status_code == 405
    assert client.post("/add-checkpoint/").status_code == 404
    assert client.post("/nothing").status_code == 404


def test_422_for_proofs_and_roots_that_do_not_hold(
        client: TestClient, log: FakeLog, state: WitnessState) -> None:
    assert client.post("/add-checkpoint", content=log.body(0)).status_code == 200
    before = state.get(ORIGIN)
    log.grow(4)
    proof = ref.proof(5, log.leaves)
    wrong = [bytes(32)] + proof[1:]
    cases = [
        v.format_add_checkpoint(5, wrong, log.note()),  # a proof that does not verify
        v.format_add_checkpoint(5, proof[:-1], log.note()),  # one hash short
        v.format_add_checkpoint(5, [*proof, bytes(32)], log.note()),  # one hash too many
        v.format_add_checkpoint(5, [], log.note()),  # no proof at all
    ]
    fork = FakeLog(key=log.key, tag=b"fork")
    fork.grow(5)  # the same size as the cosigned one, another root: a split view
    cases.append(fork.body(5))
    fork.grow(4)
    cases.append(v.format_add_checkpoint(5, ref.proof(5, fork.leaves), fork.note()))
    for body in cases:
        r = client.post("/add-checkpoint", content=body)
        assert r.status_code == 422, r.text
    assert state.get(ORIGIN) == before
    # a proof with old 0, and an empty tree whose root is not the empty one
    fresh = FakeLog("example.com/fresh")
    w2 = Witness(state, WitnessSigner.generate("w2.example/x"), [fresh.key.key])
    fresh.grow(3)
    with pytest.raises(Refused) as e:
        w2.add_checkpoint(v.format_add_checkpoint(0, [], fresh.note()).replace(
            b"old 0\n", b"old 0\n" + b64encode(bytes(32)).encode() + b"\n"))
    assert e.value.status == 422
    text = v.checkpoint_text(fresh.origin, 0, bytes(32))
    note = text + b"\n" + v.signature_line(fresh.origin, fresh.key.key_id, fresh.key.sign(text))
    with pytest.raises(Refused) as e:
        w2.add_checkpoint(b"old 0\n\n" + note)
    assert e.value.status == 422
    empty = v.checkpoint_text(fresh.origin, 0, v.EMPTY_ROOT)
    note = empty + b"\n" + v.signature_line(fresh.origin, fresh.key.key_id, fresh.key.sign(empty))
    assert w2.add_checkpoint(b"old 0\n\n" + note).startswith("\u2014 w2.example/x ".encode())


def test_bodies_are_bounded(client: TestClient, log: FakeLog) -> None:
    r = client.post("/add-checkpoint", content=b"old 0\n\n" + b"x" * (MAX_BODY + 1))
    assert r.status_code == 413
    r = client.post("/add-checkpoint", content=log.body(0) + b"x" * MAX_BODY)
    assert r.status_code == 413
    r = client.post("/add-checkpoint?x=1", content=log.body(0))
    assert r.status_code == 400


def test_a_broken_store_is_a_500_without_details(
        client: TestClient, witness: Witness, log: FakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*a: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(witness.state, "update", broken)
    r = client.post("/add-checkpoint", content=log.body(0))
    assert r.status_code == 500 and "secret" not in r.text


# -- the parser -----------------------------------------------------------------------------

hashes = st.lists(st.binary(min_size=32, max_size=32), max_size=63)


@given(st.integers(0, 2**64 - 1), hashes, st.binary(max_size=300))
def test_parser_reads_back_what_format_writes(old: int, proof: list[bytes], note: bytes) -> None:
    req = parse_request(v.format_add_checkpoint(old, proof, note))
    assert (req.old_size, list(req.proof), req.note) == (old, proof, note)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_parser_raises_only_malformed_input(data: bytes) -> None:
    try:
        req = parse_request(data)
    except v.MalformedInputError:
        return
    # what it accepts writes back to the same bytes
    assert v.format_add_checkpoint(req.old_size, req.proof, req.note) == data


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 6))
def test_the_witness_answers_any_body_with_a_status(data: bytes, old: int) -> None:
    log = FakeLog()
    log.grow(6)
    with tempfile.TemporaryDirectory() as tmp:
        state = WitnessState(Path(tmp) / "w")
        try:
            w = Witness(state, WitnessSigner.generate("w.example/p"), [log.key.key],
                        clock=Clock())
            for body in (data, b"old %d\n\n" % old + data, log.body(old)[: len(data)]):
                try:
                    w.add_checkpoint(body)
                except Refused as exc:
                    assert exc.status in (400, 403, 404, 409, 422)
        finally:
            state.close()


# -- state: compare-and-swap, restarts ------------------------------------------------------

def test_two_threads_never_get_two_inconsistent_cosignatures(
        tmp_path: Path, signer: WitnessSigner) -> None:
    """From the same cosigned size, two conflicting extensions race: one is cosigned, the
    other refused (409: the witness moved on), every round."""
    a = FakeLog(tag=b"a")
    b = FakeLog(key=a.key, tag=b"b")
    state = WitnessState(tmp_path / "w")
    try:
        w = Witness(state, signer, [a.key.key], clock=Clock())
        a.grow(2)
        b.leaves = list(a.leaves)
        w.add_checkpoint(a.body(0))
        for _ in range(20):
            old = len(a.leaves)
            a.grow(3)
            b.grow(3)  # the same size, other leaves: a fork
            b.leaves[-1] += b"x"
            bodies = [a.body(old), b.body(old)]
            results: list[object] = [None, None]
            gate = threading.Barrier(2)

            def send(i: int, gate: threading.Barrier, bodies: list[bytes],
                     results: list[object]) -> None:
                gate.wait(5)
                try:
                    results[i] = w.add_checkpoint(bodies[i])
                except Refused as exc:
                    results[i] = exc.status

            threads = [threading.Thread(target=send, args=(i, gate, bodies, results))
                       for i in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            won = [i for i in (0, 1) if isinstance(results[i], bytes)]
            assert len(won) == 1, results
            assert results[1 - won[0]] == 409
            winner = (a, b)[won[0]]
            rec = state.get(ORIGIN)
            assert rec is not None and rec.root == ref.mth(winner.leaves)
            (b if winner is a else a).leaves = list(winner.leaves)
    finally:
        state.close()


def test_state_survives_a_restart(tmp_path: Path, signer: WitnessSigner, log: FakeLog) -> None:
    state = WitnessState(tmp_path / "w")
    Witness(state, signer, [log.key.key], clock=Clock()).add_checkpoint(log.body(0))
    state.close()
    state = WitnessState(tmp_path / "w")
    try:
        w = Witness(state, signer, [log.key.key], clock=Clock())
        fork = FakeLog(key=log.key, tag=b"f")
        fork.grow(5)
        with pytest.raises(Refused) as e:
            w.add_checkpoint(fork.body(0))
        assert (e.value.status, e.value.size) == (409, 5)
        with pytest.raises(Refused) as e:
            w.add_checkpoint(fork.body(5))
        assert e.value.status == 422
        assert state.origins() == [ORIGIN]
        log.grow(1)
        w.add_checkpoint(log.body(5))
    finally:
        state.close()
    state = WitnessState(tmp_path / "w")
    rec = state.get(ORIGIN)
    state.close()
    assert rec is not None and rec.size == 6


def test_a_log_store_is_not_a_witness_state(tmp_path: Path) -> None:
    from tests.ledger_support import Keys, make_ledger

    make_ledger(tmp_path / "store", Keys()).close()
    with pytest.raises(StoreError, match="not a witness state"):
        WitnessState(tmp_path / "store")


def test_witness_signer_keys(tmp_path: Path) -> None:
    key = WitnessSigner.generate("witness.example/k")
    assert WitnessKey.parse(key.vkey) == key.witness_key
    assert base64.b64decode(key.vkey.split("+", 2)[2])[0] == 0x04
    key.save(tmp_path / "w.key", "a long passphrase")
    again = WitnessSigner.load(tmp_path / "w.key", "a long passphrase")
    assert again.vkey == key.vkey
    with pytest.raises(Exception, match="not a modelseal log key file"):
        LogKey.load(tmp_path / "w.key", "a long passphrase")
    with pytest.raises(ValueError):
        key.cosign(b"x\n", 0)


# -- the command line and a real process ----------------------------------------------------

def _env(**extra: str) -> dict[str, str]:
    env = {k: val for k, val in os.environ.items() if not k.startswith("MODELSEAL_")}
    env.update(extra)
    return env


def _modelseal(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from cli.main import main; main()", *args],
                          capture_output=True, text=True, env=env or _env(), cwd=ROOT,
                          timeout=60)


def _start(store: Path, key: Path, *logs: str, env: dict[str, str] | None = None
           ) -> tuple[subprocess.Popen[str], str]:
    args = [a for vk in logs for a in ("--log", vk)]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "witness", "serve",
         "--store", str(store), "--key", str(key), *args, "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env or _env(),
        cwd=ROOT)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "serving on" not in line:
        proc.kill()
        proc.wait(10)
        raise AssertionError(line + proc.stderr.read())
    return proc, line.rsplit(" ", 1)[1].strip()


def test_keygen_and_serve_on_the_command_line(tmp_path: Path, log: FakeLog) -> None:
    keyfile = tmp_path / "w.key"
    env = _env(MODELSEAL_WITNESS_KEY_PASSPHRASE="twelve chars or more")
    made = _modelseal("witness", "keygen", "--name", "witness.example/cli", "--out",
                      str(keyfile), env=env)
    assert made.returncode == 0, made.stderr
    vkey = made.stdout.strip()
    wk = WitnessKey.parse(vkey)
    assert (keyfile.stat().st_mode & 0o777) == 0o600
    assert "ENCRYPTED" in keyfile.read_text()
    again = _modelseal("witness", "keygen", "--name", "x.example/y", "--out", str(keyfile), env=env)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    bad = _modelseal("witness", "serve", "--store", str(tmp_path / "s"), "--key", str(keyfile),
                     "--log", "not-a-key", env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    nopass = _modelseal("witness", "serve", "--store", str(tmp_path / "s"), "--key",
                        str(keyfile), "--log", log.key.vkey)
    assert nopass.returncode == 2 and "Traceback" not in nopass.stderr
    proc, url = _start(tmp_path / "s", keyfile, log.key.vkey, env=env)
    try:
        second = _modelseal("witness", "serve", "--store", str(tmp_path / "s"), "--key",
                            str(keyfile), "--log", log.key.vkey, "--listen", "127.0.0.1:0",
                            env=env)
        assert second.returncode == 2 and "another modelseal witness serve" in second.stderr
        with httpx.Client(base_url=url, timeout=10) as c:
            r = c.post("/add-checkpoint", content=log.body(0))
            assert r.status_code == 200
            assert len(verify_cosignatures(log.note() + r.content, [wk])) == 1
            huge = c.post("/add-checkpoint", content=log.body(5),
                          headers={"X-Big": "a" * 20000})
            assert huge.status_code == 431
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert proc.stderr is not None and "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_kill_9_never_loses_a_cosigned_checkpoint(tmp_path: Path, log: FakeLog) -> None:
    """A client sends growing checkpoints while the witness is killed (SIGKILL) at random
    moments. After each restart, the witness's size is at least the largest size it
    answered 200 for, and it refuses a fork of that size."""
    signer = WitnessSigner.generate("witness.example/k9")
    keyfile = signer.save(tmp_path / "w.key")
    store = tmp_path / "s"
    acked = 0
    rounds = 0
    deadline = time.monotonic() + 60
    while rounds < 4 and time.monotonic() < deadline:
        rounds += 1
        proc, url = _start(store, keyfile, log.key.vkey)
        killer = threading.Timer(0.3 + 0.2 * rounds, proc.kill)
        killer.start()
        try:
            with httpx.Client(base_url=url, timeout=5) as c:
                have = 0
                while time.monotonic() < deadline:
                    log.grow(1)
                    try:
                        r = c.post("/add-checkpoint", content=log.body(have))
                    except httpx.HTTPError:
                        break
                    if r.status_code == 409:
                        have = int(r.text)
                        continue
                    assert r.status_code == 200, r.text
                    have = len(log.leaves)
                    acked = max(acked, have)
        finally:
            killer.cancel()
            proc.kill()
            proc.wait(10)
        # what the witness holds after the kill: at least every size it answered 200 for
        state = WitnessState(store)
        rec = state.get(ORIGIN)
        state.close()
        assert acked == 0 or (rec is not None and rec.size >= acked)
        assert rec is None or rec.root == ref.mth(log.leaves[:rec.size])
    assert acked > 0
    proc, url = _start(store, keyfile, log.key.vkey)
    try:
        fork = FakeLog(key=log.key, tag=b"fork")
        state_size = int(httpx.post(url + "/add-checkpoint", content=log.body(0, 1),
                                    timeout=5).text)
        assert state_size >= acked
        fork.grow(state_size)
        r = httpx.post(url + "/add-checkpoint", content=fork.body(state_size), timeout=5)
        assert r.status_code == 422
    finally:
        proc.kill()
        proc.wait(10)

