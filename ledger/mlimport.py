"""Importing a model-ledger SQLite database into a modelseal log (docs/pipelines.md,
"Coming from model-ledger").

Every model-ledger row becomes statements signed by the importing actor, written in the
order model-ledger's own times give, at the log's time of the import. The original time,
actor and hash of each row are kept under the key ``"imported"`` of the event's payload
(of the model's metadata for a registration); they are never the log's time.

* a model's first row: ``register`` with the ``models`` row's (current) fields;
* every other snapshot: an ``event`` with its original payload; event types outside
  modelseal's (or reserved by it: ``registered``, ``tag_moved``, ``member_added``,
  ``member_removed``, ``updated``) are mapped by ``map_event_type`` and the original kept;
* a membership change (``depends_on`` with relationship ``member_of``, ``member_added``,
  ``member_removed``) is also a ``member_add`` / ``member_remove`` after its event;
* a ``tags`` row: a ``tag`` statement (model-ledger keeps only where a tag points now);
* a ``retired`` status in a ``models`` row: a ``retired`` event at the end.

Idempotent: statement ids are derived from the source rows (``ml-`` and 48 hex digits),
so an id already in the log is skipped, and importing the same file twice writes nothing
the second time (a later copy of the database writes only what is new in it). Two rows of
one run that give the same id (a snapshot hash used twice, a repeated tag row) are not
"already imported": the later one is reported as not imported.

The source is read in one read transaction (one state of the file), streamed in time
order; a row whose time cannot be read is written after all the others (a ``registered``
snapshot before them) and listed in the report.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from verifier import (
    EVENT_TYPE_RE,
    AuthorizationError,
    KeyRecord,
    VerifierError,
    describe_scope,
    name_problem,
    parse_entry,
)

from ._mlsource import NotModelLedgerError, Source, SourceModel, SourceSnapshot, parse_time
from ._mlsource import utc_text
from .batch import Batch
from .keys import ActorKey
from .ledger import Ledger
from .statements import sign_statement

__all__ = ["ImportReport", "LOST", "NotModelLedgerError", "SOURCE", "import_model_ledger",
           "imported_record", "original_note",
           "map_event_type"]

SOURCE = "model-ledger"
"""The ``source`` of every ``imported`` record."""

LOST = ("model-ledger overwrites a model's fields and a tag's target in place and keeps no "
        "record of earlier values, so earlier field values and tag moves, and any event it "
        "dropped, cannot be recovered: only what its database holds now was imported.")

_RESERVED = frozenset({"registered", "tag_moved", "member_added", "member_removed", "updated"})


def map_event_type(original: str) -> str:
    """The modelseal event type for a model-ledger event type: the same if it is a valid
    one not reserved here, else ``ml_`` and a lower-case identifier made from it."""
    if original in _RESERVED:
        return f"ml_{original}"
    if EVENT_TYPE_RE.fullmatch(original):
        return original
    text = re.sub(r"[^a-z0-9_]+", "_", original.lower()).strip("_")
    return f"ml_{text}"[:64].rstrip("_") or "ml_event"


def statement_id(*parts: str) -> str:
    """The deterministic statement id of a source row (``ml-`` and 48 hex digits)."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"ml-{digest[:48]}"


@dataclass
class ImportReport:
    """What an import wrote (or, dry, would write) and what it could not."""

    written: dict[str, int] = field(default_factory=dict)  # per statement kind
    already: int = 0  # statements an earlier import wrote
    refused: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    renamed: dict[str, str] = field(default_factory=dict)  # original -> our event type
    rows: int = 0  # source rows read
    dry_run: bool = False
    other_tables: list[str] = field(default_factory=list)
    untimed: list[str] = field(default_factory=list)  # rows whose time is not one (put
    # first if a registration, else after all the others)

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON."""
        return {"written": dict(self.written), "already_imported": self.already,
                "not_imported": [{"what": w, "why": y} for w, y in self.refused],
                "renamed_event_types": dict(self.renamed), "rows": self.rows,
                "dry_run": self.dry_run, "other_tables": list(self.other_tables),
                "time_unreadable": list(self.untimed),
                "lost": LOST}


Progress = Callable[[int, int], None]
Clock = Callable[[], datetime]


def import_model_ledger(ledger: Ledger, path: str | Path, *, signer: ActorKey,
                        clock: Clock | None = None, chunk: int = 1000, dry_run: bool = False,
                        progress: Progress | None = None) -> ImportReport:
    """Import the model-ledger database at ``path`` into ``ledger`` (opened with its log
    key), signed by ``signer`` (an active writer or admin of the log).

    Writes in batches of at most ``chunk`` statements, each committed whole: an
    interruption (KeyboardInterrupt) leaves whole batches only, and importing again
    continues where it stopped. ``dry_run`` writes everything in one batch and aborts it,
    so the log's rules are checked and nothing is stored. ``progress(done, total)`` is
    called with source rows. Raises NotModelLedgerError (a MalformedInputError) for a file
    that is not a model-ledger database, AuthorizationError if ``signer`` may not write
    what every import needs (``check_importer``); both before anything is written (the
    key is checked before the file is opened).
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    check_importer(ledger, signer)
    with Source(path) as source:
        return _Import(ledger, source, signer, clock, chunk, dry_run, progress).run()


