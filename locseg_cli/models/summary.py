"""What each registered model is and costs, for `locseg models` and the benchmarks."""

from __future__ import annotations

import dataclasses

import torch

from .base import count_parameters
from .config import ModelConfig
from .registry import build_model, model_description, model_names


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    name: str
    description: str
    uses_location: bool
    parameters: int
    overhead: float  # parameters relative to the baseline, e.g. 0.0007 = +0.07%


def model_summaries(cfg: ModelConfig) -> list[ModelSummary]:
    """Every registered model built with `cfg`'s options (model name aside), with its parameter count."""
    counts: dict[str, tuple[int, bool]] = {}
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        for name in model_names():
            model = build_model(dataclasses.replace(cfg, model=name))
            counts[name] = (count_parameters(model), type(model).uses_location)
    base = counts.get("baseline", next(iter(counts.values())))[0]
    return [ModelSummary(name, model_description(name), uses, n, n / base - 1.0)
            for name, (n, uses) in counts.items()]
