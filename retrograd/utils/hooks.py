"""Module backward hooks: the machinery behind ``Module.register_full_backward_hook`` and
``register_full_backward_pre_hook`` (kept apart from ``nn/module.py``, as PyTorch keeps its
``BackwardHook`` in ``torch/utils/hooks.py``).

A module call with backward hooks passes its tensor inputs and outputs through identity
nodes (``_BackwardHookIdentity``). In backward, the node on the outputs sees grad_output
first: the pre-hooks run on it. The node on the inputs sees grad_input last: the hooks run
on it, with the grad_output remembered from the other end, and may replace it.
"""

from retrograd.autograd.cost import Cost
from retrograd.autograd.function import Function
from retrograd.tensor import Tensor, make_tensor

__all__ = ["BackwardHook"]


class _BackwardHookIdentity(Function):
    """Identity on several tensors; its backward reports the gradients flowing through it to
    the module's backward hooks (used around a module's inputs and outputs).

    dL/dx_i = dL/dy_i, or what a hook returns instead. Saves nothing.
    """

    moves_data = "an identity that reports gradients to hooks: no arithmetic"

    @staticmethod
    def forward(ctx, *arrays, state, role):
        ctx.state, ctx.role = state, role
        ctx.set_materialize_grads(False)  # an output that got no gradient is reported as None
        return tuple(arrays) if len(arrays) > 1 else arrays[0]

    @staticmethod
    def backward(ctx, *grads):
        if ctx.role == "output":
            return tuple(ctx.state.output_seen(list(grads)))
        return tuple(ctx.state.input_seen(list(grads)))

    @staticmethod
    def cost(call):
        """Nothing: the outputs are the inputs, the gradients pass through."""
        return Cost(0, 0, f"backward hook identity on {len(call.inputs)} tensors: 0")


class BackwardHook:
    """One module call with backward hooks: wraps its tensor inputs and outputs in
    _BackwardHookIdentity nodes and joins the gradients seen at both ends for the hooks.
    ``*_positions`` are the argument / output positions that were wrapped."""

    def __init__(self, module, n_inputs):
        self.module = module
        self.n_inputs = n_inputs
        self.n_outputs = 1
        self.input_positions = []
        self.output_positions = []
        self.grad_output = None

    def wrap_inputs(self, args):
        self.input_positions = [i for i, a in enumerate(args)
                                if isinstance(a, Tensor) and a.requires_grad]
        return _wrap_positions(args, self.input_positions, self, "input")

    def wrap_outputs(self, output):
        outputs = output if isinstance(output, tuple) else (output,)
        self.n_outputs = len(outputs)
        self.output_positions = [i for i, o in enumerate(outputs)
                                 if isinstance(o, Tensor) and o.requires_grad]
        wrapped = _wrap_positions(outputs, self.output_positions, self, "output")
        return wrapped if isinstance(output, tuple) else wrapped[0]

    def output_seen(self, grads):
        """Backward reached the outputs: run the pre-hooks, remember grad_output."""
        full = _pack_with_none(grads, self.output_positions, self.n_outputs)
        for hook in self.module._backward_pre_hooks:
            result = hook(self.module, full)
            if result is not None:
                full = _checked_hook_result(result, len(full), "pre-hook", "grad_output")
        self.grad_output = full
        if not self.input_positions:
            grad_input = (None,) * self.n_inputs
            for hook in self.module._backward_hooks:
                result = hook(self.module, grad_input, full)
                if result is not None and any(g is not None for g in result):
                    raise RuntimeError(f"{type(self.module).__name__}: a backward hook of a "
                                       f"module whose inputs do not require grad must return "
                                       f"None (there is no grad_input to replace)")
        return [_unwrap(full[i]) for i in self.output_positions]

    def input_seen(self, grads):
        """Backward reached the inputs: run the hooks, which may replace grad_input."""
        grad_input = _pack_with_none(grads, self.input_positions, self.n_inputs)
        for hook in self.module._backward_hooks:
            result = hook(self.module, grad_input, self.grad_output)
            if result is not None:
                grad_input = _checked_hook_result(result, len(grad_input), "hook", "grad_input")
        return [_unwrap(grad_input[i]) for i in self.input_positions]


def _wrap_positions(values, positions, state, role):
    """values with the tensors at ``positions`` replaced by one _BackwardHookIdentity's
    outputs, which share their version counters (an in-place change stays detectable)."""
    if not positions:
        return tuple(values)
    wrapped = _BackwardHookIdentity.apply(*(values[i] for i in positions), state=state,
                                          role=role)
    wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
    values = list(values)
    for i, w in zip(positions, wrapped):
        w._version = values[i]._version
        values[i] = w
    return tuple(values)


def _pack_with_none(grads, positions, n):
    """One entry per position 0..n-1: the gradient (as a Tensor) where there is one."""
    full = [None] * n
    for i, g in zip(positions, grads):
        full[i] = _wrap(g)
    return tuple(full)


def _checked_hook_result(result, n, what, name):
    result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    if len(result) != n:
        raise RuntimeError(f"backward {what} returned {len(result)} values for {name}, "
                           f"expected {n}")
    return tuple(_wrap(g) for g in result)


def _wrap(g):
    if g is None or isinstance(g, Tensor):
        return g
    return make_tensor(g)


def _unwrap(g):
    return g._data if isinstance(g, Tensor) and not g.requires_grad else g
