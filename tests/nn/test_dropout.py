"""The Dropout layer (retrograd/nn/dropout.py): training vs eval mode, scaling, the same mask
in backward, p = 0 and p = 1, repr and errors, compared with torch.nn.Dropout's rule."""

import numpy as np
import pytest
import torch

import retrograd as rg


def test_dropout_layer_follows_training_mode():
    layer = rg.nn.Dropout(0.25)
    x = rg.ones(20, 30, requires_grad=True)
    y = layer(x)
    values = set(np.unique(y.detach().numpy()).tolist())
    assert values == {0.0, float(np.float32(1.0 / 0.75))}
    y.backward(rg.ones(20, 30))
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())  # the same mask
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert layer(x) is not x


def test_dropout_layer_matches_torch_in_eval_mode_and_at_the_edges():
    x = np.random.default_rng(0).standard_normal((4, 5))
    for p, training in ((0.5, False), (0.0, True), (1.0, True)):
        ours, theirs = rg.nn.Dropout(p), torch.nn.Dropout(p)
        ours.train(training)
        theirs.train(training)
        rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ry, ty = ours(rx), theirs(tx)
        np.testing.assert_array_equal(ry.detach().numpy(), ty.detach().numpy())
        ry.sum().backward()
        ty.sum().backward()
        np.testing.assert_array_equal(rx.grad.numpy(), tx.grad.numpy())


def test_dropout_layer_defaults_repr_and_state():
    ours, theirs = rg.nn.Dropout(), torch.nn.Dropout()
    assert ours.p == theirs.p == 0.5
    assert repr(ours) == repr(theirs)
    assert repr(rg.nn.Dropout(0.1, inplace=True)) == repr(torch.nn.Dropout(0.1, inplace=True))
    assert ours.state_dict() == {} and list(ours.parameters()) == []


def test_dropout_layer_draws_from_retrograd_generator():
    rg.manual_seed(3)
    a = rg.nn.Dropout(0.5)(rg.ones(64)).numpy()
    rg.manual_seed(3)
    b = rg.nn.Dropout(0.5)(rg.ones(64)).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("p", [-0.5, 1.01])
def test_dropout_layer_rejects_bad_probabilities_like_torch(p):
    with pytest.raises(ValueError, match="probability has to be between 0 and 1"):
        rg.nn.Dropout(p)
    with pytest.raises(ValueError, match="probability has to be between 0 and 1"):
        torch.nn.Dropout(p)
