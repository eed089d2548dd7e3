"""Numerics at the edges, swept across the ops: every reduction's backward at a zero of the
function, every normalization near each dtype's largest and smallest magnitudes, attention
with a saturated softmax, and no NumPy warning from any op on pathological inputs. Compared
with PyTorch where PyTorch is right, and with a float64 reference where it is not (PyTorch's
float32 layer norm of 1e20s is nan; the true answer is finite)."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F

INF = float("inf")


def _pair(data, dtype=np.float64):
    data = np.asarray(data, dtype=dtype)
    return (rg.tensor(data, requires_grad=True),
            torch.tensor(data, requires_grad=True))


def _backward_both(rg_fn, torch_fn, data, dtype=np.float64, seed=0):
    """Outputs and input gradients of both libraries for one random cotangent."""
    x, tx = _pair(data, dtype)
    y, ty = rg_fn(x), torch_fn(tx)
    cotangent = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(rg.tensor(cotangent))
    ty.backward(torch.tensor(cotangent))
    rg_grad = x.grad.numpy() if x.grad is not None else np.zeros_like(data, dtype=dtype)
    torch_grad = tx.grad.numpy() if tx.grad is not None else np.zeros_like(data, dtype=dtype)
    return y.detach().numpy(), ty.detach().numpy(), rg_grad, torch_grad


# ---------------------------------------------------------------- reductions at a zero
CONSTANT = np.full((3, 4), 2.0)
ZERO = np.zeros((3, 4))
PADDED = np.array([[0.3, -1.2, 0.8, 2.0], [5.0, 5.0, 5.0, 5.0], [1.1, 0.2, -0.7, 0.4]])

# (id, function of a tensor (either library), input at a zero of the function)
AT_ZERO = [
    ("std of a constant", lambda t: t.std(), CONSTANT),
    ("std along a dim, one constant row", lambda t: t.std(1), PADDED),
    ("std keepdim, correction 0", lambda t: t.std(1, keepdim=True, correction=0), PADDED),
    ("std of a single element, correction 0", lambda t: t.std(correction=0), np.array([3.0])),
    ("var of a constant", lambda t: t.var(), CONSTANT),
    ("norm of zeros", lambda t: t.norm(), ZERO),
    ("norm along a dim, one zero row", lambda t: t.norm(dim=1), PADDED - PADDED * [[0], [1], [0]]),
    ("norm p=1 of zeros", lambda t: t.norm(p=1), ZERO),
    ("norm p=3 of zeros", lambda t: t.norm(p=3), ZERO),
    ("norm p=0.5 with zeros", lambda t: t.norm(p=0.5), np.array([0.0, 1.5, 0.0, -2.0])),
    ("norm p=inf of zeros", lambda t: t.norm(p=INF), ZERO),
    ("norm p=-inf", lambda t: t.norm(p=-INF), np.array([0.0, 1.5, -2.0])),
    ("norm p=0", lambda t: t.norm(p=0), np.array([0.0, 1.5, -2.0])),
    ("sqrt of a sum of squares at 0 (nan, as torch)", lambda t: (t * t).sum().sqrt(), ZERO),
    ("pow 0.5 of a sum of squares at 0 (nan, as torch)", lambda t: (t * t).sum() ** 0.5, ZERO),
    ("x ** 0.5 at 0 (inf, as torch)", lambda t: t ** 0.5, ZERO),
    ("sqrt at 0 (inf, as torch)", lambda t: t.sqrt(), ZERO),
    ("rsqrt at 0", lambda t: t.rsqrt(), np.array([0.0, 4.0])),
    ("sum of zeros", lambda t: t.sum(1), ZERO),
    ("mean of zeros", lambda t: t.mean(0), ZERO),
    ("amax of a constant (ties share)", lambda t: t.amax(1), CONSTANT),
    ("max of a constant", lambda t: t.max(), CONSTANT),
    # logsumexp of a row of -inf: -inf with a zero gradient where torch's is NaN, a
    # documented policy checked in test_stability_audit.py
    ("standardize rows with eps, one padded row",
     lambda t: (t - t.mean(1, keepdim=True)) / (t.std(1, keepdim=True) + 1e-5), PADDED),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name, fn, data", AT_ZERO, ids=[c[0] for c in AT_ZERO])
def test_reduction_backward_at_a_zero_matches_torch(name, fn, data, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and never a NumPy warning on the way
        y, ty, grad, torch_grad = _backward_both(fn, fn, data, dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(y, ty, rtol=tol, atol=tol, err_msg="output")
    np.testing.assert_allclose(grad, torch_grad, rtol=tol, atol=tol, err_msg="gradient")


def test_std_of_a_constant_has_gradient_zero_not_nan():
    """The reported case: x.std().backward() on rg.full((4,), 2.0) gave [nan nan nan nan]."""
    x = rg.full((4,), 2.0, requires_grad=True)
    x.std().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(4))


def test_a_padded_row_does_not_poison_the_other_rows_gradients():
    x = rg.tensor(PADDED, requires_grad=True)
    ((x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5)).pow(2).sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_array_equal(x.grad.numpy()[1], 0.0)


NO_DOF = [((0,), None, 1), ((0,), None, 0), ((0, 3), 0, 1), ((0, 3), 1, 1), ((1,), None, 1),
          ((2,), -1, 2), ((2,), -1, 3), ((3, 1), 1, 1)]


@pytest.mark.parametrize("method", ["var", "std", "mean"])
@pytest.mark.parametrize("shape, dim, correction", NO_DOF, ids=str)
def test_reductions_without_degrees_of_freedom_match_torch(method, shape, dim, correction):
    """inf or nan as PyTorch (also for empty inputs), and where PyTorch warns, a warning that
    names the op; never NumPy's "Mean of empty slice" or "Degrees of freedom <= 0"."""
    data = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) + 1.0
    kw = {} if method == "mean" else {"correction": correction}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y, ty, grad, torch_grad = _backward_both(lambda t: getattr(t, method)(dim, **kw),
                                                 lambda t: getattr(t, method)(dim, **kw),
                                                 data)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(grad, torch_grad)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    ours = [str(w.message) for w in caught if str(w.message).startswith(f"{method}: ")]
    reduced = np.prod([shape[d] for d in range(len(shape)) if dim is None or d == dim % len(
        shape)])
    no_dof = method != "mean" and reduced <= correction
    assert len(ours) == no_dof and all("degrees of freedom <= 0" in m for m in ours)


