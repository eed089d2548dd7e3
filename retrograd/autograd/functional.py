"""Higher-level transforms built on backward: vjp, jvp, jacobian, hessian, hvp, vhp.

Each takes ``func`` and ``inputs`` (a tensor or a tuple of tensors) and returns results with
the same structure, like ``torch.autograd.functional``. jvp uses the double-vjp trick: the
vjp u -> J^T u is linear in u, so differentiating <J^T u, v> with respect to u gives J v.
"""

import numpy as np

from retrograd.autograd import engine
from retrograd.autograd.grad_mode import enable_grad
from retrograd.tensor import Tensor, make_tensor

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


def _prepare(inputs, create_graph):
    is_tuple = isinstance(inputs, (tuple, list))
    items = tuple(inputs) if is_tuple else (inputs,)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"autograd.functional: input {i} must be a floating-point Tensor")
    prepared = tuple(t if create_graph and t._requires_grad else t.detach().requires_grad_(True)
                     for t in items)
    return is_tuple, prepared


def _outputs(func, inputs, name):
    with enable_grad():
        out = func(*inputs)
    is_tuple = isinstance(out, (tuple, list))
    outs = tuple(out) if is_tuple else (out,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"{name}: output {i} of func must be a Tensor, got {type(o).__name__}")
    return is_tuple, outs


def _grads(outputs, inputs, cotangents, create_graph):
    """grad() that tolerates outputs independent of the inputs (their gradients are zero)."""
    pairs = [(o, c) for o, c in zip(outputs, cotangents) if o._requires_grad]
    if not pairs:
        return tuple(make_tensor(np.zeros_like(t._data)) for t in inputs)
    grads = engine.grad([o for o, _ in pairs], inputs, [c for _, c in pairs],
                        retain_graph=True, create_graph=create_graph, allow_unused=True)
    return tuple(g if g is not None else make_tensor(np.zeros_like(t._data))
                 for g, t in zip(grads, inputs))


def _vectors(v, like, name, what):
    if v is None:
        if len(like) != 1 or like[0]._data.size != 1:
            raise ValueError(f"{name}: {what} must be given unless the function has a single "
                             f"one-element {'output' if what == 'v' else 'input'}")
        return (make_tensor(np.ones_like(like[0]._data)),)
    items = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(items) != len(like):
        raise ValueError(f"{name}: got {len(items)} vectors for {len(like)} tensors")
    for i, (a, b) in enumerate(zip(items, like)):
        if a.shape != b.shape:
            raise ValueError(f"{name}: vector {i} has shape {a.shape}, expected {b.shape}")
    return items


