"""Conv2d and Conv1d (retrograd/ops/conv.py) through nn.functional: against PyTorch, against
finite differences (through the engine and alone), the inner-product check at a realistic
size, the saved-values contract, and the error messages."""

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast
from retrograd.ops.conv import (Conv1d, Conv2d, _im2col, _im2row, _rows_width,
                                _transposed_padding, conv2d_reference_backward, conv_output_size,
                                offset_view)
from tests.oracle import check_backward_alone, check_op, randn, to_torch

# torch warns that it pads a copy for 'same' with even kernels; so do we, silently
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def _conv2d(**kwargs):
    return (lambda x, w, b=None: F.conv2d(x, w, b, **kwargs),
            lambda x, w, b=None: torch.nn.functional.conv2d(x, w, b, **kwargs))


def _conv1d(**kwargs):
    return (lambda x, w, b=None: F.conv1d(x, w, b, **kwargs),
            lambda x, w, b=None: torch.nn.functional.conv1d(x, w, b, **kwargs))


# (input shape, weight shape, keyword arguments, bias)
CONV2D_CASES = [
    ((2, 3, 6, 6), (4, 3, 3, 3), {}, True),
    # one sample, 1x1 kernel, stride 2: X_col is a strided view of x with fewer elements, and
    # was once saved as x (found by the random-configuration test)
    ((1, 1, 2, 2), (1, 1, 1, 1), dict(stride=2), True),
    ((1, 2, 5, 5), (3, 2, 1, 1), dict(stride=2), False),
    ((2, 3, 7, 7), (4, 3, 3, 3), dict(stride=2, padding=1), True),
    ((2, 2, 8, 8), (3, 2, 2, 2), dict(stride=3), True),                 # stride > kernel
    ((1, 2, 5, 5), (3, 2, 3, 3), dict(stride=3, padding=2), True),      # stride > kernel, pad
    ((2, 2, 4, 5), (3, 2, 3, 3), dict(padding=2), True),
    ((2, 2, 5, 6), (3, 2, 3, 3), dict(padding="same"), True),
    ((2, 2, 5, 6), (3, 2, 2, 4), dict(padding="same"), True),          # even kernel: asymmetric
    ((1, 2, 7, 6), (2, 2, 2, 3), dict(padding="same", dilation=(3, 2)), True),
    ((2, 2, 5, 6), (3, 2, 3, 2), dict(padding="valid"), True),
    ((2, 2, 8, 8), (3, 2, 3, 3), dict(dilation=2), True),
    ((2, 2, 9, 8), (3, 2, 3, 2), dict(dilation=2, stride=2, padding=1), True),
    ((2, 4, 6, 6), (6, 2, 3, 3), dict(groups=2, padding=1), True),
    ((2, 4, 6, 5), (8, 1, 3, 3), dict(groups=4, padding=1), True),      # depthwise, x2 filters
    ((2, 3, 5, 5), (3, 1, 3, 3), dict(groups=3, stride=2), False),      # depthwise, no bias
    ((2, 3, 5, 5), (4, 3, 3, 3), {}, False),
    ((2, 3, 5, 4), (4, 3, 1, 1), {}, True),                             # 1x1: X_col is x
    ((2, 3, 5, 4), (4, 3, 1, 1), dict(stride=2), True),
    ((2, 3, 5, 4), (4, 3, 1, 1), dict(padding=1), False),
    ((2, 2, 5, 9), (3, 2, 3, 1), dict(padding=(1, 0)), True),          # non-square everything
    ((2, 2, 6, 7), (3, 2, 2, 3), dict(stride=(1, 2), padding=(0, 2), dilation=(2, 1)), True),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(padding=1), True),                # batch 1
    ((2, 1, 6, 5), (1, 1, 3, 2), {}, True),                             # one channel in and out
    ((2, 3, 5, 6), (1, 3, 3, 3), dict(padding=1), True),                # one filter, 3 channels
    ((2, 2, 4, 3), (3, 2, 4, 3), {}, True),                             # kernel = input: 1x1 out
    ((3, 5, 5), (4, 3, 3, 3), dict(padding=1), True),                   # unbatched (C, H, W)
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", CONV2D_CASES)
def test_conv2d_matches_torch_and_finite_differences(x_shape, w_shape, kwargs, bias):
    rg_fn, torch_fn = _conv2d(**kwargs)
    inputs = [randn(*x_shape, seed=1), randn(*w_shape, seed=2)]
    if bias:
        inputs.append(randn(w_shape[0], seed=3))
    check_op(rg_fn, torch_fn, *inputs)


