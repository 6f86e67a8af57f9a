"""`modelseal monitor` (ledger/monitor): a published directory or a log server checked
against the kept checkpoint. Rollback and fork are caught (hand-made forked stores sharing
one log key), tampered and missing tiles too, a rule violation in the entries, and the state
file never changes on a failure."""

from __future__ import annotations

import base64
import shutil
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings, strategies as st

import verifier as v
from ledger import ActorKey, Ledger
from ledger import _tiles
from ledger import _tree as tree
from ledger._publish import publish
from ledger._writer import sign_checkpoint
from ledger.client import ServerMisbehaviourError
from ledger.client._state import FileState, Kept, MemoryState
from ledger.monitor import (
    CheckpointSignatureError,
    DirSource,
    ForkDetectedError,
    MissingTileError,
    RollbackDetectedError,
    RuleViolationError,
    TileMismatchError,
    TrustedLog,
    UrlSource,
    run_once,
)
from ledger.monitor._run import describe
from ledger.monitor._sources import _entries_page
from tests.cli_support import cli, ok, refused
from tests.client_support import RealServer
from tests import monitor_support
from tests.ledger_support import T0, Clock, Keys
from tests.monitor_support import Log, grow, start_follow, write_log_dir
from verifier.cosignature import WitnessKey, cosignature_line, cosignature_message

# the shared log fixture (tests/monitor_support.py; pytest finds it by this name)
log = monitor_support.log


def check(source: Path | str, log: Log, state: MemoryState, **kw: object) -> object:
    src = DirSource(source) if isinstance(source, Path) else UrlSource(source, **kw)  # type: ignore[arg-type]
    try:
        return run_once(src, log.key, state)
    finally:
        src.close()


def forked_copy(log: Log, tmp_path: Path, name: str) -> Ledger:
    """A copy of the store as it is now, opened with the same keys on a later clock: writes
    to it make a second history of the same log (a fork)."""
    log.ledger.close()
    shutil.copytree(log.base / "store", tmp_path / name)
    log.ledger = Ledger.open(log.base / "store", log_key=log.keys.log, signer=log.keys.admin,
                             clock=Clock(T0 + timedelta(days=1)))
    return Ledger.open(tmp_path / name, log_key=log.keys.log, signer=log.keys.admin,
                       clock=Clock(T0 + timedelta(days=2)))


# -- a directory ------------------------------------------------------------------------------

def test_a_growing_directory_passes_and_the_state_follows(log: Log, tmp_path: Path) -> None:
    state = FileState(tmp_path / "state.json", log.key)
    grow(log.ledger, 100)
    out = log.publish(with_entries=True)
    first = run_once(DirSource(out), log.key, state)
    assert (first.size, first.previous, first.entries) == (100, None, 100)
    assert oct((tmp_path / "state.json").stat().st_mode & 0o777) == "0o600"
    grow(log.ledger, 700)
    log.publish(with_entries=True)
    second = run_once(DirSource(out), log.key, state)
    assert (second.size, second.previous, second.entries) == (700, 100, 700)
    kept = state.get()
    assert kept is not None and kept.size == 700


def test_a_rollback_is_caught_and_the_state_is_untouched(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 10)
    old = log.publish("old")
    grow(log.ledger, 20)
    new = log.publish("new")
    state = FileState(tmp_path / "state.json", log.key)
    run_once(DirSource(new), log.key, state)
    before = (tmp_path / "state.json").read_bytes()
    with pytest.raises(RollbackDetectedError, match="smaller than the kept size 20"):
        run_once(DirSource(old), log.key, state)
    assert (tmp_path / "state.json").read_bytes() == before


def test_an_older_checkpoint_of_the_same_tree_is_behind_not_a_rollback(log: Log,
                                                                      tmp_path: Path) -> None:
    """A log server shows its latest *cosigned* checkpoint, which may lag one the monitor
    kept: smaller, but a prefix of the kept tree by the tiles, it passes and keeps the state."""
    grow(log.ledger, 10)
    older = log.publish("older")
    grow(log.ledger, 20)
    new = log.publish("new", with_entries=True)
    state = FileState(tmp_path / "state.json", log.key)
    run_once(DirSource(new), log.key, state)
    before = (tmp_path / "state.json").read_bytes()
    shutil.copy(older / "checkpoint", new / "checkpoint")
    checked = run_once(DirSource(new), log.key, state)
    assert (checked.size, checked.previous, checked.behind, checked.entries) == (10, 20, True, 0)
    assert (tmp_path / "state.json").read_bytes() == before
    assert "behind the kept size 20" in describe(checked, "x", witnesses=0, threshold=0,
                                                 kept=True)


