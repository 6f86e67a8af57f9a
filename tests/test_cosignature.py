"""C2SP tlog-cosignature (Ed25519 cosignature/v1): published vectors, witness keys,
cosignature lines, verification and thresholds."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from tests.helpers import raw_sig_line
from verifier.cosignature import MAX_TIMESTAMP, split_cosignature

DASH = "\u2014"

# -- vectors ------------------------------------------------------------------------------

# A real checkpoint of the staging CT log arche2025h1.staging.ct.transparency.dev with the
# cosignatures of public witnesses, as quoted in the tests of a third-party Python
# implementation (tlog_scales). The witnesses' vkeys are the ones they publish.
REAL_NOTE = (
    "arche2025h1.staging.ct.transparency.dev\n"
    "1432088532\n"
    "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
    "\n"
    f"{DASH} arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQF"
    "X6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    f"{DASH} arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lef"
    "whUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    f"{DASH} transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/"
    "KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n"
    f"{DASH} witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO"
    "0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n"
    f"{DASH} remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+a"
    "VCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n"
    f"{DASH} witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEy"
    "OUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==\n"
).encode()
REAL_WITNESSES = (
    "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4C"
    "PdiVEPM",
    "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
)
REAL_TIME = 1779573024  # all three witnesses cosigned in the same second

# c2sp.org/tlog-cosignature's example: its witness line and signed message.
SPEC_LINE = (f"{DASH} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5O"
             "WXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
SPEC_TEXT = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_MESSAGE = b"cosignature/v1\ntime 1679315147\n" + SPEC_TEXT

# transparency-dev/formats note/note_cosigv1_test.go: a cosignature blob and its time.
TDEV_BLOB = ("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOwor"
             "DcFiEBYJXORmnFBOBA==")
TDEV_TIME = 1727964367
# The same file's type 0x01 (plain Ed25519) key: not a witness key.
TDEV_LOG_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

TEXT = b"example.com/models\n3\n" + base64.b64encode(b"\x07" * 32) + b"\nmodelseal-time 5\n"


def note_sig(line: bytes) -> v.note.NoteSignature:
    return v.parse_note(b"x\n\n" + line).signatures[0]


class Witness:
    """A test witness: an Ed25519 private key and its WitnessKey."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.private = (Ed25519PrivateKey.from_private_bytes(hashlib.sha256(
            f"{name}/{seed}".encode()).digest()))
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key = v.WitnessKey.from_public(name, public)

    def sign(self, text: bytes, timestamp: int) -> bytes:
        return self.private.sign(v.cosignature_message(text, timestamp))

    def line(self, text: bytes, timestamp: int) -> bytes:
        return v.cosignature_line(self.key, timestamp, self.sign(text, timestamp))


LOG_LINE = raw_sig_line("example.com/models", b"\x01\x02\x03\x04" + b"\x00" * 64)


def cosigned(text: bytes, *lines: bytes) -> bytes:
    return text + b"\n" + LOG_LINE + b"".join(lines)


def test_real_witnesses_verify() -> None:
    """Three public witnesses' cosignatures of a real checkpoint verify; the log's own lines
    and an unconfigured witness are ignored."""
    keys = [v.WitnessKey.parse(k) for k in REAL_WITNESSES]
    cosigs = v.verify_cosignatures(REAL_NOTE, keys)
    assert [c.witness.name for c in cosigs] == [k.name for k in keys]
    assert all(c.timestamp == REAL_TIME for c in cosigs)
    assert all(c.line in REAL_NOTE for c in cosigs)
    assert cosigs[0].time.isoformat() == "2026-05-23T21:50:24+00:00"
    v.require_witnesses(cosigs, 3)
    with pytest.raises(v.WitnessError, match="3 of the 4 required"):
        v.require_witnesses(cosigs, 4)


