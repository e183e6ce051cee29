"""Tests for modal_noisy.datasets: digits-LT, MedMNIST .npz, HAM10000 CSV, splits, image folders."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modal_noisy.datasets import (
    load_digits_long_tailed,
    load_hmnist_csv,
    load_medmnist,
    stratified_split,
)

RETINA_MD5 = "bd4c0672f1bba3e3a89f0e4e876791e4"
RETINA_COUNTS = {
    "train": [486, 128, 206, 194, 66],
    "val": [54, 12, 28, 20, 6],
    "test": [174, 46, 92, 68, 20],
}
HAM_COUNTS = [327, 514, 1099, 115, 6705, 142, 1113]


# --------------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------------


def test_digits_long_tailed_shapes_dtypes_ranges(digits_lt):
    b = digits_lt
    assert b.X_train.shape[1:] == (1, 8, 8) and b.X_test.shape[1:] == (1, 8, 8)
    assert b.X_train.dtype == np.float32 and b.X_test.dtype == np.float32
    assert b.y_train.dtype == np.int64 and b.y_test.dtype == np.int64
    assert b.X_train.min() == 0.0 and b.X_train.max() == 1.0
    assert b.n_classes == 10 and b.class_names == [str(c) for c in range(10)]
    assert len(b.X_train) == len(b.y_train) == len(b.train_indices)


def test_digits_train_is_10x_long_tailed_and_test_balanced(digits_lt):
    train_counts = np.bincount(digits_lt.y_train, minlength=10)
    test_counts = np.bincount(digits_lt.y_test, minlength=10)
    assert np.all(np.diff(train_counts) < 0)  # strictly decreasing from class 0 to 9
    assert 9.0 <= train_counts[0] / train_counts[9] <= 11.0
    assert test_counts.max() - test_counts.min() <= 3  # stratified 30% of ~180 per class
    assert len(digits_lt.y_test) == 540


def test_digits_indices_point_into_load_digits(digits_lt):
    from sklearn.datasets import load_digits

    digits = load_digits()
    idx = digits_lt.train_indices
    np.testing.assert_array_equal(digits.target[idx], digits_lt.y_train)
    np.testing.assert_allclose(digits.images[idx] / 16.0, digits_lt.X_train[:, 0])
    assert not np.intersect1d(idx, digits_lt.test_indices).size  # no test image leaks into train


def test_digits_deterministic_for_a_seed():
    a = load_digits_long_tailed(10, random_state=1)
    b = load_digits_long_tailed(10, random_state=1)
    c = load_digits_long_tailed(10, random_state=2)
    np.testing.assert_array_equal(a.train_indices, b.train_indices)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.train_indices, c.train_indices)


def test_digits_ratio_one_keeps_the_whole_train_split():
    b = load_digits_long_tailed(1.0, test_size=0.5, random_state=0)
    assert len(b.y_train) + len(b.y_test) == 1797


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"imbalance_ratio": 0.5}, r"imbalance_ratio must be a finite number >= 1"),
        ({"test_size": 1.0}, r"test_size must be in \(0, 1\)"),
        ({"test_size": 0.0}, r"test_size must be in \(0, 1\)"),
    ],
    ids=["ratio", "test-size-one", "test-size-zero"],
)
def test_digits_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits_long_tailed(**kwargs)


# --------------------------------------------------------------------------------------------------
# MedMNIST layout
# --------------------------------------------------------------------------------------------------


def _write_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.fixture
def tiny_npz(tmp_path):
    """Factory: a MedMNIST-layout .npz with gray (n,H,W) or RGB (n,H,W,3) images."""

    def make(rgb: bool, n: int = 6, side: int = 5) -> Path:
        rng = np.random.default_rng(0)
        shape = (n, side, side, 3) if rgb else (n, side, side)
        arrays = {}
        for split, size in (("train", n), ("val", 2), ("test", 3)):
            arrays[f"{split}_images"] = rng.integers(0, 256, (size, *shape[1:]), dtype=np.uint8)
            arrays[f"{split}_labels"] = rng.integers(0, 3, (size, 1), dtype=np.uint8)
        arrays["train_images"][0, 0, 0] = 255  # so the max is known
        return _write_npz(tmp_path / ("rgb.npz" if rgb else "gray.npz"), **arrays)

    return make


@pytest.mark.parametrize(("rgb", "channels"), [(False, 1), (True, 3)], ids=["gray", "rgb"])
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_medmnist_tiny_shapes(tiny_npz, rgb, channels, split):
    path = tiny_npz(rgb)
    X, y = load_medmnist(path, split)
    n = {"train": 6, "val": 2, "test": 3}[split]
    assert X.shape == (n, channels, 5, 5) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    with np.load(path) as raw:
        images = raw[f"{split}_images"]
        expected = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        np.testing.assert_allclose(X, expected / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(y, raw[f"{split}_labels"][:, 0])


def test_medmnist_accepts_str_path_and_flat_labels(tmp_path):
    path = _write_npz(
        tmp_path / "flat.npz",
        train_images=np.zeros((4, 3, 3), np.uint8),
        train_labels=np.array([0, 1, 2, 1]),
    )
    X, y = load_medmnist(str(path))
    assert X.shape == (4, 1, 3, 3)
    np.testing.assert_array_equal(y, [0, 1, 2, 1])


def test_medmnist_md5_and_sha256(tiny_npz):
    path = tiny_npz(False)
    data = path.read_bytes()
    load_medmnist(path, md5=hashlib.md5(data).hexdigest())
    load_medmnist(path, sha256=hashlib.sha256(data).hexdigest().upper())
    with pytest.raises(ValueError, match=r"md5 checksum mismatch .*expected 0{32}, found [0-9a-f]{32}"):
        load_medmnist(path, md5="0" * 32)
    with pytest.raises(ValueError, match=r"sha256 checksum mismatch"):
        load_medmnist(path, sha256="f" * 64)


def test_medmnist_wrong_keys_lists_the_keys_found(tmp_path):
    path = _write_npz(tmp_path / "bad.npz", images=np.zeros((2, 3, 3), np.uint8), labels=np.zeros(2))
    with pytest.raises(
        ValueError, match=r"expected keys 'train_images' and 'train_labels'.*found \['images', 'labels'\]"
    ):
        load_medmnist(path)


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (
            np.zeros((2, 3), np.uint8),
            np.zeros((2, 1)),
            r"train_images must have shape \(n, H, W\).*found shape \(2, 3\)",
        ),
        (np.zeros((2, 3, 3, 28), np.uint8), np.zeros((2, 1)), r"C in \{1, 3\}.*found shape \(2, 3, 3, 28\)"),
        (np.zeros((2, 3, 3), np.uint8), np.zeros((3, 1)), r"expected 2 labels, found 3"),
        (
            np.zeros((2, 3, 3), np.uint8),
            np.zeros((2, 14)),
            r"train_labels must be a 1-D array.*shape \(2, 14\)",
        ),
        (np.zeros((2, 3, 3), np.uint8), np.array([[0], [-1]]), r"train_labels must be >= 0"),
        (
            np.zeros((2, 3, 3), np.uint8),
            np.array([[0.5], [1]]),
            r"train_labels must hold integer class labels",
        ),
        (np.full((2, 3, 3), 2.0), np.zeros((2, 1)), r"must be finite and in \[0, 1\]"),
        (
            np.full((2, 3, 3), 300),
            np.zeros((2, 1)),
            r"pixel values in \[0, 255\].*found values in \[300, 300\]",
        ),
    ],
    ids=[
        "2d-images",
        "3d-volume",
        "length-mismatch",
        "multilabel",
        "negative-label",
        "float-label",
        "float-pixels",
        "int-pixels",
    ],
)
def test_medmnist_bad_arrays(tmp_path, images, labels, match):
    path = _write_npz(tmp_path / "bad.npz", train_images=images, train_labels=labels)
    with pytest.raises(ValueError, match=match):
        load_medmnist(path)


def test_medmnist_labels_out_of_range_with_n_classes(tiny_npz):
    path = tiny_npz(False)
    with pytest.raises(ValueError, match=r"train_labels must lie in \[0, 2\) for n_classes=2"):
        load_medmnist(path, n_classes=2)


def test_medmnist_bad_split_and_not_an_npz(tiny_npz, tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'val', 'test' \(got 'valid'\)"):
        load_medmnist(tiny_npz(False), "valid")
    junk = tmp_path / "junk.npz"
    junk.write_text("not a numpy file")
    with pytest.raises(ValueError, match=r"junk.npz is not a readable numpy .npz file"):
        load_medmnist(junk)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match=r"must be an .npz archive"):
        load_medmnist(single)


def test_medmnist_missing_file_says_where_to_get_it(tmp_path):
    missing = tmp_path / "retinamnist.npz"
    with pytest.raises(FileNotFoundError, match=r"retinamnist.npz does not exist.*medmnist.com"):
        load_medmnist(missing)
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_medmnist(tmp_path)


# --------------------------------------------------------------------------------------------------
# HAM10000 CSV
# --------------------------------------------------------------------------------------------------


def _write_hmnist(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write images (n, s, s) or (n, s, s, 3) the way the Kaggle hmnist CSVs store them."""
    flat = images.reshape(len(images), -1)
    frame = pd.DataFrame(flat, columns=[f"pixel{i:04d}" for i in range(flat.shape[1])])
    frame["label"] = labels
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((3, 8, 8), (3, 1, 8, 8)), ((3, 28, 28), (3, 1, 28, 28)), ((3, 4, 4, 3), (3, 3, 4, 4))],
    ids=["8x8-L", "28x28-L", "4x4-RGB"],
)
def test_hmnist_csv_shapes_and_values(tmp_path, shape, expected):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    path = _write_hmnist(tmp_path / "h.csv", images, [0, 6, 2])
    X, y = load_hmnist_csv(path)
    assert X.shape == expected and X.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 6, 2])
    assert y.dtype == np.int64
    nchw = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(X, nchw / 255.0, rtol=1e-6)


