"""The numerical-stability audit: every op in ``retrograd/ops/`` driven through pathological
inputs at the edges of each dtype's range (logits of +-1e4 and +-1e30, -inf entries and all
-inf rows, fully masked attention rows, zero-variance rows, values near finfo.max and
finfo.tiny, float16 at 65504, eps below finfo.tiny, log and sqrt of 0, division by tiny),
forward and backward, against PyTorch.

The rule: wherever PyTorch's output or gradient entry is finite, retrograd's is finite and
equal within the dtype's tolerance; where PyTorch's is nan or inf, retrograd's is the same
non-finite value, unless the case is in POLICY (documented in docs/stability.md), which says
what retrograd returns instead and is checked. ``test_every_op_is_audited`` fails for an op
with no case (ops are found by walking the package), and each case checks that the ops it
names really ran (forward, observed through the observer slot).

Run: python -m pytest tests/ops/test_stability_audit.py
"""

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
import retrograd.ops
from retrograd.autograd.function import Function
from retrograd.autograd.observer import OpObserver, observe

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
ALL = (F32, F64)
HALF = (F16, F32, F64)
INF, NAN = float("inf"), float("nan")
RTOL = {F16: 1e-2, F32: 1e-5, F64: 1e-12}

RG = SimpleNamespace(lib=rg, F=F, name="retrograd")
TH = SimpleNamespace(lib=torch, F=torch.nn.functional, name="torch")


def _ops():
    """Every Function subclass defined in a module of retrograd/ops/."""
    found = []
    for info in pkgutil.iter_modules(retrograd.ops.__path__):
        module = importlib.import_module(f"retrograd.ops.{info.name}")
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function \
                    and obj.__module__ == module.__name__:
                found.append(obj)
    return sorted(found, key=lambda f: (f.__module__, f.__name__))


OPS = _ops()
# ops with no case of their own, and why
EXEMPT = {
    "_Extremum": "private base class of Maximum and Minimum (its backward is audited there)",
    "_PiecewiseConstant": "private base class of Floor, Ceil, Round, Trunc and Sign (audited "
                          "there)",
}


@dataclass
class Case:
    ops: tuple          # names of the ops the case exercises (checked to run)
    name: str
    make: object        # dtype -> list of arrays (floating ones require grad)
    fn: object          # (library namespace, *tensors) -> tensor or tuple of tensors
    dtypes: tuple = ALL
    marks: dict = field(default_factory=dict)   # dtype -> pytest mark (xfail)
    oracle64: bool = False   # torch is run in float64 (rounded to dtype): its float16/32
                             # kernel is less accurate than the dtype allows


CASES = []


def case(ops, name, make, fn, dtypes=ALL, marks=None, oracle64=False):
    CASES.append(Case(tuple(ops.split()), name, make, fn, dtypes, marks or {}, oracle64))


def fi(dt):
    return np.finfo(dt)


def arr(values, dt):
    return np.array(values, dtype=dt)


def rand(shape, dt, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dt)


def big_logits(v):
    """Rows of logits at +-v (v = 1e4 or 1e30) with ties and a moderate entry."""
    return lambda dt: [arr([[v, -v, 0.5, v], [-v, -v, -v, 1.0], [v, v * 0.5, -v, 2.0]], dt)]


def neg_inf_logits(dt):
    return [arr([[-INF, 1.0, 2.0, -INF], [0.5, -INF, 3.0, 1.0], [1.0, 2.0, 3.0, 4.0]], dt)]


def all_neg_inf_row(dt):
    return [arr([[-INF, -INF, -INF, -INF], [0.5, -INF, 3.0, 1.0], [1.0, 2.0, 3.0, 4.0]], dt)]


def near_max(dt):
    m = fi(dt).max
    return [arr([[m, m * 0.75, -m, 1.0], [m * 0.5, m * 0.5, 2.0, -m * 0.5]], dt)]


def near_tiny(dt):
    t = fi(dt).tiny
    return [arr([[t, -t, t * 4, 0.0], [t / 4, t * 2, -t, t]], dt)]


def infs(dt):
    return [arr([[INF, -INF, 1.0, NAN], [0.0, -1.0, 2.0, INF]], dt)]


def in_f16_range(dt):
    return [arr([[65504.0, -65504.0, 1.0, 0.0], [60000.0, 2.0 ** -14, 2.0 ** -24, -3.0]], dt)]


# ------------------------------------------------------------------ elementwise
for vals, label in ((near_max, "near_max"), (near_tiny, "near_tiny"), (infs, "inf_nan"),
                    (in_f16_range, "f16_65504")):
    case("Add", label, lambda dt, v=vals: v(dt) * 2, lambda L, a, b: a + b, HALF)
    case("Sub", label, lambda dt, v=vals: [v(dt)[0], -v(dt)[0]], lambda L, a, b: a - b, HALF)
    case("Mul", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][::-1].copy()],
         lambda L, a, b: a * b, HALF)
    case("Neg", label, vals, lambda L, x: -x, HALF)
    case("Abs", label, vals, lambda L, x: x.abs(), HALF)
    case("Relu", label, vals, lambda L, x: L.F.relu(x), HALF)
    case("Tanh", label, vals, lambda L, x: x.tanh(), HALF)
    case("Sigmoid", label, vals, lambda L, x: x.sigmoid(), HALF)
    case("Clamp", label, vals, lambda L, x: x.clamp(-1.0, 1.0), HALF)
    case("Clamp", label + "_inf_bounds", vals, lambda L, x: x.clamp(-INF, INF), HALF)
    case("Maximum", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][:, ::-1].copy()],
         lambda L, a, b: L.lib.maximum(a, b), HALF)
    case("Minimum", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][:, ::-1].copy()],
         lambda L, a, b: L.lib.minimum(a, b), HALF)
    case("PowScalar", label, vals, lambda L, x: x ** 2, HALF)
    case("Sin Cos", label, vals, lambda L, x: x.sin() + x.cos(), HALF)
    case("LeakyRelu", label, vals, lambda L, x: L.F.leaky_relu(x, 0.1), HALF)
    case("Gelu", label, vals, lambda L, x: L.F.gelu(x), HALF)
    case("Gelu", label + "_tanh", vals, lambda L, x: L.F.gelu(x, approximate="tanh"), HALF)
    case("Cast", label + "_to_f16", vals, lambda L, x: x.half().float())
    case("Cast", label + "_to_f32", vals, lambda L, x: x.float() * 1.0, (F16, F64))
    case("Cast", label + "_to_f64", vals, lambda L, x: x.double(), (F16, F32))

for v in (1e4, 1e30):
    dts = HALF if v < 7e4 else ALL
    for op, f in (("Tanh", lambda L, x: x.tanh()), ("Sigmoid", lambda L, x: x.sigmoid()),
                  ("Gelu", lambda L, x: L.F.gelu(x)),
                  ("Gelu", lambda L, x: L.F.gelu(x, approximate="tanh")),
                  ("LeakyRelu", lambda L, x: L.F.leaky_relu(x)), ("Exp", lambda L, x: x.exp()),
                  ("Sin Cos", lambda L, x: x.sin() * x.cos())):
        case(op, f"pm{v:.0e}", big_logits(v), f, dts)

case("Div", "by_tiny", lambda dt: [arr([1.0, -1.0, 0.0, 1e-3, 2.0], dt),
                                   arr([fi(dt).tiny, fi(dt).tiny, fi(dt).tiny, fi(dt).tiny,
                                        fi(dt).smallest_subnormal], dt)],
     lambda L, a, b: a / b, HALF)
