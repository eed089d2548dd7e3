"""Worked examples of batch, layer and group normalization (retrograd/ops/norm.py), in its
notation: each normalizes x over a set of axes A (one group: M values), then
y = x_hat * gamma + beta, with

    mu = mean(x, A)     var = mean((x - mu)^2, A)  (biased)     rstd = 1 / sqrt(var + eps)
    x_hat = (x - mu) * rstd

and, with g = dL/dx_hat = dL/dy * gamma, the backward

    dL/dx = rstd * (g - mean(g, A) - x_hat * mean(g * x_hat, A))
    dL/dgamma = sum(dL/dy * x_hat), dL/dbeta = sum(dL/dy), over the axes gamma is broadcast along

The three terms of dL/dx are shown one by one before they are added: the direct path through
x_hat, the path through the mean, and the path through the variance.
"""

import math

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []

_EPS = Option("eps", float, 1e-5, "added to the variance under the square root")


def _shape_text(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def _check_eps(op, eps):
    if not math.isfinite(eps) or eps < 0:
        raise ExplainError(f"explain {op}: eps must be a finite number >= 0, got {eps!r}")


def _parameters(ex, op, x, shape, what):
    """gamma and beta of ``shape`` (given, or drawn as short decimals), checked against x."""
    gamma = ex.input("gamma", shape, low=0.5, high=2, integer=False, aliases=("weight",),
                     doc=f"scale, one per {what}")
    beta = ex.input("beta", shape, low=-1, high=1, integer=False, aliases=("bias",),
                    doc=f"shift, one per {what}")
    for name, value in (("gamma", gamma), ("beta", beta)):
        if value.shape != tuple(shape):
            raise ExplainError(f"explain {op}: {name} has shape {_shape_text(value.shape)}, "
                               f"but x (shape {_shape_text(x.shape)}) needs one value per "
                               f"{what}: shape {_shape_text(shape)}")
    return gamma, beta


def _grad_x_terms(g, x_hat, rstd, mean_g, mean_g_x_hat):
    """The three terms of dL/dx = rstd * (g - mean(g, A) - x_hat * mean(g * x_hat, A)):
    the direct path through x_hat, the path through mu, the path through var."""
    return rstd * g, -rstd * mean_g, -rstd * x_hat * mean_g_x_hat


def _worked(ex, x, grouped, axes, stat_shape, gamma_b, beta_b, eps, affine):
    """The forward and the backward of one normalization, shown step by step.

    x is seen as ``grouped`` (a reshape where each group is one slice over ``axes``);
    statistics print in ``stat_shape``; gamma_b and beta_b broadcast against x; ``affine`` is
    (the axes of x gamma is broadcast along, gamma's shape, those axes in words) for dL/dgamma
    and dL/dbeta."""
    layout = (grouped, axes, stat_shape)
    x_hat_g, rstd = _forward(ex, x, layout, gamma_b, beta_b, eps)
    ex.section("Backward")
    dy = ex.upstream(x.shape, "dL/dy", aliases=("dY", "dy"))
    _affine_gradients(ex, dy, x_hat_g.reshape(x.shape), *affine)
    g = ex.show("g = dL/dx_hat", dy * gamma_b, "dL/dy * gamma")
    _grad_x(ex, g, x_hat_g, rstd, layout)


def _forward(ex, x, layout, gamma_b, beta_b, eps):
    """mu, var, rstd, x_hat and y; returns (x_hat, rstd) in the grouped layout."""
    grouped, axes, stat_shape = layout
    xg = x.reshape(grouped)
    ex.section("Forward")
    mu = xg.mean(axis=axes, keepdims=True)
    ex.show("mu", mu.reshape(stat_shape), "mean(x, A)")
    var = ((xg - mu) ** 2).mean(axis=axes, keepdims=True)
    ex.show("var", var.reshape(stat_shape), "mean((x - mu)^2, A)  (biased: divided by M)")
    rstd = 1.0 / np.sqrt(var + eps)
    ex.show("rstd", rstd.reshape(stat_shape), f"1 / sqrt(var + eps) = 1 / sqrt(var + {eps:g})")
    x_hat_g = (xg - mu) * rstd
    x_hat = ex.show("x_hat", x_hat_g.reshape(x.shape), "(x - mu) * rstd")
    ex.output("y", x_hat * gamma_b + beta_b, "x_hat * gamma + beta")
    return x_hat_g, rstd


def _grad_x(ex, g, x_hat_g, rstd, layout):
    """The group means of g and g * x_hat, the three terms of dL/dx, and their sum."""
    grouped, axes, stat_shape = layout
    gg = g.reshape(grouped)
    mean_g = gg.mean(axis=axes, keepdims=True)
    ex.show("mean(g, A)", mean_g.reshape(stat_shape))
    mean_g_x_hat = (gg * x_hat_g).mean(axis=axes, keepdims=True)
    ex.show("mean(g * x_hat, A)", mean_g_x_hat.reshape(stat_shape))
    ex.say("dL/dx = rstd * (g - mean(g, A) - x_hat * mean(g * x_hat, A)), that is "
           "(1 / (M sigma)) (M g - sum(g, A) - x_hat sum(g * x_hat, A)) with sigma = "
           "sqrt(var + eps); its three terms:")
    terms = [np.broadcast_to(term, gg.shape).reshape(g.shape)
             for term in _grad_x_terms(gg, x_hat_g, rstd, mean_g, mean_g_x_hat)]
    for number, (term, formula, path) in enumerate(zip(
            terms, ("rstd * g", "-rstd * mean(g, A)", "-rstd * x_hat * mean(g * x_hat, A)"),
            ("direct, through x_hat", "through mu", "through var")), 1):
        ex.show(f"term {number}", term, f"{formula}  ({path})")
    ex.gradient("x", terms[0] + terms[1] + terms[2], "term 1 + term 2 + term 3")


def _affine_gradients(ex, dy, x_hat, axes, shape, where):
    ex.gradient("gamma", (dy * x_hat).sum(axis=axes).reshape(shape),
                f"sum(dL/dy * x_hat) over {where}")
    ex.gradient("beta", dy.sum(axis=axes).reshape(shape), f"sum(dL/dy) over {where}")


def _spatial_names(ndim):
    return {0: (), 1: ("L",), 2: ("H", "W")}.get(ndim, tuple(f"D{i}" for i in range(ndim)))


@explains("batch_norm", family="norm", aliases=("batchnorm", "bn", "batch_normalization"),
          summary="batch normalization (training mode): each channel over the batch",
          options=(_EPS,))
def batch_norm(ex, eps):
    from retrograd.nn import functional as F

    _check_eps("batch_norm", eps)
    x = ex.input("x", (4, 2), primary=True, max_ndim=4, integer=False, low=-2, high=2,
                 aliases=("X",), doc="input (N, C) or (N, C, H, W)")
    if x.ndim < 2:
        raise ExplainError(f"explain batch_norm: x has shape {_shape_text(x.shape)}, but batch "
                           f"norm needs (N, C) or (N, C, H, W): a batch of {x.size} samples of "
                           f"one feature is written [[1], [2], ...], shape {x.size}x1")
    m = x.size // x.shape[1]
    if m < 2:
        raise ExplainError(f"explain batch_norm: x (shape {_shape_text(x.shape)}) has {m} "
                           f"value per channel (N * H * W over dimensions 0, 2, ...); the "
                           f"batch statistics need at least 2")
    channels = x.shape[1]
    gamma, beta = _parameters(ex, "batch_norm", x, (channels,), "channel")
    ex.reference(lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta,
                                                     training=True, eps=eps),
                 "x", "gamma", "beta")
    axes = (0,) + tuple(range(2, x.ndim))
    over = ", ".join(("N",) + _spatial_names(x.ndim - 2))
    ex.say(f"Training mode: each channel c is normalized with the statistics of the batch, "
           f"A = ({over}), M = {m} values per channel. (The running statistics an eval-mode "
           f"layer uses are not needed here.)")
    channel = (1, channels) + (1,) * (x.ndim - 2)
    _worked(ex, x, x.shape, axes, (channels,), gamma.reshape(channel), beta.reshape(channel),
            eps, (axes, (channels,), f"A = ({over})"))


