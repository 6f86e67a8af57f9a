"""Replay of log entries into an inventory: the one definition of the log's rules.

``Inventory.apply(entry_bytes)`` checks an entry against everything before it
(order, time, chain link, signature, the actor's grant and role, the
inventory rules) and only then applies it; a failed check changes nothing.
The ledger uses ``check_statement`` to refuse a write before assigning it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass

import msgspec
from typing import Any, NamedTuple

from .canonical import canonical_json
from .encoding import MAX_UINT64
from .entry import (
    MODEL_FIELDS,
    NAME_RE,
    TEXT_RE,
    Event,
    Genesis,
    Grant,
    MemberAdd,
    MemberRemove,
    ParsedEntry,
    Register,
    Revoke,
    Statement,
    TagMove,
    model_hash,
    op_name,
    parse_entry,
    statement_model,
)
from .errors import (
    AuthorizationError,
    ChainError,
    MalformedInputError,
    RuleError,
    SignatureError,
)
from .keys import VerifierKey
from .names import name_problem
from .timeutil import iso

VALIDATION_EVENT = "validated"
UPDATE_EVENT = "updated"
RETIRE_EVENT = "retired"
REACTIVATE_EVENT = "reactivated"
RETIRED_STATUS = "retired"
# What histories show for the log's own kinds of entry: never a plain event's type.
RESERVED_EVENTS = frozenset({"registered", "tag_moved", "member_added", "member_removed"})
MAX_CLAIM_SKEW = 3_600 * 10**9  # one hour
MAX_CLAIM_WINDOW = 31 * 86_400 * 10**9  # 31 days


# Rule 17's bound: a member_add is refused when both the models below the member and
# the groups above the group have more than this many membership links (entry.md §8.5).
MAX_MEMBERSHIP_WALK = 4096


class _Walk:
    """One side of rule 17's search: breadth first along member links (down) or group
    links (up), one link per ``step``, counting the links followed."""

    __slots__ = ("seen", "queue", "links", "_links_of", "_it")

    def __init__(self, start: str, links_of: Callable[[str], Iterable[str]]) -> None:
        self.seen = {start}
        self.queue = deque((start,))
        self.links = 0
        self._links_of = links_of
        self._it: Iterator[str] = iter(())

    def step(self, other: _Walk) -> bool | None:
        """Follow one more link. True if it leads to a model the other side has seen,
        False if no link is left (this side is complete), else None."""
        name = next(self._it, None)
        while name is None:
            if not self.queue:
                return False
            self._it = iter(self._links_of(self.queue.popleft()))
            name = next(self._it, None)
        self.links += 1
        if name in other.seen:
            return True
        if name not in self.seen:
            self.seen.add(name)
            self.queue.append(name)
        return None


class PendingSignature(NamedTuple):
    """One statement signature check: a key, a signature and the exact signed bytes."""

    key: VerifierKey
    sig: bytes
    data: bytes
    actor: str
    statement_id: str

    def ok(self) -> bool:
        """True if the signature verifies."""
        return self.key.verify(self.sig, self.data)

    def check(self) -> None:
        """Raise SignatureError unless the signature verifies."""
        if not self.ok():
            raise SignatureError(
                f"signature of {self.actor!r} on statement {self.statement_id} does not verify")


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


class Inventory:
    """The state replayed from entries 0..size-1 of one log."""

    def __init__(
        self,
        *,
        models: MutableMapping[str, ModelState] | None = None,
        statement_ids: MutableMapping[str, int] | None = None,
        snapshot_owner: MutableMapping[str, str] | None = None,
        keep_timelines: bool = True,
    ) -> None:
        """An empty state. The maps may be given (e.g. backed by a store);
        ``models`` values are written back whenever a model changes."""
        self.origin: str | None = None
        self.log_key: VerifierKey | None = None
        self.log_id: str | None = None  # the genesis entry's snapshot hash
        self.claim_skew = 0
        self.claim_window = 0
        self.size = 0
        self.last_recorded_at = 0
        self.keys: dict[str, KeyRecord] = {}
        self.key_history: list[KeyRecord] = []
        self.models: MutableMapping[str, ModelState] = {} if models is None else models
        self.statement_ids: MutableMapping[str, int] = (
            {} if statement_ids is None else statement_ids
        )
        # snapshot hash -> model name, for registrations and events (tag targets)
        self.snapshot_owner: MutableMapping[str, str] = (
            {} if snapshot_owner is None else snapshot_owner
        )
        self.timelines: dict[str, list[TimelineItem]] | None = {} if keep_timelines else None

    # -- order, time and chain ------------------------------------------------

    def _check_position(self, p: ParsedEntry) -> None:
        e = p.entry
        if e.index != self.size:
            raise ChainError(f"entry at position {self.size} says index {e.index}")
        if e.recorded_at < self.last_recorded_at:
            raise ChainError(f"entry {e.index}: recorded_at goes back in time")
        self._check_claimed_at(p)
        name = statement_model(p.statement)
        expected: str | None = None
        if name is not None and not isinstance(p.statement, Register):
            model = self.models.get(name)
            expected = model.head if model else None
        if e.prev != expected:
            raise ChainError(
                f"entry {e.index}: prev is {e.prev}, but the chain of {name or 'the keyring'} "
                f"ends at {expected}"
            )

    def _check_claimed_at(self, p: ParsedEntry) -> None:
        """The actor's ``claimed_at`` is at most ``claim_skew`` after the log's
        ``recorded_at`` and at most ``claim_window`` before it."""
        st, e = p.statement, p.entry
        skew, window = self.claim_skew, self.claim_window
        if self.origin is None:
            if not isinstance(st, Genesis):
                return  # refused as "the first entry of a log must be its genesis"
            skew, window = st.claim_skew, st.claim_window
        if st.claimed_at > e.recorded_at + skew:
            raise ChainError(
                f"entry {e.index}: the actor signed it at {iso(st.claimed_at)}, later than the "
                f"log recorded it ({iso(e.recorded_at)}) by more than the log's claim_skew: "
                f"a log clock set back (back-dating) or an actor clock ahead")
        if e.recorded_at - st.claimed_at > window:
            raise ChainError(
                f"entry {e.index}: signed at {iso(st.claimed_at)} but recorded at "
                f"{iso(e.recorded_at)}, later than the log's claim_window allows")

    # -- signature and authority ----------------------------------------------

    def check_statement(self, st: Statement, st_bytes: bytes, key_id: bytes, sig: bytes,
                        *, pending: list[PendingSignature] | None = None) -> None:
        """Raise unless ``st`` (signed as given) may be appended next.

        Checks the statement is for this log, its id is new, its actor's key is
        granted and not revoked, the signature verifies over ``st_bytes``
        exactly, the actor holds the role, and the inventory rules hold.

        ``pending``: only for a writer appending statements it signed itself. The
        signature check is then added to this list (once every other check has
        passed) instead of run; the writer must run every check in it
        (``PendingSignature.check``) before it commits or acknowledges anything, and
        discard the whole transaction if one fails. Everyone else leaves it None.
        """
        if isinstance(st, Genesis):
            self._check_genesis(st, key_id)
            key = VerifierKey.parse(st.admin_key)
        else:
            if self.origin is None:
                raise ChainError("the first entry of a log must be its genesis")
            if st.origin != self.origin:
                raise RuleError(f"statement is for log {st.origin!r}, not {self.origin!r}")
            if st.log != self.log_id:
                raise RuleError(f"statement is for the log whose genesis is {st.log}, not this "
                                f"one ({self.log_id}): a statement belongs to one log")
            record = self.keys.get(st.actor)
            if record is None:
                raise AuthorizationError(f"actor {st.actor!r} has no granted key")
            key = record.key
            if key.key_id != key_id:
                raise AuthorizationError(f"key {key_id.hex()} of {st.actor!r} is not granted")
            if isinstance(st, (Grant, Revoke)) and record.role != "admin":
                raise AuthorizationError(f"actor {st.actor!r} is a {record.role}, not an admin")
        if st.id in self.statement_ids:
            raise ChainError(f"statement {st.id} was already logged at {self.statement_ids[st.id]}")
        check = PendingSignature(key, sig, st_bytes, st.actor, st.id)
        if pending is None:
            check.check()
        self._check_rules(st)
        if pending is not None:
            pending.append(check)  # only once nothing else refuses the statement

    def _check_genesis(self, st: Genesis, key_id: bytes) -> None:
        if self.size != 0 or self.origin is not None:
            raise ChainError("a genesis entry may only open the log")
        log_key = VerifierKey.parse(st.log_key)
        admin = _actor_key(st.admin_key)
        if log_key.name != st.origin:
            raise RuleError("the log key's name must be the log's origin")
        if admin.name != st.actor or admin.key_id != key_id:
            raise AuthorizationError("genesis must be signed by the admin key it names")
        if st.claim_skew > MAX_CLAIM_SKEW or st.claim_window > MAX_CLAIM_WINDOW:
            raise RuleError("genesis claim_skew is at most one hour and claim_window 31 days")

    def _check_rules(self, st: Statement) -> None:
        if isinstance(st, Grant):
            key = _actor_key(st.key)
            if key.name in self.keys:
                raise RuleError(f"actor {key.name!r} already has an active key; revoke it first")
        elif isinstance(st, Revoke):
            record = self.keys.get(st.name)
            if record is None:
                raise RuleError(f"actor {st.name!r} has no active key to revoke")
            admins = [r for r in self.keys.values() if r.role == "admin"]
            if record.role == "admin" and len(admins) == 1:
                raise RuleError("cannot revoke the last admin key")
        elif isinstance(st, Register):
            if st.name in self.models:
                raise RuleError(f"model {st.name!r} is already registered")
            if st.status == RETIRED_STATUS:
                raise RuleError("a model is registered active; retire it with a 'retired' event")
        elif isinstance(st, Event):
            self._check_event(self._model(st.model), st)
        elif isinstance(st, TagMove):
            if self._model(st.model).status == RETIRED_STATUS:
                raise RuleError(f"model {st.model!r} is retired: its tags no longer move")
            if self.snapshot_owner.get(st.target) != st.model:
                raise RuleError(f"tag target {st.target} is not a snapshot of {st.model!r}")
        elif isinstance(st, MemberAdd):
            group, member = self._model(st.group), self._model(st.member)
            if member.name in group.members:
                raise RuleError(f"{member.name!r} is already a member of {group.name!r}")
            if self._reaches(member.name, group.name):
                raise RuleError(f"adding {member.name!r} to {group.name!r} would make a cycle")
        elif isinstance(st, MemberRemove):
            if st.member not in self._model(st.group).members:
                raise RuleError(f"{st.member!r} is not a member of {st.group!r}")

    def _check_event(self, model: ModelState, st: Event) -> None:
        if st.event_type in RESERVED_EVENTS:
            raise RuleError(f"event type {st.event_type!r} is reserved for the log's own entries")
        retired = model.status == RETIRED_STATUS
        if retired and st.event_type != REACTIVATE_EVENT:
            raise RuleError(f"model {model.name!r} is retired: the only event it takes is "
                            f"{REACTIVATE_EVENT!r}")
        if not retired and st.event_type == REACTIVATE_EVENT:
            raise RuleError(f"model {model.name!r} is not retired, so it cannot be reactivated")
        if st.event_type == UPDATE_EVENT:
            check_update(st.payload)

    def _model(self, name: str) -> ModelState:
        model = self.models.get(name)
        if model is None:
            raise RuleError(f"unknown model {name!r}")
        return model

    def _reaches(self, start: str, target: str) -> bool:
        """True if ``target`` is ``start`` or is reached from it by member links (rule 17).

        Walks down from ``start`` (members) and up from ``target`` (groups) in turns, one
        link at a time; stops when the walks meet (True) or either has no link left
        (False). RuleError once both have followed more than MAX_MEMBERSHIP_WALK links:
        so at most 2 * (MAX_MEMBERSHIP_WALK + 1) links and as many model lookups per
        check, and two lookups when ``start`` has no members or ``target`` is in no group.
        """
        if start == target:
            return True
        models, limit = self.models, MAX_MEMBERSHIP_WALK
        down = _Walk(start, lambda name: models[name].members)
        up = _Walk(target, lambda name: models[name].groups)
        while down.links <= limit or up.links <= limit:
            # a side over the limit waits; the other goes on until it meets, ends or is over
            if down.links <= limit and (found := down.step(up)) is not None:
                return found
            if up.links <= limit and (found := up.step(down)) is not None:
                return found
        raise RuleError(
            f"cannot add {start!r} to {target!r}: the models reachable from {start!r} and "
            f"the groups {target!r} is in both have more than {limit} membership links "
            f"to check for a cycle")

    # -- applying ---------------------------------------------------------------

    def apply(self, data: bytes) -> ParsedEntry:
        """Check entry bytes against the state, then apply them; if a check fails, raise
        and change nothing."""
        p = parse_entry(data)
        self.apply_parsed(p)
        return p

    def apply_parsed(self, p: ParsedEntry, *,
                     pending: list[PendingSignature] | None = None) -> None:
        """``apply`` for an entry already parsed with ``parse_entry``; for ``pending``
        see ``check_statement``."""
        self._check_position(p)
        self.check_statement(p.statement, p.statement_bytes, p.key_id, p.sig, pending=pending)
        self._mutate(p)

    def _mutate(self, p: ParsedEntry) -> None:
        st, e, snap = p.statement, p.entry, p.snapshot_hash
        if isinstance(st, Genesis):
            self.origin = st.origin
            self.log_key = VerifierKey.parse(st.log_key)
            self.log_id = snap
            self.claim_skew, self.claim_window = st.claim_skew, st.claim_window
            self._grant(VerifierKey.parse(st.admin_key), "admin", e.index, e.recorded_at, st.actor)
        elif isinstance(st, Grant):
            self._grant(VerifierKey.parse(st.key), st.role, e.index, e.recorded_at, st.actor)
        elif isinstance(st, Revoke):
            record = self.keys.pop(st.name)
            record.revoked_index, record.revoked_at = e.index, e.recorded_at
            record.revoked_by, record.reason = st.actor, st.reason
        else:
            self._mutate_model(st, p, snap)
        self.statement_ids[st.id] = e.index
        self.size += 1
        self.last_recorded_at = e.recorded_at

    def _grant(self, key: VerifierKey, role: str, index: int, at: int, by: str) -> None:
        record = KeyRecord(key, role, index, at, by)
        self.keys[key.name] = record
        self.key_history.append(record)

    def _mutate_model(self, st: Statement, p: ParsedEntry, snap: str) -> None:
        e = p.entry
        detail: dict[str, Any] = {}
        event_type: str | None = None
        if isinstance(st, Register):
            model = ModelState(
                st.name, model_hash(st.name, st.owner, e.recorded_at), st.owner,
                st.model_type, st.tier, st.purpose, st.status, dict(st.metadata),
                e.recorded_at, snap, snap, last_event_at=e.recorded_at,
            )
            event_type = "registered"
            self.snapshot_owner[snap] = st.name
        else:
            model = self.models[statement_model(st) or ""]
        if isinstance(st, Event):
            event_type = st.event_type
            detail = st.payload
            if st.event_type == UPDATE_EVENT:
                for key, value in st.payload.items():
                    setattr(model, key, dict(value) if key == "metadata" else value)
            elif st.event_type == RETIRE_EVENT:
                model.status = RETIRED_STATUS
            elif st.event_type == REACTIVATE_EVENT:
                model.status = "active"
            elif st.event_type == VALIDATION_EVENT:
                model.last_validation_at = e.recorded_at
            model.latest = snap
            self.snapshot_owner[snap] = model.name
        elif isinstance(st, TagMove):
            model.tags[st.tag] = st.target
            detail = {"tag": st.tag, "target": st.target}
        elif isinstance(st, MemberAdd):
            model.members[st.member] = st.role
            member = self.models[st.member]
            member.groups[model.name] = None
            self.models[st.member] = member
            detail = {"member": st.member, "role": st.role}
        elif isinstance(st, MemberRemove):
            del model.members[st.member]
            member = self.models[st.member]
            member.groups.pop(model.name, None)
            self.models[st.member] = member
            detail = {"member": st.member, "reason": st.reason}
        if event_type is not None:
            model.last_event_type, model.last_event_at = event_type, e.recorded_at
        model.head = snap
        self.models[model.name] = model
        if self.timelines is not None:
            self.timelines.setdefault(model.name, []).append(
                TimelineItem(e.index, e.recorded_at, snap, op_name(st), event_type, st.actor,
                             canonical_json(detail) if detail else _NO_DETAIL)
            )


def _actor_key(text: str) -> VerifierKey:
    """An actor's verifier key: it parses, and its name is inside the name profile."""
    key = VerifierKey.parse(text)
    problem = name_problem(key.name, spaces=False)
    if problem is not None:
        raise MalformedInputError(f"actor key name {key.name!r} {problem}")
    return key


