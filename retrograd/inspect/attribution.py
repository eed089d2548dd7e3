"""Attribution: which pixels (or which places in a layer) a class score depends on.

Every method is a gradient of the target class's score y_c, the model's output before any
softmax, taken by ``retrograd.autograd.grad``:

- ``saliency``: |dy_c/dx| (Simonyan et al. 2014), the largest over an image's channels.
- ``smooth_grad``: the mean of dy_c/dx over copies x + N(0, sigma^2) (Smilkov et al. 2017).
- ``integrated_gradients``: (x - x') * integral_0^1 dy_c/dx(x' + a (x - x')) da (Sundararajan et
  al. 2017), by the trapezoid rule, with the completeness gap
  delta = sum(attributions) - (y_c(x) - y_c(x')).
- ``grad_cam``: ReLU(sum_k alpha_k A_k), alpha_k = mean over positions of dy_c/dA_k (Selvaraju
  et al. 2017), for a conv layer's activations A, or for a ViT's patch tokens laid on the
  model's own patch grid; upsampled (bilinear) to the image and scaled to [0, 1].

How the model is run. In eval mode (BatchNorm's running statistics, no dropout), so that every
row of a batch is computed on its own: that is what lets the path steps of integrated gradients
and the noisy copies of SmoothGrad share one batch. Its parameters' requires_grad is switched
off, so no parameter gradient is computed or stored. Both are restored afterwards. ``target``
is a class index, one index per input, or None for the model's predicted class.

    >>> import retrograd as rg
    >>> from retrograd import nn
    >>> _ = rg.manual_seed(0)
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
    ...                       nn.Linear(4 * 8 * 8, 3))
    >>> x = rg.randn(2, 1, 8, 8)
    >>> saliency(model, x, target=2).shape                 # |grad|, max over channels
    (2, 8, 8)
    >>> attributions, delta = integrated_gradients(model, x, target=[0, 1])
    >>> attributions.shape, bool((delta.abs() < 1e-3).all())
    ((2, 1, 8, 8), True)
    >>> cam = grad_cam(model, x, target=0)
    >>> cam.layer, cam.heatmap.shape, cam.coarse.shape
    ('0', (2, 8, 8), (2, 8, 8))
"""

import contextlib
import dataclasses
import os
import tempfile
from typing import NamedTuple

import numpy as np

from retrograd import _checks
from retrograd import random as _random
from retrograd.autograd.engine import grad
from retrograd.autograd.grad_mode import enable_grad, no_grad
from retrograd.creation import from_numpy
from retrograd.nn.conv import Conv2d
from retrograd.nn.module import Module
from retrograd.nn.transformer import TransformerEncoderLayer
from retrograd.tensor import Tensor

__all__ = ["saliency", "smooth_grad", "integrated_gradients", "IntegratedGradients",
           "grad_cam", "GradCAM", "attribution_section"]

_SHOWN_LAYERS = 16          # an error lists at most this many layer paths


# ----------------------------------------------------------------------------- gradient methods

def saliency(model, x, target=None, reduce="max"):
    """The gradient of the target class's score with respect to the input.

    Args:
        model: a Module returning class scores (N, classes).
        x: a batch of inputs (N, ...), a Tensor or an array.
        target: a class index, one index per input, or None (the predicted class).
        reduce: "max" (default, Simonyan et al.) or "mean" of |dy_c/dx| over the channels of
            image inputs (N, C, H, W) -> (N, H, W); other inputs give |dy_c/dx|, their shape.
            None gives the signed gradient dy_c/dx itself, x's shape.

    Returns: a Tensor (no grad) of the shape given by ``reduce``.
    """
    data = _input_array("saliency", model, x)
    _check_reduce("saliency", reduce)
    with _observing(model):
        rows = _resolve_target("saliency", model, data, target)
        grads, _ = _input_gradients("saliency", model, data, rows)
    return from_numpy(_reduce_channels(grads, reduce))


