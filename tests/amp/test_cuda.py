"""PyTorch's CUDA spellings of mixed precision on a machine without CUDA:
``torch.cuda.amp.GradScaler``/``autocast`` and ``torch.amp.*("cuda")`` are disabled (with a
warning when asked to be enabled), as in a CPU-only PyTorch, so scripts that make them
unconditionally run unchanged."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg


def _made(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = make()
    return made, [w for w in caught if issubclass(w.category, UserWarning)
                  and not issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("spelling", ["cuda.amp", "amp"])
def test_a_cuda_grad_scaler_is_disabled_as_in_a_cpu_only_pytorch(spelling, enabled):
    def make(fw):
        if spelling == "cuda.amp":
            return fw.cuda.amp.GradScaler(enabled=enabled)
        return fw.amp.GradScaler("cuda", enabled=enabled)

    ours, our_warnings = _made(lambda: make(rg))
    theirs, their_warnings = _made(lambda: make(torch))
    assert ours.is_enabled() is theirs.is_enabled() is False
    assert bool(our_warnings) == bool(their_warnings) == enabled
    if enabled:
        assert "'cuda' is not available" in str(our_warnings[0].message)


def test_a_disabled_scaler_passes_the_loss_and_the_step_through():
    scaler, _ = _made(lambda: rg.cuda.amp.GradScaler())
    w = rg.nn.Parameter(rg.tensor([1.0, 2.0]))
    optimizer = rg.optim.SGD([w], lr=0.5)
    loss = (w * w).sum()
    assert scaler.scale(loss) is loss
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    np.testing.assert_array_equal(w.detach().numpy(), [0.0, 0.0])


@pytest.mark.parametrize("spelling", ["cuda.amp", "amp"])
def test_a_cuda_autocast_runs_its_block_without_autocast(spelling):
    def make(fw):
        return fw.cuda.amp.autocast() if spelling == "cuda.amp" else fw.amp.autocast("cuda")

    context, caught = _made(lambda: make(rg))
    assert caught and "'cuda' is not available" in str(caught[0].message)
    layer = rg.nn.Linear(3, 2)
    with context:
        assert not rg.amp.is_autocast_enabled()
        y = layer(rg.randn(4, 3))
    assert y.dtype == rg.float32
    _, their_caught = _made(lambda: make(torch))
    assert their_caught   # PyTorch warns too


def test_a_disabled_cuda_autocast_says_nothing():
    _, caught = _made(lambda: rg.amp.autocast("cuda", enabled=False))
    assert not caught
