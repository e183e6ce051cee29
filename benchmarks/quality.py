"""Quality benchmark: phase-1 clean-sample selection and phase-2 active label cleaning against baselines.

Every table starts from the clean-label ceiling (the same network trained on the true labels). Phase 1
compares, on the same split, noise and seed: cross-entropy; co-teaching (loss); co-teaching + VoG (the
paper, λ = 0.2 and 0.5); co-teaching + random fill (control); ours (co-teaching + VoG, class-aware,
estimated forget rate), and ours with the forget rate from a random audit of ``--audit-share`` of the
labels (``modal_noisy.cleaning.audit``; the labels themselves stay as given); cleanlab
``find_label_issues`` on 5-fold out-of-sample probabilities of the same network and epochs; cleanlab
``CleanLearning`` wrapping the same network. Phase 2 runs the ``ActiveLabelCleaner`` loop from our
phase-1 model with several query strategies under the same budget schedule (a share of the training set,
spread over ``--rounds`` rounds).

Results are appended record by record to ``benchmarks/results/quality_<tag>.json`` (a killed run keeps
what finished; a rerun with the same tag skips what is already there). ``make_results.py`` turns all
results files into ``benchmarks/RESULTS.md`` and the figures.

Run (full grid, hours on a CPU)::

    .venv/bin/python benchmarks/quality.py --datasets digits retinamnist hmnist \
        --noise symmetric:0.2 symmetric:0.4 symmetric:0.6 symmetric:0.8 pair:0.3 --seeds 0 1 2 \
        --epochs 40 --phase2-datasets digits retinamnist hmnist --tag full

Quick check (<= 10 min on 2 cores)::

    .venv/bin/python benchmarks/quality.py --quick
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RESULTS_DIR,
    Stopwatch,
    audit_seed,
    dataset_specs,
    default_data_dir,
    header,
    load_json,
    noise_is_meaningful,
    parse_noise,
    quiet_warnings,
    write_json,
)

# name -> (selection, mix_ratio, class_aware, forget rate: "true" (the paper's oracle setting), "auto"
# (estimated from the losses) or "audit" (the share of wrong labels in a seeded random audit, see
# modal_noisy.cleaning.audit))
COTEACHING_METHODS: dict[str, tuple[str, float, bool, str]] = {
    "coteaching": ("loss", 0.0, False, "true"),
    "coteaching_vog_0.2": ("loss+vog", 0.2, False, "true"),
    "coteaching_vog_0.5": ("loss+vog", 0.5, False, "true"),
    "coteaching_random_0.2": ("loss+random", 0.2, False, "true"),
    "ours": ("loss+vog", 0.2, True, "auto"),
    "ours_true_rate": ("loss+vog", 0.2, True, "true"),
    "ours_audit": ("loss+vog", 0.2, True, "audit"),
    "ours_vog_checkpoint": ("loss+vog", 0.2, True, "auto"),
}
# other CoTeachingClassifier settings of a method (VoG from an eval-mode pass instead of the training pass)
METHOD_PARAMS: dict[str, dict[str, Any]] = {"ours_vog_checkpoint": {"vog_source": "checkpoint"}}
PHASE1_METHODS = (
    "clean_ceiling",
    "clean_ceiling_pair",
    "cross_entropy",
    *COTEACHING_METHODS,
    "cleanlab_find_label_issues",
    "cleanlab_cleanlearning",
)
#: the estimator behind forget_rate="auto" (see CoTeachingClassifier): a held-out share's
#: mixture-proportion estimate
NOISE_ESTIMATOR = "held_out"
DEFAULT_PHASE1 = [m for m in PHASE1_METHODS if m not in ("ours_true_rate", "ours_vog_checkpoint")]
# the test balanced accuracy of decision="balanced": the prior divided out once per summed network
BALANCED_DECISION = "balanced_accuracy_balanced_decision"
PHASE2_STRATEGIES = (
    "random",
    "entropy",
    "loss",
    "vog",
    "cleanlab",
    "cleanlab_margin",
    "uncertain_mislabel",
    "training_margin",
    "informative_mislabel",
    "adaptive_mislabel",
    "cb_entropy",
    "cb_loss",
    "cb_vog",
    "cb_cleanlab",
    "paper",
    "adopt_every_round",
)
#: ActiveLabelCleaner settings of a protocol run under a strategy's name (the rest are the defaults):
#: the paper's phase 2, VoG-and-loss on the noisy pool, network 1 fine-tuned round after round.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "paper": {"strategy": "vog", "pool": "noisy", "recalibrate": "first", "recalibrate_from": "previous",
              "keep_best": False},
    # the default strategy of cleaners v2-v5 (training_margin), every recalibration adopted
    "adopt_every_round": {"strategy": "training_margin", "keep_best": False},
}
#: Records of earlier cleaners lack the field: 1 queried only the noisy pool; 2 queries the pool of
#: ActiveLabelCleaner's default (every sample not yet answered); 3 also keeps a round's recalibration
#: only when it validates at least as well as the model in use (keep_best); 4 ranks by default with the
#: normalized margin over training (strategy "training_margin"); 5 scores the model the cleaner
#: delivers (before, "test" held the last round's recalibration even when keep_best refused it); its
#: default strategy became "adaptive_mislabel" once that strategy's rows were measured (the cleaner
#: runs every other strategy as before, so the records stay v5); 6 adopts a recalibration unless it
#: validates more than 2 standard errors of the paired difference below the model in use
#: (``keep_best_tolerance=2``; v5: at least as well) and scores the balanced decision of a recalibrated
#: model with the prior of the labels it was fine-tuned on (``fine_tune`` sets ``class_prior_``; v5:
#: the given labels' prior).
CLEANER_VERSION = 6

# ----------------------------------------------------------------------------- evaluation helpers


def _test_metrics(
    model: Any, exp: Any, train_labels: np.ndarray | None, *, class_prior: np.ndarray | None = None
) -> dict[str, Any]:
    """Test-split metrics of the arg-max; also the balanced accuracy of the balanced decision.

    ``balanced_accuracy_balanced_decision``: the decision of ``CoTeachingClassifier(decision="balanced")``,
    the probabilities divided by the class prior of ``train_labels`` (the labels the model was fit on;
    a pseudo-count of 1 for a class without any), or by ``class_prior`` where the model carries its
    own (a recalibrated model: the prior of the labels it was fine-tuned on), once per network whose
    logits the model sums.
    """
    from modal_noisy.decision import ensemble_prior, label_prior
    from modal_noisy.metrics import classification_metrics

    probs = model.predict_proba(exp.X_test)
    m = classification_metrics(exp.y_test, probs, n_classes=exp.n_classes)
    if class_prior is None:
        class_prior = label_prior(train_labels, exp.n_classes)
    prior = ensemble_prior(class_prior, getattr(model, "inference_networks_", 1))
    corrected = classification_metrics(exp.y_test, probs, n_classes=exp.n_classes, class_prior=prior)
    out = {k: m[k] for k in ("balanced_accuracy", "macro_f1", "mcc", "accuracy", "per_class_recall")}
    out[BALANCED_DECISION] = corrected["balanced_accuracy"]
    return out


def _selection(kept: np.ndarray, exp: Any) -> dict[str, Any]:
    """Selection metrics of a kept ("clean") mask, plus the flagged ("noisy pool") side."""
    from modal_noisy.metrics import selection_metrics

    is_noisy = exp.is_noisy
    sel = selection_metrics(kept, is_noisy, exp.y_true, n_classes=exp.n_classes)
    flagged = ~kept
    sel["flag_precision"] = float(is_noisy[flagged].mean()) if flagged.any() else math.nan
    sel["flag_recall"] = float(flagged[is_noisy].mean()) if is_noisy.any() else math.nan
    return sel


# what a record without the field ran with (fields added later)
_KEY_DEFAULTS = {"phase1_method": "ours", "cleaner_version": 1, "decision": "argmax"}


def _key(record: dict[str, Any], fields: tuple[str, ...]) -> tuple:
    return tuple(record.get(f, _KEY_DEFAULTS.get(f)) for f in fields)


PHASE1_KEY = ("dataset", "noise_kind", "noise_rate", "seed", "method", "epochs", "num_gradual", "recipe")
PHASE2_KEY = (
    "dataset", "noise_kind", "noise_rate", "seed", "strategy", "budget_fraction", "rounds",
    "recalibration_epochs", "epochs", "num_gradual", "recipe", "phase1_method", "cleaner_version",
    "decision",
)


def recipe_name(recipe: dict[str, Any]) -> str:
    """A short label of the training augmentation, e.g. ``"flips+shift2"``; ``"plain"`` for none."""
    parts = [recipe["augment"]] if recipe.get("augment") else []
    if recipe.get("max_shift"):
        parts.append(f"shift{recipe['max_shift']}")
    if recipe.get("local_contrast"):
        parts.append(f"contrast{recipe['local_contrast']:g}")
    return "+".join(parts) or "plain"


def _effective_recipe(exp: Any, args: argparse.Namespace) -> str:
    return recipe_name(exp.recipe if args.net_recipe is None else args.net_recipe)


# ----------------------------------------------------------------------------- phase 1


def _fit_cross_entropy(exp, y, args, seed):
    from modal_noisy.experiment import build_cross_entropy

    model = build_cross_entropy(
        exp, max_epochs=args.epochs, device=args.device, random_state=seed, verbose=0,
        recipe=args.net_recipe,
    )
    with Stopwatch() as sw:
        model.fit(exp.X_train, y)
    return model, sw.seconds


#: the shares of the training set (in %) at whose length a ranked relabel list's precision is read
LIST_SHARES = (5, 10)


def _top_precision(order: np.ndarray, exp: Any) -> dict[str, float]:
    """Share of wrong labels in the first 5% and 10% (of the training set) of a ranked list."""
    n = len(exp.y_given)
    return {f"top_{share}pct": float(exp.is_noisy[order[: round(share / 100 * n)]].mean())
            for share in LIST_SHARES}


def _cleanlab_ranked_lists(y: np.ndarray, probs: np.ndarray, exp: Any) -> dict[str, dict[str, float]]:
    """cleanlab's relabel lists from out-of-sample probabilities: its label issues ranked by
    self-confidence (``find_label_issues``), and every sample ranked by normalized margin."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    ranked = np.asarray(find_label_issues(y, probs, return_indices_ranked_by="self_confidence"))
    margin = get_label_quality_scores(y, probs, method="normalized_margin")
    return {
        "find_label_issues": _top_precision(ranked, exp),
        "normalized_margin": _top_precision(np.argsort(margin, kind="stable"), exp),
    }


