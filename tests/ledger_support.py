"""Shared helpers for the ledger tests: a deterministic clock, a ledger factory,
state fingerprints and raw LMDB access. Test-only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import verifier as v
from ledger import ActorKey, Ledger, LogKey, sign_statement

ORIGIN = "example.com/models"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


class Clock:
    """A clock that advances ``step`` per call (``step`` may be changed between calls)."""

    def __init__(self, start: datetime = T0, step: timedelta = MINUTE) -> None:
        self.now = start
        self.step = step
        self.calls = 0

    def __call__(self) -> datetime:
        self.now += self.step
        self.calls += 1
        return self.now


class Keys:
    """The log key and the admin key of a test ledger."""

    def __init__(self) -> None:
        self.log = LogKey.generate()
        self.admin = ActorKey.generate("risk-admin")

    @property
    def trusted(self) -> list[v.VerifierKey]:
        return [self.log.key]


def make_ledger(path: Path, keys: Keys, clock: Clock | None = None) -> Ledger:
    """A new ledger at ``path`` with ``keys`` and a fresh (or given) clock."""
    # The tests sign statements claimed at T0 while the clock runs on by a minute per call.
    return Ledger.create(path, origin=ORIGIN, log_key=keys.log, admin=keys.admin,
                         clock=clock or Clock(), claim_window=timedelta(days=31))


def register(ledger: Ledger, name: str, **over: Any) -> Any:
    """Register ``name`` with default fields."""
    fields: dict[str, Any] = dict(owner="risk-team", model_type="ml_model", tier="high",
                                  purpose=f"scores {name}")
    fields.update(over)
    return ledger.register(name=name, **fields)


def pipeline_ledger(path: Path) -> Ledger:
    """A new ledger at ``path`` (system clock) whose signer is the writer ``ml-pipeline``,
    with model ``m0`` registered. The caller closes it."""
    keys = Keys()
    ledger = Ledger.create(path, origin=ORIGIN, log_key=keys.log, admin=keys.admin)
    pipe = ActorKey.generate("ml-pipeline")
    ledger.grant(pipe.vkey, role="writer")
    ledger.signer = pipe
    register(ledger, "m0")
    return ledger


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    """Fixture: a fresh ``pipeline_ledger``, closed afterwards (a test module binds it to
    the name ``led``)."""
    ledger = pipeline_ledger(tmp_path / "store")
    yield ledger
    ledger.close()


def event(ledger: Ledger, model: str = "m0", **payload: Any) -> bytes:
    """A signed ``evaluated`` event statement for ``model``, by ``ledger.signer``, claimed now."""
    assert ledger.signer is not None
    return sign_statement(ledger.signer, ORIGIN, "event", log_id=ledger.log_id,
                          claimed_at=v.from_ns(time.time_ns()), model=model,
                          event_type="evaluated", payload=payload)


def forged(data: bytes) -> bytes:
    """A signed statement with one bit of its signature flipped."""
    _, st_bytes, key_id, sig = v.parse_signed_statement(data)
    return v.signed_statement_bytes(st_bytes, key_id, bytes([sig[0] ^ 1]) + sig[1:])


def entries(ledger: Ledger, n: int | None = None) -> list[bytes]:
    """The first ``n`` (default all) entries' exact bytes."""
    return [ledger.entry(i) for i in range(ledger.size if n is None else n)]


def recorded_at(data: bytes) -> int:
    """An entry's ledger-assigned time (ns)."""
    return v.parse_entry(data).entry.recorded_at


def fingerprint(ledger: Ledger) -> tuple[int, bytes, bytes]:
    """(size, root, latest checkpoint): what a refused write must leave unchanged."""
    cp = v.Checkpoint.parse_note(ledger.checkpoint(), [v.VerifierKey.parse(ledger.log_vkey)])
    return ledger.size, cp.root, ledger.checkpoint()


def raw_rows(ledger: Ledger, db: str) -> dict[bytes, bytes]:
    """Every row of one named database."""
    store = ledger._store
    with store.env.begin(db=store.db[db]) as txn:
        return {bytes(k): bytes(val) for k, val in txn.cursor().iternext()}


@contextmanager
def raw_write(ledger: Ledger) -> Iterator[Any]:
    """A raw LMDB write transaction on the ledger's environment (for tampering)."""
    store = ledger._store
    with store.env.begin(write=True) as txn:
        yield txn


def flip(data: bytes, pos: int, bit: int = 1) -> bytes:
    """``data`` with one bit of byte ``pos`` flipped."""
    return data[:pos] + bytes([data[pos] ^ bit]) + data[pos + 1:]
