"""retrograd.nn.utils: helpers around training, as ``torch.nn.utils`` (gradient clipping,
``rnn.pad_sequence``, parameters as one vector, weight and spectral normalization, and
``parametrize`` with ``parametrizations``)."""

from retrograd.nn.utils import rnn  # noqa: F401 - torch.nn.utils.rnn.pad_sequence
from retrograd.nn.utils import parametrizations, parametrize  # noqa: F401
from retrograd.nn.utils.clip_grad import (
    clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm,
)
from retrograd.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters
from retrograd.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm
from retrograd.nn.utils.weight_norm import remove_weight_norm, weight_norm

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "vector_to_parameters", "weight_norm", "remove_weight_norm",
           "spectral_norm", "remove_spectral_norm"]
