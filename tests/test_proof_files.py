"""Text proof files: c2sp.org/tlog-proof@v1 and the tlog-witness add-checkpoint body."""

from __future__ import annotations

import base64

import pytest

import verifier as v
from tests import reference as ref
from tests.helpers import sign_text
from tests.logsim import Log, Signer, sample_log

LOG, _PIPE = sample_log(models=3, seed="proof-files")
KEYS = [LOG.log_key.key]
N = len(LOG.entries)
H0 = b"\x00" * 32
H1 = b"\x01" * 32
H0_B64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
H1_B64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="


def proof_for(index: int, size: int, extra: bytes | None = None) -> bytes:
    return v.format_tlog_proof(index, LOG.inclusion(index, size), LOG.checkpoint(size), extra)


def add_body(old: int, new: int) -> bytes:
    return v.format_add_checkpoint(old, LOG.consistency(old, new), LOG.checkpoint(new))


# -- exact layout ----------------------------------------------------------------------

def test_tlog_proof_exact_bytes() -> None:
    """The tlog-proof layout: header, extra, index, hashes, empty line, checkpoint verbatim."""
    cp = b"example.com/log\n3\nROOT\n\n\xe2\x80\x94 example.com/log SIG\n"
    expected = (
        "c2sp.org/tlog-proof@v1\n"
        "extra aGVsbG8=\n"
        "index 1\n"
        f"{H0_B64}\n"
        f"{H1_B64}\n"
        "\n"
    ).encode() + cp
    assert v.format_tlog_proof(1, [H0, H1], cp, b"hello") == expected
    parsed = v.parse_tlog_proof(expected)
    assert parsed == v.proof_files.TlogProof(b"hello", 1, (H0, H1), cp)


def test_tlog_proof_exact_bytes_no_extra() -> None:
    """Without extra data there is no 'extra' line; no hashes gives an empty line right away."""
    assert v.format_tlog_proof(0, [], b"CP\n") == b"c2sp.org/tlog-proof@v1\nindex 0\n\nCP\n"
    assert v.parse_tlog_proof(b"c2sp.org/tlog-proof@v1\nindex 0\n\nCP\n") == (
        v.proof_files.TlogProof(None, 0, (), b"CP\n"))


def test_add_checkpoint_exact_bytes() -> None:
    """The add-checkpoint layout: 'old N', hashes, empty line, checkpoint verbatim."""
    expected = f"old 3\n{H0_B64}\n{H1_B64}\n\n".encode() + b"CP\n"
    assert v.format_add_checkpoint(3, [H0, H1], b"CP\n") == expected
    assert v.parse_add_checkpoint(expected) == v.proof_files.AddCheckpoint(3, (H0, H1), b"CP\n")
    assert v.format_add_checkpoint(0, [], b"CP\n") == b"old 0\n\nCP\n"


# -- round trips against a logsim log ---------------------------------------------------

@pytest.mark.parametrize("index,size", [(0, 1), (0, N), (1, 2), (5, 13), (N - 1, N), (7, 8),
                                        (8, 9), (3, N)])
def test_tlog_proof_round_trip(index: int, size: int) -> None:
    """format -> parse -> verify for an entry of the log at a checkpoint."""
    data = proof_for(index, size)
    parsed = v.parse_tlog_proof(data)
    assert (parsed.index, list(parsed.hashes), parsed.extra) == (
        index, LOG.inclusion(index, size), None)
    assert parsed.checkpoint == LOG.checkpoint(size)
    cp = v.verify_tlog_proof(data, LOG.entries[index], KEYS)
    assert (cp.size, cp.root, cp.origin) == (size, ref.mth(LOG.entries[:size]), LOG.origin)


@pytest.mark.parametrize("extra", [b"", b"\x00\xff" * 10, b"some extra data"])
def test_tlog_proof_extra_round_trip(extra: bytes) -> None:
    """Extra data survives the round trip and does not affect verification."""
    data = proof_for(2, 10, extra)
    assert v.parse_tlog_proof(data).extra == extra
    assert v.verify_tlog_proof(data, LOG.entries[2], KEYS).size == 10


