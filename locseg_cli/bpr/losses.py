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


def distance_loss(scores: torch.Tensor) -> torch.Tensor:
    """Equidistant slices should have equal score steps: SmoothL1 of the second difference."""
    if scores.shape[1] < 3:
        return scores.new_zeros(())
    second = scores[:, 2:] - 2 * scores[:, 1:-1] + scores[:, :-2]
    return F.smooth_l1_loss(second, torch.zeros_like(second))


def bpr_loss(scores: torch.Tensor, gap_mm: torch.Tensor, order: str = "heuristic", alpha: float = 0.5,
             beta: float = 0.025, distance_weight: float = 0.02) -> tuple[torch.Tensor, dict[str, float]]:
    """Order loss + distance_weight * distance loss; also returns the parts for logging."""
    if order == "heuristic":
        lo = order_loss_heuristic(scores, gap_mm, alpha, beta)
    elif order == "yan":
        lo = order_loss_yan(scores)
    else:
        raise ValueError(f"unknown order loss {order!r} (heuristic, yan)")
    ld = distance_loss(scores)
    return lo + distance_weight * ld, {"order": float(lo.detach()), "distance": float(ld.detach())}
