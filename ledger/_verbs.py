"""The write verbs (model-ledger's names), shared by ``Ledger`` and ``Batch``.

Internal to the ledger. A verb builds and signs a statement with the signer, then
hands it to ``_write``: the ledger's group commit, or the caller's own batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import lmdb

from verifier import ModelState, Policy, RuleError, Scope, from_ns

from . import _queries as q
from .keys import ActorKey
from .results import ModelRef, Snapshot, Tag
from .statements import Signed, build_signed
from ._store import Store
from ._writer import Appender

# Runs inside the write transaction before the statement is appended: returns the
# caller's result to append nothing, or None to append.
Prepare = Callable[[Appender], Any]
# Makes the statement to append, signed at the log's time it is given (ns): a write's
# one clock reading is both its claim and the log's time.
Make = Callable[[int], Signed]


class Verbs(ABC):
    """What both a ledger and a batch offer to write."""

    _store: Store

    @abstractmethod
    def _identity(self) -> tuple[ActorKey | None, str, str]:
        """(the signer, the log's origin, the log's id) for statements made now."""

    @abstractmethod
    def _now_ns(self) -> int:
        """The log's time now (ns)."""

    @abstractmethod
    def _reader(self) -> AbstractContextManager[lmdb.Transaction]:
        """A transaction that sees this writer's own writes."""

    @abstractmethod
    def _write(self, statement: bytes | Make, prepare: Prepare | None = None,
               at: int | None = None) -> Any:
        """Check and append a statement: submitted bytes, or one this process makes
        (``Make``) when its turn comes, at the log's time then (or ``at``). Returns its
        Snapshot (None for a keyring entry), or what ``prepare`` returned."""

    def submit(self, signed_statement: bytes) -> Snapshot | None:
        """Append a statement signed elsewhere (see ledger.statements.sign_statement):
        the envelope's exact bytes, which are parsed, checked and stored as given.

        Returns its snapshot (None for keyring statements). Submitting the same
        signed statement again returns the original and appends nothing.
        Refusals raise MalformedInputError or a VerificationError subclass and
        write nothing. Outside a batch, returns only after the commit.
        """
        if not isinstance(signed_statement, (bytes, bytearray, memoryview)):
            raise TypeError("submit takes the signed statement's bytes, not "
                            f"{type(signed_statement).__name__}")
        result: Snapshot | None = self._write(bytes(signed_statement))
        return result

    def _sign_and_write(self, op: str, *, prepare: Prepare | None = None, **body: Any) -> Any:
        signer, origin, log_id = self._identity()
        if signer is None:
            raise ValueError("open the ledger with a signer to use the convenience methods")

        def make(now: int) -> Signed:
            return build_signed(signer, origin, op, log_id=log_id, claimed_at=from_ns(now),
                                **body)

        return self._write(make, prepare)

    def grant(self, vkey: str, role: str = "writer", scope: Scope | None = None) -> None:
        """Grant an actor key (its ``name+hex8+base64`` string) a role: writer, admin or
        reader (``verifier.ROLES``; another role raises ValueError). Admins only.

        ``scope`` (``verifier.make_scope``) narrows what the key may sign; None holds the
        role's preset (``verifier.preset``). A scope allowing an op the role does not is
        refused (RuleError)."""
        body: dict[str, Any] = {} if scope is None else {"scope": scope}
        self._sign_and_write("grant", key=vkey, role=role, **body)

    def set_policy(self, policy: Policy | None) -> None:
        """Put ``policy`` (``verifier.make_policy``) in force from the next entry on: only
        the event types it lists are accepted, each with the payload fields it requires.
        None lifts the policy in force. Admins only."""
        self._sign_and_write("policy", policy=policy)

    def revoke(self, name: str, reason: str | None = None) -> None:
        """Revoke the active key of actor ``name``."""
        self._sign_and_write("revoke", name=name, reason=reason)

    def register(self, *, name: str, owner: str, model_type: str, tier: str, purpose: str,
                 status: str = "active", metadata: dict[str, Any] | None = None) -> ModelRef:
        """Register a model. The same fields again return the existing ref; other
        fields raise RuleError (record an ``updated`` event instead). Decided inside
        the write transaction, so two writers registering at once agree."""
        fields: dict[str, Any] = {"owner": owner, "model_type": model_type, "tier": tier,
                                  "purpose": purpose, "status": status,
                                  "metadata": metadata or {}}

        def existing(txn: lmdb.Transaction) -> ModelRef | None:
            chain = q.chain(self._store, txn, name)
            if not chain:
                return None
            first = q.snapshot(self._store, txn, chain[0])
            if first.payload != fields:
                raise RuleError(f"model {name!r} is registered with other fields; "
                                f"record an 'updated' event to change them")
            return _ref(first)

        with self._reader() as txn:  # the common case, without signing anything
            found = existing(txn)
        if found is not None:
            return found
        out = self._sign_and_write("register", name=name, prepare=lambda app: existing(app.txn),
                                   **fields)
        return out if isinstance(out, ModelRef) else _ref(out)

    def record(self, name: str, event: str, payload: dict[str, Any] | None = None) -> Snapshot:
        """Record event ``event`` about model ``name``."""
        snap: Snapshot = self._sign_and_write("event", model=name, event_type=event,
                                              payload=payload or {})
        return snap

    def update(self, name: str, **fields: Any) -> Snapshot:
        """Change identity fields (owner, model_type, tier, purpose, status, metadata)."""
        return self.record(name, "updated", fields)

    def retire(self, name: str, reason: str | None = None) -> Snapshot:
        """Mark a model retired."""
        return self.record(name, "retired", {} if reason is None else {"reason": reason})

    def tag(self, name: str, tag: str, snapshot: str | None = None) -> Tag:
        """Point ``tag`` at ``snapshot`` (default: the model's latest snapshot)."""
        if snapshot is None:
            current = self._state(name)
            if current is None:
                raise RuleError(f"unknown model {name!r}")
            snapshot = current.latest
        moved: Snapshot = self._sign_and_write("tag", model=name, tag=tag, target=snapshot)
        return Tag(name, tag, snapshot, moved)

    def add_member(self, group: str, member: str, role: str | None = None) -> Snapshot:
        """Add ``member`` to ``group``."""
        snap: Snapshot = self._sign_and_write("member_add", group=group, member=member,
                                              role=role)
        return snap

    def remove_member(self, group: str, member: str, reason: str | None = None) -> Snapshot:
        """Remove ``member`` from ``group``."""
        snap: Snapshot = self._sign_and_write("member_remove", group=group, member=member,
                                              reason=reason)
        return snap

    def _group(self, name: str, owner: str, model_type: str, tier: str, purpose: str,
               status: str, metadata: dict[str, Any] | None, members: list[str] | None
               ) -> ModelRef:
        ref = self.register(name=name, owner=owner, model_type=model_type, tier=tier,
                            purpose=purpose, status=status, metadata=metadata)
        current = self._state(name)
        present = set() if current is None else set(current.members)
        for member in members or []:
            if member not in present:  # a repeated call adds nothing twice
                self.add_member(name, member)
        return ref

    def _state(self, name: str) -> ModelState | None:
        with self._reader() as txn:
            return q.state(self._store, txn, name)



def _ref(snap: Snapshot) -> ModelRef:
    p = snap.payload
    return ModelRef(snap.model, snap.model_hash, p["owner"], p["model_type"], p["tier"],
                    p["purpose"], p["status"], p["metadata"], snap)