CONV1D_CASES = [
    ((2, 3, 9), (4, 3, 3), {}, True),
    ((2, 3, 9), (4, 3, 3), dict(stride=2, padding=1), True),
    ((2, 2, 10), (3, 2, 2), dict(stride=3), False),                    # stride > kernel
    ((2, 2, 9), (3, 2, 4), dict(padding="same", dilation=3), True),    # asymmetric 'same'
    ((2, 2, 9), (3, 2, 3), dict(padding="valid", dilation=2), True),
    ((2, 4, 8), (4, 1, 3), dict(groups=4, padding=1), True),           # depthwise
    ((2, 4, 8), (6, 2, 1), dict(groups=2), True),                      # 1x1, groups
    ((1, 1, 5), (1, 1, 5), {}, True),                                  # kernel = input
    ((3, 7), (2, 3, 3), dict(padding=(2,)), True),                     # unbatched (C, L)
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", CONV1D_CASES)
def test_conv1d_matches_torch_and_finite_differences(x_shape, w_shape, kwargs, bias):
    rg_fn, torch_fn = _conv1d(**kwargs)
    inputs = [randn(*x_shape, seed=4), randn(*w_shape, seed=5)]
    if bias:
        inputs.append(randn(w_shape[0], seed=6))
    check_op(rg_fn, torch_fn, *inputs)


@pytest.mark.parametrize("no_grad", [(0,), (1,), (2,), (0, 2), (1, 2), (0, 1)])
def test_conv2d_with_some_inputs_not_requiring_grad(no_grad):
    # needs_input_grad skips dL/dx (first layer), X_col (frozen weight) or dL/db
    rg_fn, torch_fn = _conv2d(padding=1, stride=2)
    check_op(rg_fn, torch_fn, randn(2, 3, 6, 5, seed=7), randn(4, 3, 3, 3, seed=8),
             randn(4, seed=9), no_grad=no_grad)


@pytest.mark.parametrize("op, arrays, attrs", [
    (Conv2d, [randn(2, 3, 6, 5, seed=10), randn(4, 3, 3, 2, seed=11), randn(4, seed=12)],
     dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2), groups=1)),
    (Conv2d, [randn(2, 4, 5, 5, seed=13), randn(6, 2, 2, 2, seed=14), None],
     dict(stride=(3, 3), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=2)),
    (Conv2d, [randn(2, 3, 4, 4, seed=15), randn(5, 3, 1, 1, seed=16), randn(5, seed=17)],
     dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)),
    (Conv1d, [randn(2, 3, 8, seed=18), randn(4, 3, 3, seed=19), randn(4, seed=20)],
     dict(stride=(2,), padding=((1, 0),), dilation=(2,), groups=1)),
])
def test_conv_backward_alone_matches_finite_differences(op, arrays, attrs):
    check_backward_alone(op, arrays, attrs)


def test_conv2d_float32_matches_torch_and_stays_float32():
    rg_fn, torch_fn = _conv2d(padding=1, stride=1)
    x, w, b = randn(4, 8, 12, 12, seed=21), randn(16, 8, 3, 3, seed=22), randn(16, seed=23)
    outs = check_op(rg_fn, torch_fn, x * 0.5, w * 0.1, b, dtype=np.float32, rtol=1e-4, atol=1e-4)
    assert outs[0].dtype == rg.float32


def test_conv1d_float32_matches_torch():
    rg_fn, torch_fn = _conv1d(padding="same", groups=2)
    check_op(rg_fn, torch_fn, randn(4, 6, 20, seed=24), randn(8, 3, 5, seed=25),
             randn(8, seed=26), dtype=np.float32, rtol=1e-4, atol=1e-4)


def test_conv2d_inner_product_check_at_a_realistic_size():
    """<t, J^T c> = <J t, c> along one random direction t = (t_x, t_w, t_b) for a
    8x16x32x32 input and 16 3x3 filters. conv is bilinear, so J t = conv(t_x, W) +
    conv(x, t_w) + t_b exactly, and both sides agree to rounding."""
    x, w, b = randn(8, 16, 32, 32, seed=27), randn(16, 16, 3, 3, seed=28), randn(16, seed=29)
    t_x, t_w, t_b = randn(*x.shape, seed=30), randn(*w.shape, seed=31), randn(16, seed=32)
    c = randn(8, 16, 32, 32, seed=33)
    rx, rw, rb = (rg.tensor(a, requires_grad=True) for a in (x, w, b))
    F.conv2d(rx, rw, rb, padding=1).backward(rg.tensor(c))
    vjp = (np.vdot(t_x, rx.grad.numpy()) + np.vdot(t_w, rw.grad.numpy())
           + np.vdot(t_b, rb.grad.numpy()))
    with rg.no_grad():
        jvp = (F.conv2d(rg.tensor(t_x), rg.tensor(w), padding=1)
               + F.conv2d(rg.tensor(x), rg.tensor(t_w), rg.tensor(t_b), padding=1)).numpy()
    assert abs(vjp) > 1.0  # the check is not trivially 0 = 0
    np.testing.assert_allclose(vjp, np.vdot(jvp, c), rtol=1e-10)


