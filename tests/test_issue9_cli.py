"""Issue 9, points 8-10: the command lines under hostile conditions (an encoding that cannot
show a name, a closed pipe, deep JSON, a full disk, another program's LMDB directory, an
empty payload, snapshot prefixes, a directory as a key file, overwriting an export, JSON
errors), the one table of exit codes and hints, internal errors (exit 70), and the test
suite's own policy for missing browsers."""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import pytest
from click.testing import CliRunner

import verifier
from cli.errors import TABLE, _ARGUMENT_CHECKS, in_user_terms
from cli.main import main as modelseal_main
from ledger import ActorKey, Ledger, LogKey
from ledger import errors as ledger_errors
from ledger import _store as store_mod
from ledger.errors import (
    EncryptedKeyError,
    InsecureKeyFileError,
    StoreFullError,
    StoreLimitError,
    WrongPassphraseError,
)
from tests.cli_support import (
    MODEL,
    ORIGIN,
    REPO,
    Store,
    cli,
    init_store,
    ok,
    real,
    refused,
    refused_json,
)
from verifier import cli as verify_cli
from verifier import errors as verifier_errors
from verifier.exitcodes import EXIT_INTERNAL, INTERNAL, TABLE as VERIFIER_TABLE, lookup

NON_ASCII = "modèle_é"


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def model(tmp_path: Path) -> Store:
    """A store with model m1 registered and one event recorded."""
    st = init_store(tmp_path)
    ok(st.run("register", "m1", *MODEL))
    ok(st.run("record", "m1", "--event", "retrained", "--payload", '{"auc": 0.94}'))
    return st


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, str, Path]:
    """(a valid bundle with a non-ASCII model name and 60 more models, its log vkey, the
    same bundle with one byte of an entry changed)."""
    st = init_store(tmp_path, "big")
    with Ledger.open(st.dir, log_key=LogKey.load(st.log_key),
                     signer=ActorKey.load(st.admin_key)) as led, led.batch():
        led.register(name=NON_ASCII, owner="équipe", model_type="ml_model", tier="high",
                     purpose="détection")
        for i in range(60):
            led.register(name=f"model_{i:03}", owner="risk-team", model_type="ml_model",
                         tier="low", purpose="p")
    out = tmp_path / "bundle.json"
    ok(st.run("export", "-o", out))
    data = bytearray(out.read_bytes())
    spot = data.index(b'"entries":["') + 12 + 300
    data[spot] = ord("A") if data[spot] != ord("A") else ord("B")
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(bytes(data))
    return out, st.log_vkey, tampered


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSEAL_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _verify_cmd(*args: Any) -> list[str]:
    return [sys.executable, "-c", "from verifier.startup import run_verifier; run_verifier()", *map(str, args)]


def _modelseal_cmd(*args: Any) -> list[str]:
    return [sys.executable, "-c", "from cli.main import main; main()", *map(str, args)]


def _into_closed_pipe(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd`` with stdout a pipe whose reader is already gone (``| head -0``, made
    deterministic): every write to stdout fails with EPIPE."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(cmd, stdout=w, stderr=subprocess.PIPE, cwd=REPO, env=env,
                              timeout=120, check=False)
    finally:
        os.close(w)


# -- point 8: output never crashes -------------------------------------------------------

def test_point8_closed_pipe_valid_bundle_exit0(bundle: tuple[Path, str, Path]) -> None:
    """modelseal-verify into a closed pipe: a valid bundle still exits 0, quietly; a tampered
    one exits 1 (its own result), text or JSON; never a traceback or 'Exception ignored'."""
    good, vkey, tampered = bundle
    for extra in ([], ["--json"]):
        proc = _into_closed_pipe(_verify_cmd(good, "--key", vkey, *extra), _env())
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == b"", proc.stderr
        proc = _into_closed_pipe(_verify_cmd(tampered, "--key", vkey, *extra), _env())
        assert proc.returncode == 1, proc.stderr
        assert b"Traceback" not in proc.stderr and b"Exception ignored" not in proc.stderr


