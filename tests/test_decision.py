"""The prior-correction decision rule by hand, its input checks, and the import direction it allows."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import modal_noisy
from modal_noisy import metrics
from modal_noisy.decision import ensemble_prior, label_prior, prior_corrected_predict

PROBS = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])


def test_prior_corrected_predict_by_hand():
    probs = np.array([[0.6, 0.4], [0.8, 0.2], [0.3, 0.7]])
    # prior 0.75 / 0.25: scores 0.8 / 1.6, 1.07 / 0.8, 0.4 / 2.8
    np.testing.assert_array_equal(prior_corrected_predict(probs, [3, 1]), [1, 0, 1])
    np.testing.assert_array_equal(prior_corrected_predict(probs, [0.5, 0.5]), probs.argmax(1))
    # a zero probability never wins, whatever the prior
    assert prior_corrected_predict(np.array([[0.0, 1.0]]), [1e-9, 1.0])[0] == 1


@pytest.mark.parametrize(
    ("probs", "prior", "match"),
    [
        (PROBS, [0.5, 0.5], r"class_prior must have one entry per class, shape \(3,\) \(got shape \(2,\)\)"),
        (PROBS, [0.5, 0.0, 0.5], r"class_prior must be finite and > 0 for every class \(got \[0.5, 0.0"),
        (PROBS, [0.5, np.nan, 0.5], "class_prior must be finite"),
        (-PROBS, [1, 1, 1], r"pred_probs must be >= 0"),
        (PROBS[:, 0], [1, 1, 1], r"shape \(n_samples, n_classes\)"),
    ],
    ids=["length", "zero", "nan", "negative-probs", "1d"],
)
def test_prior_corrected_predict_validates(probs, prior, match):
    with pytest.raises(ValueError, match=match):
        prior_corrected_predict(probs, prior)


def test_label_prior_by_hand_with_a_pseudo_count_for_an_absent_class():
    np.testing.assert_allclose(label_prior([0, 0, 0, 2], 3), [3 / 5, 1 / 5, 1 / 5])
    np.testing.assert_allclose(label_prior(np.array([[1], [1]]), 2), [1 / 3, 2 / 3])  # MedMNIST column


@pytest.mark.parametrize(
    ("labels", "n_classes", "match"),
    [
        ([0, 3], 3, r"labels must lie in \[0, 3\) for n_classes=3 \(got label 3\)"),
        ([0.5, 1], 2, r"labels must .*integer"),
        ([0, 1], 0, r"n_classes must be"),
    ],
    ids=["out-of-range", "non-integer", "no-classes"],
)
def test_label_prior_validates(labels, n_classes, match):
    with pytest.raises(ValueError, match=match):
        label_prior(labels, n_classes)


def test_ensemble_prior_takes_the_prior_out_once_per_network():
    np.testing.assert_allclose(ensemble_prior([3, 1]), [0.75, 0.25])
    np.testing.assert_allclose(ensemble_prior([3, 1], 2), [0.9, 0.1])  # 9 : 1
    # the softmax of two summed logit vectors, each log(posterior), divided by the squared prior,
    # decides as dividing each posterior by the prior does
    post1, post2 = np.array([0.7, 0.3]), np.array([0.6, 0.4])
    summed = post1 * post2 / (post1 * post2).sum()
    np.testing.assert_array_equal(
        prior_corrected_predict(summed[None], ensemble_prior([0.75, 0.25], 2)),
        [np.argmax(post1 / [0.75, 0.25] * post2 / [0.75, 0.25])],
    )


@pytest.mark.parametrize(
    ("prior", "n_networks", "match"),
    [
        ([0.5, 0.0], 1, r"class_prior must be finite and > 0"),
        ([[0.5, 0.5]], 1, r"class_prior must have shape \(n_classes,\) \(got shape \(1, 2\)\)"),
        ([0.5, 0.5], 0, r"n_networks must be"),
    ],
    ids=["zero", "2d", "no-networks"],
)
def test_ensemble_prior_validates(prior, n_networks, match):
    with pytest.raises(ValueError, match=match):
        ensemble_prior(prior, n_networks)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_training_imports_neither_metrics_nor_cleaning():
    training = Path(modal_noisy.__file__).parent / "training"
    for path in sorted(training.glob("*.py")):
        imported = _imported_modules(path)
        bad = {name for name in imported if name.startswith(("modal_noisy.metrics", "modal_noisy.cleaning"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_metrics_exports_metrics_only():
    assert not {"ensemble_prior", "label_prior", "prior_corrected_predict"} & set(metrics.__all__)
