"""Self-supervised losses of body part regression (Yan et al. 2018; bpreg).

Every loss takes `scores` of shape (B, m): the raw scores of m equidistant slices of B volumes,
ordered from inferior to superior, so a correct regressor's scores rise along dim 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def order_loss_yan(scores: torch.Tensor) -> torch.Tensor:
    """Yan's order loss: -log sigmoid(s_{j+1} - s_j), averaged (log-sigmoid is the stable form)."""
    return -F.logsigmoid(scores[:, 1:] - scores[:, :-1]).mean()


def order_loss_heuristic(scores: torch.Tensor, gap_mm: torch.Tensor, alpha: float = 0.5,
                         beta: float = 0.025) -> torch.Tensor:
    """bpreg's heuristic order loss: mean((sigmoid(beta * dz_mm) - sigmoid(alpha * ds))^2).

    Unlike Yan's, it also pins the score scale (ds ~ beta/alpha per mm), so scores cannot drift to
    ever larger values. bpreg's defaults: alpha 0.5, beta 0.025. `gap_mm` (B,) or (B, 1) is the distance between neighbouring sampled slices.
    """
    ds = scores[:, 1:] - scores[:, :-1]
    target = torch.sigmoid(beta * gap_mm.reshape(-1, 1).to(scores.dtype))
    return ((target - torch.sigmoid(alpha * ds)) ** 2).mean()


def order_loss_logistic(scores: torch.Tensor, gap_mm: torch.Tensor, alpha: float = 0.5,
                        beta: float = 0.025) -> torch.Tensor:
    """bpreg's heuristic target as a cross-entropy: BCE(sigmoid(alpha * ds), sigmoid(beta * dz_mm)), minus its
    minimum (the target's own entropy) so a perfect fit scores 0.

    Same optimum as the heuristic loss (ds = beta / alpha per mm), but its gradient
    sigmoid(alpha ds) - sigmoid(beta dz) does not vanish when a pair is badly out of order or far too
    far apart: the squared form's gradient carries a factor sigmoid'(alpha ds), which all but
    disappears once |alpha ds| exceeds ~4, so a wrongly placed region (the pelvis below a
    too-high thigh, a flat stretch) barely gets pushed back.
    """
    ds = scores[:, 1:] - scores[:, :-1]
    target = torch.sigmoid(beta * gap_mm.reshape(-1, 1).to(scores.dtype)).expand_as(ds)
    bce = F.binary_cross_entropy_with_logits(alpha * ds, target, reduction="none")
    entropy = -(target * torch.log(target) + (1 - target) * torch.log1p(-target))
    return (bce - entropy).mean()


def distance_loss(scores: torch.Tensor) -> torch.Tensor:
    """Equidistant slices should have equal score steps: SmoothL1 of the second difference."""
    if scores.shape[1] < 3:
        return scores.new_zeros(())
    second = scores[:, 2:] - 2 * scores[:, 1:-1] + scores[:, :-2]
    return F.smooth_l1_loss(second, torch.zeros_like(second))


def landmark_loss(scores: torch.Tensor, targets: torch.Tensor, raw_per_unit: float) -> torch.Tensor:
    """Landmark slices of different volumes: score differences should follow target differences.

    SmoothL1 of the centred raw scores against the centred targets (0..100 scale) times
    `raw_per_unit`; centring leaves the offset free (the anchoring line fixes it), so only the
    relative placement of anatomy across patients is taught. The order and distance losses only
    compare slices of one volume, so they leave every volume's offset (and a region's stretch that
    few volumes show) free; this term ties the volumes to each other.
    """
    if scores.numel() < 2:
        return scores.new_zeros(())
    t = targets.to(scores.dtype)
    return F.smooth_l1_loss(scores - scores.mean(), (t - t.mean()) * raw_per_unit)


def bpr_loss(scores: torch.Tensor, gap_mm: torch.Tensor, order: str = "heuristic", alpha: float = 0.5,
             beta: float = 0.025, distance_weight: float = 0.02) -> tuple[torch.Tensor, dict[str, float]]:
    """Order loss + distance_weight * distance loss; also returns the parts for logging."""
    if order == "heuristic":
        lo = order_loss_heuristic(scores, gap_mm, alpha, beta)
    elif order == "logistic":
        lo = order_loss_logistic(scores, gap_mm, alpha, beta)
    elif order == "yan":
        lo = order_loss_yan(scores)
    else:
        raise ValueError(f"unknown order loss {order!r} (heuristic, logistic, yan)")
    ld = distance_loss(scores)
    return lo + distance_weight * ld, {"order": float(lo.detach()), "distance": float(ld.detach())}
