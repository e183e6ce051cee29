"""Rebuild ``benchmarks/RESULTS.md`` and the PNG figures from ``benchmarks/results/*.json``.

Nothing here trains anything: it only reads what ``quality.py`` and ``speed.py`` wrote. The prose in
``benchmarks/results/commentary.md`` (hand-written reading of the numbers) is included verbatim.

Run::

    .venv/bin/python benchmarks/make_results.py [--include-quick]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, RESULTS_DIR, load_json, mean_std

METHOD_LABELS = {
    "clean_ceiling": "clean-label ceiling (CE on true labels)",
    "clean_ceiling_pair": "clean-label ceiling of the co-teaching pair (τ = 0, true labels)",
    "cross_entropy": "cross-entropy (noisy labels)",
    "coteaching": "co-teaching, loss (τ = true rate)",
    "coteaching_vog_0.2": "co-teaching + VoG λ=0.2 (paper, τ = true rate)",
    "coteaching_vog_0.5": "co-teaching + VoG λ=0.5 (paper, τ = true rate)",
    "coteaching_random_0.2": "co-teaching + random fill λ=0.2 (control)",
    "ours": "**ours**: + VoG λ=0.2, class-aware, τ estimated",
    "ours_true_rate": "ours with τ = true rate (ablation)",
    "ours_audit": "ours with τ from a random 5% audit",
    "cleanlab_find_label_issues": "cleanlab find_label_issues (5-fold OOS)",
    "cleanlab_cleanlearning": "cleanlab CleanLearning",
}
METHOD_ORDER = list(METHOD_LABELS)
# test balanced accuracy of decision="balanced" (the prior divided out once per summed network), and
# of the records written before it, which divided every model's probabilities by the prior once
DECISION_KEYS = {
    "balanced_accuracy_balanced_decision": (
        "… balanced decision",
        " *balanced decision*: the same model's balanced accuracy when it divides its probabilities by "
        "the prior of the labels it was trained on, once per network whose logits it sums, before the "
        "arg-max (`decision=\"balanced\"`).",
    ),
    "balanced_accuracy_prior_corrected": (
        "… prior divided once",
        " *prior divided once*: the same model's balanced accuracy when it divides its probabilities by "
        "the prior of the labels it was trained on before the arg-max. For the two-network rows "
        "(co-teaching, ours) that is half of what `decision=\"balanced\"` divides out (the prior once "
        "per summed network), so those rows understate it.",
    ),
}


def _decision_key(records: list[dict], part: str = "test") -> str | None:
    """The balanced-decision field the records carry (the newer one first), or None."""
    for key in DECISION_KEYS:
        if any(_get(r, part, key) is not None for r in records):
            return key
    return None
# variants of ours: never "the best other method", and not required of a run (they came later)
OUR_VARIANTS = ("ours", "ours_true_rate", "ours_audit")
DEFAULT_METHODS = [m for m in METHOD_ORDER if m not in OUR_VARIANTS[1:]]
_DATASET_ORDER = {"digits-LT": 0, "RetinaMNIST": 1, "HAM10000-8x8": 2}


def _group_order(item: tuple) -> tuple:
    """Sort groups keyed (dataset, ...) as digits-LT, RetinaMNIST, HAM10000-8x8, then any other."""
    key = item[0]
    return (_DATASET_ORDER.get(_base(key[0]), 9), *key)


def _base(dataset: str) -> str:
    """The data set's name without its recipe label: ``"RetinaMNIST [flips+shift2]"`` -> ``"RetinaMNIST"``."""
    return dataset.split(" [")[0]


STRATEGY_LABELS = {
    "random": "random",
    "entropy": "entropy",
    "loss": "loss",
    "vog": "VoG-and-loss",
    "cleanlab": "cleanlab (self-confidence)",
    "cb_entropy": "class-balanced entropy",
    "cb_loss": "class-balanced loss",
    "cb_vog": "class-balanced VoG-and-loss (ours)",
    "cb_cleanlab": "class-balanced cleanlab",
}


def fmt(values: list[Any], spec: str = ".3f") -> str:
    mean, std, n = mean_std([None if v is None else float(v) for v in values])
    if n == 0:
        return "–"
    return f"{mean:{spec}} ± {std:{spec}}" if n > 1 else f"{mean:{spec}}"


def fmt_partial(values: list[Any], spec: str = ".3f") -> str:
    """:func:`fmt`, saying how many of the seeds it covers when some records lack the value."""
    present = sum(v is not None for v in values)
    out = fmt(values, spec)
    return f"{out} ({present} of {len(values)} seeds)" if 0 < present < len(values) else out


