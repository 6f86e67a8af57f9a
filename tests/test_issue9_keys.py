"""Issue 9, point 2: small-order and non-canonical Ed25519 public keys are refused
wherever a key is parsed: verifier keys, grants (writer and replay), genesis, --key."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_core_ed25519_add, crypto_core_ed25519_is_valid_point

import verifier as v
from tests.helpers import b64
from tests.ledger_support import Keys, fingerprint, make_ledger
from tests.logsim import Log
from verifier import _ed25519, cli
from verifier.keys import _parse_cached, key_id

DATA = Path(__file__).resolve().parent / "data" / "small_order_keys.txt"
SMALL_ORDER = [bytes.fromhex(line) for line in DATA.read_text().splitlines()
               if line and not line.startswith("#")]
IDENTITY = bytes([1]) + bytes(31)
# The one signature OpenSSL accepts for every message under the identity key: R = identity,
# S = 0, since [0]B = O + [k]O.
IDENTITY_SIG = IDENTITY + bytes(32)


def vkey_text(name: str, pub: bytes) -> str:
    """A verifier key string with the right key ID, whatever the 32 bytes are."""
    return f"{name}+{key_id(name, pub).hex()}+{b64(bytes([1]) + pub)}"


def crafted_key(name: str, pub: bytes) -> v.VerifierKey:
    """A VerifierKey built around ``parse`` (as an attacker's own code could)."""
    return v.VerifierKey(name, key_id(name, pub), pub)


def public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# -- the rule ------------------------------------------------------------------------------


def test_point2_data_file_holds_the_8_plus_6_known_encodings() -> None:
    assert len(SMALL_ORDER) == 14 and len(set(SMALL_ORDER)) == 14
    points = set()
    for raw in SMALL_ORDER[:8]:  # canonical: each decodes, to a distinct point of order | 8
        point = _ed25519._decode(raw)
        assert not isinstance(point, str)
        assert _ed25519._is_identity(_ed25519._multiply(8, point))
        points.add(point[:2])
    assert len(points) == 8
    for raw in SMALL_ORDER[8:]:
        assert "non-canonical" in str(_ed25519.key_problem(raw))


@pytest.mark.parametrize("raw", SMALL_ORDER, ids=[r.hex()[:8] + r.hex()[-2:] for r in SMALL_ORDER])
def test_point2_every_known_small_order_encoding_is_refused(raw: bytes) -> None:
    assert not crypto_core_ed25519_is_valid_point(raw)  # libsodium refuses it too
    text = vkey_text("mallory", raw)
    with pytest.raises(v.MalformedInputError,
                       match="verifier key is not a valid Ed25519 public key: "
                             "(small-order point|non-canonical)"):
        v.VerifierKey.parse(text)
    with pytest.raises(ValueError, match="not a valid Ed25519 public key"):
        v.VerifierKey.from_public_bytes("mallory", raw)


def test_point2_identity_key_message() -> None:
    with pytest.raises(v.MalformedInputError) as info:
        v.VerifierKey.parse(vkey_text("mallory", IDENTITY))
    assert str(info.value) == "verifier key is not a valid Ed25519 public key: small-order point"


def test_point2_openssl_alone_would_accept_one_signature_for_every_message() -> None:
    """Why: under the identity key OpenSSL accepts IDENTITY_SIG for any message."""
    openssl = Ed25519PublicKey.from_public_bytes(IDENTITY)
    for msg in (b"", b"grant mallory admin", b"anything at all"):
        openssl.verify(IDENTITY_SIG, msg)  # does not raise
    assert crafted_key("mallory", IDENTITY).verify(IDENTITY_SIG, b"x")  # parse is the gate
    with pytest.raises(v.MalformedInputError):
        v.VerifierKey.parse(vkey_text("mallory", IDENTITY))


def test_point2_key_with_a_torsion_component_is_refused() -> None:
    """A valid key plus a point of order 8 is on the curve and not small-order itself,
    but has a torsion component: refused, as libsodium refuses it."""
    for i in range(8):
        good = public(Ed25519PrivateKey.generate())
        mixed = crypto_core_ed25519_add(good, SMALL_ORDER[4 + i % 4])
        assert not crypto_core_ed25519_is_valid_point(mixed)
        assert "small-order component" in str(_ed25519.key_problem(mixed))
        with pytest.raises(v.MalformedInputError, match="small-order component"):
            v.VerifierKey.parse(vkey_text("mallory", mixed))


def test_point2_non_canonical_encodings_of_other_points_are_refused() -> None:
    """y + p for y < 19 (the only y with a second encoding below 2^255), both signs."""
    for y in range(19):
        for sign in (0, 1):
            raw = ((y + _ed25519.P) | (sign << 255)).to_bytes(32, "little")
            assert not crypto_core_ed25519_is_valid_point(raw)
            assert _ed25519.key_problem(raw) is not None


def test_point2_off_curve_key_is_refused() -> None:
    raw = (2).to_bytes(32, "little")  # y = 2: x^2 is not a square
    assert _ed25519.key_problem(raw) == "not a point on the curve"
    with pytest.raises(v.MalformedInputError, match="not a point on the curve"):
        v.VerifierKey.parse(vkey_text("mallory", raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_point2_generated_keys_are_accepted(seed: bytes) -> None:
    pub = public(Ed25519PrivateKey.from_private_bytes(seed))
    assert v.VerifierKey.parse(vkey_text("alice", pub)).public_key == pub
    assert v.VerifierKey.from_public_bytes("alice", pub).public_key == pub


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=32, max_size=32))
@example(IDENTITY)
@example(bytes(32))
@example(b"\xff" * 32)
def test_point2_random_bytes_accepted_exactly_when_libsodium_accepts(raw: bytes) -> None:
    """The pure-Python check and libsodium's crypto_core_ed25519_is_valid_point agree."""
    ours = _ed25519.key_problem(raw) is None
    assert ours == crypto_core_ed25519_is_valid_point(raw)
    try:
        v.VerifierKey.parse(vkey_text("k", raw))
        parsed = True
    except v.MalformedInputError:
        parsed = False
    assert parsed == ours


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, 7))
def test_point2_valid_key_plus_any_torsion_point_agrees_with_libsodium(seed: bytes, t: int
                                                                       ) -> None:
    good = public(Ed25519PrivateKey.from_private_bytes(seed))
    mixed = good if t == 0 else crypto_core_ed25519_add(good, SMALL_ORDER[t])
    assert (_ed25519.key_problem(mixed) is None) == crypto_core_ed25519_is_valid_point(mixed)
    assert (_ed25519.key_problem(mixed) is None) == (t == 0)