def test_conv2d_of_the_course_example_worked_by_hand():
    # X (3x3), K (2x2), b = 1: Y[i, j] = sum_mn X[i+m, j+n] K[m, n] + b
    x = rg.tensor([[[[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]]], requires_grad=True)
    k = rg.tensor([[[[1.0, 0], [-1, 1]]]], requires_grad=True)
    b = rg.tensor([1.0], requires_grad=True)
    y = F.conv2d(x, k, b)
    assert y.tolist() == [[[[3.0, 4.0], [6.0, 7.0]]]]
    y.backward(rg.tensor([[[[0.5, -0.5], [1.0, 0.0]]]]))
    assert x.grad.tolist() == [[[[0.5, -0.5, 0.0], [0.5, 1.0, -0.5], [-1.0, 1.0, 0.0]]]]
    assert k.grad.tolist() == [[[[3.5, 4.5], [6.5, 7.5]]]]
    assert b.grad.tolist() == [1.0]


def test_conv2d_with_an_empty_batch_matches_torch():
    rg_fn, torch_fn = _conv2d(padding=1)
    check_op(rg_fn, torch_fn, randn(0, 2, 4, 4, seed=34), randn(3, 2, 3, 3, seed=35),
             randn(3, seed=36), gradcheck=False)


def _draw_conv2d_configuration(draw):
    """(x, w, b, keyword arguments of conv2d): small shapes and hyper-parameters drawn at
    random, float64, with a kernel that fits the padded input."""
    groups = draw(st.sampled_from([1, 2, 3]))
    c, o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]),
                             st.tuples(st.integers(0, 3), st.integers(0, 3))))
    if padding == "same":
        stride = (1, 1)
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    pad_total = [0, 0] if isinstance(padding, str) else [2 * p for p in padding]
    if padding == "same":
        pad_total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    assume(all(conv_output_size(n, k, 1, p, d) >= 1
               for n, k, p, d in zip(size, kernel, pad_total, dilation)))
    seed = draw(st.integers(0, 2 ** 16))
    x = randn(draw(st.integers(1, 3)), c, *size, seed=seed)
    w, b = randn(o, c // groups, *kernel, seed=seed + 1), randn(o, seed=seed + 2)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, w, b, kwargs


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_conv2d_matches_torch_on_random_configurations(data):
    """Shapes and hyper-parameters drawn at random (small, float64): output and every
    gradient against torch, including the cases no explicit row thought of."""
    x, w, b, kwargs = _draw_conv2d_configuration(data.draw)
    check_op(*_conv2d(**kwargs), x, w, b, gradcheck=False)


# ----------------------------------------------------------------------- helpers alone
def test_im2col_rows_are_kernel_cells_in_weight_order_and_columns_the_windows():
    x = np.arange(2 * 3 * 5 * 4, dtype=np.float64).reshape(2, 3, 5, 4)
    cols = _im2col(x, (2, 3), (2, 1), (2, 1), (1, 1))   # kernel 2x3, output 2x1, stride 2
    assert cols.shape == (3 * 2 * 3, 2 * 2 * 1) and cols.flags.c_contiguous
    for n, c, i, j, ho in np.ndindex(2, 3, 2, 3, 2):
        assert cols[(c * 2 + i) * 3 + j, n * 2 + ho] == x[n, c, 2 * ho + i, j]


@pytest.mark.parametrize("dilation_h", [1, 2])
def test_im2row_rows_are_runs_of_padded_rows_with_zeros_after_the_last(dilation_h):
    x = np.arange(2 * 3 * 7 * 5, dtype=np.float64).reshape(2, 3, 7, 5)
    out_h = 7 - dilation_h * 2
    rows = _im2row(x, 3, dilation_h, out_h, extra=4)
    assert rows.shape == (3 * 3, 2 * out_h * 5 + 4) and rows.flags.c_contiguous
    for n, c, i, ho, w in np.ndindex(2, 3, 3, out_h, 5):
        assert rows[c * 3 + i, (n * out_h + ho) * 5 + w] == x[n, c, ho + i * dilation_h, w]
    np.testing.assert_array_equal(rows[:, -4:], 0.0)


@pytest.mark.parametrize("x_shape, w_shape, stride, expected", [
    ((2, 4, 8, 8), (4, 4, 3, 3), (1, 1), "rows"),
    ((2, 4, 32, 32), (4, 4, 3, 3), (1, 1), "rows"),
    ((2, 4, 8, 8), (4, 4, 3, 3), (2, 2), "columns"),     # strided
    ((2, 2, 8, 8), (4, 2, 3, 3), (1, 1), "columns"),     # C/g * kh = 6: too shallow GEMMs
    ((2, 4, 6, 6), (4, 4, 3, 3), (1, 1), "rows"),        # Wp = 8 = 4/3 Wo
    ((2, 4, 4, 4), (4, 4, 3, 3), (1, 1), "columns"),     # Wp = 6 > 4/3 Wo
    ((2, 4, 8, 8), (4, 4, 3, 1), (1, 1), "columns"),     # one kernel column: nothing to shift
    ((2, 16, 1, 30), (4, 16, 1, 3), (1, 1), "columns"),  # one kernel row (conv1d)
])
def test_row_layout_only_where_it_pays(x_shape, w_shape, stride, expected):
    x_pad = np.zeros(x_shape[:2] + (x_shape[2] + 2, x_shape[3] + 2))
    out = tuple(conv_output_size(s, k, stride[0], 2, 1) for s, k in zip(x_shape[2:], w_shape[2:]))
    width = _rows_width(x_pad, w_shape, out, stride)
    assert width == (x_pad.shape[3] if expected == "rows" else None)


# (input shape, weight shape, keyword arguments, whether the row layout is used)
LAYOUT_CASES = [
    ((2, 3, 8, 8), (5, 3, 3, 3), dict(padding=1), True),       # dL/dx by col2im (O > C)
    ((2, 5, 8, 8), (3, 5, 3, 3), dict(padding=1), True),       # dL/dx by a conv (O <= C)
    ((2, 8, 7, 15), (4, 4, 3, 3), dict(padding=2, dilation=2, groups=2), True),
    ((2, 4, 6, 13), (3, 4, 3, 5), dict(padding=(1, 2)), True),  # a 3x5 kernel
    ((2, 4, 6, 10), (3, 4, 2, 4), dict(padding="same"), True),  # asymmetric padding
    ((1, 2, 4, 33), (3, 2, 3, 3), dict(padding=1), False),     # C/g * kh = 6
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, rows", LAYOUT_CASES)
def test_conv2d_in_both_layouts_matches_torch(x_shape, w_shape, kwargs, rows):
    ours, theirs = _conv2d(**kwargs)
    # x, w and b from independent streams: one seed for all three would make w (and b) a
    # copy of x's first values, which can hide a transposed index
    x, w, b = randn(*x_shape, seed=1), randn(*w_shape, seed=2), randn(w_shape[0], seed=3)
    node = ours(rg.tensor(x, requires_grad=True), rg.tensor(w)).grad_fn
    assert (node.width is not None) == rows
    check_op(ours, theirs, x, w, b)


def test_conv2d_of_a_non_contiguous_input_without_padding_matches_torch():
    ours, theirs = _conv2d()
    check_op(lambda x, w: ours(x.transpose(2, 3), w), lambda x, w: theirs(x.transpose(2, 3), w),
             randn(2, 4, 9, 8, seed=1), randn(3, 4, 3, 3, seed=2))


def test_conv2d_row_layout_saves_a_third_of_the_columns():
    x = rg.tensor(randn(2, 4, 8, 8), requires_grad=True)
    w = rg.tensor(randn(5, 4, 3, 3), requires_grad=True)
    rows, _ = _saved(F.conv2d(x, w, padding=1))
    assert rows.shape == (4 * 3, 2 * 8 * 10 + 2)   # X_col would be (36, 128)


def test_offset_view_writes_through_to_the_padded_array():
    grad = np.zeros((1, 1, 5, 5))
    offset_view(grad, 1, 2, (2, 2), (2, 1), (1, 1))[...] += 1.0
    expected = np.zeros((5, 5))
    expected[[1, 1, 3, 3], [2, 3, 2, 3]] = 1.0
    np.testing.assert_array_equal(grad[0, 0], expected)


@pytest.mark.parametrize("size, kernel, stride, pad, dilation", [
    (7, 3, 2, 2, 1), (5, 2, 3, 0, 1), (9, 3, 1, 0, 4), (4, 4, 1, 0, 1), (1, 1, 5, 0, 1),
])
def test_conv_output_size_is_torchs(size, kernel, stride, pad, dilation):
    y = torch.nn.functional.conv1d(torch.zeros(1, 1, size), torch.zeros(1, 1, kernel),
                                   stride=stride, padding=pad, dilation=dilation)
    assert conv_output_size(size, kernel, stride, 2 * pad, dilation) == y.shape[-1]


# ------------------------------------------------ the fast paths against the reference rule
def _ints(value, dims):
    return (value,) * dims if isinstance(value, int) else tuple(value)


def _conv_attrs(kernel, kwargs):
    """The op's attributes for nn.functional's keyword arguments (with PyTorch's 'same': the
    odd extra row or column of padding goes after)."""
    dims = len(kernel)
    stride, dilation = _ints(kwargs.get("stride", 1), dims), _ints(kwargs.get("dilation", 1), dims)
    padding = kwargs.get("padding", 0)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        pads = tuple((t // 2, t - t // 2) for t in totals)
    elif padding == "valid":
        pads = ((0, 0),) * dims
    else:
        pads = tuple((p, p) for p in _ints(padding, dims))
    return dict(stride=stride, padding=pads, dilation=dilation, groups=kwargs.get("groups", 1))


def _batched_inputs(x_shape, w_shape, bias, seed):
    """x (with a batch dim added to an unbatched shape), w and b (or None), float64."""
    x = randn(*x_shape, seed=seed)
    x = x if len(x_shape) == len(w_shape) else x[None]
    return x, randn(*w_shape, seed=seed + 1), randn(w_shape[0], seed=seed + 2) if bias else None


def _fast_grads(op, arrays, attrs, no_grad=(), seed=0):
    """Op.apply on the arrays (None stays None), backward of a random cotangent through the
    engine: (every input's gradient or None, the cotangent, the graph node)."""
    tensors = [None if a is None else rg.tensor(a, requires_grad=k not in no_grad)
               for k, a in enumerate(arrays)]
    y = op.apply(*tensors, **attrs)
    cotangent = randn(*y.shape, seed=seed)
    assert np.unique(cotangent).size == cotangent.size  # every entry differs, unlike ones
    y.backward(rg.tensor(cotangent))
    grads = [None if t is None or t.grad is None else t.grad.numpy() for t in tensors]
    return grads, cotangent, y.grad_fn


def _assert_same_gradients(fast, reference, skip=()):
    """Equal to rounding: the two sum the same products in another order (float64)."""
    assert any(np.any(g != 0) for g in reference if g is not None)  # not 0 == 0
    for k, (a, b) in enumerate(zip(fast, reference)):
        if k in skip or b is None:
            assert a is None, f"input {k}: a gradient the reference does not have"
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, f"input {k}: {a.shape} vs {b.shape}"
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"gradient {k}")


def _conv2d_fast_and_reference(x, w, b, attrs, no_grad=(), seed=0):
    fast, cotangent, node = _fast_grads(Conv2d, [x, w, b], attrs, no_grad, seed)
    return fast, conv2d_reference_backward(x, w, b, cotangent, **attrs), node


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", CONV2D_CASES)
def test_conv2d_backward_equals_the_reference(x_shape, w_shape, kwargs, bias):
    x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=60)
    fast, reference, _ = _conv2d_fast_and_reference(x, w, b, _conv_attrs(w_shape[2:], kwargs))
    _assert_same_gradients(fast, reference)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, rows", LAYOUT_CASES)
def test_conv2d_backward_in_both_layouts_equals_the_reference(x_shape, w_shape, kwargs, rows):
    x, w, b = _batched_inputs(x_shape, w_shape, True, seed=61)
    fast, reference, node = _conv2d_fast_and_reference(x, w, b, _conv_attrs(w_shape[2:], kwargs))
    assert (node.width is not None) == rows
    _assert_same_gradients(fast, reference)


def test_conv2d_case_tables_reach_every_backward_path():
    """The two tables above cover both layouts, each with dL/dx by col2im and by a
    convolution: the equality tests then check every speed path against the reference."""
    paths = set()
    for x_shape, w_shape, kwargs, _ in CONV2D_CASES + LAYOUT_CASES:
        x, w, b = _batched_inputs(x_shape, w_shape, True, seed=62)
        node = Conv2d.apply(rg.tensor(x, requires_grad=True), rg.tensor(w, requires_grad=True),
                            rg.tensor(b), **_conv_attrs(w_shape[2:], kwargs)).grad_fn
        by_col2im = _transposed_padding(node) is None
        paths.add(("rows" if node.width is not None else "columns",
                   "col2im" if by_col2im else "convolution"))
    assert paths == {(layout, dx) for layout in ("rows", "columns")
                     for dx in ("col2im", "convolution")}


@pytest.mark.parametrize("no_grad", [(0,), (1,), (2,), (0, 2), (1, 2), (0, 1)])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 3, 6, 5), (4, 3, 3, 3), dict(padding=1, stride=2)),
    ((2, 5, 8, 8), (3, 5, 3, 3), dict(padding=1)),            # row layout, dL/dx by a conv
])
def test_conv2d_skipped_gradients_leave_the_others_equal_to_the_reference(
        x_shape, w_shape, kwargs, no_grad):
    x, w, b = _batched_inputs(x_shape, w_shape, True, seed=63)
    fast, reference, _ = _conv2d_fast_and_reference(x, w, b, _conv_attrs(w_shape[2:], kwargs),
                                                    no_grad=no_grad)
    _assert_same_gradients(fast, reference, skip=no_grad)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_conv2d_backward_equals_the_reference_on_random_configurations(data):
    x, w, b, kwargs = _draw_conv2d_configuration(data.draw)
    fast, reference, _ = _conv2d_fast_and_reference(x, w, b, _conv_attrs(w.shape[2:], kwargs))
    _assert_same_gradients(fast, reference)


