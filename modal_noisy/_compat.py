"""Narrow fixes for defects of modAL-python 0.4.1 on current scikit-learn and pandas.

:func:`apply` runs once when :mod:`modal_noisy` is imported. Each fix checks whether the installed
versions need it and patches only then; :data:`APPLIED` records what was patched. Every fix says which
upstream defect it covers and when it can be dropped.
"""

from __future__ import annotations

import functools
import inspect
import sys

import modAL.batch  # noqa: F401  (imported so that data_vstack is rebound where modAL.batch holds it)
import modAL.models.base as base
import modAL.utils.data as data
import pandas as pd
from modAL.models import learners
from sklearn.utils import check_X_y

__all__ = ["APPLIED", "apply"]

#: Names of the fixes that :func:`apply` installed in this process.
APPLIED: set[str] = set()


def _fix_check_x_y_force_all_finite() -> bool:
    """modAL calls ``check_X_y(..., force_all_finite=...)``, removed in scikit-learn 1.8.

    Upstream: modAL issue #196 (every ``ActiveLearner.fit``/``teach`` raises ``TypeError: check_X_y()
    got an unexpected keyword argument 'force_all_finite'``). The keyword was renamed
    ``ensure_all_finite`` in scikit-learn 1.6. Drop this fix once modAL passes ``ensure_all_finite``.
    """
    if "force_all_finite" in inspect.signature(check_X_y).parameters:
        return False
    if getattr(base.check_X_y, "_modal_noisy_fix", False):
        return True

    @functools.wraps(check_X_y)
    def check_X_y_renamed(*args, force_all_finite=True, **kwargs):
        kwargs.setdefault("ensure_all_finite", force_all_finite)
        return check_X_y(*args, **kwargs)

    check_X_y_renamed._modal_noisy_fix = True  # type: ignore[attr-defined]
    base.check_X_y = check_X_y_renamed
    return True


def _fix_bootstrap_init_not_stored() -> bool:
    """modAL's learners take ``bootstrap_init`` in ``__init__`` but never store it.

    scikit-learn's ``get_params`` reads every ``__init__`` argument back as an attribute, so ``clone``,
    ``repr`` and ``get_params`` of an ``ActiveLearner`` raise ``AttributeError``. We store the value after
    the original ``__init__``. Drop this fix once modAL sets ``self.bootstrap_init``.
    """
    patched = False
    for cls in (learners.ActiveLearner, learners.BayesianOptimizer):
        original = cls.__init__
        if getattr(original, "_modal_noisy_fix", False):
            patched = True
            continue
        if "bootstrap_init" not in inspect.signature(original).parameters:
            continue
        bootstrap_default = inspect.signature(original).parameters["bootstrap_init"].default

        def make_init(original=original, default=bootstrap_default):
            @functools.wraps(original)
            def __init__(self, *args, **kwargs):
                # keep the value whether it came by keyword or by position (4th after self)
                bound = inspect.signature(original).bind(self, *args, **kwargs)
                self.bootstrap_init = bound.arguments.get("bootstrap_init", default)
                original(self, *args, **kwargs)

            __init__._modal_noisy_fix = True  # type: ignore[attr-defined]
            return __init__

        cls.__init__ = make_init()
        patched = True
    return patched


def _fix_dataframe_append() -> bool:
    """modAL's ``data_vstack`` calls ``DataFrame.append``, removed in pandas 2.0.

    Teaching an ``ActiveLearner`` that holds a ``DataFrame`` raises ``AttributeError``. We stack frames
    with ``pandas.concat`` and leave every other input type to modAL. Drop this fix once modAL uses
    ``pd.concat``.
    """
    if hasattr(pd.DataFrame, "append"):
        return False
    original = data.data_vstack
    if getattr(original, "_modal_noisy_fix", False):
        return True

    @functools.wraps(original)
    def data_vstack(blocks):
        if len(blocks) and isinstance(blocks[0], pd.DataFrame):
            return pd.concat(list(blocks))
        return original(blocks)

    data_vstack._modal_noisy_fix = True  # type: ignore[attr-defined]
    # modules imported the function by name, so rebind it wherever it is held
    for name, module in list(sys.modules.items()):
        if name.startswith("modAL") and getattr(module, "data_vstack", None) is original:
            module.data_vstack = data_vstack
    return True


_FIXES = {
    "check_X_y_force_all_finite": _fix_check_x_y_force_all_finite,
    "bootstrap_init_not_stored": _fix_bootstrap_init_not_stored,
    "dataframe_append": _fix_dataframe_append,
}


def apply() -> set[str]:
    """Install the fixes the installed versions need (idempotent) and return their names."""
    for name, fix in _FIXES.items():
        if fix():
            APPLIED.add(name)
    return set(APPLIED)
