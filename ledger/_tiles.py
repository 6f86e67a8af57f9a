"""Hash tiles of the log's Merkle tree as C2SP tlog-tiles defines them. Internal.

A tile at level ``L``, index ``N`` and width ``W`` lists the hashes of the tree's nodes at
height ``8 * L`` with indexes ``N * 256 .. N * 256 + W - 1``: each is the root of a
complete subtree, which the node store keeps once the log holds it. A full tile has
256 hashes; a partial one fewer, and its path ends in ``.p/<W>``.
"""

from __future__ import annotations

import re

from verifier import MalformedInputError

from . import _tree as tree

HEIGHT = 8
WIDTH = 1 << HEIGHT
MAX_LEVEL = 5  # tlog-tiles: levels 0..5 cover trees of up to 2**48 entries
_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """(level, index, width) of ``<L>/<N>[.p/<W>]`` (the part after ``tile/``).

    Raises MalformedInputError for anything but the canonical form (no leading zeros,
    3-digit elements, ``x`` on all but the last, W in 1..255)."""
    parts = path.split("/")
    width = WIDTH
    if len(parts) >= 3 and parts[-2].endswith(".p"):
        w = parts.pop()
        if not _DECIMAL.fullmatch(w) or not 0 < int(w) < WIDTH:
            raise MalformedInputError(f"a partial tile's width is 1..{WIDTH - 1}, not {w!r}")
        width = int(w)
        parts[-1] = parts[-1][:-2]
    if len(parts) < 2 or not _DECIMAL.fullmatch(parts[0]) or int(parts[0]) > MAX_LEVEL:
        raise MalformedInputError(f"not a tile path: {path!r}")
    elements = parts[1:]
    if (len(elements) > 7 or not all(_ELEMENT.fullmatch(e) for e in elements[:-1])
            or not _LAST.fullmatch(elements[-1])):
        raise MalformedInputError(f"not a tile index path: {path!r}")
    index = int("".join(e.lstrip("x") for e in elements))
    if tile_path(int(parts[0]), index, width) != path:
        raise MalformedInputError(f"not the canonical path of its tile: {path!r}")
    return int(parts[0]), index, width


def tile_path(level: int, index: int, width: int = WIDTH) -> str:
    """The canonical ``<L>/<N>[.p/<W>]``. Preconditions: 0 <= level <= 5, index >= 0,
    1 <= width <= 256."""
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    n = "/".join([f"x{g}" for g in groups[:-1]] + groups[-1:])
    return f"{level}/{n}" + ("" if width == WIDTH else f".p/{width}")


def available(level: int, index: int, width: int, size: int) -> bool:
    """Whether a tree of ``size`` leaves holds every hash of the tile."""
    return (index * WIDTH + width) << (HEIGHT * level) <= size


def tile_bytes(get: tree.Get, level: int, index: int, width: int) -> bytes:
    """The tile's hashes, concatenated. Precondition: ``available`` for the log's size."""
    height = HEIGHT * level
    start = index * WIDTH
    return b"".join(get(height, start + i) for i in range(width))


def tiles_of(size: int) -> list[tuple[int, int, int]]:
    """(level, index, width) of every hash tile a tree of ``size`` leaves publishes: at each
    level, the full tiles and the partial one (if its width is not 0), lowest level first.
    Precondition: 0 <= size < 2**48."""
    out: list[tuple[int, int, int]] = []
    level = 0
    while level <= MAX_LEVEL and size >> (HEIGHT * level):
        hashes = size >> (HEIGHT * level)
        full, width = divmod(hashes, WIDTH)
        out.extend((level, index, WIDTH) for index in range(full))
        if width:
            out.append((level, full, width))
        level += 1
    return out


def width_at(level: int, index: int, size: int) -> int:
    """The width of tile ``level``/``index`` in a tree of ``size`` leaves: WIDTH for a full
    tile, 1..255 for the partial one, 0 if the tree has none of its hashes."""
    hashes = (size >> (HEIGHT * level)) - index * WIDTH
    return max(0, min(WIDTH, hashes))
