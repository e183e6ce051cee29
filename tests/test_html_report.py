"""The shareable HTML report: one self-contained file, checked in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from modal_noisy.cleaning import FileOracle
from modal_noisy.cleaning.html_report import ACCURACY_COLOR, RETENTION_COLOR, WRONG_LEFT_COLOR
from modal_noisy.cleaning.report import CleaningReport

RETENTION = [1.0, 0.8, 0.6, 0.4, 0.2]
MAGENTA = (255, 0, 255)


@pytest.fixture
def report() -> CleaningReport:
    rounds = [
        {
            "round": r,
            "labels_spent": 20 * r,
            "n_queried": 20,
            "relabel_precision": 0.9,
            "n_changed": 18,
            "noisy_remaining": 60 - 18 * r,
            "balanced_accuracy": 0.6 + 0.1 * r,
            "macro_f1": 0.55 + 0.1 * r,
            "per_class_recall": [0.9, 0.8, 0.7, 0.6, 0.5],
            "time_s": 3.0 * r,
        }
        for r in (1, 2)
    ]
    return CleaningReport(
        phase1={
            "n_samples": 150,
            "n_selected_clean": 90,
            "noise_rate_estimate": 0.38,
            "true_noise_rate": 0.4,
            "noisy_remaining": 60,
            "selection": {
                "precision": 0.93,
                "recall": 0.9,
                "min_retention": 0.2,
                "clean_retention": RETENTION,
                "class_counts": [50, 40, 30, 20, 10],
            },
            "val": {"balanced_accuracy": 0.55, "macro_f1": 0.5},
        },
        rounds=rounds,
        settings={"strategy": "vog", "budget_per_round": 20, "rounds": 2, "lr": 0.01},
        class_names=["nevus", "melanoma", "bcc", "akiec", "df"],
    )


@pytest.fixture
def answered_oracle(tmp_path):
    """A file oracle whose round 1 (4 magenta images) was answered, with one label changed."""
    images = np.zeros((10, 3, 8, 8), dtype=np.float32)
    images[:, 0] = images[:, 2] = 1.0  # magenta: easy to find in a screenshot
    names = ["nevus", "melanoma", "bcc", "akiec", "df"]
    oracle = FileOracle(tmp_path / "queue", n_classes=5, class_names=names, images=images)
    labels = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    oracle.export_queue(1, [2, 5, 7, 9], labels)
    (tmp_path / "queue" / "answers_round01.csv").write_text(
        "position,label\n2,bcc\n5,0\n7,melanoma\n9,nevus\n", encoding="utf-8"
    )
    oracle.export_queue(2, [1, 3], labels)  # not answered yet
    return oracle


def test_to_html_is_one_self_contained_file(report, tmp_path):
    path = report.to_html(tmp_path / "sub" / "report.html")
    assert path == tmp_path / "sub" / "report.html"
    text = path.read_text(encoding="utf-8")
    # nothing to fetch: no URL, no script, no stylesheet link
    assert not re.search(r"https?://|<script|<link|<iframe|src=\"(?!data:)", text)
    assert text.count("<svg") == 2  # retention bars and cleaning curve
    assert text.count(f'fill="{RETENTION_COLOR}"') == len(RETENTION)
    assert f'stroke="{ACCURACY_COLOR}"' in text and f'stroke="{WRONG_LEFT_COLOR}"' in text
    rounds_table = re.search(r'<table id="rounds">(.*?)</table>', text).group(1)
    assert rounds_table.count("<tr>") == 1 + 3  # header, rounds 0..2
    assert "wrong labels left" in rounds_table and "<td>24</td>" in rounds_table  # 60 - 2 * 18
    assert "budget_per_round" in text and "vog" in text
    assert "melanoma" in text and "(n=50)" in text


def test_to_html_without_the_truth_says_so(tmp_path):
    report = CleaningReport(
        rounds=[{"round": 1, "labels_spent": 5, "balanced_accuracy": 0.7, "noisy_remaining": None}],
        settings={"strategy": "entropy"},
    )
    text = report.to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Not known: the truth of the labels was not given" in text
    assert "Wrong labels left: not known without the truth" in text
    assert text.count("<svg") == 1


def test_the_curve_says_which_recalibrations_keep_best_refused(tmp_path):
    rounds = [
        {"round": r, "labels_spent": 5 * r, "balanced_accuracy": score, "noisy_remaining": 10 - r,
         "model_kept": kept}
        for r, score, kept in ((1, 0.7, True), (2, 0.5, False), (3, 0.8, True))
    ]
    text = CleaningReport(rounds=rounds).to_html(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "the recalibration of round(s) 2 scored below it on the validation split" in text
    every_round = CleaningReport(rounds=[{**r, "model_kept": True} for r in rounds])
    assert "not adopted" not in every_round.to_html(tmp_path / "all.html").read_text(encoding="utf-8")


def test_to_html_shows_the_experts_answers(report, answered_oracle, tmp_path):
    text = report.to_html(tmp_path / "r.html", oracle=answered_oracle).read_text(encoding="utf-8")
    assert text.count('<img alt="#') == 6
    assert text.count('src="data:image/png;base64,') == 6
    assert "Round 1: 4 queued, answered, 2 changed" in text  # 2 and 5 confirmed; 7 and 9 changed
    assert "Round 2: 2 queued, awaiting the expert&#x27;s answers" in text
    assert text.count('class="card changed"') == 2
    assert "given: 2 bcc</div><div>answered: 1 melanoma" in text
    with pytest.raises(TypeError, match="oracle must be a FileOracle"):
        report.to_html(tmp_path / "x.html", oracle=object())


def test_cli_report_folder_holds_the_html_with_the_experts_answers(report, answered_oracle, tmp_path):
    from modal_noisy import cli

    written = cli._write_report(report, tmp_path / "report", answered_oracle)
    assert tmp_path / "report" / "report.html" in written
    text = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Expert answers</h2>" in text and text.count('<img alt="#') == 6


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _mask(pixels: np.ndarray, color: str | tuple[int, int, int]) -> np.ndarray:
    rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5)) if isinstance(color, str) else color
    return np.all(pixels == np.array(rgb, dtype=np.uint8), axis=-1)


def _runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D mask."""
    padded = np.concatenate([[False], columns, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2], strict=True))


