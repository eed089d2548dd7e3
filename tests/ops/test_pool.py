"""MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (retrograd/ops/pool.py) through nn.functional,
with the 1-D poolings built on them: against PyTorch, against finite differences (through the
engine and alone), PyTorch's conventions at ties, NaN and -inf, and the error messages."""

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradgradcheck
from retrograd.ops.pool import (AdaptiveAvgPool2d, AvgPool2d, MaxPool2d,
                                avg_pool2d_reference_backward, max_pool2d_reference_backward,
                                pool_output_size)
from tests.oracle import check_backward_alone, check_op, randn, to_torch

TF = torch.nn.functional


def _pair(name, **kwargs):
    return (lambda x: getattr(F, name)(x, **kwargs),
            lambda x: getattr(TF, name)(x, **kwargs))


# (input shape, keyword arguments)
MAX_POOL2D_CASES = [
    ((2, 3, 6, 6), dict(kernel_size=2)),
    ((2, 3, 6, 5), dict(kernel_size=3, stride=1, padding=1)),
    ((2, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 8, 8), dict(kernel_size=2, stride=3)),                       # stride > kernel
    ((2, 2, 8, 7), dict(kernel_size=2, stride=3, ceil_mode=True)),
    ((1, 2, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),  # ceil rule cuts
    ((2, 2, 9, 8), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    ((2, 2, 9, 8), dict(kernel_size=2, stride=1, dilation=(2, 3), ceil_mode=True)),
    ((2, 2, 6, 9), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1))),  # non-square
    ((2, 2, 4, 3), dict(kernel_size=(4, 3))),                            # one window
    ((1, 1, 5, 5), dict(kernel_size=3, stride=2)),
    ((3, 6, 6), dict(kernel_size=2)),                                    # unbatched
    ((1, 2, 17, 18), dict(kernel_size=17, stride=1)),                    # > 256 offsets
]


@pytest.mark.parametrize("x_shape, kwargs", MAX_POOL2D_CASES)
@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool2d_matches_torch_and_finite_differences(x_shape, kwargs, return_indices):
    rg_fn, torch_fn = _pair("max_pool2d", return_indices=return_indices, **kwargs)
    outs = check_op(rg_fn, torch_fn, randn(*x_shape, seed=1))
    if return_indices:
        assert outs[1].dtype == rg.int64 and not outs[1].requires_grad


AVG_POOL2D_CASES = [
    ((2, 3, 6, 6), dict(kernel_size=2)),
    ((2, 2, 6, 5), dict(kernel_size=3, stride=1, padding=1)),
    ((2, 2, 6, 5), dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ((2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False)),
    ((2, 2, 8, 7), dict(kernel_size=2, stride=3, ceil_mode=True)),      # stride > kernel
    ((1, 2, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 6, 6), dict(kernel_size=3, stride=2, padding=1, divisor_override=3)),
    ((2, 2, 6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False, divisor_override=-2)),
    ((2, 2, 6, 9), dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0))),
    ((3, 5, 5), dict(kernel_size=3, padding=1)),                         # unbatched
]


@pytest.mark.parametrize("x_shape, kwargs", AVG_POOL2D_CASES)
def test_avg_pool2d_matches_torch_and_finite_differences(x_shape, kwargs):
    check_op(*_pair("avg_pool2d", **kwargs), randn(*x_shape, seed=2))


@pytest.mark.parametrize("x_shape, output_size", [
    ((2, 3, 7, 8), 1),                    # global average pooling
    ((2, 3, 7, 8), (3, 5)),
    ((2, 3, 8, 8), (4, 4)),               # windows of equal size
    ((2, 2, 3, 7), (5, 3)),               # more outputs than inputs along H: windows overlap
    ((2, 2, 6, 5), (None, 2)),            # None keeps that size
    ((3, 6, 5), 2),                       # unbatched
])
def test_adaptive_avg_pool2d_matches_torch_and_finite_differences(x_shape, output_size):
    check_op(*_pair("adaptive_avg_pool2d", output_size=output_size), randn(*x_shape, seed=3))


