"""nn.MultiheadAttention against torch.nn.MultiheadAttention after copying torch's state dict
into ours: outputs, attention weights (averaged and per head), the gradients of query, key,
value and float masks (random cotangents on the output and on the weights) and of every
parameter; float64 finite differences through the engine; masks (key padding, attention,
both, bool and float, 2-D and 3-D), causal hints, kdim/vdim, layouts, unbatched inputs,
add_bias_kv / add_zero_attn, no bias; fully masked rows (zeros, never NaN); dropout;
parameter names and init; argument errors."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.nn import MultiheadAttention
from tests.oracle import check_op, randn, to_torch

E, H = 8, 2


def _pair(dtype=np.float64, **kwargs):
    """torch's MultiheadAttention and ours holding the same values."""
    torch.manual_seed(0)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    theirs = torch.nn.MultiheadAttention(E, H, dtype=torch_dtype, **kwargs)
    ours = MultiheadAttention(E, H, dtype=rg.float64 if dtype == np.float64 else rg.float32,
                              **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for bias in ("bias_k", "bias_v"):  # torch's init draws these; make them non-trivial
        if getattr(theirs, bias) is not None:
            assert getattr(ours, bias).shape == (1, 1, E)
    return ours, theirs


def _assert_param_grads(ours, theirs, rtol=1e-7, atol=1e-9):
    mine = dict(ours.named_parameters())
    names = [name for name, _ in theirs.named_parameters()]
    assert names == list(mine)
    for name, p in theirs.named_parameters():
        assert mine[name].grad is not None, f"{name}: no gradient"
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=rtol,
                                   atol=atol, err_msg=f"gradient of {name} differs from torch")


def _check(ours, theirs, inputs, self_attention=False, dtype=np.float64, gradcheck=False,
           **call):
    """check_op over (query, key, value, key_padding_mask, attn_mask) (or (x, masks) for
    self-attention), then the parameter gradients of both modules; with gradcheck=True, also
    float64 finite differences through the engine (on fresh inputs)."""
    def run(module):
        if self_attention:
            return lambda x, kpm, am: module(x, x, x, key_padding_mask=kpm, attn_mask=am,
                                             **call)
        return lambda q, k, v, kpm, am: module(q, k, v, key_padding_mask=kpm, attn_mask=am,
                                               **call)
    rtol, atol = (1e-7, 1e-9) if dtype == np.float64 else (2e-4, 2e-5)
    with warnings.catch_warnings():
        # torch's MultiheadAttention, given a bool key_padding_mask and a float attn_mask (or
        # the other way round): the one warning these comparisons expect
        warnings.filterwarnings("ignore", r"Support for mismatched key_padding_mask and "
                                r"attn_mask is deprecated", UserWarning)
        out = check_op(_without_none(run(ours)), _without_none(run(theirs)), *inputs,
                       dtype=dtype, rtol=rtol, atol=atol, gradcheck=False)
        _assert_param_grads(ours, theirs, rtol, atol)
        if gradcheck:
            check_op(_without_none(run(ours)), _without_none(run(theirs)), *inputs,
                     gradcheck=True)
    return out


def _np(t):
    return t.detach().numpy()


def _without_none(fn):
    """The module returns (output, None) when need_weights=False: keep the output alone."""
    def wrapped(*args):
        out, weights = fn(*args)
        return out if weights is None else (out, weights)
    return wrapped


def _inputs(batch_first, n=2, target=3, source=4, kdim=E, vdim=E, batched=True, seed=0):
    def shape(length, dim):
        if not batched:
            return (length, dim)
        return (n, length, dim) if batch_first else (length, n, dim)
    return (randn(*shape(target, E), seed=seed), randn(*shape(source, kdim), seed=seed + 1),
            randn(*shape(source, vdim), seed=seed + 2))


def _bool_mask(shape, seed, keep_first_key=True):
    """A random bool mask (True = masked) that never masks key 0, so no row is fully masked
    (torch's need_weights=True path gives NaN there)."""
    mask = np.random.default_rng(seed).random(shape) < 0.4
    if keep_first_key:
        mask[..., 0] = False
    return mask


