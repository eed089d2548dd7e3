"""set_printoptions (retrograd/_printing.py): PyTorch's options change how tensors print,
profiles reset them, bad values are errors, and the defaults print as before."""

import math

import pytest
import torch

import retrograd as rg
from retrograd._printing import get_printoptions


@pytest.fixture(autouse=True)
def default_options():
    rg.set_printoptions(profile="default")
    yield
    rg.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


def test_defaults_are_torch_defaults():
    options = get_printoptions()
    theirs = torch._tensor_str.PRINT_OPTS
    for name in ("precision", "threshold", "edgeitems", "linewidth", "sci_mode"):
        assert options[name] == getattr(theirs, name), name
    # NOTE: the numbers are NumPy's formatting, which differs from PyTorch's in spacing
    assert repr(rg.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"


def test_precision_rounds_the_printed_values():
    rg.set_printoptions(precision=2)
    assert repr(rg.tensor([1.23456, 2.5])) == "tensor([1.23, 2.5 ])"
    assert repr(rg.tensor(3.14159)) == "tensor(3.14)"


def test_threshold_and_edgeitems_summarize_as_torch():
    rg.set_printoptions(threshold=5)
    torch.set_printoptions(threshold=5)
    assert repr(rg.arange(10.0)).replace(" ", "") == repr(torch.arange(10.0)).replace(" ", "") \
        == "tensor([0.,1.,2.,...,7.,8.,9.])"
    rg.set_printoptions(edgeitems=1)
    torch.set_printoptions(edgeitems=1)
    assert repr(rg.arange(10.0)).replace(" ", "") == repr(torch.arange(10.0)).replace(" ", "") \
        == "tensor([0.,...,9.])"
    assert repr(rg.arange(4.0)) == repr(torch.arange(4.0))  # under the threshold: every value


def test_profiles():
    rg.set_printoptions(profile="short")
    assert get_printoptions()["precision"] == 2 and get_printoptions()["edgeitems"] == 2
    assert repr(rg.tensor([1.23456])) == "tensor([1.23])"
    rg.set_printoptions(profile="full")
    assert get_printoptions()["threshold"] == math.inf
    assert "..." not in repr(rg.arange(2000.0))
    rg.set_printoptions(profile="default", precision=3)
    assert get_printoptions()["precision"] == 3 and get_printoptions()["threshold"] == 1000


def test_sci_mode():
    rg.set_printoptions(sci_mode=True)
    torch.set_printoptions(sci_mode=True)
    assert repr(rg.tensor([1.23456, 2.5])) == repr(torch.tensor([1.23456, 2.5])) == \
        "tensor([1.2346e+00, 2.5000e+00])"
    assert repr(rg.tensor([1, 2])) == "tensor([1, 2])"  # integers are never scientific
    rg.set_printoptions(sci_mode=False)
    assert repr(rg.tensor([1e-8, 2.5])) == "tensor([0. , 2.5])"
    rg.set_printoptions(sci_mode=None)
    assert "e-08" in repr(rg.tensor([1e-8, 2.5]))


def test_linewidth_wraps_lines():
    rg.set_printoptions(linewidth=30)
    lines = repr(rg.arange(12.0)).splitlines()
    assert len(lines) > 1 and max(len(line) for line in lines) <= 30
    rg.set_printoptions(linewidth=200)
    assert len(repr(rg.arange(12.0)).splitlines()) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(profile="huge"), "profile must be one of 'default', 'short', 'full'"),
    (dict(precision=-1), "precision must be a non-negative int, got -1"),
    (dict(threshold=2.5), "threshold must be a non-negative int"),
    (dict(linewidth="80"), "linewidth must be a non-negative int"),
    (dict(sci_mode="yes"), "sci_mode must be None, True or False"),
])
def test_bad_options_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"set_printoptions: {message}"):
        rg.set_printoptions(**kwargs)
    assert get_printoptions()["precision"] == 4
