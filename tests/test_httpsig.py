"""ledger.httpsig: RFC 9421 signed requests in modelseal's profile (specs/api.md).

The RFC's own Ed25519 example (tests/data/rfc9421_b26_ed25519.json), round trips, one
test per refusal, fuzzing of the signature headers, the replay cache under threads, and
http-message-signatures as an independent second implementation."""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import http_message_signatures as hms
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import ActorKey
from ledger import _sfv
from ledger import httpsig as hs

RFC = json.loads((Path(__file__).parent / "data" / "rfc9421_b26_ed25519.json").read_text())
NOW = 1_750_000_000
URL = "https://log.example.com/v1/models/fraud%20scorer/history?limit=10&after=x"
READER = ActorKey.generate("auditor")
WRITER = ActorKey.generate("ml-pipeline")
KEYRING = {READER.name: (READER.public_bytes, "auditor"),
           WRITER.name: (WRITER.public_bytes, "writer")}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def resolve(actor: str) -> tuple[bytes, str] | None:
    return KEYRING.get(actor)


def may_read(role: str) -> bool:
    return role in ("auditor", "admin")


def signed(method: str = "GET", url: str = URL, body: bytes = b"", *, key: ActorKey = READER,
           now: int = NOW, nonce: str | None = None) -> list[tuple[str, str]]:
    """The headers of a request signed in the profile, with a couple of ordinary ones."""
    extra = hs.sign_request(key, hs.keyid_of(key.key), method, url, {}, body, now, nonce)
    return [("Host", "log.example.com"), ("Accept", "application/json"), *extra.items()]


def verify(method: str = "GET", url: str = URL, headers: Any = None, body: bytes | None = b"", *,
           now: int | datetime = NOW, nonces: hs.NonceCache | None = None,
           resolver: Callable[[str], tuple[bytes, str] | None] = resolve) -> hs.VerifiedRequest:
    return hs.verify_request(method, url, signed() if headers is None else headers, body,
                             now=now, resolve=resolver, may_read=may_read,
                             nonces=hs.NonceCache() if nonces is None else nonces)


def forge(components: Sequence[str], params: Sequence[tuple[str, int | str]], *,
          label: str = "sig1", method: str = "GET", url: str = URL, body: bytes = b"",
          key: ActorKey = READER, digest: str | None = None) -> list[tuple[str, str]]:
    """Headers with a valid Ed25519 signature over an arbitrary component/parameter list
    (to reach the profile and time checks with a signature that would verify)."""
    headers = [("Host", "log.example.com")]
    if digest is not None or body:
        headers.append(("Content-Digest", digest or hs.content_digest(body)))
    base = hs.signature_base(method, url, headers, components, params)
    inner = _sfv.serialize_inner_list(_sfv.InnerList(
        tuple(_sfv.Item(c) for c in components), tuple(params)))
    return headers + [("Signature-Input", f"{label}={inner}"),
                      ("Signature", f"{label}={_sfv.serialize_bytes(key.sign(base))}")]


def profile_params(now: int = NOW, **changes: int | str) -> list[tuple[str, int | str]]:
    values: dict[str, int | str] = {"created": now, "expires": now + 300, "nonce": "n" * 24,
                                    "keyid": hs.keyid_of(READER.key), "alg": "ed25519",
                                    "tag": "modelseal"}
    values.update(changes)
    return list(values.items())


def replace(headers: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in headers if k.lower() != name.lower()]
    return out if value is None else out + [(name, value)]


def header(headers: list[tuple[str, str]], name: str) -> str:
    return next(v for k, v in headers if k.lower() == name.lower())