def test_point8_closed_pipe_modelseal_exit0(model: Store) -> None:
    """modelseal reads and writes into a closed pipe end quietly with exit 0 (the write
    was done: the entry is there)."""
    env = _env(**model.env)
    for args in (["inventory"], ["history", "m1", "--json"], ["checkpoint"]):
        proc = _into_closed_pipe(_modelseal_cmd(*args), env)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stderr == b"", (args, proc.stderr)
    before = len(ok(model.run("history", "m1", "--json")).json())
    proc = _into_closed_pipe(_modelseal_cmd("record", "m1", "--event", "deployed"), env)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert len(ok(model.run("history", "m1", "--json")).json()) == before + 1


def test_point8_ascii_stdout_non_ascii_names(bundle: tuple[Path, str, Path],
                                              tmp_path: Path) -> None:
    """With an ASCII-only stdout and stderr, non-ASCII names in OK summaries and FAIL lines
    come out escaped, not as a UnicodeEncodeError."""
    good, vkey, _ = bundle
    env = _env(PYTHONIOENCODING="ascii")
    proc = subprocess.run(_verify_cmd(good, "--key", vkey), capture_output=True, cwd=REPO,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(b"OK: ")
    assert b"mod\\xe8le_\\xe9" in proc.stdout and b"\\xe9quipe" in proc.stdout
    missing = tmp_path / "pr\u00fcfung.txt"
    proc = subprocess.run(_verify_cmd(good, "--key", vkey, "--trusted", missing),
                          capture_output=True, cwd=REPO, env=env, timeout=120, check=False)
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout.startswith(b"FAIL: cannot read ") and b"pr\\xfcfung" in proc.stdout
    assert b"Traceback" not in proc.stderr


def test_point8_ascii_stdout_modelseal(model: Store) -> None:
    """modelseal under PYTHONIOENCODING=ascii with a non-ASCII name: no crash on stdout (a
    table) or on stderr (an error naming it)."""
    env = {**model.env, "PYTHONIOENCODING": "ascii"}
    ok(model.run("register", NON_ASCII, *MODEL))
    run = real("inventory", env=env)
    assert run.code == 0, str(run)
    assert "mod" in run.out and "Traceback" not in run.err
    run = real("record", "inconnu_\u00e9", "--event", "e", env=env)
    assert run.code == 1 and run.err.startswith("error: unknown model"), str(run)


# -- point 8: deep JSON ---------------------------------------------------------------------

@pytest.mark.parametrize("depth", [40, 100_000])
def test_point8_deep_json_payload_and_metadata(model: Store, tmp_path: Path,
                                               depth: int) -> None:
    """JSON nested past the log's 32 levels, or past Python's recursion limit, is a clear
    usage error (exit 2) for --payload, --payload-file, stdin and --metadata; nothing is
    written."""
    deep = '{"a":' * depth + "1" + "}" * depth
    state = model.state()
    want = "nested deeper than 32" if depth == 40 else "nested too deeply"
    refused(model.run("record", "m1", "--event", "e", "--payload", deep), 2, want)
    path = tmp_path / "deep.json"
    path.write_text(deep)
    refused(model.run("record", "m1", "--event", "e", "--payload-file", path), 2, want)
    refused(model.run("record", "m1", "--event", "e", "--payload", "-", input=deep), 2, want)
    refused(model.run("register", "m2", *MODEL, "--metadata", deep), 2, want)
    refused(model.run("update", "m1", "--metadata", deep), 2, want)
    assert model.state() == state


# -- point 8: init on a full disk, and a foreign LMDB directory -----------------------------

class _FullDiskTxn:
    """A write transaction whose commit fails as LMDB's does on a full disk."""

    def __init__(self, txn: Any) -> None:
        self._txn = txn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._txn, name)

    def commit(self) -> None:
        self._txn.abort()
        raise lmdb.Error("mdb_txn_commit: No space left on device")

    def __enter__(self) -> _FullDiskTxn:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.commit()
        else:
            self._txn.abort()


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store write fails at its commit as LMDB fails on a full disk (through the
    real translation), including the one that creates a store."""
    begin = store_mod.Store.begin

    def full_begin(self: store_mod.Store, *, write: bool = False) -> Any:
        txn = begin(self, write=write)
        return _FullDiskTxn(txn) if write else txn

    def full_create(env: Any, target: Path, origin: str) -> Any:
        raise store_mod._store_error(lmdb.Error("mdb_txn_commit: No space left on device"),
                                     target)

    monkeypatch.setattr(store_mod.Store, "begin", full_begin)
    monkeypatch.setattr(store_mod, "_create_tables", full_create)


def test_point8_init_full_disk_cleans_up_and_retry_works(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """init on a full disk: exit 4 with a clear message and hint, and nothing it made is
    left (no store files, no key files, no directories it created); what was there before
    stays. A retry with space again succeeds."""
    _full_disk(monkeypatch)
    target = tmp_path / "new" / "inv"
    refused(cli("init", target, "--origin", ORIGIN), 4, "disk full", hint="free space")
    assert not (tmp_path / "new").exists()
    # a directory that existed (with someone's file) keeps that file and itself
    given = tmp_path / "given"
    given.mkdir()
    (given / "README").write_text("mine")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "other.key").write_text("not ours")
    refused(cli("init", given, "--origin", ORIGIN, "--keys-dir", keys), 4, "disk full")
    assert sorted(p.name for p in given.iterdir()) == ["README"]
    assert sorted(p.name for p in keys.iterdir()) == ["other.key"]
    monkeypatch.undo()
    st = init_store(tmp_path / "new", "inv")
    ok(cli("audit", env=st.env))
    ok(cli("init", given, "--origin", ORIGIN, "--keys-dir", keys))


def test_point8_init_on_a_real_full_disk(tmp_path: Path) -> None:
    """The same on a real full disk: a small tmpfs (root only), filled up."""
    from tests.reliability.space import unmount

    disk = tmp_path / "disk"
    disk.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux; the in-process test covers this")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace')}")
    try:
        fs = os.statvfs(disk)
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (fs.f_bavail * fs.f_frsize - (24 << 10)))
        run = real("init", disk / "inv", "--origin", ORIGIN)
        assert run.code == 4, str(run)
        assert "disk full" in run.err or "No space left" in run.err, str(run)
        assert "hint: " in run.err
        assert sorted(p.name for p in disk.iterdir()) == ["filler"], list(disk.iterdir())
        filler.unlink()
        run = real("init", disk / "inv", "--origin", ORIGIN)
        assert run.code == 0, str(run)
    finally:
        unmount(disk)


def test_point8_foreign_lmdb_directory(tmp_path: Path) -> None:
    """Another program's LMDB environment given as the store: 'not a modelseal store'
    (exit 4), and it is left exactly as it was (no table of ours created in it)."""
    foreign = tmp_path / "foreign"
    env = lmdb.open(str(foreign), subdir=True, max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
    env.close()
    for args in (["inventory"], ["audit"], ["history", "m1"], ["checkpoint"]):
        refused(cli("--store", foreign, *args), 4, "not a modelseal store")
    env = lmdb.open(str(foreign), subdir=True, max_dbs=4, readonly=True)
    with env.begin() as txn:
        assert [bytes(k) for k, _ in txn.cursor()] == [b"hello"]
    env.close()
    refused(cli("init", foreign, "--origin", ORIGIN), 2, "already holds")


# -- point 8: empty payloads ---------------------------------------------------------------

def test_point8_empty_payload_refused(model: Store, tmp_path: Path) -> None:
    """An empty payload (stdin, a file, or --payload '') is refused with exit 2 and writes
    nothing; --payload '{}' and no payload at all are still fine."""
    state = model.state()
    refused(model.run("record", "m1", "--event", "retrained", "--payload", "-", input=""), 2,
            "empty", hint="leave out --payload")
    refused(model.run("record", "m1", "--event", "retrained", "--payload", "-",
                      input=" \n\t"), 2, "empty")
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    refused(model.run("record", "m1", "--event", "retrained", "--payload-file", empty), 2,
            "empty")
    refused(model.run("record", "m1", "--event", "retrained", "--payload", ""), 2, "empty")
    assert model.state() == state
    ok(model.run("record", "m1", "--event", "retrained", "--payload", "{}"))
    ok(model.run("record", "m1", "--event", "retrained"))


def test_point8_failed_producer_pipeline(model: Store) -> None:
    """The docs' `train.py | modelseal record ... --payload -` when train.py fails: a real
    shell pipeline exits non-zero and records nothing."""
    state = model.state()
    cmd = " ".join(shlex.quote(a) for a in _modelseal_cmd("record", "m1", "--event",
                                                          "retrained", "--payload", "-"))
    proc = subprocess.run(["sh", "-c", f"false | {cmd}"], capture_output=True, cwd=REPO,
                          env=_env(**model.env), timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(b"error: the payload from standard input is empty")
    assert model.state() == state


# -- point 8: snapshot prefixes ------------------------------------------------------------

def test_point8_snapshot_prefix(model: Store) -> None:
    """A unique prefix of 8+ hex digits (as tables print 12) names a snapshot for tag, show
    and prove inclusion; shorter or non-hex ones are refused in the user's terms."""
    hist = ok(model.run("history", "m1", "--json")).json()
    first = hist[0]["snapshot_hash"]
    run = ok(model.run("tag", "m1", "production", "--snapshot", first[:12], "--json"))
    assert run.json()["target"] == first
    assert ok(model.run("tags", "m1", "--json")).json()["production"]["target"] == first
    shown = ok(model.run("show", first[:8].upper(), "--json")).json()
    assert shown["snapshot"] == first
    assert ok(model.run("prove", "inclusion", first[:10])).out.startswith(
        "c2sp.org/tlog-proof@v1\n")
    refused(model.run("show", "abcdef7"), 2, "at least 8")  # (7 decimal digits: an index)
    refused(model.run("tag", "m1", "production", "--snapshot", first[:7]), 2, "at least 8")
    refused(model.run("tag", "m1", "production", "--snapshot", "zz"), 2,
            "64 hex digits", "unique prefix of at least 8")
    refused(model.run("tag", "m1", "production", "--snapshot", "fe" * 33), 2, "64 hex digits")
    refused(model.run("show", "fffffffff"), 2, "no entry")