def _cleanlab_runs(exp, args, seed) -> list[dict[str, Any]]:
    """find_label_issues on 5-fold out-of-sample probabilities, and CleanLearning on the same ones."""
    from cleanlab.classification import CleanLearning
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import StratifiedKFold

    from modal_noisy.experiment import build_cross_entropy

    X, y = exp.X_train, exp.y_given
    probs = np.zeros((len(y), exp.n_classes), dtype=np.float64)
    folds = StratifiedKFold(n_splits=args.cv_folds, shuffle=True, random_state=seed)
    with Stopwatch() as cv:
        for fold, (train, held) in enumerate(folds.split(X, y)):
            model = build_cross_entropy(
                exp, max_epochs=args.epochs, device=args.device,
                random_state=seed * 100 + fold + 1, verbose=0, recipe=args.net_recipe,
            )
            model.fit(X[train], y[train])
            probs[held] = model.predict_proba(X[held])
    # float32 softmax rows can exceed 1 by an ulp; cleanlab rejects that
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum(axis=1, keepdims=True)
    with Stopwatch() as flag:
        issues = find_label_issues(y, probs)
    records = [
        {
            "method": "cleanlab_find_label_issues",
            "fit_seconds": cv.seconds + flag.seconds,
            "selection": _selection(~issues, exp),
            "noise_rate_estimate": float(issues.mean()),
            "test": None,
            "ranked_list": _cleanlab_ranked_lists(y, probs, exp),
        }
    ]
    final = build_cross_entropy(
        exp, max_epochs=args.epochs, device=args.device, random_state=seed, verbose=0,
        recipe=args.net_recipe,
    )
    # pred_probs= is CleanLearning's documented way to reuse out-of-sample probabilities: the
    # same 5-fold CV of the same network is not run twice
    cl = CleanLearning(clf=final, cv_n_folds=args.cv_folds, verbose=False)
    with Stopwatch() as refit:
        cl.fit(X, y, pred_probs=probs)
    kept = ~np.asarray(cl.label_issues_mask, dtype=bool)
    records.append(
        {
            "method": "cleanlab_cleanlearning",
            "fit_seconds": cv.seconds + refit.seconds,
            "selection": _selection(kept, exp),
            "noise_rate_estimate": float(1 - kept.mean()),
            "test": _test_metrics(cl, exp, y[kept]),
        }
    )
    return records


