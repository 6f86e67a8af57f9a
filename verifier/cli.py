"""``modelseal-verify``: check a proof bundle offline with the log's public key.

Exit codes (specs/errors.md): 0 verified, 1 verification failed, 2 usage,
3 malformed input, 4 I/O error, 6 verified with findings under --fail-on-findings,
70 internal error (a bug). The code for an exception
comes from the one table in verifier/exitcodes.py.

Output never crashes: stdout and stderr replace what their encoding cannot show with
backslash escapes, and a reader that goes away (``| head -1``) ends the output quietly,
with the exit code of the verification that was already decided.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import secrets
import signal
import stat
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, NoReturn

from .bundle import VerifiedInventory
from .checkpoint import Checkpoint
from .compact_bundle import verify_bundle_file
from .cosignature import WitnessKey
from .errors import IncompleteError, MalformedInputError, VerificationError, VerifierError
from .exitcodes import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_FINDINGS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_MALFORMED,
    EXIT_OK,
    EXIT_USAGE,
    KIND,
    UsageProblem,
    lookup,
)
from .findings import Findings, evaluate
from .note import MAX_NOTE_SIZE
from .keys import VerifierKey
from .profile import Profile, ProfileError, builtin_profiles, is_profile_path, load_profile
from .report import render_report
from .sigpool import default_jobs
from .timeutil import iso

__all__ = ["EXIT_FAILED", "EXIT_FINDINGS", "EXIT_INTERNAL", "EXIT_IO", "EXIT_MALFORMED", "EXIT_OK",
           "EXIT_USAGE", "main", "run"]


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are one JSON error object on stderr under --json."""

    json_errors = False

    def _print_message(self, message: str, file: Any = None) -> None:
        """argparse's, which drops write errors: --help that cannot be written to stdout
        is exit 4 (_OutputError), not a silent 0; a failing stderr is still ignored."""
        if not message or file is None:  # the stream it was meant for is closed
            return
        if file is sys.stdout:
            _out(message.rstrip("\n"))
        else:
            try:
                file.write(message)
                flush = getattr(file, "flush", None)
                if flush is not None:
                    flush()
            except (OSError, ValueError):
                pass

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            _json_error(UsageProblem(message), EXIT_USAGE)
            raise SystemExit(EXIT_USAGE)
        if sys.stderr is None:  # closed: argparse would print the usage on stdout
            raise SystemExit(EXIT_USAGE)
        super().error(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="modelseal-verify",
        description="Verify a modelseal proof bundle offline, with only the log's public key.",
        epilog="Exit codes: 0 verified, 1 verification failed, 2 usage, 3 malformed input, "
        "4 I/O error, 5 not completed (a signature worker died), 6 findings (only with "
        "--fail-on-findings), 70 internal error (a bug).",
    )
    p.add_argument("bundle", help="the bundle file exported by the log (JSON or compact, "
                   "told by its first bytes; - reads standard input)")
    p.add_argument("--key", action="append", required=True, metavar="VKEY",
                   help="the log's verifier key, name+hex8+base64 (repeatable)")
    p.add_argument("--trusted", metavar="CHECKPOINT_FILE",
                   help="a signed checkpoint you already trust; the bundle must extend it")
    p.add_argument("--witness", action="append", default=[], metavar="VKEY",
                   help="a witness's cosignature key, name+hex8+base64 (type 0x04), or a file "
                   "holding one (repeatable): the checkpoint must carry its cosignature")
    p.add_argument("--witness-threshold", type=int, metavar="N",
                   help="how many distinct --witness keys must have cosigned the checkpoint "
                   "(default: all of them; 0 without --witness)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="check signatures on N processes (default: every CPU this process "
                   "may use; 1 checks them in this process)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--profile", action="append", default=[], metavar="NAME|FILE.toml",
                   help="after a successful verification, evaluate a findings profile: a "
                   f"built-in one ({', '.join(builtin_profiles())}) or a TOML file "
                   "(specs/findings.md); repeatable")
    p.add_argument("--fail-on-findings", action="store_true",
                   help="exit 6 (not 0) when a --profile yields findings")
    p.add_argument("--report", metavar="FILE",
                   help="after a successful verification, write a self-contained HTML report "
                   "to FILE (nothing is written if verification fails)")
    return p


def _stdin() -> BinaryIO:
    """Standard input's bytes; OSError if the process started with it closed."""
    if sys.stdin is None:
        raise OSError(errno.EBADF, "standard input is closed", "-")
    return sys.stdin.buffer


def open_now(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading at once: O_NONBLOCK for the open only (a FIFO with no
    writer would block it; one nobody writes then reads as empty), then blocking reads (a
    pipe whose writer runs is read to its end)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_note(path: str) -> bytes:
    """The note at ``path`` (``-``: standard input), read up to MAX_NOTE_SIZE + 1 bytes so
    that a huge or endless file is refused (MalformedInputError), never held whole."""
    if path == "-":
        data = _stdin().read(MAX_NOTE_SIZE + 1)
    else:
        with open_now(path) as fh:
            data = fh.read(MAX_NOTE_SIZE + 1)
    if len(data) > MAX_NOTE_SIZE:
        raise MalformedInputError(f"the trusted checkpoint {path} is larger than the "
                                  f"{MAX_NOTE_SIZE} bytes a signed note may be")
    return data


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to a new file beside ``path``, then rename it over ``path``."""
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _not_a_file(path: str) -> str | None:
    """What stands at ``path`` if it exists and is not a regular file (the report is
    renamed into place, which would replace a device, a link or a pipe), else None."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None  # a directory cannot be renamed over: that is an I/O error (exit 4)
    return "a symbolic link" if stat.S_ISLNK(mode) else "a device, pipe or socket"


def _clobbers(report: str, inputs: Sequence[str | None]) -> bool:
    """Whether ``report`` names the same existing file as one of the inputs."""
    for path in inputs:
        if path is not None and path != "-":
            try:
                if os.path.samefile(report, path):
                    return True
            except OSError:
                pass
    return False


MAX_KEY_FILE = 4096


def _witness_key(value: str) -> WitnessKey:
    """A --witness value: a witness vkey, or the path of a file holding one (UsageProblem
    if it is neither)."""
    try:
        return WitnessKey.parse(value)
    except MalformedInputError as exc:
        problem = str(exc)
    if "+" not in value or os.path.exists(value):
        try:
            with open(value, "rb") as fh:
                raw = fh.read(MAX_KEY_FILE + 1)
        except OSError as exc:
            raise UsageProblem(f"bad --witness {value!r}: {problem}; and it is no readable "
                               f"file ({exc.strerror})") from None
        try:
            return WitnessKey.parse(raw[:MAX_KEY_FILE].decode("utf-8").strip())
        except (MalformedInputError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"bad --witness file {value}: {exc}") from None
    raise UsageProblem(f"bad --witness {value!r}: {problem}")


def _witnesses(args: argparse.Namespace, keys: Sequence[VerifierKey]
               ) -> tuple[list[WitnessKey], int]:
    """The --witness keys and the threshold (UsageProblem if they do not make sense)."""
    witnesses = [_witness_key(v) for v in args.witness]
    distinct = len({w.public_key for w in witnesses})
    if distinct < len(witnesses):
        raise UsageProblem("two --witness keys share one public key: a cosignature/v1 key "
                           "makes one witness whatever its name")
    if any(w.public_key == k.public_key for w in witnesses for k in keys):
        raise UsageProblem("a --witness key is the log's own key: a witness must be another "
                           "party")
    threshold = distinct if args.witness_threshold is None else args.witness_threshold
    if not 0 <= threshold <= distinct:
        raise UsageProblem(f"--witness-threshold must be in 0..{distinct} (the number of "
                           f"--witness keys given)")
    return witnesses, threshold


def _progress() -> Callable[[int, int], None] | None:
    """A one-line progress counter on a terminal's stderr; None when not a terminal."""
    stream = sys.stderr
    try:
        if stream is None or not stream.isatty():
            return None
    except (OSError, ValueError):  # closed
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done + 1024 >= total else ""
        try:
            print(f"\rreplaying entries: {min(done + 1024, total):,}/{total:,}", end=end,
                  file=stream, flush=True)
        except (OSError, ValueError):
            pass  # the terminal went away: the outcome still goes to stdout

    return show


def _summary(v: VerifiedInventory) -> str:
    cp = v.checkpoint
    span = f"entries 0..{v.size - 1} of {cp.size}" if v.size else f"no entries yet, of {cp.size}"
    head = (f"the log before its genesis, at {iso(v.time)}" if v.before_genesis
            else f"inventory as of {iso(v.time)} ({span})")
    lines = [
        f"OK: {cp.origin}: {head} verified under a checkpoint of size {cp.size} signed by "
        f"{', '.join(cp.signers)} at {iso(v.checkpoint_time)}",
        f"  proven: {v.time_statement()}",
    ]
    if v.witnessed is not None:
        lines.append(f"  witnessed: {v.witnessed.statement()}")
    for check in v.checks:
        lines.append(f"  checked: {check}")
    lines.append(f"  models: {len(v.models)}")
    for m in sorted(v.models.values(), key=lambda m: m.name):
        tags = ",".join(sorted(m.tags)) or "-"
        lines.append(f"    {m.name:32} {m.owner:20} {m.tier:8} {m.status:10} "
                     f"last={m.last_event_type} tags={tags}")
    return "\n".join(lines)


def safe_streams() -> None:
    """Make stdout and stderr escape what their encoding cannot show (``\\xe9``) instead of
    raising UnicodeEncodeError, e.g. under PYTHONIOENCODING=ascii."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def quiet_broken_pipe() -> None:
    """stdout's reader went away (``| head -1``): send the rest of the output to the null
    device, so that neither this write nor the flush at exit raises again."""
    try:
        sys.stdout.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return  # not a real file (a test's capture): nothing to redirect
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


class _OutputError(Exception):
    """Standard output could not be written (a full disk, an I/O error): exit 4, not a bug."""


def _out(text: str) -> None:
    """One line (or block) on stdout; a closed pipe ends the output quietly, any other
    failure to write raises _OutputError (the rest of the output goes nowhere)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        quiet_broken_pipe()
    except (OSError, ValueError) as exc:
        _drop_stdout()
        raise _OutputError(getattr(exc, "strerror", None) or str(exc)) from None


def _drop_stdout() -> None:
    """Send what stdout still holds, and all later output, to the null device, so that
    the flush at exit does not fail again."""
    try:
        quiet_broken_pipe()
    except OSError:
        pass


def _err(text: str) -> None:
    """One line on stderr; a closed or failing stderr is ignored (the exit code tells)."""
    if sys.stderr is None:  # closed at start: print(file=None) would write to stdout
        return
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _json_error(exc: BaseException, code: int, message: str | None = None) -> None:
    """The uniform JSON error object (specs/errors.md §3.3) on stderr."""
    _err(json.dumps({"error": {"class": type(exc).__name__, "message": message or str(exc),
                               "hint": lookup(exc).hint, "exit_code": code}}))


def _fail(code: int, reason: str, as_json: bool, exc: BaseException | None = None) -> int:
    if as_json:
        _out(json.dumps({"ok": False, "error": KIND[code], "reason": reason}))
        _json_error(exc if exc is not None else UsageProblem(reason), code, reason)
    else:
        _out(f"FAIL: {reason}")
    return code


def _usage(message: str, as_json: bool) -> int:
    if as_json:
        return _fail(EXIT_USAGE, message, True)
    _err(f"error: {message}")
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code. Never raises, except SystemExit from argparse
    (usage, --help). An internal error (a bug) is exit 70, with its traceback on stderr only
    when MODELSEAL_DEBUG=1 is set."""
    safe_streams()
    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    try:
        return _guarded(argv, as_json)
    except _OutputError as exc:
        _err(f"error: cannot write to standard output: {exc}")
        return EXIT_IO


def _guarded(argv: Sequence[str] | None, as_json: bool) -> int:
    """``_main``, with every exception but _OutputError turned into an exit code."""
    try:
        return _main(argv)
    except _OutputError:
        raise
    except BrokenPipeError:
        quiet_broken_pipe()  # only reached by a write outside _out; the result was not decided
        return EXIT_IO
    except KeyboardInterrupt:  # Ctrl-C: nothing was decided, nothing was written
        _err("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so, without a traceback (unless asked), exit 70
        if os.environ.get("MODELSEAL_DEBUG", "") not in ("", "0"):
            traceback.print_exception(exc, file=sys.stderr)
        message = f"internal error (a bug): {type(exc).__name__}: {exc}; please report it"
        if as_json:
            _out(json.dumps({"ok": False, "error": KIND[EXIT_INTERNAL], "reason": message}))
            _json_error(exc, EXIT_INTERNAL, message)
        else:
            _err(f"error: {message}")
            _err("hint: set MODELSEAL_DEBUG=1 to see the traceback")
        return EXIT_INTERNAL


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    if isinstance(parser, _Parser):
        parser.json_errors = "--json" in (sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        keys = [VerifierKey.parse(k) for k in args.key]
    except MalformedInputError as exc:
        return _usage(f"bad --key: {exc}", args.json)
    try:
        witnesses, threshold = _witnesses(args, keys)
    except UsageProblem as exc:
        return _usage(str(exc), args.json)
    inputs = (args.bundle, args.trusted, *args.witness)
    if args.report is not None and _clobbers(args.report, inputs):
        return _usage("--report would overwrite an input file", args.json)
    if args.report is not None and _not_a_file(args.report):
        return _usage(f"--report must name a regular file or a new one; {args.report} is "
                      f"{_not_a_file(args.report)}", args.json)
    if args.bundle == "-" and args.trusted == "-":
        return _usage("the bundle and --trusted cannot both be read from standard input (-); "
                      "give one of them as a file", args.json)
    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        return _usage("--jobs must be at least 1", args.json)
    if args.fail_on_findings and not args.profile:
        return _usage("--fail-on-findings needs at least one --profile", args.json)
    unknown = [r for r in args.profile if not is_profile_path(r) and r not in builtin_profiles()]
    if unknown:
        return _usage(f"no built-in profile {unknown[0]!r}; the built-in profiles are "
                      f"{', '.join(builtin_profiles())} (or give a FILE.toml)", args.json)
    try:
        profiles = load_profiles(args.profile)
    except ProfileError as exc:
        return _fail(EXIT_MALFORMED, f"bad profile: {exc}", args.json, exc)
    except OSError as exc:
        return _fail(EXIT_IO, f"cannot read profile {exc.filename}: {exc.strerror}", args.json,
                     exc)
    try:
        trusted_note = _read_note(args.trusted) if args.trusted else None
        fh = _stdin() if args.bundle == "-" else open(args.bundle, "rb")  # noqa: SIM115
    except OSError as exc:
        return _fail(EXIT_IO, f"cannot read {exc.filename}: {exc.strerror}", args.json, exc)
    except MalformedInputError as exc:
        return _fail(EXIT_MALFORMED, f"malformed input: {exc}", args.json, exc)
    try:
        trusted = Checkpoint.parse_note(trusted_note, keys) if trusted_note is not None else None
        result = verify_bundle_file(fh, keys, trusted=trusted,
                                    progress=None if args.json else _progress(),
                                    witnesses=witnesses, witness_threshold=threshold, jobs=jobs)
    except MalformedInputError as exc:
        return _fail(EXIT_MALFORMED, f"malformed input: {exc}", args.json, exc)
    except VerificationError as exc:
        return _fail(EXIT_FAILED, f"{type(exc).__name__}: {exc}", args.json, exc)
    except IncompleteError as exc:
        return _fail(EXIT_INCOMPLETE, f"not verified: {exc}", args.json, exc)
    except OSError as exc:
        return _fail(EXIT_IO, f"cannot read {args.bundle}: {exc.strerror or exc}", args.json,
                     exc)
    except VerifierError as exc:  # pragma: no cover - every subclass is handled above
        return _fail(EXIT_FAILED, str(exc), args.json, exc)
    finally:
        if args.bundle != "-":
            fh.close()
    found = evaluate(profiles, result) if profiles else None
    extra: dict[str, str] = {}
    if args.report is not None:
        try:
            _write_atomic(args.report,
                          render_report(result, found).encode("utf-8", "replace"))
        except OSError as exc:
            return _fail(EXIT_IO, f"cannot write {args.report}: {exc.strerror or exc}",
                         args.json, exc)
        extra["report"] = args.report
    more = {} if found is None else {"findings": found.to_json()}
    if args.json:
        _out(json.dumps({"ok": True, **result.to_json(), **more, **extra}, indent=1,
                        sort_keys=True))
    else:
        _out(_summary(result) + "".join(f"\n  report: {p}" for p in extra.values()))
        if found is not None:
            _out(found.text())
    return findings_exit(found, args.fail_on_findings)


def load_profiles(refs: Sequence[str]) -> list[Profile]:
    """The profiles named (built-in names or TOML files), in order, each once. ProfileError
    for a bad or unknown profile, or two of one id; OSError if a file cannot be read."""
    profiles: list[Profile] = []
    for ref in refs:
        profile = load_profile(ref)
        if any(p.id == profile.id for p in profiles):
            raise ProfileError(f"{ref}: profile id {profile.id!r} is given twice")
        profiles.append(profile)
    return profiles


def findings_exit(found: Findings | None, fail_on_findings: bool) -> int:
    """EXIT_FINDINGS if asked to fail on findings and there are some, else EXIT_OK."""
    if fail_on_findings and found is not None and found.items:
        return EXIT_FINDINGS
    return EXIT_OK


def exit_decided(code: int | str | None) -> NoReturn:
    """Exit with `code` (as `sys.exit` takes it), the outcome already decided and written.
    Ctrl-C is ignored from here on: a late one would otherwise kill the interpreter while it
    shuts down (Python restores SIGINT's default action then), and a shell would see 130
    after an OK line."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (an embedding program): leave its handler
        pass
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError) as exc:
        _drop_stdout()
        if not isinstance(exc, BrokenPipeError) and code in (0, None):
            _err(f"error: cannot write to standard output: {exc}")
            code = EXIT_IO  # the outcome was not all written
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed or failing stderr: the exit code still tells
    sys.exit(code)


def run() -> None:
    """Console-script entry point."""
    code: int | str | None
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), text written
        code = exc.code
    except KeyboardInterrupt:  # Ctrl-C between main's handler and exit_decided's
        code = EXIT_INTERRUPTED
    exit_decided(code)


if __name__ == "__main__":
    run()
