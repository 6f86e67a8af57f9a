"""Signed HTTP requests: RFC 9421 HTTP Message Signatures, Ed25519, modelseal's profile.

Pure functions over (method, target URI, headers, body); no web framework is imported.
A client calls ``sign_request`` and adds the headers it returns; the log server calls
``verify_request`` with the request as received, which returns who signed it or raises a
``RequestAuthError`` whose ``status`` is the HTTP status to answer (401, 403 or 503).
specs/api.md, "Signed requests (RFC 9421)", is the profile; ``signature_base`` is the
general RFC 9421 signature base, of which the profile uses a fixed set of components.

Time is always passed in (int seconds since the epoch, or a timezone-aware datetime).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Union

from verifier import MalformedInputError, VerifierKey, check_key_name, key_id

from . import _sfv
from ._nonces import Claim, NonceCache
from ._sodium import sodium_verify

__all__ = [
    "ALG", "BadSignatureError", "CLOCK_SKEW", "COMPONENTS", "ContentDigestError",
    "ExpiredSignatureError", "ForbiddenRoleError", "Headers", "KeyResolver", "LABEL",
    "MAX_FIELD", "MAX_VALIDITY", "MalformedRequestError", "MalformedSignatureError",
    "MissingSignatureError", "NonceCache", "NonceCacheFullError", "NotYetValidError",
    "ProfileError", "ReplayedNonceError", "RequestAuthError", "Signer", "TAG",
    "UnknownKeyError", "ValidityWindowError", "VerifiedRequest", "content_digest", "keyid_of",
    "sign_request", "signature_base", "verify_request",
]

LABEL = "sig1"
TAG = "modelseal"
ALG = "ed25519"
MAX_VALIDITY = 300  # seconds from created to expires, at most
CLOCK_SKEW = 60  # seconds a created time may lie ahead of the verifier's clock
MAX_FIELD = 4096  # characters of a Signature, Signature-Input or Content-Digest value
COMPONENTS: tuple[str, ...] = ("@method", "@authority", "@path", "@query")
_WITH_BODY: tuple[str, ...] = COMPONENTS + ("content-digest",)
_PARAMS = ("created", "expires", "nonce", "keyid", "alg", "tag")  # the order a signer uses
_DERIVED = frozenset({"@method", "@authority", "@scheme", "@path", "@query"})
_FIELD_NAME = re.compile(r"[a-z0-9!#$%&'*+\-.^_`|~]+")
_METHOD = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,32}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,128}")
_HEX_NONCE = re.compile(r"[0-9a-f]+")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_ENCODED_ACTOR = re.compile(r"(?:[\x21-\x24\x26-\x2a\x2c-\x7e]|%[0-9A-F]{2})+")
_PCT = re.compile(r"%([0-9A-F]{2})")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/?#@\[\]]+)"
                  r"(?::(?P<port>[0-9]*))?(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?")
_VISIBLE = re.compile(r"[\x21-\x7e]*")
_VALUE = re.compile(r"[\x20-\x7e\t]*")
_DEFAULT_PORT = {"http": "80", "https": "443"}


# ---- errors --------------------------------------------------------------------------

class RequestAuthError(Exception):
    """A request is refused: unsigned, badly signed, not this profile, or not allowed.
    ``status`` is the HTTP status to answer."""

    status = 401


class MalformedSignatureError(RequestAuthError):
    """Signature or Signature-Input is oversized, unparsable, or the tagged signature's
    label has no 64-byte signature."""


class MissingSignatureError(MalformedSignatureError):
    """Signature or Signature-Input is absent (or empty)."""


class MalformedRequestError(RequestAuthError):
    """The method or target URI cannot be part of a signature base (not an absolute
    http(s) URI of visible ASCII with a host, no user info, no fragment)."""

    status = 400


class ProfileError(RequestAuthError):
    """The signature is not modelseal's profile: no or several signatures tagged
    ``modelseal``, another label, algorithm, component list or parameter set, or a nonce
    of the wrong shape."""


class ValidityWindowError(RequestAuthError):
    """``expires`` is not after ``created``, or more than 300 s after it."""


class NotYetValidError(RequestAuthError):
    """``created`` is more than 60 s ahead of the verifier's clock."""