def test_point2_cost_of_the_check() -> None:
    """About 1.5 ms per key, paid once per distinct key text (parse is cached)."""
    keys = [public(Ed25519PrivateKey.generate()) for _ in range(50)]
    t = time.perf_counter()
    for raw in keys:
        assert _ed25519.key_problem(raw) is None
    per_key = (time.perf_counter() - t) / len(keys)
    assert per_key < 0.02
    text = vkey_text("cached", keys[0])
    v.VerifierKey.parse(text)
    hits = _parse_cached.cache_info().hits
    v.VerifierKey.parse(text)
    assert _parse_cached.cache_info().hits == hits + 1


# -- every place a key is parsed --------------------------------------------------------------


def test_point2_identity_key_grant_refused_by_the_writer(tmp_path: Path) -> None:
    with make_ledger(tmp_path / "s", Keys()) as led:
        before = fingerprint(led)
        for raw in SMALL_ORDER:
            with pytest.raises(v.MalformedInputError, match="not a valid Ed25519 public key"):
                led.grant(vkey_text("mallory", raw), role="admin")
        assert fingerprint(led) == before


def test_point2_identity_key_refused_by_replay() -> None:
    """A crafted log grants the identity key; replay refuses the grant entry."""
    log = Log.create()
    log.submit(log.admin, "grant", key=vkey_text("mallory", IDENTITY), role="admin")
    inv = v.Inventory()
    for data in log.entries[:-1]:
        inv.apply(data)
    with pytest.raises(v.MalformedInputError, match="small-order point"):
        inv.apply(log.entries[-1])
    with pytest.raises(v.MalformedInputError):
        v.replay(log.entries)


def _genesis_with_admin(pub: bytes) -> bytes:
    """A log's genesis entry with its admin key replaced by ``pub``, signed with the one
    signature OpenSSL accepts under a small-order key."""
    log = Log.create()
    doc = msgspec.json.decode(v.parse_entry(log.entries[0]).statement_bytes)
    doc["admin_key"] = vkey_text(doc["actor"], pub)
    st_bytes = v.statement_bytes(msgspec.convert(doc, v.Statement))
    bad = Log(log.origin, log.log_key, log.admin)
    return bad.append(st_bytes, key_id(doc["actor"], pub), IDENTITY_SIG)


def test_point2_small_order_admin_in_genesis_refused_by_replay() -> None:
    for raw in SMALL_ORDER:
        with pytest.raises(v.MalformedInputError, match="not a valid Ed25519 public key"):
            v.Inventory().apply(_genesis_with_admin(raw))


def test_point2_small_order_log_key_in_genesis_refused_by_replay() -> None:
    log = Log.create()
    parsed = v.parse_entry(log.entries[0])
    doc = msgspec.json.decode(parsed.statement_bytes)
    doc["log_key"] = vkey_text(log.origin, IDENTITY)
    st_bytes = v.statement_bytes(msgspec.convert(doc, v.Statement))
    data = Log(log.origin, log.log_key, log.admin).append(
        st_bytes, log.admin.key.key_id, log.admin.sign(st_bytes))
    with pytest.raises(v.MalformedInputError, match="small-order point"):
        v.Inventory().apply(data)


def test_point2_verify_key_option_with_a_small_order_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """modelseal-verify --key <identity>: refused before the bundle is read, with the
    reason; a --key that does not parse is a usage error (exit 2, specs/errors.md)."""
    bundle = tmp_path / "bundle.json"
    bundle.write_text("{}")
    code = cli.main([str(bundle), "--key", vkey_text("example.com/models", IDENTITY)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert ("bad --key: verifier key is not a valid Ed25519 public key: small-order point"
            in err)
