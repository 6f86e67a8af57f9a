"""`modelseal import model-ledger`: databases made by model-ledger 0.7.13
(tests/gen_model_ledger_data.py) and hostile files."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import ActorKey, Ledger, LogKey
from ledger._mlsource import NotModelLedgerError, Source, parse_time
from ledger.mlimport import (
    LOST, import_model_ledger, imported_record, map_event_type, original_note, statement_id,
)
from verifier import AuthorizationError, make_scope, parse_entry
from verifier.names import EVENT_TYPE_RE

from .cli_support import cli, init_store, ok, refused

DATA = Path(__file__).resolve().parent / "data" / "model_ledger"
ORIGIN = "example.com/models"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A copy of small.db (the import never writes to it; the copy keeps that honest)."""
    return Path(shutil.copy(DATA / "small.db", tmp_path / "inventory.db"))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[tuple[Ledger, ActorKey]]:
    admin = ActorKey.generate("risk-admin")
    led = Ledger.create(tmp_path / "store", origin=ORIGIN, log_key=LogKey.generate(ORIGIN),
                        admin=admin)
    importer = ActorKey.generate("importer")
    led.grant(importer.vkey, role="writer")
    yield led, importer
    led.close()


def test_import_writes_every_kind_in_order_with_originals(log: tuple[Ledger, ActorKey],
                                                          db: Path) -> None:
    led, importer = log
    before = db.read_bytes()
    report = import_model_ledger(led, db, signer=importer)
    assert db.read_bytes() == before  # read-only
    assert report.written == {"register": 4, "event": 11, "member_add": 2, "member_remove": 1,
                              "tag": 2}
    assert report.refused == [] and report.already == 0 and report.rows == 17
    assert report.renamed == {"member_added": "ml_member_added",
                              "member_removed": "ml_member_removed",
                              "Deployed To Prod!": "ml_deployed_to_prod"}
    hist = led.history("fraud_scoring")
    assert [s.event_type for s in hist] == ["registered", "has_dependent", "tag_moved",
                                            "retrained", "validated"]
    reg = imported_record(hist[0].payload, registered=True)
    assert reg is not None and reg["at"] == "2025-03-01T09:00:00Z" and reg["actor"] == "alice"
    assert hist[0].payload["metadata"]["framework"] == "sklearn"
    retrained = hist[3]
    assert retrained.payload["accuracy"] == 0.91
    rec = imported_record(retrained.payload)
    assert rec is not None and rec["at"] == "2025-03-02T09:00:00Z" and rec["actor"] == "ci-bot"
    assert rec["hash"] == "9b43f4b3965eec8fd83a83c42444f772"
    # the log's time is the import's, never the original
    assert retrained.timestamp.year >= 2026 and retrained.actor == "importer"
    assert original_note(rec) == "imported; originally at 2025-03-02T09:00:00Z by ci-bot"
    # the tag points at the imported copy of the snapshot model-ledger's tag names
    assert led.tags("fraud_scoring")["production"].target == hist[1].snapshot_hash
    # a payload that had its own "imported" key keeps it beside the record
    clash = led.history("churn_model")[-1]
    assert clash.event_type == "ml_deployed_to_prod"
    assert clash.payload["imported"]["payload_imported"] == "clash"
    assert clash.payload["imported"]["event_type"] == "Deployed To Prod!"
    now = led.inventory_at()
    assert now["churn_model"].status == "deprecated"
    assert now["feature_pipeline"].status == "retired"
    assert led.members("scoring_suite") == {"fraud_scoring": None}
    assert led.audit() == led.size


def test_import_twice_appends_nothing(log: tuple[Ledger, ActorKey], db: Path) -> None:
    led, importer = log
    import_model_ledger(led, db, signer=importer)
    size, cp = led.size, led.checkpoint()
    again = import_model_ledger(led, db, signer=importer)
    assert again.written == {} and again.already == 20 and again.refused == []
    assert led.size == size and led.checkpoint() == cp


