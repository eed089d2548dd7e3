"""More elementwise math (retrograd/ops/elementwise_math.py) against PyTorch, against finite
differences (through the engine and alone), twice differentiated, in float32, at their edges
(zeros, NaN, inf, negative operands of remainder and fmod), with the NumPy fallbacks of erf
and erfinv, and their in-place forms."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops import elementwise_math as em
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


def _inside(*shape, seed=0, bound=0.9):
    """Values in (-bound, bound): the domain of asin, acos and erfinv."""
    return np.tanh(randn(*shape, seed=seed)) * bound


def _off_integers(*shape, seed=0):
    """Values at least 0.1 away from every integer (the steps of floor, ceil, round...)."""
    x = 3 * randn(*shape, seed=seed)
    frac = x - np.floor(x)
    return np.where(frac < 0.1, x + 0.2, np.where(frac > 0.9, x - 0.2, x))


# (id, retrograd fn, torch fn, input, Function, attrs for the Function)
UNARY = [
    ("log10", rg.log10, torch.log10, randn(3, 4, low=0.3), em.Log10, {}),
    ("log2", rg.log2, torch.log2, randn(3, 4, low=0.3), em.Log2, {}),
    ("log1p", rg.log1p, torch.log1p, randn(3, 4, low=-0.5), em.Log1p, {}),
    ("expm1", rg.expm1, torch.expm1, randn(3, 4), em.Expm1, {}),
    ("exp2", rg.exp2, torch.exp2, randn(3, 4), em.Exp2, {}),
    ("erf", rg.erf, torch.erf, 2 * randn(3, 4), em.Erf, {}),
    ("erfinv", rg.erfinv, torch.erfinv, _inside(3, 4), em.Erfinv, {}),
    ("tan", rg.tan, torch.tan, _inside(3, 4, bound=1.3), em.Tan, {}),
    ("asin", rg.asin, torch.asin, _inside(3, 4), em.Asin, {}),
    ("acos", rg.acos, torch.acos, _inside(3, 4), em.Acos, {}),
    ("atan", rg.atan, torch.atan, 2 * randn(3, 4), em.Atan, {}),
    ("sinh", rg.sinh, torch.sinh, randn(3, 4), em.Sinh, {}),
    ("cosh", rg.cosh, torch.cosh, randn(3, 4), em.Cosh, {}),
    ("floor", rg.floor, torch.floor, _off_integers(3, 4), em.Floor, {}),
    ("ceil", rg.ceil, torch.ceil, _off_integers(3, 4), em.Ceil, {}),
    ("trunc", rg.trunc, torch.trunc, _off_integers(3, 4), em.Trunc, {}),
    ("round", rg.round, torch.round, _off_integers(3, 4), em.Round, {}),
    ("round_decimals", lambda x: rg.round(x, decimals=2), lambda x: torch.round(x, decimals=2),
     randn(3, 4), em.Round, {"decimals": 2}),
    ("sign", rg.sign, torch.sign, randn(3, 4), em.Sign, {}),
    ("frac", rg.frac, torch.frac, _off_integers(3, 4), em.Frac, {}),
    ("nan_to_num", rg.nan_to_num, torch.nan_to_num, randn(3, 4), em.NanToNum, {}),
]
UNARY_IDS = [u[0] for u in UNARY]
STEPS = ("floor", "ceil", "trunc", "round", "round_decimals", "sign")


@pytest.mark.parametrize("name, rg_fn, torch_fn, x, op, attrs", UNARY, ids=UNARY_IDS)
def test_unary_matches_torch(name, rg_fn, torch_fn, x, op, attrs):
    check_op(rg_fn, torch_fn, x)


@pytest.mark.parametrize("name, rg_fn, torch_fn, x, op, attrs", UNARY, ids=UNARY_IDS)
def test_unary_backward_alone(name, rg_fn, torch_fn, x, op, attrs):
    check_backward_alone(op, [x], attrs)


@pytest.mark.parametrize("name, rg_fn, torch_fn, x, op, attrs", UNARY, ids=UNARY_IDS)
def test_unary_float32_matches_torch(name, rg_fn, torch_fn, x, op, attrs):
    (out,) = check_op(rg_fn, torch_fn, x, dtype=np.float32)
    assert out.dtype == rg.float32


@pytest.mark.parametrize("name, rg_fn, torch_fn, x, op, attrs", UNARY, ids=UNARY_IDS)
def test_unary_second_order(name, rg_fn, torch_fn, x, op, attrs):
    assert gradgradcheck(rg_fn, _leaves(x[:2, :3]), **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (1, 1, 5)])
@pytest.mark.parametrize("name", ["log1p", "erf", "erfinv", "floor", "nan_to_num"])
def test_unary_edge_shapes(name, shape):
    _, rg_fn, torch_fn, _, _, _ = UNARY[UNARY_IDS.index(name)]
    x = _inside(*shape) if shape else np.array(0.3)
    check_op(rg_fn, torch_fn, x)


def test_special_values_match_torch():
    """NaN, +-inf, +-0 and the ends of each domain: values and gradients as torch's."""
    x = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-300, 2.5, -2.5])
    for name in ("log10", "log2", "log1p", "expm1", "exp2", "erf", "erfinv", "asin", "acos",
                 "atan", "sinh", "cosh", "tan", "floor", "ceil", "trunc", "round", "sign",
                 "frac", "nan_to_num"):
        check_op(getattr(rg, name), getattr(torch, name), x, gradcheck=False)


