"""Loaders for the data sets this project works with. Nothing here ever downloads.

Array loaders return images as ``float32`` arrays in NCHW layout scaled to [0, 1] (``uint8 / 255``;
scikit-learn's digits ``/ 16``) and labels as ``int64``:

- :func:`load_digits_long_tailed` — scikit-learn's bundled 8×8 digits, split (stratified, balanced,
  clean test set) and then made long-tailed on the train side: the test-suite data set;
- :func:`load_medmnist` — any MedMNIST-layout ``.npz`` (RetinaMNIST, DermaMNIST, PathMNIST, ...);
- :func:`load_hmnist_csv` — the HAM10000 "Skin Cancer MNIST" CSVs (``hmnist_8_8_L.csv``, ...);
- :func:`stratified_split` — a seeded, stratified train/val/test split for sets without one.

:class:`ImageFolderCSV` (a :class:`torch.utils.data.Dataset` over a CSV of ``image,label`` plus a
folder of image files, the layout of ISIC and most hospital exports) lives in a private module and is
imported from here lazily, so the array loaders do not pull in torch.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

from modal_noisy._validation import (
    check_choice,
    check_fraction,
    check_labels,
    check_positive_int,
    check_same_length,
)
from modal_noisy.noise import make_long_tailed

if TYPE_CHECKING:  # pragma: no cover - typing only
    from modal_noisy._image_folder import ImageFolderCSV

__all__ = [
    "ImageFolderCSV",
    "load_digits_long_tailed",
    "load_hmnist_csv",
    "load_medmnist",
    "stratified_split",
]

MEDMNIST_SPLITS = ("train", "val", "test")

MEDMNIST_SOURCE = (
    "MedMNIST .npz files (retinamnist.npz, dermamnist.npz, pathmnist.npz, ...) are obtained from "
    "https://medmnist.com (files hosted on Zenodo) or with the `medmnist` package's download option "
    "on a machine with internet access"
)
HMNIST_SOURCE = (
    "HAM10000 CSVs (hmnist_8_8_L.csv, hmnist_28_28_L.csv, hmnist_28_28_RGB.csv) are obtained from the "
    'Kaggle data set "Skin Cancer MNIST: HAM10000" (kaggle.com/datasets/kmader/'
    "skin-cancer-mnist-ham10000); the full-size images are on the Harvard Dataverse "
    "(doi:10.7910/DVN/DBW86T)"
)

PathLike = str | os.PathLike


def __getattr__(name: str) -> object:
    # ImageFolderCSV needs torch; import it only when asked for.
    if name == "ImageFolderCSV":
        from modal_noisy._image_folder import ImageFolderCSV

        return ImageFolderCSV
    raise AttributeError(f"module 'modal_noisy.datasets' has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------------


def load_digits_long_tailed(
    imbalance_ratio: float = 10.0,
    *,
    test_size: float = 0.3,
    random_state: int | np.random.RandomState | None = 0,
) -> Bunch:
    """scikit-learn's bundled 8×8 digits with a long-tailed train split and a balanced test split.

    Recipe: a stratified split of :func:`sklearn.datasets.load_digits` into train and test *first* (the
    test split stays balanced and clean), then :func:`~modal_noisy.noise.make_long_tailed` on the train
    split (class 0 keeps the most, class 9 about ``1 / imbalance_ratio`` of that).

    Parameters
    ----------
    imbalance_ratio : float, default=10.0
        Head-to-tail class size ratio of the train split (``>= 1``).
    test_size : float in (0, 1), default=0.3
        Fraction of the 1,797 images held out as the test split.
    random_state : int, RandomState instance or None, default=0
        Seed of both the split and the subsampling; a fixed seed gives identical arrays.

    Returns
    -------
    sklearn.utils.Bunch
        ``X_train`` (n, 1, 8, 8) float32 in [0, 1], ``y_train`` int64, ``X_test``, ``y_test``,
        ``n_classes`` (10), ``class_names`` (``["0", ..., "9"]``), and ``train_indices`` /
        ``test_indices``: sorted positions of those rows in ``load_digits()``. Rows are in
        ``load_digits`` order.
    """
    test_size = check_fraction(test_size, "test_size", low_inclusive=False, high_inclusive=False)
    rng = check_random_state(random_state)
    digits = load_digits()
    X = (digits.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    y = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(y.size), test_size=test_size, stratify=y, random_state=rng
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    _, _, kept = make_long_tailed(X[train_idx], y[train_idx], imbalance_ratio, random_state=rng)
    train_idx = train_idx[kept]
    return Bunch(
        X_train=X[train_idx],
        y_train=y[train_idx],
        X_test=X[test_idx],
        y_test=y[test_idx],
        n_classes=10,
        class_names=[str(c) for c in digits.target_names],
        train_indices=train_idx,
        test_indices=test_idx,
    )


# --------------------------------------------------------------------------------------------------
# MedMNIST
# --------------------------------------------------------------------------------------------------


def load_medmnist(
    path: PathLike,
    split: str = "train",
    *,
    md5: str | None = None,
    sha256: str | None = None,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of a MedMNIST-layout ``.npz`` file.

    The file holds ``{split}_images`` of shape (n, H, W) (grayscale) or (n, H, W, C) with C in {1, 3}
    (RGB), ``uint8``, and ``{split}_labels`` of shape (n, 1) or (n,), for ``split`` in ``train``,
    ``val``, ``test`` — the layout of every 2-D MedMNIST v2 file (RetinaMNIST, DermaMNIST, PathMNIST,
    BloodMNIST, ...). Multi-label (ChestMNIST) and 3-D files are not supported.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.
    split : {"train", "val", "test"}, default="train"
        Which split to return.
    md5, sha256 : str, optional
        Expected checksum (hex) of the file; checked before reading it.
    n_classes : int, optional
        When given, every label must lie in ``[0, n_classes)``.

    Returns
    -------
    X : ndarray of shape (n, C, H, W), float32 in [0, 1]
    y : ndarray of shape (n,), int64

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message says where MedMNIST files are obtained).
    ValueError
        On a checksum mismatch, a file that is not an ``.npz``, missing keys (the keys found are
        listed), badly shaped images or labels, or labels out of range.
    """
    file = _existing_file(path, MEDMNIST_SOURCE)
    split = check_choice(split, "split", MEDMNIST_SPLITS)
    if n_classes is not None:
        n_classes = check_positive_int(n_classes, "n_classes")
    _verify_checksums(file, md5=md5, sha256=sha256)
    image_key, label_key = f"{split}_images", f"{split}_labels"
    # a truncated or damaged download fails inside numpy with zipfile's or zlib's errors
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        archive = np.load(file, allow_pickle=False)
    except unreadable as err:
        raise ValueError(f"{file} is not a readable numpy .npz file ({type(err).__name__}: {err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{file} must be an .npz archive with named arrays (got a single array)")
    with archive:
        found = sorted(archive.files)
        missing = [key for key in (image_key, label_key) if key not in found]
        if missing:
            raise ValueError(
                f"{file} has no {' / '.join(missing)} for split={split!r}: expected keys "
                f"'{image_key}' and '{label_key}' (MedMNIST layout), found {found}"
            )
        try:
            images = archive[image_key]
            labels = archive[label_key]
        except unreadable as err:
            raise ValueError(f"{file} is damaged ({type(err).__name__}: {err}); download it again") from None
    X = _images_to_nchw(images, image_key)
    y = check_labels(labels, label_key, n_classes=n_classes)
    if len(y) != len(X):
        raise ValueError(
            f"{label_key} must have one label per image: expected {len(X)} labels, found {len(y)}"
        )
    return X, y


