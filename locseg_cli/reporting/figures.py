"""The report's PNG figures (matplotlib, Agg backend): curves, gains, shift robustness, overlays."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from .collect import Collection, EvalRecord, Setup, order_models
from .tables import ClassGain, raw_evals

MODEL_COLORS = {"baseline": "#555555", "coordconv": "#1f77b4", "locbam": "#d62728"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(model: str) -> str:
    extra = ["#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
    return MODEL_COLORS.get(model, extra[zlib.crc32(model.encode()) % len(extra)])  # not hash(): salted per process


def _save(fig, path: Path, dpi: int) -> None:
    plt = _plt()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)


def _grid(n: int, width: float = 4.2, height: float = 3.2):
    plt = _plt()
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def validation_curves(col: Collection, path: Path, dpi: int) -> bool:
    """Fig. 2: validation mean Dice over iterations, one panel per setup, one line per run."""
    curves = [(r, r.validation_curve()) for r in col.runs]
    curves = [(r, c) for r, c in curves if c]
    if not curves:
        return False
    setups = sorted({r.setup for r, _ in curves})
    fig, axes = _grid(len(setups))
    for ax, s in zip(axes, setups):
        for r, c in curves:
            if r.setup == s:
                it, d = zip(*c)
                ax.plot(it, d, marker="o", ms=3, color=_color(r.model), label=f"{r.model} (fold {r.manifest.extra.get('fold')})")
        ax.set_title(s.label, fontsize=8)
        ax.set_xlabel("iteration")
        ax.set_ylabel("validation mean Dice")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path, dpi)
    return True


def class_gain_bars(gains: list[ClassGain], path: Path, dpi: int) -> bool:
    """Fig. 3: per-class Dice minus the baseline's, classes ordered by size (smallest left)."""
    if not gains:
        return False
    setups = sorted({g.setup for g in gains})
    fig, axes = _grid(len(setups), width=max(4.2, 0.5 * max(sum(g.setup == s for g in gains) for s in setups)))
    for ax, s in zip(axes, setups):
        rows = [g for g in gains if g.setup == s]
        models = order_models({m for g in rows for m in g.dice})
        x = np.arange(len(rows))
        w = 0.8 / max(len(models), 1)
        for i, m in enumerate(models):
            vals = [g.dice.get(m, math.nan) - g.baseline for g in rows]
            ax.bar(x + (i - (len(models) - 1) / 2) * w, np.nan_to_num(vals), w, color=_color(m), label=m)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, [g.name for g in rows], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("Dice gain over baseline")
        ax.set_title(s.label, fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    _save(fig, path, dpi)
    return True


def shift_curves(col: Collection, path: Path, dpi: int) -> bool:
    """Fig. 4: mean Dice vs axial shift; one panel per dataset and spacing, solid small / dashed large patches."""
    recs = [r for r in col.shifts if r.axes == "axial"]
    if not recs:
        return False
    panels = sorted({(r.run.setup.dataset, r.run.setup.spacing) for r in recs})
    fig, axes = _grid(len(panels))
    styles = ["-", "--", ":", "-."]
    for ax, (dataset, spacing) in zip(axes, panels):
        here = [r for r in recs if (r.run.setup.dataset, r.run.setup.spacing) == (dataset, spacing)]
        patches = sorted({r.run.setup.patch for r in here}, key=lambda p: (int(np.prod(p)), p))
        for r in sorted(here, key=lambda r: order_models([r.run.model, "baseline", "coordconv", "locbam"]).index(
                r.run.model)):
            xs = [float(v["shift"]) for v in r.table["shifts"]]
            ys = [float(v["mean_dice"]) for v in r.table["shifts"]]
            style = styles[patches.index(r.run.setup.patch) % len(styles)]
            ax.plot(xs, ys, style, marker="o", ms=3, color=_color(r.run.model),
                    alpha=0.6 if r.run.model == "baseline" else 1.0,
                    label=f"{r.run.model}, {r.run.setup.patch_text}")
            group = _ambiguous_names(col, r)
            if group:  # the classes only location tells apart, as evaluate grouped them
                amb = [float(np.nanmean([v["dice"][c] for c in group])) for v in r.table["shifts"]]
                ax.plot(xs, amb, style, marker="x", ms=3, lw=0.8, color=_color(r.run.model),
                        label=f"{r.run.model}, {r.run.setup.patch_text}: location-ambiguous")
        ax.set_title(f"{dataset}, " + "×".join(f"{s:g}" for s in spacing) + " mm", fontsize=8)
        ax.set_xlabel("axial location shift (% of full range)")
        ax.set_ylabel("mean Dice, held-out cases")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    _save(fig, path, dpi)
    return True


def _ambiguous_names(col: Collection, rec) -> list[str]:
    """Class names of the run's location-ambiguous group, from an evaluation of the same run (empty if none)."""
    labels = rec.table.get("labels") or {}
    for e in col.evals:
        group = (e.summary.get("class_groups") or {}).get("location_ambiguous")
        if e.run is rec.run and group:
            names = [labels.get(str(k)) for k in group["classes"]]
            return [n for n in names if n and all(n in v["dice"] for v in rec.table["shifts"])]
    return []


def overlay_case(evals: list[EvalRecord]) -> str | None:
    """The first case (sorted) every evaluation of the setup scored."""
    common = None
    for e in evals:
        ids = {c["case_id"] for c in e.summary["metric_per_case"]}
        common = ids if common is None else common & ids
    return min(common) if common else None


def _canonical(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    from ..io.nifti import canonical_orientation, load_volume, voxel_sizes

    vol = load_volume(path, dtype=None)
    orient, aff = canonical_orientation(vol.affine, vol.array.shape)
    spacing = voxel_sizes(aff)
    return orient.to_canonical(np.asarray(vol.array)), spacing


def _image_of(ref: Path | None, case_id: str) -> Path | None:
    if ref is None:
        return None
    try:
        from ..datasets import open_dataset

        ds = open_dataset(ref)
    except Exception:  # the reference may be a plain folder of label maps: no image to show
        return None
    return next((c.image for c in ds.cases if c.case_id == case_id and c.label is not None), None)


def overlays(col: Collection, setup: Setup, path: Path, view: str, dpi: int) -> dict | None:
    """The same slice of one validation case: image, ground truth and each model's prediction.

    Returns what was drawn (case, slice, files, per-model Dice of the case) or None if nothing to draw.
    """
    evals = [e for e in raw_evals(col) if e.run.setup == setup]
    by_model: dict[str, EvalRecord] = {}
    for e in sorted(evals, key=lambda e: str(e.path)):
        by_model.setdefault(e.run.model, e)
    if not by_model:
        return None
    chosen = [by_model[m] for m in order_models(by_model)]
    case = overlay_case(chosen)
    if case is None:
        return None
    entries = {m: next(c for c in by_model[m].summary["metric_per_case"] if c["case_id"] == case) for m in by_model}
    first = entries[chosen[0].run.model]
    ref, spacing = _canonical(Path(first["reference_file"]))
    axis = 1 if view == "coronal" else 0
    fg = (ref > 0).sum(axis=tuple(a for a in range(3) if a != axis))
    index = int(np.argmax(fg))
    image_path = _image_of(chosen[0].ref, case)
    image = _canonical(image_path)[0] if image_path is not None else None
    if image is not None and image.shape != ref.shape:
        image = None
    n_labels = int(max(ref.max(), 1))

    def cut(a: np.ndarray) -> np.ndarray:
        s = np.take(a, index, axis=axis)
        return s[::-1, ::-1]  # superior (coronal) or anterior (axial) up, patient right on the left

    aspect = spacing[0] / spacing[2] if axis == 1 else spacing[1] / spacing[2]
    plt = _plt()
    panels = [("ground truth", ref, None)] + [(m, _canonical(Path(entries[m]["prediction_file"]))[0],
                                              by_model[m]) for m in order_models(by_model)]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.2), squeeze=False)
    from matplotlib.colors import ListedColormap

    palette = plt.get_cmap("tab10").colors
    cmap = ListedColormap([palette[i % len(palette)] for i in range(n_labels)])
    dice = {}
    for ax, (name, labels, e) in zip(axes[0], panels):
        if labels.shape != ref.shape:
            ax.axis("off")
            continue
        if image is not None:
            ax.imshow(cut(image), cmap="gray", aspect=aspect, interpolation="nearest")
        lab = cut(labels).astype(float)
        ax.imshow(np.ma.masked_where(lab == 0, lab), cmap=cmap, vmin=0.5, vmax=n_labels + 0.5, alpha=0.55,
                  aspect=aspect, interpolation="nearest")
        title = name
        if e is not None:
            fgkeys = e.summary.get("foreground_keys") or list(e.summary["mean"])
            vals = [float(entries[name]["metrics"][k]["Dice"]) for k in fgkeys if k in entries[name]["metrics"]]
            vals = [v for v in vals if not math.isnan(v)]
            dice[name] = sum(vals) / len(vals) if vals else math.nan
            title += f"\nDice {dice[name]:.3f}" if not math.isnan(dice[name]) else ""
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{setup.label}: case {case}, {view} slice {index}", fontsize=8, y=1.04)
    _save(fig, path, dpi)
    files = [Path(first["reference_file"])] + [Path(entries[m]["prediction_file"]) for m in by_model]
    return {"case": case, "index": index, "view": view, "dice": dice, "files": files,
            "summaries": [by_model[m].summary_path for m in order_models(by_model)]}