case("Div", "by_zero", lambda dt: [arr([1.0, -1.0, 0.0, INF], dt), arr([0.0, -0.0, 0.0, 0.0], dt)],
     lambda L, a, b: a / b, HALF)
case("Div", "huge_by_huge", lambda dt: near_max(dt) * 2, lambda L, a, b: a / b, HALF)
case("Exp", "huge_exponents",
     lambda dt: [arr([88.8, 709.0, 710.0, 11.1, 1e4, -1e4, -INF, INF, 0.0], dt)],
     lambda L, x: x.exp(), HALF)
case("Log", "of_zero_tiny_subnormal",
     lambda dt: [arr([0.0, -0.0, fi(dt).tiny, fi(dt).smallest_subnormal, fi(dt).max, INF, -1.0],
                     dt)], lambda L, x: x.log(), HALF)
case("Sqrt", "at_zero_tiny_max",
     lambda dt: [arr([0.0, fi(dt).tiny, fi(dt).smallest_subnormal, fi(dt).max, INF, -1.0], dt)],
     lambda L, x: x.sqrt(), HALF)
case("PowScalar", "half_at_zero", lambda dt: [arr([0.0, fi(dt).tiny, 4.0, INF], dt)],
     lambda L, x: x ** 0.5, HALF)
case("PowScalar", "minus_one_at_zero", lambda dt: [arr([0.0, -0.0, fi(dt).tiny, INF], dt)],
     lambda L, x: x ** -1.0, HALF)
case("PowScalar", "huge_exponent", lambda dt: [arr([2.0, 0.5, 1.0, 0.0, -2.0], dt)],
     lambda L, x: x ** 1e4, HALF)
case("PowScalar", "f16_overflow", lambda dt: [arr([256.0, 255.0, 1e4, -300.0], dt)],
     lambda L, x: x ** 2, HALF)
case("Pow", "huge_exponents", lambda dt: [arr([2.0, 10.0, 0.5, 1.0, 3.0], dt),
                                          arr([1e4, 400.0, 1e4, INF, -1e4], dt)],
     lambda L, x, y: x ** y, HALF)
case("Pow", "zero_base", lambda dt: [arr([0.0, 0.0, 0.0, 0.0], dt), arr([0.0, 0.5, 2.0, -1.0], dt)],
     lambda L, x, y: x ** y, HALF)
case("Where", "inf_in_unselected_branch", lambda dt: infs(dt) + near_max(dt),
     lambda L, a, b: L.lib.where(a.isfinite() & (b > 0), a, b), HALF)
case("Where", "log_of_masked_zero", lambda dt: [arr([0.0, 1.0, 0.0, 2.0], dt)],
     lambda L, x: L.lib.where(x > 0, x.log(), x * 0.0), HALF)
case("MaskedFill", "neg_inf_fill", lambda dt: infs(dt),
     lambda L, x: x.masked_fill(x > 0.5, -INF), HALF)
case("MaskedFill", "fill_65504", lambda dt: near_max(dt),
     lambda L, x: x.masked_fill(x < 0, 65504.0), HALF)

# ------------------------------------------------------------------ reductions


def zero_var(dt):
    return [arr([[3.0, 3.0, 3.0, 3.0], [0.3, -1.2, 0.8, 2.0], [0.0, 0.0, 0.0, 0.0]], dt)]


for vals, label in ((near_max, "near_max"), (near_tiny, "near_tiny"), (infs, "inf_nan"),
                    (zero_var, "zero_var"), (in_f16_range, "f16_65504"),
                    (neg_inf_logits, "neg_inf"), (all_neg_inf_row, "all_neg_inf_row")):
    case("Sum", label, vals, lambda L, x: x.sum(1), HALF)
    case("Mean", label, vals, lambda L, x: x.mean(1), HALF)
    case("Var", label, vals, lambda L, x: x.var(1), HALF)
    case("Std", label, vals, lambda L, x: x.std(1), HALF)
    case("Norm", label, vals, lambda L, x: x.norm(dim=1), HALF)
    case("Norm", label + "_p1", vals, lambda L, x: x.norm(p=1, dim=1), HALF)
    case("Norm", label + "_pinf", vals, lambda L, x: x.norm(p=INF, dim=1), HALF)
    case("MaxDim", label, vals, lambda L, x: x.max(1)[0], HALF)
    case("MinDim", label, vals, lambda L, x: x.min(1)[0], HALF)
    case("Amax", label, vals, lambda L, x: x.amax(1), HALF)
    case("Amin", label, vals, lambda L, x: x.amin(1), HALF)
    case("LogSumExp", label, vals, lambda L, x: x.logsumexp(1), HALF)
    case("Softmax", label, vals, lambda L, x: L.F.softmax(x, dim=1), HALF)
    case("LogSoftmax", label, vals, lambda L, x: L.F.log_softmax(x, dim=1), HALF)

for v in (1e4, 1e30):
    dts = HALF if v < 7e4 else ALL
    for op, f in (("LogSumExp", lambda L, x: x.logsumexp(1)),
                  ("Softmax", lambda L, x: L.F.softmax(x, dim=1)),
                  ("LogSoftmax", lambda L, x: L.F.log_softmax(x, dim=1)),
                  ("Softmax", lambda L, x: L.F.softmax(x, dim=0)),
                  ("Std", lambda L, x: x.std(1)), ("Norm", lambda L, x: x.norm(dim=1))):
        case(op, f"pm{v:.0e}", big_logits(v), f, dts)
case("LogSumExp", "pos_inf_entry", lambda dt: [arr([[INF, 1.0, -INF], [INF, INF, 0.0]], dt)],
     lambda L, x: x.logsumexp(1), HALF)
case("Softmax", "pos_inf_entry", lambda dt: [arr([[INF, 1.0, -INF], [0.0, 1.0, 2.0]], dt)],
     lambda L, x: L.F.softmax(x, dim=1), HALF)

# ------------------------------------------------------------------ losses
TARGET = np.array([0, 2, 3])
PROBS = np.array([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0], [0.25, 0.25, 0.25, 0.25]])


def ce(**kw):
    return lambda L, x: L.F.cross_entropy(x, L.lib.tensor(TARGET), **kw)


for make, label in ((big_logits(1e4), "pm1e4"), (big_logits(1e30), "pm1e30"),
                    (neg_inf_logits, "neg_inf"), (all_neg_inf_row, "all_neg_inf_row"),
                    (lambda dt: [near_max(dt)[0][[0, 1, 0]]], "near_max")):
    dts = ALL if label in ("pm1e30",) else HALF
    case("CrossEntropy", label, make, ce(), dts)
    case("CrossEntropy", label + "_sum", make, ce(reduction="none"), dts)
    case("CrossEntropy", label + "_smoothing", make, ce(label_smoothing=0.1), dts,
         oracle64=True)    # torch's float16 smoothing term overflows; retrograd's does not
    case("CrossEntropyProbs", label, make,
         lambda L, x: L.F.cross_entropy(x, L.lib.tensor(PROBS).to(x.dtype)), dts)
    case("NllLoss", label, make,
         lambda L, x: L.F.nll_loss(L.F.log_softmax(x, dim=1), L.lib.tensor(TARGET)), dts)
    case("BinaryCrossEntropyWithLogits", label, make,
         lambda L, x: L.F.binary_cross_entropy_with_logits(
             x, L.lib.tensor(np.array([[1.0, 0, 0.5, 1], [0, 1, 1, 0], [1, 1, 0, 0.25]])
                             ).to(x.dtype), reduction="none"), dts)
