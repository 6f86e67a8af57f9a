"""Terminals that are not UTF-8 (PYTHONIOENCODING=ascii or latin-1, LC_ALL=C) and text that
hides things: non-ASCII names and owners, a right-to-left override, escape sequences and bell
characters in payloads, command-line bytes that are not UTF-8."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .common import VERIFY, WRITER, Store, make_store, no_traceback, run

HIDDEN = ("\x1b", "\x07", "\u202e")
ENCODINGS = [{"PYTHONIOENCODING": "ascii"}, {"PYTHONIOENCODING": "latin-1"},
             {"LC_ALL": "C", "LANG": "C"}]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = make_store(tmp_path_factory.mktemp("enc"), models=0)
    for args in (["register", "modèle", "--owner", "Ünïcode", "--type", "ml_model", "--tier",
                  "low", "--purpose", "p \u202e reversed"],
                 ["record", "modèle", "--event", "evaluated", "--payload",
                  json.dumps({"n": "\u202eevil\u0007\u001b[31m", "ключ": "値"})]):
        done = s.cli(*args)
        assert done.code == 0, str(done)
    return s


@pytest.fixture(scope="module")
def bundle(store: Store) -> Path:
    out = store.dir.parent / "enc.json"
    assert store.cli("export", "-o", str(out)).code == 0
    return out


@pytest.mark.parametrize("extra", ENCODINGS, ids=lambda e: ",".join(f"{k}={v}"
                                                                     for k, v in e.items()))
@pytest.mark.parametrize("args", [["inventory"], ["history", "modèle"], ["show", "2"],
                                  ["diff", "2020-01-01", "2030-01-01"], ["inventory", "--csv"],
                                  ["history", "modèle", "--json"]], ids=" ".join)
def test_reads_on_a_narrow_terminal(store: Store, extra: dict[str, str], args: list[str]
                                    ) -> None:
    done = store.cli(*args, extra_env=extra)
    no_traceback(done)
    assert done.code == 0, str(done)
    if "--json" not in args:
        for ch in HIDDEN:
            assert ch not in done.out, f"raw {ch!r} reaches the terminal\n{done}"


@pytest.mark.parametrize("extra", ENCODINGS, ids=lambda e: ",".join(f"{k}={v}"
                                                                     for k, v in e.items()))
@pytest.mark.parametrize("as_json", [False, True])
def test_verify_on_a_narrow_terminal(store: Store, bundle: Path, extra: dict[str, str],
                                     as_json: bool) -> None:
    done = run([*VERIFY, str(bundle), "--key", store.log_vkey,
                *(["--json"] if as_json else [])], extra_env=extra)
    no_traceback(done)
    assert done.code == 0, str(done)
    if not as_json:
        for ch in HIDDEN:
            assert ch not in done.out


@pytest.mark.parametrize("extra", ENCODINGS, ids=lambda e: ",".join(f"{k}={v}"
                                                                     for k, v in e.items()))
def test_errors_naming_unicode_on_a_narrow_terminal(store: Store, extra: dict[str, str]
                                                    ) -> None:
    done = store.cli("history", "mödèl‮x", extra_env=extra)
    no_traceback(done)
    assert done.code == 2 and "\u202e" not in done.err, str(done)


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("where", ["name", "owner", "payload", "store"])
def test_argv_bytes_that_are_not_utf8(store: Store, as_json: bool, where: str) -> None:
    bad = os.fsdecode(b"bad\xff\xfe")
    before = store.checkpoint()
    if where == "store":
        argv = [*WRITER, "--store", bad, "inventory"]
    elif where == "payload":
        argv = [*WRITER, *store.opts, "record", "modèle", "--event", "evaluated", "--payload",
                os.fsdecode(b'{"a": "\xff"}')]
    else:
        argv = [*WRITER, *store.opts, "register", bad if where == "name" else "okname",
                "--owner", bad if where == "owner" else "o", "--type", "ml_model", "--tier",
                "low", "--purpose", "p"]
    done = run([*argv, *(["--json"] if as_json else [])], extra_env={"LC_ALL": "C"})
    no_traceback(done)
    assert done.code == 2 and done.out == "", str(done)
    if as_json:
        assert json.loads(done.err)["error"]["exit_code"] == 2
    assert store.checkpoint() == before


def test_verify_with_a_non_utf8_bundle_path(store: Store) -> None:
    done = run([*VERIFY, os.fsdecode(b"/nonexistent/\xff.json"), "--key", store.log_vkey])
    no_traceback(done)
    assert done.code == 4 and done.out.startswith("FAIL: cannot read"), str(done)
