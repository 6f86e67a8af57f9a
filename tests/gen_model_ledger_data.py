"""Make the model-ledger 0.7.13 SQLite databases under tests/data/model_ledger/.

Run with the python of a venv that has model-ledger 0.7.13 (never the project's):

    python3 -m venv /tmp/mlvenv && /tmp/mlvenv/bin/pip install -q model-ledger==0.7.13
    /tmp/mlvenv/bin/python tests/gen_model_ledger_data.py

Timestamps are fixed so that the files are the same on every run (but for SQLite's own
page layout). ``small.db``: models, events, tag moves, a group with members added and
removed, a retired model. ``odd_names.db``: names outside modelseal's name profile.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from model_ledger import Ledger  # type: ignore[import-not-found]

OUT = Path(__file__).resolve().parent / "data" / "model_ledger"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


def _fresh(name: str) -> tuple[Ledger, Path]:
    path = OUT / name
    for p in (path, path.with_name(name + "-wal"), path.with_name(name + "-shm")):
        p.unlink(missing_ok=True)
    return Ledger.from_sqlite(str(path)), path


def _set_times(ml: Ledger, path: Path, start: datetime) -> None:
    """model-ledger stamps registrations, membership changes and tags with the wall
    clock: move every such time (any after ``start`` + 1 year) onto a fixed timeline, in
    the order the rows were written, and each model's created_at onto its registration's
    time. (model-ledger's own hashes then no longer match these times; the importer only
    carries them over.)"""
    ml.backend._conn.close()
    con = sqlite3.connect(path)
    cut = (start + timedelta(days=365)).isoformat()
    rows = con.execute("SELECT 's', rowid FROM snapshots WHERE timestamp > ? UNION ALL "
                       "SELECT 't', rowid FROM tags WHERE updated_at > ? ORDER BY 1, 2",
                       (cut, cut)).fetchall()
    for i, (table, rowid) in enumerate(rows):
        when = (start + timedelta(minutes=i)).isoformat()
        if table == "s":
            con.execute("UPDATE snapshots SET timestamp = ? WHERE rowid = ?", (when, rowid))
        else:
            con.execute("UPDATE tags SET updated_at = ? WHERE rowid = ?", (when, rowid))
    con.execute("UPDATE models SET created_at = (SELECT timestamp FROM snapshots s WHERE "
                "s.model_hash = models.model_hash AND s.event_type = 'registered')")
    con.commit()
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("VACUUM")
    con.close()


def small() -> None:
    ml, path = _fresh("small.db")
    for name, tier in (("fraud_scoring", "high"), ("churn_model", "medium"),
                       ("feature_pipeline", "low")):
        ml.register(name=name, owner="risk-team", model_type="ml_model", tier=tier,
                    purpose=f"Purpose of {name}", actor="alice",
                    metadata={"framework": "sklearn"})
    day = T0 + timedelta(days=1)
    ml.record("fraud_scoring", event="retrained", payload={"accuracy": 0.91}, actor="ci-bot",
              timestamp=day)
    ml.record("fraud_scoring", event="validated", payload={"auc": 0.88, "ok": True},
              actor="validation-team", timestamp=day + timedelta(hours=2))
    ml.record("churn_model", event="deployed", payload={"env": "prod"}, actor="ci-bot",
              timestamp=day + timedelta(hours=3))
    ml.record("churn_model", event="Deployed To Prod!", payload={"imported": "clash"},
              actor="ci-bot", timestamp=day + timedelta(hours=4))
    ml.register_group(name="scoring_suite", owner="risk-team", model_type="composite",
                      tier="high", purpose="Scoring pipeline", members=["fraud_scoring"],
                      actor="alice")
    ml.add_member("scoring_suite", "feature_pipeline", role="features", actor="alice")
    ml.remove_member("scoring_suite", "feature_pipeline", reason="replaced", actor="bob")
    ml.record("feature_pipeline", event="retired", payload={"reason": "replaced"},
              actor="bob", timestamp=day + timedelta(days=3))
    ml.tag("fraud_scoring", "production")
    ml.tag("churn_model", "production")
    ml.backend._conn.execute("UPDATE models SET status = 'deprecated' "
                             "WHERE name = 'churn_model'")  # written in place, no event
    ml.backend._conn.commit()
    _set_times(ml, path, T0)


def odd_names() -> None:
    ml, path = _fresh("odd_names.db")
    ml.register(name="good_model", owner="team", model_type="ml_model", tier="low",
                purpose="fine", actor="alice")
    ml.register(name="bad\x1bname", owner="team", model_type="ml_model", tier="low",
                purpose="control character", actor="alice")
    ml.register(name="ok_name", owner="te\u202eam", model_type="ml_model", tier="low",
                purpose="bidi owner", actor="alice")
    ml.record("bad\x1bname", event="retrained", payload={}, actor="alice",
              timestamp=T0 + timedelta(days=1))
    ml.record("good_model", event="retrained", payload={"blob": "x" * 70_000}, actor="alice",
              timestamp=T0 + timedelta(days=1))
    ml.record("good_model", event="evaluated", payload={"n": 1}, actor="alice",
              timestamp=T0 + timedelta(days=2))
    _set_times(ml, path, T0)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    small()
    odd_names()
    print(f"wrote {OUT}", file=sys.stderr)
