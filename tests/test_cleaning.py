"""Phase 2: ActiveLabelCleaner — the loop, the journal's crash safety and resume, input checks."""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score
from sklearn.utils import estimator_checks

from modal_noisy.cleaning import ActiveLabelCleaner, RelabelJournal, SimulatedOracle
from modal_noisy.cleaning import snapshot as snapshot_module
from modal_noisy.cleaning.snapshot import Phase1Snapshot, estimator_digest
from modal_noisy.experiment import build_coteaching, load_experiment
from modal_noisy.training import CoTeachingClassifier

REPO = Path(__file__).resolve().parents[1]

# A tiny but complete run: 8 phase-1 epochs, 3 rounds of 20 labels, 3 recalibration epochs.
TINY = dict(budget_per_round=20, rounds=3, recalibration_epochs=3, random_state=0, verbose=0)


@pytest.fixture(scope="module")
def experiment():
    return load_experiment("digits", noise_rate=0.4, random_state=0)


def _tiny_estimator(experiment, cls=CoTeachingClassifier):
    est = build_coteaching(experiment, max_epochs=8, random_state=0, verbose=0)
    if cls is not CoTeachingClassifier:
        est = cls(**est.get_params(deep=False))
    return est


def _fit_kwargs(experiment):
    return dict(
        X_val=experiment.X_val, y_val=experiment.y_val, X_test=experiment.X_test, y_test=experiment.y_test
    )


class _NoTraining(CoTeachingClassifier):
    """Fails loudly if any training starts: input errors must come before any work."""

    def fit(self, X, y=None, **fit_params):
        raise AssertionError("training started before the input was checked")


# ------------------------------------------------------------------ a scikit-learn-style estimator
def test_get_params_set_params_clone_and_repr(experiment):
    estimator = _tiny_estimator(experiment)
    cleaner = ActiveLabelCleaner(estimator, "entropy", budget_per_round=5, journal=Path("j.jsonl"))
    params = cleaner.get_params(deep=False)
    assert params["estimator"] is estimator and params["strategy"] == "entropy"
    assert params["budget_per_round"] == 5 and params["journal"] == Path("j.jsonl")
    assert "estimator__max_epochs" in cleaner.get_params(deep=True)  # nested parameters reach the net
    assert cleaner.set_params(**params).get_params(deep=False) == params  # round trip
    cleaner.set_params(rounds=2, estimator__max_epochs=1)
    assert cleaner.rounds == 2 and estimator.max_epochs == 1
    twin = clone(cleaner)
    assert twin is not cleaner and twin.estimator is not estimator
    assert twin.get_params(deep=False).keys() == params.keys() and twin.rounds == 2
    assert twin.estimator.max_epochs == 1
    text = repr(ActiveLabelCleaner(None, "entropy", rounds=2))
    assert text == "ActiveLabelCleaner(rounds=2, strategy='entropy')"


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_parameters_default_constructible,
    ],
    ids=lambda check: check.__name__,
)
def test_scikit_learn_estimator_checks(experiment, check):
    check("ActiveLabelCleaner", ActiveLabelCleaner(_tiny_estimator(experiment), **TINY))


def test_a_fitted_cleaner_pickles_and_clones_unfitted(experiment, reference_run):
    cleaner, report, _, _ = reference_run
    copy = pickle.loads(pickle.dumps(cleaner))
    np.testing.assert_array_equal(copy.labels_, cleaner.labels_)
    assert copy.report_.to_frame().equals(report.to_frame())
    np.testing.assert_allclose(copy.estimator_.predict_proba(experiment.X_val),
                               cleaner.estimator_.predict_proba(experiment.X_val))
    assert not hasattr(clone(cleaner), "labels_")


