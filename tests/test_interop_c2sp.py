"""Interop: the proof files `modelseal prove` prints verify with an independent C2SP client.

The client is tests/interop/c2sp_verify.mjs, a dependency-free Node.js program written from
the public specifications only (c2sp.org/signed-note, tlog-checkpoint, tlog-proof@v1,
tlog-witness, RFC 9162 §2.1.3.2 and §2.1.4.2), not from this project's Python code. This
test makes a real store with the Python API, runs the real CLI as a subprocess, and feeds
every printed file to the Node client. It fails (never skips) if `node` is missing.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import verifier
from ledger import ActorKey, Ledger, LogKey

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / "tests" / "interop" / "c2sp_verify.mjs"
ORIGIN = "example.com/interop-models"
SIZE = 40
EMPTY_ROOT = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # SHA-256 of nothing

# The Go golang.org/x/mod/sumdb/note known-answer vector: anchors the Node client's note
# verification on a published, independent implementation.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_NOTE = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n"
           "\n"
           "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
           "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
           ).encode()


# -- fixtures ---------------------------------------------------------------------------------

@dataclass
class Store:
    path: Path
    vkey: str
    entries: list[bytes]          # entries[i] = exact bytes of entry i
    roots: dict[int, bytes]       # tree size -> root, from our own checkpoints
    checkpoints: dict[int, bytes]  # tree size -> signed checkpoint note
    by_hash: dict[str, int]       # snapshot hash -> index
    log_key: LogKey
    published: dict[int, bytes]   # tree size -> the checkpoint the ledger published at that size


@pytest.fixture(scope="module")
def node() -> str:
    # Skips with its reason where Node.js is absent; CI sets MODELSEAL_REQUIRE_NODE=1,
    # which makes that a failure.
    absent = pytest.fail if os.environ.get("MODELSEAL_REQUIRE_NODE") == "1" else pytest.skip
    exe = shutil.which("node")
    if exe is None:
        absent("`node` is not on PATH: the C2SP interop test needs Node.js >= 20")
        raise AssertionError("unreachable")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30,
                         check=False).stdout
    m = re.match(r"v(\d+)\.", out)
    if not m or int(m.group(1)) < 20:
        absent(f"Node.js >= 20 needed for the C2SP interop test, found {out.strip()!r}")
    return exe


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = tmp_path_factory.mktemp("interop") / "store"
    log_key = LogKey.generate()
    admin = ActorKey.generate("risk-admin")
    ledger = Ledger.create(path, origin=ORIGIN, log_key=log_key, admin=admin)
    try:
        by_hash: dict[str, int] = {}
        published = {ledger.size: ledger.checkpoint()}
        names = [f"model_{i}" for i in range(5)]
        for name in names:
            ledger.register(name=name, owner="risk-team", model_type="ml_model", tier="high",
                            purpose=f"scores {name}")
            published[ledger.size] = ledger.checkpoint()
        i = 0
        while ledger.size < SIZE:
            snap = ledger.record(names[i % len(names)], event="retrained", payload={"run": i})
            by_hash[snap.snapshot_hash] = snap.index
            published[ledger.size] = ledger.checkpoint()
            i += 1
        assert ledger.size == SIZE
        keys = [log_key.key]
        checkpoints = {k: ledger.prove_consistency(k, k).checkpoint for k in range(1, SIZE + 1)}
        roots = {k: verifier.Checkpoint.parse_note(note, keys).root
                 for k, note in checkpoints.items()}
        entries = [ledger.entry(j) for j in range(SIZE)]
        return Store(path, ledger.log_vkey, entries, roots, checkpoints, by_hash, log_key,
                     published)
    finally:
        ledger.close()


# -- helpers ----------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSEAL_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def cli(store: Store, *args: str) -> bytes:
    """Run the real `modelseal` CLI (read-only) and return its stdout bytes."""
    proc = subprocess.run([sys.executable, "-c", "from cli.main import main; main()",
                           "--store", str(store.path), *args],
                          cwd=REPO, env=_env(), capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, (args, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout


def run_node(node: str, *args: str) -> tuple[int, str]:
    proc = subprocess.run([node, str(CLIENT), *args], capture_output=True, text=True,
                          timeout=60, check=False)
    err = proc.stderr.strip()
    return proc.returncode, proc.stdout.strip() + ("\n" + err if err else "")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def flip_b64_line(line: bytes, byte: int) -> bytes:
    """Flip one bit of decoded byte ``byte`` and re-encode canonically."""
    raw = bytearray(base64.b64decode(line, validate=True))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw))


def flip_signature(note: bytes) -> bytes:
    """Flip a bit inside the Ed25519 signature (after the 4-byte key ID) of every signature line."""
    out = []
    for line in note.split(b"\n"):
        if line.startswith("\u2014 ".encode()):
            head, sig = line.rsplit(b" ", 1)
            line = head + b" " + flip_b64_line(sig, 10)
        out.append(line)
    return b"\n".join(out)


def inclusion_files(store: Store, tmp: Path, ref: str,
                    size: int | None) -> tuple[Path, Path, bytes]:
    entry = tmp / "entry.bin"
    args = ["prove", "inclusion", ref, "--entry-out", str(entry), "--force"]
    if size is not None:
        args += ["--size", str(size)]
    proof = cli(store, *args)
    (tmp / "proof.tlog-proof").write_bytes(proof)
    return tmp / "proof.tlog-proof", entry, proof


def verify_inclusion(node: str, store: Store, proof: Path, entry: Path) -> tuple[int, str]:
    return run_node(node, "inclusion", "--vkey", store.vkey, "--proof", str(proof),
                    "--entry", str(entry), "--origin", ORIGIN)


def verify_consistency(node: str, store: Store, body: Path,
                       old_root: str | None) -> tuple[int, str]:
    args = ["consistency", "--vkey", store.vkey, "--body", str(body), "--origin", ORIGIN]
    if old_root is not None:
        args += ["--old-root", old_root]
    return run_node(node, *args)


def test_fixture_published_every_size(store: Store) -> None:
    """One published checkpoint per tree size 1..SIZE, and the API's historical ones match."""
    assert sorted(store.published) == list(range(1, SIZE + 1))
    assert store.checkpoints == store.published