# ---------------------------------------------------------------- norms at extreme scales
# (dtype, scale of the input, eps): float16 up to its largest values, float32, bfloat16 and
# float64 to 1e20 and 1e-20 (the variance of float32 1e20s overflows; of 1e-20s it is
# subnormal). float16 and bfloat16 are normalized in float32.
BF16 = rg.bfloat16.np
SCALES = [(np.float16, 6e4, 1e-5), (np.float16, 1e-4, 1e-5), (BF16, 1e20, 1e-5),
          (BF16, 1e-20, 0.0), (np.float32, 1e20, 1e-5),
          (np.float32, 1e30, 1e-5), (np.float32, 1e-20, 1e-5), (np.float32, 1e-20, 0.0),
          (np.float32, 1e-30, 1e-5), (np.float64, 1e20, 1e-5), (np.float64, 1e-20, 1e-5),
          (np.float64, 1e200, 1e-5), (np.float64, 1e-200, 0.0)]
SCALE_IDS = [f"{np.dtype(d).name}-{s:g}-eps{e:g}" for d, s, e in SCALES]

# (id, function(input, weight, bias, eps) for either library, input shape, weight shape)
NORMS = [
    ("layer_norm", lambda F_, x, w, b, eps: F_.layer_norm(x, (6,), w, b, eps=eps), (4, 6), (6,)),
    ("layer_norm 2 dims", lambda F_, x, w, b, eps: F_.layer_norm(x, (3, 4), w, b, eps=eps),
     (2, 3, 4), (3, 4)),
    ("group_norm", lambda F_, x, w, b, eps: F_.group_norm(x, 2, w, b, eps=eps), (3, 4, 5), (4,)),
    ("batch_norm training", lambda F_, x, w, b, eps: F_.batch_norm(
        x, None, None, w, b, training=True, eps=eps), (6, 3, 4), (3,)),
]


