"""A PNG montage of a few cases: axial slices at landmark levels, a coronal and a sagittal slice,
each with the label overlay, so a person can judge at a glance whether the phantom looks like CT."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from ..io.nifti import canonical_orientation

WINDOW = (-160.0, 240.0)  # soft-tissue window, HU
AXIAL_LEVELS = (("Th8", "chest"), ("liver_end", "liver dome"), ("L1", "L1"), ("kidney", "kidneys"),
                ("L4", "L4"), ("femur_end", "hips"))


def _label_colours(n: int) -> np.ndarray:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    cols = np.array([cmap(i % 20) for i in range(max(n, 1))], dtype=np.float32)
    cols[0, 3] = 0.0
    return cols


def _canonical(image: np.ndarray, label: np.ndarray, affine: np.ndarray):
    orient, aff = canonical_orientation(affine, image.shape)
    return orient.to_canonical(image), orient.to_canonical(label), aff


def write_montage(path: str | Path, cases: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, dict]],
                  labels: dict[int, str]) -> None:
    """`cases`: (case id, stored image, stored label, affine, bodypos) for each case shown (one row each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = _label_colours(max(labels) + 1)
    ncol = len(AXIAL_LEVELS) + 2
    fig, axes = plt.subplots(len(cases), ncol, figsize=(2.3 * ncol, 2.6 * len(cases)), squeeze=False,
                             facecolor="black")
    for row, (cid, image, label, affine, bodypos) in enumerate(cases):
        img, lab, aff = _canonical(image, label, affine)
        sp = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))  # (z, y, x) spacing of the canonical array
        # canonical axis 0 index of each stored axial index
        zs = np.asarray(bodypos["z_world_mm"])
        z_canon = aff[2, 0] * np.arange(img.shape[0]) + aff[2, 3]

        panels = []
        for key, title in AXIAL_LEVELS:
            lm = bodypos["landmarks"].get(key)
            if lm is None:
                panels.append(None)
                continue
            zi = int(np.argmin(np.abs(z_canon - zs[lm["index"]])))
            panels.append((f"{title} ({lm['score']:.0f})", img[zi][::-1, ::-1], lab[zi][::-1, ::-1], sp[1] / sp[2]))
        xi = img.shape[2] // 2
        yi = int(np.argmax((lab > 0).sum(axis=(0, 2)))) if lab.any() else img.shape[1] // 2
        panels.append(("coronal", img[::-1, yi, ::-1], lab[::-1, yi, ::-1], sp[0] / sp[2]))
        panels.append(("sagittal", img[::-1, ::-1, xi], lab[::-1, ::-1, xi], sp[0] / sp[1]))
        for col, panel in enumerate(panels):
            ax = axes[row][col]
            ax.set_axis_off()
            ax.set_facecolor("black")
            if panel is None:
                continue
            title, sl, sl_lab, aspect = panel
            ax.imshow(sl, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect, interpolation="bilinear")
            ov = cols[np.clip(sl_lab, 0, len(cols) - 1)].copy()
            ov[..., 3] = np.where(sl_lab > 0, 0.35, 0.0)
            ax.imshow(ov, aspect=aspect, interpolation="nearest")
            ax.set_title(f"{cid}: {title}" if col == 0 else title, color="white", fontsize=7)
    fig.tight_layout(pad=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, facecolor="black", format="png")
    plt.close(fig)
