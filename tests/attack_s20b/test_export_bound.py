"""Session 20b attack: `modelseal export --timeout S` against a server that never sends
its answer's headers. The CLI's help and docs/pipelines.md say --timeout bounds a request
"whole ... retries included"; only the streamed bundle's body is held to a pace instead."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ledger.keys import LogKey
from tests.cli_support import Run, bare
from tests.test_client_deadline import SLACK, RawServer, silent, trickle_head


def _run(tmp_path: Path, url: str, *command: str) -> tuple[Run, float]:
    vkey = LogKey.generate("attack-s20b.example/log").vkey
    start = time.monotonic()
    run = bare(tmp_path, "--server", url, "--log-vkey", vkey, "--timeout", "1",
               "--client-state", tmp_path / "state.json", *command, timeout=90)
    return run, time.monotonic() - start


@pytest.mark.parametrize("handler", [silent, trickle_head])
def test_cli_export_headers_are_bounded_whole(tmp_path: Path, handler: object) -> None:
    # FINDING (medium): Http.stream gives every attempt a fresh deadline, so `modelseal
    # export --timeout 1` against a server that never finishes its headers runs for
    # (retries + 1) timeouts plus backoff (about 6-7 s here, 3 min at the default 30 s)
    # before exit 4, where --help, docs/pipelines.md and specs/errors.md promise the
    # request bounded whole, retries included (only the body's pace is per window).
    with RawServer(handler) as server:  # type: ignore[arg-type]
        control, base = _run(tmp_path, server.url, "checkpoint")
        run, took = _run(tmp_path, server.url, "export", "-o", str(tmp_path / "b.json"))
    assert control.code == 4 and run.code == 4, (control, run)
    assert not (tmp_path / "b.json").exists()
    # `checkpoint` (bounded whole) measures the interpreter's start-up plus --timeout
    assert base < 1 + SLACK + 5, base
    assert took < base + SLACK, (took, base)
