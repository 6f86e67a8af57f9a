"""Cosigned checkpoints end to end: the store keeps them, `export --at` uses them, and
modelseal-verify checks witnesses, their threshold and the time rules they allow."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from ledger import Ledger, LogKey
from ledger._writer import sign_checkpoint
from tests.helpers import bundle_bytes, bundle_doc, mutate
from tests.ledger_support import Clock, Keys, make_ledger, raw_rows, register
from tests.test_cosignature import Witness
from verifier import cli
from verifier.witnessed import WITNESS_DELAY, WITNESS_SKEW

W1, W2, W3 = Witness("w1.example/w"), Witness("w2.example/w"), Witness("w3.example/w")
ALL = [W1.key, W2.key, W3.key]
S = 10**9


def cp_of(ledger: Ledger, note: bytes) -> v.Checkpoint:
    return v.Checkpoint.parse_note(note, [v.VerifierKey.parse(ledger.log_vkey)])


def secs(ledger: Ledger, note: bytes) -> int:
    """The checkpoint's log time, in whole seconds."""
    t = cp_of(ledger, note).time
    assert t is not None
    return t // S


def cosign(note: bytes, at: int, *witnesses: Witness) -> bytes:
    """``note`` with a cosignature line by each witness, at ``at``, ``at``+1, ..."""
    text = v.parse_note(note).text
    return note + b"".join(w.line(text, at + i) for i, w in enumerate(witnesses))


def add(ledger: Ledger, note: bytes, *witnesses: Witness, delay: int = 5
        ) -> tuple[v.Cosignature, ...]:
    return ledger.add_cosignatures(cosign(note, secs(ledger, note) + delay, *witnesses), ALL)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Ledger, Keys, Clock]:
    keys, clock = Keys(), Clock()
    ledger = make_ledger(tmp_path / "store", keys, clock)
    register(ledger, "fraud")
    return ledger, keys, clock


def verify(bundle: bytes, keys: Keys, witnesses: list[v.WitnessKey], threshold: int,
           trusted: bytes | None = None) -> v.VerifiedInventory:
    tcp = None if trusted is None else v.Checkpoint.parse_note(trusted, keys.trusted)
    return v.verify_bundle(bundle, keys.trusted, trusted=tcp, witnesses=witnesses,
                           witness_threshold=threshold)


# -- the store ------------------------------------------------------------------------------

def test_add_merge_and_read_back(world: tuple[Ledger, Keys, Clock]) -> None:
    ledger, _, _ = world
    note = ledger.checkpoint()
    assert ledger.cosigned() is None
    added = add(ledger, note, W1)
    assert [c.witness.name for c in added] == [W1.key.name]
    # the same witness again (another time) adds nothing; a second witness is merged
    assert add(ledger, note, W1, delay=50) == ()
    assert [c.witness.name for c in add(ledger, note, W2, W1)] == [W2.key.name]
    stored = ledger.cosigned()
    assert stored is not None and stored.startswith(note)  # the log's exact note, then lines
    cosigs = v.verify_cosignatures(stored, ALL)
    assert [c.witness for c in cosigs] == [W1.key, W2.key]
    assert [c.timestamp for c in cosigs] == [secs(ledger, note) + 5] * 2
    assert ledger.cosigned(ledger.size) == stored
    assert ledger.cosigned(1) is None and ledger.cosigned(999) is None
    assert ledger.audit() == ledger.size