def _coteaching_run(method, exp, args, seed) -> dict[str, Any]:
    from modal_noisy.experiment import build_coteaching

    selection, mix, class_aware, rate = COTEACHING_METHODS[method]
    forget_rate, estimate = "auto", None
    if rate == "true":
        forget_rate = float(exp.is_noisy.mean())
    elif rate == "audit":
        forget_rate = estimate = _audited_rate(exp, args, seed)
    net = build_coteaching(
        exp,
        max_epochs=args.epochs,
        selection=selection,
        mix_ratio=mix if selection != "loss" else 0.2,
        forget_rate=forget_rate,
        class_aware=class_aware,
        device=args.device,
        random_state=seed,
        num_gradual=args.num_gradual,
        recipe=args.net_recipe,
        verbose=0,
        **METHOD_PARAMS.get(method, {}),
    )
    with Stopwatch() as sw:
        net.fit(exp.X_train, exp.y_given)
    extra = {"audit_share": args.audit_share} if rate == "audit" else {}
    return {
        "method": method,
        **extra,
        "fit_seconds": sw.seconds,
        "epoch_seconds": float(np.mean(net.history[:, "dur"])),
        "forget_rate": rate,
        # which estimator "auto" ran (records without the field used the loss mixture)
        **({"noise_estimator": NOISE_ESTIMATOR} if rate == "auto" else {}),
        "selection": _selection(np.asarray(net.clean_mask_, dtype=bool), exp),
        "noise_rate_estimate": float(net.noise_rate_) if rate == "auto" else estimate,
        "test": _test_metrics(net, exp, exp.y_given),
    }


