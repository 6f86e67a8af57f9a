"""GET /tile/...: malformed paths, huge indexes, level 5, widths at the border, tiles
read while the log grows (C2SP tlog-tiles, specs/api.md §3)."""
from __future__ import annotations

import threading

import pytest

import verifier as v
from tests import server_support
from verifier.merkle import root_from_leaf_hashes

from .common import World, assert_problem


# the shared served-world fixture (tests/server_support.py; pytest finds it by this name)
w = server_support.w


@pytest.mark.parametrize("path,status", [
    ("", 400), ("0", 400), ("0/", 400), ("/0/000", 400), ("0//000", 400), ("00/000", 400),
    ("-1/000", 400), ("6/000", 400), ("0/0", 400), ("0/0000", 400), ("0/x000/001", 400),
    ("0/x001", 400), ("0/001x", 400), ("0/000.p", 400), ("0/000.p/", 400),
    ("0/000.p/0", 400), ("0/000.p/256", 400), ("0/000.p/01", 400), ("0/000.p/+1", 400),
    ("0/000.p/1/2", 400), ("0/.p/1", 400), ("0/x000.p/1", 400), ("entries/000", 400),
    ("entries/000.p/1", 400), ("0/%30%30%30", 200), ("0/000.P/1", 400),
    ("0/x999/x999/x999/x999/x999/x999/999", 404),
    ("0/x999/x999/x999/x999/x999/x999/x999/999", 400),
    ("5/000.p/1", 404), ("5/x999/x999/x999/x999/x999/x999/999", 404),
    ("0/000.p/255", 404), ("0/000.p/4", 200), ("0/000.p/5", 404), ("1/000.p/1", 404),
    ("0/" + "x123/" * 2000 + "000", 400),
])
def test_tile_paths(w: World, path: str, status: int) -> None:
    assert w.client is not None
    r = w.client.get("/tile/" + path)
    if status == 200 and path.startswith("0/%30"):
        status = 404  # /tile/0/000 (full) is not held by a 4-entry log
    if status == 200:
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    else:
        assert_problem(r, status)


def test_tile_contents_at_levels_0_and_1(w: World) -> None:
    with w.led.batch():
        for i in range(600):
            w.led.record("m0", "evaluated", payload={"i": i})
    n = w.led.size
    leaves = [v.leaf_hash(w.led.entry(i)) for i in range(n)]
    assert w.client is not None
    full = w.client.get("/tile/0/000")
    assert full.status_code == 200 and full.content == b"".join(leaves[:256])
    assert "immutable" in full.headers["cache-control"]
    assert w.client.get("/tile/0/001").content == b"".join(leaves[256:512])
    part = w.client.get(f"/tile/0/002.p/{n - 512}")
    assert part.content == b"".join(leaves[512:n])
    assert w.client.get(f"/tile/0/002.p/{n - 511}").status_code == 404
    lvl1 = w.client.get("/tile/1/000.p/2")
    assert lvl1.content == (root_from_leaf_hashes(leaves[:256])
                            + root_from_leaf_hashes(leaves[256:512]))
    assert w.client.get("/tile/1/000.p/3").status_code == 404


def test_tiles_read_while_the_log_grows_are_right_or_404(w: World) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def grow() -> None:
        try:
            for i in range(120):
                w.led.record("m0", "evaluated", payload={"i": i})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stop.set()

    t = threading.Thread(target=grow)
    t.start()
    seen = []
    assert w.client is not None
    while not stop.is_set():
        for width in (5, 37, 64, 100, 123):
            r = w.client.get(f"/tile/0/000.p/{width}")
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                seen.append((width, r.content))
    t.join(60)
    assert not errors
    leaves = [v.leaf_hash(w.led.entry(i)) for i in range(w.led.size)]
    for width, data in seen:
        assert data == b"".join(leaves[:width])
