"""Building and signing statements: what a pipeline does before it submits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from verifier import Statement, signed_statement_bytes, statement_bytes, to_ns

from .keys import ActorKey


class Signed(NamedTuple):
    """A statement, its exact bytes, and the actor's key ID and signature over them."""

    statement: Statement
    data: bytes
    key_id: bytes
    sig: bytes

    def envelope(self) -> bytes:
        """The signed-statement envelope bytes (what ``Ledger.submit`` takes)."""
        return signed_statement_bytes(self.data, self.key_id, self.sig)


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
    doc = {"v": 1, "op": op, "id": statement_id or uuid.uuid4().hex, "actor": actor.name,
           "origin": origin, "claimed_at": to_ns(claimed_at), **body}
    try:
        st = msgspec.convert(doc, Statement)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid {op} statement: {exc}") from None
    data = statement_bytes(st)
    return Signed(st, data, actor.key_id, actor.sign(data))