case("CrossEntropy", "all_neg_inf_row_ignored",
     lambda dt: all_neg_inf_row(dt),
     lambda L, x: L.F.cross_entropy(x, L.lib.tensor(np.array([-100, 2, 3]))), HALF)
case("CrossEntropy", "neg_inf_at_target", neg_inf_logits,
     lambda L, x: L.F.cross_entropy(x, L.lib.tensor(np.array([0, 1, 3])), reduction="none"),
     HALF)
case("NllLoss", "all_neg_inf_row_ignored", all_neg_inf_row,
     lambda L, x: L.F.nll_loss(x, L.lib.tensor(np.array([-100, 2, 3]))), HALF)

# ------------------------------------------------------------------ normalizations


def norm_input(kind, dt):
    m, t = fi(dt).max, fi(dt).tiny
    base = np.random.default_rng(1).standard_normal((2, 3, 4))
    if kind == "zero_var":
        base[0] = 5.0
        base[:, 1] = -2.0
    elif kind == "near_max":
        base = base * (m / 8)
    elif kind == "tiny":
        base = base * t
    elif kind == "f16_65504":
        base = np.clip(base * 3e4, -65504, 65504)
    elif kind == "huge":
        base = base * 1e30
    return [base.astype(dt), rand((4,), dt, 2) + 1.0, rand((4,), dt, 3)]


def _bn(L, x, w, b, eps=1e-5):
    x4 = x.reshape(2, 3, 4).permute(0, 2, 1)   # (N, C=4, L=3)
    return L.F.batch_norm(x4, None, None, w, b, training=True, eps=eps)


def _bn_relu(L, x, w, b, eps=1e-5):
    """retrograd's fused batch_norm_relu; relu(batch_norm) in torch, which has no fused one."""
    x4 = x.reshape(2, 3, 4).permute(0, 2, 1)
    if hasattr(L.F, "batch_norm_relu"):
        return L.F.batch_norm_relu(x4, None, None, w, b, training=True, eps=eps)
    return L.F.relu(L.F.batch_norm(x4, None, None, w, b, training=True, eps=eps))


def _gn(L, x, w, b, eps=1e-5):
    return L.F.group_norm(x.permute(0, 2, 1), 2, w, b, eps=eps)


def _ln(L, x, w, b, eps=1e-5):
    return L.F.layer_norm(x, (4,), w, b, eps=eps)


def _rms(L, x, w, b, eps=1e-5):
    """rms_norm has no bias: b gets no gradient (zero in both libraries)."""
    return L.F.rms_norm(x, (4,), w, eps=eps)


NORMS = (("LayerNorm", _ln), ("BatchNorm", _bn), ("BatchNormRelu", _bn_relu),
         ("GroupNorm", _gn), ("RMSNorm", _rms))
for kind in ("zero_var", "near_max", "tiny", "f16_65504", "huge"):
    dts = ALL if kind == "huge" else HALF
    for op, f in NORMS:
        case(op, kind, lambda dt, k=kind: norm_input(k, dt), f, dts, oracle64=True)

for op, f in NORMS:
    # eps below the dtype's smallest normal; float64's 1e-320 is subnormal, float32 rounds
    # 1e-320 to 0 (an eps of 0)
    case(op, "eps_below_tiny", lambda dt: norm_input("zero_var", dt),
         lambda L, x, w, b, f=f: f(L, x, w, b, eps=1e-320), ALL)
    case(op, "eps_below_tiny_nonconstant", lambda dt: norm_input("tiny", dt),
         lambda L, x, w, b, f=f: f(L, x, w, b, eps=1e-320), ALL)
case("RMSNorm", "zero_rows", lambda dt: [arr([[0.0] * 4, [1.0, -2.0, 0.5, 3.0]], dt),
                                        rand((4,), dt, 2) + 1.0],
     lambda L, x, w: L.F.rms_norm(x, (4,), w), HALF)
case("RMSNorm", "zero_rows_eps_0", lambda dt: [arr([[0.0] * 4, [1.0, -2.0, 0.5, 3.0]], dt)],
     lambda L, x: L.F.rms_norm(x, (4,), eps=0.0), HALF)
case("RMSNorm", "inf_nan", infs, lambda L, x: L.F.rms_norm(x, (4,)), HALF)

# ------------------------------------------------------------------ attention


def qkv(dt, scale=1.0):
    return [rand((1, 2, 3, 4), dt, 4, scale), rand((1, 2, 5, 4), dt, 5, scale),
            rand((1, 2, 5, 4), dt, 6)]


MASK = np.ones((3, 5), dtype=bool)
MASK[1] = False           # a fully masked row
MASK[2, :3] = False
FLOAT_MASK = np.where(MASK, 0.0, -np.inf)


def sdpa(name, **kw):
    def fn(L, q, k, v):
        m = kw.get("mask")
        m = None if m is None else L.lib.tensor(m)
        if m is not None and m.dtype != L.lib.bool:
            m = m.to(q.dtype)
        if name == "mem" and L is RG:
            return F.memory_efficient_attention(q, k, v, m, block_size=2)
        return L.F.scaled_dot_product_attention(q, k, v, m)
    return fn


for name, op in (("sdpa", "ScaledDotProductAttention"), ("mem", "MemoryEfficientAttention")):
    case(op, "fully_masked_row", qkv, sdpa(name, mask=MASK), HALF)
    case(op, "fully_masked_row_float_mask", qkv, sdpa(name, mask=FLOAT_MASK), HALF)
    case(op, "logits_1e4", lambda dt: qkv(dt, 100.0), sdpa(name), HALF)
    case(op, "logits_1e30", lambda dt: qkv(dt, 1e15), sdpa(name), ALL)

# ------------------------------------------------------------------ linear algebra, conv, pool
case("MatMul", "near_max", lambda dt: near_max(dt) + [near_max(dt)[0].T.copy()],
     lambda L, a, b: a @ b, HALF)
case("MatMul", "inf_nan", lambda dt: infs(dt) + [rand((4, 3), dt)], lambda L, a, b: a @ b, HALF)
case("MatMul", "pm1e30", lambda dt: [rand((3, 4), dt, 1, 1e30), rand((4, 2), dt, 2, 1e-30)],
     lambda L, a, b: a @ b)
case("Linear", "near_max", lambda dt: near_max(dt) + [rand((3, 4), dt, 1), rand((3,), dt, 2)],
     lambda L, x, w, b: L.F.linear(x, w, b), HALF)
case("Linear", "inf_nan", lambda dt: infs(dt) + [rand((3, 4), dt, 1), rand((3,), dt, 2)],
     lambda L, x, w, b: L.F.linear(x, w, b), HALF)


def img(dt, kind):
    x = rand((1, 2, 4, 4), dt, 7).astype(np.float64)
    if kind == "near_max":
        x = x * fi(dt).max / 4
    elif kind == "inf":
        x[0, 0, 1, 1], x[0, 1, 2, 3] = INF, -INF
    elif kind == "neg_inf_window":
        x[0, 0, :2, :2] = -INF
    elif kind == "huge":
        x = x * 1e30
    return x.astype(dt)


