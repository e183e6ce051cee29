"""Every example runs in its fast mode and does what it says; each also answers --help as a script."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modal_noisy.cleaning import RelabelJournal
from modal_noisy.experiment import load_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(script: str):
    """Import an example as a module (its ``main`` is what ``python examples/<script>`` runs)."""
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), EXAMPLES / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_modal_ranks_wrong_labels_first():
    result = _example("quickstart_modal.py").main(fast=True)
    idx = np.asarray(result["query_idx"])
    assert idx.shape == (50,) and np.unique(idx).size == 50
    # the VoG strategy finds wrong labels more often than picking at random would
    assert result["hit_rate"] > result["base_rate"], result
    assert 0.0 < result["accuracy"] <= 1.0


def test_medmnist_two_phase_audits_then_relabels_only_what_it_queried(tmp_path, shared_data):
    npz = shared_data / "retinamnist.npz"
    if not npz.is_file():
        pytest.skip(f"{npz} not found")
    cleaner = _example("medmnist_two_phase.py").main(str(npz), str(tmp_path / "run"), fast=True)
    truth = load_experiment("medmnist", path=npz, noise_rate=0.4, random_state=0)
    report = cleaner.report_
    assert report.phase1["audit"]["n_audited"] == 10
    assert [r["labels_spent"] for r in report.rounds] == [10, 20, 30]  # audit, then 2 rounds of 10
    asked = cleaner.relabelled_mask_
    assert asked.sum() == 30
    np.testing.assert_array_equal(cleaner.labels_[asked], truth.y_true[asked])  # the expert's answers
    np.testing.assert_array_equal(cleaner.labels_[~asked], truth.y_given[~asked])  # nothing else changed
    # every answer is in the journal, and the report on disk is the cleaner's
    journalled = RelabelJournal(tmp_path / "run" / "journal.jsonl").read()
    assert journalled.n_relabels == 30 and journalled.rounds == [0, 1, 2]
    on_disk = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [r["labels_spent"] for r in on_disk["rounds"]] == [10, 20, 30]
    assert (tmp_path / "run" / "cleaning_curve.png").stat().st_size > 0


def test_human_in_the_loop_resumes_after_each_expert_session(tmp_path):
    work = tmp_path / "work"
    cleaner, sessions = _example("human_in_the_loop.py").main(str(work), fast=True)
    # two rounds: two sessions stop for the expert, the third resumes to the end
    assert sessions == 3
    queue = work / "queue"
    assert sorted(p.name for p in queue.glob("answers_round*.csv")) == [
        "answers_round01.csv", "answers_round02.csv"]
    assert (queue / "queue_round01.png").stat().st_size > 0
    truth = load_experiment("digits", noise_rate=0.4, random_state=0)
    asked = cleaner.relabelled_mask_
    assert asked.sum() == 20 == cleaner.report_.rounds[-1]["labels_spent"]
    np.testing.assert_array_equal(cleaner.labels_[asked], truth.y_true[asked])
    assert RelabelJournal(work / "journal.jsonl").read().n_relabels == 20  # nothing asked twice


# runs each script named on the command line as __main__ with --help, in one interpreter
_HELP_EACH = """
import runpy, sys
for script in sys.argv[1:]:
    print("=== " + script, flush=True)
    sys.argv = [script, "--help"]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
"""


def test_every_example_answers_help_as_a_script(tmp_path):
    """Each example, run as ``__main__``, prints its usage; one interpreter runs them all, since importing
    torch and the rest is most of what a ``--help`` costs."""
    scripts = sorted(str(p) for p in EXAMPLES.glob("*.py"))
    result = subprocess.run(
        [sys.executable, "-c", _HELP_EACH, *scripts],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = [block.splitlines() for block in result.stdout.split("=== ")[1:]]
    assert [lines[0] for lines in answers] == scripts
    for lines in answers:
        assert lines[1].startswith("usage:"), lines[:3]
