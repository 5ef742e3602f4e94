"""What ``dir()`` and a notebook's tab completion list of a public module: its ``__all__`` and
its submodules, not the names it imports to do its work (``re``, ``json``, ``Any``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

__all__ = ["PublicNames", "public_names"]

PublicNames = Callable[[], list[str]]
"""A module's ``__dir__``."""


def public_names(module_name: str) -> PublicNames:
    """A module's ``__dir__`` (PEP 562), written ``__dir__ = public_names(__name__)``: its
    ``__all__``, the submodules imported so far and its dunders (``__file__``)."""

    def names() -> list[str]:
        module = sys.modules[module_name]
        own = vars(module)
        submodules = [
            name
            for name, value in own.items()
            if isinstance(value, ModuleType) and value.__name__ == f"{module_name}.{name}"
        ]
        dunders = [name for name in own if name.startswith("__") and name.endswith("__")]
        return sorted({*module.__all__, *submodules, *dunders})

    return names