def smooth_grad(model, x, target=None, samples=25, noise=0.15, reduce="max", generator=None,
                batch_size=None):
    """SmoothGrad: the gradient of the target score averaged over noisy copies of each input.

    grad = mean over s of dy_c/dx (x + e_s), e_s ~ N(0, sigma^2), sigma = noise * (max(x) -
    min(x)) per input (Smilkov et al.'s "noise level"; they suggest 10-20%). The signed
    gradients are averaged, then ``reduce`` is applied as in ``saliency``, so that with
    noise=0 the result is the saliency map.

    Args:
        model, x, target, reduce: as in ``saliency``.
        samples: noisy copies per input. Default: 25.
        noise: sigma as a fraction of each input's range of values. Default: 0.15.
        generator: where the noise comes from: None (retrograd's generator, seeded by
            ``retrograd.manual_seed``), an int seed, or a NumPy Generator.
        batch_size: rows per forward pass (the samples * N copies are split); None: all at once.
    """
    data = _input_array("smooth_grad", model, x)
    _check_reduce("smooth_grad", reduce)
    samples = _checks.positive_int("smooth_grad", "samples", samples)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"smooth_grad: noise must be a finite number >= 0, got {noise}")
    rng = _rng("smooth_grad", generator)
    spread = np.ptp(data.reshape(len(data), -1), axis=1).reshape((-1,) + (1,) * (data.ndim - 1))
    noisy = data[None] + (noise * spread) * rng.standard_normal((samples,) + data.shape)
    noisy = noisy.astype(data.dtype).reshape((-1,) + data.shape[1:])
    with _observing(model):
        rows = _resolve_target("smooth_grad", model, data, target)
        grads, _ = _input_gradients("smooth_grad", model, noisy, np.tile(rows, samples),
                                    batch_size)
    mean = grads.reshape((samples,) + data.shape).mean(0, dtype=np.float64).astype(data.dtype)
    return from_numpy(_reduce_channels(mean, reduce))


class IntegratedGradients(NamedTuple):
    """What ``integrated_gradients`` returns; unpacks as Captum's (attributions, delta).

    attributions: a Tensor of x's shape. delta: a float64 Tensor (N,), the completeness gap
    sum(attributions[i]) - (y_c(x_i) - y_c(baseline_i)): the integration error."""

    attributions: Tensor
    delta: Tensor