def test_real_witnesses_reject_a_changed_checkpoint() -> None:
    keys = [v.WitnessKey.parse(REAL_WITNESSES[2])]
    tampered = REAL_NOTE.replace(b"1432088532\n", b"1432088533\n")
    with pytest.raises(v.SignatureError, match="remora.n621.de"):
        v.verify_cosignatures(tampered, keys)


def test_spec_example_message_and_line() -> None:
    assert v.cosignature_message(SPEC_TEXT, 1679315147) == SPEC_MESSAGE
    sig = note_sig(SPEC_LINE.encode())
    assert sig.name == "witness.example.com/w1"
    assert split_cosignature(sig)[0] == 1679315147


def test_transparency_dev_timestamp_vector() -> None:
    sig = note_sig(raw_sig_line("w", base64.b64decode(TDEV_BLOB)))
    timestamp, signature = split_cosignature(sig)
    assert timestamp == TDEV_TIME and len(signature) == 64


def test_key_id_derivation() -> None:
    key = v.WitnessKey.parse(REAL_WITNESSES[2])
    assert key.key_id == bytes.fromhex("da77ade7")
    assert v.witness_key_id(key.name, key.public_key) == key.key_id
    assert key.key_id == hashlib.sha256(
        b"remora.n621.de\n\x04" + key.public_key).digest()[:4]
    assert v.COSIGNATURE_V1 == 0x04


# -- witness keys -------------------------------------------------------------------------

def test_vkey_round_trip() -> None:
    w = Witness("witness.example/w1")
    assert v.WitnessKey.parse(w.key.vkey()) == w.key
    assert str(w.key) == w.key.vkey()
    for text in REAL_WITNESSES:
        assert v.WitnessKey.parse(text).vkey() == text


@pytest.mark.parametrize("text, match", [
    (TDEV_LOG_VKEY, "type 0x01"),
    ("remora.n621.de+da77ade8+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", "does not match"),
    ("remora.n621.de+DA77ADE7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", "lowercase hex"),
    ("remora.n621.de+da77ade7", "name\\+keyid\\+key"),
    ("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw", "base64"),
    ("+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", "empty"),
    ("w+00000000+", "type no"),
    ("w+00000000+BA==", "32 bytes"),
])
def test_bad_vkeys(text: str, match: str) -> None:
    with pytest.raises(v.MalformedInputError, match=match):
        v.WitnessKey.parse(text)


def test_small_order_key_refused() -> None:
    identity = b"\x01" + b"\x00" * 31
    kid = v.witness_key_id("w", identity).hex()
    raw = base64.b64encode(b"\x04" + identity).decode()
    text = f"w+{kid}+{raw}"
    with pytest.raises(v.MalformedInputError, match="small-order"):
        v.WitnessKey.parse(text)
    with pytest.raises(ValueError, match="small-order"):
        v.WitnessKey.from_public("w", identity)


def test_from_public_misuse() -> None:
    w = Witness("w")
    with pytest.raises(ValueError):
        v.WitnessKey.from_public("a b", w.key.public_key)
    with pytest.raises(ValueError):
        v.WitnessKey.from_public("w", w.key.public_key[:31])
    with pytest.raises(TypeError):
        v.WitnessKey.parse(b"w+00000000+BA==")  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_parse_random_text_is_malformed_or_a_key(text: str) -> None:
    try:
        key = v.WitnessKey.parse(text)
    except v.MalformedInputError:
        return
    assert key.vkey() == text


@settings(max_examples=100)
@given(st.text(min_size=1, max_size=30).filter(lambda n: all(
    not c.isspace() and c != "+" and " " < c != "\x7f" and not "\ud800" <= c <= "\udfff"
    for c in n)), st.binary(min_size=32, max_size=32))
def test_parse_round_trips_any_name(name: str, seed: bytes) -> None:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = v.WitnessKey.from_public(name, public)
    assert v.WitnessKey.parse(key.vkey()) == key


