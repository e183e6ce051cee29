"""skorch side of modal-noisy: training recipe, callbacks and the co-teaching classifier."""

from modal_noisy.training._accelerated import AcceleratedCoTeachingClassifier
from modal_noisy.training._augment import RandomAugment
from modal_noisy.training._coteaching import CoTeachingClassifier
from modal_noisy.training._noise_rate import NOISE_RATE_RANGE, class_noise_rates, wrong_label_share
from modal_noisy.training._recipe import recommended_net_kwargs
from modal_noisy.training._schedule import CosineLR
from modal_noisy.training._standardize import InputStandardizer
from modal_noisy.training.callbacks import SelectionMonitor, VoGTracker

__all__ = [
    "NOISE_RATE_RANGE",
    "AcceleratedCoTeachingClassifier",
    "CoTeachingClassifier",
    "CosineLR",
    "InputStandardizer",
    "RandomAugment",
    "SelectionMonitor",
    "VoGTracker",
    "class_noise_rates",
    "recommended_net_kwargs",
    "wrong_label_share",
]
