"""Vectorised per-batch selection and the forget-rate schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modal_noisy.training._selection import (
    forget_rate_at,
    rank_within_groups,
    select_samples,
    split_keep,
)


@pytest.mark.parametrize(
    ("epoch", "num_gradual", "exponent", "expected"),
    [
        (0, 10, 1.0, 0.0),
        (5, 10, 1.0, 0.2),
        (10, 10, 1.0, 0.4),
        (30, 10, 1.0, 0.4),
        (5, 10, 2.0, 0.1),
        (0, 0, 1.0, 0.4),
    ],
    ids=["start", "half-way", "ramp-end", "after", "exponent-2", "no-ramp"],
)
def test_forget_rate_schedule(epoch, num_gradual, exponent, expected):
    assert forget_rate_at(epoch, 0.4, num_gradual, exponent) == pytest.approx(expected)


def _reference_rank(key: np.ndarray, groups: np.ndarray) -> np.ndarray:
    rank = np.empty(len(key), dtype=np.int64)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        order = members[np.argsort(key[members], kind="stable")]
        rank[order] = np.arange(len(order))
    return rank


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=40),
)
def test_rank_within_groups_matches_reference(pairs):
    key = np.array([p[0] for p in pairs], dtype=np.float32)  # many ties on purpose
    groups = np.array([p[1] for p in pairs], dtype=np.int64)
    got = rank_within_groups(torch.as_tensor(key), torch.as_tensor(groups), 4).numpy()
    np.testing.assert_array_equal(got, _reference_rank(key, groups))


def test_select_global_small_loss():
    loss = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7])
    mask = select_samples(loss, torch.tensor([2]))
    assert mask.tolist() == [False, True, False, True, False]


def test_select_with_fill_takes_smallest_key_among_the_rest():
    loss = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    vog = torch.tensor([9.0, 9.0, 9.0, 5.0, 0.1, 0.2])
    mask = select_samples(loss, torch.tensor([4]), fill_key=vog, fill=torch.tensor([2]))
    # two by loss (samples 0, 1), two by VoG among the rest (samples 4, 5)
    assert mask.tolist() == [True, True, False, False, True, True]


def test_select_fill_never_double_counts():
    loss = torch.tensor([0.1, 0.2, 0.3, 0.4])
    vog = torch.tensor([0.0, 0.0, 9.0, 9.0])  # the smallest VoG are already taken by loss
    mask = select_samples(loss, torch.tensor([3]), fill_key=vog, fill=torch.tensor([1]))
    assert int(mask.sum()) == 3 and mask.tolist() == [True, True, True, False]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 60),
    st.integers(0, 2**31 - 1),
    st.floats(0.0, 1.0),
)
def test_select_per_group_counts(n, seed, fill_fraction):
    gen = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, 3, (n,), generator=gen)
    loss = torch.rand(n, generator=gen)
    key = torch.rand(n, generator=gen)
    keep = torch.randint(0, 8, (3,), generator=gen)
    fill = split_keep(keep, fill_fraction)
    mask = select_samples(loss, keep, groups=groups, fill_key=key, fill=fill)
    sizes = torch.bincount(groups, minlength=3)
    got = torch.bincount(groups[mask], minlength=3)
    assert torch.equal(got, torch.minimum(keep, sizes))
    # the loss part of each group is its smallest-loss samples
    n_loss = (keep - fill).clamp(min=0)
    for g in range(3):
        members = torch.nonzero(groups == g).squeeze(1)
        best = members[torch.argsort(loss[members], stable=True)][: int(n_loss[g])]
        assert bool(mask[best].all())


@pytest.mark.parametrize(
    ("keep", "fraction", "expected"),
    [(10, 0.2, 2), (10, 0.0, 0), (10, 1.0, 10), (7, 0.2, 2), (1, 0.2, 1)],
    ids=["paper", "loss-only", "vog-only", "rounding", "one"],
)
def test_split_keep(keep, fraction, expected):
    assert split_keep(keep, fraction) == expected
    assert int(split_keep(torch.tensor([keep]), fraction)[0]) == expected
