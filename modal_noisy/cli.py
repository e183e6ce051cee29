"""The ``modal-noisy`` command: ``demo``, ``run`` and the expert's ``relabel`` workflow.

Every option is a :class:`~modal_noisy.experiment.RunConfig` field of the same name (``--budget-per-round``
sets ``budget_per_round``); a run's ``settings.json`` is that configuration, checked as a whole before
any work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import fields as dataclass_fields
from pathlib import Path

from modal_noisy import __version__
from modal_noisy._locking import LockHeld, exclusive_lock
from modal_noisy.cleaning import ActiveLabelCleaner, AwaitingExpertAnswers, FileOracle, SimulatedOracle
from modal_noisy.cleaning.journal import RelabelJournal
from modal_noisy.cleaning.report import CleaningReport
from modal_noisy.decision import label_prior
from modal_noisy.experiment import Experiment, RunConfig
from modal_noisy.metrics import classification_metrics

__all__ = ["DEMO_CONFIG", "build_parser", "main"]

#: The embedded demo: long-tailed digits, 40% symmetric noise, a simulated expert; <= 3 min on 2 CPUs.
DEMO_CONFIG = RunConfig(
    source="digits",
    noise_rate=0.4,
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
_DATA_OPTIONS = ("digits", "npz", "hmnist_csv")
#: What a run's folder holds besides the report: its settings, its journal and the folder's lock.
_SETTINGS, _JOURNAL, _LOCK = "settings.json", "journal.jsonl", ".modal-noisy.lock"


class _NoDefaults:
    """Every RunConfig field's default is ``argparse.SUPPRESS``: absent options stay out of the namespace."""

    def __getattr__(self, name: str) -> str:
        return argparse.SUPPRESS