def _audited_rate(exp, args, seed: int) -> float:
    """The noise rate a seeded random audit of ``--audit-share`` of the labels finds.

    The expert is simulated by the true labels; the labels stay as given, so every method trains on the
    same labels and the audit's cost is outside the phase-2 budget.
    """
    from modal_noisy.cleaning.audit import audit_noise_rate, draw_audit

    n = len(exp.y_given)
    audited = draw_audit(n, max(1, round(args.audit_share * n)), random_state=audit_seed(seed))
    return audit_noise_rate(exp.y_given[audited], exp.y_true[audited]).noise_rate


def _ceiling_pair_run(exp, args, seed) -> dict[str, Any]:
    """The co-teaching pair (the two networks whose summed logits it predicts with) on true labels."""
    from modal_noisy.experiment import build_coteaching

    net = build_coteaching(
        exp, max_epochs=args.epochs, selection="loss", forget_rate=0.0, device=args.device,
        random_state=seed, num_gradual=args.num_gradual, recipe=args.net_recipe, verbose=0,
    )
    with Stopwatch() as sw:
        net.fit(exp.X_train, exp.y_true)
    return {"method": "clean_ceiling_pair", "fit_seconds": sw.seconds, "selection": None,
            "noise_rate_estimate": None, "test": _test_metrics(net, exp, exp.y_true)}


