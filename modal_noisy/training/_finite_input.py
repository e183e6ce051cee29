"""Inference refuses what training refuses: :class:`FiniteInputMixin`."""

from __future__ import annotations

from typing import Any

import numpy as np

from modal_noisy._validation import check_finite_input

__all__ = ["FiniteInputMixin"]


class FiniteInputMixin:
    """``predict_proba`` (and so ``predict``) refuse NaN or infinite inputs, naming ``X``.

    skorch would return NaN probabilities, and ``predict`` class 0, for such an image: an answer
    that looks like one.
    """

    def predict_proba(self, X: Any) -> np.ndarray:
        check_finite_input(X, "X")
        return super().predict_proba(X)
