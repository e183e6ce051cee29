"""modal-noisy: find and fix wrong labels in class-imbalanced image data sets, as a modAL plugin.

Phase 1 trains two networks with co-teaching whose clean-sample selection mixes small loss with small
Variance of Gradients (VoG); phase 2 spends an expert's labelling budget on the samples a query strategy
ranks as most likely mislabelled (Khanal et al., MICCAI 2024).

Public names are imported lazily (PEP 562) so that ``import modal_noisy`` stays cheap and the numpy-only
parts (``noise``, ``scoring``) never pull in torch. The modAL compatibility fixes in
:mod:`modal_noisy._compat` are applied once, here, on import.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from modal_noisy import _compat

try:
    __version__ = version("modal-noisy")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_compat.apply()

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # noise.py
    "make_long_tailed": "noise",
    "inject_label_noise": "noise",
    "NoisyLabels": "noise",
    # cleaning/audit.py
    "draw_audit": "cleaning",
    "audit_noise_rate": "cleaning",
    "NoiseAudit": "cleaning",
    # datasets.py
    "load_digits_long_tailed": "datasets",
    "load_medmnist": "datasets",
    "load_hmnist_csv": "datasets",
    "stratified_split": "datasets",
    "ImageFolderCSV": "datasets",
    # nets.py
    "SmallCNN": "nets",
    "make_backbone": "nets",
    "final_linear": "nets",
    "InputStandardizer": "training",
    "recommended_net_kwargs": "training",
    "CosineLR": "training",
    "RandomAugment": "training",
    # training/
    "CoTeachingClassifier": "training",
    "AcceleratedCoTeachingClassifier": "training",
    "VoGTracker": "training",
    "SelectionMonitor": "training",
    # strategies.py
    "vog_noisy_query": "strategies",
    "loss_noisy_query": "strategies",
    "entropy_query": "strategies",
    "margin_query": "strategies",
    "least_confidence_query": "strategies",
    "bald_query": "strategies",
    "coreset_query": "strategies",
    "cleanlab_query": "strategies",
    "random_query": "strategies",
    "uncertain_mislabel_query": "strategies",
    "training_margin_query": "strategies",
    "informative_mislabel_query": "strategies",
    "adaptive_mislabel_query": "strategies",
    "class_balanced": "strategies",
    "get_strategy": "strategies",
    "STRATEGIES": "strategies",
    "accepted_keywords": "strategies",
    "keywords_for": "strategies",
    # cleaning/
    "ActiveLabelCleaner": "cleaning",
    "SimulatedOracle": "cleaning",
    "NoisyOracle": "cleaning",
    "FileOracle": "cleaning",
    "AwaitingExpertAnswers": "cleaning",
    "CleaningReport": "cleaning",
    # interop/
    "label_issues": "interop",
    # experiment.py
    "Experiment": "experiment",
    "RunConfig": "experiment",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> object:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'modal_noisy' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"modal_noisy.{module_name}"), name)
    globals()[name] = value  # cache: the next lookup skips __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
