"""The HTML report in a real browser: headless Chromium renders the inventory, runs no
script from the log, and paints a non-blank page. Needs Debian's `chromium`. Without it
these tests skip, saying why, so that the README's test command passes on a machine with
only Python and pip; CI (.ci/run) installs Chromium and sets MODELSEAL_REQUIRE_BROWSER=1,
which turns that skip into a failure."""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.logsim import DAY, T0, sample_log
from tests.test_report import hostile_log, verified
from verifier import cli
from verifier.report import render_report

INSTALL = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


REQUIRE = "MODELSEAL_REQUIRE_BROWSER"


def chromium() -> str:
    """The Chromium executable; skip (or, with MODELSEAL_REQUIRE_BROWSER=1, fail) without it."""
    # MODELSEAL_CHROMIUM names another executable (tests point it at a missing one)
    path = os.environ.get("MODELSEAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        reason = (f"headless Chromium is needed for this test and was not found; install it "
                  f"with: {INSTALL}")
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{reason} ({REQUIRE}=1: it must not skip)", pytrace=False)
        pytest.skip(reason)
    return path


def browse(tmp: Path, page: Path, *args: str) -> str:
    """Run Chromium on ``page`` with a fresh profile; return stdout. Kills it after 120 s."""
    cmd = [chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args, page.as_uri()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish in 120 s: {cmd}")
    assert proc.returncode == 0, err.decode("utf-8", "replace")[-2000:]
    return out.decode("utf-8", "replace")


def png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the (filtered) scanlines of an 8-bit RGB/RGBA PNG, stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
        if kind == b"IEND":
            break
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    stride = 1 + width * (3 if colour == 2 else 4)
    raw = zlib.decompress(idat)
    assert len(raw) == stride * height
    return width, height, [raw[i:i + stride] for i in range(0, len(raw), stride)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report written by `modelseal-verify --report`."""
    d = tmp_path_factory.mktemp("browser")
    log, _ = sample_log(models=6, seed="browser")
    (d / "bundle.json").write_bytes(log.bundle(T0 + 60 * DAY))
    page = d / "report.html"
    code = cli.main([str(d / "bundle.json"), "--key", log.log_key.vkey, "--report", str(page)])
    assert code == 0 and page.stat().st_size > 10_000
    return page


def test_dom_has_inventory(report: Path, tmp_path: Path) -> None:
    """The rendered DOM holds every inventory row, the timelines and the chart."""
    dom = browse(tmp_path, report, "--dump-dom")
    assert "Model inventory verification report" in dom
    rows = re.findall(r'<tr data-model="([^"]+)">', dom)
    assert rows == ["fraud_suite"] + [f"model_{i:02d}" for i in range(6)]
    assert dom.count("<details") == 7 and dom.count("<summary>") == 7
    assert dom.count('class="bar"') == 1 and "<svg" in dom
    assert "<script" not in dom


def test_hostile_names_stay_text(tmp_path: Path) -> None:
    """Markup in log text is shown as text: the browser's DOM gains no script element."""
    page = tmp_path / "evil.html"
    page.write_text(render_report(verified(hostile_log())), encoding="utf-8")
    dom = browse(tmp_path, page, "--dump-dom")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script" not in dom and "<img" not in dom and "<iframe" not in dom
    assert len(re.findall(r"<tr data-model=", dom)) == 2


def test_screenshot(report: Path, tmp_path: Path) -> None:
    """A 1280x2000 screenshot is a real PNG with content, not one flat colour."""
    shot = tmp_path / "report.png"
    browse(tmp_path, report, f"--screenshot={shot}", "--window-size=1280,2000",
           "--hide-scrollbars")
    data = shot.read_bytes()
    assert len(data) > 40_000, len(data)  # a blank page of this size is a few KB
    width, height, rows = png_rows(data)
    assert (width, height) == (1280, 2000)
    # A one-colour image has at most ten distinct filtered scanlines (five filters, first
    # row or not); a page of text, tables and a chart has hundreds.
    assert len(set(rows)) > 200, len(set(rows))