def test_point8_ambiguous_snapshot_prefix(model: Store) -> None:
    """A prefix that begins two snapshot hashes is refused as ambiguous (exit 2)."""
    env = lmdb.open(str(model.dir), max_dbs=16, subdir=True)
    try:
        with env.begin(write=True) as txn:
            db = env.open_db(b"snapshots", txn=txn, create=False)
            for tail in ("00", "11"):
                txn.put(bytes.fromhex("abcdef01" + tail * 28), (1).to_bytes(8, "big"), db=db)
    finally:
        env.close()
    refused(model.run("show", "abcdef01"), 2, "ambiguous", "more hex digits")
    refused(model.run("show", "abcdef0"), 2, "at least 8")
    assert ok(model.run("show", "abcdef011", "--json")).json()["index"] == 1


def test_point8_schema_messages_in_user_terms() -> None:
    """msgspec's schema messages become the command line's terms."""
    assert in_user_terms("invalid tag statement: Expected `str` matching regex "
                         "'^[0-9a-f]{64}\\\\Z' - at `$.target`") == (
        "the snapshot must be 64 hex digits (or a unique prefix of at least 8, as tables "
        "print them)")
    assert in_user_terms("invalid event statement: Expected `str` of length >= 1 - at "
                         "`$.event_type`") == "--event must not be empty"
    assert in_user_terms("invalid register statement: Expected `str` of length <= 200 - "
                         "at `$.owner`") == "--owner is too long: at most 200 characters"
    assert in_user_terms("something else") == "something else"