def test_hmnist_pixel_columns_are_ordered_by_number(tmp_path):
    images = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    path = _write_hmnist(tmp_path / "h.csv", images, [1])
    frame = pd.read_csv(path)
    frame[frame.columns[::-1]].to_csv(path, index=False)  # label first, pixels reversed
    X, _ = load_hmnist_csv(path)
    np.testing.assert_allclose(X[0, 0] * 255, images[0])


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (
            pd.DataFrame({"pixel0000": [1], "target": [0]}),
            r"a 'label' column \(found 2 columns: \['pixel0000', 'target'\]\)",
        ),
        (
            pd.DataFrame({f"pixel{i:04d}": [0] for i in range(5)} | {"label": [0]}),
            r"5 pixel columns is neither s\*s",
        ),
        (
            pd.DataFrame(
                {"pixel0000": [0], "pixel0002": [0], "pixel0003": [0], "pixel0004": [0], "label": [0]}
            ),
            r"without gaps",
        ),
        (
            pd.DataFrame({f"pixel{i:04d}": [300] for i in range(4)} | {"label": [0]}),
            r"pixel values in \[0, 255\]",
        ),
        (
            pd.DataFrame({f"pixel{i:04d}": [0.5] for i in range(4)} | {"label": [0]}),
            r"pixel columns must hold integers",
        ),
        (pd.DataFrame({f"pixel{i:04d}": [0] for i in range(4)} | {"label": [-2]}), r"label must be >= 0"),
        (
            pd.DataFrame({f"pixel{i:04d}": [0] for i in range(4)} | {"label": ["nv"]}),
            r"label must hold integer class labels",
        ),
    ],
    ids=["no-label", "not-square", "gap", "pixel-range", "float-pixels", "negative-label", "string-label"],
)
def test_hmnist_bad_csv(tmp_path, frame, match):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match=match):
        load_hmnist_csv(path)


