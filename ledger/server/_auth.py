"""Who may read: a protected request must be signed (RFC 9421, ``ledger.httpsig``) by
a key the log's keyring holds now, in a role that may read. Internal to the server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from anyio import to_thread
from starlette.requests import Request

from verifier import may_read

from .. import httpsig
from ..ledger import Ledger
from ._app import Authorize
from ._errors import RETRY_AFTER, HTTPProblem


def signed_request_authorizer(ledger: Ledger, now: Callable[[], datetime],
                              public_url: str | None = None) -> Authorize:
    """An ``Authorize`` over ``ledger``'s keyring, with one replay cache. ``public_url``
    (scheme and host, e.g. ``https://log.example.com``) is the address clients sign
    for; without it, the request's own scheme and Host header."""
    nonces = httpsig.NonceCache()
    # A restarted server has forgotten the nonces it saw: requests signed before it started
    # could be replays, and are refused (their client signs afresh).
    started = int(now().timestamp())

    def resolve(actor: str) -> tuple[bytes, str] | None:
        found = ledger.active_key(actor)
        return None if found is None else (found[0].public_key, found[1])

    async def authorize(request: Request, body: bytes) -> str:
        headers = request.scope["headers"]
        url = _target_uri(request, public_url)

        def check() -> str:
            verified = httpsig.verify_request(
                request.method, url, headers, body, resolve=resolve, may_read=may_read,
                now=now(), nonces=nonces)
            if verified.created < started:
                raise httpsig.ReplayedNonceError(
                    f"the request was signed at {verified.created}, before this server "
                    f"started ({started}): sign it again")
            return verified.actor

        try:
            return await to_thread.run_sync(check)
        except httpsig.RequestAuthError as exc:
            headers = {"Retry-After": RETRY_AFTER} if exc.status == 503 else None
            raise HTTPProblem(exc.status, type(exc).__name__, str(exc), headers) from None

    return authorize


def _target_uri(request: Request, public_url: str | None) -> str:
    """The request's target URI as its client addressed it: ``public_url``, else the
    scheme and the Host header (a reverse proxy must pass it through), then the path and
    query exactly as sent."""
    scope = request.scope
    raw: bytes = scope.get("raw_path") or str(scope["path"]).encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    base = public_url or f"{scope['scheme']}://{request.headers.get('host', '')}"
    url = base + raw.decode("latin-1")
    return url + ("?" + query.decode("latin-1") if query else "")
