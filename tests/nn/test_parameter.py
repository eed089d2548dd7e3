"""Parameter: a leaf Tensor that a Module registers, compared with torch.nn.Parameter."""

import copy
import pickle

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.nn import Parameter


def test_parameter_is_a_tensor_that_requires_grad_by_default():
    p = Parameter(rg.zeros(2, 3))
    assert isinstance(p, rg.Tensor) and isinstance(p, Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert p.shape == (2, 3) and p.dtype == rg.float32


def test_parameter_requires_grad_false():
    p = Parameter(rg.zeros(2), requires_grad=False)
    assert not p.requires_grad
    assert repr(p) == repr(torch.nn.Parameter(torch.zeros(2), requires_grad=False))


@pytest.mark.parametrize("data", [
    lambda lib: lib.zeros(2),
    lambda lib: lib.tensor([[1.0, -2.0], [3.0, 4.0]]),
    lambda lib: lib.ones(0),
])
def test_parameter_repr_matches_torch(data):
    ours, theirs = Parameter(data(rg)), torch.nn.Parameter(data(torch))
    assert repr(ours).startswith("Parameter containing:\n")
    assert repr(ours) == repr(theirs)


def test_parameter_without_data_is_empty_like_torch():
    assert repr(Parameter()) == repr(torch.nn.Parameter())
    assert Parameter().shape == (0,)


def test_parameter_shares_memory_with_its_tensor():
    t = rg.zeros(3)
    p = Parameter(t)
    assert np.shares_memory(p.detach().numpy(), t.numpy())
    t.numpy()[1] = 7.0
    assert p.detach().numpy()[1] == 7.0
    with rg.no_grad():
        p.add_(1.0)
    np.testing.assert_array_equal(t.numpy(), [1.0, 8.0, 1.0])


def test_parameter_shares_memory_with_a_numpy_array():
    a = np.zeros(3, dtype=np.float32)
    p = Parameter(a)
    a[0] = 5.0
    assert p.detach().numpy()[0] == 5.0


def test_parameter_shares_the_version_counter_of_its_tensor():
    t = rg.zeros(3)
    p = Parameter(t)
    before = p._version[0]
    t.add_(1.0)
    assert p._version[0] == before + 1


def test_parameter_from_a_non_leaf_is_a_leaf_sharing_memory():
    x = rg.ones(3, requires_grad=True)
    y = x * 2.0
    p = Parameter(y)
    assert p.is_leaf and p.grad_fn is None and p.requires_grad
    assert np.shares_memory(p.detach().numpy(), y.detach().numpy())
    (p * p).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [4.0, 4.0, 4.0])
    assert x.grad is None  # the graph of y was cut


def test_parameter_accumulates_gradients_like_torch():
    values = np.arange(6.0).reshape(2, 3)
    ours, theirs = Parameter(rg.tensor(values)), torch.nn.Parameter(torch.tensor(values))
    for p in (ours, theirs):
        (p * p).sum().backward()
        (p * 3.0).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_ops_on_a_parameter_give_plain_tensors():
    p = Parameter(rg.ones(2))
    y = p * 2.0
    assert type(y) is rg.Tensor and not isinstance(y, Parameter)
    assert type(p.detach()) is rg.Tensor


def test_integer_parameter_cannot_require_grad():
    with pytest.raises(RuntimeError, match="only floating-point tensors can require"):
        Parameter(rg.tensor([1, 2]))
    p = Parameter(rg.tensor([1, 2]), requires_grad=False)
    assert p.dtype == rg.int64


@pytest.mark.parametrize("requires_grad", [True, False])
def test_parameter_pickle_round_trip(requires_grad):
    p = Parameter(rg.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=rg.float64),
                  requires_grad=requires_grad)
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is Parameter
    assert q.requires_grad == requires_grad and q.dtype == rg.float64
    np.testing.assert_array_equal(q.detach().numpy(), p.detach().numpy())
    assert not np.shares_memory(q.detach().numpy(), p.detach().numpy())


def test_parameter_deepcopy_is_an_independent_parameter():
    p = Parameter(rg.ones(3))
    q = copy.deepcopy(p)
    assert type(q) is Parameter and q.requires_grad
    with rg.no_grad():
        q.mul_(5.0)
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 1.0, 1.0])


def test_parameter_numpy_needs_detach_like_torch():
    p = Parameter(rg.ones(2))
    with pytest.raises(RuntimeError, match="requires grad"):
        p.numpy()
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 1.0])
