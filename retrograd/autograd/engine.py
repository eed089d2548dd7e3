"""The backward engine: one pass over the graph in reverse topological order.

1. Count, for every node reachable from the roots, how many edges point at it.
2. Start from the roots with their gradients. Pop a ready node, run the hooks on its output
   gradients, call its ``backward``, check each input gradient (count, shape, dtype), sum
   broadcast axes away, and add it into the buffer of the node that produced that input.
   A node is ready when every edge pointing at it has delivered (its count reaches 0).
3. Leaves (``AccumulateGrad``) add the gradient into ``.grad``; ``grad()`` captures it instead.
   A leaf whose ``.grad`` is None takes the gradient array itself when nothing else refers
   to it (as PyTorch does), else a copy (``_owned_by_the_engine``).

No recursion anywhere, so a chain of 100,000 ops backpropagates. Unless ``retain_graph`` is
set, each node frees its saved values right after its backward ran. Observers (anomaly mode
and the tools of ``autograd/observer.py``) are told before and after each node's backward.
"""

import sys

import numpy as np

from retrograd._quiet import enter as quiet_enter
from retrograd._quiet import leave as quiet_leave
from retrograd.autograd.anomaly import add_creation_note
from retrograd.autograd.function import AccumulateGrad, edge_of, guard_double_backward
from retrograd.autograd.hooks import (CALLBACK_QUEUES, POST_ACCUMULATE_HOOKS, run_node_hooks,
                                      run_post_accumulate_hooks, run_tensor_hooks)
from retrograd.autograd.grad_mode import STATE
from retrograd.autograd.observer import notify_backward
from retrograd.dtypes import convert
from retrograd.ops.reduce import wide_sum
from retrograd.tensor import Tensor, make_tensor

__all__ = ["backward", "grad", "sum_to_shape"]


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves of their graph
    (or only of ``inputs``, when given). Non-scalar tensors need their ``grad_tensors``.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> rg.autograd.backward([x * 3, x * x], [rg.tensor([1.0, 1.0]), rg.tensor([1.0, 0.5])])
        >>> x.grad
        tensor([5., 5.])
    """
    tensors, grad_tensors = _as_lists(tensors, grad_tensors)
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        grads = grad(tensors, inputs, grad_tensors, retain_graph, create_graph, allow_unused=True)
        for t, g in zip(inputs, grads):
            if g is not None:
                _accumulate_into_grad(t, g if create_graph else g._data, create_graph)
        return
    roots, root_grads = _roots(tensors, grad_tensors, create_graph, "backward")
    _run(roots, root_grads, _retain(retain_graph, create_graph), create_graph, targets=None)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).
    With ``create_graph=True`` the gradients are themselves differentiable.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor(3.0, requires_grad=True)
        >>> (dx,) = rg.autograd.grad(x ** 3, x, create_graph=True)
        >>> (dxx,) = rg.autograd.grad(dx, x)
        >>> dx.item(), dxx.item()
        (27.0, 18.0)
    """
    outputs, grad_outputs = _as_lists(outputs, grad_outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t._requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    roots, root_grads = _roots(outputs, grad_outputs, create_graph, "grad")
    targets = {}
    for i, t in enumerate(inputs):
        targets.setdefault(edge_of(t), []).append(i)
    captured = _run(roots, root_grads, _retain(retain_graph, create_graph), create_graph, targets)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(i)
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used to compute the "
                               f"outputs; pass allow_unused=True to get None for it")
        result.append(_as_tensor(g) if g is not None else None)
    return tuple(result)


def _retain(retain_graph, create_graph):
    return create_graph if retain_graph is None else retain_graph


def _as_lists(tensors, grads):
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    if grads is None or isinstance(grads, (Tensor, np.ndarray)):
        grads = [grads] * (1 if grads is not None else len(tensors))
    grads = list(grads)
    if len(grads) != len(tensors):
        raise ValueError(f"backward: got {len(grads)} gradients for {len(tensors)} outputs")
    return tensors, grads


