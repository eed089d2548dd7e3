"""Grad mode: no_grad, enable_grad, set_grad_enabled and inference_mode as context managers
and decorators, nesting, restoring the mode after exceptions, and ops that record no graph."""

import pytest
import torch

import retrograd as rg
from retrograd.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled


@pytest.fixture
def x():
    return rg.tensor([1.0, 2.0], requires_grad=True)


def test_exports():
    assert rg.no_grad is no_grad and rg.enable_grad is enable_grad
    assert rg.set_grad_enabled is set_grad_enabled and rg.is_grad_enabled is is_grad_enabled


def test_ops_under_no_grad_have_no_graph(x):
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2.0).exp().sum()
        s, i = (x * 1.0).reshape(1, 2).max(dim=1)
    assert is_grad_enabled()
    for t in (y, s):
        assert not t.requires_grad and t.grad_fn is None and t.is_leaf


def test_nesting_restores_each_level(x):
    with no_grad():
        with enable_grad():
            assert is_grad_enabled()
            y = x * 2.0
            with no_grad():
                assert not is_grad_enabled()
            assert is_grad_enabled()
        assert not is_grad_enabled()
        z = x * 2.0
    assert is_grad_enabled()
    assert y.requires_grad and not z.requires_grad


def test_mode_restored_after_an_exception():
    with pytest.raises(ValueError):
        with no_grad():
            raise ValueError("inside")
    assert is_grad_enabled()
    with no_grad():
        with pytest.raises(ValueError):
            with enable_grad():
                raise ValueError("inside")
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_no_grad_decorator_with_and_without_parentheses(x):
    @no_grad()
    def called(t):
        return t * 2.0, is_grad_enabled()

    @no_grad  # like PyTorch, a bare decorator works too
    def bare(t):
        """Docstring kept."""
        return t * 2.0, is_grad_enabled()

    for fn in (called, bare):
        y, mode = fn(x)
        assert not y.requires_grad and mode is False
        assert is_grad_enabled()
    assert bare.__name__ == "bare" and bare.__doc__ == "Docstring kept."


def test_enable_grad_decorator_inside_no_grad(x):
    @enable_grad
    def record(t):
        return t * 2.0

    with no_grad():
        assert record(x).requires_grad
        assert not is_grad_enabled()


def test_set_grad_enabled_as_function_context_and_decorator(x):
    set_grad_enabled(False)  # takes effect at once, like PyTorch
    try:
        assert not is_grad_enabled()
        assert not (x * 2.0).requires_grad
    finally:
        set_grad_enabled(True)
    assert is_grad_enabled()
    with set_grad_enabled(False):
        assert not is_grad_enabled()
        with set_grad_enabled(True):
            assert (x * 2.0).requires_grad
        assert not is_grad_enabled()
    assert is_grad_enabled()

    @set_grad_enabled(False)
    def frozen(t):
        return t * 2.0

    assert is_grad_enabled()  # decorating changes nothing by itself
    assert not frozen(x).requires_grad
    assert is_grad_enabled()


def test_decorated_generator_runs_every_step_in_the_mode(x):
    # bug: the decorator only wrapped the call that builds the generator
    @no_grad()
    def steps():
        for _ in range(2):
            received = yield is_grad_enabled(), (x * 2.0).requires_grad
            assert received == "ping"
        return "done"

    gen = steps()
    assert next(gen) == (False, False)
    assert is_grad_enabled()
    assert gen.send("ping") == (False, False)
    with pytest.raises(StopIteration) as stop:
        gen.send("ping")
    assert stop.value.value == "done"
    assert is_grad_enabled()


def test_backward_runs_with_grad_mode_off_inside_and_restores_it(x):
    seen = []
    y = x * 2.0
    y.register_hook(lambda g: seen.append(is_grad_enabled()))
    y.sum().backward()
    assert seen == [False] and is_grad_enabled()
    y = x * 2.0
    y.register_hook(lambda g: seen.append(is_grad_enabled()))
    y.sum().backward(create_graph=True)
    assert seen == [False, True] and is_grad_enabled()


def test_inplace_under_no_grad_is_not_recorded(x):
    y = x * 2.0
    with no_grad():
        y.mul_(3.0)
    assert y.grad_fn.name() == "MulBackward"
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]  # the in-place change is invisible to autograd
    assert y.tolist() == [6.0, 12.0]


def test_leaf_can_be_updated_in_place_under_no_grad(x):
    with no_grad():
        x -= 0.5 * rg.tensor([1.0, 1.0])
    assert x.is_leaf and x.requires_grad and x.tolist() == [0.5, 1.5]


# ---------------------------------------------------------------- inference_mode
def test_inference_mode_turns_recording_off_like_torch(x):
    tx = torch.ones(2, requires_grad=True)
    with rg.inference_mode(), torch.inference_mode():
        y, ty = x * 2, tx * 2
        assert rg.is_inference_mode_enabled() is torch.is_inference_mode_enabled() is True
        assert not is_grad_enabled()
    assert y.requires_grad == ty.requires_grad is False and y.grad_fn is None
    assert rg.is_inference_mode_enabled() is torch.is_inference_mode_enabled() is False
    assert is_grad_enabled()


def test_inference_mode_false_leaves_grad_mode_as_it_is(x):
    with rg.inference_mode(mode=False):
        assert is_grad_enabled() and not rg.is_inference_mode_enabled()
        assert (x * 2).requires_grad
    with no_grad(), rg.inference_mode(False):
        assert not is_grad_enabled()
    with rg.inference_mode(), rg.inference_mode(False):
        assert not is_grad_enabled() and not rg.is_inference_mode_enabled()


def test_inference_mode_decorator_with_and_without_parentheses(x):
    @rg.inference_mode
    def bare(a):
        """Doubles."""
        return a * 2, rg.is_inference_mode_enabled()

    @rg.inference_mode()
    def called(a):
        return a * 2

    out, inside = bare(x)
    assert not out.requires_grad and inside and bare.__name__ == "bare"
    assert bare.__doc__ == "Doubles."
    assert not called(x).requires_grad
    assert is_grad_enabled() and not rg.is_inference_mode_enabled()


def test_inference_mode_restores_after_an_exception(x):
    with pytest.raises(ValueError):
        with rg.inference_mode():
            raise ValueError("boom")
    assert is_grad_enabled() and not rg.is_inference_mode_enabled()


def test_inference_mode_decorates_generators(x):
    @rg.inference_mode()
    def steps():
        for _ in range(2):
            yield rg.is_inference_mode_enabled(), (x * 2).requires_grad

    assert list(steps()) == [(True, False), (True, False)]
    assert not rg.is_inference_mode_enabled()
