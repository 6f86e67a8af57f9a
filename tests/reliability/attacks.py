"""Part 5, write attacks: forged signatures, revoked keys, replayed statements, actors
claiming another's name, admin work by a writer, oversize, deeply nested, invalid
UTF-8 and NaN input, and random bit flips of valid signed statements. Each must be
refused with a typed error and leave the store exactly as it was (size, root, latest
checkpoint, and a clean audit), on its own and inside a batch."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

import verifier as v
from ledger import ActorKey, Ledger, sign_statement
from tests.ledger_support import ORIGIN, fingerprint
from tests.reliability.common import build_store

Attack = tuple[str, tuple[type[BaseException], ...], Callable[[], Any]]
REFUSED = (v.MalformedInputError, v.VerificationError, ValueError, TypeError)


def statement(actor: ActorKey, op: str = "event", **body: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(model="m0", event_type="retrained", payload={}) \
        if op == "event" else {}
    fields.update(body)
    return {"v": 2, "op": op, "id": f"attack-{random.getrandbits(64):016x}",
            "actor": actor.name, "origin": ORIGIN, "log": LOG_ID["id"], "claimed_at": v.to_ns(T0),
            **fields}


LOG_ID = {"id": "0" * 64}  # the attacked log's id, set by battery()
# the attacked store runs on the real clock: claims are made now (within its claim window)
T0 = datetime.now(timezone.utc)


def raw_envelope(st_bytes: bytes, key_id: bytes, sig: bytes) -> bytes:
    """An envelope around exactly ``st_bytes`` (which may be anything), canonical otherwise."""
    return (b'{"key_id":"' + key_id.hex().encode() + b'","sig":"'
            + v.encoding.b64encode(sig).encode() + b'","statement":' + _json_str(st_bytes)
            + b"}")


def _json_str(data: bytes) -> bytes:
    """``data`` as a JSON string literal, escaping only '"' and '\\' and control characters,
    and leaving any other byte (invalid UTF-8 included) as it is."""
    out = bytearray(b'"')
    for b in data:
        if b in (0x22, 0x5C):
            out += b"\\" + bytes([b])
        elif b < 0x20:
            out += f"\\u{b:04x}".encode()
        else:
            out.append(b)
    return bytes(out + b'"')


def foreign(actor: ActorKey, doc: dict[str, Any], signer: ActorKey | None = None) -> bytes:
    """A statement encoded and signed without sign_statement's checks (a foreign client);
    signed by ``signer`` (default the actor) under the actor's key ID."""
    data = v.canonical_json(doc)
    return v.signed_statement_bytes(data, actor.key_id, (signer or actor).sign(data))


def nest(levels: int) -> Any:
    inner: Any = 0
    for _ in range(levels):
        inner = [inner]
    return inner


