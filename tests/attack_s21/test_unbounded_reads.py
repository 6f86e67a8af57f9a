"""Files and streams a user hands to the commands are read whole, with no bound: a payload,
a policy, a passphrase file, a trusted checkpoint. The docs bound what each may hold (an
entry is at most 65,535 bytes, docs/concepts.md; a policy, a passphrase and a checkpoint
note are small), and "no traceback, every error typed" is the rule; yet an endless or huge
input (a runaway `train.py | modelseal record --payload -`, a FIFO, a hostile file) is read
into memory until the machine runs out, then reported as "internal error (a bug)" (exit 70)
or the process is killed. Each test caps the child's address space at 2 GiB and gives it an
8 GiB sparse file (no disk used): a bounded reader refuses it at once."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.attack_s21.common import GIB, VERIFY, WRITER, Done, proc, sparse
from tests.cli_support import MODEL, Store, init_store, registered_store

HUGE = 8 * GIB
MEMORY = 2 * GIB


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return registered_store(tmp_path)


def _refused_cleanly(done: Done, code: int) -> None:
    assert "Traceback" not in done.out + done.err, str(done)
    assert "internal error" not in done.err, str(done)
    assert done.code == code, str(done)


# FINDING (medium): `record --payload -` reads standard input whole with no bound, so a
# pipeline whose metrics step runs away (docs/pipelines.md pipes `train.py | modelseal
# record --payload -`) makes modelseal eat memory until the OS kills it, or exit 70
# "internal error (a bug)"; an entry holds at most 65,535 bytes, so it could refuse with
# exit 2 after reading that much.
def test_payload_from_endless_stdin_is_refused_not_swallowed(store: Store, tmp_path: Path
                                                             ) -> None:
    big = sparse(tmp_path / "metrics.stream", HUGE, b'{"auc": "')
    done = proc([*WRITER, "record", "fraud_scoring", "--event", "retrained", "--payload", "-"],
                extra_env=store.env, stdin=big, memory=MEMORY)
    _refused_cleanly(done, 2)


# FINDING (medium): `record --payload-file FILE` reads FILE whole with no bound: a huge or
# endless file (a FIFO, /dev/zero) ends in exit 70 "internal error (a bug)" or an OOM kill
# instead of the documented refusal (exit 2) of oversize content.
def test_payload_file_too_large_is_refused_not_swallowed(store: Store, tmp_path: Path
                                                         ) -> None:
    big = sparse(tmp_path / "metrics.json", HUGE, b'{"auc": "')
    done = proc([*WRITER, "record", "fraud_scoring", "--event", "retrained",
                 "--payload-file", str(big)], extra_env=store.env, memory=MEMORY)
    _refused_cleanly(done, 2)


# FINDING (low): `policy set FILE` (and `init --policy FILE`) read the policy file whole,
# unbounded: a huge file is exit 70 "internal error (a bug)"; profiles, by contrast, are
# refused above 1 MiB with exit 3 (malformed input).
def test_policy_file_too_large_is_refused_not_swallowed(store: Store, tmp_path: Path) -> None:
    big = sparse(tmp_path / "policy.toml", HUGE, b"[events.validated]\nrequired = [\"")
    done = proc([*WRITER, "policy", "set", str(big)], extra_env=store.env, memory=MEMORY)
    _refused_cleanly(done, 3)


# FINDING (low): MODELSEAL_KEY_PASSPHRASE_FILE (docs/deploy.md: a systemd credential) is read
# whole, unbounded: pointed at a huge file or /dev/zero, a write ends in exit 70 "internal
# error (a bug)" rather than the usage error a wrong passphrase file gets.
def test_passphrase_file_too_large_is_refused_not_swallowed(tmp_path: Path) -> None:
    s = init_store(tmp_path, env={"MODELSEAL_KEY_PASSPHRASE": "correct horse battery"})
    big = sparse(tmp_path / "passphrase", HUGE, b"correct horse battery")
    done = proc([*WRITER, "register", "fraud_scoring", *MODEL],
                extra_env={**s.env, "MODELSEAL_KEY_PASSPHRASE_FILE": str(big)}, memory=MEMORY)
    assert "Traceback" not in done.out + done.err, str(done)
    assert "internal error" not in done.err, str(done)
    assert done.code in (2, 3, 4), str(done)


# FINDING (medium): `modelseal-verify --trusted FILE` reads the checkpoint file whole,
# unbounded (verifier/cli.py `_read`); the examiner keeps checkpoints received from the
# operator (docs/examiners.md), so a hostile "checkpoint" of gigabytes (or a FIFO) makes the
# verifier eat memory, then exit 70 "an internal error of the verifier (a bug)" instead of
# 3 (malformed input). A signed note is small; the bundle itself is bounded (MAX_JSON_BUNDLE).
def test_trusted_checkpoint_too_large_is_malformed_not_swallowed(tmp_path: Path) -> None:
    from tests.attack_s20.common import bundle_files

    good, _, vkey = bundle_files(tmp_path / "b")
    big = sparse(tmp_path / "checkpoint.txt", HUGE, b"example.com/models\n")
    done = proc([*VERIFY, str(good), "--key", vkey, "--trusted", str(big), "--jobs", "1"],
                memory=MEMORY)
    _refused_cleanly(done, 3)


def test_control_the_memory_cap_leaves_normal_runs_alone(store: Store, tmp_path: Path) -> None:
    """The 2 GiB cap above is no cause of failure by itself: a normal payload file, the same
    command, the same cap, is recorded."""
    small = tmp_path / "metrics.json"
    small.write_text('{"auc": 0.94}')
    done = proc([*WRITER, "record", "fraud_scoring", "--event", "retrained",
                 "--payload-file", str(small)], extra_env=store.env, memory=MEMORY)
    assert done.code == 0, str(done)
