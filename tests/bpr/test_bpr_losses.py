"""Self-supervised losses and the slice regressors."""

from __future__ import annotations

import pytest
import torch

from locseg_cli.bpr.losses import bpr_loss, distance_loss, order_loss_heuristic, order_loss_yan
from locseg_cli.bpr.network import build_regressor


def test_order_losses_prefer_rising_scores():
    rising = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    falling = rising.flip(1)
    gap = torch.tensor([40.0])
    assert order_loss_yan(rising) < order_loss_yan(falling)
    assert order_loss_heuristic(rising, gap) < order_loss_heuristic(falling, gap)


def test_heuristic_order_loss_pins_the_scale():
    gap = torch.tensor([40.0])
    # minimum where sigmoid(0.5 * ds) == sigmoid(0.025 * 40), i.e. ds == 2
    right = torch.tensor([[0.0, 2.0, 4.0, 6.0]])
    assert order_loss_heuristic(right, gap) == pytest.approx(0.0, abs=1e-12)
    assert order_loss_heuristic(right * 5, gap) > 1e-3


def test_distance_loss_is_zero_for_equal_steps_only():
    assert distance_loss(torch.tensor([[1.0, 3.0, 5.0, 7.0]])) == 0
    assert distance_loss(torch.tensor([[1.0, 3.0, 9.0, 10.0]])) > 0.5


def test_combined_loss_backpropagates_to_every_score():
    s = torch.randn(2, 4, requires_grad=True)
    loss, parts = bpr_loss(s, torch.tensor([10.0, 50.0]), "heuristic", distance_weight=1.0)
    loss.backward()
    assert s.grad.abs().min() > 0
    assert set(parts) == {"order", "distance"}
    with pytest.raises(ValueError):
        bpr_loss(s, torch.tensor([1.0, 1.0]), "nope")


@pytest.mark.parametrize("arch,width", [("compact", 4), ("vgg", 2)])
def test_regressors_give_one_score_per_slice(arch, width):
    net = build_regressor(arch, width)
    out = net(torch.randn(3, 1, 64, 64))
    assert out.shape == (3,)
    with pytest.raises(ValueError):
        build_regressor("resnet", 4)
