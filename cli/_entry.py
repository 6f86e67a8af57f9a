"""The ``modelseal`` console script's first module: it loads the commands under the
verifier's start-up guard (verifier/startup.py), so a Ctrl-C while they load (about half
a second) ends the process with 130 and one line, not a traceback. Internal."""

from __future__ import annotations

from verifier.startup import guard, release


def modelseal() -> None:
    """`modelseal`: cli.main.run, its modules loaded under the guard."""
    guarded = guard()
    from cli.main import run

    release(guarded)
    run()