@pytest.fixture
def gemm_conv(monkeypatch):
    """The im2col/row-layout GEMM path for every conv, depthwise ones included (with the
    'fast' extra those take the direct kernels of retrograd/_numba/conv.py, tested in
    tests/_numba/test_conv.py)."""
    monkeypatch.setitem(_fast._MODULES, "conv", None)

# ------------------------------------------------------------ the row layout with dilation
# Stride-1 convolutions that take the row layout (C/g * kh >= 8, kh and kw > 1, Wp <= 4/3 Wo,
# see _rows_width) with a dilated kernel. The row layout applies the column dilation dw as the
# offset j * dw of X_row's columns, in the forward (_row_gemm) and again in dL/dW
# (_grad_weight_rows), and the row dilation dh inside X_row (_im2row): dh != dw in all rows
# but two, so that a dropped or swapped dilation shows; both dL/dx paths, groups, padding
# (per dimension, and 'same' with an even kernel: asymmetric), bias or not, one sample,
# unbatched; the random configurations after the table pad each side differently.
# (input shape, weight shape, keyword arguments, bias)
ROW_DILATION_CASES = [
    ((2, 4, 6, 16), (3, 4, 2, 3), dict(dilation=(1, 2)), True),                  # dL/dx: conv
    ((2, 3, 7, 14), (5, 3, 3, 2), dict(dilation=(2, 3), padding=1), True),       # dL/dx: col2im
    ((1, 6, 8, 15), (4, 3, 3, 3), dict(dilation=(3, 2), padding=(2, 1), groups=2), True),
    ((2, 2, 9, 14), (3, 2, 4, 2), dict(dilation=(2, 3), padding="same"), False),  # asymmetric
    ((2, 2, 10, 16), (2, 1, 8, 2), dict(dilation=(1, 2), groups=2), True),       # depthwise
    ((2, 4, 5, 20), (6, 4, 2, 2), dict(dilation=(1, 4), padding=(0, 3)), False),
    ((2, 12, 6, 12), (8, 3, 3, 3), dict(dilation=2, padding=2, groups=4), True),  # dh = dw
    ((1, 4, 9, 10), (4, 4, 2, 3), dict(dilation=(3, 1), padding=1), True),       # dh only
    ((5, 7, 14), (4, 5, 2, 3), dict(dilation=(2, 2), padding=(1, 2)), True),     # unbatched
]


