"""Part 9 (issue 11): the server killed with SIGKILL while 16 clients write. CI-sized
counts; the torture run (bench/torture.py --parts server) kills it 20 times."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.server import run_server_kills


def test_kill_9_while_16_clients_write(tmp_path: Path) -> None:
    r = run_server_kills(tmp_path, clients=16, writes=12, kills=3, seed=11)
    assert r["errors"] == [] and r["hung_clients"] == 0, r
    assert r["kills"] == 3 and r["server_starts"] == 4, r
    assert r["acknowledged"] + r["gave_up"] == 16 * 12, r
    assert r["gave_up"] == 0, r  # the client's retries outlast a restart
    assert (r["missing_or_moved"], r["duplicates"], r["strangers"]) == (0, 0, 0), r
    assert r["new_entries"] == r["acknowledged"], r
    assert r["audit"] and r["final_exit_code"] == 0, r