def _forget_rate(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number (got {text!r})") from None


def _add_config_options(parser: argparse.ArgumentParser, *, data_required: bool, defaults: bool) -> None:
    """One option per RunConfig field, named after it; the defaults are RunConfig's, or none."""
    # without defaults, only the options given on the command line appear in the parsed namespace
    d = _DEFAULTS if defaults else _NoDefaults()
    data = parser.add_mutually_exclusive_group(required=data_required)
    data.add_argument(
        "--digits", action="store_true", default=False if defaults else argparse.SUPPRESS,
        help="scikit-learn's digits, made 10x long-tailed",
    )
    no_path = None if defaults else argparse.SUPPRESS
    data.add_argument(
        "--npz", metavar="PATH", default=no_path, help="a MedMNIST-layout .npz (train/val/test splits)"
    )
    data.add_argument("--hmnist-csv", metavar="PATH", default=no_path, help="a HAM10000 hmnist_*.csv file")
    parser.add_argument(
        "--noise-rate", type=float, default=d.noise_rate,
        help="share of training labels to corrupt (0: labels as given)",
    )
    parser.add_argument("--noise-kind", choices=("symmetric", "pair"), default=d.noise_kind)
    parser.add_argument(
        "--strategy", default=d.strategy,
        help="query strategy name (default: adaptive_mislabel: the labels phase 1's training record "
        "doubts most, among ever more of them the model's most uncertain while the answers keep "
        "fixing labels)",
    )
    parser.add_argument(
        "--pool", choices=("all", "noisy"), default=d.pool,
        help="what a round ranks: 'all' not yet answered, phase 1's selection included (default), or "
        "'noisy', only the samples phase 1 did not keep (the paper)",
    )
    parser.add_argument(
        "--keep-best", action=argparse.BooleanOptionalAction, default=d.keep_best,
        help="adopt a round's recalibrated model only if it scores at least as well on the validation "
        "split as the model in use (--no-keep-best: always adopt it, the paper)",
    )
    parser.add_argument(
        "--keep-best-tolerance", type=float, default=d.keep_best_tolerance, metavar="Z",
        help="with --keep-best, adopt a recalibration unless it scores more than Z standard errors of "
        "the paired validation difference below the model in use (default: %(default)s)",
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


def build_parser(*, defaults: bool = True) -> argparse.ArgumentParser:
    """The command's parser; ``defaults=False`` leaves out the options not given (see :func:`main`)."""
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
    _add_config_options(run, data_required=True, defaults=defaults)
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
    _add_config_options(relabel, data_required=False, defaults=defaults)
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



def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _describe_differences(stored: RunConfig, wanted: RunConfig, names: Sequence[str]) -> str:
    """``--budget-per-round: 10 in the folder, 20 now; ...`` for the settings that differ."""
    before, now = stored.to_dict(), wanted.to_dict()
    return "; ".join(
        f"{_flag(name)}: {before[name]!r} in the folder, {now[name]!r} now"
        for name in names
        if before[name] != now[name]
    )


def _check_folder(folder: Path, option: str) -> Path:
    """Refuse a folder option that names a file, or a folder this process cannot write to."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {str(folder)!r} is a file, not a folder")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {str(folder)!r}: {str(existing)!r} is not writable")
    return folder


def _stored_config(folder: Path) -> RunConfig | None:
    """The settings of the run a folder holds, or ``None`` for a folder without one."""
    path = folder / _SETTINGS
    return RunConfig.from_json(path) if path.is_file() else None


def _check_journal_free(journal: Path) -> None:
    """Refuse, before any work, a journal another live run (the Python API, say) holds."""
    with RelabelJournal(journal).lock():
        pass


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


def _baseline_accuracy(experiment: Experiment, config: RunConfig, out: Path) -> float:
    """Validation balanced accuracy of plain cross-entropy, decided as the run's estimator decides.

    Kept in ``out/baseline.json``, so a continued run does not train it again.
    """
    saved = out / "baseline.json"
    if saved.is_file():
        return float(json.loads(saved.read_text(encoding="utf-8"))["balanced_accuracy"])
    print(f"baseline: plain cross-entropy on the noisy labels, {config.max_epochs} epochs ...", flush=True)
    baseline = experiment.build_baseline(config, verbose=0).fit(experiment.X_train, experiment.y_given)
    prior = label_prior(experiment.y_given, experiment.n_classes) if config.decision == "balanced" else None
    probs = baseline.predict_proba(experiment.X_val)
    accuracy = classification_metrics(experiment.y_val, probs, class_prior=prior)["balanced_accuracy"]
    saved.write_text(json.dumps({"balanced_accuracy": accuracy}) + "\n", encoding="utf-8")
    return accuracy


def _write_report(report: CleaningReport, out: Path, oracle: FileOracle | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "rounds.csv"]
    report.to_json(written[0])
    report.to_frame().to_csv(written[1], index=False)
    written += report.plot(out)
    written.append(report.to_html(out / "report.html", oracle=oracle))
    return written


def _simulated_run(config: RunConfig, out: Path, *, with_baseline: bool) -> int:
    """Run (or continue, from the folder's journal) the loop with a simulated expert into ``out``.

    Everything that can be checked is checked before the folder is created or anything trained:
    the folder, its settings against ``config``, the data, the budget against the data.
    """
    _check_folder(out, "--out")
    _check_same_run(out, config)
    experiment, estimator = _prepare(config)
    if experiment.y_true is None:
        raise ValueError("a simulated expert needs the true labels: use --noise-rate > 0 to inject noise")
    journal = out / _JOURNAL
    data = (experiment.X_train, experiment.y_given, SimulatedOracle(experiment.y_true))
    cleaner = experiment.build_cleaner(config, estimator, journal=journal)
    cleaner._validate(*data, **experiment.evaluation_splits, y_true=None)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out / _LOCK, f"--out folder {str(out)!r}"):
        _check_journal_free(journal)
        _check_same_run(out, config)  # another run may have started it meanwhile
        print(
            f"data: {experiment.name}: {len(experiment.y_given)} training samples, "
            f"{experiment.n_classes} classes, "
            f"{config.noise_rate:.0%} {config.noise_kind} noise; simulated expert"
        )
        resuming = journal.is_file()
        if resuming:
            recorded = RelabelJournal(journal).read().n_relabels
            print(f"continuing the run in {out}: {recorded} relabels recorded in {journal.name}", flush=True)
        config.to_json(out / _SETTINGS)
        baseline = _baseline_accuracy(experiment, config, out) if with_baseline else None
        print(f"phase 1: co-teaching ({config.selection}), {config.max_epochs} epochs ...", flush=True)
        if resuming:
            cleaner = ActiveLabelCleaner.resume(journal, estimator, *data, **experiment.evaluation_splits)
        else:
            cleaner.fit(*data, **experiment.evaluation_splits)
        report = cleaner.report_
        if baseline is not None:
            report.phase1["baseline_balanced_accuracy"] = baseline
        print()
        print(report.to_markdown())
        if baseline is not None:
            # the model the cleaner delivers: keep_best may have refused the last recalibrations
            final = report.accuracy_in_use()[0][-1]
            print(
                f"\nvalidation balanced accuracy: plain cross-entropy {baseline:.3f} | after phase 1 "
                f"{report.rounds[0]['balanced_accuracy']:.3f} | after {report.rounds[-1]['labels_spent']} "
                f"expert labels {final:.3f} (the model in use)"
            )
        written = _write_report(report, out)
    print(f"\nreport written to {out.resolve()}/: " + ", ".join(p.name for p in written))
    return 0


def _check_same_run(out: Path, config: RunConfig) -> None:
    """Refuse a folder holding a run with other settings, naming the options that differ."""
    stored = _stored_config(out)
    if stored is not None and stored != config:
        names = [f.name for f in dataclass_fields(RunConfig)]
        differences = _describe_differences(stored, config, names)
        raise ValueError(
            f"--out {str(out)!r} holds a run with other settings ({differences}); "
            "repeat its command to continue it, or choose another --out"
        )


def _relabel_config(args: argparse.Namespace, given: argparse.Namespace, workdir: Path) -> RunConfig:
    """The work folder's settings; options given again must agree with them."""
    stored = _stored_config(workdir)
    if stored is None:
        if not any(getattr(args, name) for name in _DATA_OPTIONS):
            raise ValueError(
                f"{workdir} holds no run yet: start one with a data option (--digits, --npz or --hmnist-csv)"
            )
        return config_from_args(args)
    settings = stored.to_dict()
    names = [name for name in vars(given) if name in settings]
    update = {name: getattr(args, name) for name in names}
    if any(name in vars(given) for name in _DATA_OPTIONS):
        from_args = config_from_args(args)
        update.update(source=from_args.source, path=from_args.path)
        names += ["source", "path"]
    wanted = RunConfig.from_dict({**settings, **update})
    differences = _describe_differences(stored, wanted, names)
    if differences:
        raise ValueError(
            f"{workdir} holds a run with other settings ({differences}); a run keeps its settings: "
            "continue it with `modal-noisy relabel WORKDIR` alone, or start another in a new folder"
        )
    return stored


def _relabel(args: argparse.Namespace, given: argparse.Namespace) -> int:
    workdir = _check_folder(Path(args.workdir), "workdir")
    journal = workdir / _JOURNAL
    config = _relabel_config(args, given, workdir)
    experiment, estimator = _prepare(config)
    oracle = FileOracle(
        workdir / "queue",
        n_classes=experiment.n_classes,
        class_names=experiment.class_names,
        images=experiment.X_train,
        label_studio=True,  # the same queue as Label Studio tasks, for experts who label there
    )
    data = (experiment.X_train, experiment.y_given, oracle)
    cleaner = experiment.build_cleaner(config, estimator, journal=journal)
    cleaner._validate(*data, **experiment.evaluation_splits, y_true=None)  # before saving anything
    workdir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(workdir / _LOCK, f"work folder {str(workdir)!r}"):
        _check_journal_free(journal)
        config.to_json(workdir / _SETTINGS)
        try:
            if journal.is_file():
                cleaner = ActiveLabelCleaner.resume(journal, estimator, *data, **experiment.evaluation_splits)
            else:
                cleaner.fit(*data, **experiment.evaluation_splits)
        except AwaitingExpertAnswers as waiting:
            print(f"\nround {waiting.round_index}: the expert's turn.")
            print(f"  queue:         {waiting.queue_csv}")
            print(f"  contact sheet: {waiting.contact_sheet}")
            print(f"  fill the 'label' column and save it as {waiting.answers_path}")
            tasks = waiting.queue.label_studio_path
            if tasks is not None:
                print(f"  (or in Label Studio: import {tasks.name} into a project labelled with")
                print(f"  {oracle.label_studio_config_path.name}; save its JSON export as "
                      f"{oracle.label_studio_answers_path(waiting.round_index).name})")
            print("  then run again:")
            print(f"  modal-noisy relabel {workdir}")
            return 3
        print()
        print(cleaner.report_.to_markdown())
        written = _write_report(cleaner.report_, workdir / "report", oracle)
    print(f"\nall rounds done; report written to {(workdir / 'report').resolve()}/: "
          + ", ".join(p.name for p in written))
    return 0


#: Errors of the input (data files, settings, devices, folders, locks, encodings): one line, status 2.
_EXPECTED_ERRORS = (ValueError, OSError, LockHeld)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modal-noisy`` console script.

    Bad input of any kind (settings, data files, devices, folders, a folder or journal another run
    holds, a file that is not UTF-8) ends with one line on stderr and exit status 2, before any
    training where it can be known before; a traceback means a bug.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    given = build_parser(defaults=False).parse_args(argv)
    try:
        return _dispatch(args, given)
    except _EXPECTED_ERRORS as error:
        # bad input: say what is wrong, on one line, without a traceback
        message = " ".join(str(error).split())
        parser.exit(2, f"modal-noisy {args.command}: error: {message}\n")


def _dispatch(args: argparse.Namespace, given: argparse.Namespace) -> int:
    if args.command == "demo":
        out = Path(args.out) if args.out else _new_out_dir("modal-noisy-demo")
        return _simulated_run(DEMO_CONFIG, out, with_baseline=True)
    if args.command == "run":
        out = Path(args.out) if args.out else _new_out_dir("modal-noisy-run")
        return _simulated_run(config_from_args(args), out, with_baseline=True)
    return _relabel(args, given)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