# -- point 8: key file paths, export -o, JSON errors -----------------------------------------

def test_point8_directory_as_key_file(model: Store) -> None:
    """A directory given as a key file says so and names a key file in it; no chmod hint."""
    keys_dir = model.admin_key.parent
    run = refused(model.run("record", "m1", "--event", "e",
                            env={"MODELSEAL_KEY": str(keys_dir)}), 4, "is a directory",
                  hint="risk-admin.key")
    assert "chmod" not in run.err
    run = refused(model.run("record", "m1", "--event", "e",
                            env={"MODELSEAL_LOG_KEY": str(keys_dir)}), 4, "is a directory",
                  hint="log.key")
    assert "chmod" not in run.err
    fifo = keys_dir / "pipe.key"
    os.mkfifo(fifo)
    run = refused(model.run("record", "m1", "--event", "e", env={"MODELSEAL_KEY": str(fifo)}),
                  4, "not a regular file", hint="key file itself")
    assert "chmod" not in run.err


def test_point8_export_refuses_to_overwrite(model: Store, tmp_path: Path) -> None:
    """export -o never replaces an existing file without --force."""
    out = tmp_path / "b.json"
    out.write_bytes(b"precious")
    refused(model.run("export", "-o", out), 2, "exists", hint="--force")
    assert out.read_bytes() == b"precious"
    ok(model.run("export", "-o", out, "--force"))
    assert out.read_bytes().startswith(b"{")
    assert verify_cli.main([str(out), "--key", model.log_vkey]) == 0


