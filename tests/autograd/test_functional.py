"""retrograd.autograd.functional against torch.autograd.functional on the same functions:
vjp, jvp, jacobian, hessian, hvp, vhp with single and tuple inputs and outputs."""

import numpy as np
import pytest
import torch
import torch.autograd.functional as TF

import retrograd as rg
from retrograd.autograd import functional as F
from tests.oracle import randn

A = randn(3, seed=0)
B = randn(3, 2, seed=1)
V3 = randn(3, seed=2)
V32 = randn(3, 2, seed=3)
U2 = randn(2, seed=4)


def ours(*arrays):
    """Float64 retrograd tensors; a single array gives a tensor, several give a tuple."""
    ts = tuple(rg.tensor(a, dtype=rg.float64) for a in arrays)
    return ts[0] if len(ts) == 1 else ts


def theirs(*arrays):
    ts = tuple(torch.tensor(a, dtype=torch.float64) for a in arrays)
    return ts[0] if len(ts) == 1 else ts


def assert_same(ours_result, torch_result, where="result"):
    """Same nesting of tuples, same shapes, same values."""
    if isinstance(torch_result, tuple):
        assert isinstance(ours_result, tuple), f"{where}: expected a tuple"
        assert len(ours_result) == len(torch_result), f"{where}: tuple length"
        for k, (a, b) in enumerate(zip(ours_result, torch_result)):
            assert_same(a, b, f"{where}[{k}]")
        return
    assert isinstance(ours_result, rg.Tensor), f"{where}: expected a Tensor"
    assert ours_result.shape == tuple(torch_result.shape), f"{where}: shape"
    np.testing.assert_allclose(ours_result.detach().numpy(), torch_result.detach().numpy(),
                               rtol=1e-10, atol=1e-12, err_msg=where)


# Functions written once, run on either library (Tensor methods have the same names).
def elementwise(x):
    return x.sin() * x


def two_in_two_out(x, w):
    return (x @ w).tanh(), x.exp()


def scalar_one(x):
    return (x.exp() * x).sum()


def scalar_two(x, w):
    return ((x @ w).tanh() ** 2).sum() + (x * x).sum()


def test_vjp_single():
    assert_same(F.vjp(elementwise, ours(A), ours(V3)), TF.vjp(elementwise, theirs(A), theirs(V3)))


def test_vjp_tuples():
    assert_same(F.vjp(two_in_two_out, ours(A, B), ours(U2, V3)),
                TF.vjp(two_in_two_out, theirs(A, B), theirs(U2, V3)))


def test_vjp_scalar_output_without_v():
    assert_same(F.vjp(scalar_one, ours(A)), TF.vjp(scalar_one, theirs(A)))


def test_jvp_single():
    assert_same(F.jvp(elementwise, ours(A), ours(V3)), TF.jvp(elementwise, theirs(A), theirs(V3)))


def test_jvp_tuples():
    assert_same(F.jvp(two_in_two_out, ours(A, B), ours(V3, V32)),
                TF.jvp(two_in_two_out, theirs(A, B), theirs(V3, V32)))


def test_jacobian_single():
    assert_same(F.jacobian(elementwise, ours(A)), TF.jacobian(elementwise, theirs(A)))


def test_jacobian_tuple_inputs_and_outputs():
    # bug: the cotangent slot was found with outputs.index(o), which compares tensors with ==
    assert_same(F.jacobian(two_in_two_out, ours(A, B)),
                TF.jacobian(two_in_two_out, theirs(A, B)))


def test_jacobian_single_input_tuple_outputs():
    fn = lambda x: (x * 2.0, x.sum())  # noqa: E731
    assert_same(F.jacobian(fn, ours(A)), TF.jacobian(fn, theirs(A)))


def test_jacobian_tuple_inputs_scalar_output():
    fn = lambda x, w: (x * 2.0).sum()  # w unused: its block is zeros  # noqa: E731
    assert_same(F.jacobian(fn, ours(A, B)), TF.jacobian(fn, theirs(A, B)))


def test_hessian_single():
    # bug: a single input returned a 1-tuple instead of the Hessian tensor
    assert_same(F.hessian(scalar_one, ours(A)), TF.hessian(scalar_one, theirs(A)))


def test_hessian_tuple():
    assert_same(F.hessian(scalar_two, ours(A, B)), TF.hessian(scalar_two, theirs(A, B)))


