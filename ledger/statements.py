"""Building and signing statements: what a pipeline does before it submits."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, NamedTuple, get_args

import msgspec

from verifier import Statement, encode_statement, signed_statement_bytes, to_ns

from .keys import ActorKey


# Converting to the one struct the op names is several times faster than to the union.
_BY_OP: dict[str, type[Any]] = {str(cls.__struct_config__.tag): cls for cls in get_args(Statement)}


class Signed(NamedTuple):
    """A statement, its exact bytes, and the actor's key ID and signature over them.

    Internal to the ledger: only ``build_signed`` makes one, and ``statement`` is
    parsed back from ``data``. ``Ledger.submit`` takes bytes only."""

    statement: Statement
    data: bytes
    key_id: bytes
    sig: bytes

    def envelope(self) -> bytes:
        """The signed-statement envelope bytes (what ``Ledger.submit`` takes)."""
        return signed_statement_bytes(self.data, self.key_id, self.sig)


def new_statement_id(claimed_ns: int) -> str:
    """A fresh statement id: the claimed time (16 hex digits) then 64 random bits.
    Ids made close in time sort together, so the store's id index is written in
    few places rather than one random page per write."""
    return f"{claimed_ns & (2**64 - 1):016x}{os.urandom(8).hex()}"


def sign_statement(
    actor: ActorKey, origin: str, op: str, *, log_id: str | None, claimed_at: datetime,
    statement_id: str | None = None, **body: Any,
) -> bytes:
    """A signed statement envelope, ready for ``Ledger.submit``.

    ``origin`` and ``log_id`` name the one log it is for (``Ledger.origin`` and
    ``Ledger.log_id``, the genesis entry's snapshot hash; None only for a genesis).
    ``claimed_at`` is the actor's own (timezone-aware) time; the log assigns the
    time that counts and refuses a claim too far from it (the log's claim_skew and
    claim_window). Raises ValueError/TypeError for fields the statement schema
    refuses (unknown op, NaN, oversize, naive datetime, a name outside the profile).
    """
    return build_signed(actor, origin, op, log_id=log_id, claimed_at=claimed_at,
                        statement_id=statement_id, **body).envelope()


def build_signed(
    actor: ActorKey, origin: str, op: str, *, log_id: str | None, claimed_at: datetime,
    statement_id: str | None = None, **body: Any,
) -> Signed:
    """``sign_statement`` without the envelope, for a writer in the same process."""
    claimed = to_ns(claimed_at)
    if (op == "genesis") != (log_id is None):
        raise ValueError("log_id names the log for every statement but its genesis")
    doc = {"v": 2, "op": op, "id": statement_id or new_statement_id(claimed),
           "actor": actor.name, "origin": origin, "claimed_at": claimed, **body}
    if log_id is not None:
        doc["log"] = log_id
    kind = _BY_OP.get(op) if isinstance(op, str) else None
    if kind is None:
        raise ValueError(f"invalid {op} statement: unknown op {op!r}")
    try:
        st: Statement = msgspec.convert(doc, kind)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid {op} statement: {exc}") from None
    data, parsed = encode_statement(st)  # the rules are checked on what the bytes say
    return Signed(parsed, data, actor.key_id, actor.sign(data))