def refused(error: type[hs.RequestAuthError], status: int, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(hs.RequestAuthError) as info:
        verify(*args, **kwargs)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert info.value.status == status
    return str(info.value)


# ---- RFC 9421 Appendix B.2.6 ---------------------------------------------------------

def _rfc_keys() -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    private = serialization.load_pem_private_key(RFC["test_key"]["private_pem"].encode(), None)
    public = serialization.load_pem_public_key(RFC["test_key"]["public_pem"].encode())
    assert isinstance(private, Ed25519PrivateKey) and isinstance(public, Ed25519PublicKey)
    return private, public


def test_rfc9421_b26_signature_base_and_signature() -> None:
    private, public = _rfc_keys()
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert private.public_key().public_bytes(*raw) == public.public_bytes(*raw)  # B.1.4 pair
    req = RFC["request"]
    members = _sfv.parse_dictionary(RFC["signature_input"])
    member = members[RFC["label"]]
    assert isinstance(member, _sfv.InnerList)
    components = [i.value for i in member.items]
    params = [(k, v) for k, v in member.params]
    assert components == ["date", "@method", "@path", "@authority", "content-type",
                          "content-length"]
    base = hs.signature_base(req["method"], req["target_uri"], [tuple(h) for h in req["headers"]],
                             components, params)  # type: ignore[arg-type]
    assert base == "\n".join(RFC["signature_base"]).encode("ascii")
    signature = private.sign(base)  # Ed25519 is deterministic: the RFC's exact value
    sig_member = _sfv.parse_dictionary(RFC["signature"])[RFC["label"]]
    assert isinstance(sig_member, _sfv.Item)
    assert signature == sig_member.value
    assert f"{RFC['label']}={_sfv.serialize_bytes(signature)}" == RFC["signature"]
    public.verify(signature, base)  # raises if it does not verify
    assert RFC["signature_input"] == (
        RFC["label"] + "=" + _sfv.serialize_inner_list(member))  # re-serialization is exact


def test_rfc_example_is_refused_by_the_profile() -> None:
    """The general base builder runs the RFC's example; the profile lives in the verifier."""
    req = RFC["request"]
    headers = [tuple(h) for h in req["headers"]] + [("Signature-Input", RFC["signature_input"]),
                                                    ("Signature", RFC["signature"])]
    refused(hs.ProfileError, 401, req["method"], req["target_uri"], headers,
            req["body"].encode(), now=1618884473)


def test_specs_api_md_example() -> None:
    """The worked example of specs/api.md §6.1, byte for byte."""
    import hashlib

    key = ActorKey(Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"modelseal api.md example key").digest()), "auditor")
    assert key.vkey == "auditor+06fcac3b+AXqYXHK7m9aT3L8voIyMkikir3h9/ilFhU4Qjz1+TA2r"
    url = "https://log.example.com/entries?start=0&count=2"
    got = hs.sign_request(key, hs.keyid_of(key.key), "GET", url, {}, None, 1764547200,
                          "bWr2Yw7cJ3kq0VfXgN5tP8aLsE4hDzQi")
    assert got == {
        "Signature-Input": 'sig1=("@method" "@authority" "@path" "@query");created=1764547200;'
                           'expires=1764547500;nonce="bWr2Yw7cJ3kq0VfXgN5tP8aLsE4hDzQi";'
                           'keyid="auditor+06fcac3b";alg="ed25519";tag="modelseal"',
        "Signature": "sig1=:ISyV2imga9DeevPtJp+ntEw2/qJIkImav1dlFhW01jCZNeG7QpgwBQEVyFFfiKoaNz1j"
                     "Pq/VIz4KZ8b4j2bHCA==:"}


# ---- round trips ---------------------------------------------------------------------

def test_round_trip_without_body() -> None:
    headers = signed()
    sig_input = header(headers, "Signature-Input")
    assert sig_input.startswith('sig1=("@method" "@authority" "@path" "@query");created=')
    assert ';alg="ed25519";tag="modelseal"' in sig_input
    assert not any(k == "Content-Digest" for k, _ in headers)
    got = verify(headers=headers, body=None)
    assert (got.actor, got.role, got.keyid) == ("auditor", "auditor", hs.keyid_of(READER.key))
    assert (got.created, got.expires) == (NOW, NOW + 300)
    assert len(got.nonce) == 32


def test_round_trip_with_body_and_datetime_now() -> None:
    body = b'{"models": ["a"]}'
    when = datetime.fromtimestamp(NOW, timezone.utc) + timedelta(milliseconds=999)
    extra = hs.sign_request(READER, hs.keyid_of(READER.key), "POST", URL, {}, body, when)
    assert extra["Content-Digest"] == hs.content_digest(body)
    assert '"@query" "content-digest");' in extra["Signature-Input"]
    got = verify("POST", URL, extra, body, now=when.astimezone(timezone(timedelta(hours=5))))
    assert got.created == NOW