def test_hvp_single_and_tuple():
    assert_same(F.hvp(scalar_one, ours(A), ours(V3)), TF.hvp(scalar_one, theirs(A), theirs(V3)))
    assert_same(F.hvp(scalar_two, ours(A, B), ours(V3, V32)),
                TF.hvp(scalar_two, theirs(A, B), theirs(V3, V32)))


def test_vhp_single_and_tuple():
    assert_same(F.vhp(scalar_one, ours(A), ours(V3)), TF.vhp(scalar_one, theirs(A), theirs(V3)))
    assert_same(F.vhp(scalar_two, ours(A, B), ours(V3, V32)),
                TF.vhp(scalar_two, theirs(A, B), theirs(V3, V32)))


def test_hvp_equals_hessian_times_v():
    H = F.hessian(scalar_one, ours(A)).numpy()
    _, hv = F.hvp(scalar_one, ours(A), ours(V3))
    np.testing.assert_allclose(hv.numpy(), H @ V3, rtol=1e-12)


def test_results_are_detached_unless_create_graph():
    out, grad = F.vjp(elementwise, ours(A), ours(V3))
    assert not out.requires_grad and not grad.requires_grad
    x = rg.tensor(A, dtype=rg.float64, requires_grad=True)
    _, grad = F.vjp(elementwise, x, ours(V3), create_graph=True)
    assert grad.requires_grad
    (g2,) = rg.autograd.grad(grad.sum(), x)
    xt = torch.tensor(A, requires_grad=True)
    _, grad_t = TF.vjp(elementwise, xt, theirs(V3), create_graph=True)
    (g2t,) = torch.autograd.grad(grad_t.sum(), xt)
    assert_same(g2, g2t)


def test_jacobian_create_graph_is_differentiable():
    x = rg.tensor(A, dtype=rg.float64, requires_grad=True)
    J = F.jacobian(elementwise, x, create_graph=True)
    (g,) = rg.autograd.grad((J * J).sum(), x)
    xt = torch.tensor(A, requires_grad=True)
    Jt = TF.jacobian(elementwise, xt, create_graph=True)
    (gt,) = torch.autograd.grad((Jt * Jt).sum(), xt)
    assert_same(g, gt)


def test_inputs_are_not_modified_and_need_not_require_grad():
    x = ours(A)
    F.jacobian(elementwise, x)
    assert not x.requires_grad and x.grad is None
    np.testing.assert_array_equal(x.numpy(), A)


def test_function_independent_of_its_input_gives_zeros():
    fn = lambda x: rg.tensor(np.ones(2), dtype=rg.float64)  # noqa: E731
    _, grad = F.vjp(fn, ours(A), ours(U2))
    np.testing.assert_array_equal(grad.numpy(), np.zeros(3))
    np.testing.assert_array_equal(F.jacobian(fn, ours(A)).numpy(), np.zeros((2, 3)))


def test_errors_name_the_transform_and_the_shapes():
    with pytest.raises(ValueError, match=r"vjp: vector 0 has shape \(2,\), expected \(3,\)"):
        F.vjp(elementwise, ours(A), ours(U2))
    with pytest.raises(ValueError, match="vjp: v must be given"):
        F.vjp(elementwise, ours(A))
    with pytest.raises(ValueError, match="hvp: func must return a single one-element tensor"):
        F.hvp(elementwise, ours(A), ours(V3))
    with pytest.raises(ValueError, match="hessian: func must return a single one-element"):
        F.hessian(elementwise, ours(A))
    with pytest.raises(TypeError, match="input 0 must be a floating-point Tensor"):
        F.jacobian(elementwise, rg.tensor([1, 2]))
    with pytest.raises(TypeError, match="jacobian: output 0 of func must be a Tensor"):
        F.jacobian(lambda x: 3.0, ours(A))


def test_zero_derivatives_of_linear_and_constant_functions():
    linear = lambda x: x * 3.0  # noqa: E731
    assert_same(F.jvp(linear, ours(A), ours(V3)), TF.jvp(linear, theirs(A), theirs(V3)))
    scalar_linear = lambda x: (x * 3.0).sum()  # noqa: E731
    assert_same(F.hvp(scalar_linear, ours(A), ours(V3)),
                TF.hvp(scalar_linear, theirs(A), theirs(V3)))
    assert_same(F.hessian(scalar_linear, ours(A)), TF.hessian(scalar_linear, theirs(A)))
    _, tangent = F.jvp(lambda x: rg.tensor([1.0, 2.0], dtype=rg.float64), ours(A), ours(V3))
    np.testing.assert_array_equal(tangent.numpy(), [0.0, 0.0])
