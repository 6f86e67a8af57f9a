"""Where the monitor reads a log: a directory ``modelseal publish`` wrote, or a log server's
URL (GET /checkpoint, GET /tile/..., and with a reader's key the signed GET /entries).

A partial tile or bundle that is gone (tlog-tiles lets a log delete one once the full one
exists) is read from the full one. Every read is bounded in size; the server's reads in
time too (the client's retries and deadline)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from verifier import AuthorizationError, MalformedInputError

from .. import _tiles
from .._publish import split_bundle
from ..client._auth import signer
from ..client._errors import (
    ServerError,
    ServerMisbehaviourError,
    ServerUnavailableError,
    UnauthenticatedError,
)
from ..client._http import Http
from ..keys import ActorKey

from ._errors import MissingTileError, ReadRefusedError, SourceUnavailableError

MAX_CHECKPOINT = 1 << 20
MAX_BUNDLE = _tiles.WIDTH * (2 + 0xFFFF)
PAGE = 1000  # entries per GET /entries (the server's limit)


class Source(Protocol):
    """A log's published data, read as raw bytes (the core checks them)."""

    where: str

    def checkpoint(self) -> bytes:
        """The current checkpoint note, byte for byte."""
        ...

    def tile(self, level: int, index: int, width: int) -> bytes:
        """A hash tile's bytes; MissingTileError if it is not there."""
        ...

    def has_entries(self) -> bool:
        """Whether this source can give entries."""
        ...

    def entries(self, size: int, start: int = 0) -> Iterator[bytes]:
        """Entries start..size-1, in order; MissingTileError if one is not there.
        Precondition: 0 <= start <= size."""
        ...

    def close(self) -> None:
        """Release what the source holds."""
        ...


