"""The compiled causal-mask + row softmax of attention (retrograd/_numba/attention.py)
against the NumPy path of retrograd/ops/attention.py and PyTorch: the attention output,
weights and every gradient, with boolean and float masks, fully masked rows, saturated rows
and NaN."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd import _fast

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                    "pip install -e '.[test,fast]' installs it")


def _run(lib, q, k, v, mask, causal, grad):
    tq, tk, tv = (lib.tensor(a, requires_grad=True) for a in (q, k, v))
    tmask = None if mask is None else lib.tensor(mask)
    out = lib.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask,
                                                         is_causal=causal)
    out.backward(lib.tensor(grad))
    return [a.detach().numpy() for a in (out, tq.grad, tk.grad, tv.grad)]


def _inputs(shape_q, shape_k, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal(shape_q) * scale).astype(np.float32)
    k = (rng.standard_normal(shape_k) * scale).astype(np.float32)
    v = rng.standard_normal(shape_k).astype(np.float32)
    grad = rng.standard_normal(shape_q[:-1] + shape_k[-1:]).astype(np.float32)
    return q, k, v, grad


MASKS = {
    "none": lambda rows, s: None,
    "bool": lambda rows, s: np.random.default_rng(1).random((rows, s)) > 0.3,
    "float": lambda rows, s: np.random.default_rng(2).standard_normal((rows, s)).astype(np.float32),
    "row fully masked": lambda rows, s: np.vstack([np.zeros((1, s), bool), np.ones((rows - 1, s),
                                                                                bool)]),
}


# PyTorch takes a mask or is_causal, not both
@pytest.mark.parametrize("mask_name, causal", [(name, False) for name in MASKS] + [("none",
                                                                                   True)])
@pytest.mark.parametrize("scale", [1.0, 30.0])     # 30: saturated rows (one weight 1)
def test_compiled_softmax_equals_numpy_path_and_pytorch(mask_name, causal, scale,
                                                        monkeypatch):
    q, k, v, grad = _inputs((2, 3, 9, 8), (2, 3, 11, 8), scale=scale)
    mask = MASKS[mask_name](9, 11)
    fast = _run(rg, q, k, v, mask, causal, grad)
    monkeypatch.setitem(_fast._MODULES, "attention", None)
    reference = _run(rg, q, k, v, mask, causal, grad)
    monkeypatch.undo()
    oracle = _run(torch, q, k, v, mask, causal, grad)
    for got, path, expected in zip(fast, reference, oracle):
        # rounding of P (one float32 ulp of exp) grows with |q| and |k| in dL/dq and dL/dk
        atol = 1e-5 * scale * max(1.0, np.abs(expected).max())
        np.testing.assert_allclose(got, path, rtol=2e-5, atol=atol)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=atol)


def test_weights_rows_sum_to_one_and_nan_spreads_as_in_numpy_path(monkeypatch):
    q, k, v, _ = _inputs((1, 1, 6, 4), (1, 1, 6, 4))
    q[0, 0, 2, 1] = np.nan

    from retrograd.ops.attention import ScaledDotProductAttention

    def run(compiled):
        if not compiled:
            monkeypatch.setitem(_fast._MODULES, "attention", None)
        out, p = ScaledDotProductAttention.apply(rg.tensor(q), rg.tensor(k), rg.tensor(v),
                                                 None, scale=0.5, causal=True)
        monkeypatch.undo()
        return out.numpy(), p.numpy()

    fast, reference = run(True), run(False)
    for got, expected in zip(fast, reference):
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(expected), rtol=1e-6,
                                   atol=1e-7)
    rows = fast[1][0, 0][~np.isnan(fast[1][0, 0]).any(axis=1)]
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-6)
