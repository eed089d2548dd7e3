"""dtypes (retrograd/dtypes.py) and how tensors of different dtypes combine: the dtype objects,
PyTorch's type promotion (scalars, 0-d tensors, float16 with bfloat16), and every op family in
float16 and bfloat16: it runs, keeps the dtype, and agrees with PyTorch at loose tolerance."""

import pickle

import ml_dtypes
import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd import dtypes
from tests.oracle import randn

PAIRS = [(rg.float16, torch.float16), (rg.bfloat16, torch.bfloat16), (rg.float32, torch.float32),
         (rg.float64, torch.float64), (rg.int8, torch.int8), (rg.uint8, torch.uint8),
         (rg.int16, torch.int16), (rg.int32, torch.int32), (rg.int64, torch.int64),
         (rg.bool, torch.bool)]
TORCH_OF = {d.name: t for d, t in PAIRS}


def _name(dtype):
    return str(dtype).split(".")[-1]


# ---------------------------------------------------------------- the dtype objects
@pytest.mark.parametrize("dtype, torch_dtype", PAIRS, ids=lambda d: _name(d))
def test_dtype_objects_mirror_torch(dtype, torch_dtype):
    assert repr(dtype) == f"retrograd.{_name(torch_dtype)}"
    assert dtype.is_floating_point == torch_dtype.is_floating_point
    assert dtype.itemsize == torch_dtype.itemsize
    assert pickle.loads(pickle.dumps(dtype)) is dtype


def test_dtypes_compare_with_numpy_dtypes_and_names():
    assert rg.float32 == np.float32 and rg.float32 == np.dtype("float32")
    assert rg.float32 == "float32"
    assert rg.bfloat16 == ml_dtypes.bfloat16
    assert rg.float32 != rg.float64 and rg.int64 != np.int32
    assert rg.float64 != None  # noqa: E711 - np.dtype(None) is float64: must not compare equal
    assert not (rg.float64 == None)  # noqa: E711
    assert rg.float32 != 5 and rg.float32 != "not a dtype"
    assert hash(rg.float32) == hash(np.dtype(np.float32))
    assert {rg.float32: 1}[rg.float32] == 1
    assert np.zeros(2, dtype=rg.float16).dtype == np.float16  # NumPy accepts the object
    assert rg.ones(2).dtype == rg.float32 and rg.ones(2).dtype == np.float32


def test_conversions_between_numpy_and_retrograd_dtypes():
    assert dtypes.as_numpy_dtype(rg.int32) == np.int32
    assert dtypes.as_numpy_dtype("bfloat16") == ml_dtypes.bfloat16
    assert dtypes.as_numpy_dtype(np.float16) == np.float16
    assert dtypes.from_numpy_dtype(np.dtype(np.uint8)) is rg.uint8
    assert dtypes.is_floating(np.dtype(ml_dtypes.bfloat16))
    assert not dtypes.is_floating(np.dtype(np.int64))
    assert dtypes.default_float is rg.float32


def test_unsupported_dtypes_error_clearly():
    with pytest.raises(TypeError, match=r"retrograd: unsupported dtype .*complex64.*; supported: "
                                        r"float16, bfloat16, float32"):
        dtypes.from_numpy_dtype(np.complex64)
    with pytest.raises(TypeError, match="unsupported dtype"):
        rg.tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="unsupported dtype"):
        rg.ones(2).to(np.complex128)


@pytest.mark.parametrize("alias, real", [("long", "int64"), ("int", "int32"), ("float", "float32"),
                                         ("double", "float64"), ("half", "float16"),
                                         ("short", "int16")])
def test_torch_aliases_name_the_same_dtypes(alias, real):
    assert getattr(rg, alias) is getattr(rg, real)
    assert getattr(torch, alias) is getattr(torch, real)
    assert rg.zeros(2, dtype=getattr(rg, alias)).dtype == getattr(rg, real)


@pytest.mark.parametrize("dtype, torch_dtype", PAIRS, ids=lambda d: _name(d))
def test_dtype_flags_mirror_torch(dtype, torch_dtype):
    assert dtype.is_signed == torch_dtype.is_signed
    assert dtype.is_complex == torch_dtype.is_complex is False
    assert dtype.to_real() is dtype


