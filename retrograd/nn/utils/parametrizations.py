"""Weight and spectral normalization as parametrizations (``torch.nn.utils.parametrizations``):
the newer API, on ``nn.utils.parametrize``. The state dict holds
``parametrizations.weight.original0`` (g) and ``original1`` (v) for weight_norm,
``parametrizations.weight.original`` and the buffers ``_u``, ``_v`` for spectral_norm.
"""

from retrograd.autograd.grad_mode import no_grad
from retrograd.nn.module import Module
from retrograd.nn.utils import parametrize
from retrograd.nn.utils.spectral_norm import default_dim, normalize_vector, weight_matrix
from retrograd.nn.utils.weight_norm import _weight_norm, norm_except_dim
from retrograd.tensor import Tensor

__all__ = ["weight_norm", "spectral_norm"]


class _WeightNorm(Module):
    """w = g * v / ||v|| (norms over every dim but ``dim``; over all for dim=None), from
    (g, v) = right_inverse(w) = (norm_except_dim(w, 2, dim), w)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """Weight normalization as a parametrization: ``module.<name>`` is computed as
    g * v / ||v|| from ``parametrizations.<name>.original0`` (g, one norm per slice along
    ``dim``) and ``original1`` (v) each time it is read.

    Args:
        module: the module holding the parameter.
        name: the parameter's name. Default: "weight".
        dim: the dim that keeps one norm per slice; None for one norm over the whole
            tensor. Default: 0.

    Returns:
        The module, changed in place (its class is now ``Parametrized<Class>``).

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.utils.parametrizations.weight_norm(rg.nn.Linear(20, 40))
        >>> layer.parametrizations.weight.original0.shape
        (40, 1)
        >>> list(layer.state_dict())
        ['bias', 'parametrizations.weight.original0', 'parametrizations.weight.original1']
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    """w = W / sigma, sigma = u . (W_mat v) from the buffers ``_u``, ``_v``, refined by one
    power iteration per training read (u <- normalize(W_mat v), then v <- normalize(W_mat^T
    u): the newer API's order); 15 iterations at registration. A 1-D weight is normalized
    to unit norm."""

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, "
                             f"{ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = weight_matrix(weight, self.dim)
            h, w = weight_mat.shape
            with no_grad():
                u = weight_mat.new_empty(h).normal_(0, 1)
                v = weight_mat.new_empty(w).normal_(0, 1)
                self.register_buffer("_u", normalize_vector(u, eps))
                self.register_buffer("_v", normalize_vector(v, eps))
            self._power_method(weight_mat, 15)

    def _power_method(self, weight_mat, n_power_iterations):
        with no_grad():
            for _ in range(n_power_iterations):
                self._u.copy_(normalize_vector(weight_mat.mv(self._v), self.eps))
                self._v.copy_(normalize_vector(weight_mat.t().mv(self._u), self.eps))

    def forward(self, weight):
        if weight.ndim == 1:
            return normalize_vector(weight, self.eps)
        weight_mat = weight_matrix(weight, self.dim)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        # copies: the buffers change in place at the next training read
        sigma = self._u.clone().dot(weight_mat.mv(self._v.clone()))
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Spectral normalization as a parametrization: ``module.<name>`` is computed as
    W / sigma(W) from ``parametrizations.<name>.original`` each time it is read, sigma
    estimated by power iteration on the buffers ``_u``, ``_v`` of the parametrization.

    Args:
        module, name, n_power_iterations, eps, dim: as nn.utils.spectral_norm.

    Returns:
        The module, changed in place.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.utils.parametrizations.spectral_norm(rg.nn.Linear(20, 40))
        >>> for key in layer.state_dict():
        ...     print(key)
        bias
        parametrizations.weight.original
        parametrizations.weight.0._u
        parametrizations.weight.0._v
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = default_dim(module)
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