def _score_cells(records: list[dict], part: str, decision_key: str | None) -> str:
    """Table cells: the balanced accuracy of the records' ``part``, and the balanced decision's."""
    cells = [fmt([_get(r, part, "balanced_accuracy") for r in records])]
    if decision_key:
        cells.append(fmt_partial([_get(r, part, decision_key) for r in records]))
    return " | ".join(cells)


def _get(record: dict[str, Any] | None, *path: Any) -> Any:
    for key in path:
        if record is None:
            return None
        record = record[key] if isinstance(record, list) else record.get(key)
    return record


def _label_recipe(record: dict[str, Any]) -> None:
    """Fold a non-plain training recipe into the data-set label, so tables never mix recipes."""
    recipe = record.get("recipe") or "plain"  # records before the recipe field were plain
    if recipe != "plain" and not record["dataset"].endswith(f"[{recipe}]"):
        record["dataset"] = f"{record['dataset']} [{recipe}]"


def _file_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-")


def load(include_quick: bool) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    files, p1, p2, speeds = [], {}, {}, []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        tag = path.stem.split("_", 1)[1] if "_" in path.stem else ""
        if not include_quick and (tag.startswith("quick") or tag.startswith("smoke")):
            continue
        data = load_json(path)
        files.append({"file": path.name, "header": data["header"],
                      "previous_commands": data.get("previous_commands", []),
                      "carried_over": data.get("carried_over")})
        if path.stem.startswith("quality"):
            for r in (*data.get("phase1", []), *data.get("phase2", [])):
                _label_recipe(r)
            for r in data.get("phase1", []):
                p1[(r["dataset"], r["noise_kind"], r["noise_rate"], r["seed"], r["method"],
                    r["epochs"])] = r
            for r in data.get("phase2", []):
                r.setdefault("phase1_method", "ours")  # records from before the audit
                # GPU runs are neither bit-identical to CPU runs nor deterministic: a phase-2 table
                # must compare strategies that started from the same phase-1 models
                r["device"] = data["header"]["machine"].get("gpu") or "cpu"
                p2[(r["dataset"], r["noise_kind"], r["noise_rate"], r["seed"], r["strategy"],
                    r["budget_fraction"], r["epochs"], r["phase1_method"], r["device"])] = r
        elif path.stem.startswith("speed"):
            speeds.append({"file": path.name, **data})
    return files, list(p1.values()), list(p2.values()), speeds


# ------------------------------------------------------------------------------------ tables


