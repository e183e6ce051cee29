"""Vectorised per-batch clean-sample selection: small loss, optionally filled by a second key.

Everything works on whole batches with sorts and scatters (no Python loop over samples or classes)
and never leaves the device, so selection costs the same on CPU and GPU and never synchronises.

Selection of ``keep[g]`` samples in each group ``g`` (one group = the whole batch; one group per class
= class-aware quotas): the ``keep[g] - fill[g]`` smallest-loss samples of the group, then the
``fill[g]`` samples of smallest ``fill_key`` (VoG, or a random number for the control) among those not
taken yet. Ties are broken by position in the batch (stable sorts), so results are deterministic.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "forget_rate_at",
    "rank_within_groups",
    "select_samples",
    "split_keep",
]


def forget_rate_at(epoch: int, rate: float, num_gradual: int, exponent: float) -> float:
    """Co-teaching's schedule ``τ_e = τ · min(e / T_k, 1) ** c`` for the 0-based epoch ``e``.

    Epoch 0 forgets nothing; the full rate is reached at epoch ``T_k`` (``num_gradual``) and kept.
    ``num_gradual=0`` applies the full rate from the first epoch.
    """
    if num_gradual <= 0:
        return float(rate)
    return float(rate) * min(epoch / num_gradual, 1.0) ** exponent


def rank_within_groups(key: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """0-based rank of each element by ascending ``key`` among the elements of its group.

    Parameters
    ----------
    key : Tensor of shape (B,)
    groups : LongTensor of shape (B,), values in ``[0, n_groups)``
    n_groups : int

    Returns
    -------
    LongTensor of shape (B,)
    """
    n = key.shape[0]
    order = torch.argsort(key, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]  # sorted by (group, key)
    counts = torch.bincount(groups, minlength=n_groups)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(groups)
    rank[order] = torch.arange(n, device=key.device) - starts[groups[order]]
    return rank


def split_keep(keep: torch.Tensor | int, fill_fraction: float) -> torch.Tensor | int:
    """Number of the ``keep`` places filled by the second key: ``keep - ⌊keep · (1 - λ)⌋``."""
    if isinstance(keep, int):
        return keep - math.floor(keep * (1.0 - fill_fraction))
    return keep - torch.floor(keep.to(torch.float64) * (1.0 - fill_fraction)).to(torch.long)


def select_samples(
    loss: torch.Tensor,
    keep: torch.Tensor,
    *,
    groups: torch.Tensor | None = None,
    fill_key: torch.Tensor | None = None,
    fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean mask of the samples selected as clean in one batch.

    Parameters
    ----------
    loss : Tensor of shape (B,)
        Per-sample loss; smaller = more likely clean.
    keep : LongTensor of shape (G,)
        Number of samples to keep in each group (clipped to the group's size).
    groups : LongTensor of shape (B,), optional
        Group of each sample (e.g. its given label); None = one group (``G`` must be 1).
    fill_key : Tensor of shape (B,), optional
        Second key (smaller = preferred) for the ``fill`` places of each group.
    fill : LongTensor of shape (G,), optional
        How many of ``keep`` come from ``fill_key``; requires ``fill_key``.

    Returns
    -------
    BoolTensor of shape (B,)
    """
    n_groups = keep.shape[0]
    if groups is None:
        groups = torch.zeros(loss.shape[0], dtype=torch.long, device=loss.device)
    if fill is None or fill_key is None:
        return rank_within_groups(loss, groups, n_groups) < keep[groups]
    n_loss = (keep - fill).clamp(min=0)
    taken = rank_within_groups(loss, groups, n_groups) < n_loss[groups]
    # taken samples go to the end of the second ranking so the fill picks only new ones
    key2 = torch.where(taken, torch.full_like(fill_key, float("inf")), fill_key)
    filled = (~taken) & (rank_within_groups(key2, groups, n_groups) < fill[groups])
    return taken | filled