for kind in ("near_max", "inf", "neg_inf_window", "huge"):
    dts = ALL if kind == "huge" else HALF
    # near_max / 64 for Conv2d, as for the transposed convolutions below: its 2 channels x 4
    # taps of values near max / 4 overflow in some summation orders and not in others, and
    # oneDNN's blocked kernels (float32) sum in another order than torch's
    case("Conv2d", kind, lambda dt, k=kind: [img(dt, k) / (64 if k == "near_max" else 1),
                                              rand((3, 2, 2, 2), dt, 8), rand((3,), dt, 9)],
         lambda L, x, w, b: L.F.conv2d(x, w, b, padding=1), dts)
    case("Conv1d", kind, lambda dt, k=kind: [img(dt, k)[0], rand((3, 4, 2), dt, 8)],
         lambda L, x, w: L.F.conv1d(x, w, padding=1), dts)
    case("MaxPool2d", kind, lambda dt, k=kind: [img(dt, k)],
         lambda L, x: L.F.max_pool2d(x, 2, padding=1), dts)
    case("AvgPool2d", kind, lambda dt, k=kind: [img(dt, k)],
         lambda L, x: L.F.avg_pool2d(x, 2, stride=1, padding=1), dts)
    case("AdaptiveAvgPool2d", kind, lambda dt, k=kind: [img(dt, k)],
         lambda L, x: L.F.adaptive_avg_pool2d(x, (3, 3)), dts)
    case("AdaptiveMaxPool2d", kind, lambda dt, k=kind: [img(dt, k)],
         lambda L, x: L.F.adaptive_max_pool2d(x, (3, 3)), dts)
    case("MaxUnpool2d", kind, lambda dt, k=kind: [img(dt, k)],
         lambda L, x: L.F.max_unpool2d(*L.F.max_pool2d(x, 2, return_indices=True), 2), dts)
    case("Im2col", kind, lambda dt, k=kind: [img(dt, k)],
         lambda L, x: L.F.unfold(x, 2, padding=1, dilation=(1, 2)), dts)
    case("Col2im", kind, lambda dt, k=kind: [img(dt, k).reshape(1, 8, 4)],   # 2x2 blocks
         lambda L, c: L.F.fold(c, (3, 3), 2), dts)                          # overlapping

# ------------------------------------------------------------------ recurrent


def cell_args(dt, gates, scale):
    return [rand((2, 3), dt, 1, scale), rand((2, 4), dt, 2), rand((gates * 4, 3), dt, 3),
            rand((gates * 4, 4), dt, 4), rand((gates * 4,), dt, 5), rand((gates * 4,), dt, 6)]


for scale in (1e4, 1e30):
    dts = HALF if scale < 7e4 else ALL
    label = f"pm{scale:.0e}_inputs"
    case("RNNStep", label, lambda dt, s=scale: cell_args(dt, 1, s),
         lambda L, x, h, *w: L.F.rnn_cell(x, h, *w) if L is RG else torch.rnn_tanh_cell(x, h, *w),
         dts)
    case("LSTMStep", label, lambda dt, s=scale: cell_args(dt, 4, s) + [rand((2, 4), dt, 7)],
         lambda L, x, h, wi, wh, bi, bh, c: (L.F.lstm_cell(x, (h, c), wi, wh, bi, bh)
                                             if L is RG else
                                             torch.lstm_cell(x, (h, c), wi, wh, bi, bh)), dts)
    case("GRUStep", label, lambda dt, s=scale: cell_args(dt, 3, s),
         lambda L, x, h, *w: L.F.gru_cell(x, h, *w) if L is RG else torch.gru_cell(x, h, *w),
         dts)

# ------------------------------------------------------------------ padding, interpolation,
# transposed convolution (the adjoint ops run as the backward of a create_graph gradient)


def adjoint_of(L, op_fn, g, shape):
    """The gradient of op_fn at an input of ``shape`` for the output gradient g, itself
    differentiable in g (create_graph): the op's adjoint applied to g."""
    z = L.lib.zeros(*shape, dtype=g.dtype, requires_grad=True)
    return L.lib.autograd.grad(op_fn(z), z, g, create_graph=True)[0]


def spatial_grad(dt, kind, shape):
    """An img()-like array of ``shape``: an output gradient for the adjoint cases."""
    x = rand(shape, dt, 11).astype(np.float64)
    x.flat[5], x.flat[-3] = (INF, -INF) if kind == "inf" else (x.flat[5], x.flat[-3])
    scale = {"near_max": fi(dt).max / 8, "huge": 1e30}.get(kind, 1.0)
    return (x * scale).astype(dt)


SPATIAL = {   # op names -> (the op on a (1, 2, 4, 4) input, its output's shape)
    "ConstantPad": (lambda L, x: L.F.pad(x, (1, 2, -1, 1), value=0.5), (1, 2, 4, 7)),
    "IndexPad": (lambda L, x: L.F.pad(x, (2, 1, 1, 3), mode="reflect"), (1, 2, 8, 7)),
    "IndexPad replicate": (lambda L, x: L.F.pad(x, (2, -1, 0, 3), mode="replicate"),
                           (1, 2, 7, 5)),
    "IndexPad circular": (lambda L, x: L.F.pad(x, (2, 1, 3, 1), mode="circular"),
                          (1, 2, 8, 7)),
    "UpsampleNearest": (lambda L, x: L.F.interpolate(x, scale_factor=1.5), (1, 2, 6, 6)),
    "UpsampleLinear": (lambda L, x: L.F.interpolate(x, size=(7, 3), mode="bilinear"),
                       (1, 2, 7, 3)),
    "UpsampleLinear align_corners": (
        lambda L, x: L.F.interpolate(x, scale_factor=2.5, mode="bilinear",
                                     align_corners=True), (1, 2, 10, 10)),
    "UpsampleBicubic": (lambda L, x: L.F.interpolate(x, size=(6, 3), mode="bicubic"),
                        (1, 2, 6, 3)),
}
for kind in ("near_max", "inf", "huge"):
    dts = ALL if kind == "huge" else HALF
    for label, (op_fn, out_shape) in SPATIAL.items():
        name, _, variant = label.partition(" ")
        suffix = f"_{variant}" if variant else ""
        case(name, kind + suffix, lambda dt, k=kind: [img(dt, k)], op_fn, dts)
        if name == "ConstantPad":    # its backward is ConstantPad itself
            continue
        case(f"{name}Backward", kind + suffix,
             lambda dt, k=kind, s=out_shape: [spatial_grad(dt, k, s)],
             lambda L, g, f=op_fn: adjoint_of(L, lambda z: f(L, z), g, (1, 2, 4, 4)), dts)
    # near_max / 64: sums of 2 channels x 9 taps of values near max / 4 overflow in some
    # summation orders and not in others (torch's and ours differ); of values near
    # max / 256 no partial sum can. The stride-1 case has no padding: an inf whose kernel
    # footprint falls in the cropped border meets a zero there in im2col (inf * 0 = NaN in
    # dL/dW), as in torch's float32 and float64 kernels but not its float16 one.
    conv_img = (lambda dt, k=kind: img(dt, k) / 64) if kind == "near_max" else \
        (lambda dt, k=kind: img(dt, k))
    case("ConvTranspose2d", kind, lambda dt, f=conv_img: [f(dt), rand((2, 3, 3, 3), dt, 8),
                                                         rand((3,), dt, 9)],
         lambda L, x, w, b: L.F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                 output_padding=1), dts)
    case("ConvTranspose2d", kind + "_stride1",
         lambda dt, f=conv_img: [f(dt), rand((2, 3, 2, 2), dt, 8)],
         lambda L, x, w: L.F.conv_transpose2d(x, w), dts)
    case("ConvTranspose1d", kind, lambda dt, f=conv_img: [f(dt)[0], rand((4, 2, 3), dt, 8)],
         lambda L, x, w: L.F.conv_transpose1d(x, w, stride=2, dilation=2), dts)


def _channel_mask(x):
    rg.manual_seed(12)
    ones = rg.ones(*x.shape, dtype=getattr(rg, str(x.dtype).split(".")[-1]))
    return F.dropout2d(ones, 0.5).numpy()


