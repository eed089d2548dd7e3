"""retrograd.compile (retrograd/_compile.py): PyTorch's torch.compile forms are accepted, the
model or function comes back unchanged (retrograd runs eagerly), and arguments PyTorch refuses
are refused."""

import pytest
import torch

import retrograd as rg


def test_compile_returns_the_model_unchanged():
    model = rg.nn.Linear(3, 2)
    x = rg.randn(4, 3)
    compiled = rg.compile(model, mode="max-autotune", fullgraph=True, dynamic=False)
    assert compiled is model
    assert compiled(x).tolist() == model(x).tolist()


def test_compile_as_a_decorator_with_and_without_arguments():
    @rg.compile
    def double(x):
        return 2 * x

    @rg.compile(mode="reduce-overhead", backend="inductor")
    def triple(x):
        return 3 * x

    assert double(rg.ones(2)).tolist() == [2.0, 2.0] and double.__name__ == "double"
    assert triple(rg.ones(2)).tolist() == [3.0, 3.0]


@pytest.mark.parametrize("mode", [None, "default", "lite", "reduce-overhead",
                                  "max-autotune-no-cudagraphs", "max-autotune"])
def test_every_torch_mode_is_accepted(mode):
    fn = rg.compile(lambda x: x, mode=mode)
    assert fn(1) == 1


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(mode="fast"), RuntimeError, "compile: unrecognized mode='fast', should be one of"),
    (dict(mode="default", options={}), RuntimeError, "either mode or options"),
])
def test_bad_arguments_are_refused_as_torch(kwargs, error, message):
    with pytest.raises(error):
        torch.compile(lambda x: x, **kwargs)
    with pytest.raises(error, match=message):
        rg.compile(lambda x: x, **kwargs)


def test_compiling_what_is_not_callable_is_an_error():
    with pytest.raises(TypeError, match="compile: expected a Module or a function, got int"):
        rg.compile(5)
    with pytest.raises(TypeError, match="compile: expected a Module or a function, got str"):
        rg.compile(mode="default")("model")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        rg.compile(lambda x: x, fast=True)
