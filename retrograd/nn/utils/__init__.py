"""retrograd.nn.utils: helpers around training, as ``torch.nn.utils`` (gradient clipping,
and ``rnn.pad_sequence``)."""

from retrograd.nn.utils import rnn  # noqa: F401 - torch.nn.utils.rnn.pad_sequence
from retrograd.nn.utils.clip_grad import (
    clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm,
)

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]