def _roots(tensors, grads, create_graph, op):
    """Root edges and their starting gradients, checked against the roots' shapes."""
    edges, values = [], []
    for i, (t, g) in enumerate(zip(tensors, grads)):
        if not t._requires_grad:
            raise RuntimeError(f"{op}: output {i} does not require grad and has no grad_fn "
                               f"(was it computed under no_grad, or from tensors that do not "
                               f"require grad?)")
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(f"{op}: a gradient can be created implicitly only for a scalar "
                                   f"output, but output {i} has shape {t.shape}; pass "
                                   f"gradient= with that shape")
            g = np.ones_like(t._data)
        elif isinstance(g, Tensor):
            g = g if create_graph else g._data
        else:
            g = np.asarray(g, dtype=t._data.dtype)
        if g.shape != t._data.shape:
            raise RuntimeError(f"{op}: gradient of shape {g.shape} does not match output {i} of "
                               f"shape {t.shape}")
        if g.dtype != t._data.dtype:  # like PyTorch, the gradient takes the output's dtype
            g = g.to(t._data.dtype) if isinstance(g, Tensor) else g.astype(t._data.dtype)
        edges.append(edge_of(t))
        values.append(_as_tensor(g) if create_graph else g)
    return edges, values


def _as_tensor(g):
    return g if isinstance(g, Tensor) else make_tensor(g)


def _run(root_edges, root_grads, retain_graph, create_graph, targets):
    """The engine loop. ``targets`` maps (node, output_nr) -> input positions for grad();
    it returns {input position: gradient}."""
    previous = STATE.grad_enabled
    STATE.grad_enabled = create_graph
    token = quiet_enter()  # IEEE results (inf, nan) without NumPy warnings: _quiet.py
    callbacks = []
    CALLBACK_QUEUES.append(callbacks)
    try:
        captured = _loop(root_edges, root_grads, retain_graph, create_graph, targets)
        _run_callbacks(callbacks)
        return captured
    finally:
        CALLBACK_QUEUES.pop()
        quiet_leave(token)
        STATE.grad_enabled = previous


def _run_callbacks(callbacks):
    """The end-of-backward callbacks (hooks.queue_callback), in order; a callback may queue
    more."""
    position = 0
    while position < len(callbacks):
        callbacks[position]()
        position += 1


def _loop(root_edges, root_grads, retain_graph, create_graph, targets):
    root_nodes = list({node: None for node, _ in root_edges})
    deps, to_run = _graph_info(root_nodes, targets)
    buffers = {}
    for (node, nr), g in zip(root_edges, root_grads):
        _add_to_buffer(buffers, node, nr, g)
    ready = [n for n in root_nodes if deps.get(n, 0) == 0]
    captured = {}
    while ready:
        node = ready.pop()
        grads = buffers.pop(node, None)
        if type(node) is AccumulateGrad:
            _leaf(node, grads, targets, captured, create_graph)
            continue
        in_grads = None
        if grads is not None:
            grads = _run_output_hooks(node, grads, create_graph)
            if targets is not None:
                _capture(node, grads, targets, captured)
            if to_run is None or node in to_run:
                in_grads = _call_backward(node, grads, create_graph)
                if not retain_graph:  # only nodes that ran: grad() may leave some for later
                    node._free_saved()
        for i, edge in enumerate(node._edges):
            if edge is None:
                continue
            child = edge[0]
            if in_grads is not None and in_grads[i] is not None:
                _add_to_buffer(buffers, child, edge[1], in_grads[i])
            deps[child] -= 1
            if deps[child] == 0:
                ready.append(child)
        in_grads = None   # the buffers alone hold the gradients now (_owned_by_the_engine)
    return captured


def _graph_info(root_nodes, targets):
    """Edge counts of every reachable node, and (for grad()) the nodes whose backward must
    run because some target lies below them. Iterative post-order DFS."""
    deps = {}
    visited = set(root_nodes)
    order = []
    for root in root_nodes:
        stack = [(root, iter(root._edges))]
        while stack:
            node, children = stack[-1]
            for edge in children:
                if edge is None:
                    continue
                child = edge[0]
                deps[child] = deps.get(child, 0) + 1
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child._edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    if targets is None:
        return deps, None
    target_nodes = {node for node, _ in targets}
    to_run = set()
    for node in order:  # children come before parents in post-order
        if any(e is not None and (e[0] in target_nodes or e[0] in to_run) for e in node._edges):
            to_run.add(node)
    return deps, to_run