def _row_layout_node(x, w, b, attrs):
    node = Conv2d.apply(rg.tensor(x, requires_grad=True), rg.tensor(w, requires_grad=True),
                        None if b is None else rg.tensor(b), **attrs).grad_fn
    assert node.width is not None, "the case does not take the row layout"
    return node


@pytest.mark.usefixtures("gemm_conv")
def test_row_dilation_table_takes_the_row_layout_with_both_input_gradient_paths():
    paths = set()
    for x_shape, w_shape, kwargs, bias in ROW_DILATION_CASES:
        x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=70)
        node = _row_layout_node(x, w, b, _conv_attrs(w_shape[2:], kwargs))
        paths.add("col2im" if _transposed_padding(node) is None else "convolution")
    assert paths == {"col2im", "convolution"}


@pytest.mark.usefixtures("gemm_conv")
@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", ROW_DILATION_CASES)
def test_conv2d_row_layout_with_dilation_matches_torch(x_shape, w_shape, kwargs, bias):
    """Output and every gradient against torch (random cotangent), and float64 finite
    differences through the engine."""
    x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=71)
    _row_layout_node(x, w, b, _conv_attrs(w_shape[2:], kwargs))
    inputs = [randn(*x_shape, seed=71), w] + ([b] if bias else [])
    check_op(*_conv2d(**kwargs), *inputs)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", ROW_DILATION_CASES)