def phase1_tables(p1: list[dict], figures: list[str]) -> list[str]:
    lines: list[str] = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in p1:
        groups[(r["dataset"], r["noise_kind"], r["noise_rate"], r["epochs"])].append(r)
    for (dataset, kind, rate, epochs), records in sorted(groups.items(), key=_group_order):
        by_method: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            by_method[r["method"]].append(r)
        seeds = sorted({r["seed"] for r in records})
        counts = records[0]["class_counts"]
        rarest = int(np.argmin(counts))
        # the balanced decision's score exists only in records written since it was added
        corrected = _decision_key(records)
        lines += [
            f"### {dataset}, {kind} noise {rate:g}, {epochs} epochs, seeds {seeds}",
            "",
            f"Training set {records[0]['n_train']} samples; true-label class counts {counts} "
            f"(rarest class: {rarest}). Test-split metrics of the model each method trains; selection "
            "metrics of the samples it keeps as clean (CE keeps everything). `±` = std over seeds."
            + (DECISION_KEYS[corrected][1] if corrected else ""),
            "",
            "| method | seeds | test bal. acc. | "
            + (f"{DECISION_KEYS[corrected][0]} | " if corrected else "")
            + "test macro-F1 | test MCC | sel. precision | sel. recall "
            f"| retention class {rarest} (rarest) | min retention over classes | flagged precision "
            "| noise-rate est. error | fit s |",
            "|---|---|---|" + ("---|" if corrected else "") + "---|---|---|---|---|---|---|---|---|",
        ]
        for method in METHOD_ORDER:
            rs = by_method.get(method)
            if not rs:
                continue
            err = [
                None if r.get("noise_rate_estimate") is None
                else r["noise_rate_estimate"] - r["true_noise_rate"]
                for r in rs
            ]
            lines.append(
                "| " + " | ".join([
                    METHOD_LABELS[method],
                    str(len(rs)),
                    fmt([_get(r, "test", "balanced_accuracy") for r in rs]),
                    *([fmt_partial([_get(r, "test", corrected) for r in rs])] if corrected else []),
                    fmt([_get(r, "test", "macro_f1") for r in rs]),
                    fmt([_get(r, "test", "mcc") for r in rs]),
                    fmt([_get(r, "selection", "precision") for r in rs]),
                    fmt([_get(r, "selection", "recall") for r in rs]),
                    fmt([_get(r, "selection", "clean_retention", rarest) for r in rs]),
                    fmt([_get(r, "selection", "min_retention") for r in rs]),
                    fmt([_get(r, "selection", "flag_precision") for r in rs]),
                    fmt(err, "+.3f") if any(e is not None for e in err) else "n/a (τ given)"
                    if method.startswith("coteaching") else "–",
                    fmt([r["fit_seconds"] for r in rs], ".0f"),
                ]) + " |"
            )
        # per-class retention
        lines += ["", f"Per-class clean retention (share of each class's correctly labelled samples "
                  f"kept), {dataset}, {kind} {rate:g}:", "",
                  "| method | " + " | ".join(f"class {c} (n={n})" for c, n in enumerate(counts)) + " |",
                  "|---|" + "---|" * len(counts)]
        for method in METHOD_ORDER:
            rs = by_method.get(method)
            if not rs or not _get(rs[0], "selection"):
                continue
            cells = [fmt([_get(r, "selection", "clean_retention", c) for r in rs], ".2f")
                     for c in range(len(counts))]
            lines.append(f"| {METHOD_LABELS[method]} | " + " | ".join(cells) + " |")
        lines += ["", *verdict_lines(by_method, rarest), ""]
        png = retention_figure(dataset, kind, rate, epochs, by_method, counts)
        if png:
            figures.append(png)
            lines += [f"![per-class retention, {dataset}](results/{png})", ""]
    return lines


def verdict_lines(by_method: dict[str, list[dict]], rarest: int) -> list[str]:
    """Plain win/loss statements for ours (and its audited variant) against every other method."""
    out = []
    for variant in ("ours", "ours_audit"):
        if by_method.get(variant):
            out += [*([""] if out else []), *_verdicts(variant, by_method, rarest)]
    return out


def _verdicts(variant: str, by_method: dict[str, list[dict]], rarest: int) -> list[str]:
    ours = by_method[variant]

    def mean(rs, *path):
        return mean_std([_get(r, *path) for r in rs])[0]

    short = "ours" if variant == "ours" else "ours (audit)"
    out = [f"{short.capitalize()} against the others (means over seeds):", ""]
    checks = [
        ("min retention over classes", ("selection", "min_retention"), True),
        (f"retention of the rarest class ({rarest})", ("selection", "clean_retention", rarest), True),
        ("selection precision", ("selection", "precision"), True),
        ("test balanced accuracy", ("test", "balanced_accuracy"), True),
    ]
    for label, path, _ in checks:
        mine = mean(ours, *path)
        others = {
            m: mean(rs, *path) for m, rs in by_method.items()
            if m not in (*OUR_VARIANTS, "clean_ceiling", "clean_ceiling_pair")
            and not (path[0] == "selection" and m == "cross_entropy")
        }
        others = {m: v for m, v in others.items() if not math.isnan(v)}
        if not others or math.isnan(mine):
            continue
        best_method = max(others, key=others.get)
        best = others[best_method]
        verdict = "**wins**" if mine > best + 1e-9 else ("ties" if abs(mine - best) <= 1e-9 else "**loses**")
        out.append(f"- {label}: {short} {mine:.3f} vs best other {best:.3f} "
                   f"({METHOD_LABELS[best_method].replace('**', '')}) → {short} {verdict}")
    return out


