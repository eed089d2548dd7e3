"""The observer slot: what observers see in forward and backward (checked against the graph
and against gradients computed without observers), input replacement, nesting, and that an
off slot leaves the hot path untouched."""

import numpy as np
import pytest

import retrograd as rg
from retrograd.autograd.function import AccumulateGrad
from retrograd.autograd.grad_mode import STATE
from retrograd.autograd.observer import OpObserver, current_module_path, observe


class Recorder(OpObserver):
    def __init__(self):
        self.events = []

    def before_forward(self, op, inputs, attrs):
        self.events.append(("before_forward", op.__name__,
                            [getattr(t, "shape", None) for t in inputs]))

    def after_forward(self, op, node, inputs, outputs, module_path):
        self.events.append(("after_forward", op.__name__, node, outputs, module_path))

    def before_backward(self, node, grad_outputs):
        self.events.append(("before_backward", node.name(), list(grad_outputs)))

    def after_backward(self, node, grad_outputs, grad_inputs):
        self.events.append(("after_backward", node.name(), list(grad_inputs)))


def _kinds(events, kind):
    return [e for e in events if e[0] == kind]


def test_forward_events_name_each_op_its_input_shapes_and_the_node_it_recorded():
    x = rg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w = rg.tensor(np.ones((3, 4)))
    recorder = Recorder()
    with observe(recorder):
        y = (x @ w).tanh()
    before = _kinds(recorder.events, "before_forward")
    after = _kinds(recorder.events, "after_forward")
    assert [(e[1], e[2]) for e in before] == [("MatMul", [(2, 3), (3, 4)]), ("Tanh", [(2, 4)])]
    assert [e[1] for e in after] == ["MatMul", "Tanh"]
    assert after[1][2] is y.grad_fn and after[1][3] is y
    assert after[0][2] is y.grad_fn.next_functions[0][0]
    assert after[0][4] is None  # outside every module


def test_an_op_that_records_nothing_is_observed_with_node_none():
    recorder = Recorder()
    with observe(recorder), rg.no_grad():
        rg.ones(3, requires_grad=True).exp()
    (event,) = _kinds(recorder.events, "after_forward")
    assert event[1] == "Exp" and event[2] is None


def test_backward_events_follow_the_graph_and_carry_the_engines_gradients():
    x_data = np.array([0.5, -1.0, 2.0])
    x = rg.tensor(x_data, requires_grad=True)
    recorder = Recorder()
    with observe(recorder):
        (x.exp() * x).sum().backward()
    after = _kinds(recorder.events, "after_backward")
    assert [e[1] for e in after] == ["SumBackward", "MulBackward", "ExpBackward",
                                     "AccumulateGrad"]
    mul_grads = after[1][2]  # d(e^x * x)/d(e^x) = x, d/dx = e^x
    np.testing.assert_allclose(mul_grads[0], x_data)
    np.testing.assert_allclose(mul_grads[1], np.exp(x_data))
    np.testing.assert_allclose(after[2][2][0], np.exp(x_data) * x_data)  # ExpBackward
    # the leaf is told its total gradient, the same that lands in .grad
    leaf_before = [e for e in _kinds(recorder.events, "before_backward")
                   if e[1] == "AccumulateGrad"]
    np.testing.assert_allclose(leaf_before[0][2][0], x.grad.numpy())
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x_data) * (x_data + 1))
    assert after[3][2] == []


def test_observers_do_not_change_results():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, 5))
    grads = []
    for observed in (False, True):
        x = rg.tensor(data, requires_grad=True)
        if observed:
            with observe(Recorder()):
                (x.softmax(-1) * x).sum().backward()
        else:
            (x.softmax(-1) * x).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_before_forward_may_replace_the_inputs():
    class DoubleFirstInput(OpObserver):
        def before_forward(self, op, inputs, attrs):
            if op.__name__ == "Mul":
                return (inputs[0] * 2.0,) + tuple(inputs[1:])

    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with observe(DoubleFirstInput()):
        y = x * 3.0
    np.testing.assert_array_equal(y.numpy(force=True), [6.0, 12.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])  # through the replacement


def test_observers_nest_and_leave_the_slot_empty_after_the_block():
    outer, inner = Recorder(), Recorder()
    x = rg.tensor([1.0], requires_grad=True)
    with observe(outer):
        x.exp()
        with observe(inner):
            x.sin()
        x.cos()
    assert [e[1] for e in _kinds(outer.events, "after_forward")] == ["Exp", "Sin", "Cos"]
    assert [e[1] for e in _kinds(inner.events, "after_forward")] == ["Sin"]
    assert STATE.observers == ()


def test_the_slot_is_restored_when_the_block_raises():
    with pytest.raises(ZeroDivisionError):
        with observe(Recorder()):
            1 / 0
    assert STATE.observers == ()


def test_observe_refuses_what_is_not_an_observer():
    with pytest.raises(TypeError, match="observe: expected an OpObserver, got function"):
        observe(lambda *a: None)


def test_backward_of_create_graph_records_its_ops_as_forward_events():
    x = rg.tensor([2.0], requires_grad=True)
    y = x ** 3
    recorder = Recorder()
    with observe(recorder):
        (g,) = rg.autograd.grad(y, x, create_graph=True)
    ops = [e[1] for e in _kinds(recorder.events, "after_forward")]
    assert ops and all(op in ("PowScalar", "Mul") for op in ops)
    assert g.item() == 12.0


def test_current_module_path_inside_and_outside_modules():
    seen = []

    class Probe(rg.nn.Module):
        def forward(self, x):
            seen.append(current_module_path())
            return x

    net = rg.nn.Sequential(rg.nn.Sequential(Probe()))
    net(rg.ones(1))
    assert seen == ["0.0"] and current_module_path() is None


def test_leaf_nodes_are_accumulate_grad():
    recorder = Recorder()
    x = rg.tensor([1.0], requires_grad=True)
    with observe(recorder):
        (x * 2.0).sum().backward()
    nodes = [e for e in recorder.events if e[0] == "after_backward"]
    assert nodes[-1][1] == AccumulateGrad(x).name()