def test_resume_reads_a_journal_written_before_keep_best_tolerance(experiment, tmp_path):
    settings = ActiveLabelCleaner(_tiny_estimator(experiment), **TINY)._settings()
    del settings["keep_best_tolerance"]
    params = ActiveLabelCleaner._params_from_header(settings, tmp_path / "journal.jsonl")
    assert params["keep_best_tolerance"] == 0.0  # what those journals' runs did


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"budget": 20}, r"unknown key\(s\) 'budget'"),
        ({"audit_size": None}, r"missing key\(s\) 'audit_size'"),
    ],
    ids=["stale-key", "missing-key"],
)
def test_resume_refuses_a_journal_header_of_another_version(experiment, tmp_path, edit, message):
    settings = ActiveLabelCleaner(_tiny_estimator(experiment), **TINY)._settings()
    for key, value in edit.items():
        if value is None:
            del settings[key]
        else:
            settings[key] = value
    journal = tmp_path / "journal.jsonl"
    RelabelJournal(journal).start("0" * 64, settings)
    with pytest.raises(ValueError, match=message + r".*another version of modal_noisy"):
        ActiveLabelCleaner.resume(journal, _tiny_estimator(experiment, _NoTraining), experiment.X_train,
                                  experiment.y_given, SimulatedOracle(experiment.y_true),
                                  **_fit_kwargs(experiment))


# ------------------------------------------------------------------ input checks
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budget_per_round": 10_000}, r"budget_per_round must be <= the number of training .*\(got 10000"),
        ({"budget_per_round": 200, "rounds": 3}, r"budget_per_round \* rounds must be <= .*200 \* 3 = 600"),
        ({"rounds": 0}, r"rounds must be >= 1 \(got 0\)"),
        ({"budget_per_round": 0}, r"budget_per_round must be >= 1 \(got 0\)"),
        ({"recalibration_epochs": -1}, r"recalibration_epochs must be >= 1 \(got -1\)"),
        ({"audit_size": -5}, r"audit_size must be >= 0 \(got -5\)"),
        ({"audit_size": 500}, r"audit_size \+ budget_per_round \* rounds must be <= .*500 \+ 20 \* 3 = 560"),
        ({"strategy": "uncertainty"}, r"strategy must be one of .*'entropy'.*'vog'.* \(got 'uncertainty'\)"),
        ({"pool": "clean"}, r"pool must be one of 'all', 'noisy' \(got 'clean'\)"),
        ({"keep_best": "yes"}, r"keep_best must be True or False \(got 'yes'\)"),
        ({"keep_best_tolerance": -1.0}, r"keep_best_tolerance must be in \[0, inf\) \(got -1.0\)"),
    ],
    ids=["budget>pool", "total-budget>pool", "rounds<1", "budget<1", "epochs<1", "audit<0",
         "audit+budget>pool", "unknown-strategy", "unknown-pool", "keep_best-not-bool", "tolerance<0"],
)
def test_bad_settings_rejected_before_any_work(experiment, change, message):
    settings = {**TINY, **change}
    strategy = settings.pop("strategy", "vog")
    cleaner = ActiveLabelCleaner(_tiny_estimator(experiment, _NoTraining), strategy, **settings)
    with pytest.raises(ValueError, match=message):
        cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                    **_fit_kwargs(experiment))


def test_bad_validation_labels_rejected(experiment):
    cleaner = ActiveLabelCleaner(_tiny_estimator(experiment, _NoTraining), **TINY)
    y_val = experiment.y_val.copy()
    y_val[0] = 10
    with pytest.raises(ValueError, match=r"y_val must lie in \[0, 10\) .*got label 10"):
        cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                    X_val=experiment.X_val, y_val=y_val)
    with pytest.raises(ValueError, match=r"X_val and y_val must have the same length"):
        cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                    X_val=experiment.X_val, y_val=experiment.y_val[:-1])


def test_foreign_journal_refused(experiment, tmp_path):
    journal = tmp_path / "journal.jsonl"
    RelabelJournal(journal).start("0" * 64, ActiveLabelCleaner(None, **TINY)._settings())
    cleaner = ActiveLabelCleaner(_tiny_estimator(experiment, _NoTraining), journal=journal, **TINY)
    with pytest.raises(ValueError, match="different data set"):
        cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                    **_fit_kwargs(experiment))


def test_unseeded_estimator_with_journal_refused(experiment, tmp_path):
    est = _tiny_estimator(experiment, _NoTraining).set_params(random_state=None)
    cleaner = ActiveLabelCleaner(est, journal=tmp_path / "j.jsonl", **TINY)
    with pytest.raises(ValueError, match=r"estimator.random_state must be an integer .*\(got None\)"):
        cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                    **_fit_kwargs(experiment))


@pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX only")
def test_journal_in_use_by_another_run_refused(experiment, tmp_path):
    journal = tmp_path / "j.jsonl"
    cleaner = ActiveLabelCleaner(_tiny_estimator(experiment, _NoTraining), journal=journal, **TINY)
    with RelabelJournal(journal).lock(), pytest.raises(RuntimeError, match="in use by another run"):
        cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                    **_fit_kwargs(experiment))
    assert not journal.exists()  # refused before the header was written


@pytest.fixture(scope="module")
def reference_run(experiment, tmp_path_factory):
    """One uninterrupted tiny run with a journal: the ground truth for the resume tests."""
    journal = tmp_path_factory.mktemp("reference") / "journal.jsonl"
    cleaner = ActiveLabelCleaner(_tiny_estimator(experiment), journal=journal, **TINY)
    started = time.perf_counter()
    report = cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                         **_fit_kwargs(experiment)).report_
    return cleaner, report, journal, time.perf_counter() - started


def test_only_queried_samples_get_oracle_labels(experiment, reference_run):
    cleaner, report, _, _ = reference_run
    changed = cleaner.labels_ != experiment.y_given
    # no oracle leak: phase-1 clean samples keep their given labels, changes happen only where asked
    assert not np.any(changed & ~cleaner.relabelled_mask_)
    assert np.array_equal(cleaner.labels_[cleaner.relabelled_mask_],
                          experiment.y_true[cleaner.relabelled_mask_])
    assert cleaner.relabelled_mask_.sum() == report.rounds[-1]["labels_spent"] == 60
    spent = [entry["labels_spent"] for entry in report.rounds]
    assert spent == [0, 20, 40, 60]
    noisy = [entry["noisy_remaining"] for entry in report.rounds]
    assert all(later <= earlier for earlier, later in itertools.pairwise(noisy))


def _first_of_pool(classifier, X_pool, n_instances, *, labels=None, random_state=None):
    """A strategy that takes the pool in order: which samples a round may query shows directly."""
    return np.arange(n_instances)


@pytest.mark.parametrize("pool", ["noisy", "all"])
def test_the_pool_decides_whether_phase_1_selection_can_be_queried(experiment, pool):
    cleaner = ActiveLabelCleaner(
        build_coteaching(experiment, max_epochs=2, random_state=0, verbose=0), _first_of_pool, pool=pool,
        budget_per_round=30, rounds=2, recalibration_epochs=1, random_state=0, verbose=0,
    )
    cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                **_fit_kwargs(experiment))
    asked = np.flatnonzero(cleaner.relabelled_mask_)
    candidates = np.arange(len(experiment.y_given))
    if pool == "noisy":
        candidates = candidates[~cleaner.clean_mask_]
    # two rounds of the pool's first 30: nobody is asked twice, and "all" reaches the kept samples
    assert np.array_equal(asked, candidates[:60])
    assert cleaner.clean_mask_[asked].any() == (pool == "all")


def test_a_strategy_that_asks_for_it_gets_the_answer_history(experiment):
    seen = []

    def first_of_pool(classifier, X_pool, n_instances, *, labels=None, answered=None, random_state=None):
        seen.append(np.asarray(answered).tolist())
        return np.arange(n_instances)

    cleaner = ActiveLabelCleaner(
        build_coteaching(experiment, max_epochs=2, random_state=0, verbose=0), first_of_pool,
        budget_per_round=15, rounds=3, recalibration_epochs=1, random_state=0, verbose=0,
    )
    report = cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                         **_fit_kwargs(experiment)).report_
    # round r sees, per earlier round, the labels given and how many of them changed
    rows = [[entry["n_queried"], entry["n_changed"]] for entry in report.rounds[1:]]
    assert seen == [[], rows[:1], rows[:2]]
    assert all(given == 15 and 0 <= changed <= given for given, changed in rows)


class _RuinedByFineTuning(CoTeachingClassifier):
    """Recalibration that wrecks the networks: every answer of a round makes the model worse."""

    def fine_tune(self, X, y, **kwargs):
        super().fine_tune(X, y, **{**kwargs, "epochs": 1})
        with torch.no_grad():
            for module in (self.module_, self.module2_):
                for parameter in module.parameters():
                    parameter.zero_()
        return self


