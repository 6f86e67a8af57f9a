"""Replay of log entries: the one definition of the log's rules.

``Replayer`` holds the rules and reads and writes only through a ``ReplayState``
(``verifier.state``): ``apply(entry_bytes)`` checks an entry against everything
before it (order, time, chain link, the actor's grant and role, signature, the
inventory rules) and only then writes it; a refused entry writes nothing.
``Inventory`` is a Replayer over a ``MemoryState``, the verifier's in-memory
inventory. A writer runs a Replayer over its own store's state, and may call
``check_statement`` to refuse a write before assigning it a place.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any, NoReturn

from .encoding import MAX_UINT64
from .entry import (
    MODEL_FIELDS,
    NAME_RE,
    ROLES,
    TEXT_RE,
    Event,
    Genesis,
    Grant,
    MemberAdd,
    MemberRemove,
    ParsedEntry,
    Register,
    Revoke,
    SetPolicy,
    Statement,
    TagMove,
    model_hash,
    parse_entry,
    op_name,
    statement_model,
)
from .errors import (
    AuthorizationError,
    ChainError,
    MalformedInputError,
    PolicyError,
    RuleError,
    SignatureError,
)
from .keys import VerifierKey
from .names import RESERVED_EVENTS, name_problem
from .policy import Policy, policy_refusal
from .scope import Scope, describe_scope, glob_match, preset, scope_excess, scope_problem
from .state import (
    KeyRecord,
    LogParams,
    MemoryState,
    ModelState,
    PolicyRecord,
    ReplayState,
    SignatureCheck,
    TimelineItem,
    check_signature,
)
from .timeutil import iso

__all__ = [
    "Inventory", "KeyRecord", "ModelState", "PolicyRecord", "Replayer", "TimelineItem",
    "check_update", "may_read", "replay",
]

VALIDATION_EVENT = "validated"
UPDATE_EVENT = "updated"
RETIRE_EVENT = "retired"
REACTIVATE_EVENT = "reactivated"
RETIRED_STATUS = "retired"
ADMIN_ROLE = "admin"
READER_ROLE = "reader"  # may never sign an entry (specs/entry.md §8.3 step 9)
# The roles whose keys may use a log server's protected reads (``may_read``).
_READ_ROLES = frozenset({READER_ROLE, ADMIN_ROLE})
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


class Replayer:
    """The log's rules over a ``ReplayState``: the one definition of every rule (decision 7).

    ``apply`` checks an entry against everything before it (order, time, chain link,
    the log it names, the actor's grant and role, statement id, signature, the inventory
    rules) and only then writes it to the state; a refused entry calls no write method of the
    state. The rules read and write only through ``self.state``.

    ``check_signature`` is the signature strategy (default: ``key.verify``, Ed25519
    through cryptography). It is called once per statement, genesis included, with the
    granted key (the genesis's admin key), the signature and the exact statement bytes;
    if it returns False the entry is refused with SignatureError; if it raises, the
    exception propagates and nothing is written.
    """

    def __init__(self, state: ReplayState, *,
                 check_signature: SignatureCheck = check_signature) -> None:
        """Rules over ``state``. Precondition: ``state`` holds exactly the result of
        replaying entries 0..state.size-1 of one log (empty for a new log)."""
        self.state = state
        self._verify = check_signature

    # -- order, time and chain ------------------------------------------------

    def _check_position(self, p: ParsedEntry) -> ModelState | None:
        """Index, time, claimed time and ``prev``; returns the state of the model whose
        chain the entry extends (None for a registration, a keyring entry or an unknown
        model), so that the later checks and the write need not read it again."""
        e, state = p.entry, self.state
        size = state.size
        if e.index != size:
            raise ChainError(f"entry at position {size} says index {e.index}")
        if e.recorded_at < state.last_recorded_at:
            raise ChainError(f"entry {e.index}: recorded_at goes back in time")
        self._check_claimed_at(p, state.params)
        st = p.statement
        name = statement_model(st)
        model: ModelState | None = None
        expected: str | None = None
        if name is not None and not isinstance(st, Register):
            model = state.model(name)
            expected = model.head if model else None
        if e.prev != expected:
            raise ChainError(
                f"entry {e.index}: prev is {e.prev}, but the chain of {name or 'the keyring'} "
                f"ends at {expected}"
            )
        return model

    @staticmethod
    def _check_claimed_at(p: ParsedEntry, params: LogParams | None) -> None:
        """The actor's ``claimed_at`` is at most ``claim_skew`` after the log's
        ``recorded_at`` and at most ``claim_window`` before it."""
        st, e = p.statement, p.entry
        if params is None:
            if not isinstance(st, Genesis):
                return  # refused as "the first entry of a log must be its genesis"
            skew, window = st.claim_skew, st.claim_window
        else:
            skew, window = params.claim_skew, params.claim_window
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

    def check_statement(self, st: Statement, st_bytes: bytes, key_id: bytes,
                        sig: bytes) -> None:
        """Raise unless ``st`` (signed as given) may be appended next; write nothing.

        Checks, in this order: the statement is for this log, its actor's key is granted
        and not revoked and is ``key_id``, the actor holds the role (never reader; admin
        for grants and revokes), its id is new, the signature verifies over ``st_bytes`` exactly
        (through the strategy), and the inventory rules hold. Precondition: ``st`` is
        ``parse_statement(st_bytes)``. Does not check the entry's index, time or
        ``prev`` (``apply`` does).
        """
        self._check_statement(st, st_bytes, key_id, sig, None)

    def _check_statement(self, st: Statement, st_bytes: bytes, key_id: bytes, sig: bytes,
                         chain: ModelState | None) -> None:
        """``check_statement``; ``chain``: the state of the model the statement extends,
        if already read (else None: the rules read it)."""
        state = self.state
        if isinstance(st, Genesis):
            self._check_genesis(st, key_id)
            key = VerifierKey.parse(st.admin_key)
        else:
            params = state.params
            if params is None:
                raise ChainError("the first entry of a log must be its genesis")
            if st.origin != params.origin:
                raise RuleError(f"statement is for log {st.origin!r}, not {params.origin!r}")
            if st.log != params.log_id:
                raise RuleError(f"statement is for the log whose genesis is {st.log}, not this "
                                f"one ({params.log_id}): a statement belongs to one log")
            record = state.active_key(st.actor)
            if record is None:
                raise AuthorizationError(f"actor {st.actor!r} has no granted key")
            key = record.key
            if key.key_id != key_id:
                raise AuthorizationError(f"key {key_id.hex()} of {st.actor!r} is not granted")
            if record.role == READER_ROLE:
                raise AuthorizationError(f"actor {st.actor!r} is a reader: readers cannot write")
            if isinstance(st, (Grant, Revoke, SetPolicy)) and record.role != ADMIN_ROLE:
                raise AuthorizationError(f"actor {st.actor!r} is a {record.role}, not an admin")
            self._check_scope(record, st, chain)
        logged = state.statement_index(st.id)
        if logged is not None:
            raise ChainError(f"statement {st.id} was already logged at {logged}")
        if not self._verify(key, sig, st_bytes):
            raise SignatureError(
                f"signature of {st.actor!r} on statement {st.id} does not verify")
        self._check_rules(st, chain)

    def _check_scope(self, record: KeyRecord, st: Statement,
                     chain: ModelState | None) -> None:
        """Step 9b: the statement is inside the scope of the actor's key (its grant's, else
        its role's preset) → else AuthorizationError naming the dimension that refused."""
        scope = record.effective_scope
        op = _scope_op(st)
        if op not in scope.ops:
            self._refuse(record, st, "ops", scope.ops, op)
        if op == "keyring":
            if isinstance(st, Grant):
                self._check_grant_within(record, st)
            elif isinstance(st, Revoke):
                self._check_revoke_within(record, st)
            elif isinstance(st, SetPolicy) and not _unbounded(scope):
                raise AuthorizationError(
                    f"actor {st.actor!r} may not sign this policy: a policy binds every model, "
                    f"and the scope of its key (granted at entry {record.granted_index}) is "
                    f"limited ({describe_scope(scope)})")
            return
        if isinstance(st, Event) and scope.event_types is not None \
                and st.event_type not in scope.event_types:
            self._refuse(record, st, "event types", scope.event_types, st.event_type)
        if isinstance(st, TagMove) and scope.tags is not None and st.tag not in scope.tags:
            self._refuse(record, st, "tags", scope.tags, st.tag)
        if scope.models is None and scope.tiers is None:
            return  # the presets: nothing more to read
        names = _scope_models(st)
        if scope.models is not None:
            for name in names:
                if not any(glob_match(pattern, name) for pattern in scope.models):
                    self._refuse(record, st, "models matching", scope.models, name)
        if scope.tiers is not None:
            for tier in self._scope_tiers(st, names, chain):
                if tier not in scope.tiers:
                    self._refuse(record, st, "tiers", scope.tiers, tier)

    @staticmethod
    def _check_grant_within(record: KeyRecord, st: Grant) -> None:
        """Step 9b for a grant: the scope it grants (its own, else its role's preset) is
        contained in the granter's (``scope_excess``) → else AuthorizationError naming the
        dimension and the first value outside."""
        allowed = record.effective_scope
        excess = scope_excess(allowed, st.scope if st.scope is not None else preset(st.role))
        if excess is None:
            return
        what = excess.dimension.replace("_", " ")
        items: tuple[str, ...] = getattr(allowed, excess.dimension)
        value = f"any {what}" if excess.value is None else f"{what} {excess.value!r}"
        raise AuthorizationError(
            f"actor {st.actor!r} may not sign this grant: it would allow {value}, but the "
            f"scope of its key (granted at entry {record.granted_index}) allows {what} "
            f"{', '.join(items) or 'none'}: a grant may not exceed its granter's scope")

    def _check_revoke_within(self, record: KeyRecord, st: Revoke) -> None:
        """Step 9b for a revoke: the scope of the key it revokes is contained in the
        revoker's → else AuthorizationError (a key revokes only what it could have granted;
        a key with no active key to revoke is left to the rules)."""
        target = self.state.active_key(st.name)
        if target is None or scope_excess(record.effective_scope,
                                          target.effective_scope) is None:
            return
        raise AuthorizationError(
            f"actor {st.actor!r} may not revoke the key of {st.name!r}: its scope "
            f"({describe_scope(target.effective_scope)}) is not contained in the scope of the "
            f"revoker's key (granted at entry {record.granted_index}: "
            f"{describe_scope(record.effective_scope)})")

    @staticmethod
    def _refuse(record: KeyRecord, st: Statement, what: str, allowed: tuple[str, ...],
                value: str) -> NoReturn:
        raise AuthorizationError(
            f"actor {st.actor!r} may not sign this {op_name(st)}: the scope of its key "
            f"(granted at entry {record.granted_index}) allows {what} "
            f"{', '.join(allowed) or 'none'}, not {value!r}")

    def _scope_tiers(self, st: Statement, names: tuple[str, ...],
                     chain: ModelState | None) -> list[str]:
        """The tiers a model statement touches: a registration's own, each named model's
        current one (an unknown model has none: the inventory rules refuse it), and the
        tier an ``updated`` event sets."""
        if isinstance(st, Register):
            return [st.tier]
        tiers = []
        for name in names:
            model = chain if chain is not None and chain.name == name else self.state.model(name)
            if model is not None:
                tiers.append(model.tier)
        if isinstance(st, Event) and st.event_type == UPDATE_EVENT \
                and isinstance(st.payload.get("tier"), str):
            tiers.append(st.payload["tier"])
        return tiers

    def _policy(self) -> Policy | None:
        """The policy in force, or None."""
        record = self.state.policy
        return None if record is None else record.policy

    def _check_genesis(self, st: Genesis, key_id: bytes) -> None:
        state = self.state
        if state.size != 0 or state.params is not None:
            raise ChainError("a genesis entry may only open the log")
        log_key = VerifierKey.parse(st.log_key)
        admin = _actor_key(st.admin_key)
        if log_key.name != st.origin:
            raise RuleError("the log key's name must be the log's origin")
        if admin.name != st.actor or admin.key_id != key_id:
            raise AuthorizationError("genesis must be signed by the admin key it names")
        if st.claim_skew > MAX_CLAIM_SKEW or st.claim_window > MAX_CLAIM_WINDOW:
            raise RuleError("genesis claim_skew is at most one hour and claim_window 31 days")

    def _check_rules(self, st: Statement, chain: ModelState | None) -> None:
        state = self.state
        if isinstance(st, Event):
            self._check_event(self._model(st.model) if chain is None else chain, st)
        elif isinstance(st, Register):
            if state.model(st.name) is not None:
                raise RuleError(f"model {st.name!r} is already registered")
            if st.status == RETIRED_STATUS:
                raise RuleError("a model is registered active; retire it with a 'retired' event")
        elif isinstance(st, TagMove):
            model = self._model(st.model) if chain is None else chain
            if model.status == RETIRED_STATUS:
                raise RuleError(f"model {st.model!r} is retired: its tags no longer move")
            if state.snapshot_model(st.target) != st.model:
                raise RuleError(f"tag target {st.target} is not a snapshot of {st.model!r}")
        elif isinstance(st, MemberAdd):
            group = self._model(st.group) if chain is None else chain
            member = self._model(st.member)
            self._check_frozen(group, member)
            if member.name in group.members:
                raise RuleError(f"{member.name!r} is already a member of {group.name!r}")
            if self._reaches(member.name, group.name):
                raise RuleError(f"adding {member.name!r} to {group.name!r} would make a cycle")
        elif isinstance(st, MemberRemove):
            group = self._model(st.group) if chain is None else chain
            self._check_frozen(group, None)
            if st.member not in group.members:
                raise RuleError(f"{st.member!r} is not a member of {st.group!r}")
        elif isinstance(st, Grant):
            key = _actor_key(st.key)
            if state.active_key(key.name) is not None:
                raise RuleError(f"actor {key.name!r} already has an active key; revoke it first")
            problem = None if st.scope is None else scope_problem(st.scope, st.role)
            if problem is not None:
                raise RuleError(f"grant to {key.name!r}: {problem}")
        elif isinstance(st, Revoke):
            record = state.active_key(st.name)
            if record is None:
                raise RuleError(f"actor {st.name!r} has no active key to revoke")
            if record.role == ADMIN_ROLE and state.admin_count() == 1:
                raise RuleError("cannot revoke the last admin key")

    def _check_event(self, model: ModelState, st: Event) -> None:
        if st.event_type in RESERVED_EVENTS:
            raise RuleError(f"event type {st.event_type!r} is reserved for the log's own entries")
        retired = model.status == RETIRED_STATUS
        if retired and st.event_type != REACTIVATE_EVENT:
            raise RuleError(f"model {model.name!r} is retired: the only event it takes is "
                            f"{REACTIVATE_EVENT!r}")
        if not retired and st.event_type == REACTIVATE_EVENT:
            raise RuleError(f"model {model.name!r} is not retired, so it cannot be reactivated")
        policy = self._policy()
        if policy is not None:
            refusal = policy_refusal(policy, st.event_type, st.payload)
            if refusal is not None:
                raise PolicyError(refusal)
        if st.event_type == UPDATE_EVENT:
            check_update(st.payload)

    def _check_frozen(self, group: ModelState, member: ModelState | None) -> None:
        """With a policy in force, a retired group's memberships no longer change and a
        retired model joins no group → else RuleError (entry.md §8.5 rules 17 and 18)."""
        if self._policy() is None:
            return
        for model in (group, member):
            if model is not None and model.status == RETIRED_STATUS:
                raise RuleError(f"model {model.name!r} is retired: while a policy is in force, "
                                f"its memberships no longer change")

    def _model(self, name: str) -> ModelState:
        model = self.state.model(name)
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
        get, limit = self.state.model, MAX_MEMBERSHIP_WALK

        def linked(name: str) -> ModelState:
            model = get(name)
            if model is None:  # a link to a model the state does not hold: a broken state
                raise KeyError(name)
            return model

        down = _Walk(start, lambda name: linked(name).members)
        up = _Walk(target, lambda name: linked(name).groups)
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
        and write nothing. Returns the parsed entry."""
        p = parse_entry(data)
        self.apply_parsed(p)
        return p

    def apply_parsed(self, p: ParsedEntry) -> None:
        """``apply`` for an entry already parsed. Precondition: ``p`` came from
        ``parse_entry`` or ``build_entry`` (its parts agree with each other)."""
        chain = self._check_position(p)
        self._check_statement(p.statement, p.statement_bytes, p.key_id, p.sig, chain)
        self._write(p, chain)

    def _write(self, p: ParsedEntry, chain: ModelState | None) -> None:
        """Apply a checked entry: the state's writes, ``appended`` last."""
        st, e, state = p.statement, p.entry, self.state
        if isinstance(st, Genesis):
            state.set_params(LogParams(st.origin, VerifierKey.parse(st.log_key),
                                       p.snapshot_hash, st.claim_skew, st.claim_window))
            state.add_key(KeyRecord(VerifierKey.parse(st.admin_key), ADMIN_ROLE, e.index,
                                    e.recorded_at, st.actor))
            if st.policy is not None:
                state.set_policy(PolicyRecord(st.policy, e.index, e.recorded_at, st.actor))
            state.appended(p, None, None)
        elif isinstance(st, Grant):
            state.add_key(KeyRecord(VerifierKey.parse(st.key), st.role, e.index,
                                    e.recorded_at, st.actor, scope=st.scope))
            state.appended(p, None, None)
        elif isinstance(st, SetPolicy):
            state.set_policy(PolicyRecord(st.policy, e.index, e.recorded_at, st.actor))
            state.appended(p, None, None)
        elif isinstance(st, Revoke):
            state.revoke_key(st.name, index=e.index, at=e.recorded_at, by=st.actor,
                             reason=st.reason)
            state.appended(p, None, None)
        else:
            self._write_model(st, p, chain)

    def _write_model(self, st: Statement, p: ParsedEntry, chain: ModelState | None) -> None:
        e, snap, state = p.entry, p.snapshot_hash, self.state
        event_type: str | None = None
        snapshot_of: str | None = None
        if isinstance(st, Register):
            model = ModelState(
                st.name, model_hash(st.name, st.owner, e.recorded_at), st.owner,
                st.model_type, st.tier, st.purpose, st.status, dict(st.metadata),
                e.recorded_at, snap, snap, last_event_at=e.recorded_at,
            )
            event_type = "registered"
            snapshot_of = st.name
        else:
            model = self._model(statement_model(st) or "") if chain is None else chain
        if isinstance(st, Event):
            event_type = st.event_type
            if event_type == UPDATE_EVENT:
                for key, value in st.payload.items():
                    setattr(model, key, dict(value) if key == "metadata" else value)
            elif event_type == RETIRE_EVENT:
                model.status = RETIRED_STATUS
            elif event_type == REACTIVATE_EVENT:
                model.status = "active"
            elif event_type == VALIDATION_EVENT:
                model.last_validation_at = e.recorded_at
            model.latest = snap
            snapshot_of = model.name
        elif isinstance(st, TagMove):
            model.tags[st.tag] = st.target
        elif isinstance(st, MemberAdd):
            model.members[st.member] = st.role
            member = self._model(st.member)
            member.groups[model.name] = None
            state.put_model(member)
        elif isinstance(st, MemberRemove):
            del model.members[st.member]
            member = self._model(st.member)
            member.groups.pop(model.name, None)
            state.put_model(member)
        if event_type is not None:
            model.last_event_type, model.last_event_at = event_type, e.recorded_at
        model.head = snap
        state.put_model(model)
        state.appended(p, model.name, snapshot_of)


class Inventory(Replayer):
    """The state replayed from entries 0..size-1 of one log, in memory: a ``Replayer``
    over a ``MemoryState``, with the state's parts readable as attributes."""

    def __init__(
        self,
        *,
        models: MutableMapping[str, ModelState] | None = None,
        statement_ids: MutableMapping[str, int] | None = None,
        snapshot_owner: MutableMapping[str, str] | None = None,
        keep_timelines: bool = True,
        check_signature: SignatureCheck = check_signature,
    ) -> None:
        """An empty state. The maps may be given (e.g. backed by a store; each empty);
        ``models`` values are written back whenever a model changes. For
        ``check_signature`` see ``Replayer``."""
        self.memory = MemoryState(models=models, statement_ids=statement_ids,
                                  snapshot_owner=snapshot_owner, keep_timelines=keep_timelines)
        super().__init__(self.memory, check_signature=check_signature)

    @property
    def params(self) -> LogParams | None:
        """The genesis's parameters; None before it."""
        return self.memory.params

    @property
    def origin(self) -> str | None:
        """The log's origin; None before the genesis."""
        params = self.memory.params
        return None if params is None else params.origin

    @property
    def log_key(self) -> VerifierKey | None:
        """The log's checkpoint key; None before the genesis."""
        params = self.memory.params
        return None if params is None else params.log_key

    @property
    def log_id(self) -> str | None:
        """The genesis entry's snapshot hash; None before it."""
        params = self.memory.params
        return None if params is None else params.log_id

    @property
    def claim_skew(self) -> int:
        """The genesis's claim_skew (ns); 0 before it."""
        params = self.memory.params
        return 0 if params is None else params.claim_skew

    @property
    def claim_window(self) -> int:
        """The genesis's claim_window (ns); 0 before it."""
        params = self.memory.params
        return 0 if params is None else params.claim_window

    @property
    def size(self) -> int:
        """The number of entries applied."""
        return self.memory.size

    @property
    def last_recorded_at(self) -> int:
        """``recorded_at`` of the last entry applied; 0 when empty."""
        return self.memory.last_recorded_at

    @property
    def models(self) -> MutableMapping[str, ModelState]:
        """Model name -> current state."""
        return self.memory.models

    @property
    def keys(self) -> dict[str, KeyRecord]:
        """Actor name -> active key."""
        return self.memory.keys

    @property
    def key_history(self) -> list[KeyRecord]:
        """Every grant, in log order, with its revocation if any."""
        return self.memory.key_history

    @property
    def policy(self) -> Policy | None:
        """The policy in force (genesis or last ``policy`` entry); None if none."""
        return self._policy()

    @property
    def policy_history(self) -> list[PolicyRecord]:
        """Every policy put in force or lifted, in log order."""
        return self.memory.policy_history

    @property
    def statement_ids(self) -> MutableMapping[str, int]:
        """Statement id -> index of its entry."""
        return self.memory.statement_ids

    @property
    def snapshot_owner(self) -> MutableMapping[str, str]:
        """Snapshot hash -> model name, for registrations and events (tag targets)."""
        return self.memory.snapshot_owner

    @property
    def timelines(self) -> dict[str, list[TimelineItem]] | None:
        """Model name -> its chain entries; None when built with keep_timelines=False."""
        return self.memory.timelines


def _unbounded(scope: Scope) -> bool:
    """Whether ``scope`` limits no model, tier, event type or tag (its ops aside)."""
    return scope.event_types is None and scope.tags is None and scope.models is None \
        and scope.tiers is None


def _scope_op(st: Statement) -> str:
    """The scope op (``verifier.scope.OPS``) a statement needs."""
    if isinstance(st, Register):
        return "register"
    if isinstance(st, Event):
        return "event"
    if isinstance(st, TagMove):
        return "tag"
    if isinstance(st, (MemberAdd, MemberRemove)):
        return "membership"
    return "keyring"


def _scope_models(st: Statement) -> tuple[str, ...]:
    """The model names a statement touches: both group and member of a membership."""
    if isinstance(st, (MemberAdd, MemberRemove)):
        return (st.group, st.member)
    name = statement_model(st)
    return () if name is None else (name,)


def _actor_key(text: str) -> VerifierKey:
    """An actor's verifier key: it parses, and its name is inside the name profile."""
    key = VerifierKey.parse(text)
    problem = name_problem(key.name, spaces=False)
    if problem is not None:
        raise MalformedInputError(f"actor key name {key.name!r} {problem}")
    return key


def may_read(role: str) -> bool:
    """Whether a key holding keyring role ``role`` may use a log server's protected
    (confidential) reads: True for ``reader`` and ``admin``, False for ``writer``.

    Writers are pipelines: they write and need not read the inventory (least privilege,
    docs/decisions.md §17); a pipeline that must read uses a reader key of its own
    actor name. The one definition of this decision: a server asks it for the role of the
    key that signed a request (``Ledger.active_key``). Precondition: ``role`` is one of
    the keyring's roles (``verifier.ROLES``); any other str raises ValueError, another
    type TypeError (both refuse, never allow).
    """
    if not isinstance(role, str):
        raise TypeError(f"a role is a str, not {type(role).__name__}")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    return role in _READ_ROLES


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


