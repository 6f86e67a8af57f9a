"""``modelseal-verify``: check a proof bundle offline with the log's public key.

Exit codes (specs/errors.md): 0 verified, 1 verification failed, 2 usage,
3 malformed input, 4 I/O error.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence

from .bundle import VerifiedInventory, verify_bundle
from .checkpoint import Checkpoint
from .errors import MalformedInputError, VerificationError, VerifierError
from .keys import VerifierKey
from .report import render_report
from .timeutil import iso

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MALFORMED, EXIT_IO = 0, 1, 2, 3, 4


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelseal-verify",
        description="Verify a modelseal proof bundle offline, with only the log's public key.",
        epilog="Exit codes: 0 verified, 1 verification failed, 2 usage, 3 malformed input, "
        "4 I/O error.",
    )
    p.add_argument("bundle", help="the bundle file (JSON) exported by the log")
    p.add_argument("--key", action="append", required=True, metavar="VKEY",
                   help="the log's verifier key, name+hex8+base64 (repeatable)")
    p.add_argument("--trusted", metavar="CHECKPOINT_FILE",
                   help="a signed checkpoint you already trust; the bundle must extend it")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--report", metavar="FILE",
                   help="after a successful verification, write a self-contained HTML report "
                   "to FILE (nothing is written if verification fails)")
    return p


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


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


def _progress() -> Callable[[int, int], None] | None:
    """A one-line progress counter on a terminal's stderr; None when not a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done + 1024 >= total else ""
        print(f"\rreplaying entries: {min(done + 1024, total):,}/{total:,}", end=end,
              file=sys.stderr, flush=True)

    return show


def _summary(v: VerifiedInventory) -> str:
    cp = v.checkpoint
    span = f"entries 0..{v.size - 1} of {cp.size}" if v.size else f"no entries yet, of {cp.size}"
    lines = [
        f"OK: {cp.origin}: inventory as of {iso(v.time)} ({span}) verified under a checkpoint "
        f"signed by {', '.join(cp.signers)}",
    ]
    for check in v.checks:
        lines.append(f"  checked: {check}")
    lines.append(f"  models: {len(v.models)}")
    for m in sorted(v.models.values(), key=lambda m: m.name):
        tags = ",".join(sorted(m.tags)) or "-"
        lines.append(f"    {m.name:32} {m.owner:20} {m.tier:8} {m.status:10} "
                     f"last={m.last_event_type} tags={tags}")
    return "\n".join(lines)


def _fail(code: int, reason: str, as_json: bool) -> int:
    if as_json:
        kind = {EXIT_FAILED: "verification_failed", EXIT_MALFORMED: "malformed_input",
                EXIT_IO: "io_error", EXIT_USAGE: "usage"}[code]
        print(json.dumps({"ok": False, "error": kind, "reason": reason}))
    else:
        print(f"FAIL: {reason}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code."""
    args = _parser().parse_args(argv)
    try:
        keys = [VerifierKey.parse(k) for k in args.key]
    except MalformedInputError as exc:
        if args.json:
            return _fail(EXIT_USAGE, f"bad --key: {exc}", True)
        print(f"error: bad --key: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.report is not None and _clobbers(args.report, (args.bundle, args.trusted)):
        if args.json:
            return _fail(EXIT_USAGE, "--report would overwrite an input file", True)
        print("error: --report would overwrite an input file", file=sys.stderr)
        return EXIT_USAGE
    try:
        bundle = _read(args.bundle)
        trusted_note = _read(args.trusted) if args.trusted else None
    except OSError as exc:
        return _fail(EXIT_IO, f"cannot read {exc.filename}: {exc.strerror}", args.json)
    try:
        trusted = Checkpoint.parse_note(trusted_note, keys) if trusted_note is not None else None
        result = verify_bundle(bundle, keys, trusted=trusted,
                               progress=None if args.json else _progress())
    except MalformedInputError as exc:
        return _fail(EXIT_MALFORMED, f"malformed input: {exc}", args.json)
    except VerificationError as exc:
        return _fail(EXIT_FAILED, f"{type(exc).__name__}: {exc}", args.json)
    except VerifierError as exc:  # pragma: no cover - every subclass is handled above
        return _fail(EXIT_FAILED, str(exc), args.json)
    extra: dict[str, str] = {}
    if args.report is not None:
        try:
            _write_atomic(args.report, render_report(result).encode("utf-8", "replace"))
        except OSError as exc:
            return _fail(EXIT_IO, f"cannot write {args.report}: {exc.strerror or exc}", args.json)
        extra["report"] = args.report
    if args.json:
        print(json.dumps({"ok": True, **result.to_json(), **extra}, indent=1, sort_keys=True))
    else:
        print(_summary(result) + "".join(f"\n  report: {p}" for p in extra.values()))
    return EXIT_OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
