"""How the ledger stores derived state: model states (compact msgpack rows) and
the keyring (JSON).

These are caches of what replaying the log gives; ``audit()`` recomputes them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from verifier import (
    ROLES,
    KeyRecord,
    ModelState,
    Policy,
    PolicyRecord,
    Scope,
    VerifierError,
    VerifierKey,
)

from .errors import StoreError



_state_enc = msgspec.json.Encoder(order="sorted")
_row_enc = msgspec.msgpack.Encoder(order="sorted")  # dict keys sorted: one encoding per state
_row_dec = msgspec.msgpack.Decoder(ModelState)


def encode_state(state: ModelState) -> bytes:
    """A model state as a compact msgpack row (an array in field order)."""
    return _row_enc.encode(state)


# Inverse of encode_state: the decoder's bound method itself, so that loops over many
# rows (inventory_at) make no Python-level call per row.
decode_state = _row_dec.decode


def encode_keyring(records: list[KeyRecord]) -> bytes:
    """The key history (grants and revocations) as JSON. A grant's ``scope`` is a member
    only when the grant named one, so a store without scoped grants keeps its bytes."""
    rows = []
    for r in records:
        row: dict[str, Any] = {
            "vkey": r.vkey, "role": r.role, "granted_index": r.granted_index,
            "granted_at": r.granted_at, "granted_by": r.granted_by,
            "revoked_index": r.revoked_index, "revoked_at": r.revoked_at,
            "revoked_by": r.revoked_by, "reason": r.reason}
        if r.scope is not None:
            row["scope"] = r.scope
        rows.append(row)
    return _state_enc.encode(rows)


def decode_keyring(data: bytes) -> list[KeyRecord]:
    """Inverse of encode_keyring."""
    rows = msgspec.json.decode(data, type=list[dict[str, Any]])
    out = []
    for row in rows:
        key = VerifierKey.parse_stored(row.pop("vkey"))  # parsed in full when granted
        scope = row.pop("scope", None)
        out.append(KeyRecord(key=key, **row,
                             scope=None if scope is None else msgspec.convert(scope, Scope)))
    return out


class _PolicyRow(msgspec.Struct, forbid_unknown_fields=True):
    policy: Policy | None
    index: int
    at: int
    by: str


def encode_policy(record: PolicyRecord) -> bytes:
    """The policy in force (or lifted), and the entry that set it, as JSON."""
    return _state_enc.encode(_PolicyRow(record.policy, record.index, record.at, record.by))


def decode_policy(data: bytes) -> PolicyRecord:
    """Inverse of encode_policy. msgspec errors for a damaged row."""
    row = msgspec.json.decode(data, type=_PolicyRow)
    return PolicyRecord(row.policy, row.index, row.at, row.by)


def active_keys(data: bytes) -> dict[str, tuple[VerifierKey, str]]:
    """Each actor's active (granted, unrevoked) key and its role, from a keyring row
    (``encode_keyring``'s bytes). StoreError if the row does not decode: a damaged store
    (``audit()`` names it), never an answer."""
    try:
        records = decode_keyring(data)
        problem = next((f"role {r.role!r}" for r in records if r.role not in ROLES), None)
    except (msgspec.MsgspecError, VerifierError, ValueError, TypeError, KeyError,
            AttributeError) as exc:
        problem = str(exc)
    if problem is not None:
        raise StoreError(f"store is damaged: its keyring row does not decode ({problem}); "
                         f"run audit()")
    return {r.name: (r.key, r.role) for r in records if r.revoked_index is None}
