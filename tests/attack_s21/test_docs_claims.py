"""What the docs (and --help) tell a new user, against what the commands do."""
from __future__ import annotations

import json
from pathlib import Path

import verifier as v
from ledger import Ledger, LogKey
from tests.attack_s21.common import WRITER, Done, proc
from tests.cli_support import MODEL, Store, init_store, ok
from tests.client_support import RealServer
from tests.test_cosignature import Witness


def _no_traceback(done: Done) -> None:
    assert "Traceback" not in done.out + done.err, str(done)


# FINDING (low): a pipeline's writer key reading through the server (docs/pipelines.md: a
# reader needs a second key with the reader role) is refused with exit 1 and the hint of a
# refused *write*: "only granted, unrevoked writer and admin keys may write ... an admin
# grants with: modelseal grant <vkey> --role writer" (cli/errors.py, AuthorizationError's
# row also catches httpsig's ForbiddenRoleError). A new user is told to grant a writer role
# to a key that already is a writer; the hint should name the reader (or admin) role.
def test_a_read_refused_for_its_role_hints_at_the_reader_role(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    writer = store.writer("ml-pipeline")
    ledger = Ledger.open(store.dir, log_key=LogKey.load(store.log_key))
    try:
        with RealServer(ledger) as server:
            done = proc([*WRITER, "inventory"], timeout=60, extra_env={
                "MODELSEAL_SERVER": server.url, "MODELSEAL_LOG_VKEY": store.log_vkey,
                "MODELSEAL_KEY": str(writer),
                "MODELSEAL_CLIENT_STATE": str(tmp_path / "state.json")})
    finally:
        ledger.close()
    _no_traceback(done)
    assert done.code == 1, str(done)
    assert "may not read" in done.err, str(done)
    hints = [line for line in done.err.splitlines() if line.startswith("hint: ")]
    assert hints, str(done)
    assert "reader" in hints[0] and "--role writer" not in hints[0], str(done)


def _cosign_latest(store: Store, witness: Witness) -> bytes:
    """Store a witness's cosignature of the store's latest checkpoint; return the note."""
    ledger = Ledger.open(store.dir, log_key=LogKey.load(store.log_key))
    try:
        note = ledger.checkpoint()
        cp = v.Checkpoint.parse_note(note, [v.VerifierKey.parse(ledger.log_vkey)])
        assert cp.time is not None
        text = v.parse_note(note).text
        added = ledger.add_cosignatures(note + witness.line(text, cp.time // 10**9 + 5),
                                        [witness.key])
        assert len(added) == 1
        cosigned = ledger.cosigned()
        assert cosigned is not None
        return cosigned
    finally:
        ledger.close()


# FINDING (low): `modelseal export --help` says of --at "[default: the last entry]; the first
# checkpoint witnesses cosigned after it is used where the store holds one", and README
# says `checkpoint` shows "the latest cosigned one where witnesses cosigned"; but without
# --at, export writes the latest checkpoint *without* the cosignatures the store holds for
# that very tree (Ledger.iter_bundle looks for a cosigned one only when `at` is given). The
# examiner's `modelseal-verify --witness ...` (docs/examiners.md) then fails
# (WitnessError, "cosigned: none") although the witnesses did cosign it.
def test_export_without_at_carries_the_cosignatures_the_store_holds(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    ok(store.run("register", "fraud_scoring", *MODEL))
    w1 = Witness("witness.example.com/w1")
    cosigned = _cosign_latest(store, w1)
    shown = proc([*WRITER, "checkpoint"], extra_env=store.env)
    assert shown.code == 0 and shown.out.encode() == cosigned, str(shown)  # what README says
    out = tmp_path / "bundle.json"
    done = proc([*WRITER, "export", "-o", str(out)], extra_env=store.env)
    _no_traceback(done)
    assert done.code == 0, str(done)
    checkpoint = json.loads(out.read_bytes())["checkpoint"].encode()
    assert checkpoint == cosigned, (checkpoint, cosigned)


# FINDING (low): docs/quickstart.md: `--csv` gives "exact values, nothing cut". With a
# standard output that is not UTF-8 (PYTHONIOENCODING=latin-1, a non-UTF-8 locale), names
# outside it are written as `\u03bc` escapes, so the models `μ` and `\u03bc` (a legal,
# printable-ASCII name) get the same cell: the CSV no longer tells them apart. (The text
# tables escape the same way, which the docs allow for the terminal; a CSV is data.)
def test_csv_cells_stay_exact_whatever_the_output_encoding(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    for name in ("μ", "\\u03bc"):
        ok(store.run("register", name, *MODEL))
    done = proc([*WRITER, "inventory", "--csv"],
                extra_env={**store.env, "PYTHONIOENCODING": "latin-1"})
    _no_traceback(done)
    assert done.code == 0, str(done)
    rows = [line.split(",")[0] for line in done.out.splitlines()[1:] if line]
    assert len(rows) == 2, str(done)
    assert rows[0] != rows[1], f"two models, one CSV cell: {rows}"


# FINDING (low): docs/quickstart.md (and `modelseal --help`): exit 3 is malformed input and
# 4 an I/O error. `policy set FILE` gives 2 (usage) both for a file that is not TOML/JSON
# and for one that cannot be read, where `findings --profile` gives 3 and 4 for the same
# faults; a script cannot tell a bad policy file from a mistyped option.
def test_policy_file_faults_have_the_documented_exit_codes(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    bad = tmp_path / "policy.toml"
    bad.write_text('[events.validated\nrequired = ["result"]\n')
    malformed = proc([*WRITER, "policy", "set", str(bad)], extra_env=store.env)
    missing = proc([*WRITER, "policy", "set", str(tmp_path / "missing.toml")],
                   extra_env=store.env)
    for done in (malformed, missing):
        _no_traceback(done)
        assert done.err.startswith("error: "), str(done)
    assert (malformed.code, missing.code) == (3, 4), f"{malformed}\n{missing}"


# FINDING (low): docs/examiners.md lists exit 5 ("verification could not be completed: a
# signature check worker process died: run it again") and README 130 (Ctrl-C), and the
# verifier has both (verifier/exitcodes.py); `modelseal-verify --help`, what an examiner
# reads first, lists 0, 1, 2, 3, 4, 6 and 70 only: a 5 in a script's log is unexplained.
def test_verify_help_lists_every_exit_code_it_uses() -> None:
    from tests.attack_s21.common import VERIFY

    done = proc([*VERIFY, "--help"], timeout=60)
    assert done.code == 0, str(done)
    text = " ".join(done.out.split())
    for code in ("0 verified", "1 verification failed", "4 I/O error", "6 findings",
                 "70 internal error"):
        assert code in text, (code, text)  # the control: these are listed
    assert "5 " in text.split("Exit codes:")[1], text


# FINDING (low): docs/pipelines.md's CI recipe writes the key file from a secret with
# `printf '%s\n' "${{ secrets.ML_PIPELINE_KEY }}"`. A secret saved with the file's own final
# newline (as `cat ml-pipeline.key` copies it) gives a file ending in a blank line, and a
# secret pasted from a Windows editor has CRLF line ends; modelseal refuses both, as
# "damaged: its key block cannot be read" / "not a modelseal actor key file", with a hint
# about path, mode and passphrase that does not point at the cause (ledger/keys.py reads
# the text byte-exact). Whitespace outside the key block carries nothing to check.
def test_a_key_file_from_a_ci_secret_with_a_trailing_blank_line_loads(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    ok(store.run("register", "fraud_scoring", *MODEL))
    key = store.writer("ml-pipeline")
    copied = tmp_path / "from-secret.key"
    copied.write_bytes(key.read_bytes() + b"\n")  # printf '%s\n' of a text ending in \n
    copied.chmod(0o600)
    done = proc([*WRITER, "record", "fraud_scoring", "--event", "retrained"],
                extra_env={**store.env, "MODELSEAL_KEY": str(copied)})
    _no_traceback(done)
    assert done.code == 0, str(done)


# FINDING (low): docs/deploy.md: "`--recheck` compares every file already present, not only
# those the new checkpoint adds", and a file "with other bytes than the log's (...
# tampering) stops the run with exit code 1". Partial tiles of earlier checkpoints are kept
# on purpose (ledger/_publish.py: "a client holding an older checkpoint may still fetch
# them"), yet --recheck walks only the files of the new checkpoint: a tampered
# `tile/0/000.p/<old size>` is never compared, the run says "0 present files checked" and
# exits 0, and the altered tile stays published for those older clients.
def test_publish_recheck_compares_kept_partial_tiles_too(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    www = tmp_path / "www"
    ok(store.run("register", "fraud_scoring", *MODEL))
    first = proc([*WRITER, "publish", str(www), "--store", str(store.dir)])
    assert first.code == 0, str(first)
    old = sorted((www / "tile" / "0").glob("000.p/*"))
    assert len(old) == 1, old
    ok(store.run("register", "churn_model", *MODEL))
    second = proc([*WRITER, "publish", str(www), "--store", str(store.dir)])
    assert second.code == 0, str(second)
    tile = bytearray(old[0].read_bytes())
    tile[3] ^= 0x01
    old[0].write_bytes(bytes(tile))
    done = proc([*WRITER, "publish", str(www), "--store", str(store.dir), "--recheck"])
    _no_traceback(done)
    assert done.code == 1, str(done)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# FINDING (low): docs/pipelines.md: the client goes through the proxy HTTPS_PROXY/HTTP_PROXY
# name. When that proxy cannot be reached, the error names only the server: "cannot reach
# https://models-log.example.com (connection refused) after 6 attempt(s)", hint "check
# --server (MODELSEAL_SERVER) and that the server runs" (ledger/client/_http.py). The
# server is fine; the proxy (set by the CI image, unseen by the user) is what refused, and
# nothing in the output says a proxy was used at all.
def test_an_unreachable_proxy_is_named_in_the_error(tmp_path: Path) -> None:
    store = init_store(tmp_path)
    proxy = f"http://127.0.0.1:{_closed_port()}"
    done = proc([*WRITER, "--timeout", "10", "checkpoint"], timeout=60, extra_env={
        "MODELSEAL_SERVER": "http://models-log.example.com", "MODELSEAL_LOG_VKEY":
        store.log_vkey, "MODELSEAL_CLIENT_STATE": str(tmp_path / "state.json"),
        "HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": "",
        "ALL_PROXY": "", "all_proxy": ""})
    _no_traceback(done)
    assert done.code == 4, str(done)
    assert proxy.removeprefix("http://") in done.err or "proxy" in done.err, str(done)
