"""A cleaning report as one self-contained HTML file, for people who will not open a CSV.

:func:`write_html` (``CleaningReport.to_html``) writes a single file with no external resource: the
charts are inline SVG drawn here, the images base64 PNGs, the style inline. It shows the run's
settings, the phase-1 selection (per-class clean retention as a bar chart), the cleaning curve
(balanced accuracy and, where the truth is known, wrong labels left against labels spent), the
per-round table and, for a :class:`~modal_noisy.cleaning.file_oracle.FileOracle`, each round's queued
images with their given and answered labels.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modal_noisy._files import write_text_atomic

# The report (report.py) calls this module, so its type is not imported here, not even for type
# checking (an import cycle): ``report`` is a CleaningReport, ``oracle`` a FileOracle, duck-typed.
CleaningReport = Any
FileOracle = Any

__all__ = ["ACCURACY_COLOR", "RETENTION_COLOR", "WRONG_LEFT_COLOR", "write_html"]

#: Fill of the retention bars (matplotlib's C2, as in ``class_retention.png``).
RETENTION_COLOR = "#2ca02c"
#: Balanced-accuracy line of the cleaning curve (C0).
ACCURACY_COLOR = "#1f77b4"
#: Wrong-labels-left line of the cleaning curve (C3).
WRONG_LEFT_COLOR = "#d62728"

# (frame column, header, format) of the per-round table; columns the report lacks are left out
_TABLE = (
    ("labels_spent", "labels spent", "d"),
    ("n_queried", "queried", "d"),
    ("relabel_precision", "relabel precision", ".3f"),
    ("n_changed", "changed", "d"),
    ("noisy_remaining", "wrong labels left", "d"),
    ("balanced_accuracy", "balanced acc", ".3f"),
    ("macro_f1", "macro F1", ".3f"),
    ("auroc", "AUROC", ".3f"),
    ("mcc", "MCC", ".3f"),
    ("time_s", "time s", ".1f"),
)
_STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.key { text-align: left; font-family: monospace; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; }
.card { border: 1px solid #ccc; padding: 4px; width: 104px; font-size: 11px; text-align: center; }
.card img { width: 96px; height: 96px; image-rendering: pixelated; }
.card.changed { border: 2px solid #d62728; }
.note { color: #666; font-size: 13px; }
"""


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    try:
        return str(int(value)) if spec == "d" else format(float(value), spec)
    except (TypeError, ValueError):
        return str(value)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


# ---------------------------------------------------------------------------------------- charts
def _tick_label(x: float, y: float, text: str) -> str:
    return f'<text x="{x}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{text}</text>'


