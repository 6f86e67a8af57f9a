"""Signed reads (specs/api.md §5-6) against the app: replays, time, authority, paths,
queries, extra components, roles, names, header abuse, the replay cache."""
from __future__ import annotations

import time

import secrets
from datetime import datetime, timedelta, timezone

import pytest
from starlette.testclient import TestClient

from ledger import ActorKey, httpsig
from ledger.httpsig import keyid_of, sign_request, signature_base
from ledger.server import build_app
from tests import server_support
from tests.server_support import BASE

from .common import World, assert_problem


# the shared served-world fixture (tests/server_support.py; pytest finds it by this name)
w = server_support.w


def _client(w: World) -> TestClient:
    assert w.client is not None
    return w.client


def test_replay_is_refused_and_a_fresh_signature_is_served(w: World) -> None:
    h = w.sign("/entry/0")
    assert _client(w).get("/entry/0", headers=h).status_code == 200
    assert_problem(_client(w).get("/entry/0", headers=h), 401, "ReplayedNonceError")
    assert w.signed_get("/entry/0").status_code == 200


@pytest.mark.parametrize("shift,name", [
    (timedelta(seconds=-301), "ExpiredSignatureError"),
    (timedelta(seconds=-300), "ExpiredSignatureError"),
    (timedelta(seconds=120), "NotYetValidError"),
])
def test_expired_and_future_dated_signatures(w: World, shift: timedelta, name: str) -> None:
    r = w.signed_get("/entry/0", now=datetime.now(timezone.utc) + shift)
    assert_problem(r, 401, name)


def test_a_signature_for_another_authority_is_refused(w: World) -> None:
    h = w.sign("/entry/0", base="http://other.example")
    assert_problem(_client(w).get("/entry/0", headers=h), 401, "BadSignatureError")
    h = w.sign("/entry/0", base="https://testserver")  # another scheme, same host
    r = _client(w).get("/entry/0", headers=h)
    assert r.status_code in (200, 401)  # the scheme is not covered (api.md §6.5)


@pytest.mark.parametrize("signed,sent,status", [
    ("/entry/%30", "/entry/%30", 200),
    ("/entry/0", "/entry/%30", 401),
    ("/entry/%30", "/entry/0", 401),
    ("/history/m%2F1", "/history/m%2F1", 404),
    ("/history/m0", "/history/m%30", 401),
    ("/entries?start=0&count=1", "/entries?count=1&start=0", 401),
    ("/entries?count=1&start=0", "/entries?count=1&start=0", 200),
    ("/entries?start=0&count=1", "/entries?start=0&count=1&", 401),
    ("/entries?start=%30&count=1", "/entries?start=%30&count=1", 200),
])
def test_paths_and_queries_are_signed_as_sent(w: World, signed: str, sent: str,
                                              status: int) -> None:
    h = w.sign(signed)
    r = _client(w).get(sent, headers=h)
    assert r.status_code == status, r.text
    if status != 200:
        assert_problem(r, status)


def test_a_signature_covering_extra_headers_is_refused(w: World) -> None:
    now = int(datetime.now(timezone.utc).timestamp())
    keyid = keyid_of(w.reader.key)
    comps = ("@method", "@authority", "@path", "@query", "accept")
    params = [("created", now), ("expires", now + 300), ("nonce", secrets.token_urlsafe(24)),
              ("keyid", keyid), ("alg", "ed25519"), ("tag", "modelseal")]
    headers = {"accept": "application/json"}
    base = signature_base("GET", BASE + "/entry/0", headers, comps, params)
    sig = w.reader.sign(base)
    import base64
    si = "sig1=(" + " ".join(f'"{c}"' for c in comps) + ")" + "".join(
        f";{k}={v}" if isinstance(v, int) else f';{k}="{v}"' for k, v in params)
    signature = f"sig1=:{base64.b64encode(sig).decode()}:"
    r = _client(w).get("/entry/0", headers={**headers, "Signature-Input": si,
                                            "Signature": signature})
    assert_problem(r, 401, "ProfileError")


def test_roles(w: World) -> None:
    assert_problem(w.signed_get("/entry/0", key=w.writer), 403, "ForbiddenRoleError")
    assert w.signed_get("/entry/0", key=w.admin).status_code == 200
    w.led.revoke("examiner", reason="left")
    assert_problem(w.signed_get("/entry/0"), 401, "UnknownKeyError")
    stranger = ActorKey.generate("stranger")
    assert_problem(w.signed_get("/entry/0", key=stranger), 401, "UnknownKeyError")


def test_a_non_ascii_reader_reads(w: World) -> None:
    muller = ActorKey.generate("müller")
    w.led.grant(muller.vkey, role="reader")
    assert keyid_of(muller.key).startswith("m%C3%BCller+")
    assert w.signed_get("/entry/0", key=muller).status_code == 200
    h = w.sign("/entry/0", key=muller)
    h["Signature-Input"] = h["Signature-Input"].replace("m%C3%BCller", "m%c3%bcller")
    assert_problem(_client(w).get("/entry/0", headers=h), 401)


