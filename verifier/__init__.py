"""modelseal's trust core: verify a model inventory log offline.

Pure functions over bytes. Depends only on the standard library,
``cryptography`` and ``msgspec``.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# What the console scripts load before they guard Ctrl-C (verifier/startup.py): so not
# even `typing` here. Type checkers treat a name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:  # the public names, as type checkers see them
    from typing import Any

    from ._api import *  # noqa: F403
    from ._api import __all__ as __all__

# A public name that is also a submodule's name: the name means the function, as it did
# when this package loaded everything at once, even if the submodule is imported first.
_SHADOWED = frozenset({"replay"})
_loaded = False


def _load() -> bool:
    """Bind every public name in this package, once; a name already set here (a test
    double, say) is kept. False while verifier._api is still loading in this thread."""
    global _loaded
    if _loaded:
        return True
    api = importlib.import_module("._api", __name__)
    public = getattr(api, "__all__", None)
    if public is None:  # _api is part way through its own imports (this thread)
        return False
    names = globals()
    for name in public:
        names.setdefault(name, getattr(api, name))
    names.setdefault("__all__", public)
    _loaded = True
    return True


def __getattr__(name: str) -> Any:
    """A public name (or a submodule that loading them imports), loaded with all the others
    on first use (PEP 562)."""
    if (name.startswith("__") and name != "__all__") or not _load():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    names = globals()
    if name in names:
        return names[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names and submodules, as when they were loaded eagerly."""
    _load()
    return sorted(globals())


class _Package(types.ModuleType):
    """This package's module type: a submodule in `_SHADOWED` is not bound over (or in
    place of) the public name; import it as ``verifier.replay`` from sys.modules."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
