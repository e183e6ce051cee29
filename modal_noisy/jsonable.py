"""One conversion of run records to strict JSON: reports, journals, settings and benchmark results.

A leaf module (numpy only), so that every layer and the benchmark scripts share it.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Return ``value`` as plain, strict-JSON data (what :func:`json.dumps` writes with ``allow_nan=False``).

    Dicts keep their order with ``str`` keys; tuples, lists, sets (sorted) and numpy arrays become
    lists; numpy scalars become Python numbers; NaN and infinities become ``None`` (JSON has neither);
    paths become strings; a function or class becomes ``"module.qualname"`` (stable across runs,
    unlike its ``repr`` with an address); anything else becomes its ``repr``.

    Parameters
    ----------
    value : object
        A record, a settings mapping, a results tree.

    Returns
    -------
    object
        Built from ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None`` only.
    """
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return [to_jsonable(item) for item in sorted(value, key=repr)]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    return repr(value)
