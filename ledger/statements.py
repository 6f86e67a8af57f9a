"""Building and signing statements: what a pipeline does before it submits."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, NamedTuple, get_args

import msgspec

from verifier import Statement, signed_statement_bytes, statement_bytes, to_ns

from .keys import ActorKey


# Converting to the one struct the op names is several times faster than to the union.
_BY_OP: dict[str, type[Any]] = {str(cls.__struct_config__.tag): cls for cls in get_args(Statement)}


class Signed(NamedTuple):
    """A statement, its exact bytes, and the actor's key ID and signature over them."""

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
    actor: ActorKey, origin: str, op: str, *, claimed_at: datetime,
    statement_id: str | None = None, **body: Any,
) -> bytes:
    """A signed statement envelope, ready for ``Ledger.submit``.

    ``claimed_at`` is the actor's own (timezone-aware) time; the log assigns
    the time that counts. Raises ValueError/TypeError for fields the statement
    schema refuses (unknown op, NaN, oversize, naive datetime, ...).
    """
    return build_signed(actor, origin, op, claimed_at=claimed_at, statement_id=statement_id,
                        **body).envelope()


def build_signed(
    actor: ActorKey, origin: str, op: str, *, claimed_at: datetime,
    statement_id: str | None = None, **body: Any,
) -> Signed:
    """``sign_statement`` without the envelope, for a writer in the same process."""
    claimed = to_ns(claimed_at)
    doc = {"v": 1, "op": op, "id": statement_id or new_statement_id(claimed),
           "actor": actor.name, "origin": origin, "claimed_at": claimed, **body}
    kind = _BY_OP.get(op) if isinstance(op, str) else None
    if kind is None:
        raise ValueError(f"invalid {op} statement: unknown op {op!r}")
    try:
        st: Statement = msgspec.convert(doc, kind)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid {op} statement: {exc}") from None
    data = statement_bytes(st)
    return Signed(st, data, actor.key_id, actor.sign(data))
