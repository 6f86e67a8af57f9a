"""The modelseal client: a log served by ``modelseal serve`` (specs/api.md), used as a
``Ledger`` is, with every receipt, checkpoint and proof verified against the pinned log
key and the checkpoint it keeps."""

from ._client import Client
from ._errors import (
    ArgumentRefusedError,
    ForkError,
    NotFoundError,
    ReadForbiddenError,
    RollbackError,
    ServerError,
    ServerMisbehaviourError,
    ServerUnavailableError,
    StateFileError,
    UnauthenticatedError,
)
from ._wire import LogInfo

__all__ = [
    "ArgumentRefusedError", "Client", "ForkError", "LogInfo", "NotFoundError",
    "ReadForbiddenError", "RollbackError", "ServerError", "ServerMisbehaviourError",
    "ServerUnavailableError", "StateFileError", "UnauthenticatedError",
]
