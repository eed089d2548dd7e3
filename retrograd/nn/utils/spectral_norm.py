"""Spectral normalization, PyTorch's older hook API: ``spectral_norm`` and
``remove_spectral_norm``.

w = W / sigma(W) (Miyato et al., 2018), sigma the largest singular value of W seen as a
matrix (dim first, the other dims flattened: (h, w)), estimated by power iteration on two
unit vectors u:(h,) and v:(w,) kept as buffers:

    v <- normalize(W^T u),  u <- normalize(W v)     (n_power_iterations times, no gradient)
    sigma = u . (W v)

A forward pre-hook recomputes ``module.<name>`` before each forward; it iterates only in
training mode (eval reuses the last u, v). u and v are constants for the gradient, as in
PyTorch: dL/dW flows through W / sigma and through sigma = u^T W v (whose gradient is u v^T).
"""

from retrograd.autograd.grad_mode import no_grad
from retrograd.nn.parameter import Parameter

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm", "normalize_vector"]


def normalize_vector(x, eps):
    """x / max(||x||_2, eps): PyTorch's F.normalize(x, dim=0, eps=eps) of a vector."""
    return x / x.norm().clamp_min(eps)


def weight_matrix(weight, dim):
    """weight with ``dim`` first and the other dims flattened: (h, w)."""
    if dim != 0:
        weight = weight.permute(dim, *[d for d in range(weight.ndim) if d != dim])
    return weight.reshape(weight.shape[0], -1)


def default_dim(module):
    """0, or 1 for transposed convolutions (whose weight holds input channels first)."""
    from retrograd.nn.conv import ConvTranspose1d, ConvTranspose2d  # nn imports utils

    return 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d)) else 0


class SpectralNorm:
    """The forward pre-hook that sets ``module.<name>`` = ``<name>_orig`` / sigma, sigma
    estimated from the buffers ``<name>_u`` and ``<name>_v`` (updated in place, one
    power iteration per training forward)."""

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.dim = name, dim
        self.n_power_iterations, self.eps = n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight):
        return weight_matrix(weight, self.dim)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    v.copy_(normalize_vector(weight_mat.t().mv(u), self.eps))
                    u.copy_(normalize_vector(weight_mat.mv(v), self.eps))
            # copies: the buffers change in place at the next forward, the graph keeps these
            u, v = u.clone(), v.clone()
        sigma = u.dot(weight_mat.mv(v))
        return weight / sigma

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name,
                self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        for hook in module._forward_pre_hooks:
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same "
                                   f"parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None "
                             f"or not a parameter of {type(module).__name__}")
        with no_grad():
            h, w = fn.reshape_weight_to_matrix(weight).shape
            u = normalize_vector(weight.new_empty(h).normal_(0, 1), fn.eps)
            v = normalize_vector(weight.new_empty(w).normal_(0, 1), fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        # a plain attribute until the first forward (code that reads module.weight, e.g. an
        # init, still finds it), as in PyTorch
        setattr(module, fn.name, weight.data)
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Reparametrize ``module.<name>`` as W / sigma(W), sigma the largest singular value,
    estimated by power iteration (see the module docstring). The state dict holds
    ``<name>_orig`` (W), ``<name>_u`` and ``<name>_v``, as PyTorch's.

    Args:
        module: the module holding the parameter.
        name: the parameter's name. Default: "weight".
        n_power_iterations: power iterations per training forward. Default: 1.
        eps: the floor of the norms in the normalizations. Default: 1e-12.
        dim: the dim of the output channels: 0, or 1 for ConvTranspose. Default: None.

    Returns:
        The module, changed in place.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.utils.spectral_norm(rg.nn.Linear(20, 40))
        >>> layer.weight_u.shape, layer.weight_v.shape, list(layer.state_dict())
        ((40,), (20,), ['bias', 'weight_orig', 'weight_u', 'weight_v'])
    """
    if dim is None:
        dim = default_dim(module)
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo spectral_norm: ``module.<name>`` becomes a parameter again, holding W / sigma
    with the current u, v (no further iteration).

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.utils.spectral_norm(rg.nn.Linear(2, 3))
        >>> list(rg.nn.utils.remove_spectral_norm(layer).state_dict())
        ['bias', 'weight']
    """
    for hook in list(module._forward_pre_hooks):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            module._forward_pre_hooks.remove(hook)
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")