case("FeatureDropout", "inf_nan_max",
     lambda dt: [np.stack([infs(dt)[0], near_max(dt)[0]])[:, :, None, :]],   # (2, 2, 1, 4)
     lambda L, x: ((rg.manual_seed(12), F.dropout2d(x, 0.5))[1] if L is RG else
                   x * torch.tensor(_channel_mask(x))), HALF)

# ------------------------------------------------------------------ dropout, embedding
DROP_SHAPE = (2, 4)


def _dropout_mask(dt):
    rg.manual_seed(11)
    return F.dropout(rg.ones(DROP_SHAPE, dtype=getattr(rg, dt.name)), 0.5).numpy()


case("Dropout", "inf_nan_max",
     lambda dt: [np.concatenate([infs(dt)[0][:1], near_max(dt)[0][:1]])],
     lambda L, x: ((rg.manual_seed(11), F.dropout(x, 0.5))[1] if L is RG else
                   x * torch.tensor(_dropout_mask(np.dtype(str(x.dtype)[6:])))), HALF)

IDS = np.array([[0, 2, 2], [3, 0, 2]])


def emb_weight(dt):
    w = rand((5, 4), dt, 3).astype(np.float64)
    w[2] = fi(dt).max / 2      # looked up three times: the gradient's sum is fine, not the rows
    w[3] = [INF, -INF, NAN, 1.0]
    return [w.astype(dt)]


case("Embedding", "inf_and_near_max_rows", emb_weight,
     lambda L, w: L.F.embedding(L.lib.tensor(IDS), w) * 4.0, HALF)
case("Embedding", "max_norm_huge_rows",
     lambda dt: [(rand((5, 4), dt, 3).astype(np.float64) * [[1], [1e30], [1], [1e-30], [1]]
                  ).astype(dt)],
     lambda L, w: (L.F.embedding(L.lib.tensor(IDS), w.detach() * 1.0, max_norm=1.0)
                   * L.F.embedding(L.lib.tensor(IDS), w)))

# ------------------------------------------------------------------ views and copies


def views(dt):
    return [np.concatenate([infs(dt)[0], near_max(dt)[0]])]   # (4, 4)


def index_put(L, x):
    y = x * 1.0
    y[1:3, 0] = x[0, :2] * 2.0
    return y


for label, make in (("inf_nan_max", views),):
    case("Reshape", label, make, lambda L, x: x.reshape(2, 8) * 1.0, HALF)
    case("Permute", label, make, lambda L, x: x.permute(1, 0) * 1.0, HALF)
    case("Expand", label, make, lambda L, x: x[:1].expand(3, 4) * 1.0, HALF)
    case("Index", label, make, lambda L, x: x[L.lib.tensor(np.array([0, 0, 3]))] * 1.0, HALF)
    case("IndexPut Index", label, make, index_put, HALF)
    case("Cat", label, make, lambda L, x: L.lib.cat([x, x * 2.0], 0), HALF)
    case("Stack", label, make, lambda L, x: L.lib.stack([x, -x], 0), HALF)
    case("Clone", label, make, lambda L, x: x.clone(), HALF)
    case("Unbind", label, make, lambda L, x: x.unbind(0)[1] * x.unbind(0)[2], HALF)
    case("Split", label, make, lambda L, x: x.split(2, dim=1)[1] * 1.0, HALF)

# ------------------------------------------------------------------ ops of double backward


def _grad_of(L, out, x):
    return L.lib.autograd.grad(out, x, create_graph=True)[0]


case("GeluGrad", "pm1e4_double_backward", big_logits(1e4),
     lambda L, x: _grad_of(L, (L.F.gelu(x) ** 2).sum(), x), HALF)
case("GeluGrad", "inf_nan_double_backward", infs,
     lambda L, x: _grad_of(L, (L.F.gelu(x, approximate="tanh") * 3.0).sum(), x), HALF)
case("EmbeddingBackward", "inf_and_near_max_double_backward", emb_weight,
     lambda L, w: _grad_of(L, (L.F.embedding(L.lib.tensor(IDS), w) ** 2).sum(), w), HALF)
case("IndexBackward", "inf_nan_max_double_backward", views,
     lambda L, x: _grad_of(L, (x[L.lib.tensor(np.array([0, 0, 3]))] ** 2).sum(), x), HALF)


# ------------------------------------------------------------------ activation_extra, loss_extra
PRELU_SLOPES = [0.25, -0.5, 0.1, 2.0]   # one per channel (dim 1) of the (2, 4) and (3, 4) cases


def without_nan(make):
    """The case's arrays with NaN replaced by 0.5: at NaN, PyTorch's elu and hardtanh
    gradients depend on whether the element falls in the vectorized loop (NaN for elu, 0 for
    hardtanh: retrograd's choice, tested in tests/ops/test_activation_extra.py) or in the
    scalar tail (dL/dy), so no single answer matches it."""
    return lambda dt: [np.where(np.isnan(a), 0.5, a).astype(dt) for a in make(dt)]


for vals, label in ((near_max, "near_max"), (near_tiny, "near_tiny"), (infs, "inf_nan"),
                    (in_f16_range, "f16_65504"), (big_logits(1e4), "pm1e4"),
                    (big_logits(1e30), "pm1e30")):
    dts = ALL if label == "pm1e30" else HALF
    case("Silu", label, vals, lambda L, x: L.F.silu(x), dts)
    case("Mish", label, vals, lambda L, x: L.F.mish(x), dts)
    case("Softplus", label, vals, lambda L, x: L.F.softplus(x), dts)
    case("Softplus", label + "_beta", vals, lambda L, x: L.F.softplus(x, 0.5, 4.0), dts)
    case("Elu", label, without_nan(vals), lambda L, x: L.F.elu(x, 0.7), dts)
    case("Hardtanh", label, without_nan(vals), lambda L, x: L.F.hardtanh(x, -2.0, 3.0), dts)
    case("Hardtanh", label + "_relu6", without_nan(vals), lambda L, x: L.F.relu6(x), dts)
    case("Prelu", label, lambda dt, v=vals: v(dt) + [arr(PRELU_SLOPES, dt)],
         lambda L, x, w: L.F.prelu(x, w), dts)
    case("LogSigmoid", label, vals, lambda L, x: L.F.logsigmoid(x), dts)
    case("SmoothL1Loss", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][::-1].copy() * 0.5],
         lambda L, x, t: L.F.smooth_l1_loss(x, t, reduction="none", beta=0.5), dts)
    case("HuberLoss", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][::-1].copy() * 0.5],
         lambda L, x, t: L.F.huber_loss(x, t, reduction="none", delta=2.0), dts)
for make, label in ((big_logits(1e4), "pm1e4"), (big_logits(1e30), "pm1e30"),
                    (neg_inf_logits, "neg_inf"), (all_neg_inf_row, "all_neg_inf_row")):
    dts = ALL if label == "pm1e30" else HALF
    zeros_probs = np.array([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0], [0.25, 0.25, 0.25, 0.25]])
    case("KlDiv", label, make,
         lambda L, x: L.F.kl_div(L.F.log_softmax(x, dim=1), L.lib.tensor(zeros_probs).to(x.dtype),
                                 reduction="none"), dts)
    case("KlDiv", label + "_log_target", make,
         lambda L, x: L.F.kl_div(L.F.log_softmax(x, dim=1), L.F.log_softmax(x.detach() * 0.5,
                                 dim=1), reduction="none", log_target=True), dts)
    case("KlDiv", label + "_target_grad", lambda dt, m=make: m(dt) + [arr(zeros_probs, dt)],
         lambda L, x, t: L.F.kl_div(L.F.log_softmax(x, dim=1), t, reduction="batchmean"), dts)
