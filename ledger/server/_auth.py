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
from ._errors import HTTPProblem


def signed_request_authorizer(ledger: Ledger, now: Callable[[], datetime]) -> Authorize:
    """An ``Authorize`` over ``ledger``'s keyring, with one replay cache."""
    nonces = httpsig.NonceCache()

    def resolve(actor: str) -> tuple[bytes, str] | None:
        found = ledger.active_key(actor)
        return None if found is None else (found[0].public_key, found[1])

    async def authorize(request: Request) -> str:
        body = await request.body()
        headers = request.scope["headers"]
        url = _target_uri(request)

        def check() -> str:
            return httpsig.verify_request(
                request.method, url, headers, body, resolve=resolve, may_read=may_read,
                now=now(), nonces=nonces).actor

        try:
            return await to_thread.run_sync(check)
        except httpsig.RequestAuthError as exc:
            raise HTTPProblem(exc.status, type(exc).__name__, str(exc)) from None

    return authorize


def _target_uri(request: Request) -> str:
    """The request's target URI as its client addressed it: scheme, the Host header (a
    reverse proxy must pass it through), and the path and query exactly as sent."""
    scope = request.scope
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    host = request.headers.get("host", "")
    query = scope.get("query_string", b"")
    url = f"{scope['scheme']}://{host}{raw.decode('latin-1')}"
    return url + ("?" + query.decode("latin-1") if query else "")