@pytest.mark.parametrize("call", [
    lambda: rg.zeros(2, dtype="float"), lambda: rg.tensor([1.0], dtype="double"),
    lambda: rg.arange(3, dtype="long"), lambda: rg.ones(2).to(dtype="half"),
    lambda: rg.full((2,), 1, dtype="f4"), lambda: rg.randn(2, dtype="float"),
    lambda: rg.ones_like(rg.ones(2), dtype="int"),
])
def test_string_dtypes_are_type_errors_as_in_torch(call):
    with pytest.raises(TypeError, match=r"dtype must be a retrograd dtype such as "
                                        r"retrograd\.float32, not the string"):
        call()
    with pytest.raises(TypeError):
        torch.zeros(2, dtype="float")


def test_string_dtype_errors_name_the_op_and_the_alias_to_use():
    with pytest.raises(TypeError, match=r"^zeros: dtype must be .* not the string 'float' \(for "
                                        r"torch\.float write retrograd\.float32, or "
                                        r"retrograd\.float\)"):
        rg.zeros(2, dtype="float")
    with pytest.raises(TypeError, match=r"^tensor: .*'long' \(for torch\.long write "
                                        r"retrograd\.int64"):
        rg.tensor([1], dtype="long")
    assert rg.zeros(2, dtype="float64").dtype == rg.float64  # an exact name is accepted


# ---------------------------------------------------------------- the default dtype
@pytest.fixture
def float64_default():
    rg.set_default_dtype(rg.float64)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        rg.set_default_dtype(rg.float32)
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("make", [
    lambda m: m.tensor(0.1), lambda m: m.tensor([1.5, 2.0]), lambda m: m.zeros(2),
    lambda m: m.ones(2, 3), lambda m: m.empty(2), lambda m: m.full((2,), 1.5),
    lambda m: m.arange(0.0, 1.0, 0.5), lambda m: m.linspace(0, 1, 3), lambda m: m.eye(2),
    lambda m: m.randn(2), lambda m: m.rand(2), lambda m: m.Tensor([1, 2]),
    lambda m: m.Tensor(2, 3), lambda m: m.tensor([1, 2]) / 2, lambda m: m.tensor([1, 2]) * 0.5,
    lambda m: m.nn.Linear(2, 3).weight, lambda m: m.tensor([1.0]).float(),
    lambda m: m.tensor(np.array([1.0], np.float32)), lambda m: m.tensor([1, 2]),
])
def test_creation_follows_the_default_dtype_as_torch(make, float64_default):
    assert rg.get_default_dtype() is rg.float64
    assert _name(make(rg).dtype) == _name(make(torch).dtype)


def test_tensor_repr_omits_the_default_dtype(float64_default):
    assert repr(rg.tensor([1.5])) == "tensor([1.5])"
    assert "dtype" not in repr(torch.tensor([1.5]))
    assert "dtype=retrograd.float32" in repr(rg.tensor([1.5], dtype=rg.float32))


def test_python_floats_keep_float64_precision_under_a_float64_default(float64_default):
    assert rg.tensor(0.1).item() == 0.1 and rg.tensor([0.1]).tolist() == [0.1]


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16, rg.float32, rg.float64])
def test_any_floating_dtype_can_be_the_default_as_in_torch(dtype):
    try:
        rg.set_default_dtype(dtype)
        assert rg.get_default_dtype() is dtype and rg.zeros(1).dtype == dtype
    finally:
        rg.set_default_dtype(rg.float32)


def test_set_default_dtype_refuses_integer_dtypes_and_strings():
    for bad in (rg.int64, rg.bool):
        with pytest.raises(TypeError, match="only floating-point dtypes can be the default"):
            rg.set_default_dtype(bad)
    with pytest.raises(TypeError, match="set_default_dtype: dtype must be a retrograd dtype"):
        rg.set_default_dtype("float64")
    with pytest.raises(TypeError):
        torch.set_default_dtype(torch.int64)
    assert rg.get_default_dtype() is rg.float32


def test_set_default_tensor_type_is_the_legacy_spelling():
    try:
        rg.set_default_tensor_type("torch.DoubleTensor")
        assert rg.get_default_dtype() is rg.float64
        rg.set_default_tensor_type(rg.FloatTensor)
        assert rg.get_default_dtype() is rg.float32
        with pytest.raises(TypeError, match="only floating-point dtypes"):
            rg.set_default_tensor_type(rg.LongTensor)
        with pytest.raises(RuntimeError, match="CPU only, got device 'cuda'"):
            rg.set_default_tensor_type("torch.cuda.FloatTensor")
    finally:
        rg.set_default_dtype(rg.float32)


