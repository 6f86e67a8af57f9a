"""Cosignature tricks against the verifier and the store: timestamps at the edges of
tlog-cosignature's range, witnesses whose clocks are wrong, keys reused across roles, and
bodies that differ by one line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import verifier as v
from ledger import Ledger
from tests.helpers import bundle_bytes, bundle_doc
from tests.ledger_support import Clock, Keys, make_ledger, register
from tests.test_cosignature import Witness
from tests.test_cosigned_bundles import ALL, W1, W2, W3, cosign, cp_of, secs
from verifier import cli
from verifier.cosignature import MAX_TIMESTAMP
from verifier.witnessed import WITNESS_DELAY, WITNESS_SKEW

ACCEPTED = (v.MalformedInputError, v.VerificationError)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Ledger, Keys]:
    keys = Keys()
    ledger = make_ledger(tmp_path / "store", keys, Clock())
    register(ledger, "fraud")
    return ledger, keys


def _bundle_with(ledger: Ledger, cosigned_note: bytes) -> bytes:
    doc = bundle_doc(ledger.export_bundle())
    doc["checkpoint"] = cosigned_note.decode()
    return bundle_bytes(doc)


@pytest.mark.parametrize("stamp", [MAX_TIMESTAMP, 253402300800])  # 2**63-1; year 10000
def test_a_cosignature_timestamp_beyond_year_9999_is_a_typed_answer(
        world: tuple[Ledger, Keys], stamp: int) -> None:
    # FINDING: high: a valid cosignature timestamp (tlog-cosignature allows up to 2**63-1) past year 9999 makes verify_bundle raise OverflowError, not a VerifierError  # noqa: E501
    ledger, keys = world
    bundle = _bundle_with(ledger, cosign(ledger.checkpoint(), stamp, W1))
    try:
        out = v.verify_bundle(bundle, keys.trusted, witnesses=[W1.key], witness_threshold=1)
    except ACCEPTED:
        return
    assert out.witnessed is not None
    out.witnessed.statement()
    out.witnessed.to_json()


def test_modelseal_verify_does_not_call_a_far_future_cosignature_a_bug(
        world: tuple[Ledger, Keys], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # FINDING: high: modelseal-verify exits 70 ("internal error, a bug") for a bundle whose pinned witness cosigned at 2**63-1  # noqa: E501
    ledger, _ = world
    path = tmp_path / "b.json"
    path.write_bytes(_bundle_with(ledger, cosign(ledger.checkpoint(), MAX_TIMESTAMP, W1)))
    code = cli.main([str(path), "--key", ledger.log_vkey, "--witness", W1.key.vkey()])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_MALFORMED), (code, out, err)


@pytest.mark.parametrize("stamp", [0, 1, MAX_TIMESTAMP])
def test_the_store_refuses_a_cosignature_that_would_fail_its_own_checkpoint(
        world: tuple[Ledger, Keys], stamp: int) -> None:
    # FINDING: medium: add_cosignatures (what the server does with every witness answer) stores a cosignature timed at 0 or 2**63-1, after which every verifier pinning that witness fails (post-dated) or crashes on the log's chosen cosigned checkpoint; the log knows its own checkpoint's time and could refuse it  # noqa: E501
    ledger, keys = world
    note = ledger.checkpoint()
    try:
        ledger.add_cosignatures(cosign(note, stamp, W1), ALL)
    except (v.VerifierError, ValueError):
        assert ledger.cosigned() is None
        return
    stored = ledger.cosigned()
    assert stored is not None
    # if it was kept, the checkpoint it makes must still verify for its witness
    v.verify_bundle(_bundle_with(ledger, stored), keys.trusted, witnesses=[W1.key],
                    witness_threshold=1)


def test_an_honest_cosignature_within_the_skew_is_stored_and_verifies(
        world: tuple[Ledger, Keys]) -> None:
    ledger, keys = world
    note = ledger.checkpoint()
    t = secs(ledger, note)
    assert ledger.add_cosignatures(cosign(note, t + 2, W1), ALL)
    stored = ledger.cosigned()
    assert stored is not None
    out = v.verify_bundle(_bundle_with(ledger, stored), keys.trusted, witnesses=[W1.key],
                          witness_threshold=1)
    assert out.witnessed is not None and out.witnessed.by == t + 2


def test_one_witness_with_a_fast_clock_cannot_convict_an_honest_log_of_back_dating(
        tmp_path: Path) -> None:
    # FINDING: medium: with threshold k and exactly k cosignatures, the back-dating floor is the LATEST witness time, so one witness whose clock is an hour ahead (fewer than k liars) makes an honest log's bundle fail as back-dated, against decision 19's "fewer than k lying witnesses cannot move it either way"; the floor should use the k-th latest time  # noqa: E501
    keys, clock = Keys(), Clock()
    ledger = make_ledger(tmp_path / "store", keys, clock)
    register(ledger, "fraud")
    old = ledger.checkpoint()
    t_old = secs(ledger, old)
    text = v.parse_note(old).text
    # W1 honest (5 s after the log signed), W2's clock an hour ahead
    trusted = old + W1.line(text, t_old + 5) + W2.line(text, t_old + 3600)
    register(ledger, "later")  # an honest entry, a minute after the old checkpoint
    new = ledger.checkpoint()
    ledger.add_cosignatures(cosign(new, secs(ledger, new) + 5, W1, W2), ALL)
    bundle = ledger.export_bundle(at=v.from_ns(cp_of(ledger, new).time or 0), trusted_size=2)
    tcp = v.Checkpoint.parse_note(trusted, keys.trusted)
    out = v.verify_bundle(bundle, keys.trusted, trusted=tcp, witnesses=ALL, witness_threshold=2)
    assert out.trusted_witnessed is not None


def test_two_witnesses_agreeing_on_a_late_time_do_convict_back_dating(tmp_path: Path) -> None:
    """The defence the finding above must keep: k witnesses who saw the tree late convict."""
    keys, clock = Keys(), Clock()
    ledger = make_ledger(tmp_path / "store", keys, clock)
    register(ledger, "fraud")
    old = ledger.checkpoint()
    t_old = secs(ledger, old)
    text = v.parse_note(old).text
    late = t_old + WITNESS_DELAY + WITNESS_SKEW + 600
    trusted = old + W1.line(text, late) + W2.line(text, late + 1)
    register(ledger, "later")
    new = ledger.checkpoint()
    ledger.add_cosignatures(cosign(new, secs(ledger, new) + 5, W1, W2), ALL)
    bundle = ledger.export_bundle(at=v.from_ns(cp_of(ledger, new).time or 0), trusted_size=2)
    tcp = v.Checkpoint.parse_note(trusted, keys.trusted)
    with pytest.raises(v.TimeBoundError, match="back-dated"):
        v.verify_bundle(bundle, keys.trusted, trusted=tcp, witnesses=ALL, witness_threshold=2)


def test_the_logs_own_key_is_not_an_independent_witness(world: tuple[Ledger, Keys]) -> None:
    # FINDING: low: a witness key whose Ed25519 key is the log's own key is accepted and its cosignature (made by the log itself) counts toward the threshold; the verifier could refuse a "witness" that is the log  # noqa: E501
    ledger, keys = world
    note = ledger.checkpoint()
    log_public = keys.log.key.public_key
    self_witness = v.WitnessKey.from_public("witness.example/self", log_public)
    text = v.parse_note(note).text
    t = secs(ledger, note) + 1
    line = v.cosignature_line(self_witness, t, keys.log.sign(v.cosignature_message(text, t)))
    bundle = _bundle_with(ledger, note + line)
    with pytest.raises((ValueError, v.VerificationError)):
        v.verify_bundle(bundle, keys.trusted, witnesses=[self_witness], witness_threshold=1)


def test_the_logs_signature_line_never_counts_as_a_cosignature(
        world: tuple[Ledger, Keys]) -> None:
    """The log's own line carries a key ID of type 0x01: a witness key named like the log,
    holding the log's public key, does not match it (0 of 1)."""
    ledger, keys = world
    note = ledger.checkpoint()
    as_witness = v.WitnessKey.from_public(keys.log.key.name, keys.log.key.public_key)
    assert as_witness.key_id != keys.log.key.key_id
    assert v.verify_cosignatures(note, [as_witness]) == ()  # the log's line is not one
    # and a bundle verified with the log's key pinned as a witness is refused outright
    with pytest.raises(ValueError, match="own key"):
        v.verify_bundle(_bundle_with(ledger, note), keys.trusted, witnesses=[as_witness],
                        witness_threshold=1)


