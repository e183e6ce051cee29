"""Bad input, through the API and the command line: refused at once, by name and value, before any work.

Every case asserts the error type, that the message names the parameter (or the file) and the value,
and that nothing was trained or written first: an estimator that fails if training starts, an oracle
that fails if asked, and run folders that stay absent or unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from modal_noisy._device import check_device
from modal_noisy.cleaning import ActiveLabelCleaner, FileOracle, RelabelJournal
from modal_noisy.cleaning.journal import dataset_fingerprint
from modal_noisy.datasets import ImageFolderCSV, load_medmnist
from modal_noisy.experiment import RunConfig, build_coteaching, load_experiment
from modal_noisy.strategies import get_strategy
from modal_noisy.training import CoTeachingClassifier

SCRIPT = str(Path(sys.executable).with_name("modal-noisy"))
TINY_RUN = ["--max-epochs", "1", "--budget-per-round", "5", "--rounds", "1", "--recalibration-epochs", "1"]
CLEANER = dict(budget_per_round=5, rounds=2, recalibration_epochs=1, random_state=0, verbose=0)
needs_fcntl = pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX only")


class _NoTraining(CoTeachingClassifier):
    """Fails loudly if training starts: input errors must come before any work."""

    def fit(self, X, y=None, **fit_params):
        raise AssertionError("training started before the input was checked")


def _never_asked(indices, **kwargs):
    raise AssertionError("the oracle was asked before the input was checked")


@pytest.fixture(scope="module")
def experiment():
    return load_experiment("digits", noise_rate=0.4, random_state=0)


@pytest.fixture(scope="module")
def fitted(experiment):
    """A one-epoch net on a slice of the data: only its predictions are used."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = build_coteaching(experiment, max_epochs=1, forget_rate=0.2, verbose=0)
        return net.fit(experiment.X_train[:120], experiment.y_given[:120])


def _estimator(experiment, **params):
    net = build_coteaching(experiment, max_epochs=1, random_state=0, verbose=0)
    return _NoTraining(**{**net.get_params(deep=False), **params})


def _with_nan(X, n=1):
    X = np.array(X, copy=True)
    X.reshape(-1)[:n] = np.nan
    return X


def _fit_cleaner(experiment, tmp_path, estimator=None, **settings):
    cleaner = ActiveLabelCleaner(
        estimator or _estimator(experiment), journal=tmp_path / "journal.jsonl", **{**CLEANER, **settings}
    )
    cleaner.fit(experiment.X_train, experiment.y_given, _never_asked, X_val=experiment.X_val,
                y_val=experiment.y_val)


def _journal_for_resume(experiment, tmp_path, *, relabel_to=None):
    """A journal header as a run of ``_estimator(random_state=0)`` writes it, optionally one relabel."""
    cleaner = ActiveLabelCleaner(_estimator(experiment), **CLEANER)
    journal = RelabelJournal(tmp_path / "journal.jsonl")
    y = np.asarray(experiment.y_given, dtype=np.int64)
    journal.start(dataset_fingerprint(experiment.X_train.astype(np.float32), y), cleaner._settings())
    if relabel_to is not None:
        journal.append_relabels(1, [3], [int(y[3])], [relabel_to])
    return journal.path


def _resume(experiment, journal, estimator=None, **kwargs):
    ActiveLabelCleaner.resume(
        journal, estimator or _estimator(experiment), experiment.X_train, experiment.y_given, _never_asked,
        X_val=experiment.X_val, y_val=experiment.y_val, **kwargs,
    )