def run_phase1(exp, spec, kind, rate, seed, methods, args, done, out) -> None:
    base = {
        "dataset": spec.name,
        "noise_kind": kind,
        "noise_rate": rate,
        "seed": seed,
        "epochs": args.epochs,
        "num_gradual": args.num_gradual,
        "recipe": _effective_recipe(exp, args),
        "true_noise_rate": float(exp.is_noisy.mean()),
        "n_train": len(exp.y_given),
        "class_counts": np.bincount(exp.y_true, minlength=exp.n_classes).tolist(),
    }

    def todo(method):
        return method in methods and _key({**base, "method": method}, PHASE1_KEY) not in done

    def emit(rec):
        rec = {**base, **rec}
        out["phase1"].append(rec)
        done.add(_key(rec, PHASE1_KEY))
        out["save"]()
        sel = rec.get("selection") or {}
        test = rec.get("test") or {}
        print(
            f"  {rec['method']:<28} prec {sel.get('precision', math.nan):.3f} "
            f"recall {sel.get('recall', math.nan):.3f} min-ret {sel.get('min_retention', math.nan):.3f} "
            f"test bal-acc {test.get('balanced_accuracy', math.nan):.3f}  ({rec['fit_seconds']:.0f} s)",
            flush=True,
        )

    if todo("clean_ceiling"):
        model, seconds = _fit_cross_entropy(exp, exp.y_true, args, seed)
        emit({"method": "clean_ceiling", "fit_seconds": seconds, "selection": None,
              "noise_rate_estimate": None, "test": _test_metrics(model, exp, exp.y_true)})
    if todo("clean_ceiling_pair"):
        emit(_ceiling_pair_run(exp, args, seed))
    if todo("cross_entropy"):
        model, seconds = _fit_cross_entropy(exp, exp.y_given, args, seed)
        emit({"method": "cross_entropy", "fit_seconds": seconds,
              "selection": _selection(np.ones(len(exp.y_given), dtype=bool), exp),
              "noise_rate_estimate": None, "test": _test_metrics(model, exp, exp.y_given)})
    for method in COTEACHING_METHODS:
        if todo(method):
            emit(_coteaching_run(method, exp, args, seed))
    if todo("cleanlab_find_label_issues") or todo("cleanlab_cleanlearning"):
        for rec in _cleanlab_runs(exp, args, seed):
            if rec["method"] in methods:
                emit(rec)


# ----------------------------------------------------------------------------- phase 2


class _Prefitted:
    """A fitted phase-1 model that ``ActiveLabelCleaner`` can clone and "fit" without retraining.

    Phase 1 is deterministic for a seed on the CPU, so fitting it once and handing every strategy a
    deep copy gives the same result as refitting it per strategy, at a fraction of the cost. ``fit``
    only checks that it is given the data phase 1 was trained on.
    """

    def __init__(self, fitted: Any, n_train: int) -> None:
        self._fitted = fitted
        self._n_train = n_train

    def __sklearn_clone__(self) -> _Prefitted:
        return _Prefitted(copy.deepcopy(self._fitted), self._n_train)

    def fit(self, X, y):
        if len(X) != self._n_train:
            raise ValueError(f"phase 1 was fitted on {self._n_train} samples (got {len(X)})")
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_fitted", "_n_train"):
            raise AttributeError(name)
        return getattr(self._fitted, name)


def _strategy(name: str):
    from modal_noisy.strategies import class_balanced, get_strategy

    if name.startswith("cb_"):
        return class_balanced(get_strategy(name[3:]))
    return get_strategy(name)


#: The relabel rankings whose precision at the phase-1 model every phase-2 record carries.
RANKED_STRATEGIES = ("training_margin", "cleanlab_margin")