@pytest.mark.parametrize("old,new", [(0, 1), (0, N), (1, 1), (1, 2), (3, 7), (4, 8), (5, N),
                                     (N, N), (N - 1, N)])
def test_add_checkpoint_round_trip(old: int, new: int) -> None:
    """format -> parse -> verify of consistency from (old, old root) to a new checkpoint."""
    data = add_body(old, new)
    parsed = v.parse_add_checkpoint(data)
    assert (parsed.old_size, list(parsed.hashes)) == (old, LOG.consistency(old, new))
    cp = v.verify_add_checkpoint(data, KEYS, ref.mth(LOG.entries[:old]))
    assert (cp.size, cp.root) == (new, ref.mth(LOG.entries[:new]))


# -- negative cases -----------------------------------------------------------------------

def test_wrong_header() -> None:
    """Any other first line is not a tlog-proof."""
    data = proof_for(1, 5)
    for header in (b"c2sp.org/tlog-proof@v2", b"C2SP.ORG/TLOG-PROOF@V1", b"c2sp.org/tlog-proof@v1 ",
                   b"c2sp.org/tlog-proof"):
        bad = data.replace(b"c2sp.org/tlog-proof@v1", header, 1)
        with pytest.raises(v.MalformedInputError, match="must start with"):
            v.parse_tlog_proof(bad)


@pytest.mark.parametrize("index", [b"01", b"00", b"+1", b"-1", b"1 ", b"", b"0x1", b"1e3",
                                   b"18446744073709551616", b"9" * 5000])
def test_bad_index(index: bytes) -> None:
    """The index must be a decimal without leading zeros, within uint64."""
    data = proof_for(1, 5).replace(b"index 1\n", b"index " + index + b"\n", 1)
    with pytest.raises(v.MalformedInputError, match="index"):
        v.parse_tlog_proof(data)


def test_missing_index_line() -> None:
    """Without 'index N' the proof is malformed, also after an 'extra' line."""
    with pytest.raises(v.MalformedInputError, match="index"):
        v.parse_tlog_proof(b"c2sp.org/tlog-proof@v1\n\nCP\n")
    with pytest.raises(v.MalformedInputError, match="index"):
        v.parse_tlog_proof(b"c2sp.org/tlog-proof@v1\nextra aGk=\n" + H0_B64.encode() + b"\n\nCP\n")
    with pytest.raises(v.MalformedInputError, match="index"):
        v.parse_tlog_proof(b"c2sp.org/tlog-proof@v1\nIndex 0\n\nCP\n")


def test_bad_extra() -> None:
    """Extra data must be canonical base64."""
    with pytest.raises(v.MalformedInputError, match="extra"):
        v.parse_tlog_proof(b"c2sp.org/tlog-proof@v1\nextra aGk\nindex 0\n\nCP\n")


def test_63_hash_lines_parse_64_do_not() -> None:
    """At most 63 hash lines are accepted, in both file kinds."""
    hashes = [H0] * 63
    assert len(v.parse_tlog_proof(v.format_tlog_proof(0, hashes, b"CP\n")).hashes) == 63
    assert len(v.parse_add_checkpoint(v.format_add_checkpoint(1, hashes, b"CP\n")).hashes) == 63
    with pytest.raises(v.MalformedInputError, match="more than 63"):
        v.parse_tlog_proof(v.format_tlog_proof(0, hashes + [H0], b"CP\n"))
    with pytest.raises(v.MalformedInputError, match="more than 63"):
        v.parse_add_checkpoint(v.format_add_checkpoint(1, hashes + [H0], b"CP\n"))


@pytest.mark.parametrize("line", [H0_B64.rstrip("="), H0_B64 + " ",
                                  base64.b64encode(H0[:31]).decode(), "", "not base64!", H0.hex()])
def test_bad_hash_line(line: str) -> None:
    """Every hash line is canonical base64 of 32 bytes; an extra blank line is malformed too."""
    good = proof_for(1, 5)
    bad = good.replace(b"index 1\n", b"index 1\n" + line.encode() + b"\n", 1)
    with pytest.raises(v.MalformedInputError):
        v.verify_tlog_proof(bad, LOG.entries[1], KEYS)