def _norm_case(shape, weight_shape, dtype, scale, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.uniform(-1.0, 1.0, shape) * scale).astype(dtype)
    x[0, 0] = scale               # the largest magnitude is the scale itself
    w = (rng.uniform(0.5, 1.5, weight_shape)).astype(dtype)
    b = rng.standard_normal(weight_shape).astype(dtype)
    cotangent = rng.standard_normal(shape).astype(dtype)
    return x, w, b, cotangent


def _float64_reference(fn, x, w, b, cotangent, eps, scale):
    """PyTorch in float64 on the same numbers divided by ``scale`` (normalizing is scale
    invariant: norm(x, eps) = norm(x / s, eps / s^2), so even float64 squares of 1e200 stay
    in range), outputs and gradients (dL/dx scaled back by 1 / s). eps / s^2 is kept above 0:
    PyTorch's batch norm refuses eps = 0."""
    u = torch.tensor(x.astype(np.float64) / scale, requires_grad=True)
    tw, tb = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (w, b))
    y = fn(torch.nn.functional, u, tw, tb, max(eps / scale / scale, 1e-300))
    y.backward(torch.tensor(cotangent.astype(np.float64)))
    return [y.detach().numpy(), u.grad.numpy() / scale, tw.grad.numpy(), tb.grad.numpy()]


def _assert_close_to(value, reference, dtype, what):
    rtol = {"float16": 2e-2, "bfloat16": 3e-2, "float32": 2e-5, "float64": 1e-10}[
        np.dtype(dtype).name]
    assert np.all(np.isfinite(value)), f"{what}: not finite"
    np.testing.assert_allclose(value.astype(np.float64), reference, rtol=rtol,
                               atol=rtol * np.max(np.abs(reference)), err_msg=what)


