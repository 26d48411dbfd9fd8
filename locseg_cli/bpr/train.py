"""Training the slice-score regressor self-supervised, then anchoring it to the 0..100 scale.

Each step samples `slices_per_volume` equidistant slices (gap drawn in mm) from each of
`batch_volumes` volumes and minimises bpreg's order + distance losses; no labels are used. After
training, the raw scores of landmark slices fix the map to the 0..100 scale (a least-squares
line through (mean raw score, target score) per landmark: with only pelvis_start and eyes_end it
is exactly bpreg's min/max transform), and the training volumes give the expected slope.
Checkpoints (model, optimiser, both random streams) are written atomically every
`checkpoint_every` steps; `resume=True` continues a run exactly where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ..config import config_dict
from ..datasets import open_dataset
from ..errors import LocsegError
from ..io.atomic import atomic_path, write_json
from ..io.manifest import StageWriter, file_fingerprint, fingerprint, folder_fingerprint
from ..io.nifti import load_volume
from ..progress import NullProgress, Progress
from .config import BprTrainConfig
from .landmarks import Landmark, case_landmarks, read_landmark_file
from .losses import bpr_loss, landmark_loss
from .network import build_regressor
from .scores import BPREG_EXPECTED_SLOPE, CleaningSettings, fit_line, reference_lookup_table, transform_scores
from .slices import HU_RANGE, prepare_slices

MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
SETTINGS_FILE = "inference-settings.json"
STAGE = "bpr-train"
FORMAT = "locseg-bpr-model"
BN_BATCHES = 32  # batches for the final BatchNorm statistics


@dataclass
class TrainVolume:
    """One training volume's non-empty slices (float16 to halve memory) and its landmarks."""

    case_id: str
    slices: np.ndarray  # (n, size, size) float16
    z_spacing: float
    landmarks: list[tuple[str, int, float]] = field(default_factory=list)  # (name, slice, target score)


@dataclass
class TrainResult:
    out: Path
    up_to_date: bool
    steps: int = 0
    final_loss: float = float("nan")
    calibration: dict[str, Any] = field(default_factory=dict)


def _volume_landmarks(stack_file_index: np.ndarray, keep: np.ndarray, marks: list[Landmark],
                      case_id: str, image: Path) -> list[tuple[str, int, float]]:
    """Landmarks moved from the file's slice index to the kept canonical slice index."""
    pos = {int(fi): i for i, fi in enumerate(stack_file_index)}
    kept = {int(c): j for j, c in enumerate(np.flatnonzero(keep))}
    out = []
    for m in marks:
        if m.raw_index not in pos:
            raise LocsegError(f"case {case_id!r}: landmark {m.name!r} at slice {m.raw_index} is outside the "
                              f"image's {len(stack_file_index)} axial slices", image)
        c = pos[m.raw_index]
        if c in kept:
            out.append((m.name, kept[c], m.score))
    return out


def load_training_volumes(data: Path, cfg: BprTrainConfig, landmarks_file: Path | None,
                          progress: Progress) -> list[TrainVolume]:
    ds = open_dataset(data)
    user = read_landmark_file(landmarks_file) if landmarks_file else None
    if user:
        unknown = sorted(set(user) - {c.case_id for c in ds.cases})
        if unknown:
            raise LocsegError(f"landmarks given for cases not in --data: {', '.join(unknown[:5])}", landmarks_file)
    volumes = []
    progress.start("bpr: reading volumes", total=len(ds.cases))
    for case in ds.cases:
        stack = prepare_slices(load_volume(case.image), cfg.pixel_mm, cfg.size, HU_RANGE)
        keep = ~stack.empty
        if keep.sum() >= cfg.slices_per_volume:
            marks = _volume_landmarks(stack.file_index, keep, case_landmarks(data, case.case_id, user),
                                      case.case_id, case.image)
            volumes.append(TrainVolume(case.case_id, stack.slices[keep].astype(np.float16), stack.z_spacing, marks))
        progress.advance(1)
    progress.stop()
    if not volumes:
        raise LocsegError(f"no volume has {cfg.slices_per_volume} non-empty axial slices to train on", data)
    return volumes


