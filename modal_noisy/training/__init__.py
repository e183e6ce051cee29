"""skorch side of modal-noisy: training recipe, callbacks and the co-teaching classifier."""

from modal_noisy.training._recipe import recommended_net_kwargs
from modal_noisy.training._schedule import CosineLR
from modal_noisy.training._standardize import InputStandardizer

__all__ = ["CosineLR", "InputStandardizer", "recommended_net_kwargs"]
