"""The `modal-noisy` console script: help, version, a tiny simulated run and the expert workflow."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modal_noisy import __version__, cli
from modal_noisy.datasets import load_digits_long_tailed

SCRIPT = str(Path(sys.executable).with_name("modal-noisy"))
TINY = ["--max-epochs", "3", "--budget-per-round", "10", "--rounds", "2", "--recalibration-epochs", "2"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=600, cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_help_through_the_console_script(tmp_path):
    result = _cli("--help", cwd=tmp_path)
    assert result.returncode == 0 and all(c in result.stdout for c in ("demo", "run", "relabel"))


def test_version(cli_without_training):
    code, out, _ = cli_without_training("--version")
    assert code == 0 and out.strip() == f"modal-noisy {__version__}"


def test_run_requires_a_data_source(cli_without_training):
    code, _, err = cli_without_training("run")
    assert code == 2
    assert "one of the arguments --digits --npz --hmnist-csv is required" in err


def test_run_on_digits_writes_the_report(tmp_path):
    out = tmp_path / "out"
    result = _cli(
        "run", "--digits", *TINY, "--audit-size", "15", "--decision", "balanced", "--out", str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| round |" in result.stdout and str(out.resolve()) in result.stdout
    settings = json.loads((out / "settings.json").read_text())
    assert settings["decision"] == "balanced" and settings["audit_size"] == 15
    assert settings["budget_per_round"] == 10 and settings["max_epochs"] == 3
    report = json.loads((out / "report.json").read_text())
    assert report["phase1"]["audit"]["n_audited"] == 15
    assert [r["labels_spent"] for r in report["rounds"]] == [15, 25, 35]
    assert (out / "journal.jsonl").stat().st_size > 0
    assert "report.html" in result.stdout and (out / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("decision", "class_option", "class_aware"),
    [("argmax", [], True), ("balanced", ["--no-class-aware"], False), ("argmax", ["--class-aware"], True)],
)
def test_settings_reach_the_estimator(decision, class_option, class_aware):
    args = cli.build_parser().parse_args(["run", "--digits", *TINY, *class_option, "--decision", decision])
    config = cli.config_from_args(args)
    assert (config.decision, config.class_aware, config.max_epochs) == (decision, class_aware, 3)
    _, estimator = cli._prepare(config)
    assert estimator.decision == decision and estimator.class_aware is class_aware
    assert estimator.max_epochs == 3


def test_every_option_is_a_run_config_field():
    from modal_noisy.experiment import RunConfig

    args = vars(cli.build_parser().parse_args(["run", "--digits"]))
    options = set(args) - {"command", "digits", "npz", "hmnist_csv", "out"}
    assert options <= set(RunConfig().to_dict())
    assert cli.config_from_args(argparse.Namespace(**args)) == RunConfig()  # the same defaults


def test_medmnist_runs_train_with_the_medical_recipe(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, size in (("train", 30), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (size, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.arange(size).reshape(-1, 1) % 3
    np.savez(tmp_path / "tiny28.npz", **arrays)
    args = cli.build_parser().parse_args(["run", "--npz", str(tmp_path / "tiny28.npz"), *TINY])
    _, estimator = cli._prepare(cli.config_from_args(args))
    assert estimator.get_params()["module__local_contrast"] == 2.0  # 28 // 14
    assert estimator.get_params()["iterator_train__collate_fn"].max_shift == 2


def test_a_settings_file_with_stale_keys_is_refused(tmp_path, cli_without_training):
    work = tmp_path / "work"
    work.mkdir()
    (work / "settings.json").write_text(json.dumps({"source": "digits", "budget": 10, "seed": 0}))
    code, _, err = cli_without_training("relabel", str(work))
    assert code == 2 and "Traceback" not in err
    assert "unknown key(s) 'budget' (now 'budget_per_round'), 'seed' (now 'random_state')" in err
    assert not (work / "journal.jsonl").exists()


def test_unknown_strategy_lists_the_valid_ones(tmp_path, cli_without_training):
    out = str(tmp_path / "o")
    code, _, err = cli_without_training("run", "--digits", *TINY, "--strategy", "nope", "--out", out)
    assert code == 2
    assert err.startswith("modal-noisy run: error: strategy must be one of")
    assert "'entropy'" in err and "Traceback" not in err


@pytest.mark.slow
def test_relabel_exports_imports_and_continues(tmp_path):
    work = tmp_path / "work"
    first = _cli("relabel", str(work), "--digits", *TINY, cwd=tmp_path)
    assert first.returncode == 3, first.stderr[-3000:]
    queue = work / "queue" / "queue_round01.csv"
    assert str(queue) in first.stdout and "modal-noisy relabel" in first.stdout
    # the same queue for Label Studio, with the phase-1 model's predictions as pre-annotations
    tasks = json.loads((work / "queue" / "queue_round01.labelstudio.json").read_text())
    assert len(tasks) == 10 and all(len(task["predictions"]) == 1 for task in tasks)
    assert "queue_round01.labelstudio.json" in first.stdout and "answers_round01.json" in first.stdout

    # the expert answers round 1 with the true labels
    y_true = load_digits_long_tailed(imbalance_ratio=10, random_state=0).y_train
    with queue.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = str(int(y_true[int(row["position"])]))
    answers = work / "queue" / "answers_round01.csv"
    with answers.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    second = _cli("relabel", str(work), cwd=tmp_path)  # settings come from the work folder
    assert second.returncode == 3, second.stderr[-3000:]
    assert (work / "queue" / "queue_round02.csv").exists()
    journal = [json.loads(line) for line in (work / "journal.jsonl").read_text().splitlines()]
    relabels = [r for r in journal if r.get("type") == "relabel"]
    assert len(relabels) == 10 and {r["round"] for r in relabels} == {1}
    # one set of names: the journal header records the cleaner's settings under settings.json's keys
    settings = json.loads((work / "settings.json").read_text())
    header = journal[0]["settings"]
    shared = set(header) & set(settings)
    assert {"strategy", "budget_per_round", "rounds", "audit_size", "random_state"} <= shared
    assert all(header[key] == settings[key] for key in shared)
