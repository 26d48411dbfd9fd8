"""One registry of models: a name maps to a builder taking the resolved `ModelConfig`.

Every stage (train, infer, shift-eval, `locseg models`) builds models only through `build_model`,
so a new variant is one registered function and the tests pick it up automatically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import LocsegError
from ..registry import Registry
from .config import ModelConfig

if TYPE_CHECKING:
    from .base import LocationAwareModel

Builder = Callable[[ModelConfig], "LocationAwareModel"]

MODELS: Registry[Builder] = Registry("model", ("locseg_cli.models.zoo",), unique=True)


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(cfg) -> LocationAwareModel` under `name`."""
    return MODELS.register(name)


def model_names() -> list[str]:
    """Registered names, in registration order (baseline first)."""
    return MODELS.names()


def model_description(name: str) -> str:
    """The first line of a builder's docstring."""
    doc = (MODELS.entries()[name].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def build_model(cfg: ModelConfig) -> LocationAwareModel:
    """A fresh model for `cfg.model` (weights from the current torch RNG state)."""
    builder = MODELS.get(cfg.model)
    if builder is None:
        raise LocsegError(f"unknown model {cfg.model!r} (known: {', '.join(MODELS.names())})")
    ModelConfig.validate(cfg)
    return builder(cfg)
