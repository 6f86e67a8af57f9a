"""modelseal's trust core: verify a model inventory log offline.

Pure functions over bytes. Depends only on the standard library,
``cryptography`` and ``msgspec``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the public names, as type checkers see them
    from ._api import *  # noqa: F403
    from ._api import __all__ as __all__

# A public name that is also a submodule's name: the name means the function, as it did
# when this package loaded everything at once, even if the submodule is imported first.
_SHADOWED = frozenset({"replay"})


def _load() -> dict[str, Any]:
    """Load every public name into this package (once; the import lock serialises it)."""
    api = importlib.import_module("._api", __name__)
    names = globals()
    for name in api.__all__:
        names[name] = getattr(api, name)
    names["__all__"] = api.__all__
    return names


def __getattr__(name: str) -> Any:
    """A public name, loaded with all the others on first use (PEP 562). Importing
    ``verifier`` alone loads nothing heavy, so a console script can guard Ctrl-C before
    the rest loads (verifier/startup.py)."""
    if name.startswith("_") and name != "__all__":  # incl. submodules not yet imported
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    names = _load()
    if name in names:
        return names[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """This package's module type: a submodule in `_SHADOWED` is not bound over (or in
    place of) the public name; import it as ``verifier.replay`` from sys.modules."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