def test_conv2d_row_layout_with_dilation_float32_matches_torch(x_shape, w_shape, kwargs, bias):
    x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=72)
    inputs = [randn(*x_shape, seed=72), w] + ([b] if bias else [])
    out = check_op(*_conv2d(**kwargs), *inputs, dtype=np.float32, rtol=1e-4, atol=1e-4)
    assert out[0].dtype == rg.float32


@pytest.mark.usefixtures("gemm_conv")
@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", ROW_DILATION_CASES)
def test_conv2d_row_layout_with_dilation_equals_the_reference(x_shape, w_shape, kwargs, bias):
    x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=73)
    fast, reference, node = _conv2d_fast_and_reference(x, w, b, _conv_attrs(w_shape[2:], kwargs))
    assert node.width is not None
    _assert_same_gradients(fast, reference)


@pytest.mark.usefixtures("gemm_conv")
@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", ROW_DILATION_CASES)
def test_conv2d_row_layout_weight_gradient_alone_equals_the_reference(x_shape, w_shape, kwargs,
                                                                      bias):
    """Only the weight requires grad (a frozen input, as a first layer is): backward saves
    no weight and computes dL/dW from X_row alone."""
    x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=74)
    no_grad = (0, 2) if bias else (0,)
    fast, reference, node = _conv2d_fast_and_reference(x, w, b, _conv_attrs(w_shape[2:], kwargs),
                                                       no_grad=no_grad)
    assert node.width is not None
    _assert_same_gradients(fast, reference, skip=no_grad)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", ROW_DILATION_CASES)
def test_conv2d_row_layout_with_dilation_backward_alone(x_shape, w_shape, kwargs, bias):
    """Conv2d.forward/backward called directly, against central differences."""
    x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=75)
    check_backward_alone(Conv2d, [x, w, b], _conv_attrs(w_shape[2:], kwargs))


