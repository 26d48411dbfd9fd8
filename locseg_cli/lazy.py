"""Lazy package exports (PEP 562), so importing a config does not import torch or scipy.

`locseg --help` and option parsing import only the config dataclasses; the heavy modules load the
first time one of their names is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` resolving `name` from the submodule `exports[name]` on first use."""

    def __getattr__(name: str) -> object:
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
            # bind it on the package: importing a submodule of the same name (phantom.synthesize) sets
            # the package attribute to the module, which would shadow the function from then on
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