# -- signing and verifying ----------------------------------------------------------------

def test_sign_and_verify() -> None:
    w = Witness("w1")
    sig = w.sign(TEXT, 1_700_000_000)
    assert w.key.verify(TEXT, 1_700_000_000, sig)
    assert not w.key.verify(TEXT, 1_700_000_001, sig)
    assert not w.key.verify(TEXT.replace(b"\n3\n", b"\n4\n"), 1_700_000_000, sig)
    assert not Witness("w1", seed=1).key.verify(TEXT, 1_700_000_000, sig)
    assert not w.key.verify(TEXT, 1_700_000_000, sig[:63])
    assert not w.key.verify(TEXT, -1, sig)
    assert not w.key.verify(TEXT, MAX_TIMESTAMP + 1, sig)
    assert not w.key.verify(TEXT[:-1], 1_700_000_000, sig)
    # a plain note signature by the same key (no cosignature/v1 header) is not a cosignature
    assert not w.key.verify(TEXT, 1_700_000_000, w.private.sign(TEXT))


def test_line_and_verify_cosignatures() -> None:
    w1, w2, w3 = Witness("w1"), Witness("w2"), Witness("w3")
    note = cosigned(TEXT, w1.line(TEXT, 10), w2.line(TEXT, 11))
    cosigs = v.verify_cosignatures(note, [w2.key, w1.key, w3.key])
    assert [(c.witness, c.timestamp) for c in cosigs] == [(w1.key, 10), (w2.key, 11)]
    assert [c.line for c in cosigs] == [w1.line(TEXT, 10), w2.line(TEXT, 11)]
    assert v.verify_cosignatures(note, []) == ()
    line = w1.line(TEXT, 10)
    assert line.startswith(f"{DASH} w1 ".encode()) and line.endswith(b"\n")
    blob = base64.b64decode(line.split(b" ")[2])
    assert blob[:4] == w1.key.key_id and blob[4:12] == (10).to_bytes(8, "big")


def test_wrong_key_time_or_body_fails() -> None:
    w1 = Witness("w1")
    impostor = Witness("w1", seed=9)  # same name, another key: another key ID, so ignored
    assert v.verify_cosignatures(cosigned(TEXT, impostor.line(TEXT, 5)), [w1.key]) == ()
    # the witness's name and key ID, but another key's signature
    forged = v.cosignature_line(w1.key, 5, impostor.sign(TEXT, 5))
    with pytest.raises(v.SignatureError, match="w1"):
        v.verify_cosignatures(cosigned(TEXT, forged), [w1.key])
    # the signature of another time
    shifted = v.cosignature_line(w1.key, 6, w1.sign(TEXT, 5))
    with pytest.raises(v.SignatureError):
        v.verify_cosignatures(cosigned(TEXT, shifted), [w1.key])
    # a cosignature of another checkpoint
    other = TEXT.replace(b"\n3\n", b"\n4\n")
    with pytest.raises(v.SignatureError):
        v.verify_cosignatures(cosigned(TEXT, w1.line(other, 5)), [w1.key])


def test_duplicates_count_once() -> None:
    w1, w2 = Witness("w1"), Witness("w2")
    note = cosigned(TEXT, w1.line(TEXT, 7), w1.line(TEXT, 8), w1.line(TEXT, 7))
    cosigs = v.verify_cosignatures(note, [w1.key, w2.key])
    assert [(c.witness.name, c.timestamp) for c in cosigs] == [("w1", 7)]
    with pytest.raises(v.WitnessError, match="1 of the 2 required .*cosigned: w1"):
        v.require_witnesses(cosigs, 2)
    with pytest.raises(v.WitnessError, match="cosigned: none"):
        v.require_witnesses((), 1)
    v.require_witnesses((), 0)
    v.require_witnesses(cosigs + cosigs, 1)
    with pytest.raises(v.WitnessError):
        v.require_witnesses(cosigs + cosigs, 2)


