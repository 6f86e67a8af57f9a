"""Issue 11, the ledger's side of the service: receipts (``Ledger.add``), hash tiles,
and bundles taken in pieces."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier as v
from ledger import ActorKey, Ledger, sign_statement
from ledger.errors import ArgumentError, UnknownEntryError
from ledger._tiles import available, parse_tile_path, tile_path
from tests.ledger_support import Clock, Keys, make_ledger, register


@pytest.fixture
def led(path: Path, keys: Keys, clock: Clock) -> Any:
    ledger = make_ledger(path, keys, clock)
    ledger.signer = keys.admin
    register(ledger, "m0")
    yield ledger
    ledger.close()


def _signed(led: Ledger, actor: ActorKey, event: str = "evaluated") -> bytes:
    return sign_statement(actor, led.origin, "event", log_id=led.log_id,
                          claimed_at=v.from_ns(led._now_ns()), model="m0",
                          event_type=event, payload={"n": 1})


# -- receipts ----------------------------------------------------------------------------

def test_add_answers_a_receipt_that_verifies_offline(led: Ledger, keys: Keys) -> None:
    data = _signed(led, keys.admin)
    r = led.add(data)
    assert r.created and r.index == led.size - 1
    p = v.parse_entry(r.entry)
    assert p.snapshot_hash == r.snapshot_hash and p.entry.index == r.index
    assert v.signed_statement_bytes(p.statement_bytes, p.key_id, p.sig) == data
    # the proof is under the checkpoint that commit signed: the latest one
    assert r.proof.checkpoint == led.checkpoint() and r.proof.size == led.size
    cp = v.verify_tlog_proof(r.proof.to_text(), r.entry, keys.trusted)
    assert cp.size == r.index + 1


def test_the_same_statement_again_gives_the_same_receipt(led: Ledger, keys: Keys) -> None:
    data = _signed(led, keys.admin)
    first = led.add(data)
    led.record("m0", "later")  # the log grows; the receipt stays the first one
    again = led.add(data)
    assert not again.created
    assert (again.index, again.entry, again.proof) == (first.index, first.entry, first.proof)


def test_add_refuses_like_submit_and_stores_nothing(led: Ledger, keys: Keys) -> None:
    stranger = ActorKey.generate("stranger")
    before = led.size
    with pytest.raises(v.AuthorizationError):
        led.add(_signed(led, stranger))
    with pytest.raises(v.MalformedInputError):
        led.add(b"{}")
    with pytest.raises(TypeError):
        led.add("text")  # type: ignore[arg-type]
    assert led.size == before


def test_add_is_refused_inside_a_batch(led: Ledger, keys: Keys) -> None:
    with led.batch():
        with pytest.raises(ValueError, match="outside a batch"):
            led.add(_signed(led, keys.admin))


def test_receipts_of_a_group_share_its_checkpoint(tmp_path: Path) -> None:
    keys = Keys()
    led = Ledger.create(tmp_path / "s", origin="example.org/r", log_key=keys.log,
                        admin=keys.admin)
    led.signer = keys.admin
    register(led, "m0")
    out: list[Any] = []
    go = threading.Barrier(8)

    def work() -> None:
        go.wait(10)
        out.append(led.add(_signed(led, keys.admin)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == 8
    for r in out:
        cp = v.verify_tlog_proof(r.proof.to_text(), r.entry, keys.trusted)
        assert r.index < cp.size
        # the first checkpoint holding it: no stored checkpoint between index and its size
        assert led.receipt(r.index).proof == r.proof
    led.close()


def test_receipt_of_a_missing_index(led: Ledger) -> None:
    for bad in (-1, led.size):
        with pytest.raises(UnknownEntryError):
            led.receipt(bad)
    with pytest.raises(TypeError):
        led.receipt(True)
    with pytest.raises(ArgumentError):
        led.receipt("0")


# -- tiles -------------------------------------------------------------------------------

@given(st.integers(0, 5), st.integers(0, 2**40), st.integers(1, 256))
def test_tile_paths_round_trip(level: int, index: int, width: int) -> None:
    path = tile_path(level, index, width)
    assert parse_tile_path(path) == (level, index, width)


def test_tile_path_examples() -> None:
    assert tile_path(0, 1234067) == "0/x001/x234/067"
    assert tile_path(1, 0, 5) == "1/000.p/5"
    assert tile_path(2, 1000) == "2/x001/000"


@pytest.mark.parametrize("bad", [
    "", "0", "6/000", "01/000", "0/0", "0/0000", "0/x000", "0/001/002", "0/x001/x002",
    "0/000.p/0", "0/000.p/256", "0/000.p/07", "0/000.p/", "0/000.p", "0/x000/001",
    "0/000/", "-1/000", "0/abc", "0/000.p/5/6", "0/ 000", "0/x00/1",
])
def test_tile_paths_refused(bad: str) -> None:
    with pytest.raises(v.MalformedInputError):
        parse_tile_path(bad)


@given(st.text(max_size=40))
def test_tile_path_parser_raises_only_its_error(text: str) -> None:
    try:
        level, index, width = parse_tile_path(text)
    except v.MalformedInputError:
        return
    assert tile_path(level, index, width) == text


def test_tiles_hold_the_subtree_hashes(path: Path, keys: Keys, clock: Clock) -> None:
    led = make_ledger(path, keys, clock)
    led.signer = keys.admin
    register(led, "m0")
    with led.batch():
        for i in range(600):
            led.record("m0", "evaluated", {"i": i})
    n = led.size
    leaves = [v.leaf_hash(led.entry(i)) for i in range(n)]
    full = led.tile(0, 0, 256)
    assert full == b"".join(leaves[:256])
    assert led.tile(0, 2, n - 512) == b"".join(leaves[512:n])
    assert led.tile(0, 2, n - 511) is None and led.tile(0, 3, 1) is None
    level1 = led.tile(1, 0, 2)
    assert level1 == (v.root_from_leaf_hashes(leaves[:256])
                      + v.root_from_leaf_hashes(leaves[256:512]))
    assert led.tile(1, 0, 3) is None
    assert available(0, 0, 256, 256) and not available(0, 0, 256, 255)
    led.close()


# -- bundles in pieces -------------------------------------------------------------------

_hashes = st.lists(st.binary(min_size=32, max_size=32), max_size=4)


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=60), max_size=6), _hashes, _hashes,
       st.one_of(st.none(), st.binary(min_size=1, max_size=20)),
       st.one_of(st.none(), st.tuples(st.integers(1, 99), _hashes)),
       st.text(max_size=30))
def test_bundle_chunks_join_to_encode_bundle(entries: list[bytes], consistency: list[bytes],
                                             proof: list[bytes], nxt: bytes | None,
                                             trusted: tuple[int, list[bytes]] | None,
                                             note: str) -> None:
    args: dict[str, Any] = dict(
        checkpoint=(note + '"entries":[]').encode(), size=len(entries), time=7,
        root=b"\x01" * 32, consistency=consistency, next_entry=nxt, next_proof=proof,
        from_trusted=trusted)
    whole = v.encode_bundle(entries=entries, **args)
    assert b"".join(v.bundle_chunks(entries=iter(entries), **args)) == whole
    import base64
    import json
    assert [base64.b64decode(e) for e in json.loads(whole)["entries"]] == entries


def test_iter_bundle_equals_export_and_reads_entries_lazily(led: Ledger, keys: Keys) -> None:
    for i in range(5):
        led.record("m0", "evaluated", {"i": i})
    whole = led.export_bundle()
    pieces = led.iter_bundle()
    assert b"".join(pieces) == whole
    v.verify_bundle(whole, keys.trusted)
    # refused arguments are refused before the first piece is asked for
    with pytest.raises(ValueError):
        led.iter_bundle(size=led.size + 1)
    # an iterator dropped before its first piece holds no read transaction
    led.iter_bundle()
    led.record("m0", "after")
