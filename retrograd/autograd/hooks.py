"""Running gradient hooks for the engine: hooks of tensors (``Tensor.register_hook``) and of
nodes (``grad_fn.register_prehook`` / ``register_hook``).

Hooks always see Tensors, like PyTorch's, and may return a replacement gradient, which must
keep the shape and dtype of the one it replaces: anything else is an error that names the
hook, the op and the shapes.
"""

import numpy as np

from retrograd.tensor import Tensor, make_tensor

__all__ = ["run_tensor_hooks", "run_node_hooks"]


def _as_tensor(g):
    return g if isinstance(g, Tensor) else make_tensor(g)


def run_tensor_hooks(hooks, g, shape, create_graph, what):
    """hook(grad) -> new grad or None, in registration order; ``what`` names the tensor."""
    for hook in list(hooks):
        result = hook(_as_tensor(g))
        if result is None:
            continue
        dtype = g._data.dtype if isinstance(g, Tensor) else g.dtype
        if not isinstance(result, Tensor) or result.shape != shape or result._data.dtype != dtype:
            got = (f"shape {result.shape} and dtype {result.dtype}" if isinstance(result, Tensor)
                   else f"a {type(result).__name__}")
            raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} on a {what} of shape "
                               f"{shape} and dtype {_as_tensor(g).dtype} returned a gradient of "
                               f"{got}; a hook must return None or a tensor of the same shape "
                               f"and dtype")
        g = result if create_graph else result._data
    return g


def run_node_hooks(node, hooks, current, extra, create_graph, what):
    """Node hooks, hook(grads, *extra), in registration order; each may return replacements
    for ``current`` (a list with None for missing gradients)."""
    for hook in list(hooks):
        result = hook(tuple(_as_tensor(g) if g is not None else None for g in current), *extra)
        if result is not None:
            current = _replacements(node, result, current, create_graph, what)
    return current


def _replacements(node, result, current, create_graph, what):
    result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    if len(result) != len(current):
        raise RuntimeError(f"{node.name()}: a {what} returned {len(result)} gradients, "
                           f"expected {len(current)}")
    replaced = []
    for g, old in zip(result, current):
        if g is not None:
            g = g if isinstance(g, Tensor) else make_tensor(np.asarray(g))
            if old is not None and (g.shape != old.shape or g._data.dtype != old.dtype):
                raise RuntimeError(f"{node.name()}: a {what} returned a gradient of shape "
                                   f"{g.shape} and dtype {g.dtype} where one of shape "
                                   f"{old.shape} and dtype {_as_tensor(old).dtype} was expected")
            g = g if create_graph else g._data
        replaced.append(g)
    return replaced
