"""The monitor: checks a published log (a ``modelseal publish`` directory or a log server)
against the checkpoint it kept: signatures and cosignatures, consistency computed from the
tiles, rollback and fork, and with entries the log's rules (specs/tiles.md §4).

``TrustedLog`` is the pure core (no I/O of its own: tiles come as a mapping or through a
``TileReader`` it is given; one method per step); ``DirSource`` and
``UrlSource`` read; ``run_once`` runs one check and keeps the new checkpoint in a state."""

from ._core import Checked, Replayed, TileId, TileReader, TrustedLog
from ._errors import (
    EXIT_FORK,
    EXIT_MISMATCH,
    EXIT_MISSING,
    EXIT_ROLLBACK,
    EXIT_RULE,
    EXIT_SIGNATURE,
    CheckpointSignatureError,
    ForkDetectedError,
    MissingTileError,
    ReadRefusedError,
    RollbackDetectedError,
    RuleViolationError,
    SourceUnavailableError,
    TileMismatchError,
)
from ._run import Follow, describe, run_once
from ._sources import DirSource, Source, UrlSource, open_source

__all__ = [
    "Checked", "CheckpointSignatureError", "DirSource", "EXIT_FORK", "EXIT_MISMATCH", "Follow",
    "EXIT_MISSING", "EXIT_ROLLBACK", "EXIT_RULE", "EXIT_SIGNATURE", "ForkDetectedError",
    "MissingTileError", "ReadRefusedError", "Replayed", "RollbackDetectedError",
    "RuleViolationError",
    "Source", "SourceUnavailableError", "TileId", "TileMismatchError", "TileReader",
    "TrustedLog",
    "UrlSource", "describe", "open_source", "run_once",
]
