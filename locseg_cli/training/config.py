"""Options of `locseg train`: the model's (inherited from `ModelConfig`) plus the protocol's."""

from __future__ import annotations

from typing import Literal

from ..config import stage_config
from ..errors import LocsegError
from ..models.config import MemoryFormat, ModelConfig


@stage_config("train")
class TrainConfig(ModelConfig):
    # `--patch-size large` means what presets/patch/large.yaml sets: the paper's patch and its batch size
    NAMED_VALUES = {"patch_size": ("patch", "three numbers z,y,x in voxels")}

    # data
    fold: int = 0  # cross-validation fold of the preprocessed splits; -1 = train on all cases
    patch_size: tuple[int, int, int] = (32, 32, 32)
    batch_size: int = 128  # patches per iteration (all ranks together)
    sampling: Literal["class_balanced", "nnunet", "uniform"] = "class_balanced"
    foreground_fraction: float = 0.33  # nnunet sampling only
    # cases per batch (per process): 0 = each patch from a case drawn anew; 2 = the paper's 2 volumes x 64 crops
    volumes_per_batch: int = 0
    # fine-tuning: a `locseg train` output (its last checkpoint) or a checkpoint file whose weights start this
    # run; not its optimizer state or iteration. Another label table re-initialises the output layer only.
    init_from: str | None = None
    # optimisation (nnU-Net v2's protocol: SGD 0.01, momentum 0.99, Nesterov, poly 0.9, clip 12)
    epochs: int = 1000
    iterations_per_epoch: int = 250
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.99
    nesterov: bool = True
    weight_decay: float = 3e-5
    poly_power: float = 0.9
    grad_clip: float = 12.0
    # validation and logging
    val_every: int = 250  # iterations between full-volume validations (0 = only at the end)
    val_cases: int | None = None  # validate on the first N cases of the fold (None = all)
    val_overlap: float = 0.5
    sw_batch_size: int = 4
    log_every: int = 10
    checkpoint_every: int = 250  # iterations between `last` checkpoints (paper: every 50 epochs)
    # runtime
    # autocast: bf16/fp16 on CUDA; bf16 on CPUs with native bf16 (AMX), float32 on other CPUs
    # (runtime.device.autocast_dtype); the run manifest records the precision used
    amp: bool = True
    amp_dtype: Literal["bf16", "fp16"] = "bf16"
    compile: bool = False
    # Activation layout: channels-last 3-D on CPU (faster convolutions), the default on CUDA.
    memory_format: MemoryFormat = "auto"
    workers: int = 2
    seed: int = 0
    device: str | None = None
    threads: int | None = None  # torch CPU threads (None = torch's default)

    @property
    def total_iterations(self) -> int:
        return self.epochs * self.iterations_per_epoch

    def validate(self) -> None:
        for name in ("epochs", "iterations_per_epoch", "batch_size"):
            if getattr(self, name) < 1:
                raise LocsegError(f"--{name.replace('_', '-')} must be at least 1")
        if any(p < 16 or p % 16 for p in self.patch_size) or max(self.patch_size) < 32:
            raise LocsegError(f"--patch-size must be multiples of 16 (the U-Net pools 4 times), at least one "
                              f">= 32, got {list(self.patch_size)}")
        if self.lr <= 0:
            raise LocsegError(f"--lr must be positive, got {self.lr}")
        if not 0 <= self.val_overlap < 1:
            raise LocsegError(f"--val-overlap must be in [0, 1), got {self.val_overlap}")
        default_fg = type(self).__dataclass_fields__["foreground_fraction"].default
        if self.sampling != "nnunet" and self.foreground_fraction != default_fg:
            raise LocsegError(f"--foreground-fraction applies to --sampling nnunet only; this run samples "
                              f"{self.sampling} (drop the option, or choose --sampling nnunet)")