def phase2_tables(p1: list[dict], p2: list[dict], figures: list[str]) -> list[str]:
    lines: list[str] = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in p2:
        groups[(r["dataset"], r["noise_kind"], r["noise_rate"], r["epochs"], r["phase1_method"],
                r["device"])].append(r)
    # CPU tables first, then the same setting run on a GPU
    order = sorted(groups.items(), key=lambda item: (_group_order(item)[:-1], item[0][-1] != "cpu"))
    for (dataset, kind, rate, epochs, start, device), records in order:
        ref = defaultdict(list)
        for r in p1:
            if (r["dataset"], r["noise_kind"], r["noise_rate"], r["epochs"]) == (dataset, kind, rate, epochs):
                ref[r["method"]].append(r)
        r0 = records[0]
        start_label = "ours" if start == "ours" else f"ours, τ from a {r0['audit_share']:.0%} random audit"
        for frac in sorted({r["budget_fraction"] for r in records}):
            rs_frac = [r for r in records if r["budget_fraction"] == frac]
            seeds = sorted({r["seed"] for r in rs_frac})
            corrected = _decision_key(rs_frac)
            lines += [
                f"### {dataset}, {kind} noise {rate:g}: budget {frac:.0%} of the training set "
                f"({rs_frac[0]['labels_spent']} labels in {r0['rounds']} rounds of "
                f"{rs_frac[0]['budget_per_round']}), seeds {seeds}"
                + ("" if start == "ours" else ", phase 1 from the audit")
                + ("" if device == "cpu" else f", on the GPU ({device})"),
                "",
                f"Phase 1: {start_label} ({epochs} epochs"
                + ("" if start == "ours" else "; the audited labels are not in the budget and stay as given")
                + f"); recalibration {r0['recalibration_epochs']} epochs per "
                "round (SGD 0.01, momentum 0.9, cosine); simulated expert; test-split metrics after the "
                "last round. Noisy labels remaining counts wrong labels in the whole training label "
                "vector (phase-1-clean samples keep their given label)."
                + (DECISION_KEYS[corrected][1] if corrected else ""),
                "",
                "| model / strategy | seeds | test bal. acc. | "
                + (f"{DECISION_KEYS[corrected][0]} | " if corrected else "")
                + "test macro-F1 | test MCC | noisy labels remaining | relabel precision |",
                "|---|---|---|" + ("---|" if corrected else "") + "---|---|---|---|",
            ]

            for method in ("clean_ceiling", "cross_entropy"):
                if ref.get(method):
                    rs = ref[method]
                    lines.append(
                        f"| {METHOD_LABELS[method]} | {len(rs)} | {_score_cells(rs, 'test', corrected)} | "
                        f"{fmt([_get(r, 'test', 'macro_f1') for r in rs])} | "
                        f"{fmt([_get(r, 'test', 'mcc') for r in rs])} | – | – |"
                    )
            by_seed = {r["seed"]: r for r in rs_frac}
            lines.append(
                f"| phase 1 only ({start_label}, no expert) | {len(by_seed)} | "
                f"{_score_cells(list(by_seed.values()), 'phase1', corrected)} | "
                f"{fmt([_get(r, 'phase1', 'macro_f1') for r in by_seed.values()])} | "
                f"{fmt([_get(r, 'phase1', 'mcc') for r in by_seed.values()])} | "
                f"{fmt([r['phase1_noisy_remaining'] for r in by_seed.values()], '.1f')} | – |"
            )
            for strat in STRATEGY_LABELS:
                rs = [r for r in rs_frac if r["strategy"] == strat]
                if not rs:
                    continue
                lines.append(
                    f"| {STRATEGY_LABELS[strat]} | {len(rs)} | {_score_cells(rs, 'test', corrected)} | "
                    f"{fmt([_get(r, 'test', 'macro_f1') for r in rs])} | "
                    f"{fmt([_get(r, 'test', 'mcc') for r in rs])} | "
                    f"{fmt([r['noisy_remaining'] for r in rs], '.1f')} | "
                    f"{fmt([r['relabel_precision'] for r in rs], '.2f')} |"
                )
            lines.append("")
            figure_name = (dataset if start == "ours" else f"{dataset} audit") + (
                "" if device == "cpu" else " gpu")
            png = cleaning_figure(figure_name, kind, rate, frac, rs_frac)
            if png:
                figures.append(png)
                lines += [f"![cleaning curves, {dataset}, {frac:.0%}](results/{png})", ""]
    return lines


