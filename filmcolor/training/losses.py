"""The losses of training: adversarial (LSGAN or vanilla) and the supervised chroma term."""

from __future__ import annotations

import torch
import torch.nn.functional as nnf

from ..config import (
    GeneratorConfig,
)
from .networks import binned_cross_entropy


def gan_loss(prediction: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """Least-squares (the paper) or binary cross-entropy GAN loss against all-real/all-fake."""
    target = torch.ones_like(prediction) if real else torch.zeros_like(prediction)
    if mode == "lsgan":
        return nnf.mse_loss(prediction.float(), target.float())
    return nnf.binary_cross_entropy_with_logits(prediction.float(), target.float())


REBALANCE_BINS = 24
"""Bins per chroma axis of :func:`rebalance_weights` (over -1..1: 0.083 wide, about Zhang et
al.'s 10 units of ab)."""


BINNED_STRIDE = 2
"""A binned colorizer's cross-entropy is taken on every second pixel of every second row:
neighbours carry nearly the same label, and the scores of all pixels (bins^2 planes) made a
step twice as slow on the 2-core CPU (4.1 s against 2.1 with 15 x 15 bins, batch 32). The
four phases take turns step by step: the up-convolutions give even and odd pixels different
weights, and a run trained on one phase only painted its pixels six times stronger than the
others (a checkerboard)."""


def rebalance_weights(chroma: torch.Tensor, strength: float, mix: float = 0.5) -> torch.Tensor:
    """Per-pixel weights (N, 1, H, W) of a supervised chroma loss that favour rare colours.

    Class rebalancing (Zhang et al. 2016, "Colorful Image Colorization"): a pixel whose target
    chroma (N, 2, H, W, in -1..1) falls in a bin of the batch's 2-D chroma histogram holding a
    share ``p`` of the pixels weighs ``((1 - mix) * p + mix / Q) ** -strength``, with Q the
    occupied bins; scaled so the weights average 1 over the batch. ``strength`` 0 gives 1
    everywhere.
    """
    with torch.no_grad():
        last = REBALANCE_BINS - 1
        index = ((chroma.float().clamp(-1, 1) + 1) * (last / 2)).round().long()
        flat = index[:, 0] * REBALANCE_BINS + index[:, 1]
        counts = torch.bincount(flat.flatten(), minlength=REBALANCE_BINS**2).float()
        share = counts / counts.sum()
        occupied = (counts > 0).sum().clamp(min=1)
        weight = ((1 - mix) * share + mix / occupied).pow(-strength)
        weight = weight / (share * weight).sum()
        return weight[flat].unsqueeze(1)


def supervised_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    rebalance: float,
    binned: GeneratorConfig | None = None,
) -> torch.Tensor:
    """The supervised chroma term, each pixel weighted by :func:`rebalance_weights`.

    L1 on the chroma; for a binned head (``binned``, its shape; ``prediction`` its scores)
    the cross-entropy of :func:`~filmcolor.training.networks.binned_cross_entropy`.
    """
    if binned is None and rebalance <= 0:
        return nnf.l1_loss(prediction, target)
    if binned is not None:
        error = binned_cross_entropy(prediction, target, binned)
    else:
        error = (prediction.float() - target.float()).abs().mean(dim=1, keepdim=True)
    return (error * rebalance_weights(target, rebalance)).mean() if rebalance > 0 else error.mean()