case("BinaryCrossEntropy", "at_0_and_1",
     lambda dt: [arr([[0.0, 1.0, 0.0, 1.0], [fi(dt).tiny, 1.0 - fi(dt).eps, 0.5, 1e-3]], dt),
                 arr([[1.0, 0.0, 0.0, 1.0], [0.7, 0.3, 0.5, 1.0]], dt)],
     lambda L, x, t: L.F.binary_cross_entropy(x, t, reduction="none"), HALF,
     oracle64=True)   # torch's float16 kernel rounds its 1e-12 clamp to 0: 0 / 0 = NaN
case("BinaryCrossEntropy", "sigmoid_of_pm1e4", big_logits(1e4),
     lambda L, x: L.F.binary_cross_entropy(x.sigmoid(), L.lib.tensor(
         np.array([[1.0, 0, 0.5, 1], [0, 1, 1, 0], [1, 1, 0, 0.25]])).to(x.dtype),
         weight=L.lib.tensor(np.array([2.0, 0.5, 1.0, 3.0])).to(x.dtype)), HALF)


# ------------------------------------------------------------------ activation_tail, loss_tail
def _class_per_row(L, x):
    return L.lib.tensor(np.arange(x.shape[0]) % x.shape[1])


for vals, label in ((near_max, "near_max"), (infs, "inf_nan"), (in_f16_range, "f16_65504"),
                    (big_logits(1e4), "pm1e4")):
    case("Hardswish", label, without_nan(vals), lambda L, x: L.F.hardswish(x), HALF)
    case("Hardsigmoid", label, vals, lambda L, x: L.F.hardsigmoid(x), HALF)
    case("ScaledElu", label + "_selu", without_nan(vals), lambda L, x: L.F.selu(x), HALF)
    case("ScaledElu", label + "_celu", without_nan(vals), lambda L, x: L.F.celu(x, 0.5), HALF)
    case("Softshrink", label, without_nan(vals), lambda L, x: L.F.softshrink(x, 1.0), HALF)
    case("Hardshrink", label, without_nan(vals), lambda L, x: L.F.hardshrink(x, 1.0), HALF)
    case("Threshold", label, vals, lambda L, x: L.F.threshold(x, 1.0, -3.0), HALF)
    for p in (1, 2):
        case("MultiMarginLoss", f"{label}_p{p}", vals,
             lambda L, x, p=p: L.F.multi_margin_loss(x, _class_per_row(L, x), p=p,
                                                     reduction="none"), HALF)


# ------------------------------------------------------------------ sort, scans, triangles, einsum
for vals, label in ((near_max, "near_max"), (near_tiny, "near_tiny"), (infs, "inf_nan"),
                    (in_f16_range, "f16_65504")):
    case("Sort", label, vals, lambda L, x: L.lib.sort(x, dim=1, descending=True, stable=True),
         HALF)
    case("TopK", label, vals, lambda L, x: L.lib.topk(x, 2, dim=1)[0], HALF)
    case("TopK", label + "_smallest", vals, lambda L, x: L.lib.topk(x, 3, 1, False)[0], HALF)
    case("Cumsum", label, vals, lambda L, x: x.cumsum(1), HALF)
    case("Cumprod", label, vals, lambda L, x: x.cumprod(1), HALF)
    case("Tril", label, vals, lambda L, x: x.tril(1), HALF)
    case("Triu", label, vals, lambda L, x: x.triu(-1), HALF)
    case("Einsum", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0] * 0.5],
         lambda L, a, b: L.lib.einsum("ij,kj->ik", a, b), HALF)
    case("Einsum", label + "_trace", lambda dt, v=vals: [v(dt)[0][:, :2].copy()],
         lambda L, a: L.lib.einsum("ii->", a), HALF)
case("Cumprod", "zeros", lambda dt: [arr([[0.0, 2.0, 0.0, 3.0], [1.5, fi(dt).tiny, 0.0, -2.0]],
                                         dt)], lambda L, x: x.cumprod(1), HALF)
for vals, label in ((near_tiny, "near_tiny"), (lambda dt: [rand((3, 4), dt, 4, 1e30)], "1e30"),
                    (lambda dt: [rand((3, 4), dt, 4, 1e-30)], "1e-30")):
    case("SingularValues", label, vals, lambda L, x: L.lib.linalg.svdvals(x), ALL)


# ------------------------------------------------------------------ the tail of PyTorch's ops
# (elementwise_math, reduce_extra, distance, indexing, scatter)
def in_unit(dt):
    """Values in and at the ends of (-1, 1), the domain of asin, acos and erfinv."""
    return [arr([[0.0, 0.5, -0.999, 1.0], [-1.0, fi(dt).tiny, 0.25, -0.75]], dt)]


for vals, label in ((near_max, "near_max"), (near_tiny, "near_tiny"), (infs, "inf_nan"),
                    (in_f16_range, "f16_65504")):
    for op, name in (("log10", "Log10"), ("log2", "Log2"), ("log1p", "Log1p")):
        case(name, label, lambda dt, v=vals: [np.abs(v(dt)[0])],
             lambda L, x, op=op: getattr(x, op)(), HALF)
    for op, name in (("expm1", "Expm1"), ("exp2", "Exp2"), ("erf", "Erf"), ("tan", "Tan"),
                     ("atan", "Atan"), ("sinh", "Sinh"), ("cosh", "Cosh"), ("floor", "Floor"),
                     ("ceil", "Ceil"), ("round", "Round"), ("trunc", "Trunc"), ("sign", "Sign"),
                     ("frac", "Frac"), ("nan_to_num", "NanToNum")):
        case(name, label, vals, lambda L, x, op=op: getattr(x, op)(), HALF)
    case("Round", label + "_decimals", vals, lambda L, x: x.round(decimals=2), HALF)
    for op, name in (("atan2", "Atan2"), ("hypot", "Hypot"), ("logaddexp", "LogAddExp"),
                     ("remainder", "Remainder"), ("fmod", "Fmod")):
        case(name, label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][:, ::-1].copy()],
             lambda L, a, b, op=op: getattr(L.lib, op)(a, b), HALF)
    case("Xlogy", label, lambda dt, v=vals: [v(dt)[0], np.abs(v(dt)[0][:, ::-1])],
         lambda L, a, b: L.lib.xlogy(a, b), HALF)
    case("FloorDivide", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][:, ::-1].copy()],
         lambda L, a, b: a * 0.0 + L.lib.floor_divide(a.detach(), b.detach()), HALF)
    case("Lerp", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][::-1].copy(), rand((2, 4), dt)],
         lambda L, a, b, w: L.lib.lerp(a, b, w), HALF)
    case("Prod", label, vals, lambda L, x: x.prod(1), HALF)
    case("MedianDim", label, vals, lambda L, x: x.median(1)[0], HALF)
    case("Median", label, vals, lambda L, x: x.median(), HALF)
    case("Cdist", label, lambda dt, v=vals: [v(dt)[0].T.copy(), v(dt)[0][:, :3].T.copy()],
         lambda L, a, b: L.lib.cdist(a, b), HALF)
    case("Cdist", label + "_p1", lambda dt, v=vals: [v(dt)[0].T.copy(), v(dt)[0][:, :3].T.copy()],
         lambda L, a, b: L.lib.cdist(a, b, 1.0), HALF)
    case("Flip Roll", label, vals, lambda L, x: x.flip(1).roll(1, 0) * 1.0, HALF)
    case("Diagonal DiagEmbed", label, vals,
         lambda L, x: L.lib.diag_embed(x.diagonal(1) * 1.0), HALF)
    case("Unfold UnfoldBackward", label + "_double_backward", vals,
         lambda L, x: _grad_of(L, (x.unfold(1, 2, 1) ** 2).sum(), x), HALF)
    case("Scatter ScatterAdd", label, lambda dt, v=vals: [v(dt)[0], v(dt)[0][::-1].copy()],
         lambda L, x, s: x.scatter(1, L.lib.tensor(np.array([[1, 0, 3, 2], [0, 2, 1, 3]])), s)
         .scatter_add(0, L.lib.tensor(np.array([[1, 1, 0, 0]])), s[:1] * 1.0), HALF)
