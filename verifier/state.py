"""The replay state: what the log's rules read and write, behind one explicit seam.

``verifier.replay.Replayer`` holds the rules and no state; it reads and writes
only through a ``ReplayState`` (a Protocol). ``MemoryState`` is the in-memory
implementation the verifier uses; a writer implements the same few methods
over its store. The seam is shaped after python-tuf's TrustedMetadataSet:
trusted state, no I/O in the rules, one explicit step per entry.

Also here: the records the state holds (``ModelState``, ``KeyRecord``,
``TimelineItem``, re-exported by ``verifier.replay``), the log's fixed
parameters (``LogParams``) and the signature strategy (``SignatureCheck``).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from .canonical import canonical_json
from .entry import Event, MemberAdd, MemberRemove, ParsedEntry, Register, TagMove, op_name
from .keys import VerifierKey
from .policy import Policy
from .scope import Scope, preset
from .timeutil import iso

__all__ = [
    "KeyRecord", "LogParams", "MemoryState", "ModelState", "PolicyRecord", "ReplayState",
    "SignatureCheck", "TimelineItem", "check_signature",
]


# -- the records ------------------------------------------------------------------------------


@dataclass
class KeyRecord:
    """One grant of an actor key, and its revocation if any."""

    key: VerifierKey
    role: str
    granted_index: int
    granted_at: int
    granted_by: str
    revoked_index: int | None = None
    revoked_at: int | None = None
    revoked_by: str | None = None
    reason: str | None = None
    scope: Scope | None = None  # None: the role's preset

    @property
    def effective_scope(self) -> Scope:
        """The scope in force for this key: its grant's, else its role's preset."""
        return self.scope if self.scope is not None else preset(self.role)

    @property
    def name(self) -> str:
        """The actor's name."""
        return self.key.name

    @property
    def vkey(self) -> str:
        """The key's ``name+hex8+base64`` text."""
        return self.key.vkey


@dataclass(slots=True)
class TimelineItem:
    """One entry in a model's chain.

    ``detail_json`` is the canonical JSON of the entry's detail: an event's payload, a
    tag's ``tag`` and ``target``, a membership's ``member`` and ``role`` or ``reason``,
    ``{}`` for a registration. It is kept as bytes and decoded on demand (``detail``):
    a payload parsed into Python objects can take 20 times its size in memory.
    """

    index: int
    recorded_at: int
    snapshot: str
    op: str
    event_type: str | None
    actor: str
    detail_json: bytes

    @property
    def detail(self) -> dict[str, Any]:
        """The detail as a new JSON object."""
        return _detail_decoder.decode(self.detail_json)


_detail_decoder = msgspec.json.Decoder(dict[str, Any])
_NO_DETAIL = b"{}"