def test_one_witness_under_two_names_counts_once(world: tuple[Ledger, Keys]) -> None:
    ledger, keys = world
    note = ledger.checkpoint()
    alias = v.WitnessKey.from_public("alias.example/w", W1.key.public_key)
    text = v.parse_note(note).text
    t = secs(ledger, note) + 1
    line = v.cosignature_line(alias, t, W1.sign(text, t))
    bundle = _bundle_with(ledger, note + W1.line(text, t) + line)
    with pytest.raises(ValueError):  # two names, one key: not two witnesses
        v.verify_bundle(bundle, keys.trusted, witnesses=[W1.key, alias], witness_threshold=2)
    with pytest.raises(v.WitnessError, match="1 of the 2"):
        v.verify_bundle(bundle, keys.trusted, witnesses=[W1.key, alias, W2.key],
                        witness_threshold=2)
    assert len(v.verify_cosignatures(note + W1.line(text, t) + line, [W1.key, alias])) == 1


def test_a_threshold_above_the_witnesses_is_refused(world: tuple[Ledger, Keys]) -> None:
    ledger, keys = world
    bundle = _bundle_with(ledger, cosign(ledger.checkpoint(), secs(ledger, ledger.checkpoint()),
                                         W1, W2))
    with pytest.raises(ValueError):
        v.verify_bundle(bundle, keys.trusted, witnesses=[W1.key, W2.key], witness_threshold=3)
    with pytest.raises(ValueError):
        v.verify_bundle(bundle, keys.trusted, witnesses=[], witness_threshold=1)