def _bar_chart(values: Sequence[float], labels: Sequence[str], *, title: str) -> str:
    """Inline SVG bar chart of values in [0, 1], bar heights proportional to the value."""
    width_per_bar, left, top, plot_h, bottom = 70, 50, 30, 220, 50
    width = left + width_per_bar * len(values) + 20
    parts = [
        f'<svg width="{width}" height="{top + plot_h + bottom}" '
        f'role="img" aria-label="{_e(title)}">',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(_tick_label(left - 6, y, f"{tick:.2f}"))
    for k, (value, label) in enumerate(zip(values, labels, strict=True)):
        x = left + width_per_bar * k + 12
        finite = value is not None and not math.isnan(value)
        height = plot_h * min(max(value, 0.0), 1.0) if finite else 0.0
        parts.append(
            f'<rect x="{x}" y="{top + plot_h - height:.1f}" width="{width_per_bar - 24}" '
            f'height="{height:.1f}" fill="{RETENTION_COLOR}"><title>{_e(label)}: '
            f'{_fmt(value, ".3f")}</title></rect>'
        )
        parts.append(
            f'<text x="{x + (width_per_bar - 24) / 2}" y="{top + plot_h - height - 4:.1f}" font-size="11" '
            f'text-anchor="middle">{"n/a" if not finite else f"{value:.2f}"}</text>'
        )
        for line, text in enumerate(str(label).split("\n")):
            parts.append(
                f'<text x="{x + (width_per_bar - 24) / 2}" y="{top + plot_h + 16 + 13 * line}" '
                f'font-size="11" text-anchor="middle">{_e(text)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _line_chart(x: np.ndarray, left_y: np.ndarray, right_y: np.ndarray | None) -> str:
    """Inline SVG of balanced accuracy (left axis, 0-1) and wrong labels left (right axis)."""
    width, height, left, right, top, bottom = 720, 320, 60, 70, 30, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    span = float(x.max() - x.min()) if x.size and x.max() > x.min() else 1.0

    def px(v: float) -> float:
        return left + plot_w * (float(v) - float(x.min() if x.size else 0)) / span

    def polyline(values: np.ndarray, low: float, high: float, color: str, dash: str) -> list[str]:
        scale = (high - low) or 1.0
        points = [
            (px(xv), top + plot_h * (1 - (float(v) - low) / scale))
            for xv, v in zip(x, values, strict=True)
            if not math.isnan(float(v))
        ]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
        out = [f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="3" {dash}/>']
        out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{color}"/>' for a, b in points]
        return out

    parts = [
        f'<svg width="{width}" height="{height}" role="img" '
        'aria-label="cleaning curve">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
        f'<text x="{left + plot_w / 2}" y="{height - 10}" font-size="12" text-anchor="middle">'
        "labels spent (expert answers)</text>",
        f'<text x="{left}" y="18" font-size="13" fill="{ACCURACY_COLOR}">balanced accuracy</text>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(_tick_label(left - 6, y, f"{tick:.2f}"))
    for value in np.unique(x):
        parts.append(
            f'<text x="{px(value):.1f}" y="{top + plot_h + 16}" font-size="11" '
            f'text-anchor="middle">{int(value)}</text>'
        )
    parts += polyline(left_y, 0.0, 1.0, ACCURACY_COLOR, "")
    if right_y is not None:
        high = float(np.nanmax(right_y)) if np.isfinite(right_y).any() else 1.0
        high = high if high > 0 else 1.0
        parts.append(
            f'<text x="{width - right}" y="18" font-size="13" fill="{WRONG_LEFT_COLOR}" '
            'text-anchor="end">wrong labels left</text>'
        )
        for tick in (0.0, 0.5, 1.0):
            y = top + plot_h * (1 - tick)
            parts.append(
                f'<text x="{left + plot_w + 6}" y="{y + 4:.1f}" font-size="11">{high * tick:.0f}</text>'
            )
        parts += polyline(right_y, 0.0, high, WRONG_LEFT_COLOR, 'stroke-dasharray="8,4"')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------- sections
def _settings_section(report: CleaningReport) -> str:
    rows = []
    for key, value in sorted(report.settings.items()):
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append(f'<tr><td class="key">{_e(key)}</td><td class="key">{_e(text)}</td></tr>')
    p1 = report.phase1
    facts = [
        ("training samples", p1.get("n_samples"), "d"),
        ("kept as clean by phase 1", p1.get("n_selected_clean"), "d"),
        ("noise rate estimate", p1.get("noise_rate_estimate"), ".3f"),
        ("true noise rate", p1.get("true_noise_rate"), ".3f"),
    ]
    selection = p1.get("selection") or {}
    facts += [
        ("clean-set precision", selection.get("precision"), ".3f"),
        ("clean-set recall", selection.get("recall"), ".3f"),
        ("smallest class retention", selection.get("min_retention"), ".3f"),
    ]
    summary = "".join(
        f'<tr><td class="key">{_e(name)}</td><td>{_fmt(value, spec)}</td></tr>'
        for name, value, spec in facts
        if value is not None
    )
    body = f"<h2>Run settings</h2><table>{''.join(rows) or '<tr><td>none recorded</td></tr>'}</table>"
    if summary:
        body += f"<h2>Phase 1</h2><table>{summary}</table>"
    return body


def _retention_section(report: CleaningReport) -> str:
    selection = report.phase1.get("selection") or {}
    retention = selection.get("clean_retention", report.phase1.get("clean_retention"))
    if not retention:
        return (
            '<h2>Phase 1: clean retention per class</h2><p class="note">Not known: the truth of the '
            "labels was not given.</p>"
        )
    values = [math.nan if r is None else float(r) for r in retention]
    names = [str(n) for n in report.class_names] if report.class_names else []
    names = names if len(names) == len(values) else [str(k) for k in range(len(values))]
    counts = selection.get("class_counts", report.phase1.get("class_counts"))
    order = list(range(len(values)))
    title = "The share of each class's correct labels that phase 1 kept as clean"
    if counts is not None and len(counts) == len(values):
        order = [int(k) for k in np.argsort(-np.asarray(counts), kind="stable")]
        names = [f"{names[k]}\n(n={counts[k]})" for k in range(len(values))]
        title += " (largest class first)"
    chart = _bar_chart([values[k] for k in order], [names[k] for k in order], title=title)
    return (
        f'<h2>Phase 1: clean retention per class</h2><p class="note">{_e(title)}.</p>'
        f'<div id="retention">{chart}</div>'
    )


def _curve_section(report: CleaningReport) -> str:
    frame = report.to_frame()
    if "labels_spent" not in frame or "balanced_accuracy" not in frame:
        return ""
    spent = frame["labels_spent"].to_numpy(dtype=float)
    accuracy, kept = report.accuracy_in_use()
    wrong = None
    if "noisy_remaining" in frame and frame["noisy_remaining"].notna().any():
        wrong = frame["noisy_remaining"].to_numpy(dtype=float)
    chart = _line_chart(spent, accuracy, wrong)
    note = "" if wrong is not None else '<p class="note">Wrong labels left: not known without the truth.</p>'
    refused = frame.index[~kept].tolist()
    if refused:
        rounds = ", ".join(str(r) for r in refused)
        note += (f'<p class="note">Balanced accuracy of the model in use: the recalibration of round(s) '
                 f"{_e(rounds)} scored below it on the validation split and was not adopted.</p>")
    return f'<h2>Cleaning curve</h2><div id="curve">{chart}</div>{note}'


def _table_section(report: CleaningReport) -> str:
    frame = report.to_frame()
    columns = [(c, title, spec) for c, title, spec in _TABLE if c in frame and frame[c].notna().any()]
    head = "<tr><th>round</th>" + "".join(f"<th>{_e(title)}</th>" for _, title, _ in columns) + "</tr>"
    rows = [
        f"<tr><td>{int(index)}</td>"
        + "".join(f"<td>{_fmt(row[c], spec)}</td>" for c, _, spec in columns)
        + "</tr>"
        for index, row in frame.iterrows()
    ]
    return f'<h2>Rounds</h2><table id="rounds">{head}{"".join(rows)}</table>'


def _png_data_uri(image: np.ndarray) -> str:
    """An HxW or HxWx3 float image in [0, 1] as a base64 PNG ``data:`` URI."""
    pixels = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _answers_section(oracle: FileOracle) -> str:
    """Each exported round's queued images, with the label given and the expert's answer."""
    rounds = []
    for round_index in oracle.queued_rounds():
        positions, given = oracle.read_queue(round_index)
        try:
            found = oracle.find_answers(round_index)
            answers = oracle.read_answers(round_index, positions) if found else None
        except ValueError as error:  # an answers file that was rejected: say so, show the queue
            answers, status = None, f"answers rejected: {error}"
        else:
            status = "answered" if answers is not None else "awaiting the expert's answers"
        can_draw = oracle.images is not None or oracle.image_paths is not None
        cards = []
        for k, (position, label) in enumerate(zip(positions.tolist(), given.tolist(), strict=True)):
            answer = None if answers is None else int(answers[k])
            image = ""
            if can_draw:
                image = f'<img alt="#{position}" src="{_png_data_uri(oracle.thumbnail(position))}">'
            changed = " changed" if answer is not None and answer != label else ""
            answered = "-" if answer is None else oracle.label_text(answer)
            cards.append(
                f'<div class="card{changed}">{image}<div>#{position}</div>'
                f"<div>given: {_e(oracle.label_text(label))}</div><div>answered: {_e(answered)}</div></div>"
            )
        n_changed = 0 if answers is None else int(np.sum(answers != given))
        rounds.append(
            f"<h3>Round {round_index}{' (audit)' if round_index == 0 else ''}: {len(positions)} queued, "
            f"{_e(status)}"
            + (f", {n_changed} changed" if answers is not None else "")
            + f'</h3><div class="cards">{"".join(cards)}</div>'
        )
    if not rounds:
        return ""
    return "<h2>Expert answers</h2>" + "".join(rounds)


def write_html(
    report: CleaningReport,
    path: str | os.PathLike[str],
    *,
    oracle: FileOracle | None = None,
    title: str = "modal-noisy: label cleaning report",
) -> Path:
    """Write ``report`` as one self-contained HTML file (see the module docstring).

    Parameters
    ----------
    report : CleaningReport
    path : str or os.PathLike
        The file to write (its folder is created).
    oracle : FileOracle, optional
        The file oracle of the run: its queues, answers and images fill the "Expert answers" section.
    title : str
        The page title.

    Returns
    -------
    Path
        ``path``.
    """
    if oracle is not None and not callable(getattr(oracle, "queued_rounds", None)):
        raise TypeError(f"oracle must be a FileOracle (got {type(oracle).__name__})")
    sections = [
        _settings_section(report),
        _retention_section(report),
        _curve_section(report),
        _table_section(report),
        _answers_section(oracle) if oracle is not None else "",
    ]
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>{''.join(sections)}</body></html>\n"
    )
    return write_text_atomic(path, page)  # a reader never sees half a page