for vals, label in ((in_unit, "unit_interval"), (infs, "inf_nan")):
    for op, name in (("asin", "Asin"), ("acos", "Acos"), ("erfinv", "Erfinv")):
        case(name, label, vals, lambda L, x, op=op: getattr(x, op)(), HALF)
case("Prod", "zeros", lambda dt: [arr([[0.0, 2.0, 0.0, 3.0], [1.5, fi(dt).tiny, 0.0, -2.0]],
                                      dt)], lambda L, x: x.prod(1), HALF)
case("Cdist", "zero_distance", lambda dt: [arr([[1.0, 2.0], [3.0, -1.0]], dt),
                                           arr([[1.0, 2.0], [0.0, 0.0]], dt)],
     lambda L, a, b: L.lib.cdist(a, b), HALF)


# ------------------------------------------------------------------ documented policies
# (op, case) -> what retrograd returns where PyTorch's entry is nan/inf. Entries PyTorch
# gives finite are still compared; the non-finite ones are replaced by this policy.
_ALL_NEG_INF = ("a row of all -inf (a fully masked row) is defined: softmax 0, log_softmax -inf, "
                "logsumexp -inf, cross_entropy +inf (0 when ignored), each with a zero "
                "gradient; torch gives NaN")
_POS_INF = ("a +inf logit: softmax is NaN at it and 0 elsewhere (exp(x - inf) = 0), "
            "log_softmax -inf elsewhere; torch gives NaN for the whole row")
_WIDER = ("torch overflows (inf or NaN) in an intermediate, retrograd does not: x ** 2's "
          "gradient 2 x g, tanh-gelu's gradient, a variance or norm recomputed with a "
          "power-of-two scale, a "
          "normalization of values near finfo.max; retrograd's value is the finite true one")
_MEAN = ("a 'mean' loss whose per-sample losses are finite but sum beyond finfo.max is "
         "sum(loss / normalizer), the finite true mean; torch's sum overflows to inf")
_KL_ZERO = ("kl_div: a target probability of 0 contributes 0 whatever the input (torch's "
            "0 * -inf is NaN), and its target gradient is the one-sided limit -inf * dL/dy "
            "(0 with log_target; torch: NaN); after a fully masked row's log_softmax (-inf, "
            "see above) the terms of positive targets are +inf, not NaN")
POLICY = {
    **{(op, "all_neg_inf_row"): _ALL_NEG_INF
       for op in ("Softmax", "LogSoftmax", "LogSumExp", "CrossEntropy", "CrossEntropyProbs",
                  "NllLoss", "Sum", "Mean", "Var", "Std", "Norm", "MaxDim", "MinDim", "Amax",
                  "Amin")},
    **{key: _ALL_NEG_INF for key in (
        ("CrossEntropy", "all_neg_inf_row_sum"), ("CrossEntropy", "all_neg_inf_row_smoothing"),
        ("CrossEntropy", "all_neg_inf_row_ignored"), ("NllLoss", "all_neg_inf_row_ignored"),
        ("Norm", "all_neg_inf_row_p1"), ("Norm", "all_neg_inf_row_pinf"))},
    **{key: _WIDER for key in (
        ("PowScalar", "near_max"), ("PowScalar", "f16_65504"), ("Gelu", "near_max"),
        ("Gelu", "near_max_tanh"), ("Gelu", "pm1e+30"),
        ("Var", "near_max"), ("Std", "near_max"), ("Norm", "near_max"), ("Norm", "pm1e+30"),
        ("LayerNorm", "near_max"), ("GroupNorm", "near_max"), ("LayerNorm", "huge"),
        ("GroupNorm", "huge"), ("LayerNorm", "eps_below_tiny_nonconstant"),
        ("GroupNorm", "eps_below_tiny_nonconstant"), ("RMSNorm", "eps_below_tiny_nonconstant"))},
    **{key: _MEAN for key in (
        ("CrossEntropy", "near_max"), ("CrossEntropy", "near_max_smoothing"),
        ("NllLoss", "near_max"))},
    ("LayerNorm", "eps_below_tiny"): ("eps 1e-320 on a zero-variance row: rstd = 1e160 and "
                                      "dL/dx = rstd (g - mean(g)), finite; torch's gradient "
                                      "is NaN on some such rows (an intermediate overflows)"),
    ("Gelu", "inf_nan"): "gelu(+inf) = +inf and gelu(-inf) = 0 (the limits); torch gives NaN",
    **{("KlDiv", label + kind): _KL_ZERO
       for label in ("pm1e4", "pm1e30", "neg_inf", "all_neg_inf_row")
       for kind in ("", "_log_target", "_target_grad")},
    ("BinaryCrossEntropy", "sigmoid_of_pm1e4"): ("torch's float16 binary_cross_entropy "
                                                 "rounds its 1e-12 clamp to 0 (0 / 0 = NaN); "
                                                 "retrograd computes it in float32"),
    ("Softmax", "pos_inf_entry"): _POS_INF,
    ("Softmax", "inf_nan"): _POS_INF,
    ("LogSoftmax", "inf_nan"): _POS_INF,
    # the tail of PyTorch's ops: a^2 + b^2, a * dL/dy or a product overflow in torch only
    **{key: _WIDER for key in (
        ("Atan2", "near_max"), ("Atan2", "f16_65504"), ("Hypot", "near_max"),
        ("Hypot", "f16_65504"), ("Prod", "f16_65504"))},
    ("Cdist", "near_max"): ("a distance that overflows to inf: its gradient is dL/dy / inf = 0 "
                            "(retrograd), inf / inf = NaN (torch)"),
    ("Hardswish", "near_max"): ("hardswish(x) for x >= 3 is x: torch's x * 6 / 6 overflows to "
                                "inf near finfo.max, retrograd's x * (6 / 6) does not"),
}


# ------------------------------------------------------------------ the check
class _Ran(OpObserver):
    def __init__(self):
        self.names = set()

    def after_forward(self, op, node, inputs, outputs, module_path):
        self.names.add(op.__name__)