def test_header_order_case_and_shape_do_not_matter() -> None:
    body = b"abc"
    headers = signed("PUT", body=body) + [("X-Other", "1"), ("Content-Type", "text/plain")]
    shuffled = headers[:]
    random.Random(7).shuffle(shuffled)
    verify("PUT", URL, shuffled, body)
    verify("PUT", URL, [(k.upper(), v) for k, v in headers], body)
    verify("PUT", URL, dict(headers), body)
    verify("PUT", URL, [(k.lower().encode(), v.encode()) for k, v in headers], body)  # ASGI
    verify("PUT", URL, [[k.encode(), v.encode()] for k, v in headers], body)


def test_authority_is_normalized() -> None:
    headers = signed(url="https://LOG.example.com:443/v1/x")
    verify(url="https://log.example.com/v1/x", headers=headers)
    verify(url="https://log.example.com:0443/v1/x", headers=signed(url="https://log.example.com/v1/x"))
    headers = signed(url="http://[::1]:8080/v1/x")
    verify(url="http://[::1]:8080/v1/x", headers=headers)


def test_empty_query_and_path() -> None:
    headers = signed(url="https://log.example.com")
    verify(url="https://log.example.com/?", headers=headers)  # "/" and "?" both ways


def test_non_ascii_actor_keyid() -> None:
    key = ActorKey.generate("müller%1")
    assert hs.keyid_of(key.key) == f"m%C3%BCller%251+{key.key.key_id.hex()}"
    got = verify(headers=signed(key=key),
                 resolver=lambda a: (key.public_bytes, "admin") if a == key.name else None)
    assert got.actor == "müller%1"


# ---- tampering -----------------------------------------------------------------------

def test_body_changed_by_one_byte() -> None:
    body = b'{"limit": 10}'
    headers = signed("POST", body=body)
    refused(hs.ContentDigestError, 401, "POST", URL, headers, body[:-1] + b"]")


def test_query_changed() -> None:
    refused(hs.BadSignatureError, 401, url=URL.replace("limit=10", "limit=11"))


def test_query_added() -> None:
    refused(hs.BadSignatureError, 401, url=URL.split("?")[0], headers=signed(url=URL))
    refused(hs.BadSignatureError, 401, url=URL + "&x=1")


def test_method_changed() -> None:
    refused(hs.BadSignatureError, 401, "HEAD")


def test_authority_changed() -> None:
    refused(hs.BadSignatureError, 401, url=URL.replace("log.example.com", "log.example.org"))
    refused(hs.BadSignatureError, 401, url=URL.replace(".com/", ".com:8443/"))


def test_path_changed() -> None:
    refused(hs.BadSignatureError, 401, url=URL.replace("%20", "-"))
    refused(hs.MalformedRequestError, 400, url=URL.replace("%20", " "))  # a decoded path
    refused(hs.BadSignatureError, 401, url=URL.replace("history", "inventory"))


def test_scheme_is_not_covered_but_its_default_port_is() -> None:
    # @authority drops the default port of the scheme in the URI: http on 443 keeps it
    refused(hs.BadSignatureError, 401, url=URL.replace("https://log.example.com",
                                                       "http://log.example.com:443"))


# ---- one test per refusal ------------------------------------------------------------

def test_missing_signature() -> None:
    refused(hs.MissingSignatureError, 401, headers=replace(signed(), "Signature", None))


def test_missing_signature_input() -> None:
    refused(hs.MissingSignatureError, 401, headers=replace(signed(), "Signature-Input", None))


def test_empty_signature_header_is_missing() -> None:
    refused(hs.MissingSignatureError, 401, headers=replace(signed(), "Signature", " "))


def test_malformed_signature_input() -> None:
    refused(hs.MalformedSignatureError, 401,
            headers=replace(signed(), "Signature-Input", 'sig1=("@method"'))


def test_malformed_signature() -> None:
    refused(hs.MalformedSignatureError, 401, headers=replace(signed(), "Signature", "sig1=:abc:"))


def test_signature_not_64_bytes() -> None:
    short = "sig1=" + _sfv.serialize_bytes(bytes(63))
    refused(hs.MalformedSignatureError, 401, headers=replace(signed(), "Signature", short))


def test_signature_label_mismatch_between_headers() -> None:
    sig = header(signed(), "Signature").replace("sig1=", "sig2=")
    refused(hs.MalformedSignatureError, 401, headers=replace(signed(), "Signature", sig))


