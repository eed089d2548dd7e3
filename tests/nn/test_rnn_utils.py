"""nn.utils.rnn.pad_sequence (retrograd/nn/utils/rnn.py) against torch.nn.utils.rnn: values,
layouts (batch_first, padding_side), padding values and dtypes, the gradient of every
sequence (a random cotangent on the padded batch, and float64 finite differences), inputs
given as a tuple, a generator or one tensor, and argument errors."""

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence as torch_pad_sequence

import retrograd as rg
from retrograd.autograd import gradcheck
from retrograd.nn.utils.rnn import pad_sequence
from tests.oracle import GRADCHECK_TOLERANCES, randn

LENGTHS = [(3, 1, 2), (4,), (2, 2), (0, 3, 1), (1, 5, 5, 2)]


def _sequences(lengths, trailing=(2,), seed=0):
    return [randn(n, *trailing, seed=seed + i) for i, n in enumerate(lengths)]


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("trailing", [(), (2,), (2, 3)])
def test_pad_sequence_matches_torch_values_and_gradients(lengths, batch_first, padding_side,
                                                         trailing):
    arrays = _sequences(lengths, trailing)
    ours = [rg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = pad_sequence(ours, batch_first, -1.5, padding_side)
    expected = torch_pad_sequence(theirs, batch_first, -1.5, padding_side)
    assert y.shape == tuple(expected.shape) and y.dtype == rg.float64
    np.testing.assert_array_equal(y.detach().numpy(), expected.detach().numpy())
    cotangent = randn(*y.shape, seed=9)
    y.backward(rg.tensor(cotangent))
    expected.backward(torch.tensor(cotangent))
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_pad_sequence_gradcheck_through_the_engine():
    inputs = [rg.tensor(a, requires_grad=True) for a in _sequences((3, 1, 2), (2,), seed=3)]
    for padding_side in ("right", "left"):
        assert gradcheck(lambda *s: pad_sequence(list(s), True, 0.5, padding_side) ** 2,
                         inputs, **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("padding_value", [0, 0.5, -7])
def test_pad_sequence_of_token_ids_keeps_int64_like_torch(padding_value):
    ids = [np.array([5, 2, 9]), np.array([4]), np.array([1, 1])]
    ours = pad_sequence([rg.tensor(a) for a in ids], batch_first=True,
                        padding_value=padding_value)
    theirs = torch_pad_sequence([torch.tensor(a) for a in ids], batch_first=True,
                                padding_value=padding_value)
    assert ours.dtype == rg.int64 and ours.tolist() == theirs.tolist()


def test_pad_sequence_takes_the_first_dtype_and_any_iterable_like_torch():
    a, b = np.ones((2, 3)), np.full((1, 3), 2.0)
    mixed = pad_sequence([rg.tensor(a, dtype=rg.float32), rg.tensor(b, dtype=rg.float64)])
    expected = torch_pad_sequence([torch.tensor(a, dtype=torch.float32), torch.tensor(b)])
    assert mixed.dtype == rg.float32 and expected.dtype == torch.float32
    np.testing.assert_array_equal(mixed.numpy(), expected.numpy())
    assert pad_sequence((rg.tensor(a), rg.tensor(b))).shape == (2, 2, 3)
    assert pad_sequence(rg.tensor(x) for x in (a, b)).shape == (2, 2, 3)
    stacked = randn(2, 3, 4, seed=5)
    np.testing.assert_array_equal(pad_sequence(rg.tensor(stacked)).numpy(),
                                  torch_pad_sequence(torch.tensor(stacked)).numpy())


def test_pad_sequence_feeds_an_lstm_and_is_reachable_as_in_torch():
    assert rg.nn.utils.rnn.pad_sequence is pad_sequence
    seqs = [rg.randn(n, 3, requires_grad=True) for n in (4, 2, 3)]
    out, _ = rg.nn.LSTM(3, 5, batch_first=True)(pad_sequence(seqs, batch_first=True))
    out.sum().backward()
    assert out.shape == (3, 4, 5) and all(s.grad.shape == s.shape for s in seqs)


def test_pad_sequence_errors():
    with pytest.raises(RuntimeError, match="pad_sequence: received an empty list of sequences"):
        pad_sequence([])
    with pytest.raises(RuntimeError, match=r"pad_sequence: every sequence must have the trailing "
                                           r"dims \(2,\) of sequence 0 \(shape \(3, 2\)\), but "
                                           r"sequence 1 has shape \(2, 3\)"):
        pad_sequence([rg.ones(3, 2), rg.ones(2, 3)])
    with pytest.raises(RuntimeError, match="pad_sequence: sequence 1 is 0-d"):
        pad_sequence([rg.ones(2), rg.tensor(1.0)])
    with pytest.raises(TypeError, match="pad_sequence: sequence 0 must be a Tensor, got list"):
        pad_sequence([[1.0, 2.0]])
    with pytest.raises(ValueError, match="pad_sequence: padding_side must be 'left' or 'right', "
                                         "got 'middle'"):
        pad_sequence([rg.ones(2)], padding_side="middle")