class ExpiredSignatureError(RequestAuthError):
    """The verifier's clock (or the replay cache's) has reached ``expires``."""


class UnknownKeyError(RequestAuthError):
    """The keyid is not ``<actor>+<8 hex>``, the actor has no key, or the hex digits are
    not its current key's id."""


class BadSignatureError(RequestAuthError):
    """The Ed25519 signature does not verify over the request's signature base."""


class ContentDigestError(RequestAuthError):
    """A body not covered by a signed Content-Digest, or a Content-Digest that is
    missing, oversized, not a single sha-256 digest, or not the body's."""


class ForbiddenRoleError(RequestAuthError):
    """The signature is good but the key's role may not read."""

    status = 403


class ReplayedNonceError(RequestAuthError):
    """This keyid used this nonce in a request already accepted."""


class NonceCacheFullError(RequestAuthError):
    """The replay cache is full of unexpired nonces; try again later."""

    status = 503


# ---- types ---------------------------------------------------------------------------

class Signer(Protocol):
    """Anything that signs bytes with Ed25519 (``ledger.ActorKey`` does)."""

    def sign(self, message: bytes, /) -> bytes: ...


Headers = Union[Mapping[str, str], Mapping[bytes, bytes], Iterable[tuple[str, str]],
                Iterable[tuple[bytes, bytes]]]
"""Request headers: a mapping, or (name, value) pairs (repeated names allowed, as in ASGI).
Bytes are read as Latin-1."""

KeyResolver = Callable[[str], Union[tuple[bytes, str], None]]
"""An actor's name -> (its current 32-byte Ed25519 public key, its role), or None."""


@dataclass(frozen=True)
class VerifiedRequest:
    """Who signed an accepted request, and the signature's parameters."""

    actor: str
    role: str
    keyid: str
    created: int
    expires: int
    nonce: str


@dataclass(frozen=True)
class _Target:
    """The parts of a target URI that derived components use."""

    scheme: str  # lower case
    authority: str  # host lower case, default port dropped
    path: str  # as sent, "/" when empty
    query: str | None  # as sent, without "?"; None when absent


# ---- public functions ----------------------------------------------------------------

def keyid_of(key: VerifierKey) -> str:
    """The profile's keyid for an actor key (``ActorKey.key`` is one): its name, then "+",
    then the 8 hex digits of its note key id. A name's non-ASCII characters and "%" are
    percent-encoded (UTF-8, upper-case hex), since a keyid is an ASCII string."""
    return f"{_encode_actor(key.name)}+{key.key_id.hex()}"


def content_digest(body: bytes) -> str:
    """The RFC 9530 Content-Digest value for ``body``: ``sha-256=:<base64>:``."""
    return "sha-256=" + _sfv.serialize_bytes(hashlib.sha256(_bytes(body, "body")).digest())


def signature_base(method: str, url: str, headers: Headers, components: Sequence[str],
                   params: Sequence[tuple[str, int | str]]) -> bytes:
    """The RFC 9421 signature base (section 2.5) of a request.

    ``components`` are component names in order: the derived components @method,
    @authority, @scheme, @path, @query, or lower-case header field names (several field
    lines are joined with ", ", each trimmed); no component parameters. ``params`` are
    the signature parameters in order. ValueError if a component is unknown, repeated or
    absent, a value is not visible ASCII, or the URL is not absolute http(s) with a host."""
    target = _parse_target(method, url)
    wanted = {c for c in components if isinstance(c, str) and not c.startswith("@")}
    return _base(method, target, _collect(headers, wanted, limit=None), components, params)