def test_sign_of_nan_is_zero_and_integers_keep_their_dtype():
    y = rg.tensor([np.nan, -3.0, 0.0, 2.0]).sign()
    assert y.tolist() == [0.0, -1.0, 0.0, 1.0]
    assert rg.tensor([-3, 0, 5]).sign().tolist() == [-1, 0, 1]
    assert rg.tensor([-3, 0, 5]).sign().dtype == rg.int64
    assert rg.tensor([True, False]).sign().dtype == rg.bool
    for name in ("floor", "ceil", "trunc", "round"):
        y = getattr(rg.tensor([-3, 5]), name)()
        assert y.dtype == rg.int64 and y.tolist() == [-3, 5]


def test_round_to_negative_decimals_and_half_to_even():
    x = np.array([1234.5678, 25.0, 15.0, -35.0, 0.125, 2.5, 3.5], dtype=np.float32)
    for d in (-2, -1, 0, 1, 2):
        np.testing.assert_array_equal(rg.round(rg.tensor(x), decimals=d).numpy(),
                                      torch.round(torch.tensor(x), decimals=d).numpy())


def test_integer_inputs_are_promoted_to_float32():
    for name in ("log10", "log1p", "expm1", "erf", "tan", "atan", "sinh"):
        y = getattr(rg, name)(rg.tensor([1, 2, 3]))
        want = getattr(torch, name)(torch.tensor([1, 2, 3]))
        assert y.dtype == rg.float32
        np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-6)


def test_nan_to_num_replacements_and_gradient():
    x = np.array([np.nan, np.inf, -np.inf, 1.5])
    check_op(lambda t: rg.nan_to_num(t, nan=1.0, posinf=2.0, neginf=-3.0),
             lambda t: torch.nan_to_num(t, nan=1.0, posinf=2.0, neginf=-3.0), x, gradcheck=False)
    for dtype in (np.float16, np.float32):
        np.testing.assert_array_equal(rg.tensor(x.astype(dtype)).nan_to_num().numpy(),
                                      torch.nan_to_num(torch.tensor(x.astype(dtype))).numpy())
    assert rg.tensor([1, 2]).nan_to_num().tolist() == [1, 2]


def test_frac_refuses_integers():
    with pytest.raises(TypeError, match="frac: expected a floating-point tensor"):
        rg.tensor([1, 2]).frac()


