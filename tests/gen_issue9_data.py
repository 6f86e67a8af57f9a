"""Writes tests/data/issue9/: the negative cases of issue 9's formats, as exact bytes.
Run: python -m tests.gen_issue9_data

Every file is made deterministically with tests/logsim.py (seeded keys, a fixed clock,
deterministic Ed25519), so tests/test_issue9_formats.py can check that the stored files
are exactly what ``cases()`` makes now. What a verifier must do with each file is written
in the test module, not here.

File kinds:

* ``*.entries``: a log, one base64 entry per line. Every entry but the last is valid;
  replaying the last one must fail.
* ``*.statement.json``: canonical statement bytes that parse against the schema but
  break the name profile or the event-type rule (the writer's ``statement_bytes``
  would refuse them, so they are encoded here without it).
* ``*.bundle.json``: a bundle (``encode_bundle`` output, sometimes edited).
* ``*.checkpoint.txt``: a signed checkpoint note an examiner would hold as trusted.
* ``log.vkey``: the log key that signs every bundle and checkpoint here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

import verifier as v
from tests import reference as ref
from tests.helpers import bundle_bytes, bundle_doc, make_bundle, sign_text
from tests.logsim import CLAIM_SKEW, CLAIM_WINDOW, DAY, T0, Log, Signer

OUT = Path(__file__).resolve().parent / "data" / "issue9"
ORIGIN = "example.com/models"
SEED = "issue9"
MODEL = "fraud_scoring"


def ns(year: int, month: int, day: int) -> int:
    """Midnight UTC of a date, in nanoseconds."""
    return v.to_ns(datetime(year, month, day, tzinfo=timezone.utc))


JUNE_10 = ns(2025, 6, 10)
MARCH_1 = ns(2025, 3, 1)


def pipe() -> Signer:
    return Signer("ml-pipeline", f"{SEED}-pipe".encode())


def validator() -> Signer:
    return Signer("validation-team", f"{SEED}-validation".encode())


def create(clock: int = T0, **claims: int) -> Log:
    """Log.create with a chosen start time and claim limits; same keys for every log."""
    log = Log(ORIGIN, Signer(ORIGIN, f"{SEED}-log".encode()),
              Signer("risk-admin", f"{SEED}-admin".encode()), clock=clock)
    params = dict(claim_skew=CLAIM_SKEW, claim_window=CLAIM_WINDOW)
    params.update(claims)
    log.submit(log.admin, "genesis", log_key=log.log_key.vkey, admin_key=log.admin.vkey,
               **params)
    log.log_id = v.snapshot_hash(log.entries[0])
    return log


def register(log: Log, signer: Signer, name: str = MODEL, **over: Any) -> bytes:
    fields: dict[str, Any] = dict(name=name, owner="risk-team", model_type="ml_model",
                                  tier="high", purpose="Fraud detection", status="active",
                                  metadata={})
    fields.update(over)
    return log.submit(signer, "register", **fields)


def base(clock: int = T0) -> tuple[Log, Signer]:
    """Genesis, the pipeline granted, MODEL registered and retrained once."""
    log = create(clock)
    p = pipe()
    log.submit(log.admin, "grant", key=p.vkey, role="writer")
    register(log, p)
    log.submit(p, "event", model=MODEL, event_type="retrained", payload={"accuracy": 0.94})
    return log, p


def entries_file(entries: list[bytes]) -> bytes:
    return b"".join(base64.b64encode(e) + b"\n" for e in entries)


def read_entries(data: bytes) -> list[bytes]:
    """The entries of an ``*.entries`` file."""
    return [base64.b64decode(line, validate=True) for line in data.splitlines()]


def unchecked_statement(log: Log, signer: Signer, op: str, **body: Any) -> bytes:
    """Canonical statement bytes without the writer's field checks (names, event types)."""
    log.counter += 1
    doc = {"v": 2, "op": op, "id": f"stmt-{log.counter:012d}-{signer.name}",
           "actor": signer.name, "origin": log.origin, "claimed_at": log.clock,
           "log": log.log_id, **body}
    return v.canonical.canonical_json(msgspec.convert(doc, v.Statement))


def append_unchecked(log: Log, signer: Signer, op: str, **body: Any) -> bytes:
    st = unchecked_statement(log, signer, op, **body)
    return log.append(st, signer.key.key_id, signer.sign(st))


# -- time: claimed_at against recorded_at, and the checkpoint's time ---------------------------