def test_point8_json_errors_modelseal(model: Store, tmp_path: Path) -> None:
    """With --json every modelseal error is one JSON object on stderr, nothing on stdout."""
    err = refused_json(model.run("record", "nope", "--event", "e", "--json"), 1,
                       "unknown model", cls="RuleError")
    assert err["hint"]
    refused_json(cli("inventory", "--json"), 2, "no store given", cls="UsageProblem")
    refused_json(cli("--store", tmp_path / "none", "inventory", "--json"), 4,
                 "no modelseal store", cls="StoreError")
    refused_json(model.run("prove", "consistency", "--old", "99", "--json"), 2)
    refused_json(model.run("show", "abc", "--json"), 2, "not a snapshot hash")


def test_point8_json_errors_modelseal_verify(bundle: tuple[Path, str, Path],
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """modelseal-verify --json: the result document on stdout as before, and the same JSON
    error object as modelseal on stderr, for every failure."""
    good, vkey, tampered = bundle
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"[1, 2")
    cases = [
        ([str(tampered), "--key", vkey], 1, "verification_failed"),
        ([str(garbage), "--key", vkey], 3, "malformed_input"),
        ([str(tmp_path / "none.json"), "--key", vkey], 4, "io_error"),
        ([str(good), "--key", "nonsense"], 2, "usage"),
    ]
    for args, code, kind in cases:
        assert verify_cli.main([*args, "--json"]) == code
        out, err = capsys.readouterr()
        doc = json.loads(out)
        assert doc["ok"] is False and doc["error"] == kind
        obj = json.loads(err)["error"]
        assert set(obj) == {"class", "message", "hint", "exit_code"}
        assert obj["exit_code"] == code and obj["message"] == doc["reason"]
    # argparse's own usage errors too, under --json
    with pytest.raises(SystemExit) as info:
        verify_cli.main([str(good), "--json"])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and json.loads(err)["error"]["exit_code"] == 2
    assert "--key" in json.loads(err)["error"]["message"]


# -- point 9: one table, typed errors, internal errors -------------------------------------

def test_point9_one_table() -> None:
    """modelseal's table is the writer's rows in front of the verifier's, read by one
    lookup function; every class lands on its code and hint."""
    assert TABLE[-len(VERIFIER_TABLE):] == VERIFIER_TABLE
    cases: list[tuple[BaseException, int, str | None]] = [
        (StoreFullError("disk full"), 4, "free space"),
        (StoreLimitError("limit"), 4, "limits"),
        (ledger_errors.StoreError("x"), 4, "--store"),
        (EncryptedKeyError("x"), 2, "MODELSEAL_KEY_PASSPHRASE"),
        (WrongPassphraseError("x"), 4, "MODELSEAL_KEY_PASSPHRASE"),
        (InsecureKeyFileError("x"), 4, "chmod 600"),
        (ledger_errors.KeyFileError("x"), 4, "key file"),
        (ledger_errors.AuditError("what", "where"), 1, "evidence"),
        (verifier.RuleError("x"), 1, "nothing was written"),
        (verifier.RootMismatchError("x", expected=b"a", calculated=b"b"), 1, None),
        (verifier.MalformedInputError("x"), 3, "expected format"),
        (FileNotFoundError(2, "No such file"), 4, None),
        (RuntimeError("bug"), EXIT_INTERNAL, "report"),
        (ValueError("bug"), EXIT_INTERNAL, "report"),
    ]
    for exc, code, hint in cases:
        row = lookup(exc, TABLE)
        assert row.code == code, exc
        assert (row.hint is None) if hint is None else (hint in (row.hint or "")), (exc, row)
    assert lookup(RuntimeError("x")) is INTERNAL
    assert lookup(verifier.ChainError("x")).code == 1


def test_point9_no_exit_code_attributes() -> None:
    """The table is the one place exit codes live: no error class carries its own."""
    for module in (verifier_errors, ledger_errors):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Exception):
                assert "exit_code" not in vars(value), value