def test_oversized_headers_are_refused_before_parsing() -> None:
    headers = signed()
    big = header(headers, "Signature-Input") + ", " + "x=" + "(" * 5000  # would not parse
    assert "exceeds 4096" in refused(hs.MalformedSignatureError, 401,
                                     headers=replace(headers, "Signature-Input", big))
    split = headers + [("Signature", "y" * 4000)]
    refused(hs.MalformedSignatureError, 401, headers=split)  # the lines add up


def test_wrong_tag() -> None:
    refused(hs.ProfileError, 401, headers=forge(hs.COMPONENTS, profile_params(tag="other")))


def test_two_tagged_signatures() -> None:
    one = forge(hs.COMPONENTS, profile_params())
    two = forge(hs.COMPONENTS, profile_params(nonce="m" * 24), label="sig2")
    merged = [("Signature-Input", f"{header(one, 'Signature-Input')}, "
                                  f"{header(two, 'Signature-Input')}"),
              ("Signature", f"{header(one, 'Signature')}, {header(two, 'Signature')}")]
    refused(hs.ProfileError, 401, headers=merged)


def test_other_signatures_are_ignored() -> None:
    ours = signed()
    other = forge(hs.COMPONENTS, profile_params(tag="proxy"), label="proxy")
    headers = ours + [("Signature-Input", header(other, "Signature-Input")),
                      ("Signature", header(other, "Signature"))]
    verify(headers=headers)


def test_wrong_label() -> None:
    refused(hs.ProfileError, 401, headers=forge(hs.COMPONENTS, profile_params(), label="sig2"))


def test_wrong_alg() -> None:
    refused(hs.ProfileError, 401, headers=forge(hs.COMPONENTS, profile_params(alg="hmac-sha256")))


def test_wrong_components() -> None:
    refused(hs.ProfileError, 401,
            headers=forge(("@method", "@authority", "@path"), profile_params()))
    refused(hs.ProfileError, 401,
            headers=forge(("@authority", "@method", "@path", "@query"), profile_params()))
    refused(hs.ProfileError, 401,
            headers=forge((*hs.COMPONENTS, "host"), profile_params()))


def test_missing_or_extra_parameter() -> None:
    params = [p for p in profile_params() if p[0] != "nonce"]
    refused(hs.ProfileError, 401, headers=forge(hs.COMPONENTS, params))
    refused(hs.ProfileError, 401, headers=forge(hs.COMPONENTS, profile_params() + [("x", 1)]))


def test_parameter_of_the_wrong_type() -> None:
    refused(hs.ProfileError, 401, headers=forge(hs.COMPONENTS, profile_params(created=str(NOW))))


def test_short_nonce() -> None:
    refused(hs.ProfileError, 401, headers=forge(hs.COMPONENTS, profile_params(nonce="a" * 21)))
    refused(hs.ProfileError, 401, headers=forge(hs.COMPONENTS, profile_params(nonce="ab" * 15)))
    verify(headers=forge(hs.COMPONENTS, profile_params(nonce="ab" * 16)))  # 16 bytes in hex


def test_parameters_in_another_order_are_accepted() -> None:
    verify(headers=forge(hs.COMPONENTS, list(reversed(profile_params()))))


def test_created_in_the_future() -> None:
    verify(headers=forge(hs.COMPONENTS, profile_params(NOW + 60)))  # the skew
    refused(hs.NotYetValidError, 401, headers=forge(hs.COMPONENTS, profile_params(NOW + 61)))


def test_expired() -> None:
    verify(headers=forge(hs.COMPONENTS, profile_params(NOW - 299)))
    refused(hs.ExpiredSignatureError, 401, headers=forge(hs.COMPONENTS, profile_params(NOW - 300)))


def test_validity_over_300_seconds() -> None:
    refused(hs.ValidityWindowError, 401,
            headers=forge(hs.COMPONENTS, profile_params(expires=NOW + 301)))


def test_expires_not_after_created() -> None:
    refused(hs.ValidityWindowError, 401,
            headers=forge(hs.COMPONENTS, profile_params(expires=NOW)))


def test_unknown_actor() -> None:
    refused(hs.UnknownKeyError, 401, resolver=lambda actor: None)