class ModelState(msgspec.Struct, array_like=True, gc=False):
    """A model's fields and links as of the last applied entry.

    ``latest`` is its newest snapshot (registration or event); ``head`` its
    newest entry of any kind (what the next entry's ``prev`` must name).
    A msgspec Struct, so that a writer can store and reload it compactly.
    Not tracked by the cyclic GC (an inventory holds tens of thousands; a state
    never refers back to itself): do not put a state inside its own metadata.
    """

    name: str
    model_hash: str
    owner: str
    model_type: str
    tier: str
    purpose: str
    status: str
    metadata: dict[str, Any]
    registered_at: int
    latest: str
    head: str
    last_event_type: str = "registered"
    last_event_at: int = 0
    last_validation_at: int | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    members: dict[str, str | None] = msgspec.field(default_factory=dict)
    # The groups this model is directly a member of: the reverse of every group's
    # ``members``, kept so that rule 17's cycle check can also walk up. Not in fields():
    # a past state read back from a writer's history rows may hold an older value.
    groups: dict[str, None] = msgspec.field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The identity and status fields, as plain JSON."""
        return {
            "name": self.name,
            "model_hash": self.model_hash,
            "owner": self.owner,
            "model_type": self.model_type,
            "tier": self.tier,
            "purpose": self.purpose,
            "status": self.status,
            "metadata": self.metadata,
            "registered_at": self.registered_at,
            "latest": self.latest,
            "head": self.head,
            "last_event_type": self.last_event_type,
            "last_event_at": self.last_event_at,
            "last_validation_at": self.last_validation_at,
            "tags": dict(sorted(self.tags.items())),
            "members": dict(sorted(self.members.items())),
        }

    def to_json(self) -> dict[str, Any]:
        """``fields()`` with times as ISO 8601 UTC text, for people and JSON output."""
        out = self.fields()
        for key in ("registered_at", "last_event_at", "last_validation_at"):
            if out[key] is not None:
                out[key] = iso(out[key])
        return out


@dataclass(frozen=True)
class LogParams:
    """What the genesis fixes for the log's life.

    Precondition: built from a genesis entry that passed every check (``Replayer`` does
    this); ``log_id`` is that entry's snapshot hash, the two claim limits are in ns.
    """

    origin: str
    log_key: VerifierKey
    log_id: str  # the genesis entry's snapshot hash
    claim_skew: int  # ns
    claim_window: int  # ns


@dataclass(frozen=True)
class PolicyRecord:
    """A policy put in force (or lifted: ``policy`` None) by the entry at ``index``,
    recorded at ``at`` by actor ``by``."""

    policy: Policy | None
    index: int
    at: int
    by: str


# -- the seam ---------------------------------------------------------------------------------


class ReplayState(Protocol):
    """The reads and writes replay needs, nothing more.

    ``Replayer`` calls a write only after every check of the entry passed, and then all
    the writes of that entry, ending with ``appended``; a refused entry calls no write.
    An implementation must therefore make an entry's writes visible to the next entry's
    reads, and may buffer them (e.g. in a transaction) until ``appended``. Reads must not
    fail for an absent item: they return None. The state never checks a rule itself.
    """

    @property
    def params(self) -> LogParams | None:
        """The log's parameters; None before the genesis is applied."""
        ...

    @property
    def size(self) -> int:
        """The number of entries applied."""
        ...

    @property
    def last_recorded_at(self) -> int:
        """``recorded_at`` of the last entry applied; 0 when empty."""
        ...

    def model(self, name: str) -> ModelState | None:
        """The model's current state, or None if it is not registered. The caller may
        mutate the returned state, and must then ``put_model`` it."""
        ...

    def statement_index(self, statement_id: str) -> int | None:
        """The index of the entry holding that statement id, or None."""
        ...

    def snapshot_model(self, snapshot: str) -> str | None:
        """The model whose registration or event has this snapshot hash (a valid tag
        target), or None (unknown hash, or a keyring, tag or membership entry)."""
        ...

    def active_key(self, actor: str) -> KeyRecord | None:
        """The actor's granted, unrevoked key, or None."""
        ...

    def admin_count(self) -> int:
        """The number of active keys with the ``admin`` role."""
        ...

    @property
    def policy(self) -> PolicyRecord | None:
        """The last policy statement applied (the genesis's policy counts); None if there
        was none. Its ``policy`` is None when the last one lifted the policy."""
        ...

    def set_params(self, params: LogParams) -> None:
        """Record the genesis's parameters. Called once, for entry 0."""
        ...

    def put_model(self, state: ModelState) -> None:
        """Store ``state`` as the current state of model ``state.name``."""
        ...

    def set_policy(self, record: PolicyRecord) -> None:
        """Record the policy an entry put in force (or lifted)."""
        ...

    def add_key(self, record: KeyRecord) -> None:
        """Record a grant. Precondition: ``record.name`` has no active key."""
        ...

    def revoke_key(self, actor: str, *, index: int, at: int, by: str,
                   reason: str | None) -> KeyRecord:
        """Revoke the actor's active key at entry ``index``, time ``at``, by actor ``by``;
        return its record, revocation filled in. Precondition: the actor has an active
        key (``active_key(actor)`` is not None)."""
        ...

    def appended(self, p: ParsedEntry, model: str | None, snapshot_of: str | None) -> None:
        """Entry ``p`` was applied: size += 1, last_recorded_at = p.entry.recorded_at,
        statement id -> index. ``model``: the model whose chain the entry extends (None
        for keyring entries: genesis, grant, revoke). ``snapshot_of``: that model's name
        when the entry is a registration or event (a valid tag target), else None.
        Called last, once per applied entry."""
        ...


SignatureCheck = Callable[[VerifierKey, bytes, bytes], bool]
"""A signature strategy: (key, signature, exact signed bytes) -> does it verify?

It must return False, not raise, for a signature that does not verify; an exception
it raises propagates out of ``Replayer.apply`` with nothing applied. It must be at
least as strict as ``check_signature``, or the writer may admit what verifiers refuse."""


def check_signature(key: VerifierKey, signature: bytes, message: bytes) -> bool:
    """The default ``SignatureCheck``: ``key.verify`` (Ed25519 through cryptography).

    True if ``signature`` is ``key``'s signature over exactly ``message``; never raises
    for a bad signature or message."""
    return key.verify(signature, message)


# -- in memory --------------------------------------------------------------------------------