def test_a_cosignature_of_a_body_without_or_with_an_extension_line_fails() -> None:
    plain = b"example.com/models\n3\n" + b"A" * 43 + b"=\n"
    extended = plain + b"an extension line\n"
    log_line = "\u2014 example.com/models AQIDBA" + "A" * 86 + "\n"
    for signed, shown in ((plain, extended), (extended, plain)):
        note = shown + b"\n" + log_line.encode() + W1.line(signed, 1000)
        with pytest.raises(v.SignatureError):
            v.verify_cosignatures(note, [W1.key])


def test_timestamps_outside_the_signed_range_are_malformed() -> None:
    """A u64 timestamp with its top bit set (a "negative" one) is malformed; 0 and
    2**63-1 are in range and verify."""
    text = b"example.com/models\n3\n" + b"A" * 43 + b"=\n"
    log_line = ("\u2014 example.com/models AQIDBA" + "A" * 86 + "\n").encode()
    for stamp in (0, MAX_TIMESTAMP):
        got = v.verify_cosignatures(text + b"\n" + log_line + W1.line(text, stamp), [W1.key])
        assert [c.timestamp for c in got] == [stamp]
    sig = W1.sign(text, 5)
    raw = v.signature_line(W1.key.name, W1.key.key_id, (2**63).to_bytes(8, "big") + sig)
    with pytest.raises(v.MalformedInputError):
        v.verify_cosignatures(text + b"\n" + log_line + raw, [W1.key])
    with pytest.raises(ValueError):
        v.cosignature_message(text, -1)


def test_a_different_key_with_a_pinned_witness_name_is_ignored(world: tuple[Ledger, Keys]) -> None:
    ledger, keys = world
    note = ledger.checkpoint()
    text = v.parse_note(note).text
    impostor = Witness(W3.key.name, seed=99)
    bundle = _bundle_with(ledger, note + impostor.line(text, secs(ledger, note)))
    with pytest.raises(v.WitnessError):
        v.verify_bundle(bundle, keys.trusted, witnesses=[W3.key], witness_threshold=1)


def _seeded(seed: bytes, name: str) -> tuple[object, v.WitnessKey]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
    return private, v.WitnessKey.from_public(name, private.public_key().public_bytes_raw())