def _float_mask(shape, seed):
    """A random additive mask: normal values, -inf where _bool_mask masks."""
    values = randn(*shape, seed=seed)
    values[_bool_mask(shape, seed)] = -np.inf
    return values


# ---------------------------------------------------------------------------- no mask

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("average", [True, False])
def test_no_mask_matches_torch(batch_first, need_weights, average):
    ours, theirs = _pair(batch_first=batch_first)
    q, k, v = _inputs(batch_first)
    out = _check(ours, theirs, (q, k, v, None, None), need_weights=need_weights,
                 average_attn_weights=average, gradcheck=batch_first and not average)
    if need_weights:
        weights = out[1].detach().numpy()
        assert weights.shape == ((2, 3, 4) if average else (2, H, 3, 4))
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("need_weights", [True, False])
def test_self_attention_one_input_matches_torch(need_weights):
    # query, key and value are one tensor: its gradient sums three projections' shares
    ours, theirs = _pair(batch_first=True)
    x = randn(2, 5, E, seed=3)
    _check(ours, theirs, (x, None, None), self_attention=True, need_weights=need_weights,
           gradcheck=True)


@pytest.mark.parametrize("need_weights", [True, False])
def test_float32_matches_torch(need_weights):
    ours, theirs = _pair(dtype=np.float32, batch_first=True)
    q, k, v = _inputs(True, n=3, target=6, source=7)
    kpm = _bool_mask((3, 7), seed=4)
    out = _check(ours, theirs, (q, k, v, kpm, None), dtype=np.float32,
                 need_weights=need_weights)
    assert out[0].dtype == rg.float32


# ---------------------------------------------------------------------------- masks

