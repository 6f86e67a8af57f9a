"""Point-in-time bundles: verify_bundle on logsim bundles, trusted checkpoints, tampering."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

import verifier as v
from tests import reference as ref
from tests.helpers import b64, bundle_bytes, bundle_doc, make_bundle, sign_text, unb64
from tests.logsim import DAY, T0, Log, Signer, sample_log

LOG, PIPE = sample_log(models=4, seed="bundle")
KEYS = [LOG.log_key.key]
S = len(LOG.entries)
STEP = LOG.step
MID_T = T0 + 10 * STEP + STEP // 2  # entries 0..10 are recorded by then
MID_N = 11


def t_of(i: int) -> int:
    return T0 + i * STEP


def trusted_cp(size: int, log: Log = LOG) -> v.Checkpoint:
    return v.Checkpoint.parse_note(log.checkpoint(size), [log.log_key.key])


def fork_log() -> Log:
    """Same origin and keys as LOG, different history after the grant."""
    fork, _ = sample_log(models=4, seed="bundle")
    fork.entries = fork.entries[:2]
    fork.heads = {}
    fork.clock = t_of(2)
    fork.submit(PIPE, "register", name="a-different-model", owner="x", model_type="t",
                tier="low", purpose="", status="active", metadata={})
    while len(fork.entries) < S:
        fork.submit(PIPE, "event", model="a-different-model", event_type="x", payload={})
    return fork


# -- positive ----------------------------------------------------------------------------

def test_sample_log_size() -> None:
    """The sample log used here has the expected number of entries and step."""
    assert S == 26 and STEP == DAY // 4
    assert v.parse_entry(LOG.entries[-1]).entry.recorded_at == t_of(S - 1)


@pytest.mark.parametrize("t,n", [
    (T0 - 1, 0), (0, 0), (T0, 1), (T0 + 1, 1), (MID_T, MID_N), (t_of(MID_N), MID_N + 1),
    (t_of(S - 1) - 1, S - 1), (t_of(S - 1), S), (t_of(S - 1) + 10 * DAY, S),
])
def test_verify_at_times(t: int, n: int) -> None:
    """Bundles at several times verify to the inventory of exactly the entries recorded by t."""
    result = v.verify_bundle(LOG.bundle(t), KEYS)
    assert (result.size, result.time) == (n, t)
    assert result.root == ref.mth(LOG.entries[:n])
    assert result.checkpoint.size == S and result.checkpoint.root == ref.mth(LOG.entries)
    assert result.checkpoint.origin == LOG.origin
    assert result.checkpoint.signers == (LOG.origin,)
    assert result.trusted is None
    assert result.inventory.size == n
    expected = v.replay(LOG.entries[:n])
    assert {k: m.fields() for k, m in result.models.items()} == {
        k: m.fields() for k, m in expected.models.items()}
    assert result.at == v.from_ns(t)
    assert len(result.checks) >= 4


def test_before_genesis_is_empty() -> None:
    """A bundle before the first entry proves an empty inventory."""
    result = v.verify_bundle(LOG.bundle(T0 - 1), KEYS)
    assert result.size == 0 and result.root == v.EMPTY_ROOT
    assert dict(result.models) == {} and result.inventory.origin is None
    assert bundle_doc(LOG.bundle(T0 - 1))["entries"] == []


def test_mid_fields() -> None:
    """Mid-history: the models registered so far, with their fields as of then."""
    result = v.verify_bundle(LOG.bundle(MID_T), KEYS)
    # 0 genesis, 1 grant, 2-5 register, 6 retrained m0, 7 tag m0, 8 validated m0, 9 retrained m1,
    # 10 tag m1.
    assert sorted(result.models) == ["model_00", "model_01", "model_02", "model_03"]
    m0, m1, m2 = (result.models[f"model_0{i}"] for i in range(3))
    assert m0.last_validation_at == t_of(8) and m0.last_event_type == "validated"
    assert m0.tags == {"production": v.snapshot_hash(LOG.entries[6])}
    assert m1.last_validation_at is None
    assert m1.tags == {"production": v.snapshot_hash(LOG.entries[9])}
    assert m2.tags == {} and m2.last_event_type == "registered"
    assert list(result.inventory.keys) == ["risk-admin", "ml-pipeline"]


def test_end_fields() -> None:
    """At the end: the group, the update, the retirement and the revoked key."""
    result = v.verify_bundle(LOG.bundle(t_of(S)), KEYS)
    assert result.models["model_03"].tier == "high"
    assert result.models["model_02"].status == "retired"
    assert result.models["fraud_suite"].members == {"model_01": "component",
                                                    "model_02": "component"}
    assert list(result.inventory.keys) == ["risk-admin"]
    doc = result.to_json()
    json.dumps(doc)
    assert doc["origin"] == LOG.origin
    assert doc["at"]["size"] == S and doc["at"]["time_ns"] == t_of(S)
    assert doc["checkpoint"]["size"] == S and doc["trusted"] is None
    assert [m["name"] for m in doc["models"]] == sorted(result.models)
    assert [(k["name"], k["revoked_by"]) for k in doc["keys"]] == [
        ("risk-admin", None), ("ml-pipeline", "risk-admin")]


def test_older_checkpoint() -> None:
    """A bundle under an older checkpoint covers only that checkpoint's entries, up to the
    time that checkpoint was signed (just before entry 15); a later time is TimeBoundError."""
    cp_time = t_of(15) - 1
    result = v.verify_bundle(LOG.bundle(cp_time, size=15), KEYS)
    assert result.checkpoint.size == 15 and result.size == 15
    assert result.checkpoint_time == cp_time and result.proven_until == cp_time
    result = v.verify_bundle(LOG.bundle(MID_T, size=15), KEYS)
    assert result.checkpoint.size == 15 and result.size == MID_N
    assert result.proven_until == t_of(MID_N) - 1
    for late in (cp_time + 1, t_of(S)):
        with pytest.raises(v.TimeBoundError, match="signed at"):
            v.verify_bundle(LOG.bundle(late, size=15), KEYS)


def test_empty_checkpoint() -> None:
    """A log of size 0 under its checkpoint (signed before the genesis) verifies to nothing;
    a time after that checkpoint was signed is TimeBoundError."""
    result = v.verify_bundle(LOG.bundle(T0 - 1, size=0), KEYS)
    assert result.size == 0 and result.checkpoint.size == 0
    assert result.before_genesis and result.genesis_at is None
    assert result.proven_until == result.checkpoint_time == T0 - 1
    with pytest.raises(v.TimeBoundError):
        v.verify_bundle(LOG.bundle(t_of(S), size=0), KEYS)


def test_keys_order_and_extra_keys() -> None:
    """Extra unrelated keys do not matter."""
    keys = [Signer("other", b"o").key, *KEYS]
    assert v.verify_bundle(LOG.bundle(MID_T), keys).size == MID_N


def test_example_bundle_verifies() -> None:
    """The shipped example bundle verifies with the shipped key and trusted checkpoint."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "examples"
    keys = [v.VerifierKey.parse((root / "log.vkey").read_text().strip())]
    trusted = v.Checkpoint.parse_note((root / "trusted-checkpoint.txt").read_bytes(), keys)
    result = v.verify_bundle((root / "bundle.json").read_bytes(), keys, trusted=trusted)
    assert result.trusted == trusted and result.size > 0