def test_a_key_id_collision_under_one_name_does_not_fail_an_honest_witness(
        world: tuple[Ledger, Keys]) -> None:
    # FINDING: medium: verify_cosignatures indexes pinned witnesses by (name, key ID); a hostile witness that takes an honest witness's name and grinds a colliding 4-byte key ID (2**16 work: these seeds were found in 3 s) replaces it, and the honest witness's valid cosignature then raises SignatureError against the wrong key: the honest log fails  # noqa: E501
    ledger, keys = world
    name = "witness.example/w"
    honest_private, honest = _seeded(b"collide/37779", name)
    _, hostile = _seeded(b"collide/62518", name)
    assert honest.key_id == hostile.key_id and honest.public_key != hostile.public_key
    note = ledger.checkpoint()
    text = v.parse_note(note).text
    t = secs(ledger, note) + 1
    sig = honest_private.sign(v.cosignature_message(text, t))  # type: ignore[attr-defined]
    cosigned_note = note + v.cosignature_line(honest, t, sig)
    assert v.verify_cosignatures(cosigned_note, [honest])
    for pinned in ([honest, hostile], [hostile, honest]):
        try:
            got = v.verify_cosignatures(cosigned_note, pinned)
        except (v.MalformedInputError, ValueError):
            continue  # refusing the ambiguous configuration is a fix too
        assert [c.witness for c in got] == [honest]


@pytest.mark.parametrize("stamp", [1, MAX_TIMESTAMP])
def test_a_hostile_witness_cannot_poison_the_servers_cosigned_checkpoint(
        world: tuple[Ledger, Keys], stamp: int) -> None:
    # FINDING: medium: the log server's witness task stores whatever valid cosignature a pinned witness answers: a witness that signs time 1 (or 2**63-1) makes the served cosigned checkpoint fail (post-dated) or crash every verifier that pins it, and a later honest line of that witness never replaces it  # noqa: E501
    import anyio
    import httpx

    from ledger.keys import WitnessSigner
    from ledger.server._witnesses import Distributor, WitnessEndpoint

    ledger, keys = world
    hostile = WitnessSigner.generate("hostile.example/w")

    def answer(request: httpx.Request) -> httpx.Response:
        body = request.content
        note = body[body.index(b"\n\n") + 2:]
        text = v.parse_note(note).text
        return httpx.Response(200, content=hostile.cosign(text, stamp))

    endpoint = WitnessEndpoint.parse(f"http://witness.test={hostile.vkey}")
    d = Distributor(ledger, [endpoint], interval=0.2, timeout=2,
                    transport=httpx.MockTransport(answer))

    async def run_for_a_moment() -> None:
        with anyio.move_on_after(1.5):
            await d.run()

    anyio.run(run_for_a_moment)
    stored = ledger.cosigned()
    if stored is None:
        return  # refused: the fix
    try:
        v.verify_bundle(_bundle_with(ledger, stored), keys.trusted,
                        witnesses=[hostile.witness_key], witness_threshold=1)
    except v.WitnessError:
        pass  # the poisoned line was not kept


def test_a_witness_answer_cannot_forge_lines_in_the_servers_log(
        world: tuple[Ledger, Keys], caplog: pytest.LogCaptureFixture) -> None:
    # FINDING: low: the log server logs the first 200 bytes of a witness's refusal as they came (newlines and escape sequences included): a hostile or compromised witness writes forged lines into the server's log  # noqa: E501
    import anyio
    import httpx

    from ledger.keys import WitnessSigner
    from ledger.server._witnesses import Distributor, WitnessEndpoint

    ledger, _ = world
    w = WitnessSigner.generate("w.example/log")
    forged = b"no\n2026-01-01 WARNING witness http://other: all good\x1b[2K\r"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=forged)

    d = Distributor(ledger, [WitnessEndpoint.parse(f"http://witness.test={w.vkey}")],
                    interval=0.2, timeout=2, transport=httpx.MockTransport(answer))

    async def run_for_a_moment() -> None:
        with anyio.move_on_after(1.0):
            await d.run()

    with caplog.at_level("WARNING", logger="modelseal.server.witnesses"):
        anyio.run(run_for_a_moment)
    messages = [r.getMessage() for r in caplog.records if "witness" in r.getMessage()]
    assert messages, caplog.records
    for m in messages:
        assert "\n" not in m and "\x1b" not in m and "\r" not in m, repr(m)