def _images_to_nchw(images: np.ndarray, name: str) -> np.ndarray:
    """(n, H, W) or (n, H, W, C) images -> float32 (n, C, H, W) in [0, 1]."""
    if images.ndim == 3:
        images = images[:, :, :, None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"{name} must have shape (n, H, W) or (n, H, W, C) with C in {{1, 3}} "
            f"(found shape {images.shape}; 3-D volumes are not supported)"
        )
    X = _scale_to_unit(images, name)
    return np.ascontiguousarray(X.transpose(0, 3, 1, 2))


def _scale_to_unit(values: np.ndarray, name: str) -> np.ndarray:
    """uint8 (or integers in [0, 255]) -> float32 / 255; floats must already lie in [0, 1]."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(values.dtype, np.integer):
        if values.size and (values.min() < 0 or values.max() > 255):
            raise ValueError(
                f"{name} must hold 8-bit pixel values in [0, 255] "
                f"(found values in [{values.min()}, {values.max()}])"
            )
        return values.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(values.dtype, np.floating):
        if values.size and not (np.all(np.isfinite(values)) and values.min() >= 0.0 and values.max() <= 1.0):
            raise ValueError(
                f"{name} holds floats, which must be finite and in [0, 1] "
                f"(found values in [{np.nanmin(values)}, {np.nanmax(values)}])"
            )
        return values.astype(np.float32)
    raise ValueError(f"{name} must hold uint8 pixel values (found dtype {values.dtype})")


# --------------------------------------------------------------------------------------------------
# HAM10000 "Skin Cancer MNIST" CSVs
# --------------------------------------------------------------------------------------------------


def load_hmnist_csv(
    path: PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load a HAM10000 "Skin Cancer MNIST" CSV (``hmnist_8_8_L.csv`` and its siblings).

    The CSV has pixel columns ``pixel0000, pixel0001, ...`` and a ``label`` column. The image size is
    inferred from the number of pixel columns ``P``: ``P = s²`` is an ``s × s`` grayscale image
    (``hmnist_8_8_L``, ``hmnist_28_28_L``); ``P = 3·s²`` is an ``s × s`` RGB image stored pixel by pixel
    (``hmnist_8_8_RGB``, ``hmnist_28_28_RGB``: ``pixel{3·(row·s + col) + channel}``).

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    md5, sha256 : str, optional
        Expected checksum (hex) of the file; checked before reading it.
    n_classes : int, optional
        When given, every label must lie in ``[0, n_classes)`` (HAM10000: 7).

    Returns
    -------
    X : ndarray of shape (n, C, s, s), float32 in [0, 1]
    y : ndarray of shape (n,), int64

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message says where the HAM10000 CSVs are obtained).
    ValueError
        On a checksum mismatch, a missing ``label`` column or pixel columns (the columns found are
        listed), a pixel count that is neither ``s²`` nor ``3·s²``, pixel values outside [0, 255],
        or bad labels.

    Notes
    -----
    HAM10000 has no official split and several images may show the same lesion; use
    :func:`stratified_split` with a fixed seed and compare methods on the same split.
    """
    file = _existing_file(path, HMNIST_SOURCE)
    if n_classes is not None:
        n_classes = check_positive_int(n_classes, "n_classes")
    _verify_checksums(file, md5=md5, sha256=sha256)
    try:
        frame = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not a readable CSV file ({err})") from err
    columns = [str(c) for c in frame.columns]
    pixel_columns = [c for c in columns if c.startswith("pixel")]
    if "label" not in columns or not pixel_columns:
        shown = columns if len(columns) <= 12 else [*columns[:6], "...", *columns[-3:]]
        raise ValueError(
            f"{file} must have pixel columns 'pixel0000', 'pixel0001', ... and a 'label' column "
            f"(found {len(columns)} columns: {shown})"
        )
    try:
        order = sorted(pixel_columns, key=lambda c: int(c[len("pixel") :]))
    except ValueError as err:
        raise ValueError(f"{file}: pixel columns must be named pixel<number> ({err})") from err
    numbers = [int(c[len("pixel") :]) for c in order]
    if numbers != list(range(len(order))):
        raise ValueError(
            f"{file}: expected pixel columns pixel0000..pixel{len(order) - 1:04d} without gaps "
            f"(found numbers {numbers[0]}..{numbers[-1]} in {len(order)} columns)"
        )
    n_pixels = len(order)
    channels, side = _infer_image_shape(n_pixels)
    if side == 0:
        raise ValueError(
            f"{file}: {n_pixels} pixel columns is neither s*s (grayscale) nor 3*s*s (RGB) for an "
            "integer side length s"
        )
    pixels = frame[order].to_numpy()
    if not np.issubdtype(pixels.dtype, np.integer):
        raise ValueError(f"{file}: pixel columns must hold integers in [0, 255] (found {pixels.dtype})")
    images = pixels.reshape(len(frame), side, side, channels)
    X = np.ascontiguousarray(_scale_to_unit(images, "pixel columns").transpose(0, 3, 1, 2))
    y = check_labels(frame["label"].to_numpy(), "label", n_classes=n_classes)
    return X, y