POOL1D_CASES = [
    ("max_pool1d", (2, 3, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool1d", (2, 3, 9), dict(kernel_size=2, dilation=3, return_indices=True)),
    ("max_pool1d", (3, 8), dict(kernel_size=2, return_indices=True)),  # unbatched
    ("avg_pool1d", (2, 3, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool1d", (2, 3, 9), dict(kernel_size=3, padding=1, count_include_pad=False)),
    ("avg_pool1d", (3, 8), dict(kernel_size=4, stride=5)),
    ("adaptive_avg_pool1d", (2, 3, 9), dict(output_size=4)),
    ("adaptive_avg_pool1d", (3, 5), dict(output_size=7)),
]


@pytest.mark.parametrize("name, x_shape, kwargs", POOL1D_CASES)
def test_1d_poolings_match_torch_and_finite_differences(name, x_shape, kwargs):
    check_op(*_pair(name, **kwargs), randn(*x_shape, seed=4))


def _draw_pool2d_configuration(draw):
    """("max_pool2d" or "avg_pool2d", x, keyword arguments): small shapes and hyper-parameters
    drawn at random (float64), with at least one window."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    ceil_mode = draw(st.booleans())
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    name = draw(st.sampled_from(["max_pool2d", "avg_pool2d"]))
    if name == "max_pool2d":
        dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        kwargs = dict(dilation=dilation, return_indices=True)
    else:
        dilation = (1, 1)
        kwargs = dict(count_include_pad=draw(st.booleans()),
                      divisor_override=draw(st.sampled_from([None, 3])))
    assume(all(pool_output_size(n, k, s, p, d, ceil_mode) >= 1 for n, k, s, p, d in
               zip(size, kernel, stride, padding, dilation)))
    x = randn(2, 2, *size, seed=draw(st.integers(0, 2 ** 16)))
    return name, x, dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         **kwargs)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_max_and_avg_pool2d_match_torch_on_random_configurations(data):
    name, x, kwargs = _draw_pool2d_configuration(data.draw)
    # NOTE: torch scatters the gradient of a window that holds no input cell (possible with
    # dilation) out of bounds, into the next plane; see the explicit test below
    dilation = kwargs.get("dilation", (1, 1))
    assume(all(_every_window_sees_input(n, k, s, p, d, kwargs["ceil_mode"]) for n, k, s, p, d in
               zip(x.shape[2:], kwargs["kernel_size"], kwargs["stride"], kwargs["padding"],
                   dilation)))
    check_op(*_pair(name, **kwargs), x, gradcheck=False)


def _every_window_sees_input(size, kernel, stride, padding, dilation, ceil_mode):
    out = pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    return all(any(0 <= o * stride - padding + i * dilation < size for i in range(kernel))
               for o in range(out))


def test_max_pool2d_window_entirely_in_padding_gives_minus_inf_and_no_gradient():
    # kernel 2 with dilation 2 and padding 1 over one row: the window's cells are rows -1 and
    # +1, both outside the input. Output and index are torch's (-inf, 1); the gradient is
    # dropped, where torch writes it out of bounds into the next plane.
    x = rg.tensor(np.full((2, 2, 1, 1), 0.5), requires_grad=True)
    y, idx = F.max_pool2d(x, (2, 1), (2, 1), (1, 0), (2, 1), ceil_mode=True,
                          return_indices=True)
    t_y, t_idx = TF.max_pool2d(torch.full((1, 1, 1, 1), 0.5), (2, 1), (2, 1), (1, 0), (2, 1),
                               ceil_mode=True, return_indices=True)
    assert y.tolist() == [[[[-np.inf]]] * 2] * 2 and t_y.item() == -np.inf
    assert idx.tolist() == [[[[1]]] * 2] * 2 and t_idx.item() == 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 2, 1, 1)))


@pytest.mark.parametrize("op, attrs", [
    (MaxPool2d, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2),
                     ceil_mode=True)),
    (AvgPool2d, dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True,
                     count_include_pad=False)),
    (AvgPool2d, dict(kernel_size=(2, 3), stride=(3, 1), padding=(0, 1),
                     divisor_override=4)),
    (AdaptiveAvgPool2d, dict(output_size=(3, 4))),
])
def test_pool_backward_alone_matches_finite_differences(op, attrs):
    check_backward_alone(op, [randn(2, 3, 7, 6, seed=5)], attrs)


@pytest.mark.parametrize("name, kwargs", [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 2))),
])
def test_pools_in_float32_match_torch_and_stay_float32(name, kwargs):
    outs = check_op(*_pair(name, **kwargs), randn(4, 8, 12, 11, seed=6), dtype=np.float32)
    assert outs[0].dtype == rg.float32


def test_max_pool2d_2x2_inner_product_check_at_a_realistic_size():
    x, c = randn(8, 16, 32, 32, seed=7), randn(8, 16, 16, 16, seed=8)
    t = randn(*x.shape, seed=9)
    rx = rg.tensor(x, requires_grad=True)
    F.max_pool2d(rx, 2).backward(rg.tensor(c))
    eps = 1e-6  # piecewise linear: exact away from ties, and random inputs have none
    with rg.no_grad():
        jvp = (F.max_pool2d(rg.tensor(x + eps * t), 2)
               - F.max_pool2d(rg.tensor(x - eps * t), 2)).numpy() / (2 * eps)
    np.testing.assert_allclose(np.vdot(t, rx.grad.numpy()), np.vdot(jvp, c), rtol=1e-8)


# ------------------------------------------------------------- kinks: PyTorch's conventions
def _both(fn_rg, fn_torch, x, cotangent):
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    ry, ty = fn_rg(rx), fn_torch(tx)
    ry = ry if isinstance(ry, tuple) else (ry,)
    ty = ty if isinstance(ty, tuple) else (ty,)
    ry[0].backward(rg.tensor(cotangent))
    ty[0].backward(to_torch(cotangent))
    return ry, ty, rx.grad.numpy(), tx.grad.numpy()


TIE_INPUTS = [
    np.ones((1, 1, 4, 4)),                                              # all tied: first wins
    np.array([[[[1.0, 3, 3, 1], [3, 2, 1, 3], [0, 0, 0, 0], [0, 0, 0, 0]]]]),
    np.array([[[[1.0, np.nan, 3], [np.nan, 2, 0], [1, 1, 1]]]]),          # NaN wins, last one
    np.full((1, 1, 3, 3), -np.inf),                                     # -inf: first real cell
]
TIE_POOLS = [
    dict(kernel_size=2, stride=1), dict(kernel_size=2, stride=1, padding=1),
    dict(kernel_size=3, stride=1, padding=1, ceil_mode=True),
]


@pytest.mark.parametrize("x", TIE_INPUTS)
@pytest.mark.parametrize("kwargs", TIE_POOLS)
def test_max_pool2d_at_ties_nan_and_inf_follows_torch_exactly(x, kwargs):
    out_shape = TF.max_pool2d(to_torch(x), **kwargs).shape
    cotangent = np.arange(1.0, 1.0 + np.prod(out_shape)).reshape(out_shape)
    ry, ty, rgrad, tgrad = _both(lambda t: F.max_pool2d(t, return_indices=True, **kwargs),
                                 lambda t: TF.max_pool2d(t, return_indices=True, **kwargs),
                                 x, cotangent)
    np.testing.assert_array_equal(ry[0].detach().numpy(), ty[0].detach().numpy())
    np.testing.assert_array_equal(ry[1].numpy(), ty[1].numpy())
    np.testing.assert_array_equal(rgrad, tgrad)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_max_pool2d_backward_of_a_non_finite_gradient_follows_torch_exactly(bad):
    # the non-finite gradient reaches its argmax only; every other input still gets 0
    x = randn(1, 2, 4, 4, seed=12)
    cotangent = randn(1, 2, 3, 3, seed=13)
    cotangent[0, 1, 1, 2] = bad
    _, _, rgrad, tgrad = _both(lambda t: F.max_pool2d(t, 2, 1), lambda t: TF.max_pool2d(t, 2, 1),
                               x, cotangent)
    np.testing.assert_array_equal(rgrad, tgrad)
    assert np.isfinite(rgrad[0, 0]).all()


def test_max_pool2d_overlapping_windows_accumulate_on_a_shared_max():
    # the centre 9 is the max of all four 2x2 windows: it collects all four gradients
    x = np.array([[[[1.0, 2, 3], [4, 9, 5], [6, 7, 8]]]])
    _, _, rgrad, tgrad = _both(lambda t: F.max_pool2d(t, 2, 1), lambda t: TF.max_pool2d(t, 2, 1),
                               x, np.array([[[[1.0, 2], [3, 4]]]]))
    assert rgrad[0, 0, 1, 1] == 10.0
    np.testing.assert_array_equal(rgrad, tgrad)


def test_avg_pool2d_worked_example_spreads_the_gradient_evenly():
    x = rg.tensor([[[[1.0, 2, 3, 4], [5, 6, 7, 8]]]], requires_grad=True)
    y = F.avg_pool2d(x, 2)
    assert y.tolist() == [[[[3.5, 5.5]]]]
    y.backward(rg.tensor([[[[4.0, -8.0]]]]))
    assert x.grad.tolist() == [[[[1.0, 1.0, -2.0, -2.0], [1.0, 1.0, -2.0, -2.0]]]]


# ------------------------------------------------ the fast kernels against the reference rules
def _pair_of(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _pool_attrs(kwargs, max_pool):
    """The op's attributes for nn.functional's keyword arguments (stride defaults to the
    kernel, as in PyTorch)."""
    kernel = _pair_of(kwargs["kernel_size"])
    attrs = dict(kernel_size=kernel, stride=_pair_of(kwargs.get("stride") or kernel),
                 padding=_pair_of(kwargs.get("padding", 0)),
                 ceil_mode=kwargs.get("ceil_mode", False))
    if max_pool:
        attrs["dilation"] = _pair_of(kwargs.get("dilation", 1))
    else:
        attrs["count_include_pad"] = kwargs.get("count_include_pad", True)
        attrs["divisor_override"] = kwargs.get("divisor_override")
    return attrs


def _fast_grad(op, x, attrs, seed=0, cotangent=None):
    """(dL/dx through Op.apply and the engine, the cotangent): a random cotangent unless
    one is given."""
    rx = rg.tensor(x, requires_grad=True)
    y = op.apply(rx, **attrs)
    if cotangent is None:
        cotangent = randn(*y.shape, seed=seed)
        assert np.unique(cotangent).size == cotangent.size  # every entry differs, unlike ones
    y.backward(rg.tensor(cotangent))
    return rx.grad.numpy(), cotangent


def _assert_same_gradient(fast, reference):
    """Equal to rounding: the kernel adds offset by offset, the reference window by window."""
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    np.testing.assert_allclose(fast, reference, rtol=1e-10, atol=1e-12)


def _batched(x):
    return x if x.ndim == 4 else x[None]


@pytest.mark.parametrize("is_max, x_shape, kwargs",
                         [(True, *case) for case in MAX_POOL2D_CASES]
                         + [(False, *case) for case in AVG_POOL2D_CASES])
def test_pool2d_backward_equals_the_reference(is_max, x_shape, kwargs):
    op, reference_backward = ((MaxPool2d, max_pool2d_reference_backward) if is_max
                              else (AvgPool2d, avg_pool2d_reference_backward))
    x, attrs = _batched(randn(*x_shape, seed=20)), _pool_attrs(kwargs, max_pool=is_max)
    fast, cotangent = _fast_grad(op, x, attrs)
    reference = reference_backward(x, cotangent, **attrs)
    assert np.any(reference != 0)
    _assert_same_gradient(fast, reference)


@pytest.mark.parametrize("x", TIE_INPUTS)
@pytest.mark.parametrize("kwargs", TIE_POOLS)
def test_max_pool2d_backward_at_ties_nan_and_inf_equals_the_reference(x, kwargs):
    attrs = _pool_attrs(kwargs, max_pool=True)
    fast, cotangent = _fast_grad(MaxPool2d, x, attrs, seed=21)
    _assert_same_gradient(fast, max_pool2d_reference_backward(x, cotangent, **attrs))


@pytest.mark.parametrize("x", TIE_INPUTS)
@pytest.mark.parametrize("kwargs", TIE_POOLS)
def test_max_pool2d_reference_at_ties_nan_and_inf_follows_torch_exactly(x, kwargs):
    """The reference's conventions are PyTorch's (so the fast kernel cannot agree with a
    reference that is wrong the same way)."""
    t_x = to_torch(x).requires_grad_()
    t_y = TF.max_pool2d(t_x, **kwargs)
    cotangent = np.arange(1.0, 1.0 + t_y.numel()).reshape(t_y.shape)
    t_y.backward(to_torch(cotangent))
    reference = max_pool2d_reference_backward(x, cotangent, **_pool_attrs(kwargs, True))
    np.testing.assert_array_equal(reference, t_x.grad.numpy())


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_max_pool2d_backward_of_a_non_finite_gradient_equals_the_reference(bad):
    x, attrs = randn(1, 2, 4, 4, seed=22), _pool_attrs(dict(kernel_size=2, stride=1), True)
    cotangent = randn(1, 2, 3, 3, seed=23)
    cotangent[0, 1, 1, 2] = bad
    fast, _ = _fast_grad(MaxPool2d, x, attrs, cotangent=cotangent)
    _assert_same_gradient(fast, max_pool2d_reference_backward(x, cotangent, **attrs))


@pytest.mark.parametrize("is_max, x_shape, kwargs", [
    (False, (2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                               count_include_pad=False)),
    (False, (2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (False, (2, 2, 6, 9), dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0),
                               divisor_override=5)),
    (True, (2, 2, 9, 8), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    (True, (2, 2, 8, 7), dict(kernel_size=2, stride=3, ceil_mode=True)),
])
def test_pool2d_references_match_torch(is_max, x_shape, kwargs):
    torch_pool, reference_backward = ((TF.max_pool2d, max_pool2d_reference_backward) if is_max
                                      else (TF.avg_pool2d, avg_pool2d_reference_backward))
    x = randn(*x_shape, seed=25)
    t_x = to_torch(x).requires_grad_()
    t_y = torch_pool(t_x, **kwargs)
    cotangent = randn(*t_y.shape, seed=26)
    t_y.backward(to_torch(cotangent))
    reference = reference_backward(x, cotangent, **_pool_attrs(kwargs, is_max))
    _assert_same_gradient(t_x.grad.numpy(), reference)


@pytest.mark.parametrize("name, x_shape, kwargs", [
    case for case in POOL1D_CASES if case[0] != "adaptive_avg_pool1d"])
def test_1d_pooling_backward_equals_the_reference_with_h_1(name, x_shape, kwargs):
    """max_pool1d and avg_pool1d are the 2-D ops on (N, C, 1, L): kernel, stride and padding
    get a leading 1 (and 0 padding)."""
    max_pool = name == "max_pool1d"
    kernel = kwargs["kernel_size"]
    kwargs_2d = dict(kwargs, kernel_size=(1, kernel), stride=(1, kwargs.get("stride") or kernel),
                     padding=(0, kwargs.get("padding", 0)), dilation=(1, kwargs.get("dilation", 1)))
    attrs = _pool_attrs(kwargs_2d, max_pool)
    x = randn(*x_shape, seed=29)
    x = (x if x.ndim == 3 else x[None])[:, :, None, :]
    op, reference_backward = ((MaxPool2d, max_pool2d_reference_backward) if max_pool else
                              (AvgPool2d, avg_pool2d_reference_backward))
    fast, cotangent = _fast_grad(op, x, attrs)
    _assert_same_gradient(fast, reference_backward(x, cotangent, **attrs))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_max_and_avg_pool2d_backward_equal_the_reference_on_random_configurations(data):
    """Windows that hold padding only (with dilation) included: they pass no gradient."""
    name, x, kwargs = _draw_pool2d_configuration(data.draw)
    max_pool = name == "max_pool2d"
    attrs = _pool_attrs(kwargs, max_pool)
    op, reference_backward = ((MaxPool2d, max_pool2d_reference_backward) if max_pool else
                              (AvgPool2d, avg_pool2d_reference_backward))
    fast, cotangent = _fast_grad(op, x, attrs)
    _assert_same_gradient(fast, reference_backward(x, cotangent, **attrs))


# ------------------------------------------------------------------ saved values, order 2
def test_max_pool2d_saves_one_byte_per_output_and_no_input():
    y = F.max_pool2d(rg.tensor(randn(2, 3, 8, 8), requires_grad=True), 2)
    (argmax,) = y.grad_fn.saved_tensors
    assert argmax.dtype == np.uint8 and argmax.shape == (2, 3, 4, 4)


def test_max_and_avg_pool_refuse_a_second_derivative_and_name_the_op():
    for fn, name in ((lambda t: F.max_pool2d(t, 2), "MaxPool2d"),
                     (lambda t: F.avg_pool2d(t, 2), "AvgPool2d")):
        x = rg.tensor(randn(1, 1, 4, 4), requires_grad=True)
        (g,) = rg.autograd.grad(fn(x * x).sum(), [x], create_graph=True)
        with pytest.raises(RuntimeError, match=name):
            g.sum().backward()


def test_adaptive_avg_pool2d_is_twice_differentiable():
    x = rg.tensor(randn(2, 2, 5, 4, seed=10), requires_grad=True)
    assert gradgradcheck(lambda t: F.adaptive_avg_pool2d(t * t, (2, 3)), [x],
                         atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("size, kernel, stride, pad, dilation, ceil", [
    (5, 2, 2, 1, 1, True), (5, 2, 2, 1, 1, False), (7, 3, 3, 1, 1, True), (8, 2, 3, 0, 1, True),
    (9, 3, 2, 1, 2, True), (6, 3, 4, 1, 1, True), (1, 1, 2, 0, 1, True),
])
def test_pool_output_size_is_torchs(size, kernel, stride, pad, dilation, ceil):
    y = TF.max_pool1d(torch.zeros(1, 1, size), kernel, stride, pad, dilation, ceil)
    assert pool_output_size(size, kernel, stride, pad, dilation, ceil) == y.shape[-1]


# ------------------------------------------------------------------------------ errors
def _t(*shape, dtype=np.float64):
    return rg.tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.max_pool2d(_t(1, 1, 5, 5), 3, 1, padding=2), ValueError,
     r"max_pool2d: padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"),
    (lambda: F.avg_pool2d(_t(1, 1, 5, 5), (2, 4), padding=(1, 3)), ValueError,
     r"avg_pool2d: padding \(1, 3\) must be at most half of kernel_size \(2, 4\)"),
    (lambda: F.max_pool2d(_t(1, 1, 2, 2), 3), ValueError,
     r"max_pool2d: output size \(0, 0\) is too small: input of shape \(1, 1, 2, 2\), "
     r"kernel_size \(3, 3\)"),
    (lambda: F.max_pool2d(_t(1, 1, 5, 5), 2, dilation=5), ValueError,
     r"output size \(0, 0\) is too small.*dilation \(5, 5\)"),
    (lambda: F.max_pool2d(_t(5, 5), 2), ValueError,
     r"max_pool2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input, got input of shape "
     r"\(5, 5\)"),
    (lambda: F.max_pool1d(_t(1, 2, 5, 5), 2), ValueError,
     r"max_pool1d: expected a 2-D \(unbatched\) or 3-D \(batched\) input"),
    (lambda: F.max_pool2d(_t(1, 1, 4, 4, dtype=np.int64), 2), TypeError,
     r"max_pool2d: expected a floating input, got dtype retrograd.int64"),
    (lambda: F.avg_pool2d(_t(1, 1, 4, 4), 2, divisor_override=0), ValueError,
     r"avg_pool2d: divisor_override must be a non-zero int, got 0"),
    (lambda: F.avg_pool2d(_t(1, 1, 4, 4), 0), ValueError, r"kernel_size must be >= 1"),
    (lambda: F.max_pool2d(_t(1, 1, 4, 4), 2, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: F.max_pool2d(_t(1, 1, 4, 4), (2, 2, 2)), ValueError,
     r"kernel_size must be an int or a tuple of 2 ints, got \(2, 2, 2\)"),
    (lambda: F.adaptive_avg_pool2d(_t(1, 1, 4, 4), (2, 0)), ValueError,
     r"adaptive_avg_pool2d: output_size must be a positive int or a tuple of 2 positive ints"),
    (lambda: F.adaptive_avg_pool2d(_t(1, 1, 0, 4), 2), ValueError,
     r"input of spatial size \(0, 4\) has no element to average"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError,
     r"max_pool2d: input must be a Tensor, got ndarray"),
])
def test_pool_errors_name_the_op_and_the_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=1, padding=2), dict(kernel_size=3, dilation=3),
])
def test_pool_errors_agree_with_torch_on_what_is_invalid(kwargs):
    with pytest.raises(RuntimeError):
        TF.max_pool2d(torch.zeros(1, 1, 5, 5), **kwargs)
    with pytest.raises(ValueError):
        F.max_pool2d(_t(1, 1, 5, 5), **kwargs)


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
@pytest.mark.parametrize("name, kwargs", [
    ("max_pool2d", dict(kernel_size=2)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("adaptive_avg_pool2d", dict(output_size=(2, 3))),
])
def test_pools_keep_half_precision_dtypes(dtype, name, kwargs):
    x = randn(2, 3, 8, 8, seed=11)
    x_half = rg.tensor(x).to(dtype).requires_grad_()
    y = getattr(F, name)(x_half, **kwargs)
    y.sum().backward()
    assert y.dtype == dtype and x_half.grad.dtype == dtype
    expected = getattr(TF, name)(to_torch(x_half.detach().to(rg.float32).numpy()), **kwargs)
    np.testing.assert_allclose(y.detach().to(rg.float32).numpy(), expected.numpy(), rtol=2e-2,
                               atol=2e-2)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_global_average_pooling_keeps_the_window_paths_results(dtype):
    """output_size 1 (a mean per plane, its own forward and backward) against PyTorch, with
    inf, -inf and NaN in some planes, and a gradient one can add into (not a broadcast view)."""
    x = randn(2, 3, 5, 4, seed=11).astype(dtype)
    x[0, 0, 1, 1], x[0, 1, 2, 2], x[1, 2, 0, 3], x[1, 2, 4, 0] = np.inf, np.nan, np.inf, -np.inf
    tx = rg.tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(tx, 1)
    g = randn(2, 3, 1, 1, seed=12).astype(dtype)
    y.backward(rg.tensor(g))
    ox = torch.tensor(x.astype(np.float32), requires_grad=True)
    oy = TF.adaptive_avg_pool2d(ox, 1)
    oy.backward(torch.tensor(g.astype(np.float32)))
    tol = dict(rtol=2e-3, atol=2e-3) if dtype == np.float16 else dict(rtol=1e-6, atol=1e-6)
    assert y.dtype == dtype and tx.grad.dtype == dtype
    np.testing.assert_allclose(y.detach().numpy().astype(np.float32), oy.detach().numpy(),
                               equal_nan=True, **tol)
    np.testing.assert_allclose(tx.grad.numpy().astype(np.float32), ox.grad.numpy(), **tol)
    grad = tx.grad.numpy()
    assert grad.flags.writeable and grad.flags.c_contiguous
