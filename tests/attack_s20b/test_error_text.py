"""Session 20b attack: what a hostile server's bytes can put in the CLI's error line."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from ledger.keys import LogKey
from tests.cli_support import bare
from tests.test_client_deadline import RawServer


def _long_bad_status(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 2OO " + b"A" * 9000 + b"\x1b[2J\r\n\r\n")


def test_cli_error_line_from_a_protocol_error_is_short(tmp_path: Path) -> None:
    # FINDING (low): a server whose status line is malformed gets its whole line (here
    # 9 KB, up to h11's 16 KiB buffer) echoed into the CLI's error line ("error: cannot
    # reach ... (RemoteProtocolError: illegal status line: bytearray(b'HTTP/1.1 2OO
    # AAAA...')"); escapes are repr()-quoted, so no terminal control, but a hostile server
    # chooses what the user and the logs read. The error line should be short (the
    # project's own CLI tests hold it under 200 characters) and the server's bytes cut.
    vkey = LogKey.generate("attack-s20b.example/log").vkey
    with RawServer(_long_bad_status) as server:
        run = bare(tmp_path, "--server", server.url, "--log-vkey", vkey, "--timeout", "1",
                   "--client-state", tmp_path / "state.json", "checkpoint")
    assert run.code == 4, run
    assert "\x1b" not in run.err
    first = run.err.splitlines()[0]
    assert first.startswith("error: "), run.err
    assert len(first) < 300, len(first)
