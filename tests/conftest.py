"""Shared fixtures: scikit-learn's bundled digits, made 10x long-tailed, with 40% symmetric noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Two cores run the whole suite: one intra-op thread per test process keeps timings stable.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder with the real medical data sets; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def digits_lt():
    """Digits made 10x long-tailed (train) with a balanced clean test split."""
    from modal_noisy.datasets import load_digits_long_tailed

    return load_digits_long_tailed(imbalance_ratio=10, random_state=0)


@pytest.fixture(scope="session")
def digits_noisy(digits_lt):
    """``digits_lt`` plus ``y_noisy`` / ``is_noisy`` from 40% symmetric noise."""
    from modal_noisy.noise import inject_label_noise

    noise = inject_label_noise(digits_lt.y_train, 0.4, random_state=0)
    data = dict(digits_lt)
    data.update(y_noisy=noise.labels, is_noisy=noise.is_noisy)
    return type(digits_lt)(**data)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