@pytest.mark.parametrize("dtype, scale, eps", SCALES, ids=SCALE_IDS)
@pytest.mark.parametrize("name, fn, shape, weight_shape", NORMS, ids=[n[0] for n in NORMS])
def test_norm_at_extreme_scales_matches_a_float64_reference(name, fn, shape, weight_shape,
                                                           dtype, scale, eps):
    x, w, b, cotangent = _norm_case(shape, weight_shape, dtype, scale)
    reference = _float64_reference(fn, x, w, b, cotangent, eps, scale)
    leaves = [rg.tensor(a, requires_grad=True) for a in (x, w, b)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(F, *leaves, eps)
        y.backward(rg.tensor(cotangent))
    assert y.dtype == leaves[0].dtype
    for value, ref, what in zip([y.detach().numpy()] + [t.grad.numpy() for t in leaves],
                                reference, ["output", "dL/dx", "dL/dweight", "dL/dbias"]):
        _assert_close_to(value, ref, dtype, what)


def test_layer_norm_of_float32_1e20_is_not_zero():
    """The reported case: all zeros, silently (the variance overflowed to inf)."""
    x = (np.random.default_rng(0).standard_normal((2, 8)) * 1e20).astype(np.float32)
    y = F.layer_norm(rg.tensor(x), (8,)).numpy()
    expected = (x - x.astype(np.float64).mean(1, keepdims=True)) / x.astype(np.float64).std(
        1, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_group_norm_of_float32_1e20_is_not_zero():
    x = (np.random.default_rng(1).standard_normal((2, 4, 3)) * 1e20).astype(np.float32)
    y = F.group_norm(rg.tensor(x), 2).numpy().reshape(2, 2, 6)
    groups = x.astype(np.float64).reshape(2, 2, 6)
    expected = (groups - groups.mean(2, keepdims=True)) / groups.std(2, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_batch_norm_running_variance_records_an_overflowing_variance_as_inf():
    """var of float32 1e20s is 1e40, beyond float32: the running variance says inf, the
    normalized output is still right."""
    x = (np.random.default_rng(2).standard_normal((8, 2)) * 1e20).astype(np.float32)
    running_mean, running_var = rg.zeros(2), rg.ones(2)
    y = F.batch_norm(rg.tensor(x), running_mean, running_var, training=True).numpy()
    assert np.all(np.isfinite(y)) and np.abs(y).max() > 0.5
    assert np.all(np.isinf(running_var.numpy()))
    np.testing.assert_allclose(running_mean.numpy(), 0.1 * x.astype(np.float64).mean(0),
                               rtol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, INF])
def test_norm_of_a_row_with_nan_or_inf_is_nan_in_that_row_only(bad):
    x = np.random.default_rng(3).standard_normal((3, 5)).astype(np.float32)
    x[1, 2] = bad
    y = F.layer_norm(rg.tensor(x), (5,)).numpy()
    assert np.all(np.isnan(y[1]))
    np.testing.assert_allclose(y[[0, 2]], torch.nn.functional.layer_norm(
        torch.tensor(x), (5,)).numpy()[[0, 2]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e20), (np.float32, 1e30),
                                          (np.float32, 1e-20), (np.float64, 1e200),
                                          (np.float32, 1e-40), (np.float64, 1e-300),
                                          (np.float64, 1e307)], ids=str)
@pytest.mark.parametrize("name, fn", [("std", lambda t: t.std(1)),
                                      ("norm", lambda t: t.norm(dim=1)),
                                      ("norm p=3", lambda t: t.norm(p=3, dim=1))],
                         ids=["std", "norm", "norm p=3"])
def test_std_and_norm_are_finite_where_the_answer_is(name, fn, dtype, scale):
    x = (np.random.default_rng(4).standard_normal((3, 5)) * scale).astype(dtype)
    value = fn(rg.tensor(x)).numpy()
    reference = fn(torch.tensor(x.astype(np.float64) / scale)).numpy() * scale
    np.testing.assert_allclose(value, reference, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("name", ["batch_norm", "group_norm"])
def test_float64_batch_and_group_norm_near_max_match_a_scaled_reference(name):
    """Values near finfo.max / 8: the variance overflows float64 (PyTorch then returns the
    bias); normalization is scale-invariant, so x * 2^-1000 (eps negligible) is the
    reference."""
    x = np.random.default_rng(1).standard_normal((2, 4, 3)) * (np.finfo(np.float64).max / 8)
    w, b = np.random.default_rng(2).standard_normal((2, 4)) + [[1.0], [0.0]]

    def run(lib, f, data, eps):
        if name == "batch_norm":
            return f.batch_norm(lib.tensor(data), None, None, lib.tensor(w), lib.tensor(b),
                                training=True, eps=eps)
        return f.group_norm(lib.tensor(data), 2, lib.tensor(w), lib.tensor(b), eps=eps)

    value = run(rg, F, x, 1e-5).numpy()
    reference = run(torch, torch.nn.functional, x * 2.0 ** -1000, 1e-300).numpy()
    np.testing.assert_allclose(value, reference, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- saturated softmax
def _attention_grads(attend, q, k, v, cotangent, dtype):
    leaves = [rg.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v)]
    attend(*leaves).backward(rg.tensor(cotangent.astype(dtype)))
    return [t.grad.numpy() for t in leaves]


ATTENTIONS = [
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v)),
    ("sdpa causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
    ("sdpa additive mask", lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=rg.tensor(np.triu(np.full((5, 6), -1.0), 1), dtype=q.dtype))),
    ("memory efficient", lambda q, k, v: F.memory_efficient_attention(q, k, v, block_size=2)),
    ("memory efficient causal", lambda q, k, v: F.memory_efficient_attention(
        q, k, v, is_causal=True, block_size=4)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("q_scale, k_scale", [(1e30, 1.0), (1e4, 1e4), (1.0, 1e8)], ids=str)
@pytest.mark.parametrize("name, attend", ATTENTIONS, ids=[a[0] for a in ATTENTIONS])
def test_saturated_softmax_gives_exactly_the_gradients_of_torch(name, attend, q_scale,
                                                               k_scale, dtype):
    """When every row of P is one-hot, dL/dS is exactly 0, so dL/dQ and dL/dK are exactly 0
    (they were 1e21 / 5e14 for q * 1e30, and 2e-4 for q, k * 1e4)."""
    rng = np.random.default_rng(5)
    q = rng.standard_normal((2, 3, 5, 4)) * q_scale
    k = rng.standard_normal((2, 3, 6, 4)) * k_scale
    v, cotangent = rng.standard_normal((2, 3, 6, 3)), rng.standard_normal((2, 3, 5, 3))
    grad_q, grad_k, grad_v = _attention_grads(attend, q, k, v, cotangent, dtype)
    np.testing.assert_array_equal(grad_q, 0.0)
    np.testing.assert_array_equal(grad_k, 0.0)
    tq, tk, tv = (torch.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v))
    is_causal = "causal" in name
    mask = torch.tensor(np.triu(np.full((5, 6), -1.0), 1).astype(dtype)) if "mask" in name \
        else None
    torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=mask,
                                                     is_causal=is_causal).backward(
        torch.tensor(cotangent.astype(dtype)))
    np.testing.assert_array_equal(tk.grad.numpy(), 0.0)
    np.testing.assert_allclose(grad_v, tv.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, attend", ATTENTIONS, ids=[a[0] for a in ATTENTIONS])
def test_partly_saturated_rows_keep_every_gradient_right(name, attend):
    """Rows of every kind in one call: saturated (a weight of exactly 1), nearly saturated
    (the other weights below rounding of 1, but not 0) and ordinary, against float64."""
    rng = np.random.default_rng(6)
    q = rng.standard_normal((2, 5, 4)) * np.array([[40.0], [1.0], [15.0], [1.0], [60.0]])
    k, v = rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 6, 3))
    cotangent = rng.standard_normal((2, 5, 3))
    got = _attention_grads(attend, q, k, v, cotangent, np.float32)
    expected = _attention_grads(attend, q, k, v, cotangent, np.float64)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * np.abs(e).max())


