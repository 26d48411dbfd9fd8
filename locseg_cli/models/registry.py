"""One registry of models: a name maps to a builder taking the resolved `ModelConfig`.

Every stage (train, infer, shift-eval, `locseg models`) builds models only through `build_model`,
so a new variant is one registered function and the tests pick it up automatically.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import LocsegError
from .config import ModelConfig

if TYPE_CHECKING:
    from .base import LocationAwareModel

Builder = Callable[[ModelConfig], "LocationAwareModel"]

_BUILDERS: dict[str, Builder] = {}
_BUILTIN_MODULES = ("locseg_cli.models.zoo",)


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(cfg) -> LocationAwareModel` under `name`."""

    def wrap(builder: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"model {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return wrap


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def model_names() -> list[str]:
    """Registered names, in registration order (baseline first)."""
    _load_builtin()
    return list(_BUILDERS)


def model_description(name: str) -> str:
    """The first line of a builder's docstring."""
    _load_builtin()
    doc = (_BUILDERS[name].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def build_model(cfg: ModelConfig) -> LocationAwareModel:
    """A fresh model for `cfg.model` (weights from the current torch RNG state)."""
    _load_builtin()
    if cfg.model not in _BUILDERS:
        raise LocsegError(f"unknown model {cfg.model!r} (known: {', '.join(_BUILDERS)})")
    ModelConfig.validate(cfg)
    return _BUILDERS[cfg.model](cfg)
