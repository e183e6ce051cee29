"""cleanlab interop: phase 1 as a label-issues table and as a check of cleanlab's real Datalab."""

from __future__ import annotations

import numpy as np
import pytest

from modal_noisy.experiment import build_coteaching, load_experiment
from modal_noisy.interop import label_issues

# cleanlab's own label check uses a pandas keyword that pandas 3.1 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename")

DATALAB_COLUMNS = ["is_label_issue", "label_score", "given_label", "predicted_label"]


@pytest.fixture(scope="module")
def experiment():
    return load_experiment("digits", noise_rate=0.4, random_state=0)


@pytest.fixture(scope="module")
def lab(experiment):
    """A Datalab that ran our phase 1 (8 epochs) beside cleanlab's label and outlier checks."""
    pytest.importorskip("datasets", reason="cleanlab's Datalab needs the 'datasets' package")
    from cleanlab import Datalab

    import modal_noisy.interop.datalab  # noqa: F401  (registers the "coteaching" issue type)

    X, y = experiment.X_train, experiment.y_given
    estimator = build_coteaching(experiment, max_epochs=8, random_state=0, verbose=0)
    lab = Datalab(data={"label": y}, label_name="label", verbosity=0)
    lab.find_issues(
        features=X.reshape(len(X), -1),
        issue_types={"coteaching": {"estimator": estimator, "X": X}, "label": {}, "outlier": {}},
    )
    return lab


def test_datalab_runs_phase1_beside_cleanlabs_checks(lab, experiment):
    summary = lab.get_issue_summary().set_index("issue_type")
    assert {"coteaching", "label", "outlier"} <= set(summary.index)
    issues = lab.get_issues("coteaching")
    assert list(issues.columns) == ["is_coteaching_issue", "coteaching_score"]
    assert len(issues) == len(experiment.y_given)
    assert issues["coteaching_score"].between(0, 1).all()
    flagged = issues["is_coteaching_issue"].to_numpy()
    assert summary.loc["coteaching", "num_issues"] == flagged.sum()
    # the flag is phase 1's own decision, and it finds wrong labels far above their 40% base rate
    fitted = lab.get_info("coteaching")["estimator"]
    np.testing.assert_array_equal(flagged, ~fitted.clean_mask_)
    wrong = experiment.y_given != experiment.y_true
    assert wrong[flagged].mean() > 0.75
    assert flagged[wrong].mean() > 0.5
    # a wrong label scores lower than a right one, on average
    scores = issues["coteaching_score"].to_numpy()
    assert scores[wrong].mean() < scores[~wrong].mean() - 0.3


def test_datalab_report_shows_the_coteaching_check(lab, capsys):
    lab.report()
    text = capsys.readouterr().out
    assert "coteaching issues" in text
    assert "label issues" in text
    assert "co-teaching with Variance-of-Gradients selection" in text
    assert "noise_rate_estimate" in text


def test_datalab_fit_false_uses_the_fitted_estimator_and_errors_are_reported(lab, experiment, capsys):
    from cleanlab import Datalab

    fitted = lab.get_info("coteaching")["estimator"]
    X, y = experiment.X_train, experiment.y_given
    again = Datalab(data={"label": y}, label_name="label", verbosity=0)
    again.find_issues(issue_types={"coteaching": {"estimator": fitted, "X": X, "fit": False}})
    np.testing.assert_array_equal(again.get_issues("coteaching"), lab.get_issues("coteaching"))
    # Datalab catches a failing check and prints it; ours names what is missing
    broken = Datalab(data={"label": y}, label_name="label", verbosity=0)
    broken.find_issues(issue_types={"coteaching": {"estimator": fitted}})
    assert "must give 'estimator' and 'X'" in capsys.readouterr().out


def test_label_issues_has_datalabs_columns_ranked(lab, experiment):
    fitted = lab.get_info("coteaching")["estimator"]
    X, y = experiment.X_train, experiment.y_given
    table = label_issues(fitted, X, y)
    assert list(table.columns) == DATALAB_COLUMNS
    assert table["label_score"].is_monotonic_increasing
    assert sorted(table.index) == list(range(len(y)))
    by_position = table.sort_index()
    np.testing.assert_array_equal(by_position["is_label_issue"], ~fitted.clean_mask_)
    np.testing.assert_array_equal(by_position["given_label"], y)
    probs = fitted.predict_proba(X)
    np.testing.assert_array_equal(by_position["predicted_label"], probs.argmax(axis=1))
    np.testing.assert_allclose(by_position["label_score"], probs[np.arange(len(y)), y], rtol=1e-6)
    # the same columns as cleanlab's own label check, so the tables can be compared side by side
    cleanlab_table = lab.get_issues("label")
    assert set(DATALAB_COLUMNS) <= set(cleanlab_table.columns)


def test_label_issues_rejects_unfitted_and_misaligned(lab, experiment):
    fitted = lab.get_info("coteaching")["estimator"]
    X, y = experiment.X_train, experiment.y_given
    with pytest.raises(ValueError, match="estimator must be fitted"):
        label_issues(build_coteaching(experiment, max_epochs=1), X, y)
    with pytest.raises(ValueError, match=r"y must hold the 520 labels the estimator was fitted on \(got 10"):
        label_issues(fitted, X, y[:10])
    with pytest.raises(ValueError, match=r"pred_probs must have shape \(520, n_classes\)"):
        label_issues(fitted, X, y, pred_probs=np.full((5, 10), 0.1))