def test_one_key_under_two_names_counts_once() -> None:
    """cosignature/v1 does not sign the name: one key pinned under two names is one witness."""
    w1 = Witness("w1")
    alias = v.WitnessKey.from_public("w1-alias", w1.key.public_key)
    relabelled = v.cosignature_line(alias, 3, w1.sign(TEXT, 3))
    note = cosigned(TEXT, w1.line(TEXT, 3), relabelled)
    cosigs = v.verify_cosignatures(note, [w1.key, alias])
    assert [c.witness.name for c in cosigs] == ["w1"]
    with pytest.raises(v.WitnessError):
        v.require_witnesses([*cosigs, v.Cosignature(alias, 3)], 2)


def test_bad_timestamps_and_lengths_are_malformed() -> None:
    w1 = Witness("w1")
    sig = w1.sign(TEXT, 1)
    too_late = raw_sig_line("w1", w1.key.key_id + (MAX_TIMESTAMP + 1).to_bytes(8, "big") + sig)
    with pytest.raises(v.MalformedInputError, match="2\\*\\*63"):
        v.verify_cosignatures(cosigned(TEXT, too_late), [w1.key])
    short = raw_sig_line("w1", w1.key.key_id + (1).to_bytes(8, "big") + sig[:-1])
    with pytest.raises(v.MalformedInputError, match="71 bytes"):
        v.verify_cosignatures(cosigned(TEXT, short), [w1.key])
    # the last valid timestamp is fine
    top = v.cosignature_line(w1.key, MAX_TIMESTAMP, w1.sign(TEXT, MAX_TIMESTAMP))
    assert v.verify_cosignatures(cosigned(TEXT, top), [w1.key])[0].timestamp == MAX_TIMESTAMP
    for bad in (-1, MAX_TIMESTAMP + 1):
        with pytest.raises(ValueError):
            v.cosignature_line(w1.key, bad, sig)
        with pytest.raises(ValueError):
            v.cosignature_message(TEXT, bad)
    with pytest.raises(TypeError):
        v.cosignature_message(TEXT, True)
    with pytest.raises(ValueError):
        v.cosignature_line(w1.key, 1, sig[:63])
    with pytest.raises(ValueError):
        v.cosignature_message(TEXT[:-1], 1)


def test_api_misuse() -> None:
    w1 = Witness("w1")
    with pytest.raises(TypeError):
        v.verify_cosignatures(cosigned(TEXT), w1.key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        v.verify_cosignatures(cosigned(TEXT), [w1.key.vkey()])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        v.require_witnesses((), -1)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_notes_are_malformed_or_ignored(data: bytes) -> None:
    w1 = Witness("w1")
    try:
        assert v.verify_cosignatures(data, [w1.key]) == ()
    except v.MalformedInputError:
        pass


@settings(max_examples=300)
@given(st.binary(max_size=100))
def test_random_blobs_under_a_witness_name(blob: bytes) -> None:
    """Any blob under a configured witness's name and key ID is malformed or fails."""
    w1 = Witness("w1")
    note = cosigned(TEXT, raw_sig_line("w1", w1.key.key_id + blob))
    try:
        v.verify_cosignatures(note, [w1.key])
    except (v.MalformedInputError, v.SignatureError):
        return
    raise AssertionError("a random cosignature verified")


@settings(max_examples=60)
@given(st.integers(0, MAX_TIMESTAMP), st.binary(min_size=1, max_size=60).map(
    lambda b: base64.b64encode(b) + b"\n"))
def test_round_trip_any_time_and_text(timestamp: int, extra: bytes) -> None:
    w1 = Witness("w1")
    text = TEXT + extra
    cosigs = v.verify_cosignatures(cosigned(text, w1.line(text, timestamp)), [w1.key])
    assert [(c.witness, c.timestamp) for c in cosigs] == [(w1.key, timestamp)]
