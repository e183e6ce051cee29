"""Metrics against hand-computed values and scikit-learn; the cleaning report's tables, JSON and plots."""

from __future__ import annotations

import ast
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

from modal_noisy.metrics import (
    CleaningReport,
    classification_metrics,
    relabel_precision,
    selection_metrics,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# six samples, three classes; predictions 0 1 1 1 2 0 (see the hand computation in each test)
Y6 = np.array([0, 0, 1, 1, 2, 2])
P6 = np.array(
    [
        [0.6, 0.3, 0.1],
        [0.3, 0.5, 0.2],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.1, 0.2, 0.7],
        [0.5, 0.1, 0.4],
    ]
)


# ------------------------------------------------------------------ classification
def test_classification_metrics_by_hand():
    m = classification_metrics(Y6, P6)
    # recalls 1/2, 2/2, 1/2
    assert m["per_class_recall"] == [0.5, 1.0, 0.5]
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # F1 per class: 2*1/(2+1+1), 2*2/(4+1+0), 2*1/(2+0+1)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # MCC: n=6, correct=4, true counts (2,2,2), predicted counts (2,3,1)
    assert m["mcc"] == pytest.approx((4 * 6 - 12) / math.sqrt((36 - 12) * (36 - 14)))
    # one-vs-rest AUROC: class 0 ranks 7 of 8 pairs right, classes 1 and 2 all 8
    assert m["auroc"] == pytest.approx((7 / 8 + 1 + 1) / 3)
    assert all(type(m[k]) is float for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "mcc"))


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["s0", "s1", "s2"])
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 200)
    y[:5] = np.arange(5)
    probs = rng.dirichlet(np.ones(5), 200)
    probs[np.arange(200), y] += rng.random(200) * 0.5  # better than chance
    probs /= probs.sum(axis=1, keepdims=True)
    m = classification_metrics(y, probs)
    pred = probs.argmax(1)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
    assert m["auroc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))


def test_absent_class_gives_nan_auroc_without_warning():
    y = np.array([0, 0, 1, 1])  # class 2 absent
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, probs)
    assert math.isnan(m["auroc"]) and math.isnan(m["per_class_recall"][2])
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)  # over present classes
    # F1 over classes in y_true or predicted: class 0 (2/3), 1 (1), 2 (0, predicted once)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_constant_prediction_mcc_zero_without_warning():
    y = np.array([0, 1, 1, 0])
    probs = np.tile([0.9, 0.1], (4, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, probs)
    assert m["mcc"] == 0.0 and m["auroc"] == 0.5


@pytest.mark.parametrize(
    ("y", "probs", "kwargs", "match"),
    [
        (Y6, P6[:, :2], {}, r"y_true must lie in \[0, 2\)"),
        (Y6, P6, {"n_classes": 4}, "must have n_classes=4 columns"),
        (Y6[:5], P6, {}, "same length"),
        (Y6, P6[:, 0], {}, r"shape \(n_samples, n_classes\)"),
        (Y6, np.full((6, 3), np.nan), {}, "NaN"),
    ],
    ids=["label-range", "columns", "length", "1d", "nan"],
)
def test_classification_metrics_validate(y, probs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(y, probs, **kwargs)


def test_class_prior_changes_decisions_not_auroc():
    y = np.array([0, 0, 0, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.65, 0.35]])
    plain = classification_metrics(y, probs)
    balanced = classification_metrics(y, probs, class_prior=[0.75, 0.25])
    assert plain["per_class_recall"] == [1.0, 0.0]
    # divided by the prior: 1.2 / 0.4, 1.07 / 0.8, 0.8 / 1.6, 0.87 / 1.4
    assert balanced["per_class_recall"] == pytest.approx([2 / 3, 1.0])
    assert balanced["auroc"] == plain["auroc"]


# ------------------------------------------------------------------ selection / relabel
def test_selection_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 2])
    noisy = np.array([False, True, False, False, True, False])
    selected = np.array([True, True, False, True, False, False])
    m = selection_metrics(selected, noisy, y, n_classes=4)
    assert m["precision"] == pytest.approx(2 / 3)  # samples 0 and 3 correct out of 0, 1, 3
    assert m["recall"] == pytest.approx(2 / 4)  # 4 correctly labelled: 0, 2, 3, 5
    assert m["clean_retention"][:3] == [0.5, 1.0, 0.0] and math.isnan(m["clean_retention"][3])
    assert m["min_retention"] == 0.0 and m["selected_fraction"] == 0.5 and m["n_selected"] == 3
    assert m["class_counts"] == [3, 2, 1, 0] and m["clean_counts"] == [2, 1, 1, 0]