def _run(L, c, arrays, dtype):
    ts = []
    for a in arrays:
        if L is RG:
            ts.append(rg.tensor(a, requires_grad=True))
        else:
            ts.append(torch.tensor(a, requires_grad=True))
    out = c.fn(L, *ts)
    outs = list(out) if isinstance(out, tuple) else [out]
    loss = None
    for i, o in enumerate(outs):
        cot = rand(tuple(o.shape), dtype, 100 + i).astype(arrays[0].dtype)
        term = (o * L.lib.tensor(cot)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    values = [o.detach().numpy().astype(np.float64) for o in outs]
    grads = [t.grad.numpy().astype(np.float64) if t.grad is not None else np.zeros(a.shape)
             for t, a in zip(ts, arrays)]
    return values, grads


@np.errstate(all="ignore")
def _compare(what, got, want, dtype, policy, case_scale, inexact=False):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != torch {want.shape}"
    finite = np.isfinite(want)
    problems = []
    leak = finite & ~np.isfinite(got)
    if leak.any():
        problems.append(f"{what} leaks non-finite where torch is finite at "
                        f"{np.argwhere(leak).tolist()}: got {got[leak]}, torch {want[leak]}")
    scale = case_scale    # the largest finite magnitude of the case's outputs and gradients
    tol = RTOL[dtype] * (np.abs(want) + scale * (10 if dtype == F16 else 1))
    off = finite & np.isfinite(got) & ~(np.abs(got - want) <= tol) & (not inexact)
    if off.any():
        problems.append(f"{what} differs from torch at {np.argwhere(off).tolist()}: got "
                        f"{got[off]}, torch {want[off]}")
    same = (np.isnan(want) & np.isnan(got)) | (got == want)
    # a documented policy lets retrograd give a defined value (finite or +-inf) where torch's
    # is nan or inf, never NaN instead
    bad = ~finite & ~same & (True if policy is None else np.isnan(got))
    if bad.any():
        problems.append(f"{what} differs where torch is non-finite "
                        f"({'no policy' if policy is None else 'policy: finite or equal'}) at "
                        f"{np.argwhere(bad).tolist()}: got {got[bad]}, torch {want[bad]}")
    return problems


# leaks found by the audit and not fixed: (op, case) -> (dtypes, reason); strict xfails
# (none left: every leak the audit found is fixed)
XFAIL = {}


# cases where torch's finite value is the inexact one (checked with a float64 reference in
# tests/ops/test_numerics.py): only finiteness is compared, so a NaN/Inf leak still fails
TORCH_INEXACT = {
    ("Norm", "near_tiny"): ((F32, F64), "torch's 2-norm of values near finfo.tiny underflows "
                                        "to 0; retrograd's power-of-two scaled norm is exact"),
    ("Norm", "pm1e+30"): ((F32,), "torch's float32 2-norm of 1e30s overflows (inf, gradient "
                                  "0); retrograd's scaled norm and gradient are exact"),
    ("Std", "near_tiny"): ((F64,), "torch's float64 std of values near finfo.tiny underflows to "
                                   "0 (gradient 0); retrograd's scaled std is exact"),
    ("BatchNorm", "near_max"): ((F64,), "torch's float64 variance of values near finfo.max / 8 "
                                        "overflows: rstd 0, y = bias, weight gradient 0; "
                                        "retrograd's scaled statistics are exact (checked "
                                        "against fractions: relative error < 2e-15)"),
    ("GroupNorm", "near_max"): ((F64,), "as BatchNorm"),
    ("BatchNormRelu", "near_max"): ((F64,), "as BatchNorm"),
    ("RMSNorm", "near_max"): ((F64,), "torch's float64 mean square of values near finfo.max / 8 "
                                      "overflows: y = 0, gradients 0; retrograd's scaled one is "
                                      "exact (tests/ops/test_rms_norm.py checks huge rows)"),
    ("Norm", "near_max"): ((F32, F64), "torch's 2-norm of a row of +-finfo.max / 2 overflows "
                                       "(inf, gradient 0); retrograd's scaled norm and "
                                       "gradient are exact"),
    ("ScaledDotProductAttention", "logits_1e30"): (ALL, "scores of 1e30: the softmax is "
                                                        "one-hot, the exact query gradient 0; "
                                                        "torch's is rounding noise times 1e15"),
    ("MemoryEfficientAttention", "logits_1e30"): (ALL, "as ScaledDotProductAttention"),
    **{("Hardsigmoid", label): ((F64,), "torch's float64 hardsigmoid gradient multiplies by "
                                        "1/6 rounded to float32 (a relative error of 3e-8); "
                                        "retrograd's is dL/dy / 6")
       for label in ("near_max", "inf_nan", "f16_65504", "pm1e4")},
}


def _marks(c, dt):
    dts, reason = XFAIL.get((c.ops[0], c.name), ((), ""))
    return pytest.mark.xfail(strict=True, reason=reason) if dt in dts else ()


PARAMS = [pytest.param(c, dt, id=f"{c.ops[0].lower()}-{c.name}-{dt.name}", marks=_marks(c, dt))
          for c in CASES for dt in c.dtypes]


@pytest.mark.parametrize("c, dtype", PARAMS)
@np.errstate(all="ignore")    # building inputs near finfo.max overflows on purpose
def test_stability(c, dtype):
    arrays = [np.asarray(a, dtype) for a in c.make(dtype)]
    torch.manual_seed(0)
    try:
        if c.oracle64 and dtype != F64:
            want_values, want_grads = _run(TH, c, [a.astype(F64) for a in arrays], dtype)
            want_values = [w.astype(dtype).astype(F64) for w in want_values]
            want_grads = [w.astype(dtype).astype(F64) for w in want_grads]
        else:
            want_values, want_grads = _run(TH, c, arrays, dtype)
    except RuntimeError as err:      # no CPU kernel for this dtype in torch
        if dtype == F16 and ("Half" in str(err) or "half" in str(err)):
            pytest.skip(f"torch has no CPU float16 kernel here: {err}")
        raise
    ran = _Ran()
    with observe(ran):
        got_values, got_grads = _run(RG, c, arrays, dtype)
    missing = set(c.ops) - ran.names
    assert not missing, f"case {c.name} never ran {missing} (ran {sorted(ran.names)})"
    policy = POLICY.get((c.ops[0], c.name))
    problems = []
    scale = max(np.abs(w[np.isfinite(w)]).max(initial=0.0) for w in want_values + want_grads)
    inexact = dtype in TORCH_INEXACT.get((c.ops[0], c.name), ((), ""))[0]
    for i, (g, w) in enumerate(zip(got_values, want_values)):
        problems += _compare(f"output {i}", g, w, dtype, policy, scale, inexact)
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        problems += _compare(f"grad of input {i}", g, w, dtype, policy, scale, inexact)
    assert not problems, f"{c.ops[0]} / {c.name} / {dtype.name}:\n  " + "\n  ".join(problems)


def test_every_op_is_audited():
    audited = {op for c in CASES for op in c.ops}
    names = {f.__name__ for f in OPS}
    assert len(names) > 50
    missing = names - audited - set(EXEMPT)
    assert not missing, f"ops without a stability case: {sorted(missing)}"
    assert not (set(EXEMPT) - names), "an exemption names an op that no longer exists"
    assert not (audited - names), "a case names an op that does not exist"


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_all_neg_inf_rows_have_the_documented_value_and_zero_gradient(dtype):
    rows = all_neg_inf_row(dtype)[0]
    target = rg.tensor(np.array([1, 2, 3]))
    for name, fn, dead in (
            ("softmax", lambda x: F.softmax(x, dim=1), 0.0),
            ("log_softmax", lambda x: F.log_softmax(x, dim=1), -INF),
            ("logsumexp", lambda x: x.logsumexp(1, keepdim=True), -INF),
            ("cross_entropy", lambda x: F.cross_entropy(x, target, reduction="none")[:, None],
             INF)):
        x = rg.tensor(rows, requires_grad=True)
        y = fn(x)
        (y * rg.tensor(rand(tuple(y.shape), dtype, 1))).sum().backward()
        assert np.all(y.detach().numpy()[0] == dead), name
        assert not np.isnan(y.detach().numpy()).any(), name
        assert np.all(x.grad.numpy()[0] == 0), name
        assert np.all(np.isfinite(x.grad.numpy())), name
    x = rg.tensor(rows, requires_grad=True)
    loss = F.cross_entropy(x, rg.tensor(np.array([-100, 2, 3])))   # the dead row ignored
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(x.grad.numpy()[0] == 0)