def test_hmnist_missing_file_and_checksum(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"hmnist_8_8_L.csv does not exist.*Skin Cancer MNIST: HAM10000"
    ):
        load_hmnist_csv(tmp_path / "hmnist_8_8_L.csv")
    path = _write_hmnist(tmp_path / "h.csv", np.zeros((2, 2, 2), np.uint8), [0, 1])
    with pytest.raises(ValueError, match="md5 checksum mismatch"):
        load_hmnist_csv(path, md5="0" * 32)
    with pytest.raises(ValueError, match=r"label must lie in \[0, 1\) for n_classes=1"):
        load_hmnist_csv(path, n_classes=1)


# --------------------------------------------------------------------------------------------------
# stratified_split
# --------------------------------------------------------------------------------------------------


def test_stratified_split_partitions_and_keeps_proportions():
    y = np.repeat(np.arange(3), [500, 300, 200])
    X = np.arange(y.size)[:, None].astype(np.float32)
    s = stratified_split(X, y, val_size=0.1, test_size=0.2, random_state=0)
    all_idx = np.concatenate([s.train_indices, s.val_indices, s.test_indices])
    np.testing.assert_array_equal(np.sort(all_idx), np.arange(y.size))  # a partition
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (700, 100, 200)
    np.testing.assert_array_equal(np.bincount(s.y_test), [100, 60, 40])
    np.testing.assert_array_equal(np.bincount(s.y_val), [50, 30, 20])
    np.testing.assert_array_equal(s.X_train[:, 0].astype(int), s.train_indices)
    np.testing.assert_array_equal(y[s.val_indices], s.y_val)
    # shuffled, not sorted by class (sorted input stays sorted otherwise)
    assert np.any(np.diff(s.y_train) < 0)