@pytest.mark.parametrize(
    ("keep_best", "tolerance", "adopted"),
    [(True, 2.0, False), (False, 2.0, True), (True, 0.0, False)],
    ids=["keep_best", "always", "strict"],
)
def test_keep_best_adopts_only_a_recalibration_that_validates_better(experiment, keep_best, tolerance,
                                                                      adopted):
    estimator = _tiny_estimator(experiment, _RuinedByFineTuning)
    cleaner = ActiveLabelCleaner(estimator, keep_best=keep_best, keep_best_tolerance=tolerance,
                                 budget_per_round=20, rounds=2, recalibration_epochs=1, random_state=0,
                                 verbose=0)
    cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                **_fit_kwargs(experiment))
    rounds = cleaner.report_.rounds
    # the wrecked candidates predict one class: far below phase 1 on the validation split
    assert all(r["balanced_accuracy"] < rounds[0]["balanced_accuracy"] - 0.3 for r in rounds[1:])
    assert [r["model_kept"] for r in rounds[1:]] == [adopted] * 2
    final = balanced_accuracy_score(experiment.y_val, cleaner.estimator_.predict(experiment.X_val))
    if not adopted:  # phase 1's model ranked both rounds and is the one returned
        assert final == pytest.approx(rounds[0]["balanced_accuracy"])
    else:
        assert final == pytest.approx(rounds[-1]["balanced_accuracy"])
    assert cleaner.relabelled_mask_.sum() == 40  # the answers are kept either way


@pytest.mark.parametrize(
    ("tolerance", "adopted"),
    [(0.0, [True, False, False]), (1.0, [True, True, False]), (1e6, [True, True, True])],
)
def test_keep_best_tolerance_is_counted_in_standard_errors_of_the_paired_difference(tolerance, adopted):
    y_val = np.repeat([0, 1], 10)
    in_use = y_val.copy()
    one_miss, many_misses = in_use.copy(), in_use.copy()
    one_miss[0] = 1  # one sample of class 0 lost: a loss of exactly one standard error
    many_misses[:8] = 1  # most of class 0 lost
    cleaner = ActiveLabelCleaner(None, keep_best_tolerance=tolerance)
    decisions = [cleaner._adopts(y_val, in_use, c) for c in (in_use, one_miss, many_misses)]
    assert decisions == adopted


def test_journal_holds_every_answer(experiment, reference_run):
    cleaner, _, journal, _ = reference_run
    state = RelabelJournal(journal).read()
    recorded = {index: label for pairs in state.relabels.values() for index, label in pairs}
    assert sorted(recorded) == np.flatnonzero(cleaner.relabelled_mask_).tolist()
    assert all(cleaner.labels_[index] == label for index, label in recorded.items())


def test_fit_refuses_a_journal_with_relabels(experiment, reference_run):
    _, _, journal, _ = reference_run
    cleaner = ActiveLabelCleaner(_tiny_estimator(experiment, _NoTraining), journal=journal, **TINY)
    with pytest.raises(ValueError, match=r"already holds 60 relabels; continue it with .*resume"):
        cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                    **_fit_kwargs(experiment))