# ---------------------------------------------------------------- finfo and iinfo
FLOATS = [(rg.float16, torch.float16), (rg.bfloat16, torch.bfloat16),
          (rg.float32, torch.float32), (rg.float64, torch.float64)]
INTEGERS = [(rg.uint8, torch.uint8), (rg.int8, torch.int8), (rg.int16, torch.int16),
            (rg.int32, torch.int32), (rg.int64, torch.int64)]


@pytest.mark.parametrize("dtype, torch_dtype", FLOATS, ids=lambda d: _name(d))
def test_finfo_matches_torch(dtype, torch_dtype):
    ours, theirs = rg.finfo(dtype), torch.finfo(torch_dtype)
    for name in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, name) == getattr(theirs, name), name
        assert type(getattr(ours, name)) is type(getattr(theirs, name)), name
    assert ours.dtype == theirs.dtype and repr(ours) == repr(theirs)
    assert ours == rg.finfo(dtype) and hash(ours) == hash(rg.finfo(dtype))


def test_finfo_min_masks_like_torch():
    scores = rg.tensor([[1.0, 2.0, 3.0]])
    mask = rg.tensor([[False, True, False]])
    masked = scores.masked_fill(mask, rg.finfo(scores.dtype).min)
    assert masked.tolist()[0][1] == float(np.finfo(np.float32).min)
    assert rg.finfo().dtype == torch.finfo().dtype == "float32"


@pytest.mark.parametrize("dtype, torch_dtype", INTEGERS, ids=lambda d: _name(d))
def test_iinfo_matches_torch(dtype, torch_dtype):
    ours, theirs = rg.iinfo(dtype), torch.iinfo(torch_dtype)
    assert (ours.bits, ours.min, ours.max, ours.dtype) == \
        (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    assert type(ours.min) is int and repr(ours) == repr(theirs)


def test_finfo_and_iinfo_refuse_the_other_kind_as_torch():
    with pytest.raises(TypeError, match="finfo: requires a floating-point dtype, got "
                                        "retrograd.int32; use retrograd.iinfo"):
        rg.finfo(rg.int32)
    with pytest.raises(TypeError, match="iinfo: requires an integer dtype, got "
                                        "retrograd.float32; use retrograd.finfo"):
        rg.iinfo(rg.float32)
    with pytest.raises(TypeError, match="iinfo: retrograd.bool is not supported"):
        rg.iinfo(rg.bool)
    for fn, arg in ((torch.finfo, torch.int32), (torch.iinfo, torch.float32),
                    (torch.iinfo, torch.bool)):
        with pytest.raises(TypeError):
            fn(arg)


# ---------------------------------------------------------------- type promotion vs torch
def _make(lib, dtype_name, shape, value=1):
    """A tensor of the named dtype in either library (0-d when shape is ())."""
    if lib is torch:
        return torch.full(shape, value, dtype=TORCH_OF[dtype_name])
    return rg.full(shape, value, dtype=getattr(rg, dtype_name))


PROMOTIONS = [
    # (left, right, op): a side is a dtype name with a shape, or a Python scalar
    (("int64", (3,)), 0.5, "mul"),
    (("int32", (3,)), 2, "mul"),
    (("int64", (3,)), ("float32", (3,)), "add"),
    (("int64", (3,)), ("int64", (3,)), "truediv"),
    (("int32", (3,)), 2, "truediv"),
    (("float16", (3,)), ("bfloat16", (3,)), "add"),
    (("bfloat16", (3,)), ("float16", (3,)), "mul"),
    (("float16", (3,)), ("float32", (3,)), "add"),
    (("bfloat16", (3,)), ("int64", (3,)), "add"),
    (("float32", (3,)), ("float64", ()), "mul"),     # a 0-d tensor of the same category
    (("float64", ()), ("float16", (3,)), "mul"),
    (("int8", (3,)), ("int64", ()), "add"),
    (("int64", (3,)), ("float64", ()), "add"),       # a 0-d tensor of a higher category wins
    (("int64", (3,)), ("float16", ()), "add"),
    (("bool", (3,)), ("int32", ()), "add"),
    (("float16", ()), ("float64", ()), "add"),       # two 0-d tensors: plain promotion
    (("bool", (3,)), ("bool", (3,)), "add"),
    (("bool", (3,)), 1, "add"),
    (("bool", (3,)), 2.5, "mul"),
    (("float16", (3,)), 2.5, "mul"),
    (("bfloat16", (3,)), 2.5, "mul"),
    (("bfloat16", (3,)), 2.5, "rtruediv"),
    (("bfloat16", (3,)), 1.0, "rsub"),
    (("bfloat16", (3,)), 0.5, "pow"),
    (("uint8", (3,)), ("int8", (3,)), "add"),
    (("int32", (3,)), ("int64", (3,)), "sub"),
    (("float32", (3,)), ("float64", (3,)), "maximum"),
    (("int64", (3,)), 0.5, "rsub"),
    (("int64", (3,)), 2.0, "pow"),
    (("int64", (3,)), 2, "rpow"),
]


def _operand(lib, side):
    return _make(lib, *side, value=2) if isinstance(side, tuple) else side


def _apply(op, a, b):
    if op.startswith("r") and op not in ("rsub",) and hasattr(a, f"__{op}__"):
        return getattr(a, f"__{op}__")(b)
    return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
            "truediv": lambda: a / b, "rtruediv": lambda: b / a, "rsub": lambda: b - a,
            "pow": lambda: a ** b, "rpow": lambda: b ** a,
            "maximum": lambda: a.maximum(b)}[op]()


