"""retrograd.distributions: probability distributions as torch.distributions.

``Categorical(probs=None, logits=None)`` and ``Normal(loc, scale)``: ``sample`` draws from
retrograd's generator (no gradient), ``Normal.rsample`` draws differentiably (the
reparameterization x = loc + eps * scale), and ``log_prob``/``entropy`` are built from Tensor
ops, so gradients flow to the parameters (policy gradients, variational objectives).
"""

from retrograd.distributions.categorical import Categorical
from retrograd.distributions.distribution import Distribution
from retrograd.distributions.normal import Normal

__all__ = ["Distribution", "Categorical", "Normal"]