def sign_request(signer: Signer, keyid: str, method: str, url: str, headers: Headers,
                 body: bytes | None, now: int | datetime, nonce: str | None = None,
                 ) -> dict[str, str]:
    """The headers to add to a request so that ``verify_request`` accepts it: Signature-Input,
    Signature and, for a non-empty body, Content-Digest.

    ``keyid`` is ``keyid_of(actor key)``; ``url`` the absolute target URI as it will be sent
    (path and query percent-encoded as on the wire); ``body`` the exact body bytes (None
    for none). The signature is valid from ``now`` for 300 s. ``nonce`` defaults to 24
    random bytes in base64url. ValueError/TypeError for a bad argument, for headers that
    already carry a signature or a Content-Digest, and for a signer that does not return
    64 bytes."""
    _check_keyid(keyid)
    target = _parse_target(method, url)
    present = _collect(headers, {"signature", "signature-input", "content-digest"}, limit=None)
    if present:
        raise ValueError(f"the request already has {', '.join(sorted(present))}; sign it once")
    data = b"" if body is None else _bytes(body, "body")
    created = _seconds(now)
    if nonce is None:
        nonce = secrets.token_urlsafe(24)
    elif not isinstance(nonce, str) or not _nonce_ok(nonce):
        raise ValueError("a nonce is 22-128 base64url characters (32 or more if hex)")
    out: dict[str, str] = {}
    fields: dict[str, list[str]] = {}
    components = COMPONENTS
    if data:
        out["Content-Digest"] = content_digest(data)
        fields["content-digest"] = [out["Content-Digest"]]
        components = _WITH_BODY
    values: dict[str, int | str] = {"created": created, "expires": created + MAX_VALIDITY,
                                    "nonce": nonce, "keyid": keyid, "alg": ALG, "tag": TAG}
    params = [(name, values[name]) for name in _PARAMS]
    base = _base(method, target, fields, components, params)
    signature = signer.sign(base)
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise ValueError("the signer did not return a 64-byte Ed25519 signature")
    out["Signature-Input"] = f"{LABEL}={_inner_list(components, params)}"
    out["Signature"] = f"{LABEL}={_sfv.serialize_bytes(signature)}"
    return out


def verify_request(method: str, url: str, headers: Headers, body: bytes | None, *,
                   now: int | datetime, resolve: KeyResolver,
                   may_read: Callable[[str], bool], nonces: NonceCache) -> VerifiedRequest:
    """Check a received request against the profile and record its nonce.

    ``url`` is the target URI as the client addressed it (the server's own scheme and
    host, the raw path and query as sent: not a percent-decoded path); ``body`` the exact
    body bytes received (None or b"" for none). ``resolve`` maps an actor's name to (its
    current public key, role) or None; ``may_read`` says whether a role may read. Raises
    the first failing check's ``RequestAuthError`` in the order of specs/api.md §6.3;
    TypeError/ValueError only for a misused API (wrong types, a resolver returning a key
    that is not 32 bytes)."""
    t = _seconds(now)
    if not isinstance(nonces, NonceCache):
        raise TypeError("nonces is a NonceCache")
    data = b"" if body is None else _bytes(body, "body")
    try:
        target = _parse_target(method, url)
    except ValueError as exc:
        raise MalformedRequestError(str(exc)) from None
    fields = _collect(headers, {"signature", "signature-input", "content-digest"},
                      limit=MAX_FIELD)
    member, signature = _select(fields)
    sig = _profile(member)
    if sig.expires <= sig.created or sig.expires - sig.created > MAX_VALIDITY:
        raise ValidityWindowError(f"expires must be 1 to {MAX_VALIDITY} s after created "
                                  f"(created={sig.created}, expires={sig.expires})")
    if sig.created > t + CLOCK_SKEW:
        raise NotYetValidError(f"created={sig.created} is {sig.created - t} s ahead of the "
                               f"server's clock (at most {CLOCK_SKEW} s allowed)")
    if t >= sig.expires:
        raise ExpiredSignatureError(f"the signature expired at {sig.expires} (now {t})")
    covers_body = sig.components == _WITH_BODY
    if data and not covers_body:
        raise ContentDigestError("the request has a body but its signature does not cover "
                                 "content-digest")
    if covers_body:
        if "content-digest" not in fields:
            raise ContentDigestError("the signature covers content-digest but the request "
                                     "has no Content-Digest header")
        if not _VALUE.fullmatch("".join(fields["content-digest"])):
            raise ContentDigestError("Content-Digest has a character outside visible ASCII, "
                                     "space and tab")
    actor, public, role = _resolve(sig.keyid, resolve)
    base = _base(method, target, fields, sig.components, sig.params)
    if not sodium_verify(public, signature, base):
        raise BadSignatureError(f"the signature of {sig.keyid} does not verify over this "
                                f"request")
    if covers_body:
        _check_digest(", ".join(fields["content-digest"]), data)
    if not may_read(role):
        raise ForbiddenRoleError(f"{actor}'s role {role!r} may not read")
    claim: Claim = nonces.claim(sig.keyid, sig.nonce, sig.expires, t)
    if claim == "replayed":
        raise ReplayedNonceError(f"{sig.keyid} already used nonce {sig.nonce}")
    if claim == "expired":
        raise ExpiredSignatureError(f"the signature expired at {sig.expires} (by the replay "
                                    f"cache's clock)")
    if claim == "full":
        raise NonceCacheFullError("the replay cache is full; try again later")
    return VerifiedRequest(actor, role, sig.keyid, sig.created, sig.expires, sig.nonce)


