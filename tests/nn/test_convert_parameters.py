"""nn.utils.parameters_to_vector and vector_to_parameters against PyTorch."""

import numpy as np
import pytest
import torch

import retrograd as rg


def test_parameters_to_vector_matches_torch_and_is_differentiable():
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Conv1d(2, 2, 2))
    ours = rg.nn.Sequential(rg.nn.Linear(3, 2), rg.nn.Conv1d(2, 2, 2))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    vec = rg.nn.utils.parameters_to_vector(ours.parameters())
    np.testing.assert_array_equal(
        vec.detach().numpy(),
        torch.nn.utils.parameters_to_vector(theirs.parameters()).detach().numpy())
    (vec * rg.arange(vec.numel())).sum().backward()
    assert ours[0].weight.grad.flatten().tolist() == list(range(6))


def test_vector_to_parameters_writes_each_slice_as_torch():
    ours, theirs = rg.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    vec = np.arange(9.0, dtype=np.float32)
    rg.nn.utils.vector_to_parameters(rg.tensor(vec), ours.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(vec), theirs.parameters())
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    with pytest.raises(TypeError, match="vector_to_parameters: expected a Tensor, but got: "
                                        "ndarray"):
        rg.nn.utils.vector_to_parameters(vec, ours.parameters())
    with pytest.raises(RuntimeError, match="vec has 4 elements, the parameters need 8"):
        rg.nn.utils.vector_to_parameters(rg.zeros(4), ours.parameters())
    with pytest.raises(TypeError, match="pass model.parameters"):
        rg.nn.utils.parameters_to_vector(ours)