def test_refusals_change_nothing(world: tuple[Ledger, Keys, Clock], tmp_path: Path) -> None:
    ledger, keys, _ = world
    note = ledger.checkpoint()
    add(ledger, note, W1)
    before = raw_rows(ledger, "cosigned")
    at = secs(ledger, note) + 5
    text = v.parse_note(note).text
    # a tampered cosignature
    bad = bytearray(cosign(note, at, W2))
    bad[-10] ^= 1
    with pytest.raises((v.SignatureError, v.MalformedInputError)):
        ledger.add_cosignatures(bytes(bad), ALL)
    # a cosignature of another checkpoint
    other = text.replace(b"\n2\n", b"\n1\n")
    with pytest.raises(v.SignatureError):
        ledger.add_cosignatures(note + W2.line(other, at), ALL)
    # another log's checkpoint
    stranger = LogKey.generate().named("example.com/models")
    foreign = sign_checkpoint(stranger, "example.com/models", 2, cp_of(ledger, note).root,
                              cp_of(ledger, note).time or 0)
    with pytest.raises(v.SignatureError):
        ledger.add_cosignatures(cosign(foreign, at, W2), ALL)
    # a checkpoint signed with the log's key but of another tree: never signed by this log
    forked = sign_checkpoint(keys.log, "example.com/models", 2, b"\x09" * 32,
                             cp_of(ledger, note).time or 0)
    with pytest.raises(v.VerificationError, match="never signed"):
        ledger.add_cosignatures(cosign(forked, at, W2), ALL)
    future = sign_checkpoint(keys.log, "example.com/models", 5, b"\x09" * 32, 0)
    with pytest.raises(v.VerificationError, match="never signed"):
        ledger.add_cosignatures(cosign(future, at, W2), ALL)
    # the log's key, its tree, but a time its entries do not allow (back-dated)
    early = sign_checkpoint(keys.log, "example.com/models", 2, cp_of(ledger, note).root, 1)
    with pytest.raises(v.VerificationError, match="never signed"):
        ledger.add_cosignatures(cosign(early, at, W2), ALL)
    # no line by a configured witness: nothing to store
    assert ledger.add_cosignatures(cosign(note, at, W2), [W3.key]) == ()
    assert raw_rows(ledger, "cosigned") == before
    assert ledger.audit() == ledger.size


def test_needs_the_log_key(world: tuple[Ledger, Keys, Clock]) -> None:
    ledger, _, _ = world
    note = ledger.checkpoint()
    path = ledger.path
    ledger.close()
    with Ledger.open(path) as reader:
        with pytest.raises(ValueError):
            reader.add_cosignatures(cosign(note, secs(reader, note), W1), ALL)


def test_a_re_signed_checkpoint_keeps_its_cosignatures(world: tuple[Ledger, Keys, Clock]
                                                       ) -> None:
    """sign_checkpoint replaces the stored checkpoint of the current size; a cosignature of
    the earlier signing is still of this log's tree and is still accepted and audited."""
    ledger, _, _ = world
    first = ledger.checkpoint()
    add(ledger, first, W1)
    second = ledger.sign_checkpoint()
    assert second != first and ledger.checkpoint() == second
    assert [c.witness for c in add(ledger, first, W2)] == [W2.key]
    add(ledger, second, W3)
    assert ledger.audit() == ledger.size
    # of the two signings of this size, the one with more cosignatures
    best = ledger.cosigned()
    assert best is not None and best.startswith(first)


def test_concurrent_adds_are_all_kept(world: tuple[Ledger, Keys, Clock]) -> None:
    ledger, _, _ = world
    note = ledger.checkpoint()
    errors: list[BaseException] = []

    def go(w: Witness) -> None:
        try:
            add(ledger, note, w)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(w,)) for w in (W1, W2, W3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    stored = ledger.cosigned()
    assert stored is not None
    assert {c.witness for c in v.verify_cosignatures(stored, ALL)} == set(ALL)


def test_audit_catches_a_damaged_row(world: tuple[Ledger, Keys, Clock]) -> None:
    ledger, _, _ = world
    add(ledger, ledger.checkpoint(), W1)
    (key, value), = ((k, val) for k, val in raw_rows(ledger, "cosigned").items()
                     if k.startswith(b"c"))
    store = ledger._store
    with store.env.begin(write=True) as txn:
        txn.put(key, value[:-10] + bytes([value[-10] ^ 1]) + value[-9:],
                db=store.db["cosigned"])
    from ledger.errors import AuditError
    with pytest.raises(AuditError, match="cosigned checkpoint"):
        ledger.audit()


def test_a_store_without_the_database(world: tuple[Ledger, Keys, Clock]) -> None:
    """A format-7 store made before cosignatures: readers see none and never fail; a writer
    creates the database when it opens the store."""
    ledger, keys, clock = world
    path, note = ledger.path, ledger.checkpoint()
    ledger.close()
    env = lmdb.open(str(path), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"cosigned", txn=txn), delete=True)
    env.close()
    with Ledger.open(path) as reader:
        assert reader._store.db["cosigned"] is None
        assert reader.cosigned() is None
        assert reader.first_cosigned_after(clock.now - timedelta(days=1)) is None
        assert reader.audit() == reader.size
        assert v.verify_bundle(reader.export_bundle(), keys.trusted).size == reader.size
    with Ledger.open(path, log_key=keys.log, clock=clock) as writer:
        assert add(writer, note, W1)
        assert writer.audit() == writer.size
    with Ledger.open(path) as reader:
        assert reader.cosigned() is not None


