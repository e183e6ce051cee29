"""The human expert as an oracle, through files: each round's queue out, the expert's answers in.

:class:`FileOracle` writes each round's queue as a CSV plus a PNG contact sheet (and, on request, as a
Label Studio import file) and reads the expert's answers back, from a CSV or from Label Studio's JSON
export. Until the answers exist it raises :class:`AwaitingExpertAnswers`, so the cleaning loop can stop
cleanly (everything before is journalled) and resume later.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from modal_noisy._files import write_text_atomic
from modal_noisy._validation import (
    check_bool,
    check_finite_array,
    check_indices,
    check_labels,
    check_positive_int,
)
from modal_noisy.cleaning.label_studio import answer_entries, labeling_config, queue_tasks
from modal_noisy.cleaning.oracles import Oracle

__all__ = ["AwaitingExpertAnswers", "FileOracle", "QueueFiles"]

# the CSV columns of a queue file, in order; "image_path" only when paths are known
_QUEUE_COLUMNS = ("position", "id", "current_label", "current_class_name", "image_path", "label")
_MAX_PROBLEMS_SHOWN = 10
# Label Studio shows an image at least this many pixels wide: small images are enlarged (nearest)
_LABEL_STUDIO_MIN_SIDE = 128
_QUEUE_NAME = re.compile(r"queue_round(\d+)\.csv")


class QueueFiles(NamedTuple):
    """The files :meth:`FileOracle.export_queue` wrote for a round."""

    csv_path: Path
    contact_sheet_path: Path | None
    #: the Label Studio tasks to import (``label_studio=True``)
    label_studio_path: Path | None = None


class AwaitingExpertAnswers(RuntimeError):
    """Raised by :class:`FileOracle` when a round's queue was exported and the answers are not there.

    The cleaning loop catches it, stops cleanly (everything before is journalled) and tells the user
    which file to fill in; running again with the same journal resumes.

    Attributes
    ----------
    round_index : int
    queue : QueueFiles
        The queue CSV and the contact sheet (``None`` when no images are known).
    answers_path : Path
        Where the answers are expected.
    """

    def __init__(self, round_index: int, queue: QueueFiles, answers_path: Path) -> None:
        self.round_index = round_index
        self.queue = queue
        self.answers_path = answers_path
        sheet = f" and {queue.contact_sheet_path}" if queue.contact_sheet_path else ""
        super().__init__(
            f"round {round_index}: the expert's answers are needed. Review {queue.csv_path}{sheet}, "
            f"save a copy with the 'label' column filled in as {answers_path} (or fill in the queue "
            "file itself), then run again to continue."
        )

    def __reduce__(self) -> tuple[type, tuple[int, QueueFiles, Path]]:
        # pickled with its own arguments (the default would pass the message alone), so the other
        # processes of a multi-process run receive the same exception from the main one
        return type(self), (self.round_index, self.queue, self.answers_path)

    @property
    def queue_csv(self) -> Path:
        return self.queue.csv_path

    @property
    def contact_sheet(self) -> Path | None:
        return self.queue.contact_sheet_path


class FileOracle(Oracle):
    """The human expert, through files: export each round's queue, read the answers back.

    For round ``r`` the oracle writes, in ``directory``:

    - ``queue_round{r:02d}.csv`` with the columns ``position`` (index into the training set), ``id``,
      ``current_label``, ``current_class_name``, ``image_path`` (when paths are known) and an empty
      ``label`` column;
    - ``queue_round{r:02d}.png``, a contact sheet of the queued images titled with position and current
      label (when images or image paths are known).

    The expert fills the ``label`` column (a class index, or a class name when ``class_names`` is
    given) and saves the file as ``answers_round{r:02d}.csv`` — or saves the queue file itself in
    place. Rows may be reordered; other columns are ignored; ``,``, ``;`` and tab separators are
    accepted. The answers are validated all or nothing: an answer for a position not in the queue, a
    label that is not an integer or is out of range, a duplicate position or a missing answer rejects
    the whole file with a :class:`ValueError` that names the file, the line and the problem.

    With ``label_studio=True`` the round's queue is also written for Label Studio
    (:mod:`~modal_noisy.cleaning.label_studio`): ``queue_round{r:02d}.labelstudio.json`` (tasks to
    import, with the model's prediction as a pre-annotation when the cleaning loop offers it, see
    :meth:`receive_predictions`), ``labelstudio_config.xml`` (the labelling interface) and, for
    images given as an array, ``images/{position:06d}.png``. Label Studio's JSON export of the finished
    tasks, saved as ``answers_round{r:02d}.json``, is read as the round's answers with the same
    all-or-nothing validation (each problem named by task).

    Parameters
    ----------
    directory : str or os.PathLike
        Where queue, contact sheet and answers live (created when missing).
    n_classes : int
        Number of classes; answers must lie in ``[0, n_classes)``.
    class_names : sequence of str, optional
        Names of the classes, written beside the current labels and accepted as answers.
    image_paths : sequence of str, optional
        Image file of each training sample (written to the CSV; loaded with PIL for the contact sheet
        when ``images`` is not given).
    images : array of shape (n_samples, C, H, W), optional
        The training images, float in [0, 1] with 1 or 3 channels, for the contact sheet.
    ids : sequence, optional
        An identifier of each training sample (e.g. a file name or a patient-image id); default the
        position.
    thumbnails_per_row : int, default=10
        Columns of the contact sheet.
    label_studio : bool, default=False
        Also write each queue as a Label Studio import file (see above).
    image_url_prefix : str, default="/data/local-files/?d="
        What each image's path is prefixed with in the Label Studio tasks. The default is Label Studio's
        local-files URL, relative to ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``: the queue folder for
        images given as an array (their PNGs are written there), the root ``image_paths`` are relative
        to otherwise. Use ``""`` for paths that are already URLs.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        n_classes: int,
        class_names: Sequence[str] | None = None,
        image_paths: Sequence[str | os.PathLike[str]] | None = None,
        images: object = None,
        ids: Sequence[Any] | None = None,
        thumbnails_per_row: int = 10,
        label_studio: bool = False,
        image_url_prefix: str = "/data/local-files/?d=",
    ) -> None:
        self.directory = Path(directory)
        check_bool(label_studio, "label_studio")
        if not isinstance(image_url_prefix, str):
            raise TypeError(f"image_url_prefix must be a string (got {type(image_url_prefix).__name__})")
        self.label_studio = label_studio
        self.image_url_prefix = image_url_prefix
        self._predictions: dict[int, np.ndarray] = {}
        self.n_classes = check_positive_int(n_classes, "n_classes")
        self.thumbnails_per_row = check_positive_int(thumbnails_per_row, "thumbnails_per_row")
        if class_names is not None:
            class_names = [str(name) for name in class_names]
            if len(class_names) != self.n_classes:
                raise ValueError(
                    f"class_names must have n_classes={self.n_classes} entries (got {len(class_names)})"
                )
            if len(set(class_names)) != len(class_names):
                raise ValueError(f"class_names must be distinct (got {class_names})")
        self.class_names = class_names
        lengths: dict[str, int] = {}
        if images is not None:
            images = check_finite_array(images, "images")
            if images.ndim != 4 or images.shape[1] not in (1, 3):
                raise ValueError(
                    f"images must have shape (n_samples, C, H, W) with C = 1 or 3 (got shape {images.shape})"
                )
            lengths["images"] = images.shape[0]
        self.images = images
        self.image_paths = None if image_paths is None else [os.fspath(p) for p in image_paths]
        if self.image_paths is not None:
            lengths["image_paths"] = len(self.image_paths)
        self.ids = None if ids is None else list(ids)
        if self.ids is not None:
            lengths["ids"] = len(self.ids)
        if len(set(lengths.values())) > 1:
            described = ", ".join(f"{name} has {n}" for name, n in lengths.items())
            raise ValueError(f"images, image_paths and ids must have the same length ({described})")
        self.n_samples = next(iter(lengths.values()), None)
        if label_studio and images is None and self.image_paths is None:
            raise ValueError("label_studio=True needs images or image_paths: Label Studio shows each image")

    def __repr__(self) -> str:
        return f"FileOracle({str(self.directory)!r}, n_classes={self.n_classes})"

    # ------------------------------------------------------------------ file names
    def queue_path(self, round_index: int) -> Path:
        return self.directory / f"queue_round{round_index:02d}.csv"

    def contact_sheet_path(self, round_index: int) -> Path:
        return self.directory / f"queue_round{round_index:02d}.png"

    def answers_path(self, round_index: int) -> Path:
        return self.directory / f"answers_round{round_index:02d}.csv"

    def label_studio_tasks_path(self, round_index: int) -> Path:
        return self.directory / f"queue_round{round_index:02d}.labelstudio.json"

    def label_studio_answers_path(self, round_index: int) -> Path:
        return self.directory / f"answers_round{round_index:02d}.json"

    @property
    def label_studio_config_path(self) -> Path:
        return self.directory / "labelstudio_config.xml"

    def _class_name(self, label: int) -> str:
        if self.class_names is not None and 0 <= label < self.n_classes:
            return self.class_names[label]
        return str(label)

    def label_text(self, label: int) -> str:
        """A label as the expert sees it: the index, and the class name when known."""
        # the index too, since that is what the expert types into the answers file
        return str(label) if self.class_names is None else f"{label} {self._class_name(label)}"

    # ------------------------------------------------------------------ model predictions
    @property
    def wants_predictions(self) -> bool:
        """Whether the cleaning loop should offer the model's probabilities (:meth:`receive_predictions`)."""
        return self.label_studio

    def receive_predictions(self, indices: object, pred_probs: object) -> None:
        """Keep the model's probabilities of the samples about to be queued, for the pre-annotations.

        Parameters
        ----------
        indices : array-like of int
            Positions in the training set.
        pred_probs : array-like of shape (len(indices), n_classes)
        """
        idx = check_indices(indices, self.n_samples, unique=True)
        probs = check_finite_array(pred_probs, "pred_probs")
        if probs.shape != (idx.size, self.n_classes):
            raise ValueError(
                f"pred_probs must have shape ({idx.size}, {self.n_classes}), a row per index "
                f"(got shape {probs.shape})"
            )
        self._predictions = dict(zip(idx.tolist(), probs, strict=True))

    # ------------------------------------------------------------------ export
    def export_queue(
        self,
        round_index: int,
        indices: object,
        current_labels: object,
        *,
        pred_probs: object = None,
    ) -> QueueFiles:
        """Write the round's queue CSV and contact sheet (and the Label Studio tasks, when asked for).

        Parameters
        ----------
        round_index : int
        indices : array-like of int
            Positions of the queued samples in the training set, most informative first.
        current_labels : array-like of int
            The queued samples' current labels, aligned with ``indices``; or the current label
            vector of the whole training set (read at ``indices``) when its length differs from
            ``len(indices)``.
        pred_probs : array-like of shape (len(indices), n_classes), optional
            The model's probabilities of the queued samples, for the Label Studio pre-annotations;
            default those given to :meth:`receive_predictions`, where they cover the queue.

        Returns
        -------
        QueueFiles
        """
        round_index = check_positive_int(round_index, "round_index", minimum=0)
        idx = check_indices(indices, self.n_samples, unique=True)
        queued_labels = _current_of_queue(current_labels, idx, self.n_samples)
        self.directory.mkdir(parents=True, exist_ok=True)

        columns = [c for c in _QUEUE_COLUMNS if c != "image_path" or self.image_paths is not None]
        rows = []
        for pos, current in zip(idx.tolist(), queued_labels.tolist(), strict=True):
            row = {
                "position": pos,
                "id": self.ids[pos] if self.ids is not None else pos,
                "current_label": current,
                "current_class_name": self._class_name(current),
                "label": "",
            }
            if self.image_paths is not None:
                row["image_path"] = self.image_paths[pos]
            rows.append(row)
        csv_path = self.queue_path(round_index)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(csv_path, text.getvalue())  # an expert never sees half a queue

        sheet = None
        if idx.size and (self.images is not None or self.image_paths is not None):
            sheet = self.contact_sheet_path(round_index)
            titles = [
                f"#{pos}: {self.label_text(label)}"
                for pos, label in zip(idx.tolist(), queued_labels.tolist(), strict=True)
            ]
            self._write_contact_sheet(sheet, idx, titles)
        tasks = None
        if self.label_studio:
            if pred_probs is not None:
                self.receive_predictions(idx, pred_probs)
            tasks = self._write_label_studio(round_index, idx, rows)
        return QueueFiles(csv_path, sheet, tasks)

    # ------------------------------------------------------------------ Label Studio
    def _choices(self) -> list[str]:
        return [self._class_name(k) for k in range(self.n_classes)]

    def _image_url(self, position: int) -> str:
        if self.image_paths is not None:
            return self.image_url_prefix + Path(self.image_paths[position]).as_posix()
        if self.images is None:
            raise ValueError("label_studio=True needs images or image_paths: Label Studio shows the image")
        relative = Path("images") / f"{position:06d}.png"
        target = self.directory / relative
        if not target.exists():
            pixels = (self.thumbnail(position) * 255).round().astype(np.uint8)
            scale = max(1, math.ceil(_LABEL_STUDIO_MIN_SIDE / min(pixels.shape[:2])))
            image = Image.fromarray(pixels).resize(
                (pixels.shape[1] * scale, pixels.shape[0] * scale), Image.Resampling.NEAREST
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target)
        return self.image_url_prefix + relative.as_posix()

    def _write_label_studio(self, round_index: int, idx: np.ndarray, rows: list[dict[str, Any]]) -> Path:
        """The round's Label Studio tasks (and the labelling config), written atomically."""
        positions = idx.tolist()
        urls = [self._image_url(pos) for pos in positions]
        predicted = scores = None
        if positions and all(pos in self._predictions for pos in positions):
            probs = np.stack([self._predictions[pos] for pos in positions])
            predicted = [self._class_name(int(k)) for k in probs.argmax(axis=1)]
            scores = probs.max(axis=1).tolist()
        tasks = queue_tasks(rows, urls, predicted=predicted, scores=scores)
        config = self.label_studio_config_path
        config.write_text(labeling_config(self._choices()), encoding="utf-8")
        path = self.label_studio_tasks_path(round_index)
        return write_text_atomic(path, json.dumps(tasks, indent=1) + "\n")

    # ------------------------------------------------------------------ reading a queue back
    def queued_rounds(self) -> list[int]:
        """The rounds whose queue file is in the folder, in order."""
        if not self.directory.is_dir():
            return []
        found = (_QUEUE_NAME.fullmatch(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def read_queue(self, round_index: int) -> tuple[np.ndarray, np.ndarray]:
        """The positions and current labels of a round's queue file, in queue order."""
        round_index = check_positive_int(round_index, "round_index", minimum=0)
        rows = _read_csv_rows(self.queue_path(round_index))
        columns = [c.strip().lower() for c in rows[0]] if rows else []
        if "position" not in columns or "current_label" not in columns:
            raise ValueError(f"{self.queue_path(round_index)} is not a queue file (columns: {columns})")
        pos_col, label_col = columns.index("position"), columns.index("current_label")
        body = [row for row in rows[1:] if any(cell.strip() for cell in row)]
        positions = np.array([int(row[pos_col]) for row in body], dtype=np.int64)
        labels = np.array([int(row[label_col]) for row in body], dtype=np.int64)
        return positions, labels

    def thumbnail(self, position: int) -> np.ndarray:
        """Image ``position`` as an HxW or HxWx3 float array in [0, 1]."""
        if self.images is not None:
            img = np.clip(self.images[position], 0.0, 1.0)
            return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
        if self.image_paths is None:  # pragma: no cover - guarded by the caller
            raise ValueError("no images or image_paths to draw a contact sheet from")
        with Image.open(self.image_paths[position]) as im:
            im.thumbnail((128, 128))
            arr = np.asarray(im.convert("L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"))
        return arr.astype(np.float32) / 255.0

    def _write_contact_sheet(self, path: Path, idx: np.ndarray, titles: list[str]) -> None:
        n = idx.size
        ncols = min(self.thumbnails_per_row, n)
        nrows = math.ceil(n / ncols)
        # a Figure without pyplot: no global figure registry, no backend switch, nothing to close
        fig = Figure(figsize=(1.5 * ncols, 1.7 * nrows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if k >= n:
                continue
            img = self.thumbnail(int(idx[k]))
            if img.ndim == 2:
                ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            else:
                ax.imshow(img, interpolation="nearest")
            ax.set_title(titles[k], fontsize=7)
        fig.savefig(path, dpi=100)

    # ------------------------------------------------------------------ answers
    def find_answers(self, round_index: int) -> Path | None:
        """The answers file of a round: ``answers_round{r}.csv``, else Label Studio's export
        ``answers_round{r}.json``, else a filled-in queue file."""
        for answers in (self.answers_path(round_index), self.label_studio_answers_path(round_index)):
            if answers.exists():
                return answers
        queue = self.queue_path(round_index)
        if queue.exists() and _has_any_label(queue):
            return queue
        return None

    def read_answers(
        self,
        round_index: int,
        indices: object,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> np.ndarray:
        """Read and validate the expert's answers for a round's queue.

        Parameters
        ----------
        round_index : int
        indices : array-like of int
            The queued positions, in the order the labels are returned.
        path : path, optional
            The answers file (a CSV, or Label Studio's JSON export when it ends in ``.json``);
            default :meth:`find_answers`.

        Returns
        -------
        ndarray of int64, aligned with ``indices``

        Raises
        ------
        FileNotFoundError
            When there is no answers file.
        ValueError
            When the file has any problem; nothing from it is used.
        """
        round_index = check_positive_int(round_index, "round_index", minimum=0)
        idx = check_indices(indices, self.n_samples, unique=True)
        file = Path(path) if path is not None else self.find_answers(round_index)
        if file is None:
            raise FileNotFoundError(
                f"no answers for round {round_index}: expected {self.answers_path(round_index)}"
            )
        return self._parse_answers(file, idx)

    def _parse_answers(self, file: Path, idx: np.ndarray) -> np.ndarray:
        if file.suffix.lower() == ".json":
            entries, problems = answer_entries(file)
        else:
            entries, problems = _csv_entries(file), []
        return self._validate_answers(file, entries, idx, problems)

    def _validate_answers(
        self, file: Path, entries: list[tuple[str, str, str | None]], idx: np.ndarray, problems: list[str]
    ) -> np.ndarray:
        """The answers of ``(where, position, label)`` entries, or one error listing every problem.

        ``where`` names the entry in the file ("line 3", "task 2 (id 17)"); ``problems`` are those
        the file's reader found already (their entries have the label None).
        """
        wanted = {int(p): k for k, p in enumerate(idx.tolist())}
        answers = np.full(idx.size, -1, dtype=np.int64)
        seen: dict[int, str] = {}
        for where, pos_text, label in entries:
            pos_text, label_text = pos_text.strip(), None if label is None else label.strip()
            position = _parse_int(pos_text)
            if position is None:
                problems.append(f"{where}: position {pos_text!r} is not an integer")
                continue
            if position not in wanted:
                problems.append(f"{where}: position {position} is not in this round's queue")
                continue
            if position in seen:
                problems.append(f"{where}: position {position} is answered twice (also on {seen[position]})")
                continue
            seen[position] = where
            if label_text is None:
                continue  # its problem is listed already
            if not label_text:
                problems.append(f"{where}: position {position} has no label")
                continue
            label = self._parse_label(label_text)
            if label is None:
                names = "" if self.class_names is None else " or a class name"
                problems.append(
                    f"{where}: label {label_text!r} for position {position} is not an integer{names}"
                )
                continue
            if not 0 <= label < self.n_classes:
                problems.append(
                    f"{where}: label {label} for position {position} is out of range [0, {self.n_classes})"
                )
                continue
            answers[wanted[position]] = label
        absent = [p for p in wanted if p not in seen]
        if absent:
            shown = ", ".join(str(p) for p in absent[:_MAX_PROBLEMS_SHOWN])
            more = (
                f" and {len(absent) - _MAX_PROBLEMS_SHOWN} more" if len(absent) > _MAX_PROBLEMS_SHOWN else ""
            )
            problems.append(f"no answer for position(s) {shown}{more}")
        if problems:
            shown = problems[:_MAX_PROBLEMS_SHOWN]
            more = len(problems) - len(shown)
            raise ValueError(
                f"answers file {file} rejected, nothing from it was applied: "
                + "; ".join(shown)
                + (f"; and {more} more problem(s)" if more else "")
            )
        return answers

    def _parse_label(self, text: str) -> int | None:
        value = _parse_int(text)
        if value is None and self.class_names is not None and text in self.class_names:
            return self.class_names.index(text)
        return value

    # ------------------------------------------------------------------ oracle protocol
    def __call__(
        self,
        indices: object,
        *,
        current_labels: object = None,
        round_index: int = 0,
    ) -> np.ndarray:
        """Return the expert's labels if the answers file exists, else export the queue and raise.

        Raises
        ------
        AwaitingExpertAnswers
            After exporting the queue, when the round has no answers yet.
        ValueError
            When the answers file exists but is invalid (nothing from it is used).
        """
        round_index = check_positive_int(round_index, "round_index", minimum=0)
        if self.find_answers(round_index) is not None:
            return self.read_answers(round_index, indices)
        if current_labels is None:
            raise ValueError("current_labels is required to export a queue for the expert")
        queue = self.export_queue(round_index, indices, current_labels)
        raise AwaitingExpertAnswers(round_index, queue, self.answers_path(round_index))


def _current_of_queue(current_labels: object, idx: np.ndarray, n_samples: int | None) -> np.ndarray:
    """The queued samples' current labels from an aligned vector or the full label vector."""
    labels = check_labels(current_labels, "current_labels")
    if labels.size == idx.size:
        return labels
    if n_samples is not None and labels.size != n_samples:
        raise ValueError(
            f"current_labels must hold one label per queued sample ({idx.size}) or the labels of "
            f"all {n_samples} training samples (got {labels.size})"
        )
    if idx.size and idx.max() >= labels.size:
        raise ValueError(
            f"current_labels must hold one label per queued sample ({idx.size}) or the labels of "
            f"the whole training set (got {labels.size} labels, index {int(idx.max())})"
        )
    return labels[idx]


def _parse_int(text: str) -> int | None:
    """``"3"`` and ``"3.0"`` (as spreadsheets write it) -> 3; anything else -> None."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    if math.isfinite(number) and number == int(number):
        return int(number)
    return None


def _read_csv_rows(file: Path) -> list[list[str]]:
    """Rows of a CSV written by a spreadsheet: BOM tolerated, ``,`` ``;`` or tab separated."""
    try:
        with open(file, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except UnicodeDecodeError as error:
        # a spreadsheet's legacy encoding (cp1252, latin-1): say which file, and how to fix it
        raise ValueError(
            f"{file} is not UTF-8 text (byte {error.object[error.start]:#04x} at position {error.start}); "
            "save it as CSV UTF-8"
        ) from None
    header = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _csv_entries(file: Path) -> list[tuple[str, str, str]]:
    """The ``(where, position, label)`` entries of an answers CSV; blank lines skipped."""
    rows = _read_csv_rows(file)
    if not rows:
        raise ValueError(f"answers file {file} is empty; expected a header and one row per sample")
    columns = [c.strip().lower() for c in rows[0]]
    missing = [c for c in ("position", "label") if c not in columns]
    if missing:
        raise ValueError(
            f"answers file {file} has no column {' or '.join(repr(c) for c in missing)} "
            f"(columns: {rows[0]}); copy the queue file and fill in its 'label' column"
        )
    pos_col, label_col = columns.index("position"), columns.index("label")
    entries = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        cells = row + [""] * (len(columns) - len(row))
        entries.append((f"line {line_no}", cells[pos_col], cells[label_col]))
    return entries


def _has_any_label(queue: Path) -> bool:
    """Whether the expert started filling in the queue file itself."""
    rows = _read_csv_rows(queue)
    if not rows:
        return False
    columns = [c.strip().lower() for c in rows[0]]
    if "label" not in columns:
        return False
    col = columns.index("label")
    return any(len(row) > col and row[col].strip() for row in rows[1:])
