"""Oracles: simulated, noisy (order-independent answers) and file-based (queue export, answer import)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from modal_noisy.cleaning import (
    AwaitingExpertAnswers,
    FileOracle,
    NoisyOracle,
    Oracle,
    QueueFiles,
    SimulatedOracle,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = [f"digit{k}" for k in range(10)]


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    X = (data.images / 16.0).astype(np.float32)[:, None]
    return X, data.target.astype(np.int64)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_answers(path: Path, rows: list[dict[str, object]], columns=("position", "id", "label")) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# ------------------------------------------------------------------ simulated / noisy
def test_simulated_oracle_returns_truth(digits):
    _, y = digits
    oracle = SimulatedOracle(y)
    assert isinstance(oracle, Oracle) and oracle.n_classes == 10
    idx = np.array([5, 0, 100])
    out = oracle(idx, current_labels=np.zeros_like(y), round_index=1)
    assert out.dtype == np.int64 and out.tolist() == y[idx].tolist()


@pytest.mark.parametrize(
    ("indices", "match"),
    [
        ([len(load_digits().target)], "must be < the number of training samples"),
        ([-1], ">= 0"),
        ([[1, 2]], "1-D"),
        ([1.5], "integer positions"),
    ],
    ids=["too-large", "negative", "2d", "float"],
)
def test_oracles_validate_indices(digits, indices, match):
    _, y = digits
    with pytest.raises(ValueError, match=match):
        SimulatedOracle(y)(indices, current_labels=y, round_index=0)
    with pytest.raises(ValueError, match=match):
        NoisyOracle(y, 0.2, random_state=0)(indices, current_labels=y, round_index=0)


def test_noisy_oracle_error_rate_and_other_class(digits):
    _, y = digits
    oracle = NoisyOracle(y, 0.3, random_state=0)
    answers = oracle(np.arange(y.size), current_labels=y, round_index=1)
    wrong = answers != y
    assert abs(wrong.mean() - 0.3) < 0.04  # 1797 draws: 3 standard deviations is 0.033
    assert np.array_equal(wrong, oracle.is_wrong)
    assert answers.min() >= 0 and answers.max() < 10
    # a wrong answer is a uniformly random *other* class: every other class shows up
    offsets = (answers[wrong] - y[wrong]) % 10
    assert set(offsets.tolist()) == set(range(1, 10))


def test_noisy_oracle_answers_do_not_depend_on_call_order(digits):
    _, y = digits
    idx = np.random.default_rng(0).permutation(y.size)[:300]
    one_go = NoisyOracle(y, 0.4, random_state=7)(idx, current_labels=y, round_index=1)
    resumed = NoisyOracle(y, 0.4, random_state=7)
    parts = [
        resumed(idx[150:], current_labels=y, round_index=2),
        resumed(idx[:150], current_labels=y, round_index=1),
    ]
    assert np.array_equal(np.concatenate([parts[1], parts[0]]), one_go)
    # a different seed gives different mistakes
    assert not np.array_equal(
        NoisyOracle(y, 0.4, random_state=8)(idx, current_labels=y, round_index=1), one_go
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"error_rate": 1.5}, r"error_rate must be in \[0, 1\] \(got 1.5\)"),
        ({"error_rate": 0.1, "n_classes": 5}, r"y_true must lie in \[0, 5\)"),
    ],
    ids=["rate", "n_classes"],
)
def test_noisy_oracle_validates(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoisyOracle(digits[1], **kwargs)


def test_noisy_oracle_with_one_class_needs_zero_error():
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        NoisyOracle(np.zeros(4, dtype=np.int64), 0.2)
    assert NoisyOracle(np.zeros(4, dtype=np.int64), 0.0)([1, 2]).tolist() == [0, 0]


# ------------------------------------------------------------------ file oracle: export
@pytest.fixture
def file_oracle(tmp_path, digits):
    X, y = digits
    return FileOracle(
        tmp_path / "expert", n_classes=10, class_names=NAMES, images=X, ids=[f"img{i}" for i in range(len(y))]
    )


def test_export_queue_writes_csv_and_contact_sheet(file_oracle, digits):
    _, y = digits
    current = (y + 1) % 10
    files = file_oracle.export_queue(3, [17, 4, 250], current)
    assert isinstance(files, QueueFiles)
    assert files.csv_path.name == "queue_round03.csv" and files.contact_sheet_path.name == "queue_round03.png"
    rows = _rows(files.csv_path)
    assert list(rows[0]) == ["position", "id", "current_label", "current_class_name", "label"]
    assert [r["position"] for r in rows] == ["17", "4", "250"]
    assert rows[0]["id"] == "img17" and rows[0]["current_label"] == str(current[17])
    assert rows[0]["current_class_name"] == NAMES[current[17]] and rows[0]["label"] == ""
    data = files.contact_sheet_path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2000


def test_contact_sheet_from_rgb_images_and_paths(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.random((12, 3, 16, 16)).astype(np.float32)
    paths = []
    for i in range(12):
        path = tmp_path / f"im{i}.png"
        Image.fromarray((rgb[i].transpose(1, 2, 0) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    labels = np.arange(12) % 4
    sheet_rgb = FileOracle(tmp_path / "a", n_classes=4, images=rgb).export_queue(0, range(12), labels)
    oracle_paths = FileOracle(tmp_path / "b", n_classes=4, image_paths=paths)
    by_path = oracle_paths.export_queue(0, [3, 1], labels)
    for files in (sheet_rgb, by_path):
        assert files.contact_sheet_path.read_bytes().startswith(PNG_MAGIC)
    rows = _rows(by_path.csv_path)
    assert rows[0]["image_path"] == str(paths[3]) and rows[0]["id"] == "3"
    assert rows[0]["current_class_name"] == "3"
    # without any images there is no contact sheet, but the CSV is still written
    bare = FileOracle(tmp_path / "c", n_classes=4).export_queue(0, [1], labels)
    assert bare.contact_sheet_path is None and bare.csv_path.exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_names": ["a", "b"]}, "class_names must have n_classes=10 entries"),
        ({"images": np.zeros((5, 2, 8, 8))}, r"C = 1 or 3"),
        ({"images": np.zeros((5, 1, 8, 8)), "ids": list(range(4))}, "must have the same length"),
        ({"n_classes": 0}, "n_classes must be >= 1"),
    ],
    ids=["names", "channels", "lengths", "n_classes"],
)
def test_file_oracle_validates_construction(tmp_path, kwargs, match):
    kwargs = {"n_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        FileOracle(tmp_path, **kwargs)


def test_export_accepts_labels_aligned_with_the_queue(file_oracle, digits):
    _, y = digits
    idx = np.array([100, 7])
    full = file_oracle.export_queue(1, idx, y)
    rows_full = _rows(full.csv_path)
    aligned = file_oracle.export_queue(2, idx, y[idx])  # what ActiveLabelCleaner passes
    assert _rows(aligned.csv_path) == rows_full
    assert [r["current_label"] for r in rows_full] == [str(y[100]), str(y[7])]
    # without images the training-set size is unknown: a full vector must still cover the indices
    bare = FileOracle(file_oracle.directory / "bare", n_classes=10)
    with pytest.raises(ValueError, match=r"one label per queued sample \(2\)"):
        bare.export_queue(1, [50, 60], np.zeros(10, dtype=np.int64))


def test_export_rejects_duplicate_positions_and_short_labels(file_oracle, digits):
    _, y = digits
    with pytest.raises(ValueError, match="indices must be distinct"):
        file_oracle.export_queue(1, [3, 3], y)
    with pytest.raises(ValueError, match="labels of all 1797 training samples"):
        file_oracle.export_queue(1, [3], y[:10])


# ------------------------------------------------------------------ file oracle: answers
def test_call_exports_then_raises_then_reads_answers(file_oracle, digits):
    _, y = digits
    current = y.copy()
    current[[8, 2]] = 0
    idx = np.array([8, 2, 30])
    with pytest.raises(AwaitingExpertAnswers, match=r"answers_round01\.csv") as info:
        file_oracle(idx, current_labels=current, round_index=1)
    err = info.value
    assert err.round_index == 1 and err.queue_csv.exists() and err.contact_sheet.exists()
    assert err.answers_path == file_oracle.answers_path(1) and not err.answers_path.exists()
    # calling again without answers re-exports and raises again (nothing is applied)
    with pytest.raises(AwaitingExpertAnswers):
        file_oracle(idx, current_labels=current, round_index=1)
    # the expert copies the queue, shuffles the rows, and fills in indices and one class name
    rows = _rows(err.queue_csv)[::-1]
    for row in rows:
        row["label"] = y[int(row["position"])]
    rows[0]["label"] = NAMES[y[int(rows[0]["position"])]]
    _write_answers(err.answers_path, rows, columns=list(rows[0]))
    out = file_oracle(idx, current_labels=current, round_index=1)
    assert out.dtype == np.int64 and out.tolist() == y[idx].tolist()


def test_filled_in_queue_file_is_accepted(file_oracle, digits):
    _, y = digits
    idx = [40, 41]
    files = file_oracle.export_queue(2, idx, y)
    rows = _rows(files.csv_path)
    for row in rows:
        row["label"] = "3.0"  # as a spreadsheet may write an integer
    _write_answers(files.csv_path, rows, columns=list(rows[0]))
    assert file_oracle.find_answers(2) == files.csv_path
    assert file_oracle(idx, current_labels=y, round_index=2).tolist() == [3, 3]


def test_semicolon_separated_answers_with_bom(file_oracle, digits):
    path = file_oracle.answers_path(4)
    file_oracle.directory.mkdir(parents=True, exist_ok=True)
    path.write_text("\ufeffposition;label\n7;1\n9;2\n", encoding="utf-8")
    assert file_oracle.read_answers(4, [9, 7]).tolist() == [2, 1]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("position,label\n5,1\n6,2\n99,3\n", r"line 4: position 99 is not in this round's queue"),
        ("position,label\n5,1\n6,10\n", r"line 3: label 10 for position 6 is out of range \[0, 10\)"),
        (
            "position,label\n5,1\n6,2.5\n",
            r"line 3: label '2.5' for position 6 is not an integer or a class name",
        ),
        ("position,label\n5,1\n6,cat\n", r"line 3: label 'cat' .* is not an integer"),
        ("position,label\n5,1\n6,2\n5,3\n", r"line 4: position 5 is answered twice \(also on line 2\)"),
        ("position,label\n5,1\n", r"no answer for position\(s\) 6"),
        ("position,label\n5,1\n6,\n", r"line 3: position 6 has no label"),
        ("position,label\nx,1\n6,2\n", r"line 2: position 'x' is not an integer"),
        ("id,label\n5,1\n", r"has no column 'position'"),
        ("", r"is empty"),
    ],
    ids=[
        "not-in-queue",
        "out-of-range",
        "non-integer",
        "unknown-name",
        "duplicate",
        "missing",
        "empty-label",
        "bad-position",
        "no-position-column",
        "empty-file",
    ],
)
def test_bad_answers_rejected_all_or_nothing(file_oracle, digits, body, match):
    _, y = digits
    file_oracle.export_queue(1, [5, 6], y)
    path = file_oracle.answers_path(1)
    path.write_text(body)
    with pytest.raises(ValueError, match=match) as info:
        file_oracle([5, 6], current_labels=y, round_index=1)
    message = str(info.value)
    assert str(path) in message
    if body:
        assert "nothing from it was applied" in message or "no column" in message


def test_all_problems_are_listed(file_oracle, digits):
    _, y = digits
    file_oracle.export_queue(1, [5, 6, 7], y)
    file_oracle.answers_path(1).write_text("position,label\n5,11\n5,1\n8,1\n")
    with pytest.raises(ValueError) as info:
        file_oracle.read_answers(1, [5, 6, 7])
    message = str(info.value)
    for fragment in (
        "line 2: label 11",
        "line 3: position 5 is answered twice",
        "line 4: position 8",
        "no answer for position(s) 6, 7",
    ):
        assert fragment in message


def test_read_answers_without_file(file_oracle):
    with pytest.raises(FileNotFoundError, match=r"answers_round05\.csv"):
        file_oracle.read_answers(5, [1])


def test_call_without_current_labels_cannot_export(file_oracle):
    with pytest.raises(ValueError, match="current_labels is required"):
        file_oracle([1, 2], round_index=0)