class MemoryState:
    """A ``ReplayState`` in memory: what the verifier replays into.

    ``keys`` holds the active keys by actor name and ``key_history`` every grant in log
    order; ``timelines`` (None unless ``keep_timelines``) each model's chain entries.
    ``models``, ``statement_ids`` and ``snapshot_owner`` may be given (e.g. maps backed
    by a store); each must start empty or hold exactly the state of ``size`` entries,
    and ``models`` values are written back whenever a model changes.
    """

    def __init__(
        self,
        *,
        models: MutableMapping[str, ModelState] | None = None,
        statement_ids: MutableMapping[str, int] | None = None,
        snapshot_owner: MutableMapping[str, str] | None = None,
        keep_timelines: bool = True,
    ) -> None:
        """An empty state (``size`` 0, no params), over the given maps if any."""
        self.params: LogParams | None = None
        self.size = 0
        self.last_recorded_at = 0
        self.models: MutableMapping[str, ModelState] = {} if models is None else models
        self.keys: dict[str, KeyRecord] = {}
        self.key_history: list[KeyRecord] = []
        self.statement_ids: MutableMapping[str, int] = (
            {} if statement_ids is None else statement_ids)
        # snapshot hash -> model name, for registrations and events (tag targets)
        self.snapshot_owner: MutableMapping[str, str] = (
            {} if snapshot_owner is None else snapshot_owner)
        self.timelines: dict[str, list[TimelineItem]] | None = {} if keep_timelines else None
        self.policy: PolicyRecord | None = None
        self.policy_history: list[PolicyRecord] = []

    def model(self, name: str) -> ModelState | None:
        """``ReplayState.model``: the stored object itself (mutating it changes the state)."""
        try:
            return self.models[name]  # [] rather than get(): a counting map sees the read
        except KeyError:
            return None

    def statement_index(self, statement_id: str) -> int | None:
        """``ReplayState.statement_index``."""
        return self.statement_ids.get(statement_id)

    def snapshot_model(self, snapshot: str) -> str | None:
        """``ReplayState.snapshot_model``."""
        return self.snapshot_owner.get(snapshot)

    def active_key(self, actor: str) -> KeyRecord | None:
        """``ReplayState.active_key``: the record itself."""
        return self.keys.get(actor)

    def admin_count(self) -> int:
        """``ReplayState.admin_count``: counts the active keys (there are few)."""
        return sum(1 for r in self.keys.values() if r.role == "admin")

    def set_params(self, params: LogParams) -> None:
        """``ReplayState.set_params``."""
        self.params = params

    def put_model(self, state: ModelState) -> None:
        """``ReplayState.put_model``."""
        self.models[state.name] = state

    def set_policy(self, record: PolicyRecord) -> None:
        """``ReplayState.set_policy``: in force, and appended to the history."""
        self.policy = record
        self.policy_history.append(record)

    def add_key(self, record: KeyRecord) -> None:
        """``ReplayState.add_key``: active under its name, and appended to the history."""
        self.keys[record.name] = record
        self.key_history.append(record)

    def revoke_key(self, actor: str, *, index: int, at: int, by: str,
                   reason: str | None) -> KeyRecord:
        """``ReplayState.revoke_key``: KeyError if the actor has no active key."""
        record = self.keys.pop(actor)
        record.revoked_index, record.revoked_at = index, at
        record.revoked_by, record.reason = by, reason
        return record

    def appended(self, p: ParsedEntry, model: str | None, snapshot_of: str | None) -> None:
        """``ReplayState.appended``; adds the entry to ``model``'s timeline if kept."""
        e = p.entry
        if model is not None:
            snap = p.snapshot_hash
            if snapshot_of is not None:
                self.snapshot_owner[snap] = snapshot_of
            if self.timelines is not None:
                self.timelines.setdefault(model, []).append(_timeline_item(p, snap))
        self.statement_ids[p.statement.id] = e.index
        self.size += 1
        self.last_recorded_at = e.recorded_at


def _timeline_item(p: ParsedEntry, snap: str) -> TimelineItem:
    """The timeline item of an applied model entry (registration, event, tag or
    membership) whose snapshot hash is ``snap``."""
    st, e = p.statement, p.entry
    event_type: str | None = None
    detail: dict[str, Any] = {}
    if isinstance(st, Event):
        event_type, detail = st.event_type, st.payload
    elif isinstance(st, Register):
        event_type = "registered"
    elif isinstance(st, TagMove):
        detail = {"tag": st.tag, "target": st.target}
    elif isinstance(st, MemberAdd):
        detail = {"member": st.member, "role": st.role}
    elif isinstance(st, MemberRemove):
        detail = {"member": st.member, "reason": st.reason}
    return TimelineItem(e.index, e.recorded_at, snap, op_name(st), event_type, st.actor,
                        canonical_json(detail) if detail else _NO_DETAIL)