def test_multihead_attention_float32_input_gradient_at_scale_1e4():
    """The reported case: off by up to 1.5 where |grad| ~ 1 against float64 (PyTorch 1e-7).
    The scores of inputs at 1e4 are ~1e8 apart, so every row of P was one-hot, and dL/dS
    kept the rounding of rowsum(dO * O), amplified by |K| ~ 1e4 on the way to dL/dx."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 2, 16)) * 1e4
    cotangent = rng.standard_normal((5, 2, 16))
    grads = {}
    for dtype in (rg.float32, rg.float64):
        rg.manual_seed(0)
        layer = rg.nn.MultiheadAttention(16, 4).to(dtype)
        xt = rg.tensor(x, dtype=dtype, requires_grad=True)
        out, _ = layer(xt, xt, xt)
        out.backward(rg.tensor(cotangent, dtype=dtype))
        grads[dtype] = xt.grad.numpy()
    np.testing.assert_allclose(grads[rg.float32], grads[rg.float64], rtol=0,
                               atol=1e-5 * np.abs(grads[rg.float64]).max())


# ---------------------------------------------------------------- no NumPy warnings
PATHOLOGICAL = np.array([0.0, -0.0, INF, -INF, np.nan, 3e38, -3e38, 1e-45, 1.0, -2.5],
                        dtype=np.float32)

# (id, function of one float32 tensor of shape (2, 10)) -- the ops a user reaches first
OPS = [
    ("log", lambda t: t.log()), ("exp", lambda t: t.exp()), ("sqrt", lambda t: t.sqrt()),
    ("rsqrt", lambda t: t.rsqrt()), ("reciprocal", lambda t: t.reciprocal()),
    ("div", lambda t: t / t.flip(1) if hasattr(t, "flip") else t / t[:, ::-1]),
    ("mul", lambda t: t * t), ("add", lambda t: t + t), ("sub", lambda t: t - t),
    ("pow 0.5", lambda t: t ** 0.5), ("pow -1", lambda t: t ** -1.0),
    ("pow tensor", lambda t: t.abs() ** t), ("sin", lambda t: t.sin()), ("cos", lambda t: t.cos()),
    ("tanh", lambda t: t.tanh()), ("sigmoid", lambda t: t.sigmoid()), ("relu", lambda t: t.relu()),
    ("abs", lambda t: t.abs()), ("clamp", lambda t: t.clamp(-1.0, 1.0)),
    ("gelu", lambda t: F.gelu(t)), ("gelu tanh", lambda t: F.gelu(t, approximate="tanh")),
    ("leaky_relu", lambda t: F.leaky_relu(t)), ("softmax", lambda t: t.softmax(1)),
    ("log_softmax", lambda t: t.log_softmax(1)), ("logsumexp", lambda t: t.logsumexp(1)),
    ("sum", lambda t: t.sum()), ("mean", lambda t: t.mean(1)), ("var", lambda t: t.var(1)),
    ("std", lambda t: t.std(1)), ("norm", lambda t: t.norm(dim=1)),
    ("norm p=3", lambda t: t.norm(p=3, dim=1)), ("amax", lambda t: t.amax(1)),
    ("max dim", lambda t: t.max(1)[0]), ("matmul", lambda t: t @ t.T),
    ("linear", lambda t: F.linear(t, t)),
    ("layer_norm", lambda t: F.layer_norm(t, (10,))),
    ("group_norm", lambda t: F.group_norm(t.reshape(1, 2, 10), 1)),
    ("batch_norm", lambda t: F.batch_norm(t, None, None, training=True)),
    ("mse_loss", lambda t: F.mse_loss(t, t.detach() * 0.5)),
    ("cross_entropy", lambda t: F.cross_entropy(t, rg.tensor([1, 3]))),
    ("bce_with_logits", lambda t: F.binary_cross_entropy_with_logits(t, (t.detach() > 0).float())),
    ("conv1d", lambda t: F.conv1d(t.reshape(1, 2, 10), t.reshape(2, 2, 5)[:, :, :3])),
    ("max_pool1d", lambda t: F.max_pool1d(t.reshape(1, 2, 10), 2)),
    ("avg_pool1d", lambda t: F.avg_pool1d(t.reshape(1, 2, 10), 2)),
    ("sdpa", lambda t: F.scaled_dot_product_attention(t.reshape(1, 4, 5), t.reshape(1, 4, 5),
                                                      t.reshape(1, 4, 5))),
    ("memory efficient attention", lambda t: F.memory_efficient_attention(
        t.reshape(1, 4, 5), t.reshape(1, 4, 5), t.reshape(1, 4, 5), block_size=2)),
]


@pytest.mark.parametrize("name, fn", OPS, ids=[o[0] for o in OPS])
def test_no_numpy_warning_leaks_out_of_an_op(name, fn):
    """PyTorch is silent about IEEE exceptions: inf and nan are results, not warnings."""
    x = rg.tensor(np.stack([PATHOLOGICAL, PATHOLOGICAL[::-1]]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(x)
        y.backward(rg.ones(y.shape))


def test_log_of_zero_is_minus_inf_without_a_warning():
    """The reported case: NumPy's 'divide by zero encountered in log' leaked out."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = rg.zeros(2).log()
    np.testing.assert_array_equal(y.numpy(), [-INF, -INF])


def test_the_users_own_numpy_error_state_is_left_alone():
    before = np.geterr()
    with np.errstate(divide="raise"):
        rg.zeros(2).log()
        with pytest.raises(FloatingPointError):
            np.log(np.zeros(2))
    assert np.geterr() == before


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_an_optimizer_step_on_huge_or_inf_gradients_gives_no_numpy_warning(name):
    p = rg.nn.Parameter(rg.ones(3))
    optimizer = getattr(rg.optim, name)([p], lr=0.1)
    p.grad = rg.tensor([INF, 3e38, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer.step()
        optimizer.step()
    assert not np.isfinite(p.detach().numpy()[0])