# -- trusted checkpoints --------------------------------------------------------------------

@pytest.mark.parametrize("tsize", [0, 1, 5, 16, S - 1])
def test_trusted_extends(tsize: int) -> None:
    """A bundle carrying a proof from the trusted size verifies."""
    trusted = trusted_cp(tsize)
    result = v.verify_bundle(LOG.bundle(MID_T, trusted=tsize), KEYS, trusted=trusted)
    assert result.trusted == trusted
    assert any("extends the trusted checkpoint" in c for c in result.checks)


def test_trusted_same_checkpoint() -> None:
    """Trusting the bundle's own checkpoint needs no proof."""
    result = v.verify_bundle(LOG.bundle(MID_T), KEYS, trusted=trusted_cp(S))
    assert result.trusted is not None and result.trusted.size == S


def test_trusted_newer_than_bundle() -> None:
    """A bundle older than what the examiner already trusts is a rollback."""
    with pytest.raises(v.ConsistencyError, match="older"):
        v.verify_bundle(LOG.bundle(MID_T, size=15), KEYS, trusted=trusted_cp(16))


def test_fork_same_size() -> None:
    """Same size, different root (a forked log with the same keys) is ConsistencyError."""
    fork = fork_log()
    assert len(fork.entries) == S and ref.mth(fork.entries) != ref.mth(LOG.entries)
    with pytest.raises(v.ConsistencyError, match="fork"):
        v.verify_bundle(LOG.bundle(MID_T), KEYS, trusted=trusted_cp(S, fork))
    # and the fork's own bundle does verify on its own
    assert v.verify_bundle(fork.bundle(MID_T), KEYS).size == MID_N


