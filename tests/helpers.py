"""Shared helpers for the verifier tests: signing raw note texts, bundle surgery,
inventory snapshots and byte mutations. Built on tests.logsim; test-only."""

from __future__ import annotations

import base64
import copy
from typing import Any

import msgspec

import verifier as v
from tests import reference as ref
from tests.logsim import Log, Signer

ACCEPTED = (v.MalformedInputError, v.VerificationError)


def model_doc(name: str, tier: str = "high", model_type: str = "ml_model") -> dict[str, Any]:
    """The body of a ``register`` statement for ``name``."""
    return dict(name=name, owner="risk-team", model_type=model_type, tier=tier,
                purpose=f"scores {name}", status="active", metadata={})


def scope_doc(**kw: Any) -> dict[str, Any]:
    """A scope as a statement carries it (plain JSON), built by make_scope; ``ops``
    defaults to every writer op (event, membership, register, tag)."""
    kw.setdefault("ops", ["event", "membership", "register", "tag"])
    out: dict[str, Any] = msgspec.to_builtins(v.make_scope(**kw))
    return out


def sign_text(text: bytes, *signers: Signer) -> bytes:
    """A signed note over ``text`` (which must end in a newline) by each signer, in order."""
    lines = [v.signature_line(s.name, s.key.key_id, s.sign(text)) for s in signers]
    return v.assemble_note(text, lines)


def raw_sig_line(name: str, blob: bytes) -> bytes:
    """A signature line carrying an arbitrary blob (key ID || signature)."""
    return f"\u2014 {name} {base64.b64encode(blob).decode()}\n".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def spare_bits(b64text: str) -> str:
    """Set a spare bit in the last base64 character before the padding (non-canonical)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = b64text.rstrip("=")
    last = alphabet[alphabet.index(body[-1]) | 1]
    return body[:-1] + last + b64text[len(body):]


# -- bundles -------------------------------------------------------------------

def bundle_doc(bundle: bytes) -> dict[str, Any]:
    """A bundle as a plain dict, for surgery."""
    doc: dict[str, Any] = msgspec.json.decode(bundle)
    return doc


def bundle_bytes(doc: dict[str, Any]) -> bytes:
    """Re-encode a bundle dict the way encode_bundle does."""
    return msgspec.json.encode(doc, order="sorted")


def make_bundle(log: Log, n: int, t: int, s: int, *, checkpoint: bytes | None = None,
                entries: list[bytes] | None = None, next_entry: bytes | None | bool = True,
                trusted: int | None = None) -> bytes:
    """An honestly computed bundle for the first ``n`` entries (or ``entries``),
    under the checkpoint of size ``s``, claiming time ``t``; lets a test lie
    about which entries belong in it while keeping every hash consistent."""
    ents = log.entries[:n] if entries is None else entries
    nxt = log.entries[n] if next_entry is True and n < s else (
        None if next_entry is True else next_entry)
    return v.encode_bundle(
        checkpoint=log.checkpoint(s) if checkpoint is None else checkpoint,
        size=len(ents), time=t, root=ref.mth(ents),
        consistency=log.consistency(n, s), entries=ents, next_entry=nxt or None,
        next_proof=log.inclusion(n, s) if nxt else [],
        from_trusted=None if trusted is None else (trusted, log.consistency(trusted, s)),
    )


# -- inventories ---------------------------------------------------------------

def inventory_state(inv: v.Inventory) -> dict[str, Any]:
    """Everything an Inventory holds, as plain comparable data."""
    def rec(r: v.KeyRecord) -> tuple[Any, ...]:
        return (r.vkey, r.role, r.granted_index, r.granted_at, r.granted_by,
                r.revoked_index, r.revoked_at, r.revoked_by, r.reason)

    return copy.deepcopy({
        "origin": inv.origin,
        "log_key": None if inv.log_key is None else inv.log_key.vkey,
        "size": inv.size,
        "last_recorded_at": inv.last_recorded_at,
        "keys": {name: rec(r) for name, r in inv.keys.items()},
        "key_history": [rec(r) for r in inv.key_history],
        "statement_ids": dict(inv.statement_ids),
        "snapshot_owner": dict(inv.snapshot_owner),
        "timelines": None if inv.timelines is None else {
            name: [repr(t) for t in items] for name, items in inv.timelines.items()},
        "models": {name: m.fields() for name, m in inv.models.items()},
    })


# -- byte mutations (for fuzzing) -------------------------------------------------

def mutate(data: bytes, kind: int, pos: int, payload: bytes) -> bytes:
    """One mutation of ``data``: bit flip, truncation, insertion, deletion or overwrite."""
    if not data:
        return payload
    i = pos % len(data)
    kind %= 5
    if kind == 0:
        return data[:i] + bytes([data[i] ^ (1 << (pos % 8))]) + data[i + 1:]
    if kind == 1:
        return data[:i]
    if kind == 2:
        return data[:i] + payload + data[i:]
    if kind == 3:
        return data[:i] + data[i + 1 + len(payload):]
    return data[:i] + payload + data[i + len(payload):]
