"""Finite-difference checks of backward: gradcheck and gradgradcheck (float64 only).

gradcheck compares the analytical Jacobian, built row by row from backward passes, with the
numerical one from central differences, (f(x + eps e_j) - f(x - eps e_j)) / (2 eps), column by
column. ``fast_mode=True`` compares one number instead: <u, J v> for a random cotangent u
and a random direction v, computed both ways; it is cheap enough for large ops.
"""

import numpy as np

from retrograd.autograd import engine
from retrograd.autograd.grad_mode import enable_grad
from retrograd.tensor import Tensor, make_tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """The analytical and numerical gradients disagree."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _differentiable_outputs(outputs):
    return [o for o in _as_tuple(outputs) if isinstance(o, Tensor) and o.is_floating_point()]


def _check_inputs(inputs):
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad")
    for i in diff:
        if inputs[i]._data.dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite "
                             f"differences need float64 inputs")
    return diff


def _flat_outputs(func, inputs):
    outs = _differentiable_outputs(func(*inputs))  # grad mode stays on: func may call grad()
    if not outs:
        return np.zeros(0)
    return np.concatenate([o._data.astype(np.float64).ravel() for o in outs])


def _numerical_jacobian(func, inputs, i, eps):
    """(n_outputs, n_inputs_i) by central differences, one input element at a time."""
    x = inputs[i]._data
    columns = []
    for j in np.ndindex(x.shape):  # row-major, the order of ravel()
        original = x[j]
        x[j] = original + eps
        plus = _flat_outputs(func, inputs)
        x[j] = original - eps
        minus = _flat_outputs(func, inputs)
        x[j] = original
        columns.append((plus - minus) / (2 * eps))
    n_out = _flat_outputs(func, inputs).size
    return np.stack(columns, axis=1) if columns else np.zeros((n_out, 0))


def _analytical_jacobians(func, inputs, diff):
    """One (n_outputs, n_inputs_i) matrix per differentiable input, one backward per row."""
    with enable_grad():
        outs = _differentiable_outputs(func(*inputs))
    sizes = [o._data.size for o in outs]
    jac = [np.zeros((sum(sizes), inputs[i]._data.size)) for i in diff]
    row = 0
    for k, o in enumerate(outs):
        for j in range(sizes[k]):
            if o._requires_grad:
                cotangent = np.zeros(o._data.size, dtype=o._data.dtype)
                cotangent[j] = 1.0
                grads = engine.grad([o], [inputs[i] for i in diff], [cotangent.reshape(o.shape)],
                                    retain_graph=True, allow_unused=True)
                for col, g in enumerate(grads):
                    if g is not None:
                        jac[col][row] = g._data.ravel()
            row += 1
    return jac


def _fail(message, raise_exception):
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradcheck(func, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              fast_mode=False):
    """True when backward agrees with central finite differences for every input that
    requires grad; otherwise raises GradcheckError (or returns False) saying where.
    Inputs that require grad must be float64.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([0.5, -1.0], dtype=rg.float64, requires_grad=True)
        >>> rg.autograd.gradcheck(lambda t: t.tanh() * t, (x,))
        True
    """
    inputs = _as_tuple(inputs)
    diff = _check_inputs(inputs)
    if fast_mode:
        return _fast_check(func, inputs, diff, eps, atol, rtol, raise_exception)
    analytical = _analytical_jacobians(func, inputs, diff)
    for col, i in enumerate(diff):
        numerical = _numerical_jacobian(func, inputs, i, eps)
        if not np.allclose(analytical[col], numerical, rtol=rtol, atol=atol):
            where = tuple(int(k) for k in np.unravel_index(
                np.argmax(np.abs(analytical[col] - numerical)), numerical.shape))
            return _fail(
                f"gradcheck: Jacobian mismatch for input {i} (shape {inputs[i].shape}) at "
                f"(output element, input element) {where}: analytical "
                f"{analytical[col][where]:.10g}, numerical {numerical[where]:.10g}\n"
                f"analytical:\n{analytical[col]}\nnumerical:\n{numerical}", raise_exception)
    return True


def _fast_check(func, inputs, diff, eps, atol, rtol, raise_exception):
    """<u, J v> from finite differences along v versus <J^T u, v> from one backward."""
    rng = np.random.default_rng(0)
    with enable_grad():
        outs = _differentiable_outputs(func(*inputs))
    cotangents = [rng.standard_normal(o.shape) for o in outs]
    used = [(o, u) for o, u in zip(outs, cotangents) if o._requires_grad]
    grads = engine.grad([o for o, _ in used], [inputs[i] for i in diff], [u for _, u in used],
                        allow_unused=True) if used else [None] * len(diff)
    u_flat = np.concatenate([u.ravel() for u in cotangents]) if cotangents else np.zeros(0)
    for col, i in enumerate(diff):
        x = inputs[i]._data
        v = rng.standard_normal(x.shape)
        original = x.copy()
        x += eps * v
        plus = _flat_outputs(func, inputs)
        x[...] = original - eps * v
        minus = _flat_outputs(func, inputs)
        x[...] = original
        numerical = float(u_flat @ ((plus - minus) / (2 * eps)))
        analytical = float(np.sum(grads[col]._data * v)) if grads[col] is not None else 0.0
        if not np.isclose(analytical, numerical, rtol=rtol, atol=atol):
            return _fail(f"gradcheck (fast mode): for input {i} (shape {x.shape}), <u, J v> is "
                         f"{numerical:.10g} by finite differences but {analytical:.10g} by "
                         f"backward", raise_exception)
    return True


def gradgradcheck(func, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, fast_mode=False):
    """gradcheck of the map (inputs, u) -> J(inputs)^T u, i.e. of backward itself, with a
    random cotangent u (float64) unless grad_outputs is given.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([0.5, -1.0], dtype=rg.float64, requires_grad=True)
        >>> rg.autograd.gradgradcheck(lambda t: t.tanh() * t, (x,))
        True
    """
    inputs = _as_tuple(inputs)
    diff = _check_inputs(inputs)
    with enable_grad():
        outs = _differentiable_outputs(func(*inputs))
    rng = np.random.default_rng(1)
    if grad_outputs is None:
        grad_outputs = [make_tensor(rng.standard_normal(o.shape)) for o in outs]
    grad_outputs = [g.detach().requires_grad_(True) for g in _as_tuple(grad_outputs)]
    n = len(inputs)

    def first_derivative(*args):
        ins, cotangents = args[:n], args[n:]
        outputs = [o for o in _differentiable_outputs(func(*ins)) if o._requires_grad]
        grads = engine.grad(outputs, [ins[i] for i in diff], list(cotangents[:len(outputs)]),
                            create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    try:
        return gradcheck(first_derivative, tuple(inputs) + tuple(grad_outputs), eps, atol, rtol,
                         raise_exception, fast_mode)
    except GradcheckError as e:
        raise GradcheckError(f"gradgradcheck: the gradient computed by backward (with "
                             f"create_graph=True) has wrong derivatives; inputs are the "
                             f"function's inputs followed by the cotangents.\n{e}") from None
