"""Every op declares its cost: each Function subclass in the package overrides ``cost``, and
an op whose forward does no arithmetic says why in ``moves_data`` (the list below is the
whole set, so a new view or copy op is a decision, not an accident). The counts themselves
are checked against brute-force counts in test_cost_layers.py, test_cost_elementwise.py and
test_cost_reduce_shape.py; tools that meet a user's Function without a cost are tested in
tests/inspect."""

import importlib
import pkgutil

import numpy as np
import pytest

import retrograd
from retrograd.autograd.cost import ArrayInfo, Cost, OpCall, cost_of
from retrograd.autograd.function import Function
from retrograd.autograd.observer import observe
from retrograd.inspect._calls import CallObserver


def _package_functions():
    for module in pkgutil.walk_packages(retrograd.__path__, "retrograd."):
        if not module.name.endswith("__main__"):   # running the CLI is not an import
            importlib.import_module(module.name)
    found, stack = [], [Function]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            # the package's own ops; the profiler's timing subclasses inherit their op's cost
            if sub.__module__.startswith("retrograd.") and \
                    not sub.__module__.startswith("retrograd.inspect"):
                found.append(sub)
    return sorted(set(found), key=lambda f: (f.__module__, f.__qualname__))


FUNCTIONS = _package_functions()
MOVES_DATA = {
    "Cast", "Reshape", "Permute", "Expand", "Index", "IndexPut", "Cat", "Stack", "Clone",
    "Unbind", "Split", "Embedding", "_BackwardHookIdentity", "_DoubleBackwardError",
    "ConstantPad", "IndexPad", "UpsampleNearest",   # padding, nearest interpolation: copies
    "Flip", "Roll", "Diagonal", "DiagEmbed", "Unfold", "Scatter",   # ops/indexing.py, scatter.py
    "Im2col", "MaxUnpool2d",   # ops/fold.py (unfold's copies), ops/unpool.py (placed values)
}


def test_the_package_has_its_ops():
    names = {f.__name__ for f in FUNCTIONS}
    assert {"MatMul", "Conv2d", "ScaledDotProductAttention", "Add", "Sum", "Reshape"} <= names


@pytest.mark.parametrize("op", FUNCTIONS, ids=lambda f: f.__qualname__)
def test_every_op_declares_its_cost(op):
    assert op.cost is not Function.cost, f"{op.__qualname__} declares no cost"
    assert op.cost.__doc__, f"{op.__qualname__}.cost has no docstring stating its formula"


@pytest.mark.parametrize("op", FUNCTIONS, ids=lambda f: f.__qualname__)
def test_moves_data_is_declared_exactly_by_ops_without_arithmetic(op):
    if op.__name__ in MOVES_DATA:
        assert isinstance(op.moves_data, str) and op.moves_data, op.__qualname__
    else:
        assert op.moves_data is None, f"{op.__qualname__} says it moves data: {op.moves_data}"


def test_a_function_without_a_cost_is_named():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            return x ** 3

    call = OpCall(Cube, (ArrayInfo((2,), np.dtype("float64")),), {},
                  (ArrayInfo((2,), np.dtype("float64")),), (True,))
    with pytest.raises(NotImplementedError, match="Cube declares no cost"):
        cost_of(call)


def test_cost_of_fills_default_bytes():
    class Double(Function):
        @staticmethod
        def cost(call):
            return Cost(call.outputs[0].size, call.outputs[0].size, "double: n")

    f32 = np.dtype("float32")
    call = OpCall(Double, (ArrayInfo((3, 4), f32), 2.0), {}, (ArrayInfo((3, 4), f32),),
                  (True, False), saved_nbytes=8)
    cost = cost_of(call)
    assert (cost.bytes_read, cost.bytes_written) == (48, 48)
    assert (cost.backward_bytes_read, cost.backward_bytes_written) == (48 + 8, 48)
    no_grad = cost_of(OpCall(Double, call.inputs, {}, call.outputs, (False, False)))
    assert (no_grad.backward_bytes_read, no_grad.backward_bytes_written) == (0, 0)


def test_cost_of_rejects_a_cost_that_is_not_a_cost():
    class Wrong(Function):
        @staticmethod
        def cost(call):
            return 12

    call = OpCall(Wrong, (), {}, (ArrayInfo((), np.dtype("float32")),))
    with pytest.raises(TypeError, match="Wrong.cost returned int, expected a Cost"):
        cost_of(call)


def _workload():
    """A training step of a GPT, a ResNet-8, the three recurrent layers and a chain of the
    elementwise and reduction ops, forward and backward."""
    from retrograd.models.gpt import GPT, GPTConfig
    from retrograd.models.resnet import resnet8
    from retrograd.nn import functional as F
    rg = retrograd
    rg.manual_seed(0)
    ids = rg.randint(0, 16, (2, 8))
    gpt = GPT(GPTConfig(vocab_size=16, context=8, n_layer=1, n_head=2, d_model=8, dropout=0.1))
    F.cross_entropy(gpt(ids).reshape(-1, 16), ids.reshape(-1)).backward()
    F.cross_entropy(resnet8(num_classes=3)(rg.randn(2, 3, 8, 8)), rg.tensor([0, 2])).backward()
    for layer in (rg.nn.RNN(3, 4), rg.nn.LSTM(3, 4), rg.nn.GRU(3, 4)):
        layer(rg.randn(5, 2, 3))[0].sum().backward()
    x = rg.randn(3, 4, requires_grad=True)
    y = (x.exp() + 1.0).log() * x.sigmoid()
    y = (y + x.tanh().abs().sqrt() - x.sin() / (x.cos() + 2.0)).clamp(-1.0, 1.0)
    y = y.maximum(x) ** 2 + x.var(dim=1, keepdim=True) + x.std() + x.norm()
    (y.amax(dim=0).sum() + y.logsumexp(dim=1).mean() + y.softmax(dim=1).max()).backward()


class _Calls(CallObserver):
    def __init__(self):
        self.calls = []

    def on_call(self, call, node, module_path):
        self.calls.append(call)


def test_every_op_that_computes_counts_flops_on_a_non_empty_input():
    with observe(_Calls()) as recorder:
        _workload()
    computing = [c for c in recorder.calls if not c.op.moves_data
                 and any(o.size for o in c.outputs)]
    assert not [c.op.__name__ for c in computing if cost_of(c).flops <= 0]
    assert len({c.op.__name__ for c in computing}) >= 30   # the workload reaches most ops