# ---- verification steps --------------------------------------------------------------

@dataclass(frozen=True)
class _Signature:
    """A profile-checked Signature-Input member."""

    components: tuple[str, ...]
    params: tuple[tuple[str, int | str], ...]  # as received, in order
    created: int
    expires: int
    nonce: str
    keyid: str


def _select(fields: dict[str, list[str]]) -> tuple[_sfv.InnerList, bytes]:
    """The Signature-Input member and the signature of the one signature tagged
    ``modelseal``, which must be labelled ``sig1``."""
    for name in ("signature-input", "signature"):
        if not "".join(fields.get(name, [])).strip(" \t"):
            raise MissingSignatureError(f"the request has no {name.title()} header")
    try:
        inputs = _sfv.parse_dictionary(", ".join(fields["signature-input"]))
        signatures = _sfv.parse_dictionary(", ".join(fields["signature"]))
    except _sfv.SfvError as exc:
        raise MalformedSignatureError(f"unparsable signature header: {exc}") from None
    ours = []
    for label, member in inputs.items():
        if not isinstance(member, _sfv.InnerList):
            raise MalformedSignatureError(f"Signature-Input member {label!r} is not an inner "
                                          f"list")
        if ("tag", TAG) in member.params:
            ours.append((label, member))
    if len(ours) != 1:
        raise ProfileError(f"{'no' if not ours else 'more than one'} signature is tagged "
                           f"{TAG!r}")
    label, member = ours[0]
    if label != LABEL:
        raise ProfileError(f"the signature tagged {TAG!r} must be labelled {LABEL!r}, "
                           f"not {label!r}")
    sig = signatures.get(label)
    if not (isinstance(sig, _sfv.Item) and isinstance(sig.value, bytes) and not sig.params
            and len(sig.value) == 64):
        raise MalformedSignatureError(f"Signature has no 64-byte byte sequence for {label!r}")
    return member, sig.value


