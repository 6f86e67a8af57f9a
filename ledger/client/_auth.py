"""Signing protected reads (specs/api.md §5, §6: RFC 9421) with the actor's key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from .. import httpsig
from ..keys import ActorKey

SignRequest = Callable[..., dict[str, str]]


def _sign_request() -> SignRequest:
    """``ledger.httpsig.sign_request`` (a seam for tests)."""
    return httpsig.sign_request


def keyid(actor: ActorKey) -> str:
    """The RFC 9421 ``keyid`` of an actor key (specs/api.md §6.1)."""
    return httpsig.keyid_of(actor.key)


def signer(actor: ActorKey, clock: Callable[[], datetime] | None = None
           ) -> Callable[[str, str, Mapping[str, str], bytes], Mapping[str, str]]:
    """A function that signs one request (method, URL as sent, headers, body) as
    ``actor``, giving the headers to add; a fresh signature (time, nonce) on every call:
    a signed request is good once (a retry is signed again)."""
    sign = _sign_request()
    kid = keyid(actor)

    def sign_one(method: str, url: str, headers: Mapping[str, str], body: bytes
                 ) -> Mapping[str, str]:
        now = clock() if clock is not None else datetime.now(timezone.utc)
        return sign(actor, kid, method, url, dict(headers), body or None, now)

    return sign_one
