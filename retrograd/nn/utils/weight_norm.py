"""Weight normalization, PyTorch's older hook API: ``weight_norm`` and ``remove_weight_norm``.

w = g * v / ||v|| (Salimans & Kingma, 2016): the parameter w of a module is replaced by a
magnitude g (``weight_g``) and a direction v (``weight_v``), and recomputed from them by a
forward pre-hook before every forward, so that the gradients reach g and v through the
formula (composed of differentiable Tensor ops). The norm is taken over every dim but
``dim`` (one g per output channel for dim=0), or over the whole tensor for dim=None.
"""

import warnings

from retrograd import _checks
from retrograd.autograd.grad_mode import no_grad
from retrograd.nn.parameter import Parameter

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm", "norm_except_dim"]


def norm_except_dim(v, pow=2, dim=0):  # noqa: A002 - PyTorch's argument name
    """The ``pow``-norm of v over every dim but ``dim``, kept as size-1 dims (so it
    broadcasts against v); over the whole tensor (0-d) for dim=-1, as PyTorch's
    ``torch.norm_except_dim`` (where -1 means "no dim", not the last one).

    Example:
        >>> import retrograd as rg
        >>> v = rg.tensor([[3.0, 4.0], [0.0, 2.0]])
        >>> norm_except_dim(v, 2, 0).tolist(), round(norm_except_dim(v, 2, -1).item(), 4)
        ([[5.0], [2.0]], 5.3852)
    """
    if dim == -1:
        return v.norm(pow)
    kept = _checks.dim("norm_except_dim", dim, v.ndim)
    others = tuple(d for d in range(v.ndim) if d != kept)
    if not others:               # a 1-D v: the norm of each single entry
        return v.abs()
    return v.norm(pow, dim=others, keepdim=True)


def _weight_norm(v, g, dim):
    """w = v * (g / norm_except_dim(v, 2, dim)): PyTorch's ``torch._weight_norm``."""
    return v * (g / norm_except_dim(v, 2, dim))


class WeightNorm:
    """The forward pre-hook that recomputes ``module.<name>`` = g * v / ||v|| from the
    parameters ``<name>_g`` and ``<name>_v`` before each forward (a plain Tensor attribute,
    part of the graph, not a parameter)."""

    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return _weight_norm(v, g, self.dim)

    @staticmethod
    def apply(module, name, dim):
        for hook in module._forward_pre_hooks:
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same "
                                   f"parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        if name not in module._parameters:
            raise ValueError(f"weight_norm: {name!r} of {type(module).__name__} is not a "
                             f"parameter (got {type(weight).__name__})")
        with no_grad():
            g = norm_except_dim(weight, 2, fn.dim)
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(g))
        module.register_parameter(name + "_v", Parameter(weight.data))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.data))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """Reparametrize ``module.<name>`` as w = g * v / ||v||: the parameter is replaced by
    ``<name>_g`` (the norms, one per slice along ``dim``; a scalar for dim=None) and
    ``<name>_v`` (the direction, w's initial value), and w is recomputed before every
    forward. The state dict holds ``<name>_g`` and ``<name>_v``, as PyTorch's. Warns, as
    PyTorch does, that this API is deprecated in favour of
    ``nn.utils.parametrizations.weight_norm``.

    Args:
        module: the module holding the parameter.
        name: the parameter's name. Default: "weight".
        dim: the dim that keeps one norm per slice (0: per output channel); None for one
            norm over the whole tensor. Default: 0.

    Returns:
        The module, changed in place.

    Example:
        >>> import warnings
        >>> import retrograd as rg
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     layer = rg.nn.utils.weight_norm(rg.nn.Linear(20, 40))
        >>> layer.weight_g.shape, layer.weight_v.shape, list(layer.state_dict())
        ((40, 1), (40, 20), ['bias', 'weight_g', 'weight_v'])
    """
    warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                  "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo weight_norm: ``module.<name>`` becomes a parameter again, holding g * v / ||v||.

    Example:
        >>> import warnings
        >>> import retrograd as rg
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     layer = rg.nn.utils.weight_norm(rg.nn.Linear(2, 3))
        >>> list(rg.nn.utils.remove_weight_norm(layer).state_dict())
        ['bias', 'weight']
    """
    for hook in list(module._forward_pre_hooks):
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            module._forward_pre_hooks.remove(hook)
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
