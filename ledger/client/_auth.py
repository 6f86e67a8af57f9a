"""Signing protected reads (RFC 9421, specs/api.md §5) with the actor's key."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, cast

from ..keys import ActorKey

SignRequest = Callable[..., dict[str, str]]


def _sign_request() -> SignRequest:
    # ledger.httpsig lands with the request-signing work; until then reads go unsigned
    # only if it is missing, and the server answers 401.
    module: Any = importlib.import_module("ledger.httpsig")
    return cast(SignRequest, module.sign_request)


def keyid(actor: ActorKey) -> str:
    """The RFC 9421 ``keyid`` of an actor key (specs/api.md §6.1): ``name+<its note key ID
    in hex>``, the name percent-encoded as ``ledger.httpsig.keyid_of`` writes it."""
    module: Any = importlib.import_module("ledger.httpsig")
    return cast(str, module.keyid_of(actor.key))


def signer(actor: ActorKey, clock: Callable[[], datetime] | None = None
           ) -> Callable[[str, str, Mapping[str, str], bytes], Mapping[str, str]]:
    """A function that signs one request (method, URL, headers, body) as ``actor``,
    giving the headers to add; a fresh signature (time, nonce) on every call."""
    sign = _sign_request()
    try:
        kid = keyid(actor)
    except (ImportError, AttributeError):  # a stand-in sign_request (tests)
        kid = f"{actor.name}+{actor.key_id.hex()}"

    def sign_one(method: str, url: str, headers: Mapping[str, str], body: bytes
                 ) -> Mapping[str, str]:
        now = clock() if clock is not None else datetime.now(timezone.utc)
        return sign(actor, kid, method, url, dict(headers), body, now)

    return sign_one
