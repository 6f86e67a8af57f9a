"""The console scripts' first steps. This module imports the standard library only, and
``import verifier`` loads nothing heavy, so a Ctrl-C while the commands' modules load
(a fraction of a second to half a second) ends the process with 130 and one line,
instead of a KeyboardInterrupt traceback."""

from __future__ import annotations

import os

# The C module, not `signal`: importing signal.py builds its enums (about a millisecond,
# far more on a loaded machine), a window in which a Ctrl-C would still be a traceback.
import _signal  # type: ignore[import-not-found]

TYPE_CHECKING = False  # typing itself is not loaded before the guard
if TYPE_CHECKING:
    from types import FrameType

_INTERRUPTED = 130  # verifier.exitcodes.EXIT_INTERRUPTED; importing it here would load more


def _quit_while_loading(signum: int, frame: FrameType | None) -> None:
    """SIGINT before any command ran: nothing was written or changed, so just say so."""
    try:
        os.write(2, b"interrupted\n")
    except OSError:
        pass  # a closed stderr: the exit code still tells
    os._exit(_INTERRUPTED)


def guard() -> bool:
    """Route SIGINT to a quiet exit (130) while modules load. Only if Python's own handler
    is in place (a parent that ignores SIGINT keeps it ignored) and in the main thread.
    True if it did; pass that to `release`."""
    try:
        if _signal.getsignal(_signal.SIGINT) is not _signal.default_int_handler:
            return False
        _signal.signal(_signal.SIGINT, _quit_while_loading)
    except ValueError:  # not the main thread: an embedding program owns signals
        return False
    return True


def release(guarded: bool) -> None:
    """Give SIGINT back to Python's handler (if `guard` took it): from here the command
    handles Ctrl-C itself."""
    if guarded:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)


def run_verifier() -> None:
    """The ``modelseal-verify`` console script: verifier.cli.run, loaded under the guard."""
    guarded = guard()
    from .cli import run

    release(guarded)
    run()
