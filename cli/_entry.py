"""The console scripts' first module: it imports nothing heavy, so that a Ctrl-C while
the commands' modules load (about half a second) ends the process quietly with 130
instead of a KeyboardInterrupt traceback. Internal."""

from __future__ import annotations

import os
import signal
from types import FrameType

_INTERRUPTED = 130  # as verifier.exitcodes.EXIT_INTERRUPTED; importing it would load the verifier


def _quit_while_loading(signum: int, frame: FrameType | None) -> None:
    """SIGINT before any command ran: nothing was written or changed, so just say so."""
    try:
        os.write(2, b"interrupted\n")
    except OSError:
        pass  # a closed stderr: the exit code still tells
    os._exit(_INTERRUPTED)


def _guard() -> bool:
    """Route SIGINT to `_quit_while_loading` if Python's own handler is in place (a
    parent that ignores SIGINT keeps it ignored). True if it did."""
    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return False
        signal.signal(signal.SIGINT, _quit_while_loading)
    except ValueError:  # not the main thread: an embedding program owns signals
        return False
    return True


def _release(guarded: bool) -> None:
    """Give SIGINT back to Python's handler: from here the commands handle Ctrl-C."""
    if guarded:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def modelseal() -> None:
    """`modelseal`: cli.main.run, its modules loaded under the guard."""
    guarded = _guard()
    from cli.main import run

    _release(guarded)
    run()


def modelseal_verify() -> None:
    """`modelseal-verify` (as installed with modelseal): verifier.cli.run, likewise."""
    guarded = _guard()
    from verifier.cli import run

    _release(guarded)
    run()

