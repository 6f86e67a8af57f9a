"""Shared helpers for the issue 13 attack tests (test-only)."""

from __future__ import annotations

from typing import Any

from tests.helpers import model_doc
from tests.logsim import Log, Signer


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
            log.submit(self.pipe, "register", **model_doc(name, tier))

    def head(self, name: str) -> str:
        return self.log.heads[name]

    def try_(self, signer: Signer | None, op: str, **body: Any) -> Exception | None:
        """Replay the log, then apply one more statement: None if accepted (kept), else the
        exception (the statement is taken out again)."""
        return self.log.outcome(signer or self.x, op, **body)

    def ok(self, signer: Signer | None, op: str, **body: Any) -> None:
        got = self.try_(signer, op, **body)
        assert got is None, got