def test_stratified_split_is_seeded_and_allows_empty_parts():
    y = np.tile(np.arange(4), 50)
    a = stratified_split(y, y, random_state=5)
    b = stratified_split(y, y, random_state=5)
    c = stratified_split(y, y, random_state=6)
    np.testing.assert_array_equal(a.test_indices, b.test_indices)
    assert not np.array_equal(a.test_indices, c.test_indices)
    no_val = stratified_split(y, y, val_size=0.0, test_size=0.25)
    assert len(no_val.y_val) == 0 and no_val.X_val.shape == (0,) and len(no_val.y_test) == 50


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_size": 1.0}, r"val_size must be in \[0, 1\)"),
        ({"test_size": -0.1}, r"test_size must be in \[0, 1\)"),
        ({"val_size": 0.5, "test_size": 0.5}, r"val_size \+ test_size must be < 1 \(got 0.5 \+ 0.5 = 1\)"),
    ],
    ids=["val-one", "test-negative", "sum-one"],
)
def test_stratified_split_invalid_sizes(kwargs, match):
    y = np.tile(np.arange(2), 20)
    with pytest.raises(ValueError, match=match):
        stratified_split(y, y, **kwargs)


def test_stratified_split_length_mismatch():
    with pytest.raises(ValueError, match="X and y must have the same length"):
        stratified_split(np.zeros(5), np.zeros(4, dtype=int))


