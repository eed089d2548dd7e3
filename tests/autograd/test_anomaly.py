"""Anomaly mode: creation sites of ops, NaN/Inf in backward reported with the op and the
user's line, notes on failing backwards, and nothing recorded by default."""

import inspect
import os

import numpy as np
import pytest

import retrograd as rg
from retrograd.autograd import Function, detect_anomaly, set_detect_anomaly

THIS_FILE = os.path.abspath(__file__)


def line_here():
    return inspect.currentframe().f_back.f_lineno


class FailingBackward(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, grad_out):
        raise ValueError("backward exploded")


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(invalid="ignore", divide="ignore"):
        yield


def test_off_by_default_no_site_and_no_check():
    x = rg.tensor([-1.0, 4.0], requires_grad=True)
    y = x.sqrt()
    assert y.grad_fn.creation_site is None
    y.sum().backward()  # NaN passes silently, as in PyTorch without anomaly mode
    assert np.isnan(x.grad.numpy()[0])


def test_records_the_users_line():
    x = rg.tensor([1.0], requires_grad=True)
    with detect_anomaly():
        y = x.exp(); line = line_here()  # noqa: E702
    frame = y.grad_fn.creation_site[-1]
    assert os.path.abspath(frame.filename) == THIS_FILE
    assert frame.lineno == line and frame.name == "test_records_the_users_line"
    z = x.exp()
    assert z.grad_fn.creation_site is None  # off again after the block


def test_site_of_an_op_made_inside_a_tensor_method_is_still_the_users_line():
    x = rg.tensor([[1.0, 2.0]], requires_grad=True)
    with detect_anomaly():
        y = x.T.reshape(2).softmax(0); line = line_here()  # noqa: E702
    assert y.grad_fn.creation_site[-1].lineno == line


def test_nan_in_backward_names_the_op_and_the_line():
    x = rg.tensor([-1.0, 4.0], requires_grad=True)
    with detect_anomaly():
        y = x.sqrt(); line = line_here()  # noqa: E702
        loss = (y * 2.0).sum()
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    message = str(info.value)
    assert message.startswith("SqrtBackward: backward produced NaN in the gradient of input 0 "
                              "(shape (2,))")
    assert f"{THIS_FILE}:{line}" in message and "y = x.sqrt()" in message


def test_inf_in_backward_is_reported_too():
    x = rg.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        y = x.sqrt()
        with pytest.raises(RuntimeError, match="SqrtBackward: backward produced Inf"):
            y.sum().backward()


def test_the_first_bad_op_is_reported_not_a_later_one():
    x = rg.tensor([-1.0], requires_grad=True)
    with detect_anomaly():
        y = (x.log() * 3.0).exp()  # NaN from log(-1) in forward; MulBackward sees no NaN
        with pytest.raises(RuntimeError, match="^ExpBackward: backward produced NaN"):
            y.sum().backward()


def test_check_nan_false_records_sites_but_does_not_raise():
    x = rg.tensor([-1.0], requires_grad=True)
    with detect_anomaly(check_nan=False):
        y = x.sqrt()
        y.sum().backward()
    assert y.grad_fn.creation_site is not None
    assert np.isnan(x.grad.item())


def test_an_error_inside_backward_gets_a_note_with_the_creation_line():
    x = rg.tensor([1.0], requires_grad=True)
    with detect_anomaly():
        y = FailingBackward.apply(x); line = line_here()  # noqa: E702
        with pytest.raises(ValueError, match="backward exploded") as info:
            y.sum().backward()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "FailingBackwardBackward" in notes and f"{THIS_FILE}:{line}" in notes


def test_version_error_under_anomaly_mode_points_at_the_op():
    x = rg.tensor([1.0], requires_grad=True)
    with detect_anomaly():
        y = x.exp(); line = line_here()  # noqa: E702
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="ExpBackward: a tensor saved") as info:
            y.sum().backward()
    assert f"{THIS_FILE}:{line}" in "\n".join(info.value.__notes__)


def test_decorator_and_set_detect_anomaly():
    @detect_anomaly()
    def make(t):
        return t.exp()

    x = rg.tensor([1.0], requires_grad=True)
    assert make(x).grad_fn.creation_site is not None
    assert make.__name__ == "make"
    assert x.exp().grad_fn.creation_site is None
    with set_detect_anomaly(True):
        assert x.exp().grad_fn.creation_site is not None
        with set_detect_anomaly(False):
            assert x.exp().grad_fn.creation_site is None
        assert x.exp().grad_fn.creation_site is not None
    assert x.exp().grad_fn.creation_site is None


def test_exported_from_autograd():
    assert rg.autograd.detect_anomaly is detect_anomaly
