"""The writer (``Ledger.grant``) and the verifier (replay of the same grant) agree on which
grants a scoped admin may sign, for random roles and scopes."""
# ruff: noqa: E501  (the one-line FINDING comments)

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import verifier as v
from ledger import ActorKey, Ledger
from tests.ledger_support import Clock, Keys, make_ledger
from tests.logsim import Signer
from tests.test_scope_containment import SCOPED_ADMIN, Scene

_BOSS = ActorKey.generate("boss")
_FRIEND = ActorKey.generate("friend")


def _lists(items: list[str]) -> st.SearchStrategy[list[str] | None]:
    return st.one_of(st.none(), st.lists(st.sampled_from(items), max_size=3, unique=True))


_scopes = st.fixed_dictionaries({
    "ops": st.lists(st.sampled_from(list(v.OPS)), max_size=5, unique=True),
    "event_types": _lists(["validated", "retrained", "deployed"]),
    "tags": _lists(["production", "staging"]),
    "models": _lists(["fraud_*", "fraud_a*", "*", "fraud_", "fraud", "*_x", "fraud_**",
                      "credit_*", "fraud_*_*"]),
    "tiers": _lists(["high", "low"]),
})


def _kind(exc: BaseException | None) -> str:
    return "ok" if exc is None else type(exc).__name__


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(role=st.sampled_from(["admin", "writer", "reader"]),
       scope=st.one_of(st.none(), _scopes))
def test_writer_and_verifier_agree_on_a_scoped_admins_grants(
        role: str, scope: dict[str, Any] | None) -> None:
    made = None if scope is None else v.make_scope(**scope)
    # the verifier: the same grant signed by hand and replayed
    s = Scene(msgspec.to_builtins(v.make_scope(**SCOPED_ADMIN)))
    body: dict[str, Any] = {"role": role}
    if made is not None:
        body["scope"] = msgspec.to_builtins(made)
    friend = Signer("friend", b"agreement-friend")
    verdict = _kind(s.outcome(s.boss, "grant", key=friend.vkey, **body))
    # the writer
    with tempfile.TemporaryDirectory() as tmp:
        path, keys = Path(tmp) / "store", Keys()
        led = make_ledger(path, keys, Clock())
        try:
            led.grant(_BOSS.vkey, role="admin", scope=v.make_scope(**SCOPED_ADMIN))
        finally:
            led.close()
        with Ledger.open(path, log_key=keys.log, signer=_BOSS,
                         clock=Clock(step=timedelta(seconds=1))) as boss:
            try:
                boss.grant(_FRIEND.vkey, role=role, scope=made)
                written: BaseException | None = None
            except (v.VerifierError, ValueError) as exc:
                written = exc
            if written is None:
                assert boss.audit() == boss.size
    assert _kind(written) == verdict, (role, scope, written, verdict)
