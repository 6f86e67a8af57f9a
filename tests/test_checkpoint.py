"""C2SP tlog-checkpoint: text format, strict body parsing, error precedence, round trips."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from tests.helpers import raw_sig_line, sign_text, spare_bits
from tests.logsim import Signer
from verifier.checkpoint import _time_of

LOG = Signer("example.com/log", b"checkpoint-log")
OTHER = Signer("example.com/log", b"another-key-same-name")
ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()


def body(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def test_checkpoint_text_format() -> None:
    """checkpoint_text writes origin, decimal size, base64 root and extensions, one per line."""
    assert v.checkpoint_text("example.com/log", 42, ROOT) == (
        f"example.com/log\n42\n{ROOT_B64}\n".encode())
    assert v.checkpoint_text("o", 0, b"\x00" * 32, ["ext one", "ext2"]) == (
        b"o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next one\next2\n")


@pytest.mark.parametrize("args", [
    ("", 1, ROOT, ()), ("a\nb", 1, ROOT, ()), ("o", 1, ROOT[:31], ()),
    ("o", 1, ROOT, ("",)), ("o", 1, ROOT, ("a\nb",)),
])
def test_checkpoint_text_refuses(args: tuple) -> None:
    """Empty or multi-line origins/extensions and short roots are ValueError."""
    with pytest.raises(ValueError):
        v.checkpoint_text(*args)


def test_parse_note_fields() -> None:
    """A signed checkpoint parses to its fields, exact note bytes and signer."""
    note = sign_text(v.checkpoint_text("example.com/log", 7, ROOT, ["x y"]), LOG)
    cp = v.Checkpoint.parse_note(note, [LOG.key])
    assert (cp.origin, cp.size, cp.root, cp.extensions) == ("example.com/log", 7, ROOT, ("x y",))
    assert cp.note == note
    assert cp.signers == ("example.com/log",)


def test_size_zero_ok() -> None:
    """Size "0" is the one decimal allowed to start with a zero."""
    cp = v.Checkpoint.parse_note(sign_text(body("o", "0", ROOT_B64), LOG), [LOG.key])
    assert cp.size == 0


def test_size_max_uint64_ok() -> None:
    """2^64-1 is the largest size."""
    cp = v.Checkpoint.parse_note(sign_text(body("o", str(2**64 - 1), ROOT_B64), LOG), [LOG.key])
    assert cp.size == 2**64 - 1


MALFORMED_BODIES = [
    ("leading zero", body("o", "05", ROOT_B64), "leading zeros"),
    ("double zero", body("o", "00", ROOT_B64), "leading zeros"),
    ("plus sign", body("o", "+5", ROOT_B64), "leading zeros"),
    ("minus sign", body("o", "-5", ROOT_B64), "leading zeros"),
    ("space in size", body("o", " 5", ROOT_B64), "leading zeros"),
    ("hex size", body("o", "0x5", ROOT_B64), "leading zeros"),
    ("non-ASCII digit", body("o", "\u0665", ROOT_B64), "leading zeros"),
    ("underscore", body("o", "1_000", ROOT_B64), "leading zeros"),
    ("size 2^64", body("o", str(2**64), ROOT_B64), "larger than"),
    ("size 5000 digits", body("o", "9" * 5000, ROOT_B64), "larger than"),
    ("root 31 bytes", body("o", "5", base64.b64encode(ROOT[:31]).decode()), "32 bytes"),
    ("root 33 bytes", body("o", "5", base64.b64encode(ROOT + b"\0").decode()), "32 bytes"),
    ("root no padding", body("o", "5", ROOT_B64.rstrip("=")), "canonical"),
    ("root url-safe", body("o", "5", base64.urlsafe_b64encode(b"\xff" * 32).decode()), "canonical"),
    ("root spare bits", body("o", "5", spare_bits(ROOT_B64)), "canonical"),
    ("root hex", body("o", "5", ROOT.hex()), "canonical|32 bytes"),
    ("two lines", body("o", "5"), "origin, a size and a root"),
    ("one line", body("o"), "origin, a size and a root"),
    ("empty origin", body("", "5", ROOT_B64), "empty"),
    ("empty extension line", body("o", "5", ROOT_B64, "", "ext"), "empty"),
    ("swapped size and root", body("o", ROOT_B64, "5"), "leading zeros"),
]


@pytest.mark.parametrize("text,reason", [(t, r) for _, t, r in MALFORMED_BODIES],
                         ids=[i for i, _, _ in MALFORMED_BODIES])
def test_malformed_body(text: bytes, reason: str) -> None:
    """A correctly signed note with a malformed checkpoint body is MalformedInputError."""
    note = sign_text(text, LOG)
    assert v.verify_note(note, [LOG.key])[1] == (LOG.name,)  # the signature itself is fine
    with pytest.raises(v.MalformedInputError, match=reason):
        v.Checkpoint.parse_note(note, [LOG.key])


def test_spare_bits_root_is_same_bytes() -> None:
    """The spare-bits root decodes laxly to the real root: only canonicality rejects it."""
    assert base64.b64decode(spare_bits(ROOT_B64)) == ROOT
    assert spare_bits(ROOT_B64) != ROOT_B64


@pytest.mark.parametrize("text,reason", [(t, r) for _, t, r in MALFORMED_BODIES],
                         ids=[i for i, _, _ in MALFORMED_BODIES])
def test_malformed_body_beats_bad_signature(text: bytes, reason: str) -> None:
    """Malformed body and a bad known-key signature together: MalformedInputError wins."""
    note = v.assemble_note(text, [raw_sig_line(LOG.name, LOG.key.key_id + b"\x00" * 64)])
    with pytest.raises(v.SignatureError):
        v.verify_note(note, [LOG.key])
    with pytest.raises(v.MalformedInputError, match=reason):
        v.Checkpoint.parse_note(note, [LOG.key])


def test_malformed_body_beats_missing_signature() -> None:
    """Malformed body signed by an unknown key: MalformedInputError, not SignatureError."""
    note = sign_text(body("o", "05", ROOT_B64), OTHER)
    with pytest.raises(v.MalformedInputError):
        v.Checkpoint.parse_note(note, [LOG.key])


def test_good_body_bad_signature() -> None:
    """A well-formed checkpoint with a bad known-key signature is SignatureError."""
    text = v.checkpoint_text("o", 5, ROOT)
    note = v.assemble_note(text, [raw_sig_line(LOG.name, LOG.key.key_id + b"\x00" * 64)])
    with pytest.raises(v.SignatureError):
        v.Checkpoint.parse_note(note, [LOG.key])
    with pytest.raises(v.SignatureError):
        v.Checkpoint.parse_note(sign_text(text, OTHER), [LOG.key])


def test_tampered_checkpoint() -> None:
    """Changing the size of a signed checkpoint breaks its signature."""
    note = sign_text(v.checkpoint_text("o", 5, ROOT), LOG)
    with pytest.raises(v.SignatureError):
        v.Checkpoint.parse_note(note.replace(b"\n5\n", b"\n6\n", 1), [LOG.key])


def test_extension_lines_kept() -> None:
    """Extension lines after the root are kept in order, verbatim."""
    exts = ["— oracle 12345", "key=value", "x"]
    cp = v.Checkpoint.parse_note(sign_text(body("o", "1", ROOT_B64, *exts), LOG), [LOG.key])
    assert cp.extensions == tuple(exts)


def test_cosigned_checkpoint() -> None:
    """A checkpoint signed by the log and a witness reports the trusted signers."""
    witness = Signer("witness.example", b"w")
    note = sign_text(v.checkpoint_text("o", 5, ROOT), LOG, witness)
    assert v.Checkpoint.parse_note(note, [LOG.key]).signers == (LOG.name,)
    assert v.Checkpoint.parse_note(note, [LOG.key, witness.key]).signers == (
        LOG.name, witness.name)


_line_chars = st.characters(blacklist_categories=("Cs", "Cc"))
_line = st.text(_line_chars, min_size=1, max_size=40)


# Any extension line but a modelseal-time one, which has its own strict syntax.
_other_ext = _line.filter(lambda line: not line.startswith(v.checkpoint.TIME_PREFIX))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(origin=_line, size=st.integers(0, 2**64 - 1), root=st.binary(min_size=32, max_size=32),
       extensions=st.lists(_other_ext, max_size=4),
       time=st.none() | st.integers(0, 2**63 - 1), at=st.integers(0, 4))
def test_round_trip(origin: str, size: int, root: bytes, extensions: list[str],
                    time: int | None, at: int) -> None:
    """checkpoint_text -> sign -> Checkpoint.parse_note gives back every field, including
    the log's time from a modelseal-time line wherever it stands among the extensions."""
    if time is not None:
        extensions = [*extensions[:at], v.time_line(time), *extensions[at:]]
    text = v.checkpoint_text(origin, size, root, extensions)
    note = sign_text(text, LOG)
    cp = v.Checkpoint.parse_note(note, [LOG.key])
    assert (cp.origin, cp.size, cp.root, cp.extensions) == (origin, size, root, tuple(extensions))
    assert cp.time == time
    assert cp.note == note
    assert v.Checkpoint.parse_body(text) == (origin, size, root, tuple(extensions))


@pytest.mark.parametrize("extensions,expect", [
    (["modelseal-time 5"], 5),
    (["modelseal-timezone UTC", "modelseal-time 5"], 5),  # another keyword: opaque
    (["modelseal-timestamp 7", "modelseal-time-zone x"], None),
    ([], None),
])
def test_the_time_line_is_its_keyword_exactly(extensions: list[str], expect: int | None) -> None:
    assert _time_of(extensions) == expect


@pytest.mark.parametrize("extensions", [["modelseal-time"], ["modelseal-time 1",
                                                             "modelseal-time 2"]])
def test_a_time_line_without_a_value_or_twice_is_malformed(extensions: list[str]) -> None:
    with pytest.raises(v.MalformedInputError):
        _time_of(extensions)