def test_report_renders_in_headless_chromium(report, answered_oracle, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    page = report.to_html(tmp_path / "report.html", oracle=answered_oracle)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
            page.resolve().as_uri(),
        ],
        check=True, capture_output=True, timeout=60,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2000, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, charts and images: not blank

    # the retention chart: five bars, largest class first, heights proportional to retention
    green = _mask(pixels, RETENTION_COLOR)
    bars = [(a, b) for a, b in _runs(green.any(axis=0)) if b - a >= 20]
    assert len(bars) == len(RETENTION)
    heights = np.array([green[:, a:b].any(axis=1).sum() for a, b in bars], dtype=float)
    np.testing.assert_allclose(heights / heights[0], RETENTION, atol=0.02)
    assert heights[0] == pytest.approx(220, abs=2)  # the chart's full scale
    bars_bottom = np.flatnonzero(green.any(axis=1)).max()

    # the cleaning curve lies below the bars, with both lines drawn
    blue_rows = np.flatnonzero(_mask(pixels, ACCURACY_COLOR).any(axis=1))
    red_rows = np.flatnonzero(_mask(pixels, WRONG_LEFT_COLOR).any(axis=1))
    assert blue_rows.size and red_rows.size
    assert blue_rows.min() > bars_bottom and red_rows.min() > bars_bottom

    # the expert's queued images (magenta thumbnails, 96 px wide) below the curve
    magenta = _mask(pixels, MAGENTA)
    tiles = [(a, b) for a, b in _runs(magenta.any(axis=0)) if b - a >= 90]
    assert len(tiles) >= 4
    assert np.flatnonzero(magenta.any(axis=1)).min() > blue_rows.max()
