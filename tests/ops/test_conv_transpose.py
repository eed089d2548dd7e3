"""ConvTranspose2d and ConvTranspose1d (retrograd/ops/conv_transpose.py) through
nn.functional: against PyTorch (outputs and every gradient: stride, padding, output_padding,
dilation, groups; with and without the compiled conv kernels), against finite differences
(through the engine and alone), against the reference written from the definition, the
inner-product check at a realistic size, the cost against PyTorch's FLOP counter, and the
errors."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast
from retrograd.autograd.cost import cost_of
from retrograd.ops.conv_transpose import (ConvTranspose1d, ConvTranspose2d,
                                          conv_transpose2d_reference)
from tests.ops.cost_harness import run
from tests.oracle import check_backward_alone, check_op, randn


@pytest.fixture(params=["compiled", "numpy"])
def kernels(request, monkeypatch):
    """Every case with the compiled conv kernels (when Numba is there) and without."""
    if request.param == "numpy":
        monkeypatch.setitem(_fast._MODULES, "conv", None)
    return request.param


def _ct2d(**kwargs):
    return (lambda x, w, b=None: F.conv_transpose2d(x, w, b, **kwargs),
            lambda x, w, b=None: torch.nn.functional.conv_transpose2d(x, w, b, **kwargs))


def _ct1d(**kwargs):
    return (lambda x, w, b=None: F.conv_transpose1d(x, w, b, **kwargs),
            lambda x, w, b=None: torch.nn.functional.conv_transpose1d(x, w, b, **kwargs))


# (input shape, weight shape (Ci, Co/g, kh, kw), keyword arguments, bias)
CT2D_CASES = [
    ((2, 3, 5, 5), (3, 4, 3, 3), {}, True),                          # stride 1: by conv
    ((2, 3, 5, 5), (3, 4, 3, 3), dict(stride=2), True),              # col2im
    ((2, 3, 5, 5), (3, 4, 3, 3), dict(stride=2, padding=1, output_padding=1), True),
    ((2, 3, 4, 4), (3, 2, 2, 2), dict(stride=2), False),             # the 2x upsampler
    ((2, 3, 4, 4), (3, 2, 4, 4), dict(stride=2, padding=1), True),   # DCGAN's block
    ((2, 4, 5, 6), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                                      groups=2), True),
    ((2, 4, 5, 6), (4, 1, 3, 3), dict(groups=4, padding=1), True),   # depthwise
    ((2, 4, 5, 5), (4, 2, 3, 3), dict(groups=4), True),              # two filters per group
    ((2, 3, 5, 5), (3, 4, 3, 3), dict(dilation=2, output_padding=1), True),   # op < dilation
    ((2, 3, 5, 5), (3, 4, 3, 3), dict(dilation=2, padding=3, output_padding=1), True),
    ((2, 3, 5, 5), (3, 4, 3, 3), dict(padding=2), True),             # padding = k - 1
    ((2, 6, 5, 5), (6, 2, 3, 3), dict(padding=1), True),             # more in than out
    ((2, 2, 5, 5), (2, 6, 3, 3), dict(padding=1), True),             # more out than in
    ((2, 3, 4, 4), (3, 2, 1, 1), dict(stride=3, output_padding=2), True),   # stride > kernel
    ((1, 2, 3, 3), (2, 3, 3, 3), dict(stride=2, padding=2, output_padding=1, dilation=2),
     True),
    ((2, 3, 1, 1), (3, 2, 3, 3), {}, True),                          # one input pixel
    ((2, 2, 3, 4), (2, 3, 2, 3), dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1)), True),
    ((3, 4, 4), (3, 2, 3, 3), dict(stride=2, padding=1), True),      # unbatched (C, H, W)
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", CT2D_CASES)
def test_conv_transpose2d_matches_torch_and_finite_differences(x_shape, w_shape, kwargs, bias,
                                                               kernels):
    rg_fn, torch_fn = _ct2d(**kwargs)
    inputs = [randn(*x_shape, seed=1), randn(*w_shape, seed=2)]
    if bias:
        inputs.append(randn(w_shape[1] * kwargs.get("groups", 1), seed=3))
    check_op(rg_fn, torch_fn, *inputs)


CT1D_CASES = [
    ((2, 3, 7), (3, 4, 3), {}, True),
    ((2, 3, 7), (3, 4, 4), dict(stride=2, padding=1), True),
    ((2, 3, 7), (3, 2, 3), dict(stride=3, output_padding=2, dilation=2), False),
    ((2, 4, 6), (4, 1, 3), dict(groups=4, padding=1), True),
    ((3, 5), (3, 2, 2), dict(stride=2), True),                       # unbatched (C, L)
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", CT1D_CASES)
def test_conv_transpose1d_matches_torch_and_finite_differences(x_shape, w_shape, kwargs, bias,
                                                               kernels):
    rg_fn, torch_fn = _ct1d(**kwargs)
    inputs = [randn(*x_shape, seed=4), randn(*w_shape, seed=5)]
    if bias:
        inputs.append(randn(w_shape[1] * kwargs.get("groups", 1), seed=6))
    check_op(rg_fn, torch_fn, *inputs)


@pytest.mark.parametrize("no_grad", [(0,), (1,), (2,), (0, 2), (1, 2), (0, 1)])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_transpose2d_with_some_inputs_not_requiring_grad(no_grad, stride, kernels):
    rg_fn, torch_fn = _ct2d(stride=stride, padding=1)
    check_op(rg_fn, torch_fn, randn(2, 3, 4, 5, seed=7), randn(3, 4, 3, 3, seed=8),
             randn(4, seed=9), no_grad=no_grad)


def test_conv_transpose_float32_matches_torch_and_stays_float32(kernels):
    rg_fn, torch_fn = _ct2d(stride=2, padding=1, output_padding=1)
    out = check_op(rg_fn, torch_fn, randn(4, 8, 7, 7, seed=10), randn(8, 6, 3, 3, seed=11) * 0.2,
                   randn(6, seed=12), dtype=np.float32, rtol=1e-4, atol=1e-4)
    assert out[0].dtype == rg.float32


@pytest.mark.parametrize("op, arrays, attrs", [
    (ConvTranspose2d, [randn(2, 3, 4, 5, seed=13), randn(3, 2, 3, 2, seed=14), randn(2, seed=15)],
     dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2), groups=1)),
    (ConvTranspose2d, [randn(2, 4, 3, 3, seed=16), randn(4, 3, 2, 2, seed=17), None],
     dict(stride=(1, 1), padding=(1, 1), output_padding=(0, 0), dilation=(1, 1), groups=2)),
    (ConvTranspose1d, [randn(2, 3, 6, seed=18), randn(3, 4, 3, seed=19), randn(4, seed=20)],
     dict(stride=(2,), padding=(1,), output_padding=(1,), dilation=(1,), groups=1)),
])
def test_conv_transpose_backward_alone_matches_finite_differences(op, arrays, attrs):
    check_backward_alone(op, arrays, attrs)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", [c for c in CT2D_CASES
                                                             if len(c[0]) == 4])
def test_conv_transpose2d_equals_the_reference_from_its_definition(x_shape, w_shape, kwargs,
                                                                   bias, kernels):
    attrs = dict(stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1),
                 groups=1)
    attrs.update({k: (v if k == "groups" else (v, v) if isinstance(v, int) else v)
                  for k, v in kwargs.items()})
    x, w = randn(*x_shape, seed=21), randn(*w_shape, seed=22)
    b = randn(w_shape[1] * attrs["groups"], seed=23) if bias else None
    tensors = [rg.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    y = ConvTranspose2d.apply(*tensors, **attrs)
    grad_out = randn(*y.shape, seed=24)
    y.backward(rg.tensor(grad_out))
    expected = conv_transpose2d_reference(x, w, b, grad_out, **attrs)
    got = [y.detach().numpy()] + [t.grad.numpy() if t is not None else None for t in tensors]
    for a, e in zip(got, expected):
        if e is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_conv_transpose2d_inner_product_check_at_a_realistic_size():
    """<t, J^T c> = <J t, c> along one random direction t = (t_x, t_w, t_b) for an
    8x16x16x16 input upsampled 2x by 16 4x4 filters: the transposed conv is bilinear, so
    J t = ct(t_x, W) + ct(x, t_w) + t_b exactly."""
    kwargs = dict(stride=2, padding=1)
    x, w, b = randn(8, 16, 16, 16, seed=25), randn(16, 16, 4, 4, seed=26), randn(16, seed=27)
    t_x, t_w, t_b = randn(*x.shape, seed=28), randn(*w.shape, seed=29), randn(16, seed=30)
    rx, rw, rb = (rg.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv_transpose2d(rx, rw, rb, **kwargs)
    c = randn(*y.shape, seed=31)
    y.backward(rg.tensor(c))
    lhs = np.sum(t_x * rx.grad.numpy()) + np.sum(t_w * rw.grad.numpy()) + \
        np.sum(t_b * rb.grad.numpy())
    j_t = (F.conv_transpose2d(rg.tensor(t_x), rg.tensor(w), None, **kwargs).numpy()
           + F.conv_transpose2d(rg.tensor(x), rg.tensor(t_w), rg.tensor(t_b), **kwargs).numpy())
    assert np.isclose(lhs, np.sum(j_t * c), rtol=1e-10)


def test_conv_transpose_is_once_differentiable():
    x = rg.tensor(randn(1, 2, 3, 3, seed=32), requires_grad=True)
    w = rg.tensor(randn(2, 2, 3, 3, seed=33), requires_grad=True)
    (grad_x,) = rg.autograd.grad(F.conv_transpose2d(x, w, stride=2).sum(), x,
                                 create_graph=True)
    with pytest.raises(RuntimeError, match="ConvTranspose2d"):
        grad_x.sum().backward()


def test_conv_transpose_float16_is_computed_in_float32():
    # 16 values of 4000 land on one output pixel: 64000 fits in float16, but a sum in float16
    # rounds on every add; one float32 sum rounded once is PyTorch's result
    x = rg.full((1, 1, 4, 4), 4000.0, dtype=rg.float16)
    w = rg.ones(1, 1, 4, 4, dtype=rg.float16)
    y = F.conv_transpose2d(x, w, stride=1)
    assert y.dtype == rg.float16
    expected = torch.nn.functional.conv_transpose2d(torch.full((1, 1, 4, 4), 4000.0),
                                                    torch.ones(1, 1, 4, 4)).half()
    np.testing.assert_array_equal(y.numpy(), expected.numpy())


def _normal(*shape):
    return np.random.default_rng(0).standard_normal(shape)


@pytest.mark.parametrize("needs", [(True, True, True), (False, True, False),
                                   (True, False, False)])
def test_conv_transpose_gemm_flops_match_torch_s_flop_counter(needs):
    # groups=1: PyTorch's counter ignores groups in a transposed conv's dL/dW (it counts
    # groups times the products); ours counts the products made (Ci*Co/g*kh*kw*N*H*W)
    x, w, b = randn(2, 6, 5, 5, seed=34), randn(6, 2, 3, 3, seed=35), randn(2, seed=36)
    attrs = dict(stride=(2, 2), padding=(1, 1), output_padding=(1, 1), dilation=(1, 1),
                 groups=1)
    call, *_ = run(ConvTranspose2d, [x, w, b], needs, attrs, _normal)
    cost = cost_of(call)
    tensors = [torch.tensor(a, requires_grad=n) for a, n in zip((x, w, b), needs)]
    with FlopCounterMode(display=False) as forward_count:
        y = torch.nn.functional.conv_transpose2d(*tensors, stride=2, padding=1,
                                                 output_padding=1)
    assert cost.gemm_flops == forward_count.get_total_flops()
    with FlopCounterMode(display=False) as backward_count:
        y.backward(torch.ones_like(y))
    assert cost.backward_gemm_flops == backward_count.get_total_flops()
    assert cost.flops > cost.gemm_flops     # col2im's adds and the bias


def test_conv_transpose_cost_counts_the_products_of_each_group():
    x, w = randn(2, 6, 5, 5, seed=37), randn(6, 2, 3, 3, seed=38)
    attrs = dict(stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1))
    one, *_ = run(ConvTranspose2d, [x, w, None], (True, True, None), dict(attrs, groups=1),
                  _normal)
    three, *_ = run(ConvTranspose2d, [x, w[:, :2]], (True, True), dict(attrs, groups=3),
                    _normal)
    # each input pixel meets Co/g * kh * kw weights: with groups=3 and Co/g = 2, as many
    # as with groups=1 and Co = 2
    assert cost_of(one).gemm_flops == cost_of(three).gemm_flops == 2 * x.size * 2 * 9
    assert cost_of(three).backward_gemm_flops == 2 * cost_of(three).gemm_flops


@pytest.mark.parametrize("call, error, message", [
    (lambda x, w: F.conv_transpose2d(x, w[:2]), RuntimeError,
     r"expects input with 2 channels, but got input of shape \(2, 3, 5, 5\)"),
    (lambda x, w: F.conv_transpose2d(x, w, groups=2), RuntimeError,
     "expected weight to be divisible by 2 at dimension 0"),
    (lambda x, w: F.conv_transpose2d(x, w, rg.ones(3)), RuntimeError, r"expected \(4,\)"),
    (lambda x, w: F.conv_transpose2d(x, w, output_padding=1), RuntimeError,
     "output padding must be smaller than either stride or dilation"),
    (lambda x, w: F.conv_transpose2d(x, w, padding=4), RuntimeError, "too small"),
    (lambda x, w: F.conv_transpose2d(x, w, stride=0), ValueError, "stride must be >= 1"),
    (lambda x, w: F.conv_transpose2d(x, w, padding=-1), ValueError, "padding must be >= 0"),
    (lambda x, w: F.conv_transpose2d(x, w[..., 0]), ValueError, "weight must be 4-D"),
    (lambda x, w: F.conv_transpose2d(x[0, 0], w), ValueError, "3-D .* or 4-D"),
    (lambda x, w: F.conv_transpose2d(x.double(), w), TypeError, "of one dtype"),
    (lambda x, w: F.conv_transpose2d(x.numpy(), w), TypeError, "input must be a Tensor"),
    (lambda x, w: F.conv_transpose1d(x, w), ValueError, "weight must be 3-D"),
])
def test_conv_transpose_errors_name_the_op_the_shapes_and_the_dtypes(call, error, message):
    with pytest.raises(error, match=message):
        call(rg.ones(2, 3, 5, 5), rg.ones(3, 4, 3, 3))


def test_conv_transpose_errors_agree_with_torch_on_what_is_invalid():
    x, w = torch.ones(2, 3, 5, 5), torch.ones(3, 4, 3, 3)
    for args, kwargs in (((w[:2],), {}), ((w,), dict(groups=2)), ((w, torch.ones(3)), {}),
                         ((w,), dict(output_padding=1)), ((w,), dict(padding=4))):
        with pytest.raises(RuntimeError):
            torch.nn.functional.conv_transpose2d(x, *args, **kwargs)
        rg_args = tuple(rg.tensor(a.numpy()) for a in args)
        with pytest.raises(RuntimeError):
            F.conv_transpose2d(rg.ones(2, 3, 5, 5), *rg_args, **kwargs)
