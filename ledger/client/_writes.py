"""The write verbs of ``Client``, with the Ledger's names, signatures and results: each
builds and signs a statement with the client's actor key, sends it to ``POST /add``
(the same bytes again after a transient failure, never signed again), and verifies the
receipt before it answers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from verifier import (
    AuthorizationError,
    Checkpoint,
    ParsedEntry,
    Policy,
    Register,
    RuleError,
    Scope,
    VerifierKey,
    model_hash,
    parse_signed_statement,
    statement_model,
)

from ..keys import ActorKey
from ..results import ModelRef, Snapshot, Tag
from ..statements import build_signed
from . import _verify, _wire
from ._errors import ServerMisbehaviourError
from ._http import Http


class Writes(ABC):
    """What a Client offers to write (the base of Client)."""

    actor: ActorKey | None
    _http: Http
    _key: VerifierKey
    _clock: Callable[[], datetime] | None
    _model_hashes: dict[str, str]

    @abstractmethod
    def log_info(self) -> _wire.LogInfo:
        """The log's identity (``GET /log``, checked)."""

    @abstractmethod
    def history(self, name: str) -> list[Snapshot]:
        """A model's chain."""

    @abstractmethod
    def _observe(self, cp: Checkpoint) -> None:
        """Check a verified checkpoint against the kept one; keep it if newer."""

    # -- sending -----------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock() if self._clock is not None else datetime.now(timezone.utc)

    def _send(self, envelope: bytes) -> ParsedEntry:
        """POST the envelope's exact bytes; verify the receipt; keep its checkpoint.
        Returns the entry (parsed) the receipt proves."""
        _, data, key_id, sig = parse_signed_statement(envelope)  # MalformedInputError
        info = self.log_info()  # the pinned key is the server's, before anything is sent
        answer = self._http.call("POST", "/add", content=envelope,
                                 headers={"Content-Type": "application/json"})
        if answer.status not in (200, 201):
            raise ServerMisbehaviourError(f"POST /add answered {answer.status}, not 200 or "
                                          f"201")
        raw = _wire.receipt(answer.body)
        p, cp = _verify.receipt(raw, (data, key_id, sig), self._key, info.origin)
        self._observe(cp)
        return p

    def _sign_and_send(self, op: str, **body: Any) -> ParsedEntry:
        signer = self._need_actor()
        info = self.log_info()
        signed = build_signed(signer, info.origin, op, log_id=info.log_id,
                              claimed_at=self._now(), **body)
        return self._send(signed.envelope())

    def _need_actor(self) -> ActorKey:
        if self.actor is None:
            raise ValueError("give the Client an actor key to use the convenience methods")
        return self.actor

    def _snapshot(self, p: ParsedEntry) -> Snapshot:
        """The Snapshot of a model entry the server proved."""
        st = p.statement
        if isinstance(st, Register):
            mh = model_hash(st.name, st.owner, p.entry.recorded_at)
            self._model_hashes[st.name] = mh
        else:
            mh = self._model_hash(statement_model(st) or "")
        return Snapshot.from_entry(p, mh)

    def _model_hash(self, name: str) -> str:
        """The model's hash: known from a registration, a history or an inventory this
        client saw, else read from its history; "" if this client's key may not read."""
        found = self._model_hashes.get(name)
        if found is None:
            try:
                self.history(name)
            except AuthorizationError:  # 401 or 403: this key may not read
                return ""
            found = self._model_hashes.get(name, "")
        return found

    # -- the verbs ----------------------------------------------------------------------

    def submit(self, signed_statement: bytes) -> Snapshot | None:
        """Append a statement signed elsewhere (``sign_statement``), its exact bytes; as
        ``Ledger.submit``. Returns its snapshot (None for keyring statements), after the
        receipt is verified. The same statement again returns the original."""
        if not isinstance(signed_statement, (bytes, bytearray, memoryview)):
            raise TypeError("submit takes the signed statement's bytes, not "
                            f"{type(signed_statement).__name__}")
        p = self._send(bytes(signed_statement))
        return None if statement_model(p.statement) is None else self._snapshot(p)

    def grant(self, vkey: str, role: str = "writer", scope: Scope | None = None) -> None:
        """Grant an actor key (its ``name+hex8+base64`` string) a role, narrowed by
        ``scope`` if given; as ``Ledger.grant``."""
        body: dict[str, Any] = {} if scope is None else {"scope": scope}
        self._sign_and_send("grant", key=vkey, role=role, **body)

    def set_policy(self, policy: Policy | None) -> None:
        """Put ``policy`` in force (None lifts it); as ``Ledger.set_policy``."""
        self._sign_and_send("policy", policy=policy)

    def revoke(self, name: str, reason: str | None = None) -> None:
        """Revoke the active key of actor ``name``."""
        self._sign_and_send("revoke", name=name, reason=reason)

    def register(self, *, name: str, owner: str, model_type: str, tier: str, purpose: str,
                 status: str = "active", metadata: dict[str, Any] | None = None) -> ModelRef:
        """Register a model. The same fields again return the existing ref; other fields
        raise RuleError. The server refuses a second registration (409 RuleError); the
        client then reads the model's history to tell the two apart, so a key that may
        not read gets that RuleError even for the same fields."""
        fields: dict[str, Any] = {"owner": owner, "model_type": model_type, "tier": tier,
                                  "purpose": purpose, "status": status,
                                  "metadata": metadata or {}}
        return self._register(name, fields)[0]

    def _register(self, name: str, fields: dict[str, Any]) -> tuple[ModelRef, bool]:
        """(the ref, whether this call registered it)."""
        try:
            p = self._sign_and_send("register", name=name, **fields)
        except RuleError as refused:
            found = self._existing(name, fields)
            if found is None:
                raise refused from None
            return found, False
        return _ref(self._snapshot(p)), True

    def _existing(self, name: str, fields: dict[str, Any]) -> ModelRef | None:
        """The registration of ``name`` if it has these ``fields`` (RuleError if other
        ones); None if it is unknown or this client may not read it."""
        try:
            snaps = self.history(name)
        except AuthorizationError:  # 401 or 403: this key may not read
            return None
        if not snaps:
            return None
        if snaps[0].payload != fields:
            raise RuleError(f"model {name!r} is registered with other fields; "
                            f"record an 'updated' event to change them")
        return _ref(snaps[0])

    def record(self, name: str, event: str, payload: dict[str, Any] | None = None) -> Snapshot:
        """Record event ``event`` about model ``name``."""
        p = self._sign_and_send("event", model=name, event_type=event, payload=payload or {})
        return self._snapshot(p)

    def update(self, name: str, **fields: Any) -> Snapshot:
        """Change identity fields (owner, model_type, tier, purpose, status, metadata)."""
        return self.record(name, "updated", fields)

    def retire(self, name: str, reason: str | None = None) -> Snapshot:
        """Mark a model retired."""
        return self.record(name, "retired", {} if reason is None else {"reason": reason})

    def tag(self, name: str, tag: str, snapshot: str | None = None) -> Tag:
        """Point ``tag`` at ``snapshot`` (default: the model's latest snapshot, read from
        its history)."""
        if snapshot is None:
            snaps = [s for s in self.history(name) if s.op in ("register", "event")]
            if not snaps:
                raise RuleError(f"unknown model {name!r}")
            snapshot = snaps[-1].snapshot_hash
        moved = self._snapshot(self._sign_and_send("tag", model=name, tag=tag,
                                                   target=snapshot))
        return Tag(name, tag, snapshot, moved)

    def add_member(self, group: str, member: str, role: str | None = None) -> Snapshot:
        """Add ``member`` to ``group``."""
        return self._snapshot(self._sign_and_send("member_add", group=group, member=member,
                                                  role=role))

    def remove_member(self, group: str, member: str, reason: str | None = None) -> Snapshot:
        """Remove ``member`` from ``group``."""
        return self._snapshot(self._sign_and_send("member_remove", group=group,
                                                  member=member, reason=reason))

    def register_group(self, *, name: str, owner: str, model_type: str = "group",
                       tier: str, purpose: str, status: str = "active",
                       metadata: dict[str, Any] | None = None,
                       members: list[str] | None = None) -> ModelRef:
        """Register a group and add its members. Unlike ``Ledger.register_group`` this is
        several statements, each its own commit: if one fails, those before it stay.
        Calling it again completes it (members already there are not added twice)."""
        ref, created = self._register(name, {
            "owner": owner, "model_type": model_type, "tier": tier, "purpose": purpose,
            "status": status, "metadata": metadata or {}})
        present: set[str] = set()
        if members and not created:
            present = set(members_of(self.history(name)))
        for member in members or []:
            if member not in present:
                self.add_member(name, member)
                present.add(member)
        return ref


def members_of(snaps: list[Snapshot]) -> dict[str, str | None]:
    """A group's members (and roles) after its chain ``snaps``."""
    members: dict[str, str | None] = {}
    for s in snaps:
        if s.event_type == "member_added":
            members[s.payload["member"]] = s.payload["role"]
        elif s.event_type == "member_removed":
            members.pop(s.payload["member"], None)
    return members


def _ref(snap: Snapshot) -> ModelRef:
    p = snap.payload
    return ModelRef(snap.model, snap.model_hash, p["owner"], p["model_type"], p["tier"],
                    p["purpose"], p["status"], p["metadata"], snap)