def list_cost_lines(p1: list[dict]) -> list[str]:
    """(b) again, from the quality runs: our phase-1 fit vs cleanlab's k-fold CV, same net and epochs."""
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in p1:
        groups[(r["dataset"], r["noise_kind"], r["noise_rate"], r["epochs"])][r["method"]].append(r)
    rows = []
    for (dataset, kind, rate, epochs), by in sorted(groups.items(), key=_group_order):
        ours, cl = by.get("ours"), by.get("cleanlab_find_label_issues")
        if not ours or not cl:
            continue
        t_ours = mean_std([r["fit_seconds"] for r in ours])[0]
        t_cl = mean_std([r["fit_seconds"] for r in cl])[0]
        rows.append(
            f"| {dataset}, {kind} {rate:g} | {epochs} | {len(ours)} | {t_ours:.0f} s | {t_cl:.0f} s | "
            f"{t_cl / t_ours:.2f}× | {fmt([_get(r, 'selection', 'flag_precision') for r in ours], '.2f')} | "
            f"{fmt([_get(r, 'selection', 'flag_precision') for r in cl], '.2f')} |"
        )
    if not rows:
        return []
    return [
        "### Time to a relabel list, from the quality runs", "",
        "Our phase 1 (one co-teaching fit, two networks) against cleanlab's 5-fold cross-validation "
        "(five fits of one network on 80% of the data) + `find_label_issues`, same network, recipe and "
        "epochs; wall time on the shared CPU, mean over seeds; flagged precision = share of the samples "
        "each method puts in its noisy list whose label is wrong.", "",
        "| data | epochs | seeds | ours | cleanlab | cleanlab / ours | ours flagged precision | "
        "cleanlab flagged precision |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
    ]


CPU_CLOCK_NOTE = ("Wall time is what a user waits; on this shared machine it swings up to 2× between "
                  "repeats, so the process-CPU-time ratios (one torch thread) are the ones to trust.")
GPU_CLOCK_NOTE = ("On the GPU only wall time is shown: the process CPU time there includes the host "
                  "waiting on the device.")


def speed_tables(speeds: list[dict]) -> list[str]:
    lines: list[str] = []
    for s in speeds:
        machine = s["header"]["machine"]
        where = machine.get("gpu") or f"CPU, {machine['torch_threads']} torch thread(s), " \
            f"{machine['cpu_count']} cores shared with other jobs"
        lines += [f"### `{s['file']}` — {where}", "", f"Command: `{s['header']['command']}`", ""]
        rows_a, rows_b, rows_d, notes_a = [], [], [], []
        on_gpu = bool(machine.get("gpu"))
        if on_gpu:
            lines += [f"Run by `bash benchmarks/gpu_check.sh` on a lent {machine['gpu']} "
                      f"(python {s['header']['versions']['python']}, torch "
                      f"{s['header']['versions']['torch']}); the machine ran nothing else.", ""]
        for name, entry in s["datasets"].items():
            if "epoch_time" in entry:
                et = entry["epoch_time"]
                if et.get("method"):
                    notes_a.append(f"{name}: {et['method']}")
                for clock, sec_key, ratio_key in (("wall", "epoch_seconds", "ratio_to_loss"),
                                                  ("CPU", "epoch_cpu_seconds", "cpu_ratio_to_loss")):
                    # on a GPU the process CPU time includes waiting on the device: wall time only
                    if sec_key not in et or (on_gpu and clock == "CPU"):
                        continue
                    sec, ratio = et[sec_key], et[ratio_key]
                    rows_a.append(
                        f"| {name} ({entry['n_train']} × {'×'.join(map(str, entry['input_shape']))}) | "
                        f"{entry['epochs']} | {clock} | " + " | ".join(
                            f"{sec[k]:.3f} s ({ratio[k]:.2f}×)" for k in sec) + " |")
            if "ranked_list" in entry:
                rl = entry["ranked_list"]
                o, c = rl["ours_list"], rl["cleanlab_list"]
                rows_b.append(
                    f"| {name} | {entry['epochs']} | {rl['ours_seconds']:.1f} s | "
                    f"{rl['cleanlab_seconds']:.1f} s | {rl['ratio_cleanlab_to_ours']:.2f}× | "
                    f"{o['length']} / {o['precision']:.2f} / {o['precision_top_5pct']:.2f} / "
                    f"{o['precision_top_10pct']:.2f} | {c['length']} / {c['precision']:.2f} / "
                    f"{c['precision_top_5pct']:.2f} / {c['precision_top_10pct']:.2f} | "
                    f"{rl['true_noise_rate']:.2f} |")
            if "vog_memory" in entry:
                for dtype, m in entry["vog_memory"].items():
                    rows_d.append(
                        f"| {name} | {dtype} | {m['window']} × {m['dim']} | "
                        f"{m['vog_bytes_per_sample']:.0f} B | {m['formula_bytes_per_sample']:.0f} B | "
                        f"{m['all_per_sample_state_bytes_per_sample']:.0f} B |")
        if rows_a:
            lines += ["(a) Median epoch time (first epoch excluded) and ratio to loss-only co-teaching "
                      "(no VoG tracked), same data, seed and epochs:", "",
                      "| data | epochs | clock | loss only | loss+VoG (closed form) | "
                      "loss+VoG (checkpoint pass) |",
                      "|---|---|---|---|---|---|", *rows_a, "",
                      *(["Measured by " + "; ".join(notes_a) + ".", ""] if notes_a else []),
                      (GPU_CLOCK_NOTE if on_gpu else CPU_CLOCK_NOTE) + " With the interleaved measurement "
                      "a ratio is the median of per-round ratios, so it can differ from the ratio of the "
                      "median epoch times shown beside it.",
                      ""]
        if rows_b:
            lines += ["(b) Wall time to a ranked relabel list, same network and epochs; list length / "
                      "precision (share of listed labels that are wrong) / precision of the top 5% / "
                      "top 10% of the training set:", "",
                      "| data | epochs | ours (phase 1 + VoG ranking) | cleanlab (5-fold CV + "
                      "find_label_issues) | cleanlab / ours | ours: len / prec / @5% / @10% | "
                      "cleanlab: len / prec / @5% / @10% | true noise rate |",
                      "|---|---|---|---|---|---|---|---|", *rows_b, ""]
        if "query_latency" in s:
            q = s["query_latency"]
            lines += [f"(c) Query latency, pick {q['k']:,} from a pool of {q['pool']:,} with precomputed "
                      "model outputs (`benchmarks/query_latency.py`):", "",
                      "| strategy | median s | best s |", "|---|---|---|"]
            for name, v in q["median_seconds"].items():
                lines.append(f"| {name} | {v['median_s']:.3f} | {v['best_s']:.3f} |")
            if q.get("coreset_median_s") is not None:
                lines.append(f"| core-set (1,000 centres, separate pool) | {q['coreset_median_s']:.2f} | |")
            lines.append("")
        if rows_d:
            lines += ["(d) VoG state per training sample, measured from the fitted model's buffers "
                      "(both networks; ring buffer + counters + current VoG values) against the formula "
                      "2 × K × (D+1) × bytes; last column: all per-sample state of the run:", "",
                      "| data | dtype | K × (D+1) | measured VoG state | formula | all per-sample state |",
                      "|---|---|---|---|---|---|", *rows_d, ""]
    return lines


