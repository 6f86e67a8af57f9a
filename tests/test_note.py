"""C2SP signed notes and verifier keys: published vectors, key parsing, note rules."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import verifier as v
from tests.helpers import raw_sig_line, sign_text, spare_bits
from tests.logsim import Signer

DASH = "\u2014"

# c2sp.org/signed-note example.
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n"
    f"{DASH} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3"
    "mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()

# golang.org/x/mod/sumdb/note test vector.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (b"If you think cryptography is the answer to your problem,\n"
           b"then you don't know what your problem is.\n")
GO_SIG_LINE = (f"{DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFY"
               "C2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").encode()
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"


def verify_names(note: bytes, keys: Any) -> tuple[v.note.SignedNote, tuple[str, ...]]:
    """verify_note, with the verified keys reduced to their names."""
    parsed, verified = v.verify_note(note, keys)
    return parsed, tuple(getattr(k, "name", k) for k in verified)


def go_private_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01 and len(raw) == 33
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


# -- vectors -----------------------------------------------------------------------

def test_c2sp_example_verifies() -> None:
    """The c2sp.org/signed-note example verifies under its key."""
    key = v.VerifierKey.parse(C2SP_VKEY)
    note, signers = verify_names(C2SP_NOTE, [key])
    assert note.text == b"This is an example message.\n"
    assert signers == ("example.com/foo",)
    assert note.signatures[0].key_id == bytes.fromhex("530d903a")
    assert len(note.signatures[0].signature) == 64


def test_c2sp_example_key_fields() -> None:
    """The example key parses to its name, ID and raw key, and prints back identically."""
    key = v.VerifierKey.parse(C2SP_VKEY)
    assert key.name == "example.com/foo"
    assert key.key_id.hex() == "530d903a"
    assert key.public_key == base64.b64decode("AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")[1:]
    assert str(key) == C2SP_VKEY == key.vkey
    assert v.key_id(key.name, key.public_key) == key.key_id


def test_c2sp_example_tampered_text() -> None:
    """Changing the example's text breaks its signature."""
    key = v.VerifierKey.parse(C2SP_VKEY)
    bad = C2SP_NOTE.replace(b"example message", b"example massage")
    with pytest.raises(v.SignatureError):
        verify_names(bad, [key])


def test_go_vector_signing_reproduces_note() -> None:
    """Signing the Go text with its seed gives the published note byte for byte."""
    priv = go_private_key()
    key = v.VerifierKey.parse(GO_VKEY)
    assert priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == key.public_key
    line = v.signature_line(key.name, key.key_id, priv.sign(GO_TEXT))
    assert line == GO_SIG_LINE
    note = v.assemble_note(GO_TEXT, [line])
    assert note == GO_TEXT + b"\n" + GO_SIG_LINE


def test_go_vector_verifies() -> None:
    """verify_note accepts the Go note and returns its text."""
    note, signers = verify_names(GO_TEXT + b"\n" + GO_SIG_LINE, [v.VerifierKey.parse(GO_VKEY)])
    assert note.text == GO_TEXT
    assert signers == ("PeterNeumann",)


@pytest.mark.parametrize("pos", [0, 10, len(GO_TEXT) - 2])
def test_go_vector_changed_byte(pos: int) -> None:
    """Any changed text byte of the Go note fails its signature."""
    text = bytearray(GO_TEXT)
    text[pos] ^= 0x01
    with pytest.raises(v.SignatureError):
        verify_names(bytes(text) + b"\n" + GO_SIG_LINE, [v.VerifierKey.parse(GO_VKEY)])


def test_enoch_root_key_parses() -> None:
    """The Go test's EnochRoot key parses and round-trips."""
    key = v.VerifierKey.parse(ENOCH_VKEY)
    assert (key.name, key.key_id.hex()) == ("EnochRoot", "af0cfe78")
    assert str(key) == ENOCH_VKEY


def test_go_note_does_not_verify_under_other_key() -> None:
    """A vector note under an unrelated key has no trusted signature."""
    with pytest.raises(v.SignatureError, match="no signature"):
        verify_names(GO_TEXT + b"\n" + GO_SIG_LINE, [v.VerifierKey.parse(ENOCH_VKEY)])


# -- VerifierKey.parse -------------------------------------------------------------

_PUB = base64.b64decode("AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")[1:]