def test_keyid_not_the_actors_current_key() -> None:
    rotated = ActorKey.generate("auditor")
    refused(hs.UnknownKeyError, 401, resolver=lambda a: (rotated.public_bytes, "auditor"))


def test_malformed_keyid() -> None:
    for keyid in ("auditor", "auditor+ABCDEF12", "aud itor+0a0b0c0d", "%61uditor+0a0b0c0d"):
        refused(hs.UnknownKeyError, 401,
                headers=forge(hs.COMPONENTS, profile_params(keyid=keyid)))


def test_bad_signature() -> None:
    headers = signed()
    raw = bytearray(base64.b64decode(header(headers, "Signature")[6:-1]))
    raw[10] ^= 1
    refused(hs.BadSignatureError, 401,
            headers=replace(headers, "Signature", "sig1=" + _sfv.serialize_bytes(bytes(raw))))


def test_signed_by_another_key() -> None:
    headers = forge(hs.COMPONENTS, profile_params(), key=WRITER)  # keyid says auditor
    refused(hs.BadSignatureError, 401, headers=headers)


def test_body_without_content_digest_coverage() -> None:
    refused(hs.ContentDigestError, 401, "POST", URL, signed("POST"), b"x")


def test_content_digest_covered_but_absent() -> None:
    headers = replace(signed("POST", body=b"x"), "Content-Digest", None)
    refused(hs.ContentDigestError, 401, "POST", URL, headers, b"x")


def test_content_digest_of_other_bytes() -> None:
    headers = forge(hs.COMPONENTS + ("content-digest",), profile_params(), method="POST",
                    digest=hs.content_digest(b"y"))
    refused(hs.ContentDigestError, 401, "POST", URL, headers, b"x")


def test_content_digest_stripped_body() -> None:
    refused(hs.ContentDigestError, 401, "POST", URL, signed("POST", body=b"x"), b"")


def test_content_digest_not_sha256_alone() -> None:
    for value in ("sha-512=:" + base64.b64encode(bytes(64)).decode() + ":",
                  hs.content_digest(b"x") + ", md5=:AAAAAAAAAAAAAAAAAAAAAA==:",
                  "sha-256=:" + base64.b64encode(bytes(31)).decode() + ":", "sha-256=?1"):
        headers = forge(hs.COMPONENTS + ("content-digest",), profile_params(), method="POST",
                        digest=value)
        refused(hs.ContentDigestError, 401, "POST", URL, headers, b"x")


def test_content_digest_with_a_control_character() -> None:
    headers = forge(hs.COMPONENTS + ("content-digest",), profile_params(), method="POST",
                    body=b"x")
    bad = replace(headers, "Content-Digest", header(headers, "Content-Digest") + "\x00")
    refused(hs.ContentDigestError, 401, "POST", URL, bad, b"x")


def test_content_digest_oversized() -> None:
    headers = signed("POST", body=b"x") + [("Content-Digest", "a" * 5000)]
    refused(hs.ContentDigestError, 401, "POST", URL, headers, b"x")


def test_replayed_nonce() -> None:
    cache = hs.NonceCache()
    headers = signed()
    verify(headers=headers, nonces=cache)
    refused(hs.ReplayedNonceError, 401, headers=headers, nonces=cache, now=NOW + 5)
    verify(headers=signed(), nonces=cache)  # a fresh nonce is fine


def test_replay_cache_full() -> None:
    cache = hs.NonceCache(capacity=1)
    verify(headers=signed(), nonces=cache)
    refused(hs.NonceCacheFullError, 503, headers=signed(), nonces=cache)
    verify(headers=signed(now=NOW + 300), nonces=cache, now=NOW + 300)  # the first expired


def test_role_may_not_read() -> None:
    refused(hs.ForbiddenRoleError, 403, headers=signed(key=WRITER))


def test_forbidden_and_failed_requests_use_no_nonce() -> None:
    cache = hs.NonceCache()
    with pytest.raises(hs.ForbiddenRoleError):
        verify(headers=signed(key=WRITER), nonces=cache)
    with pytest.raises(hs.BadSignatureError):
        verify("HEAD", headers=signed(), nonces=cache)
    assert len(cache) == 0


def test_target_uri_unusable() -> None:
    for url in ("https://log.example.com/v1/é", "https://log.example.com/a b", "/v1/x",
                "ftp://log.example.com/x", "https://u@log.example.com/x",
                "https://log.example.com/x#f", "https://log.example.com:99999/x"):
        refused(hs.MalformedRequestError, 400, url=url)