def test_point9_argument_checks_exist() -> None:
    """Every function whose ValueError/TypeError the CLI treats as a usage problem exists
    and raises one on purpose (so a rename cannot silently turn refusals into exit 70)."""
    for path, func in sorted(_ARGUMENT_CHECKS):
        tree = ast.parse((REPO / path).read_text())
        found = [node for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and node.name == func]
        assert found, f"{path}: no function {func}"
        raises = [n for f in found for n in ast.walk(f) if isinstance(n, ast.Raise)
                  and isinstance(n.exc, ast.Call) and isinstance(n.exc.func, ast.Name)
                  and n.exc.func.id in ("ValueError", "TypeError", "ArgumentError")]
        assert raises, f"{path}: {func} raises no ValueError/TypeError"


def test_point9_store_errors_are_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk is StoreFullError and the map limit StoreLimitError (no message
    matching in the CLI); the CLI gives each its hint and exit 4, writing nothing."""
    full = store_mod._store_error(lmdb.Error("mdb_txn_commit: No space left on device"))
    assert type(full) is StoreFullError
    big = store_mod._store_error(lmdb.Error("mdb_txn_commit: File too large"))
    assert type(big) is StoreFullError
    assert type(store_mod._store_error(lmdb.Error("mdb_get: MDB_CORRUPTED"))) is \
        ledger_errors.StoreError
    st = init_store(tmp_path)
    assert type(store_mod._store_error(lmdb.MapFullError("mdb_put: MDB_MAP_FULL"))) is \
        StoreLimitError
    state = st.state()
    _full_disk(monkeypatch)
    refused(st.run("register", "m1", *MODEL), 4, "disk full", hint="store is intact")
    monkeypatch.undo()

    def map_full(self: store_mod.Store, *, write: bool = False) -> Any:
        if write:
            raise store_mod._store_error(lmdb.MapFullError("mdb_put: MDB_MAP_FULL"), self.path)
        return begin(self, write=write)

    begin = store_mod.Store.begin
    monkeypatch.setattr(store_mod.Store, "begin", map_full)
    refused(st.run("register", "m1", *MODEL), 4, "maximum", hint="limits")
    monkeypatch.undo()
    assert st.state() == state


@pytest.fixture
def key_error(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Make key loading raise ledger's typed key errors (as ledger/keys.py does)."""
    plan: dict[str, Any] = {"raise": None}
    real_load = ActorKey.load.__func__  # type: ignore[attr-defined]

    def load(cls: type[ActorKey], path: Any, passphrase: Any = None, *,
             allow_insecure: bool = False) -> ActorKey:
        exc = plan["raise"]
        if exc is EncryptedKeyError and passphrase == "pw":
            return real_load(cls, path, None, allow_insecure=allow_insecure)  # type: ignore[no-any-return]
        if exc is not None:
            raise exc(f"{path}: simulated")
        return real_load(cls, path, passphrase, allow_insecure=allow_insecure)  # type: ignore[no-any-return]

    monkeypatch.setattr(ActorKey, "load", classmethod(load))
    yield plan


def test_point9_key_errors_are_typed(model: Store, key_error: dict[str, Any]) -> None:
    """The CLI reacts to the key classes, not to message text: an encrypted key asks for a
    passphrase (from the environment; exit 2 with a hint when there is none and no
    terminal), a wrong passphrase and an insecure file exit 4 with their hints."""
    key_error["raise"] = EncryptedKeyError
    refused(model.run("record", "m1", "--event", "e"), 2, "is encrypted",
            hint="MODELSEAL_KEY_PASSPHRASE")
    ok(model.run("record", "m1", "--event", "e", env={"MODELSEAL_KEY_PASSPHRASE": "pw"}))
    key_error["raise"] = WrongPassphraseError
    refused(model.run("record", "m1", "--event", "e"), 4, "simulated",
            hint="MODELSEAL_KEY_PASSPHRASE")
    key_error["raise"] = InsecureKeyFileError
    refused(model.run("record", "m1", "--event", "e"), 4, "simulated", hint="chmod 600")


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise ValueError("boom")