def test_an_older_checkpoint_of_another_tree_is_a_fork(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 5)
    other = forked_copy(log, tmp_path, "forked-store")
    grow(log.ledger, 20, "honest")
    grow(other, 10, "forked")
    forked = publish(other, tmp_path / "forked-pub")
    other.close()
    new = log.publish("new")
    state = FileState(tmp_path / "state.json", log.key)
    run_once(DirSource(new), log.key, state)
    before = (tmp_path / "state.json").read_bytes()
    shutil.copy(tmp_path / "forked-pub" / "checkpoint", new / "checkpoint")
    with pytest.raises(ForkDetectedError, match="not a prefix of the kept tree"):
        run_once(DirSource(new), log.key, state)
    assert (tmp_path / "state.json").read_bytes() == before
    assert forked is not None


def test_a_fork_at_the_same_size_and_a_larger_fork_are_caught(log: Log, tmp_path: Path
                                                               ) -> None:
    grow(log.ledger, 10)
    other = forked_copy(log, tmp_path, "forked-store")
    grow(log.ledger, 15, "honest")
    grow(other, 15, "forked")
    honest = log.publish("honest")
    publish(other, tmp_path / "forked")
    state = FileState(tmp_path / "state.json", log.key)
    run_once(DirSource(honest), log.key, state)
    before = (tmp_path / "state.json").read_bytes()
    with pytest.raises(ForkDetectedError, match="size 15 with root"):
        run_once(DirSource(tmp_path / "forked"), log.key, state)
    grow(other, 400, "forked")
    publish(other, tmp_path / "forked")
    with pytest.raises(ForkDetectedError, match="for the kept size 15"):
        run_once(DirSource(tmp_path / "forked"), log.key, state)
    assert (tmp_path / "state.json").read_bytes() == before
    other.close()


def test_tampered_and_missing_tiles(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 600)
    out = log.publish(with_entries=True)
    # a full tile: its hash no longer matches its entry in the tile above
    tile = out / "tile/0/001"
    good = tile.read_bytes()
    tile.write_bytes(good[:40] + bytes([good[40] ^ 1]) + good[41:])
    with pytest.raises(TileMismatchError, match="tile/0/001 does not hash"):
        run_once(DirSource(out), log.key, MemoryState())  # read to check the entries
    tile.write_bytes(good)
    # a partial tile: the root no longer matches
    part = out / "tile/0/002.p/88"
    data = part.read_bytes()
    part.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(TileMismatchError, match="the tiles give root"):
        run_once(DirSource(out), log.key, MemoryState())
    part.write_bytes(data[:-1])
    with pytest.raises(TileMismatchError, match="bytes, not"):
        run_once(DirSource(out), log.key, MemoryState())
    part.unlink()
    with pytest.raises(MissingTileError, match="002.p/88 is missing"):
        run_once(DirSource(out), log.key, MemoryState())


def test_a_full_tile_tampered_under_a_kept_tree_is_caught(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 100)
    out = log.publish()
    state = MemoryState()
    run_once(DirSource(out), log.key, state)
    grow(log.ledger, 600)
    log.publish()
    tile = out / "tile/0/000"
    good = tile.read_bytes()
    tile.write_bytes(bytes(32) + good[32:])  # read to recompute the kept root of size 100
    with pytest.raises(TileMismatchError, match="tile/0/000 does not hash"):
        run_once(DirSource(out), log.key, state)


def test_a_partial_tile_deleted_after_its_full_tile_exists_is_read_from_the_full_one(
        log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 100)
    out = log.publish(with_entries=True)
    state = MemoryState()
    run_once(DirSource(out), log.key, state)
    grow(log.ledger, 300)
    log.publish(with_entries=True)
    # what tlog-tiles allows: the old partial tile and bundle are gone, the full ones exist
    (out / "tile/0/000.p/100").unlink()
    (out / "tile/entries/000.p/100").unlink()
    src = DirSource(out)
    assert src.tile(0, 0, 100) == (out / "tile/0/000").read_bytes()[:3200]
    assert list(src.entries(100)) == [log.ledger.entry(i) for i in range(100)]
    run_once(src, log.key, state)