# ---- API misuse ----------------------------------------------------------------------

def test_time_is_passed_in_and_naive_is_refused() -> None:
    naive = datetime(2025, 6, 1)
    with pytest.raises(ValueError, match="naive"):
        verify(now=naive)
    with pytest.raises(ValueError, match="naive"):
        hs.sign_request(READER, hs.keyid_of(READER.key), "GET", URL, {}, None, naive)
    for bad in (True, 1.5, "1"):
        with pytest.raises(TypeError):
            verify(now=bad)  # type: ignore[arg-type]


def test_sign_request_misuse() -> None:
    kid = hs.keyid_of(READER.key)
    with pytest.raises(ValueError, match="keyid"):
        hs.sign_request(READER, "auditor", "GET", URL, {}, None, NOW)
    with pytest.raises(ValueError, match="sign it once"):
        hs.sign_request(READER, kid, "GET", URL, {"signature": "x"}, None, NOW)
    with pytest.raises(ValueError, match="nonce"):
        hs.sign_request(READER, kid, "GET", URL, {}, None, NOW, nonce="short")
    with pytest.raises(ValueError):
        hs.sign_request(READER, kid, "GET", "https://log.example.com/#x", {}, None, NOW)
    with pytest.raises(ValueError):
        hs.sign_request(READER, kid, "G T", URL, {}, None, NOW)
    with pytest.raises(TypeError):
        hs.sign_request(READER, kid, "GET", URL, {}, "body", NOW)  # type: ignore[arg-type]

    class Broken:
        def sign(self, message: bytes) -> bytes:
            return b"short"

    with pytest.raises(ValueError, match="64-byte"):
        hs.sign_request(Broken(), kid, "GET", URL, {}, None, NOW)


def test_verify_request_misuse() -> None:
    with pytest.raises(TypeError):
        verify(headers="Signature: x")
    with pytest.raises(TypeError):
        verify(headers=[("Signature", 1)])
    with pytest.raises(ValueError, match="32 bytes"):
        verify(resolver=lambda a: (b"short", "auditor"))
    with pytest.raises(TypeError):
        verify(resolver=lambda a: b"key")  # type: ignore[arg-type,return-value]


def test_signature_base_general_misuse() -> None:
    for components in (["@status"], ["@target-uri"], ["Date"], ["date"], ["@method", "@method"]):
        with pytest.raises(ValueError):
            hs.signature_base("GET", URL, {}, components, [])


# ---- fuzzing -------------------------------------------------------------------------

SIG_ALPHABET = st.sampled_from(list('sig1=()":;,? -*_.@abcdefkmnotuyzAZ09+/\t\x00é') +
                               ['"@method"', '"@query"', "created=", "keyid=", ":AAAA:"])
fuzz_text = st.one_of(st.text(max_size=200), st.lists(SIG_ALPHABET, max_size=60).map("".join))
fuzz_value = st.one_of(fuzz_text, st.binary(max_size=200))


@SETTINGS
@given(sig_input=fuzz_value, sig=fuzz_value, digest=st.one_of(st.none(), fuzz_value),
       body=st.binary(max_size=20))