def test_new_rows_of_a_later_copy_are_the_only_ones_written(log: tuple[Ledger, ActorKey],
                                                            db: Path) -> None:
    led, importer = log
    import_model_ledger(led, db, signer=importer)
    con = sqlite3.connect(db)
    mh = con.execute("SELECT model_hash FROM models WHERE name = 'fraud_scoring'").fetchone()[0]
    con.execute("INSERT INTO snapshots VALUES ('ffff0000ffff0000ffff0000ffff0000', ?, NULL, "
                "'2025-04-01T00:00:00+00:00', 'ci-bot', 'retrained', NULL, "
                "'{\"accuracy\": 0.95}', NULL)", (mh,))
    con.commit()
    con.close()
    again = import_model_ledger(led, db, signer=importer)
    assert again.written == {"event": 1}
    assert led.history("fraud_scoring")[-1].payload["accuracy"] == 0.95


def test_chunks_commit_whole_and_an_interrupted_import_resumes(
        log: tuple[Ledger, ActorKey], db: Path) -> None:
    led, importer = log
    start = led.size

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    # progress is reported every 100 rows and at the end: small.db has 17, so the
    # interruption comes after every row was handled but before the last chunk commits
    with pytest.raises(KeyboardInterrupt):
        import_model_ledger(led, db, signer=importer, chunk=3, progress=stop)
    written = led.size - start
    assert written % 3 == 0 and 0 < written < 20  # whole chunks only
    rest = import_model_ledger(led, db, signer=importer, chunk=3)
    assert rest.already == written and sum(rest.written.values()) == 20 - written
    assert led.audit() == led.size


def test_dry_run_writes_nothing_but_checks_the_rules(log: tuple[Ledger, ActorKey],
                                                     db: Path) -> None:
    led, importer = log
    size, cp = led.size, led.checkpoint()
    report = import_model_ledger(led, db, signer=importer, dry_run=True, chunk=2)
    assert report.dry_run and sum(report.written.values()) == 20
    assert led.size == size and led.checkpoint() == cp


