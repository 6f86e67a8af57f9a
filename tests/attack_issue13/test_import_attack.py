"""Hostile model-ledger databases for `import model-ledger`: SQL in names, triggers and
views, a WAL file beside the database, a file that changes while importing, duplicate
ids, non-UTF-8 cells, odd timestamps."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import verifier as v
from ledger import ActorKey, Ledger, LogKey
from ledger.mlimport import import_model_ledger, imported_record
from tests.cli_support import init_store, ok, real

DATA = Path(__file__).resolve().parent.parent / "data" / "model_ledger"
ORIGIN = "example.com/models"
SCHEMA = """
CREATE TABLE models (model_hash TEXT, name TEXT, owner TEXT, model_type TEXT,
  model_origin TEXT, tier TEXT, purpose TEXT, status TEXT, created_at TEXT, last_seen TEXT,
  metadata TEXT);
CREATE TABLE snapshots (snapshot_hash TEXT, model_hash TEXT, parent_hash TEXT, timestamp TEXT,
  actor TEXT, event_type TEXT, source TEXT, payload TEXT, tags TEXT);
CREATE TABLE tags (model_hash TEXT, name TEXT, snapshot_hash TEXT, updated_at TEXT);
"""


@pytest.fixture
def log(tmp_path: Path) -> Iterator[tuple[Ledger, ActorKey]]:
    led = Ledger.create(tmp_path / "store", origin=ORIGIN, log_key=LogKey.generate(ORIGIN),
                        admin=ActorKey.generate("risk-admin"))
    importer = ActorKey.generate("importer")
    led.grant(importer.vkey, role="writer")
    yield led, importer
    led.close()


def _copy(tmp_path: Path, name: str = "inv.db") -> Path:
    return Path(shutil.copy(DATA / "small.db", tmp_path / name))


def _loose(tmp_path: Path, name: str) -> Path:
    """small.db's rows in tables without keys or constraints (a hand-made file)."""
    path = tmp_path / name
    src, dst = sqlite3.connect(DATA / "small.db"), sqlite3.connect(path)
    dst.executescript(SCHEMA)
    for t in ("models", "snapshots", "tags"):
        rows = src.execute(f"SELECT * FROM {t}").fetchall()
        dst.executemany(f"INSERT INTO {t} VALUES ({','.join('?' * len(rows[0]))})", rows)
    dst.commit()
    src.close()
    dst.close()
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sql_in_names_is_data_and_triggers_and_views_never_run(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    db = _copy(tmp_path)
    con = sqlite3.connect(db)
    evil = "x'); DROP TABLE models; --"
    con.execute("UPDATE models SET name = ? WHERE name = 'churn_model'", (evil,))
    con.executescript("""
        CREATE TABLE audit (what TEXT);
        CREATE TRIGGER t1 AFTER UPDATE ON tags BEGIN INSERT INTO audit VALUES ('upd'); END;
        CREATE TRIGGER t2 BEFORE DELETE ON models BEGIN SELECT RAISE(ABORT, 'no'); END;
        CREATE VIEW v_models AS SELECT * FROM models;
    """)
    con.commit()
    con.close()
    before = _sha(db)
    report = import_model_ledger(led, db, signer=importer)
    assert _sha(db) == before
    assert evil in led.inventory_at()
    assert report.other_tables == ["audit"]
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM audit").fetchone() == (0,)
    con.close()


def test_a_view_posing_as_a_table_is_refused(log: tuple[Ledger, ActorKey],
                                             tmp_path: Path) -> None:
    led, importer = log
    db = tmp_path / "view.db"
    con = sqlite3.connect(db)
    con.executescript(SCHEMA.replace("CREATE TABLE tags", "CREATE TABLE real_tags")
                      + "CREATE VIEW tags AS SELECT * FROM real_tags;")
    con.close()
    size = led.size
    with pytest.raises(v.MalformedInputError):
        import_model_ledger(led, db, signer=importer)
    assert led.size == size


def test_rows_held_in_a_wal_file_beside_the_database_are_read(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    db = _copy(tmp_path)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("UPDATE snapshots SET event_type = 'monitored' WHERE event_type = 'deployed'")
    con.commit()  # committed into the -wal file, not the main file; connection kept open
    assert Path(str(db) + "-wal").stat().st_size > 0
    main_before = _sha(db)
    try:
        report = import_model_ledger(led, db, signer=importer)
    finally:
        con.close()
    assert report.refused == []
    assert "monitored" in [s.event_type for s in led.history("churn_model")]
    assert main_before == main_before


def test_the_import_reads_one_consistent_state_of_a_changing_file(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    # FINDING: medium: the importer reads models, then the row order, then each row by rowid in separate statements with no read transaction; a model-ledger process writing meanwhile gets half-old half-new rows imported (here a payload changed after the import began)  # noqa: E501
    led, importer = log
    db = _loose(tmp_path, "live.db")
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    # enough rows for a progress call before the validated row is read
    con.executemany("INSERT INTO snapshots VALUES (?, ?, NULL, ?, 'ci-bot', 'monitored', NULL,"
                    " '{}', NULL)",
                    [(f"mon{i:04d}", "064825e798e9f6fd3ea3cd92efb89531",
                      f"2025-03-01T09:00:{i % 60:02d}.{i:06d}+00:00") for i in range(150)])
    con.commit()
    changed: list[int] = []

    def progress(done: int, total: int) -> None:
        if not changed:
            con.execute("UPDATE snapshots SET payload = '{\"auc\": 0.10, \"ok\": false}' "
                        "WHERE event_type = 'validated'")
            con.commit()
            changed.append(done)

    try:
        import_model_ledger(led, db, signer=importer, progress=progress)
    finally:
        con.close()
    assert changed
    validated = [s for s in led.history("fraud_scoring") if s.event_type == "validated"]
    assert validated[0].payload["auc"] == 0.88  # the value when the import began


def test_duplicate_snapshot_hashes_are_reported_not_counted_as_already_imported(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    # FINDING: medium: two source rows with one snapshot_hash (no key in a hand-made file) get one statement id; the second (here a validation_failed by another actor) is silently skipped and counted as "already in the log from an earlier import" on the first import  # noqa: E501
    led, importer = log
    db = _loose(tmp_path, "dup.db")
    con = sqlite3.connect(db)
    con.execute("INSERT INTO snapshots SELECT snapshot_hash, model_hash, parent_hash, "
                "'2025-03-03T00:00:00+00:00', 'mallory', 'validation_failed', source, "
                "payload, tags FROM snapshots WHERE event_type = 'validated'")
    con.commit()
    con.close()
    report = import_model_ledger(led, db, signer=importer)
    assert report.already == 0, report.to_json()
    assert any("validation_failed" in what or "mallory" in why
               or "55ef5bf5874eed8a5c21574e0ffd51c3" in what
               for what, why in report.refused), report.to_json()


def test_duplicate_model_names_and_hashes_are_refused_and_reported(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    db = _loose(tmp_path, "dupmodels.db")
    con = sqlite3.connect(db)
    con.execute("INSERT INTO models SELECT 'ffff' || model_hash, name, 'other-team', model_type,"
                " model_origin, tier, purpose, status, created_at, last_seen, metadata "
                "FROM models WHERE name = 'fraud_scoring'")
    con.execute("INSERT INTO snapshots VALUES ('dupreg', 'ffff8a34cfa14e75588925c8590f9301db95',"
                " NULL, '2025-03-04T00:00:00+00:00', 'eve', 'retrained', NULL, '{}', NULL)")
    con.commit()
    con.close()
    report = import_model_ledger(led, db, signer=importer)
    assert report.refused, report.to_json()
    inv = led.inventory_at()
    assert inv["fraud_scoring"].owner == "risk-team"
    assert led.audit() == led.size


def test_odd_timestamps_stay_claims_in_the_payload(log: tuple[Ledger, ActorKey],
                                                   tmp_path: Path) -> None:
    """No timezone (taken as UTC, as documented) and far future: each kept as the original
    claim; the log's time is the import's."""
    led, importer = log
    db = _copy(tmp_path)
    con = sqlite3.connect(db)
    con.execute("UPDATE snapshots SET timestamp = '9999-12-31T23:59:59+00:00' "
                "WHERE event_type = 'deployed'")
    con.execute("UPDATE snapshots SET timestamp = '2025-03-02T09:00:00' "
                "WHERE event_type = 'retrained'")
    con.commit()
    con.close()
    report = import_model_ledger(led, db, signer=importer)
    assert report.refused == []
    last_log_time = max(s.timestamp for name in led.inventory_at() for s in led.history(name))
    assert last_log_time.year < 9999
    ats = {s.event_type: (imported_record(s.payload) or {}).get("at")
           for name in ("churn_model", "fraud_scoring") for s in led.history(name)}
    assert ats["deployed"] == "9999-12-31T23:59:59Z"
    assert ats["retrained"] == "2025-03-02T09:00:00Z"


def test_one_unreadable_timestamp_does_not_reorder_a_models_history(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    # FINDING: low: a row whose timestamp does not parse is sorted before every other row; a `retired` row so placed is written before the model's own registration row and its later rows are then refused ("model is retired"), so one bad cell loses a model's history  # noqa: E501
    led, importer = log
    db = _copy(tmp_path)
    con = sqlite3.connect(db)
    con.execute("UPDATE snapshots SET timestamp = 'yesterday-ish' WHERE event_type = 'retired'")
    con.commit()
    con.close()
    report = import_model_ledger(led, db, signer=importer)
    others = [(w, y) for w, y in report.refused if "yesterday-ish" not in w]
    assert others == [], report.refused
    events = [s.event_type for s in led.history("feature_pipeline")]
    assert events.index("retired") == len(events) - 1, events


def _non_utf8(tmp_path: Path) -> Path:
    db = _copy(tmp_path, "nonutf.db")
    con = sqlite3.connect(db)
    con.execute("UPDATE snapshots SET timestamp = CAST(x'32303235ff' AS TEXT), payload = '{bad'"
                " WHERE event_type = 'retrained'")
    con.execute("UPDATE snapshots SET actor = CAST(x'616cff' AS TEXT) "
                "WHERE event_type = 'deployed'")
    con.commit()
    con.close()
    return db


def test_non_utf8_cells_are_refused_and_reported_by_the_api(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    report = import_model_ledger(led, _non_utf8(tmp_path), signer=importer)
    assert len(report.refused) == 2
    assert led.audit() == led.size


def test_cli_text_report_of_non_utf8_cells(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    run = ok(real("import", "model-ledger", _non_utf8(tmp_path), env=store.env))
    assert "not imported (2)" in run.out and "\\udcff" in run.out


def test_cli_json_report_of_non_utf8_cells(tmp_path: Path) -> None:
    """A lone surrogate from a non-UTF-8 cell in the report: printed, exit 0."""
    store = init_store(tmp_path)
    run = real("import", "model-ledger", _non_utf8(tmp_path), "--json", env=store.env)
    assert run.code == 0, run.out + run.err
    doc = run.json()
    assert len(doc["not_imported"]) == 2


def test_a_key_whose_scope_allows_nothing_is_refused_before_the_import(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    # FINDING: low: the import's up-front check looks at the role only; a writer whose scope allows no op (or no register) starts the import and every row is refused one by one instead of an AuthorizationError before anything is read  # noqa: E501
    led, _ = log
    boxed = ActorKey.generate("boxed")
    led.grant(boxed.vkey, role="writer", scope=v.make_scope(ops=[]))
    size = led.size
    with pytest.raises(v.AuthorizationError):
        import_model_ledger(led, _copy(tmp_path), signer=boxed)
    assert led.size == size


def test_a_policy_in_force_refuses_imported_types_row_by_row(
        log: tuple[Ledger, ActorKey], tmp_path: Path) -> None:
    led, importer = log
    led.set_policy(v.make_policy({"validated": ["auc"], "retrained": [], "retired": []}))
    report = import_model_ledger(led, _copy(tmp_path), signer=importer)
    assert report.refused and all("policy" in why or "not imported" in why or "retired" in why
                                  or "member" in why for _, why in report.refused)
    assert report.written.get("event", 0) >= 3
    inv = v.replay([led.entry(i) for i in range(led.size)])
    assert inv.size == led.size
