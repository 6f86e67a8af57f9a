"""`export` without --at (ledger/ledger.py _cosigned_of): the checkpoint of the bundle's
size carries the cosignatures the store holds. Attacked with several cosigned signings of
one size at different times, and a witness whose cosignature time precedes the entry."""
from __future__ import annotations

import json
import time
from pathlib import Path

import verifier as v
from ledger import Ledger, LogKey
from tests.attack_s21.common import VERIFY, WRITER, proc
from tests.cli_support import MODEL, Store, init_store, ok
from tests.test_cosignature import Witness


def _cosign(store: Store, witnesses: list[Witness], delay: int, fresh: bool) -> bytes:
    """Sign a fresh checkpoint of the current size (if ``fresh``), store the cosignatures of
    ``witnesses`` at its time + ``delay`` s; return the stored cosigned note."""
    ledger = Ledger.open(store.dir, log_key=LogKey.load(store.log_key))
    try:
        note = ledger.sign_checkpoint() if fresh else ledger.checkpoint()
        cp = v.Checkpoint.parse_note(note, [v.VerifierKey.parse(ledger.log_vkey)])
        assert cp.time is not None
        text = v.parse_note(note).text
        lines = b"".join(w.line(text, cp.time // 10**9 + delay) for w in witnesses)
        ledger.add_cosignatures(note + lines, [w.key for w in witnesses])
        got = ledger.cosigned()
        assert got is not None
        return got
    finally:
        ledger.close()


def _export(store: Store, out: Path) -> bytes:
    done = proc([*WRITER, "export", "-o", str(out)], extra_env=store.env)
    assert done.code == 0 and "Traceback" not in done.err, str(done)
    return str(json.loads(out.read_bytes())["checkpoint"]).encode()


def _verify(store: Store, bundle: Path, *witnesses: Witness) -> int:
    args = [a for w in witnesses for a in ("--witness", w.key.vkey())]
    done = proc([*VERIFY, str(bundle), "--key", store.log_vkey, *args])
    assert "Traceback" not in done.err, str(done)
    return done.code


# Held: with two cosigned signings of one size (w1 at the first; w1 and w2 at a later
# one), export without --at carries the one with more cosignatures, whose time is not
# before the bundle's, and modelseal-verify with both witnesses accepts it.
def test_several_cosigned_signings_of_one_size(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    ok(store.run("register", "fraud_scoring", *MODEL))
    w1, w2 = Witness("witness.example.com/w1"), Witness("witness.example.com/w2")
    _cosign(store, [w1], 5, fresh=False)
    time.sleep(1.1)
    later = _cosign(store, [w1, w2], 5, fresh=True)
    bundle = tmp_path / "b.json"
    cp = _export(store, bundle)
    assert cp == later, (cp, later)
    assert _verify(store, bundle, w1, w2) == 0
    assert _verify(store, bundle, w1) == 0


# Held: a cosignature whose time lies before the entry it would vouch for (a witness
# clock behind) is not used to prove the bundle; the plain checkpoint is exported and a
# verifier that requires that witness fails (1), never a silent pass or a crash.
def test_cosignature_dated_before_the_entry_is_not_used(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    ok(store.run("register", "fraud_scoring", *MODEL))
    w1 = Witness("witness.example.com/w1")
    _cosign(store, [w1], -200, fresh=False)
    bundle = tmp_path / "b.json"
    cp = _export(store, bundle)
    assert b"witness.example.com/w1" not in cp
    assert _verify(store, bundle, w1) == 1