def _draw_dilated_row_layout(draw):
    """(x, w, b, the op's attributes): a stride-1 conv2d with dh != dw and padding per side,
    sized to take the row layout: C/g * kh >= 8 and Wp >= 4 * dw * (kw - 1), i.e. Wp <= 4/3
    Wo."""
    groups = draw(st.sampled_from([1, 2]))
    kh, kw = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    dh, dw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    assume(dh != dw)
    cg = draw(st.integers(-(-8 // kh), -(-8 // kh) + 1))
    o = groups * draw(st.integers(1, 2))
    (top, bottom), (left, right) = ((draw(st.integers(0, 3)), draw(st.integers(0, 3)))
                                    for _ in range(2))
    h = max(1, dh * (kh - 1) + 1 - top - bottom + draw(st.integers(0, 2)))
    w_size = max(1, 4 * dw * (kw - 1) - left - right + draw(st.integers(0, 3)))
    seed = draw(st.integers(0, 2 ** 16))
    x = randn(draw(st.integers(1, 2)), groups * cg, h, w_size, seed=seed)
    w, b = randn(o, cg, kh, kw, seed=seed + 1), randn(o, seed=seed + 2)
    attrs = dict(stride=(1, 1), padding=((top, bottom), (left, right)), dilation=(dh, dw),
                 groups=groups)
    return x, w, b, attrs


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_conv2d_row_layout_equals_the_reference_on_random_dilated_configurations(data):
    x, w, b, attrs = _draw_dilated_row_layout(data.draw)
    fast, reference, node = _conv2d_fast_and_reference(x, w, b, attrs)
    assert node.width is not None
    _assert_same_gradients(fast, reference)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", CONV1D_CASES)
def test_conv1d_backward_equals_the_reference_with_h_1(x_shape, w_shape, kwargs, bias):
    x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=64)
    attrs = _conv_attrs(w_shape[2:], kwargs)
    fast, cotangent, _ = _fast_grads(Conv1d, [x, w, b], attrs, seed=1)
    # Conv1d is Conv2d on (N, C, 1, L): a size-1 H axis, one kernel row, no padding on it
    attrs_2d = dict(stride=(1,) + attrs["stride"], padding=((0, 0),) + attrs["padding"],
                    dilation=(1,) + attrs["dilation"], groups=attrs["groups"])
    grad_x, grad_w, grad_b = conv2d_reference_backward(x[:, :, None], w[:, :, None], b,
                                                       cotangent[:, :, None], **attrs_2d)
    _assert_same_gradients(fast, [grad_x[:, :, 0], grad_w[:, :, 0], grad_b])


@pytest.mark.parametrize("x_shape, w_shape, attrs, bias", [
    ((2, 3, 6, 5), (4, 3, 3, 2), dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2),
                                      groups=1), True),
    ((2, 4, 8, 7), (6, 2, 2, 2), dict(stride=(3, 3), padding=((0, 1), (1, 0)), dilation=(1, 1),
                                      groups=2), True),
    ((2, 3, 5, 5), (3, 1, 3, 3), dict(stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(2, 1),
                                      groups=3), False),
])
def test_conv2d_reference_backward_matches_torch(x_shape, w_shape, attrs, bias):
    """The reference against PyTorch autograd, so that a wrong reference cannot agree with
    a fast path that is wrong the same way. torch pads with F.pad (asymmetric padding)."""
    x, w, b = _batched_inputs(x_shape, w_shape, bias, seed=65)
    (top, bottom), (left, right) = attrs["padding"]
    leaves = [to_torch(a).requires_grad_() for a in (x, w, b) if a is not None]
    x_pad = torch.nn.functional.pad(leaves[0], (left, right, top, bottom))
    y = torch.nn.functional.conv2d(x_pad, *leaves[1:], stride=attrs["stride"],
                                   dilation=attrs["dilation"], groups=attrs["groups"])
    cotangent = randn(*y.shape, seed=66)
    y.backward(to_torch(cotangent))
    expected = [t.grad.numpy() for t in leaves] + ([] if bias else [None])
    _assert_same_gradients(conv2d_reference_backward(x, w, b, cotangent, **attrs), expected)


# ------------------------------------------------------------------------ saved values
def _saved(y):
    return y.grad_fn.saved_tensors


def test_conv2d_first_layer_saves_no_weight_and_frozen_layer_saves_no_columns():
    x, w = rg.tensor(randn(2, 3, 5, 5)), rg.tensor(randn(4, 3, 3, 3), requires_grad=True)
    cols, weight = _saved(F.conv2d(x, w))
    assert weight is None and cols.shape == (27, 2 * 9)
    x.requires_grad_()
    w.requires_grad_(False)
    cols, weight = _saved(F.conv2d(x, w))
    assert cols is None and weight.shape == (4, 3, 3, 3)


def test_conv2d_columns_are_a_copy_so_changing_x_after_forward_keeps_the_gradient():
    x = rg.tensor(randn(1, 2, 4, 4, seed=37))
    w = rg.tensor(randn(3, 2, 3, 3, seed=38), requires_grad=True)
    tw = to_torch(w.detach().numpy()).requires_grad_()
    cotangent = randn(1, 3, 2, 2, seed=46)
    torch.nn.functional.conv2d(to_torch(x.numpy()), tw).backward(to_torch(cotangent))
    y = F.conv2d(x, w)
    x.add_(1.0)  # dL/dW is the gradient at the x that forward saw
    y.backward(rg.tensor(cotangent))
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)


def test_conv2d_1x1_saves_x_itself_so_an_in_place_change_is_caught():
    x = rg.tensor(randn(1, 2, 4, 4, seed=39))
    w = rg.tensor(randn(3, 2, 1, 1, seed=40), requires_grad=True)
    y = F.conv2d(x, w)
    assert _saved(y)[0] is x._data
    x.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_conv2d_backward_twice_with_retain_graph_accumulates_the_same_gradient():
    x = rg.tensor(randn(2, 2, 5, 5, seed=43), requires_grad=True)
    w = rg.tensor(randn(3, 2, 3, 3, seed=44), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    c = rg.tensor(randn(2, 3, 5, 5, seed=45))
    y.backward(c, retain_graph=True)
    once_x, once_w = x.grad.numpy().copy(), w.grad.numpy().copy()
    y.backward(c)
    np.testing.assert_allclose(x.grad.numpy(), 2 * once_x, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), 2 * once_w, rtol=1e-12)


def test_conv2d_refuses_a_second_derivative_and_names_the_op():
    x = rg.tensor(randn(1, 2, 4, 4), requires_grad=True)
    w = rg.tensor(randn(3, 2, 3, 3), requires_grad=True)
    (grad_w,) = rg.autograd.grad(F.conv2d(x, w).pow(2).sum(), [w], create_graph=True)
    with pytest.raises(RuntimeError, match="Conv2d"):
        grad_w.sum().backward()


