"""The write path's shortcuts must never change an outcome: the decoded keyring reused
across commits, and the one-shot wake-up of a waiting caller."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ledger import ActorKey, Ledger
from ledger._commit import _Wake
from ledger._state import _keyring
from tests.ledger_support import ORIGIN, Keys, register


def test_a_revoke_in_an_aborted_batch_leaves_the_key_active(tmp_path: Path) -> None:
    keys = Keys()
    with Ledger.create(tmp_path / "s", origin=ORIGIN, log_key=keys.log, admin=keys.admin) as led:
        pipe = ActorKey.generate("ml-pipeline")
        led.grant(pipe.vkey, role="writer")
        with pytest.raises(RuntimeError), led.batch():
            led.revoke("ml-pipeline", reason="left")
            raise RuntimeError("abort the batch")
        found = led.active_key("ml-pipeline")
        assert found is not None and found[1] == "writer"
        led.signer = pipe
        register(led, "m0")  # the shared decoded keyring still says the key is active
        led.signer = keys.admin
        led.revoke("ml-pipeline", reason="left")
        assert led.active_key("ml-pipeline") is None
        led.signer = pipe
        with pytest.raises(Exception, match="revoked|not granted|no active key|ml-pipeline"):
            register(led, "m1")
        assert led.audit() == led.size


def test_the_keyring_cache_follows_the_row(tmp_path: Path) -> None:
    keys = Keys()
    with Ledger.create(tmp_path / "s", origin=ORIGIN, log_key=keys.log, admin=keys.admin) as led:
        with led._reader() as txn:
            raw = bytes(led._store.need(txn, "meta", b"keyring"))
        first = _keyring(raw)
        assert _keyring(raw) is first  # reused while the row is unchanged
        led.grant(ActorKey.generate("ml-pipeline").vkey, role="writer")
        with led._reader() as txn:
            raw2 = bytes(led._store.need(txn, "meta", b"keyring"))
        second = _keyring(raw2)
        assert [r.name for r in second] == [r.name for r in first] + ["ml-pipeline"]
        assert _keyring(raw) == first  # an older row decodes to its own records again


def test_wake_is_one_shot_idempotent_and_bounded() -> None:
    w = _Wake()
    assert w.wait(0.01) is False
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(w.wait(5)))
    t.start()
    w.set()
    w.set()  # a second set (an interrupted delivery completed) is harmless
    t.join(5)
    assert got == [True]
    assert w.wait(0) is True  # stays set
    racers = [threading.Thread(target=w.set) for _ in range(8)]
    for r in racers:
        r.start()
    for r in racers:
        r.join(5)
    assert w.wait(0) is True


def test_parse_stored_checks_shape_and_id_but_not_the_point() -> None:
    import verifier as v
    from verifier.encoding import b64encode

    good = ActorKey.generate("ml-pipeline").vkey
    assert v.VerifierKey.parse_stored(good) == v.VerifierKey.parse(good)
    data = Path(__file__).resolve().parent / "data" / "small_order_keys.txt"
    weak = next(bytes.fromhex(line) for line in data.read_text().splitlines()
                if line and not line.startswith("#"))
    text = f"w+{v.key_id('w', weak).hex()}+{b64encode(bytes([1]) + weak)}"
    assert v.VerifierKey.parse_stored(text).public_key == weak  # the writer parsed it in full
    with pytest.raises(v.MalformedInputError):
        v.VerifierKey.parse(text)
    for bad in (good.replace("+", "-", 1), good[:-4] + "AAA=", "w+00000000+" + good.split("+")[2]):
        with pytest.raises(v.MalformedInputError):
            v.VerifierKey.parse_stored(bad)
    with pytest.raises(TypeError):
        v.VerifierKey.parse_stored(b"w")  # type: ignore[arg-type]
