"""SingularValues (retrograd/ops/svd.py): values and gradient against PyTorch's svdvals for
tall, wide, square, batched and empty matrices; alone by finite differences; half precision
computed in float32; once differentiable; the cost."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd.cost import ArrayInfo, OpCall, cost_of
from retrograd.ops.svd import SingularValues
from tests.oracle import check_backward_alone, check_op, randn


@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (4, 4), (2, 3, 4, 2), (1, 1), (0, 3),
                                   (2, 3, 0)], ids=str)
def test_matches_torch(shape):
    check_op(lambda a: SingularValues.apply(a), torch.linalg.svdvals, randn(*shape))


def test_backward_alone():
    check_backward_alone(SingularValues, [randn(2, 5, 3)])


def test_half_precision_is_computed_in_float32():
    a = randn(4, 3)
    s = SingularValues.apply(rg.tensor(a, dtype=rg.float16))
    assert s.dtype == rg.float16
    np.testing.assert_allclose(s.float().numpy(), np.linalg.svd(a, compute_uv=False), rtol=2e-3)


def test_second_derivative_is_refused_by_name():
    a = rg.tensor(randn(3, 3), requires_grad=True)
    (g,) = rg.autograd.grad(SingularValues.apply(a).sum(), a, create_graph=True)
    with pytest.raises(RuntimeError, match="SingularValuesBackward.*differentiated twice"):
        g.sum().backward()


def test_cost_grows_with_the_vectors_only_when_the_gradient_is_needed():
    f32 = np.dtype("float32")
    call = OpCall(SingularValues, (ArrayInfo((2, 8, 4), f32),), {}, (ArrayInfo((2, 4), f32),),
                  (False,))
    values_only = cost_of(call)
    assert values_only.flops == 2 * (4 * 8 * 16 - (4 * 64) // 3)
    assert values_only.backward_flops == 0
    call.needs_input_grad = (True,)
    with_vectors = cost_of(call)
    assert with_vectors.flops > values_only.flops
    assert with_vectors.backward_flops == 2 * (8 * 4 + 2 * 8 * 4 * 4)