def test_no_empty_line() -> None:
    """Without an empty line before the checkpoint both formats are malformed."""
    with pytest.raises(v.MalformedInputError, match="empty line"):
        v.parse_tlog_proof(b"c2sp.org/tlog-proof@v1\nindex 0\n")
    with pytest.raises(v.MalformedInputError, match="empty line"):
        v.parse_add_checkpoint(b"old 0\n")


def test_non_ascii_header() -> None:
    """The header part is ASCII only."""
    with pytest.raises(v.MalformedInputError, match="ASCII"):
        v.parse_tlog_proof("c2sp.org/tlog-proof@v1\nindex 0\u00e9\n\nCP\n".encode())
    with pytest.raises(v.MalformedInputError, match="ASCII"):
        v.parse_add_checkpoint(b"old 0\xff\n\nCP\n")


def test_crlf_line_endings() -> None:
    """CRLF line endings are not accepted."""
    data = proof_for(1, 5)
    head, _, rest = data.partition(b"\n\n")
    with pytest.raises(v.MalformedInputError):
        v.parse_tlog_proof(head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + rest)


def test_index_outside_tree() -> None:
    """An index not inside the checkpoint's tree is malformed."""
    data = v.format_tlog_proof(5, LOG.inclusion(4, 5), LOG.checkpoint(5))
    with pytest.raises(v.MalformedInputError, match="not inside"):
        v.verify_tlog_proof(data, LOG.entries[5], KEYS)


def test_wrong_proof_length() -> None:
    """A proof with one hash too many or too few is malformed."""
    hashes = LOG.inclusion(3, 10)
    for bad in (hashes[:-1], hashes + [H0]):
        data = v.format_tlog_proof(3, bad, LOG.checkpoint(10))
        with pytest.raises(v.MalformedInputError, match="hashes"):
            v.verify_tlog_proof(data, LOG.entries[3], KEYS)


