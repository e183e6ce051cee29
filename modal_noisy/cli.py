"""The ``modal-noisy`` command: ``demo``, ``run`` and the expert's ``relabel`` workflow.

Every option is a :class:`~modal_noisy.experiment.RunConfig` field of the same name (``--budget-per-round``
sets ``budget_per_round``); a run's ``settings.json`` is that configuration, checked as a whole before
any work.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from modal_noisy import __version__
from modal_noisy.cleaning import ActiveLabelCleaner, AwaitingExpertAnswers, FileOracle, SimulatedOracle
from modal_noisy.cleaning.report import CleaningReport
from modal_noisy.decision import label_prior
from modal_noisy.experiment import Experiment, RunConfig
from modal_noisy.metrics import classification_metrics

__all__ = ["DEMO_CONFIG", "build_parser", "main"]

#: The embedded demo: long-tailed digits, 40% symmetric noise, a simulated expert; <= 3 min on 2 CPUs.
DEMO_CONFIG = RunConfig(
    source="digits",
    noise_rate=0.4,
    strategy="vog",
    budget_per_round=30,
    rounds=5,
    max_epochs=40,
    recalibration_epochs=10,
    selection="loss+vog",
    class_aware=True,
    forget_rate="auto",
    random_state=0,
)
_DEFAULTS = RunConfig()


def _forget_rate(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number (got {text!r})") from None


def _add_config_options(parser: argparse.ArgumentParser, *, data_required: bool) -> None:
    """One option per RunConfig field, named after it; the defaults are RunConfig's."""
    data = parser.add_mutually_exclusive_group(required=data_required)
    data.add_argument("--digits", action="store_true", help="scikit-learn's digits, made 10x long-tailed")
    data.add_argument("--npz", metavar="PATH", help="a MedMNIST-layout .npz (train/val/test splits)")
    data.add_argument("--hmnist-csv", metavar="PATH", help="a HAM10000 hmnist_*.csv file")
    d = _DEFAULTS
    parser.add_argument(
        "--noise-rate", type=float, default=d.noise_rate,
        help="share of training labels to corrupt (0: labels as given)",
    )
    parser.add_argument("--noise-kind", choices=("symmetric", "pair"), default=d.noise_kind)
    parser.add_argument(
        "--strategy", default=d.strategy, help="query strategy name (default: vog, loss and VoG)"
    )
    parser.add_argument("--budget-per-round", type=int, default=d.budget_per_round, help="labels per round")
    parser.add_argument("--rounds", type=int, default=d.rounds)
    parser.add_argument(
        "--audit-size", type=int, default=d.audit_size, metavar="N",
        help="labels the expert checks at random before phase 1; their error rate sets the forget rate "
        "when --forget-rate is auto (default: 0, no audit)",
    )
    parser.add_argument("--max-epochs", type=int, default=d.max_epochs, help="phase-1 epochs")
    parser.add_argument("--recalibration-epochs", type=int, default=d.recalibration_epochs)
    parser.add_argument("--selection", choices=("loss", "loss+vog", "loss+random"), default=d.selection)
    parser.add_argument(
        "--class-aware", action=argparse.BooleanOptionalAction, default=d.class_aware,
        help="per-class keep quotas in phase 1 (--no-class-aware: one quota over all classes)",
    )
    parser.add_argument(
        "--forget-rate", type=_forget_rate, default=d.forget_rate, help="'auto' or the assumed noise rate"
    )
    parser.add_argument(
        "--decision", choices=("argmax", "balanced"), default=d.decision,
        help="how predictions are made and scored: 'balanced' divides the probabilities by the class "
        "prior of the training labels first (better balanced accuracy on imbalanced data)",
    )
    parser.add_argument("--device", default=d.device, help="cpu, cuda or cuda:N")
    parser.add_argument("--random-state", type=int, default=d.random_state, help="seeds everything")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modal-noisy",
        description="Find and fix wrong labels in class-imbalanced image data (co-teaching with "
        "Variance of Gradients, then active label cleaning with an expert in the loop).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="the embedded demo: noisy long-tailed digits cleaned by a simulated expert"
    )
    demo.add_argument("--out", metavar="DIR", help="report folder (default: a new modal-noisy-demo-* folder)")

    run = commands.add_parser("run", help="the two-phase loop with a simulated expert on your data")
    _add_config_options(run, data_required=True)
    run.add_argument("--out", metavar="DIR", help="report folder (default: a new folder it names)")

    relabel = commands.add_parser(
        "relabel",
        help="the human workflow: export a queue, let the expert answer, continue (run it again)",
        description="First call: runs phase 1 and writes round 1's queue (CSV + contact sheet) into "
        "WORKDIR/queue. The expert fills the 'label' column and saves it as answers_roundNN.csv in the same "
        "folder; each later call (just `modal-noisy relabel WORKDIR`) imports the answers, recalibrates and "
        "writes the next queue, until the last round writes the report.",
    )
    relabel.add_argument("workdir", help="folder holding the run's settings, journal, queues and report")
    _add_config_options(relabel, data_required=False)
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` of parsed ``run`` / ``relabel`` options."""
    if args.digits:
        source, path = "digits", None
    elif args.npz:
        source, path = "medmnist", str(Path(args.npz).resolve())
    else:
        source, path = "hmnist", str(Path(args.hmnist_csv).resolve())
    fields = _DEFAULTS.to_dict()
    options = {name: value for name, value in vars(args).items() if name in fields}
    return RunConfig(source=source, path=path, **options)


def _prepare(config: RunConfig) -> tuple[Experiment, object]:
    experiment = Experiment.from_config(config)
    return experiment, experiment.build_estimator(config)


def _new_out_dir(prefix: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(f"{prefix}-{stamp}")
    suffix = 1
    while out.exists():
        suffix += 1
        out = Path(f"{prefix}-{stamp}-{suffix}")
    return out


def _baseline_accuracy(experiment: Experiment, config: RunConfig) -> float:
    """Validation balanced accuracy of plain cross-entropy, decided as the run's estimator decides."""
    print(f"baseline: plain cross-entropy on the noisy labels, {config.max_epochs} epochs ...", flush=True)
    baseline = experiment.build_baseline(config, verbose=0).fit(experiment.X_train, experiment.y_given)
    prior = label_prior(experiment.y_given, experiment.n_classes) if config.decision == "balanced" else None
    probs = baseline.predict_proba(experiment.X_val)
    return classification_metrics(experiment.y_val, probs, class_prior=prior)["balanced_accuracy"]


def _write_report(report: CleaningReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "rounds.csv"]
    report.to_json(written[0])
    report.to_frame().to_csv(written[1], index=False)
    written += report.plot(out)
    return written


def _simulated_run(config: RunConfig, out: Path, *, with_baseline: bool) -> int:
    experiment, estimator = _prepare(config)
    print(
        f"data: {experiment.name}: {len(experiment.y_given)} training samples, "
        f"{experiment.n_classes} classes, "
        f"{config.noise_rate:.0%} {config.noise_kind} noise; simulated expert"
    )
    if experiment.y_true is None:
        raise SystemExit("a simulated expert needs the true labels: use --noise-rate > 0 to inject noise")
    config.to_json(out / "settings.json")
    baseline = _baseline_accuracy(experiment, config) if with_baseline else None
    cleaner = experiment.build_cleaner(config, estimator, journal=out / "journal.jsonl")
    print(f"phase 1: co-teaching ({config.selection}), {config.max_epochs} epochs ...", flush=True)
    report = cleaner.fit(
        experiment.X_train,
        experiment.y_given,
        SimulatedOracle(experiment.y_true),
        **experiment.evaluation_splits,
    ).report_
    if baseline is not None:
        report.phase1["baseline_balanced_accuracy"] = baseline
    print()
    print(report.to_markdown())
    if baseline is not None:
        final = report.rounds[-1]["balanced_accuracy"]
        print(
            f"\nvalidation balanced accuracy: plain cross-entropy {baseline:.3f} | after phase 1 "
            f"{report.rounds[0]['balanced_accuracy']:.3f} | after {report.rounds[-1]['labels_spent']} expert "
            f"labels {final:.3f}"
        )
    written = _write_report(report, out)
    print(f"\nreport written to {out.resolve()}/: " + ", ".join(p.name for p in written))
    return 0


def _relabel(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    settings_path = workdir / "settings.json"
    journal = workdir / "journal.jsonl"
    if settings_path.is_file():
        config = RunConfig.from_json(settings_path)
    elif args.digits or args.npz or args.hmnist_csv:
        config = config_from_args(args)
        config.to_json(settings_path)
    else:
        raise SystemExit(
            f"{workdir} holds no run yet: start one with a data option (--digits, --npz or --hmnist-csv)"
        )

    experiment, estimator = _prepare(config)
    oracle = FileOracle(
        workdir / "queue",
        n_classes=experiment.n_classes,
        class_names=experiment.class_names,
        images=experiment.X_train,
    )
    data = (experiment.X_train, experiment.y_given, oracle)
    try:
        if journal.is_file():
            cleaner = ActiveLabelCleaner.resume(journal, estimator, *data, **experiment.evaluation_splits)
        else:
            cleaner = experiment.build_cleaner(config, estimator, journal=journal)
            cleaner.fit(*data, **experiment.evaluation_splits)
    except AwaitingExpertAnswers as waiting:
        print(f"\nround {waiting.round_index}: the expert's turn.")
        print(f"  queue:         {waiting.queue_csv}")
        print(f"  contact sheet: {waiting.contact_sheet}")
        print(f"  fill the 'label' column and save it as {waiting.answers_path}, then run again:")
        print(f"  modal-noisy relabel {workdir}")
        return 3
    print()
    print(cleaner.report_.to_markdown())
    written = _write_report(cleaner.report_, workdir / "report")
    print(f"\nall rounds done; report written to {(workdir / 'report').resolve()}/: "
          + ", ".join(p.name for p in written))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modal-noisy`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return _dispatch(args)
    except (ValueError, FileNotFoundError) as error:
        # bad input: say what is wrong, without a traceback
        parser.exit(2, f"modal-noisy {args.command}: error: {error}\n")


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        out = Path(args.out) if args.out else _new_out_dir("modal-noisy-demo")
        return _simulated_run(DEMO_CONFIG, out, with_baseline=True)
    if args.command == "run":
        out = Path(args.out) if args.out else _new_out_dir("modal-noisy-run")
        return _simulated_run(config_from_args(args), out, with_baseline=True)
    return _relabel(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