def _truncated_npz(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, size in (("train", 20), ("val", 6), ("test", 6)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (size, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.arange(size).reshape(-1, 1) % 2
    np.savez(tmp_path / "whole.npz", **arrays)
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.npz"


def _image_folder(tmp_path, damaged: bytes):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(damaged)
    (tmp_path / "labels.csv").write_text("image,label\ngood.png,0\nbad.png,1\n")
    return tmp_path / "labels.csv"


def _cp1252_answers(tmp_path):
    oracle = FileOracle(tmp_path / "queue", n_classes=3, class_names=["naevus", "mélanome", "other"])
    answers = tmp_path / "answers_round01.csv"
    answers.write_bytes("position,label\n0,mélanome\n".encode("cp1252"))
    return lambda: oracle.read_answers(1, [0], path=answers)


# (id, call(experiment, fitted, tmp_path), error type, words the message must hold)
API_CASES = [
    ("config-budget", lambda e, f, t: RunConfig(budget_per_round=0), ValueError, ["budget_per_round", "0"]),
    ("config-device", lambda e, f, t: RunConfig(device="tpu"), ValueError, ["device", "'tpu'"]),
    ("config-forget-rate-1", lambda e, f, t: RunConfig(forget_rate=1.0), ValueError, ["forget_rate", "1.0"]),
    ("config-noise-rate", lambda e, f, t: RunConfig(noise_rate=-0.2), ValueError, ["noise_rate", "-0.2"]),
    ("config-seed", lambda e, f, t: RunConfig(random_state=-1), ValueError, ["random_state", "-1"]),
    ("config-renamed-key", lambda e, f, t: RunConfig.from_dict({"budget": 5}), ValueError,
     ["'budget'", "budget_per_round"]),
    ("config-strategy", lambda e, f, t: RunConfig(strategy="nope"), ValueError, ["strategy", "'nope'"]),
    ("device-name", lambda e, f, t: check_device("gpu0"), ValueError, ["device", "'gpu0'"]),
    ("device-cuda-index", lambda e, f, t: check_device(f"cuda:{torch.cuda.device_count() + 3}"), ValueError,
     ["device", "cuda:"]),
    ("net-forget-rate-1", lambda e, f, t: _estimator(e, forget_rate=1.0).partial_fit(e.X_train, e.y_given),
     ValueError, ["forget_rate", "1.0"]),
    ("net-device", lambda e, f, t: _estimator(e, device="tpu").partial_fit(e.X_train, e.y_given), ValueError,
     ["device", "'tpu'"]),
    ("predict-proba-nan", lambda e, f, t: f.predict_proba(_with_nan(e.X_val[:5])), ValueError,
     ["X must not contain NaN", "1 non-finite"]),
    ("predict-inf", lambda e, f, t: f.predict(np.where(e.X_val[:4] > 0.5, np.inf, e.X_val[:4])), ValueError,
     ["X must not contain NaN or infinity", "non-finite"]),
    ("predict-tensor-nan", lambda e, f, t: f.predict_proba(torch.as_tensor(_with_nan(e.X_val[:3], 2))),
     ValueError, ["X must not contain", "2 non-finite"]),
    ("strategy-nan", lambda e, f, t: get_strategy("entropy")(f, _with_nan(e.X_val[:20], 3), 5), ValueError,
     ["X_pool must not contain", "3 non-finite"]),
    ("strategy-vog-nan", lambda e, f, t: get_strategy("margin")(f, _with_nan(e.X_val[:20]), 2), ValueError,
     ["X_pool", "1 non-finite"]),
    ("cleaner-budget", lambda e, f, t: _fit_cleaner(e, t, budget_per_round=-1), ValueError,
     ["budget_per_round", "-1"]),
    ("cleaner-rounds", lambda e, f, t: _fit_cleaner(e, t, rounds=0), ValueError, ["rounds", "0"]),
    ("cleaner-strategy", lambda e, f, t: _fit_cleaner(e, t, strategy="nope"), ValueError,
     ["strategy", "'nope'"]),
    ("cleaner-total-budget", lambda e, f, t: _fit_cleaner(e, t, budget_per_round=70, rounds=9), ValueError,
     ["budget_per_round * rounds", "630"]),
    ("cleaner-estimator-forget-rate", lambda e, f, t: _fit_cleaner(e, t, _estimator(e, forget_rate=1.5),
     audit_size=10), ValueError, ["forget_rate", "1.5"]),
    ("cleaner-nan-X", lambda e, f, t: ActiveLabelCleaner(_estimator(e), **CLEANER).fit(
        _with_nan(e.X_train, 4), e.y_given, _never_asked, X_val=e.X_val, y_val=e.y_val), ValueError,
     ["X must not contain", "4 non-finite"]),
    ("resume-typo-keyword", lambda e, f, t: _resume(e, _journal_for_resume(e, t), X_vall=e.X_val), TypeError,
     ["X_vall"]),
    ("resume-missing-journal", lambda e, f, t: _resume(e, t / "nope.jsonl"), FileNotFoundError,
     ["nope.jsonl"]),
    ("resume-other-estimator", lambda e, f, t: _resume(e, _journal_for_resume(e, t),
     _estimator(e, random_state=1)), ValueError, ["estimator_random_state", "0 in the journal, 1 now"]),
    ("resume-edited-label", lambda e, f, t: _resume(e, _journal_for_resume(e, t, relabel_to=42)), ValueError,
     ["journal.jsonl", "line 2", "label 42", "[0, 10)"]),
    ("npz-truncated", lambda e, f, t: load_medmnist(_truncated_npz(t)), ValueError,
     ["cut.npz", "BadZipFile"]),
    ("image-header", lambda e, f, t: ImageFolderCSV(_image_folder(t, b"not a png"), t), ValueError,
     ["bad.png", "labels.csv"]),
    ("image-truncated-full", lambda e, f, t: ImageFolderCSV(_image_folder(t, _png_head()), t, verify="full"),
     ValueError, ["bad.png", "not a readable image"]),
    ("image-verify-choice", lambda e, f, t: ImageFolderCSV(_image_folder(t, b""), t, verify="deep"),
     ValueError, ["verify", "'deep'"]),
    ("answers-not-utf8", lambda e, f, t: _cp1252_answers(t)(), ValueError,
     ["answers_round01.csv", "not UTF-8", "0xe9"]),
]


def _png_head() -> bytes:
    """A PNG whose header is whole and whose pixels are cut off."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()[:200]


@pytest.mark.parametrize(("case", "call", "error", "words"), API_CASES, ids=[case[0] for case in API_CASES])
def test_bad_api_input_is_refused_by_name_before_any_work(experiment, fitted, tmp_path, case, call, error,
                                                          words):
    with pytest.raises(error) as raised:
        call(experiment, fitted, tmp_path)
    message = str(raised.value)
    assert all(word in message for word in words), message
    # no phase 1 trained and saved, and no journal begun: a resume case's own journal gained nothing
    assert not (tmp_path / "journal.jsonl.phase1.pt").exists()
    journal = tmp_path / "journal.jsonl"
    if case.startswith("resume"):
        assert not journal.exists() or '"round_completed"' not in journal.read_text()
        assert not journal.exists() or journal.read_text().count('"relabel"') <= 1
    else:
        assert not journal.exists()


# ------------------------------------------------------------------ the command line
def _setup_nothing(tmp_path):
    return []


def _setup_npz_truncated(tmp_path):
    return ["--npz", str(_truncated_npz(tmp_path))]


def _setup_csv_garbage(tmp_path):
    (tmp_path / "hmnist_8_8_RGB.csv").write_bytes(b"\x00\x01\xff" * 50)
    return ["--hmnist-csv", str(tmp_path / "hmnist_8_8_RGB.csv")]


def _setup_out_is_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    return []


def _setup_other_settings(tmp_path):
    RunConfig(max_epochs=1, budget_per_round=5, rounds=2, recalibration_epochs=1).to_json(
        tmp_path / "out" / "settings.json"
    )
    return []


def _setup_bad_settings_json(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "settings.json").write_text("{not json")
    return []


# (id, setup(tmp_path) -> extra args, arguments ("OUT" is the run folder), words of the message)
CLI_CASES = [
    ("budget", _setup_nothing, ["run", "--digits", *TINY_RUN, "--budget-per-round", "-5"],
     ["budget_per_round", "-5"]),
    ("strategy", _setup_nothing, ["run", "--digits", "--strategy", "nope"], ["strategy", "'nope'"]),
    ("rounds", _setup_nothing, ["run", "--digits", "--rounds", "0"], ["rounds", "0"]),
    ("audit", _setup_nothing, ["run", "--digits", "--audit-size", "-1"], ["audit_size", "-1"]),
    ("forget-rate-1.5", _setup_nothing, ["run", "--digits", "--forget-rate", "1.5"], ["forget_rate", "1.5"]),
    ("forget-rate-1", _setup_nothing, ["run", "--digits", "--forget-rate", "1"], ["forget_rate", "1"]),
    ("seed", _setup_nothing, ["run", "--digits", "--random-state", "-1"], ["random_state", "-1"]),
    ("max-epochs", _setup_nothing, ["run", "--digits", "--max-epochs", "0"], ["max_epochs", "0"]),
    ("noise-rate", _setup_nothing, ["run", "--digits", "--noise-rate", "1.2"], ["noise_rate", "1.2"]),
    ("device-tpu", _setup_nothing, ["run", "--digits", "--device", "tpu"], ["device", "'tpu'"]),
    ("device-gpu-missing", _setup_nothing, ["run", "--digits", "--device", "cuda:7"], ["device", "'cuda:7'"]),
    ("defaults-too-big-for-digits", _setup_nothing, ["run", "--digits"],
     ["audit_size + budget_per_round * rounds", "630"]),
    ("no-noise-no-expert", _setup_nothing, ["run", "--digits", *TINY_RUN, "--noise-rate", "0"],
     ["--noise-rate", "true labels"]),
    ("npz-missing", _setup_nothing, ["run", "--npz", "missing.npz"], ["missing.npz", "does not exist"]),
    ("npz-truncated", _setup_npz_truncated, ["run", *TINY_RUN], ["cut.npz", "not a readable"]),
    ("csv-garbage", _setup_csv_garbage, ["run", *TINY_RUN], ["hmnist_8_8_RGB.csv"]),
    ("out-is-a-file", _setup_out_is_a_file, ["run", "--digits", *TINY_RUN], ["--out", "is a file"]),
    ("out-other-settings", _setup_other_settings, ["run", "--digits", *TINY_RUN],
     ["--rounds: 2 in the folder, 1 now"]),
    ("relabel-negative-noise", _setup_nothing, ["relabel", "OUT", "--digits", "--noise-rate", "-0.2"],
     ["noise_rate", "-0.2"]),
    ("relabel-no-run", _setup_nothing, ["relabel", "OUT"], ["holds no run yet", "--digits"]),
    ("relabel-other-flag", _setup_other_settings, ["relabel", "OUT", "--budget-per-round", "7"],
     ["--budget-per-round: 5 in the folder, 7 now"]),
    ("relabel-bad-settings", _setup_bad_settings_json, ["relabel", "OUT"],
     ["settings.json", "not valid JSON"]),
]


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("setup", "argv", "words"), [case[1:] for case in CLI_CASES],
                         ids=[case[0] for case in CLI_CASES])
def test_bad_cli_input_is_one_line_and_status_2(tmp_path, cli_without_training, monkeypatch, setup, argv,
                                                 words):
    monkeypatch.chdir(tmp_path)
    extra = setup(tmp_path)
    out = tmp_path / "out"
    before = _listing(tmp_path)
    argv = [str(out) if arg == "OUT" else arg for arg in argv]
    if argv[0] == "run":
        argv = [*argv, *extra, "--out", str(out)]
    code, _, err = cli_without_training(*argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"modal-noisy {argv[0]}: error: "), err
    assert "Traceback" not in err
    assert all(word in err for word in words), err
    assert _listing(tmp_path) == before  # nothing written, not even the folder's lock


@needs_fcntl
def test_a_journal_held_by_another_run_is_refused(tmp_path, cli_without_training):
    out = tmp_path / "out"
    with RelabelJournal(out / "journal.jsonl").lock():
        code, _, err = cli_without_training("run", "--digits", *TINY_RUN, "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and "in use by another run" in err and "journal" in err
    assert not (out / "settings.json").exists() and not (out / "journal.jsonl").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_folder_is_refused(tmp_path, cli_without_training):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o500)
    try:
        code, _, err = cli_without_training("run", "--digits", *TINY_RUN, "--out", str(out))
    finally:
        out.chmod(0o700)
    assert code == 2 and "not writable" in err and err.count("\n") == 1
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [["run", "--digits", "--device", "tpu"], ["relabel", "work", "--digits", "--random-state", "-1"]],
    ids=["device", "seed"],
)
def test_the_console_script_reports_one_line(tmp_path, argv):
    """The installed script, end to end: status 2, one line, no traceback, nothing trained or written."""
    result = subprocess.run([SCRIPT, *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()})
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    # refused before any work: no epoch table on stdout, no file in the working folder
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ warnings: the run goes on, with a word
def test_a_single_class_training_set_warns(experiment):
    cleaner = ActiveLabelCleaner(_estimator(experiment), **CLEANER)
    with pytest.warns(UserWarning, match=r"y_noisy holds a single class \(3\)"):
        cleaner._validate(experiment.X_train, np.full(len(experiment.y_given), 3), _never_asked,
                          X_val=experiment.X_val, y_val=experiment.y_val, X_test=None, y_test=None,
                          y_true=None)


def test_an_exhausted_pool_warns(experiment):
    class _KeepsAlmostAll(CoTeachingClassifier):
        """Phase 1 trusts all but 7 samples: a budget of 5 per round runs dry in round 2."""

        def fit(self, X, y=None, **fit_params):
            super().fit(X, y, **fit_params)
            self.clean_mask_ = np.ones(len(y), dtype=bool)
            self.clean_mask_[:7] = False
            return self

    net = build_coteaching(experiment, max_epochs=1, forget_rate=0.1, random_state=0, verbose=0)
    estimator = _KeepsAlmostAll(**net.get_params(deep=False))
    cleaner = ActiveLabelCleaner(estimator, "random", pool="noisy", **{**CLEANER, "rounds": 3})
    with pytest.warns(UserWarning, match=r"pool \(pool='noisy'\) is exhausted: round 2 of 3 finds 2 samples"):
        cleaner.fit(experiment.X_train, experiment.y_given, lambda idx, **kw: experiment.y_true[idx],
                    X_val=experiment.X_val, y_val=experiment.y_val)
    assert [r["labels_spent"] for r in cleaner.report_.rounds] == [0, 5, 7]


def test_the_acceptance_counts():
    assert len(API_CASES) + len(CLI_CASES) >= 40 and len(CLI_CASES) >= 15
    json.dumps([case[0] for case in API_CASES + CLI_CASES])  # ids are plain names