@pytest.mark.parametrize("left, right, op", PROMOTIONS, ids=str)
def test_type_promotion_matches_torch(left, right, op):
    y = _apply(op, _operand(rg, left), _operand(rg, right))
    ty = _apply(op, _operand(torch, left), _operand(torch, right))
    assert _name(y.dtype) == _name(ty.dtype)
    np.testing.assert_allclose(y.numpy().astype(np.float64), ty.double().numpy(), rtol=1e-2)


@pytest.mark.parametrize("cond_kind, a, b", [
    ("tensors", ("float32", (3,)), ("float64", ())),
    ("tensors", ("int64", (3,)), ("float32", (3,))),
    ("scalar", ("int64", (3,)), 0.5),
    ("scalar", ("bfloat16", (3,)), 0.0),
    ("scalar", 1.0, ("float16", (3,))),
    ("scalars", 1.0, 0.0),
    ("scalars", 1, 0.5),
    ("scalars", 1, 0),
], ids=str)
def test_where_promotion_matches_torch(cond_kind, a, b):
    cond = np.array([True, False, True])
    y = rg.where(rg.tensor(cond), _operand(rg, a), _operand(rg, b))
    ty = torch.where(torch.tensor(cond), _operand(torch, a), _operand(torch, b))
    assert _name(y.dtype) == _name(ty.dtype)


def test_integer_operand_does_not_change_the_float_result():
    x = rg.tensor([1.5, 2.5], dtype=rg.float16)
    assert (x * rg.tensor([2, 3])).dtype == rg.float16
    assert (rg.tensor([2, 3]) * x).dtype == rg.float16


# ---------------------------------------------------------------- float16 / bfloat16 ops
def _lowp_inputs(arrays, rg_dtype, torch_dtype):
    rg_in, torch_in = [], []
    for a in arrays:
        if a.dtype.kind == "f":
            rg_in.append(rg.tensor(a.astype(np.float32), dtype=rg_dtype, requires_grad=True))
            torch_in.append(torch.tensor(a.astype(np.float32)).to(torch_dtype).requires_grad_())
        else:
            rg_in.append(rg.tensor(a))
            torch_in.append(torch.tensor(a))
    return rg_in, torch_in


def _close(a, b, what, tol):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, err_msg=what)


