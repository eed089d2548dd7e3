"""The live check of a worked example: every printed output against retrograd's forward, every
printed gradient against retrograd's autograd and against central finite differences.

With upstream gradients g_k for the outputs y_k, the loss the example differentiates is
L = sum_k sum(g_k * y_k), so dL/dy_k = g_k and autograd's input gradients are the example's
vector-Jacobian products. Finite differences perturb one input element at a time by +-h and
take (L(x + h e_i) - L(x - h e_i)) / 2h, in float64, through the same op. At a kink (ReLU at
0, tied maxima) the loss has no derivative along that coordinate: its left and right
derivatives differ, and the central difference is their average. There finite differences
cannot judge; the element is counted as a kink, the printed value must still equal autograd's
(which follows retrograd's convention, e.g. ReLU'(0) = 0, the first of tied maxima), and the
check says how many kinks it met.
"""

import dataclasses

import numpy as np

__all__ = ["Check", "run_reference", "verify"]

AUTOGRAD_TOLERANCE = 1e-9   # relative to the array's scale: the same formula, reordered
CENTRAL_TOLERANCE = 1e-6    # central differences with h = 1e-6: error O(h^2) + rounding 1e-10
ONE_SIDED_TOLERANCE = 1e-4  # one-sided differences with h = 1e-6: error O(h)
STEP = 1e-6


@dataclasses.dataclass
class Check:
    """The verdict on one printed quantity. ``against`` is "forward" for an output, else
    "autograd" (with the finite-difference verdict beside it)."""
    name: str
    against: str
    max_diff: float
    ok: bool
    fd_diff: float = None
    fd_ok: bool = True
    kinks: int = 0       # elements where the left and right derivatives differ
    note: str = ""
    matches: bool = True  # the printed value equals retrograd's forward / autograd


def _tensors(ex, names, requires_grad):
    import retrograd

    tensors = []
    for name in names:
        item = ex.inputs[name]
        if np.issubdtype(item.value.dtype, np.integer):
            tensors.append(retrograd.tensor(item.value, dtype=retrograd.int64))
        else:
            tensors.append(retrograd.tensor(item.value, dtype=retrograd.float64,
                                            requires_grad=requires_grad and item.differentiable))
    return tensors


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def run_reference(ex, fn, names):
    """Retrograd's op on the example's inputs, with a graph: the output Tensors (the input
    leaves are kept on ``ex._leaves`` for their gradients)."""
    ex._leaves = _tensors(ex, names, requires_grad=True)
    return _as_tuple(fn(*ex._leaves))


def _scale(a):
    return max(1.0, float(np.max(np.abs(a)))) if np.size(a) else 1.0


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if np.size(a) else 0.0


def _loss(ex, fn, names, values):
    """L = sum_k <g_k, y_k> of the op at the inputs ``values`` (name -> array), no graph."""
    import retrograd

    saved = {name: ex.inputs[name].value for name in values}
    try:
        for name, value in values.items():
            ex.inputs[name].value = value
        with retrograd.no_grad():
            outs = _as_tuple(fn(*_tensors(ex, names, requires_grad=False)))
    finally:
        for name, value in saved.items():
            ex.inputs[name].value = value
    return sum(float(np.sum(g * out.numpy())) for (_, g), out in zip(ex.upstreams, outs))


def _finite_differences(ex, fn, names, of, printed):
    """(max |central - printed|, ok, kinks): central differences of L at each element of the
    input ``of``; where they disagree, the one-sided differences are tried."""
    base = ex.inputs[of].value
    worst, kinks, ok = 0.0, 0, True
    tolerance = CENTRAL_TOLERANCE * _scale(printed)
    for i in np.ndindex(base.shape):
        up, down = base.copy(), base.copy()
        up[i] += STEP
        down[i] -= STEP
        l_up, l_down = _loss(ex, fn, names, {of: up}), _loss(ex, fn, names, {of: down})
        central = (l_up - l_down) / (2 * STEP)
        diff = abs(central - printed[i])
        if diff <= tolerance:
            worst = max(worst, diff)
            continue
        l_mid = _loss(ex, fn, names, {of: base})
        right, left = (l_up - l_mid) / STEP, (l_mid - l_down) / STEP
        if abs(right - left) > ONE_SIDED_TOLERANCE * _scale(printed):
            kinks += 1  # not differentiable along this coordinate: autograd's convention rules
        else:
            ok = False
            worst = max(worst, diff)
    return worst, ok, kinks


def verify(ex):
    """Check every printed output and gradient of ``ex``; stores and returns the Checks."""
    import retrograd

    fn, names = ex.reference_fn
    outputs = ex.printed_outputs()
    if len(outputs) != len(ex.reference_outputs) or len(ex.upstreams) != len(outputs):
        raise AssertionError(
            f"explain {ex.op}: {len(outputs)} printed outputs and {len(ex.upstreams)} upstream "
            f"gradients for {len(ex.reference_outputs)} outputs of the reference")
    checks = []
    for step, out in zip(outputs, ex.reference_outputs):
        reference = out.detach().numpy()
        diff = _max_diff(step.value, reference) if step.value.shape == reference.shape else np.inf
        matches = diff <= AUTOGRAD_TOLERANCE * _scale(reference)
        checks.append(Check(step.name, "forward", diff, matches, matches=matches))
    retrograd.autograd.backward(list(ex.reference_outputs),
                                [retrograd.tensor(g, dtype=retrograd.float64)
                                 for _, g in ex.upstreams])
    grads = _reference_grads(ex, names)
    for step in ex.printed_gradients():
        reference = grads.get(step.of)
        if reference is None:  # no path from this input to the output: the gradient is 0
            reference = np.zeros_like(ex.inputs[step.of].value)
        if step.value.shape != reference.shape:
            checks.append(Check(step.name, "autograd", np.inf, False, matches=False,
                                note=f"shape {step.value.shape} != {reference.shape}"))
            continue
        diff = _max_diff(step.value, reference)
        fd_diff, fd_ok, kinks = _finite_differences(ex, fn, names, step.of, step.value)
        matches = diff <= AUTOGRAD_TOLERANCE * _scale(reference)
        checks.append(Check(step.name, "autograd", diff, matches and fd_ok, fd_diff, fd_ok,
                            kinks, matches=matches))
    ex.checks = checks
    return checks


def _reference_grads(ex, names):
    """The autograd gradient of each differentiable input, from the reference run's leaves."""
    grads = {}
    for name, leaf in zip(names, ex._leaves):
        if leaf is not None and leaf.grad is not None:
            grads[name] = leaf.grad.numpy().copy()
    return grads