def test_selection_metrics_empty_selection_is_nan():
    m = selection_metrics(np.zeros(3, bool), np.array([0, 1, 0]), np.array([0, 1, 1]), n_classes=2)
    assert math.isnan(m["precision"]) and m["recall"] == 0.0 and m["min_retention"] == 0.0


def test_selection_metrics_validate():
    with pytest.raises(ValueError, match="selected_mask and is_noisy must have the same length"):
        selection_metrics(np.ones(3, bool), np.ones(2, bool), np.zeros(3), n_classes=2)
    with pytest.raises(ValueError, match="is_noisy must be a boolean mask"):
        selection_metrics(np.ones(3, bool), np.array([0.5, 0, 1]), np.zeros(3), n_classes=2)


def test_relabel_precision_by_hand():
    given = np.array([0, 1, 2, 3])
    truth = np.array([0, 0, 2, 0])
    assert relabel_precision([1, 2, 3], given, truth) == pytest.approx(2 / 3)
    assert relabel_precision([0, 2], given, truth) == 0.0
    assert math.isnan(relabel_precision(np.array([], dtype=np.int64), given, truth))
    with pytest.raises(ValueError, match=r"queried_indices must lie in \[0, 4\)"):
        relabel_precision([4], given, truth)


# ------------------------------------------------------------------ report
@pytest.fixture
def report() -> CleaningReport:
    selection = selection_metrics(
        np.array([1, 1, 0, 1, 0, 0], bool),
        np.array([0, 1, 0, 0, 1, 0], bool),
        np.array([0, 0, 0, 1, 1, 2]),
        n_classes=3,
    )
    rounds = []
    for r in (1, 2):
        rounds.append(
            {
                "round": r,
                "labels_spent": 10 * r,
                "n_queried": 10,
                "relabel_precision": 0.8 - 0.1 * r,
                "n_changed": 8 - r,
                "noisy_remaining": 30 - 8 * r,
                "balanced_accuracy": 0.7 + 0.05 * r,
                "macro_f1": 0.6 + 0.05 * r,
                "auroc": math.nan if r == 1 else 0.9,
                "mcc": np.float32(0.5),
                "per_class_recall": [0.9, 0.5 + 0.1 * r, math.nan],
                "time_s": 1.5,
                "test": {"balanced_accuracy": 0.71, "per_class_recall": [1, 2, 3]},
            }
        )
    return CleaningReport(
        phase1={
            "selection": selection,
            "noise_rate_estimate": 0.38,
            "noisy_remaining": 30,
            "val": {
                "balanced_accuracy": 0.65,
                "macro_f1": 0.6,
                "auroc": 0.85,
                "mcc": 0.4,
                "per_class_recall": [0.8, 0.5, 0.1],
                "accuracy": 0.7,
            },
            "baseline": {"val": {"balanced_accuracy": 0.6}},
            "time_s": 12.0,
        },
        rounds=rounds,
        settings={"budget_per_round": 10, "strategy": "entropy", "lr": np.float64(0.01)},
        class_names=["benign", "malignant", "rare"],
    )


def test_to_frame(report):
    frame = report.to_frame()
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "round"
    assert frame.index.tolist() == [0, 1, 2]
    assert frame.loc[0, "labels_spent"] == 0 and frame.loc[0, "balanced_accuracy"] == 0.65
    assert frame.loc[0, "noisy_remaining"] == 30 and math.isnan(frame.loc[0, "relabel_precision"])
    assert frame.loc[2, "labels_spent"] == 20 and frame.loc[2, "noisy_remaining"] == 14
    assert frame["labels_spent"].dtype == np.int64
    assert {"recall_benign", "recall_malignant", "recall_rare"} <= set(frame.columns)
    assert frame.loc[1, "recall_malignant"] == pytest.approx(0.6)
    assert frame.loc[1, "test_balanced_accuracy"] == 0.71
    assert list(frame.columns[:4]) == ["labels_spent", "n_queried", "relabel_precision", "n_changed"]