# -- export --at ------------------------------------------------------------------------

def test_export_at_uses_the_first_cosigned_checkpoint(world: tuple[Ledger, Keys, Clock]
                                                      ) -> None:
    ledger, keys, _ = world
    note2 = ledger.checkpoint()
    t2 = cp_of(ledger, note2).time or 0
    add(ledger, note2, W1, W2)
    register(ledger, "churn")
    note3 = ledger.checkpoint()
    add(ledger, note3, W1, W2, W3)
    at = v.from_ns(t2)
    cosigned2 = ledger.first_cosigned_after(at)
    assert cosigned2 is not None and cosigned2 == ledger.cosigned(2)
    bundle = ledger.export_bundle(at=at)
    assert bundle_doc(bundle)["checkpoint"] == cosigned2.decode()  # the exact stored bytes
    out = verify(bundle, keys, [W1.key, W2.key], 2)
    assert out.witnessed is not None and out.witnessed.by == t2 // S + 6
    assert out.witnessed.statement().startswith(
        f"entries 0..1 were in the log by {v.iso((t2 // S + 6) * S)}, attested by 2 witnesses")
    # a time after the last cosigned checkpoint: today's behaviour (a fresh checkpoint)
    late = v.from_ns((cp_of(ledger, note3).time or 0) + 1000)  # datetimes hold microseconds
    assert ledger.first_cosigned_after(late) is None
    plain = ledger.export_bundle(at=late)
    assert len(v.parse_note(bundle_doc(plain)["checkpoint"].encode()).signatures) == 1


def test_threshold_met_and_not(world: tuple[Ledger, Keys, Clock]) -> None:
    ledger, keys, _ = world
    note = ledger.checkpoint()
    add(ledger, note, W1, W2)
    bundle = ledger.export_bundle(at=v.from_ns(cp_of(ledger, note).time or 0))
    assert verify(bundle, keys, ALL, 2).witnessed is not None
    with pytest.raises(v.WitnessError, match="2 of the 3 required"):
        verify(bundle, keys, ALL, 3)
    # a key the witness does not hold (same name): its line is ignored, the threshold fails
    wrong = Witness("w1.example/w", seed=7).key
    with pytest.raises(v.WitnessError, match="1 of the 2 required"):
        verify(bundle, keys, [wrong, W2.key], 2)
    with pytest.raises(ValueError):
        verify(bundle, keys, [W1.key], 2)
    # no witnesses asked for: the cosigned bundle verifies as a plain one
    assert verify(bundle, keys, [], 0).witnessed is None


def test_forged_lines_fail(world: tuple[Ledger, Keys, Clock]) -> None:
    ledger, keys, _ = world
    note2 = ledger.checkpoint()
    register(ledger, "churn")
    note3 = ledger.checkpoint()
    at3 = secs(ledger, note3) + 5
    bundle = ledger.export_bundle()
    doc = bundle_doc(bundle)
    # a cosignature of another checkpoint, pasted under this one
    text2 = v.parse_note(note2).text
    doc["checkpoint"] = (note3 + W1.line(text2, at3)).decode()
    with pytest.raises(v.SignatureError, match="w1.example/w"):
        verify(bundle_bytes(doc), keys, [W1.key], 1)
    # a tampered cosignature
    line = bytearray(W1.line(v.parse_note(note3).text, at3))
    line[-5] ^= 1
    doc["checkpoint"] = (note3 + bytes(line)).decode()
    with pytest.raises((v.SignatureError, v.MalformedInputError)):
        verify(bundle_bytes(doc), keys, [W1.key], 1)
    # the same witness twice counts once
    doc["checkpoint"] = (note3 + W1.line(v.parse_note(note3).text, at3)
                         + W1.line(v.parse_note(note3).text, at3 + 1)).decode()
    assert verify(bundle_bytes(doc), keys, [W1.key, W2.key], 1).witnessed is not None
    with pytest.raises(v.WitnessError, match="1 of the 2"):
        verify(bundle_bytes(doc), keys, [W1.key, W2.key], 2)


