"""Module hooks: forward pre-hooks, forward hooks, full backward hooks and backward pre-hooks,
compared with torch.nn.Module's on equivalent models."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import randn, to_torch


class Tanh(rg.nn.Module):
    """(Activation layers live in another file; a local one keeps this test self-contained.)"""

    def forward(self, x):
        return x.tanh()


def _mlp_pair():
    """Linear(3, 4) -> Tanh -> Linear(4, 2) in float64, the same values in both frameworks."""
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                 torch.nn.Linear(4, 2)).double()
    ours = rg.nn.Sequential(rg.nn.Linear(3, 4), Tanh(), rg.nn.Linear(4, 2)).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _as_numpy(grads):
    return [None if g is None else np.array(g.detach().numpy()) for g in grads]


def _recorder(log):
    def hook(module, grad_input, grad_output):
        assert isinstance(grad_input, tuple) and isinstance(grad_output, tuple)
        log.append((type(module).__name__, _as_numpy(grad_input), _as_numpy(grad_output)))
    return hook


def _assert_same_log(ours, theirs):
    assert [entry[0] for entry in ours] == [entry[0] for entry in theirs]
    for (name, gi_a, go_a), (_, gi_b, go_b) in zip(ours, theirs):
        for kind, a_list, b_list in (("grad_input", gi_a, gi_b), ("grad_output", go_a, go_b)):
            assert len(a_list) == len(b_list), f"{name} {kind}"
            for a, b in zip(a_list, b_list):
                assert (a is None) == (b is None), f"{name} {kind}: None vs torch"
                if a is not None:
                    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14,
                                               err_msg=f"{name} {kind}")


def _run_both(ours, theirs, x, cotangent, x_requires_grad):
    rx = rg.tensor(x, requires_grad=x_requires_grad)
    tx = to_torch(x).requires_grad_(x_requires_grad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when no input requires grad
        ours(rx).backward(rg.tensor(cotangent))
        theirs(tx).backward(to_torch(cotangent))
    return rx, tx


# ---------------------------------------------------------------- forward hooks
def test_forward_pre_hook_sees_args_and_can_replace_them():
    layer = rg.nn.Linear(2, 2)
    seen = []

    def double_input(module, args):
        seen.append((module, len(args)))
        return args[0] * 2.0          # a single value is wrapped into a tuple

    handle = layer.register_forward_pre_hook(double_input)
    x = rg.randn(3, 2)
    np.testing.assert_allclose(layer(x).detach().numpy(),
                               layer.forward(x * 2.0).detach().numpy(), rtol=1e-6)
    assert seen == [(layer, 1)]
    handle.remove()
    np.testing.assert_allclose(layer(x).detach().numpy(), layer.forward(x).detach().numpy())
    assert len(seen) == 1


def test_forward_pre_hooks_chain_and_keep_kwargs():
    class Scale(rg.nn.Module):
        def forward(self, x, y, scale=1.0):
            return (x + y) * scale

    m = Scale()
    m.register_forward_pre_hook(lambda mod, args: (args[0] + 1.0, args[1]))
    m.register_forward_pre_hook(lambda mod, args: (args[0] * 10.0, args[1]))
    m.register_forward_pre_hook(lambda mod, args: None)   # None keeps the args
    out = m(rg.ones(2), rg.zeros(2), scale=0.5)
    np.testing.assert_array_equal(out.numpy(), [10.0, 10.0])


def test_forward_hook_sees_args_and_output_and_can_replace_the_output():
    layer = rg.nn.Linear(2, 3)
    seen = []

    def hook(module, args, output):
        seen.append((module, args, output.shape))
        return output + 1.0

    x = rg.randn(4, 2)
    with layer.register_forward_hook(hook):
        y = layer(x)
    np.testing.assert_allclose(y.detach().numpy(), layer.forward(x).detach().numpy() + 1.0,
                               rtol=1e-6)
    assert seen[0][0] is layer and seen[0][1][0] is x and seen[0][2] == (4, 3)
    layer(x)
    assert len(seen) == 1  # the context manager removed the hook


def test_forward_hooks_run_in_the_same_order_as_torch():
    def record(nn, lib):
        log = []
        model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
        for name, m in model.named_modules():
            m.register_forward_pre_hook(lambda mod, args, name=name: log.append(("pre", name)))
            m.register_forward_hook(lambda mod, args, out, name=name: log.append(("post", name)))
        model(lib.ones(1, 2))
        return log

    assert record(rg.nn, rg) == record(torch.nn, torch)


def test_forward_hook_replacing_the_output_changes_gradients():
    layer = rg.nn.Linear(2, 1, dtype=rg.float64)
    layer.register_forward_hook(lambda mod, args, out: out * 3.0)
    x = rg.ones(1, 2, dtype=rg.float64, requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * layer.weight.detach().numpy())


# ---------------------------------------------------------------- full backward hooks
def test_backward_hook_of_a_linear_matches_torch():
    ours, theirs = rg.nn.Linear(3, 2, dtype=rg.float64), torch.nn.Linear(3, 2).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    log_ours, log_theirs = [], []
    ours.register_full_backward_hook(_recorder(log_ours))
    theirs.register_full_backward_hook(_recorder(log_theirs))
    _run_both(ours, theirs, randn(5, 3, seed=1), randn(5, 2, seed=2), x_requires_grad=True)
    assert len(log_ours) == 1
    _assert_same_log(log_ours, log_theirs)


@pytest.mark.parametrize("x_requires_grad", [True, False])
def test_backward_hooks_of_a_sequential_match_torch(x_requires_grad):
    ours, theirs = _mlp_pair()
    log_ours, log_theirs = [], []
    for a, b in zip([ours, *ours], [theirs, *theirs]):
        a.register_full_backward_hook(_recorder(log_ours))
        b.register_full_backward_hook(_recorder(log_theirs))
    _run_both(ours, theirs, randn(5, 3, seed=3), randn(5, 2, seed=4), x_requires_grad)
    assert len(log_ours) == 4
    _assert_same_log(log_ours, log_theirs)
    if not x_requires_grad:  # the first layer and the container report grad_input = (None,)
        first = [entry for entry in log_ours if entry[0] in ("Sequential",)]
        assert first[0][1] == [None]
        assert log_ours[-1][0] == "Linear" and log_ours[-1][1] == [None]


def test_backward_hook_replacing_grad_input_changes_upstream_gradients_like_torch():
    ours, theirs = _mlp_pair()
    for middle in (ours[2], theirs[2]):
        middle.register_full_backward_hook(
            lambda mod, gin, gout: tuple(g * -3.0 for g in gin))
    rx, tx = _run_both(ours, theirs, randn(5, 3, seed=5), randn(5, 2, seed=6), True)
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12, err_msg=name)
    # the replacement really acted: without the hook the first layer's gradient differs
    plain, _ = _mlp_pair()
    plain.load_state_dict(ours.state_dict())
    plain(rg.tensor(randn(5, 3, seed=5))).backward(rg.tensor(randn(5, 2, seed=6)))
    np.testing.assert_allclose(ours[0].weight.grad.numpy(), -3.0 * plain[0].weight.grad.numpy(),
                               rtol=1e-12)


def test_backward_hook_handle_remove():
    layer = rg.nn.Linear(2, 2)
    log = []
    handle = layer.register_full_backward_hook(_recorder(log))
    x = rg.randn(1, 2, requires_grad=True)
    layer(x).sum().backward()
    handle.remove()
    handle.remove()  # removing twice is harmless
    layer(x).sum().backward()
    assert len(log) == 1
    y = layer(x)
    assert y.grad_fn.name() == "LinearBackward"  # no hook nodes are added any more


def test_backward_pre_hook_replacing_grad_output_matches_torch():
    ours, theirs = _mlp_pair()
    log_ours, log_theirs = [], []
    for model, log in ((ours, log_ours), (theirs, log_theirs)):
        def pre(module, grad_output, log=log):
            log.append(("pre", [], _as_numpy(grad_output)))
            return (grad_output[0] * 0.5,)
        model[2].register_full_backward_pre_hook(pre)
        model[2].register_full_backward_hook(_recorder(log))
    rx, tx = _run_both(ours, theirs, randn(5, 3, seed=7), randn(5, 2, seed=8), True)
    _assert_same_log(log_ours, log_theirs)
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours[2].weight.grad.numpy(), theirs[2].weight.grad.numpy(),
                               rtol=1e-12)


def test_backward_pre_hook_alone_fires_once():
    layer = rg.nn.Linear(2, 2)
    calls = []
    layer.register_full_backward_pre_hook(lambda mod, gout: calls.append(gout[0].shape))
    layer(rg.randn(3, 2)).sum().backward()
    assert calls == [(3, 2)]


class _TwoInTwoOut:
    """forward(a, k, b) -> (a * b * k, a + b, 7): tensors, a number and a non-tensor output."""

    @staticmethod
    def build(nn):
        class TwoInTwoOut(nn.Module):
            def forward(self, a, k, b):
                return a * b * k, a + b, 7

        return TwoInTwoOut()


def test_backward_hook_entries_per_argument_and_output_like_torch():
    ours, theirs = _TwoInTwoOut.build(rg.nn), _TwoInTwoOut.build(torch.nn)
    log_ours, log_theirs = [], []
    ours.register_full_backward_hook(_recorder(log_ours))
    theirs.register_full_backward_hook(_recorder(log_theirs))
    a, b = randn(2, 3, seed=9), randn(2, 3, seed=10)
    ra, rb = rg.tensor(a, requires_grad=True), rg.tensor(b, requires_grad=True)
    ta, tb = to_torch(a).requires_grad_(), to_torch(b).requires_grad_()
    ours(ra, 2.0, rb)[0].sum().backward()   # the second output gets no gradient
    theirs(ta, 2.0, tb)[0].sum().backward()
    _assert_same_log(log_ours, log_theirs)
    assert log_ours[0][1][1] is None and log_ours[0][2][1] is None and log_ours[0][2][2] is None


def test_backward_hook_input_without_grad_is_none():
    # NOTE: here PyTorch passes zeros for b (it does not require grad but a does); retrograd
    # passes None, since b has no gradient.
    m = _TwoInTwoOut.build(rg.nn)
    log = []
    m.register_full_backward_hook(_recorder(log))
    a = rg.tensor(randn(2, 3, seed=11), requires_grad=True)
    b = rg.tensor(randn(2, 3, seed=12))
    y = m(a, 2.0, b)
    (y[0].sum() + y[1].sum()).backward()
    grad_input = log[0][1]
    np.testing.assert_allclose(grad_input[0], 2.0 * b.numpy() + 1.0, rtol=1e-12)
    assert grad_input[1] is None and grad_input[2] is None


def test_backward_hook_returning_the_wrong_count_is_an_error():
    layer = rg.nn.Linear(2, 2)
    layer.register_full_backward_hook(lambda mod, gin, gout: (gin[0], gin[0]))
    with pytest.raises(RuntimeError, match="backward hook returned 2 values for grad_input, "
                                           "expected 1"):
        layer(rg.randn(1, 2, requires_grad=True)).sum().backward()


def test_backward_pre_hook_returning_the_wrong_count_is_an_error():
    layer = rg.nn.Linear(2, 2)
    layer.register_full_backward_pre_hook(lambda mod, gout: (gout[0], gout[0]))
    with pytest.raises(RuntimeError, match="backward pre-hook returned 2 values for "
                                           "grad_output, expected 1"):
        layer(rg.randn(1, 2)).sum().backward()


def test_backward_hook_cannot_replace_grad_input_when_no_input_requires_grad():
    layer = rg.nn.Linear(2, 2)
    layer.register_full_backward_hook(lambda mod, gin, gout: (rg.zeros(1, 2),))
    with pytest.raises(RuntimeError, match="inputs do not require grad must return None"):
        layer(rg.randn(1, 2)).sum().backward()


def test_module_called_twice_fires_its_hook_twice_with_each_calls_gradients():
    ours, theirs = rg.nn.Linear(2, 2, dtype=rg.float64), torch.nn.Linear(2, 2).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    log_ours, log_theirs = [], []
    ours.register_full_backward_hook(_recorder(log_ours))
    theirs.register_full_backward_hook(_recorder(log_theirs))
    x = randn(3, 2, seed=13)
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    (ours(ours(rx)) ** 2).sum().backward()
    (theirs(theirs(tx)) ** 2).sum().backward()
    assert len(log_ours) == 2
    _assert_same_log(log_ours, log_theirs)
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_hooks_do_not_fire_under_no_grad():
    layer = rg.nn.Linear(2, 2)
    log = []
    layer.register_full_backward_hook(_recorder(log))
    with rg.no_grad():
        y = layer(rg.randn(1, 2, requires_grad=True))
    assert not y.requires_grad and log == []


def test_double_backward_through_a_hooked_module():
    ours, theirs = _mlp_pair()
    calls = []
    ours.register_full_backward_hook(lambda mod, gin, gout: calls.append(1))
    x = randn(4, 3, seed=14)
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    (gr,) = rg.autograd.grad(ours(rx).sum(), rx, create_graph=True)
    (gt,) = torch.autograd.grad(theirs(tx).sum(), tx, create_graph=True)
    (gr ** 2).sum().backward()
    (gt ** 2).sum().backward()
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours[0].weight.grad.numpy(), theirs[0].weight.grad.numpy(),
                               rtol=1e-10)
    assert calls


def test_in_place_change_of_a_hooked_input_is_detected():
    class Doubler(rg.nn.Module):
        def forward(self, x):
            return x.mul_(2.0)

    m = Doubler()
    m.register_full_backward_hook(lambda mod, gin, gout: None)
    h = rg.randn(2, 2, requires_grad=True).tanh()   # tanh saves its output
    out = m(h)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.sum().backward()