class SliceSampler:
    """Equidistant slice tuples: the self-supervised training samples.

    Every millimetre of body in the training set is drawn about equally often: a volume is picked
    with probability proportional to its length (mm), then an anchor slice uniformly inside it, then
    the tuple's place around the anchor uniformly among those that fit. Picking volumes uniformly and
    the tuple's first slice uniformly (the textbook recipe) under-samples whatever lies at the ends
    of long volumes -- the pelvis, which only pelvis-including scans hold and always at their
    inferior end, was drawn 2-5 times less often per slice than the abdomen, and scored flat.
    """

    def __init__(self, volumes: list[TrainVolume], cfg: BprTrainConfig, rng: np.random.Generator):
        self.volumes = volumes
        self.cfg = cfg
        self.rng = rng
        length = np.array([len(v.slices) * v.z_spacing for v in volumes], dtype=np.float64)
        self.volume_p = length / length.sum()
        # landmark slices, each landmark name drawn equally often (pelvis_start is in few volumes)
        self.marks = [(i, idx, score, name) for i, v in enumerate(volumes) for name, idx, score in v.landmarks]
        count: dict[str, int] = {}
        for *_, name in self.marks:
            count[name] = count.get(name, 0) + 1
        weight = np.array([1.0 / count[name] for *_, name in self.marks], dtype=np.float64)
        self.mark_p = weight / weight.sum() if len(weight) else weight

    def sample_volume(self, v: TrainVolume) -> tuple[np.ndarray, float]:
        m = self.cfg.slices_per_volume
        n = len(v.slices)
        gap = self.rng.uniform(self.cfg.min_gap_mm, self.cfg.max_gap_mm)
        k = int(min(max(1, round(gap / v.z_spacing)), (n - 1) // (m - 1)))
        last = n - 1 - (m - 1) * k  # the highest first slice that fits
        anchor = int(self.rng.integers(0, n))
        places = [j for j in range(m) if 0 <= anchor - j * k <= last]
        start = anchor - places[int(self.rng.integers(len(places)))] * k if places else int(
            self.rng.integers(0, last + 1))
        idx = start + k * np.arange(m)
        return v.slices[idx].astype(np.float32), k * v.z_spacing

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """(B, m, H, W) slices, inferior first, and (B,) gaps in mm."""
        picks = self.rng.choice(len(self.volumes), self.cfg.batch_volumes, p=self.volume_p)
        xs, gaps = zip(*(self.sample_volume(self.volumes[int(i)]) for i in picks))
        x = np.stack(xs)
        if self.cfg.augment:
            x = self.augment(x)
        return x, np.asarray(gaps, dtype=np.float32)

    def landmark_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """(L, H, W) slices at or near landmarks of any volumes and (L,) their target scores.

        Each slice is drawn up to `landmark_jitter_mm` away from its landmark, its target moved by that
        distance times bpreg's expected slope: trained on the landmark slices alone, the regressor
        learns those few slices by heart and leaves their neighbours where they were (a landmark
        that scores right in the middle of a wrongly placed stretch -- and an anchoring line that
        looks perfect).
        """
        n = self.cfg.landmark_slices if len(self.marks) >= 2 else 0
        size = self.cfg.size
        if not n:
            return np.zeros((0, size, size), np.float32), np.zeros(0, np.float32)
        picks = self.rng.choice(len(self.marks), n, p=self.mark_p)
        offsets = self.rng.uniform(-self.cfg.landmark_jitter_mm, self.cfg.landmark_jitter_mm, n)
        xs, targets = [], []
        for pick, offset in zip(picks, offsets):
            vi, idx, score, _ = self.marks[int(pick)]
            v = self.volumes[vi]
            j = int(np.clip(idx + round(offset / v.z_spacing), 0, len(v.slices) - 1))
            xs.append(v.slices[j].astype(np.float32))
            targets.append(score + (j - idx) * v.z_spacing * BPREG_EXPECTED_SLOPE)
        x = np.stack(xs)
        if self.cfg.augment:
            x = self.augment(x[None])[0]
        return x, np.asarray(targets, dtype=np.float32)

    def augment(self, x: np.ndarray) -> np.ndarray:
        """Per slice: left-right flip, transpose, HU shift/scale, Gaussian noise (bpreg's kinds), and an
        in-plane zoom by up to +-`zoom`: body girth differs between patients as much as along one body, so
        without it the regressor reads position from size (a stouter patient scores lower everywhere)."""
        b, m = x.shape[:2]
        r = self.rng
        flip = r.random((b, m)) < 0.5
        x[flip] = x[flip][..., ::-1]
        tr = r.random((b, m)) < 0.5
        x[tr] = np.swapaxes(x[tr], -1, -2)
        if self.cfg.zoom > 0:
            zoom = np.where(r.random((b, m)) < 0.5, r.uniform(1 - self.cfg.zoom, 1 + self.cfg.zoom, (b, m)), 1.0)
            for i, j in np.argwhere(zoom != 1.0):
                x[i, j] = zoom_slice(x[i, j], float(zoom[i, j]))
        scale = np.where(r.random((b, m)) < 0.5, r.uniform(0.8, 1.2, (b, m)), 1.0)
        shift = np.where(r.random((b, m)) < 0.5, r.uniform(-0.08, 0.08, (b, m)), 0.0)
        noise = np.where(r.random((b, m)) < 0.5, r.uniform(0, 0.04, (b, m)), 0.0)
        x = x * scale[..., None, None] + shift[..., None, None]
        x = x + r.standard_normal(x.shape, dtype=np.float32) * noise[..., None, None].astype(np.float32)
        return np.clip(x, -1, 1).astype(np.float32)


def zoom_slice(image: np.ndarray, factor: float) -> np.ndarray:
    """Magnify a (H, W) slice by `factor` about its centre (linear interpolation, air outside)."""
    centre = (np.asarray(image.shape, dtype=np.float64) - 1) / 2
    return ndimage.affine_transform(image, np.full(2, 1.0 / factor), offset=centre - centre / factor, order=1,
                                    mode="constant", cval=-1.0)


def _lr_at(cfg: BprTrainConfig, step: int) -> float:
    t = min(step / max(1, cfg.steps), 1.0)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise LocsegError(f"cannot read checkpoint ({str(exc).splitlines()[0][:160]}); use --force to start "
                          "over", path) from None


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, sampler: SliceSampler, batches: int, device: str) -> None:
    """Re-estimate BatchNorm statistics as plain averages over `batches` training batches.

    The running averages of a short training run lag behind the weights; scoring in eval mode
    with them shifts every score. Cumulative averages over fresh batches remove that lag.
    """
    norms = [mod for mod in model.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [mod.momentum for mod in norms]
    for mod in norms:
        mod.reset_running_stats()
        mod.momentum = None
    model.train()
    for _ in range(batches):
        x, _ = sampler.batch()
        model(torch.from_numpy(x.reshape(-1, 1, *x.shape[2:])).to(device))
    for mod, m in zip(norms, saved):
        mod.momentum = m
    model.eval()


@torch.no_grad()
def predict_raw(model: torch.nn.Module, slices: np.ndarray, device: str = "cpu", batch: int = 64) -> np.ndarray:
    """Raw scores of (n, H, W) slices."""
    model.eval()
    out = []
    for s in range(0, len(slices), batch):
        x = torch.from_numpy(np.asarray(slices[s:s + batch], dtype=np.float32)[:, None]).to(device)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def calibrate(raw_per_volume: dict[str, np.ndarray], volumes: list[TrainVolume]) -> dict[str, Any]:
    """Map raw scores to 0..100 from the landmark slices; expected slope; look-up table.

    A least-squares line raw = c * target + d over every landmark slice (targets may differ from
    case to case, as the synthetic cohort's do), inverted: with only pelvis_start (0) and eyes_end
    (100) it maps each landmark's mean raw score exactly onto its target, as bpreg does.
    """
    names, raws, targets = [], [], []
    for v in volumes:
        for name, idx, score in v.landmarks:
            names.append(name)
            raws.append(float(raw_per_volume[v.case_id][idx]))
            targets.append(float(score))
    t, r = np.asarray(targets), np.asarray(raws)
    if len(np.unique(np.round(t, 6))) < 2:
        raise LocsegError("need landmark slices with at least two different target scores (e.g. pelvis_start "
                          "and eyes_end) in the training cases: give --landmarks FILE or use the synthetic "
                          "cohort's bodypos/ files")
    c, d = np.polyfit(t, r, 1)
    if not c > 0:
        raise LocsegError("landmark scores run against the learned order (pelvis above eyes?): check the "
                          "landmark slice indices, or train longer (--steps)")
    tmin, tmax = float(d), float(c * 100.0 + d)
    slopes = []
    for v in volumes:
        s = transform_scores(raw_per_volume[v.case_id], tmin, tmax)
        slope, _ = fit_line(np.arange(len(s)) * v.z_spacing, s)
        if np.isfinite(slope):
            slopes.append(slope)
    mapped = transform_scores(r, tmin, tmax)
    table = reference_lookup_table()
    spread, error = {}, {}
    for n in sorted(set(names)):
        sel = np.array([x == n for x in names])
        table[n] = {"mean": float(mapped[sel].mean()), "std": float(mapped[sel].std()), "count": int(sel.sum()),
                    "source": "training"}
        spread[n] = float((mapped[sel] - t[sel]).std())  # spread around each case's own target
        error[n] = float((mapped[sel] - t[sel]).mean())
    return {"transform_min": tmin, "transform_max": tmax, "slope_mean": float(np.mean(slopes)),
            "slope_std": float(np.std(slopes)), "lookup_table": table, "landmark_residual": error,
            "landmark_spread": spread}


def train_regressor(data: str | Path, out: str | Path, cfg: BprTrainConfig, landmarks_file: str | Path | None = None,
                    resume: bool = False, force: bool = False, device: str | None = None,
                    progress: Progress | None = None) -> TrainResult:
    """Train (or resume) a regressor on the raw dataset `data`; write `out/model.pt`."""
    progress = progress or NullProgress()
    data, out = Path(data), Path(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    inputs = {"data": (data, folder_fingerprint(data))}
    if landmarks_file is not None:
        landmarks_file = Path(landmarks_file)
        if not landmarks_file.is_file():
            raise LocsegError("landmark file not found", landmarks_file)
        inputs["landmarks"] = (landmarks_file, file_fingerprint(landmarks_file))
    with StageWriter(STAGE, out, config_dict(cfg), inputs, force) as w:
        if w.up_to_date and (out / MODEL_FILE).is_file():
            return TrainResult(out, True, cfg.steps, float(w.previous.extra.get("final_loss", float("nan"))),
                               w.previous.extra.get("calibration", {}))
        ckpt_path = out / CHECKPOINT_FILE
        if ckpt_path.is_file() and not resume and not force:
            raise LocsegError("holds a training checkpoint: add --resume to continue it or --force to start over",
                              out)
        volumes = load_training_volumes(data, cfg, landmarks_file, progress)
        torch.manual_seed(cfg.seed)
        model = build_regressor(cfg.arch, cfg.width).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        rng = np.random.default_rng(cfg.seed)
        step, history = 0, []
        if resume and ckpt_path.is_file():
            ck = load_checkpoint(ckpt_path)
            if (ck.get("arch"), ck.get("width")) != (cfg.arch, cfg.width):
                raise LocsegError(f"checkpoint is a {ck.get('arch')} (width {ck.get('width')}) model, not "
                                  f"{cfg.arch} (width {cfg.width}); use --force to start over", ckpt_path)
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            rng.bit_generator.state = ck["np_rng"]
            torch.set_rng_state(ck["torch_rng"])
            step, history = int(ck["step"]), list(ck["history"])
            progress.log(f"resuming at step {step}/{cfg.steps}")
        sampler = SliceSampler(volumes, cfg, rng)
        # raw score per unit of the 0..100 scale that the heuristic and logistic order losses settle at
        # (ds = beta/alpha per mm at bpreg's expected slope); the Yan loss has no scale of its own and takes the same
        raw_per_unit = cfg.order_beta / cfg.order_alpha / BPREG_EXPECTED_SLOPE

        def checkpoint() -> None:
            save_checkpoint(ckpt_path, {"step": step, "arch": cfg.arch, "width": cfg.width,
                                        "model": model.state_dict(), "optimizer": opt.state_dict(),
                                        "np_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                                        "history": history})

        progress.start("bpr: training", total=cfg.steps)
        if step:
            progress.advance(min(step, cfg.steps))
        model.train()
        while step < cfg.steps:
            x, gaps = sampler.batch()
            marks, targets = sampler.landmark_batch()
            b, m = x.shape[:2]
            for g in opt.param_groups:
                g["lr"] = _lr_at(cfg, step)
            both = np.concatenate([x.reshape(b * m, *x.shape[2:]), marks])[:, None]
            out_all = model(torch.from_numpy(both).to(device))
            scores = out_all[:b * m].reshape(b, m)
            loss, parts = bpr_loss(scores, torch.from_numpy(gaps).to(device), cfg.order_loss, cfg.order_alpha,
                                   cfg.order_beta, cfg.distance_weight)
            if len(marks):
                lm = landmark_loss(out_all[b * m:], torch.from_numpy(targets).to(device), raw_per_unit)
                loss = loss + cfg.landmark_weight * lm
                parts["landmark"] = float(lm.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            history.append(float(loss.detach()))
            progress.advance(1, loss=float(np.mean(history[-20:])), **parts)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                checkpoint()
        progress.stop()
        recalibrate_batchnorm(model, sampler, BN_BATCHES, device)

        progress.start("bpr: calibrating", total=len(volumes))
        raw = {}
        for v in volumes:
            raw[v.case_id] = predict_raw(model, v.slices, device)
            progress.advance(1)
        progress.stop()
        cal = calibrate(raw, volumes)
        cleaning = CleaningSettings.scaled_to(cal["transform_min"], cal["transform_max"], cal["slope_mean"])
        settings = {"format": FORMAT, "version": 1, "arch": cfg.arch, "width": cfg.width,
                    "pixel_mm": cfg.pixel_mm, "size": cfg.size, "hu_range": list(HU_RANGE),
                    "cleaning": cleaning.to_json(), "lookup_table": cal["lookup_table"],
                    "slope_std": cal["slope_std"], "landmark_residual": cal["landmark_residual"],
                    "trained_steps": step, "training_cases": [v.case_id for v in volumes]}
        model_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_checkpoint(out / MODEL_FILE, {**settings, "state_dict": model_state})
        write_json(out / SETTINGS_FILE, settings)
        for v in volumes:
            w.add_case(v.case_id, {}, {"slices": len(v.slices), "landmarks": sorted({n for n, _, _ in v.landmarks})},
                       fingerprint([v.case_id, len(v.slices)]))
        final = float(np.mean(history[-50:])) if history else float("nan")
        summary = {"transform_min": cal["transform_min"], "transform_max": cal["transform_max"],
                   "slope_mean": cal["slope_mean"], "slope_std": cal["slope_std"],
                   "landmark_spread": cal["landmark_spread"]}
        w.finish({"model": MODEL_FILE, "checkpoint": CHECKPOINT_FILE, "settings": SETTINGS_FILE,
                  "final_loss": final, "calibration": summary})
        return TrainResult(out, False, step, final, summary)