def _profile(member: _sfv.InnerList) -> _Signature:
    """The member's components and parameters, checked against the profile."""
    names = []
    for item in member.items:
        if not isinstance(item.value, str) or item.params:
            raise ProfileError("covered components are plain strings without parameters")
        names.append(item.value)
    components = tuple(names)
    if components not in (COMPONENTS, _WITH_BODY):
        raise ProfileError(f"covered components must be {' '.join(COMPONENTS)} "
                           f"[content-digest], not {' '.join(components)[:200]}")
    if sorted(name for name, _ in member.params) != sorted(_PARAMS):
        raise ProfileError(f"signature parameters must be {', '.join(_PARAMS)}, not "
                           f"{', '.join(name for name, _ in member.params)[:200]}")
    ints: dict[str, int] = {}
    texts: dict[str, str] = {}
    for name, value in member.params:
        if name in ("created", "expires"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ProfileError(f"signature parameter {name} must be a non-negative "
                                   f"integer")
            ints[name] = value
        elif isinstance(value, str):
            texts[name] = value
        else:
            raise ProfileError(f"signature parameter {name} must be a string")
    if texts["alg"] != ALG:
        raise ProfileError(f"alg must be {ALG!r}, not {texts['alg'][:40]!r}")
    if not _nonce_ok(texts["nonce"]):
        raise ProfileError("the nonce must be 22-128 base64url characters (32 or more if hex)")
    params = tuple((k, ints[k] if k in ints else texts[k]) for k, _ in member.params)
    return _Signature(components, params, ints["created"], ints["expires"], texts["nonce"],
                      texts["keyid"])


def _resolve(keyid: str, resolve: KeyResolver) -> tuple[str, bytes, str]:
    """(actor, public key, role) for a keyid naming an actor's current key."""
    parsed = _parse_keyid(keyid)
    if parsed is None:
        raise UnknownKeyError(f"keyid {keyid[:80]!r} is not <actor>+<8 hex digits>")
    actor, hex8 = parsed
    found = resolve(actor)
    if found is None:
        raise UnknownKeyError(f"{actor!r} holds no key in this log")
    if not (isinstance(found, tuple) and len(found) == 2 and isinstance(found[1], str)):
        raise TypeError("the resolver returns (public key bytes, role) or None")
    public, role = _bytes(found[0], "public key"), found[1]
    if len(public) != 32:
        raise ValueError("the resolver returned a public key that is not 32 bytes")
    if key_id(actor, public).hex() != hex8:
        raise UnknownKeyError(f"keyid {keyid!r} is not {actor!r}'s current key")
    return actor, public, role


def _check_digest(value: str, body: bytes) -> None:
    """Content-Digest must be exactly one sha-256 digest, and the body's."""
    try:
        parsed = _sfv.parse_dictionary(value)
    except _sfv.SfvError as exc:
        raise ContentDigestError(f"unparsable Content-Digest: {exc}") from None
    digest = parsed.get("sha-256")
    if (len(parsed) != 1 or not isinstance(digest, _sfv.Item) or digest.params
            or not isinstance(digest.value, bytes) or len(digest.value) != 32):
        raise ContentDigestError("Content-Digest must be exactly one 32-byte sha-256 digest")
    if not hmac.compare_digest(digest.value, hashlib.sha256(body).digest()):
        raise ContentDigestError("Content-Digest is not the digest of the body")


# ---- the signature base --------------------------------------------------------------

def _base(method: str, target: _Target, fields: Mapping[str, list[str]],
          components: Sequence[str], params: Sequence[tuple[str, int | str]]) -> bytes:
    """RFC 9421 section 2.5. ValueError for an unknown, repeated or absent component."""
    if isinstance(components, str):
        raise TypeError("components is a sequence of names, not one string")
    if len(set(components)) != len(components):
        raise ValueError("a component is covered twice")
    lines = []
    for name in components:
        if not isinstance(name, str):
            raise TypeError("a component name is text")
        if name in _DERIVED:
            value = _derived(name, method, target)
        elif _FIELD_NAME.fullmatch(name):
            if name not in fields:
                raise ValueError(f"the request has no {name!r} header to cover")
            value = ", ".join(v.strip(" \t") for v in fields[name])
            if not _VALUE.fullmatch(value):
                raise ValueError(f"header {name!r} has a character a signature base cannot hold")
        else:
            raise ValueError(f"unknown or malformed component {name[:40]!r}")
        lines.append(f"{_sfv.serialize_string(name)}: {value}\n")
    lines.append(f'"@signature-params": {_inner_list(components, params)}')
    return "".join(lines).encode("ascii")


def _inner_list(components: Sequence[str], params: Sequence[tuple[str, int | str]]) -> str:
    for name, value in params:
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(
                value, (int, str)):
            raise TypeError("signature parameters are (name, int or str) pairs")
    return _sfv.serialize_inner_list(_sfv.InnerList(
        tuple(_sfv.Item(c) for c in components), tuple(params)))


def _derived(name: str, method: str, target: _Target) -> str:
    """The value of a derived component (RFC 9421 section 2.2) of a request."""
    if name == "@method":
        return method
    if name == "@authority":
        return target.authority
    if name == "@scheme":
        return target.scheme
    if name == "@path":
        return target.path
    return "?" + (target.query or "")  # @query


def _parse_target(method: str, url: str) -> _Target:
    """The target URI's parts. ValueError unless ``method`` is a token and ``url`` an
    absolute http(s) URI of visible ASCII with a host, no user info and no fragment."""
    if not isinstance(method, str) or not isinstance(url, str):
        raise TypeError("method and url are text")
    if not _METHOD.fullmatch(method):
        raise ValueError(f"method {method[:40]!r} is not an HTTP method token")
    if not _VISIBLE.fullmatch(url):
        raise ValueError("the target URI has a character outside visible ASCII")
    m = _URL.fullmatch(url)
    if m is None:
        raise ValueError(f"{url[:80]!r} is not an absolute URI with a host (and no user "
                         f"info or fragment)")
    scheme = m["scheme"].lower()
    if scheme not in _DEFAULT_PORT:
        raise ValueError(f"the scheme must be http or https, not {scheme[:20]!r}")
    host, port = m["host"].lower(), m["port"]
    if port:
        if len(port) > 5 or int(port) > 65535:
            raise ValueError(f"port {port[:10]!r} is out of range")
        port = str(int(port))
        if port == _DEFAULT_PORT[scheme]:
            port = None
    authority = f"{host}:{port}" if port else host
    return _Target(scheme, authority, m["path"] or "/", m["query"])


# ---- small helpers -------------------------------------------------------------------

def _collect(headers: Headers, names: set[str], *, limit: int | None
             ) -> dict[str, list[str]]:
    """The values of the headers named in ``names`` (lower case), in order. With a
    ``limit``, a name whose values add up to more characters raises the error of its
    kind before anything is parsed."""
    pairs: Iterable[tuple[object, object]]
    if isinstance(headers, Mapping):
        pairs = headers.items()
    elif isinstance(headers, (str, bytes)):
        raise TypeError("headers are a mapping or (name, value) pairs")
    else:
        pairs = headers
    out: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError("headers are (name, value) pairs")
        name, value = (_text(x) for x in pair)
        key = name.lower()
        if key not in names:
            continue
        sizes[key] = sizes.get(key, 0) + len(value) + 2
        if limit is not None and sizes[key] > limit + 2:
            error = ContentDigestError if key == "content-digest" else MalformedSignatureError
            raise error(f"the {key.title()} header exceeds {limit} characters")
        out.setdefault(key, []).append(value)
    return out


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("latin-1")
    raise TypeError(f"a header name or value is text or bytes, not {type(value).__name__}")


def _bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} is bytes, not {type(value).__name__}")