def check_update(payload: dict[str, Any]) -> None:
    """Raise RuleError unless an ``updated`` payload names model fields with valid values."""
    if not payload:
        raise RuleError("an 'updated' event must name at least one field")
    for key, value in payload.items():
        if key not in MODEL_FIELDS:
            raise RuleError(f"'updated' may change {', '.join(MODEL_FIELDS)}; not {key!r}")
        if key == "metadata":
            if not isinstance(value, dict):
                raise RuleError("'updated' metadata must be an object")
        elif key == "purpose":
            if not isinstance(value, str) or len(value) > 4000 or not TEXT_RE.fullmatch(value):
                raise RuleError("'updated' purpose must be text of at most 4000 characters")
        elif not isinstance(value, str) or len(value) > 200 or not NAME_RE.fullmatch(value):
            raise RuleError(f"'updated' {key} must be one non-empty line of at most 200 characters")
        else:
            problem = name_problem(value)
            if problem is not None:
                raise RuleError(f"'updated' {key} {problem}")
            if key == "status" and value == RETIRED_STATUS:
                raise RuleError("a model is retired with a 'retired' event, not by 'updated'")


def replay(entries: list[bytes], *, until: int = MAX_UINT64) -> Inventory:
    """Replay entries in order; each must have recorded_at <= ``until``."""
    inv = Inventory()
    for data in entries:
        p = inv.apply(data)
        if p.entry.recorded_at > until:
            raise ChainError(f"entry {p.entry.index} was recorded after the bundle's time bound")
    return inv


