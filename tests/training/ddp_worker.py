"""Run under torchrun by test_trainer: train, then dump this rank's final weights for comparison."""

import json
import os
import sys

import torch

import locseg_cli.training.trainer as trainer
from locseg_cli.config import resolve_config
from locseg_cli.training import TrainConfig, train


def main() -> None:
    pre, out, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    cfg = resolve_config(TrainConfig, None, {**args, "model": "locbam", "batch_size": 4})
    built = {}
    original = trainer.build_model

    def keep(config):  # the module DDP wraps is trained in place: remember it on every rank
        built["model"] = original(config)
        return built["model"]

    trainer.build_model = keep
    train(pre, out, cfg)
    rank = int(os.environ["RANK"])
    torch.save(built["model"].state_dict(), os.path.join(out, f"rank{rank}.pt"))


if __name__ == "__main__":
    main()