def test_signatures_and_witnesses(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 5)
    out = log.publish()
    other = Keys()
    with pytest.raises(CheckpointSignatureError, match="not signed by the log key"):
        run_once(DirSource(out), other.log.named(log.ledger.origin).key, MemoryState())
    # a witness cosigns the published checkpoint
    wkey = Ed25519PrivateKey.generate()
    witness = WitnessKey.from_public("witness.example/w1", wkey.public_key().public_bytes_raw())
    note = (out / "checkpoint").read_bytes()
    text = v.parse_note(note).text
    ts = 1_700_000_000
    line = cosignature_line(witness, ts, wkey.sign(cosignature_message(text, ts)))
    second = WitnessKey.from_public("witness.example/w2",
                                    Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    src = DirSource(out)
    with pytest.raises(CheckpointSignatureError, match="0 of the 1 required"):
        run_once(src, log.key, MemoryState(), witnesses=[witness], threshold=1)
    (out / "checkpoint").write_bytes(note + line)
    done = run_once(src, log.key, MemoryState(), witnesses=[witness, second], threshold=1)
    assert done.witnesses == 1
    with pytest.raises(CheckpointSignatureError, match="1 of the 2 required"):
        run_once(src, log.key, MemoryState(), witnesses=[witness, second], threshold=2)
    forged = note + cosignature_line(witness, ts + 1, wkey.sign(cosignature_message(text, ts)))
    (out / "checkpoint").write_bytes(forged)
    with pytest.raises(CheckpointSignatureError, match="does not verify"):
        run_once(src, log.key, MemoryState(), witnesses=[witness], threshold=1)


# -- a hand-made log whose entries break a rule -----------------------------------------------

def test_a_rule_violation_in_the_entries_is_caught(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    good = tmp_path / "good"
    write_log_dir(good, entries, log, cp.time)
    state = MemoryState()
    assert run_once(DirSource(good), log.key, state).entries == 8
    bad = tmp_path / "bad"
    write_log_dir(bad, entries + [entries[5]], log, cp.time + 1)  # entry 5 again, at 8
    with pytest.raises(RuleViolationError, match="entry 8: entry at position 8 says index 5"):
        run_once(DirSource(bad), log.key, state)
    assert state.get() is not None and state.get().size == 8  # type: ignore[union-attr]
    # without entries the same directory passes: only what can be checked is claimed
    shutil.rmtree(bad / "tile/entries")
    done = run_once(DirSource(bad), log.key, state)
    assert (done.size, done.entries) == (9, 0)


def test_an_entry_that_does_not_hash_to_its_leaf(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 8)
    out = log.publish(with_entries=True)
    bundle = out / "tile/entries/000.p/8"
    data = bundle.read_bytes()
    bundle.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(TileMismatchError, match="entry 7 does not hash"):
        run_once(DirSource(out), log.key, MemoryState())


def test_entries_back_dated_under_a_kept_checkpoint(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    early = tmp_path / "early"
    write_log_dir(early, entries[:6], log, cp.time)  # says 6 entries at a time after all 8
    state = MemoryState()
    run_once(DirSource(early), log.key, state)
    later = tmp_path / "later"
    write_log_dir(later, entries, log, cp.time + 1)
    with pytest.raises(RuleViolationError, match="entry 6 was recorded at or before"):
        run_once(DirSource(later), log.key, state)


# -- a server ---------------------------------------------------------------------------------

def test_a_server_url_with_and_without_a_readers_key(log: Log, tmp_path: Path) -> None:
    reader = ActorKey.generate("auditor")
    log.ledger.grant(reader.vkey, role="reader")
    grow(log.ledger, 300)
    state = FileState(tmp_path / "state.json", log.key)
    with RealServer(log.ledger) as server:
        src = UrlSource(server.url, timeout=10)
        first = run_once(src, log.key, state)
        assert (first.size, first.entries) == (300, 0)
        grow(log.ledger, 1300)
        src = UrlSource(server.url, actor=reader, timeout=10)
        second = run_once(src, log.key, state)
        assert (second.previous, second.size, second.entries) == (300, 1300, 1300)
        src.close()


def test_a_server_whose_store_was_forked_is_caught(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 10)
    other = forked_copy(log, tmp_path, "forked-store")
    grow(log.ledger, 12, "honest")
    grow(other, 30, "forked")
    state = FileState(tmp_path / "state.json", log.key)
    with RealServer(log.ledger) as server:
        run_once(UrlSource(server.url, timeout=10), log.key, state)
    before = (tmp_path / "state.json").read_bytes()
    with RealServer(other) as server:
        with pytest.raises(ForkDetectedError):
            run_once(UrlSource(server.url, timeout=10), log.key, state)
    assert (tmp_path / "state.json").read_bytes() == before
    other.close()


# -- the pure core ----------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=1500), st.data())
def test_roots_computed_from_tiles_are_the_trees_roots(size: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(min_value=1, max_value=size))
    leaves = [v.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    nodes: dict[tuple[int, int], bytes] = {}
    for i, h in enumerate(leaves):
        tree.append_leaf(lambda lv, ix: nodes[(lv, ix)],
                         lambda lv, ix, hh: nodes.__setitem__((lv, ix), hh), i, h)
    get = lambda lv, ix: nodes[(lv, ix)]  # noqa: E731
    keys = Keys()
    log_key = keys.log.named("example.com/x")
    note = sign_checkpoint(log_key, "example.com/x", size, v.root_from_leaf_hashes(leaves), 1)
    old_note = sign_checkpoint(log_key, "example.com/x", old,
                               v.root_from_leaf_hashes(leaves[:old]), 0)
    kept = Kept.of(v.Checkpoint.parse_note(old_note, [log_key.key]))
    trusted = TrustedLog(log_key.key, kept)
    trusted.check_checkpoint(note)
    with_entries = data.draw(st.booleans())
    needed = trusted.tiles_needed(entries=with_entries)
    tiles = {t: _tiles.tile_bytes(get, *t) for t in needed}
    trusted.check_tiles(tiles, entries=with_entries)
    if with_entries:  # the entries must be checked before the checkpoint is kept
        with pytest.raises(ValueError):
            trusted.updated()
    else:
        assert trusted.updated().size == size
    if needed:  # one tile fewer: reported missing, never a wrong answer
        gone = data.draw(st.sampled_from(needed))
        fewer = {t: b for t, b in tiles.items() if t != gone}
        again = TrustedLog(log_key.key, kept)
        again.check_checkpoint(note)
        with pytest.raises(MissingTileError):
            again.check_tiles(fewer, entries=with_entries)


def test_the_steps_run_in_order(log: Log) -> None:
    trusted = TrustedLog(log.key, None)
    with pytest.raises(ValueError):
        trusted.tiles_needed()
    with pytest.raises(ValueError):
        trusted.updated()
    trusted.check_checkpoint(log.ledger.checkpoint())
    with pytest.raises(ValueError):
        trusted.check_entries([])
    with pytest.raises(ValueError):
        trusted.check_checkpoint(log.ledger.checkpoint())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.builds(lambda xs, s: (b'{"start": %d, "entries": [%s]}'
                                          % (s, b",".join(b'"%s"' % x for x in xs))),
                           st.lists(st.sampled_from([b"AAAA", b"!!", b"QQ==", b"A"]), max_size=4),
                           st.integers(0, 2))))
def test_an_entries_page_parses_or_is_refused(body: bytes) -> None:
    try:
        found = _entries_page(body, 0)
    except ServerMisbehaviourError:
        return
    assert all(isinstance(e, bytes) for e in found)


def test_an_entries_page_is_decoded() -> None:
    body = b'{"start": 3, "entries": ["%s"]}' % base64.b64encode(b"abc")
    assert _entries_page(body, 3) == [b"abc"]
    with pytest.raises(ServerMisbehaviourError):
        _entries_page(body, 4)


# -- the command ------------------------------------------------------------------------------

def test_cli_exit_codes_and_one_line(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 10)
    old = log.publish("old")
    grow(log.ledger, 20)
    new = log.publish("new", with_entries=True)
    state = tmp_path / "state.json"
    run = ok(cli("monitor", new, "--key", log.vkey, "--state", state))
    assert run.out.count("\n") == 1 and run.out.startswith(f"OK {new} size 20: log signature")
    assert "20 entries hash to their leaves" in run.out and "first checkpoint kept" in run.out
    run = ok(cli("monitor", new, "--key", log.vkey, "--no-entries"))
    assert run.out.rstrip().endswith("no state kept; entries not checked")
    before = state.read_bytes()
    refused(cli("monitor", old, "--key", log.vkey, "--state", state), 11, "rollback")
    other = Keys().log.named(log.ledger.origin).key.vkey
    refused(cli("monitor", new, "--key", other), 12, "not signed by the log key")
    (new / "tile/0/000.p/20").unlink()
    refused(cli("monitor", new, "--key", log.vkey, "--state", state), 13, "missing")
    (new / "tile/0/000.p/20").write_bytes(bytes(640))
    refused(cli("monitor", new, "--key", log.vkey, "--state", state), 15, "root")
    assert state.read_bytes() == before
    refused(cli("monitor", tmp_path / "nowhere", "--key", log.vkey), 2, "not a directory")
    refused(cli("monitor", new, "--key", "nonsense"), 2, "--key is not")
    refused(cli("monitor", new, "--key", log.vkey, "--witness-threshold", "1"), 2, "more than")
    state.write_bytes(b"{}")
    refused(cli("monitor", old, "--key", log.vkey, "--state", state), 3, "state file")


def test_cli_fork_and_rule_codes(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 8)
    entries = [log.ledger.entry(i) for i in range(8)]
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    write_log_dir(tmp_path / "a", entries, log, cp.time)
    write_log_dir(tmp_path / "b", entries[:7] + [entries[6]], log, cp.time)
    state = tmp_path / "state.json"
    ok(cli("monitor", tmp_path / "a", "--key", log.vkey, "--state", state))
    refused(cli("monitor", tmp_path / "b", "--key", log.vkey, "--state", state), 10, "fork")
    refused(cli("monitor", tmp_path / "b", "--key", log.vkey), 14, "entry 7")


def test_cli_follow_polls_and_stops_on_ctrl_c(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 5)
    out = log.publish()
    proc = start_follow(out, log.vkey)
    try:
        lines = []
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while len(lines) < 2 and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        out_rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert all(line.startswith("OK ") for line in lines), lines
    assert proc.returncode == 0 and "stopped" in err and "Traceback" not in err + out_rest


def _cosign_latest(log: Log) -> WitnessKey:
    """A new witness ``witness.example/w1`` cosigns the log's latest checkpoint (5 s after
    its time); the cosignature is added to the ledger. Returns the witness's key."""
    note = log.ledger.checkpoint()
    wkey = Ed25519PrivateKey.generate()
    witness = WitnessKey.from_public("witness.example/w1", wkey.public_key().public_bytes_raw())
    cp = v.Checkpoint.parse_note(note, [log.key])
    assert cp.time is not None
    at = cp.time // 10**9 + 5
    text = v.parse_note(note).text
    log.ledger.add_cosignatures(
        note + cosignature_line(witness, at, wkey.sign(cosignature_message(text, at))),
        [witness])
    return witness


def test_cli_witnesses_on_a_published_cosigned_checkpoint(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 10)
    witness = _cosign_latest(log)
    grow(log.ledger, 20)
    out = log.publish()  # the cosigned checkpoint (size 10), not the latest
    second = WitnessKey.from_public("witness.example/w2",
                                    Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    run = ok(cli("monitor", out, "--key", log.vkey, "--witness", witness.vkey()))
    assert "size 10: log signature; 1 of 1 witnesses cosigned (threshold 1)" in run.out
    refused(cli("monitor", out, "--key", log.vkey, "--witness", witness.vkey(),
                "--witness", second.vkey()), 12, "1 of the 2 required")
    ok(cli("monitor", out, "--key", log.vkey, "--witness", witness.vkey(),
           "--witness", second.vkey(), "--witness-threshold", "1"))
    refused(cli("monitor", out, "--key", log.vkey, "--witness", log.vkey), 2, "--witness")


def test_a_published_directory_served_by_a_static_web_server(log: Log, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    grow(log.ledger, 300)
    out = log.publish()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(out))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        state = MemoryState()
        assert run_once(UrlSource(url, timeout=10), log.key, state).size == 300
        grow(log.ledger, 800)
        log.publish()
        assert run_once(UrlSource(url, timeout=10), log.key, state).previous == 300
        (out / "tile/1/000.p/3").unlink()
        with pytest.raises(MissingTileError, match="404"):
            run_once(UrlSource(url, timeout=10), log.key, state)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_a_tree_beyond_the_tile_levels_is_refused_before_any_read(log: Log) -> None:
    note = sign_checkpoint(log.keys.log.named(log.ledger.origin), log.ledger.origin, 1 << 48,
                           bytes(32), 0)
    trusted = TrustedLog(log.key, None)
    with pytest.raises(v.MalformedInputError, match="at most"):
        trusted.check_checkpoint(note)


def test_cli_server_url_reader_writer_and_unreachable(log: Log, tmp_path: Path) -> None:
    reader, writer = ActorKey.generate("auditor"), ActorKey.generate("pipeline")
    log.ledger.grant(reader.vkey, role="reader")
    log.ledger.grant(writer.vkey, role="writer")
    reader.save(tmp_path / "auditor.key")
    writer.save(tmp_path / "pipeline.key")
    grow(log.ledger, 30)
    with RealServer(log.ledger) as server:
        run = ok(cli("monitor", server.url, "--key", log.vkey, "--actor-key",
                     tmp_path / "auditor.key"))
        assert "30 entries hash to their leaves" in run.out
        refused(cli("monitor", server.url, "--key", log.vkey, "--actor-key",
                    tmp_path / "pipeline.key"), 1, "refused the signed read",
                hint="--actor-key must be")
        refused(cli("monitor", tmp_path, "--key", log.vkey, "--actor-key",
                    tmp_path / "auditor.key"), 2, "--actor-key reads entries from a server")
        url = server.url
    refused(cli("monitor", url, "--key", log.vkey, "--timeout", "1"), 4, "cannot reach",
            hint="check SOURCE's URL")


def test_cli_witnesses_through_a_server(log: Log, tmp_path: Path) -> None:
    grow(log.ledger, 40)
    witness = _cosign_latest(log)
    grow(log.ledger, 50)
    state = tmp_path / "state.json"
    with RealServer(log.ledger) as server:
        run = ok(cli("monitor", server.url, "--key", log.vkey, "--witness", witness.vkey(),
                     "--state", state))
        assert "size 40: log signature; 1 of 1 witnesses cosigned (threshold 1)" in run.out
        assert "first checkpoint kept" in run.out


def test_a_reader_is_asked_only_for_the_tiles_the_check_needs(log: Log) -> None:
    """With a TileReader, a signed size far beyond the source's tiles stops at the first
    missing tile: nothing is listed ahead (entries or not)."""
    grow(log.ledger, 5)
    cp = v.Checkpoint.parse_note(log.ledger.checkpoint(), [log.key])
    assert cp.time is not None
    note = sign_checkpoint(log.keys.log.named(log.ledger.origin), log.ledger.origin, 2**44,
                           bytes(32), cp.time)
    for entries in (False, True):
        asked: list[tuple[int, int, int]] = []

        def read(tid: tuple[int, int, int]) -> bytes:
            asked.append(tid)
            raise MissingTileError(f"{tid} is missing")

        trusted = TrustedLog(log.key, None)
        trusted.check_checkpoint(note)
        with pytest.raises(MissingTileError):
            trusted.check_tiles(read, entries=entries)
        assert len(asked) == 1


def test_entries_are_checked_against_tiles_read_one_at_a_time(log: Log) -> None:
    """A reader gives the same verdict as the listed tiles, and is asked once per tile."""
    grow(log.ledger, 700)
    note = log.ledger.checkpoint()
    get = log.ledger.tile
    asked: list[tuple[int, int, int]] = []

    def read(tid: tuple[int, int, int]) -> bytes:
        asked.append(tid)
        data = get(*tid)
        assert data is not None
        return data

    trusted = TrustedLog(log.key, None)
    trusted.check_checkpoint(note)
    trusted.check_tiles(read, entries=True)
    trusted.check_entries(log.ledger.entry(i) for i in range(700))
    assert trusted.updated().size == 700
    assert len(asked) == len(set(asked)) and {t for t in asked if t[0] == 0} == {
        (0, 0, 256), (0, 1, 256), (0, 2, 188)}
    bad = TrustedLog(log.key, None)
    bad.check_checkpoint(note)
    bad.check_tiles(read, entries=True)
    entries = [log.ledger.entry(i) for i in range(700)]
    entries[300] = entries[299]
    with pytest.raises(TileMismatchError):
        bad.check_entries(entries)


def test_cli_a_witness_given_twice_or_the_logs_own_key_is_usage(log: Log) -> None:
    grow(log.ledger, 3)
    out = log.publish()
    w = WitnessKey.from_public("w.example/w", Ed25519PrivateKey.generate().public_key()
                               .public_bytes_raw())
    refused(cli("monitor", out, "--key", log.vkey, "--witness", w.vkey(), "--witness",
                w.vkey()), 2, "share one public key")
    own = WitnessKey.from_public("w.example/log", log.key.public_key)
    refused(cli("monitor", out, "--key", log.vkey, "--witness", own.vkey()), 2,
            "the log's own key")