# --------------------------------------------------------------------------------------------------
# ImageFolderCSV
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path):
    """Four tiny PNGs (2 RGB, 2 grayscale) and a CSV of image,label."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rows = []
    for i in range(4):
        mode = "RGB" if i < 2 else "L"
        shape = (6, 5, 3) if mode == "RGB" else (6, 5)
        Image.fromarray(np.full(shape, 40 * i, np.uint8), mode=mode).save(folder / f"img{i}.png")
        rows.append({"image": f"img{i}.png", "label": i % 3})
    csv = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv, folder


def test_image_folder_csv_items_labels_paths(image_folder):
    import torch

    from modal_noisy.datasets import ImageFolderCSV

    csv, folder = image_folder
    ds = ImageFolderCSV(csv, folder)
    assert isinstance(ds, torch.utils.data.Dataset)
    assert len(ds) == 4 and ds.n_classes == 3
    np.testing.assert_array_equal(ds.labels, [0, 1, 2, 0])
    assert ds.labels.dtype == np.int64
    assert ds.paths[np.array([1, 3])].tolist() == [str(folder / "img1.png"), str(folder / "img3.png")]
    image, label = ds[2]
    assert isinstance(label, int) and label == 2
    assert image.shape == (3, 6, 5) and image.dtype == torch.float32
    assert torch.allclose(image, torch.full_like(image, 80 / 255))
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 3, 6, 5) and yb.tolist() == [0, 1, 2, 0]


def test_image_folder_csv_transform_mode_and_bare_ids(image_folder, tmp_path):
    from torchvision import transforms

    from modal_noisy.datasets import ImageFolderCSV

    _, folder = image_folder
    csv = tmp_path / "isic.csv"
    pd.DataFrame({"image_id": ["img0", "img3"], "dx": [1, 0]}).to_csv(csv, index=False)
    tf = transforms.Compose([transforms.Resize((4, 4)), transforms.ToTensor()])
    ds = ImageFolderCSV(
        csv, folder, transform=tf, image_column="image_id", label_column="dx", n_classes=7, mode="L"
    )
    image, label = ds[1]
    assert image.shape == (1, 4, 4) and label == 0
    assert ds.n_classes == 7 and ds.paths[0].endswith("img0.png")


def test_image_folder_csv_one_hot_columns(image_folder, tmp_path):
    from modal_noisy.datasets import ImageFolderCSV

    _, folder = image_folder
    csv = tmp_path / "gt.csv"
    pd.DataFrame({"image": ["img0", "img1"], "MEL": [0.0, 1.0], "NV": [1.0, 0.0]}).to_csv(csv, index=False)
    ds = ImageFolderCSV(csv, folder, label_column=["MEL", "NV"])
    np.testing.assert_array_equal(ds.labels, [1, 0])
    assert ds.class_names == ["MEL", "NV"] and ds.n_classes == 2
    pd.DataFrame({"image": ["img0"], "MEL": [1.0], "NV": [1.0]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"exactly one 1 per row"):
        ImageFolderCSV(csv, folder, label_column=["MEL", "NV"])


def test_image_folder_csv_missing_files_are_named(image_folder, tmp_path):
    from modal_noisy.datasets import ImageFolderCSV

    _, folder = image_folder
    csv = tmp_path / "missing.csv"
    names = ["img0.png", *(f"gone{i}.png" for i in range(7))]
    pd.DataFrame({"image": names, "label": 0}).to_csv(csv, index=False)
    with pytest.raises(
        FileNotFoundError,
        match=r"7 image file\(s\) .* gone0.png, gone1.png, gone2.png, gone3.png, gone4.png and 2 more",
    ):
        ImageFolderCSV(csv, folder)


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        ([0, 1, 5, 0], {"n_classes": 3}, r"must lie in \[0, 3\) for n_classes=3 \(got label 5\)"),
        ([0, -1, 1, 0], {}, r"must be >= 0"),
        (
            [0, "mel", 1, 0],
            {},
            r"column 'label' .* must hold integer class labels \(found 'mel' in data row 2\)",
        ),
        ([0, 1.5, 1, 0], {}, r"must hold integer class labels \(got 1.5\)"),
        ([0, 1, 1, 0], {"n_classes": 0}, r"n_classes must be >= 1"),
    ],
    ids=["out-of-range", "negative", "string", "float", "n-classes-zero"],
)
def test_image_folder_csv_bad_labels(image_folder, labels, kwargs, match):
    from modal_noisy.datasets import ImageFolderCSV

    csv, folder = image_folder
    frame = pd.read_csv(csv)
    frame["label"] = labels
    frame.to_csv(csv, index=False)
    with pytest.raises(ValueError, match=match):
        ImageFolderCSV(csv, folder, **kwargs)


def test_image_folder_csv_missing_csv_folder_or_columns(image_folder, tmp_path):
    from modal_noisy.datasets import ImageFolderCSV

    csv, folder = image_folder
    with pytest.raises(FileNotFoundError, match=r"nope.csv does not exist.*isic-archive"):
        ImageFolderCSV(tmp_path / "nope.csv", folder)
    with pytest.raises(FileNotFoundError, match=r"image folder .*no_dir does not exist"):
        ImageFolderCSV(csv, tmp_path / "no_dir")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['diagnosis'\].*found \['image', 'label'\]"):
        ImageFolderCSV(csv, folder, label_column="diagnosis")
    empty = tmp_path / "empty.csv"
    empty.write_text("image,label\n")
    with pytest.raises(ValueError, match="has a header but no rows"):
        ImageFolderCSV(empty, folder)


def test_array_loaders_do_not_import_torch():
    code = "import sys, modal_noisy.datasets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_names_are_exported():
    import modal_noisy

    assert modal_noisy.stratified_split is stratified_split
    assert modal_noisy.ImageFolderCSV.__name__ == "ImageFolderCSV"
    assert modal_noisy.load_medmnist is load_medmnist


# --------------------------------------------------------------------------------------------------
# the real medical data in ../shared/data (skipped when absent)
# --------------------------------------------------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_retinamnist_loads_with_documented_counts(shared_data, split):
    X, y = load_medmnist(shared_data / "retinamnist.npz", split, md5=RETINA_MD5, n_classes=5)
    assert X.shape == (sum(RETINA_COUNTS[split]), 3, 28, 28) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(y, minlength=5), RETINA_COUNTS[split])


@pytest.mark.data
def test_ham10000_8x8_loads_with_documented_counts(shared_data):
    X, y = load_hmnist_csv(shared_data / "hmnist_8_8_L.csv", n_classes=7)
    assert X.shape == (10015, 1, 8, 8) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(y, minlength=7), HAM_COUNTS)
    split = stratified_split(X, y, random_state=0)
    assert len(split.y_train) + len(split.y_val) + len(split.y_test) == 10015
    assert np.bincount(split.y_test, minlength=7).min() >= 20  # every class present in test