def _ranked_list_precision(net: Any, exp: Any, seed: int, strategy: str) -> dict[str, float]:
    """Share of wrong labels among the samples ``strategy`` asks about at the phase-1 model when asked
    for 5% and for 10% of the training set, over the cleaner's default pool.

    Each share is its own query: a shortlist strategy (``adaptive_mislabel``) orders its picks by the
    current model's entropy, not by how likely they are wrong, so the first half of a 10% query is
    not what a 5% round would ask."""
    from modal_noisy.cleaning import ActiveLabelCleaner
    from modal_noisy.strategies import get_strategy, keywords_for

    n = len(exp.y_given)
    everything = ActiveLabelCleaner().get_params()["pool"] == "all"
    pool = np.arange(n) if everything else np.flatnonzero(~np.asarray(net.clean_mask_))
    query = get_strategy(strategy)
    precision = {}
    for share in LIST_SHARES:
        picks = query(net, exp.X_train[pool], round(share / 100 * n), labels=exp.y_given[pool],
                      random_state=seed, **keywords_for(query, pool_indices=pool))
        precision[f"top_{share}pct"] = float(exp.is_noisy[pool[np.asarray(picks)]].mean())
    return precision


def run_phase2(exp, spec, kind, rate, seed, args, done, out) -> None:
    from modal_noisy.cleaning import ActiveLabelCleaner, SimulatedOracle
    from modal_noisy.experiment import build_coteaching

    n = len(exp.y_given)
    base = {
        "dataset": spec.name, "noise_kind": kind, "noise_rate": rate, "seed": seed,
        "epochs": args.epochs, "num_gradual": args.num_gradual, "rounds": args.rounds,
        "recalibration_epochs": args.recal_epochs, "n_train": n, "recipe": _effective_recipe(exp, args),
        "true_noise_rate": float(exp.is_noisy.mean()), "phase1_method": args.phase2_start,
        "cleaner_version": CLEANER_VERSION, "decision": args.decision,
    }
    if args.phase2_start == "ours_audit":
        base["audit_share"] = args.audit_share
    jobs = [
        (frac, strat)
        for frac in args.budgets
        for strat in args.strategies
        if _key({**base, "budget_fraction": frac, "strategy": strat}, PHASE2_KEY) not in done
    ]
    if not jobs:
        return
    forget_rate = _audited_rate(exp, args, seed) if args.phase2_start == "ours_audit" else "auto"
    net = build_coteaching(
        exp, max_epochs=args.epochs, selection="loss+vog", mix_ratio=0.2, forget_rate=forget_rate,
        class_aware=True, device=args.device, random_state=seed, num_gradual=args.num_gradual,
        recipe=args.net_recipe, decision=args.decision,
        verbose=0,
    )
    with Stopwatch() as sw:
        net.fit(exp.X_train, exp.y_given)
    print(f"  phase 1 ({args.phase2_start}) fitted in {sw.seconds:.0f} s", flush=True)
    phase1_test = _test_metrics(net, exp, exp.y_given)
    default_strategy = ActiveLabelCleaner().get_params()["strategy"]
    ranked_lists = {name: _ranked_list_precision(net, exp, seed, name)
                    for name in dict.fromkeys((default_strategy, *RANKED_STRATEGIES))}
    for frac, strat in jobs:
        total = max(args.rounds, round(frac * n))
        per_round = total // args.rounds
        settings = PROTOCOLS.get(strat) or {"strategy": _strategy(strat)}
        cleaner = ActiveLabelCleaner(
            _Prefitted(net, n), budget_per_round=per_round, rounds=args.rounds,
            recalibration_epochs=args.recal_epochs, random_state=seed, verbose=0, **settings,
        )
        with Stopwatch() as rt:
            report = cleaner.fit(
                exp.X_train, exp.y_given, SimulatedOracle(exp.y_true), X_val=exp.X_val,
                y_val=exp.y_val, X_test=exp.X_test, y_test=exp.y_test, y_true=exp.y_true,
            ).report_
        rounds = report.rounds
        queried = sum(r["n_queried"] for r in rounds[1:])
        wrong = sum((r["relabel_precision"] or 0.0) * r["n_queried"] for r in rounds[1:])
        last = rounds[-1]
        # the model the cleaner delivers: keep_best may have refused the last round's recalibration,
        # whose scores the last round still records. decision="balanced": the prior the model was
        # last trained under (phase 1: the given labels; a recalibration: its fine-tune labels)
        delivered = _test_metrics(cleaner.estimator_, exp, None, class_prior=cleaner.estimator_.class_prior_)
        adopted, kept = report.rounds_in_use()
        rec = {
            **base, "strategy": strat, "budget_fraction": frac, "budget_per_round": per_round,
            "pool": cleaner.pool, "keep_best": cleaner.keep_best,
            "keep_best_tolerance": cleaner.keep_best_tolerance,
            "labels_spent": last["labels_spent"], "phase1_seconds": sw.seconds,
            "phase2_seconds": rt.seconds,
            # the arg-max and the balanced decision of the phase-1 model, whatever its decision
            "phase1": {k: phase1_test[k]
                       for k in ("balanced_accuracy", "macro_f1", "mcc", BALANCED_DECISION)},
            "phase1_noisy_remaining": rounds[0]["noisy_remaining"],
            "phase1_ranked_list": ranked_lists[default_strategy],
            "phase1_ranked_strategy": default_strategy,
            "phase1_ranked_lists": ranked_lists,
            # each share its own query (earlier records: the first 5% of the 10% query)
            "ranked_list_per_share": True,
            "test": {k: delivered[k] for k in ("balanced_accuracy", "macro_f1", "mcc", BALANCED_DECISION)},
            # the last round's recalibration, adopted or not (what keep_best=False would deliver);
            # this and the curve score the cleaner's decision (the balanced one with --decision balanced)
            "last_candidate_test": {
                k: last.get(f"test_{k}") for k in ("balanced_accuracy", "macro_f1", "mcc")
            },
            "noisy_remaining": last["noisy_remaining"],
            "relabel_precision": wrong / queried if queried else None,
            "curve": [
                {**{k: r.get(k) for k in ("round", "labels_spent", "noisy_remaining",
                                          "test_balanced_accuracy", "test_macro_f1", "test_mcc",
                                          "relabel_precision")},
                 "model_kept": bool(kept[i]),
                 "test_balanced_accuracy_in_use": rounds[adopted[i]].get("test_balanced_accuracy")}
                for i, r in enumerate(rounds)
            ],
        }
        out["phase2"].append(rec)
        done.add(_key(rec, PHASE2_KEY))
        out["save"]()
        precision = "-" if rec["relabel_precision"] is None else f"{rec['relabel_precision']:.2f}"
        print(
            f"  phase 2 {strat:<12} budget {frac:.0%} ({last['labels_spent']} labels): test bal-acc "
            f"{phase1_test['balanced_accuracy']:.3f} -> {rec['test']['balanced_accuracy']:.3f} (balanced "
            f"decision {phase1_test[BALANCED_DECISION]:.3f} -> {rec['test'][BALANCED_DECISION]:.3f}), noisy "
            f"{rounds[0]['noisy_remaining']} -> {last['noisy_remaining']}, relabel prec "
            f"{precision} ({rt.seconds:.0f} s)",
            flush=True,
        )


