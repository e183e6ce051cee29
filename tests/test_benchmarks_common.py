"""Cheap checks of the benchmark helpers (the benchmarks themselves are not part of the test suite)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _common


@pytest.mark.parametrize(
    ("text", "expected"),
    [("symmetric:0.4", ("symmetric", 0.4)), ("sym:0.2", ("symmetric", 0.2)), ("pair:0.3", ("pair", 0.3))],
    ids=["symmetric", "sym-alias", "pair"],
)
def test_parse_noise(text, expected):
    assert _common.parse_noise(text) == expected


@pytest.mark.parametrize("text", ["gauss:0.4", "symmetric", "pair:1.2"], ids=["kind", "no-rate", "rate"])
def test_parse_noise_rejects(text):
    with pytest.raises(ValueError, match="noise"):
        _common.parse_noise(text)


def test_noise_is_meaningful_skips_uninformative_symmetric_noise():
    # 5 classes: 80% symmetric noise leaves every label equally likely
    assert not _common.noise_is_meaningful("symmetric", 0.8, 5)
    assert _common.noise_is_meaningful("symmetric", 0.8, 10)
    assert not _common.noise_is_meaningful("pair", 0.5, 10)


def test_write_json_is_strict_and_plain(tmp_path):
    path = _common.write_json(
        tmp_path / "r.json", {"a": np.float32(0.5), "b": math.nan, "c": np.arange(3), "d": np.bool_(True)}
    )
    assert json.loads(path.read_text()) == {"a": 0.5, "b": None, "c": [0, 1, 2], "d": True}
    assert not path.with_suffix(".json.tmp").exists()


def test_mean_std_ignores_missing_values():
    mean, std, n = _common.mean_std([1.0, None, 3.0, math.nan])
    assert (mean, n) == (2.0, 2)
    assert std == pytest.approx(math.sqrt(2))
    assert math.isnan(_common.mean_std([None])[0])


def test_header_names_command_and_versions():
    info = _common.header(["benchmarks/quality.py", "--quick"])
    assert info["command"].endswith("benchmarks/quality.py --quick")
    assert info["versions"]["cleanlab"] and info["versions"]["torch"]
    assert len(info["modal_noisy_code"]["sha256"]) == 16