def test_post_dated_checkpoint_fails(world: tuple[Ledger, Keys, Clock]) -> None:
    """The log's time on a checkpoint later than its witnesses' cosignatures (beyond the
    skew) was post-dated; within the skew it passes."""
    ledger, keys, _ = world
    note = ledger.checkpoint()
    t = secs(ledger, note)
    bundle = ledger.export_bundle()
    doc = bundle_doc(bundle)
    doc["checkpoint"] = cosign(note, t - WITNESS_SKEW - 1, W1).decode()
    with pytest.raises(v.TimeBoundError, match="post-dated"):
        verify(bundle_bytes(doc), keys, [W1.key], 1)
    doc["checkpoint"] = cosign(note, t - WITNESS_SKEW + 1, W1).decode()
    assert verify(bundle_bytes(doc), keys, [W1.key], 1).witnessed is not None
    # with threshold 2, the 2nd earliest time counts: one early witness does not convict
    doc["checkpoint"] = (cosign(note, t - 3600, W1) + W2.line(v.parse_note(note).text, t)
                         ).decode()
    assert verify(bundle_bytes(doc), keys, [W1.key, W2.key], 2).witnessed is not None
    with pytest.raises(v.TimeBoundError, match="post-dated"):
        verify(bundle_bytes(doc), keys, [W1.key, W2.key], 1)


@pytest.mark.parametrize("at_old", [False, True])
@pytest.mark.parametrize("lag, ok", [(30, True), (WITNESS_DELAY + WITNESS_SKEW + 600, False)])
def test_back_dated_entry_after_a_witnessed_checkpoint(tmp_path: Path, lag: int, ok: bool,
                                                       at_old: bool) -> None:
    """An entry left out of a cosigned trusted checkpoint must be recorded after that
    checkpoint's witnessed time, less the stated tolerance (the entry is replayed, or with
    ``at_old`` it is the bundle's ``next`` entry)."""
    keys, clock = Keys(), Clock()
    ledger = make_ledger(tmp_path / "store", keys, clock)
    register(ledger, "fraud")
    old = ledger.checkpoint()
    t_old = secs(ledger, old)
    witnessed_old = cosign(old, t_old + lag, W1)  # the witness saw size 2 `lag` s later
    register(ledger, "later")  # recorded about a minute after the old checkpoint
    new = ledger.checkpoint()
    ledger.add_cosignatures(cosign(new, secs(ledger, new) + 5, W1), ALL)
    at = cp_of(ledger, old if at_old else new).time or 0
    bundle = ledger.export_bundle(at=v.from_ns(at), trusted_size=2)
    assert bundle_doc(bundle)["at"]["size"] == (2 if at_old else 3)
    if ok:
        out = verify(bundle, keys, [W1.key], 1, trusted=witnessed_old)
        assert out.trusted_witnessed is not None and out.trusted_witnessed.by == t_old + lag
    else:
        with pytest.raises(v.TimeBoundError, match="back-dated by more than"):
            verify(bundle, keys, [W1.key], 1, trusted=witnessed_old)
        # without witnesses, only the log's own time bounds it: it passes
        verify(bundle, keys, [], 0, trusted=witnessed_old)


# -- modelseal-verify -----------------------------------------------------------------------

@pytest.fixture
def files(world: tuple[Ledger, Keys, Clock], tmp_path: Path) -> dict[str, Path]:
    ledger, keys, _ = world
    note = ledger.checkpoint()
    plain = ledger.export_bundle()
    add(ledger, note, W1, W2)
    cosigned = ledger.export_bundle(at=v.from_ns(cp_of(ledger, note).time or 0))
    paths = {name: tmp_path / f"{name}.json" for name in ("plain", "cosigned")}
    paths["plain"].write_bytes(plain)
    paths["cosigned"].write_bytes(cosigned)
    paths["w3"] = tmp_path / "w3.vkey"
    paths["w3"].write_text(W3.key.vkey() + "\n")
    paths["report"] = tmp_path / "report.html"
    paths["vkey"] = tmp_path / "log.vkey"
    paths["vkey"].write_text(ledger.log_vkey)
    return paths


