"""A C2SP tlog-witness (specs/witness.md): it cosigns the checkpoints of the logs whose
keys it holds, after checking each is consistent with the last one it cosigned, and never
cosigns two checkpoints of one log that conflict, also across restarts and crashes (its
state is on disk before it answers).

``Witness`` is the decision (no HTTP); ``build_app(witness)`` the ASGI application;
``serve(witness, sock, ...)`` runs it on uvicorn with the log server's limits until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from starlette.applications import Starlette

from ..server import run_asgi
from ._app import build
from ._request import MAX_BODY, AddCheckpoint, parse_request
from ._state import Record, WitnessState
from ._witness import Refused, Witness, origin_hash

__all__ = ["MAX_BODY", "AddCheckpoint", "Record", "Refused", "Witness", "WitnessState",
           "build_app", "origin_hash", "parse_request", "serve"]


def build_app(witness: Witness) -> Starlette:
    """The ASGI application serving ``witness``."""
    return build(witness)


def serve(witness: Witness, sock: socket.socket, *, graceful: int = 10,
          ready: Callable[[], None] | None = None) -> None:
    """Serve ``witness`` on the listening ``sock`` until SIGTERM/SIGINT; then stop
    accepting and let the requests under way finish (at most ``graceful`` seconds).
    ``ready`` is called once it accepts connections."""
    run_asgi(build_app(witness), sock, graceful=graceful, ready=ready)