def check_importer(ledger: Ledger, signer: ActorKey) -> None:
    """AuthorizationError unless ``signer`` is an active writer or admin of ``ledger``
    whose key's scope (its grant's, else its role's preset) allows what every import
    writes: ``register`` and ``event`` statements, of some event type, model and tier.
    A narrower scope (some event types, tags, models or tiers only) passes: the rows it
    does not allow are refused one by one and reported."""
    found = ledger.active_key(signer.name)
    if found is None or found[0].public_key != signer.public_bytes or found[1] == "reader":
        raise AuthorizationError(f"{signer.name!r} is not an active writer or admin of this "
                                 "log; an admin grants it with `modelseal grant`")
    record = _active_record(ledger, signer)
    if record is None:  # revoked or re-granted since active_key read the keyring
        raise AuthorizationError(f"{signer.name!r} is not an active writer or admin of this "
                                 "log; an admin grants it with `modelseal grant`")
    scope = record.effective_scope
    missing = [op for op in ("register", "event") if op not in scope.ops]
    empty = [what.replace("_", " ") for what in ("event_types", "models", "tiers")
             if getattr(scope, what) == ()]
    if missing or empty:
        why = (f"does not allow {' or '.join(missing)} statements" if missing else
               f"allows no {' and no '.join(empty)}")
        raise AuthorizationError(
            f"the scope of {signer.name!r}'s key ({describe_scope(scope)}) {why}, which "
            "every import writes; nothing was read or written. An admin grants an "
            "importing key the writer preset (or a scope with register and event)")


def _active_record(ledger: Ledger, signer: ActorKey) -> KeyRecord | None:
    """The keyring's active grant of ``signer``'s very key, or None."""
    for record in reversed(ledger.keyring()):
        if record.name == signer.name and record.revoked_index is None:
            return record if record.key.public_key == signer.public_bytes else None
    return None