def _validation_signed_then_recorded(claimed: int, recorded: int) -> Log:
    """A validation its actor signed (claimed_at) at ``claimed``, recorded at ``recorded``."""
    log, _ = base()
    val = validator()
    log.submit(log.admin, "grant", key=val.vkey, role="writer")
    log.clock = claimed
    st = log.statement(val, "event", model=MODEL, event_type="validated",
                       payload={"result": "pass"})
    log.clock = recorded
    log.append(st, val.key.key_id, val.sign(st))
    return log


def backdated_validation() -> bytes:
    """Signed (claimed_at) on 10 June, recorded with the log's clock set back to 1 March."""
    return entries_file(_validation_signed_then_recorded(JUNE_10, MARCH_1).entries)


def held_back() -> bytes:
    """Signed on 1 March, recorded one nanosecond later than claim_window allows."""
    log = _validation_signed_then_recorded(MARCH_1, MARCH_1 + CLAIM_WINDOW + 1)
    return entries_file(log.entries)


def time_log() -> Log:
    """Twelve entries, a quarter of a day apart, from T0."""
    log, p = base()
    for i in range(8):
        log.submit(p, "event", model=MODEL, event_type="retrained", payload={"i": i})
    return log


def recorded_at(log: Log, i: int) -> int:
    return v.parse_entry(log.entries[i]).entry.recorded_at


def whole_checkpoint_later_at() -> bytes:
    """A bundle of the whole checkpoint, its at.time edited to a day after the signing."""
    log = time_log()
    doc = bundle_doc(log.bundle(log.clock - 1))
    doc["at"]["time"] += DAY
    return bundle_bytes(doc)


def older_checkpoint_later_date() -> bytes:
    """The checkpoint of size 6 (signed just before entry 6) presented as of a month later."""
    log = time_log()
    return log.bundle(recorded_at(log, len(log.entries) - 1) + 30 * DAY, size=6)


def next_after_checkpoint() -> bytes:
    """The checkpoint (size 12) says it was signed before entry 9, which it holds, was
    recorded; the bundle's cut is at 9, so entry 9 is its next entry."""
    log = time_log()
    cp_time = recorded_at(log, 9) - 1
    s = len(log.entries)
    return make_bundle(log, 9, cp_time, s, checkpoint=log.checkpoint(s, time=cp_time))


def no_time_line() -> bytes:
    """A whole-log bundle whose checkpoint has no modelseal-time line."""
    log = time_log()
    s = len(log.entries)
    note = sign_text(v.checkpoint_text(ORIGIN, s, ref.mth(log.entries)), log.log_key)
    return make_bundle(log, s, log.clock - 1, s, checkpoint=note)


def after_trusted() -> tuple[bytes, bytes, bytes]:
    """The examiner holds a checkpoint of size 6 signed at T; the log then sets its clock back
    and records entry 6 at T. Returns (trusted note, bundle holding entry 6 among its
    entries, bundle holding it as the next entry)."""
    log = time_log()
    log.entries, log.clock = log.entries[:6], recorded_at(log, 6)
    log.heads[MODEL] = v.snapshot_hash(log.entries[-1])
    trusted = log.checkpoint(6)  # signed at clock - 1
    t_trusted = log.clock - 1
    log.clock = t_trusted  # set back: entry 6 is recorded at the trusted checkpoint's time
    p = pipe()
    for i in range(4):
        log.submit(p, "event", model=MODEL, event_type="retrained", payload={"late": i})
    whole = log.bundle(log.clock - 1, trusted=6)
    as_next = log.bundle(t_trusted - 1, trusted=6)
    assert bundle_doc(as_next)["at"]["size"] == 6
    return trusted, whole, as_next


def trusted_signed_later() -> tuple[bytes, bytes]:
    """The examiner holds a checkpoint of size 6 signed 30 days after the last entry; the
    bundle's checkpoint (size 12) says it was signed before that."""
    log = time_log()
    last = recorded_at(log, len(log.entries) - 1)
    trusted = log.checkpoint(6, time=last + 30 * DAY)
    return trusted, log.bundle(log.clock - 1, trusted=6)


# -- log binding and the genesis's claim limits ----------------------------------------------

def other_log_statement() -> bytes:
    """Logs A and B: same origin, same log key, admin and pipeline key; B was opened a day
    later, so its genesis hash differs. A statement the pipeline signed for A is appended
    to B."""
    a, p = base()
    b = create(T0 + DAY)
    b.submit(b.admin, "grant", key=p.vkey, role="writer")
    a.counter = 1000  # an id B never used, so only the log field can refuse it
    a.clock = b.clock
    st = a.statement(p, "register", name="credit_scoring", owner="risk-team",
                     model_type="ml_model", tier="high", purpose="Credit", status="active",
                     metadata={})
    b.append(st, p.key.key_id, p.sign(st))
    return entries_file(b.entries)


