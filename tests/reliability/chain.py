"""The whole stage chain at toy size, run once per session: the uninterrupted reference of every stage.

`STAGES` names each stage's command line (placeholders: {c} the chain folder, {out} the stage's --out);
the chain fixture runs them in order in-process, timing each, so that kill tests can rerun one stage
into a sibling folder, kill it, finish it and compare with the chain's folder. Siblings sit at the same
depth as the reference, so relative paths that a stage records (the report's) match.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SYNTH = "--spacing 6,6,6 --workers 0 --montage-cases 1"
TRAIN = ("--features 4,4,8,8,16,4 --patch-size 16,16,32 --batch-size 2 --epochs 1 --iterations-per-epoch 8 "
         "--val-every 0 --checkpoint-every 2 --log-every 1 --workers 0 --threads 1 --fold 0 --device cpu")


@dataclass(frozen=True)
class Stage:
    name: str
    out: str  # the reference output, relative to the chain folder
    command: str
    resume: str = ""  # what the rerun after a kill adds (bpr train continues its checkpoint on --resume)

    def argv(self, chain: Path, out: Path, rerun: bool = False) -> list[str]:
        line = self.command.format(c=chain, out=out) + (f" {self.resume}" if rerun and self.resume else "")
        return line.split()


STAGES = [
    Stage("synth", "raw", f"synth --out {{out}} --cases 4 --seed 0 --score-range 10,50 {SYNTH}"),
    Stage("bpr-cohort", "bpr-cohort", f"synth --out {{out}} --cases 3 --seed 1 --fov varying --prefix bpr {SYNTH}"),
    Stage("bpr-train", "bpr-model", "bpr train --data {c}/bpr-cohort --out {out} --steps 8 --checkpoint-every 2 "
          "--width 4 --size 32 --pixel-mm 8 --slices-per-volume 3 --batch-volumes 2 --threads 1 --device cpu",
          resume="--resume"),
    Stage("bpr-score", "bpr", "bpr score --model {c}/bpr-model --data {c}/raw --out {out} --device cpu"),
    Stage("preprocess", "pre", "preprocess --data {c}/raw --out {out} --spacing 6,6,6 --folds 2"),
    Stage("train", "runs/a", f"train --pre {{c}}/pre --out {{out}} {TRAIN}"),
    Stage("infer", "pred/a", "infer --run {c}/runs/a --data {c}/raw --out {out} --threads 1 --device cpu"),
    Stage("atlas", "atlas", "atlas --pre {c}/pre --pred {c}/pred/a --bpr {c}/bpr --out {out}"),
    Stage("postprocess", "post", "postprocess --pred {c}/pred/a --method lcf,atlas,bpr-range --atlas {c}/atlas "
          "--bpr {c}/bpr --out {out}"),
    Stage("evaluate", "eval/a", "evaluate --pred {c}/pred/a --ref {c}/raw --out {out} --workers 1"),
    Stage("shift-eval", "shift/a", "shift-eval --run {c}/runs/a --pre {c}/pre --shifts 0,25,50,100 --device cpu "
          "--threads 1 --out {out}"),
    Stage("report", "report", "report --runs {c}/runs --evals {c}/eval --shifts {c}/shift --pres {c}/pre "
          "--out {out} --dpi 40"),
]
BY_NAME = {s.name: s for s in STAGES}


@dataclass(frozen=True)
class Chain:
    root: Path
    seconds: dict[str, float]  # each stage's in-process duration

    def ref(self, stage: Stage) -> Path:
        return self.root / stage.out

    def sibling(self, stage: Stage, tag: str) -> Path:
        """A fresh --out at the reference's depth, outside the folders the report scans."""
        *parents, name = stage.out.split("/")
        return self.root.joinpath(*[f"{p}-killed" for p in parents], f"{name}-{tag}")


_BUILT: list[Chain] = []


@pytest.fixture(scope="session", name="chain")
def chain_fixture(tmp_path_factory) -> Chain:
    from locseg_cli.app import main

    if _BUILT:
        return _BUILT[0]
    root = tmp_path_factory.mktemp("chain")
    seconds = {}
    for stage in STAGES:
        start = time.perf_counter()
        with pytest.raises(SystemExit) as exc:
            main(stage.argv(root, root / stage.out))
        assert exc.value.code == 0, stage.name
        seconds[stage.name] = time.perf_counter() - start
    _BUILT.append(Chain(root, seconds))
    return _BUILT[0]
