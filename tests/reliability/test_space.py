"""Part 7: a full disk (a 4 MiB tmpfs where mounting is permitted; RLIMIT_FSIZE always)
gives a clear StoreError and CLI exit 4, and the store still audits clean with every
acknowledged write. Map growth under load: test_concurrency.py and test_crash.py (from a
256 KiB and a 1 MiB map), and tests/test_ledger_store.py (per write, inside a batch)."""

from __future__ import annotations

import errno
from pathlib import Path

import lmdb
import pytest

from ledger import _store as lstore
from tests.reliability.space import run_space


@pytest.mark.parametrize("mode", ["auto", "rlimit"])
def test_full_disk(tmp_path: Path, mode: str) -> None:
    result = run_space(tmp_path, mode=mode)
    print(result["mode"])
    assert result["problems"] == [], result
    assert result["lost"] == 0 and result["cli_exit"] == 4, result
    assert result["audit_after_full"] == result["size_after"] > 0, result
    assert result["audit_after_space_freed"] == result["size_after"] + 1, result


def test_store_error_messages(tmp_path: Path) -> None:
    """LMDB reports a write that stopped short as EIO; the message says why when it can."""
    def msg(text: str, path: Path | None = None) -> str:
        return str(lstore._store_error(lmdb.Error(text), path))

    assert msg("mdb_txn_commit: No space left on device").startswith("disk full: the write "
                                                                      "was not stored")
    assert msg("mdb_txn_commit: File too large").startswith("file size limit reached")
    assert msg("mdb_txn_commit: Input/output error", tmp_path).startswith(
        "I/O error (is the disk failing?): the write was not stored")
    assert msg("mdb_txn_commit: Input/output error").startswith("store error")
    assert errno.EIO  # the EIO-as-full-disk case itself runs in test_full_disk (tmpfs)