# ------------------------------------------------------------------------------------ figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def retention_figure(dataset, kind, rate, epochs, by_method, counts) -> str | None:
    methods = [m for m in METHOD_ORDER if by_method.get(m) and _get(by_method[m][0], "selection")
               and m != "cross_entropy"]
    if not methods:
        return None
    plt = _plt()
    n_classes = len(counts)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * n_classes) + 3, 3.6))
    for i, m in enumerate(methods):
        means = [mean_std([_get(r, "selection", "clean_retention", c) for r in by_method[m]])[0]
                 for c in range(n_classes)]
        stds = [mean_std([_get(r, "selection", "clean_retention", c) for r in by_method[m]])[1]
                for c in range(n_classes)]
        ax.bar(np.arange(n_classes) + (i - len(methods) / 2 + 0.5) * width, means, width, yerr=stds,
               label=METHOD_LABELS[m].replace("**", ""), capsize=1.5)
    ax.set_xticks(np.arange(n_classes), [f"{c}\n(n={n})" for c, n in enumerate(counts)])
    ax.set_ylabel("clean retention")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{dataset}, {kind} {rate:g}: share of each class's clean samples kept")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    name = _file_label(f"retention_{dataset}_{kind}{rate:g}_e{epochs}") + ".png"
    fig.savefig(RESULTS_DIR / name, dpi=110)
    plt.close(fig)
    return name


def cleaning_figure(dataset, kind, rate, frac, records) -> str | None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.6))
    for strat, label in STRATEGY_LABELS.items():
        rs = [r for r in records if r["strategy"] == strat]
        if not rs:
            continue
        spent = [p["labels_spent"] for p in rs[0]["curve"]]
        acc = np.nanmean([[np.nan if p["test_balanced_accuracy"] is None else p["test_balanced_accuracy"]
                           for p in r["curve"]] for r in rs], axis=0)
        noisy = np.nanmean([[p["noisy_remaining"] for p in r["curve"]] for r in rs], axis=0)
        style = "-" if strat.startswith("cb_") else "--"
        ax1.plot(spent, acc, style, marker="o", ms=3, label=label)
        ax2.plot(spent, noisy, style, marker="o", ms=3, label=label)
    ax1.set_xlabel("labels spent")
    ax1.set_ylabel("test balanced accuracy")
    ax2.set_xlabel("labels spent")
    ax2.set_ylabel("noisy labels remaining")
    ax2.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{dataset}, {kind} {rate:g}, budget {frac:.0%} (mean over seeds)")
    fig.tight_layout()
    name = _file_label(f"cleaning_{dataset}_{kind}{rate:g}_b{round(frac * 100)}") + ".png"
    fig.savefig(RESULTS_DIR / name, dpi=110)
    plt.close(fig)
    return name