def _n_outputs(node):
    meta = getattr(node, "_output_meta", None)
    return len(meta) if meta is not None else 1


def _add_to_buffer(buffers, node, output_nr, g):
    slots = buffers.get(node)
    if slots is None:
        slots = buffers[node] = [None] * _n_outputs(node)
    current = slots[output_nr]
    slots[output_nr] = g if current is None else current + g


def _first_item_references(holder):
    """sys.getrefcount of holder[0] as seen from here: the holder's reference, this frame's
    local and the call's argument."""
    value = holder[0]
    return sys.getrefcount(value)


# calibrated on an array that only its list refers to, through the same function: an
# interpreter that counts references on its stack differently shifts both counts alike
_SOLE_REFERENCE = _first_item_references([np.empty(0)])


def _base_references(view):
    """sys.getrefcount of view.base as seen from here (the view's reference, this frame's
    local and the call's argument)."""
    base = view.base
    return sys.getrefcount(base)


_SOLE_BASE_REFERENCE = _base_references(np.empty(2).reshape(1, 2))


def _covers_its_base(view):
    """Whether view is a reshape of all of an array that owns its memory."""
    base = view.base
    return type(base) is np.ndarray and base.base is None and base.nbytes == view.nbytes


def _owned_by_the_engine(grads):
    """Whether grads[0], an array, is referred to by the engine's buffer alone and its memory
    by it alone (it owns its memory, or it is a reshape covering the whole of an array that
    nothing else refers to): no other array, hook, tool or leaf can see it, so .grad may take
    it instead of a copy (PyTorch steals such a gradient too; a 16 MB copy took ~2 ms)."""
    g = grads[0]
    if type(g) is not np.ndarray or not g.flags.writeable or not g.flags.c_contiguous:
        return False
    if g.base is not None and not (_covers_its_base(g)
                                   and _base_references(g) <= _SOLE_BASE_REFERENCE):
        return False
    del g
    return _first_item_references(grads) <= _SOLE_REFERENCE


def _leaf(node, grads, targets, captured, create_graph):
    """Run the leaf's hooks, then capture (grad()) or accumulate into .grad (backward())."""
    if grads is None or grads[0] is None:
        return
    observers = STATE.backward_observers  # tools watching the backward (autograd/observer.py)
    if observers:
        notify_backward(observers, True, node, grads)
    variable = node.variable
    owned = (targets is None and not create_graph and not observers and not variable._hooks
             and variable._grad is None and _owned_by_the_engine(grads))
    g = grads[0]
    if variable._hooks:
        g = run_tensor_hooks(variable._hooks, g, variable.shape, create_graph, "leaf tensor")
    if targets is not None:
        for position in targets.get((node, 0), ()):
            captured[position] = g
    else:
        if owned:
            variable._grad = make_tensor(g)
        else:
            _accumulate_into_grad(variable, g, create_graph)
        if POST_ACCUMULATE_HOOKS:
            run_post_accumulate_hooks(variable)
    if observers:
        notify_backward(observers, False, node, grads, ())


def _accumulate_into_grad(variable, g, create_graph):
    current = variable._grad
    if create_graph:
        if current is None:
            g = _as_tensor(g)
            # a gradient outside the graph may be the caller's own tensor: later backwards
            # accumulate into .grad in place, so .grad must own its memory
            variable._grad = g if g._requires_grad else make_tensor(g._data.copy())
        else:
            variable._grad = current + g
    elif current is None:
        variable._grad = make_tensor(np.array(g, copy=True, order="K"))
    elif current._requires_grad:
        variable._grad = make_tensor(current._data + g)
    else:
        current._data += g
        current._version[0] += 1


def _run_output_hooks(node, grads, create_graph):
    """Hooks of the node's output tensors, retain_grad(), then the node's pre-hooks."""
    if node._tensor_hooks:
        for nr, hooks in node._tensor_hooks.items():
            if grads[nr] is not None and hooks:
                grads[nr] = run_tensor_hooks(hooks, grads[nr], grads[nr].shape, create_graph,
                                             f"tensor made by {node.name()}")
    if node._retained:
        for nr, ref in node._retained.items():
            t = ref()
            if t is not None and grads[nr] is not None and t.grad_fn is node:
                _accumulate_into_grad(t, grads[nr], create_graph)
    if node._pre_hooks:
        grads = run_node_hooks(node, node._pre_hooks, grads, (), create_graph, "pre-hook")
    return grads