def test_header_abuse(w: World) -> None:
    h = w.sign("/entry/0")
    big = dict(h, Signature="sig1=:" + "A" * 5000 + ":")
    assert_problem(_client(w).get("/entry/0", headers=big), 401, "MalformedSignatureError")
    # two Signature field lines: joined, the repeated key sig1 is refused
    two = [("Signature-Input", h["Signature-Input"]), ("Signature", h["Signature"]),
           ("Signature", h["Signature"])]
    assert_problem(_client(w).get("/entry/0", headers=two), 401, "MalformedSignatureError")
    # a second, foreign signature beside ours is ignored
    other = [("Signature-Input", h["Signature-Input"] + ', proxy=("@method");tag="proxy"'),
             ("Signature", h["Signature"] + ", proxy=:" + "A" * 86 + "==:")]
    assert _client(w).get("/entry/0", headers=other).status_code == 200
    # nothing at all, a blank value, latin-1 junk
    assert_problem(_client(w).get("/entry/0"), 401, "MissingSignatureError")
    junk = {"Signature-Input": b"sig1=\xff\xfe", "Signature": b"sig1=:AA==:"}
    r = _client(w).get("/entry/0", headers=junk)
    assert_problem(r, 401)


def test_a_read_replayed_after_a_restart_is_refused(w: World) -> None:
    """specs/api.md §6.4: "a server that restarts forgets its cache, so it should refuse
    requests whose created is earlier than its own start". The server does not: a
    captured signed read is served again by a restarted server (a new app on the same
    store) for the rest of its 300 s."""
    h = w.sign("/entries?start=0&count=3")
    assert _client(w).get("/entries?start=0&count=3", headers=h).status_code == 200
    time.sleep(1.1)  # the restart is at a later second than the signature (whole seconds)
    restarted = TestClient(build_app(w.led), base_url=BASE, raise_server_exceptions=False)
    try:
        r = restarted.get("/entries?start=0&count=3", headers=h)
        assert r.status_code == 401, "the restarted server served a replayed read"
        assert_problem(r, 401)
    finally:
        restarted.close()


def test_a_full_replay_cache_is_503_with_retry_after(w: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """§1 and §6.4: NonceCacheFullError is a 503 "answered with Retry-After". The server
    turns the refusal into an HTTPProblem without headers. (The cache is made small by
    patching its default capacity for a fresh app; the server's own cache holds
    100,000.)"""
    small = httpsig.NonceCache

    class Tiny(small):  # type: ignore[misc, valid-type]
        def __init__(self, capacity: int = 2) -> None:
            super().__init__(capacity)

    monkeypatch.setattr(httpsig, "NonceCache", Tiny)
    client = TestClient(build_app(w.led), base_url=BASE, raise_server_exceptions=False)
    try:
        for _ in range(2):
            assert client.get("/entry/0", headers=w.sign("/entry/0")).status_code == 200
        r = client.get("/entry/0", headers=w.sign("/entry/0"))
        assert_problem(r, 503, "NonceCacheFullError")
        assert r.headers.get("retry-after"), dict(r.headers)
    finally:
        client.close()


def test_an_unsigned_read_cannot_fill_the_cache_or_spend_a_nonce(w: World) -> None:
    h = w.sign("/entry/0")
    bad = dict(h, Signature="sig1=:" + "A" * 86 + "==:")
    assert_problem(_client(w).get("/entry/0", headers=bad), 401, "BadSignatureError")
    assert _client(w).get("/entry/0", headers=h).status_code == 200
    # a writer's good signature does not spend its nonce either
    hw = w.sign("/entry/0", key=w.writer)
    assert_problem(_client(w).get("/entry/0", headers=hw), 403, "ForbiddenRoleError")
    assert_problem(_client(w).get("/entry/0", headers=hw), 403, "ForbiddenRoleError")


def test_head_and_other_methods_on_protected_paths(w: World) -> None:
    r = _client(w).head("/entry/0")
    assert r.status_code == 401
    h = sign_request(w.reader, keyid_of(w.reader.key), "HEAD", BASE + "/entry/0", {}, None,
                     datetime.now(timezone.utc))
    assert _client(w).head("/entry/0", headers=h).status_code == 200
    # a GET signature does not serve a HEAD (the method is covered)
    assert _client(w).head("/entry/0", headers=w.sign("/entry/0")).status_code == 401


@pytest.mark.parametrize("name", ["модель-ёж", "50% model", "a/b", "what?#x", "m0 "[:-1]])
def test_history_of_names_that_need_percent_encoding(w: World, name: str) -> None:
    import urllib.parse
    if name != "m0":
        w.led.register(name=name, owner="risk", model_type="ml_model", tier="high",
                       purpose="scores")
    quoted = urllib.parse.quote(name, safe="/")
    r = w.signed_get(f"/history/{quoted}")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == name