def test_to_frame_expands_prefixed_recall_and_nested_dicts():
    report = CleaningReport(
        rounds=[
            {
                "round": 1,
                "labels_spent": 5,
                "test_per_class_recall": [0.25, 0.5],
                "extra": {"val": {"per_class_recall": [1.0, None], "auroc": 0.7}},
            }
        ],
        class_names=["a", "b"],
    )
    row = report.to_frame().loc[1]
    assert row["test_recall_a"] == 0.25 and row["test_recall_b"] == 0.5
    assert row["extra_val_recall_a"] == 1.0 and math.isnan(row["extra_val_recall_b"])
    assert row["extra_val_auroc"] == 0.7


def test_json_null_reads_back_as_nan_only_for_float_fields():
    report = CleaningReport(
        rounds=[{"round": 1, "relabel_precision": None, "test_auroc": None, "noisy_remaining": None}]
    )
    (back,) = CleaningReport.from_json(report.to_json()).rounds
    assert math.isnan(back["relabel_precision"]) and math.isnan(back["test_auroc"])
    assert back["noisy_remaining"] is None


def test_to_frame_keeps_an_explicit_round_zero(report):
    report.rounds.insert(0, {"round": 0, "labels_spent": 0, "balanced_accuracy": 0.1})
    assert report.to_frame().loc[0, "balanced_accuracy"] == 0.1


def _same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN, through nested dicts and lists."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_json_round_trip(report, tmp_path):
    text = report.to_json()
    data = json.loads(text)  # strict JSON: no NaN tokens
    assert "NaN" not in text and data["rounds"][0]["auroc"] is None
    path = tmp_path / "out" / "report.json"
    assert report.to_json(path) == text and path.exists()
    for source in (text, path, str(path)):
        back = CleaningReport.from_json(source)
        assert _same(back.rounds, report.rounds) and _same(back.settings, {**report.settings, "lr": 0.01})
        assert math.isnan(back.rounds[0]["auroc"]) and math.isnan(back.rounds[0]["per_class_recall"][2])
        assert back.class_names == report.class_names and back.settings["lr"] == 0.01
        assert _same(back.phase1["selection"], report.phase1["selection"])
        pd.testing.assert_frame_equal(back.to_frame(), report.to_frame(), check_dtype=False)


def test_from_json_rejects_other_json():
    with pytest.raises(ValueError, match="not a CleaningReport"):
        CleaningReport.from_json('{"a": 1}')


def test_markdown_table(report):
    text = report.to_markdown()
    assert str(report) == text
    lines = text.splitlines()
    assert lines[0].startswith("phase 1: clean-set precision 0.667, recall 0.500")
    assert "noise rate estimate 0.380" in lines[0] and "plain cross-entropy bal acc 0.600" in lines[0]
    table = lines[1:]
    assert len(table) == 2 + 3  # header, rule, rounds 0..2
    assert len({len(line) for line in table}) == 1  # aligned
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:3] == ["round", "labels", "relabel prec"] and "min recall" in header
    row1 = dict(zip(header, (c.strip() for c in table[3].strip("|").split("|")), strict=True))
    assert row1["labels"] == "10" and row1["relabel prec"] == "0.700" and row1["AUROC"] == "-"
    assert row1["bal acc"] == "0.750" and row1["min recall"] == "0.600" and row1["noisy left"] == "22"


def test_markdown_drops_empty_columns():
    report = CleaningReport(rounds=[{"round": 1, "labels_spent": 5, "balanced_accuracy": 0.5}])
    header = report.to_markdown().splitlines()[0]
    assert "noisy left" not in header and "bal acc" in header


def test_plot_writes_pngs(report, tmp_path):
    paths = report.plot(tmp_path / "figs")
    assert [p.name for p in paths] == ["cleaning_curve.png", "class_retention.png"]
    for path in paths:
        data = Path(path).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_plot_without_truth_writes_only_the_curve(tmp_path):
    report = CleaningReport(
        phase1={"val": {"balanced_accuracy": 0.5}},
        rounds=[{"round": 1, "labels_spent": 5, "balanced_accuracy": 0.6, "noisy_remaining": None}],
    )
    assert [p.name for p in report.plot(tmp_path)] == ["cleaning_curve.png"]


def test_metrics_is_a_leaf_module():
    source = Path(__import__("modal_noisy.metrics").metrics.__file__).read_text()
    imported = {
        node.module or "" for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    forbidden = {"torch", "skorch", "modal_noisy.cleaning", "modal_noisy.strategies", "modal_noisy.training"}
    assert not imported & forbidden, imported & forbidden
