"""The writer's Ed25519 through libsodium, and a batch's deferred signature checks.

libsodium must sign exactly as OpenSSL does and accept nothing OpenSSL refuses
(else the log could hold an entry the verifier rejects); a batch must refuse,
and store nothing of itself, if one of its own signatures does not verify.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import given, settings
from hypothesis import strategies as hs

import verifier as v
from ledger import ActorKey, Ledger, sign_statement
from ledger import _checks
from ledger._checks import Deferred, run_checks
from ledger._sodium import SodiumSigner, sodium_check, sodium_verify
from tests.ledger_support import ORIGIN, T0, Clock, Keys, fingerprint, make_ledger, register

BIG = 700  # a batch this big checks its own signatures on several threads

L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point


def openssl_verify(public: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def keypair(seed: bytes) -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private, private.public_key().public_bytes_raw()


# -- libsodium against OpenSSL -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(seed=hs.binary(min_size=32, max_size=32), msg=hs.binary(max_size=600))
def test_sodium_signs_the_same_bytes_as_openssl(seed: bytes, msg: bytes) -> None:
    private, public = keypair(seed)
    sig = SodiumSigner(seed).sign(msg)
    assert sig == private.sign(msg)
    assert sodium_verify(public, sig, msg) and openssl_verify(public, sig, msg)


@settings(max_examples=600, deadline=None)
@given(seed=hs.binary(min_size=32, max_size=32), msg=hs.binary(min_size=1, max_size=300),
       where=hs.sampled_from(["sig", "key", "msg"]), pos=hs.integers(0, 10_000),
       bit=hs.integers(0, 7))
def test_sodium_accepts_nothing_openssl_refuses(seed: bytes, msg: bytes, where: str, pos: int,
                                                bit: int) -> None:
    """One flipped bit anywhere: libsodium accepting implies OpenSSL accepting."""
    private, public = keypair(seed)
    parts = {"sig": private.sign(msg), "key": public, "msg": msg}
    data = bytearray(parts[where])
    data[pos % len(data)] ^= 1 << bit
    parts[where] = bytes(data)
    got = sodium_verify(parts["key"], parts["sig"], parts["msg"])
    assert not got or openssl_verify(parts["key"], parts["sig"], parts["msg"])
    assert not got  # one bit changed: neither may accept


def _edge_cases() -> Iterator[tuple[str, bytes, bytes, bytes]]:
    """Known troublesome inputs: non-canonical S, small-order keys and R, y >= p."""
    private, public = keypair(bytes(range(32)))
    msg = b"modelseal edge case"
    sig = private.sign(msg)
    s = int.from_bytes(sig[32:], "little")
    yield "S + L", public, sig[:32] + (s + L).to_bytes(32, "little"), msg
    yield "S = L", public, sig[:32] + L.to_bytes(32, "little"), msg
    identity = (1).to_bytes(32, "little")
    yield "identity key, R, S = 0", identity, identity + bytes(32), msg
    order2 = ((2**255 - 19) - 1).to_bytes(32, "little")  # (0, -1)
    yield "order-2 key", order2, identity + bytes(32), msg
    yield "order-2 R", public, order2 + sig[32:], msg
    non_canonical_one = (2**255 - 19 + 1).to_bytes(32, "little")  # y = p + 1 (means 1)
    yield "non-canonical identity key", non_canonical_one, identity + bytes(32), msg
    yield "non-canonical R", public, non_canonical_one + sig[32:], msg
    yield "all-ones key", b"\xff" * 32, sig, msg
    yield "zero signature", public, bytes(64), msg


@pytest.mark.parametrize("case", list(_edge_cases()), ids=lambda c: c[0])
def test_sodium_edge_cases_never_beyond_openssl(case: tuple[str, bytes, bytes, bytes]) -> None:
    _, public, sig, msg = case
    assert not sodium_verify(public, sig, msg) or openssl_verify(public, sig, msg)


def test_sodium_verify_refuses_bad_lengths() -> None:
    _, public = keypair(bytes(32))
    assert not sodium_verify(public[:31], bytes(64), b"m")
    assert not sodium_verify(public, bytes(63), b"m")
    with pytest.raises(ValueError):
        SodiumSigner(bytes(31))


def test_sodium_check_is_the_keys_own_verdict() -> None:
    """The writer's strategy (libsodium) on a VerifierKey: the same key, no twin class."""
    key = ActorKey.generate("ml-pipeline")
    sig = key.sign(b"m")
    assert sodium_check(key.key, sig, b"m") and key.key.verify(sig, b"m")
    assert not sodium_check(key.key, sig, b"n") and not key.key.verify(sig, b"n")