# ------------------------------------------------------------------------------------ budget


def cost_lines(p1: list[dict], p2: list[dict]) -> list[str]:
    """Measured seconds per training epoch per method -> estimated cost of the full grid."""
    per_epoch: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in p1:
        per_epoch[r["dataset"]][r["method"]].append(r["fit_seconds"] / r["epochs"])
    if not per_epoch:
        return []
    lines = ["| data | measured s per epoch of training, summed over the default phase-1 methods | "
             "full grid estimate (40 epochs × noise settings × 3 seeds) |", "|---|---|---|"]
    total = 0.0
    required = [m for m in DEFAULT_METHODS if m != "clean_ceiling_pair"]  # the pair came later
    for dataset, methods in sorted(per_epoch.items()):
        if any(m not in methods for m in required):
            continue  # an early, partial run: nothing to scale
        if " [" not in dataset and any(d.startswith(dataset + " [") for d in per_epoch):
            continue  # superseded by the same data set's run with its own recipe
        s = sum(float(np.mean(v)) for m, v in methods.items() if m not in OUR_VARIANTS[1:])
        n_noise = 4 if _base(dataset) == "RetinaMNIST" else 5  # symmetric 0.8 is uninformative with 5 classes
        est = s * 40 * n_noise * 3
        total += est
        lines.append(f"| {dataset} | {s:.1f} s | {est / 3600:.1f} h ({n_noise} noise settings) |")
    lines += ["", f"Phase 1 total for the data sets measured: about **{total / 3600:.1f} h** on this shared "
              "2-core CPU (wall times under load, per-epoch costs measured at the epochs each run used and "
              "scaled to 40; runs that lack a default method are left out). "]
    on_cpu = [r for r in p2 if r["device"] == "cpu"]
    if on_cpu:
        spend = float(np.mean([r["phase2_seconds"] for r in on_cpu]))
        lines[-1] += (f"Phase 2 adds about {spend:.0f} s per strategy × budget × seed on average "
                      "(recalibration dominates; it scales with the clean-set size and the "
                      "recalibration epochs).")
    return lines


FULL_DATASETS = {"digits-LT": 5, "RetinaMNIST": 4, "HAM10000-8x8": 5}
FULL_QUALITY = (
    ".venv/bin/python benchmarks/quality.py --datasets digits retinamnist hmnist "
    "--noise symmetric:0.2 symmetric:0.4 symmetric:0.6 symmetric:0.8 pair:0.3 --seeds 0 1 2 "
    "--epochs 40 --phase2-datasets digits-LT RetinaMNIST HAM10000-8x8 --tag full"
)
FULL_SPEED = (
    ".venv/bin/python benchmarks/speed.py --datasets digits hmnist retinamnist --epochs 20 --repeats 3"
)


def _not_run(p1: list[dict], p2: list[dict]) -> list[str]:
    """Per data set of the full grid: the noise settings, seeds and phase-2 runs still missing."""
    notes = []
    for base, n_settings in FULL_DATASETS.items():
        seeds: dict[tuple, set[int]] = defaultdict(set)
        for r in p1:
            if _base(r["dataset"]) == base:
                seeds[(r["noise_kind"], r["noise_rate"])].add(r["seed"])
        few_seeds = sum(len(s) < 3 for s in seeds.values())
        q = [r for r in p2 if _base(r["dataset"]) == base]
        budgets = sorted({r["budget_fraction"] for r in q})
        notes.append(
            f"{base}: {n_settings - len(seeds)} of {n_settings} noise settings not run, "
            f"{few_seeds} run with fewer than 3 seeds, phase 2 "
            + (f"at budgets {budgets} for {len({(r['noise_kind'], r['noise_rate']) for r in q})} setting(s)"
               if q else "not run")
        )
    return notes


