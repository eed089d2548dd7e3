"""nn.DataParallel on the CPU: the wrapped module's call, its state-dict keys prefixed
``module.`` and its results, as PyTorch's DataParallel gives them without GPUs."""

import numpy as np
import pytest
import torch

import retrograd as rg


def test_forward_backward_and_state_dict_match_pytorch():
    theirs = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                                       torch.nn.Linear(4, 2)))
    ours = rg.nn.DataParallel(rg.nn.Sequential(rg.nn.Linear(3, 4), rg.nn.ReLU(),
                                               rg.nn.Linear(4, 2)))
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict({k: rg.tensor(v.numpy()) for k, v in state.items()})
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    y, yt = ours(rg.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    y.sum().backward()
    yt.sum().backward()
    for (name, p), (_, pt) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-6, atol=1e-6,
                                   err_msg=name)
    assert isinstance(ours.module, rg.nn.Sequential)


def test_gpu_ids_and_non_modules_are_clear_errors():
    with pytest.raises(RuntimeError, match=r"DataParallel: device_ids \[0, 1\] name GPUs"):
        rg.nn.DataParallel(rg.nn.Linear(2, 2), device_ids=[0, 1])
    with pytest.raises(RuntimeError, match="output_device 'cuda:0' is not available"):
        rg.nn.DataParallel(rg.nn.Linear(2, 2), output_device="cuda:0")
    with pytest.raises(TypeError, match="DataParallel: module must be a Module, got int"):
        rg.nn.DataParallel(3)