def check_low_precision(rg_fn, torch_fn, *arrays, rg_dtype, torch_dtype, tol=3e-2):
    """Outputs keep the low-precision dtype; values and gradients (random cotangent) agree
    with torch at a tolerance fit for 8-bit (bfloat16) or 11-bit (float16) mantissas."""
    rg_in, torch_in = _lowp_inputs(arrays, rg_dtype, torch_dtype)
    y, ty = rg_fn(*rg_in), torch_fn(*torch_in)
    assert _name(y.dtype) == _name(ty.dtype), f"dtype {y.dtype} != torch {ty.dtype}"
    _close(y.detach().numpy(), ty.detach().float().numpy(), "output", tol)
    cot = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    y.backward(rg.tensor(cot, dtype=rg_dtype))
    ty.backward(torch.tensor(cot).to(torch_dtype))
    for i, (a, b) in enumerate(zip(rg_in, torch_in)):
        if b.requires_grad:
            assert a.grad.dtype == rg_dtype, f"gradient {i} has dtype {a.grad.dtype}"
            _close(a.grad.numpy(), b.grad.float().numpy(), f"gradient of input {i}", tol)


LOWP_OPS = [
    ("add", lambda a, b: a + b, (randn(3, 4), randn(4, seed=1))),
    ("sub_scalar", lambda a: 1.0 - a, (randn(3, 4),)),
    ("mul", lambda a, b: a * b * 2.5, (randn(3, 4), randn(3, 1, seed=1))),
    ("div", lambda a, b: a / b, (randn(3, 4), randn(3, 4, low=0.5, seed=1))),
    ("rdiv", lambda a: 2.0 / a, (randn(3, 4, low=0.5),)),
    ("pow_scalar", lambda a: a ** 0.5, (randn(3, 4, low=0.5),)),
    ("pow", lambda a, b: a ** b, (randn(3, 4, low=0.5), randn(3, 4, seed=1))),
    ("exp_log", lambda a: a.exp() + a.abs().log(), (randn(3, 4, low=0.2),)),
    ("sqrt", lambda a: a.sqrt(), (randn(3, 4, low=0.5),)),
    ("trig", lambda a: a.sin() * a.cos(), (randn(3, 4),)),
    ("tanh_sigmoid", lambda a: a.tanh() + a.sigmoid(), (randn(3, 4),)),
    ("relu_abs", lambda a: a.relu() - a.abs(), (randn(3, 4),)),
    ("clamp", lambda a: a.clamp(-0.5, 0.5), (randn(3, 4),)),
    ("maximum", lambda a, b: a.maximum(b), (randn(3, 4), randn(3, 4, seed=1))),
    ("where", lambda a, c: torch.where(c, a, 0.0) if isinstance(a, torch.Tensor) else
     rg.where(c, a, 0.0), (randn(3, 4), np.random.default_rng(0).random((3, 4)) < 0.5)),
    ("masked_fill", lambda a, m: a.masked_fill(m, -1.0),
     (randn(3, 4), np.random.default_rng(1).random((3, 4)) < 0.5)),
    ("cast_up", lambda a: a.float() * 2.0, (randn(3, 4),)),
    ("sum", lambda a: a.sum(1), (randn(3, 4),)),
    ("mean", lambda a: a.mean(), (randn(3, 4),)),
    ("var", lambda a: a.var(0), (randn(5, 4),)),
    ("amax", lambda a: a.amax(1), (randn(3, 4),)),
    ("max_dim", lambda a: a.max(1)[0], (randn(3, 4),)),
    ("logsumexp", lambda a: a.logsumexp(1), (randn(3, 4),)),
    ("softmax", lambda a: a.softmax(-1), (randn(3, 4),)),
    ("log_softmax", lambda a: a.log_softmax(0), (randn(3, 4),)),
    ("matmul", lambda a, b: a @ b, (randn(3, 4), randn(4, 2, seed=1))),
    ("matmul_batched", lambda a, b: a @ b, (randn(2, 3, 4), randn(2, 4, 2, seed=1))),
    ("matmul_folded", lambda a, b: a @ b, (randn(2, 3, 4), randn(4, 2, seed=1))),
    ("reshape_permute", lambda a: a.reshape(2, 6).permute(1, 0) * 1.0, (randn(3, 4),)),
    ("expand", lambda a: a.expand(2, 3, 4) * 1.0, (randn(3, 1),)),
    ("index", lambda a: a[[0, 0, 2], 1:], (randn(3, 4),)),
    ("setitem", lambda a: _set(a), (randn(3, 4),)),
    ("cat_stack", lambda a, b: torch.cat([a, b]) if isinstance(a, torch.Tensor) else rg.cat([a, b]),
     (randn(3, 4), randn(2, 4, seed=1))),
    ("stack", lambda a, b: torch.stack([a, b], 1) if isinstance(a, torch.Tensor) else
     rg.stack([a, b], 1), (randn(3, 4), randn(3, 4, seed=1))),
]


