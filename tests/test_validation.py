"""Public-boundary checks: messages name the parameter, the rule and the value."""

from __future__ import annotations

import numpy as np
import pytest

from modal_noisy._validation import (
    check_choice,
    check_finite_array,
    check_fraction,
    check_labels,
    check_positive_int,
    check_same_length,
)


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (1.5, {}, r"mix_ratio must be in \[0, 1\] \(got 1.5\)"),
        (-0.1, {}, r"mix_ratio must be in \[0, 1\] \(got -0.1\)"),
        (1.0, {"high_inclusive": False}, r"mix_ratio must be in \[0, 1\) \(got 1.0\)"),
        ("a", {}, r"mix_ratio must be a number .* \(got 'a'\)"),
        (True, {}, r"mix_ratio must be a number"),
        (float("nan"), {}, r"mix_ratio must be in"),
    ],
    ids=["above", "below", "open-high", "string", "bool", "nan"],
)
def test_check_fraction_rejects(value, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_fraction(value, "mix_ratio", **kwargs)


def test_check_fraction_accepts_bounds():
    assert check_fraction(0, "x") == 0.0
    assert check_fraction(np.float32(1.0), "x") == 1.0


def test_check_positive_int():
    assert check_positive_int(np.int64(3), "rounds") == 3
    with pytest.raises(ValueError, match=r"rounds must be >= 1 \(got 0\)"):
        check_positive_int(0, "rounds")
    with pytest.raises(ValueError, match=r"vog_window must be an integer >= 2 \(got 2.5\)"):
        check_positive_int(2.5, "vog_window", minimum=2)


def test_check_choice_lists_valid():
    with pytest.raises(ValueError, match=r"selection must be one of 'loss', 'loss\+vog' \(got 'x'\)"):
        check_choice("x", "selection", ("loss", "loss+vog"))


def test_check_labels():
    assert check_labels([[1], [2]]).tolist() == [1, 2]
    assert check_labels(np.array([0.0, 2.0])).dtype == np.int64
    with pytest.raises(ValueError, match=r"y must be a 1-D array .*\(2, 2\)"):
        check_labels(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"y must hold integer class labels \(got 0.5\)"):
        check_labels([0.5, 1.0])
    with pytest.raises(ValueError, match=r"y must be >= 0 \(got label -1\)"):
        check_labels([-1, 0])
    with pytest.raises(ValueError, match=r"y_val must lie in \[0, 3\) .*got label 3"):
        check_labels([0, 3], "y_val", n_classes=3)


def test_check_same_length_and_finite():
    with pytest.raises(ValueError, match=r"X and y must have the same length \(got 3 and 2\)"):
        check_same_length(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"X must not contain NaN .*1 non-finite"):
        check_finite_array(np.array([0.0, np.nan]))
    assert check_finite_array(np.ones((2, 2), dtype=np.float64)).dtype == np.float32


def test_check_nonnegative():
    from modal_noisy._validation import check_nonnegative

    assert check_nonnegative(0, "sigma") == 0.0 and check_nonnegative(2, "sigma") == 2.0
    for bad in (-0.5, float("inf"), float("nan"), True, "1"):
        with pytest.raises(ValueError, match=r"sigma must be .*\[0, inf\)"):
            check_nonnegative(bad, "sigma")
