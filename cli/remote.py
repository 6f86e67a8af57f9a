"""What only a remote log needs: the transport (a test may set one), a snapshot prefix
resolved through a model's history, and a bundle streamed to its file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx

from ledger.client import Client

from .outfile import write_output
from .context import UsageProblem

_TRANSPORT: httpx.BaseTransport | None = None
"""The transport clients use (None: the network). Only tests set it."""


def transport() -> httpx.BaseTransport | None:
    """The transport for a new Client."""
    return _TRANSPORT


def snapshot_of(client: Client, name: str, ref: str) -> str:
    """The full snapshot hash of model ``name`` that ``ref`` names (64 hex digits, or a
    unique prefix of at least 8, resolved through the model's history)."""
    text = ref.lower()
    if len(text) == 64:
        return text
    if len(text) < 8 or any(c not in "0123456789abcdef" for c in text):
        raise UsageProblem(f"{ref!r} is not a snapshot hash: give its 64 hex digits, or a "
                           f"unique prefix of at least 8")
    found = [s.snapshot_hash for s in client.history(name) if s.snapshot_hash.startswith(text)]
    if len(found) != 1:
        raise UsageProblem(f"no snapshot {ref} of {name}" if not found else
                           f"snapshot prefix {ref} is ambiguous; give more hex digits",
                           "`modelseal history NAME` lists a model's snapshots")
    return found[0]


def export_to(client: Client, output: Path, force: bool, when: datetime | None,
              size: int | None, trusted_size: int | None) -> int:
    """Stream the server's bundle into ``output`` through a temporary file beside it, so
    a failed transfer leaves nothing; never replaces ``output`` without ``force``."""
    return write_output(output, lambda fh: client.export_bundle(
        at=when, size=size, trusted_size=trusted_size, out=fh), force=force)