def run(capsys: pytest.CaptureFixture[str], files: dict[str, Path], bundle: str,
        *args: str) -> tuple[int, str, str]:
    code = cli.main([str(files[bundle]), "--key", files["vkey"].read_text(), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_witnesses(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    w1, w2 = W1.key.vkey(), W2.key.vkey()
    code, out, _ = run(capsys, files, "cosigned", "--witness", w1, "--witness", w2)
    assert code == cli.EXIT_OK, out
    assert "witnessed: entries 0..1 were in the log by" in out
    assert "attested by 2 witnesses (w1.example/w at " in out
    # threshold not met: default threshold is every witness given
    code, out, _ = run(capsys, files, "cosigned", "--witness", w1, "--witness", str(files["w3"]))
    assert code == cli.EXIT_FAILED
    assert out.startswith("FAIL: WitnessError: 1 of the 2 required distinct witnesses")
    code, out, _ = run(capsys, files, "cosigned", "--witness", w1, "--witness", str(files["w3"]),
                       "--witness-threshold", "1")
    assert code == cli.EXIT_OK
    # an old bundle without cosignatures: fine without --witness, fails with one
    assert run(capsys, files, "plain")[0] == cli.EXIT_OK
    code, out, _ = run(capsys, files, "plain", "--witness", w1)
    assert code == cli.EXIT_FAILED and "0 of the 1 required" in out


def test_cli_json_and_report(capsys: pytest.CaptureFixture[str], files: dict[str, Path]
                             ) -> None:
    code, out, _ = run(capsys, files, "cosigned", "--witness", W1.key.vkey(), "--witness",
                       W2.key.vkey(), "--json", "--report", str(files["report"]))
    assert code == cli.EXIT_OK
    doc = json.loads(out)
    w = doc["witnesses"]
    assert [c["name"] for c in w["cosigned_by"]] == ["w1.example/w", "w2.example/w"]
    assert w["threshold"] == 2 and w["in_log_by"] == w["cosigned_by"][1]["time"]
    assert w["proven"].startswith("entries 0..1 were in the log by")
    html = files["report"].read_text()
    assert "w2.example/w at" in html and "Witnesses" in html
    code, out, _ = run(capsys, files, "cosigned", "--json")
    assert code == cli.EXIT_OK and json.loads(out)["witnesses"] is None


def test_cli_usage(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    w1 = W1.key.vkey()
    for args, message in [
        (["--witness", w1, "--witness-threshold", "2"], "must be in 0..1"),
        (["--witness-threshold", "1"], "must be in 0..0"),
        (["--witness", "nope+1+2"], "bad --witness"),
        (["--witness", str(files["vkey"])], "bad --witness file"),  # a log key, type 0x01
        (["--witness", w1, "--witness", v.WitnessKey.from_public("alias", W1.key.public_key)
          .vkey()], "share one public key"),
    ]:
        code, out, err = run(capsys, files, "cosigned", *args)
        assert code == cli.EXIT_USAGE, (args, out, err)
        assert message in err, (args, err)
        assert "Traceback" not in out + err
    log_key = v.VerifierKey.parse(files["vkey"].read_text())
    same = v.WitnessKey.from_public("log-as-witness", log_key.public_key).vkey()
    code, _, err = run(capsys, files, "cosigned", "--witness", same)
    assert code == cli.EXIT_USAGE and "log's own key" in err


# -- modelseal export ---------------------------------------------------------------------

def test_modelseal_export_at_uses_the_cosigned_checkpoint(world: tuple[Ledger, Keys, Clock],
                                                          tmp_path: Path) -> None:
    from tests.cli_support import cli, ok

    ledger, keys, _ = world
    note = ledger.checkpoint()
    add(ledger, note, W1, W2)
    register(ledger, "later")
    at = v.iso(cp_of(ledger, note).time or 0)
    stored = ledger.cosigned(2)
    path = ledger.path
    ledger.close()
    out = tmp_path / "b.json"
    run = ok(cli("--store", path, "export", "--at", at, "-o", out))
    assert "its checkpoint carries 2 witness cosignatures: add --witness VKEY" in run.out
    assert stored is not None and bundle_doc(out.read_bytes())["checkpoint"] == stored.decode()
    doc = ok(cli("--store", path, "export", "--at", at, "-o", out, "--force", "--json")).json()
    assert doc["cosignatures"] == 2
    assert verify(out.read_bytes(), keys, [W1.key, W2.key], 2).size == 2


# -- fuzz ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, Keys, bytes, bytes]:
    keys, clock = Keys(), Clock()
    ledger = make_ledger(tmp_path_factory.mktemp("fuzz") / "store", keys, clock)
    register(ledger, "fraud")
    note = ledger.checkpoint()
    good = cosign(note, secs(ledger, note) + 5, W1, W2)
    add(ledger, note, W1)
    bundle = ledger.export_bundle(at=v.from_ns(cp_of(ledger, note).time or 0))
    return ledger, keys, good, bundle


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 4), st.integers(0, 10**6), st.binary(min_size=1, max_size=8))
def test_mutated_notes_are_refused_or_stored_whole(
        fuzz_world: tuple[Ledger, Keys, bytes, bytes], kind: int, pos: int, payload: bytes
) -> None:
    """A mutated cosigned note is refused with a verifier error (and changes nothing) or,
    if it still verifies, adds only verified lines: audit passes either way."""
    ledger, keys, good, _ = fuzz_world
    bad = mutate(good, kind, pos, payload)
    before = raw_rows(ledger, "cosigned")
    try:
        ledger.add_cosignatures(bad, ALL)
    except v.VerifierError:
        assert raw_rows(ledger, "cosigned") == before
    stored = ledger.cosigned()
    assert stored is not None
    assert len(v.verify_cosignatures(stored, ALL)) >= 1


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 4), st.integers(0, 10**6), st.binary(min_size=1, max_size=8))
def test_mutated_checkpoints_verify_or_fail_cleanly(
        fuzz_world: tuple[Ledger, Keys, bytes, bytes], kind: int, pos: int, payload: bytes
) -> None:
    _, keys, _, bundle = fuzz_world
    doc = bundle_doc(bundle)
    cp = mutate(doc["checkpoint"].encode(), kind, pos, payload)
    doc["checkpoint"] = cp.decode("utf-8", "replace")
    try:
        verify(bundle_bytes(doc), keys, [W1.key], 1)
    except (v.MalformedInputError, v.VerificationError):
        pass


