"""`locseg synth`: generate the synthetic CT cohort (raw dataset + ground-truth body positions)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..phantom.config import SynthConfig
from .options import Force, Out, Preset, Seed, Workers, config_options


@config_options(SynthConfig)
def synth(
    out: Out,
    cases: Annotated[int | None, typer.Option("--cases", min=1, help="Number of cases (default 12).")] = None,
    seed: Seed = None,
    fov: Annotated[str | None, typer.Option(
        "--fov", help="fixed: every case pelvis to neck; varying: each case cropped to a different axial "
                      "range, as in AMOS22/KiTS23 (default fixed).")] = None,
    spacing: Annotated[str | None, typer.Option(
        "--spacing", help="Raw voxel spacing: 'demo' (1.6-2.1 mm in-plane, 2.5-5 mm slices; small, fast), "
                          "'clinical' (0.6-1.0 mm, 1.5-5 mm), or a fixed 'z,y,x' in mm (default demo).")] = None,
    layout: Annotated[str | None, typer.Option(
        "--layout", help="Dataset layout: nnunet, btcv, amos22, kits23, ... (default nnunet).")] = None,
    orientation: Annotated[str | None, typer.Option(
        "--orientation", help="varying: stored orientations differ between cases as scanners' do "
                              "(some axial-first); fixed: all R,A,S (default varying).")] = None,
    level_cue_jitter: Annotated[float | None, typer.Option(
        "--level-cue-jitter", min=0.0, max=2.0,
        help="Move the psoas, quadratus lumborum and aortic bifurcation against the spine by up to this "
             "many lumbar levels per patient, so that only the global position tells the levels apart "
             "(default 0: tied to the levels).")] = None,
    montage_cases: Annotated[int | None, typer.Option(
        "--montage-cases", min=0, help="Cases shown in montage.png (default 4).")] = None,
    preset: Preset = None,
    workers: Workers = None,
    force: Force = False,
    overrides: dict | None = None,
) -> None:
    """Generate CT-like torsos with organ and lumbar-vertebra labels and per-slice body positions.

    Example: locseg synth --out raw --cases 12 --seed 0
    """
    from ..config import resolve_config
    from ..console import RichProgress, console
    from ..phantom.synthesize import synthesize as run_synthesize

    cfg = resolve_config(SynthConfig, preset, {
        "cases": cases, "seed": seed, "fov": fov, "spacing": spacing, "layout": layout,
        "orientation": orientation, "level_cue_jitter": level_cue_jitter, "montage_cases": montage_cases,
        "workers": workers, **(overrides or {})})
    with RichProgress() as progress:
        manifest = run_synthesize(cfg, out, progress, force=force)
    shapes = [c["meta"]["shape"] for c in manifest.cases.values()]
    voxels = [int(s[0]) * int(s[1]) * int(s[2]) for s in shapes]
    console.print(f"{len(manifest.cases)} case(s) in {out} ({cfg.layout} layout, fov {cfg.fov}); "
                  f"voxels per case {min(voxels):,}-{max(voxels):,}")
    if "montage" in manifest.extra:
        console.print(f"montage: {out / manifest.extra['montage']}")


def register(app: typer.Typer, name: str) -> None:
    app.command(name)(synth)