def battery(led: Ledger, admin: ActorKey, pipe: ActorKey, revoked: ActorKey,
            early: bytes, logged: bytes) -> list[Attack]:
    """Every attack, as (name, the errors that refuse it, the call)."""
    MI, SE, AE, CE, RE = (v.MalformedInputError, v.SignatureError, v.AuthorizationError,
                          v.ChainError, v.RuleError)
    LOG_ID["id"] = led.log_id
    good = sign_statement(pipe, ORIGIN, "event", log_id=led.log_id, claimed_at=T0, model="m0",
                          event_type="retrained", payload={"auc": 0.9})
    env = msgspec.json.decode(good)
    sig = v.encoding.b64decode(env["sig"], "sig")
    stranger, impostor = ActorKey.generate("stranger"), ActorKey.generate(pipe.name)
    st_good = env["statement"].encode()

    def reseal(**over: Any) -> bytes:
        return msgspec.json.encode({**env, **over}, order="sorted")

    def sub(data: Any) -> Callable[[], Any]:
        return lambda: led.submit(data)

    def as_actor(actor: ActorKey, fn: Callable[[Ledger], Any]) -> Callable[[], Any]:
        def run() -> Any:
            old = led.signer
            led.signer = actor
            try:
                return fn(led)
            finally:
                led.signer = old
        return run

    bad_utf8 = st_good.replace(b'"payload":{', b'"payload":{"x":"\xff\xfe",', 1)
    surrogate = st_good.replace(b'"payload":{', b'"payload":{"x":"\\ud800",', 1)
    attacks: list[Attack] = [
        ("forged signature: one bit", (SE,), sub(reseal(sig=v.encoding.b64encode(
            bytes([sig[0] ^ 1]) + sig[1:])))),
        ("forged signature: another key's", (SE,), sub(reseal(sig=v.encoding.b64encode(
            stranger.sign(st_good))))),
        ("forged signature: statement edited after signing", (SE,), sub(reseal(
            statement=env["statement"].replace('"auc":0.9', '"auc":0.99')))),
        ("forged signature: all zero", (SE,), sub(reseal(sig=v.encoding.b64encode(
            bytes(64))))),
        ("statement by a revoked key", (AE,), sub(foreign(revoked, statement(revoked)))),
        ("old statement sent after its key was revoked", (AE,), sub(early)),
        ("unknown actor", (AE,), sub(foreign(stranger, statement(stranger)))),
        ("another key claiming a granted actor's name", (AE,),
         sub(foreign(impostor, statement(impostor)))),
        ("a writer's key signing as the admin", (AE, SE), sub(v.signed_statement_bytes(
            v.canonical_json(statement(admin)), pipe.key_id,
            pipe.sign(v.canonical_json(statement(admin)))))),
        ("the admin's key ID, signed by a writer", (SE,), sub(foreign(
            admin, statement(admin, "grant", key=stranger.vkey, role="admin"), pipe))),
        ("admin work by a writer: grant", (AE,), as_actor(
            pipe, lambda lg: lg.grant(ActorKey.generate("friend").vkey, role="admin"))),
        ("admin work by a writer: revoke", (AE,), as_actor(pipe, lambda lg: lg.revoke(
            admin.name))),
        ("admin work by a writer: foreign grant", (AE,), sub(foreign(
            pipe, statement(pipe, "grant", key=stranger.vkey, role="writer")))),
        ("oversize payload (API)", (ValueError,), as_actor(pipe, lambda lg: lg.record(
            "m0", "e", {"x": "a" * 70_000}))),
        ("oversize statement (submitted)", (MI,), sub(foreign(pipe, statement(
            pipe, payload={"x": "a" * 70_000})))),
        ("oversize envelope, 4 MB", (MI,), sub(b'{"key_id":"' + b"a" * 4_000_000 + b'"}')),
        ("nested 33 levels (API)", (ValueError,), as_actor(pipe, lambda lg: lg.record(
            "m0", "e", {"x": nest(32)}))),
        ("nested 33 levels (submitted)", (MI,), sub(foreign(pipe, statement(
            pipe, payload={"x": nest(32)})))),
        ("nested 30,000 levels (submitted)", (MI,), sub(raw_envelope(
            st_good.replace(b'"payload":{', b'"payload":{"x":' + b"[" * 30_000 + b"]" * 30_000
                            + b",", 1), pipe.key_id, pipe.sign(st_good)))),
        ("invalid UTF-8 in the statement", (MI,), sub(raw_envelope(bad_utf8, pipe.key_id,
                                                                    pipe.sign(bad_utf8)))),
        ("invalid UTF-8 in the envelope", (MI,), sub(good.replace(b'"sig"', b'"s\xffg"'))),
        ("lone surrogate escape", (MI,), sub(raw_envelope(surrogate, pipe.key_id,
                                                            pipe.sign(surrogate)))),
        ("NaN (API)", (ValueError,), as_actor(pipe, lambda lg: lg.record(
            "m0", "e", {"x": float("nan")}))),
        ("Infinity (API)", (ValueError,), as_actor(pipe, lambda lg: lg.record(
            "m0", "e", {"x": [1, {"y": float("inf")}]}))),
        ("NaN in metadata (API)", (ValueError,), as_actor(pipe, lambda lg: lg.register(
            name="nan-model", owner="o", model_type="t", tier="t", purpose="p",
            metadata={"x": float("nan")}))),
    ]
    for lit in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        st = st_good.replace(b'"payload":{', b'"payload":{"x":' + lit + b",", 1)
        attacks.append((f"{lit.decode()} (submitted)", (MI,),
                        sub(raw_envelope(st, pipe.key_id, pipe.sign(st)))))
    dup = st_good.replace(b'"payload":{', b'"payload":{"a":1,"a":2,', 1)
    attacks += [
        ("duplicate keys", (MI,), sub(raw_envelope(dup, pipe.key_id, pipe.sign(dup)))),
        ("statement for another log", (RE,), sub(sign_statement(
            pipe, "other.example/log", "event", log_id=led.log_id, claimed_at=T0, model="m0",
            event_type="e", payload={}))),
        ("statement id reused with other content", (CE,), sub(foreign(pipe, {
            **msgspec.json.decode(v.parse_signed_statement(logged)[1]),
            "payload": {"changed": True}}))),
        ("a second genesis", (CE,), sub(sign_statement(
            admin, ORIGIN, "genesis", log_id=None, claimed_at=T0, claim_skew=0, claim_window=0, log_key=led.log_vkey,
            admin_key=admin.vkey))),
        ("text instead of bytes", (TypeError,), sub(good.decode())),
        ("event about an unknown model", (RE,), sub(foreign(pipe, statement(
            pipe, model="ghost")))),
    ]
    return attacks