# -- deferred checks -----------------------------------------------------------------------


def _checks_list(n: int, bad: set[int]) -> list[Deferred]:
    key = ActorKey.generate("ml-pipeline")
    out = []
    for i in range(n):
        data = f"statement {i}".encode()
        sig = key.sign(data if i not in bad else b"something else")
        out.append(Deferred(key.key, sig, data, "ml-pipeline", f"stmt-{i:016d}"))
    return out


@pytest.mark.parametrize("n", [0, 1, 63, 64, 200, 301])
def test_run_checks_passes_good_signatures(n: int) -> None:
    run_checks(_checks_list(n, set()))


@pytest.mark.parametrize(("n", "bad"), [(1, {0}), (200, {150}), (301, {7, 300}), (64, {63}),
                                        (400, {1, 2, 3})])
def test_run_checks_names_the_first_bad_signature(n: int, bad: set[int]) -> None:
    with pytest.raises(v.SignatureError, match=f"stmt-{min(bad):016d}"):
        run_checks(_checks_list(n, bad))


def test_run_checks_uses_other_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: set[str] = set()
    real = _checks._check_slice

    def spy(checks: list[Deferred], start: int, step: int) -> list[bool]:
        threads.add(threading.current_thread().name)
        return real(checks, start, step)

    monkeypatch.setattr(_checks, "_check_slice", spy)
    monkeypatch.setattr(_checks, "CPUS", 2)
    run_checks(_checks_list(300, set()))
    assert len(threads) == 2 and any(t.startswith("modelseal-sigcheck") for t in threads)