def scope_lines(p1: list[dict], p2: list[dict]) -> list[str]:
    """What ran (from the records themselves) and what the full grid adds."""
    lines = [
        "| data | noise | epochs (ramp) | phase-1 methods | seeds | phase-2 strategies × budgets × seeds |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in p1:
        groups[(r["dataset"], r["noise_kind"], r["noise_rate"], r["epochs"], r["num_gradual"])].append(r)
    for (dataset, kind, rate, epochs, ramp), rs in sorted(groups.items(), key=_group_order):
        methods = sorted({r["method"] for r in rs}, key=METHOD_ORDER.index)
        seeds = sorted({r["seed"] for r in rs})
        incomplete = [m for m in methods if len({r["seed"] for r in rs if r["method"] == m}) < len(seeds)]
        q = [r for r in p2 if (r["dataset"], r["noise_kind"], r["noise_rate"], r["epochs"]) ==
             (dataset, kind, rate, epochs)]
        p2_text = (f"{len({r['strategy'] for r in q})} × {sorted({r['budget_fraction'] for r in q})} × "
                   f"{len({r['seed'] for r in q})}" if q else "not run")
        lines.append(
            f"| {dataset} | {kind} {rate:g} | {epochs} ({ramp}) | {len(methods)}"
            + (f" (fewer seeds: {', '.join(incomplete)})" if incomplete else "")
            + f" | {seeds} | {p2_text} |"
        )
    lines += [
        "",
        "**Not run here** (2 shared CPU cores): " + "; ".join(_not_run(p1, p2))
        + ". RetinaMNIST has 4 settings: symmetric noise at 0.8 = (C − 1)/C with its 5 classes leaves "
        "the labels uninformative, and `quality.py` skips it. Commands for the full runs:",
        "",
        f"    {FULL_QUALITY}",
        f"    {FULL_SPEED}",
        "",
        "Quick checks (each <= 10 min on 2 cores): `.venv/bin/python benchmarks/quality.py --quick` and "
        "`.venv/bin/python benchmarks/speed.py --quick`. Then `.venv/bin/python benchmarks/make_results.py`.",
    ]
    return lines


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--include-quick", action="store_true")
    args = parser.parse_args(argv)
    files, p1, p2, speeds = load(args.include_quick)
    figures: list[str] = []
    lines = [
        "# Benchmark results",
        "",
        "GENERATED by `benchmarks/make_results.py` from `benchmarks/results/*.json` — do not edit by "
        "hand; the prose under *Reading the numbers* comes from `benchmarks/results/commentary.md`.",
        "",
    ]
    commentary = RESULTS_DIR / "commentary.md"
    if commentary.is_file():
        lines += ["## Reading the numbers", "", commentary.read_text().strip(), ""]
    lines += ["## What ran", "", *scope_lines(p1, p2), ""]
    lines += ["## Table 1 — phase 1: who keeps which samples", ""]
    lines += phase1_tables(p1, figures) or ["(no phase-1 results yet)", ""]
    lines += ["## Table 2 — after phase 2 (active label cleaning)", ""]
    lines += phase2_tables(p1, p2, figures) or ["(no phase-2 results yet)", ""]
    lines += ["## Speed", ""]
    lines += speed_tables(speeds) or ["(no speed results yet)", ""]
    lines += list_cost_lines(p1)
    lines += ["## What the full grid would cost", "", *cost_lines(p1, p2), ""]
    lines += ["## Provenance: the exact commands and package versions", ""]
    for f in files:
        h = f["header"]
        v = h["versions"]
        lines += [
            f"- `{f['file']}`: `{h['command']}`"
            + "".join(f"; earlier runs into the same file: `{c}`" for c in f["previous_commands"]),
            *([f"  - {f['carried_over']}"] if f.get("carried_over") else []),
            f"  - package code exported from commit {str(h.get('code_commit'))[:10]}"
            if h.get("code_commit") else
            f"  - package code imported from {_get(h, 'modal_noisy_code', 'package_dir')} (a copy of the "
            "working tree while other helpers were editing it; identified by the sha256 below)",
            f"  - git {str(h.get('git_commit'))[:10]} (tracked files modified: "
            f"{h.get('git_dirty_tracked_files')}), modal_noisy code sha256 "
            f"{_get(h, 'modal_noisy_code', 'sha256')}; {h['machine']['platform']}, "
            f"{h['machine']['cpu_count']} CPUs, device {h['machine']['device']}; started {h['started']}",
            "  - " + ", ".join(f"{k} {val}" for k, val in v.items()),
        ]
    out = BENCH_DIR / "RESULTS.md"
    out.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {out} and {len(figures)} figures")
    return out


if __name__ == "__main__":
    main()
