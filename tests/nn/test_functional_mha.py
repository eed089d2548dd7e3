"""F.multi_head_attention_forward against torch.nn.functional.multi_head_attention_forward,
called with the same arguments (PyTorch's (L, N, E) layout): outputs, weights and every
gradient (query, key, value, all projection weights and biases, float masks, static keys
and values), float64 finite differences, and argument errors naming the function."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import check_op, randn

E, H, L, S, N = 8, 2, 3, 5, 2

pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")


def _call(fn, separate=False, static=False, need_weights=True, bias_kv=False, zero_attn=False,
          key_padding=False, float_mask=False, average=True):
    """fn(query, key, value, weights..., masks...) calling ``fn`` (ours or torch's) with the
    arguments chosen; every float input is a differentiable input of the check."""
    def run(q, k, v, w_in, b_in, w_q, w_k, w_v, w_out, b_out, bias_k, bias_v, kpm, mask,
            static_k, static_v):
        out, weights = fn(
            q, k, v, E, H, None if separate else w_in, b_in,
            bias_k if bias_kv else None, bias_v if bias_kv else None, zero_attn, 0.0,
            w_out, b_out, training=False, key_padding_mask=kpm if key_padding else None,
            need_weights=need_weights, attn_mask=mask if float_mask else None,
            use_separate_proj_weight=separate, q_proj_weight=w_q if separate else None,
            k_proj_weight=w_k if separate else None, v_proj_weight=w_v if separate else None,
            static_k=static_k if static else None, static_v=static_v if static else None,
            average_attn_weights=average)
        return out if weights is None else (out, weights)
    return run


def _inputs(seed=0):
    keep = np.random.default_rng(seed).random((N, S)) > 0.3
    keep[:, 0] = True
    return (randn(L, N, E, seed=seed), randn(S, N, E, seed=seed + 1),
            randn(S, N, E, seed=seed + 2), randn(3 * E, E, seed=seed + 3) * 0.3,
            randn(3 * E, seed=seed + 4), randn(E, E, seed=seed + 5) * 0.3,
            randn(E, E, seed=seed + 6) * 0.3, randn(E, E, seed=seed + 7) * 0.3,
            randn(E, E, seed=seed + 8) * 0.3, randn(E, seed=seed + 9),
            randn(1, 1, E, seed=seed + 10), randn(1, 1, E, seed=seed + 11), ~keep,
            randn(L, S, seed=seed + 12), randn(N * H, S, E // H, seed=seed + 13),
            randn(N * H, S, E // H, seed=seed + 14))


@pytest.mark.parametrize("options", [
    {}, {"separate": True}, {"need_weights": False}, {"average": False},
    {"bias_kv": True, "zero_attn": True}, {"key_padding": True, "float_mask": True},
    {"static": True}, {"static": True, "key_padding": True},
], ids=lambda o: ",".join(o) or "plain")
def test_matches_torch_outputs_weights_and_every_gradient(options):
    check_op(_call(F.multi_head_attention_forward, **options),
             _call(TF.multi_head_attention_forward, **options), *_inputs(), gradcheck=False)


def test_float64_finite_differences_through_the_engine():
    options = {"separate": True, "bias_kv": True, "key_padding": True, "float_mask": True}
    check_op(_call(F.multi_head_attention_forward, **options),
             _call(TF.multi_head_attention_forward, **options), *_inputs(seed=3),
             gradcheck=True)


def test_batch_first_gives_the_transposed_result():
    q, k, v, w_in, b_in = (rg.tensor(a) for a in _inputs()[:5])
    w_out, b_out = rg.tensor(_inputs()[8]), rg.tensor(_inputs()[9])
    args = (E, H, w_in, b_in, None, None, False, 0.0, w_out, b_out)
    seq_first, _ = F.multi_head_attention_forward(q, k, v, *args)
    batch_first, _ = F.multi_head_attention_forward(q.transpose(0, 1), k.transpose(0, 1),
                                                    v.transpose(0, 1), *args, batch_first=True)
    np.testing.assert_allclose(batch_first.transpose(0, 1).numpy(), seq_first.numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("change, error, message", [
    (dict(embed_dim_to_check=6), ValueError,
     r"^multi_head_attention_forward: expected query with last dim embed_dim=6"),
    (dict(num_heads=3), ValueError, r"embed_dim must be divisible by num_heads, got "
                                    r"embed_dim=8 and num_heads=3"),
    (dict(static_k=rg.zeros(4, S, 3)), ValueError,
     r"expected static_k of shape \(N \* num_heads, S, head_dim\) = \(4, S, 4\), got "
     r"\(4, 5, 3\)"),
    (dict(dropout_p=1.5), ValueError, r"dropout probability has to be between 0 and 1, but "
                                      r"got 1.5"),
    (dict(in_proj_weight=rg.zeros(5, 8)), ValueError,
     r"in_proj_weight must be a \(3E, E\) Tensor, got \(5, 8\)"),
])
def test_errors_name_the_function_and_the_shapes(change, error, message):
    q, k, v, w_in, b_in = (rg.tensor(a) for a in _inputs()[:5])
    kwargs = dict(query=q, key=k, value=v, embed_dim_to_check=E, num_heads=H,
                  in_proj_weight=w_in, in_proj_bias=b_in, bias_k=None, bias_v=None,
                  add_zero_attn=False, dropout_p=0.0, out_proj_weight=rg.zeros(E, E),
                  out_proj_bias=None)
    kwargs.update(change)
    with pytest.raises(error, match=message):
        F.multi_head_attention_forward(**kwargs)


def test_torch_reference_really_differs_when_an_option_is_dropped():
    """The check can fail: leaving out the key padding mask changes torch's result."""
    inputs = [torch.tensor(a) for a in _inputs()]
    with_mask = _call(TF.multi_head_attention_forward, key_padding=True)(*inputs)[0]
    without = _call(TF.multi_head_attention_forward)(*inputs)[0]
    assert not torch.allclose(with_mask, without)


def _self_attention(lib, x, w_in, b_in, w_out, b_out, key=None, value=None):
    fn = F.multi_head_attention_forward if lib is rg else TF.multi_head_attention_forward
    out, _ = fn(x, x if key is None else key, x if value is None else value, E, H, w_in, b_in,
                None, None, False, 0.0, w_out, b_out, training=False, need_weights=False)
    return out


def test_self_attention_runs_one_packed_projection_with_torchs_gradients():
    """query is key is value: one (3E, E) Linear node split in three (a Split node), and the
    same outputs and gradients as PyTorch and as the three-product path (equal tensors
    passed as three objects)."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s) for s in ((L, N, E), (3 * E, E), (3 * E,), (E, E), (E,))]
    grad = rng.standard_normal((L, N, E))
    results = []
    for lib, distinct in ((rg, False), (rg, True), (torch, False)):
        tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
        extra = [tensors[0].clone(), tensors[0].clone()] if distinct else []
        out = _self_attention(lib, *tensors, *extra)
        out.backward(lib.tensor(grad))
        if lib is rg and not distinct:
            names = []
            node = out.grad_fn
            stack, seen = [node], set()
            while stack:
                node = stack.pop()
                if node is None or node in seen:
                    continue
                seen.add(node)
                names.append(node.name())
                stack.extend(e[0] for e in node.next_functions if e is not None)
            assert names.count("LinearBackward") == 2 and "SplitBackward" in names
        results.append([out.detach().numpy()] + [t.grad.numpy() for t in tensors])
    for ours in results[:2]:
        for a, b in zip(ours, results[2]):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
