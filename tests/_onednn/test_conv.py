"""Convolutions by oneDNN (retrograd/_onednn/conv.py) against retrograd's own path (the row
layout, im2col + GEMM and the compiled direct kernels, retrograd/ops/conv.py) and PyTorch:
outputs and every gradient over strides, paddings (uneven ones included), dilations, groups
(depthwise too), 1x1 kernels, one sample, bias or none, frozen inputs, Conv1d, views that are
not contiguous; which convolutions take oneDNN; NaN and inf; the cache of plans."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast

conv = pytest.importorskip("retrograd._onednn.conv")
if _fast.onednn("conv") is None:
    pytest.skip("oneDNN is not installed (the 'fast' extra brings it on x86-64 Linux) or "
                "RETROGRAD_KERNELS=numpy turned it off", allow_module_level=True)

CASES = [  # x shape, weight shape, conv2d keywords
    ((2, 3, 16, 16), (8, 3, 3, 3), dict(padding=1)),
    ((4, 16, 12, 12), (16, 16, 3, 3), dict(padding=1)),
    ((2, 8, 15, 13), (12, 8, 3, 3), dict(stride=2, padding=1)),
    ((2, 6, 11, 11), (4, 6, 5, 5), dict(stride=(2, 1), padding=(2, 0))),
    ((2, 8, 14, 14), (8, 8, 3, 3), dict(dilation=2, padding=2)),
    ((2, 8, 9, 9), (16, 2, 3, 3), dict(groups=4, padding=1)),
    ((2, 8, 10, 10), (8, 1, 3, 3), dict(groups=8, padding=1)),        # depthwise
    ((2, 8, 10, 10), (16, 1, 3, 3), dict(groups=8, stride=2)),        # depthwise, 2 per channel
    ((1, 16, 7, 7), (32, 16, 1, 1), {}),
    ((2, 16, 8, 8), (8, 16, 1, 1), dict(stride=2)),
    ((2, 4, 9, 10), (6, 4, 4, 2), dict(padding="same")),               # uneven padding
    ((1, 1, 28, 28), (6, 1, 5, 5), dict(padding=2)),
    ((3, 5, 6, 6), (7, 5, 6, 6), {}),                                  # kernel = plane
]


@pytest.fixture
def spy(monkeypatch):
    """Counts of the Plan's forward and of its backward steps (data: dL/dx, weights: dL/dW)
    taken from now on."""
    calls = dict.fromkeys(("forward", "_data", "_weights"), 0)
    for name in calls:
        original = getattr(conv.Plan, name)

        def counted(self, *args, _name=name, _original=original):
            calls[_name] += 1
            return _original(self, *args)
        monkeypatch.setattr(conv.Plan, name, counted)
    return calls


def _grads(lib, x, w, b, y_grad, options, needs=(True, True, True)):
    tx, tw = (lib.tensor(a, requires_grad=need) for a, need in zip((x, w), needs))
    tb = lib.tensor(b, requires_grad=needs[2]) if b is not None else None
    y = lib.nn.functional.conv2d(tx, tw, tb, **options)
    y.backward(lib.tensor(y_grad))
    grads = [t.grad for t in (tx, tw, tb) if t is not None and t.requires_grad]
    return [a.detach().numpy() for a in [y, *grads]]


def _inputs(x_shape, w_shape, bias, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


def _output_grad(x, w, options, seed=1):
    shape = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), **options).shape
    return np.random.default_rng(seed).standard_normal(tuple(shape)).astype(x.dtype)


def _assert_close(got, expected):
    for a, e in zip(got, expected):
        assert a.dtype == np.float32 and a.shape == e.shape
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-5 * scale)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, options", CASES)
def test_onednn_conv_equals_retrograds_own_path_and_pytorch(x_shape, w_shape, options, bias,
                                                            spy, monkeypatch):
    x, w, b = _inputs(x_shape, w_shape, bias)
    y_grad = _output_grad(x, w, options)
    got = _grads(rg, x, w, b, y_grad, options)
    assert spy == {"forward": 1, "_data": 1, "_weights": 1}
    monkeypatch.setitem(_fast._ONEDNN, "conv", None)
    own = _grads(rg, x, w, b, y_grad, options)
    monkeypatch.undo()
    _assert_close(got, own)
    _assert_close(got, _grads(torch, x, w, b, y_grad, options))


@pytest.mark.parametrize("needs", [(False, True, True), (True, False, False),
                                   (False, False, True), (True, True, False)])
def test_frozen_inputs_weights_and_biases(needs, spy):
    x, w, b = _inputs((2, 8, 10, 10), (8, 8, 3, 3), True)
    options = dict(padding=1)
    y_grad = _output_grad(x, w, options)
    got = _grads(rg, x, w, b, y_grad, options, needs)
    assert (spy["_data"], spy["_weights"]) == (int(needs[0]), int(needs[1]))
    _assert_close(got, _grads(torch, x, w, b, y_grad, options, needs))


def test_the_backward_reorders_the_output_gradient_once_for_both_steps(monkeypatch):
    shared = []
    original = conv._Slot.bring_in

    def recorded(slot, array, ready=None):
        memory = original(slot, array, ready)
        if ready is not None:
            shared.append(slot.buffer is ready[1])
        return memory
    monkeypatch.setattr(conv._Slot, "bring_in", recorded)
    x, w, b = _inputs((4, 32, 12, 12), (32, 32, 3, 3), True)
    y_grad = _output_grad(x, w, dict(padding=1))
    got = _grads(rg, x, w, b, y_grad, dict(padding=1))
    assert shared == [True]            # dL/dy in the blocked layout, from the dL/dx step
    _assert_close(got, _grads(torch, x, w, b, y_grad, dict(padding=1)))


def test_conv1d_and_views_that_are_not_contiguous(spy):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 16, 40)).astype(np.float32)
    w = rng.standard_normal((8, 16, 5)).astype(np.float32)
    y_grad = rng.standard_normal((3, 8, 18)).astype(np.float32)
    results = []
    for lib in (rg, torch):
        tx, tw = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        # a strided view of x (every other position), and a transposed, non-contiguous weight
        ty = lib.nn.functional.conv1d(tx[:, :, ::2], tw.transpose(0, 1).transpose(0, 1) * 1.0,
                                      stride=1, padding=1, dilation=1)
        ty.backward(lib.tensor(y_grad))
        results.append([a.detach().numpy() for a in (ty, tx.grad, tw.grad)])
    assert spy["forward"] == 1
    _assert_close(*results)
    x4 = rng.standard_normal((2, 10, 10, 8)).astype(np.float32)
    w4 = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    channels_last = rg.tensor(x4).permute(0, 3, 1, 2)
    expected = torch.nn.functional.conv2d(torch.tensor(x4).permute(0, 3, 1, 2),
                                          torch.tensor(w4), padding=1)
    np.testing.assert_allclose(F.conv2d(channels_last, rg.tensor(w4), padding=1).numpy(),
                               expected.numpy(), rtol=2e-5, atol=2e-5)


def test_float64_float16_and_empty_batches_keep_retrograds_own_path(spy):
    for dtype in (np.float64, np.float16):
        x, w, b = _inputs((2, 4, 8, 8), (4, 4, 3, 3), True, dtype=dtype)
        F.conv2d(rg.tensor(x), rg.tensor(w), rg.tensor(b), padding=1)
    x, w, b = _inputs((0, 4, 8, 8), (4, 4, 3, 3), True)
    assert F.conv2d(rg.tensor(x), rg.tensor(w), rg.tensor(b), padding=1).shape == (0, 4, 8, 8)
    assert spy["forward"] == 0


def test_nan_and_inf_reach_the_outputs_they_touch_as_in_pytorch():
    x, w, b = _inputs((1, 4, 8, 8), (4, 4, 3, 3), True)
    x[0, 1, 2, 3], x[0, 2, 6, 6] = np.nan, np.inf
    options = dict(padding=1)
    y_grad = _output_grad(x, w, options)
    got, expected = _grads(rg, x, w, b, y_grad, options), _grads(torch, x, w, b, y_grad, options)
    for a, e in zip(got, expected):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
        np.testing.assert_array_equal(np.isinf(a), np.isinf(e))
        finite = np.isfinite(e)
        np.testing.assert_allclose(a[finite], e[finite], rtol=2e-5, atol=2e-4)


def test_a_plan_is_made_once_per_geometry_and_the_cache_keeps_the_latest(monkeypatch):
    monkeypatch.setattr(conv, "_PLANS", type(conv._PLANS)())
    monkeypatch.setattr(conv, "PLANS_KEPT", 3)
    key = dict(out_size=(8, 8), has_bias=True, stride=(1, 1), padding=((1, 1), (1, 1)),
               dilation=(1, 1), groups=1)
    first = conv.plan_for((2, 4, 8, 8), (4, 4, 3, 3), **key)
    assert conv.plan_for((2, 4, 8, 8), (4, 4, 3, 3), **key) is first
    for batch in (3, 4, 5):
        conv.plan_for((batch, 4, 8, 8), (4, 4, 3, 3), **key)
    assert len(conv._PLANS) == 3
    assert conv.plan_for((2, 4, 8, 8), (4, 4, 3, 3), **key) is not first


def test_a_geometry_onednn_does_not_implement_takes_retrograds_own_path(monkeypatch, spy):
    def unimplemented(*args):
        raise conv.OneDNNError("oneDNN: dnnl_convolution_forward_primitive_desc_create "
                               "returned status 3 (unimplemented)")
    monkeypatch.setattr(conv, "_PLANS", type(conv._PLANS)())
    monkeypatch.setattr(conv, "Plan", unimplemented)
    x, w, b = _inputs((2, 4, 8, 8), (4, 4, 3, 3), True)
    y = F.conv2d(rg.tensor(x), rg.tensor(w), rg.tensor(b), padding=1)
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b),
                                          padding=1)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=2e-5, atol=2e-5)
    assert len(conv._PLANS) == 1 and None in conv._PLANS.values()


def test_without_the_library_convolutions_take_retrograds_own_path(monkeypatch, spy):
    monkeypatch.setitem(_fast._ONEDNN, "conv", None)
    x, w, b = _inputs((2, 4, 8, 8), (4, 4, 3, 3), True)
    y_grad = _output_grad(x, w, dict(padding=1))
    got = _grads(rg, x, w, b, y_grad, dict(padding=1))
    assert spy["forward"] == 0
    _assert_close(got, _grads(torch, x, w, b, y_grad, dict(padding=1)))


def test_onednns_temporary_memory_comes_from_numpy(monkeypatch):
    """With the scratchpad in user mode the primitives ask for it (a descriptor of nonzero
    size, which oneDNN reports only then) and get a NumPy buffer each call."""
    sizes = []
    original = conv.empty
    monkeypatch.setattr(conv, "empty", lambda library, desc: sizes.append(
        library.size(desc)) or original(library, desc))
    x, w, b = _inputs((32, 64, 32, 32), (64, 64, 3, 3), True)    # its dL/dW uses one
    _grads(rg, x, w, b, _output_grad(x, w, dict(padding=1)), dict(padding=1))
    plan = conv.plan_for(x.shape, w.shape, (32, 32), True, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    desc, _ = plan._weights_step.scratchpad
    scratch = plan.library.size(desc)
    assert scratch > 0 and scratch in sizes


TRANSPOSED = [  # x shape, weight shape (Ci, Co/g, kh, kw), conv_transpose2d keywords
    ((2, 16, 8, 8), (16, 8, 4, 4), dict(stride=2, padding=1)),             # DCGAN's
    ((2, 8, 5, 7), (8, 6, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 8, 6, 6), (8, 3, 3, 3), dict(stride=(2, 3), padding=(1, 0), dilation=2, groups=2)),
    ((1, 4, 5, 5), (4, 4, 3, 3), dict(stride=1, padding=1)),
]


@pytest.mark.parametrize("x_shape, w_shape, options", TRANSPOSED)
def test_transposed_convolutions_forward_by_onednns_backward_data(x_shape, w_shape, options,
                                                                   spy, monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    b = rng.standard_normal(w_shape[1] * options.get("groups", 1)).astype(np.float32)
    shape = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w),
                                                 **options).shape
    y_grad = rng.standard_normal(tuple(shape)).astype(np.float32)

    def grads(lib):
        tx, tw, tb = (lib.tensor(a, requires_grad=True) for a in (x, w, b))
        y = lib.nn.functional.conv_transpose2d(tx, tw, tb, **options)
        y.backward(lib.tensor(y_grad))
        return [a.detach().numpy() for a in (y, tx.grad, tw.grad, tb.grad)]
    got = grads(rg)
    assert spy["_data"] >= 1 and spy["_weights"] == 1     # y, and dL/dW from C forward
    monkeypatch.setitem(_fast._ONEDNN, "conv", None)
    own = grads(rg)
    monkeypatch.undo()
    _assert_close(got, own)
    _assert_close(got, grads(torch))
