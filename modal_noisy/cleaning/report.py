"""The report of a cleaning run: phase 1, then one record per round; tables, JSON and plots.

:class:`CleaningReport` is what :class:`~modal_noisy.cleaning.ActiveLabelCleaner` leaves in ``report_``:
``to_frame``, ``to_markdown``, ``to_json`` / ``from_json``, ``plot`` and ``to_html`` (one shareable
file, :mod:`~modal_noisy.cleaning.html_report`). The metrics it records come
from :mod:`modal_noisy.metrics`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from modal_noisy.cleaning.html_report import write_html
from modal_noisy.jsonable import to_jsonable

__all__ = ["CleaningReport"]

# round fields in table order; the rest of a round's keys follow in their own order
_ROUND_FIELDS = (
    "round",
    "labels_spent",
    "n_queried",
    "relabel_precision",
    "n_changed",
    "noisy_remaining",
    "balanced_accuracy",
    "macro_f1",
    "auroc",
    "mcc",
    "per_class_recall",
    "time_s",
)
_METRIC_KEYS = ("balanced_accuracy", "macro_f1", "auroc", "mcc", "accuracy")
# (column, header, format) of the terminal table
_TABLE_COLUMNS = (
    ("round", "round", "d"),
    ("labels_spent", "labels", "d"),
    ("relabel_precision", "relabel prec", ".3f"),
    ("n_changed", "changed", "d"),
    ("noisy_remaining", "noisy left", "d"),
    ("balanced_accuracy", "bal acc", ".3f"),
    # whether keep_best adopted the round's recalibration (its scores are the candidate's either way)
    ("model_kept", "adopted", "yes/no"),
    ("macro_f1", "macro F1", ".3f"),
    ("auroc", "AUROC", ".3f"),
    ("mcc", "MCC", ".3f"),
    ("min_recall", "min recall", ".3f"),
    ("time_s", "time s", ".1f"),
)


# key suffixes whose null in JSON means NaN (float fields, also prefixed: "test_auroc");
# any other null reads back as None
_FLOAT_KEYS = (
    *_METRIC_KEYS,
    "precision",  # also relabel_precision
    "recall",  # also per_class_recall
    "clean_retention",
    "min_retention",
    "selected_fraction",
    "noise_rate_estimate",
    "class_noise_rate_estimates",
    "time_s",
)


def _restore_nan(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _restore_nan(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_nan(v, key) for v in value]
    if value is None and key is not None and key.endswith(_FLOAT_KEYS):
        return math.nan  # also for prefixed copies such as "test_auroc"
    return value


def _flatten(record: dict[str, Any], class_names: Sequence[str], prefix: str = "") -> dict[str, Any]:
    """One table row: nested dicts flattened with a ``<key>_`` prefix, per-class recall expanded.

    ``per_class_recall`` (also ``test_per_class_recall`` or ``{"test": {"per_class_recall": ...}}``)
    becomes one ``[<prefix>]recall_<class name>`` column per class.
    """
    row: dict[str, Any] = {}
    for key, value in record.items():
        if str(key).endswith("per_class_recall") and isinstance(value, (list, tuple)):
            head = prefix + str(key)[: -len("per_class_recall")]
            for k, recall in enumerate(value):
                name = class_names[k] if k < len(class_names) else str(k)
                row[f"{head}recall_{name}"] = np.nan if recall is None else recall
        elif isinstance(value, dict):
            row.update(_flatten(value, class_names, prefix=f"{prefix}{key}_"))
        else:
            row[prefix + str(key)] = value
    return row


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if spec == "yes/no":
        return "yes" if value else "no"
    try:
        if spec == "d":
            return str(int(value))
        return format(float(value), spec)
    except (TypeError, ValueError):
        return str(value)


@dataclass
class CleaningReport:
    """Results of a label-cleaning run: phase 1, then one record per cleaning round.

    Parameters
    ----------
    phase1 : dict
        Phase-1 results. Recognised keys: ``selection`` (a :func:`selection_metrics` dict, when the
        truth is known), ``noise_rate_estimate`` and ``class_noise_rate_estimates`` (per given-label
        class), ``noisy_remaining`` (wrong labels in the given label vector, when known), ``val``
        and ``test`` (:func:`classification_metrics` of the phase-1 model), ``baseline`` (e.g.
        ``{"val": ..., "test": ...}`` of a plain cross-entropy model). Other keys are kept.
    rounds : list of dict
        One record per cleaning round with the keys ``round`` (1, 2, ...), ``labels_spent``
        (cumulative), ``n_queried``, ``relabel_precision``, ``n_changed``, ``noisy_remaining`` (None
        without the truth), ``balanced_accuracy``, ``macro_f1``, ``auroc``, ``mcc``,
        ``per_class_recall``, ``time_s``; extra keys are kept (a nested dict such as
        ``{"test": {...}}`` becomes ``test_<key>`` columns of :meth:`to_frame`).
    settings : dict
        The run's settings.
    class_names : list of str, optional
        Names of the classes (columns ``recall_<name>``); default ``"0"``, ``"1"``, ...
    eval_split : str, default="val"
        Which phase-1 metrics (``phase1[eval_split]``) the round records are comparable with; they
        fill round 0 of :meth:`to_frame` (falling back to the other split).
    """

    phase1: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None
    eval_split: str = "val"

    # ------------------------------------------------------------------ tables
    @property
    def n_classes(self) -> int | None:
        if self.class_names is not None:
            return len(self.class_names)
        for record in [self._round_zero(), *self.rounds]:
            recall = record.get("per_class_recall")
            if isinstance(recall, (list, tuple)):
                return len(recall)
        return None

    def _names(self) -> list[str]:
        if self.class_names is not None:
            return [str(name) for name in self.class_names]
        return [str(k) for k in range(self.n_classes or 0)]

    def _round_zero(self) -> dict[str, Any]:
        """The state after phase 1 as a round record (round 0, nothing spent)."""
        other = "test" if self.eval_split != "test" else "val"
        metrics = self.phase1.get(self.eval_split) or self.phase1.get(other) or {}
        record: dict[str, Any] = {
            "round": 0,
            "labels_spent": 0,
            "n_queried": 0,
            "relabel_precision": math.nan,
            "n_changed": 0,
            "noisy_remaining": self.phase1.get("noisy_remaining"),
        }
        for key in (*_METRIC_KEYS, "per_class_recall"):
            if key in metrics:
                record[key] = metrics[key]
        record["time_s"] = self.phase1.get("time_s", math.nan)
        return record

    def _records(self) -> list[dict[str, Any]]:
        has_zero = any(record.get("round") == 0 for record in self.rounds)
        return list(self.rounds) if has_zero else [self._round_zero(), *self.rounds]

    def to_frame(self) -> pd.DataFrame:
        """One row per round (round 0 = after phase 1), per-class recall as ``recall_<class>``."""
        names = self._names()
        rows = [_flatten(record, names) for record in self._records()]
        frame = pd.DataFrame(rows)
        first = [c for c in _ROUND_FIELDS if c in frame.columns]
        rest = [c for c in frame.columns if c not in first]
        frame = frame[first + rest]
        for column in ("round", "labels_spent", "n_queried", "n_changed"):
            if column in frame and frame[column].notna().all():
                frame[column] = frame[column].astype(np.int64)
        if "noisy_remaining" in frame and frame["noisy_remaining"].notna().all():
            frame["noisy_remaining"] = frame["noisy_remaining"].astype(np.int64)
        return frame.set_index("round")

    def _summary_lines(self) -> list[str]:
        lines = []
        p1 = self.phase1
        selection = p1.get("selection") or {}
        parts = []
        if selection:
            parts.append(
                f"clean-set precision {_fmt(selection.get('precision'), '.3f')}, "
                f"recall {_fmt(selection.get('recall'), '.3f')}, "
                f"min class retention {_fmt(selection.get('min_retention'), '.3f')}"
            )
        if p1.get("noise_rate_estimate") is not None:
            parts.append(f"noise rate estimate {_fmt(p1['noise_rate_estimate'], '.3f')}")
        if p1.get("class_noise_rate_estimates"):
            rates = " ".join(_fmt(r, ".2f") for r in p1["class_noise_rate_estimates"])
            parts.append(f"per class {rates}")
        audit = p1.get("audit") or {}
        if audit:
            parts.append(
                f"audit: {audit['n_changed']} of {audit['n_audited']} labels wrong "
                f"({_fmt(audit['noise_rate'], '.3f')}, {audit['confidence']:.0%} interval "
                f"{_fmt(audit['low'], '.3f')}-{_fmt(audit['high'], '.3f')})"
            )
        baseline = p1.get("baseline") or {}
        base = baseline.get(self.eval_split) if isinstance(baseline, dict) else None
        if isinstance(base, dict) and "balanced_accuracy" in base:
            parts.append(
                f"plain cross-entropy bal acc {_fmt(base['balanced_accuracy'], '.3f')} ({self.eval_split})"
            )
        if parts:
            lines.append("phase 1: " + "; ".join(parts))
        return lines

    def to_markdown(self) -> str:
        """The per-round table as aligned Markdown (readable in a terminal; no extra packages)."""
        records = self._records()
        header = [title for _, title, _ in _TABLE_COLUMNS]
        body = []
        for record in records:
            recall = record.get("per_class_recall")
            values = dict(record)
            if isinstance(recall, (list, tuple)):
                finite = [r for r in recall if r is not None and not math.isnan(r)]
                values["min_recall"] = min(finite) if finite else math.nan
            body.append([_fmt(values.get(key), spec) for key, _, spec in _TABLE_COLUMNS])
        keep = [
            j
            for j, (key, _, _) in enumerate(_TABLE_COLUMNS)
            if key == "round" or any(row[j] != "-" for row in body)
        ]
        header = [header[j] for j in keep]
        body = [[row[j] for j in keep] for row in body]
        widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
        table = [line(header), rule, *(line(row) for row in body)]
        return "\n".join([*self._summary_lines(), *table])

    def __str__(self) -> str:
        return self.to_markdown()

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (numpy values converted, NaN as None)."""
        return to_jsonable(
            {
                "phase1": self.phase1,
                "rounds": self.rounds,
                "settings": self.settings,
                "class_names": self.class_names,
                "eval_split": self.eval_split,
            }
        )

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """The report as strict JSON (NaN written as ``null``); also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> CleaningReport:
        """Read a report written by :meth:`to_json`, from a JSON string or a file path.

        JSON has no NaN: a ``null`` in a float metric field (``auroc``, ``relabel_precision``,
        ``per_class_recall`` entries, ...) reads back as NaN, any other ``null`` as None.
        """
        if isinstance(source, str) and source.lstrip().startswith("{"):
            text = source
        else:
            text = Path(source).read_text(encoding="utf-8")
        data = json.loads(text)
        if not isinstance(data, dict) or "rounds" not in data:
            raise ValueError("source is not a CleaningReport JSON (no 'rounds' key)")
        data = {
            key: data[key]
            for key in ("phase1", "rounds", "settings", "class_names", "eval_split")
            if key in data
        }
        for key in ("phase1", "rounds"):
            if key in data:
                data[key] = _restore_nan(data[key])
        return cls(**data)

    # ------------------------------------------------------------------ HTML
    def to_html(
        self,
        path: str | os.PathLike[str],
        *,
        oracle: Any = None,
        title: str = "modal-noisy: label cleaning report",
    ) -> Path:
        """Write the report as one self-contained HTML file to share (charts inline, no links out).

        Run settings, phase-1 clean retention per class, the cleaning curve, the per-round table and,
        given the run's :class:`~modal_noisy.cleaning.file_oracle.FileOracle` as ``oracle``, each
        round's queued images with their given and answered labels
        (:func:`modal_noisy.cleaning.html_report.write_html`). Returns ``path``.
        """
        return write_html(self, path, oracle=oracle, title=title)

    def rounds_in_use(self) -> tuple[np.ndarray, np.ndarray]:
        """Per round (round 0 first): the index of the round whose model is in use after it, and
        whether the round's recalibration was adopted (round 0 and records without ``model_kept``: yes).

        A round whose candidate ``keep_best`` refused keeps the model of the last round adopted.
        """
        frame = self.to_frame()
        if "model_kept" in frame:
            kept = frame["model_kept"].map(lambda value: value is not False).to_numpy(dtype=bool)
        else:
            kept = np.ones(len(frame), dtype=bool)
        return np.maximum.accumulate(np.where(kept, np.arange(len(frame)), 0)), kept

    def accuracy_in_use(self) -> tuple[np.ndarray, np.ndarray]:
        """Per round (round 0 first): the balanced accuracy of the model in use after it, and whether
        the round's recalibration was adopted (see :meth:`rounds_in_use`)."""
        in_use, kept = self.rounds_in_use()
        score = self.to_frame()["balanced_accuracy"].to_numpy(dtype=float)
        return score[in_use], kept

    # ------------------------------------------------------------------ plots
    def plot(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write ``cleaning_curve.png`` and, when phase-1 retention is known, ``class_retention.png``.

        ``cleaning_curve.png``: balanced accuracy of the model in use (left axis; a round's
        recalibration that ``keep_best`` did not adopt is a hollow dot) and noisy labels remaining
        (right axis, when known) against labels spent. ``class_retention.png``: per-class clean
        retention of the phase-1 selection, classes from largest to smallest when their sizes are known.

        Returns
        -------
        list of Path
            The files written.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []

        frame = self.to_frame()
        spent = frame["labels_spent"].to_numpy(dtype=float) if "labels_spent" in frame else None
        if spent is not None and "balanced_accuracy" in frame:
            # a Figure without pyplot: no global state, no backend switch, freed with the object
            fig = Figure(figsize=(6.4, 4.0), layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            score = frame["balanced_accuracy"].to_numpy(dtype=float)
            in_use, kept = self.accuracy_in_use()
            # the line follows the model in use; a recalibration keep_best did not adopt is a hollow dot
            ax.plot(spent, in_use, "o-", color="C0", label="model in use")
            if not kept.all():
                ax.plot(spent[~kept], score[~kept], "o", color="C0", markerfacecolor="none",
                        label="recalibration not adopted")
                ax.legend(loc="center right", fontsize=8)
            ax.set_xlabel("labels spent (expert answers)")
            ax.set_ylabel("balanced accuracy", color="C0")
            ax.tick_params(axis="y", colors="C0")
            ax.grid(alpha=0.3)
            if "noisy_remaining" in frame and frame["noisy_remaining"].notna().any():
                ax2 = ax.twinx()
                ax2.plot(spent, frame["noisy_remaining"].astype(float), "s--", color="C3")
                ax2.set_ylabel("noisy labels remaining", color="C3")
                ax2.tick_params(axis="y", colors="C3")
            ax.set_title("Active label cleaning")
            path = directory / "cleaning_curve.png"
            fig.savefig(path, dpi=120)
            written.append(path)

        selection = self.phase1.get("selection") or {}
        retention = selection.get("clean_retention", self.phase1.get("clean_retention"))
        if retention:
            values = np.array([math.nan if r is None else r for r in retention], dtype=float)
            names = self._names() if self.class_names is not None else []
            names = names if len(names) == values.size else [str(k) for k in range(values.size)]
            counts = selection.get("class_counts", self.phase1.get("class_counts"))
            order = np.arange(values.size)
            if counts is not None and len(counts) == values.size:
                order = np.argsort(-np.asarray(counts), kind="stable")
            labels = [
                names[k] + (f"\n(n={counts[k]})" if counts is not None and len(counts) == values.size else "")
                for k in order
            ]
            fig = Figure(figsize=(max(4.0, 0.8 * values.size + 1.5), 3.8), layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            bars = ax.bar(range(values.size), np.nan_to_num(values[order]), color="C2")
            ax.bar_label(bars, ["n/a" if math.isnan(v) else f"{v:.2f}" for v in values[order]], fontsize=8)
            ax.set_xticks(range(values.size), labels, fontsize=8)
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("clean retention")
            ax.set_xlabel("class (largest first)" if counts is not None else "class")
            ax.set_title("Phase 1: share of each class's correct labels kept as clean")
            ax.grid(axis="y", alpha=0.3)
            path = directory / "class_retention.png"
            fig.savefig(path, dpi=120)
            written.append(path)
        return written
