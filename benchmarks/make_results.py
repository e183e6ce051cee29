"""Rebuild ``benchmarks/RESULTS.md`` and the README's results block from ``benchmarks/results/``.

Nothing here trains anything: it reads the canonical results files (one per experiment and data set,
``<experiment>_<subject>.json``, each a list of runs that keep their own command and commit header) and
writes the tables. The prose in ``benchmarks/results/commentary.md`` is included verbatim. The output
depends only on those files, so running it twice gives the same bytes; ``--check`` fails when the
committed RESULTS.md or README block differ from what the files give.

Run::

    .venv/bin/python benchmarks/make_results.py            # write RESULTS.md and the README block
    .venv/bin/python benchmarks/make_results.py --check    # exit 1 if either is stale
    .venv/bin/python benchmarks/make_results.py --add benchmarks/results/quality_mytag.json
        # fold a new quality.py / speed.py output into the canonical file(s), then delete it
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, REPO_ROOT, RESULTS_DIR, load_json, mean_std, write_json
from keep_best import delivered

README_BEGIN = "<!-- results:begin -->"
README_END = "<!-- results:end -->"
# canonical subject of each data set a quality record names
SUBJECTS = {"digits-LT": "digits", "RetinaMNIST": "retinamnist", "HAM10000-8x8": "hmnist"}
_ORDER = {name: i for i, name in enumerate(SUBJECTS)}

METHOD_LABELS = {
    "clean_ceiling": "clean-label ceiling (CE on true labels)",
    "clean_ceiling_pair": "clean-label ceiling of the co-teaching pair",
    "cross_entropy": "cross-entropy (noisy labels)",
    "coteaching": "co-teaching, loss (τ = true rate)",
    "coteaching_vog_0.2": "co-teaching + VoG λ=0.2 (paper, τ = true rate)",
    "coteaching_vog_0.5": "co-teaching + VoG λ=0.5 (paper, τ = true rate)",
    "coteaching_random_0.2": "co-teaching + random fill λ=0.2 (control)",
    "ours": "**ours**: + VoG λ=0.2, class-aware, τ estimated",
    "ours_true_rate": "ours with τ = true rate (ablation)",
    "ours_audit": "ours with τ from a 5% random audit",
    "ours_vog_checkpoint": "ours with VoG from an eval-mode pass (`vog_source=\"checkpoint\"`)",
    "cleanlab_find_label_issues": "cleanlab find_label_issues (5-fold OOS)",
    "cleanlab_cleanlearning": "cleanlab CleanLearning",
}
METHOD_ORDER = list(METHOD_LABELS)
OUR_VARIANTS = ("ours", "ours_true_rate", "ours_audit", "ours_vog_checkpoint")
CEILINGS = ("clean_ceiling", "clean_ceiling_pair")
STRATEGY_LABELS = {
    "random": "random",
    "entropy": "entropy",
    "loss": "loss",
    "vog": "VoG-and-loss",
    "cleanlab": "cleanlab (self-confidence)",
    "cleanlab_margin": "cleanlab (normalized margin)",
    "uncertain_mislabel": "uncertain and likely mislabelled",
    "training_margin": "normalized margin over training (training_margin)",
    "informative_mislabel": "likely mislabelled over training, then uncertain (informative_mislabel)",
    "adaptive_mislabel": "adaptive shortlist, then uncertain (adaptive_mislabel)",
    "cb_entropy": "class-balanced entropy",
    "cb_loss": "class-balanced loss",
    "cb_vog": "class-balanced VoG-and-loss (ours)",
    "cb_cleanlab": "class-balanced cleanlab",
    "paper": "the paper's protocol (VoG-and-loss, noisy pool, network 1 continued)",
    "adopt_every_round": "normalized margin over training, every recalibration adopted (keep_best=False)",
}
#: The cleaner's default strategy, by the cleaner version of the records (see quality.CLEANER_VERSION;
#: v5's was training_margin until adaptive_mislabel was measured beside it).
DEFAULT_STRATEGY = {
    1: "cb_vog", 2: "cleanlab_margin", 3: "cleanlab_margin", 4: "training_margin", 5: "adaptive_mislabel",
    6: "adaptive_mislabel",
}
#: quality.py's --recal-epochs default, which the phase-2 titles leave unsaid.
QUALITY_RECAL_EPOCHS = 10
#: Strategies that order their picks by the model's entropy within a shortlist, not by a ranking.
SHORTLIST_STRATEGIES = ("adaptive_mislabel", "informative_mislabel")
#: How records of an older cleaner are told apart in the titles.
CLEANER_NOTES = {
    1: ", cleaner v1 (noisy pool only)",
    2: ", cleaner v2 (every recalibration adopted, keep_best=False)",
    3: ", cleaner v3 (ranked by cleanlab's normalized margin under the model in use)",
    4: ", cleaner v4 (test figures of the last round's recalibration, adopted by keep_best or not)",
    5: ", cleaner v5 (keep_best_tolerance=0; a recalibrated model's balanced decision divided by the "
       "given labels' prior)",
    6: "",
}
#: How phase-2 records of a cleaner whose model decides by the balanced decision are told apart (its
#: keep_best validates that decision and its curve and last recalibration score it).
DECISION_NOTES = {"argmax": "", "balanced": ', decision="balanced"'}
BALANCED_DECISION = "balanced_accuracy_balanced_decision"
# the balanced decision's score: the library's rule (prior divided once per summed network), or the
# older records' (prior divided once per model)
DECISION_KEYS = {
    BALANCED_DECISION: "balanced decision",
    "balanced_accuracy_prior_corrected": "prior divided once",
}


# ------------------------------------------------------------------------------------ formatting


def fmt(values: list[Any], spec: str = ".3f") -> str:
    """Mean ± sample std of the values that are present, or the value alone, or an en dash."""
    mean, std, n = mean_std([None if v is None else float(v) for v in values])
    if n == 0:
        return "–"
    return f"{mean:{spec}} ± {std:{spec}}" if n > 1 else f"{mean:{spec}}"


def fmt_partial(values: list[Any], spec: str = ".3f") -> str:
    """:func:`fmt`, saying how many seeds it covers when some records lack the value."""
    present = sum(v is not None for v in values)
    out = fmt(values, spec)
    return f"{out} ({present} of {len(values)} seeds)" if 0 < present < len(values) else out


def mean(values: list[Any]) -> float:
    return mean_std([None if v is None else float(v) for v in values])[0]


def get(record: Any, *path: Any) -> Any:
    """``record[p0][p1]...``, None where any step is missing."""
    for key in path:
        if record is None:
            return None
        record = record[key] if isinstance(record, list) else record.get(key)
    return record


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


# ------------------------------------------------------------------------------------ loading


def runs_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of a results file: a canonical file lists them; a script's own output is one run."""
    return data["runs"] if "runs" in data else [data]


