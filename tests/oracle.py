"""The shared oracle of the test suite: each op case is one call.

``check_op(rg_fn, torch_fn, *inputs)`` runs the same computation in retrograd and in PyTorch
on the same random inputs, and compares output values, shapes and dtypes, then backpropagates
the same random cotangent (never all ones) through both and compares every input gradient.
With ``gradcheck=True`` (the default) it also runs retrograd's float64 finite-difference
gradcheck through the engine.

``check_backward_alone(Op, arrays, attrs)`` tests one Function outside the engine: it calls
``forward`` and ``backward`` directly and compares <c, dy> with <dL/dx, dx> along a random
direction, by central differences.

Inputs are NumPy arrays: floating arrays require grad (unless listed in ``no_grad``); integer
and bool arrays become plain tensors; anything else is passed through unchanged.
"""

import numpy as np
import torch

import retrograd as rg
from retrograd.autograd import gradcheck as rg_gradcheck
from retrograd.autograd.engine import sum_to_shape

__all__ = ["check_op", "check_backward_alone", "randn", "away_from_kinks", "to_torch",
           "GRADCHECK_TOLERANCES"]

# The suite's float64 finite-difference tolerances, for check_op's gradcheck and for every
# direct call: gradcheck(fn, inputs, **GRADCHECK_TOLERANCES), gradgradcheck alike. (The
# functions' own defaults, PyTorch's atol 1e-5 and rtol 1e-3, let an error of 0.1% through,
# and any error at all in Jacobian entries below 1e-5.)
GRADCHECK_TOLERANCES = dict(eps=1e-6, atol=1e-7, rtol=1e-5)

torch.set_num_threads(2)


