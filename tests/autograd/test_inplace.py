"""In-place ops and version counters: changing a tensor saved for backward is an error that
names the op; in-place on a leaf that requires grad is refused; differentiable in-place ops
on non-leaves give PyTorch's gradients; views share version counters."""

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import randn


def version(t):
    return t._version[0]


def run_both(fn, *arrays):
    """fn(lib, *leaves) -> output on retrograd and torch; backprop the same random cotangent
    and return (outputs, leaf gradients) of both."""
    results = []
    for lib in (rg, torch):
        leaves = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
        out = fn(lib, *leaves)
        cotangent = randn(*out.shape, seed=9)
        out.backward(lib.tensor(cotangent, dtype=lib.float64))
        results.append((out.detach().numpy().copy(), [t.grad for t in leaves]))
    return results


def assert_same_as_torch(fn, *arrays):
    (out, grads), (out_t, grads_t) = run_both(fn, *arrays)
    np.testing.assert_allclose(out, out_t, rtol=1e-12, atol=1e-14)
    for k, (g, gt) in enumerate(zip(grads, grads_t)):
        if gt is None:
            assert g is None or not g.numpy().any(), f"leaf {k}: torch has no gradient"
        else:
            np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"gradient of leaf {k}")


# ---------------------------------------------------------------- saved tensors modified
def test_modifying_a_saved_output_names_the_op():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.add_(1.0)
    with pytest.raises(RuntimeError, match=r"ExpBackward: a tensor saved for backward \(output "
                                           r"0\) was modified by an in-place operation: it is "
                                           r"at version 1, expected version 0"):
        y.sum().backward()


def test_modifying_a_saved_weight_under_no_grad_names_the_op():
    x = rg.tensor(randn(2, 3), requires_grad=True)
    w = rg.tensor(randn(3, 4, seed=1), requires_grad=True)
    y = x @ w
    with rg.no_grad():
        w.mul_(2.0)  # e.g. an optimizer step between forward and backward
    with pytest.raises(RuntimeError, match=r"MatMulBackward: a tensor saved for backward "
                                           r"\(input 1\)"):
        y.sum().backward()


def test_modifying_a_saved_tensor_through_a_view_or_detach_is_caught():
    for change in (lambda y: y.detach().zero_(), lambda y: y[1:].detach().mul_(2.0)):
        x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x.exp()
        with rg.no_grad():
            change(y)
        with pytest.raises(RuntimeError, match="ExpBackward: a tensor saved for backward"):
            y.sum().backward()


def test_modifying_an_unsaved_input_is_fine():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    c = rg.tensor([3.0, 4.0])
    h = x * 2.0
    y = h + c  # Add saves nothing
    c.add_(1.0)
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_modifying_a_constant_saved_by_mul_is_caught():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    c = rg.tensor([3.0, 4.0])
    y = x * c  # Mul saves c for dL/dx
    c.add_(1.0)
    with pytest.raises(RuntimeError, match=r"MulBackward: a tensor saved for backward \(input 1\)"):
        y.sum().backward()


# ---------------------------------------------------------------- leaves
@pytest.mark.parametrize("op", [
    lambda x: x.add_(1.0),
    lambda x: x.mul_(2.0),
    lambda x: x.__iadd__(1.0),
    lambda x: x.zero_(),
    lambda x: x.fill_(3.0),
    lambda x: x.copy_(rg.tensor([5.0, 6.0])),
    lambda x: x.__setitem__(0, 5.0),
    lambda x: x.clamp_(0.0, 1.0),
], ids=["add_", "mul_", "iadd", "zero_", "fill_", "copy_", "setitem", "clamp_"])
def test_inplace_on_a_leaf_that_requires_grad_is_refused(op):
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf tensor that requires grad is used in an "
                                           "in-place operation"):
        op(x)
    assert x.tolist() == [1.0, 2.0] and version(x) == 0


# ---------------------------------------------------------------- differentiable in-place
INPLACE_CASES = {
    "mul_": lambda m, x: (lambda y: (y.mul_(3.0), y * y)[1])(x * 2.0),
    "add_ tensor": lambda m, x, z: (lambda y: (y.add_(z * z), y.exp())[1])(x * 2.0),
    "sub_ alpha": lambda m, x, z: (lambda y: (y.sub_(z, alpha=2.0), y * y)[1])(x * 1.5),
    "div_": lambda m, x, z: (lambda y: (y.div_(z.exp()), y * y)[1])(x.sin()),
    "pow_": lambda m, x: (lambda y: (y.pow_(3), y)[1])(x * 1.5),
    "clamp_": lambda m, x: (lambda y: (y.clamp_(-0.5, 0.5), y * x)[1])(x * 1.0),
    "iadd twice": lambda m, x: (lambda y: (y.__iadd__(x), y.__imul__(x), y * y)[2])(x * 1.0),
    "setitem": lambda m, x, z: (lambda y: (y.__setitem__(0, z[0] * z[1]), y * y)[1])(x * 2.0),
    "setitem slice": lambda m, x, z: (lambda y: (y.__setitem__(slice(1, 3), z[:2].exp()),
                                                 y.tanh())[1])(x * 2.0),
    "setitem mask": lambda m, x: (lambda y: (y.__setitem__(y > 0, 0.0), y * x)[1])(x * 2.0),
    "masked_fill_": lambda m, x: (lambda y: (y.masked_fill_(x < 0, 1.0), y * y)[1])(x * 2.0),
    "copy_": lambda m, x, z: (lambda y: (y.copy_(z * 3.0), y * x)[1])(x * 2.0),
    "fill_ zero_": lambda m, x: (lambda y: (y[1:].fill_(2.0) if False else y.zero_(),
                                            y + x * x)[1])(x * 2.0),
    "buffer gets a value": lambda m, x, z: (lambda b: (b.__setitem__(1, (x * z).sum()),
                                                       b * b)[1])(m.zeros(4, dtype=m.float64)),
}


