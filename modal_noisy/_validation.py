"""Input checks shared by every public entry point.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong kind of object) whose message names the
parameter, the rule and the value received, e.g.
``"mix_ratio must be in [0, 1] (got 1.5)"``. Library code raises; it never uses ``assert``.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "check_choice",
    "check_finite_array",
    "check_finite_input",
    "check_fraction",
    "check_indices",
    "check_labels",
    "check_nonnegative",
    "check_positive_int",
    "check_pred_probs",
    "check_same_length",
]


def _short(value: object) -> str:
    """A repr of ``value`` that stays short enough for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_fraction(
    value: object,
    name: str,
    *,
    low: float = 0.0,
    high: float = 1.0,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float after checking it lies in the interval from ``low`` to ``high``."""
    interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g}{']' if high_inclusive else ')'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in {interval} (got {_short(value)})")
    number = float(value)
    too_low = number < low if low_inclusive else number <= low
    too_high = number > high if high_inclusive else number >= high
    if np.isnan(number) or too_low or too_high:
        raise ValueError(f"{name} must be in {interval} (got {_short(value)})")
    return number


def check_nonnegative(value: object, name: str) -> float:
    """Return ``value`` as a float after checking it is a finite number ``>= 0``."""
    return check_fraction(value, name, high=np.inf, high_inclusive=False)


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum} (got {_short(value)})")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum} (got {int(value)})")
    return int(value)


def check_bool(value: object, name: str) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (numpy's booleans included), not a truthy stand-in."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False (got {_short(value)})")
    return bool(value)


def check_mask(value: object, name: str) -> np.ndarray:
    """A one-dimensional boolean array (0/1 integers are accepted)."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional boolean array (got shape {arr.shape})")
    if arr.dtype != bool:
        if arr.size and not (np.issubdtype(arr.dtype, np.integer) and np.isin(arr, (0, 1)).all()):
            raise ValueError(f"{name} must be a boolean array (got dtype {arr.dtype})")
        arr = arr.astype(bool)
    return arr


def check_choice(value: object, name: str, choices: tuple[str, ...] | list[str]) -> str:
    """Check that ``value`` is one of ``choices``; the message lists the valid ones."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {valid} (got {_short(value)})")
    return value  # type: ignore[return-value]


def check_labels(y: object, name: str = "y", *, n_classes: int | None = None) -> np.ndarray:
    """Return ``y`` as a 1-D int64 array of class indices.

    Parameters
    ----------
    y : array-like
        Integer class labels. A column vector of shape ``(n, 1)`` (the MedMNIST layout) is flattened;
        floats are accepted only when every value is integral.
    name : str
        Parameter name used in error messages.
    n_classes : int, optional
        When given, every label must lie in ``[0, n_classes)``.
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer labels (got shape {arr.shape})")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.bool_) or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{name} must hold integer class labels (got dtype {arr.dtype})")
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0].item()
            raise ValueError(f"{name} must hold integer class labels (got {bad!r})")
    upper_rule = f"lie in [0, {n_classes}) for n_classes={n_classes}"
    return _check_range(arr, name, n_classes, upper_rule, unit="label ")


def check_indices(indices: object, n_samples: int | None, *, unique: bool = False) -> np.ndarray:
    """Return ``indices`` as a 1-D int64 array of valid positions into ``n_samples`` training samples.

    Unlike labels, positions must already be integers; ``unique=True`` also refuses repeats.
    """
    arr = np.asarray(indices)
    if arr.ndim != 1:
        raise ValueError(f"indices must be a 1-D array of positions (got shape {arr.shape})")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"indices must hold integer positions (got dtype {arr.dtype})")
    upper_rule = f"be < the number of training samples {n_samples}"
    arr = _check_range(arr, "indices", n_samples, upper_rule, unit="")
    if unique and np.unique(arr).size != arr.size:
        values, counts = np.unique(arr, return_counts=True)
        raise ValueError(f"indices must be distinct (got {int(values[counts > 1][0])} twice)")
    return arr


def _check_range(arr: np.ndarray, name: str, upper: int | None, upper_rule: str, *, unit: str) -> np.ndarray:
    """Integral ``arr`` as int64, after checking every value is >= 0 and, when ``upper`` is given, below it.

    ``upper_rule`` words the upper bound and ``unit`` precedes the offending value in the message, so
    labels and positions keep their own wording.
    """
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be >= 0 (got {unit}{int(arr.min())})")
    if upper is not None and arr.size and arr.max() >= upper:
        raise ValueError(f"{name} must {upper_rule} (got {unit}{int(arr.max())})")
    return arr


def check_same_length(a: object, b: object, name_a: str = "X", name_b: str = "y") -> int:
    """Check two array-likes have the same first dimension and return it."""
    n_a, n_b = len(a), len(b)  # type: ignore[arg-type]
    if n_a != n_b:
        raise ValueError(f"{name_a} and {name_b} must have the same length (got {n_a} and {n_b})")
    return n_a


def check_finite_array(X: object, name: str = "X") -> np.ndarray:
    """Return ``X`` as a float32 numpy array after checking it holds no NaN or infinity."""
    arr = np.asarray(X)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric (got dtype {arr.dtype})")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must not contain NaN or infinity (got {n_bad} non-finite values)")
    return arr


def check_finite_input(X: object, name: str = "X") -> object:
    """Return ``X`` unchanged after checking a numeric array or tensor holds no NaN or infinity.

    Unlike :func:`check_finite_array` it converts nothing: a torch tensor stays on its device, and
    inputs that are not arrays (a ``Dataset``, a dict of arrays) pass unchecked.
    """
    if isinstance(X, np.ndarray):
        if not np.issubdtype(X.dtype, np.number):
            return X
        n_bad = int(X.size - np.count_nonzero(np.isfinite(X)))
    elif callable(getattr(X, "isfinite", None)) and hasattr(X, "dtype"):  # a torch tensor
        n_bad = int((~X.isfinite()).sum())
    else:
        return X
    if n_bad:
        raise ValueError(f"{name} must not contain NaN or infinity (got {n_bad} non-finite values)")
    return X


def check_pred_probs(pred_probs: object, n_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Return ``(pred_probs as float64, n_classes)`` after checking the shape and finiteness.

    ``pred_probs`` must be 2-D ``(n_samples, n_classes)``; ``n_classes`` defaults to its column count.
    """
    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"pred_probs must have shape (n_samples, n_classes) (got shape {probs.shape})")
    if n_classes is None:
        n_classes = probs.shape[1]
    n_classes = check_positive_int(n_classes, "n_classes")
    if probs.shape[1] != n_classes:
        raise ValueError(f"pred_probs must have n_classes={n_classes} columns (got {probs.shape[1]})")
    if not np.all(np.isfinite(probs)):
        raise ValueError("pred_probs must not contain NaN or infinity")
    return probs, n_classes