def randn(*shape, seed=0, low=None):
    """float64 standard normal samples (shifted to be >= low when low is given)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    if low is not None:
        x = np.abs(x) + low
    return x


def away_from_kinks(x, kinks=(0.0,), margin=0.1):
    """Move values that sit within ``margin`` of a kink (relu at 0, abs at 0) away from it,
    so that finite differences do not straddle the kink."""
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        close = np.abs(x - k) < margin
        x[close] = k + np.where(x[close] >= k, margin, -margin)
    return x


def to_torch(x):
    return torch.from_numpy(np.array(x))


def _make_inputs(inputs, no_grad, dtype):
    rg_in, torch_in = [], []
    for i, x in enumerate(inputs):
        if isinstance(x, np.ndarray):
            floating = x.dtype.kind == "f"
            arr = x.astype(dtype) if floating else x
            grad = floating and i not in no_grad
            rg_in.append(rg.tensor(arr, requires_grad=grad))
            torch_in.append(torch.tensor(arr, requires_grad=grad))
        else:
            rg_in.append(x)
            torch_in.append(x)
    return rg_in, torch_in


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _tolerances(dtype, rtol, atol):
    if rtol is not None:
        return rtol, atol
    return (1e-7, 1e-9) if dtype == np.float64 else (1e-4, 1e-5)


def check_op(rg_fn, torch_fn, *inputs, no_grad=(), dtype=np.float64, rtol=None, atol=None,
             gradcheck=True, fast_gradcheck=None, seed=1):
    """Compare rg_fn and torch_fn on the same inputs: outputs, dtypes and every gradient."""
    rtol, atol = _tolerances(dtype, rtol, atol)
    rg_in, torch_in = _make_inputs(inputs, no_grad, dtype)
    rg_out, torch_out = _as_list(rg_fn(*rg_in)), _as_list(torch_fn(*torch_in))
    assert len(rg_out) == len(torch_out), "different number of outputs"
    rng = np.random.default_rng(seed)
    rg_roots, rg_grads, torch_roots, torch_grads = [], [], [], []
    for k, (a, b) in enumerate(zip(rg_out, torch_out)):
        assert tuple(a.shape) == tuple(b.shape), \
            f"output {k}: shape {a.shape} != torch {tuple(b.shape)}"
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1], \
            f"output {k}: dtype {a.dtype} != torch {b.dtype}"
        np.testing.assert_allclose(a.detach().numpy().astype(np.float64),
                                   b.detach().numpy().astype(np.float64), rtol=rtol, atol=atol,
                                   err_msg=f"output {k} differs from torch")
        if b.requires_grad:
            assert a.requires_grad, f"output {k} should require grad"
            cotangent = rng.standard_normal(tuple(b.shape)).astype(b.detach().numpy().dtype)
            rg_roots.append(a)
            rg_grads.append(rg.tensor(cotangent))
            torch_roots.append(b)
            torch_grads.append(torch.tensor(cotangent))
    if torch_roots:
        torch.autograd.backward(torch_roots, torch_grads)
        rg.autograd.backward(rg_roots, rg_grads)
    for i, (a, b) in enumerate(zip(rg_in, torch_in)):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            if b.grad is None:
                assert a.grad is None or not np.any(a.grad.numpy()), f"input {i}: torch has no grad"
                continue
            assert a.grad is not None, f"input {i}: retrograd computed no gradient"
            assert a.grad.shape == tuple(b.grad.shape), f"input {i}: grad shape {a.grad.shape}"
            assert a.grad.dtype == a.dtype, f"input {i}: grad dtype {a.grad.dtype} != {a.dtype}"
            np.testing.assert_allclose(a.grad.numpy().astype(np.float64),
                                       b.grad.numpy().astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=f"gradient of input {i} differs from torch")
    if gradcheck and dtype == np.float64 and torch_roots:
        _gradcheck(rg_fn, inputs, no_grad, fast_gradcheck)
    return rg_out


def _gradcheck(rg_fn, inputs, no_grad, fast):
    rg_in, _ = _make_inputs(inputs, no_grad, np.float64)
    if not any(isinstance(t, rg.Tensor) and t.requires_grad for t in rg_in):
        return
    if fast is None:
        fast = sum(t.numel() for t in rg_in if isinstance(t, rg.Tensor)) > 300
    rg_gradcheck(rg_fn, rg_in, **GRADCHECK_TOLERANCES, fast_mode=fast)


def check_backward_alone(op, arrays, attrs=None, eps=1e-6, rtol=1e-6, seed=2):
    """Call op.forward/op.backward directly (no engine) and check the vector-Jacobian product
    <dL/dx_i, v_i> against central differences of <c, f(x + eps v) - f(x - eps v)> / (2 eps)
    for a random cotangent c and a random direction v_i per floating input."""
    attrs = attrs or {}
    rng = np.random.default_rng(seed)

    def run(xs):
        ctx = op.__new__(op)
        ctx.needs_input_grad = tuple(isinstance(x, np.ndarray) and x.dtype.kind == "f" for x in xs)
        return ctx, op.forward(ctx, *xs, **attrs)

    ctx, out = run(arrays)
    outs = out if isinstance(out, tuple) else (out,)
    cotangents = [rng.standard_normal(np.shape(o)) if np.asarray(o).dtype.kind == "f" else None
                  for o in outs]
    grads = op.backward(ctx, *cotangents)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(arrays), f"{op.__name__}.backward returned {len(grads)} gradients"
    for i, x in enumerate(arrays):
        if not (isinstance(x, np.ndarray) and x.dtype.kind == "f"):
            continue
        v = rng.standard_normal(x.shape)
        plus = [a if k != i else x + eps * v for k, a in enumerate(arrays)]
        minus = [a if k != i else x - eps * v for k, a in enumerate(arrays)]
        f_plus, f_minus = run(plus)[1], run(minus)[1]
        f_plus = f_plus if isinstance(f_plus, tuple) else (f_plus,)
        f_minus = f_minus if isinstance(f_minus, tuple) else (f_minus,)
        numerical = sum(float(np.sum(c * (p - m))) / (2 * eps)
                        for c, p, m in zip(cotangents, f_plus, f_minus) if c is not None)
        g = np.zeros_like(x)
        if grads[i] is not None:
            g = sum_to_shape(np.asarray(grads[i]), x.shape)
        analytical = float(np.sum(g * v))
        assert np.isclose(analytical, numerical, rtol=rtol, atol=1e-8), (
            f"{op.__name__}: input {i}: <grad, v> = {analytical} but finite differences give "
            f"{numerical}")