@pytest.mark.parametrize("case", list(INPLACE_CASES))
def test_differentiable_inplace_matches_torch(case):
    fn = INPLACE_CASES[case]
    n_leaves = fn.__code__.co_argcount - 1
    arrays = [randn(4, seed=1), randn(4, seed=2)][:n_leaves]
    assert_same_as_torch(fn, *[np.where(np.abs(a) < 0.05, 0.3, a) for a in arrays])


def test_inplace_rebases_history_and_bumps_version():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    mul_node = y.grad_fn
    y.mul_(3.0)
    assert y.grad_fn is not mul_node and y.grad_fn.name() == "MulBackward"
    assert version(y) == 1
    y.add_(1.0)
    assert y.grad_fn.name() == "AddBackward" and version(y) == 2


def test_retain_grad_follows_the_inplace_value():
    # bug: retain_grad() stayed on the node of the old value, so .grad stayed None
    results = []
    for lib in (rg, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = x * 2.0
        y.retain_grad()
        y.mul_(3.0)
        (y * y).sum().backward()
        results.append((y.grad.numpy().copy(), x.grad.numpy().copy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


# ---------------------------------------------------------------- views
@pytest.mark.parametrize("make_view", [
    lambda y: y[1:],
    lambda y: y[0],
    lambda y: y.reshape(2, 2),
    lambda y: y.view(4),
    lambda y: y.reshape(2, 2).T,
    lambda y: y.detach(),
    lambda y: y.reshape(2, 2)[:, 0],
], ids=["slice", "int", "reshape", "view", "transpose", "detach", "view of view"])
def test_views_share_the_version_counter(make_view):
    y = rg.tensor([1.0, 2.0, 3.0, 4.0]) * 1.0
    v = make_view(y)
    assert np.shares_memory(v.numpy(), y.numpy())
    with rg.no_grad():
        v.mul_(2.0)
    assert version(y) == version(v) == 1
    with rg.no_grad():
        y.add_(1.0)
    assert version(v) == 2


def test_a_copying_op_does_not_share_the_version_counter():
    y = rg.tensor([1.0, 2.0, 3.0, 4.0])
    c = y[[0, 2]]  # integer-array indexing copies
    assert not np.shares_memory(c.numpy(), y.numpy())
    c.add_(1.0)
    assert version(y) == 0


def test_inplace_on_a_tensor_with_a_live_recorded_view_raises():
    # Documented limitation (retrograd/tensor.py _check_rebase_allowed): PyTorch rebases the
    # views' history too; retrograd refuses instead of leaving them stale.
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    v = y[1:]
    with pytest.raises(RuntimeError, match="mul_: in-place operations that autograd records "
                                           "are not supported on a tensor whose views are "
                                           "still alive"):
        y.mul_(3.0)
    del v
    y.mul_(3.0)  # fine once the view is gone
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0, 6.0]


def test_recorded_inplace_on_a_view_raises():
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"mul_: in-place operations that autograd records "
                                           r"are not supported on views \(this tensor of shape "
                                           r"\(2,\) is a view\)"):
        y[1:].mul_(3.0)


def test_inplace_on_a_view_of_a_leaf_is_refused():
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="mul_"):
        x[1:].mul_(3.0)
    assert x.tolist() == [1.0, 2.0, 3.0]


def test_an_element_is_a_view_that_writes_through():
    # bug: t[i] of a 1-D tensor was a NumPy scalar copy, so t[i].zero_() silently did nothing
    w = rg.tensor([1.0, 2.0, 3.0])
    for element in w:
        element.mul_(2.0)
    w[1].zero_()
    assert w.tolist() == [2.0, 0.0, 6.0]
    assert version(w) == 4
    m = rg.tensor([[1.0, 2.0], [3.0, 4.0]])
    m[1, 0].add_(10.0)
    assert m.tolist() == [[1.0, 2.0], [13.0, 4.0]]


def test_gradient_of_an_element_matches_torch():
    assert_same_as_torch(lambda m, x: x.reshape(2, 2)[1, 0] * x[3], randn(4))


def test_inplace_on_one_output_of_a_multi_output_op_matches_torch():
    def fn(lib, x):
        values, _ = x.reshape(2, 2).max(dim=1)
        values.mul_(3.0)
        return values * values

    assert_same_as_torch(fn, np.array([1.0, 5.0, 4.0, 2.0]))
