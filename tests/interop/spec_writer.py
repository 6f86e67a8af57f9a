"""A tiny log writer from specs/ alone, to make signed bundles the spec verifier and
modelseal-verify can be compared on (valid ones, and ones that break one replay rule).

Standard library, ``cryptography`` and the sibling ``spec_verifier`` only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import spec_verifier as sv  # the sibling module: its folder is on sys.path

__all__ = ["HOUR", "T0", "Log", "Signer", "checkpoint_note", "consistency_proof", "sv"]

T0 = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z
HOUR = 3_600_000_000_000


@dataclass(frozen=True)
class Signer:
    """An Ed25519 key with its note name (checkpoint.md §3)."""

    name: str
    priv: Ed25519PrivateKey

    @staticmethod
    def make(name: str) -> "Signer":
        seed = hashlib.sha256(b"spec-writer:" + name.encode()).digest()
        return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public(self) -> bytes:
        return self.priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n\x01" + self.public).digest()[:4]

    @property
    def vkey(self) -> str:
        raw = base64.b64encode(b"\x01" + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{raw}"

    def sign(self, msg: bytes) -> bytes:
        return self.priv.sign(msg)


def checkpoint_note(
    origin: str, size: int, root: bytes, signers: list[Signer], extensions: list[str]
) -> str:
    """A checkpoint note (checkpoint.md §4), signed by every signer."""
    text = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    text += "".join(e + "\n" for e in extensions)
    lines = "".join(
        f"\u2014 {s.name} {base64.b64encode(s.key_id + s.sign(text.encode())).decode()}\n"
        for s in signers
    )
    return text + "\n" + lines


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return _path(m, leaves[:k]) + [sv.mth(leaves[k:])]
    return _path(m - k, leaves[k:]) + [sv.mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [sv.mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return _subproof(m, leaves[:k], b) + [sv.mth(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [sv.mth(leaves[:k])]


def consistency_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 PROOF(m, D[n])."""
    if m == 0 or m == len(leaves):
        return []
    return _subproof(m, leaves, True)


@dataclass
class Log:
    """Appends statements as entries; no rule is checked (that is the point)."""

    origin: str = "spec.example/log"
    log_key: Signer = field(default_factory=lambda: Signer.make("spec.example/log"))
    admin: Signer = field(default_factory=lambda: Signer.make("root-admin"))
    entries: list[bytes] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)
    log_id: str = ""
    now: int = T0
    counter: int = 0

    def statement(self, actor: Signer, op: str, **fields: Any) -> dict[str, Any]:
        self.counter += 1
        st: dict[str, Any] = {
            "v": 2,
            "op": op,
            "id": f"stmt-{self.counter:012d}-x",
            "actor": actor.name,
            "origin": self.origin,
            "claimed_at": self.now,
        }
        if op != "genesis":
            st["log"] = self.log_id
        st.update(fields)
        return st

    def genesis(self, **over: Any) -> bytes:
        st = self.statement(
            self.admin,
            "genesis",
            log_key=self.log_key.vkey,
            admin_key=self.admin.vkey,
            claim_skew=300_000_000_000,
            claim_window=86_400_000_000_000,
        )
        st.update(over)
        raw = self.append(self.admin, st)
        self.log_id = sv.leaf_hash(raw).hex()
        return raw

    def add(
        self,
        actor: Signer,
        op: str,
        *,
        entry_over: dict[str, Any] | None = None,
        st_bytes: bytes | None = None,
        **fields: Any,
    ) -> bytes:
        st = self.statement(actor, op, **fields)
        return self.append(actor, st, entry_over=entry_over, st_bytes=st_bytes)

    def append(
        self,
        actor: Signer,
        st: dict[str, Any],
        *,
        entry_over: dict[str, Any] | None = None,
        st_bytes: bytes | None = None,
    ) -> bytes:
        self.now += HOUR
        sb = st_bytes if st_bytes is not None else sv.canon(st).encode()
        op = st.get("op")
        model = st.get("model") if op in ("event", "tag") else st.get("group")
        prev = self.heads.get(model) if isinstance(model, str) else None
        e: dict[str, Any] = {
            "v": 1,
            "index": len(self.entries),
            "recorded_at": self.now,
            "prev": prev,
            "statement": sb.decode("utf-8", "surrogatepass"),
            "key_id": actor.key_id.hex(),
            "sig": base64.b64encode(actor.sign(sb)).decode(),
        }
        e.update(entry_over or {})
        raw = sv.canon(e).encode("utf-8", "surrogatepass")
        self.entries.append(raw)
        snap = sv.leaf_hash(raw).hex()
        name = st.get("name") if op == "register" else model
        if isinstance(name, str) and op in (
            "register",
            "event",
            "tag",
            "member_add",
            "member_remove",
        ):
            self.heads[name] = snap
        return raw

    def bundle(
        self,
        n: int | None = None,
        t: int | None = None,
        *,
        signers: list[Signer] | None = None,
        extensions: list[str] | None = None,
        big_t: int | None = None,
        trusted_size: int | None = None,
    ) -> bytes:
        """A JSON bundle (bundle.md §1) of the first ``n`` entries under a checkpoint of all."""
        big_n = len(self.entries)
        n = big_n if n is None else n
        leaves = [sv.leaf_hash(r) for r in self.entries]
        root = sv.mth(leaves)
        big_t = self.now if big_t is None else big_t
        t = big_t if t is None else t
        ext = [f"modelseal-time {big_t}"] if extensions is None else extensions
        note = checkpoint_note(self.origin, big_n, root, signers or [self.log_key], ext)

        def b(h: bytes) -> str:
            return base64.b64encode(h).decode()

        nxt: dict[str, Any] | None = None
        if n < big_n:
            nxt = {"entry": b(self.entries[n]), "proof": [b(h) for h in _path(n, leaves)]}
        doc = {
            "format": "modelseal-bundle",
            "version": 2,
            "checkpoint": note,
            "at": {"size": n, "time": t, "root": b(sv.mth(leaves[:n]))},
            "consistency": [b(h) for h in consistency_proof(n, leaves)],
            "next": nxt,
            "from_trusted": None
            if trusted_size is None
            else {
                "old_size": trusted_size,
                "proof": [b(h) for h in consistency_proof(trusted_size, leaves)],
            },
            "entries": [b(r) for r in self.entries[:n]],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def checkpoint(self, size: int, time: int, *, origin: str | None = None) -> bytes:
        """A checkpoint note of the first ``size`` entries at ``time`` (a trusted one)."""
        root = sv.mth([sv.leaf_hash(r) for r in self.entries[:size]])
        note = checkpoint_note(
            origin or self.origin, size, root, [self.log_key], [f"modelseal-time {time}"]
        )
        return note.encode()