def test_point9_unexpected_exception_is_internal_error(model: Store,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """A ValueError/TypeError (or any exception) the code did not mean to raise is an
    internal error, exit 70, not a usage error; no traceback unless MODELSEAL_DEBUG=1."""
    monkeypatch.setattr(Ledger, "inventory_at", _boom)
    run = refused(model.run("inventory"), EXIT_INTERNAL,
                  "internal error (a bug): ValueError: boom; please report it")
    assert "MODELSEAL_DEBUG" in run.err
    refused_json(model.run("inventory", "--json"), EXIT_INTERNAL, "internal error",
                 cls="ValueError")
    monkeypatch.setattr("cli.cmd_read.table", lambda *a: (_ for _ in ()).throw(TypeError("t")))
    refused(model.run("history", "m1"), EXIT_INTERNAL, "TypeError: t")
    result = CliRunner().invoke(modelseal_main, ["inventory"],
                                env={**model.env, "MODELSEAL_DEBUG": "1"})
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback" in result.stderr and "ValueError: boom" in result.stderr


def test_point9_verifier_internal_error(bundle: tuple[Path, str, Path],
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """modelseal-verify: a bug is exit 70 with one line on stderr, never 'FAIL:' (which
    would blame the bundle) and never a traceback."""
    good, vkey, _ = bundle

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("oops")

    monkeypatch.setattr(verify_cli, "verify_bundle_file", broken)
    assert verify_cli.main([str(good), "--key", vkey]) == EXIT_INTERNAL
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: internal error (a bug): KeyError: 'oops'")
    assert "Traceback" not in err
    assert verify_cli.main([str(good), "--key", vkey, "--json"]) == EXIT_INTERNAL
    out, err = capsys.readouterr()
    assert json.loads(out)["error"] == "internal_error"
    assert json.loads(err)["error"]["exit_code"] == EXIT_INTERNAL
    monkeypatch.setenv("MODELSEAL_DEBUG", "1")
    assert verify_cli.main([str(good), "--key", vkey]) == EXIT_INTERNAL
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" in err and "KeyError: 'oops'" in err


def test_point9_deliberate_refusals_stay_usage(model: Store) -> None:
    """ValueErrors the ledger raises on purpose for a bad argument are still exit 2."""
    refused(model.run("prove", "consistency", "--old", "9"), 2, "old size")
    refused(model.run("prove", "inclusion", "1", "--size", "50"), 2, "size")
    refused(cli("keygen", "bad name", "-o", model.dir.parent / "b.key"), 2, "key name")
    refused(model.run("record", "m1", "--event", "e", "--payload",
                      json.dumps({"a": "x" * 70_000})), 2, "65535")


# -- point 10: the README's test command on a bare machine -----------------------------------

@pytest.mark.parametrize(("require", "outcome"), [("", "skipped"), ("1", "failed")])
def test_point10_browser_test_skips_unless_required(tmp_path: Path, require: str,
                                                    outcome: str) -> None:
    """Without Chromium the browser tests skip with their reason; with
    MODELSEAL_REQUIRE_BROWSER=1 (set by .ci/run) they fail instead."""
    bin_dir = tmp_path / "bin"  # a PATH with python but no chromium
    bin_dir.mkdir()
    env = _env(PATH=str(bin_dir), MODELSEAL_REQUIRE_BROWSER=require,
               MODELSEAL_CHROMIUM=str(tmp_path / "no-chromium-here"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p",
                           "no:cacheprovider", "tests/test_report_browser.py",
                           "-k", "dom_has_inventory"],
                          capture_output=True, cwd=REPO, env=env, timeout=300, check=False)
    text = proc.stdout.decode(errors="replace")
    if outcome == "skipped":
        assert proc.returncode == 0 and "SKIPPED [1]" in text, text[-3000:]
    else:
        assert proc.returncode == 1 and "MODELSEAL_REQUIRE_BROWSER=1" in text, text[-3000:]
    assert "headless Chromium is needed" in text, text[-3000:]


def test_point10_ci_requires_browser_and_node() -> None:
    """.ci/run exports the variables that turn the missing-tool skips into failures."""
    text = (REPO / ".ci" / "run").read_text()
    assert "MODELSEAL_REQUIRE_BROWSER=1" in text and "MODELSEAL_REQUIRE_NODE=1" in text
    assert "MODELSEAL_REQUIRE_WRK=1" in text
    assert text.index("export MODELSEAL_REQUIRE_BROWSER=1") < text.index('eval "$test_cmd"')