@explains("layer_norm", family="norm", aliases=("layernorm", "ln", "layer_normalization"),
          summary="layer normalization: each sample over its last dimension(s)",
          options=(_EPS, Option("dims", int, 1, "how many trailing dimensions to normalize")))
def layer_norm(ex, eps, dims):
    from retrograd.nn import functional as F

    _check_eps("layer_norm", eps)
    x = ex.input("x", (2, 4), primary=True, max_ndim=4, integer=False, low=-2, high=2,
                 aliases=("X",), doc="input (*, D)")
    if not 1 <= dims <= x.ndim:
        raise ExplainError(f"explain layer_norm: dims must be between 1 and the {x.ndim} "
                           f"dimension(s) of x (shape {_shape_text(x.shape)}), got {dims}")
    normalized = x.shape[x.ndim - dims:]
    gamma, beta = _parameters(ex, "layer_norm", x, normalized,
                              f"element of a normalized slice ({_shape_text(normalized)})")
    ex.reference(lambda x, gamma, beta: F.layer_norm(x, normalized, gamma, beta, eps=eps),
                 "x", "gamma", "beta")
    axes = tuple(range(x.ndim - dims, x.ndim))
    leading = tuple(range(x.ndim - dims))
    slices = ("Each slice along the last dimension" if dims == 1 else
              f"Each slice over the last {dims} dimensions (shape {_shape_text(normalized)})")
    ex.say(f"{slices} is one group: A = {'it' if dims == 1 else 'them'}, "
           f"M = {math.prod(normalized)} values; gamma and beta act elementwise on a slice.")
    where = (f"dimension{'s' if len(leading) > 1 else ''} "
             f"{', '.join(map(str, leading))} (every slice)" if leading
             else "no dimension (x is a single slice)")
    _worked(ex, x, x.shape, axes, x.shape[:x.ndim - dims], gamma, beta, eps,
            (leading, normalized, where))