# ----------------------------------------------------------------------------- driver


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "retinamnist", "hmnist"],
                   help="digits, retinamnist, hmnist (files looked up in --data-dir)")
    p.add_argument("--npz", nargs="*", default=[], help="further MedMNIST-layout .npz files")
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--noise", nargs="+",
                   default=["symmetric:0.2", "symmetric:0.4", "symmetric:0.6", "symmetric:0.8", "pair:0.3"],
                   help="kind:rate; settings that leave labels uninformative are skipped")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=DEFAULT_PHASE1, choices=PHASE1_METHODS)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--num-gradual", type=int, default=10, help="forget-rate ramp / VoG warm-up epochs")
    p.add_argument("--cv-folds", type=int, default=5)
    p.add_argument("--phase2-start", choices=("ours", "ours_audit"), default="ours",
                   help="the phase-1 model phase 2 starts from: ours with τ estimated, or from the audit")
    p.add_argument("--audit-share", type=float, default=0.05,
                   help="share of the training labels the expert audits for ours_audit's forget rate")
    p.add_argument("--phase2-datasets", nargs="*", default=["digits-LT"],
                   help="data-set names (as in the tables) that get the phase-2 runs")
    p.add_argument("--phase2-noise", nargs="*", default=["symmetric:0.4"])
    p.add_argument("--strategies", nargs="+", default=list(PHASE2_STRATEGIES), choices=PHASE2_STRATEGIES)
    p.add_argument("--budgets", nargs="+", type=float, default=[0.05, 0.10],
                   help="total expert budget as a share of the training set")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--recal-epochs", type=int, default=10)
    p.add_argument("--skip-phase1", action="store_true")
    p.add_argument("--decision", choices=("argmax", "balanced"), default="argmax",
                   help="phase 2: the phase-1 model's decision, which keep_best validates and the "
                        "cleaner's curve scores (the records always hold both decisions' test scores)")
    p.add_argument("--recipe", choices=["auto", "plain"], default="auto",
                   help="auto: flips and small shifts for the medical sets, none for digits "
                        "(modal_noisy.experiment.medical_recipe); plain: no augmentation anywhere")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--tag", default=None, help="results file: results/quality_<tag>.json")
    p.add_argument("--quick", action="store_true",
                   help="digits only, 1 seed, 12 epochs, 3 strategies at 10%%: <= 10 min on 2 cores")
    return p


