"""Running gradient hooks for the engine: hooks of tensors (``Tensor.register_hook``) and of
nodes (``grad_fn.register_prehook`` / ``register_hook``).

Hooks always see Tensors, like PyTorch's, and may return a replacement gradient, which must
keep the shape and dtype of the one it replaces: anything else is an error that names the
hook, the op and the shapes.

Post-accumulate-grad hooks (``Tensor.register_post_accumulate_grad_hook``) run on a leaf after
its gradient was added into ``.grad``; they are kept here, by the tensor's id, rather than on
the tensor, so that tensors (made by every op) carry no extra field for them.

End-of-backward callbacks (``queue_callback``, PyTorch's
``Variable._execution_engine.queue_callback``) run once the engine's pass is over: data
parallelism waits there for its last gradient reductions.
"""

import weakref

import numpy as np

from retrograd.tensor import Tensor, make_tensor

__all__ = ["run_tensor_hooks", "run_node_hooks", "add_post_accumulate_hook",
           "run_post_accumulate_hooks", "POST_ACCUMULATE_HOOKS", "queue_callback",
           "CALLBACK_QUEUES"]

POST_ACCUMULATE_HOOKS = {}   # id(leaf tensor) -> [hook(tensor)], emptied as tensors die
CALLBACK_QUEUES = []         # one list of callbacks per backward pass in progress (nesting)


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


def add_post_accumulate_hook(tensor, hook):
    """Register ``hook(tensor)`` to run after the leaf ``tensor``'s gradient is accumulated;
    returns the list it went into (for a RemovableHandle)."""
    key = id(tensor)
    hooks = POST_ACCUMULATE_HOOKS.get(key)
    if hooks is None:
        hooks = POST_ACCUMULATE_HOOKS[key] = []
        weakref.finalize(tensor, POST_ACCUMULATE_HOOKS.pop, key, None)
    hooks.append(hook)
    return hooks


def run_post_accumulate_hooks(variable):
    """The leaf's post-accumulate-grad hooks, in registration order (their results are
    ignored, as in PyTorch)."""
    for hook in list(POST_ACCUMULATE_HOOKS.get(id(variable), ())):
        hook(variable)


def queue_callback(callback):
    """Run ``callback()`` when the backward pass now running ends (after every gradient of
    the pass is accumulated). Only valid inside a backward pass, e.g. from a hook.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.hooks import queue_callback
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> seen = []
        >>> _ = x.register_hook(lambda g: queue_callback(lambda: seen.append(x.grad.sum().item())))
        >>> (x * 3).sum().backward()
        >>> seen
        [6.0]
    """
    if not CALLBACK_QUEUES:
        raise RuntimeError("queue_callback: no backward pass is running; a callback can only "
                           "be queued from inside one (from a hook)")
    CALLBACK_QUEUES[-1].append(callback)