@explains("group_norm", family="norm", aliases=("groupnorm", "gn", "group_normalization"),
          summary="group normalization: each sample's channels in groups",
          options=(_EPS, Option("groups", int, 2, "number of channel groups G")))
def group_norm(ex, eps, groups):
    from retrograd.nn import functional as F

    _check_eps("group_norm", eps)
    if groups < 1:
        raise ExplainError(f"explain group_norm: groups must be >= 1, got {groups}")
    x = ex.input("x", (1, 4, 3), primary=True, max_ndim=4, integer=False, low=-2, high=2,
                 aliases=("X",), doc="input (N, C, *)")
    if x.ndim < 2:
        raise ExplainError(f"explain group_norm: x has shape {_shape_text(x.shape)}, but "
                           f"group norm needs (N, C) or (N, C, *)")
    n, channels = x.shape[:2]
    if channels % groups:
        raise ExplainError(f"explain group_norm: groups={groups} does not divide the "
                           f"{channels} channels of x (dimension 1 of x, shape "
                           f"{_shape_text(x.shape)})")
    gamma, beta = _parameters(ex, "group_norm", x, (channels,), "channel")
    ex.reference(lambda x, gamma, beta: F.group_norm(x, groups, gamma, beta, eps=eps),
                 "x", "gamma", "beta")
    per_group = channels // groups
    spatial = _spatial_names(x.ndim - 2)
    m = per_group * math.prod(x.shape[2:])
    ex.say(f"The {channels} channels form G = {groups} groups of C/G = {per_group}; each "
           f"group of each sample is normalized over A = ({', '.join(('C/G',) + spatial)}), "
           f"M = {m} values. mu, var and rstd are (N, G) = ({n}, {groups}); gamma and beta "
           f"are per channel.")
    grouped = (n, groups, per_group) + x.shape[2:]
    channel = (1, channels) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    _worked(ex, x, grouped, tuple(range(2, len(grouped))), (n, groups), gamma.reshape(channel),
            beta.reshape(channel), eps, (axes, (channels,), f"({', '.join(('N',) + spatial)})"))