def _infer_image_shape(n_pixels: int) -> tuple[int, int]:
    """(channels, side) for ``n_pixels`` flattened values; side 0 when neither layout fits."""
    side = int(np.sqrt(n_pixels) + 0.5)
    if side * side == n_pixels:
        return 1, side
    if n_pixels % 3 == 0:
        side = int(np.sqrt(n_pixels // 3) + 0.5)
        if 3 * side * side == n_pixels:
            return 3, side
    return 1, 0


# --------------------------------------------------------------------------------------------------
# splitting
# --------------------------------------------------------------------------------------------------


def stratified_split(
    X: object,
    y: object,
    *,
    val_size: float = 0.1,
    test_size: float = 0.2,
    random_state: int | np.random.RandomState | None = 0,
) -> Bunch:
    """A seeded train / validation / test split that keeps the class proportions in each part.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
        Integer class labels.
    val_size, test_size : float in [0, 1), defaults 0.1 and 0.2
        Fractions of *all* samples for the validation and test parts (``val_size + test_size < 1``).
        0 gives an empty part.
    random_state : int, RandomState instance or None, default=0
        Seed; a fixed seed gives the same split.

    Returns
    -------
    sklearn.utils.Bunch
        ``X_train, y_train, X_val, y_val, X_test, y_test`` and ``train_indices``, ``val_indices``,
        ``test_indices`` (positions in ``X`` / ``y``). Rows within each part are in *shuffled* order
        (files such as HAM10000's CSV are sorted by class, and skorch does not shuffle by default).

    Raises
    ------
    ValueError
        If the sizes are outside [0, 1) or sum to 1 or more, ``X`` and ``y`` differ in length, or a
        class is too small to be stratified (scikit-learn's message).
    """
    val_size = check_fraction(val_size, "val_size", high_inclusive=False)
    test_size = check_fraction(test_size, "test_size", high_inclusive=False)
    if val_size + test_size >= 1.0:
        raise ValueError(
            f"val_size + test_size must be < 1 (got {val_size:g} + {test_size:g} = {val_size + test_size:g})"
        )
    X_arr = np.asarray(X)
    y_arr = check_labels(y, "y")
    check_same_length(X_arr, y_arr, "X", "y")
    rng = check_random_state(random_state)
    empty = np.zeros(0, dtype=np.int64)

    rest = np.arange(y_arr.size)
    test_idx = empty
    if test_size > 0:
        rest, test_idx = train_test_split(rest, test_size=test_size, stratify=y_arr, random_state=rng)
    val_idx = empty
    if val_size > 0:
        rest, val_idx = train_test_split(
            rest, test_size=val_size / (1.0 - test_size), stratify=y_arr[rest], random_state=rng
        )
    if test_size == 0 and val_size == 0:
        rest = rng.permutation(rest)
    parts = {"train": rest, "val": val_idx, "test": test_idx}
    out = Bunch()
    for name, idx in parts.items():
        idx = np.asarray(idx, dtype=np.int64)
        out[f"X_{name}"] = X_arr[idx]
        out[f"y_{name}"] = y_arr[idx]
        out[f"{name}_indices"] = idx
    return out


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _existing_file(path: PathLike, source: str) -> Path:
    """``path`` as a Path; FileNotFoundError naming it and where such a file is obtained if missing."""
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise FileNotFoundError(f"{file} {what}. {source}. This library never downloads data.")
    return file


def _verify_checksums(file: Path, *, md5: str | None, sha256: str | None) -> None:
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        if not isinstance(expected, str):
            raise ValueError(f"{algorithm} must be a hex digest string (got {expected!r})")
        digest = hashlib.new(algorithm)
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        found = digest.hexdigest()
        if found != expected.strip().lower():
            raise ValueError(
                f"{algorithm} checksum mismatch for {file}: expected {expected}, found {found} "
                "(the file is corrupt, truncated or a different version)"
            )