MASKS = {
    "key_padding_bool": lambda n, t, s: (_bool_mask((n, s), 10), None),
    "key_padding_float": lambda n, t, s: (_float_mask((n, s), 11), None),
    "attn_2d_bool": lambda n, t, s: (None, _bool_mask((t, s), 12)),
    "attn_2d_float": lambda n, t, s: (None, _float_mask((t, s), 13)),
    "attn_3d_bool": lambda n, t, s: (None, _bool_mask((n * H, t, s), 14)),
    "attn_3d_float": lambda n, t, s: (None, _float_mask((n * H, t, s), 15)),
    "both_bool": lambda n, t, s: (_bool_mask((n, s), 16), _bool_mask((t, s), 17)),
    "both_float": lambda n, t, s: (_float_mask((n, s), 18), _float_mask((n * H, t, s), 19)),
    "bool_padding_float_attn": lambda n, t, s: (_bool_mask((n, s), 20), _float_mask((t, s), 21)),
    "float_padding_bool_attn": lambda n, t, s: (_float_mask((n, s), 22),
                                                _bool_mask((n * H, t, s), 23)),
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_masks_match_torch(mask, need_weights, batch_first):
    # float masks require grad here: their gradients are compared with torch's as well
    ours, theirs = _pair(batch_first=batch_first)
    q, k, v = _inputs(batch_first, n=2, target=3, source=5)
    kpm, am = MASKS[mask](2, 3, 5)
    _check(ours, theirs, (q, k, v, kpm, am), need_weights=need_weights,
           average_attn_weights=False,
           gradcheck=batch_first and need_weights and mask.startswith(("both", "float")))


def test_masks_are_not_modified():
    ours, _ = _pair()
    q, k, v = (rg.tensor(a) for a in _inputs(False))
    kpm = rg.tensor(_bool_mask((2, 4), 1))
    am = rg.tensor(_float_mask((3, 4), 2))
    before = kpm.numpy().copy(), am.numpy().copy()
    ours(q, k, v, key_padding_mask=kpm, attn_mask=am)
    np.testing.assert_array_equal(kpm.numpy(), before[0])
    np.testing.assert_array_equal(am.numpy(), before[1])


# ---------------------------------------------------------------------------- causal

CAUSAL = np.triu(np.ones((4, 4), dtype=bool), 1)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_padding", [False, True])
def test_causal_hint_with_mask_matches_torch(need_weights, with_padding):
    ours, theirs = _pair(batch_first=True)
    q, k, v = _inputs(True, target=4, source=4)
    kpm = _bool_mask((2, 4), 30) if with_padding else None
    _check(ours, theirs, (q, k, v, kpm, CAUSAL), need_weights=need_weights, is_causal=True)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_padding", [False, True])
def test_is_causal_without_mask_applies_the_causal_mask(need_weights, with_padding):
    # PyTorch raises an error here; retrograd applies the causal mask
    ours, _ = _pair(batch_first=True)
    q, k, v = (rg.tensor(a) for a in _inputs(True, target=4, source=4))
    kpm = rg.tensor(_bool_mask((2, 4), 31)) if with_padding else None
    hinted = ours(q, k, v, key_padding_mask=kpm, need_weights=need_weights, is_causal=True)
    explicit = ours(q, k, v, key_padding_mask=kpm, need_weights=need_weights,
                    attn_mask=rg.tensor(CAUSAL))
    np.testing.assert_allclose(_np(hinted[0]), _np(explicit[0]), rtol=1e-12, atol=1e-14)
    if need_weights:
        np.testing.assert_allclose(_np(hinted[1]), _np(explicit[1]), rtol=1e-12)
        assert np.all(np.triu(_np(hinted[1])[0], 1) == 0.0)


# ---------------------------------------------------------------------------- variants

@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_kdim_vdim_match_torch(need_weights, batch_first):
    ours, theirs = _pair(kdim=5, vdim=3, batch_first=batch_first)
    assert ours.in_proj_weight is None and ours.k_proj_weight.shape == (E, 5)
    q, k, v = _inputs(batch_first, kdim=5, vdim=3)
    kpm = _bool_mask((2, 4), 40)
    _check(ours, theirs, (q, k, v, kpm, None), need_weights=need_weights,
           gradcheck=batch_first)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("masks", ["none", "padding", "attn_3d", "both"])
def test_unbatched_matches_torch(need_weights, masks):
    ours, theirs = _pair()
    q, k, v = _inputs(False, batched=False)
    kpm = _bool_mask((4,), 50) if masks in ("padding", "both") else None
    am = _float_mask((H, 3, 4), 51) if masks in ("attn_3d", "both") else None
    out = _check(ours, theirs, (q, k, v, kpm, am), need_weights=need_weights,
                 average_attn_weights=False)
    assert out[0].shape == (3, E)
    if need_weights:
        assert out[1].shape == (H, 3, 4)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("batched", [True, False])
def test_need_weights_and_average_return_torchs_structure(need_weights, average, batch_first,
                                                          batched):
    """(output, None) without need_weights; weights (N, L, S) averaged over the heads or
    (N, H, L, S) per head, without N unbatched; values and every gradient as torch's (a
    random cotangent on output and weights), with the same parameters."""
    ours, theirs = _pair(batch_first=batch_first)
    q, k, v = _inputs(batch_first, batched=batched, seed=80)
    kpm = _bool_mask((2, 4) if batched else (4,), 81)
    call = dict(need_weights=need_weights, average_attn_weights=average)
    returned = ours(*(rg.tensor(a) for a in (q, k, v)), **call)
    expected = theirs(*(torch.tensor(a) for a in (q, k, v)), **call)
    assert isinstance(returned, tuple) and len(returned) == 2
    assert (returned[1] is None) == (expected[1] is None) == (not need_weights)
    if need_weights:
        lead = ((2,) if batched else ()) + (() if average else (H,))
        assert returned[1].shape == tuple(expected[1].shape) == lead + (3, 4)
    _check(ours, theirs, (q, k, v, kpm, None), **call)


@pytest.mark.parametrize("options", [{"add_bias_kv": True}, {"add_zero_attn": True},
                                     {"add_bias_kv": True, "add_zero_attn": True}])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_bias_kv_and_zero_attn_match_torch(options, need_weights, batch_first):
    ours, theirs = _pair(batch_first=batch_first, **options)
    q, k, v = _inputs(batch_first)
    kpm, am = _bool_mask((2, 4), 60), _float_mask((3, 4), 61)
    out = _check(ours, theirs, (q, k, v, kpm, am), need_weights=need_weights,
                 gradcheck=len(options) == 2 and batch_first)
    if need_weights:
        assert out[1].shape == (2, 3, 4 + len(options))


@pytest.mark.parametrize("need_weights", [True, False])
def test_no_bias_matches_torch(need_weights):
    ours, theirs = _pair(bias=False)
    assert ours.in_proj_bias is None and ours.out_proj.bias is None
    _check(ours, theirs, _inputs(False) + (None, _bool_mask((3, 4), 70)),
           need_weights=need_weights)


def test_gradient_reaches_the_weights_output_only():
    # a loss on the weights alone: dL/dv is 0, dL/dq and dL/dk are not
    ours, theirs = _pair()
    q, k, v = _inputs(False)
    check_op(lambda q, k, v: ours(q, k, v)[1], lambda q, k, v: theirs(q, k, v)[1], q, k, v)


# ---------------------------------------------------------------------------- fully masked

def _fully_masked_cases():
    """(key_padding_mask, attn_mask) where query 0 of batch element 0 (at least) has every
    key masked: by the padding mask alone, by the attention mask alone, by their
    combination, and by a float mask of -inf."""
    padding_all = np.zeros((2, 4), dtype=bool)
    padding_all[0] = True                              # batch element 0: every query
    attn_row = np.zeros((3, 4), dtype=bool)
    attn_row[0] = True                                 # query 0, every batch element
    combined_padding = np.zeros((2, 4), dtype=bool)
    combined_padding[0, 2:] = True
    combined_attn = np.zeros((3, 4), dtype=bool)
    combined_attn[0, :2] = True                        # query 0 of element 0: none left
    float_row = np.zeros((3, 4))
    float_row[0] = -np.inf
    return {"padding": (padding_all, None), "attn": (None, attn_row),
            "combination": (combined_padding, combined_attn), "float": (None, float_row)}


@pytest.mark.parametrize("case", list(_fully_masked_cases()))
@pytest.mark.parametrize("need_weights", [True, False])
def test_fully_masked_rows_give_zeros_not_nan(case, need_weights):
    # reference: torch with need_weights=False (its SDPA gives zero rows); torch's
    # need_weights=True path would put NaN into every gradient
    kpm, am = _fully_masked_cases()[case]
    ours, theirs = _pair()
    q, k, v = _inputs(False)
    rq, rk, rv = (rg.tensor(a, requires_grad=True) for a in (q, k, v))
    tq, tk, tv = (to_torch(a).requires_grad_() for a in (q, k, v))
    masks = [None if m is None else rg.tensor(m) for m in (kpm, am)]
    out, weights = ours(rq, rk, rv, key_padding_mask=masks[0], attn_mask=masks[1],
                        need_weights=need_weights, average_attn_weights=False)
    t_out, _ = theirs(tq, tk, tv, key_padding_mask=None if kpm is None else to_torch(kpm),
                      attn_mask=None if am is None else to_torch(am), need_weights=False)
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    bias = ours.out_proj.bias.detach().numpy()
    np.testing.assert_array_equal(out.detach().numpy()[0, 0], bias)  # attention output 0
    cotangent = randn(*out.shape, seed=80)
    loss = (out * rg.tensor(cotangent)).sum()
    if need_weights:  # a gradient through the weights too: still no NaN
        loss = loss + (weights * rg.tensor(randn(*weights.shape, seed=81))).sum()
        w = weights.detach().numpy()
        assert np.all(w[0, :, 0] == 0.0)
        np.testing.assert_allclose(w[1, :, 1:].sum(-1), 1.0, rtol=1e-12)
    loss.backward()
    t_out.backward(to_torch(cotangent))
    for name, p in list(ours.named_parameters()) + [("q", rq), ("k", rk), ("v", rv)]:
        assert np.all(np.isfinite(p.grad.numpy())), f"{name}: non-finite gradient"
    assert np.all(rq.grad.numpy()[0, 0] == 0.0)  # the masked query's only path is masked
    if not need_weights:
        _assert_param_grads(ours, theirs, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(rk.grad.numpy(), tk.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_fully_masked_rows_with_need_weights_match_torch_on_other_rows():
    padding = np.zeros((2, 4), dtype=bool)
    padding[0] = True
    ours, theirs = _pair()
    q, k, v = _inputs(False)
    out, weights = ours(*(rg.tensor(a) for a in (q, k, v)), key_padding_mask=rg.tensor(padding))
    t_out, t_weights = theirs(*(to_torch(a) for a in (q, k, v)),
                              key_padding_mask=to_torch(padding))
    assert np.isnan(t_weights.detach().numpy()[0]).all()  # torch: NaN; retrograd: 0
    assert np.all(_np(weights)[0] == 0.0)
    np.testing.assert_allclose(_np(weights)[1], t_weights.detach().numpy()[1], rtol=1e-10)
    np.testing.assert_allclose(_np(out)[:, 1], t_out.detach().numpy()[:, 1], rtol=1e-10)


# ---------------------------------------------------------------------------- dropout

def test_dropout_in_training_and_eval():
    ours, theirs = _pair(dropout=0.5, batch_first=True)
    q, k, v = (rg.tensor(a) for a in _inputs(True, n=2, target=6, source=7))
    ours.eval()
    theirs.eval()
    eval_out, eval_weights = ours(q, k, v, average_attn_weights=False)
    again = ours(q, k, v, average_attn_weights=False)
    np.testing.assert_array_equal(_np(eval_out), _np(again[0]))
    t_out, _ = theirs(*(to_torch(t.numpy()) for t in (q, k, v)))
    np.testing.assert_allclose(_np(eval_out), t_out.detach().numpy(), rtol=1e-10)
    ours.train()
    out, weights = ours(q, k, v, average_attn_weights=False)
    assert not np.allclose(_np(out), _np(eval_out))
    # as PyTorch, the returned weights are taken after dropout: 0 or P / (1 - p)
    w, p = _np(weights), _np(eval_weights)
    dropped = w == 0.0
    assert 0.2 < dropped.mean() < 0.8
    np.testing.assert_allclose(w[~dropped], p[~dropped] * 2.0, rtol=1e-12)
    expected = ours.out_proj(_merge(weights @ _heads(ours, q, k, v)))
    np.testing.assert_allclose(_np(out), _np(expected), rtol=1e-10)
    out_no_weights, none = ours(q, k, v, need_weights=False)
    assert none is None and not np.allclose(_np(out_no_weights), _np(eval_out))


def _heads(mha, q, k, v):
    """The value projection split into heads, (N, H, S, d), for the dropout check."""
    e = mha.embed_dim
    projected = v @ mha.in_proj_weight[2 * e:].T + mha.in_proj_bias[2 * e:]
    n, s, _ = projected.shape
    return projected.reshape(n, s, H, e // H).permute(0, 2, 1, 3)


def _merge(out):
    n, h, t, d = out.shape
    return out.permute(0, 2, 1, 3).reshape(n, t, h * d)


def test_dropout_backward_runs_and_gives_finite_gradients():
    ours, _ = _pair(dropout=0.3)
    q, k, v = (rg.tensor(a, requires_grad=True) for a in _inputs(False))
    for need_weights in (True, False):
        out, weights = ours(q, k, v, need_weights=need_weights)
        loss = out.sum() if weights is None else out.sum() + weights.sum()
        loss.backward()
        assert all(np.all(np.isfinite(p.grad.numpy())) for p in ours.parameters())


@pytest.mark.parametrize("batch_first, masks", [
    (False, "none"), (True, "none"), (True, "key padding"), (False, "causal"),
    (True, "float attn_mask"),
])
def test_dropout_fused_backward_equals_the_composed_dropout(batch_first, masks):
    """need_weights=False drops inside the fused attention op (its backward must reuse the
    forward's mask); need_weights=True takes the undropped weights from the op and drops them
    with the Dropout op, whose mask is drawn with the same shape and dtype from the same
    generator state. With one seed both draw the same mask, so the outputs and every
    gradient (inputs and parameters, for one random cotangent) agree."""
    ours, _ = _pair(dropout=0.4, batch_first=batch_first)
    q, k, v = _inputs(batch_first, n=3, target=5, source=6)
    call = {}
    if masks == "key padding":
        call["key_padding_mask"] = rg.tensor(_bool_mask((3, 6), 95))
    elif masks == "causal":
        k = v = q
        call.update(attn_mask=rg.tensor(np.triu(np.ones((5, 5), dtype=bool), 1)), is_causal=True)
    elif masks == "float attn_mask":
        call["attn_mask"] = rg.tensor(_float_mask((5, 6), 96))
    cotangent = rg.tensor(np.random.default_rng(97).standard_normal(q.shape))
    results = []
    for need_weights in (False, True):
        ours.zero_grad()
        tensors = [rg.tensor(x, requires_grad=True) for x in (q, k, v)]
        rg.manual_seed(5)
        out, _ = ours(*tensors, need_weights=need_weights, **call)
        out.backward(cotangent)
        results.append([_np(out)] + [t.grad.numpy() for t in tensors]
                       + [p.grad.numpy().copy() for p in ours.parameters()])
    fused, composed = results
    assert not np.allclose(fused[0], _np(ours.eval()(*(rg.tensor(x) for x in (q, k, v)),
                                                     **call)[0]))  # dropout did drop
    for a, b in zip(fused, composed):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------- state, init

def test_parameter_names_match_torch():
    for kwargs in ({}, {"kdim": 5, "vdim": 3}, {"add_bias_kv": True}, {"bias": False}):
        ours, theirs = _pair(**kwargs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [n for n, _ in ours.named_parameters()] == \
            [n for n, _ in theirs.named_parameters()]


def test_init_follows_torch():
    mha = MultiheadAttention(64, 4)
    bound = (6 / (64 + 3 * 64)) ** 0.5  # xavier_uniform_ on the (3E, E) in_proj_weight
    w = mha.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.all(mha.in_proj_bias.detach().numpy() == 0.0)
    assert np.all(mha.out_proj.bias.detach().numpy() == 0.0)
    assert mha.in_proj_weight.dtype == rg.float32
    separate = MultiheadAttention(64, 4, kdim=32, add_bias_kv=True)
    assert separate.k_proj_weight.shape == (64, 32)
    assert separate.bias_k.shape == (1, 1, 64) and np.any(separate.bias_k.detach().numpy())


def test_state_dict_round_trip_and_repr():
    a, b = MultiheadAttention(E, H), MultiheadAttention(E, H)
    b.load_state_dict(a.state_dict())
    x = rg.randn(3, 2, E)
    np.testing.assert_array_equal(_np(a(x, x, x)[0]), _np(b(x, x, x)[0]))
    assert "num_heads=2" in repr(a)


# ---------------------------------------------------------------------------- errors

def test_errors_at_construction():
    with pytest.raises(ValueError, match="MultiheadAttention: embed_dim must be divisible by "
                                         "num_heads, got embed_dim=10 and num_heads=3"):
        MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="MultiheadAttention: num_heads must be a positive"):
        MultiheadAttention(8, 0)
    with pytest.raises(ValueError, match="MultiheadAttention: dropout probability"):
        MultiheadAttention(8, 2, dropout=1.5)


def _call(mha, q=(3, 2, E), k=(4, 2, E), v=(4, 2, E), **kwargs):
    return mha(rg.randn(*q), rg.randn(*k), rg.randn(*v), **kwargs)


@pytest.mark.parametrize("shapes, match", [
    ({"q": (3, 2, 6)}, r"expected query with last dim embed_dim=8, got query \(3, 2, 6\)"),
    ({"k": (4, 2, 6)}, r"expected key with last dim kdim=8"),
    ({"v": (4, 2, 5)}, r"expected value with last dim vdim=8"),
    ({"k": (4, 3, E), "v": (4, 3, E)}, r"same batch size N \(layout \(L, N, E\)"),
    ({"v": (5, 2, E)}, r"key and value must have the same sequence length S"),
    ({"q": (1, 3, 2, E)}, r"all 3-D \(batched\) or all 2-D \(unbatched\)"),
    ({"q": (3, E)}, r"all 3-D \(batched\) or all 2-D"),
])
def test_input_shape_errors(shapes, match):
    with pytest.raises(ValueError, match="MultiheadAttention: .*" + match):
        _call(MultiheadAttention(E, H), **shapes)


@pytest.mark.parametrize("masks, error, match", [
    ({"attn_mask": np.zeros((3, 3), bool)}, ValueError,
     r"expected attn_mask of shape \(L, S\) = \(3, 4\) or \(N \* num_heads, L, S\) = "
     r"\(4, 3, 4\), got \(3, 3\)"),
    ({"attn_mask": np.zeros((2, 3, 4), bool)}, ValueError, r"\(4, 3, 4\), got \(2, 3, 4\)"),
    ({"key_padding_mask": np.zeros((4, 2), bool)}, ValueError,
     r"expected key_padding_mask of shape \(2, 4\) \(N, S\), got \(4, 2\)"),
    ({"attn_mask": np.zeros((3, 4), np.int64)}, TypeError,
     r"only bool and floating-point attn_mask are supported .* got dtype .*int64 "
     r"\(shape \(3, 4\)\)"),
    ({"key_padding_mask": np.zeros((2, 4), np.int64)}, TypeError,
     r"only bool and floating-point key_padding_mask"),
])
def test_mask_errors(masks, error, match):
    masks = {name: rg.tensor(m) for name, m in masks.items()}
    with pytest.raises(error, match="MultiheadAttention: .*" + match):
        _call(MultiheadAttention(E, H), **masks)


def test_unbatched_mask_errors_name_the_unbatched_shapes():
    mha = MultiheadAttention(E, H)
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(4,\) \(S,\) for "
                                         r"unbatched inputs, got \(1, 4\)"):
        _call(mha, q=(3, E), k=(4, E), v=(4, E), key_padding_mask=rg.zeros(1, 4, dtype=rg.bool))
    with pytest.raises(ValueError, match=r"\(num_heads, L, S\) = \(2, 3, 4\)"):
        _call(mha, q=(3, E), k=(4, E), v=(4, E), attn_mask=rg.zeros(1, 3, 4, dtype=rg.bool))


def test_dtype_errors():
    mha = MultiheadAttention(E, H)  # float32 parameters
    with pytest.raises(TypeError, match=r"MultiheadAttention: expected query, key and value of "
                                        r"the parameters' dtype .*float32, got .*float64"):
        mha(rg.randn(3, 2, E, dtype=rg.float64), rg.randn(4, 2, E, dtype=rg.float64),
            rg.randn(4, 2, E, dtype=rg.float64))
    with pytest.raises(TypeError, match="MultiheadAttention: query must be a Tensor"):
        mha(np.zeros((3, 2, E)), rg.randn(4, 2, E), rg.randn(4, 2, E))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("need_weights", [True, False])
def test_half_precisions_keep_their_dtype(dtype, need_weights):
    dtype = getattr(rg, dtype)
    full = MultiheadAttention(E, H, batch_first=True)
    half = MultiheadAttention(E, H, batch_first=True, dtype=dtype)
    half.load_state_dict({k: v.to(dtype) for k, v in full.state_dict().items()})
    x = rg.randn(2, 5, E).to(dtype).requires_grad_()
    kpm = rg.tensor(_bool_mask((2, 5), 90))
    out, weights = half(x, x, x, key_padding_mask=kpm, need_weights=need_weights)
    out.sum().backward()
    assert out.dtype == dtype and x.grad.dtype == dtype
    assert half.in_proj_weight.grad.dtype == dtype
    reference, _ = full(x.detach().float(), x.detach().float(), x.detach().float(),
                        key_padding_mask=kpm)
    np.testing.assert_allclose(_np(out.float()), _np(reference), atol=0.05)
    if need_weights:
        assert weights.dtype == dtype
