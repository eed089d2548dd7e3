"""The encoder-decoder Transformer: against torch's nn.Transformer with the same embeddings,
positions and masks (float64, outputs and every parameter gradient), the causal target mask,
source padding, greedy decoding, training, errors."""

import math

import numpy as np
import pytest
import torch
from torch import nn as tnn

import retrograd as rg
from retrograd.datasets.sequence_tasks import BOS, EOS, PAD, VOCAB, make_task
from retrograd.models.seq2seq import Seq2SeqTransformer
from retrograd.nn import functional as F
from retrograd.nn.embedding import sinusoidal_table

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")


class TorchSeq2Seq(tnn.Module):
    def __init__(self, vocab, d, heads, layers, ff, max_len):
        super().__init__()
        self.d = d
        self.embed = tnn.Embedding(vocab, d, padding_idx=PAD)
        # retrograd keeps the table in the default float dtype (float32) and casts it up
        table = sinusoidal_table(max_len, d).astype(np.float32).astype(np.float64)
        self.register_buffer("pe", torch.from_numpy(table), persistent=False)
        self.transformer = tnn.Transformer(d, heads, layers, layers, ff, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.generator = tnn.Linear(d, vocab)

    def _embed(self, ids):
        return self.embed(ids) * math.sqrt(self.d) + self.pe[:ids.shape[1]]

    def forward(self, src, tgt_in):
        padding = src == PAD
        mask = tnn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1],
                                                               dtype=torch.float64)
        out = self.transformer(self._embed(src), self._embed(tgt_in), tgt_mask=mask,
                               tgt_is_causal=True, src_key_padding_mask=padding,
                               memory_key_padding_mask=padding)
        return self.generator(out)


def _pair(seed=0):
    rg.manual_seed(seed)
    model = Seq2SeqTransformer(len(VOCAB), d_model=8, nhead=2, num_encoder_layers=2,
                               num_decoder_layers=2, dim_feedforward=16, dropout=0.0,
                               max_len=12).double()
    rng = np.random.default_rng(seed)
    with rg.no_grad():   # also move the LayerNorm affines and biases off 1 and 0
        for p in model.parameters():
            p._data[...] += rng.standard_normal(p.shape) * 0.1
        model.embed.weight._data[PAD] = 0.0
    reference = TorchSeq2Seq(len(VOCAB), 8, 2, 2, 16, 12).double()
    reference.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy())
                               for k, v in model.state_dict().items()})
    return model, reference


def _batch():
    src = np.array([[4, 5, 6, 7, 8], [9, 10, 3, PAD, PAD], [12, 13, PAD, PAD, PAD]])
    tgt_in = np.array([[BOS, 8, 7, 6, 7, 5], [BOS, 3, 10, 9, EOS, PAD], [BOS, 13, 12, EOS, PAD,
                                                                       PAD]])
    return src, tgt_in


def test_matches_torch_outputs_and_every_parameter_gradient():
    model, reference = _pair()
    src, tgt_in = _batch()
    cotangent = np.random.default_rng(1).standard_normal((3, 6, len(VOCAB)))
    logits = model(rg.tensor(src), rg.tensor(tgt_in))
    expected = reference(torch.from_numpy(src), torch.from_numpy(tgt_in))
    np.testing.assert_allclose(logits.detach().numpy(), expected.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    (logits * rg.tensor(cotangent)).sum().backward()
    (expected * torch.from_numpy(cotangent)).sum().backward()
    theirs = dict(reference.named_parameters())
    ours = dict(model.named_parameters())
    assert ours.keys() == theirs.keys() and len(ours) == 1 + 2 * 12 + 2 * 18 + 4 + 2
    for name, p in ours.items():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=name)
        if name != "embed.weight":
            assert np.abs(p.grad.numpy()).max() > 0, name
    assert not model.embed.weight.grad.numpy()[PAD].any()   # padding_idx: no gradient


def test_extra_source_padding_changes_nothing():
    model, _ = _pair()
    src, tgt_in = _batch()
    base = model(rg.tensor(src), rg.tensor(tgt_in)).detach().numpy()
    longer = np.concatenate([src, np.full((3, 2), PAD)], axis=1)   # two more padding columns
    np.testing.assert_allclose(model(rg.tensor(longer), rg.tensor(tgt_in)).detach().numpy(), base,
                               rtol=1e-12, atol=1e-13)
    causal = rg.nn.Transformer.generate_square_subsequent_mask(6, dtype=rg.float64)
    unpadded = model.transformer(model._embed(rg.tensor(longer)), model._embed(rg.tensor(tgt_in)),
                                 tgt_mask=causal, tgt_is_causal=True)   # no padding masks
    assert np.abs(model.generator(unpadded).detach().numpy() - base).max() > 1e-6


def test_decoder_position_t_does_not_see_later_targets():
    model, _ = _pair()
    src, tgt_in = _batch()
    changed = tgt_in.copy()
    changed[:, 3] = 11
    a = model(rg.tensor(src), rg.tensor(tgt_in)).detach().numpy()
    b = model(rg.tensor(src), rg.tensor(changed)).detach().numpy()
    np.testing.assert_array_equal(a[:, :3], b[:, :3])
    assert np.abs(a[:, 3:] - b[:, 3:]).max() > 1e-6


def test_greedy_decoding_feeds_back_its_argmax():
    model, _ = _pair()
    src, _ = _batch()
    out = model.greedy_decode(rg.tensor(src), max_len=5, bos=BOS, eos=EOS).numpy()
    ys = np.full((3, 1), BOS)
    for _ in range(5):   # by hand, without the early stop
        logits = model(rg.tensor(src), rg.tensor(ys)).detach().numpy()[:, -1]
        ys = np.concatenate([ys, logits.argmax(-1)[:, None]], axis=1)
    expected = ys[:, 1:].copy()
    for row in expected:   # after the first <eos>, greedy_decode keeps writing <eos>
        hits = np.flatnonzero(row == EOS)
        if hits.size:
            row[hits[0]:] = EOS
    assert np.array_equal(out, expected) and model.training


def test_a_few_steps_lower_the_loss_on_reversal():
    rg.manual_seed(0)
    train_set, _ = make_task("reverse", n_train=64, n_test=1)
    src, tgt = train_set.get_batch(np.arange(64))
    model = Seq2SeqTransformer(len(VOCAB), d_model=32, nhead=4, num_encoder_layers=1,
                               num_decoder_layers=1, dim_feedforward=64, dropout=0.0)
    optimizer = rg.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        logits = model(src, tgt[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(VOCAB)), tgt[:, 1:].reshape(-1),
                               ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5


def test_errors():
    model, _ = _pair()
    with pytest.raises(ValueError, match=r"expected src as a \(batch, length\) Tensor of integer"):
        model(rg.zeros(2, 3), rg.tensor([[1, 2, 3], [1, 2, 3]]))
    with pytest.raises(ValueError, match="exceed max_len 12"):
        model(rg.ones(1, 13, dtype=rg.int64), rg.ones(1, 2, dtype=rg.int64))