def test_fork_smaller_trusted() -> None:
    """A trusted checkpoint of the fork at a smaller size fails the consistency proof."""
    fork = fork_log()
    with pytest.raises(v.ConsistencyError):
        v.verify_bundle(LOG.bundle(MID_T, trusted=10), KEYS, trusted=trusted_cp(10, fork))


def test_missing_from_trusted() -> None:
    """Without a from_trusted proof a smaller trusted checkpoint cannot be checked."""
    with pytest.raises(v.ConsistencyError, match="no consistency proof"):
        v.verify_bundle(LOG.bundle(MID_T), KEYS, trusted=trusted_cp(10))


def test_from_trusted_wrong_size() -> None:
    """A from_trusted proof from another size does not count."""
    with pytest.raises(v.ConsistencyError, match="no consistency proof"):
        v.verify_bundle(LOG.bundle(MID_T, trusted=9), KEYS, trusted=trusted_cp(10))


def test_from_trusted_tampered() -> None:
    """A changed hash in from_trusted is ConsistencyError."""
    doc = bundle_doc(LOG.bundle(MID_T, trusted=10))
    doc["from_trusted"]["proof"][0] = b64(b"\x00" * 32)
    with pytest.raises(v.ConsistencyError):
        v.verify_bundle(bundle_bytes(doc), KEYS, trusted=trusted_cp(10))


def test_trusted_other_origin() -> None:
    """A trusted checkpoint of another log is ConsistencyError."""
    other = Log.create(origin="other.example/models", seed="bundle-other")
    trusted = v.Checkpoint.parse_note(other.checkpoint(1), [other.log_key.key])
    with pytest.raises(v.ConsistencyError, match="other.example"):
        v.verify_bundle(LOG.bundle(MID_T), KEYS, trusted=trusted)


# -- tampering -------------------------------------------------------------------------------

BASE = LOG.bundle(MID_T)
BASE_CP_TIME = v.Checkpoint.parse_note(bundle_doc(BASE)["checkpoint"].encode(), KEYS).time
assert BASE_CP_TIME is not None and t_of(S - 1) <= BASE_CP_TIME < t_of(S) + DAY


def edit(fn: Any) -> bytes:
    doc = bundle_doc(BASE)
    fn(doc)
    return bundle_bytes(doc)


def _flip_entry(doc: dict[str, Any], i: int, pos: int) -> None:
    data = bytearray(unb64(doc["entries"][i]))
    data[pos % len(data)] ^= 0x01
    doc["entries"][i] = b64(bytes(data))


def _swap(doc: dict[str, Any], i: int, j: int) -> None:
    e = doc["entries"]
    e[i], e[j] = e[j], e[i]


def _unpad_first_padded(doc: dict[str, Any]) -> None:
    """Strip the '=' padding of the first entry that has some (not canonical base64)."""
    i = next(i for i, e in enumerate(doc["entries"]) if e.endswith("="))
    doc["entries"][i] = doc["entries"][i].rstrip("=")