def genesis_claims(**claims: int) -> Callable[[], bytes]:
    def build() -> bytes:
        return entries_file(create(**claims).entries)
    return build


# -- names and event types ----------------------------------------------------------------------

def name_statement(op: str, **body: Any) -> Callable[[], bytes]:
    def build() -> bytes:
        log, p = base()
        return unchecked_statement(log, p, op, **body)
    return build


def register_body(name: str) -> dict[str, Any]:
    return dict(name=name, owner="risk-team", model_type="ml_model", tier="high",
                purpose="Fraud detection", status="active", metadata={})


def event_after(*setup: tuple[str, dict[str, Any]], op: str = "event",
                **last: Any) -> Callable[[], bytes]:
    """base(), then the setup events on MODEL (accepted), then one entry that must fail."""
    def build() -> bytes:
        log, p = base()
        for event_type, payload in setup:
            log.submit(p, "event", model=MODEL, event_type=event_type, payload=payload)
        if op == "tag":
            target = v.snapshot_hash(log.entries[3])
            log.submit(p, "tag", model=MODEL, tag="production", target=target)
        elif op == "register":
            register(log, p, "other_model", **last)
        elif op == "event_unchecked":
            append_unchecked(log, p, "event", model=MODEL, **last)
        else:
            log.submit(p, "event", model=MODEL, **last)
        return entries_file(log.entries)
    return build


RETIRE = ("retired", {"reason": "replaced"})


def cases() -> dict[str, bytes]:
    """Every file of tests/data/issue9/, by name."""
    out: dict[str, bytes] = {"log.vkey": (create().log_key.vkey + "\n").encode()}
    out["time_backdated_validation.entries"] = backdated_validation()
    out["time_held_back.entries"] = held_back()
    out["time_whole_checkpoint_later_at.bundle.json"] = whole_checkpoint_later_at()
    out["time_older_checkpoint_later_date.bundle.json"] = older_checkpoint_later_date()
    out["time_next_after_checkpoint.bundle.json"] = next_after_checkpoint()
    out["time_no_time_line.bundle.json"] = no_time_line()
    trusted, whole, as_next = after_trusted()
    out["time_after_trusted.checkpoint.txt"] = trusted
    out["time_after_trusted_entry.bundle.json"] = whole
    out["time_after_trusted_next.bundle.json"] = as_next
    trusted, bundle = trusted_signed_later()
    out["time_trusted_signed_later.checkpoint.txt"] = trusted
    out["time_trusted_signed_later.bundle.json"] = bundle
    out["log_other_log_statement.entries"] = other_log_statement()
    out["log_genesis_claim_skew_over_1h.entries"] = genesis_claims(
        claim_skew=3_600 * 10**9 + 1)()
    out["log_genesis_claim_window_over_31d.entries"] = genesis_claims(
        claim_window=31 * DAY + 1)()
    named = {
        "name_cyrillic_o": register_body("fraud_sc\u043ering"),
        "name_rlo": register_body("fraud_scoring\u202e"),
        "name_not_nfc": register_body("mode\u0301le"),
        "name_zero_width_space": register_body("fraud\u200bscoring"),
    }
    for name, body in named.items():
        out[f"{name}.statement.json"] = name_statement("register", **body)()
    for name, event_type in (("event_type_capital", "Deployed"),
                             ("event_type_space", "tag moved")):
        out[f"{name}.statement.json"] = name_statement(
            "event", model=MODEL, event_type=event_type, payload={})()
    out["event_reserved_tag_moved.entries"] = event_after(
        event_type="tag_moved", payload={"tag": "production"})()
    out["updated_owner_mixed_script.entries"] = event_after(
        op="event_unchecked", event_type="updated", payload={"owner": "risk-te\u0430m"})()
    out["updated_status_retired.entries"] = event_after(
        event_type="updated", payload={"status": "retired"})()
    out["register_retired.entries"] = event_after(op="register", status="retired")()
    out["retired_event.entries"] = event_after(
        RETIRE, event_type="retrained", payload={"accuracy": 0.95})()
    out["retired_retired_again.entries"] = event_after(
        RETIRE, event_type="retired", payload={"reason": "again"})()
    out["retired_tag_move.entries"] = event_after(RETIRE, op="tag")()
    out["reactivated_active.entries"] = event_after(event_type="reactivated", payload={})()
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    made = cases()
    for old in OUT.iterdir():
        if old.name not in made:
            old.unlink()
    for name, data in made.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