class _Import:
    """One run of the import (internal)."""

    def __init__(self, ledger: Ledger, source: Source, signer: ActorKey, clock: Clock | None,
                 chunk: int, dry_run: bool, progress: Progress | None) -> None:
        self.ledger, self.source, self.signer = ledger, source, signer
        self.clock: Clock = clock or (lambda: datetime.now(timezone.utc))
        self.chunk, self.dry_run = chunk, dry_run
        self.progress = progress or (lambda done, total: None)
        self.report = ImportReport(dry_run=dry_run, other_tables=source.other_tables)
        self.models: dict[str, SourceModel] = {}
        self.names: dict[str, str | None] = {}  # model hash -> our name (None: refused)
        self.ours: dict[str, str] = {}  # source snapshot hash -> our snapshot hash
        self.members: dict[str, set[str]] = {}  # group hash -> member hashes
        self.seen: set[str] = set()  # source snapshot hashes read in this run
        self.sids: set[str] = set()  # statement ids this run wrote or found in the log
        self._cm: AbstractContextManager[Batch] | None = None
        self._batch: Batch | None = None
        self._pending = 0

    # -- batches -------------------------------------------------------------------------

    def _open(self) -> Batch:
        if self._batch is None:
            self._cm = self.ledger.batch()
            self._batch = self._cm.__enter__()
            self._pending = 0
        return self._batch

    def _close(self, exc: BaseException | None = None) -> None:
        cm, self._cm, self._batch = self._cm, None, None
        if cm is None:
            return
        if exc is None and not self.dry_run:
            cm.__exit__(None, None, None)  # commits
        else:
            why = exc if exc is not None else KeyboardInterrupt()
            cm.__exit__(type(why), why, None)  # aborts

    def run(self) -> ImportReport:
        self.models = self.source.models()
        total = self.source.count()
        try:
            for done, row in enumerate(self.source.order(), 1):
                self.report.rows += 1
                if row.kind == "snapshot":
                    self._snapshot(self.source.snapshot(row.rowid))
                else:
                    self._tag(row.rowid)
                if done % 100 == 0 or done == total:
                    self.progress(done, total)
            for model in self.models.values():
                if model.status == "retired" and self.names.get(model.model_hash):
                    self._status_retired(model)
        except BaseException as exc:
            self._close(exc)
            raise
        self._close(None if not self.dry_run else KeyboardInterrupt())
        return self.report

    def _put(self, op: str, sid: str, what: str, **body: Any) -> str | None:
        """Write one statement (unless its id is in the log); our snapshot hash or None."""
        batch = self._open()
        if sid in self.sids:
            self.report.refused.append((what, "another row of the database gives the same "
                                              "statement: a duplicate row"))
            return None
        self.sids.add(sid)
        index = self.ledger.statement_entry(sid)
        if index is not None:
            self.report.already += 1
            return parse_entry(self.ledger.entry(index)).snapshot_hash
        try:
            data = sign_statement(self.signer, self.ledger.origin, op, log_id=self.ledger.log_id,
                                  claimed_at=self.clock(), statement_id=sid, **body)
            snap = batch.submit(data)
        except (ValueError, TypeError, VerifierError) as exc:
            self.report.refused.append((what, str(exc)))
            return None
        self.report.written[op] = self.report.written.get(op, 0) + 1
        self._pending += 1
        if self._pending >= self.chunk and not self.dry_run:
            self._close()
        return None if snap is None else snap.snapshot_hash

    # -- rows ----------------------------------------------------------------------------

    def _name(self, model_hash: str, reg: SourceSnapshot | None) -> str | None:
        """Our name of the model (registering it at its first row), None if refused."""
        if model_hash in self.names:
            return self.names[model_hash]
        model = self.models.get(model_hash)
        if model is None:
            self.names[model_hash] = None
            self.report.refused.append((f"rows of model hash {model_hash[:80]!r}",
                                        "no row of the models table has that hash"))
            return None
        problem = model.problem
        for col in ("name", "owner", "model_type", "tier"):
            why = name_problem(getattr(model, col))
            if problem is None and why is not None:
                problem = f"its {col} {getattr(model, col)[:80]!r} {why}"
        if problem is None and name_problem(model.status) is not None:
            problem = f"its status {model.status[:80]!r} {name_problem(model.status)}"
        if problem is not None:
            self.names[model_hash] = None
            self.report.refused.append((f"model {model.name[:80]!r} and all its rows", problem))
            return None
        at = reg.timestamp if reg is not None else model.created_at
        record = _record(at, reg.actor if reg is not None else None, model_hash,
                         snapshot=reg.snapshot_hash if reg is not None else None,
                         model_origin=model.model_origin,
                         payload=reg.payload if reg is not None else None)
        metadata = dict(model.metadata)
        if "imported" in metadata:
            record["metadata_imported"] = metadata.pop("imported")
        metadata["imported"] = record
        status = "active" if model.status == "retired" else model.status
        ours = self._put("register", statement_id("register", model_hash),
                         f"model {model.name!r} and all its rows", name=model.name,
                         owner=model.owner,
                         model_type=model.model_type, tier=model.tier, purpose=model.purpose,
                         status=status, metadata=metadata)
        self.names[model_hash] = model.name if ours is not None else None
        if ours is not None and reg is not None:
            self.ours[reg.snapshot_hash] = ours
        return self.names[model_hash]

    def _snapshot(self, s: SourceSnapshot) -> None:
        first = s.model_hash not in self.names
        what = f"snapshot {s.snapshot_hash[:80]} at {s.timestamp[:40]}"
        if s.snapshot_hash in self.seen:
            self.report.refused.append((
                f"{what} ({s.event_type[:80]!r} by {s.actor[:80]!r})",
                "an earlier row of the snapshots table has the same snapshot_hash, which "
                "names one snapshot; this one was not imported"))
            return
        self.seen.add(s.snapshot_hash)
        if s.problem is not None:
            self.report.refused.append((what, s.problem))
            return
        if parse_time(s.timestamp) is None:
            self.report.untimed.append(what)  # written where Source.order put it
        if first and s.event_type == "registered":
            self._name(s.model_hash, s)
            return
        name = self._name(s.model_hash, None)
        if name is None:
            return
        etype = map_event_type(s.event_type)
        if etype != s.event_type:
            self.report.renamed[s.event_type[:200]] = etype
        payload = dict(s.payload)
        record = _record(s.timestamp, s.actor, s.snapshot_hash, model_hash=s.model_hash,
                         parent=s.parent_hash, system=s.source, tags=s.tags or None,
                         event_type=s.event_type if etype != s.event_type else None)
        if "imported" in payload:
            record["payload_imported"] = payload.pop("imported")
        payload["imported"] = record
        ours = self._put("event", statement_id("event", s.snapshot_hash),
                         f"{s.event_type[:80]!r} event of {name!r} at {s.timestamp[:40]}",
                         model=name, event_type=etype, payload=payload)
        if ours is None:
            return
        self.ours[s.snapshot_hash] = ours
        self._membership(s, name)

    def _membership(self, s: SourceSnapshot, group: str) -> None:
        p = s.payload
        if s.event_type == "depends_on" and p.get("relationship") == "member_of":
            member_hash, role, add = str(p.get("upstream_hash", "")), None, True
        elif s.event_type in ("member_added", "member_removed"):
            member_hash, add = str(p.get("member_hash", "")), s.event_type == "member_added"
            role = p.get("role") if add else p.get("reason")
        else:
            return
        current = self.members.setdefault(s.model_hash, set())
        # (registered now if its first row comes later: model-ledger's times may say so)
        member = self._name(member_hash, None) if member_hash in self.models else None
        what = f"membership of {str(p.get('member_name') or p.get('upstream'))[:80]!r} " \
               f"in {group!r} at {s.timestamp[:40]}"
        if member is None:
            self.report.refused.append((what, "the member model was not imported"))
            return
        if add == (member_hash in current):
            if not add:
                self.report.refused.append((what, "it was not a member then"))
            return  # an add_member after register_group's link: already a member
        text = role if isinstance(role, str) else None
        op = "member_add" if add else "member_remove"
        extra = {"role": text} if add else {"reason": text}
        if self._put(op, statement_id("member", s.snapshot_hash), what, group=group,
                     member=member, **extra) is not None:
            (current.add if add else current.discard)(member_hash)

    def _tag(self, rowid: int) -> None:
        t = self.source.tag(rowid)
        what = f"tag {t.name[:80]!r} at {t.updated_at[:40]}"
        if parse_time(t.updated_at) is None:
            self.report.untimed.append(what)  # written last (Source.order)
        name = self._name(t.model_hash, None) if t.model_hash in self.models else None
        target = self.ours.get(t.snapshot_hash)
        if name is None or target is None:
            why = ("its model was not imported" if name is None else
                   "the snapshot it points at was not imported")
            self.report.refused.append((what, why))
            return
        self._put("tag", statement_id("tag", t.model_hash, t.name, t.snapshot_hash,
                                      t.updated_at), f"{what} of {name!r}",
                  model=name, tag=t.name, target=target)

    def _status_retired(self, model: SourceModel) -> None:
        name = self.names[model.model_hash]
        assert name is not None
        self._open()  # so that the read sees this run's writes
        state = self.ledger._state(name)  # batch-aware (same package)
        if state is not None and state.status == "retired":
            return
        record = {"source": SOURCE, "at": None, "hash": model.model_hash,
                  "note": "model-ledger's models row says retired; it keeps no time for it"}
        self._put("event", statement_id("status", model.model_hash),
                  f"retired status of {name!r}", model=name, event_type="retired",
                  payload={"imported": record})


def _record(at: str, actor: str | None, hash_: str, **extra: Any) -> dict[str, Any]:
    """The ``imported`` record of a row: its original time (UTC ISO), actor and hash."""
    when = parse_time(at)
    record: dict[str, Any] = {"source": SOURCE, "at": utc_text(when) if when else at,
                              "actor": actor, "hash": hash_}
    record.update({k: v for k, v in extra.items() if v is not None})
    return record


def imported_record(payload: Mapping[str, Any], registered: bool = False
                    ) -> dict[str, Any] | None:
    """The ``imported`` record a snapshot's payload carries (a registration's under its
    ``metadata``), or None if it has none."""
    holder: Any = payload.get("metadata") if registered else payload
    record = holder.get("imported") if isinstance(holder, Mapping) else None
    return record if isinstance(record, dict) and record.get("source") == SOURCE else None


def original_note(record: Mapping[str, Any] | None) -> str:
    """How a table shows an imported row's original time and actor ("" if not imported):
    ``imported; originally at T by A``, never as the log's time."""
    if record is None:
        return ""
    at, actor = record.get("at"), record.get("actor")
    text = f"imported; originally at {at}" if at else "imported; original time unknown"
    return text + (f" by {actor}" if isinstance(actor, str) and actor else "")