def _set(path: str, value: Any) -> Any:
    def fn(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[p]
        doc[last] = value
    return fn


def _drop(path: str) -> Any:
    def fn(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[p]
        del doc[last]
    return fn


TAMPER: list[tuple[str, Any, tuple[type[Exception], ...]]] = [
    ("flip byte entry 0", lambda d: _flip_entry(d, 0, 40), (v.RootMismatchError,)),
    ("flip byte entry 5", lambda d: _flip_entry(d, 5, 100), (v.RootMismatchError,)),
    ("flip byte last entry", lambda d: _flip_entry(d, MID_N - 1, -3), (v.RootMismatchError,)),
    ("dropped entry", lambda d: d["entries"].pop(4), (v.MalformedInputError,)),
    ("dropped last entry", lambda d: d["entries"].pop(), (v.MalformedInputError,)),
    ("duplicated entry", lambda d: d["entries"].insert(3, d["entries"][3]),
     (v.MalformedInputError,)),
    ("reordered entries", lambda d: _swap(d, 3, 4), (v.RootMismatchError,)),
    ("reordered first two", lambda d: _swap(d, 0, 1), (v.RootMismatchError,)),
    ("at.size minus one", _set("at.size", MID_N - 1), (v.MalformedInputError,)),
    ("at.size plus one", _set("at.size", MID_N + 1), (v.MalformedInputError,)),
    ("at.size beyond checkpoint", _set("at.size", S + 1), (v.MalformedInputError,)),
    ("at.size negative", _set("at.size", -1), (v.MalformedInputError,)),
    ("at.root changed", _set("at.root", b64(ref.mth(LOG.entries[:3]))), (v.RootMismatchError,)),
    ("at.root short", _set("at.root", b64(b"\x00" * 31)), (v.MalformedInputError,)),
    ("at.time before last entry", _set("at.time", t_of(MID_N - 1) - 1), (v.ChainError,)),
    ("at.time long before", _set("at.time", T0), (v.ChainError,)),
    ("at.time at next entry", _set("at.time", t_of(MID_N)), (v.ChainError,)),
    ("at.time after next entry", _set("at.time", t_of(MID_N) + 1), (v.ChainError,)),
    ("at.time at the checkpoint's time", _set("at.time", BASE_CP_TIME), (v.ChainError,)),
    ("at.time after the checkpoint's time", _set("at.time", BASE_CP_TIME + 1),
     (v.TimeBoundError,)),
    ("at.time far future", _set("at.time", t_of(S) + DAY), (v.TimeBoundError,)),
    ("at.time negative", _set("at.time", -1), (v.MalformedInputError,)),
    ("at.time beyond int64", _set("at.time", 2**63), (v.MalformedInputError,)),
    ("removed next", _set("next", None), (v.MalformedInputError,)),
    ("next is another entry", _set("next.entry", b64(LOG.entries[MID_N + 1])),
     (v.RootMismatchError,)),
    ("next proof tampered", lambda d: d["next"]["proof"].__setitem__(0, b64(b"\x01" * 32)),
     (v.RootMismatchError,)),
    ("next proof short", lambda d: d["next"]["proof"].pop(), (v.MalformedInputError,)),
    ("consistency tampered", lambda d: d["consistency"].__setitem__(0, b64(b"\x01" * 32)),
     (v.ConsistencyError,)),
    ("consistency dropped", _set("consistency", []), (v.MalformedInputError,)),
    ("swapped checkpoint smaller", _set("checkpoint", LOG.checkpoint(S - 1).decode()),
     (v.MalformedInputError, v.ConsistencyError, v.RootMismatchError)),
    ("swapped checkpoint below n", _set("checkpoint", LOG.checkpoint(MID_N - 1).decode()),
     (v.MalformedInputError,)),
    ("swapped checkpoint equal n", _set("checkpoint", LOG.checkpoint(MID_N).decode()),
     (v.MalformedInputError,)),
    ("checkpoint foreign key",
     _set("checkpoint", LOG.checkpoint(S, Signer(LOG.origin, b"foreign")).decode()),
     (v.SignatureError,)),
    ("checkpoint unsigned text", _set("checkpoint", "example.com/models\n1\n"),
     (v.MalformedInputError,)),
    ("version 1", _set("version", 1), (v.MalformedInputError,)),
    ("version 3", _set("version", 3), (v.MalformedInputError,)),
    ("version string", _set("version", "1"), (v.MalformedInputError,)),
    ("version true", _set("version", True), (v.MalformedInputError,)),
    ("version float", _set("version", 1.0), (v.MalformedInputError,)),
    ("wrong format", _set("format", "modelseal-bundle-v2"), (v.MalformedInputError,)),
    ("no format", _drop("format"), (v.MalformedInputError,)),
    ("unknown field", _set("extra", 1), (v.MalformedInputError,)),
    ("unknown at field", _set("at.extra", 1), (v.MalformedInputError,)),
    ("missing entries", _drop("entries"), (v.MalformedInputError,)),
    ("entry not base64", lambda d: d["entries"].__setitem__(2, "not base64!"),
     (v.MalformedInputError,)),
    ("entry non-canonical base64", lambda d: _unpad_first_padded(d), (v.MalformedInputError,)),
]


@pytest.mark.parametrize("fn,expected", [(f, e) for _, f, e in TAMPER],
                         ids=[n for n, _, _ in TAMPER])
def test_tampered(fn: Any, expected: tuple[type[Exception], ...]) -> None:
    """Each tampered bundle fails with the error class the change determines."""
    data = edit(fn)
    assert data != BASE
    with pytest.raises(expected):
        v.verify_bundle(data, KEYS)


def test_edit_identity() -> None:
    """Re-encoding an untouched bundle gives the same bytes, which verify."""
    assert edit(lambda d: None) == BASE
    assert v.verify_bundle(BASE, KEYS).size == MID_N


def test_omitted_entry_with_honest_proofs() -> None:
    """Leaving out the last entry recorded by t, with all hashes recomputed: ChainError."""
    data = make_bundle(LOG, MID_N - 1, MID_T, S)
    with pytest.raises(v.ChainError, match="leaves out"):
        v.verify_bundle(data, KEYS)


def test_backdated_time_with_honest_proofs() -> None:
    """Claiming a time before the last included entry, everything else honest: ChainError."""
    with pytest.raises(v.ChainError):
        v.verify_bundle(make_bundle(LOG, MID_N, t_of(MID_N - 1) - 1, S), KEYS)


def test_next_with_wrong_index_in_entry() -> None:
    """A next entry whose own index field is wrong is ChainError even if included."""
    st_bytes = v.parse_entry(LOG.entries[MID_N]).statement_bytes
    log = Log.create(seed="bundle")
    log.entries = list(LOG.entries[:MID_N])
    bad_next = v.entry_bytes(index=MID_N + 7, recorded_at=t_of(MID_N), prev=None,
                             statement=st_bytes, key_id=b"\0" * 4, sig=b"\0" * 64)
    log.entries.append(bad_next)
    log.clock = t_of(MID_N + 1)  # the checkpoint is signed after the next entry
    data = make_bundle(log, MID_N, MID_T, MID_N + 1)
    with pytest.raises(v.ChainError, match="index"):
        v.verify_bundle(data, [log.log_key.key])


def test_whole_checkpoint_with_next() -> None:
    """A bundle covering the whole checkpoint must not carry a next entry."""
    doc = bundle_doc(LOG.bundle(t_of(S)))
    assert doc["next"] is None
    doc["next"] = {"entry": b64(LOG.entries[0]), "proof": []}
    with pytest.raises(v.MalformedInputError, match="next"):
        v.verify_bundle(bundle_bytes(doc), KEYS)


def test_checkpoint_not_signed_by_genesis_log_key() -> None:
    """A checkpoint signed only by a given key that is not the log key named at genesis."""
    other = Signer("second-log-key", b"second")
    text = v.checkpoint_text(LOG.origin, S, ref.mth(LOG.entries), [v.time_line(t_of(S))])

    def bundle(note: bytes) -> bytes:
        return v.encode_bundle(checkpoint=note, size=S, time=t_of(S), root=ref.mth(LOG.entries),
                               consistency=[], entries=LOG.entries, next_entry=None,
                               next_proof=[])

    only_other = bundle(sign_text(text, other))
    for keys in ([other.key], [other.key, *KEYS]):
        with pytest.raises(v.SignatureError, match="genesis"):
            v.verify_bundle(only_other, keys)
    cosigned = bundle(sign_text(text, other, LOG.log_key))
    assert v.verify_bundle(cosigned, [other.key, *KEYS]).checkpoint.signers == (
        other.name, LOG.origin)
    with pytest.raises(v.SignatureError, match="genesis"):
        v.verify_bundle(cosigned, [other.key])


def test_empty_bundle_checks_genesis_from_next() -> None:
    """At size 0 the next entry (the genesis) still names the key that must sign."""
    other = Signer("second-log-key", b"second")
    note = sign_text(v.checkpoint_text(LOG.origin, S, ref.mth(LOG.entries),
                                       [v.time_line(t_of(S))]), other)
    data = make_bundle(LOG, 0, T0 - 1, S, checkpoint=note)
    with pytest.raises(v.SignatureError, match="genesis"):
        v.verify_bundle(data, [other.key])
    assert v.verify_bundle(make_bundle(LOG, 0, T0 - 1, S), KEYS).size == 0


def test_empty_bundle_next_not_genesis() -> None:
    """At size 0, a log whose first entry is not a genesis is ChainError."""
    log = Log(LOG.origin, LOG.log_key, LOG.admin)
    log.submit(LOG.admin, "grant", key=PIPE.vkey, role="writer")
    log.submit(LOG.admin, "grant", key=Signer("w", b"w").vkey, role="writer")
    with pytest.raises(v.ChainError):
        v.verify_bundle(log.bundle(T0 - 1), KEYS)


def test_checkpoint_origin_differs_from_genesis() -> None:
    """A checkpoint under another origin than the genesis names is ChainError."""
    text = v.checkpoint_text("other.example/models", S, ref.mth(LOG.entries),
                             [v.time_line(t_of(S))])
    note = sign_text(text, LOG.log_key)
    data = v.encode_bundle(checkpoint=note, size=S, time=t_of(S), root=ref.mth(LOG.entries),
                           consistency=[], entries=LOG.entries, next_entry=None, next_proof=[])
    with pytest.raises(v.ChainError, match="origin"):
        v.verify_bundle(data, KEYS)


def test_bad_entry_inside_bundle() -> None:
    """An honestly hashed bundle around a rule-breaking history fails replay."""
    log = Log.create(seed="bundle")
    log.submit(PIPE, "register", name="m", owner="o", model_type="t", tier="t", purpose="",
               status="a", metadata={})  # the pipeline was never granted
    data = log.bundle(log.clock)
    with pytest.raises(v.AuthorizationError):
        v.verify_bundle(data, KEYS)


@pytest.mark.parametrize("garbage", [b" ", b"\n", b"x", b"{}", b"[]", b"\x00"])
def test_garbage_around_json(garbage: bytes) -> None:
    """Bytes before or after the JSON document are malformed (whitespace aside)."""
    for data in (garbage + BASE, BASE + garbage):
        if garbage.isspace():
            assert v.verify_bundle(data, KEYS).size == MID_N  # JSON allows whitespace
        else:
            with pytest.raises(v.MalformedInputError):
                v.verify_bundle(data, KEYS)


@pytest.mark.parametrize("data", [b"", b"null", b"[]", b"1", b'"modelseal-bundle"', b"{",
                                  b'{"format":"modelseal-bundle"}',
                                  b'{"format":"modelseal-bundle","version":1}',
                                  b'{"format":"modelseal-bundle","version":2}'])
def test_not_a_bundle(data: bytes) -> None:
    """JSON that is not a bundle object is malformed."""
    with pytest.raises(v.MalformedInputError):
        v.verify_bundle(data, KEYS)


@pytest.mark.parametrize("data", [
    b'{"format":"\xff"}',
    b'{"format":"modelseal-bundle","version":2,"checkpoint":"\xc3("}',
    BASE.replace(b'"format":"modelseal-bundle"', b'"format":"modelseal-bundle","x":"\xff"'),
    b'{"format":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"format":"modelseal-bundle","version":2,"entries":' + b"[" * 50_000 + b"}",
], ids=["utf8 in format", "utf8 in checkpoint", "utf8 in unknown field", "deep format",
        "deep entries"])
def test_hostile_json(data: bytes) -> None:
    """Invalid UTF-8 and deep nesting are MalformedInputError, not a crash."""
    with pytest.raises(v.MalformedInputError):
        v.verify_bundle(data, KEYS)


def test_encode_bundle_is_sorted_compact_json() -> None:
    """encode_bundle writes sorted, compact JSON with the documented fields."""
    doc = json.loads(BASE)
    assert list(doc) == sorted(doc) == ["at", "checkpoint", "consistency", "entries", "format",
                                        "from_trusted", "next", "version"]
    assert doc["format"] == "modelseal-bundle" and doc["version"] == 2
    assert BASE == json.dumps(doc, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
    assert msgspec.json.decode(BASE)["at"] == {"root": b64(ref.mth(LOG.entries[:MID_N])),
                                               "size": MID_N, "time": MID_T}


def test_bundle_type_error() -> None:
    """A str bundle is API misuse."""
    with pytest.raises(TypeError):
        v.verify_bundle(BASE.decode(), KEYS)  # type: ignore[arg-type]
