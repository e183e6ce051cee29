"""A fitted phase-1 estimator saved beside a cleaning journal, so a resumed run skips phase 1.

Phase 1 is the expensive part of a cleaning run (minutes to hours); the journal alone makes a resumed
run retrain it, which gives the same model only because training is deterministic. The snapshot keeps
the fitted estimator itself, keyed by what it was trained on and with: a snapshot whose key does not
match the resumed run (other data, labels or estimator parameters) is ignored and phase 1 retrains.

The file is a :func:`torch.save` pickle written by this library: load only snapshots you wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch

__all__ = ["Phase1Snapshot", "estimator_digest"]


def estimator_digest(estimator: Any) -> str:
    """A hash of the estimator's class and its (deep) parameters that have a stable text form."""
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    stable = {}
    for name, value in sorted(params.items()):
        if name == "verbose" or name.endswith("__verbose"):
            continue  # printing does not change the model
        if value is None or isinstance(value, (bool, int, float, str)):
            stable[name] = value
        elif isinstance(value, type):
            stable[name] = f"{value.__module__}.{value.__qualname__}"
        elif isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            stable[name] = list(value)
        else:
            stable[name] = type(value).__qualname__  # objects: their kind; their settings are deep params
    text = json.dumps({"class": type(estimator).__qualname__, "params": stable}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Phase1Snapshot:
    """The snapshot file ``<journal>.phase1.pt`` and its key.

    Parameters
    ----------
    journal : str or Path
        The cleaning run's journal.
    key : str
        Identifies the phase-1 run (data fingerprint and :func:`estimator_digest`).
    """

    def __init__(self, journal: str | os.PathLike[str], key: str) -> None:
        self.path = Path(f"{os.fspath(journal)}.phase1.pt")
        self.key = key

    def save(self, estimator: Any) -> None:
        """Write the fitted estimator atomically (a crash leaves the old file or none, never half)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            torch.save({"key": self.key, "estimator": estimator}, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.path)

    def load(self) -> Any | None:
        """The saved estimator when the file exists and its key matches, else ``None``."""
        if not self.path.is_file():
            return None
        try:
            stored = torch.load(self.path, map_location=None, weights_only=False)
        except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, AttributeError, ImportError):
            return None  # damaged, or written by other code: it only costs the retraining it would save
        if not isinstance(stored, dict) or stored.get("key") != self.key:
            return None
        return stored.get("estimator")
