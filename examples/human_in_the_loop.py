"""The expert's workflow with files: export a queue, fill in the answers, continue.

Each round :class:`~modal_noisy.FileOracle` writes ``queue_roundNN.csv`` and a contact sheet
``queue_roundNN.png`` and stops the run with ``AwaitingExpertAnswers``. The expert fills the ``label``
column and saves ``answers_roundNN.csv``; running again resumes from the journal (nothing the expert
answered is asked twice) and continues to the next round.

Here the "expert" is simulated by a function that fills the CSV from the true digit labels, so the
script runs unattended. With a real expert, run ``modal-noisy relabel WORKDIR --digits`` instead and
edit the CSV by hand between calls.

    python examples/human_in_the_loop.py --workdir run-expert
    python examples/human_in_the_loop.py --workdir run-expert --fast
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from modal_noisy import ActiveLabelCleaner, AwaitingExpertAnswers, FileOracle
from modal_noisy.experiment import build_coteaching, load_experiment


def answer_queue(queue_csv: Path, answers_csv: Path, y_true: np.ndarray) -> int:
    """Stand-in for the expert: copy the queue and fill its ``label`` column."""
    with queue_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = str(int(y_true[int(row["position"])]))
    with answers_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(workdir: str, fast: bool = False) -> tuple[ActiveLabelCleaner, int]:
    """Run the workflow to the end; return the fitted cleaner and the number of sessions it took."""
    experiment = load_experiment("digits", noise_rate=0.4, random_state=0)
    work = Path(workdir)
    journal = work / "journal.jsonl"
    oracle = FileOracle(
        work / "queue", n_classes=experiment.n_classes, class_names=experiment.class_names,
        images=experiment.X_train,
    )
    settings = dict(
        budget_per_round=10 if fast else 30,
        rounds=2 if fast else 3,
        recalibration_epochs=2 if fast else 10,
        journal=journal,
        random_state=0,
    )
    fit_kwargs = dict(X_val=experiment.X_val, y_val=experiment.y_val)
    sessions = 0
    while True:
        sessions += 1
        estimator = build_coteaching(experiment, max_epochs=3 if fast else 30, random_state=0, verbose=0)
        try:
            if journal.exists():
                cleaner = ActiveLabelCleaner.resume(
                    journal, estimator, experiment.X_train, experiment.y_given, oracle, **fit_kwargs
                )
            else:
                work.mkdir(parents=True, exist_ok=True)
                cleaner = ActiveLabelCleaner(estimator, "vog", **settings).fit(
                    experiment.X_train, experiment.y_given, oracle, **fit_kwargs
                )
            break
        except AwaitingExpertAnswers as waiting:
            n = answer_queue(waiting.queue_csv, waiting.answers_path, experiment.y_true)
            print(f"session {sessions}: the expert answered {n} queued labels in {waiting.answers_path.name}")
    print(cleaner.report_.to_markdown())
    return cleaner, sessions


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", default="run-expert")
    parser.add_argument("--fast", action="store_true", help="tiny settings (used by the tests)")
    args = parser.parse_args()
    main(args.workdir, fast=args.fast)