# ------------------------------------------------------------------------------ errors
def _t(*shape, dtype=np.float64):
    return rg.tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(_t(2, 4, 8, 8), _t(8, 3, 3, 3)), ValueError,
     r"conv2d: expected input with 3 channels \(weight shape \(8, 3, 3, 3\), groups=1\), got "
     r"input of shape \(2, 4, 8, 8\)"),
    (lambda: F.conv2d(_t(2, 4, 8, 8), _t(8, 4, 3, 3), groups=2), ValueError,
     r"expected input with 8 channels .*groups=2"),
    (lambda: F.conv2d(_t(2, 4, 8, 8), _t(6, 1, 3, 3), groups=4), ValueError,
     r"groups=4 must divide the number of output channels \(weight shape \(6, 1, 3, 3\)\)"),
    (lambda: F.conv2d(_t(1, 3, 2, 2), _t(8, 3, 3, 3)), ValueError,
     r"kernel size \(3, 3\) \(dilated: \(3, 3\)\) is larger than the padded input \(2, 2\)"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(8, 3, 3, 3), dilation=3), ValueError,
     r"\(dilated: \(7, 7\)\) is larger than the padded input \(5, 5\)"),
    (lambda: F.conv2d(_t(3, 8, 8, 2, 1), _t(8, 3, 3, 3)), ValueError,
     r"conv2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input, got input of shape "
     r"\(3, 8, 8, 2, 1\)"),
    (lambda: F.conv2d(_t(8, 8), _t(8, 3, 3, 3)), ValueError, r"got input of shape \(8, 8\)"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3)), ValueError, r"weight must be 4-D"),
    (lambda: F.conv2d(_t(1, 3, 8, 8, dtype=np.float32), _t(8, 3, 3, 3)), TypeError,
     r"conv2d: .*input dtype retrograd.float32, weight dtype retrograd.float64"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3, 3), _t(8, dtype=np.float32)), TypeError,
     r"bias dtype retrograd.float32"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3, 3), _t(4)), ValueError,
     r"bias of shape \(4,\) does not match weight of shape \(8, 3, 3, 3\)"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3, 3), padding="full"), ValueError,
     r"conv2d: padding must be 'valid' or 'same', got 'full'"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3, 3), padding="same", stride=2), ValueError,
     r"padding='same' is not supported for strided convolutions"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3, 3), padding=-1), ValueError,
     r"padding must be >= 0"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3, 3), stride=0), ValueError,
     r"stride must be >= 1"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3, 3), stride=(1, 2, 3)), ValueError,
     r"stride must be an int or a tuple of 2 ints"),
    (lambda: F.conv2d(_t(1, 3, 8, 8), _t(8, 3, 3, 3), groups=0), ValueError,
     r"groups must be a positive int"),
    (lambda: F.conv2d(np.zeros((1, 3, 8, 8)), _t(8, 3, 3, 3)), TypeError,
     r"conv2d: input must be a Tensor, got ndarray"),
    (lambda: F.conv1d(_t(2, 4, 8), _t(8, 3, 3)), ValueError,
     r"conv1d: expected input with 3 channels \(weight shape \(8, 3, 3\), groups=1\), got "
     r"input of shape \(2, 4, 8\)"),
    (lambda: F.conv1d(_t(2, 3, 2), _t(8, 3, 3)), ValueError,
     r"conv1d: kernel size \(3,\) \(dilated: \(3,\)\) is larger than the padded input \(2,\)"),
])
def test_conv_errors_name_the_op_the_shapes_and_the_dtypes(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_conv_errors_agree_with_torch_on_what_is_invalid():
    # a kernel that fits only thanks to padding is valid in both
    x, w = randn(1, 1, 2, 2), randn(1, 1, 3, 3)
    rg_fn, torch_fn = _conv2d(padding=1)
    check_op(rg_fn, torch_fn, x, w, gradcheck=False)
    with pytest.raises(RuntimeError):
        torch.nn.functional.conv2d(to_torch(x), to_torch(w))
    with pytest.raises(ValueError):
        F.conv2d(rg.tensor(x), rg.tensor(w))


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
def test_conv2d_keeps_half_precision_dtypes(dtype):
    x, w = randn(2, 3, 6, 6, seed=41), randn(4, 3, 3, 3, seed=42)
    rx = rg.tensor(x).to(dtype).requires_grad_()
    rw = rg.tensor(w * 0.2).to(dtype).requires_grad_()
    y = F.conv2d(rx, rw, padding=1)
    y.sum().backward()
    assert y.dtype == dtype and rx.grad.dtype == dtype and rw.grad.dtype == dtype
    expected = torch.nn.functional.conv2d(to_torch(rx.detach().to(rg.float32).numpy()),
                                          to_torch(rw.detach().to(rg.float32).numpy()), padding=1)
    np.testing.assert_allclose(y.detach().to(rg.float32).numpy(), expected.numpy(), rtol=5e-2,
                               atol=5e-2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [4, 16])
def test_conv2d_of_an_empty_batch_is_empty_with_zero_weight_gradients(channels, dtype):
    """N = 0 (the row layout once tried to shift an X_row of no rows): empty y and dL/dx,
    zero dL/dW and dL/db, as in torch."""
    results = []
    for lib in (rg, torch):
        x = lib.tensor(np.zeros((0, channels, 8, 8), dtype), requires_grad=True)
        w = lib.tensor(np.ones((4, channels, 3, 3), dtype), requires_grad=True)
        b = lib.tensor(np.ones(4, dtype), requires_grad=True)
        y = lib.nn.functional.conv2d(x, w, b, padding=1)
        y.sum().backward()
        results.append([a.detach().numpy() for a in (y, x.grad, w.grad, b.grad)])
    for got, expected in zip(*results):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
