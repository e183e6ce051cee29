"""The cleaning report: tables, strict JSON round trip, Markdown and plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modal_noisy.cleaning.report import CleaningReport
from modal_noisy.metrics import selection_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
            "class_noise_rate_estimates": [0.2, 0.5, 0.9],
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
    assert "per class 0.20 0.50 0.90" in lines[0]
    table = lines[1:]
    assert len(table) == 2 + 3  # header, rule, rounds 0..2
    assert len({len(line) for line in table}) == 1  # aligned
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:3] == ["round", "labels", "relabel prec"] and "min recall" in header
    row1 = dict(zip(header, (c.strip() for c in table[3].strip("|").split("|")), strict=True))
    assert row1["labels"] == "10" and row1["relabel prec"] == "0.700" and row1["AUROC"] == "-"
    assert row1["bal acc"] == "0.750" and row1["min recall"] == "0.600" and row1["noisy left"] == "22"


def test_markdown_says_which_recalibrations_were_adopted():
    rounds = [{"round": 0, "balanced_accuracy": 0.6},
              {"round": 1, "balanced_accuracy": 0.5, "model_kept": False},
              {"round": 2, "balanced_accuracy": 0.7, "model_kept": True}]
    table = CleaningReport(rounds=rounds).to_markdown().splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    adopted = [dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))["adopted"]
               for row in table[2:]]
    assert adopted == ["-", "no", "yes"]  # round 0 is phase 1: nothing to adopt


def test_rounds_in_use_follow_the_last_adopted_recalibration():
    rounds = [{"round": 0, "balanced_accuracy": 0.6},
              {"round": 1, "balanced_accuracy": 0.5, "model_kept": False},
              {"round": 2, "balanced_accuracy": 0.7, "model_kept": True},
              {"round": 3, "balanced_accuracy": 0.65, "model_kept": False}]
    report = CleaningReport(rounds=rounds)
    in_use, kept = report.rounds_in_use()
    assert in_use.tolist() == [0, 0, 2, 2] and kept.tolist() == [True, False, True, False]
    score, _ = report.accuracy_in_use()
    assert score.tolist() == [0.6, 0.6, 0.7, 0.7]
    # records without model_kept (older runs, keep_best off): every round adopted
    older = CleaningReport(rounds=[{"round": r, "balanced_accuracy": 0.5} for r in (0, 1)])
    assert older.rounds_in_use()[0].tolist() == [0, 1]


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




def test_the_curve_follows_the_model_in_use_and_marks_what_keep_best_refused(tmp_path):
    from matplotlib.figure import Figure

    rounds = [
        {"round": 0, "labels_spent": 0, "balanced_accuracy": 0.60},
        {"round": 1, "labels_spent": 5, "balanced_accuracy": 0.70, "model_kept": True},
        {"round": 2, "labels_spent": 10, "balanced_accuracy": 0.50, "model_kept": False},
        {"round": 3, "labels_spent": 15, "balanced_accuracy": 0.80, "model_kept": True},
    ]
    report = CleaningReport(phase1={}, rounds=rounds)
    drawn = {}
    original = Figure.savefig

    def capture(fig, path, **kwargs):  # read the drawn lines back from the figure
        drawn.update({line.get_label(): line.get_ydata().tolist() for ax in fig.axes for line in ax.lines})
        return original(fig, path, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", capture)
        report.plot(tmp_path)
    assert drawn["model in use"] == [0.60, 0.70, 0.70, 0.80]  # the refused round keeps the model before
    assert drawn["recalibration not adopted"] == [0.50]