def test_fuzz_world_audits(fuzz_world: tuple[Ledger, Keys, bytes, bytes]) -> None:
    ledger = fuzz_world[0]
    assert ledger.audit() == ledger.size


def test_export_at_with_a_larger_trusted_size(world: tuple[Ledger, Keys, Clock]) -> None:
    """The cosigned checkpoint chosen holds the examiner's trusted size."""
    ledger, keys, _ = world
    note2 = ledger.checkpoint()
    add(ledger, note2, W1)
    register(ledger, "a")
    register(ledger, "b")
    note4 = ledger.checkpoint()
    add(ledger, note4, W1)
    at = v.from_ns(cp_of(ledger, note2).time or 0)
    assert bundle_doc(ledger.export_bundle(at=at))["checkpoint"].encode() == ledger.cosigned(2)
    bundle = ledger.export_bundle(at=at, trusted_size=3)
    assert bundle_doc(bundle)["checkpoint"].encode() == ledger.cosigned(4)
    trusted = ledger.prove_consistency(3, 3).checkpoint
    assert verify(bundle, keys, [W1.key], 1, trusted=trusted).size == 2


def test_at_most_63_cosignatures(world: tuple[Ledger, Keys, Clock]) -> None:
    """A signed note holds 64 lines: the log's and 63 cosignatures."""
    from ledger.errors import ArgumentError

    ledger, _, _ = world
    note = ledger.checkpoint()
    many = [Witness(f"w{i}.example/w") for i in range(64)]
    keys = [w.key for w in many]
    at = secs(ledger, note) + 5
    assert len(ledger.add_cosignatures(cosign(note, at, *many[:63]), keys)) == 63
    before = raw_rows(ledger, "cosigned")
    with pytest.raises(ArgumentError, match="too large"):
        ledger.add_cosignatures(cosign(note, at, many[63]), keys)
    assert raw_rows(ledger, "cosigned") == before
    assert ledger.audit() == ledger.size
