"""A torch Dataset over a CSV of image names and labels plus a folder of image files.

Kept apart from :mod:`modal_noisy.datasets` so that the numpy loaders there do not import torch;
``modal_noisy.datasets.ImageFolderCSV`` and ``modal_noisy.ImageFolderCSV`` resolve to this class.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from modal_noisy._validation import check_choice, check_labels, check_positive_int

__all__ = ["ImageFolderCSV"]

IMAGE_FOLDER_SOURCE = (
    "ISIC images and ground-truth CSVs are obtained from https://challenge.isic-archive.com/data/ ; "
    "for a hospital export, write a CSV with one row per image file"
)
_MAX_LISTED = 5  # missing files named in an error message


class ImageFolderCSV(Dataset):
    """Images listed in a CSV (file name + integer label) and stored in one folder.

    The layout of ISIC challenge data and of most hospital exports: a CSV such as ::

        image,label
        ISIC_0024306.jpg,4
        ISIC_0024307.jpg,1

    and a folder holding those files. Everything is checked when the dataset is built (CSV and
    columns present, every image file present and readable, labels integer and in range), so a training
    run never fails half-way on a missing or damaged file. Images are opened with PIL on access.

    Parameters
    ----------
    csv_path : str or path-like
        The CSV file.
    image_dir : str or path-like
        Folder the names in ``image_column`` are relative to.
    transform : callable, optional
        Applied to each PIL image (torchvision transforms). Default: ``ToTensor()`` — a float tensor
        (C, H, W) in [0, 1].
    image_column : str, default="image"
        Column with the file names. A name without an extension is looked up with each of
        ``extensions`` in turn (ISIC ground-truth CSVs give bare image ids).
    label_column : str or sequence of str, default="label"
        Column with the integer class labels — or several columns holding a one-hot encoding (as in
        the ISIC 2019 ground truth ``MEL, NV, BCC, ...``), whose position is then the class index.
    n_classes : int, optional
        Number of classes; labels must lie in ``[0, n_classes)``. Defaults to ``max(label) + 1``
        (or the number of one-hot columns).
    extensions : sequence of str, default=(".png", ".jpg", ".jpeg")
        Extensions tried for file names given without one.
    mode : str or None, default="RGB"
        PIL mode every image is converted to (``"L"`` for grayscale); ``None`` keeps each file's own.
    verify : {"header", "full", "none"}, default="header"
        How far every image is read when the dataset is built: its header (fast: catches files that
        are not images, or truncated before their header ends), all its pixels (``"full"``: catches
        truncated data too, at the cost of one decode per image), or not at all.

    Attributes
    ----------
    labels : ndarray of shape (n_samples,), int64
        The labels, in CSV row order.
    paths : ndarray of shape (n_samples,), str
        Full path of each image file (a numpy array, so ``paths[query_idx]`` works).
    n_classes : int
    class_names : list of str
        The one-hot column names, or ``["0", "1", ...]``.

    Raises
    ------
    FileNotFoundError
        If the CSV or the folder is missing, or image files are (the first ones are named).
    ValueError
        If columns are missing (the columns found are listed), the CSV is empty, labels are not
        integers in range, or an image cannot be read (the file is named).
    """

    def __init__(
        self,
        csv_path: str | os.PathLike,
        image_dir: str | os.PathLike,
        *,
        transform: Callable | None = None,
        image_column: str = "image",
        label_column: str | Sequence[str] = "label",
        n_classes: int | None = None,
        extensions: Sequence[str] = (".png", ".jpg", ".jpeg"),
        mode: str | None = "RGB",
        verify: str = "header",
    ) -> None:
        csv_file = Path(csv_path).expanduser()
        if not csv_file.is_file():
            raise FileNotFoundError(
                f"CSV file {csv_file} does not exist. {IMAGE_FOLDER_SOURCE}. "
                "This library never downloads data."
            )
        folder = Path(image_dir).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder {folder} does not exist or is not a folder")
        if n_classes is not None:
            n_classes = check_positive_int(n_classes, "n_classes")

        try:
            frame = pd.read_csv(csv_file, dtype={image_column: str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(f"{csv_file} is not a readable CSV file ({err})") from err
        label_columns = [label_column] if isinstance(label_column, str) else list(label_column)
        wanted = [image_column, *label_columns]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{csv_file} lacks column(s) {missing}: expected {wanted}, "
                f"found {[str(c) for c in frame.columns]}"
            )
        if len(frame) == 0:
            raise ValueError(f"{csv_file} has a header but no rows (expected one row per image)")

        if isinstance(label_column, str):
            labels = _integer_column(frame[label_column], label_column, csv_file)
            self.n_classes = n_classes if n_classes is not None else int(labels.max()) + 1
            self.class_names = [str(c) for c in range(self.n_classes)]
        else:
            labels = _one_hot_labels(frame[label_columns], csv_file)
            self.n_classes = n_classes if n_classes is not None else len(label_columns)
            self.class_names = label_columns
        self.labels = check_labels(labels, f"column {label_column!r}", n_classes=self.n_classes)
        self.paths = _resolve_paths(frame[image_column], folder, image_column, tuple(extensions))
        _verify_images(self.paths, check_choice(verify, "verify", ("header", "full", "none")), csv_file)
        self.transform = transform if transform is not None else _default_transform()
        self.mode = mode
        self.csv_path = csv_file
        self.image_dir = folder

    def __len__(self) -> int:
        return int(self.labels.size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = int(index)
        with Image.open(self.paths[index]) as image:
            image = image.convert(self.mode) if self.mode is not None else image.copy()
        return self.transform(image), int(self.labels[index])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(csv_path={str(self.csv_path)!r}, "
            f"image_dir={str(self.image_dir)!r}, n_samples={len(self)}, n_classes={self.n_classes})"
        )


def _verify_images(paths: np.ndarray, depth: str, csv_file: Path) -> None:
    """Open every image (its header, or ``depth="full"`` its pixels too): fail now, naming the file."""
    if depth == "none":
        return
    for path in paths:
        try:
            with Image.open(path) as image:
                if depth == "full":
                    image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            # PIL raises UnidentifiedImageError (an OSError) for a damaged header, OSError or
            # SyntaxError for damaged data
            raise ValueError(
                f"image {path} listed in {csv_file} is not a readable image ({type(err).__name__}: {err})"
            ) from None


def _default_transform() -> Callable:
    return transforms.ToTensor()


def _integer_column(column: object, name: str, csv_file: Path) -> np.ndarray:
    numeric = pd.to_numeric(column, errors="coerce")  # type: ignore[call-overload]
    unparsable = (numeric.isna() & column.notna()).to_numpy()  # type: ignore[attr-defined]
    if unparsable.any():
        bad = int(np.flatnonzero(unparsable)[0])
        raise ValueError(
            f"column {name!r} of {csv_file} must hold integer class labels "
            f"(found {column.iloc[bad]!r} in data row {bad + 1})"  # type: ignore[attr-defined]
        )
    return numeric.to_numpy(dtype=np.float64) if numeric.isna().any() else numeric.to_numpy()


def _one_hot_labels(block: object, csv_file: Path) -> np.ndarray:
    values = block.to_numpy(dtype=np.float64)  # type: ignore[attr-defined]
    row_ok = np.all((values == 0) | (values == 1), axis=1) & (values.sum(axis=1) == 1)
    if not np.all(row_ok):
        bad = int(np.flatnonzero(~row_ok)[0])
        raise ValueError(
            f"one-hot label columns of {csv_file} must hold exactly one 1 per row "
            f"(found {values[bad].tolist()} in data row {bad + 1})"
        )
    return values.argmax(axis=1).astype(np.int64)


def _resolve_paths(names: object, folder: Path, column: str, extensions: tuple[str, ...]) -> np.ndarray:
    """Full paths of the listed files; FileNotFoundError naming the first missing ones."""
    resolved: list[str] = []
    missing: list[str] = []
    for raw in names:  # type: ignore[attr-defined]
        if not isinstance(raw, str) or not raw.strip():
            missing.append(repr(raw))
            continue
        path = folder / raw.strip()
        if not path.is_file() and not path.suffix:
            candidates = (folder / (raw.strip() + ext) for ext in extensions)
            path = next((c for c in candidates if c.is_file()), path)
        if path.is_file():
            resolved.append(str(path))
        else:
            missing.append(raw)
    if missing:
        shown = ", ".join(missing[:_MAX_LISTED])
        more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        raise FileNotFoundError(
            f"{len(missing)} image file(s) named in column {column!r} not found in {folder}: {shown}{more}"
        )
    return np.asarray(resolved, dtype=str)