def integrated_gradients(model, x, target=None, baseline=None, steps=64, batch_size=None,
                         return_convergence_delta=True, method="adaptive"):
    """Integrated gradients along the straight path from ``baseline`` to ``x``.

    attr = (x - x') * integral_0^1 dy_c/dx(x' + a (x - x')) da, by the trapezoid rule over
    ``steps`` intervals of the path (steps + 1 gradients per input; the end points also give
    y_c(x') and y_c(x) for the delta). ``method="uniform"``: equal intervals.
    ``method="adaptive"`` (default): the same number of gradients, placed where they are
    needed. In a ReLU network the gradient along the path jumps where a unit switches, and a
    trapezoid interval that straddles a jump is wrong by up to the jump's size times its width,
    which shrinks only as 1/steps. Each interval's error is known exactly, since
    y(b) - y(a) is what the interval's trapezoid should give: starting from steps / 4 equal
    intervals, the intervals with the largest error are halved, in three rounds, until there
    are ``steps``. Measured on the digits ResNet with 64 steps (32 test images): the summed
    |delta| falls from 0.22% to 0.13% of the summed |y(x) - y(x')|, the worst image's from
    3.1% to 2.3% (an image whose score moves by only 0.06, through many switching units).

    Args:
        model, x, target: as in ``saliency``.
        baseline: x' (an array or Tensor broadcastable to x, or a number). Default: zeros.
        steps: intervals of the trapezoid rule, per input. Default: 64.
        batch_size: rows per forward pass; None: all the points of a round at once.
        return_convergence_delta: return (attributions, delta) as an IntegratedGradients
            (default), or only the attributions.
        method: "adaptive" (default) or "uniform".
    """
    data = _input_array("integrated_gradients", model, x)
    steps = _checks.positive_int("integrated_gradients", "steps", steps)
    if method not in ("adaptive", "uniform"):
        raise ValueError(f"integrated_gradients: method must be 'adaptive' or 'uniform', got "
                         f"{method!r}")
    start = _baseline("integrated_gradients", baseline, data)
    with _observing(model):
        rows = _resolve_target("integrated_gradients", model, data, target)
        path = _Path(model, data, start, rows, batch_size)
        first = steps if method == "uniform" else max(1, steps // 4)
        path.add([np.linspace(0.0, 1.0, first + 1)] * len(data))
        for remaining in _rounds(steps - first):
            path.add([path.worst_midpoints(i, remaining) for i in range(len(data))])
    attributions, gap = path.integral()
    delta = attributions.reshape(len(data), -1).sum(1) - gap
    attributions = from_numpy(attributions.astype(data.dtype))
    if not return_convergence_delta:
        return attributions
    return IntegratedGradients(attributions, from_numpy(delta))


def _rounds(extra, count=3):
    """How many intervals each of ``count`` refinement rounds adds, ``extra`` in all."""
    return [n for n in (extra // count + (k < extra % count) for k in range(count)) if n]


class _Path:
    """The points of integrated gradients' paths, per input: {alpha: (gradient, score)};
    ``start``: the baseline, broadcast to the inputs' shape."""

    def __init__(self, model, data, start, rows, batch_size):
        self.model, self.data, self.start, self.rows = model, data, start, rows
        self.batch_size = batch_size
        self.points = [{} for _ in range(len(data))]

    def add(self, alphas):
        """Compute the gradients and scores at ``alphas[i]`` (an array) of each input i, as
        one batch."""
        owners = np.concatenate([np.full(len(a), i) for i, a in enumerate(alphas)])
        where = np.concatenate(alphas).reshape((-1,) + (1,) * (self.data.ndim - 1))
        start = self.start[owners]
        path = (start + where * (self.data[owners] - start)).astype(self.data.dtype)
        grads, scores = _input_gradients("integrated_gradients", self.model, path,
                                         self.rows[owners], self.batch_size)
        for k, (i, alpha) in enumerate(zip(owners, np.concatenate(alphas))):
            self.points[i][float(alpha)] = (grads[k].astype(np.float64), float(scores[k]))

    def _intervals(self, i):
        """(a, b, trapezoid's attributions over [a, b], its error) for input i's intervals."""
        step = (self.data[i] - self.start[i]).astype(np.float64)
        alphas = sorted(self.points[i])
        found = []
        for a, b in zip(alphas, alphas[1:]):
            (ga, ya), (gb, yb) = self.points[i][a], self.points[i][b]
            part = (b - a) * 0.5 * (ga + gb) * step
            found.append((a, b, part, abs(part.sum() - (yb - ya))))
        return found

    def worst_midpoints(self, i, count):
        """The midpoints of input i's ``count`` intervals of largest error."""
        worst = sorted(self._intervals(i), key=lambda t: -t[3])[:count]
        return np.array([(a + b) / 2 for a, b, _, _ in worst])

    def integral(self):
        """(attributions (N, ...), y(x) - y(x') (N,)): the trapezoid sums over the points."""
        attributions = np.stack([sum(part for _, _, part, _ in self._intervals(i))
                                 for i in range(len(self.data))])
        gap = np.array([self.points[i][1.0][1] - self.points[i][0.0][1]
                        for i in range(len(self.data))])
        return attributions, gap


# ----------------------------------------------------------------------------- Grad-CAM

@dataclasses.dataclass(frozen=True)
class GradCAM:
    """What ``grad_cam`` returns.

    heatmap: a Tensor (N, H, W) in [0, 1] (each map divided by its maximum; all zeros when the
        score does not depend on the layer). coarse: the map before upsampling and scaling,
        (N, h, w) on the layer's grid (a conv's output size, or a ViT's patch grid).
    layer: the path of the layer used (as in ``model.named_modules()``).
    target: the class indices used, int64 (N,).
    """

    heatmap: Tensor
    coarse: Tensor
    layer: str
    target: np.ndarray


def grad_cam(model, x, target=None, layer=None):
    """Grad-CAM: a layer's activations weighted by the mean gradient of the target score.

    cam = ReLU(sum_k alpha_k A_k), alpha_k = mean over the layer's positions of dy_c/dA_k,
    upsampled to x's height and width by bilinear interpolation (half-pixel centres, as
    PyTorch's interpolate with align_corners=False) and divided by its maximum.

    Convolutional models: ``layer`` is a Conv2d, given as a module or its path; default: the
    last Conv2d to run in the forward pass. Models with a patch grid (attributes
    ``image_size`` and ``patch_size``, as retrograd.models.ViT): ``layer`` is any module whose
    output is the token sequence (N, T, D); the last (image_size / patch_size)^2 tokens are the
    patches in row-major order (the leading ones, the class token, are dropped) and A_k is
    token feature k on that grid. Default: ``norm1`` of the last encoder block, the tokens its
    attention reads. NOTE: the last block's own output does not work: after it the head reads
    only the class token, so the patch tokens there get no gradient (an error says so).

    Args:
        model, x, target: as in ``saliency``; x is a batch of images (N, C, H, W).
        layer: a module of ``model`` or its path, or None for the default above.
    """
    data = _input_array("grad_cam", model, x)
    if data.ndim != 4:
        raise ValueError(f"grad_cam: expected a batch of images (N, C, H, W), got shape "
                         f"{data.shape}")
    grid = _patch_grid(model)
    candidates = _grad_cam_candidates(model, layer, grid)
    with _observing(model):
        path, rows, activation, gradient = _layer_gradients(model, data, target, candidates)
    if grid is None:
        coarse = _conv_cam(activation, gradient)
    else:
        coarse = _token_cam(path, activation, gradient, grid)
    heatmap = _scale_to_unit(_bilinear_resize(coarse, data.shape[2:]))
    return GradCAM(from_numpy(heatmap.astype(data.dtype)), from_numpy(coarse.astype(data.dtype)),
                   path, rows)


def _conv_cam(activation, gradient):
    """ReLU(sum_k alpha_k A_k) for conv activations (N, K, h, w)."""
    if activation.ndim != 4:
        raise ValueError(f"grad_cam: a conv layer's output should be (N, K, h, w), got "
                         f"{activation.shape}")
    alpha = gradient.mean(axis=(2, 3), dtype=np.float64)
    return np.maximum(np.einsum("nk,nkhw->nhw", alpha, activation), 0.0)


def _token_cam(path, activation, gradient, grid):
    """ReLU(sum_k alpha_k A_k) for tokens (N, T, D) whose last gh * gw are the patches."""
    patches = grid[0] * grid[1]
    if activation.ndim != 3 or activation.shape[1] < patches:
        raise ValueError(f"grad_cam: layer {path!r} outputs shape {activation.shape}, not the "
                         f"token sequence (N, T, D) with T >= {patches} (the model's "
                         f"{grid[0]}x{grid[1]} patch grid); choose a layer whose output is "
                         f"the tokens, e.g. an encoder block or its norm1")
    leading = activation.shape[1] - patches
    if not gradient[:, leading:].any() and gradient[:, :leading].any():
        raise ValueError(f"grad_cam: the patch tokens of layer {path!r} get no gradient from "
                         f"the class score (after this layer only the class token is read); "
                         f"choose an earlier layer, e.g. the last encoder block's norm1 (the "
                         f"default)")
    alpha = gradient[:, leading:].mean(axis=1, dtype=np.float64)
    cam = np.einsum("nd,npd->np", alpha, activation[:, leading:])
    return np.maximum(cam, 0.0).reshape(len(cam), *grid)


def _layer_gradients(model, data, target, candidates):
    """Run the model with hooks on the candidate layers; (path, target rows, activation,
    dy_c/d activation) of the chosen one: the only candidate, or the last one to run."""
    calls = []
    handles = [module.register_forward_hook(
        lambda m, args, out, path=path: calls.append((path, out)))
        for path, module in candidates]
    try:
        x = from_numpy(data.copy()).requires_grad_()    # so that every activation has a graph
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    if not calls:
        names = ", ".join(path for path, _ in candidates)
        raise ValueError(f"grad_cam: layer {names} did not run in the model's forward pass")
    path, activation = calls[-1]
    if not isinstance(activation, Tensor):
        raise ValueError(f"grad_cam: layer {path!r} returned a {type(activation).__name__}, "
                         f"not a Tensor of activations")
    rows = _resolve_target("grad_cam", model, data, target, out)
    score = _pick_scores("grad_cam", out, rows)
    (gradient,) = grad(score.sum(), activation, allow_unused=True)
    gradient = np.zeros(activation.shape) if gradient is None else gradient.numpy()
    return path, rows, activation.detach().numpy(), gradient


def _grad_cam_candidates(model, layer, grid):
    """[(path, module)]: the layer asked for, or the default's candidates."""
    _check_model("grad_cam", model)
    named = list(model.named_modules())
    convs = [(p, m) for p, m in named if isinstance(m, Conv2d)]
    valid = _valid_layers(named, convs, grid)
    if layer is None:
        return _default_layers(model, named, convs, grid)
    if isinstance(layer, Module):
        found = [(p, m) for p, m in named if m is layer]
        if not found:
            raise ValueError(f"grad_cam: the layer given ({type(layer).__name__}) is not a "
                             f"submodule of the model; {valid}")
        path, module = found[0]
    elif isinstance(layer, str):
        modules = dict(named)
        if layer not in modules:
            raise ValueError(f"grad_cam: the model has no layer {layer!r}; {valid}")
        path, module = layer, modules[layer]
    else:
        raise TypeError(f"grad_cam: layer must be a Module, its path (a str) or None, got "
                        f"{type(layer).__name__}")
    if grid is None and not isinstance(module, Conv2d):
        raise ValueError(f"grad_cam: layer {path!r} is a {type(module).__name__}, not a "
                         f"convolution; Grad-CAM needs a Conv2d's activations; {valid}")
    return [(path, module)]


def _default_layers(model, named, convs, grid):
    if grid is None:
        if not convs:
            raise ValueError(f"grad_cam: {type(model).__name__} has no Conv2d layer and no "
                             f"patch grid (image_size and patch_size attributes), so it has no "
                             f"spatial activations to weight")
        return convs                                  # the last one to run is chosen
    blocks = [(p, m) for p, m in named if isinstance(m, TransformerEncoderLayer)]
    if not blocks:
        raise ValueError(f"grad_cam: {type(model).__name__} has a patch grid but no "
                         f"TransformerEncoderLayer; pass layer= (a module whose output is the "
                         f"tokens)")
    path, block = blocks[-1]
    if block.norm_first:
        return [(f"{path}.norm1", block.norm1)]
    if len(blocks) < 2:
        raise ValueError(f"grad_cam: the only encoder block ({path!r}) is post-norm; pass "
                         f"layer= (a module whose output is the tokens its attention reads)")
    return [blocks[-2]]


def _valid_layers(named, convs, grid):
    """The sentence of an error that lists the layers grad_cam accepts."""
    if grid is None:
        paths, kind = [p for p, _ in convs], "conv layers"
    else:
        blocks = [p for p, m in named if isinstance(m, TransformerEncoderLayer)]
        # the last block's own output is left out: only its class token reaches the head
        paths = [q for p in blocks for q in (f"{p}.norm1", p)][:-1]
        kind = "token layers (an encoder block or a module inside one whose output is the tokens)"
    if not paths:
        return f"the model has no {kind}"
    if len(paths) > _SHOWN_LAYERS:
        half = _SHOWN_LAYERS // 2
        paths = paths[:half] + [f"... {len(paths) - 2 * half} more ..."] + paths[-half:]
    return f"its {kind}: {', '.join(paths)}"


def _patch_grid(model):
    """(rows, columns) of a patch model's grid from its image_size and patch_size, or None."""
    size, patch = getattr(model, "image_size", None), getattr(model, "patch_size", None)
    if size is None or patch is None:
        return None
    size, patch = np.broadcast_to(size, 2), np.broadcast_to(patch, 2)
    return int(size[0]) // int(patch[0]), int(size[1]) // int(patch[1])


def _bilinear_resize(maps, size):
    """(N, h, w) -> (N, H, W) by bilinear interpolation with half-pixel centres (PyTorch's
    interpolate(mode='bilinear', align_corners=False))."""
    rows, cols = _interpolation_matrix(maps.shape[1], size[0]), \
        _interpolation_matrix(maps.shape[2], size[1])
    return np.einsum("Hh,nhw,Ww->nHW", rows, maps, cols)


def _interpolation_matrix(n_in, n_out):
    """(n_out, n_in): row i weighs the two inputs around source coordinate (i + 0.5) n_in /
    n_out - 0.5, clamped at 0 as PyTorch does."""
    source = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = source - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def _scale_to_unit(maps):
    """Each map divided by its maximum (maps are >= 0); an all-zero map stays zero."""
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


# ----------------------------------------------------------------------------- the run report

def attribution_section(model, images, target=None, labels=None, path=None, layer=None,
                        title="Attribution: saliency and Grad-CAM"):
    """A report Section showing, for each image, the image, its saliency map and (when the
    model has a conv layer or a patch grid) its Grad-CAM map over it.

    Args:
        model: the classifier. images: a few images (N, C, H, W); 4 to 8 read well.
        target: the classes to explain; None: the predicted ones.
        labels: the true labels, shown in the column titles when given.
        path: where to keep the PNG (e.g. the run folder's attribution.png); None: not kept.
        layer: the Grad-CAM layer (see ``grad_cam``). title: the section's title.

    Returns a Section.figure, or a Section.html saying why there is no figure when
    matplotlib is missing.
    """
    from retrograd.inspect.render import plot_heatmap_overlays
    from retrograd.inspect.report import Section

    data = _input_array("attribution_section", model, images)
    with _observing(model), no_grad():
        out = model(from_numpy(data))
        rows = _resolve_target("attribution_section", model, data, target, out)
    predicted = out.numpy().argmax(axis=1)
    maps = {"saliency": saliency(model, data, rows).numpy()}
    if _has_spatial_layer(model):
        cam = grad_cam(model, data, rows, layer)
        maps[f"Grad-CAM\n({cam.layer})"] = cam.heatmap.numpy()
    titles = [(f"label {int(labels[i])}, " if labels is not None else "")
              + f"pred {predicted[i]}" + (f"\nclass {rows[i]}" if rows[i] != predicted[i] else "")
              for i in range(len(data))]
    with tempfile.TemporaryDirectory() as folder:
        png = path if path is not None else os.path.join(folder, "attribution.png")
        if not plot_heatmap_overlays(data, maps, png, titles=titles):
            return Section.html(title, "<p>No figure: matplotlib (the 'train' extra) is not "
                                       "installed.</p>")
        names = " and ".join(name.replace("\n", " ") for name in maps)
        alt = (f"{len(data)} images, each with {names} heatmaps over it (red: the pixels the "
               f"class score depends on most)")
        return Section.figure(title, png, alt)


def _has_spatial_layer(model):
    return _patch_grid(model) is not None or any(isinstance(m, Conv2d) for m in model.modules())


# ----------------------------------------------------------------------------- shared helpers

@contextlib.contextmanager
def _observing(model):
    """Eval mode, parameters without requires_grad and grad mode on while attributing; the
    modes and flags are restored afterwards."""
    _check_model("attribution", model)
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        with enable_grad():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def _input_gradients(fn, model, inputs, rows, batch_size=None):
    """(dy/dx, y): for each row of ``inputs``, the gradient of its target score y (the class
    ``rows[i]``) with respect to that row, and y; ``batch_size`` rows per forward pass."""
    step = len(inputs) if batch_size is None else _checks.positive_int(fn, "batch_size", batch_size)
    grads, scores = [], []
    for begin in range(0, len(inputs), step):
        x = from_numpy(np.ascontiguousarray(inputs[begin:begin + step])).requires_grad_()
        score = _pick_scores(fn, model(x), rows[begin:begin + step])
        (g,) = grad(score.sum(), x, allow_unused=True)
        grads.append(np.zeros(x.shape, inputs.dtype) if g is None else g.numpy())
        scores.append(score.detach().numpy())
    return np.concatenate(grads), np.concatenate(scores)


def _pick_scores(fn, out, rows):
    """out[i, rows[i]] for class scores ``out`` (N, classes), with the indices checked."""
    if not isinstance(out, Tensor) or out.ndim != 2:
        shape = out.shape if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{fn}: the model should return class scores (N, classes), got {shape}")
    classes = out.shape[1]
    bad = rows[(rows < 0) | (rows >= classes)]
    if bad.size:
        raise ValueError(f"{fn}: target {int(bad[0])} is out of range for a model with "
                         f"{classes} classes (0..{classes - 1})")
    return out[np.arange(len(rows)), rows]


def _resolve_target(fn, model, data, target, out=None):
    """One class index per input (int64 (N,)): ``target`` broadcast and checked, or the
    predicted classes when it is None (from ``out`` when given, else a forward pass)."""
    n = len(data)
    if target is None:
        if out is None:
            with no_grad():
                out = model(from_numpy(data))
        _pick_scores(fn, out, np.zeros(n, np.int64))           # checks the output's shape
        return out.detach().numpy().argmax(axis=1).astype(np.int64)
    rows = np.asarray(target.numpy() if isinstance(target, Tensor) else target)
    if rows.dtype == bool or not np.issubdtype(rows.dtype, np.integer):
        raise TypeError(f"{fn}: target must be an int class index or integer indices, got "
                        f"{rows.dtype} values")
    if rows.ndim == 0:
        rows = np.full(n, rows)
    if rows.shape != (n,):
        raise ValueError(f"{fn}: target must be one class index or one per input ({n}), got "
                         f"shape {rows.shape}")
    if out is not None:
        _pick_scores(fn, out, rows.astype(np.int64))
    return rows.astype(np.int64)


def _input_array(fn, model, x):
    """x as a floating NumPy array (N, ...) in the model's dtype (a copy when cast)."""
    _check_model(fn, model)
    if isinstance(x, Tensor):
        data = x.detach().numpy()
    else:
        data = np.asarray(x)
        if np.issubdtype(data.dtype, np.number):
            data = data.astype(_model_dtype(model), copy=False)
    if not np.issubdtype(data.dtype, np.floating):
        raise TypeError(f"{fn}: expected floating-point inputs, got {data.dtype}")
    if data.ndim < 2 or len(data) == 0:
        raise ValueError(f"{fn}: expected a batch of inputs (N, ...) with N >= 1, got shape "
                         f"{data.shape}; add a batch dimension, e.g. x[None]")
    return data


def _model_dtype(model):
    for p in model.parameters():
        if p.is_floating_point():
            return p.numpy(force=True).dtype
    return np.float32


def _baseline(fn, baseline, data):
    if baseline is None:
        return np.zeros_like(data)
    start = baseline.detach().numpy() if isinstance(baseline, Tensor) else np.asarray(baseline)
    try:
        return np.broadcast_to(start, data.shape).astype(data.dtype)
    except ValueError:
        raise ValueError(f"{fn}: baseline of shape {start.shape} does not broadcast to the "
                         f"inputs' shape {data.shape}") from None


def _reduce_channels(grads, reduce):
    if reduce is None:
        return grads
    size = np.abs(grads)
    if size.ndim != 4:
        return size
    return size.max(axis=1) if reduce == "max" else size.mean(axis=1)


def _check_reduce(fn, reduce):
    if reduce not in ("max", "mean", None):
        raise ValueError(f"{fn}: reduce must be 'max', 'mean' or None, got {reduce!r}")


def _check_model(fn, model):
    if not isinstance(model, Module):
        raise TypeError(f"{fn}: expected a retrograd.nn.Module, got {type(model).__name__}")


def _rng(fn, generator):
    if generator is None:
        return _random.generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{fn}: generator must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(generator).__name__}")