def _vk(name: str, raw: bytes, hex_id: str | None = None) -> str:
    if hex_id is None:
        hex_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex()
    return f"{name}+{hex_id}+{base64.b64encode(raw).decode()}"


BAD_KEYS = [
    ("no plus", "example.com/foo530d903aAekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "name\\+keyid\\+key"),
    ("one plus", "example.com/foo+530d903aAekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "name\\+keyid\\+key"),
    ("name with space", _vk("example.com foo", b"\x01" + _PUB), "space"),
    ("name with tab", _vk("example.com\tfoo", b"\x01" + _PUB), "space"),
    ("name with U+00A0", _vk("example.com\u00a0foo", b"\x01" + _PUB), "space"),
    ("empty name", _vk("", b"\x01" + _PUB), "empty"),
    ("name with lone surrogate",
     "\udcff+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "surrogate"),
    ("id 7 digits", "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "8 lowercase hex"),
    ("id 9 digits", "example.com/foo+530d903a0+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "8 lowercase hex"),
    ("id uppercase", "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "8 lowercase hex"),
    ("id non-hex", "example.com/foo+530d903g+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "8 lowercase hex"),
    ("id mismatched", "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "does not match"),
    ("id of another name", "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "does not match"),
    ("bad base64 char", "example.com/foo+530d903a+Aeky!Rrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "base64"),
    ("url-safe base64", "example.com/foo+530d903a+Aeky_Rrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
     "base64"),
    ("base64 with newline",
     "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k\n",
     "base64"),
    ("truncated base64", "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
     "base64"),
    ("missing padding", _vk("example.com/foo", b"\x01" + _PUB[:31]).rstrip("="), "base64"),
    ("spare bits", spare_bits(_vk("example.com/foo", b"\x01" + _PUB[:31])), "canonical"),
    ("wrong type byte", _vk("example.com/foo", b"\x02" + _PUB), "type 0x01"),
    ("no type byte", _vk("example.com/foo", b""), "type 0x01"),
    ("31-byte key", _vk("example.com/foo", b"\x01" + _PUB[:31]), "32 bytes"),
    ("33-byte key", _vk("example.com/foo", b"\x01" + _PUB + b"\x00"), "32 bytes"),
    ("too long", "a" * 2000 + "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "too long"),
]


@pytest.mark.parametrize("text,reason", [(t, r) for _, t, r in BAD_KEYS],
                         ids=[n for n, _, _ in BAD_KEYS])
def test_bad_verifier_keys(text: str, reason: str) -> None:
    """Each malformed verifier key is refused with MalformedInputError, for its own reason."""
    with pytest.raises(v.MalformedInputError, match=reason):
        v.VerifierKey.parse(text)


def test_spare_bits_helper_makes_noncanonical() -> None:
    """The spare-bits case really decodes to the same bytes under a lax decoder."""
    good = _vk("example.com/foo", b"\x01" + _PUB[:31]).split("+", 2)[2]
    bad = spare_bits(good)
    assert bad != good and base64.b64decode(bad) == base64.b64decode(good)


def test_key_with_plus_in_base64_parses() -> None:
    """A key whose base64 contains '+' splits on the first two '+' only."""
    for i in range(1000):
        signer = Signer(f"plus-{i}", f"seed-{i}".encode())
        if "+" in signer.vkey.split("+", 2)[2]:
            break
    else:  # pragma: no cover - 1000 keys without a '+' is practically impossible
        raise AssertionError("no key with '+' found")
    key = v.VerifierKey.parse(signer.vkey)
    assert key == signer.key
    note = sign_text(b"hello\n", signer)
    assert verify_names(note, [key])[1] == (signer.name,)


def test_key_parse_type_error() -> None:
    """Passing bytes instead of text is API misuse: TypeError."""
    with pytest.raises(TypeError):
        v.VerifierKey.parse(C2SP_VKEY.encode())  # type: ignore[arg-type]


def test_from_public_bytes_matches_parse() -> None:
    """from_public_bytes derives the same key ID as the published key."""
    key = v.VerifierKey.from_public_bytes("example.com/foo", _PUB)
    assert str(key) == C2SP_VKEY


# -- note rules ----------------------------------------------------------------------

ALICE = Signer("alice", b"alice")
BOB = Signer("bob", b"bob")
ALICE2 = Signer("alice", b"alice-other-key")
TEXT = b"a checkpoint-like text\nline two\n"


def test_verify_note_keys() -> None:
    """verify_note_keys returns the verifying keys, each once, in signature order."""
    note = sign_text(TEXT, BOB, ALICE, BOB)
    parsed, verified = v.note.verify_note_keys(note, [ALICE.key, BOB.key])
    assert verified == (BOB.key, ALICE.key)
    assert parsed.text == TEXT
    with pytest.raises(v.SignatureError):
        v.note.verify_note_keys(note, [ALICE2.key])


def test_unknown_keys_ignored() -> None:
    """Signatures by keys the verifier does not know are skipped."""
    note = sign_text(TEXT, BOB, ALICE)
    parsed, signers = verify_names(note, [ALICE.key])
    assert signers == ("alice",)
    assert len(parsed.signatures) == 2


def test_all_trusted_signers_reported() -> None:
    """Every trusted key that signed is reported, once, in note order."""
    note = sign_text(TEXT, BOB, ALICE, BOB)
    assert verify_names(note, [ALICE.key, BOB.key])[1] == ("bob", "alice")


def test_same_name_different_id_ignored() -> None:
    """A signature with a known name but another key ID is not checked."""
    note = sign_text(TEXT, ALICE2, ALICE)
    assert verify_names(note, [ALICE.key])[1] == ("alice",)
    with pytest.raises(v.SignatureError, match="no signature"):
        verify_names(sign_text(TEXT, ALICE2), [ALICE.key])


def test_known_key_id_other_name_ignored() -> None:
    """A signature with a known key ID but another name is not checked."""
    text_sig = ALICE.sign(TEXT)
    note = v.assemble_note(TEXT, [raw_sig_line("mallory", ALICE.key.key_id + text_sig)])
    with pytest.raises(v.SignatureError, match="no signature"):
        verify_names(note, [ALICE.key])


@pytest.mark.parametrize("bad_first", [True, False])
def test_known_key_bad_signature_rejects(bad_first: bool) -> None:
    """A failing signature by a known key rejects the note even beside a good one."""
    bad = raw_sig_line("bob", BOB.key.key_id + ALICE.sign(TEXT))
    good = v.signature_line("alice", ALICE.key.key_id, ALICE.sign(TEXT))
    note = v.assemble_note(TEXT, [bad, good] if bad_first else [good, bad])
    with pytest.raises(v.SignatureError, match="bob"):
        verify_names(note, [ALICE.key, BOB.key])
    assert verify_names(note, [ALICE.key])[1] == ("alice",)


def test_short_signature_from_known_key() -> None:
    """A 1-byte signature by a known key parses but fails verification."""
    note = v.assemble_note(TEXT, [raw_sig_line("alice", ALICE.key.key_id + b"x")])
    assert len(v.parse_note(note).signatures[0].signature) == 1
    with pytest.raises(v.SignatureError):
        verify_names(note, [ALICE.key])


def test_no_trusted_signature() -> None:
    """A note with no signature by any given key is rejected."""
    with pytest.raises(v.SignatureError):
        verify_names(sign_text(TEXT, BOB), [ALICE.key])
    with pytest.raises(v.SignatureError):
        verify_names(sign_text(TEXT, BOB), [])


def test_keys_must_be_a_sequence() -> None:
    """A single key instead of a list is API misuse."""
    with pytest.raises(TypeError):
        verify_names(sign_text(TEXT, ALICE), ALICE.key)  # type: ignore[arg-type]


def test_parse_note_fields() -> None:
    """parse_note keeps the text with its final newline and splits each signature."""
    note = sign_text(TEXT, ALICE, BOB)
    parsed = v.parse_note(note)
    assert parsed.text == TEXT
    assert [(s.name, s.key_id) for s in parsed.signatures] == [
        ("alice", ALICE.key.key_id), ("bob", BOB.key.key_id)]
    assert parsed.signatures[0].signature == ALICE.sign(TEXT)


def test_exactly_64_signatures_ok() -> None:
    """64 signature lines are the maximum and still parse."""
    line = v.signature_line("alice", ALICE.key.key_id, ALICE.sign(TEXT))
    assert verify_names(v.assemble_note(TEXT, [line] * 64), [ALICE.key])[1] == ("alice",)


_GOOD_LINE = v.signature_line("alice", ALICE.key.key_id, ALICE.sign(TEXT))

MALFORMED_NOTES = [
    ("no blank line", TEXT + _GOOD_LINE, "blank line"),
    ("no text", b"\n" + _GOOD_LINE, "blank line"),
    ("control char", TEXT.replace(b"two", b"t\x01o") + b"\n" + _GOOD_LINE, "control"),
    ("carriage return", TEXT.replace(b"\n", b"\r\n", 1) + b"\n" + _GOOD_LINE, "control"),
    ("NUL", TEXT + b"\n" + _GOOD_LINE.replace(b"alice", b"al\x00ce"), "control"),
    ("invalid UTF-8", TEXT.replace(b"two", b"tw\xff") + b"\n" + _GOOD_LINE, "UTF-8"),
    ("overlong UTF-8", TEXT.replace(b"two", b"tw\xc0\xaf") + b"\n" + _GOOD_LINE, "UTF-8"),
    ("no final newline", TEXT + b"\n" + _GOOD_LINE[:-1], "newline"),
    ("no signature lines", TEXT + b"\n", "newline"),
    ("trailing empty line", TEXT + b"\n" + _GOOD_LINE + b"\n", "newline"),
    ("line without dash", TEXT + b"\n" + _GOOD_LINE + b"\n" + b"x\n", "em dash"),
    ("hyphen instead of em dash", TEXT + b"\n" + _GOOD_LINE.replace("\u2014".encode(), b"-"),
     "em dash"),
    ("en dash", TEXT + b"\n" + _GOOD_LINE.replace("\u2014".encode(), "\u2013".encode()),
     "em dash"),
    ("no space after dash",
     TEXT + b"\n" + _GOOD_LINE.replace("\u2014 ".encode(), "\u2014".encode()),
     "em dash"),
    ("three fields", TEXT + b"\n" + _GOOD_LINE[:-1] + b" extra\n", "name base64"),
    ("double space", TEXT + b"\n" + _GOOD_LINE.replace(b"alice ", b"alice  "), "name base64"),
    ("65 signatures", TEXT + b"\n" + _GOOD_LINE * 65, "more than 64"),
    ("name with plus", TEXT + b"\n" + _GOOD_LINE.replace(b"alice", b"ali+ce"), "'\\+'"),
    ("empty name", TEXT + b"\n" + _GOOD_LINE.replace(b"alice", b""), "name base64|empty"),
    ("sig 4 bytes", TEXT + b"\n" + raw_sig_line("alice", ALICE.key.key_id), "shorter"),
    ("sig empty", TEXT + b"\n" + raw_sig_line("alice", b""), "shorter"),
    ("sig bad base64", TEXT + b"\n" + _GOOD_LINE.replace(b"=\n", b"!\n"), "base64"),
    ("sig no padding", TEXT + b"\n" + _GOOD_LINE.replace(b"=\n", b"\n"), "base64"),
]


@pytest.mark.parametrize("note,reason", [(n, r) for _, n, r in MALFORMED_NOTES],
                         ids=[i for i, _, _ in MALFORMED_NOTES])
def test_malformed_notes(note: bytes, reason: str) -> None:
    """Each malformed note is MalformedInputError from parse_note and verify_note."""
    with pytest.raises(v.MalformedInputError, match=reason):
        v.parse_note(note)
    with pytest.raises(v.MalformedInputError):
        verify_names(note, [ALICE.key])


def test_malformed_fixture_sanity() -> None:
    """The good line used to build malformed notes verifies on its own."""
    assert verify_names(TEXT + b"\n" + _GOOD_LINE, [ALICE.key])[1] == ("alice",)
    assert _GOOD_LINE.endswith(b"=\n")


def test_note_too_large() -> None:
    """Notes over 1 MiB are refused before parsing."""
    text = b"x" * (1 << 20) + b"\n"
    with pytest.raises(v.MalformedInputError, match="larger"):
        v.parse_note(text + b"\n" + _GOOD_LINE)


def test_note_type_error() -> None:
    """A str note is API misuse."""
    with pytest.raises(TypeError):
        v.parse_note((TEXT + b"\n" + _GOOD_LINE).decode())  # type: ignore[arg-type]


def test_signature_line_and_assemble_refuse_misuse() -> None:
    """signature_line and assemble_note refuse bad names, IDs, texts and empty lists."""
    with pytest.raises(v.MalformedInputError):
        v.signature_line("a b", b"1234", b"sig")
    with pytest.raises(ValueError):
        v.signature_line("a", b"123", b"sig")
    with pytest.raises(ValueError):
        v.assemble_note(b"no newline", [_GOOD_LINE])
    with pytest.raises(ValueError):
        v.assemble_note(TEXT, [])
