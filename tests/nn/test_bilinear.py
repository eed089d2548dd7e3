"""nn.Bilinear and F.bilinear: outputs and every gradient against PyTorch (batched, extra
leading dims, unbatched, without bias), float64 finite differences (first and second order),
the layer with torch's state dict, PyTorch's parameter names, shapes, init bounds and repr,
and errors naming the op or the layer."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradgradcheck
from tests.oracle import GRADCHECK_TOLERANCES, check_op, randn


@pytest.mark.parametrize("lead", [(3,), (2, 3), ()])
def test_bilinear_matches_torch(lead):
    x1, x2 = randn(*lead, 4, seed=1), randn(*lead, 5, seed=2)
    weight, bias = randn(6, 4, 5, seed=3), randn(6, seed=4)
    check_op(F.bilinear, TF.bilinear, x1, x2, weight, bias)
    check_op(F.bilinear, TF.bilinear, x1, x2, weight, gradcheck=False)
    check_op(F.bilinear, TF.bilinear, *(a.astype(np.float32) for a in (x1, x2, weight, bias)),
             dtype=np.float32)


def test_bilinear_is_twice_differentiable():
    inputs = [rg.tensor(randn(*s, seed=k), requires_grad=True)
              for k, s in enumerate([(2, 3), (2, 2), (4, 3, 2), (4,)])]
    assert gradgradcheck(F.bilinear, inputs, **GRADCHECK_TOLERANCES)


def test_layer_matches_torch_with_its_state_dict():
    theirs = torch.nn.Bilinear(4, 5, 6).double()
    ours = rg.nn.Bilinear(4, 5, 6, dtype=rg.float64)
    assert repr(ours) == repr(theirs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    ours.load_state_dict({k: rg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    x1, x2 = randn(2, 3, 4, seed=5), randn(2, 3, 5, seed=6)
    check_op(lambda a, b: ours(a, b), lambda a, b: theirs(a, b), x1, x2, gradcheck=False)
    cotangent = randn(2, 3, 6, seed=7)
    (ours(rg.tensor(x1), rg.tensor(x2)) * rg.tensor(cotangent)).sum().backward()
    (theirs(torch.tensor(x1), torch.tensor(x2)) * torch.tensor(cotangent)).sum().backward()
    for name, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(),
                                   dict(theirs.named_parameters())[name].grad.numpy(),
                                   rtol=1e-12, atol=1e-14)


def test_init_without_bias_and_defaults():
    layer = rg.nn.Bilinear(16, 3, 200, bias=False)
    assert layer.bias is None and list(layer.state_dict()) == ["weight"]
    assert layer.weight.dtype == rg.float32 and layer.weight.shape == (200, 16, 3)
    weight = layer.weight.detach().numpy()
    bound = 1 / math.sqrt(16)     # from in1_features, as PyTorch
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.95 * bound
    assert repr(layer) == "Bilinear(in1_features=16, in2_features=3, out_features=200, bias=False)"


def test_errors_name_the_op_or_the_layer():
    w = rg.randn(6, 4, 5)
    with pytest.raises(RuntimeError, match=r"bilinear: input batch dimensions do not match: got "
                                           r"input1 of shape \(3, 4\) and input2 of shape "
                                           r"\(2, 5\)"):
        F.bilinear(rg.randn(3, 4), rg.randn(2, 5), w)
    with pytest.raises(RuntimeError, match="bilinear: input dimensions do not match"):
        F.bilinear(rg.randn(3, 4), rg.randn(3, 1, 5), w)
    with pytest.raises(RuntimeError, match="bilinear: input2 size does not match weight size: "
                                           "got 6 but expected 5"):
        F.bilinear(rg.randn(3, 4), rg.randn(3, 6), w)
    with pytest.raises(RuntimeError, match=r"bilinear: bias size does not match weight size: "
                                           r"got bias of shape \(5,\), expected \(6,\)"):
        F.bilinear(rg.randn(3, 4), rg.randn(3, 5), w, rg.randn(5))
    with pytest.raises(ValueError, match="bilinear: weight must be 3-D"):
        F.bilinear(rg.randn(3, 4), rg.randn(3, 5), rg.randn(4, 5))
    with pytest.raises(TypeError, match="bilinear: expected input1, input2, weight .* of one "
                                        "dtype"):
        F.bilinear(rg.randn(3, 4, dtype=rg.float64), rg.randn(3, 5), w)
    with pytest.raises(RuntimeError, match=r"Bilinear\(in1_features=4.*\): input1 size does not "
                                           r"match weight size"):
        rg.nn.Bilinear(4, 5, 6)(rg.randn(3, 3), rg.randn(3, 5))
    with pytest.raises(ValueError, match="Bilinear: in1_features must be > 0"):
        rg.nn.Bilinear(0, 5, 6)