def load(results_dir: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Experiment name -> [(run label, run)] over the canonical results files, in file then run order.

    A script's own output (``quality_mytag.json``, ``speed_quick.json``) is left out until ``--add`` folds
    it in, so a quick run lying in the folder changes nothing; ``noise_estimate.json`` is canonical as
    written.
    """
    out: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for path in pending(results_dir, include=True):
        data = load_json(path)
        experiment = data.get("experiment") or experiment_of(path)
        for run in runs_of(data):
            label = f"{path.name}" + (f" ← {run['source']}" if run.get("source") else "")
            out[experiment].append((label, run))
    return out


EXPERIMENTS = (
    "clean_upper_bound", "keep_best", "noise_estimate", "quality", "recipe_search", "scale", "speed",
)


def experiment_of(path: Path) -> str:
    """The experiment a results file belongs to, from its name: ``<experiment>[_<subject>].json``."""
    for name in EXPERIMENTS:
        if path.stem == name or path.stem.startswith(name + "_"):
            return name
    raise ValueError(f"results file {path.name}: the name must start with one of {EXPERIMENTS}")


def pending(results_dir: Path, *, include: bool = False) -> list[Path]:
    """The results files not yet folded into a canonical file (or, with ``include``, the canonical ones)."""
    out = []
    for path in sorted(results_dir.glob("*.json")):
        canonical = path.stem in EXPERIMENTS or "runs" in load_json(path)
        if canonical == include:
            out.append(path)
    return out


def device_of(run: dict[str, Any]) -> str:
    machine = run["header"]["machine"]
    return machine.get("gpu") or "cpu"


def quality_records(runs: list[tuple[str, dict]]) -> tuple[list[dict], list[dict]]:
    """Phase-1 and phase-2 records; a later run's record replaces an earlier one with the same key."""
    p1: dict[tuple, dict] = {}
    p2: dict[tuple, dict] = {}
    for label, run in runs:
        for r in run.get("phase1", []):
            r = {**r, "recipe": r.get("recipe") or "plain", "run": label}
            p1[
                (
                    r["dataset"],
                    r["recipe"],
                    r["noise_kind"],
                    r["noise_rate"],
                    r["seed"],
                    r["method"],
                    r["epochs"],
                )
            ] = r
        for r in run.get("phase2", []):
            r = {
                **r,
                "recipe": r.get("recipe") or "plain",
                "run": label,
                "device": device_of(run),
                "phase1_method": r.get("phase1_method", "ours"),
            }
            p2[
                (
                    r["dataset"],
                    r["recipe"],
                    r["noise_kind"],
                    r["noise_rate"],
                    r["seed"],
                    r["strategy"],
                    r["budget_fraction"],
                    r["epochs"],
                    r["phase1_method"],
                    r["device"],
                    r.get("cleaner_version", 1),
                    r.get("decision", "argmax"),
                    r["recalibration_epochs"],
                )
            ] = r
    return list(p1.values()), list(p2.values())


def setting_key(r: dict) -> tuple:
    return (
        _ORDER.get(r["dataset"], 9),
        r["dataset"],
        r["recipe"],
        r["noise_kind"],
        r["noise_rate"],
        r["epochs"],
    )


def setting_title(key: tuple) -> str:
    _, dataset, recipe, kind, rate, epochs = key
    return f"{dataset} [{recipe}], {kind} noise {rate:g}, {epochs} epochs"


def decision_key(records: list[dict], part: str) -> str | None:
    for key in DECISION_KEYS:
        if any(get(r, part, key) is not None for r in records):
            return key
    return None


# ------------------------------------------------------------------------------------ phase 1


def group_phase1(p1: list[dict]) -> dict[tuple, dict[str, list[dict]]]:
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in p1:
        groups[setting_key(r)][r["method"]].append(r)
    return dict(sorted(groups.items()))


def rarest_class(by_method: dict[str, list[dict]]) -> int:
    counts = next(iter(by_method.values()))[0]["class_counts"]
    return min(range(len(counts)), key=counts.__getitem__)


def best_other(by_method: dict[str, list[dict]], *path: str) -> tuple[str, float] | None:
    """The method other than ours and the ceilings with the highest mean of ``path`` (CE has no selection)."""
    scores = {
        m: mean([get(r, *path) for r in rs])
        for m, rs in by_method.items()
        if m not in (*OUR_VARIANTS, *CEILINGS) and not (path[0] == "selection" and m == "cross_entropy")
    }
    scores = {m: v for m, v in scores.items() if not math.isnan(v)}
    if not scores:
        return None
    best = max(sorted(scores), key=scores.__getitem__)
    return best, scores[best]


def tau_error(rs: list[dict]) -> list[float | None]:
    return [
        None if r.get("noise_rate_estimate") is None else r["noise_rate_estimate"] - r["true_noise_rate"]
        for r in rs
    ]


def phase1_section(p1: list[dict]) -> list[str]:
    lines: list[str] = []
    for key, by_method in group_phase1(p1).items():
        rarest = rarest_class(by_method)
        records = [r for rs in by_method.values() for r in rs]
        dkey = decision_key(records, "test")
        seeds = sorted({r["seed"] for r in records})
        head = [
            "method",
            "seeds",
            "test bal. acc.",
            *([DECISION_KEYS[dkey]] if dkey else []),
            "sel. precision",
            "sel. recall",
            "min retention",
            f"retention of class {rarest} (rarest)",
            "τ error",
        ]
        rows = []
        for method in METHOD_ORDER:
            rs = by_method.get(method)
            if not rs:
                continue
            err = tau_error(rs)
            rows.append(
                [
                    METHOD_LABELS[method],
                    str(len(rs)),
                    fmt([get(r, "test", "balanced_accuracy") for r in rs]),
                    *([fmt_partial([get(r, "test", dkey) for r in rs])] if dkey else []),
                    fmt([get(r, "selection", "precision") for r in rs]),
                    fmt([get(r, "selection", "recall") for r in rs]),
                    fmt([get(r, "selection", "min_retention") for r in rs]),
                    fmt([get(r, "selection", "clean_retention", rarest) for r in rs]),
                    fmt(err, "+.3f") if any(e is not None for e in err) else "–",
                ]
            )
        lines += [
            f"### {setting_title(key)}, seeds {seeds}",
            "",
            f"{records[0]['n_train']} training samples, true-label class counts "
            f"{records[0]['class_counts']}. From: {', '.join(sorted({r['run'] for r in records}))}.",
            "",
            *table(head, rows),
            "",
            *verdicts(by_method, rarest),
            "",
        ]
    return lines


def verdicts(by_method: dict[str, list[dict]], rarest: int) -> list[str]:
    """Ours (and its audited variant) against the best other method on each count, means over seeds."""
    out = []
    checks = (
        ("test balanced accuracy", ("test", "balanced_accuracy")),
        ("min retention over classes", ("selection", "min_retention")),
        (f"retention of the rarest class ({rarest})", ("selection", "clean_retention", rarest)),
        ("selection precision", ("selection", "precision")),
    )
    for variant in ("ours", "ours_audit"):
        if not by_method.get(variant):
            continue
        for label, path in checks:
            mine = mean([get(r, *path) for r in by_method[variant]])
            other = best_other(by_method, *path)
            if other is None or math.isnan(mine):
                continue
            verdict = (
                "wins" if mine > other[1] + 1e-9 else "ties" if abs(mine - other[1]) <= 1e-9 else "loses"
            )
            out.append(
                f"- {label}: {variant} {mine:.3f} vs best other {other[1]:.3f} "
                f"({METHOD_LABELS[other[0]]}) → {variant} **{verdict}**"
            )
    return out


# ------------------------------------------------------------------------------------ phase 2


def group_phase2(p2: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in p2:
        groups[
            (*setting_key(r), r["phase1_method"], r["device"] != "cpu", r["device"], r["budget_fraction"],
             r.get("cleaner_version", 1), r.get("decision", "argmax"), r["recalibration_epochs"])
        ].append(r)
    return dict(sorted(groups.items()))


def recalibration_note(epochs: int) -> str:
    """Title note for phase-2 records whose recalibration ran other than quality.py's default epochs."""
    return "" if epochs == QUALITY_RECAL_EPOCHS else f", {epochs} recalibration epochs"


def phase1_scores(records: list[dict], metric: str = "balanced_accuracy") -> dict[int, float]:
    """Each seed's phase-1 test score (the same for every strategy of that seed)."""
    return {r["seed"]: get(r, "phase1", metric) for r in records}


def phase2_section(p2: list[dict]) -> list[str]:
    lines: list[str] = []
    for key, records in group_phase2(p2).items():
        start, device, frac = key[6], key[8], key[9]
        dkey = decision_key(records, "test")
        r0 = records[0]
        start_label = "ours" if start == "ours" else "ours, τ from a 5% random audit"
        # cleaner v5 records also score the last round's recalibration, which keep_best may refuse
        candidates = any(r.get("last_candidate_test") for r in records)
        head = [
            "model / strategy",
            "seeds",
            "test bal. acc.",
            *([DECISION_KEYS[dkey]] if dkey else []),
            *([f"last recalibration, adopted or not{' (balanced decision)' if key[11] == 'balanced' else ''}"]
              if candidates else []),
            "noisy labels remaining",
            "fixed per answer",
        ]
        by_seed = {r["seed"]: r for r in records}
        rows = [
            [
                f"phase 1 only ({start_label})",
                str(len(by_seed)),
                fmt([get(r, "phase1", "balanced_accuracy") for r in by_seed.values()]),
                *([fmt_partial([get(r, "phase1", dkey) for r in by_seed.values()])] if dkey else []),
                *(["–"] if candidates else []),
                fmt([r["phase1_noisy_remaining"] for r in by_seed.values()], ".1f"),
                "–",
            ]
        ]
        below = []
        start_mean = mean([get(r, "phase1", "balanced_accuracy") for r in by_seed.values()])
        for strat, label in STRATEGY_LABELS.items():
            rs = [r for r in records if r["strategy"] == strat]
            if not rs:
                continue
            score = mean([get(r, "test", "balanced_accuracy") for r in rs])
            if score < start_mean - 1e-9:
                below.append(label)
            rows.append(
                [
                    label,
                    str(len(rs)),
                    fmt([get(r, "test", "balanced_accuracy") for r in rs]),
                    *([fmt_partial([get(r, "test", dkey) for r in rs])] if dkey else []),
                    *([fmt([get(r, "last_candidate_test", "balanced_accuracy") for r in rs])]
                      if candidates else []),
                    fmt([r["noisy_remaining"] for r in rs], ".1f"),
                    fmt([r["relabel_precision"] for r in rs], ".2f"),
                ]
            )
        lines += [
            f"### {setting_title(key[:6])}: budget {frac:.0%} ({r0['labels_spent']} labels in {r0['rounds']} "
            f"rounds), from {start_label}, on {device}{CLEANER_NOTES[key[10]]}{DECISION_NOTES[key[11]]}"
            f"{recalibration_note(key[12])}",
            "",
            f"Recalibration {r0['recalibration_epochs']} epochs per round; simulated expert. From: "
            f"{', '.join(sorted({r['run'] for r in records}))}.",
            "",
            *table(head, rows),
            "",
            "Strategies whose mean ends below phase 1: " + (", ".join(below) if below else "none") + ".",
            "",
            *ranked_list_line(by_seed),
        ]
    return lines


def our_ranked_lists(record: dict) -> dict[str, dict]:
    """The precision of our rankings at the phase-1 model that a phase-2 record carries, by strategy.

    Records before cleaner v4 carry one list, their default's (cleanlab's normalized margin).
    """
    lists = dict(record.get("phase1_ranked_lists") or {})
    if not lists and record.get("phase1_ranked_list"):
        lists[DEFAULT_STRATEGY[record.get("cleaner_version", 1)]] = record["phase1_ranked_list"]
    return lists


#: Our rankings in the ranked-list table: strategy name and column title.
OUR_RANKINGS = {
    "training_margin": "ours: margin over training (default)",
    "cleanlab_margin": "ours: margin at the phase-1 model",
}


def ranked_list_section(p1: list[dict], p2: list[dict]) -> list[str]:
    """Our relabel rankings at the phase-1 model beside cleanlab's lists from 5-fold out-of-sample
    probabilities, on the same settings and seeds (top 5% / 10% of the training set)."""
    ours: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in p2:
        if r["device"] == "cpu" and r["phase1_method"] == "ours":
            for strategy, entry in our_ranked_lists(r).items():
                ours[setting_key(r)][strategy][r["seed"]] = entry
    theirs: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for r in p1:
        if r["method"] == "cleanlab_find_label_issues" and r.get("ranked_list"):
            theirs[setting_key(r)][r["seed"]] = r["ranked_list"]

    def cell(lists: list[dict]) -> str:
        if not lists:
            return "–"
        return " / ".join(fmt([entry[f"top_{share}pct"] for entry in lists], ".2f") for share in (5, 10))

    rows = []
    for key in sorted(set(ours) & set(theirs)):
        # the seeds where every list of the row was measured
        seeds = sorted(set(theirs[key]).intersection(*(ours[key][s] for s in OUR_RANKINGS if ours[key][s])))
        if not seeds:
            continue
        rows.append([
            setting_title(key),
            str(len(seeds)),
            *(cell([ours[key][s][seed] for seed in seeds if seed in ours[key][s]]) for s in OUR_RANKINGS),
            cell([theirs[key][seed]["find_label_issues"] for seed in seeds]),
            cell([theirs[key][seed]["normalized_margin"] for seed in seeds]),
        ])
    if not rows:
        return []
    return [
        "### The ranked relabel list: ours against cleanlab's",
        "",
        "Share of wrong labels in the first 5% / 10% (of the training set) of each list. Ours, over the "
        "cleaner's default pool at the phase-1 model, from the phase-2 records: the normalized margin of "
        "the probabilities averaged over the epochs of training (`training_margin`, the default since "
        "cleaner v4), and of the phase-1 model's final probabilities (`cleanlab_margin`). cleanlab: "
        "5-fold cross-validated probabilities of the same network and epochs, its label issues ranked by "
        "self-confidence (`find_label_issues`) and every sample ranked by normalized margin.",
        "",
        *table(
            ["setting", "seeds", *OUR_RANKINGS.values(), "cleanlab find_label_issues",
             "cleanlab normalized margin"],
            rows,
        ),
        "",
    ]


def ranked_list_line(by_seed: dict[int, dict]) -> list[str]:
    """The default ranking's precision at the phase-1 model (records of cleaner v2 on), one line."""
    records = [r for r in by_seed.values() if r.get("phase1_ranked_list")]
    if not records:
        return []
    top5 = fmt([r["phase1_ranked_list"]["top_5pct"] for r in records], ".2f")
    top10 = fmt([r["phase1_ranked_list"]["top_10pct"] for r in records], ".2f")
    # a shortlist strategy orders its picks by entropy: the first 5% of its 10% query is not its 5% query
    first_half = any(r.get("phase1_ranked_strategy") in SHORTLIST_STRATEGIES
                     and not r.get("ranked_list_per_share") for r in records)
    caveat = ("; top 5%: the first half of the 10% query, whose order is the model's entropy, not a "
              "ranking") if first_half else ""
    return [
        f"The default ranking (pool and strategy) at the phase-1 model, share of wrong labels in its top 5% "
        f"of the training set: {top5}; top 10%: {top10} ({len(records)} seeds{caveat}).",
        "",
    ]


# ------------------------------------------------------------------------------------ other experiments


def ceiling_section(runs: list[tuple[str, dict]]) -> list[str]:
    rows = []
    for label, run in runs:
        for row in run["rows"]:
            prior = (
                fmt(row["prior_corrected"])
                if "prior_corrected" in row
                else "{:.3f} ± {:.3f}".format(*row["prior_corrected_mean_std"])
            )
            rows.append(
                [
                    run["dataset"],
                    str(run["epochs"]),
                    row["model"],
                    fmt(row["balanced_accuracy"]),
                    " ".join(f"{v:.3f}" for v in row["balanced_accuracy"]),
                    prior,
                    label,
                ]
            )
        lr = run["logistic_regression"]
        rows.append(
            [
                run["dataset"],
                "–",
                "logistic regression: plain / class-balanced",
                f"{lr['plain']:.3f} / {lr['balanced']:.3f}",
                "–",
                "–",
                label,
            ]
        )
    if not rows:
        return []
    return [
        "## Clean-label ceilings (`clean_upper_bound.py`, 40 epochs, true labels)",
        "",
        "Test balanced accuracy of the network trained on the true labels, mean ± std over seeds; "
        '*prior-corrected*: the same networks under `decision="balanced"`. The quality tables\' '
        "own ceiling rows are trained for the epochs of their table.",
        "",
        *table(["data", "epochs", "model", "balanced acc.", "per seed", "prior-corrected", "from"], rows),
        "",
    ]


NOISE_CANDIDATES = (
    "loss_mixture", "class_pooled", "class_conditional", "heldout_average", "confident_joint", "anchor",
    "heldout_or_anchor",
)


def noise_settings(run: dict) -> list[tuple[tuple[str, str, float], list[dict]]]:
    """A noise-estimate run's rows grouped by (data set, noise kind, rate), data sets in their order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in run["rows"]:
        groups[(_ORDER.get(r["dataset"], 9), r["dataset"], r["noise_kind"], r["noise_rate"])].append(r)
    return [(key[1:], rs) for key, rs in sorted(groups.items())]


def noise_estimate_section(runs: list[tuple[str, dict]]) -> list[str]:
    lines = []
    for label, run in runs:
        candidates = [c for c in NOISE_CANDIDATES if all(c in r for r in run["rows"])]
        rows = []
        for (dataset, kind, rate), rs in noise_settings(run):
            auto = [r["auto_estimate"] - r["true_noise_rate"] for r in rs]
            audit = [r["audit_estimate"] - r["true_noise_rate"] for r in rs]
            rows.append(
                [
                    dataset,
                    f"{kind} {rate:g}",
                    " ".join(f"{r['true_noise_rate']:.3f}" for r in rs),
                    " ".join(f"{e:+.3f}" for e in auto),
                    fmt([r.get("class_mae") for r in rs]) if all("class_mae" in r for r in rs) else "–",
                    f"{mean([abs(e) for e in auto]):.3f}",
                    *(f"{mean([abs(r[c] - r['true_noise_rate']) for r in rs]):.3f}" for c in candidates),
                    f"{mean([abs(e) for e in audit]):.3f}",
                ]
            )
        lines += [
            f"### From {label}",
            "",
            f'The default estimate (`forget_rate="auto"`, {run["config"]["epochs"]} epochs) against the '
            "realised noise rate (errors per seed), the mean absolute error of its per-class rates, and "
            "the mean absolute error of the default, of the candidates it was chosen against (computed "
            f"from the same runs, see `noise_estimate.py`) and of a {run['config']['audit_share']:.0%} "
            "random audit.",
            "",
            *table(
                [
                    "data",
                    "noise",
                    "true rate",
                    "default: error",
                    "per-class MAE",
                    "mean abs. error: default",
                    *candidates,
                    "audit",
                ],
                rows,
            ),
            "",
        ]
    return ["## The noise-rate estimate (`noise_estimate.py`)", "", *lines] if lines else []


def keep_best_section(runs: list[tuple[str, dict]]) -> list[str]:
    lines = []
    for label, run in runs:
        by_set: dict[str, list[dict]] = defaultdict(list)
        for r in run["records"]:
            by_set[r["dataset"]].append(r)
        rules = list(delivered(run["records"][0])) if run["records"] else []
        rows = []
        for dataset, rs in by_set.items():
            scores = [delivered(r) for r in rs]
            rows.append([dataset, str(len(rs)), str(rs[0]["n_val"]),
                         *(fmt([s[rule] for s in scores]) for rule in rules)])
        lines += [
            f"### From {label}",
            "",
            "Commands (each continues the file): "
            + "; ".join(f"`{c}`" for c in [*run.get("previous_commands", []), run["header"]["command"]])
            + ". Test balanced accuracy of the model the cleaner ends "
            "with under each adoption rule, on the same candidates (the default strategy, "
            f"{run['config']['budget']:.0%} budget in {run['config']['rounds']} rounds, "
            f"{run['config']['recal_epochs']} recalibration epochs, symmetric noise 0.4). strict = "
            "`keep_best_tolerance=0` (the default before cleaner v6); paired z = refuse only a candidate "
            "more than z standard errors of the paired validation difference below the model in use "
            "(z=2 is the default from cleaner v6); always = `keep_best=False`.",
            "",
            *table(["data", "seeds", "validation samples", *rules], rows),
            "",
        ]
    return ["## Which recalibrations to adopt (`keep_best.py`)", "", *lines] if lines else []


RECIPE_METRICS = (
    ("cv_argmax", "CV bal. acc."),
    ("cv_prior", "CV prior-corrected"),
    ("test_argmax", "test bal. acc."),
    ("test_prior", "test prior-corrected"),
)


def recipe_search_section(runs: list[tuple[str, dict]]) -> list[str]:
    lines = []
    for label, run in runs:
        by_variant: dict[str, list[dict]] = defaultdict(list)
        for r in run["records"]:
            by_variant[r["variant"]].append(r)
        scored = sorted(by_variant.items(), key=lambda kv: (-mean([r["cv_argmax"] for r in kv[1]]), kv[0]))
        rows = [
            [variant, str(len(rs)), *(fmt([r[k] for r in rs]) for k, _ in RECIPE_METRICS)]
            for variant, rs in scored
        ]
        lines += [
            f"### From {label}",
            "",
            f"Command: `{run['header']['command']}` (git "
            f"{run['header']['git_commit']}). Sorted by the cross-validated score.",
            "",
            *table(["variant", "seeds", *(name for _, name in RECIPE_METRICS)], rows),
            "",
        ]
    return (
        ["## Recipe search (`recipe_search.py`, cross-validation on the training split)", "", *lines]
        if lines
        else []
    )


def speed_section(runs: list[tuple[str, dict]]) -> list[str]:
    lines: list[str] = []
    for label, run in runs:
        on_gpu = device_of(run) != "cpu"
        lines += [f"### From {label} ({device_of(run)})", "", f"Command: `{run['header']['command']}`", ""]
        rows_a, rows_b = [], []
        for name, entry in run["datasets"].items():
            et = entry.get("epoch_time")
            if et:
                # on a GPU the process CPU time includes the host waiting on the device: wall time only
                clocks = [("wall", "epoch_seconds", "ratio_to_loss")]
                if not on_gpu and "epoch_cpu_seconds" in et:
                    clocks.append(("CPU", "epoch_cpu_seconds", "cpu_ratio_to_loss"))
                for clock, sec_key, ratio_key in clocks:
                    rows_a.append(
                        [
                            name,
                            str(entry["epochs"]),
                            clock,
                            *(f"{et[sec_key][k]:.3f} s ({et[ratio_key][k]:.2f}×)" for k in et[sec_key]),
                        ]
                    )
            rl = entry.get("ranked_list")
            if rl:
                o, c = rl["ours_list"], rl["cleanlab_list"]
                rows_b.append(
                    [
                        name,
                        str(entry["epochs"]),
                        f"{rl['ours_seconds']:.1f} s",
                        f"{rl['cleanlab_seconds']:.1f} s",
                        f"{rl['ratio_cleanlab_to_ours']:.2f}×",
                        f"{o['precision']:.2f} / {o['precision_top_5pct']:.2f}",
                        f"{c['precision']:.2f} / {c['precision_top_5pct']:.2f}",
                    ]
                )
        if rows_a:
            lines += [
                "(a) Median epoch time and ratio to loss-only co-teaching:",
                "",
                *table(
                    [
                        "data",
                        "epochs",
                        "clock",
                        "loss only",
                        "loss+VoG (closed form)",
                        "loss+VoG (checkpoint pass)",
                    ],
                    rows_a,
                ),
                "",
            ]
        if rows_b:
            lines += [
                "(b) Wall time to a ranked relabel list; precision over the list / in the top 5%:",
                "",
                *table(
                    [
                        "data",
                        "epochs",
                        "ours (phase 1 + ranking)",
                        "cleanlab (5-fold CV)",
                        "cleanlab / ours",
                        "ours precision",
                        "cleanlab precision",
                    ],
                    rows_b,
                ),
                "",
            ]
        q = run.get("query_latency")
        if q:
            rows = [
                [name, f"{v['median_s']:.3f}", f"{v['best_s']:.3f}"]
                for name, v in q["median_seconds"].items()
            ]
            if q.get("coreset_median_s") is not None:
                rows.append(["core-set (separate pool)", f"{q['coreset_median_s']:.2f}", "–"])
            lines += [
                f"(c) Query latency, pick {q['k']:,} from a pool of {q['pool']:,} with precomputed "
                "model outputs:",
                "",
                *table(["strategy", "median s", "best s"], rows),
                "",
            ]
        for name, entry in run["datasets"].items():
            for dtype, m in entry.get("vog_memory", {}).items():
                lines.append(
                    f"(d) {name}, {dtype}: VoG state {m['vog_bytes_per_sample']:.0f} B per sample "
                    f"(formula {m['formula_bytes_per_sample']:.0f} B)."
                )
        lines.append("")
    return ["## Speed (`speed.py`)", "", *lines] if lines else []


def scale_section(runs: list[tuple[str, dict]]) -> list[str]:
    """The pair/single images-per-second ratio and the multi-process scaling of each ``scale.py`` run."""
    rows_ratio, rows_scaling = [], []
    for label, run in runs:
        r = run["ratio"]
        ips = r["images_per_second"]
        rows_ratio.append(
            [
                device_of(run),
                r["network"],
                r["data"],
                str(r["epochs"]),
                r["timing"],
                f"{ips['single']:.0f}",
                f"{ips['pair']:.0f}",
                f"**{r['ratio']:.2f}×**",
                label,
            ]
        )
        s = run.get("scaling")
        if s:
            by_n = s["images_per_second_by_processes"]
            rows_scaling.append(
                [
                    device_of(run),
                    str(run["header"]["machine"]["cpu_count"]),
                    s["network"],
                    s["data"],
                    str(s["global_batch_size"]),
                    *(f"{by_n[n]:.0f} ({s['speedup_by_processes'][n]:.2f}×)" for n in sorted(by_n, key=int)),
                    label,
                ]
            )
    if not rows_ratio:
        return []
    lines = [
        "## Scale (`scale.py`)",
        "",
        "Training images per second of the co-teaching pair (loss+VoG from the training pass, "
        "class-aware) against one plain skorch network of the same architecture, recipe, batch and data, "
        "measured side by side in one run; two networks train in the pair, so 0.5× is the physical "
        "limit (goal: ≥ 0.45×).",
        "",
        *table(
            ["device", "network", "data", "epochs", "clock", "single img/s", "pair img/s", "ratio", "run"],
            rows_ratio,
        ),
        "",
    ]
    if rows_scaling:
        lines += [
            "The pair under `accelerate launch --multi_gpu --num_processes N` (CPU processes with gloo, "
            "one torch thread each; wall time of the main process): images per second (speed-up over "
            "one process). Two processes need two free cores: where other jobs share the machine's "
            "cores, the figure says more about the load than about the method.",
            "",
            *table(
                ["device", "cores", "network", "data", "global batch", "1 process", "2 processes", "run"],
                rows_scaling,
            ),
            "",
        ]
    return lines


def provenance_section(loaded: dict[str, list[tuple[str, dict]]]) -> list[str]:
    lines = ["## Provenance: command, commit and versions of every run", ""]
    for experiment in sorted(loaded):
        for label, run in loaded[experiment]:
            h = run["header"]
            versions = h.get("versions", {})
            lines.append(
                f"- `{label}`: `{h['command']}`; git {str(h.get('git_commit'))[:10]}"
                + (f", package code from {str(h['code_commit'])[:10]}" if h.get("code_commit") else "")
                + (f"; started {h['started']}" if h.get("started") else "")
                + (f"; {h['transcribed_from']}" if h.get("transcribed_from") else "")
                + (
                    f"; earlier commands into the same file: {len(run['previous_commands'])}"
                    if run.get("previous_commands")
                    else ""
                )
                + (
                    f"; torch {versions['torch']}, cleanlab {versions['cleanlab']}"
                    if "torch" in versions
                    else ""
                )
            )
    return [*lines, ""]


# ------------------------------------------------------------------------------------ README block


def selection_cells(records: list[dict]) -> list[str]:
    """Seeds, clean-set precision, worst-class retention and test balanced accuracy (mean ± std)."""
    return [
        str(len(records)),
        fmt([get(r, "selection", "precision") for r in records]),
        fmt([get(r, "selection", "min_retention") for r in records]),
        fmt([get(r, "test", "balanced_accuracy") for r in records]),
    ]


def estimator_note(records: list[dict]) -> str:
    """Which noise-rate estimator an ``ours`` row ran: the held-out one or the earlier loss mixture."""
    if not records or records[0].get("forget_rate") != "auto":
        return ""
    held_out = all(r.get("noise_estimator") == "held_out" for r in records)
    return " (held-out τ)" if held_out else " (loss-mixture τ)"


#: the baselines the defaults must not be dominated by (the co-teaching ones are given the true rate)
DEFAULT_BASELINES = (
    "coteaching",
    "coteaching_vog_0.2",
    "cleanlab_find_label_issues",
    "cleanlab_cleanlearning",
)


def defaults_table(groups: dict[tuple, dict[str, list[dict]]]) -> list[str]:
    """Ours under the library's defaults beside each baseline of the same setting, 40% symmetric noise."""
    rows = []
    for key, by in groups.items():
        ours = by.get("ours", [])
        if key[3:5] != ("symmetric", 0.4) or not ours or estimator_note(ours) != " (held-out τ)":
            continue
        for method in ("ours", *DEFAULT_BASELINES):
            records = by.get(method, [])
            if not records:
                continue
            rows.append(
                [
                    f"{key[1]} [{key[2]}], {key[5]} epochs" if method == "ours" else "",
                    METHOD_LABELS.get(method, method),
                    *selection_cells(records),
                ]
            )
    if not rows:
        return []
    return [
        "Phase 1 under the defaults (`CoTeachingClassifier(SmallCNN, module__n_classes=K)` with the data "
        "set's augmentation: held-out τ, class-aware, VoG mix 0.2) at 40% symmetric noise, beside the "
        "baselines of the same setting (co-teaching given the true rate), mean ± std over seeds:",
        "",
        *table(
            ["setting", "method", "seeds", "clean-set precision", "worst-class retention", "bal. acc."], rows
        ),
        "",
    ]


def noise_estimate_summary(runs: list[tuple[str, dict]]) -> list[str]:
    """Mean absolute error of the default noise-rate estimate and of the earlier loss mixture."""
    parts = []
    for _, run in runs:
        for (dataset, kind, rate), rs in noise_settings(run):
            auto = [r["auto_estimate"] - r["true_noise_rate"] for r in rs]
            text = f"{dataset} {kind} {rate:g}: {min(auto):+.3f} to {max(auto):+.3f}"
            if all("loss_mixture" in r for r in rs):
                text += f" (loss mixture {mean([r['loss_mixture'] - r['true_noise_rate'] for r in rs]):+.3f})"
            parts.append(text)
    if not parts:
        return []
    return [
        'Error of the default noise-rate estimate (`forget_rate="auto"`, estimate − true rate, lowest to '
        "highest over seeds; in brackets the mean error of a small-loss mixture estimate, the earlier "
        "default's method, on the same runs; `noise_estimate.py`): " + "; ".join(parts) + ".",
        "",
    ]


def readme_block(loaded: dict[str, list[tuple[str, dict]]]) -> str:
    """The README's figures, each read from the results files (RESULTS.md has the full tables)."""
    p1, p2 = quality_records(loaded.get("quality", []))
    groups = group_phase1(p1)
    lines = [
        README_BEGIN,
        "<!-- generated by benchmarks/make_results.py from benchmarks/results/*.json: "
        "do not edit by hand -->",
        "",
    ]
    # phase 1: ours (or the audited variant on the medical sets) against the best other method
    rows = []
    for key, by in groups.items():
        dataset, recipe = key[1], key[2]
        variant = "ours" if dataset == "digits-LT" else "ours_audit"
        if not by.get(variant) or (dataset == "RetinaMNIST" and recipe != "flips+shift2"):
            continue
        seeds = len(by[variant])
        acc = mean([get(r, "test", "balanced_accuracy") for r in by[variant]])
        ret = mean([get(r, "selection", "min_retention") for r in by[variant]])
        ba, br = best_other(by, "test", "balanced_accuracy"), best_other(by, "selection", "min_retention")
        ceiling = mean([get(r, "test", "balanced_accuracy") for r in by.get("clean_ceiling", [])])
        rows.append(
            [
                f"{dataset}, {key[3]} {key[4]:g}",
                f"{key[5]} / {seeds}",
                variant + estimator_note(by[variant]),
                f"{acc:.3f}",
                f"{ba[1]:.3f} ({ba[0]})",
                f"{ret:.3f}",
                f"{br[1]:.3f} ({br[0]})",
                "–" if math.isnan(ceiling) else f"{ceiling:.3f}",
            ]
        )
    lines += [
        "Phase 1, means over seeds: test balanced accuracy and the clean retention of the worst-off "
        "class, ours against the best other method (ceilings and our variants excluded; the paper's "
        "VoG mix included). On the medical sets ours takes τ from a 5% random audit "
        "(`ours_audit`); the ceiling is the same network on the true labels for the same epochs.",
        "",
        *table(
            [
                "setting",
                "epochs / seeds",
                "ours",
                "bal. acc.",
                "best other",
                "worst-class retention",
                "best other",
                "ceiling",
            ],
            rows,
        ),
        "",
    ]
    lines += defaults_table(groups)
    lines += noise_estimate_summary(loaded.get("noise_estimate", []))
    # phase 2: the strategies at the largest budget, from the CPU runs
    rows = []
    for key, records in group_phase2(p2).items():
        if key[7]:  # GPU runs start from other phase-1 models
            continue
        # a table of the balanced decision is scored by it (the decision its keep_best validated)
        metric = BALANCED_DECISION if key[11] == "balanced" else "balanced_accuracy"
        start = mean(list(phase1_scores(records, metric).values()))
        present = [s for s in STRATEGY_LABELS if any(r["strategy"] == s for r in records)]
        score = {s: mean([get(r, "test", metric) for r in records if r["strategy"] == s]) for s in present}
        precision = {
            s: mean([r["relabel_precision"] for r in records if r["strategy"] == s]) for s in present
        }
        best = max(present, key=lambda s: (score[s], s))
        default = DEFAULT_STRATEGY[key[10]]
        top_prec = max(present, key=lambda s: (precision[s], s))
        below = [STRATEGY_LABELS[s] for s in present if score[s] < start - 1e-9]
        rows.append(
            [
                f"{setting_title(key[:6])}",
                f"{key[6]}, cleaner v{key[10]}{DECISION_NOTES[key[11]]}{recalibration_note(key[12])}",
                f"{key[9]:.0%}",
                f"{start:.3f}",
                f"{STRATEGY_LABELS[best]} {score[best]:.3f}",
                f"{STRATEGY_LABELS[default]} {score[default]:.3f}" if default in present else "–",
                f"{STRATEGY_LABELS[top_prec]} {precision[top_prec]:.2f}",
                ", ".join(below) if below else "none",
            ]
        )
    lines += [
        "Phase 2 (CPU runs), test balanced accuracy after the budget (of the balanced decision in the "
        "rows marked decision=\"balanced\"), means over seeds (cleaner v1: "
        "noisy pool only; v2: every unanswered sample, every recalibration adopted; v3: v2 with "
        "`keep_best`; v4: v3 ranked by the normalized margin over training, scoring the last round's "
        "recalibration; v5: v4 scoring the model the cleaner delivers; v6: v5 with keep_best_tolerance=2 "
        "and the balanced decision of a recalibrated model dividing out the prior of its fine-tune "
        "labels):",
        "",
        *table(
            [
                "setting",
                "phase 1",
                "budget",
                "phase 1 score",
                "best strategy",
                "default strategy",
                "most wrong labels fixed per answer",
                "strategies ending below phase 1",
            ],
            rows,
        ),
        "",
    ]
    # speed: the slowest query strategy, and VoG's epoch-time cost (the last run per device and data set)
    vog: dict[tuple[str, str], list[str]] = {}
    for label, run in loaded.get("speed", []):
        q = run.get("query_latency")
        if q:
            slowest = max(sorted(q["median_seconds"]), key=lambda k: q["median_seconds"][k]["median_s"])
            lines += [
                f"Query latency: picking {q['k']:,} from a pool of {q['pool']:,} with precomputed model "
                f"outputs takes at most {q['median_seconds'][slowest]['median_s']:.2f} s (median of "
                f"{slowest}) for every strategy but core-set (`{label}`, CPU).",
                "",
            ]
        for name, entry in run["datasets"].items():
            et = entry.get("epoch_time")
            # the CPU figures of the interleaved measurement only (it names its method); a GPU's as measured
            if et and (et.get("method") or device_of(run) != "cpu"):
                vog[(device_of(run), name)] = [
                    device_of(run),
                    name,
                    *(
                        f"{et['ratio_to_loss'][k]:.2f}×"
                        for k in ("loss+vog (closed form)", "loss+vog (checkpoint pass)")
                    ),
                ]
    if vog:
        lines += [
            "Epoch time of VoG tracking over loss-only co-teaching (wall time):",
            "",
            *table(["device", "data", "closed form", "checkpoint pass"], list(vog.values())),
            "",
        ]
    lines += ["Full tables, commands and commits: `benchmarks/RESULTS.md`.", README_END]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main


def vog_source_section(groups: dict[tuple, dict[str, list[dict]]]) -> list[str]:
    """Selection quality of VoG read from the training pass (the default) and from an eval-mode pass."""
    rows = []
    for key, by in groups.items():
        pairs = [(m, by.get(m, [])) for m in ("ours", "ours_vog_checkpoint")]
        if not all(rs for _, rs in pairs) or estimator_note(pairs[0][1]) != " (held-out τ)":
            continue
        for method, records in pairs:
            rows.append(
                [
                    setting_title(key) if method == "ours" else "",
                    "training pass (default)" if method == "ours" else "eval-mode pass",
                    *selection_cells(records),
                ]
            )
    if not rows:
        return []
    return [
        "### Where VoG comes from",
        "",
        "Ours under the defaults with VoG read from the training forward pass (train mode: BatchNorm "
        "batch statistics, dropout and augmentation included) and from an extra eval-mode pass per "
        "epoch (`vog_source=\"checkpoint\"`, as the paper's code), same seeds. Their cost is "
        "`vog_overhead.py`'s (*Speed*); these runs shared a loaded machine.",
        "",
        *table(
            [
                "setting",
                "VoG from",
                "seeds",
                "clean-set precision",
                "worst-class retention",
                "bal. acc.",
            ],
            rows,
        ),
        "",
    ]


def render(results_dir: Path = RESULTS_DIR) -> tuple[str, str]:
    """RESULTS.md's text and the README block, from the results files alone."""
    loaded = load(results_dir)
    p1, p2 = quality_records(loaded.get("quality", []))
    lines = [
        "# Benchmark results",
        "",
        "GENERATED by `benchmarks/make_results.py` from `benchmarks/results/*.json`; do not edit by "
        "hand. The prose under *Reading the numbers* is `benchmarks/results/commentary.md`. Each table "
        "names the runs it comes from; *Provenance* gives each run's command and commit.",
        "",
    ]
    commentary = results_dir / "commentary.md"
    if commentary.is_file():
        lines += ["## Reading the numbers", "", commentary.read_text().strip(), ""]
    lines += [
        "## Phase 1: who keeps which samples (`quality.py`)",
        "",
        "Test-split metrics of the model each method trains; selection metrics of the samples it keeps "
        "as clean. Retention = share of a class's correctly labelled samples kept; τ error = "
        "noise-rate estimate − true rate. `±` = std over seeds.",
        "",
        *phase1_section(p1),
    ]
    lines += vog_source_section(group_phase1(p1))
    lines += [
        "## Phase 2: active label cleaning (`quality.py`)",
        "",
        "Noisy labels remaining counts wrong labels in the whole training label vector; fixed per "
        "answer is the share of queried labels that were wrong (each such answer fixes one). GPU runs "
        "are neither bit-identical "
        "to CPU runs nor deterministic, so they get tables of their own. Cleaner versions: v1 queried "
        "only the samples phase 1 did not keep; v2 ranks every sample not yet answered and adopts every "
        "recalibration; v3 also keeps a round's recalibration only when it validates at least as well as "
        "the model in use; v4 ranks by the normalized margin over training and scored the last round's "
        "recalibration, adopted or not; v5 scores the model the cleaner delivers and shows the last "
        "recalibration beside it; v6 (today's defaults, tables without a note) refuses a recalibration "
        "only when it validates more than 2 standard errors of the paired difference below the model in "
        "use (`keep_best_tolerance=2`, v5: at least as well), and the balanced decision of a "
        "recalibrated model divides out the prior of the labels it was fine-tuned on.",
        "",
        *phase2_section(p2),
        *ranked_list_section(p1, p2),
    ]
    lines += keep_best_section(loaded.get("keep_best", []))
    lines += ceiling_section(loaded.get("clean_upper_bound", []))
    lines += noise_estimate_section(loaded.get("noise_estimate", []))
    lines += recipe_search_section(loaded.get("recipe_search", []))
    lines += speed_section(loaded.get("speed", []))
    lines += scale_section(loaded.get("scale", []))
    lines += provenance_section(loaded)
    return "\n".join(lines).rstrip() + "\n", readme_block(loaded)


def replace_block(readme: str, block: str) -> str:
    """README text with the results block replaced; the markers must appear once each, in order."""
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start or readme.count(README_BEGIN) != 1 or readme.count(README_END) != 1:
        raise ValueError(f"README must hold {README_BEGIN!r} then {README_END!r} once each")
    return readme[:start] + block + readme[end + len(README_END) :]


def add_run(path: Path, results_dir: Path = RESULTS_DIR) -> list[Path]:
    """Append the run a script wrote (``quality_<tag>.json``, ``speed_<tag>.json``) to its canonical files.

    Quality records go to ``quality_<data set>.json`` by the data set they name; a speed run goes to
    ``speed_<cpu|gpu>.json``. The source file is deleted once every part is written.
    """
    data = load_json(path)
    if "runs" in data:
        raise ValueError(f"{path} is already a canonical file (it lists runs)")
    experiment = experiment_of(path)
    parts: dict[str, dict[str, Any]] = {}
    base = {k: v for k, v in data.items() if k not in ("phase1", "phase2")}
    if experiment == "quality":
        for phase in ("phase1", "phase2"):
            for r in data.get(phase, []):
                subject = SUBJECTS.get(r["dataset"], r["dataset"].lower())
                parts.setdefault(subject, {"source": path.name, **base, "phase1": [], "phase2": []})[
                    phase
                ].append(r)
    elif experiment in ("speed", "scale"):
        parts["cpu" if device_of(data) == "cpu" else "gpu"] = {"source": path.name, **data}
    else:
        raise ValueError(
            f"--add takes a quality_*.json, speed_*.json or scale_*.json a script wrote, got {path.name}"
        )
    written = []
    for subject, run in parts.items():
        target = results_dir / f"{experiment}_{subject}.json"
        canonical = (
            load_json(target)
            if target.is_file()
            else {"experiment": experiment, "subject": subject, "runs": []}
        )
        canonical["runs"].append(run)
        written.append(write_json(target, canonical))
    if path.resolve() not in {p.resolve() for p in written}:
        path.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if RESULTS.md or the README block is stale"
    )
    parser.add_argument("--add", type=Path, nargs="+", default=[], help="fold these script outputs in first")
    args = parser.parse_args(argv)
    for path in args.add:
        print("added to " + ", ".join(p.name for p in add_run(path)))
    results_md, block = render()
    for path in pending(RESULTS_DIR):
        print(f"not included until folded in with --add: {path.name}")
    results_path, readme_path = BENCH_DIR / "RESULTS.md", REPO_ROOT / "README.md"
    readme = replace_block(readme_path.read_text(), block)
    if args.check:
        stale = [
            p.name
            for p, text in ((results_path, results_md), (readme_path, readme))
            if not p.is_file() or p.read_text() != text
        ]
        print("stale: " + ", ".join(stale) if stale else "RESULTS.md and the README block are current")
        return 1 if stale else 0
    results_path.write_text(results_md)
    readme_path.write_text(readme)
    print(f"wrote {results_path} ({results_md.count(chr(10))} lines) and the README block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
