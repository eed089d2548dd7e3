"""QK-norm (``qk_norm=True``, retrograd's extension): F.multi_head_attention_forward,
nn.MultiheadAttention and models.gpt's CausalSelfAttention / Block against the same attention
written out in PyTorch with torch.nn.functional.layer_norm on each head's q and k (outputs,
attention weights and every gradient, float64, random cotangents); masks and layouts;
float64 finite differences; state dicts (extra keys only with qk_norm)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradcheck
from retrograd.models.gpt import Block, CausalSelfAttention, GPTConfig
from retrograd.nn import MultiheadAttention
from tests.oracle import GRADCHECK_TOLERANCES, check_op, randn, to_torch
from tests.torch_gpt import TorchAttention, TorchBlock

E, H = 8, 2
D = E // H
EPS = 1e-5


# ---------------------------------------------------------------------------- references
def _torch_mha(q_in, k_in, v_in, w_in, b_in, w_out, b_out, qw, qb, kw, kb, *, batch_first,
               key_padding_mask=None, attn_mask=None):
    """Multi-head attention with per-head LayerNorm on q and k, written out: returns
    (output, attention weights averaged over the heads)."""
    if batch_first:
        q_in, k_in, v_in = (t.transpose(0, 1) for t in (q_in, k_in, v_in))
    length, n, _ = q_in.shape

    def heads(x):  # (T, N, E) -> (N, H, T, d)
        return x.reshape(x.shape[0], n, H, D).permute(1, 2, 0, 3)

    q, k, v = (heads(x @ w_in[i * E:(i + 1) * E].T + b_in[i * E:(i + 1) * E])
               for i, x in enumerate((q_in, k_in, v_in)))
    q = TF.layer_norm(q, (D,), qw, qb, EPS)
    k = TF.layer_norm(k, (D,), kw, kb, EPS)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(attn_mask, -math.inf)
        else:
            scores = scores + attn_mask
    if key_padding_mask is not None:
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], -math.inf)
    weights = torch.softmax(scores, dim=-1)
    out = (weights @ v).permute(2, 0, 1, 3).reshape(length, n, E) @ w_out.T + b_out
    if batch_first:
        out = out.transpose(0, 1)
    return out, weights.mean(dim=1)


def _rg_mha(q, k, v, w_in, b_in, w_out, b_out, qw, qb, kw, kb, *, batch_first,
            key_padding_mask=None, attn_mask=None, need_weights=True):
    out, weights = F.multi_head_attention_forward(
        q, k, v, E, H, w_in, b_in, None, None, False, 0.0, w_out, b_out,
        key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=need_weights,
        batch_first=batch_first, qk_norm=True, q_norm_weight=qw, q_norm_bias=qb,
        k_norm_weight=kw, k_norm_bias=kb)
    return out if weights is None else (out, weights)


def _params(seed=10):
    """in_proj weight/bias, out_proj weight/bias, q_norm weight/bias, k_norm weight/bias: all
    random (a norm weight of 1 and bias of 0 would hide a missing or transposed gradient)."""
    return (randn(3 * E, E, seed=seed) * 0.5, randn(3 * E, seed=seed + 1),
            randn(E, E, seed=seed + 2) * 0.5, randn(E, seed=seed + 3),
            1.0 + 0.3 * randn(D, seed=seed + 4), randn(D, seed=seed + 5) * 0.3,
            1.0 + 0.3 * randn(D, seed=seed + 6), randn(D, seed=seed + 7) * 0.3)


def _inputs(batch_first, n=2, target=3, source=4, seed=0):
    shape = (lambda t: (n, t, E)) if batch_first else (lambda t: (t, n, E))
    return (randn(*shape(target), seed=seed), randn(*shape(source), seed=seed + 1),
            randn(*shape(source), seed=seed + 2))


def _padding_mask(n=2, source=4, seed=3):
    mask = np.random.default_rng(seed).random((n, source)) < 0.4
    mask[:, 0] = False  # no fully masked row (the reference gives NaN there)
    return mask


def _attn_mask(kind, target=3, source=4, seed=4):
    mask = np.random.default_rng(seed).random((target, source)) < 0.4
    mask[:, 0] = False
    if kind == "bool":
        return mask
    values = randn(target, source, seed=seed)
    values[mask] = -np.inf
    return values


# ---------------------------------------------------------------------------- functional
MASKS = [(None, None), ("padding", None), (None, "bool"), (None, "float"),
         ("padding", "bool"), ("padding", "float")]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding, attn", MASKS)
def test_functional_matches_the_written_out_torch_attention(batch_first, padding, attn):
    kpm = _padding_mask() if padding else None
    am = _attn_mask(attn) if attn else None
    masks_rg = dict(key_padding_mask=None if kpm is None else rg.tensor(kpm),
                    attn_mask=None if am is None else rg.tensor(am))
    masks_torch = dict(key_padding_mask=None if kpm is None else to_torch(kpm),
                       attn_mask=None if am is None else to_torch(am))
    check_op(lambda *a: _rg_mha(*a, batch_first=batch_first, **masks_rg),
             lambda *a: _torch_mha(*a, batch_first=batch_first, **masks_torch),
             *_inputs(batch_first), *_params(), gradcheck=False)


def test_functional_without_weights_takes_the_fused_path_and_agrees():
    check_op(lambda *a: _rg_mha(*a, batch_first=True, need_weights=False),
             lambda *a: _torch_mha(*a, batch_first=True)[0],
             *_inputs(True), *_params(), gradcheck=False)


def test_functional_self_attention_and_gradcheck():
    """x is query, key and value at once (three gradient shares), then float64 finite
    differences through the engine on every input and parameter."""
    x = randn(3, 2, E, seed=5)
    check_op(lambda x, *p: _rg_mha(x, x, x, *p, batch_first=False),
             lambda x, *p: _torch_mha(x, x, x, *p, batch_first=False),
             x, *_params(), gradcheck=True)


def test_gradcheck_of_a_tiny_multihead_attention_with_qk_norm():
    """retrograd.autograd.gradcheck on a 4-wide, 2-head layer's computation (its parameters
    passed in as inputs, the norms moved off weight 1, bias 0), with a causal bool mask."""
    rg.manual_seed(0)
    mha = MultiheadAttention(4, 2, batch_first=True, qk_norm=True, dtype=rg.float64)
    state = {k: v.numpy() + (0.4 * randn(*v.shape, seed=i) if "norm" in k else 0.0)
             for i, (k, v) in enumerate(mha.state_dict().items())}
    mha.load_state_dict(state)
    inputs = [rg.tensor(randn(1, 3, 4, seed=7), requires_grad=True)]
    inputs += [rg.tensor(v, requires_grad=True) for v in state.values()]
    causal = rg.tensor(np.triu(np.ones((3, 3), bool), 1))

    def attention(x, w_in, b_in, w_out, b_out, qw, qb, kw, kb):
        return F.multi_head_attention_forward(
            x, x, x, 4, 2, w_in, b_in, None, None, False, 0.0, w_out, b_out, attn_mask=causal,
            batch_first=True, qk_norm=True, q_norm_weight=qw, q_norm_bias=qb, k_norm_weight=kw,
            k_norm_bias=kb)

    assert gradcheck(attention, inputs, **GRADCHECK_TOLERANCES)
    out, _ = mha(inputs[0], inputs[0], inputs[0], attn_mask=causal)
    np.testing.assert_array_equal(out.detach().numpy(), attention(*inputs)[0].detach().numpy())


# ---------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_matches_the_reference_with_every_parameter_gradient(batch_first):
    rg.manual_seed(0)
    mha = MultiheadAttention(E, H, batch_first=batch_first, qk_norm=True, dtype=rg.float64)
    names = ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias",
             "q_norm.weight", "q_norm.bias", "k_norm.weight", "k_norm.bias"]
    assert list(mha.state_dict()) == names
    mha.load_state_dict(dict(zip(names, _params())))
    q, k, v = _inputs(batch_first)
    kpm, am = _padding_mask(), _attn_mask("float")
    out, weights = mha(rg.tensor(q), rg.tensor(k), rg.tensor(v), key_padding_mask=rg.tensor(kpm),
                       attn_mask=rg.tensor(am))
    theirs = [to_torch(p).requires_grad_() for p in _params()]
    t_out, t_weights = _torch_mha(to_torch(q), to_torch(k), to_torch(v), *theirs,
                                  batch_first=batch_first, key_padding_mask=to_torch(kpm),
                                  attn_mask=to_torch(am))
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(weights.detach().numpy(), t_weights.detach().numpy(), rtol=1e-7,
                               atol=1e-9)
    cotangent = randn(*out.shape, seed=9)
    out.backward(rg.tensor(cotangent))
    t_out.backward(to_torch(cotangent))
    mine = dict(mha.named_parameters())
    for name, p in zip(names, theirs):
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=1e-7,
                                   atol=1e-9, err_msg=f"gradient of {name}")


def test_qk_norm_changes_the_output_and_defaults_to_pytorch_layer():
    rg.manual_seed(0)
    plain = MultiheadAttention(E, H)
    rg.manual_seed(0)
    normed = MultiheadAttention(E, H, qk_norm=True)
    assert list(plain.state_dict()) == list(torch.nn.MultiheadAttention(E, H).state_dict())
    assert plain.q_norm is None and plain.k_norm is None and not plain.qk_norm
    assert list(normed.state_dict())[-4:] == ["q_norm.weight", "q_norm.bias",
                                              "k_norm.weight", "k_norm.bias"]
    assert normed.q_norm.weight.shape == (D,) and "qk_norm=True" in repr(normed)
    # an old (PyTorch-keyed) state dict loads into the layer without qk_norm
    normed.load_state_dict({**plain.state_dict(), **{k: v for k, v in normed.state_dict().items()
                                                     if "norm" in k}})
    plain.load_state_dict({k: v for k, v in normed.state_dict().items() if "norm" not in k})
    x = rg.randn(3, 2, E) * 4
    assert not np.allclose(plain(x, x, x)[0].detach().numpy(), normed(x, x, x)[0].detach().numpy())


def test_norm_parameters_without_qk_norm_are_refused():
    x = rg.randn(3, 2, E)
    w, wo = rg.randn(3 * E, E), rg.randn(E, E)
    with pytest.raises(ValueError, match="given but qk_norm=False"):
        F.multi_head_attention_forward(x, x, x, E, H, w, None, None, None, False, 0.0, wo, None,
                                       q_norm_weight=rg.ones(D))


# ---------------------------------------------------------------------------- GPT
class TorchQKAttention(TorchAttention):
    """TorchAttention with per-head LayerNorm on q and k, the causal softmax written out."""

    def __init__(self, d, heads):
        super().__init__(d, heads)
        self.q_norm = torch.nn.LayerNorm(d // heads, dtype=torch.float64)
        self.k_norm = torch.nn.LayerNorm(d // heads, dtype=torch.float64)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), -math.inf)
        y = torch.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


def _randomize(module, seed=0):
    """Every parameter (norms included) from a normal distribution, in float64."""
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(v.shape) * (0.3 if v.ndim == 2 else 0.5)
             + (1.0 if v.ndim == 1 and k.endswith("weight") else 0.0)  # LayerNorm scales
             for k, v in module.state_dict().items()}
    module.load_state_dict(state)
    return state


@pytest.mark.parametrize("which", ["attention", "block"])
def test_gpt_attention_and_block_with_qk_norm_match_torch(which):
    config = GPTConfig(vocab_size=5, context=8, n_head=H, d_model=E, qk_norm=True)
    ours = (CausalSelfAttention if which == "attention" else Block)(config).to(rg.float64)
    if which == "attention":
        theirs = TorchQKAttention(E, H).double()
    else:
        theirs = TorchBlock(E, H).double()
        theirs.attn = TorchQKAttention(E, H).double()
    state = _randomize(ours)
    assert set(state) == set(theirs.state_dict())
    assert {"q_norm.weight", "k_norm.bias"} <= {k.split("attn.")[-1] for k in state}
    theirs.load_state_dict({k: to_torch(v) for k, v in state.items()})
    x = randn(2, 5, E, seed=1)
    xr, xt = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    out, t_out = ours(xr), theirs(xt)
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-7, atol=1e-9)
    cotangent = randn(*out.shape, seed=2)
    out.backward(rg.tensor(cotangent))
    t_out.backward(to_torch(cotangent))
    np.testing.assert_allclose(xr.grad.numpy(), xt.grad.numpy(), rtol=1e-7, atol=1e-9)
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=1e-7,
                                   atol=1e-9, err_msg=f"gradient of {name}")


def test_gpt_config_keeps_old_checkpoints_loading():
    old = GPTConfig(vocab_size=5, n_head=H, d_model=E).as_dict()
    assert old["qk_norm"] is False
    del old["qk_norm"]  # a checkpoint written before the option
    assert GPTConfig(**old).qk_norm is False
    plain = CausalSelfAttention(GPTConfig(**old))
    assert not any("norm" in k for k in plain.state_dict())
    normed = GPTConfig(vocab_size=5, n_head=H, d_model=E, qk_norm=True)
    assert GPTConfig(**normed.as_dict()).qk_norm is True


# ---------------------------------------------------------------------------- ViT
def test_vit_passes_qk_norm_to_every_block():
    from retrograd.models.vit import ViT
    sizes = dict(image_size=8, patch_size=2, in_channels=1, num_classes=3, d_model=8, depth=2,
                 nhead=2)
    assert not any("q_norm" in k for k in ViT(**sizes).state_dict())
    model = ViT(**sizes, qk_norm=True)
    assert all(layer.self_attn.qk_norm for layer in model.blocks.layers)
    with rg.no_grad():
        model.head.weight.copy_(rg.randn(3, 8))  # the zero-initialized head would stop dL/dz
    model(rg.randn(2, 1, 8, 8)).sum().backward()
    grad = model.blocks.layers[0].self_attn.k_norm.weight.grad
    assert grad is not None and np.abs(grad.numpy()).max() > 0
