"""Label Studio's file formats for a cleaning round: the import tasks, the labelling config, the export.

No server and no SDK: Label Studio imports a JSON list of tasks (its "Basic Label Studio JSON format")
and exports the finished ones in the same shape with their annotations. For a round's queue:

- :func:`labeling_config` is the project's labelling interface: the image, the label it was given, and
  one ``<Choices>`` of the classes;
- :func:`queue_tasks` gives one task per queued sample: ``data`` holds the image URL, the sample's
  ``position`` and ``id``, and its current label; ``predictions`` holds the model's predicted class as a
  pre-annotation (``from_name``/``to_name``/``type: "choices"``/``value.choices``), which the expert
  accepts or changes;
- :func:`answer_entries` reads Label Studio's JSON export of the finished tasks
  (``annotations[].result[].value.choices``) into ``(where, position, label)`` entries, which
  :class:`~modal_noisy.cleaning.file_oracle.FileOracle` validates like the rows of an answers CSV.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

__all__ = ["FROM_NAME", "TO_NAME", "answer_entries", "labeling_config", "queue_tasks"]

#: ``name`` of the ``<Choices>`` tag: ``from_name`` of every result.
FROM_NAME = "label"
#: ``name`` of the ``<Image>`` tag: ``to_name`` of every result.
TO_NAME = "image"


def labeling_config(choices: Sequence[str]) -> str:
    """The labelling config XML: the image, its given label, and a single-choice ``<Choices>``.

    Parameters
    ----------
    choices : sequence of str
        The class names (or numbers) the expert picks from, in class order.
    """
    lines = [
        "<View>",
        f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>',
        '  <Header value="Given label: $current_class_name"/>',
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInLine="true" '
        'required="true">',
        *(f"    <Choice value={quoteattr(str(choice))}/>" for choice in choices),
        "  </Choices>",
        "</View>",
    ]
    return "\n".join(lines) + "\n"


def _choices_result(choice: str) -> list[dict[str, Any]]:
    return [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [choice]}}]


def queue_tasks(
    rows: Sequence[dict[str, Any]],
    image_urls: Sequence[str],
    *,
    predicted: Sequence[str | None] | None = None,
    scores: Sequence[float | None] | None = None,
    model_version: str = "modal-noisy",
) -> list[dict[str, Any]]:
    """One Label Studio task per queued sample.

    Parameters
    ----------
    rows : sequence of dict
        The queue rows (``position``, ``id``, ``current_label``, ``current_class_name``), copied
        into each task's ``data``.
    image_urls : sequence of str
        The URL Label Studio loads each image from (``data.image``).
    predicted : sequence of str or None, optional
        The model's predicted choice per sample, imported as a pre-annotation (None: none).
    scores : sequence of float or None, optional
        The model's probability of its prediction (the prediction's ``score``).
    model_version : str
        The ``model_version`` of the predictions.
    """
    tasks = []
    for k, (row, url) in enumerate(zip(rows, image_urls, strict=True)):
        task: dict[str, Any] = {"data": {"image": url, **{key: row[key] for key in row if key != "label"}}}
        choice = None if predicted is None else predicted[k]
        if choice is not None:
            prediction: dict[str, Any] = {"model_version": model_version, "result": _choices_result(choice)}
            if scores is not None and scores[k] is not None:
                prediction["score"] = round(float(scores[k]), 4)
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def _task_where(number: int, task: dict[str, Any]) -> str:
    task_id = task.get("id")
    return f"task {number}" + (f" (id {task_id})" if task_id is not None else "")


def _annotation_choice(annotations: list[Any]) -> tuple[str | None, str | None]:
    """The one choice of a task's finished annotations, or a problem."""
    finished = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled", False)]
    picked = []
    for annotation in finished:
        for result in annotation.get("result") or []:
            if not isinstance(result, dict) or result.get("type") != "choices":
                continue
            if result.get("from_name", FROM_NAME) != FROM_NAME:
                continue
            value = result.get("value") or {}
            picked.append(tuple(str(c) for c in value.get("choices") or []))
    if not picked:
        return None, None  # no label: reported by the shared validation
    if any(len(choices) != 1 for choices in picked):
        return None, f"has {max(len(c) for c in picked)} choices in one annotation; pick exactly one"
    distinct = sorted({choices[0] for choices in picked})
    if len(distinct) > 1:
        return None, f"has annotations that disagree ({', '.join(repr(c) for c in distinct)})"
    return distinct[0], None


def answer_entries(file: Path) -> tuple[list[tuple[str, str, str | None]], list[str]]:
    """Read Label Studio's JSON export of a round: ``(where, position, label)`` entries and problems.

    A task's label is the single choice of its annotations that were not cancelled (several that agree
    count once); its position is ``data.position``, as :func:`queue_tasks` wrote it. A task whose
    annotations are unusable is listed in the problems and its entry's label is None.

    Raises
    ------
    ValueError
        When the file is not JSON or not a list of tasks.
    """
    try:
        tasks = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"answers file {file} is not Label Studio's JSON export ({error})") from None
    if not isinstance(tasks, list):
        raise ValueError(
            f"answers file {file} must be Label Studio's JSON export, a list of tasks "
            f"(got a JSON {type(tasks).__name__}); export the project as 'JSON'"
        )
    entries: list[tuple[str, str, str | None]] = []
    problems: list[str] = []
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            problems.append(f"task {number} has no 'data' object")
            continue
        where = _task_where(number, task)
        position = task["data"].get("position")
        if position is None:
            problems.append(f"{where} has no data.position (was it imported from our tasks file?)")
            continue
        annotations = task.get("annotations")
        if not isinstance(annotations, list):
            problems.append(f"{where} has no 'annotations' list; export with annotations ('JSON')")
            continue
        choice, problem = _annotation_choice(annotations)
        if problem is not None:
            problems.append(f"{where}: position {position} {problem}")
        # None: the task's problem is listed already, but it answers (and so may repeat) its position
        entries.append((where, str(position), None if problem is not None else choice or ""))
    return entries, problems
