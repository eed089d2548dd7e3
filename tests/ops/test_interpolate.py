"""UpsampleNearest, UpsampleLinear, UpsampleBicubic and their adjoint ops
(retrograd/ops/interpolate.py) through F.interpolate: against PyTorch (outputs and every
gradient; size and scale_factor, which PyTorch reads differently; non-integer factors;
downsampling; align_corners both ways), against finite differences (through the engine,
alone and twice), the index and weight rules, and PyTorch's errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd.cost import cost_of
from retrograd.ops.interpolate import (UpsampleBicubic, UpsampleBicubicBackward,
                                       UpsampleLinear, UpsampleLinearBackward, UpsampleNearest,
                                       UpsampleNearestBackward, cubic_taps, linear_taps,
                                       nearest_index)
from tests.ops.cost_harness import run
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _interp(**kwargs):
    return (lambda x: F.interpolate(x, **kwargs),
            lambda x: torch.nn.functional.interpolate(x, **kwargs))


INTERPOLATE_CASES = [
    # (input shape, keyword arguments)
    ((2, 3, 5), dict(scale_factor=2)),
    ((2, 3, 5), dict(scale_factor=1.5)),                      # non-integer factor
    ((2, 3, 5), dict(size=7)),                                # same size, n/m steps
    ((2, 3, 5), dict(scale_factor=1.5, recompute_scale_factor=True)),
    ((2, 3, 7), dict(scale_factor=0.5)),                      # downsampling
    ((2, 3, 7), dict(size=3)),
    ((2, 3, 5), dict(scale_factor=2.2)),
    ((2, 3, 4, 5), dict(scale_factor=(1.5, 2.0))),
    ((2, 3, 4, 5), dict(size=(3, 9))),                        # down one axis, up the other
    ((2, 3, 4, 5), dict(scale_factor=0.6)),
    ((2, 2, 3, 4, 5), dict(scale_factor=(2.0, 0.5, 1.4))),     # 3-D
    ((2, 3, 5), dict(scale_factor=1.5, mode="nearest-exact")),
    ((2, 3, 4, 5), dict(size=(7, 3), mode="nearest-exact")),
    ((2, 3, 5), dict(scale_factor=2, mode="linear")),
    ((2, 3, 5), dict(scale_factor=1.5, mode="linear")),
    ((2, 3, 5), dict(scale_factor=1.5, mode="linear", align_corners=True)),
    ((2, 3, 5), dict(size=8, mode="linear", align_corners=True)),
    ((2, 3, 5), dict(size=8, mode="linear", align_corners=False)),
    ((2, 3, 9), dict(scale_factor=0.4, mode="linear")),       # downsampling
    ((2, 3, 9), dict(size=4, mode="linear", align_corners=True)),
    ((2, 3, 5), dict(scale_factor=1.2, mode="linear")),       # m = 6, read at 1/1.2 steps
    ((2, 3, 5), dict(size=1, mode="linear", align_corners=True)),    # one output
    ((2, 3, 1), dict(size=4, mode="linear")),                 # one input
    ((2, 3, 4, 5), dict(scale_factor=2, mode="bilinear")),
    ((2, 3, 4, 5), dict(scale_factor=(1.5, 0.7), mode="bilinear")),
    ((2, 3, 4, 5), dict(size=(7, 3), mode="bilinear", align_corners=True)),
    ((2, 3, 6, 5), dict(scale_factor=0.5, mode="bilinear", align_corners=True)),
    ((2, 3, 4, 5), dict(scale_factor=(1.5, 0.7), mode="bilinear",
                        recompute_scale_factor=True)),
    ((2, 3, 4, 5), dict(size=(4, 8), mode="bilinear")),       # one axis unchanged
    ((1, 2, 3, 4, 5), dict(scale_factor=1.7, mode="trilinear")),
    ((1, 2, 3, 4, 5), dict(size=(2, 6, 4), mode="trilinear", align_corners=True)),
    ((2, 3, 4, 5), dict(size=(7, 3), mode="bicubic")),
    ((2, 3, 4, 5), dict(scale_factor=1.7, mode="bicubic", align_corners=True)),
    ((2, 3, 6, 6), dict(scale_factor=0.5, mode="bicubic")),
    ((2, 3, 4, 5), dict(size=(4, 5), mode="bicubic")),        # same size: a copy
    ((2, 3, 7), dict(size=3, mode="area")),
    ((2, 3, 4, 6), dict(scale_factor=0.5, mode="area")),
    ((0, 3, 4, 5), dict(scale_factor=2, mode="bilinear")),    # empty batch
]


@pytest.mark.parametrize("shape, kwargs", INTERPOLATE_CASES)
def test_interpolate_matches_torch_and_finite_differences(shape, kwargs):
    rg_fn, torch_fn = _interp(**kwargs)
    check_op(rg_fn, torch_fn, randn(*shape, seed=1))


@pytest.mark.parametrize("shape, kwargs", [c for c in INTERPOLATE_CASES if c[0][0]])
def test_interpolate_float32_matches_torch_and_stays_float32(shape, kwargs):
    rg_fn, torch_fn = _interp(**kwargs)
    out = check_op(rg_fn, torch_fn, randn(*shape, seed=2), dtype=np.float32, rtol=1e-5,
                   atol=1e-5)
    assert out[0].dtype == rg.float32


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_interpolate_low_precision_keeps_its_dtype_and_matches_float32(dtype, mode):
    x = rg.tensor(randn(1, 2, 3, 4, seed=3)).to(dtype)
    y = F.interpolate(x, scale_factor=1.5, mode=mode)
    assert y.dtype == dtype
    reference = F.interpolate(x.float(), scale_factor=1.5, mode=mode)
    np.testing.assert_allclose(y.float().numpy(), reference.numpy(), rtol=1e-2, atol=1e-2)


def test_scale_factor_and_size_read_different_positions_as_in_torch():
    # 5 -> 7 either way, but scale_factor=1.5 reads at 1/1.5 steps and size=7 at 5/7 steps
    x = rg.tensor([[[0.0, 1.0, 2.0, 3.0, 4.0]]])
    by_factor = F.interpolate(x, scale_factor=1.5, mode="linear")
    by_size = F.interpolate(x, size=7, mode="linear")
    assert not np.allclose(by_factor.numpy(), by_size.numpy())
    t = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 4.0]]])
    np.testing.assert_allclose(
        by_factor.numpy(),
        torch.nn.functional.interpolate(t, scale_factor=1.5, mode="linear").numpy())


def test_nearest_backward_is_the_adjoint_of_the_forward_where_torch_s_is_not():
    # scale_factor=1.2 on 3 elements gives 3 outputs reading x[0, 0, 1]; PyTorch's backward
    # takes m = n as a copy and returns [1, 2, 3]; the gradient of this forward is [3, 3, 0]
    x = rg.tensor([[[1.0, 2.0, 3.0]]], requires_grad=True)
    y = F.interpolate(x, scale_factor=1.2)
    t = torch.tensor([[[1.0, 2.0, 3.0]]], requires_grad=True)
    expected = torch.nn.functional.interpolate(t, scale_factor=1.2)
    np.testing.assert_array_equal(y.detach().numpy(), expected.detach().numpy())
    y.backward(rg.tensor([[[1.0, 2.0, 3.0]]]))
    assert x.grad.tolist() == [[[3.0, 3.0, 0.0]]]
    rg.autograd.gradcheck(lambda a: F.interpolate(a, scale_factor=1.2) ** 2,
                          [rg.tensor(randn(1, 1, 3, seed=4), requires_grad=True)],
                          **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("kwargs", [dict(scale_factor=1.5), dict(size=(3, 7), mode="bilinear"),
                                    dict(scale_factor=1.3, mode="bicubic",
                                         align_corners=True)])
def test_interpolate_double_backward_matches_finite_differences(kwargs):
    x = rg.tensor(randn(1, 2, 3, 4, seed=5), requires_grad=True)
    g = rg.tensor(randn(*F.interpolate(x, **kwargs).shape, seed=6), requires_grad=True)
    rg.autograd.gradgradcheck(lambda t: F.interpolate(t, **kwargs) ** 2, [x], [g],
                              **GRADCHECK_TOLERANCES)


ALONE = [
    (UpsampleNearest, [randn(2, 3, 4, seed=7)], dict(size=(7,), scales=(None,))),
    (UpsampleNearest, [randn(2, 3, 4, 5, seed=8)],
     dict(size=(3, 8), scales=(0.8, 1.6), exact=True)),
    (UpsampleNearestBackward, [randn(2, 3, 3, 8, seed=9)],
     dict(in_size=(4, 5), scales=(0.8, 1.6), exact=False)),
    (UpsampleLinear, [randn(2, 3, 4, 5, seed=10)],
     dict(size=(7, 3), scales=(None, None), align_corners=False)),
    (UpsampleLinear, [randn(2, 3, 4, seed=11)], dict(size=(9,), scales=(2.3,),
                                                    align_corners=True)),
    (UpsampleLinearBackward, [randn(2, 3, 7, 3, seed=12)],
     dict(in_size=(4, 5), scales=(None, None), align_corners=False)),
    (UpsampleBicubic, [randn(2, 3, 4, 5, seed=13)],
     dict(size=(6, 4), scales=(1.5, 0.8), align_corners=False)),
    (UpsampleBicubicBackward, [randn(2, 3, 6, 4, seed=14)],
     dict(in_size=(4, 5), scales=(1.5, 0.8), align_corners=True)),
]


@pytest.mark.parametrize("op, arrays, attrs", ALONE, ids=lambda a: getattr(a, "__name__", ""))
def test_interpolate_ops_backward_alone_match_finite_differences(op, arrays, attrs):
    check_backward_alone(op, arrays, attrs)


def test_adjoint_ops_are_the_transposes_of_the_ops():
    x, g = randn(2, 3, 4, 5, seed=15), randn(2, 3, 7, 3, seed=16)
    for op, backward_op, extra in ((UpsampleNearest, UpsampleNearestBackward, {}),
                                   (UpsampleLinear, UpsampleLinearBackward,
                                    dict(align_corners=False)),
                                   (UpsampleBicubic, UpsampleBicubicBackward,
                                    dict(align_corners=True))):
        y = op.apply(rg.tensor(x), size=(7, 3), scales=(None, None), **extra).numpy()
        back = backward_op.apply(rg.tensor(g), in_size=(4, 5), scales=(None, None),
                                 **extra).numpy()
        assert np.isclose(np.sum(y * g), np.sum(x * back), rtol=1e-12)


@pytest.mark.parametrize("n, m, scale", [(5, 7, None), (5, 7, 1.5), (3, 3, 1.2), (3, 6, 2.2),
                                         (10, 4, 0.4), (7, 13, None), (1, 5, None)])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_index_is_torch_s(n, m, scale, mode):
    x = torch.arange(float(n)).reshape(1, 1, n)
    if scale is None:
        expected = torch.nn.functional.interpolate(x, size=m, mode=mode)
    else:
        expected = torch.nn.functional.interpolate(x, scale_factor=scale, mode=mode)
        assert expected.shape[-1] == m
    got = nearest_index(n, m, scale, exact=mode == "nearest-exact")
    assert got.tolist() == expected.flatten().long().tolist()


@pytest.mark.parametrize("taps, mode", [(linear_taps, "linear"), (cubic_taps, "bicubic")])
@pytest.mark.parametrize("align_corners", [False, True])
def test_taps_reproduce_torch_on_one_hot_inputs(taps, mode, align_corners):
    # interpolating the unit vectors e_k gives column k of the (m, n) interpolation matrix
    n, m = 5, 8
    index, weight = taps(n, m, None, align_corners, np.float64)
    matrix = np.zeros((m, n))
    for t in range(index.shape[0]):
        np.add.at(matrix, (np.arange(m), index[t]), weight[t])
    eye = torch.eye(n, dtype=torch.float64)
    if mode == "linear":
        columns = torch.nn.functional.interpolate(eye[:, None, :], size=m, mode=mode,
                                                  align_corners=align_corners)[:, 0]
    else:
        columns = torch.nn.functional.interpolate(eye[:, None, None, :], size=(1, m),
                                                  mode=mode, align_corners=align_corners)
        columns = columns[:, 0, 0]
    np.testing.assert_allclose(matrix, columns.numpy().T, rtol=1e-12, atol=1e-15)


def test_interpolate_passes_non_finite_values_as_torch():
    # the m = n copy is computed as 1 * x + 0 * x, as PyTorch: inf becomes NaN there too
    values = np.array([[[1.0, np.inf, 3.0, np.nan]]])
    for kwargs in (dict(size=4, mode="linear"), dict(size=7, mode="linear"),
                   dict(size=6), dict(size=3, mode="linear", align_corners=True)):
        got = F.interpolate(rg.tensor(values), **kwargs).numpy()
        expected = torch.nn.functional.interpolate(torch.tensor(values), **kwargs).numpy()
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: F.interpolate(x), ValueError, "either size or scale_factor"),
    (lambda x: F.interpolate(x, size=4, scale_factor=2), ValueError, "only one of"),
    (lambda x: F.interpolate(x, size=(4, 4)), ValueError,
     r"spatial dimensions of \[5\] and output size of \(4, 4\)"),
    (lambda x: F.interpolate(x, scale_factor=(2, 2)), ValueError, "scale_factor of"),
    (lambda x: F.interpolate(x, size=4.0), TypeError, "int or a tuple of ints"),
    (lambda x: F.interpolate(x, size=6, recompute_scale_factor=True), ValueError,
     "not meaningful with an explicit size"),
    (lambda x: F.interpolate(x, size=6, align_corners=True), ValueError,
     "align_corners option can only be set"),
    (lambda x: F.interpolate(x, size=0), RuntimeError, "greater than 0"),
    (lambda x: F.interpolate(x, scale_factor=0.1), RuntimeError, r"output size \(0,\)"),
    (lambda x: F.interpolate(x, scale_factor=-1), RuntimeError, "greater than 0"),
    (lambda x: F.interpolate(x, size=6, mode="bilinear"), NotImplementedError,
     "got 3D input .* bilinear mode needs 4D input"),
    (lambda x: F.interpolate(x[0], size=6, mode="linear"), NotImplementedError,
     "only 3D, 4D and 5D input"),
    (lambda x: F.interpolate(x, size=6, mode="lanczos"), NotImplementedError, "'lanczos'"),
    (lambda x: F.interpolate(x, size=6, mode="linear", antialias=True), NotImplementedError,
     "antialias"),
    (lambda x: F.interpolate(x.long(), size=6), TypeError, "floating-point"),
    (lambda x: F.interpolate(x[:, :0], size=6), RuntimeError, "non-empty"),
])
def test_interpolate_errors_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(rg.ones(2, 3, 5))


def test_interpolate_errors_agree_with_torch_on_what_is_invalid():
    x = torch.ones(2, 3, 5)
    for kwargs in (dict(), dict(size=4, scale_factor=2), dict(size=(4, 4)),
                   dict(size=6, align_corners=True), dict(size=0),
                   dict(size=6, mode="bilinear"), dict(scale_factor=0.1)):
        with pytest.raises((ValueError, RuntimeError)):
            torch.nn.functional.interpolate(x, **kwargs)
        with pytest.raises((ValueError, RuntimeError)):
            F.interpolate(rg.ones(2, 3, 5), **kwargs)


def _normal(*shape):
    return np.random.default_rng(0).standard_normal(shape)


def test_interpolate_costs():
    # bilinear (4, 5) -> (7, 3) on N*C = 6 planes: the W pass writes 6*4*3 elements, the H
    # pass 6*7*3, 3 FLOPs each; backward 2 products per element and the scatter's adds
    call, *_ = run(UpsampleLinear, [randn(2, 3, 4, 5, seed=17)], (True,),
                   dict(size=(7, 3), scales=(None, None), align_corners=False), _normal)
    w_pass, h_pass = 6 * 4 * 3, 6 * 7 * 3
    cost = cost_of(call)
    assert cost.flops == 3 * (w_pass + h_pass)
    assert cost.backward_flops == (2 * w_pass + max(2 * w_pass - 6 * 4 * 5, 0)
                                   + 2 * h_pass + (2 * h_pass - w_pass))
    call, *_ = run(UpsampleNearest, [randn(2, 3, 4, seed=18)], (True,),
                   dict(size=(8,), scales=(None,)), _normal)
    assert (cost_of(call).flops, cost_of(call).backward_flops) == (0, 2 * 3 * 4)