class DirSource:
    """A directory in the C2SP tlog-tiles layout."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.where = str(self.root)

    def _read(self, rel: str, limit: int) -> bytes | None:
        """The bytes of regular file ``rel`` (None if absent), at most ``limit``.

        Opened with O_NONBLOCK so that a FIFO or a device planted in the directory cannot
        block the open; then fstat (of what was opened, so no race) must say a regular file,
        else MalformedInputError. A link to a regular file is read (only read)."""
        path = self.root / rel
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError:
            raise MalformedInputError(f"{path} is a directory") from None
        with os.fdopen(fd, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if stat.S_ISDIR(mode):
                raise MalformedInputError(f"{path} is a directory")
            if not stat.S_ISREG(mode):
                raise MalformedInputError(f"{path} is not a regular file (a FIFO, a socket "
                                          "or a device): refused unread")
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise MalformedInputError(f"{path} is larger than {limit} bytes")
        return data

    def checkpoint(self) -> bytes:
        data = self._read("checkpoint", MAX_CHECKPOINT)
        if data is None:
            raise MissingTileError(f"{self.root} has no checkpoint")
        return data

    def tile(self, level: int, index: int, width: int) -> bytes:
        rel = "tile/" + _tiles.tile_path(level, index, width)
        data = self._read(rel, 32 * _tiles.WIDTH)
        if data is None and width < _tiles.WIDTH:
            full = self._read("tile/" + _tiles.tile_path(level, index), 32 * _tiles.WIDTH)
            data = None if full is None else full[:32 * width]
        if data is None:
            raise MissingTileError(f"{self.root / rel} is missing")
        return data

    def has_entries(self) -> bool:
        return (self.root / "tile" / "entries").is_dir()

    def entries(self, size: int, start: int = 0) -> Iterator[bytes]:
        _check_range(start, size)
        skip = start % _tiles.WIDTH  # entries of the first tile before ``start``
        for first in range(start - skip, size, _tiles.WIDTH):
            index, width = first // _tiles.WIDTH, min(_tiles.WIDTH, size - first)
            rel = "tile/entries/" + _tiles.tile_path(0, index, width).partition("/")[2]
            data = self._read(rel, MAX_BUNDLE)
            count = width
            if data is None and width < _tiles.WIDTH:
                full = "tile/entries/" + _tiles.tile_path(0, index).partition("/")[2]
                data, count = self._read(full, MAX_BUNDLE), _tiles.WIDTH
            if data is None:
                raise MissingTileError(f"{self.root / rel} is missing")
            yield from split_bundle(data, count)[skip:width]
            skip = 0

    def close(self) -> None:
        pass


class UrlSource:
    """A ``modelseal serve`` log server (or any host of the tlog-tiles layout, for the
    checkpoint and tiles). ``actor`` (a reader's or an admin's key) signs reads of entries."""

    def __init__(self, url: str, *, actor: ActorKey | None = None, timeout: float = 30.0,
                 retries: int = 3, transport: object = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        self.where = url.rstrip("/")
        self._http = Http(url, timeout=timeout, retries=retries,
                          transport=transport)  # type: ignore[arg-type]
        self._actor = actor

    def _call(self, path: str, max_bytes: int, **kw: Any) -> bytes:
        try:
            return self._http.call("GET", path, max_bytes=max_bytes, **kw).body
        except ServerUnavailableError as exc:
            raise SourceUnavailableError(str(exc)) from None
        except (UnauthenticatedError, AuthorizationError) as exc:
            raise ReadRefusedError(f"{self.where}{path} refused the signed read: {exc}"
                                   ) from None

    def checkpoint(self) -> bytes:
        return self._call("/checkpoint", MAX_CHECKPOINT)

    def tile(self, level: int, index: int, width: int) -> bytes:
        path = "/tile/" + _tiles.tile_path(level, index, width)
        found = self._get_tile(path)
        if found is None and width < _tiles.WIDTH:
            full = self._get_tile("/tile/" + _tiles.tile_path(level, index))
            found = None if full is None else full[:32 * width]
        if found is not None:
            return found
        raise MissingTileError(f"{self.where}{path} is missing (404)")

    def _get_tile(self, path: str) -> bytes | None:
        try:
            return self._call(path, 32 * _tiles.WIDTH)
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise

    def has_entries(self) -> bool:
        return self._actor is not None

    def entries(self, size: int, start: int = 0) -> Iterator[bytes]:
        if self._actor is None:
            raise ValueError("reading entries needs a reader's key")
        _check_range(start, size)
        sign = signer(self._actor)
        for first in range(start, size, PAGE):
            count = min(PAGE, size - first)
            body = self._call("/entries", count * 90_000 + 1024, sign=sign,
                              params={"start": str(first), "count": str(count)})
            got = _entries_page(body, first)
            if len(got) < count:
                raise MissingTileError(f"{self.where}/entries gave {len(got)} of the {count} "
                                       f"entries from {first}")
            yield from got[:count]

    def close(self) -> None:
        self._http.close()


def _check_range(start: int, size: int) -> None:
    if not 0 <= start <= size:
        raise ValueError(f"entries from {start} of a tree of size {size}: need 0 <= start <= size")


def _entries_page(body: bytes, start: int) -> list[bytes]:
    """The entries of a GET /entries answer (specs/api.md); strictly."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise ServerMisbehaviourError("GET /entries did not answer JSON") from None
    if not isinstance(doc, dict) or doc.get("start") != start \
            or not isinstance(doc.get("entries"), list):
        raise ServerMisbehaviourError("GET /entries answered another shape than specs/api.md")
    out: list[bytes] = []
    for item in doc["entries"]:
        if not isinstance(item, str):
            raise ServerMisbehaviourError("GET /entries gave an entry that is not base64")
        try:
            out.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise ServerMisbehaviourError("GET /entries gave an entry that is not base64"
                                          ) from None
    return out


def open_source(where: str, *, actor: ActorKey | None = None, timeout: float = 30.0,
                transport: object = None) -> Source:
    """A DirSource for a path, a UrlSource for an http(s) URL."""
    if where.startswith(("http://", "https://")):
        return UrlSource(where, actor=actor, timeout=timeout, transport=transport)
    if "://" in where:
        raise ValueError(f"{where!r}: only http:// and https:// URLs, or a directory")
    return DirSource(where)