def test_arbitrary_signature_headers_only_raise_typed_errors(
        sig_input: str | bytes, sig: str | bytes, digest: str | bytes | None, body: bytes) -> None:
    headers: list[tuple[str | bytes, str | bytes]] = [("Signature-Input", sig_input),
                                                      ("Signature", sig)]
    if digest is not None:
        headers.append(("Content-Digest", digest))
    with pytest.raises(hs.RequestAuthError):
        verify("POST", URL, headers, body)


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["Signature-Input", "Signature", "Content-Digest"]))
def test_mutated_signature_headers_only_raise_typed_errors(data: st.DataObject, which: str) -> None:
    body = b"payload"
    headers = signed("POST", body=body)
    value = header(headers, which)
    pos = data.draw(st.integers(0, len(value)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(st.text(max_size=3))
    mutated = value[:pos] + insert + value[pos + cut:]
    try:
        verify("POST", URL, replace(headers, which, mutated), body)
    except hs.RequestAuthError:
        return
    key = "sha-256" if which == "Content-Digest" else "sig1"  # accepted: same signed meaning
    assert _sfv.parse_dictionary(mutated)[key] == _sfv.parse_dictionary(value)[key]


TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PCHAR = st.sampled_from(list("abcXYZ019-._~!$&'()*+,;=:@") + ["%20", "%2F", "%C3%A9"])
QCHAR = st.one_of(PCHAR, st.sampled_from(["/", "?"]))


@SETTINGS
@given(method=st.text(TCHAR, min_size=1, max_size=10),
       segments=st.lists(st.lists(PCHAR, max_size=8).map("".join), max_size=4),
       query=st.one_of(st.none(), st.lists(QCHAR, max_size=12).map("".join)),
       body=st.binary(max_size=300), host=st.sampled_from(["log.example", "127.0.0.1:8000",
                                                           "[::1]:9"]))
def test_round_trip_random_requests(method: str, segments: list[str], query: str | None,
                                    body: bytes, host: str) -> None:
    url = f"http://{host}" + "".join("/" + s for s in segments)
    if query is not None:
        url += "?" + query
    extra = hs.sign_request(WRITER, hs.keyid_of(WRITER.key), method, url, {}, body, NOW)
    got = hs.verify_request(method, url, list(extra.items()), body, now=NOW + 1,
                            resolve=resolve, may_read=lambda role: True,
                            nonces=hs.NonceCache())
    assert got.actor == WRITER.name
    assert ("Content-Digest" in extra) == bool(body)


# ---- the replay cache ----------------------------------------------------------------

def _race(cache: hs.NonceCache, nonce: str) -> list[str]:
    """Two threads claim the same nonce at the same moment; their answers."""
    barrier = threading.Barrier(2)
    results: list[str] = []

    def claim() -> None:
        barrier.wait()
        results.append(cache.claim("k+00000000", nonce, NOW + 300, NOW))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_nonce_cache_two_threads_one_winner() -> None:
    for i in range(200):
        assert sorted(_race(hs.NonceCache(), f"nonce-{i}")) == ["new", "replayed"]


def test_nonce_cache_many_threads_distinct_and_repeated_nonces() -> None:
    cache = hs.NonceCache(capacity=10_000)
    results: list[str] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        for i in range(500):
            r = cache.claim("k+00000000", f"n{i}", NOW + 300, NOW)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("new") == 500 and results.count("replayed") == 3500
    assert len(cache) == 500


def test_nonce_cache_expiry_and_keying() -> None:
    cache = hs.NonceCache(capacity=2)
    assert cache.claim("a+00000000", "n", NOW + 10, NOW) == "new"
    assert cache.claim("b+00000000", "n", NOW + 10, NOW) == "new"  # keyed by (keyid, nonce)
    assert cache.claim("c+00000000", "n", NOW + 10, NOW) == "full"
    assert cache.claim("a+00000000", "n", NOW + 10, NOW + 9) == "replayed"
    assert cache.claim("a+00000000", "n", NOW + 10, NOW + 10) == "expired"  # dropped, expired
    assert len(cache) == 0
    assert cache.claim("c+00000000", "n", NOW + 20, NOW + 5) == "new"  # a lagging clock...
    assert cache.claim("a+00000000", "n", NOW + 10, NOW + 5) == "expired"  # ...cannot replay


def test_nonce_cache_misuse() -> None:
    with pytest.raises(ValueError):
        hs.NonceCache(0)
    with pytest.raises(TypeError):
        hs.NonceCache().claim("k", "n", 1.5, 0)  # type: ignore[arg-type]


# ---- an independent implementation: http-message-signatures -------------------------

class _Msg:
    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method, self.url, self.headers = method, url, headers


class _Keys(hms.HTTPSignatureKeyResolver):
    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(READER.public_bytes)


def test_our_signature_verifies_with_the_other_implementation() -> None:
    body = b'{"q": 1}'
    headers = dict(signed("POST", body=body))
    verifier = hms.HTTPMessageVerifier(signature_algorithm=hms.algorithms.ED25519,
                                       key_resolver=_Keys())
    verifier.max_clock_skew = timedelta(days=365 * 100)  # it reads the wall clock
    (result,) = verifier.verify(_Msg("POST", URL, headers), expect_tag="modelseal", body=body,
                                max_age=None, require_components=hs.COMPONENTS)
    assert result.parameters["keyid"] == hs.keyid_of(READER.key)


def test_the_other_implementations_signature_verifies_with_ours() -> None:
    body = b"abc"
    msg = _Msg("PATCH", URL, {"Host": "log.example.com"})
    signer = hms.HTTPMessageSigner(signature_algorithm=hms.algorithms.ED25519)
    created = datetime.fromtimestamp(NOW, timezone.utc)
    prepared = signer.prepare(msg, key_id=hs.keyid_of(READER.key), created=created,
                              expires=created + timedelta(seconds=300), nonce="Z" * 30,
                              label="sig1", tag="modelseal", covered_component_ids=hs.COMPONENTS,
                              body=body)
    signer.apply(msg, prepared, READER.sign(prepared.signature_base))
    assert header(list(msg.headers.items()), "Signature-Input").index("keyid") < header(
        list(msg.headers.items()), "Signature-Input").index("expires")  # another order
    got = verify("PATCH", URL, msg.headers, body)
    assert got.nonce == "Z" * 30


HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@SETTINGS
@given(method=st.text(TCHAR, min_size=1, max_size=8).map(str.upper),
       path=st.lists(PCHAR, max_size=10).map(lambda p: "/" + "".join(p)),
       query=st.one_of(st.none(), st.lists(QCHAR, max_size=10).map("".join)),
       fields=st.dictionaries(st.sampled_from(["date", "x-a", "content-type", "accept"]),
                              HEADER_VALUES.map(str.strip), max_size=4),
       derived=st.lists(st.sampled_from(["@method", "@authority", "@scheme", "@path", "@query"]),
                        unique=True),
       port=st.sampled_from(["", ":443", ":8443", ":80"]), seed=st.integers(0, 99))
def test_signature_base_matches_the_other_implementation(
        method: str, path: str, query: str | None, fields: dict[str, str], derived: list[str],
        port: str, seed: int) -> None:
    url = f"https://Log.Example{port}{path}" + ("" if query is None else "?" + query)
    components = derived + list(fields)
    random.Random(seed).shuffle(components)
    created = datetime.fromtimestamp(NOW, timezone.utc)
    msg = _Msg(method, url, dict(fields))
    theirs = hms.HTTPMessageSigner(signature_algorithm=hms.algorithms.ED25519).prepare(
        msg, key_id="k", created=created, include_alg=False, covered_component_ids=components)
    ours = hs.signature_base(method, url, fields, components, [("created", NOW), ("keyid", "k")])
    assert ours == theirs.signature_base


# ---- the structured-field subset -----------------------------------------------------

def test_sfv_dictionary_members_and_parameters() -> None:
    parsed = _sfv.parse_dictionary(
        ' a=("x\\"y" "z\\\\";p=1 tok);q=?0;r,\tb=:AAE=:;k="v", c=-1.25, d ')
    assert parsed["a"] == _sfv.InnerList(
        (_sfv.Item('x"y'), _sfv.Item("z\\", (("p", 1),)), _sfv.Item(_sfv.Token("tok"))),
        (("q", False), ("r", True)))
    assert parsed["b"] == _sfv.Item(b"\x00\x01", (("k", "v"),))
    assert parsed["c"] == _sfv.Item(_sfv.Decimal("-1.25"))
    assert parsed["d"] == _sfv.Item(True)
    a = parsed["a"]
    assert isinstance(a, _sfv.InnerList)
    assert _sfv.serialize_inner_list(a) == '("x\\"y" "z\\\\";p=1 tok);q=?0;r'
    assert _sfv.parse_dictionary("") == {}


@pytest.mark.parametrize("text", [
    "a=1, a=2",  # repeated key
    "a=1;p=1;p=2",  # repeated parameter
    "a=:AAE:",  # unpadded base64
    "a=:AAF=:",  # spare bits set
    'a="\\x"',  # unknown escape
    "a=1,",  # trailing comma
    "A=1",  # upper-case key
    "a=(1 2",  # unclosed inner list
    "a=(1)(2)",  # no separator
    "a=1234567890123456",  # 16 digits
    "a=1.2345",  # 4 fraction digits
    "a=?2",
    "a=é",
    "a=1\x00",
])
def test_sfv_refusals(text: str) -> None:
    with pytest.raises(_sfv.SfvError):
        _sfv.parse_dictionary(text)