# ---------------------------------------------------------------- the NumPy fallbacks
def test_erf_numpy_matches_scipy():
    from scipy.special import erf, erfinv

    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, 1e-12, -1e-300, np.inf, -np.inf]])
    np.testing.assert_allclose(em.erf_numpy(x), erf(x), rtol=1e-14, atol=1e-300)
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(em.erf_numpy(x32),      # in float64, rounded once
                                  erf(x32.astype(np.float64)).astype(np.float32))
    assert np.isnan(em.erf_numpy(np.array([np.nan])))[0]
    p = np.concatenate([np.linspace(-0.999999, 0.999999, 2001),
                        [0.0, 1e-12, -1e-300, 1 - 1e-15, -1 + 2 ** -52]])
    np.testing.assert_allclose(em.erfinv_numpy(p), erfinv(p), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(em.erfinv_numpy(p.astype(np.float32)),
                               erfinv(p.astype(np.float32)), rtol=1e-6)
    edges = em.erfinv_numpy(np.array([1.0, -1.0, 1.5, -2.0, np.nan]))
    assert edges[0] == np.inf and edges[1] == -np.inf and np.isnan(edges[2:]).all()


def test_erf_ops_use_the_fallback_without_scipy(monkeypatch):
    monkeypatch.setattr(em, "_scipy_erf", None)
    monkeypatch.setattr(em, "_scipy_erfinv", None)
    check_op(rg.erf, torch.erf, 2 * randn(3, 4))
    check_op(rg.erfinv, torch.erfinv, _inside(3, 4), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- binary ops
def _away_from_zero(*shape, seed=0):
    x = randn(*shape, seed=seed)
    return np.where(np.abs(x) < 0.3, np.sign(x) * 0.3 + x, x) + 0.0


def _quotients_off_integers(a, b):
    """Nudge a so that a / b stays 0.1 away from an integer (the steps of remainder's and
    fmod's gradients with respect to b)."""
    q = a / b
    frac = q - np.floor(q)
    q = np.where(frac < 0.1, q + 0.2, np.where(frac > 0.9, q - 0.2, q))
    return q * b


A, B = 2 * randn(3, 4, seed=1), _away_from_zero(3, 4, seed=2)
# (id, retrograd fn, torch fn, a, b, Function)
BINARY = [
    ("atan2", rg.atan2, torch.atan2, A, B, em.Atan2),
    ("hypot", rg.hypot, torch.hypot, A, B, em.Hypot),
    ("logaddexp", rg.logaddexp, torch.logaddexp, A, B, em.LogAddExp),
    ("xlogy", rg.xlogy, torch.xlogy, A, np.abs(B), em.Xlogy),
    ("remainder", rg.remainder, torch.remainder, _quotients_off_integers(3 * A, B), B,
     em.Remainder),
    ("fmod", rg.fmod, torch.fmod, _quotients_off_integers(3 * A, B), B, em.Fmod),
    ("lerp_tensor_weight", rg.lerp, torch.lerp, A, B, None),
]
BINARY_IDS = [b[0] for b in BINARY]


@pytest.mark.parametrize("name, rg_fn, torch_fn, a, b, op", BINARY, ids=BINARY_IDS)
def test_binary_matches_torch(name, rg_fn, torch_fn, a, b, op):
    if name.startswith("lerp"):
        w = randn(3, 4, seed=5)
        check_op(rg_fn, torch_fn, a, b, w)
        check_op(rg_fn, torch_fn, a, b, w[:1] * 0 + 0.7)   # broadcast weight
        return
    check_op(rg_fn, torch_fn, a, b)
    check_op(rg_fn, torch_fn, a, b[:1])                     # b broadcast along dim 0
    check_op(rg_fn, torch_fn, a[:, :1], b)                  # a broadcast along dim 1


@pytest.mark.parametrize("name, rg_fn, torch_fn, a, b, op",
                         [b for b in BINARY if b[5] is not None],
                         ids=[b[0] for b in BINARY if b[5] is not None])
def test_binary_backward_alone_and_second_order(name, rg_fn, torch_fn, a, b, op):
    check_backward_alone(op, [a, b])
    assert gradgradcheck(rg_fn, _leaves(a[:2, :2], b[:2, :2]), **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("name, rg_fn, torch_fn, a, b, op", BINARY, ids=BINARY_IDS)
def test_binary_float32_matches_torch(name, rg_fn, torch_fn, a, b, op):
    args = (a, b, randn(3, 4, seed=5)) if name.startswith("lerp") else (a, b)
    (out,) = check_op(rg_fn, torch_fn, *args, dtype=np.float32)
    assert out.dtype == rg.float32


def test_remainder_and_fmod_differ_on_negative_numbers():
    a = np.array([5.0, -5.0, 5.0, -5.0, 5.5, -5.5, 0.0])
    b = np.array([3.0, 3.0, -3.0, -3.0, 2.0, 2.0, 3.0])
    # (0, 3): a step of both, where finite differences are meaningless
    r = check_op(rg.remainder, torch.remainder, a, b, gradcheck=False)[0].detach().numpy()
    f = check_op(rg.fmod, torch.fmod, a, b, gradcheck=False)[0].detach().numpy()
    np.testing.assert_array_equal(r, [2.0, 1.0, -1.0, -2.0, 1.5, 0.5, 0.0])
    np.testing.assert_array_equal(f, [2.0, -2.0, 2.0, -2.0, 1.5, -1.5, 0.0])
    ints_a, ints_b = np.array([7, -7, 7, -7]), np.array([3, 3, -3, -3])
    for name in ("remainder", "fmod", "floor_divide"):
        got = getattr(rg, name)(rg.tensor(ints_a), rg.tensor(ints_b))
        want = getattr(torch, name)(torch.tensor(ints_a), torch.tensor(ints_b))
        assert got.dtype == rg.int64 and got.tolist() == want.tolist(), name
    assert (rg.tensor(ints_a) % 3).tolist() == (torch.tensor(ints_a) % 3).tolist()
    assert (rg.tensor(ints_a) // -3).tolist() == (torch.tensor(ints_a) // -3).tolist()
    assert (17 % rg.tensor([5, -5])).tolist() == (17 % torch.tensor([5, -5])).tolist()
    assert (7.5 // rg.tensor([2.0, -2.0])).tolist() == (7.5 // torch.tensor([2.0, -2.0])).tolist()


def test_remainder_by_a_number_matches_torch():
    check_op(lambda a: a % 1.5, lambda a: a % 1.5, _quotients_off_integers(3 * A, 1.5))
    check_op(lambda a: rg.fmod(a, -1.5), lambda a: torch.fmod(a, -1.5),
             _quotients_off_integers(3 * A, -1.5))


def test_floor_divide_matches_torch_and_has_no_gradient():
    a, b = 3 * randn(3, 4, seed=3), _away_from_zero(3, 4, seed=4)
    got = rg.floor_divide(rg.tensor(a), rg.tensor(b)).numpy()
    np.testing.assert_array_equal(got, torch.floor_divide(torch.tensor(a), torch.tensor(b)))
    x = rg.tensor(a, requires_grad=True)
    with pytest.raises(NotImplementedError, match="FloorDivide has no backward rule"):
        rg.floor_divide(x, 2.0).sum().backward()


def test_binary_edges_match_torch():
    """(0, 0) for atan2 and hypot, -inf and +inf pairs for logaddexp, zeros for xlogy."""
    check_op(rg.atan2, torch.atan2, np.array([0.0, 0.0, -0.0, 1.0, np.inf]),
             np.array([0.0, -0.0, -1.0, 0.0, np.inf]), gradcheck=False)
    check_op(rg.hypot, torch.hypot, np.array([0.0, 3.0, np.inf]), np.array([0.0, 4.0, 1.0]),
             gradcheck=False)
    inf = np.inf
    check_op(rg.logaddexp, torch.logaddexp, np.array([-inf, inf, 1.0, inf, 800.0, -inf]),
             np.array([-inf, 1.0, -inf, inf, -800.0, 2.0]), gradcheck=False)
    check_op(rg.xlogy, torch.xlogy, np.array([0.0, 0.0, 0.0, 2.0, 0.0, 1.0]),
             np.array([0.0, -1.0, np.nan, 0.0, 3.0, np.inf]), gradcheck=False)


def test_integer_operands_of_float_ops_are_promoted():
    for name in ("atan2", "xlogy"):     # (torch has no integer hypot or logaddexp)
        got = getattr(rg, name)(rg.tensor([1, 2]), rg.tensor([3, 4]))
        want = getattr(torch, name)(torch.tensor([1, 2]), torch.tensor([3, 4]))
        assert got.dtype == rg.float32, name
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    got = rg.atan2(rg.tensor([1.0, -1.0], dtype=rg.float64), 2)
    np.testing.assert_allclose(got.numpy(), torch.atan2(torch.tensor([1.0, -1.0],
                                                                     dtype=torch.float64),
                                                        torch.tensor(2)).numpy())


def test_lerp_weight_forms_and_exactness_at_one():
    a, b = randn(3, 4, seed=1), randn(3, 4, seed=2)
    for w in (0.0, 0.3, 0.5, 1.0, 1.7, -0.4):
        check_op(lambda s, e: rg.lerp(s, e, w), lambda s, e: torch.lerp(s, e, w), a, b)
    x = rg.tensor([1e8, -3.0], dtype=rg.float32)
    end = rg.tensor([3.0, 1e-8], dtype=rg.float32)
    assert rg.lerp(x, end, 1.0).tolist() == end.tolist()
    with pytest.raises(RuntimeError, match="lerp: expected both tensors to have the same dtype"):
        rg.lerp(x, end.double(), 0.5)


def test_addcmul_and_addcdiv_match_torch():
    x, t1, t2 = randn(3, 4, seed=1), randn(3, 1, seed=2), _away_from_zero(4, seed=3)
    check_op(lambda a, b, c: rg.addcmul(a, b, c, value=0.5),
             lambda a, b, c: torch.addcmul(a, b, c, value=0.5), x, t1, t2)
    check_op(lambda a, b, c: rg.addcdiv(a, b, c, value=-2.0),
             lambda a, b, c: torch.addcdiv(a, b, c, value=-2.0), x, t1, t2)
    check_op(rg.addcmul, torch.addcmul, x, t1, t2)
    with pytest.raises(TypeError, match="addcdiv: integer division"):
        rg.addcdiv(rg.tensor([1.0]), rg.tensor([1]), rg.tensor([2]))


def test_aliases_and_clamp_functions():
    x = randn(3, 4)
    check_op(rg.absolute, torch.absolute, x + 0.5)
    check_op(rg.negative, torch.negative, x)
    check_op(rg.neg, torch.neg, x)
    check_op(rg.reciprocal, torch.reciprocal, _away_from_zero(3, 4))
    check_op(rg.square, torch.square, x)
    check_op(lambda t: rg.clamp_min(t, 0.25), lambda t: torch.clamp_min(t, 0.25), x + 0.01)
    check_op(lambda t: rg.clamp_max(t, 0.25), lambda t: torch.clamp_max(t, 0.25), x + 0.01)
    check_op(rg.arctan2, torch.arctan2, A, B)
    check_op(lambda a, b: rg.true_divide(a, b), torch.true_divide, A, B)
    check_op(rg.arcsin, torch.arcsin, _inside(2, 3))


# ---------------------------------------------------------------- in place
IN_PLACE = ["exp_", "log1p_", "expm1_", "sqrt_", "sin_", "tanh_", "sigmoid_", "abs_",
            "neg_", "reciprocal_", "square_", "floor_", "round_", "sign_", "erf_", "atan_",
            "clamp_min_", "nan_to_num_"]


@pytest.mark.parametrize("name", IN_PLACE)
def test_in_place_forms_match_torch_through_a_graph(name):
    x0 = randn(3, 4, low=0.3)
    args = (0.5,) if name == "clamp_min_" else ()

    def run(lib_tensor, x):
        y = x * 1.5
        out = getattr(y, name)(*args)
        assert out is y
        return y

    check_op(lambda t: run(rg, t), lambda t: run(torch, t), x0)


def test_in_place_binary_forms_and_version_counter():
    a, b = randn(3, 4, low=0.5, seed=1), randn(3, 4, low=0.5, seed=2)
    for name in ("atan2_", "hypot_", "remainder_", "fmod_", "xlogy_"):
        check_op(lambda s, t: getattr(s * 1.0, name)(t), lambda s, t: getattr(s * 1.0, name)(t),
                 a, b)
    check_op(lambda s, t: (s * 1.0).lerp_(t, 0.3), lambda s, t: (s * 1.0).lerp_(t, 0.3), a, b)
    check_op(lambda s, t: (s * 1.0).addcmul_(t, t, value=2.0),
             lambda s, t: (s * 1.0).addcmul_(t, t, value=2.0), a, b)
    x = rg.tensor(a, requires_grad=True)
    y = x * 1.0
    z = y.log1p()                     # saves y
    y.exp_()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()
    leaf = rg.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError, match="exp_: a leaf tensor that requires grad"):
        leaf.exp_()
    with pytest.raises(TypeError, match="exp_: cannot write a result of dtype float32"):
        rg.tensor([1, 2]).exp_()


def test_methods_are_installed_from_the_family_modules():
    from retrograd import _tensor_math

    for name in vars(_tensor_math.Methods):
        if not name.startswith("__") or name in ("__mod__", "__floordiv__"):
            assert hasattr(rg.Tensor, name), name
    assert rg.Tensor.log1p is _tensor_math.Methods.log1p
    assert rg.Tensor.sign is _tensor_math.Methods.sign
