"""nn.TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder,
TransformerDecoder and Transformer against torch.nn after copying torch's state dict into
ours: outputs and the gradients of the inputs and of every parameter, in both norm orders,
with relu and gelu, with masks, in both layouts and unbatched; float64 finite differences
through the engine; fully masked rows; dropout in training and eval; deep copies in the
stacks; causal-mask detection; parameter names; argument errors."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.nn.transformer import _detect_is_causal_mask
from tests.oracle import check_op, randn, to_torch

D, NHEAD, FF = 8, 2, 16


def _load(ours, theirs):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _encoder_layer_pair(dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    kwargs = {"dim_feedforward": FF, "dropout": 0.0, **kwargs}
    theirs = torch.nn.TransformerEncoderLayer(D, NHEAD, dtype=dtype, **kwargs)
    ours = rg.nn.TransformerEncoderLayer(D, NHEAD, dtype=_rg_dtype(dtype), **kwargs)
    return _load(ours, theirs)


def _decoder_layer_pair(dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    kwargs = {"dim_feedforward": FF, "dropout": 0.0, **kwargs}
    theirs = torch.nn.TransformerDecoderLayer(D, NHEAD, dtype=dtype, **kwargs)
    ours = rg.nn.TransformerDecoderLayer(D, NHEAD, dtype=_rg_dtype(dtype), **kwargs)
    return _load(ours, theirs)


def _rg_dtype(dtype):
    return rg.float64 if dtype == torch.float64 else rg.float32


def _assert_param_grads(ours, theirs, rtol=1e-7, atol=1e-9):
    mine = dict(ours.named_parameters())
    assert [name for name, _ in theirs.named_parameters()] == list(mine)
    for name, p in theirs.named_parameters():
        assert mine[name].grad is not None, f"{name}: no gradient"
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=rtol,
                                   atol=atol, err_msg=f"gradient of {name} differs from torch")


def _check(ours, theirs, fn, inputs, gradcheck=False, dtype=np.float64, no_grad=()):
    """check_op of fn(module, *inputs) for both modules, then every parameter gradient."""
    rtol, atol = (1e-7, 1e-9) if dtype == np.float64 else (2e-4, 2e-5)
    with warnings.catch_warnings():
        # torch's encoder layer and stack (and the attention inside the decoder layer), given
        # a bool key padding mask and a float attention mask (or the other way round): the one
        # warning these comparisons expect
        warnings.filterwarnings("ignore", r"Support for mismatched (src_key_padding_mask and "
                                r"(src_)?mask|key_padding_mask and attn_mask) is deprecated",
                                UserWarning)
        check_op(lambda *a: fn(ours, *a), lambda *a: fn(theirs, *a), *inputs, dtype=dtype,
                 rtol=rtol, atol=atol, gradcheck=False, no_grad=no_grad)
        _assert_param_grads(ours, theirs, rtol, atol)
        if gradcheck:
            check_op(lambda *a: fn(ours, *a), lambda *a: fn(theirs, *a), *inputs,
                     no_grad=no_grad)


def _np(t):
    return t.detach().numpy()


def _seq(length, batch_first, n=2, seed=0, batched=True):
    if not batched:
        return randn(length, D, seed=seed)
    return randn(n, length, D, seed=seed) if batch_first else randn(length, n, D, seed=seed)


def _padding(n, length, seed):
    mask = np.random.default_rng(seed).random((n, length)) < 0.4
    mask[:, 0] = False  # never a fully masked row here (see the fully masked tests)
    return mask


CAUSAL = {length: np.triu(np.full((length, length), -np.inf), 1) for length in (1, 4, 5)}


# ---------------------------------------------------------------------------- encoder layer

def _encode(layer, src, mask, padding, is_causal=False):
    return layer(src, src_mask=mask, src_key_padding_mask=padding, is_causal=is_causal)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_torch(norm_first, activation, batch_first):
    ours, theirs = _encoder_layer_pair(norm_first=norm_first, activation=activation,
                                       batch_first=batch_first)
    src = _seq(5, batch_first)
    _check(ours, theirs, _encode, (src, CAUSAL[5], _padding(2, 5, 1)),
           gradcheck=batch_first and activation == "gelu")


@pytest.mark.parametrize("masks", ["none", "bool_attn", "float_padding", "3d_attn", "causal"])
def test_encoder_layer_masks_match_torch(masks):
    ours, theirs = _encoder_layer_pair(batch_first=True)
    src = _seq(4, True)
    mask = padding = None
    is_causal = masks == "causal"
    if masks == "bool_attn":
        mask = np.random.default_rng(2).random((4, 4)) < 0.3
        mask[:, 0] = False
    elif masks == "float_padding":
        padding = np.where(_padding(2, 4, 3), -np.inf, 0.0)
    elif masks == "3d_attn":
        mask = randn(2 * NHEAD, 4, 4, seed=4)
    elif is_causal:
        mask = CAUSAL[4]
    # a causal mask that torch takes as the is_causal hint gets no gradient there
    _check(ours, theirs, lambda m, s, am, kpm: _encode(m, s, am, kpm, is_causal),
           (src, mask, padding), gradcheck=masks == "3d_attn",
           no_grad=(1,) if is_causal else ())


def test_encoder_layer_unbatched_matches_torch():
    ours, theirs = _encoder_layer_pair(norm_first=True)
    _check(ours, theirs, _encode, (_seq(4, False, batched=False), CAUSAL[4], None))


def test_encoder_layer_callable_activation_and_no_bias():
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, activation=torch.tanh,
                                              bias=False, dtype=torch.float64)
    ours = rg.nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, activation=rg.nn.Tanh(),
                                         bias=False, dtype=rg.float64)
    _load(ours, theirs)
    assert ours.linear1.bias is None and ours.norm1.bias is None
    _check(ours, theirs, _encode, (_seq(4, False), None, None))


def test_encoder_layer_float32_matches_torch():
    ours, theirs = _encoder_layer_pair(dtype=torch.float32, norm_first=True, batch_first=True)
    src = _seq(6, True, n=3)
    causal = np.triu(np.full((6, 6), -np.inf), 1)
    _check(ours, theirs, _encode, (src, causal, _padding(3, 6, 5)), dtype=np.float32)


# ---------------------------------------------------------------------------- decoder layer

def _decode(layer, tgt, memory, tgt_mask, memory_mask, tgt_padding, memory_padding,
            tgt_is_causal=False):
    return layer(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                 tgt_key_padding_mask=tgt_padding, memory_key_padding_mask=memory_padding,
                 tgt_is_causal=tgt_is_causal)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer_matches_torch(norm_first, activation, batch_first):
    ours, theirs = _decoder_layer_pair(norm_first=norm_first, activation=activation,
                                       batch_first=batch_first)
    tgt, memory = _seq(4, batch_first, seed=1), _seq(5, batch_first, seed=2)
    memory_mask = np.random.default_rng(3).random((4, 5)) < 0.3
    memory_mask[:, 0] = False
    _check(ours, theirs, lambda m, *a: _decode(m, *a, tgt_is_causal=True),
           (tgt, memory, CAUSAL[4], memory_mask, _padding(2, 4, 4), _padding(2, 5, 5)),
           gradcheck=batch_first and norm_first and activation == "relu")


def test_decoder_layer_without_masks_and_unbatched_match_torch():
    ours, theirs = _decoder_layer_pair()
    _check(ours, theirs, _decode, (_seq(4, False), _seq(5, False, seed=1), None, None, None,
                                   None))
    ours, theirs = _decoder_layer_pair(norm_first=True)
    _check(ours, theirs, _decode, (_seq(4, False, batched=False),
                                   _seq(5, False, seed=1, batched=False), CAUSAL[4], None,
                                   None, None))


# ---------------------------------------------------------------------------- stacks

@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_with_final_norm_matches_torch(norm_first):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, batch_first=True,
                                             norm_first=norm_first, dtype=torch.float64)
    theirs = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(
        D, dtype=torch.float64), enable_nested_tensor=False)
    ours = rg.nn.TransformerEncoder(
        rg.nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, batch_first=True,
                                      norm_first=norm_first, dtype=rg.float64),
        2, norm=rg.nn.LayerNorm(D, dtype=rg.float64))
    _load(ours, theirs)
    _check(ours, theirs, lambda m, s, mask, kpm: m(s, mask=mask, src_key_padding_mask=kpm),
           (_seq(5, True), CAUSAL[5], _padding(2, 5, 6)), gradcheck=norm_first)


def test_decoder_stack_with_final_norm_matches_torch():
    torch.manual_seed(0)
    layer = torch.nn.TransformerDecoderLayer(D, NHEAD, FF, 0.0, dtype=torch.float64)
    theirs = torch.nn.TransformerDecoder(layer, 2, norm=torch.nn.LayerNorm(
        D, dtype=torch.float64))
    ours = rg.nn.TransformerDecoder(
        rg.nn.TransformerDecoderLayer(D, NHEAD, FF, 0.0, dtype=rg.float64), 2,
        norm=rg.nn.LayerNorm(D, dtype=rg.float64))
    _load(ours, theirs)
    _check(ours, theirs, lambda m, t, mem, mask, kpm: m(t, mem, tgt_mask=mask,
                                                        memory_key_padding_mask=kpm),
           (_seq(4, False), _seq(5, False, seed=1), CAUSAL[4], _padding(2, 5, 7)),
           no_grad=(2,))  # torch detects the causal mask and drops it (no gradient)


def test_stacks_hold_deep_copies():
    layer = rg.nn.TransformerEncoderLayer(D, NHEAD, FF)
    encoder = rg.nn.TransformerEncoder(layer, 3)
    params = [id(p) for p in encoder.parameters()]
    assert len(params) == len(set(params)) == 3 * len(list(layer.parameters()))
    assert all(id(p) not in params for p in layer.parameters())
    np.testing.assert_array_equal(_np(encoder.layers[2].linear1.weight),
                                  _np(layer.linear1.weight))
    assert list(encoder.state_dict())[0] == "layers.0.self_attn.in_proj_weight"
    empty = rg.nn.TransformerEncoder(layer, 0)
    x = rg.randn(3, 2, D)
    assert empty(x) is x


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_end_to_end_matches_torch(batch_first):
    torch.manual_seed(0)
    kwargs = dict(d_model=D, nhead=NHEAD, num_encoder_layers=2, num_decoder_layers=1,
                  dim_feedforward=FF, dropout=0.0, batch_first=batch_first)
    theirs = torch.nn.Transformer(dtype=torch.float64, **kwargs)
    ours = rg.nn.Transformer(dtype=rg.float64, **kwargs)
    _load(ours, theirs)
    src, tgt = _seq(5, batch_first, seed=1), _seq(4, batch_first, seed=2)

    def run(m, s, t, tgt_mask, src_kpm):
        return m(s, t, tgt_mask=tgt_mask, src_key_padding_mask=src_kpm,
                 memory_key_padding_mask=src_kpm)
    _check(ours, theirs, run, (src, tgt, CAUSAL[4], _padding(2, 5, 8)),
           gradcheck=batch_first, no_grad=(2,))  # torch drops a detected causal mask


def test_causal_float_mask_that_requires_grad_gets_its_gradient():
    # torch treats a mask equal to the causal mask as the is_causal hint and drops it (no
    # gradient); retrograd keeps a mask that requires grad: finite differences agree
    layer = rg.nn.TransformerEncoderLayer(D, NHEAD, FF, 0.0, dtype=rg.float64)
    encoder = rg.nn.TransformerEncoder(layer, 1)
    x = rg.tensor(_seq(4, False))
    mask = rg.tensor(CAUSAL[4], requires_grad=True)
    assert rg.autograd.gradcheck(lambda m: encoder(x, mask=m), [mask], eps=1e-6, atol=1e-7,
                                 rtol=1e-5)
    assert rg.autograd.gradcheck(lambda m: layer(x, src_mask=m, is_causal=True), [mask],
                                 eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_transformer_init_is_xavier_on_matrices():
    model = rg.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
                              dim_feedforward=64)
    w = _np(model.encoder.layers[0].linear1.weight)  # (64, 16): xavier bound sqrt(6 / 80)
    assert np.abs(w).max() <= (6 / 80) ** 0.5 and np.abs(w).max() > 0.9 * (6 / 80) ** 0.5
    assert np.all(_np(model.decoder.norm.weight) == 1.0)
    torch_model = torch.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1,
                                       num_decoder_layers=1, dim_feedforward=64)
    assert list(model.state_dict()) == list(torch_model.state_dict())


def test_generate_square_subsequent_mask_matches_torch():
    for size in (1, 5):
        expected = torch.nn.Transformer.generate_square_subsequent_mask(size).numpy()
        np.testing.assert_array_equal(rg.nn.generate_square_subsequent_mask(size).numpy(),
                                      expected)
    mask = rg.nn.Transformer.generate_square_subsequent_mask(3, dtype=rg.float64)
    assert mask.dtype == rg.float64 and mask.shape == (3, 3)


def test_causal_mask_detection():
    assert _detect_is_causal_mask(rg.tensor(CAUSAL[4]), None, 4)
    assert _detect_is_causal_mask(rg.tensor(np.triu(np.ones((4, 4), bool), 1)), None, 4)
    assert not _detect_is_causal_mask(rg.tensor(np.zeros((4, 4))), None, 4)
    assert not _detect_is_causal_mask(rg.tensor(CAUSAL[4]), None, 5)
    assert not _detect_is_causal_mask(None, None, 4)
    assert _detect_is_causal_mask(None, True, 4)
    assert not _detect_is_causal_mask(rg.tensor(CAUSAL[4]), False, 4)


# ---------------------------------------------------------------------------- fully masked

def test_fully_masked_rows_in_layers_give_no_nan_and_match_torch():
    # batch element 0 of the memory is all padding: the decoder's cross-attention has no key
    # for it. Reference: torch (its layers call attention with need_weights=False, which
    # gives zero rows).
    ours, theirs = _decoder_layer_pair(batch_first=True, norm_first=True)
    padding = np.zeros((2, 5), dtype=bool)
    padding[0] = True
    inputs = (_seq(4, True, seed=1), _seq(5, True, seed=2), CAUSAL[4], None, None, padding)
    _check(ours, theirs, _decode, inputs)
    for name, p in ours.named_parameters():
        assert np.all(np.isfinite(p.grad.numpy())), name
    ours, theirs = _encoder_layer_pair()
    all_padding = np.ones((2, 5), dtype=bool)
    _check(ours, theirs, _encode, (_seq(5, False), None, all_padding))


# ---------------------------------------------------------------------------- dropout

def test_dropout_in_training_and_eval():
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.3, batch_first=True,
                                              dtype=torch.float64)
    ours = rg.nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.3, batch_first=True,
                                         dtype=rg.float64)
    _load(ours, theirs)
    x = rg.tensor(_seq(6, True), requires_grad=True)
    first, second = ours(x), ours(x)
    assert not np.allclose(_np(first), _np(second))  # dropout masks differ
    (first.sum() + second.sum()).backward()
    assert all(np.all(np.isfinite(p.grad.numpy())) for p in ours.parameters())
    ours.eval()
    theirs.eval()
    with rg.no_grad():
        a, b = ours(x), ours(x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    with torch.no_grad():
        expected = theirs(to_torch(_np(x)))
    np.testing.assert_allclose(a.numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------- errors

def test_errors():
    with pytest.raises(ValueError, match="TransformerEncoderLayer: d_model must be divisible by "
                                         "nhead, got d_model=10 and nhead=3"):
        rg.nn.TransformerEncoderLayer(10, 3)
    with pytest.raises(ValueError, match="TransformerDecoderLayer: activation should be 'relu', "
                                         "'gelu' or a callable, got 'swish'"):
        rg.nn.TransformerDecoderLayer(8, 2, activation="swish")
    with pytest.raises(ValueError, match="TransformerEncoder: num_layers must be a "
                                         "non-negative int"):
        rg.nn.TransformerEncoder(rg.nn.TransformerEncoderLayer(8, 2), -1)
    model = rg.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                              dim_feedforward=16)
    with pytest.raises(ValueError, match=r"Transformer: the batch number of src and tgt must be "
                                         r"equal .* got src \(5, 2, 8\) and tgt \(4, 3, 8\)"):
        model(rg.randn(5, 2, 8), rg.randn(4, 3, 8))
    with pytest.raises(ValueError, match=r"Transformer: the feature number of src and tgt must "
                                         r"be equal to d_model=8"):
        model(rg.randn(5, 2, 6), rg.randn(4, 2, 6))
    layer = rg.nn.TransformerEncoderLayer(8, 2, 16)
    with pytest.raises(ValueError, match=r"MultiheadAttention: expected attn_mask of shape "
                                         r"\(L, S\) = \(5, 5\)"):
        layer(rg.randn(5, 2, 8), src_mask=rg.zeros(4, 4))
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: expected src of shape "
                                         r"\(L, N, 8\), .* got \(5, 2, 6\)"):
        layer(rg.randn(5, 2, 6))
    decoder = rg.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer: tgt and memory must both be "
                                         r"batched with the same batch size \(dim 0, "
                                         r"batch_first=True\).* got tgt \(2, 4, 8\) and memory "
                                         r"\(3, 5, 8\)"):
        decoder(rg.randn(2, 4, 8), rg.randn(3, 5, 8))
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer: expected memory of shape"):
        decoder(rg.randn(2, 4, 8), rg.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"MultiheadAttention: expected key_padding_mask of "
                                         r"shape \(2, 5\) \(N, S\), got \(2, 4\)"):
        decoder(rg.randn(2, 4, 8), rg.randn(2, 5, 8),
                memory_key_padding_mask=rg.zeros(2, 4, dtype=rg.bool))


def test_functional_activation_is_accepted():
    layer = rg.nn.TransformerEncoderLayer(8, 2, 16, activation=F.gelu)
    assert layer.activation is F.gelu
    assert layer(rg.randn(3, 2, 8)).shape == (3, 2, 8)