@pytest.mark.parametrize("failure", ["slow", "raises"])
def test_run_checks_fail_closed_when_a_worker_does_not_answer(
        monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """A worker that raises, or has not answered within the bound, proves nothing: its
    share is checked in the committing thread, so a bad signature is still found."""
    real = _checks._check_slice

    def broken(checks: list[Deferred], start: int, step: int) -> list[bool]:
        if threading.current_thread().name.startswith("modelseal-sigcheck"):
            if failure == "slow":
                time.sleep(1.0)
                return [True] * len(checks[start::step])  # a late "all good": ignored
            raise RuntimeError("worker died")
        return real(checks, start, step)

    monkeypatch.setattr(_checks, "_check_slice", broken)
    monkeypatch.setattr(_checks, "CPUS", 2)
    with pytest.raises(v.SignatureError, match=f"stmt-{301:016d}"):
        run_checks(_checks_list(400, {301}), wait=0.2)  # 301 is in the worker's share
    run_checks(_checks_list(400, set()), wait=0.2)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    keys = Keys()
    led = make_ledger(tmp_path / "store", keys, Clock())
    pipe = ActorKey.generate("ml-pipeline")
    led.grant(pipe.vkey, role="writer")
    led.signer = pipe
    register(led, "fraud")
    yield led
    led.close()


def _corrupt_signer(led: Ledger, after: int) -> None:
    """Make the ledger's signer produce bad signatures after its first ``after`` ones
    (``_restore_signer`` undoes it)."""
    signer = led.signer
    assert signer is not None
    real = signer.__dict__.setdefault("_real_signer", signer._signer)
    count = [0]

    class Faulty:
        def sign(self, message: bytes) -> bytes:
            count[0] += 1
            sig = real.sign(message)
            return sig if count[0] <= after else bytes([sig[0] ^ 0x40]) + sig[1:]

    signer._signer = Faulty()  # type: ignore[assignment]


def _restore_signer(led: Ledger) -> None:
    signer = led.signer
    assert signer is not None
    signer._signer = signer.__dict__.pop("_real_signer")


def test_a_bad_own_signature_fails_the_whole_batch(ledger: Ledger) -> None:
    """In a batch, one bad signature of the ledger's own signer is found at commit:
    SignatureError, and nothing of the batch is stored."""
    before = fingerprint(ledger)
    _corrupt_signer(ledger, after=70)
    with pytest.raises(v.SignatureError, match="does not verify"):
        with ledger.batch():
            for i in range(100):
                ledger.record("fraud", event="retrained", payload={"i": i})
    assert fingerprint(ledger) == before
    assert [s.event_type for s in ledger.history("fraud")] == ["registered"]
    assert ledger.audit() == before[0]


def test_a_bad_own_signature_outside_a_batch_is_refused_at_once(ledger: Ledger) -> None:
    before = fingerprint(ledger)
    _corrupt_signer(ledger, after=0)
    with pytest.raises(v.SignatureError):
        ledger.record("fraud", event="retrained")
    assert fingerprint(ledger) == before


def test_a_bad_submitted_signature_is_refused_at_the_call_in_a_batch(ledger: Ledger) -> None:
    """Statements signed elsewhere are checked when submitted, even in a batch; the
    batch's other writes stand."""
    assert ledger.signer is not None
    good = sign_statement(ledger.signer, ORIGIN, "event", log_id=ledger.log_id, claimed_at=T0, model="fraud",
                          event_type="retrained", payload={})
    st, st_bytes, key_id, sig = v.parse_signed_statement(good)
    forged = v.signed_statement_bytes(st_bytes, key_id, bytes([sig[0] ^ 1]) + sig[1:])
    start = ledger.size
    with ledger.batch():
        ledger.record("fraud", event="a")
        with pytest.raises(v.SignatureError):
            ledger.submit(forged)
        ledger.record("fraud", event="b")
    assert ledger.size == start + 2
    assert ledger.audit() == start + 2


# -- big batches: checks on threads at commit ------------------------------------------------


def _big_batch(led: Ledger, n: int) -> list[str]:
    with led.batch():
        return [led.record("fraud", event="retrained", payload={"i": i}).snapshot_hash
                for i in range(n)]


def test_a_big_batch_stores_everything(ledger: Ledger) -> None:
    start = ledger.size
    hashes = _big_batch(ledger, BIG)
    assert ledger.size == start + BIG
    assert [s.snapshot_hash for s in ledger.history("fraud")[1:]] == hashes
    assert ledger.audit() == ledger.size


@pytest.mark.parametrize("bad_at", [1, 5, BIG // 2, BIG - 1])
def test_a_bad_own_signature_anywhere_in_a_big_batch_fails_it(ledger: Ledger,
                                                                bad_at: int) -> None:
    before = fingerprint(ledger)
    _corrupt_signer(ledger, after=bad_at)
    with pytest.raises(v.SignatureError, match="does not verify"):
        _big_batch(ledger, BIG)
    assert fingerprint(ledger) == before
    _restore_signer(ledger)
    _big_batch(ledger, 50)  # the next batch is not confused by the failed one
    assert ledger.size == before[0] + 50 and ledger.audit() == ledger.size


def test_a_refused_write_leaves_no_deferred_check(ledger: Ledger) -> None:
    """A write refused by a rule after its signature check was deferred drops that check:
    the batch's other writes commit, and a bad signature of the refused write does not
    fail them."""
    with ledger.batch():
        ledger.record("fraud", event="ok")
        _corrupt_signer(ledger, after=0)  # every signature from here on is bad
        with pytest.raises(v.RuleError):
            ledger.record("no_such_model", event="e")
        _restore_signer(ledger)
    assert [s.event_type for s in ledger.history("fraud")] == ["registered", "ok"]


def test_a_big_batch_fails_closed_when_its_background_checks_die(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch sends its own signatures' checks to the check threads as it goes; if every
    one of those dies, the committing thread checks them itself: a bad signature is still
    found, and a good batch still commits."""
    real = _checks._check_slice

    def dying(checks: list[Deferred], start: int, step: int) -> list[bool]:
        if threading.current_thread().name.startswith("modelseal-sigcheck"):
            raise RuntimeError("worker died")
        return real(checks, start, step)

    monkeypatch.setattr(_checks, "_check_slice", dying)
    before = fingerprint(ledger)
    _corrupt_signer(ledger, after=450)
    with pytest.raises(v.SignatureError, match="does not verify"):
        _big_batch(ledger, BIG)
    assert fingerprint(ledger) == before
    _restore_signer(ledger)
    _big_batch(ledger, BIG)
    assert ledger.size == before[0] + BIG and ledger.audit() == ledger.size