_CHILD = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    import test_cleaning as t
    from modal_noisy.cleaning import ActiveLabelCleaner, SimulatedOracle
    experiment = t.load_experiment("digits", noise_rate=0.4, random_state=0)
    cleaner = ActiveLabelCleaner(t._tiny_estimator(experiment), journal={journal!r}, **t.TINY)
    print("started", flush=True)
    cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                **t._fit_kwargs(experiment))
    print("finished", flush=True)
    """
)


def _comparable(report):
    keys = ("round", "labels_spent", "relabel_precision", "noisy_remaining", "balanced_accuracy",
            "macro_f1", "mcc", "test_balanced_accuracy")
    return [{key: entry[key] for key in keys} for entry in report.rounds]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(experiment, reference_run, tmp_path):
    reference, reference_report, _, duration = reference_run
    journal = tmp_path / "journal.jsonl"
    script = _CHILD.format(tests=str(REPO / "tests"), journal=str(journal))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    # a random moment inside the run (seeded, so a failure can be replayed)
    delay = np.random.default_rng(int(os.environ.get("KILL_SEED", "0"))).uniform(0.2, 1.0) * duration
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    before = RelabelJournal(journal).read().relabels if journal.exists() else {}

    if journal.exists():
        cleaner = ActiveLabelCleaner.resume(
            journal, _tiny_estimator(experiment), experiment.X_train, experiment.y_given,
            SimulatedOracle(experiment.y_true), **_fit_kwargs(experiment),
        )
        report = cleaner.report_
    else:  # killed before the journal header was written: a fresh start is the resume
        cleaner = ActiveLabelCleaner(_tiny_estimator(experiment), journal=journal, **TINY)
        report = cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                             **_fit_kwargs(experiment)).report_
    after = RelabelJournal(journal).read().relabels
    for round_index, pairs in before.items():
        assert after[round_index] == pairs, f"journalled round {round_index} changed on resume"
    assert np.array_equal(cleaner.labels_, reference.labels_)
    assert _comparable(report) == _comparable(reference_report)


def test_resume_of_finished_run_replays_without_oracle(experiment, reference_run):
    reference, reference_report, journal, _ = reference_run

    def no_oracle(indices, **_):
        raise AssertionError("the oracle was asked again for journalled samples")

    cleaner = ActiveLabelCleaner.resume(
        journal, _tiny_estimator(experiment), experiment.X_train, experiment.y_given, no_oracle,
        y_true=experiment.y_true, **_fit_kwargs(experiment),
    )
    report = cleaner.report_
    assert np.array_equal(cleaner.labels_, reference.labels_)
    assert _comparable(report) == _comparable(reference_report)


def test_resume_loads_phase1_from_the_snapshot(experiment, reference_run, monkeypatch):
    reference, reference_report, journal, _ = reference_run
    assert Path(f"{journal}.phase1.pt").is_file()

    def no_training(self, X, y=None, **fit_params):
        raise AssertionError("phase 1 retrained although its snapshot matches")

    monkeypatch.setattr(CoTeachingClassifier, "fit", no_training)
    cleaner = ActiveLabelCleaner.resume(
        journal, _tiny_estimator(experiment), experiment.X_train, experiment.y_given,
        SimulatedOracle(experiment.y_true), **_fit_kwargs(experiment),
    )
    report = cleaner.report_
    assert np.array_equal(cleaner.labels_, reference.labels_)
    assert _comparable(report) == _comparable(reference_report)


@pytest.mark.parametrize("damage", ["missing", "garbage", "other-key", "not-a-dict"])
def test_a_snapshot_that_does_not_match_loads_as_nothing(tmp_path, damage):
    journal = tmp_path / "journal.jsonl"
    snapshot = Phase1Snapshot(journal, "this run")
    if damage == "garbage":
        snapshot.path.write_bytes(b"not a snapshot")
    elif damage == "other-key":
        Phase1Snapshot(journal, "another run").save({"weights": [1.0]})
    elif damage == "not-a-dict":
        torch.save(["this run"], snapshot.path)
    assert snapshot.load() is None
    snapshot.save({"weights": [1.0]})
    assert snapshot.load() == {"weights": [1.0]}  # the same key loads


def test_resume_retrains_phase1_without_a_matching_snapshot(experiment, reference_run, tmp_path):
    """A damaged snapshot (the other kinds load as nothing alike, see above) costs a retrained phase 1."""
    _, reference_report, journal, _ = reference_run
    copy = tmp_path / "journal.jsonl"
    copy.write_bytes(journal.read_bytes())
    snapshot = Path(f"{copy}.phase1.pt")
    snapshot.write_bytes(b"not a snapshot")
    report = ActiveLabelCleaner.resume(
        copy, _tiny_estimator(experiment), experiment.X_train, experiment.y_given,
        SimulatedOracle(experiment.y_true), **_fit_kwargs(experiment),
    ).report_
    assert _comparable(report) == _comparable(reference_report)
    assert snapshot.stat().st_size > 100  # the garbage was replaced by the retrained phase 1


def test_a_failed_snapshot_warns_and_the_run_goes_on(experiment, tmp_path, monkeypatch):
    real_save = snapshot_module.torch.save

    def disk_full(obj, f, *args, **kwargs):
        if not str(f).endswith(".phase1.pt.tmp"):
            return real_save(obj, f, *args, **kwargs)  # torch pickles tensors with it (deepcopy)
        Path(f).write_bytes(b"half a snapshot")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot_module.torch, "save", disk_full)
    estimator = _tiny_estimator(experiment).set_params(max_epochs=2)
    cleaner = ActiveLabelCleaner(estimator, journal=tmp_path / "journal.jsonl", **{**TINY, "rounds": 1})
    with pytest.warns(RuntimeWarning, match=r"phase 1 could not be saved .*No space left.*will retrain it"):
        report = cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                             **_fit_kwargs(experiment)).report_
    assert report.rounds[-1]["labels_spent"] == 20
    assert not list(tmp_path.glob("*.phase1.pt*"))  # no half-written snapshot left behind


def test_estimator_digest_tracks_parameters_not_verbosity(experiment):
    base = _tiny_estimator(experiment)
    assert estimator_digest(base) == estimator_digest(clone(base).set_params(verbose=1))
    assert estimator_digest(base) != estimator_digest(clone(base).set_params(max_epochs=9))
    assert estimator_digest(base) != estimator_digest(clone(base).set_params(callbacks__lr_schedule__T_max=3))


@pytest.fixture(scope="module")
def audited_run(experiment, tmp_path_factory):
    journal = tmp_path_factory.mktemp("audited") / "journal.jsonl"
    cleaner = ActiveLabelCleaner(_tiny_estimator(experiment), journal=journal, audit_size=60, **TINY)
    report = cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                         **_fit_kwargs(experiment)).report_
    return cleaner, report, journal


def test_audit_sets_the_forget_rate_and_spends_budget(experiment, audited_run):
    cleaner, report, journal = audited_run
    audit = report.phase1["audit"]
    audited = np.array([index for index, _ in RelabelJournal(journal).read().relabels[0]])
    assert audit["n_audited"] == len(audited) == 60
    wrong = experiment.y_given[audited] != experiment.y_true[audited]
    assert audit["n_changed"] == wrong.sum() and audit["low"] <= audit["noise_rate"] <= audit["high"]
    # phase 1 forgot the audited rate of the labels the audit left unchecked, not its own estimate
    n = len(experiment.y_given)
    assert cleaner.estimator_.noise_rate_ == pytest.approx(wrong.mean() * (n - 60) / n)
    assert [entry["labels_spent"] for entry in report.rounds] == [60, 80, 100, 120]
    assert cleaner.relabelled_mask_.sum() == 120 and cleaner.relabelled_mask_[audited].all()
    assert np.array_equal(cleaner.labels_[audited], experiment.y_true[audited])
    assert "audit: " in str(report)


def test_audit_is_replayed_on_resume_without_the_oracle(experiment, audited_run):
    reference, reference_report, journal = audited_run

    def no_oracle(indices, **_):
        raise AssertionError("the oracle was asked again for journalled samples")

    cleaner = ActiveLabelCleaner.resume(
        journal, _tiny_estimator(experiment), experiment.X_train, experiment.y_given, no_oracle,
        y_true=experiment.y_true, **_fit_kwargs(experiment),
    )
    report = cleaner.report_
    assert cleaner.audit_size == 60
    assert np.array_equal(cleaner.labels_, reference.labels_)
    assert _comparable(report) == _comparable(reference_report)


def test_a_given_forget_rate_is_kept_with_an_audit(experiment):
    estimator = _tiny_estimator(experiment).set_params(forget_rate=0.3, max_epochs=3)
    cleaner = ActiveLabelCleaner(estimator, audit_size=40, **{**TINY, "rounds": 1})
    fitted = cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                         **_fit_kwargs(experiment))
    assert fitted is cleaner  # scikit-learn's convention: fit returns the estimator
    report = cleaner.report_
    assert cleaner.estimator_.noise_rate_ == 0.3 and report.phase1["audit"]["n_audited"] == 40


def test_report_scores_the_estimators_balanced_decisions(experiment):
    estimator = _tiny_estimator(experiment).set_params(max_epochs=3, decision="balanced")
    cleaner = ActiveLabelCleaner(estimator, **{**TINY, "rounds": 1})
    report = cleaner.fit(experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true),
                         **_fit_kwargs(experiment)).report_
    fitted = cleaner.estimator_
    last = report.rounds[-1]
    assert last["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(experiment.y_val, fitted.predict(experiment.X_val))
    )
    assert last["test_balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(experiment.y_test, fitted.predict(experiment.X_test))
    )
