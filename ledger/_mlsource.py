"""Reading a model-ledger (0.7.x) SQLite database, read-only, with the stdlib's sqlite3.

Internal to the importer (``ledger.mlimport``). Never imports model-ledger. The schema
is checked before any row is read: a file that is not SQLite, or whose ``models``,
``snapshots`` and ``tags`` tables do not have model-ledger's columns, is refused with
``NotModelLedgerError``. Rows are read in bounded pieces: a text column is read up to
``MAX_CELL`` characters, and its full length is reported.

Everything is read in one read transaction, opened before the schema is checked and held
until ``close``: the import sees one state of the file even while model-ledger writes to it
(in WAL mode its writers go on; in rollback-journal mode they wait for the import, up to
their own busy timeout). Rows are streamed in time order, sorted by SQLite (which spills a
large sort to temporary files), so memory does not grow with the number of rows read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from verifier import MalformedInputError

MAX_CELL = 70_000
"""Characters read of one text cell: more than a statement can hold (65,279 bytes)."""

_TABLES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # table: (columns it must have, columns it may have)
    "models": (frozenset({"model_hash", "name", "owner", "model_type", "model_origin", "tier",
                          "purpose", "status", "created_at", "last_seen"}),
               frozenset({"metadata"})),
    "snapshots": (frozenset({"snapshot_hash", "model_hash", "parent_hash", "timestamp", "actor",
                             "event_type", "source", "payload", "tags"}), frozenset()),
    "tags": (frozenset({"model_hash", "name", "snapshot_hash", "updated_at"}), frozenset()),
}


class NotModelLedgerError(MalformedInputError):
    """The file is not a model-ledger SQLite database of a known schema."""


@dataclass(frozen=True)
class SourceModel:
    """A row of model-ledger's ``models`` table (its current values only)."""

    model_hash: str
    name: str
    owner: str
    model_type: str
    model_origin: str | None
    tier: str
    purpose: str
    status: str
    created_at: str
    metadata: dict[str, Any]
    problem: str | None  # why the row cannot be read, if it cannot


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A snapshot or tag row, in the order the import writes them."""

    kind: str  # "snapshot" or "tag"
    rowid: int


@dataclass(frozen=True)
class SourceSnapshot:
    """A row of ``snapshots``."""

    snapshot_hash: str
    model_hash: str
    parent_hash: str | None
    timestamp: str
    actor: str
    event_type: str
    source: str | None
    payload: dict[str, Any]
    tags: dict[str, Any]
    problem: str | None


@dataclass(frozen=True)
class SourceTag:
    """A row of ``tags``: where a tag points now (its earlier moves are gone)."""

    model_hash: str
    name: str
    snapshot_hash: str
    updated_at: str


def parse_time(text: str) -> datetime | None:
    """An ISO time as model-ledger writes it, in UTC (a time without offset is taken as
    UTC); None if it is not one."""
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc)
    except (TypeError, ValueError, OverflowError):  # overflow: year 1 or 9999 moved past
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)
_ENCODINGS = {"UTF-8": "utf-8", "UTF-16le": "utf-16-le", "UTF-16be": "utf-16-be"}


def utc_text(when: datetime) -> str:
    """A UTC time as ISO text ending in Z."""
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class Source:
    """An open model-ledger database (read-only). Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        """Open ``path`` read-only and check its schema; NotModelLedgerError if it is
        not a model-ledger database, OSError-like problems as NotModelLedgerError too."""
        self.path = Path(path)
        if not self.path.is_file():
            raise NotModelLedgerError(f"{self.path} is not a file")
        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro"
        try:
            # autocommit: the one read transaction below is opened and held explicitly
            self._con = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise NotModelLedgerError(f"{self.path} cannot be opened as SQLite: {exc}") from None
        # bytes that are not UTF-8 stay visible as lone surrogates; the cell is then refused
        self._con.text_factory = lambda b: b.decode("utf-8", "surrogateescape")
        try:
            self._con.execute("PRAGMA query_only = ON")
            self._encoding = _ENCODINGS.get(
                str(self._con.execute("PRAGMA encoding").fetchone()[0]), "utf-8")
            self._con.create_function("modelseal_time_key", 2, self._time_key,
                                      deterministic=True)
            self._con.execute("BEGIN")  # its snapshot is taken at the first read, next
            self.other_tables = self._check_schema()
        except (sqlite3.Error, UnicodeError) as exc:
            self._con.close()
            raise NotModelLedgerError(f"{self.path} is not a readable SQLite database: "
                                      f"{exc}") from None
        except BaseException:
            self._con.close()
            raise

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the read transaction and close the connection."""
        self._con.close()  # rolls the (read-only) transaction back

    def _time_key(self, kind: str, raw: bytes | None) -> int | None:
        """SQL function: a time cell as microseconds since 1970 (what the rows are sorted
        by), None if it is not a time (as ``parse_time`` reads it). Never raises."""
        try:
            if kind == "blob" or raw is None:
                return None
            when = parse_time(raw.decode(self._encoding, "surrogateescape"))
            return None if when is None else (when - _EPOCH) // _MICRO
        except Exception:  # noqa: BLE001 - an exception here would end the whole query
            return None

    def _check_schema(self) -> list[str]:
        tables = {str(r[0]) for r in self._con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise NotModelLedgerError(
                f"{self.path} is not a model-ledger database: it has no "
                f"{', '.join(missing)} table{'s' if len(missing) > 1 else ''}")
        for table, (must, may) in _TABLES.items():
            cols = {str(r[1]) for r in self._con.execute(f"PRAGMA table_info({table})")}
            if not must <= cols or cols - must - may:
                raise NotModelLedgerError(
                    f"{self.path} has a {table} table of an unknown schema (columns "
                    f"{', '.join(sorted(cols))}); this importer reads model-ledger 0.7's")
        return sorted(tables - set(_TABLES) - {"sqlite_sequence"})

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        try:
            yield from self._con.execute(sql, params)
        except (sqlite3.Error, UnicodeError) as exc:
            raise NotModelLedgerError(f"{self.path} cannot be read: {exc}") from None

    def models(self) -> dict[str, SourceModel]:
        """Every model row, by model hash."""
        has_meta = any(r[1] == "metadata" for r in self._query("PRAGMA table_info(models)"))
        meta = _cell("metadata") if has_meta else "NULL, 0"
        out: dict[str, SourceModel] = {}
        for r in self._query(
                f"SELECT model_hash, {_cell('name')}, {_cell('owner')}, {_cell('model_type')}, "
                f"model_origin, {_cell('tier')}, {_cell('purpose')}, status, created_at, "
                f"{meta} FROM models ORDER BY rowid"):
            problems: list[str] = []
            # columns: hash 0, name 1-2, owner 3-4, model_type 5-6, model_origin 7,
            # tier 8-9, purpose 10-11, status 12, created_at 13, metadata 14-15
            name, owner, model_type, tier, purpose = (
                _text(r[i], r[i + 1], col, problems)
                for i, col in ((1, "name"), (3, "owner"), (5, "model_type"), (8, "tier"),
                               (10, "purpose")))
            metadata = _json_object(_text(r[14], r[15], "metadata", problems), "metadata",
                                    problems)
            out[str(r[0])] = SourceModel(
                str(r[0]), name, owner, model_type, _opt(r[7]), tier, purpose,
                str(r[12])[:1000] if r[12] else "active", str(r[13])[:1000], metadata,
                "; ".join(problems) or None)
        return out

    def count(self) -> int:
        """How many snapshot and tag rows there are (as many as ``order`` gives)."""
        for r in self._query("SELECT (SELECT count(*) FROM snapshots) + "
                             "(SELECT count(*) FROM tags)"):
            return int(r[0])
        return 0  # pragma: no cover - a SELECT without FROM gives one row

    def order(self) -> Iterator[SourceRow]:
        """Every snapshot and tag row, by time (then snapshots before tags, then row
        order): the order model-ledger says they happened in. A row whose time is not
        one (``parse_time``) has no place in it: a ``registered`` snapshot so comes before
        all the others (model-ledger writes it first), any other row after them all (in
        table order). Streamed: SQLite sorts."""
        kinds = ("snapshot", "tag")
        for r in self._query(
                "SELECT kind, rid FROM ("
                "SELECT 0 AS kind, rowid AS rid, event_type AS et, "
                "modelseal_time_key(typeof(timestamp), CAST(timestamp AS BLOB)) AS k "
                "FROM snapshots UNION ALL "
                "SELECT 1, rowid, NULL, "
                "modelseal_time_key(typeof(updated_at), CAST(updated_at AS BLOB)) FROM tags) "
                "ORDER BY CASE WHEN k IS NOT NULL THEN 1 "
                "WHEN kind = 0 AND et = 'registered' THEN 0 ELSE 2 END, k, kind, rid"):
            yield SourceRow(kinds[int(r[0])], int(r[1]))

    def snapshot(self, rowid: int) -> SourceSnapshot:
        """The snapshot row ``rowid``."""
        for r in self._query(
                f"SELECT snapshot_hash, model_hash, parent_hash, timestamp, {_cell('actor')}, "
                f"{_cell('event_type')}, source, {_cell('payload')}, {_cell('tags')} "
                f"FROM snapshots WHERE rowid = ?", (rowid,)):
            problems: list[str] = []
            actor = _text(r[4], r[5], "actor", problems)
            event_type = _text(r[6], r[7], "event_type", problems)
            payload = _json_object(_text(r[9], r[10], "payload", problems), "payload", problems)
            tags = _json_object(_text(r[11], r[12], "tags", problems), "tags", problems)
            return SourceSnapshot(str(r[0]), str(r[1]), _opt(r[2]), str(r[3]), actor,
                                  event_type, _opt(r[8]), payload, tags,
                                  "; ".join(problems) or None)
        raise NotModelLedgerError(f"snapshot row {rowid} vanished while reading")

    def tag(self, rowid: int) -> SourceTag:
        """The tag row ``rowid``."""
        for r in self._query("SELECT model_hash, name, snapshot_hash, updated_at FROM tags "
                             "WHERE rowid = ?", (rowid,)):
            return SourceTag(str(r[0]), str(r[1])[:MAX_CELL], str(r[2]), str(r[3]))
        raise NotModelLedgerError(f"tag row {rowid} vanished while reading")


def _cell(col: str) -> str:
    """SQL for a text column read up to MAX_CELL characters, and its full length."""
    return f"substr({col}, 1, {MAX_CELL}), length({col})"


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_CELL]


def _text(value: Any, length: Any, col: str, problems: list[str]) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        problems.append(f"{col} is a blob, not text")
        return ""
    text = str(value)
    if isinstance(length, int) and length > len(text):
        problems.append(f"{col} is {length:,} characters long, more than a statement holds")
        return ""
    return text


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_object(text: str, col: str, problems: list[str]) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        problems.append(f"{col} is not valid JSON")
        return {}
    if not isinstance(value, dict):
        problems.append(f"{col} is not a JSON object")
        return {}
    return value