def attempt(led: Ledger, name: str, errors: tuple[type[BaseException], ...],
            fn: Callable[[], Any], check: bool = True) -> str | None:
    """None if refused with one of ``errors`` and nothing changed; else what went wrong."""
    before = fingerprint(led) if check else None
    try:
        fn()
    except errors:
        pass
    except Exception as exc:
        return f"{name}: raised {type(exc).__name__}: {exc}"
    else:
        return f"{name}: accepted"
    if check and (fingerprint(led) != before or led.audit() != led.size):
        return f"{name}: the store changed"
    return None


def run_attacks(workdir: Path, *, forgeries: int, seed: int) -> dict[str, Any]:
    """The battery (alone and inside a batch) and ``forgeries`` random bit flips of valid
    signed statements. Returns counts; ``forged_accepted`` must be 0."""
    rng = random.Random(seed)
    random.seed(seed)
    setup = build_store(workdir, writers=["ml-pipeline", "validator"], models=["m0", "m1"])
    keys = setup.keys
    pipe = ActorKey.load(setup.key_files["ml-pipeline"])
    revoked = ActorKey.load(setup.key_files["validator"])
    failures: list[str] = []
    tried = 0
    with Ledger.open(setup.path, log_key=keys.log, signer=keys.admin) as led:
        logged = sign_statement(pipe, ORIGIN, "event", log_id=led.log_id, claimed_at=T0, model="m0",
                                event_type="retrained", payload={"signed": "logged"})
        logged_snap = led.submit(logged)
        assert logged_snap is not None
        early = sign_statement(revoked, ORIGIN, "event", log_id=led.log_id, claimed_at=T0, model="m0",
                               event_type="retrained", payload={"signed": "before"})
        revoked_logged = sign_statement(revoked, ORIGIN, "event", log_id=led.log_id, claimed_at=T0, model="m1",
                                        event_type="validated", payload={})
        revoked_snap = led.submit(revoked_logged)
        led.revoke("validator", reason="rotation")
        attacks = battery(led, keys.admin, pipe, revoked, early, logged)
        for name, errors, fn in attacks:
            tried += 1
            outcome = attempt(led, name, errors, fn)
            if outcome:
                failures.append(outcome)
        # an old statement that was logged before its key was revoked, sent again: the
        # log answers with the original entry and appends nothing
        before = fingerprint(led)
        again = led.submit(revoked_logged)
        replay_ok = again == revoked_snap and fingerprint(led) == before
        tried += 1
        if not replay_ok:
            failures.append("logged statement replayed after revocation: appended or changed")
        # the same battery inside one batch: each refused, the batch's own writes kept
        size = led.size
        with led.batch():
            led.record("m0", "batch_start")
            for name, errors, fn in battery(led, keys.admin, pipe, revoked, early, logged):
                tried += 1
                outcome = attempt(led, f"in a batch: {name}", errors, fn, check=False)
                if outcome:
                    failures.append(outcome)
            led.record("m0", "batch_end")
        if led.size != size + 2 or led.audit() != led.size:
            failures.append("a batch with refused writes did not commit exactly its own two")
        # random bit flips of valid signed statements
        seeds = [sign_statement(pipe, ORIGIN, "event", log_id=led.log_id, claimed_at=T0, model="m0",
                                event_type="retrained", payload={"auc": 0.9, "k": "é"}),
                 sign_statement(keys.admin, ORIGIN, "grant", log_id=led.log_id, claimed_at=T0,
                                key=ActorKey.generate("new-one").vkey, role="writer"),
                 sign_statement(pipe, ORIGIN, "register", log_id=led.log_id, claimed_at=T0, name="m9",
                                owner="o", model_type="t", tier="high", purpose="p",
                                status="active", metadata={})]
        before = fingerprint(led)
        forged_accepted = odd = 0
        done = 0
        while done < forgeries:
            data = seed_data = rng.choice(seeds)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(data))
                data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
            if data == seed_data:  # two flips of the same bit: not a forgery
                continue
            done += 1
            try:
                led.submit(data)
            except (v.MalformedInputError, v.VerificationError):
                continue
            except Exception as exc:
                odd += 1
                failures.append(f"bit-flipped statement: raised {type(exc).__name__}: {exc}")
                continue
            forged_accepted += 1
            failures.append(f"bit-flipped statement accepted: {data[:200]!r}")
        if fingerprint(led) != before or led.audit() != led.size:
            failures.append("bit-flipped statements changed the store")
    battery_refused = tried - sum(1 for f in failures if not f.startswith("bit-flipped"))
    return {
        "attacks_tried": tried, "attacks_refused": battery_refused,
        "bitflip_forgeries_tried": forgeries, "bitflip_forgeries_accepted": forged_accepted,
        "forged_accepted": forged_accepted + sum(
            1 for f in failures if f.endswith(": accepted")),
        "failures": failures[:20],
    }
