"""The compiled attention row kernels (retrograd/_numba/attention.py) against the NumPy
reference path of retrograd/ops/attention.py and against PyTorch, in float32: the weights,
the output and every gradient of scaled_dot_product_attention without a mask array, causal
or not, with L = S, L < S and L > S (top-left causal alignment), batched and unbatched,
rows whose largest weight is exactly 1 (the saturated rows), NaN and inf in the inputs,
dropout; and that the kernels are taken exactly where they apply.

Tolerances: relative 1e-5 with an absolute 1e-6 times the largest |value| (exp32 is one
float32 ulp from np.exp, and the kernels sum in float64 where the reference sums in float32).
"""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast
from retrograd.ops.attention import ScaledDotProductAttention
from tests._numba.conftest import count_calls

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                    "pip install -e '.[test,fast]' installs it")

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")

FAMILY = "attention"
F32 = np.float32


@pytest.fixture
def spy(kernels, monkeypatch):
    """Counts the calls of the compiled kernels' entry points."""
    return count_calls(kernels, monkeypatch, ("masked_softmax_", "softmax_grad_"))


def _inputs(q_shape, k_shape, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal(q_shape) * scale).astype(F32)
    k = (rng.standard_normal(k_shape) * scale).astype(F32)
    v = rng.standard_normal(k_shape[:-1] + (5,)).astype(F32)
    return q, k, v


def _run(q, k, v, causal, seed=7):
    """(P, O, dL/dq, dL/dk, dL/dv) of the op with a random output gradient."""
    tensors = [rg.tensor(a, requires_grad=True) for a in (q, k, v)]
    out, weights = ScaledDotProductAttention.apply(*tensors, None, scale=0.5, causal=causal)
    grad = np.random.default_rng(seed).standard_normal(out.shape).astype(F32)
    out.backward(rg.tensor(grad))
    return [weights.detach().numpy(), out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def _reference(monkeypatch, *args):
    with monkeypatch.context() as m, np.errstate(all="ignore"):
        m.setitem(_fast._MODULES, "attention", None)
        return _run(*args)


def _assert_close(got, expected, what):
    for name, a, b in zip(("P", "O", "dq", "dk", "dv"), got, expected):
        assert a.shape == b.shape and a.dtype == b.dtype, (what, name)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{what} {name}")
        ok = np.isfinite(b)
        np.testing.assert_array_equal(a[~ok & ~np.isnan(b)], b[~ok & ~np.isnan(b)])
        scale = max(1.0, float(np.abs(b[ok]).max(initial=0.0)))
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=f"{what} {name}")


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("q_shape, k_shape", [
    ((2, 3, 64, 8), (2, 3, 64, 8)),        # the benchmark's layout, smaller
    ((4, 7, 6), (4, 7, 6)),                # one batch axis
    ((5, 3), (9, 3)),                      # unbatched, L < S
    ((2, 9, 4), (2, 5, 4)),                # L > S: the last queries see every key
    ((1, 1, 1, 2), (1, 1, 1, 2)),
    ((2, 3, 70), (2, 100, 70))])           # rows longer than one vector loop
def test_compiled_attention_matches_the_reference_path(q_shape, k_shape, causal, spy,
                                                       monkeypatch):
    q, k, v = _inputs(q_shape, k_shape, seed=sum(q_shape))
    got = _run(q, k, v, causal)
    assert spy == {"masked_softmax_": 1, "softmax_grad_": 1}
    _assert_close(got, _reference(monkeypatch, q, k, v, causal), f"{q_shape} {k_shape}")


@pytest.mark.parametrize("causal", [True, False])
def test_compiled_attention_matches_torch(causal, kernels):
    q, k, v = _inputs((3, 4, 33, 16), (3, 4, 33, 16), seed=1)
    grad = np.random.default_rng(2).standard_normal((3, 4, 33, 5)).astype(F32)
    ours = [rg.tensor(a, requires_grad=True) for a in (q, k, v)]
    F.scaled_dot_product_attention(*ours, is_causal=causal).backward(rg.tensor(grad))
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=causal).backward(
        torch.tensor(grad))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_saturated_rows_keep_a_zero_score_gradient(spy, monkeypatch):
    """Scores 1e4 apart make rows of weights exactly one-hot: dL/dS must be exactly 0 there
    (the reference's exact rowsum), so dL/dq is exactly 0 on those rows."""
    q, k, v = _inputs((2, 6, 4), (2, 6, 4), seed=3)
    q[:, :3] *= 1e3
    k *= 10.0
    got = _run(q, k, v, False)
    expected = _reference(monkeypatch, q, k, v, False)
    saturated = (np.max(expected[0], axis=-1) == 1.0) & (np.sum(expected[0] != 0, axis=-1) == 1)
    assert saturated.sum() >= 3
    assert np.all(got[2][saturated] == 0.0) and np.all(expected[2][saturated] == 0.0)
    _assert_close(got, expected, "saturated")


