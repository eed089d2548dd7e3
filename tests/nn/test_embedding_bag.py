"""F.embedding_bag and nn.EmbeddingBag against PyTorch: every mode, 2-D input and 1-D input
with offsets (include_last_offset, empty bags), per_sample_weights, padding_idx, max_norm,
values and gradients with finite differences; the layer's parameters and repr; the errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import check_op, randn

TF = torch.nn.functional
IDS = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0])


@pytest.mark.parametrize("ids, offsets, kwargs", [
    (np.array([[1, 2, 4], [4, 3, 2]]), None, dict(mode="mean")),
    (np.array([[1, 2, 2], [0, 0, 0]]), None, dict(mode="max", padding_idx=0)),  # all padding
    (IDS, np.array([0, 0, 3, 8]), dict(mode="sum")),                # an empty bag
    (IDS, np.array([0, 0, 3, 8]), dict(mode="max")),
    (IDS, np.array([0, 2, 3, 7]), dict(mode="mean", padding_idx=2)),
    (IDS, np.array([0, 2, 3, 7]), dict(mode="sum", include_last_offset=True)),  # last runs on
])
def test_embedding_bag_matches_torch_and_finite_differences(ids, offsets, kwargs):
    check_op(lambda w, i, o: F.embedding_bag(i, w, o, **kwargs),
             lambda w, i, o: TF.embedding_bag(i, w, o, **kwargs), randn(10, 3, seed=1), ids,
             offsets)


def test_per_sample_weights_match_torch_and_finite_differences():
    check_op(lambda w, i, o, p: F.embedding_bag(i, w, o, mode="sum", per_sample_weights=p,
                                                include_last_offset=True),
             lambda w, i, o, p: TF.embedding_bag(i, w, o, mode="sum", per_sample_weights=p,
                                                 include_last_offset=True),
             randn(10, 3, seed=2), IDS, np.array([0, 4, 4, 9]), randn(9, seed=3))


def test_max_norm_renormalizes_the_rows_looked_up_as_torch():
    w = randn(10, 3, seed=4) * 3
    ours, theirs = rg.tensor(w), torch.tensor(w)
    F.embedding_bag(rg.tensor(IDS[:4]), ours, rg.tensor([0, 2]), max_norm=1.0)
    TF.embedding_bag(torch.tensor(IDS[:4]), theirs, torch.tensor([0, 2]), max_norm=1.0)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_scale_grad_by_freq_divides_each_row_by_its_ids_count():
    # NOTE: PyTorch's CPU embedding_bag divides by wrong counts when ids repeat (id 2 below
    # gets 1/3); retrograd divides each row by its own count, as nn.Embedding does
    w = rg.ones(4, 1, requires_grad=True)
    y = F.embedding_bag(rg.tensor([1, 2, 1, 1]), w, rg.tensor([0, 2]), mode="sum",
                        scale_grad_by_freq=True)
    y.backward(rg.tensor([[1.0], [10.0]]))
    assert w.grad.flatten().tolist() == [0.0, 7.0, 1.0, 0.0]


def test_layer_matches_torch_state_dict_repr_and_from_pretrained():
    ours = rg.nn.EmbeddingBag(10, 3, mode="sum", padding_idx=-1)
    theirs = torch.nn.EmbeddingBag(10, 3, mode="sum", padding_idx=-1)
    assert repr(ours) == repr(theirs) == "EmbeddingBag(10, 3, mode='sum', padding_idx=9)"
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert ours.weight[9].tolist() == [0.0, 0.0, 0.0]
    theirs.load_state_dict({"weight": torch.tensor(ours.weight.detach().numpy())})
    per = randn(9, seed=5).astype(np.float32)
    got = ours(rg.tensor(IDS), rg.tensor([0, 3]), rg.tensor(per))
    want = theirs(torch.tensor(IDS), torch.tensor([0, 3]), torch.tensor(per))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)
    frozen = rg.nn.EmbeddingBag.from_pretrained(rg.tensor([[1.0, 2.0], [3.0, 4.0]]), mode="max")
    assert not frozen.weight.requires_grad and frozen(rg.tensor([[0, 1]])).tolist() == [[3, 4]]


@pytest.mark.parametrize("call, error, message", [
    (lambda w: F.embedding_bag(rg.tensor([[1, 2]]), w, rg.tensor([0])), ValueError,
     "if input is 2D, then offsets has to be None"),
    (lambda w: F.embedding_bag(rg.tensor([1, 2]), w), ValueError,
     "offsets has to be a 1D Tensor but got None"),
    (lambda w: F.embedding_bag(rg.tensor([[[1]]]), w), ValueError, "dimension 3"),
    (lambda w: F.embedding_bag(rg.tensor([1, 2, 3]), w, rg.tensor([1, 2])), RuntimeError,
     r"offsets\[0\] has to be 0"),
    (lambda w: F.embedding_bag(rg.tensor([1, 2, 3]), w, rg.tensor([0, 2, 1])), RuntimeError,
     "non-decreasing"),
    (lambda w: F.embedding_bag(rg.tensor([1, 2, 3]), w, rg.tensor([0, 5])), RuntimeError,
     r"offsets\[-1\] can not be greater than input's length 3"),
    (lambda w: F.embedding_bag(rg.tensor([1, 10]), w, rg.tensor([0, 1])), IndexError,
     "token id 10 is out of range"),
    (lambda w: F.embedding_bag(rg.tensor([[1, 2]]), w, mode="min"), ValueError, "mode"),
    (lambda w: F.embedding_bag(rg.tensor([[1, 2]]), w, mode="max", scale_grad_by_freq=True),
     ValueError, "max mode does not support scaling"),
    (lambda w: F.embedding_bag(rg.tensor([[1, 2]]), w, per_sample_weights=rg.ones(1, 2)),
     NotImplementedError, "only supported for mode='sum'"),
    (lambda w: F.embedding_bag(rg.tensor([[1, 2]]), w, per_sample_weights=rg.ones(2)),
     ValueError, r"per_sample_weights \(\(2,\)\) is not None, then it must have the same shape"),
    (lambda w: F.embedding_bag(rg.tensor([[1, 2]]), w, mode="sum",
                               per_sample_weights=rg.ones(1, 2, dtype=rg.float64)),
     RuntimeError, "of weight's dtype retrograd.float32"),
    (lambda w: F.embedding_bag(rg.tensor([[1, 2]]), w[0]), ValueError, "weight has to be a 2D"),
    (lambda w: rg.nn.EmbeddingBag(10, 3)(rg.tensor([1.0])), RuntimeError,
     r"EmbeddingBag\(10, 3, mode='mean'\): input must hold integers"),
])
def test_errors_name_the_op_and_the_values(call, error, message):
    with pytest.raises(error, match=message):
        call(rg.randn(10, 3))
