"""Helpers for the issue-10 attack tests."""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Callable

from ledger import ActorKey, Ledger
from tests.ledger_support import ORIGIN, Keys, register


def new_ledger(path: Path) -> tuple[Ledger, Keys, ActorKey]:
    keys = Keys()
    led = Ledger.create(path, origin=ORIGIN, log_key=keys.log, admin=keys.admin)
    pipe = ActorKey.generate("ml-pipeline")
    led.grant(pipe.vkey, role="writer")
    led.signer = pipe
    for m in ("m0", "m1", "m2"):
        register(led, m)
    return led, keys, pipe


def interrupt_at(func_name: str, lineno_pred: Callable[[int, Any], bool],
                 exc: type[BaseException] = KeyboardInterrupt) -> Callable[..., Any]:
    """A trace function that raises ``exc`` once, at the first line event of a frame of
    ``func_name`` for which ``lineno_pred(lineno, frame)`` holds: an interrupt (Ctrl-C)
    delivered at that bytecode boundary of the thread it is installed in."""
    fired = {"done": False}

    def local(frame: Any, event: str, arg: Any) -> Any:
        if fired["done"]:
            return None
        if event == "line" and lineno_pred(frame.f_lineno, frame):
            fired["done"] = True
            raise exc()
        return local

    def glob(frame: Any, event: str, arg: Any) -> Any:
        if fired["done"]:
            return None
        if frame.f_code.co_name == func_name:
            return local
        return None

    glob.fired = fired  # type: ignore[attr-defined]
    return glob


def line_of(func: Any, text: str) -> int:
    """The line number in ``func``'s file of the first line of ``func`` containing ``text``."""
    import inspect
    src, start = inspect.getsourcelines(func)
    for i, line in enumerate(src):
        if text in line:
            return start + i
    raise LookupError(text)
