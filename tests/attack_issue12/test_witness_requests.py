"""A hostile client of the witness (POST /add-checkpoint), a hostile log, and a witness
whose clock or disk misbehaves (specs/witness.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import verifier as v
from ledger.keys import LogKey, WitnessSigner
from ledger.witness import Refused, Witness, WitnessState, build_app
from ledger.witness import _state as wstate
from tests import reference as ref
from tests import witness_support
from tests.witness_support import ORIGIN, Clock, FakeLog
from verifier.encoding import b64encode

PATH = f"/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"


# the witness fixtures shared with tests/test_witness.py (pytest finds them by these names)
signer, log, state = witness_support.signer, witness_support.log, witness_support.state


@pytest.fixture
def client(state: WitnessState, signer: WitnessSigner, log: FakeLog) -> Iterator[TestClient]:
    w = Witness(state, signer, [log.key.key], clock=Clock())
    with TestClient(build_app(w), base_url="http://witness.test") as c:
        yield c


def _post(client: TestClient, body: bytes) -> int:
    r = client.post("/add-checkpoint", content=body)
    assert "Traceback" not in r.text
    return int(r.status_code)


def test_duplicate_log_signature_lines_are_not_kept_twice(
        client: TestClient, log: FakeLog, signer: WitnessSigner) -> None:
    # FINDING: low: a client may repeat the log's signature line up to 63 times; the witness stores and serves every copy to monitors (a padded note that leaves no room for other cosignatures under the 64-signature limit)  # noqa: E501
    note = log.note()
    log_line = note.partition(b"\n\n")[2]
    assert _post(client, b"old 0\n\n" + note + log_line * 40) == 200
    served = client.get(PATH).content
    assert served.count(log_line) == 1, served.count(log_line)


def test_crlf_and_non_utf8_bodies_are_400_and_store_nothing(
        client: TestClient, log: FakeLog, state: WitnessState) -> None:
    note = log.note()
    h = b64encode(bytes(32)).encode()
    for body in (
        b"old 0\r\n\r\n" + note,
        b"old 0\n\n" + note.replace(b"\n", b"\r\n"),
        b"old 0\n\n" + note.replace(ORIGIN.encode(), b"example.com/l\xffg"),
        b"old 0\n\n" + note + b"\n",  # a trailing empty line
        b"old 0\n\n" + note[:-1],  # no final newline
        b"old 5\n" + b"\n".join([h] * 64) + b"\n\n" + note,  # 64 proof lines
        b"old 18446744073709551616\n\n" + note,  # 2**64
        b"\xef\xbb\xbfold 0\n\n" + note,  # a byte order mark
    ):
        assert _post(client, body) == 400, body[:40]
    assert state.get(ORIGIN) is None


def test_more_than_64_signature_lines_are_refused(client: TestClient, log: FakeLog,
                                                  state: WitnessState) -> None:
    foreign = WitnessSigner.generate("other.example/w")
    text = v.checkpoint_text(ORIGIN, 5, ref.mth(log.leaves))
    lines = foreign.cosign(text, 7) * 64
    assert _post(client, b"old 0\n\n" + log.note(extra_sig=lines)) == 400
    assert state.get(ORIGIN) is None
    # 63 foreign lines and the log's: accepted, none of the foreign ones kept
    assert _post(client, b"old 0\n\n" + log.note(extra_sig=foreign.cosign(text, 7) * 63)) == 200
    assert client.get(PATH).content.count(b"other.example/w") == 0


def test_a_forged_line_in_the_witnesses_own_name_is_not_served(
        client: TestClient, log: FakeLog, signer: WitnessSigner) -> None:
    text = v.checkpoint_text(ORIGIN, 5, ref.mth(log.leaves))
    forged = v.signature_line(signer.name, signer.witness_key.key_id,
                              (1).to_bytes(8, "big") + bytes(64))
    r = client.post("/add-checkpoint", content=b"old 0\n\n" + log.note(extra_sig=forged))
    assert r.status_code == 200
    served = client.get(PATH).content
    assert forged not in served
    assert len(v.verify_cosignatures(served, [signer.witness_key])) == 1
    assert v.parse_note(served).text == text


def test_an_extension_line_is_cosigned_as_part_of_the_exact_text(
        state: WitnessState, signer: WitnessSigner) -> None:
    key = LogKey.generate(ORIGIN)
    w = Witness(state, signer, [key.key], clock=Clock())
    leaves = [b"a", b"b"]
    text = v.checkpoint_text(ORIGIN, 2, ref.mth(leaves)) + b"ext: 1\n"
    note = text + b"\n" + v.signature_line(ORIGIN, key.key_id, key.sign(text))
    line = w.add_checkpoint(b"old 0\n\n" + note)
    assert v.verify_cosignatures(note + line, [signer.witness_key])
    plain = v.checkpoint_text(ORIGIN, 2, ref.mth(leaves))
    with pytest.raises(v.SignatureError):
        v.verify_cosignatures(plain + b"\n" + note.partition(b"\n\n")[2] + line,
                              [signer.witness_key])


def test_a_split_view_at_the_cosigned_size_is_422_and_logged(
        client: TestClient, log: FakeLog, state: WitnessState,
        caplog: pytest.LogCaptureFixture) -> None:
    assert _post(client, log.body(0)) == 200
    before = state.get(ORIGIN)
    fork = FakeLog(key=log.key, tag=b"fork")
    fork.grow(5)
    assert _post(client, fork.body(5)) == 422
    assert state.get(ORIGIN) == before
    assert any("not consistent" in r.getMessage() for r in caplog.records)
    # a smaller, validly signed checkpoint (a rolled-back log): old > size
    assert _post(client, v.format_add_checkpoint(5, [], log.note(3))) == 400
    assert _post(client, v.format_add_checkpoint(3, [], log.note(3))) == 409
    assert state.get(ORIGIN) == before


def test_a_clock_that_goes_back_cannot_make_the_witness_forget(
        state: WitnessState, signer: WitnessSigner, log: FakeLog) -> None:
    """The state, not the clock, decides what is cosigned: after the clock jumps back a
    day (or before the epoch) the witness still refuses a fork, and never signs time 0."""
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    w = Witness(state, signer, [log.key.key], clock=lambda: now[0])
    w.add_checkpoint(log.body(0))
    now[0] -= timedelta(days=1)
    fork = FakeLog(key=log.key, tag=b"fork")
    fork.grow(7)
    with pytest.raises(Refused) as e:
        w.add_checkpoint(fork.body(0))
    assert e.value.status == 409
    with pytest.raises(Refused) as e:
        w.add_checkpoint(v.format_add_checkpoint(5, ref.proof(5, fork.leaves), fork.note()))
    assert e.value.status == 422
    now[0] = datetime(1960, 1, 1, tzinfo=timezone.utc)
    log.grow(1)
    line = w.add_checkpoint(log.body(5))
    got = v.verify_cosignatures(log.note() + line, [signer.witness_key])
    assert got[0].timestamp == 1


def test_a_naive_clock_is_a_refusal_without_a_cosignature(
        state: WitnessState, signer: WitnessSigner, log: FakeLog) -> None:
    w = Witness(state, signer, [log.key.key], clock=lambda: datetime(2026, 1, 1))
    with TestClient(build_app(w), base_url="http://witness.test") as c:
        r = c.post("/add-checkpoint", content=log.body(0))
    assert r.status_code == 500 and "Traceback" not in r.text
    assert state.get(ORIGIN) is None


def test_a_full_witness_store_sends_no_cosignature_and_recovers(
        tmp_path: Path, signer: WitnessSigner, log: FakeLog,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A map (disk) too small for the new row: 500, nothing cosigned, the old row kept;
    once there is room, the same request is cosigned."""
    state = WitnessState(tmp_path / "w")
    try:
        w = Witness(state, signer, [log.key.key], clock=Clock())
        w.add_checkpoint(log.body(0))
        before = state.get(ORIGIN)
        real = state._env
        # a huge note (many foreign lines) in a map that cannot hold it
        foreign = WitnessSigner.generate("f" * 180 + ".example/w")
        text = v.checkpoint_text(ORIGIN, 6, ref.mth(log.leaves + [b"x"]))
        log.grow(1)
        body = log.body(5)
        note = log.note(extra_sig=foreign.cosign(text, 3) * 60)
        body = body.partition(b"\n\n")[0] + b"\n\n" + note
        real.set_mapsize(real.info()["last_pgno"] * real.stat()["psize"] + 4096)
        with TestClient(build_app(w), base_url="http://witness.test") as c:
            r = c.post("/add-checkpoint", content=body)
            assert r.status_code in (500, 503, 507), r.text
            assert "Traceback" not in r.text and "\u2014" not in r.text
            assert state.get(ORIGIN) == before
            real.set_mapsize(wstate.MAP_SIZE)
            r = c.post("/add-checkpoint", content=body)
            assert r.status_code == 200, r.text
    finally:
        state.close()


def test_the_monitor_path_is_exact(client: TestClient, log: FakeLog) -> None:
    assert _post(client, log.body(0)) == 200
    assert client.get(PATH).status_code == 200
    for path in (PATH.upper(), PATH + "/", PATH.replace("/checkpoint", "/checkpoint/x"),
                 "/" + hashlib.sha256(b"example.com/other").hexdigest() + "/checkpoint"):
        r = client.get(path)
        assert r.status_code == 404 and "Traceback" not in r.text
    assert client.post(PATH).status_code == 405
    assert client.get("/add-checkpoint").status_code == 405
