"""Part 4, bundles: a seeded mutator changes a bundle exported by the ledger (bit flips,
truncation, reordered, dropped or duplicated entries, a swapped checkpoint, a changed
size, time, root, proof, payload or signature, a foreign key) and every result must be
refused by verify_bundle with MalformedInputError or a VerificationError.

The last group of mutators plays a log operator whose log key is compromised: it
rewrites entries after the examiner's trusted checkpoint so that every hash, proof
and checkpoint signature is honest, and only the replay of the log's rules (a
signature, a grant, a revocation, a replayed statement, the order) can refuse it.

The base bundle has no slack: its time is exactly the last included entry's, and
the next entry is one nanosecond later, so any change of the time is a lie too."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

import verifier as v
from ledger import ActorKey, Ledger, LogKey
from ledger.statements import build_signed
from ledger._writer import sign_checkpoint
from tests import reference as ref
from tests.helpers import bundle_bytes, bundle_doc
from tests.ledger_support import ORIGIN, Keys

ACCEPTED_ERRORS = (v.MalformedInputError, v.VerificationError)
CLAIMED = datetime(2025, 1, 1, tzinfo=timezone.utc)


@dataclass
class Base:
    """A log written by the ledger, its base bundle, and what the mutators need."""

    entries: list[bytes]
    checkpoints: dict[int, bytes]
    bundle: bytes
    n: int
    trusted_size: int
    keys: list[v.VerifierKey]
    trusted: v.Checkpoint
    log_key: LogKey
    pipe: ActorKey
    revoked: ActorKey
    g: int  # entry i (i >= 1) was recorded at g + i

    @property
    def s(self) -> int:
        return len(self.entries)

    def verify(self, data: bytes) -> v.VerifiedInventory:
        return v.verify_bundle(data, self.keys, trusted=self.trusted)


def build_base(workdir: Path | None = None) -> Base:
    """Write a small varied log with the ledger (nanosecond clock), export the base bundle."""
    tmp = Path(tempfile.mkdtemp(dir=workdir))
    keys = Keys()
    try:
        led = Ledger.create(tmp / "s", origin=ORIGIN, log_key=keys.log, admin=keys.admin)
        g = v.parse_entry(led.entry(0)).entry.recorded_at
        CLAIM.update(at=v.from_ns(g), log=led.log_id)  # what signed_item claims
        counter = iter(range(g + 1, g + 10**6))
        led._now_ns = lambda: next(counter)  # type: ignore[method-assign]
        led._now = lambda: CLAIMED  # type: ignore[method-assign]
        pipe, revoked = ActorKey.generate("ml-pipeline"), ActorKey.generate("validator")
        led.grant(pipe.vkey)
        led.grant(revoked.vkey)
        for name in ("fraud", "churn", "credit"):
            led.register(name=name, owner="risk-team", model_type="ml_model", tier="high",
                         purpose=f"scores {name}")
        as_pipe = Ledger.open(tmp / "s", log_key=keys.log, signer=pipe)
        as_pipe._now_ns, as_pipe._now = led._now_ns, led._now  # type: ignore[method-assign]
        for i in range(6):
            as_pipe.record(["fraud", "churn", "credit"][i % 3], "retrained",
                           {"auc": 0.9 + i / 100, "rows": 1000 * i, "note": "é ü 🙂"})
        led.tag("fraud", "production")
        led.record("fraud", "validated", {"by": "validator"})
        led.revoke("validator", reason="rotation")
        led.register_group(name="suite", owner="o", tier="high", purpose="p",
                           members=["fraud", "churn"])
        for i in range(8):
            as_pipe.record(["fraud", "churn"][i % 2], "monitored", {"psi": i / 10})
        led.update("credit", tier="low")
        led.tag("churn", "production")
        for i in range(6):
            as_pipe.record("credit", "retrained", {"run": i})
        as_pipe.close()
        entries = [led.entry(i) for i in range(led.size)]
        store, s = led._store, led.size
        with store.reader() as txn:
            checkpoints = {n: bytes(note) for n, note in
                           ((int.from_bytes(k, "big"), x) for k, x in
                            txn.cursor(db=store.db["checkpoints"]).iternext())}
        led.close()
    finally:
        shutil.rmtree(tmp)
    n = s * 3 // 4
    trusted_size = n // 2
    base = Base(entries, checkpoints, b"", n, trusted_size, [keys.log.key],
                v.Checkpoint.parse_note(checkpoints[trusted_size], [keys.log.key]),
                keys.log, pipe, revoked, g)
    base.bundle = honest_bundle(base, entries, n, checkpoints[s])
    base.verify(base.bundle)
    return base


def recorded(data: bytes) -> int:
    return v.parse_entry(data).entry.recorded_at


def honest_bundle(base: Base, entries: list[bytes], n: int, checkpoint: bytes) -> bytes:
    """A bundle with every hash and proof computed honestly over ``entries``."""
    s = len(entries)
    assert recorded(entries[n]) == recorded(entries[n - 1]) + 1 or checkpoint != \
        base.checkpoints.get(s)
    return v.encode_bundle(
        checkpoint=checkpoint, size=n, time=recorded(entries[n - 1]),
        root=ref.mth(entries[:n]), consistency=ref.proof(n, entries), entries=entries[:n],
        next_entry=entries[n], next_proof=ref.path(n, entries),
        from_trusted=(base.trusted_size, ref.proof(base.trusted_size, entries)))


# -- helpers for the mutators ------------------------------------------------------------

Doc = dict[str, Any]
Mutator = Callable[[random.Random, Base], bytes]


def b64(data: bytes) -> str:
    return v.encoding.b64encode(data)


def unb64(text: str) -> bytes:
    return v.encoding.b64decode(text, "test")


def flip_bit(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


def edit(base: Base, fn: Callable[[Doc], None]) -> bytes:
    doc = bundle_doc(base.bundle)
    fn(doc)
    return bundle_bytes(doc)


def entry_doc(data: bytes) -> Doc:
    doc: Doc = msgspec.json.decode(data)
    return doc


def change_statement(data: bytes, rng: random.Random) -> bytes:
    """The entry with one field of its statement changed (still canonical), same signature."""
    doc = entry_doc(data)
    st = msgspec.json.decode(doc["statement"].encode())
    field = rng.choice(sorted(k for k in st if k not in ("v", "op")))
    value = st[field]
    if isinstance(value, dict):
        value = {**value, "x": rng.randrange(10**6)}
    elif isinstance(value, int) and not isinstance(value, bool):
        value += rng.choice([1, -1, 10**9])
    elif field in ("log", "target"):  # hex: another hash
        value = value[:-1] + ("0" if value[-1:] != "0" else "1")
    elif isinstance(value, str):
        value = value[:-1] + ("z" if value[-1:] != "z" else "y")
    else:
        value = "changed"
    st[field] = value
    doc["statement"] = v.canonical_json(st).decode()
    return v.canonical_json(doc)


def resign(data: bytes, key: ActorKey) -> bytes:
    """The entry with its statement signed by ``key`` instead."""
    doc = entry_doc(data)
    st = doc["statement"].encode()
    doc["key_id"], doc["sig"] = key.key_id.hex(), b64(key.sign(st))
    return v.canonical_json(doc)


def set_entry(base: Base, i: int, data: bytes, *, recompute: bool) -> bytes:
    def fn(doc: Doc) -> None:
        doc["entries"][i] = b64(data)
        if recompute:  # the entries hash to the claimed root, so a later check must fail
            doc["at"]["root"] = b64(ref.mth([unb64(e) for e in doc["entries"]]))
    return edit(base, fn)


def model_entries(base: Base, lo: int, hi: int) -> list[int]:
    """Indexes in [lo, hi) whose statement is a model event (has a payload)."""
    return [i for i in range(lo, hi)
            if isinstance(v.parse_entry(base.entries[i]).statement, v.Event)]


# -- the mutators ----------------------------------------------------------------------------

def m_bitflip(rng: random.Random, base: Base) -> bytes:
    data = base.bundle
    for _ in range(rng.randint(1, 3)):
        data = flip_bit(data, rng)
    return data


def m_truncate(rng: random.Random, base: Base) -> bytes:
    return base.bundle[:rng.randrange(len(base.bundle))]


def m_entry_bitflip(rng: random.Random, base: Base) -> bytes:
    i = rng.randrange(base.n)
    return set_entry(base, i, flip_bit(base.entries[i], rng), recompute=rng.random() < 0.5)


def m_reorder(rng: random.Random, base: Base) -> bytes:
    i, j = rng.sample(range(base.n), 2)
    recompute = rng.random() < 0.5

    def fn(doc: Doc) -> None:
        e = doc["entries"]
        e[i], e[j] = e[j], e[i]
        if recompute:
            doc["at"]["root"] = b64(ref.mth([unb64(x) for x in e]))
    return edit(base, fn)


def m_drop(rng: random.Random, base: Base) -> bytes:
    i = rng.randrange(base.n)
    recompute = rng.random() < 0.5

    def fn(doc: Doc) -> None:
        doc["entries"].pop(i)
        if recompute:
            doc["at"]["size"] -= 1
            doc["at"]["root"] = b64(ref.mth([unb64(x) for x in doc["entries"]]))
            doc["consistency"] = [b64(h) for h in ref.proof(base.n - 1, base.entries)]
    return edit(base, fn)


def m_duplicate(rng: random.Random, base: Base) -> bytes:
    i, j = rng.randrange(base.n), rng.randrange(base.n + 1)
    recompute = rng.random() < 0.5

    def fn(doc: Doc) -> None:
        doc["entries"].insert(j, doc["entries"][i])
        if recompute:
            doc["at"]["size"] += 1
            doc["at"]["root"] = b64(ref.mth([unb64(x) for x in doc["entries"]]))
    return edit(base, fn)


def m_swap_checkpoint(rng: random.Random, base: Base) -> bytes:
    other = rng.choice([k for k in base.checkpoints if k != base.s])
    return edit(base, lambda d: d.__setitem__("checkpoint", base.checkpoints[other].decode()))


def m_size(rng: random.Random, base: Base) -> bytes:
    new = rng.choice([base.n + 1, base.n - 1, 0, base.s, base.s + 1, rng.randrange(-5, 2**64),
                      rng.randrange(base.s)])
    if new == base.n:
        new += 1
    return edit(base, lambda d: d["at"].__setitem__("size", new))


def m_time(rng: random.Random, base: Base) -> bytes:
    t = recorded(base.entries[base.n - 1])
    delta = rng.choice([1, -1, 2, -2, 10**3, -10**3, 10**9, -10**9,
                        rng.randrange(1, 2**62), -rng.randrange(1, t)])
    return edit(base, lambda d: d["at"].__setitem__("time", t + delta))


def m_root(rng: random.Random, base: Base) -> bytes:
    options = [ref.mth(base.entries[:k]) for k in (base.n - 1, base.n + 1, base.s)]
    new = rng.choice([*options, rng.randbytes(32)])
    return edit(base, lambda d: d["at"].__setitem__("root", b64(new)))


def m_payload(rng: random.Random, base: Base) -> bytes:
    i = rng.randrange(base.n)
    return set_entry(base, i, change_statement(base.entries[i], rng),
                     recompute=rng.random() < 0.5)


def m_entry_signature(rng: random.Random, base: Base) -> bytes:
    i = rng.randrange(base.n)
    doc = entry_doc(base.entries[i])
    doc["sig"] = b64(flip_bit(unb64(doc["sig"]), rng))
    return set_entry(base, i, v.canonical_json(doc), recompute=rng.random() < 0.5)


def m_checkpoint_signature(rng: random.Random, base: Base) -> bytes:
    note = base.checkpoints[base.s]
    text, _, sigline = note.rpartition(b"\n\n")
    dash, name, blob = sigline.rstrip(b"\n").split(b" ")
    forged = b64(flip_bit(unb64(blob.decode()), rng)).encode()
    new = text + b"\n\n" + b" ".join([dash, name, forged]) + b"\n"
    return edit(base, lambda d: d.__setitem__("checkpoint", new.decode()))


def m_foreign_log_key(rng: random.Random, base: Base) -> bytes:
    """The checkpoint signed by another key under the log's name (over the true tree or a
    tree with one entry changed)."""
    foreign = LogKey.generate(ORIGIN)
    entries = list(base.entries)
    if rng.random() < 0.5:
        i = rng.randrange(base.n)
        entries[i] = change_statement(entries[i], rng)
    note = sign_checkpoint(foreign, ORIGIN, base.s, ref.mth(entries), recorded(entries[-1]))
    return honest_bundle(base, entries, base.n, note)


def m_foreign_actor_key(rng: random.Random, base: Base) -> bytes:
    i = rng.randrange(base.n)
    name = v.parse_entry(base.entries[i]).statement.actor
    return set_entry(base, i, resign(base.entries[i], ActorKey.generate(name)),
                     recompute=rng.random() < 0.5)


def m_proof(rng: random.Random, base: Base) -> bytes:
    where = rng.choice(["consistency", "next", "from_trusted"])

    def fn(doc: Doc) -> None:
        proof = doc[where]["proof"] if where != "consistency" else doc["consistency"]
        how = rng.choice(["flip", "drop", "add", "swap", "replace"])
        if how == "flip":
            k = rng.randrange(len(proof))
            proof[k] = b64(flip_bit(unb64(proof[k]), rng))
        elif how == "drop":
            proof.pop(rng.randrange(len(proof)))
        elif how == "add":
            proof.insert(rng.randrange(len(proof) + 1), b64(rng.randbytes(32)))
        elif how == "swap" and len(proof) > 1:
            a, b = rng.sample(range(len(proof)), 2)
            proof[a], proof[b] = proof[b], proof[a]
        else:
            proof[rng.randrange(len(proof))] = b64(ref.mth(base.entries[:rng.randint(1, 8)]))
    return edit(base, fn)


def m_next(rng: random.Random, base: Base) -> bytes:
    choice = rng.random()
    if choice < 0.3:
        return edit(base, lambda d: d.__setitem__("next", None))
    other = rng.choice([i for i in range(base.s) if i != base.n])
    data = base.entries[other] if choice < 0.7 else change_statement(base.entries[base.n], rng)
    return edit(base, lambda d: d["next"].__setitem__("entry", b64(data)))


def m_trusted(rng: random.Random, base: Base) -> bytes:
    if rng.random() < 0.3:
        return edit(base, lambda d: d.__setitem__("from_trusted", None))
    new = rng.choice([base.trusted_size + 1, base.trusted_size - 1, base.n, base.s, 0])
    return edit(base, lambda d: d["from_trusted"].__setitem__("old_size", new))


# -- a compromised log key: honest hashes, proofs and checkpoint, rule-breaking entries ----

Item = tuple[bytes, bytes, bytes, int | None]  # statement bytes, key id, signature, time


def items_of(entries: list[bytes]) -> list[Item]:
    out: list[Item] = []
    for data in entries:
        p = v.parse_entry(data)
        out.append((p.statement_bytes, p.key_id, p.sig, None))
    return out


def rebuild(base: Base, items: list[Item], keep: int,
            prefix: list[bytes] | None = None) -> list[bytes]:
    """Entries ``keep..`` rebuilt from ``items`` with honest indexes, chain links and times,
    after the first ``keep`` of ``prefix`` (default: the base log's)."""
    entries = list((base.entries if prefix is None else prefix)[:keep])
    heads: dict[str, str] = {}
    for data in entries:
        name = v.entry.statement_model(v.parse_entry(data).statement)
        if name is not None:
            heads[name] = v.snapshot_hash(data)
    for idx in range(keep, len(items)):
        st_bytes, key_id, sig, at = items[idx]
        st = v.parse_statement(st_bytes)
        name = v.entry.statement_model(st)
        prev = None if name is None or isinstance(st, v.Register) else heads.get(name)
        data = v.entry_bytes(index=idx, recorded_at=base.g + idx if at is None else at,
                             prev=prev, statement=st_bytes, key_id=key_id, sig=sig)
        if name is not None:
            heads[name] = v.snapshot_hash(data)
        entries.append(data)
    return entries


def log_signed(base: Base, entries: list[bytes], n: int) -> bytes:
    note = sign_checkpoint(base.log_key, ORIGIN, len(entries), ref.mth(entries),
                           recorded(entries[-1]))
    return honest_bundle(base, entries, n, note)


CLAIM: dict[str, Any] = {"at": CLAIMED, "log": "0" * 64}  # set by build_base


def signed_item(actor: ActorKey, op: str, **body: Any) -> Item:
    s = build_signed(actor, ORIGIN, op, log_id=CLAIM["log"], claimed_at=CLAIM["at"], **body)
    return (s.data, s.key_id, s.sig, None)


def m_log_control(rng: random.Random, base: Base) -> bytes:
    """Not a mutation: the same log rebuilt (a check on the machinery; must verify)."""
    return log_signed(base, rebuild(base, items_of(base.entries), base.trusted_size), base.n)


def m_log_forged(rng: random.Random, base: Base) -> bytes:
    """A compromised log rewrites one entry at or after the trusted size (and before the
    cut) into one that breaks a rule, and re-signs everything honestly."""
    lo, hi = base.trusted_size, base.n - 1
    i = rng.randrange(lo, hi)
    items = items_of(base.entries)
    kind = rng.choice(["payload", "foreign", "revoked", "writer-admin", "replayed",
                       "dropped", "backdated", "prev", "tag-target", "unknown-model"])
    keep = base.trusted_size
    if kind == "payload":
        events = model_entries(base, lo, hi)
        i = rng.choice(events)
        p = v.parse_entry(change_statement(base.entries[i], rng))
        items[i] = (p.statement_bytes, p.key_id, p.sig, None)
    elif kind == "foreign":
        p = v.parse_entry(resign(base.entries[i], ActorKey.generate(
            v.parse_entry(base.entries[i]).statement.actor)))
        items[i] = (p.statement_bytes, p.key_id, p.sig, None)
    elif kind == "revoked":
        revoked_at = next(k for k, e in enumerate(base.entries)
                          if isinstance(v.parse_entry(e).statement, v.Revoke))
        i = max(i, revoked_at + 1)
        items.insert(i, signed_item(base.revoked, "event", model="fraud",
                                    event_type="validated", payload={}))
    elif kind == "writer-admin":
        items.insert(i, signed_item(base.pipe, "grant", key=ActorKey.generate("x").vkey,
                                    role="admin"))
    elif kind == "replayed":
        items.insert(i, items[rng.randrange(i)])
    elif kind == "dropped":
        entries = list(base.entries)
        entries.pop(i)
        return log_signed(base, entries, base.n - 1)
    elif kind == "backdated":
        st, kid, sig, _ = items[i]
        items[i] = (st, kid, sig, base.g + i - rng.randint(2, 5))
    elif kind == "prev":
        entries = rebuild(base, items, keep)
        events = model_entries(base, lo, hi)
        i = rng.choice(events)
        doc = entry_doc(entries[i])
        doc["prev"] = rng.choice([h for h in map(v.snapshot_hash, entries[:i])
                                  if h != doc["prev"]])
        entries[i] = v.canonical_json(doc)
        entries = rebuild(base, items_of(entries), i + 1, entries)
        return log_signed(base, entries, base.n)
    elif kind == "tag-target":
        items.insert(i, signed_item(base.pipe, "tag", model="fraud", tag="production",
                                    target=v.snapshot_hash(base.entries[5])))
    else:
        items.insert(i, signed_item(base.pipe, "event", model="ghost", event_type="x",
                                    payload={}))
    entries = rebuild(base, items, keep)
    return log_signed(base, entries, base.n + (len(entries) > base.s))


MUTATORS: dict[str, Mutator] = {
    "bit flips": m_bitflip, "truncation": m_truncate, "entry bit flip": m_entry_bitflip,
    "reordered entries": m_reorder, "dropped entry": m_drop,
    "duplicated entry": m_duplicate, "swapped checkpoint": m_swap_checkpoint,
    "changed size": m_size, "changed time": m_time, "changed root": m_root,
    "changed payload": m_payload, "changed entry signature": m_entry_signature,
    "changed checkpoint signature": m_checkpoint_signature,
    "foreign log key": m_foreign_log_key, "foreign actor key": m_foreign_actor_key,
    "changed proof": m_proof, "changed next entry": m_next,
    "changed trusted proof": m_trusted, "compromised log key": m_log_forged,
}


def verdict(base: Base, data: bytes) -> str | None:
    """None if the bundle is refused as it must be; else what happened."""
    try:
        base.verify(data)
    except ACCEPTED_ERRORS:
        return None
    except Exception as exc:  # any other exception is a verifier bug
        return f"raised {type(exc).__name__}: {exc}"
    return "accepted"


def mutate(base: Base, name: str, rng: random.Random) -> bytes:
    """One mutation by ``name`` that changes the bundle (retried until it does)."""
    for _ in range(100):
        data = MUTATORS[name](rng, base)
        if data != base.bundle:
            return data
    raise AssertionError(f"mutator {name} keeps returning the bundle unchanged")


def run_mutations(workdir: Path | None, *, count: int, seed: int) -> dict[str, Any]:
    """``count`` mutations, round robin over the mutators; counts by mutator."""
    base = build_base(workdir)
    rng = random.Random(seed)
    names = sorted(MUTATORS)
    tried = rejected = 0
    by: dict[str, list[int]] = {name: [0, 0] for name in names}
    failures: list[str] = []
    controls = sum(base.verify(m_log_control(rng, base)).size == base.n for _ in range(3))
    for k in range(count):
        name = names[k % len(names)]
        data = mutate(base, name, rng)
        outcome = verdict(base, data)
        tried += 1
        by[name][0] += 1
        if outcome is None:
            rejected += 1
            by[name][1] += 1
        else:
            failures.append(f"{name}: {outcome}")
    return {"tried": tried, "rejected": rejected, "controls_verified": f"{controls}/3",
            "entries_in_base_log": base.s, "bundle_size": base.n,
            "trusted_size": base.trusted_size,
            "by_mutator": {name: f"{r}/{t}" for name, (t, r) in by.items()},
            "failures": failures[:20]}