@pytest.mark.parametrize("special", [np.nan, -np.nan, np.inf, -np.inf])
def test_nan_and_inf_inputs_give_the_reference_pattern(special, spy, monkeypatch):
    q, k, v = _inputs((2, 5, 3), (2, 5, 3), seed=4)
    q[0, 2, 1] = special
    k[1, 3, 0] = special
    for causal in (True, False):
        got = _run(q, k, v, causal)
        _assert_close(got, _reference(monkeypatch, q, k, v, causal), f"{special} {causal}")


def test_dropout_takes_the_kernels_and_keeps_the_reference_gradient(spy, monkeypatch):
    q, k, v = _inputs((2, 8, 4), (2, 8, 4), seed=5)
    results = []
    for modules in ({}, {"attention": None}):
        rg.manual_seed(3)
        with monkeypatch.context() as m:
            for family, module in modules.items():
                m.setitem(_fast._MODULES, family, module)
            tensors = [rg.tensor(a, requires_grad=True) for a in (q, k, v)]
            out = F.scaled_dot_product_attention(*tensors, dropout_p=0.3, is_causal=True)
            out.sum().backward()
            results.append([out.detach().numpy()] + [t.grad.numpy() for t in tensors])
    assert spy == {"masked_softmax_": 1, "softmax_grad_": 1}
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_where_each_kernel_applies(spy, monkeypatch):
    """A mask array takes the reference forward (its dL/dS step is the kernel's: the rule
    does not depend on the mask); float64 takes neither kernel; a gradient reaching the
    weights output takes the reference dL/dS step."""
    q, k, v = _inputs((2, 4, 3), (2, 4, 3), seed=6)
    tensors = [rg.tensor(a, requires_grad=True) for a in (q, k, v)]
    mask = rg.tensor(np.tril(np.ones((4, 4), bool)))
    F.scaled_dot_product_attention(*tensors, attn_mask=mask).sum().backward()
    assert spy == {"masked_softmax_": 0, "softmax_grad_": 1}
    got = [t.grad.numpy() for t in tensors]
    with monkeypatch.context() as m:
        m.setitem(_fast._MODULES, "attention", None)
        again = [rg.tensor(a, requires_grad=True) for a in (q, k, v)]
        F.scaled_dot_product_attention(*again, attn_mask=mask).sum().backward()
    for a, b in zip(got, again):
        np.testing.assert_allclose(a, b.grad.numpy(), rtol=1e-5, atol=1e-6)
    doubles = [rg.tensor(a.astype(np.float64), requires_grad=True) for a in (q, k, v)]
    F.scaled_dot_product_attention(*doubles, is_causal=True).sum().backward()
    assert spy == {"masked_softmax_": 0, "softmax_grad_": 1}
    out, weights = ScaledDotProductAttention.apply(*tensors, None, scale=0.5, causal=True)
    (out.sum() + weights.sum()).backward()
    assert spy == {"masked_softmax_": 1, "softmax_grad_": 1}


def test_heads_of_a_projection_take_the_kernels(spy, monkeypatch):
    """q, k, v as the (N, H, L, d) views a multi-head layer makes of its (N, L, H*d)
    projections: Q * scale is made C-contiguous, so the compiled softmax runs (NumPy keeps a
    view's memory order), with the reference path's result."""
    projection = np.random.default_rng(3).standard_normal((2, 64, 3 * 4 * 8)).astype(F32)
    grad = np.random.default_rng(4).standard_normal((2, 4, 64, 8)).astype(F32)

    def run():
        source = rg.tensor(projection, requires_grad=True)
        q, k, v = (source[..., i * 32:(i + 1) * 32].reshape(2, 64, 4, 8).permute(0, 2, 1, 3)
                   for i in range(3))
        assert not q._data.flags.c_contiguous      # the op sees the views
        F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(rg.tensor(grad))
        return source.grad.numpy()

    got = run()
    assert spy == {"masked_softmax_": 1, "softmax_grad_": 1}
    with monkeypatch.context() as m:
        m.setitem(_fast._MODULES, "attention", None)
        expected = run()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