def test_names_outside_the_profile_and_huge_text_are_reported(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    path = Path(shutil.copy(DATA / "odd_names.db", tmp_path / "odd.db"))
    report = import_model_ledger(led, path, signer=importer)
    assert report.written == {"register": 1, "event": 1}
    whats = " | ".join(f"{w}: {y}" for w, y in report.refused)
    assert "'bad\\x1bname'" in whats and "U+202E" in whats
    assert "70,012 characters" in whats
    assert set(led.inventory_at()) == {"good_model"}


def test_a_key_that_may_not_write_is_refused_first(log: tuple[Ledger, ActorKey],
                                                   db: Path) -> None:
    led, _ = log
    size = led.size
    with pytest.raises(AuthorizationError):
        import_model_ledger(led, db, signer=ActorKey.generate("stranger"))
    assert led.size == size


def _hostile(tmp_path: Path) -> dict[str, Path]:
    files = {}
    files["not sqlite"] = tmp_path / "random.db"
    files["not sqlite"].write_bytes(b"\x00garbage" * 500)
    files["truncated"] = tmp_path / "truncated.db"
    files["truncated"].write_bytes((DATA / "small.db").read_bytes()[:5000])
    files["empty sqlite"] = tmp_path / "empty.db"
    sqlite3.connect(files["empty sqlite"]).execute("CREATE TABLE t (x)").connection.close()
    files["wrong schema"] = tmp_path / "wrong.db"
    con = sqlite3.connect(files["wrong schema"])
    con.executescript("CREATE TABLE models (name TEXT, weights BLOB);"
                      "CREATE TABLE snapshots (x); CREATE TABLE tags (y);")
    con.close()
    files["extra column"] = Path(shutil.copy(DATA / "small.db", tmp_path / "extra.db"))
    con = sqlite3.connect(files["extra column"])
    con.execute("ALTER TABLE snapshots ADD COLUMN signature TEXT")
    con.commit()
    con.close()
    files["directory"] = tmp_path / "adir"
    files["directory"].mkdir()
    files["missing"] = tmp_path / "missing.db"
    return files


def test_hostile_files_are_refused_and_nothing_is_written(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    size = led.size
    for what, path in _hostile(tmp_path).items():
        with pytest.raises(NotModelLedgerError):
            import_model_ledger(led, path, signer=importer)
        assert led.size == size, what


def test_cli_import_reports_and_history_shows_the_original_time(tmp_path: Path,
                                                                db: Path) -> None:
    store = init_store(tmp_path)
    dry = ok(store.run("import", "model-ledger", db, "--dry-run"))
    assert "would write 11 event, 2 member_add, 1 member_remove, 4 register, 2 tag" in dry.out
    assert "dry run: nothing was written" in dry.out
    state = store.state()
    run = ok(store.run("import", "model-ledger", db))
    assert "wrote 11 event, 2 member_add, 1 member_remove, 4 register, 2 tag" in run.out
    assert LOST in run.out.replace("\n", " ")
    assert store.state() != state
    again = ok(store.run("import", "model-ledger", db, "--json")).json()
    assert again["written"] == {} and again["already_imported"] == 20
    hist = ok(store.run("history", "fraud_scoring")).out
    assert "imported; originally at 2025-03-01T09:00:00Z by alice" in hist
    assert "imported; originally at 2025-03-02T09:00:00Z" in hist
    inv = ok(store.run("inventory")).out
    assert "imported; originally registered at 2025-03-01T09:0" in inv


def test_cli_hostile_files_exit_3_and_write_nothing(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    state = store.state()
    for what, path in _hostile(tmp_path).items():
        refused(store.run("import", "model-ledger", path), 3, hint="model-ledger SQLite")
        assert store.state() == state, what


def test_cli_import_needs_a_local_store(tmp_path: Path, db: Path) -> None:
    run = cli("--server", "http://127.0.0.1:9", "--log-vkey", "x", "import", "model-ledger", db)
    refused(run, 2, "works on a local store")


# -- parsers: property tests -------------------------------------------------------------

@given(st.text(max_size=100))
def test_map_event_type_gives_a_valid_unreserved_type(original: str) -> None:
    mapped = map_event_type(original)
    assert EVENT_TYPE_RE.fullmatch(mapped)
    assert mapped not in {"registered", "tag_moved", "member_added", "member_removed",
                          "updated"}
    assert map_event_type(original) == mapped  # deterministic
    if EVENT_TYPE_RE.fullmatch(original) and mapped == original:
        assert original not in {"registered", "updated"}


@given(st.text(max_size=60))
def test_parse_time_is_utc_or_none(text: str) -> None:
    when = parse_time(text)
    offset = None if when is None else when.utcoffset()
    assert when is None or offset is not None and offset.total_seconds() == 0


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_parse_time_reads_what_model_ledger_writes(when: datetime) -> None:
    assert parse_time(when.isoformat()) == when


@given(st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_statement_ids_are_valid_and_distinct(parts: list[str]) -> None:
    sid = statement_id(*parts)
    assert len(sid) == 51 and sid.startswith("ml-")
    assert statement_id(*parts, "x") != sid


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 45055), st.integers(0, 255)), min_size=1,
                max_size=8))
