"""An in-memory log writer for tests: signs statements, appends entries, signs
checkpoints and exports bundles, using only verifier/'s format functions and
the recursive reference for proofs. Deterministic when given seeds and a clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import verifier as v
from tests import reference as ref

T0 = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z
DAY = 86_400 * 10**9
CLAIM_SKEW = 300 * 10**9
CLAIM_WINDOW = DAY


@dataclass
class Signer:
    """An Ed25519 key with a signed-note name, from a deterministic seed."""

    name: str
    seed: bytes

    def __post_init__(self) -> None:
        self.private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(self.seed).digest())
        pub = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key = v.VerifierKey.from_public_bytes(self.name, pub)

    @property
    def vkey(self) -> str:
        return self.key.vkey

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


@dataclass
class Log:
    """A log in memory. ``clock`` is the next recorded_at; ``step`` advances it per entry."""

    origin: str
    log_key: Signer
    admin: Signer
    clock: int = T0
    step: int = DAY // 4
    entries: list[bytes] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    log_id: str | None = None

    @classmethod
    def create(cls, origin: str = "example.com/models", seed: str = "t") -> Log:
        log = cls(origin, Signer(origin, f"{seed}-log".encode()),
                  Signer("risk-admin", f"{seed}-admin".encode()))
        log.submit(log.admin, "genesis", log_key=log.log_key.vkey, admin_key=log.admin.vkey,
                   claim_skew=CLAIM_SKEW, claim_window=CLAIM_WINDOW)
        log.log_id = v.snapshot_hash(log.entries[0])
        return log

    def statement(self, signer: Signer, op: str, **body: Any) -> bytes:
        """Canonical statement bytes, built through msgspec's tagged union."""
        self.counter += 1
        doc = {"v": 2, "op": op, "id": f"stmt-{self.counter:012d}-{signer.name}"[:128],
               "actor": signer.name, "origin": self.origin, "claimed_at": self.clock, **body}
        if op != "genesis" and "log" not in body:
            doc["log"] = self.log_id or "0" * 64
        st = msgspec.convert(doc, v.Statement)
        return v.statement_bytes(st)

    def submit(self, signer: Signer, op: str, **body: Any) -> bytes:
        """Sign and append; returns the entry bytes. Does not check the rules."""
        st_bytes = self.statement(signer, op, **body)
        return self.append(st_bytes, signer.key.key_id, signer.sign(st_bytes))

    def outcome(self, signer: Signer, op: str, **body: Any) -> v.VerifierError | None:
        """Replay the log, then sign, append and apply one more statement: None if it is
        accepted (it stays in the log), else the VerifierError (the entry is taken out again;
        the clock and the statement counter stay moved on). The replay before it must pass."""
        inv = v.replay(self.entries)
        heads = dict(self.heads)
        data = self.submit(signer, op, **body)
        try:
            inv.apply(data)
        except v.VerifierError as exc:
            self.entries.pop()
            self.heads = heads
            return exc
        return None

    def append(self, st_bytes: bytes, key_id: bytes, sig: bytes,
               prev: str | None | bool = True) -> bytes:
        st = v.parse_statement(st_bytes)
        model = {"register": None}.get(v.entry.op_name(st), v.entry.statement_model(st))
        if prev is True:
            prev = self.heads.get(model) if model else None
        data = v.entry_bytes(index=len(self.entries), recorded_at=self.clock, prev=prev or None,
                             statement=st_bytes, key_id=key_id, sig=sig)
        name = v.entry.statement_model(st)
        if name:
            self.heads[name] = v.snapshot_hash(data)
        self.entries.append(data)
        self.clock += self.step
        return data

    # -- tree heads and proofs ---------------------------------------------------

    def time_after(self, size: int) -> int:
        """The latest time a checkpoint of ``size`` can carry: just before entry ``size``
        (or before the next entry the log would append)."""
        if size < len(self.entries):
            return v.parse_entry(self.entries[size]).entry.recorded_at - 1
        return self.clock - 1

    def checkpoint(self, size: int | None = None, signer: Signer | None = None,
                   time: int | None = None) -> bytes:
        size = len(self.entries) if size is None else size
        signer = signer or self.log_key
        time = self.time_after(size) if time is None else time
        if size == len(self.entries) and time >= self.clock:
            self.clock = time + 1  # like the ledger: later entries come after the checkpoint
        text = v.checkpoint_text(self.origin, size, ref.mth(self.entries[:size]),
                                 [v.time_line(time)])
        line = v.signature_line(signer.name, signer.key.key_id, signer.sign(text))
        return v.assemble_note(text, [line])

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return ref.path(index, self.entries[:size])

    def consistency(self, old: int, new: int) -> list[bytes]:
        return ref.proof(old, self.entries[:new])

    def size_at(self, t: int) -> int:
        return sum(1 for e in self.entries if v.parse_entry(e).entry.recorded_at <= t)

    def bundle(self, t: int, size: int | None = None, trusted: int | None = None) -> bytes:
        s = len(self.entries) if size is None else size
        n = min(self.size_at(t), s)
        nxt = self.entries[n] if n < s else None
        # a whole-log bundle for a later time gets a checkpoint signed then, as the ledger does
        cp_time = max(t, self.time_after(s)) if s == len(self.entries) else None
        return v.encode_bundle(
            checkpoint=self.checkpoint(s, time=cp_time), size=n, time=t,
            root=ref.mth(self.entries[:n]),
            consistency=self.consistency(n, s), entries=self.entries[:n], next_entry=nxt,
            next_proof=self.inclusion(n, s) if nxt is not None else [],
            from_trusted=None if trusted is None else (trusted, self.consistency(trusted, s)),
        )


def sample_log(models: int = 6, seed: str = "t") -> tuple[Log, Signer]:
    """A small realistic history: a pipeline key, models, events, tags, a group, a revoke."""
    log = Log.create(seed=seed)
    pipe = Signer("ml-pipeline", f"{seed}-pipe".encode())
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    names = [f"model_{i:02d}" for i in range(models)]
    for i, name in enumerate(names):
        log.submit(pipe, "register", name=name, owner=f"team-{i % 3}", model_type="ml_model",
                   tier=["high", "medium", "low"][i % 3], purpose=f"Purpose of {name}",
                   status="active", metadata={"framework": "sklearn", "i": i})
    for i, name in enumerate(names):
        ev = log.submit(pipe, "event", model=name, event_type="retrained",
                        payload={"accuracy": 0.9 + i / 100, "rows": 1000 * i})
        log.submit(pipe, "tag", model=name, tag="production", target=v.snapshot_hash(ev))
        log.submit(log.admin, "event", model=name, event_type="validated",
                   payload={"by": "independent-validation", "result": "pass"})
    log.submit(pipe, "register", name="fraud_suite", owner="risk-team", model_type="group",
               tier="high", purpose="Composite", status="active", metadata={})
    for name in names[:3]:
        log.submit(pipe, "member_add", group="fraud_suite", member=name, role="component")
    log.submit(pipe, "event", model=names[-1], event_type="updated", payload={"tier": "high"})
    log.submit(pipe, "event", model=names[-2], event_type="retired", payload={"reason": "replaced"})
    log.submit(pipe, "member_remove", group="fraud_suite", member=names[0], reason="split")
    log.submit(log.admin, "revoke", name="ml-pipeline", reason="rotated")
    return log, pipe
