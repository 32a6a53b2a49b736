"""Lazy package attributes: public names imported from their home module on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_attributes(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``homes[name]`` on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (for the error message).
    homes : mapping of str to str
        Public name -> the module that defines it.

    Returns
    -------
    callable
        ``__getattr__(name)``; raises ``AttributeError`` for names not in ``homes``.
    """

    def __getattr__(name: str) -> object:
        if name in homes:
            return getattr(importlib.import_module(homes[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
