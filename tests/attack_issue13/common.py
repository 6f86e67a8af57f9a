"""Shared helpers for the issue 13 attack tests (test-only)."""

from __future__ import annotations

from typing import Any

import msgspec

import verifier as v
from tests.logsim import Log, Signer


def model(name: str, tier: str = "high", model_type: str = "ml_model") -> dict[str, Any]:
    """The body of a ``register`` statement."""
    return dict(name=name, owner="risk-team", model_type=model_type, tier=tier,
                purpose=f"scores {name}", status="active", metadata={})


def scope(**kw: Any) -> dict[str, Any]:
    """A scope as a statement carries it (plain JSON), built by make_scope."""
    kw.setdefault("ops", ["event", "membership", "register", "tag"])
    out: dict[str, Any] = msgspec.to_builtins(v.make_scope(**kw))
    return out


class Scene:
    """A hand-built log: admin, a full writer ``pipe`` and an actor ``x`` granted ``role``
    with ``scope``; ``models`` registered by ``pipe`` (name -> tier)."""

    def __init__(self, scope_doc: dict[str, Any] | None, role: str = "writer",
                 models: dict[str, str] | None = None,
                 policy: dict[str, Any] | None = None) -> None:
        self.log = log = Log.create(seed="attack13")
        if policy is not None:
            log.submit(log.admin, "policy", policy=policy)
        self.pipe = Signer("ml-pipeline", b"attack13-pipe")
        self.x = Signer("scoped-x", b"attack13-x")
        log.submit(log.admin, "grant", key=self.pipe.vkey, role="writer")
        body = {} if scope_doc is None else {"scope": scope_doc}
        log.submit(log.admin, "grant", key=self.x.vkey, role=role, **body)
        for name, tier in (models or {}).items():
            log.submit(self.pipe, "register", **model(name, tier))

    def head(self, name: str) -> str:
        return self.log.heads[name]

    def try_(self, signer: Signer | None, op: str, **body: Any) -> Exception | None:
        """Replay the log, then apply one more statement: None if accepted (kept), else the
        exception (the statement is taken out again)."""
        inv = v.replay(self.log.entries)
        heads = dict(self.log.heads)
        data = self.log.submit(signer or self.x, op, **body)
        try:
            inv.apply(data)
        except v.VerifierError as exc:
            self.log.entries.pop()
            self.log.heads = heads
            return exc
        return None

    def ok(self, signer: Signer | None, op: str, **body: Any) -> None:
        got = self.try_(signer, op, **body)
        assert got is None, got
