"""Which recalibrations should the cleaner adopt? Adoption rules compared on the same candidates.

``keep_best=True`` adopts a round's recalibration only when its balanced accuracy on the clean
validation split reaches that of the model in use. On a small validation split (RetinaMNIST has 120
samples) that comparison is mostly noise, and the cleaner can end with phase 1's model although every
recalibration scores higher on the test split. This script measures, on identical candidates, what
each rule would deliver:

* ``strict``: ``keep_best=True`` with ``keep_best_tolerance=0`` (candidate's validation score >= the
  model in use's), the cleaner's default until the ``paired_z`` rule at z = 2 replaced it;
* ``paired_z``: refuse a candidate only when its validation balanced accuracy falls more than ``z``
  standard errors below the model in use's, the error of the paired difference on the same samples
  (per class: the variance of the per-sample difference in correctness over the class size; summed
  with the classes' 1/K² weights);
* ``always``: ``keep_best=False``.

With ``training_margin`` (the ranking comes from phase 1's training record alone; the default until
``adaptive_mislabel``, whose picks depend on the model in use) and ``recalibrate_from="phase1"``
(every candidate is phase 1 fine-tuned on the clean set plus all answers so far), round r's candidate
does not depend on which earlier candidates were adopted.
So one ``ActiveLabelCleaner`` run with ``keep_best=False`` yields every rule's candidates; a subclass
records each candidate's validation decisions and test score as the real loop produces them.

Usage::

    python benchmarks/keep_best.py --datasets digits retinamnist hmnist --seeds 0 1 2

Writes ``benchmarks/results/keep_best.json`` (a rerun continues it), which ``make_results.py`` reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from modal_noisy.cleaning.loop import adopts_candidate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RESULTS_DIR,
    Stopwatch,
    dataset_specs,
    default_data_dir,
    header,
    load_json,
    quiet_warnings,
    write_json,
)

#: Phase-1 epochs / gradual epochs by data set, as in the phase-2 tables of quality.py.
SCHEDULES = {"digits-LT": (30, 10), "RetinaMNIST": (20, 5), "HAM10000-8x8": (20, 5)}
Z_VALUES = (0.5, 1.0, 2.0)


def adopted_rounds(y_val: np.ndarray, decisions: list[np.ndarray], rule: str, z: float = 0.0) -> list[bool]:
    """Whether each round (round 0 = phase 1, always) is adopted under ``rule``."""
    kept, best = [True], 0
    for r in range(1, len(decisions)):
        # strict: tolerance 0, the cleaner's default before z = 2
        tolerance = 0.0 if rule == "strict" else z
        ok = rule == "always" or adopts_candidate(y_val, decisions[best], decisions[r], tolerance)
        kept.append(ok)
        if ok:
            best = r
    return kept


def run_seed(spec: Any, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from modal_noisy.cleaning import ActiveLabelCleaner, SimulatedOracle
    from modal_noisy.decision import prior_corrected_predict
    from modal_noisy.experiment import build_coteaching, load_experiment
    from modal_noisy.metrics import classification_metrics

    exp = load_experiment(spec.source, path=spec.path, noise_rate=0.4, noise_kind="symmetric",
                          random_state=seed)
    epochs, num_gradual = SCHEDULES[spec.name]
    candidates: list[dict[str, Any]] = []

    def record(model: Any) -> None:
        prior = getattr(model, "decision_prior_", None)
        val = model.predict_proba(exp.X_val)
        decisions = val.argmax(1) if prior is None else prior_corrected_predict(val, prior)
        test = classification_metrics(exp.y_test, model.predict_proba(exp.X_test), class_prior=prior)
        candidates.append({
            "val_balanced_accuracy": classification_metrics(exp.y_val, val, class_prior=prior)[
                "balanced_accuracy"],
            "val_decisions": decisions.astype(int).tolist(),
            "test_balanced_accuracy": test["balanced_accuracy"],
        })

    class RecordingCleaner(ActiveLabelCleaner):
        def _recalibrate(self, start, *a, **kw):
            if not candidates:  # round 1 starts from phase 1's model: record it as round 0
                record(start)
            model = super()._recalibrate(start, *a, **kw)
            record(model)
            return model

    net = build_coteaching(exp, max_epochs=epochs, selection="loss+vog", mix_ratio=0.2, forget_rate="auto",
                           class_aware=True, random_state=seed, num_gradual=num_gradual, verbose=0)
    n = len(exp.y_given)
    # a ranking that ignores the model in use, so that no candidate depends on earlier adoptions
    cleaner = RecordingCleaner(net, "training_margin", budget_per_round=round(args.budget * n) // args.rounds,
                               rounds=args.rounds, recalibration_epochs=args.recal_epochs,
                               keep_best=False, random_state=seed, verbose=0)
    with Stopwatch() as sw:
        cleaner.fit(exp.X_train, exp.y_given, SimulatedOracle(exp.y_true), X_val=exp.X_val,
                    y_val=exp.y_val, X_test=exp.X_test, y_test=exp.y_test, y_true=exp.y_true)
    return {"dataset": spec.name, "seed": seed, "n_val": len(exp.y_val), "strategy": cleaner.strategy,
            "rounds": candidates, "seconds": sw.seconds, "y_val": exp.y_val.astype(int).tolist()}


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "retinamnist", "hmnist"])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--budget", type=float, default=0.10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--recal-epochs", type=int, default=10)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "keep_best.json")
    args = p.parse_args(argv)
    path = args.out
    out: dict[str, Any] = load_json(path) if path.is_file() else {"records": []}
    if "header" in out:  # a rerun continues the file: the earlier commands stay on record
        out["previous_commands"] = [*out.get("previous_commands", []), out["header"]["command"]]
    out["header"] = header()
    out["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    done = {(r["dataset"], r["seed"]) for r in out["records"]}
    print(f"command: {out['header']['command']}\nresults: {path}", flush=True)
    for seed in args.seeds:
        for spec in dataset_specs(args.datasets, args.data_dir):
            if (spec.name, seed) in done:
                continue
            with quiet_warnings():
                run = run_seed(spec, seed, args)
            out["records"].append(run)
            write_json(path, out)
            print(f"{spec.name} seed {seed}: " + summary(run), flush=True)
    return path


def summary(run: dict[str, Any]) -> str:
    """Test balanced accuracy each rule delivers for one run."""
    return ", ".join(f"{name} {value:.3f}" for name, value in delivered(run).items())


def delivered(run: dict[str, Any]) -> dict[str, float]:
    """Rule name -> test balanced accuracy of the model the cleaner would end with."""
    rounds = run["rounds"]
    y_val = np.asarray(run["y_val"])
    tests = [r["test_balanced_accuracy"] for r in rounds]
    decisions = [np.asarray(r["val_decisions"]) for r in rounds]
    out = {"phase 1": tests[0]}
    for rule, z in [("strict", 0.0), *(("paired", z) for z in Z_VALUES), ("always", 0.0)]:
        kept = adopted_rounds(y_val, decisions, rule, z)
        last = max(i for i, k in enumerate(kept) if k)
        out[rule if rule != "paired" else f"paired z={z:g}"] = tests[last]
    return out


if __name__ == "__main__":
    main()