def test_a_damaged_database_is_read_or_refused_never_crashes(
        tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    data = bytearray((DATA / "small.db").read_bytes())
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    path = tmp_path / "damaged.db"
    path.write_bytes(bytes(data))
    try:
        with Source(path) as source:
            source.models()
            for row in source.order():
                if row.kind == "snapshot":
                    source.snapshot(row.rowid)
                else:
                    source.tag(row.rowid)
    except NotModelLedgerError:
        pass


def test_first_entry_is_registration_with_deterministic_id(log: tuple[Ledger, ActorKey],
                                                           db: Path) -> None:
    led, importer = log
    import_model_ledger(led, db, signer=importer)
    first = led.history("fraud_scoring")[0]
    assert first.statement_id == statement_id("register", "8a34cfa14e75588925c8590f9301db95")
    index = led.statement_entry(first.statement_id)
    assert index is not None
    assert parse_entry(led.entry(index)).snapshot_hash == first.snapshot_hash
    assert led.statement_entry("no-such-statement-id") is None


def _with_events(db: Path, n: int) -> Path:
    """``db`` with ``n`` more model-ledger snapshots of churn_model (as record() writes)."""
    con = sqlite3.connect(db)
    mh = con.execute("SELECT model_hash FROM models WHERE name = 'churn_model'").fetchone()[0]
    con.executemany(
        "INSERT INTO snapshots VALUES (?, ?, NULL, ?, 'ci', 'evaluated', NULL, ?, NULL)",
        [(f"{i:032x}", mh, f"2025-06-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}+00:00",
          f'{{"i": {i}}}') for i in range(n)])
    con.commit()
    con.close()
    return db


def test_a_large_import_commits_chunk_by_chunk(log: tuple[Ledger, ActorKey], db: Path) -> None:
    led, importer = log
    _with_events(db, 2500)
    start = led.size
    seen: list[int] = []

    def stop_at_1500(done: int, total: int) -> None:
        seen.append(done)
        assert total == 2517
        if done == 1500:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_model_ledger(led, db, signer=importer, progress=stop_at_1500)
    assert seen == list(range(100, 1501, 100))
    assert led.size - start == 1000  # the first chunk only: the second was not whole
    led.audit()
    rest = import_model_ledger(led, db, signer=importer)
    assert rest.already == 1000 and sum(rest.written.values()) == 2520 - 1000
    assert len(led.history("churn_model")) == 2500 + 4


_SCHEMA = """
CREATE TABLE models (model_hash TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, owner TEXT NOT NULL,
  model_type TEXT NOT NULL, model_origin TEXT DEFAULT 'internal', tier TEXT NOT NULL,
  purpose TEXT, status TEXT DEFAULT 'active', created_at TEXT NOT NULL, last_seen TEXT,
  metadata TEXT);
CREATE TABLE snapshots (snapshot_hash TEXT PRIMARY KEY, model_hash TEXT NOT NULL,
  parent_hash TEXT, timestamp TEXT NOT NULL, actor TEXT NOT NULL, event_type TEXT NOT NULL,
  source TEXT, payload TEXT, tags TEXT);
CREATE TABLE tags (model_hash TEXT NOT NULL, name TEXT NOT NULL, snapshot_hash TEXT NOT NULL,
  updated_at TEXT NOT NULL, PRIMARY KEY (model_hash, name));
"""
_texts = st.one_of(st.sampled_from(["a", "risk-team", "high", "retired", "active", "x y"]),
                   st.text(max_size=12))
_times = st.one_of(st.datetimes(timezones=st.just(timezone.utc)).map(datetime.isoformat),
                   st.text(max_size=10))
_payloads = st.one_of(st.none(), st.just("{}"), st.just('{"imported": 1, "a": [1.5]}'),
                      st.just("[1]"), st.just("NaN"), st.just('{"x": NaN}'),
                      st.text(max_size=10))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(models=st.lists(st.tuples(_texts, _texts, _texts, _times, _payloads), min_size=1,
                       max_size=4, unique_by=lambda m: m[0]),
       snaps=st.lists(st.tuples(st.integers(0, 3), _texts, _times, _payloads, _texts),
                      max_size=8),
       tags=st.lists(st.tuples(st.integers(0, 3), _texts, st.integers(0, 7), _times),
                     max_size=3))
def test_any_model_ledger_rows_are_imported_or_reported(
        tmp_path_factory: pytest.TempPathFactory,
        models: list[tuple[str, str, str, str, str | None]],
        snaps: list[tuple[int, str, str, str | None, str]],
        tags: list[tuple[int, str, int, str]]) -> None:
    base = tmp_path_factory.mktemp("prop")
    con = sqlite3.connect(base / "ml.db")
    con.executescript(_SCHEMA)
    for i, (name, owner, status, created, meta) in enumerate(models):
        con.execute("INSERT INTO models VALUES (?, ?, ?, 'ml_model', 'internal', 'high', "
                    "'p', ?, ?, NULL, ?)", (f"m{i}", name, owner, status, created, meta))
    for j, (m, etype, when, payload, actor) in enumerate(snaps):
        con.execute("INSERT INTO snapshots VALUES (?, ?, NULL, ?, ?, ?, NULL, ?, NULL)",
                    (f"s{j}", f"m{m}", when, actor, etype, payload))
    for m, name, j, when in tags:
        con.execute("INSERT OR IGNORE INTO tags VALUES (?, ?, ?, ?)", (f"m{m}", name, f"s{j}",
                                                                       when))
    con.commit()
    con.close()
    admin = ActorKey.generate("risk-admin")
    with Ledger.create(base / "s", origin=ORIGIN, log_key=LogKey.generate(ORIGIN),
                       admin=admin) as led:
        report = import_model_ledger(led, base / "ml.db", signer=admin)
        assert led.size == 1 + sum(report.written.values())
        assert report.rows == len(snaps) + len({(m, n) for m, n, _, _ in tags})
        for name in led.inventory_at():
            for snap in led.history(name):
                if snap.op in ("register", "event"):
                    record = imported_record(snap.payload, snap.op == "register")
                    assert record is not None and record["hash"]
        again = import_model_ledger(led, base / "ml.db", signer=admin)
        assert again.written == {} and led.size == 1 + sum(report.written.values())


# -- one state of the file, duplicates, unreadable times, scopes ----------------------------

_LOOSE = (_SCHEMA.replace(", PRIMARY KEY (model_hash, name)", "").replace(" PRIMARY KEY", "")
          .replace(" UNIQUE", "").replace(" NOT NULL", ""))
"""model-ledger's tables without keys or constraints (a hand-made file)."""


def _loose_copy(tmp_path: Path, name: str) -> Path:
    """small.db's rows in tables without keys (so rows may repeat), in WAL mode."""
    path = tmp_path / name
    src, dst = sqlite3.connect(DATA / "small.db"), sqlite3.connect(path)
    dst.executescript(_LOOSE)
    for t in ("models", "snapshots", "tags"):
        rows = src.execute(f"SELECT * FROM {t}").fetchall()
        dst.executemany(f"INSERT INTO {t} VALUES ({','.join('?' * len(rows[0]))})", rows)
    dst.commit()
    dst.execute("PRAGMA journal_mode=WAL")
    src.close()
    dst.close()
    return path


def test_the_source_reads_one_state_from_the_schema_check_to_the_last_row(
        tmp_path: Path) -> None:
    """Rows committed after the Source opened are not seen by any of its reads (count,
    models, order, a row by rowid), and a row deleted since is still read."""
    db = _loose_copy(tmp_path, "live.db")
    writer = sqlite3.connect(db)
    try:
        with Source(db) as source:
            writer.execute("INSERT INTO models SELECT 'new' || model_hash, 'new_' || name, "
                           "owner, model_type, model_origin, tier, purpose, status, "
                           "created_at, last_seen, metadata FROM models")
            writer.execute("INSERT INTO snapshots SELECT 'n' || snapshot_hash, model_hash, "
                           "parent_hash, timestamp, actor, event_type, source, payload, tags "
                           "FROM snapshots")
            writer.execute("DELETE FROM snapshots WHERE rowid = 1")
            writer.commit()
            assert len(source.models()) == 4
            assert source.count() == 17
            rows = list(source.order())
            assert len(rows) == 17
            assert source.snapshot(1).event_type == "registered"
    finally:
        writer.close()


def test_a_repeated_tag_row_is_reported_not_counted_as_already_imported(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    db = _loose_copy(tmp_path, "dup.db")
    con = sqlite3.connect(db)
    con.execute("INSERT INTO tags SELECT * FROM tags WHERE rowid = 1")
    con.commit()
    con.close()
    report = import_model_ledger(led, db, signer=importer)
    assert report.already == 0 and report.written["tag"] == 2
    assert [why for _, why in report.refused] == [
        "another row of the database gives the same statement: a duplicate row"]
    again = import_model_ledger(led, db, signer=importer)
    assert again.written == {} and again.already == sum(report.written.values())
    assert len(again.refused) == 1


def test_an_unreadable_registration_time_registers_first_and_is_listed(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    db = _loose_copy(tmp_path, "untimed.db")
    con = sqlite3.connect(db)
    con.execute("UPDATE snapshots SET timestamp = 'long ago' WHERE event_type = 'registered' "
                "AND model_hash = '8a34cfa14e75588925c8590f9301db95'")
    con.execute("UPDATE tags SET updated_at = NULL WHERE name = 'production' "
                "AND model_hash = '8a34cfa14e75588925c8590f9301db95'")
    con.commit()
    con.close()
    report = import_model_ledger(led, db, signer=importer)
    assert report.refused == []
    assert report.untimed == ["snapshot 7d26a833988b0b62081e4c1f3c02cb9c at long ago",
                              "tag 'production' at None"]
    assert report.to_json()["time_unreadable"] == report.untimed
    hist = led.history("fraud_scoring")
    assert hist[0].op == "register"
    record = imported_record(hist[0].payload, registered=True)
    assert record is not None and record["at"] == "long ago"
    assert hist[-1].op == "tag"  # the tag row, with no time, is written last


def test_cli_lists_rows_whose_time_is_unreadable(tmp_path: Path, db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("UPDATE snapshots SET timestamp = 'soon' WHERE event_type = 'deployed'")
    con.commit()
    con.close()
    store = init_store(tmp_path)
    run = ok(cli("import", "model-ledger", db, env=store.env))
    assert "time unreadable (1)" in run.out and "3f0389a29af1c9f7cfaf6ffe41d3d33d" in run.out


@pytest.mark.parametrize("scope", [dict(ops=["event"]), dict(ops=["register", "tag"]),
                                   dict(ops=["event", "register"], models=[]),
                                   dict(ops=["event", "register"], tiers=[]),
                                   dict(ops=["event", "register"], event_types=[])])
def test_a_scope_without_what_every_import_writes_is_refused_before_reading(
        log: tuple[Ledger, ActorKey], tmp_path: Path, scope: dict[str, list[str]]) -> None:
    led, _ = log
    boxed = ActorKey.generate("boxed")
    led.grant(boxed.vkey, role="writer", scope=make_scope(**scope))
    size = led.size
    with pytest.raises(AuthorizationError, match="every import writes"):
        import_model_ledger(led, tmp_path / "no-such.db", signer=boxed)  # never opened
    assert led.size == size


def test_a_narrow_scope_imports_what_it_allows_and_reports_the_rest(
        log: tuple[Ledger, ActorKey], db: Path) -> None:
    led, _ = log
    narrow = ActorKey.generate("narrow")
    led.grant(narrow.vkey, role="writer",
              scope=make_scope(ops=["event", "register"], models=["fraud_*"]))
    report = import_model_ledger(led, db, signer=narrow)
    assert list(led.inventory_at()) == ["fraud_scoring"]
    assert report.refused and report.written["register"] == 1


_offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=_offsets).map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),  # no offset: taken as UTC
    st.text(max_size=12), st.none(), st.binary(max_size=8),
    st.integers(-2**63, 2**63 - 1)), max_size=12))
def test_order_is_parse_time_order_then_unreadable_rows_last(times: list[object]) -> None:
    """The order SQLite sorts the rows in is the one parse_time gives (then table order),
    rows whose time is not one after all the others; whatever the cells hold."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.db"
        con = sqlite3.connect(path)
        con.executescript(_LOOSE)
        con.executemany("INSERT INTO snapshots VALUES (?, 'm', NULL, ?, 'a', 'e', NULL, "
                        "NULL, NULL)", [(f"s{i}", t) for i, t in enumerate(times)])
        con.commit()
        con.close()
        with Source(path) as source:
            got = [row.rowid for row in source.order()]
            assert source.count() == len(times)

    def key(rowid: int) -> tuple[bool, datetime, int]:
        cell = times[rowid - 1]
        when = None if isinstance(cell, bytes) or cell is None else parse_time(str(cell))
        return when is None, when or datetime.min.replace(tzinfo=timezone.utc), rowid

    assert got == sorted(range(1, len(times) + 1), key=key)
