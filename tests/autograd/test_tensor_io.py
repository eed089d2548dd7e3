"""PyTorch-style custom Functions (forward and backward on Tensors) run unchanged, and match
the same Function run by PyTorch; array-style Functions keep working as before."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd.tensor_io import written_on_tensors
from tests.oracle import GRADCHECK_TOLERANCES


def define_functions(fw):
    """The same custom Functions, written once against the module ``fw`` (torch or
    retrograd), the way PyTorch's tutorials write them."""

    class MyReLU(fw.autograd.Function):
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

    class LinearFunction(fw.autograd.Function):
        @staticmethod
        def forward(input, weight, bias):
            output = input.mm(weight.t())
            if bias is not None:
                output += bias.unsqueeze(0).expand_as(output)
            return output

        @staticmethod
        def setup_context(ctx, inputs, output):
            input, weight, bias = inputs
            ctx.save_for_backward(input, weight, bias)

        @staticmethod
        def backward(ctx, grad_output):
            input, weight, bias = ctx.saved_tensors
            grad_input = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                grad_input = grad_output.mm(weight)
            if ctx.needs_input_grad[1]:
                grad_weight = grad_output.t().mm(input)
            if bias is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(0)
            return grad_input, grad_weight, grad_bias

    class ScaledSoftplus(fw.autograd.Function):
        """A constant argument, an intermediate kept on ctx, a backward of Tensor ops (so it
        is twice differentiable)."""

        @staticmethod
        def forward(ctx, x, scale):
            ctx.scale = scale
            ctx.save_for_backward(x)
            return fw.nn.functional.softplus(x) * scale

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return grad_output * fw.sigmoid(x) * ctx.scale, None

    class SortWithIndices(fw.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            values, indices = x.sort(dim=-1)
            ctx.mark_non_differentiable(indices)
            ctx.save_for_backward(indices)
            return values, indices

        @staticmethod
        def backward(ctx, grad_values, grad_indices):
            indices, = ctx.saved_tensors
            grad = grad_values.new_zeros(grad_values.shape)
            return grad.scatter(-1, indices, grad_values)

    return dict(relu=MyReLU, linear=LinearFunction, softplus=ScaledSoftplus,
                sort=SortWithIndices)


RG, TORCH = define_functions(rg), define_functions(torch)


def _pair(*shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def _same(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_relu_matches_pytorch():
    x, xt = _pair(3, 4)
    y, yt = RG["relu"].apply(x), TORCH["relu"].apply(xt)
    _same(y, yt)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    _same(x.grad, xt.grad)


def test_linear_with_setup_context_matches_pytorch_and_gradchecks():
    (x, xt), (w, wt), (b, bt) = _pair(5, 3, seed=1), _pair(2, 3, seed=2), _pair(2, seed=3)
    y, yt = RG["linear"].apply(x, w, b), TORCH["linear"].apply(xt, wt, bt)
    _same(y, yt)
    y.sum().backward()
    yt.sum().backward()
    for ours, theirs in ((x, xt), (w, wt), (b, bt)):
        _same(ours.grad, theirs.grad)
    assert rg.autograd.gradcheck(RG["linear"].apply, (x, w, b), **GRADCHECK_TOLERANCES)


def test_a_backward_of_tensor_ops_is_twice_differentiable():
    x, xt = _pair(6, seed=4)
    y, yt = RG["softplus"].apply(x, 1.5), TORCH["softplus"].apply(xt, 1.5)
    _same(y, yt)
    g, = rg.autograd.grad(y.sum(), x, create_graph=True)
    gt, = torch.autograd.grad(yt.sum(), xt, create_graph=True)
    _same(g, gt)
    (g * g).sum().backward()
    (gt * gt).sum().backward()
    _same(x.grad, xt.grad)
    assert rg.autograd.gradgradcheck(lambda v: RG["softplus"].apply(v, 1.5), (x,),
                                     **GRADCHECK_TOLERANCES)


def test_non_differentiable_outputs_are_marked_from_tensors():
    x, xt = _pair(2, 5, seed=5)
    (values, indices), (values_t, indices_t) = RG["sort"].apply(x), TORCH["sort"].apply(xt)
    _same(values, values_t)
    np.testing.assert_array_equal(indices.numpy(), indices_t.numpy())
    assert values.requires_grad and not indices.requires_grad
    weights = np.arange(10.0).reshape(2, 5)
    (values * rg.tensor(weights)).sum().backward()
    (values_t * torch.tensor(weights)).sum().backward()
    _same(x.grad, xt.grad)


def test_array_style_functions_still_get_arrays():
    seen = []

    class Square(rg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(type(x))
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad_out):
            x, = ctx.saved_tensors
            seen.append(type(x))
            return 2.0 * grad_out * x

    x = rg.tensor([1.0, -2.0], requires_grad=True)
    Square.apply(x).sum().backward()
    assert seen == [np.ndarray, np.ndarray]
    assert x.grad.tolist() == [2.0, -4.0]


def _forward_clamp(ctx, x):
    ctx.save_for_backward(x)
    return x.clamp(min=0)


def _forward_numpy(ctx, x):
    ctx.stride = 2          # an attribute of ctx says nothing: ctx is neither
    return np.maximum(x, 0)


def _forward_mixed(ctx, x):
    return x.astype(np.float32).clone()


def _forward_module(ctx, x):
    return rg.exp(x)


def _backward_clone(ctx, grad):
    return [g.clone() for g in (grad,)][0]   # found inside a comprehension too


@pytest.mark.parametrize("functions, expected", [
    ([(_forward_clamp, True)], True),
    ([(_forward_numpy, True)], False),
    ([(_forward_mixed, True)], False),         # an array-only method wins: arrays
    ([(_forward_module, True)], True),
    ([(_forward_numpy, True), (_backward_clone, True)], True),
])
def test_the_style_is_read_from_the_code(functions, expected):
    assert written_on_tensors(functions) is expected
