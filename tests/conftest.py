"""Shared fixtures: scikit-learn's bundled digits, made 10x long-tailed, with 40% symmetric noise."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from modal_noisy import cli
from modal_noisy.training import CoTeachingClassifier

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Two cores run the whole suite: one intra-op thread per test process keeps timings stable.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files made mostly of slow tests first, each file's tests kept together and in order.

    ``make test`` hands whole files to two pytest-xdist workers in collection order
    (``--dist loadfile --no-loadscope-reorder``): starting the longest files first keeps one worker
    from finishing a long file alone at the end.
    """
    by_file: dict[Path, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.path, []).append(item)

    def slow_share(path: Path) -> float:
        tests = by_file[path]
        return sum(test.get_closest_marker("slow") is not None for test in tests) / len(tests)

    items[:] = [item for path in sorted(by_file, key=slow_share, reverse=True) for item in by_file[path]]


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


@pytest.fixture
def cli_without_training(capsys):
    """Run ``modal-noisy ARGV`` in this process and return ``(status, stdout, stderr)``.

    ``CoTeachingClassifier.fit`` fails the test meanwhile: bad input must be refused before any work.
    """
    def no_training(self, *args, **kwargs):
        raise AssertionError("the command trained a network before refusing its input")

    def invoke(*argv: str) -> tuple[int, str, str]:
        with mock.patch.object(CoTeachingClassifier, "fit", no_training):
            with pytest.raises(SystemExit) as stopped:
                cli.main(list(argv))
        out, err = capsys.readouterr()
        return stopped.value.code, out, err

    return invoke