def _set(a):
    y = a * 1.0
    y[1] = y[0] * 2.0
    return y


@pytest.mark.parametrize("rg_dtype, torch_dtype", [(rg.float16, torch.float16),
                                                   (rg.bfloat16, torch.bfloat16)],
                         ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name, fn, arrays", LOWP_OPS, ids=[o[0] for o in LOWP_OPS])
def test_low_precision_ops_keep_dtype_and_match_torch(name, fn, arrays, rg_dtype, torch_dtype):
    tol = 5e-2 if rg_dtype == rg.bfloat16 else 1e-2
    with np.errstate(over="ignore", under="ignore"):
        check_low_precision(fn, fn, *arrays, rg_dtype=rg_dtype, torch_dtype=torch_dtype, tol=tol)


@pytest.mark.parametrize("rg_dtype, torch_dtype", [(rg.float16, torch.float16),
                                                   (rg.bfloat16, torch.bfloat16)],
                         ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name, fn", [
    ("sum", lambda t: t.sum(1)), ("mean", lambda t: t.mean(1)), ("var", lambda t: t.var(1)),
    ("logsumexp", lambda t: t.logsumexp(1)),
    ("softmax", lambda t: t.softmax(1) * 2000.0),  # scaled up: each entry is ~1 / 20000
    ("log_softmax", lambda t: t.log_softmax(1)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_long_reductions_accumulate_like_torch(name, fn, rg_dtype, torch_dtype):
    # 0.1 summed 20000 times: accumulated in bfloat16 itself the sum stalls at 32
    data = np.full((2, 20000), 0.1, dtype=np.float32)
    data[1] += np.random.default_rng(0).random(20000).astype(np.float32)
    check_low_precision(fn, fn, data, rg_dtype=rg_dtype, torch_dtype=torch_dtype, tol=2e-2)


def test_broadcast_gradient_of_bfloat16_accumulates_like_torch():
    def grad_of_bias(lib):
        b = lib.zeros(1, dtype=lib.bfloat16, requires_grad=True)
        x = lib.zeros(20000, dtype=lib.bfloat16)
        (x + b).backward(lib.full((20000,), 0.1, dtype=lib.bfloat16))
        return float(b.grad[0])

    assert grad_of_bias(rg) == pytest.approx(grad_of_bias(torch), rel=2e-2)


def test_low_precision_helper_can_fail():
    with pytest.raises(AssertionError):
        check_low_precision(lambda a: a * 2.0, lambda a: a * 2.1, randn(3), rg_dtype=rg.float16,
                            torch_dtype=torch.float16, tol=1e-2)
    with pytest.raises(AssertionError, match="dtype"):
        check_low_precision(lambda a: a.float(), lambda a: a * 1.0, randn(3), rg_dtype=rg.bfloat16,
                            torch_dtype=torch.bfloat16)


def test_convert_equals_astype_bit_for_bit_float16_subnormals_included():
    from retrograd.dtypes import convert
    rng = np.random.default_rng(0)
    specials = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 65504, 65519, 65520, 1e6,
                         2.0 ** -14, 2.0 ** -25, 2.0 ** -24 * 1.5, -2.0 ** -24 * 0.5,
                         2.0 ** -24 * 2.5, 6.1e-5], np.float32)
    cases = [rng.standard_normal(5000).astype(np.float32),            # normal values
             (rng.random(5000) ** 8 * 1e-2).astype(np.float32),       # mostly subnormal
             np.concatenate([specials, (rng.standard_normal(3000) * 1e-6).astype(np.float32)]),
             (rng.random((64, 80)) ** 6 * 1e-3).astype(np.float32).T]  # not contiguous
    with np.errstate(over="ignore", invalid="ignore"):
        for array in cases:
            expected = array.astype(np.float16)
            got = convert(array, np.float16)
            assert got.dtype == np.float16 and got.shape == array.shape
            assert np.array_equal(got.view(np.uint16), expected.view(np.uint16))
            back = convert(expected, np.float32)
            assert np.array_equal(back, expected.astype(np.float32), equal_nan=True)
    assert convert(np.arange(3.0), np.float32).dtype == np.float32