def main(argv: list[str] | None = None) -> Path:
    import torch

    args = build_parser().parse_args(argv)
    if args.quick:
        args.datasets, args.npz, args.noise, args.seeds = ["digits"], [], ["symmetric:0.4"], [0]
        args.epochs, args.num_gradual, args.rounds, args.recal_epochs = 12, 4, 2, 3
        args.phase2_datasets, args.phase2_noise = ["digits-LT"], ["symmetric:0.4"]
        args.strategies, args.budgets = ["random", "vog", "cb_vog"], [0.10]
    args.net_recipe = None if args.recipe == "auto" else {}
    tag = args.tag or ("quick" if args.quick else "main")
    torch.set_num_threads(args.threads)
    from modal_noisy.experiment import load_experiment

    path = RESULTS_DIR / f"quality_{tag}.json"
    out: dict[str, Any] = {"header": None, "config": None, "phase1": [], "phase2": []}
    if path.is_file():
        previous = load_json(path)
        out["phase1"], out["phase2"] = previous.get("phase1", []), previous.get("phase2", [])
        out["previous_commands"] = [*previous.get("previous_commands", []), previous["header"]["command"]]
        out.update({k: v for k, v in previous.items() if k not in (*out, "previous_commands")})
    out["header"] = header(device=args.device)
    out["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    out["save"] = lambda: write_json(path, {k: v for k, v in out.items() if k != "save"})
    done1 = {_key(r, PHASE1_KEY) for r in out["phase1"]}
    done2 = {_key(r, PHASE2_KEY) for r in out["phase2"]}
    print(f"command: {out['header']['command']}\nresults: {path}", flush=True)

    noises = [parse_noise(n) for n in args.noise]
    noises2 = [parse_noise(n) for n in args.phase2_noise]
    specs = dataset_specs(args.datasets, args.data_dir, args.npz)
    # seeds outermost: a run cut short still has every data set at the first seed(s)
    for seed in args.seeds:
        for spec in specs:
            for kind, rate in dict.fromkeys(noises + noises2):
                exp = load_experiment(spec.source, path=spec.path, noise_rate=rate, noise_kind=kind,
                                      random_state=seed)
                if not noise_is_meaningful(kind, rate, exp.n_classes):
                    print(f"[skip] {spec.name} {kind}:{rate}: labels uninformative with "
                          f"{exp.n_classes} classes", flush=True)
                    continue
                print(f"== {spec.name} {kind}:{rate} seed {seed} ({len(exp.y_given)} train, "
                      f"{args.epochs} epochs)", flush=True)
                with quiet_warnings():
                    if not args.skip_phase1 and (kind, rate) in noises:
                        run_phase1(exp, spec, kind, rate, seed, args.methods, args, done1, out)
                    if spec.name in args.phase2_datasets and (kind, rate) in noises2:
                        run_phase2(exp, spec, kind, rate, seed, args, done2, out)
    out["save"]()
    print(f"wrote {path}", flush=True)
    return path


if __name__ == "__main__":
    main()