# -- the Node client itself, on a published vector ---------------------------------------------

def test_node_client_accepts_go_note_vector(node: str, tmp_path: Path) -> None:
    (tmp_path / "go.note").write_bytes(GO_NOTE)
    rc, out = run_node(node, "note", "--vkey", GO_VKEY, "--note", str(tmp_path / "go.note"))
    assert rc == 0, out
    (tmp_path / "bad.note").write_bytes(GO_NOTE.replace(b"cryptography", b"cryptographY"))
    rc, out = run_node(node, "note", "--vkey", GO_VKEY, "--note", str(tmp_path / "bad.note"))
    assert rc == 1 and out.startswith("FAIL:"), out


# -- inclusion: every printed tlog-proof verifies ---------------------------------------------

INCLUSION_CASES = [
    (0, None), (0, 1), (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (7, None), (8, 9), (12, 13),
    (15, 16), (16, 17), (20, 33), (31, 32), (31, 40), (32, None), (38, 39), (39, None), (39, 40),
]


@pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
def test_inclusion_proof_verifies(node: str, store: Store, tmp_path: Path, index: int,
                                  size: int | None) -> None:
    proof, entry, text = inclusion_files(store, tmp_path, str(index), size)
    n = SIZE if size is None else size
    assert entry.read_bytes() == store.entries[index]
    assert text.endswith(b"\n\n" + store.published[n]), "not the checkpoint published at that size"
    rc, out = verify_inclusion(node, store, proof, entry)
    assert (rc, out) == (0, f"OK inclusion index={index} size={n} origin={ORIGIN}")


def test_inclusion_proof_by_snapshot_hash(node: str, store: Store, tmp_path: Path) -> None:
    items = sorted(store.by_hash.items(), key=lambda kv: kv[1])
    for snapshot_hash, index in (items[0], items[len(items) // 2], items[-1]):
        proof, entry, _ = inclusion_files(store, tmp_path, snapshot_hash, None)
        rc, out = verify_inclusion(node, store, proof, entry)
        assert (rc, out) == (0, f"OK inclusion index={index} size={SIZE} origin={ORIGIN}")


# -- consistency: every printed add-checkpoint body verifies ----------------------------------

CONSISTENCY_CASES = [
    (0, None), (0, 1), (1, None), (1, 1), (1, 2), (2, None), (3, None), (3, 7), (4, None),
    (5, 5), (7, None), (8, None), (8, 16), (9, 33), (13, None), (16, None), (16, 17),
    (31, None), (32, None), (39, None), (40, None), (40, 40),
]


@pytest.mark.parametrize(("old", "new"), CONSISTENCY_CASES)
def test_consistency_body_verifies(node: str, store: Store, tmp_path: Path, old: int,
                                   new: int | None) -> None:
    args = ["prove", "consistency", "--old", str(old)]
    if new is not None:
        args += ["--new", str(new)]
    text = cli(store, *args)
    m = SIZE if new is None else new
    assert text.startswith(f"old {old}\n".encode())
    assert text.endswith(b"\n\n" + store.published[m]), "not the checkpoint published at that size"
    body = tmp_path / "body.txt"
    body.write_bytes(text)
    rc, out = verify_consistency(node, store, body, b64(store.roots[old]) if old else None)
    assert (rc, out) == (0, f"OK consistency old={old} new={m}")
    if old == 0:  # the empty tree's root is also accepted explicitly
        assert verify_consistency(node, store, body, EMPTY_ROOT)[0] == 0


# -- negatives: tampering makes the independent client fail -----------------------------------

def _assert_fails(result: tuple[int, str], why: str) -> None:
    rc, out = result
    assert rc == 1 and out.startswith("FAIL:"), f"{why}: expected FAIL, got rc={rc}: {out}"


def test_inclusion_tampering_fails(node: str, store: Store, tmp_path: Path) -> None:
    proof, entry, text = inclusion_files(store, tmp_path, "7", None)
    assert verify_inclusion(node, store, proof, entry)[0] == 0

    # a flipped byte in the entry file
    bad_entry = tmp_path / "bad_entry.bin"
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad_entry.write_bytes(bytes(data))
    _assert_fails(verify_inclusion(node, store, proof, bad_entry), "flipped entry byte")

    # another entry's bytes at this index
    other = tmp_path / "other_entry.bin"
    other.write_bytes(store.entries[8])
    _assert_fails(verify_inclusion(node, store, proof, other), "other entry")

    lines = text.split(b"\n")
    hash_rows = [i for i, ln in enumerate(lines) if i >= 2 and ln and i < lines.index(b"", 2)]
    assert hash_rows, "expected proof hashes for index 7 of 40"

    def mutated(new_lines: list[bytes], name: str) -> Path:
        p = tmp_path / name
        p.write_bytes(b"\n".join(new_lines))
        return p

    # a flipped byte in each proof hash (still canonical base64, 32 bytes)
    for row in hash_rows:
        ls = list(lines)
        ls[row] = flip_b64_line(ls[row], 5)
        _assert_fails(verify_inclusion(node, store, mutated(ls, f"hash{row}"), entry),
                      f"flipped hash line {row}")

    # a flipped byte in the checkpoint signature
    p = tmp_path / "badsig"
    p.write_bytes(flip_signature(text))
    _assert_fails(verify_inclusion(node, store, p, entry), "flipped checkpoint signature")

    # a checkpoint signed by another key for the same origin
    other_vkey = LogKey.generate(ORIGIN).vkey
    _assert_fails(run_node(node, "inclusion", "--vkey", other_vkey, "--proof", str(proof),
                           "--entry", str(entry)), "untrusted key")

    # wrong index, proof lines dropped or added
    ls = list(lines)
    ls[1] = b"index 6"
    _assert_fails(verify_inclusion(node, store, mutated(ls, "idx6"), entry), "wrong index")
    ls = list(lines)
    del ls[hash_rows[-1]]
    _assert_fails(verify_inclusion(node, store, mutated(ls, "short"), entry), "proof too short")
    ls = list(lines)
    ls.insert(hash_rows[-1] + 1, ls[hash_rows[-1]])
    _assert_fails(verify_inclusion(node, store, mutated(ls, "long"), entry), "proof too long")


def test_consistency_tampering_fails(node: str, store: Store, tmp_path: Path) -> None:
    old = 13
    text = cli(store, "prove", "consistency", "--old", str(old))
    body = tmp_path / "body.txt"
    body.write_bytes(text)
    good_root = b64(store.roots[old])
    assert verify_consistency(node, store, body, good_root)[0] == 0

    # a wrong old root
    _assert_fails(verify_consistency(node, store, body, b64(store.roots[old - 1])),
                  "wrong old root")

    lines = text.split(b"\n")
    end = lines.index(b"")
    for row in range(1, end):
        ls = list(lines)
        ls[row] = flip_b64_line(ls[row], 0)
        p = tmp_path / f"hash{row}"
        p.write_bytes(b"\n".join(ls))
        _assert_fails(verify_consistency(node, store, p, good_root),
                      f"flipped consistency hash {row}")

    p = tmp_path / "badsig"
    p.write_bytes(flip_signature(text))
    _assert_fails(verify_consistency(node, store, p, good_root), "flipped checkpoint signature")

    # the body claims another old size
    p = tmp_path / "old12"
    p.write_bytes(text.replace(f"old {old}\n".encode(), f"old {old - 1}\n".encode(), 1))
    _assert_fails(verify_consistency(node, store, p, b64(store.roots[old - 1])), "wrong old size")

    # old 0 must carry no proof lines
    p = tmp_path / "old0"
    p.write_bytes(text.replace(f"old {old}\n".encode(), b"old 0\n", 1))
    _assert_fails(verify_consistency(node, store, p, None), "old 0 with proof lines")


# -- strictness: malformed variants of real printed files are refused -------------------------

B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _noncanonical(h: bytes) -> bytes:
    """A 32-byte hash is 43 chars + '='; the 43rd char carries 2 unused bits: set one.
    Lenient decoders still decode it to the same 32 bytes."""
    last = B64_ALPHABET[B64_ALPHABET.index(h[42]) | 1]
    out = h[:42] + bytes([last]) + b"="
    assert base64.b64decode(out) == base64.b64decode(h) and out != h
    return out


def _variants(text: bytes, kind: str) -> dict[str, bytes]:
    lines = text.split(b"\n")
    first_hash = 2 if kind == "proof" else 1
    h = lines[first_hash]
    raw = base64.b64decode(h)
    v = {
        "crlf": text.replace(b"\n", b"\r\n"),
        "no blank line": text.replace(b"\n\n", b"\n", 1),
        "hash 31 bytes": text.replace(h, base64.b64encode(raw[:31]), 1),
        "hash 33 bytes": text.replace(h, base64.b64encode(raw + b"\x00"), 1),
        "unpadded base64": text.replace(h, h.rstrip(b"="), 1),
        "non-canonical base64": text.replace(h, _noncanonical(h), 1),
        "url-safe base64": text.replace(h, h.replace(b"+", b"-").replace(b"/", b"_"), 1)
        if (b"+" in h or b"/" in h) else text.replace(h, b"-" + h[1:], 1),
        "tab in note": text.replace(b"\n\n\xe2\x80\x94", b"\n\n\xe2\x80\x94\t", 1),
        "missing final newline": text[:-1],
        "trailing blank line": text + b"\n",
        "bom": b"\xef\xbb\xbf" + text,
    }
    if kind == "proof":
        v["index leading zero"] = text.replace(b"\nindex ", b"\nindex 0", 1)
        v["wrong header"] = text.replace(b"c2sp.org/tlog-proof@v1", b"c2sp.org/tlog-proof@v2", 1)
        v["empty extra"] = text.replace(b"\nindex ", b"\nextra \nindex ", 1)
        v["index plus sign"] = text.replace(b"\nindex ", b"\nindex +", 1)
    else:
        v["old leading zero"] = text.replace(b"old ", b"old 0", 1)
        v["old missing"] = b"\n".join(lines[1:])
        v["old two spaces"] = text.replace(b"old ", b"old  ", 1)
    # the checkpoint's size line with a leading zero
    cp_start = text.index(b"\n\n") + 2
    cp_lines = text[cp_start:].split(b"\n")
    v["checkpoint size leading zero"] = text[:cp_start] + b"\n".join(
        [cp_lines[0], b"0" + cp_lines[1], *cp_lines[2:]])
    return v


def test_node_client_is_strict(node: str, store: Store, tmp_path: Path) -> None:
    _proof, entry, text = inclusion_files(store, tmp_path, "13", None)
    for name, data in _variants(text, "proof").items():
        p = tmp_path / "variant.tlog-proof"
        p.write_bytes(data)
        _assert_fails(verify_inclusion(node, store, p, entry), f"tlog-proof variant {name!r}")
    body_text = cli(store, "prove", "consistency", "--old", "13")
    for name, data in _variants(body_text, "body").items():
        p = tmp_path / "variant.body"
        p.write_bytes(data)
        _assert_fails(verify_consistency(node, store, p, b64(store.roots[13])),
                      f"add-checkpoint variant {name!r}")


def test_unknown_signatures_and_extra_are_tolerated(node: str, store: Store,
                                                    tmp_path: Path) -> None:
    """Spec-allowed variations must still verify: a foreign cosignature line, an extra line."""
    _proof, entry, text = inclusion_files(store, tmp_path, "21", None)
    cosig = base64.b64encode(b"\x01\x02\x03\x04" + b"\x00" * 72)
    foreign = "\u2014 witness.example/w1 ".encode() + cosig + b"\n"
    p = tmp_path / "cosigned"
    p.write_bytes(text + foreign)
    assert verify_inclusion(node, store, p, entry)[0] == 0
    p = tmp_path / "extra"
    extra = b"\nextra " + base64.b64encode(b"context") + b"\nindex "
    p.write_bytes(text.replace(b"\nindex ", extra, 1))
    assert verify_inclusion(node, store, p, entry)[0] == 0


def _signed_note(store: Store, text: bytes) -> bytes:
    """``text`` signed by the real log key, as a C2SP signed note."""
    sig = store.log_key.key.key_id + store.log_key.sign(text)
    return text + "\n\u2014 ".encode() + ORIGIN.encode() + b" " + base64.b64encode(sig) + b"\n"


def test_checkpoint_body_strictness(node: str, store: Store, tmp_path: Path) -> None:
    """Malformed checkpoint texts, validly signed by the log key, are still refused."""
    _proof, entry, text = inclusion_files(store, tmp_path, "0", 1)
    head = text[:text.index(b"\n\n") + 2]          # "c2sp.org/tlog-proof@v1\nindex 0\n\n"
    root = base64.b64encode(store.roots[1])
    origin = ORIGIN.encode()

    def check(cp_text: bytes) -> tuple[int, str]:
        p = tmp_path / "resigned.tlog-proof"
        p.write_bytes(head + _signed_note(store, cp_text))
        return verify_inclusion(node, store, p, entry)

    # controls: this construction reproduces the CLI's note, and verifies; so does an extension
    time = next(line for line in text.split(b"\n") if line.startswith(b"modelseal-time "))
    assert head + _signed_note(store, b"\n".join([origin, b"1", root, time, b""])) == text
    assert check(b"\n".join([origin, b"1", root, b""]))[0] == 0
    assert check(b"\n".join([origin, b"1", root, b"ext-line", b""]))[0] == 0
    bad = {
        "size leading zero": [origin, b"01", root],
        "size plus sign": [origin, b"+1", root],
        "size with space": [origin, b"1 ", root],
        "root 31 bytes": [origin, b"1", base64.b64encode(store.roots[1][:31])],
        "root non-canonical": [origin, b"1", _noncanonical(root)],
        "root unpadded": [origin, b"1", root.rstrip(b"=")],
        "missing root": [origin, b"1"],
        "empty origin": [b"", b"1", root],
        "empty extension line": [origin, b"1", root, b"", b"ext"],
        "other size": [origin, b"2", root],
    }
    for name, lines in bad.items():
        _assert_fails(check(b"\n".join([*lines, b""])), f"checkpoint {name}")
