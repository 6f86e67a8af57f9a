"""The witness tests' fake log (checkpoints and add-checkpoint bodies signed by a log key,
proofs from tests/reference.py), a one-second clock, and their pytest fixtures
(``signer``, ``log``, ``state``: a test module binds them to those names). Test-only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import verifier as v
from ledger.keys import LogKey, WitnessSigner
from ledger.witness import WitnessState
from tests import reference as ref

ORIGIN = "example.com/log"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeLog:
    """A log in memory: leaves, and checkpoints signed by its key (tests/reference.py)."""

    def __init__(self, origin: str = ORIGIN, key: LogKey | None = None, tag: bytes = b"") -> None:
        self.origin = origin
        self.key = key or LogKey.generate(origin)
        self.tag = tag
        self.leaves: list[bytes] = []

    def grow(self, n: int) -> None:
        start = len(self.leaves)
        self.leaves += [b"%s leaf %d" % (self.tag, i) for i in range(start, start + n)]

    def note(self, size: int | None = None, extra_sig: bytes = b"") -> bytes:
        n = len(self.leaves) if size is None else size
        text = v.checkpoint_text(self.origin, n, ref.mth(self.leaves[:n]))
        line = v.signature_line(self.key.name or self.origin, self.key.key_id, self.key.sign(text))
        return text + b"\n" + line + extra_sig

    def body(self, old: int, size: int | None = None) -> bytes:
        n = len(self.leaves) if size is None else size
        return v.format_add_checkpoint(old, ref.proof(old, self.leaves[:n]), self.note(n))


class Clock:
    """From T0, one second later at each reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def signer() -> WitnessSigner:
    return WitnessSigner.generate("witness.example/w1")


@pytest.fixture
def log() -> FakeLog:
    f = FakeLog()
    f.grow(5)
    return f


@pytest.fixture
def state(tmp_path: Path) -> Iterator[WitnessState]:
    s = WitnessState(tmp_path / "w")
    yield s
    s.close()