def _seconds(now: int | datetime) -> int:
    """``now`` as int seconds since the epoch. A naive datetime is refused (ValueError)."""
    if isinstance(now, datetime):
        if now.tzinfo is None or now.tzinfo.utcoffset(now) is None:
            raise ValueError("naive datetime refused: give a timezone, e.g. tzinfo=timezone.utc")
        return math.floor(now.timestamp())
    if isinstance(now, bool) or not isinstance(now, int):
        raise TypeError(f"now is int seconds or an aware datetime, not {type(now).__name__}")
    if now < 0:
        raise ValueError("now is seconds since the epoch, not negative")
    return now


def _nonce_ok(nonce: str) -> bool:
    """At least 16 bytes' worth: 22+ base64url characters, or 32+ if all lower-case hex."""
    if not _NONCE.fullmatch(nonce):
        return False
    return len(nonce) >= 32 or not _HEX_NONCE.fullmatch(nonce)


def _encode_actor(name: str) -> str:
    """``name`` in ASCII: each UTF-8 byte of a non-ASCII character, and of "%", as %XX."""
    return "".join(ch if " " < ch <= "~" and ch != "%" else
                   "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in name)


def _parse_keyid(keyid: str) -> tuple[str, str] | None:
    """(actor, 8 hex digits) of a canonical ``<encoded actor>+<8 hex>``, else None."""
    encoded, sep, hex8 = keyid.rpartition("+")
    if not sep or not _HEX8.fullmatch(hex8) or not _ENCODED_ACTOR.fullmatch(encoded):
        return None
    try:
        actor = _PCT.sub(lambda m: chr(int(m.group(1), 16)), encoded
                         ).encode("latin-1").decode("utf-8")
        check_key_name(actor)
    except (UnicodeError, MalformedInputError):
        return None
    if _encode_actor(actor) != encoded:
        return None
    return actor, hex8


def _check_keyid(keyid: str) -> None:
    if not isinstance(keyid, str):
        raise TypeError("keyid is text")
    if _parse_keyid(keyid) is None:
        raise ValueError(f"keyid {keyid[:80]!r} is not <actor>+<8 hex digits> (see keyid_of)")
