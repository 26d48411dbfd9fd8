"""`locseg bpr train | score | import | eval`: body part regression trained here, or bpreg's files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..bpr.config import BprTrainConfig
from .options import Data, Device, Force, Out, Preset, Seed, config_options

bpr_app = typer.Typer(no_args_is_help=True, add_completion=False,
                      help="Body part regression: slice scores 0 (pelvis start) .. 100 (eyes end) for "
                           "`preprocess --location bpr`.")

_file = {"exists": True, "file_okay": True, "dir_okay": False}


@bpr_app.command("train")
@config_options(BprTrainConfig)
def train(
    data: Data,
    out: Out,
    landmarks: Annotated[Path | None, typer.Option("--landmarks", help="YAML/JSON {case_id: {landmark: slice "
                                                   "index}}; default: the synthetic cohort's bodypos/ files.",
                                                   **_file)] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="compact (CPU, default) or vgg (bpreg's VGG16 "
                                                            "layout).")] = None,
    width: Annotated[int | None, typer.Option("--width", min=1, help="Base channels.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Optimiser steps.")] = None,
    batch_volumes: Annotated[int | None, typer.Option("--batch-volumes", min=1, help="Volumes per step.")] = None,
    order_loss: Annotated[str | None, typer.Option("--order-loss", help="logistic (default: bpreg's target as a "
                                                                   "cross-entropy), heuristic (bpreg's) or yan.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Adam learning rate.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint in --out.")] = False,
    preset: Preset = None,
    seed: Seed = None,
    device: Device = None,
    force: Force = False,
    overrides: dict | None = None,
) -> None:
    """Train a slice regressor self-supervised on the CT volumes of --data (no labels needed)."""
    from ..bpr.train import train_regressor
    from ..config import resolve_config
    from ..console import RichProgress, console

    cfg = resolve_config(BprTrainConfig, preset, {"arch": arch, "width": width, "steps": steps,
                                                  "batch_volumes": batch_volumes, "order_loss": order_loss,
                                                  "lr": lr, "seed": seed, **(overrides or {})})
    with RichProgress() as progress:
        res = train_regressor(data, out, cfg, landmarks, resume=resume, force=force, device=device,
                              progress=progress)
    if res.up_to_date:
        console.print(f"[green]up to date[/]: {out} (use --force to retrain)")
        return
    cal = res.calibration
    spread = ", ".join(f"{k} {v:.2f}" for k, v in cal["landmark_spread"].items())
    console.print(f"trained {res.steps} steps, final loss {res.final_loss:.4g}; expected slope "
                  f"{cal['slope_mean']:.4f}/mm (sd {cal['slope_std']:.4f}); landmark spread (sd): {spread}")
    console.print(f"[green]model[/]: {out}/model.pt")


@bpr_app.command("score")
def score(
    model: Annotated[Path, typer.Option("--model", help="A `locseg bpr train` output folder (this command "
                                                        "takes a trained model here, not a registry name).",
                                        exists=True)],
    data: Data,
    out: Out,
    batch_slices: Annotated[int | None, typer.Option("--batch-slices", min=1, help="Slices per forward pass.")] = None,
    preset: Preset = None,
    device: Device = None,
    force: Force = False,
) -> None:
    """Score every axial slice of every case in --data: one bpreg-style JSON per case in --out."""
    from ..bpr.config import BprScoreConfig
    from ..bpr.inference import score_dataset
    from ..config import resolve_config
    from ..console import RichProgress

    cfg = resolve_config(BprScoreConfig, preset, {"batch_slices": batch_slices})
    with RichProgress() as progress:
        res = score_dataset(model, data, out, cfg, force=force, device=device, progress=progress)
    _print_cases(res, "scored")


@bpr_app.command("import")
def import_(
    bpreg_dir: Annotated[Path, typer.Option("--bpreg-dir", help="Folder of JSON files written by bpreg.",
                                            exists=True, file_okay=False)],
    out: Out,
    data: Annotated[Path | None, typer.Option("--data", help="The raw images bpreg scored: gives each slice "
                                              "its world z (needed by `preprocess --location bpr`).",
                                              exists=True, file_okay=False)] = None,
    order: Annotated[str | None, typer.Option("--order", help="How bpreg's slices map onto the image: bpreg "
                                              "(its own rule, default), stored, reversed.")] = None,
    preset: Preset = None,
    force: Force = False,
) -> None:
    """Accept bpreg's own per-volume JSON files as a `bpr` output."""
    from ..bpr.config import BprImportConfig
    from ..bpr.importer import import_bpreg
    from ..config import resolve_config
    from ..console import RichProgress, console

    cfg = resolve_config(BprImportConfig, preset, {"order": order})
    with RichProgress() as progress:
        res = import_bpreg(bpreg_dir, out, cfg, data, force=force, progress=progress)
    _print_cases(res, "imported")
    if data is None:
        console.print("[yellow]note[/]: imported without --data: the records have no world z, so "
                      "`preprocess --location bpr` cannot use them until you rerun with --data")


@bpr_app.command("eval")
def evaluate(
    scores: Annotated[Path, typer.Option("--scores", help="A `locseg bpr score` or `bpr import` output.",
                                         exists=True, file_okay=False)],
    data: Data,
    out: Out,
    force: Force = False,
) -> None:
    """Compare scores with the synthetic cohort's ground-truth body position (MAE, Spearman rho)."""
    from ..bpr.evaluate import bpr_eval
    from ..console import RichProgress

    with RichProgress() as progress:
        summary = bpr_eval(scores, data, out, force=force, progress=progress)
    _print_eval(summary)


def _print_cases(res: dict[str, Any], verb: str) -> None:
    from rich.table import Table

    from ..console import console

    if res["up_to_date"]:
        console.print(f"[green]up to date[/]: {res['out']} (use --force to redo)")
        return
    table = Table("case", "slices", "score range", "valid z-spacing", "slope /mm", "body part examined")
    for cid, m in res["cases"].items():
        rng = m.get("score_range")
        table.add_row(cid, str(m["slices"]), f"{rng[0]:.1f} .. {rng[1]:.1f}" if rng else "-",
                      _fmt(m.get("valid z-spacing")), _fmt(m.get("observed slope"), ".4f"),
                      str(m.get("body part examined tag")))
    console.print(table)
    console.print(f"{verb} {res.get(verb, 0)}, reused {res['reused']} -> {res['out']}")


def _print_eval(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from ..console import console

    table = Table("case", "slices", "MAE", "max err", "Spearman", "MAE unprocessed")
    for cid, m in summary["cases"].items():
        if "error" in m:
            table.add_row(cid, str(m["slices"]), "[red]failed[/]", "", "", m["error"][:60])
            continue
        loc = m["location"]
        table.add_row(cid, str(m["slices"]), f"{loc['mae']:.2f}", f"{loc['max_abs_error']:.2f}",
                      f"{loc['spearman']:.4f}", f"{m['unprocessed']['mae']:.2f}")
    p = summary["pooled"]
    table.add_row("[bold]pooled[/]", str(p["slices"]), f"{p['location']['mae']:.2f}",
                  f"{p['location']['max_abs_error']:.2f}", f"{p['location']['spearman']:.4f}",
                  f"{p['unprocessed']['mae']:.2f}")
    console.print(table)


def _fmt(v: Any, spec: str = ".0f") -> str:
    if v is None:
        return "-"
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return str(v)


def register(app: typer.Typer, name: str) -> None:
    app.add_typer(bpr_app, name=name)
