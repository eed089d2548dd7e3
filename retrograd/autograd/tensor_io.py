"""Custom Functions written the PyTorch way: forward and backward on Tensors.

retrograd's ops receive and return NumPy arrays (``autograd/function.py``), and so may a
user's own ``Function``. PyTorch's custom Functions are written with Tensor methods instead:

    class MyReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0
            return grad_input

For a Function defined outside retrograd, ``Function.__init_subclass__`` calls ``adapt``, which
reads the bytecode of its forward, backward and setup_context: if they call a method that
Tensors have and NumPy arrays do not (``clamp``, ``clone``, ``mm``, ``t``, ``unsqueeze``,
``new_zeros``, ...) on a local variable other than ctx, or use the retrograd module itself
(``torch.exp(x)``), and call no method only arrays have (``astype``, ``ravel``, ...), the
Function is written on Tensors and is run that way: forward
runs without recording a graph, its inputs are Tensors sharing the input arrays,
``ctx.save_for_backward`` takes Tensors, ``ctx.saved_tensors`` gives Tensors, and backward gets
the output gradients as Tensors and may return Tensors, as in PyTorch. Otherwise it gets
arrays, retrograd's own protocol. The decision is made once, from the code, before any call:
nothing runs twice, and code that would mean something else on an array (``x.repeat``,
``x.view``) is never tried on one.

PyTorch's newer form, ``forward(*args)`` without ctx plus ``setup_context(ctx, inputs,
output)``, is run the same way.
"""

import dis
import types

import numpy as np

from retrograd.autograd.grad_mode import STATE, no_grad
from retrograd.tensor import Tensor, make_tensor

__all__ = ["adapt", "written_on_tensors"]

_METHOD_NAMES = None


def adapt(cls):
    """Run ``cls`` on Tensors when its code is written on Tensors (see the module
    docstring): its own forward and backward are wrapped; a subclass that defines neither
    inherits its parent's."""
    own = {name: cls.__dict__[name].__func__ for name in ("forward", "backward", "setup_context")
           if isinstance(cls.__dict__.get(name), staticmethod)}
    setup = own.get("setup_context")
    # forward has no ctx in PyTorch's newer form (with setup_context); the others always do
    with_ctx = [(f, name != "forward" or setup is None) for name, f in own.items()]
    if not with_ctx or not written_on_tensors(with_ctx):
        return
    if "forward" in own:
        cls.forward = staticmethod(_on_tensors_forward(own["forward"], setup))
    if "backward" in own:
        cls.backward = staticmethod(_on_tensors_backward(own["backward"]))


def written_on_tensors(functions):
    """Whether ``functions`` ((function, takes ctx first) pairs) are written on Tensors: they
    call Tensor-only methods on their locals (ctx aside) or use the retrograd module, and call
    no array-only method."""
    tensor_only, array_only = _method_names()
    used, uses_module = set(), False
    for function, takes_ctx in functions:
        code = function.__code__
        context = code.co_varnames[0] if takes_ctx and code.co_argcount else None
        used |= _methods_called_on_locals(code, context)
        uses_module = uses_module or _uses_retrograd(function)
    return (uses_module or bool(used & tensor_only)) and not used & array_only


def _uses_retrograd(function):
    """Whether the function reads a global or closure variable holding the retrograd module
    or one of its submodules (``torch.exp(x)`` after ``import retrograd as torch``)."""
    code = function.__code__
    values = [function.__globals__.get(name) for name in code.co_names]
    values += [cell.cell_contents for cell in function.__closure__ or ()
               if _filled(cell)]
    return any(isinstance(v, types.ModuleType) and v.__name__.split(".")[0] == "retrograd"
               for v in values)


def _filled(cell):
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises ValueError
    except ValueError:
        return False
    return True


def _methods_called_on_locals(code, context):
    """Attribute names loaded directly off a local variable (not ``context``), in ``code``
    and the code nested in it (comprehensions, lambdas)."""
    names, previous = set(), None
    for instruction in dis.get_instructions(code):
        if (instruction.opname in ("LOAD_ATTR", "LOAD_METHOD") and previous is not None
                and previous.opname.startswith("LOAD_FAST") and previous.argval != context):
            names.add(instruction.argval)
        previous = instruction
    for constant in code.co_consts:
        if hasattr(constant, "co_code"):
            names |= _methods_called_on_locals(constant, context)
    return names


def _method_names():
    global _METHOD_NAMES
    if _METHOD_NAMES is None:
        tensor = {n for n in dir(Tensor) if not n.startswith("_")}
        array = {n for n in dir(np.ndarray) if not n.startswith("_")}
        _METHOD_NAMES = (frozenset(tensor - array), frozenset(array - tensor))
    return _METHOD_NAMES


def _on_tensors_forward(forward, setup_context):
    def run(ctx, *args, **kwargs):
        ctx._tensor_io = True
        tensors = tuple(make_tensor(a) if type(a) is np.ndarray else a for a in args)
        with no_grad():
            out = _call_forward(forward, setup_context, ctx, tensors, kwargs)
        if ctx._to_save is not None:
            ctx._to_save = tuple(_array(v) for v in ctx._to_save)
        return tuple(_array(o) for o in out) if type(out) is tuple else _array(out)

    return _named_like(run, forward)


def _on_tensors_backward(backward):
    def run(ctx, *grads):
        """Output gradients as Tensors (they already are under create_graph); the
        gradients returned as arrays in a plain backward, as Tensors when its graph is
        recorded."""
        ctx._tensor_io = True
        grads = tuple(make_tensor(g) if type(g) is np.ndarray else g for g in grads)
        result = backward(ctx, *grads)
        if STATE.grad_enabled:
            return result
        return tuple(_array(g) for g in result) if type(result) is tuple else _array(result)

    return _named_like(run, backward)


def _named_like(run, original):
    run.__name__, run.__qualname__ = original.__name__, original.__qualname__
    run.__doc__ = original.__doc__
    return run


def _call_forward(forward, setup_context, ctx, args, kwargs):
    if setup_context is None:
        return forward(ctx, *args, **kwargs)
    out = forward(*args, **kwargs)
    setup_context(ctx, args, out)
    return out


def _array(value):
    return value._data if isinstance(value, Tensor) else value
