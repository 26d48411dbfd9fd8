"""Time `case_metrics` on one CT-sized case (512x512xN, a few ellipsoid organs, one displaced).

Usage: python benchmarks/bench_evaluate.py --out bench-out/evaluate.json [--slices 120] [--organs 4]
       [--no-surface] [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import machine, write_result

from locseg_cli.evaluation import EvaluateConfig, case_metrics


def phantom(shape: tuple[int, int, int], organs: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for k in range(organs):
        cz, cy, cx = shape[0] // 2, 120 + 70 * k, 256
        rz, ry, rx = shape[0] // 4, 30, 50
        ref[((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1] = k + 1
        pred[((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx - shift) / rx) ** 2 < 1] = k + 1
    return pred, ref


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=120)
    ap.add_argument("--organs", type=int, default=4)
    ap.add_argument("--no-surface", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="40 slices")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.slices = min(args.slices, 40)
    torch.set_num_threads(1)
    pred, ref = phantom((args.slices, 512, 512), args.organs, shift=3)
    cfg = EvaluateConfig(surface=not args.no_surface)
    spacing = (2.5, 0.8, 0.8)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        m = case_metrics(pred, ref, list(range(1, args.organs + 1)), spacing, cfg)
        times.append(time.perf_counter() - t)
    print(f"shape {pred.shape}, {args.organs} organs, surface={cfg.surface}: "
          f"best {min(times):.2f} s of {args.repeats}; Dice[1]={m['1']['Dice']:.4f}"
          + (f" NSD[1]={m['1']['NSD']:.4f} HD95[1]={m['1']['HD95']:.2f} mm" if cfg.surface else ""))
    if args.out:
        write_result(args.out, {"benchmark": "evaluate case_metrics", "shape": list(pred.shape),
                                "organs": args.organs, "surface": cfg.surface, "seconds": times,
                                "best_s": min(times), "machine": machine(1)})


if __name__ == "__main__":
    main()