def _pack(items, is_tuple, create_graph):
    items = tuple(t if create_graph else t.detach() for t in items)
    return items if is_tuple else items[0]


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.functional import vjp
        >>> out, grad = vjp(lambda x: x * x, rg.tensor([1.0, 2.0]), rg.tensor([1.0, 10.0]))
        >>> grad
        tensor([ 2., 40.])
    """
    in_tuple, inputs = _prepare(inputs, create_graph)
    out_tuple, outputs = _outputs(func, inputs, "vjp")
    v = _vectors(v, outputs, "vjp", "v")
    grads = _grads(outputs, inputs, v, create_graph)
    return _pack(outputs, out_tuple, create_graph), _pack(grads, in_tuple, create_graph)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product (by the double-vjp trick).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.functional import jvp
        >>> out, tangent = jvp(lambda x: x * x, rg.tensor([1.0, 2.0]), rg.tensor([1.0, 10.0]))
        >>> tangent
        tensor([ 2., 40.])
    """
    in_tuple, inputs = _prepare(inputs, create_graph)
    out_tuple, outputs = _outputs(func, inputs, "jvp")
    v = _vectors(v, inputs, "jvp", "v")
    with enable_grad():
        dummies = tuple(make_tensor(np.zeros_like(o._data), requires_grad=o.is_floating_point())
                        for o in outputs)
        vjps = _grads(outputs, inputs, dummies, create_graph=True)
        linked = [(g, w) for g, w in zip(vjps, v) if g._requires_grad]
        if linked:
            result = engine.grad([g for g, _ in linked], list(dummies), [w for _, w in linked],
                                 create_graph=create_graph, allow_unused=True)
        else:
            result = (None,) * len(dummies)
    result = tuple(r if r is not None else make_tensor(np.zeros_like(o._data))
                   for r, o in zip(result, outputs))
    return _pack(outputs, out_tuple, create_graph), _pack(result, out_tuple, create_graph)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False):
    """d func(inputs) / d inputs, of shape output.shape + input.shape (nested tuples when
    func or inputs are tuples). One backward pass per output element.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.functional import jacobian
        >>> jacobian(lambda x: x * x, rg.tensor([1.0, 2.0]))
        tensor([[2., 0.],
                [0., 4.]])
    """
    in_tuple, inputs = _prepare(inputs, create_graph)
    out_tuple, outputs = _outputs(func, inputs, "jacobian")
    blocks = []
    for k_out, o in enumerate(outputs):
        rows = [[] for _ in inputs]
        for j in range(o._data.size):
            cotangents = [make_tensor(np.zeros_like(x._data)) for x in outputs]
            cotangents[k_out]._data.reshape(-1)[j] = 1.0
            for k, g in enumerate(_grads(outputs, inputs, cotangents, create_graph)):
                rows[k].append(g)
        blocks.append(tuple(_stack_rows(r, o, x, create_graph) for r, x in zip(rows, inputs)))
    if not in_tuple:
        blocks = [b[0] for b in blocks]
    return tuple(blocks) if out_tuple else blocks[0]


def _stack_rows(rows, output, inp, create_graph):
    from retrograd.creation import stack
    if not rows:
        return make_tensor(np.zeros(output.shape + inp.shape, dtype=inp._data.dtype))
    full = stack(rows) if create_graph else make_tensor(np.stack([r._data for r in rows]))
    return full.reshape(output.shape + inp.shape)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False):
    """Second derivatives of a scalar func: the Jacobian of its gradient (for tuple inputs,
    a tuple of tuples of blocks d2f / dx_i dx_j).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.functional import hessian
        >>> hessian(lambda x: (x ** 3).sum(), rg.tensor([1.0, 2.0]))
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    in_tuple, prepared = _prepare(inputs, create_graph)

    def gradient(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out._data.size != 1:
            raise ValueError("hessian: func must return a single one-element tensor")
        return _grads([out], xs, [make_tensor(np.ones_like(out._data))], create_graph=True)

    result = jacobian(gradient, prepared, create_graph=create_graph)
    if not in_tuple:
        return result[0][0]  # gradient() returns a 1-tuple of a 1-tuple of inputs
    return result


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) for scalar func, as d<grad f, v>/d inputs (one double backward).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.functional import hvp
        >>> value, hv = hvp(lambda x: (x ** 3).sum(), rg.tensor([1.0, 2.0]), rg.tensor([1.0, 1.0]))
        >>> value.item(), hv
        (9.0, tensor([ 6., 12.]))
    """
    in_tuple, inputs = _prepare(inputs, create_graph)
    _, outputs = _outputs(func, inputs, "hvp")
    if len(outputs) != 1 or outputs[0]._data.size != 1:
        raise ValueError("hvp: func must return a single one-element tensor")
    v = _vectors(v, inputs, "hvp", "v")
    with enable_grad():
        grads = _grads(outputs, inputs, [make_tensor(np.ones_like(outputs[0]._data))], True)
        linked = [(g, w) for g, w in zip(grads, v) if g._requires_grad]
        result = _grads([g for g, _ in linked], inputs, [w for _, w in linked], create_graph) \
            if linked else tuple(make_tensor(np.zeros_like(x._data)) for x in inputs)
    return _pack(outputs, False, create_graph), _pack(result, in_tuple, create_graph)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H); equal to hvp because the Hessian is symmetric.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.functional import vhp
        >>> vhp(lambda x: (x ** 3).sum(), rg.tensor([1.0, 2.0]), rg.tensor([1.0, 1.0]))[1]
        tensor([ 6., 12.])
    """
    return hvp(func, inputs, v, create_graph, strict)