@pytest.mark.parametrize("index", [0, 4, N - 1])
def test_tampered_entry(index: int) -> None:
    """A changed entry byte does not reach the checkpoint root."""
    entry = bytearray(LOG.entries[index])
    entry[len(entry) // 2] ^= 0x20
    with pytest.raises(v.RootMismatchError):
        v.verify_tlog_proof(proof_for(index, N), bytes(entry), KEYS)


def test_other_entry_at_index() -> None:
    """A genuine entry offered at another index fails."""
    with pytest.raises(v.RootMismatchError):
        v.verify_tlog_proof(proof_for(3, N), LOG.entries[4], KEYS)


def test_tampered_proof_hash() -> None:
    """A changed proof hash fails with RootMismatchError."""
    hashes = LOG.inclusion(3, 10)
    hashes[1] = bytes([hashes[1][0] ^ 1]) + hashes[1][1:]
    data = v.format_tlog_proof(3, hashes, LOG.checkpoint(10))
    with pytest.raises(v.RootMismatchError):
        v.verify_tlog_proof(data, LOG.entries[3], KEYS)


def test_foreign_checkpoint_signature() -> None:
    """A checkpoint signed by a key not given is SignatureError, for both formats."""
    other = Signer(LOG.origin, b"not-the-log-key")
    note = LOG.checkpoint(10, signer=other)
    with pytest.raises(v.SignatureError):
        v.verify_tlog_proof(v.format_tlog_proof(3, LOG.inclusion(3, 10), note),
                            LOG.entries[3], KEYS)
    with pytest.raises(v.SignatureError):
        v.verify_add_checkpoint(v.format_add_checkpoint(5, LOG.consistency(5, 10), note),
                                KEYS, ref.mth(LOG.entries[:5]))


@pytest.mark.parametrize("old", [b"01", b"00", b"-1", b"", b"1 ", b"18446744073709551616"])
def test_bad_old_size(old: bytes) -> None:
    """'old N' needs a canonical decimal."""
    data = add_body(5, 10).replace(b"old 5\n", b"old " + old + b"\n", 1)
    with pytest.raises(v.MalformedInputError, match="old size"):
        v.parse_add_checkpoint(data)


def test_missing_old_line() -> None:
    """The body must start with 'old N'."""
    with pytest.raises(v.MalformedInputError, match="old N"):
        v.parse_add_checkpoint(H0_B64.encode() + b"\n\nCP\n")
    with pytest.raises(v.MalformedInputError, match="old N"):
        v.parse_add_checkpoint(b"Old 0\n\nCP\n")


def test_old_zero_with_hashes() -> None:
    """A proof from size 0 must be empty."""
    with pytest.raises(v.MalformedInputError, match="size 0"):
        v.parse_add_checkpoint(v.format_add_checkpoint(0, [H0], LOG.checkpoint(5)))


def test_old_larger_than_checkpoint() -> None:
    """'old' beyond the checkpoint size is malformed."""
    data = v.format_add_checkpoint(11, [], LOG.checkpoint(10))
    with pytest.raises(v.MalformedInputError, match="exceeds"):
        v.verify_add_checkpoint(data, KEYS, ref.mth(LOG.entries[:11]))


@pytest.mark.parametrize("old,new", [(1, 2), (3, 7), (4, 8), (5, N), (N, N)])
def test_wrong_old_root(old: int, new: int) -> None:
    """An old root the proof does not reproduce is ConsistencyError."""
    with pytest.raises(v.ConsistencyError):
        v.verify_add_checkpoint(add_body(old, new), KEYS, ref.mth(LOG.entries[: old - 1]))


def test_wrong_old_root_from_zero() -> None:
    """From size 0 the old root must be the empty tree's."""
    with pytest.raises(v.ConsistencyError):
        v.verify_add_checkpoint(add_body(0, 5), KEYS, ref.mth(LOG.entries[:1]))


def test_fork_is_inconsistent() -> None:
    """A checkpoint of a forked history (same keys) is not consistent with our old root."""
    fork = Log.create(seed="proof-files")
    fork.log_key, fork.admin = LOG.log_key, LOG.admin
    for i in range(9):
        fork.submit(fork.admin, "grant", key=Signer(f"w{i}", b"w").vkey, role="writer")
    body = v.format_add_checkpoint(5, fork.consistency(5, 10), fork.checkpoint(10))
    assert v.verify_add_checkpoint(body, KEYS, ref.mth(fork.entries[:5])).size == 10
    with pytest.raises(v.ConsistencyError):
        v.verify_add_checkpoint(body, KEYS, ref.mth(LOG.entries[:5]))


def test_tampered_consistency_hash() -> None:
    """A changed consistency hash is ConsistencyError."""
    hashes = LOG.consistency(5, 10)
    hashes[-1] = H1
    with pytest.raises(v.ConsistencyError):
        v.verify_add_checkpoint(v.format_add_checkpoint(5, hashes, LOG.checkpoint(10)),
                                KEYS, ref.mth(LOG.entries[:5]))


def test_checkpoint_kept_verbatim() -> None:
    """The checkpoint is everything after the first empty line, byte for byte."""
    note = LOG.checkpoint(10)
    assert v.parse_tlog_proof(proof_for(2, 10)).checkpoint == note
    assert v.parse_add_checkpoint(add_body(2, 10)).checkpoint == note


def test_malformed_checkpoint_inside() -> None:
    """A malformed checkpoint after the proof is MalformedInputError at verify time."""
    data = v.format_tlog_proof(0, [], b"not a note\n")
    assert v.parse_tlog_proof(data).checkpoint == b"not a note\n"
    with pytest.raises(v.MalformedInputError):
        v.verify_tlog_proof(data, LOG.entries[0], KEYS)


def test_proof_file_too_large() -> None:
    """Files over 1 MiB are refused."""
    with pytest.raises(v.MalformedInputError, match="larger"):
        v.parse_tlog_proof(b"c2sp.org/tlog-proof@v1\nindex 0\n\n" + b"x" * (1 << 20))


def test_sign_text_helper_round_trip() -> None:
    """A hand-signed checkpoint in a proof file verifies like a logsim one."""
    text = v.checkpoint_text(LOG.origin, 1, ref.mth(LOG.entries[:1]))
    data = v.format_tlog_proof(0, [], sign_text(text, LOG.log_key))
    assert v.verify_tlog_proof(data, LOG.entries[0], KEYS).size == 1
