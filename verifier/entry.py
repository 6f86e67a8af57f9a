"""Log entries and the signed statements inside them (specs/entry.md).

``entry_bytes`` is the one function that produces an entry's bytes; the
ledger calls it, the verifier parses with ``parse_entry``. Statements are what
an actor signs; an entry embeds the statement text verbatim.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal, Union, get_args

import msgspec
from msgspec import Meta, Struct

from ._fastdecode import FastDecoder
from .canonical import canonical_json, check_json_value, decode_canonical
from .encoding import b64decode, b64encode
from .errors import MalformedInputError
from .merkle import leaf_hash
from .names import check_event_type, check_name
from .policy import Policy, check_policy_fields
from .scope import Scope, check_scope_fields

MAX_ENTRY_SIZE = 65_535
VERSION: Literal[1] = 1
STATEMENT_VERSION: Literal[2] = 2

# Patterns end in \Z, not $: '$' would also accept one trailing newline.
_NAME = r"^[^\x00-\x1f\x7f]+\Z"
NAME_RE = re.compile(r"[^\x00-\x1f\x7f]+")
TEXT_RE = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f]*")
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=_NAME)]
Text = Annotated[str, Meta(max_length=4000, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*\Z")]
KeyName = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\s+\x00-\x1f\x7f]+\Z")]
Hex64 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}\Z")]
Hex8 = Annotated[str, Meta(pattern=r"^[0-9a-f]{8}\Z")]
StatementId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{16,128}\Z")]
Nanos = Annotated[int, Meta(ge=0, le=2**63 - 1)]
# The keyring's roles (specs/entry.md §8.3 step 9): writers write, admins also grant and
# revoke, readers never write (they may use a log server's protected reads: ``may_read``).
Role = Literal["writer", "admin", "reader"]
ROLES: tuple[str, ...] = get_args(Role)
JsonObject = dict[str, Any]

MODEL_FIELDS = ("owner", "model_type", "tier", "purpose", "status", "metadata")


class _Statement(Struct, tag_field="op", forbid_unknown_fields=True, kw_only=True, frozen=True):
    v: Literal[2]
    id: StatementId
    actor: KeyName
    origin: Annotated[str, Meta(min_length=1, max_length=400, pattern=_NAME)]
    claimed_at: Nanos


class _LogStatement(_Statement, frozen=True):
    """Every statement after the genesis names its log by the genesis snapshot hash."""

    log: Hex64


class Genesis(_Statement, tag="genesis", frozen=True, omit_defaults=True):
    """Opens the log: names its origin, its checkpoint key, the first admin key, and how
    far an actor's ``claimed_at`` may be after (``claim_skew``) or before
    (``claim_window``) the time the log records; optionally the first ``policy``
    (absent, never null, when there is none)."""

    log_key: Annotated[str, Meta(max_length=1024)]
    admin_key: Annotated[str, Meta(max_length=1024)]
    claim_skew: Nanos
    claim_window: Nanos
    policy: Policy | None = None


class Grant(_LogStatement, tag="grant", frozen=True, omit_defaults=True):
    """Grants an actor key a role, optionally narrowed by a ``scope`` (absent, never
    null, when the grant holds its role's preset)."""

    key: Annotated[str, Meta(max_length=1024)]
    role: Role
    scope: Scope | None = None


class SetPolicy(_LogStatement, tag="policy", frozen=True):
    """Puts ``policy`` in force from the next entry on; null lifts the policy in force."""

    policy: Policy | None


class Revoke(_LogStatement, tag="revoke", frozen=True):
    """Revokes the active key of actor ``name``."""

    name: KeyName
    reason: Text | None


class Register(_LogStatement, tag="register", frozen=True):
    """Registers a model (or a group of models) under a unique name."""

    name: Name
    owner: Name
    model_type: Name
    tier: Name
    purpose: Text
    status: Name
    metadata: JsonObject


class Event(_LogStatement, tag="event", frozen=True):
    """Records an event about a model. ``updated`` and ``retired`` change fields."""

    model: Name
    event_type: Name
    payload: JsonObject


class TagMove(_LogStatement, tag="tag", frozen=True):
    """Points tag ``tag`` of ``model`` at one of its snapshots."""

    model: Name
    tag: Name
    target: Hex64


class MemberAdd(_LogStatement, tag="member_add", frozen=True):
    """Adds ``member`` to group ``group``."""

    group: Name
    member: Name
    role: Text | None


class MemberRemove(_LogStatement, tag="member_remove", frozen=True):
    """Removes ``member`` from group ``group``."""

    group: Name
    member: Name
    reason: Text | None


Statement = Union[Genesis, Grant, Revoke, SetPolicy, Register, Event, TagMove, MemberAdd,
                  MemberRemove]
MODEL_OPS = (Register, Event, TagMove, MemberAdd, MemberRemove)


class Entry(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A log leaf: the statement text, its signature, and what the log assigned."""

    v: Literal[1]
    index: Annotated[int, Meta(ge=0)]
    recorded_at: Nanos
    prev: Hex64 | None
    statement: str
    key_id: Hex8
    sig: str


_statement_decoder = msgspec.json.Decoder(Statement)
_entry_decoder = msgspec.json.Decoder(Entry)
# The statement schema, decoded faster (its many patterned fields mostly repeat); what it
# does not accept goes to the decoder above. An entry has too few patterns to gain.
_fast_statement: FastDecoder[Statement] = FastDecoder(get_args(Statement))


def statement_model(st: Statement) -> str | None:
    """The model whose chain a statement extends (the group for memberships); None for
    keyring statements (genesis, grant, revoke, policy). Takes any parsed ``Statement``."""
    if isinstance(st, Register):
        return st.name
    if isinstance(st, (Event, TagMove)):
        return st.model
    if isinstance(st, (MemberAdd, MemberRemove)):
        return st.group
    return None


def op_name(st: Statement) -> str:
    """The ``op`` tag of a statement, e.g. ``"register"``."""
    return str(type(st).__struct_config__.tag)


def _check_fields(st: Statement) -> None:
    """The rules the schema cannot state: JSON values, the name profile, event types.
    Raises ValueError/TypeError."""
    check_name(st.actor, "actor", spaces=False)
    if isinstance(st, Register):
        for what in ("name", "owner", "model_type", "tier", "status"):
            check_name(getattr(st, what), what)
        check_json_value(st.metadata, "metadata")
    elif isinstance(st, Event):
        check_name(st.model, "model")
        check_event_type(st.event_type)
        check_json_value(st.payload, "payload")
    elif isinstance(st, TagMove):
        check_name(st.model, "model")
        check_name(st.tag, "tag")
    elif isinstance(st, (MemberAdd, MemberRemove)):
        check_name(st.group, "group")
        check_name(st.member, "member")
    elif isinstance(st, Revoke):
        check_name(st.name, "actor", spaces=False)
    elif isinstance(st, Grant):
        if st.scope is not None:
            check_scope_fields(st.scope)
    elif isinstance(st, (Genesis, SetPolicy)):
        if st.policy is not None:
            check_policy_fields(st.policy)


def statement_bytes(st: Statement) -> bytes:
    """The canonical bytes of a statement: what its actor signs.

    Raises ValueError/TypeError for values JSON cannot carry exactly (NaN,
    non-string keys, too deep) and ValueError if the result is oversize.
    """
    return encode_statement(st)[0]


def encode_statement(st: Statement) -> tuple[bytes, Statement]:
    """``statement_bytes`` and the statement parsed back from exactly those bytes: a
    writer checks the rules on the second, so it checks what it stores."""
    if not isinstance(st, _Statement):
        raise TypeError(f"expected a statement, not {type(st).__name__}")
    _check_fields(st)
    data = canonical_json(st)
    if len(data) > MAX_ENTRY_SIZE - 256:
        raise ValueError(f"statement is {len(data)} bytes; an entry holds at most {MAX_ENTRY_SIZE}")
    try:
        return data, parse_statement(data)
    except MalformedInputError as exc:
        raise ValueError(str(exc)) from None


def _decode_statement(data: bytes) -> Statement:
    st: Statement = decode_canonical(data, _statement_decoder, "statement", _fast_statement)
    return st


def parse_statement(data: bytes) -> Statement:
    """Parse canonical statement bytes; MalformedInputError on any deviation."""
    st = _decode_statement(data)
    try:
        _check_fields(st)
    except (ValueError, TypeError) as exc:
        raise MalformedInputError(f"statement: {exc}") from exc
    return st


def _make_entry(index: int, recorded_at: int, prev: str | None, statement: bytes,
                key_id: bytes, sig: bytes) -> Entry:
    if len(key_id) != 4 or len(sig) != 64:
        raise ValueError("key_id must be 4 bytes and sig 64 bytes")
    return Entry(v=VERSION, index=index, recorded_at=recorded_at, prev=prev,
                 statement=statement.decode("utf-8"), key_id=key_id.hex(), sig=b64encode(sig))


def _encode_entry(entry: Entry) -> bytes:
    data = canonical_json(entry)
    if len(data) > MAX_ENTRY_SIZE:
        raise ValueError(f"entry is {len(data)} bytes; at most {MAX_ENTRY_SIZE} allowed")
    return data


def entry_bytes(
    *, index: int, recorded_at: int, prev: str | None, statement: bytes, key_id: bytes, sig: bytes
) -> bytes:
    """THE canonical bytes of a log entry (specs/entry.md).

    Preconditions: ``statement`` is canonical statement bytes, ``key_id`` 4
    bytes, ``sig`` a 64-byte Ed25519 signature. Raises ValueError if the entry
    would exceed 65,535 bytes.
    """
    return _encode_entry(_make_entry(index, recorded_at, prev, statement, key_id, sig))


class ParsedEntry(Struct, frozen=True):
    """An entry with its statement parsed and its raw parts decoded."""

    entry: Entry
    statement: Statement
    statement_bytes: bytes
    key_id: bytes
    sig: bytes
    leaf_hash: bytes

    @property
    def snapshot_hash(self) -> str:
        """The entry's leaf hash, lowercase hex."""
        return self.leaf_hash.hex()


def build_entry(
    *, index: int, recorded_at: int, prev: str | None, statement: Statement,
    statement_bytes: bytes, key_id: bytes, sig: bytes,
) -> tuple[bytes, ParsedEntry]:
    """``entry_bytes`` plus its parsed form, for a writer that already holds the
    parsed statement. Precondition: ``statement`` is ``parse_statement(statement_bytes)``."""
    entry = _make_entry(index, recorded_at, prev, statement_bytes, key_id, sig)
    data = _encode_entry(entry)
    return data, ParsedEntry(entry, statement, statement_bytes, key_id, sig, leaf_hash(data))


def _bounded(data: bytes, what: str) -> bytes:
    """``data`` as bytes, refusing another type (TypeError) or more than MAX_ENTRY_SIZE."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_ENTRY_SIZE:
        raise MalformedInputError(f"{what} is {len(data)} bytes; at most {MAX_ENTRY_SIZE} allowed")
    return data


def _statement_and_sig(text: str, sig_b64: str, prefix: str) -> tuple[bytes, bytes]:
    """The exact statement bytes and the 64-byte signature of an entry or envelope."""
    try:
        st_bytes = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedInputError(f"{prefix}statement is not valid Unicode") from exc
    sig = b64decode(sig_b64, f"{prefix}signature")
    if len(sig) != 64:
        raise MalformedInputError(f"{prefix}signature must be 64 bytes")
    return st_bytes, sig


def parse_entry(data: bytes) -> ParsedEntry:
    """Parse exact entry bytes and the statement inside; nothing is re-encoded for hashing.

    Raises MalformedInputError for oversize, non-canonical or schema-violating input.
    """
    data = _bounded(data, "entry")
    entry = decode_canonical(data, _entry_decoder, "entry")
    st_bytes, sig = _statement_and_sig(entry.statement, entry.sig, "entry ")
    statement = parse_statement(st_bytes)
    key_id = bytes.fromhex(entry.key_id)
    return ParsedEntry(entry, statement, st_bytes, key_id, sig, leaf_hash(data))


def snapshot_hash(data: bytes) -> str:
    """The snapshot hash of entry bytes: its RFC 9162 leaf hash in lowercase hex."""
    return leaf_hash(data).hex()


def model_hash(name: str, owner: str, registered_at: int) -> str:
    """A model's permanent id: SHA-256 of canonical {name, owner, registered_at}, hex."""
    doc = {"name": name, "owner": owner, "registered_at": registered_at}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


class SignedStatement(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The envelope a pipeline submits: statement text, key ID, signature."""

    statement: str
    key_id: Hex8
    sig: str


_signed_decoder = msgspec.json.Decoder(SignedStatement)


def signed_statement_bytes(statement: bytes, key_id: bytes, sig: bytes) -> bytes:
    """The canonical envelope of a signed statement (what ``Ledger.submit`` takes)."""
    if len(key_id) != 4 or len(sig) != 64:
        raise ValueError("key_id must be 4 bytes and sig 64 bytes")
    doc = SignedStatement(statement=statement.decode("utf-8"), key_id=key_id.hex(),
                          sig=b64encode(sig))
    return canonical_json(doc)


def parse_signed_statement(data: bytes) -> tuple[Statement, bytes, bytes, bytes]:
    """Parse an envelope: (statement, exact statement bytes, key ID, signature).

    Raises MalformedInputError for anything but a canonical envelope holding a
    canonical statement; the signature itself is not checked here.
    """
    data = _bounded(data, "signed statement")
    env = decode_canonical(data, _signed_decoder, "signed statement")
    st_bytes, sig = _statement_and_sig(env.statement, env.sig, "")
    return parse_statement(st_bytes), st_bytes, bytes.fromhex(env.key_id), sig
