"""The full two-phase loop on a MedMNIST file (RetinaMNIST, DermaMNIST, PathMNIST, ...).

The simulated expert first audits 5% of the labels at random: the audit's share of wrong labels sets
phase 1's forget rate, where the estimate from the training data alone can read far too high on
RetinaMNIST (benchmarks/RESULTS.md). Phase 1 co-teaches two SmallCNNs on labels with injected noise;
phase 2 spends the rest of the expert's budget on the samples the strategy ranks first, round by round,
and recalibrates. Every answer is journalled, so a killed
run continues with ``ActiveLabelCleaner.resume``.

    python examples/medmnist_two_phase.py --npz ../shared/data/retinamnist.npz --out run-retina
    python examples/medmnist_two_phase.py --npz PATH --fast     # tiny settings, for the tests

Nothing is downloaded: pass the path of a MedMNIST ``.npz`` you have.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modal_noisy import ActiveLabelCleaner, SimulatedOracle
from modal_noisy.experiment import Experiment, RunConfig


def main(npz: str, out: str, fast: bool = False) -> ActiveLabelCleaner:
    config = RunConfig(
        source="medmnist",
        path=npz,
        noise_rate=0.4,
        max_epochs=2 if fast else 40,
        selection="loss+vog",
        class_aware=True,  # per-class keep quotas: rare grades are not emptied
        strategy="vog",
        budget_per_round=10 if fast else 54,  # 5% of RetinaMNIST's training set per round
        rounds=2 if fast else 4,
        audit_size=10 if fast else 54,  # random labels checked first; their error rate is phase 1's τ
        recalibration_epochs=1 if fast else 15,
        random_state=0,
    )
    experiment = Experiment.from_config(config)
    print(f"{experiment.name}: {len(experiment.y_given)} training images, {experiment.n_classes} classes")

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    cleaner = experiment.build_cleaner(
        config, experiment.build_estimator(config, verbose=0), journal=out_dir / "journal.jsonl"
    )
    cleaner.fit(
        experiment.X_train,
        experiment.y_given,
        SimulatedOracle(experiment.y_true),
        **experiment.evaluation_splits,
    )
    report = cleaner.report_
    print(report.to_markdown())
    written = report.plot(out_dir)
    report.to_json(out_dir / "report.json")
    print("wrote", ", ".join(str(path) for path in [*written, out_dir / "report.json"]))
    return cleaner


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--npz", required=True, help="a MedMNIST-layout .npz file")
    parser.add_argument("--out", default="run-medmnist", help="folder for the journal and the report")
    parser.add_argument("--fast", action="store_true", help="tiny settings (used by the tests)")
    args = parser.parse_args()
    main(args.npz, args.out, fast=args.fast)