def _capture(node, grads, targets, captured):
    for nr, g in enumerate(grads):
        positions = targets.get((node, nr))
        if positions and g is not None:
            for position in positions:
                captured[position] = g


def _call_backward(node, grads, create_graph):
    """Call node.backward with every output gradient present, and check what comes back."""
    if len(grads) > 1:
        grads = _materialize(node, grads)
    once = create_graph and node.once_differentiable
    raw = [g._data if isinstance(g, Tensor) else g for g in grads] if once else grads
    observers = STATE.backward_observers  # tools watching the backward (autograd/observer.py)
    if observers:
        notify_backward(observers, True, node, grads)
    if node._packed_attributes is not None:
        node._unpack_attributes()
    try:
        result = node.backward(node, *raw)
    except Exception as e:
        add_creation_note(e, node)
        raise
    if type(result) is not tuple:
        result = (result,)
    edges = node._edges
    if len(result) != len(edges):
        raise RuntimeError(f"{node.name()}: backward returned {len(result)} gradients, but the op "
                           f"has {len(edges)} inputs")
    metas = node._input_meta
    checked = []
    for i, g in enumerate(result):
        meta = metas[i]
        if g is None or meta is None:
            checked.append(None)
        elif not create_graph and type(g) is np.ndarray and g.shape == meta[0] \
                and g.dtype == meta[1]:
            checked.append(g)  # the common case: nothing to fix
        else:
            checked.append(_check_input_grad(node, i, g, meta, create_graph))
    if once:
        checked = guard_double_backward(node, grads, checked)
    if node._post_hooks:
        seen = tuple(_as_tensor(g) if g is not None else None for g in grads)
        checked = run_node_hooks(node, node._post_hooks, checked, (seen,), create_graph, "hook")
    if observers:
        notify_backward(observers, False, node, grads, checked)
    return checked


def _materialize(node, grads):
    """Missing gradients of a multi-output node become zeros, like PyTorch (non-differentiable
    outputs included), unless the op opted out with ctx.set_materialize_grads(False)."""
    if all(g is not None for g in grads) or not node.materialize_grads:
        return grads
    return [g if g is not None else np.zeros(meta[0], meta[1])
            for g, meta in zip(grads, node._output_meta)]


def _check_input_grad(node, i, g, meta, create_graph):
    """Shape and dtype of one input gradient: broadcast axes are summed away here, for every
    op; any other mismatch is an error that names the op."""
    shape, dtype = meta
    if create_graph:
        g = _as_tensor(g)
    elif type(g) is not np.ndarray:
        g = np.asarray(g._data if isinstance(g, Tensor) else g)
    if g.shape != shape:
        g = _sum_to_shape(g, shape, node, i)
    if g.dtype != dtype:
        g = g.to(dtype) if create_graph else convert(g, dtype)
    return g


def _sum_to_shape(g, shape, node, i):
    try:
        return sum_to_shape(g, shape)
    except ValueError:
        raise RuntimeError(f"{node.name()}: backward returned a gradient of shape {g.shape} for "
                           f"input {i}, which has shape {shape}") from None


def sum_to_shape(g, shape):
    """Sum g over the axes that broadcasting added or stretched, to get back to ``shape``
    (the one place where broadcasting is undone). Works on arrays and Tensors."""
    lead = len(g.shape) - len(shape)
    if lead < 0:
        raise ValueError(f"sum_to_shape: cannot reduce shape {g.shape} to {shape}")
    stretched = [lead + k for k, s in enumerate(shape) if s == 1 and g.shape[lead + k] != 1]
    if any(s != g.shape[lead + k] for k, s in enumerate(shape) if lead + k not in stretched):
        raise ValueError(f"sum_to_shape: cannot reduce shape {g.shape} to {shape}")
    axes = tuple(range(lead)) + tuple(stretched)
    if axes:
        g = wide_sum(g, axis=axes, keepdims=True)  # bfloat16 accumulates in float32
    return g.reshape(shape)
