"""NumPy calls on Tensors (retrograd/_numpy_interop.py): ``np.exp(t)``, ``np.sum(t, axis=...)``,
``array * t`` return differentiable Tensors, which is what lets one backward rule run on arrays
(plain backward) and on Tensors (create_graph=True). Unsupported calls fail with a clear error."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import Function, gradgradcheck
from tests.oracle import GRADCHECK_TOLERANCES, check_op, randn

ARR = randn(3, 4, seed=7)
POS = randn(3, 4, seed=8, low=0.5)

# (id, retrograd fn through NumPy, the same computation in torch, input)
UFUNCS = [
    ("add", lambda t: np.add(t, 2.0), lambda t: t + 2.0, randn(3, 4)),
    ("add_array_left", lambda t: np.add(ARR, t), lambda t: torch.tensor(ARR) + t, randn(3, 4)),
    ("subtract_array_left", lambda t: np.subtract(ARR, t), lambda t: torch.tensor(ARR) - t,
     randn(3, 4)),
    ("subtract", lambda t: np.subtract(t, ARR), lambda t: t - torch.tensor(ARR), randn(3, 4)),
    ("multiply_array_left", lambda t: np.multiply(ARR, t), lambda t: torch.tensor(ARR) * t,
     randn(3, 4)),
    ("divide_array_left", lambda t: np.true_divide(ARR, t), lambda t: torch.tensor(ARR) / t,
     randn(3, 4, low=0.5)),
    ("divide", lambda t: np.divide(t, POS), lambda t: t / torch.tensor(POS), randn(3, 4)),
    ("power_array_base", lambda t: np.power(POS, t), lambda t: torch.tensor(POS) ** t, randn(3, 4)),
    ("power", lambda t: np.power(t, 2.0), lambda t: t ** 2.0, randn(3, 4)),
    ("matmul_array_left", lambda t: np.matmul(ARR, t), lambda t: torch.tensor(ARR) @ t,
     randn(4, 2)),
    ("negative", np.negative, torch.negative, randn(3, 4)),
    ("exp", np.exp, torch.exp, randn(3, 4)),
    ("log", np.log, torch.log, randn(3, 4, low=0.5)),
    ("sqrt", np.sqrt, torch.sqrt, randn(3, 4, low=0.5)),
    ("sin", np.sin, torch.sin, randn(3, 4)),
    ("cos", np.cos, torch.cos, randn(3, 4)),
    ("tanh", np.tanh, torch.tanh, randn(3, 4)),
    ("absolute", np.abs, torch.abs, randn(3, 4, low=0.2)),
    ("maximum", lambda t: np.maximum(t, 0.3), lambda t: torch.clamp(t, min=0.3),
     randn(3, 4, low=0.5) * np.sign(randn(3, 4, seed=2))),
    ("minimum_array_left", lambda t: np.minimum(ARR, t),
     lambda t: torch.minimum(torch.tensor(ARR), t),
     randn(3, 4)),
    ("operator_array_left", lambda t: ARR * t + ARR,
     lambda t: torch.tensor(ARR) * t + torch.tensor(ARR),
     randn(3, 4)),
]


@pytest.mark.parametrize("name, rg_fn, torch_fn, x", UFUNCS, ids=[u[0] for u in UFUNCS])
def test_differentiable_ufuncs_match_torch(name, rg_fn, torch_fn, x):
    (y,) = check_op(rg_fn, torch_fn, x)
    assert isinstance(y, rg.Tensor) and y.grad_fn is not None


FUNCTIONS = [
    ("sum", lambda t: np.sum(t), lambda t: t.sum(), (2, 3, 4)),
    ("sum_axis_keepdims", lambda t: np.sum(t, axis=(0, 2), keepdims=True),
     lambda t: t.sum((0, 2), keepdim=True), (2, 3, 4)),
    ("mean_axis", lambda t: np.mean(t, axis=-1), lambda t: t.mean(-1), (2, 3, 4)),
    ("transpose", np.transpose, lambda t: t.permute(2, 1, 0), (2, 3, 4)),
    ("transpose_axes", lambda t: np.transpose(t, (1, 0, 2)), lambda t: t.permute(1, 0, 2),
     (2, 3, 4)),
    ("swapaxes", lambda t: np.swapaxes(t, -1, -2), lambda t: t.transpose(-1, -2), (2, 3, 4)),
    ("broadcast_to", lambda t: np.broadcast_to(t, (2, 3, 4)), lambda t: t.expand(2, 3, 4), (3, 1)),
    ("expand_dims", lambda t: np.expand_dims(t, 1), lambda t: t.unsqueeze(1), (2, 3)),
    ("expand_dims_many", lambda t: np.expand_dims(t, (0, -1)), lambda t: t[None, ..., None],
     (2, 3)),
    ("reshape", lambda t: np.reshape(t, (6, 4)), lambda t: t.reshape(6, 4), (2, 3, 4)),
    ("squeeze", np.squeeze, torch.squeeze, (1, 3, 1)),
    ("squeeze_axis", lambda t: np.squeeze(t, axis=0), lambda t: t.squeeze(0), (1, 3, 1)),
    ("clip", lambda t: np.clip(t, -0.5, 0.5), lambda t: t.clamp(-0.5, 0.5), (3, 4)),
    ("concatenate", lambda t: np.concatenate([t, t * 2.0], axis=1),
     lambda t: torch.cat([t, t * 2.0], 1), (2, 3)),
    ("stack", lambda t: np.stack([t, t * 2.0], axis=-1), lambda t: torch.stack([t, t * 2.0], -1),
     (2, 3)),
]


@pytest.mark.parametrize("name, rg_fn, torch_fn, shape", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_array_functions_match_torch(name, rg_fn, torch_fn, shape):
    x = randn(*shape)
    if name == "clip":
        x = np.where(np.abs(np.abs(x) - 0.5) < 0.1, x * 1.5, x)
    (y,) = check_op(rg_fn, torch_fn, x)
    assert isinstance(y, rg.Tensor)


def test_dtype_arguments_are_honoured_and_out_is_refused():
    x = rg.tensor([[1, 2], [3, 4]])
    assert np.sum(x, dtype=np.float64).dtype == rg.float64
    assert np.mean(x, axis=0, dtype=np.float32).tolist() == [2.0, 3.0]
    assert np.concatenate([x, x], dtype=np.float16).dtype == rg.float16
    for call in (lambda: np.sum(x, out=np.empty(())), lambda: np.mean(x, out=np.empty(())),
                 lambda: np.stack([x, x], out=np.empty((2, 2, 2), np.int64)),
                 lambda: np.concatenate([x, x], out=np.empty((4, 2), np.int64))):
        with pytest.raises(TypeError, match=r"np\.\w+: out= is not supported on retrograd Tensors"):
            call()


def test_where_on_tensors():
    cond = np.array([[True, False, True], [False, True, True]])
    check_op(lambda c, a, b: np.where(c, a, b), torch.where, cond, randn(2, 3), randn(3, seed=1))
    with pytest.raises(TypeError):
        np.where(rg.tensor(cond))  # the one-argument form (nonzero) is not supported


def test_shape_queries():
    x = rg.ones(2, 3)
    assert np.shape(x) == (2, 3) and np.ndim(x) == 2 and np.size(x) == 6 and np.size(x, 1) == 3


def test_non_differentiable_ufuncs_return_tensors_without_graph():
    x = rg.tensor([-1.0, 0.0, np.inf], requires_grad=True)
    for y in (np.greater(x, 0), np.isfinite(x), np.sign(x), np.equal(x, 0.0),
              np.logical_not(np.isnan(x)), np.logical_and(np.isfinite(x), np.less(x, 1.0))):
        assert isinstance(y, rg.Tensor) and not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(np.sign(x).numpy(), [-1.0, 0.0, 1.0])


def test_asarray_gives_the_array():
    x = rg.tensor([1.0, 2.0])
    a = np.asarray(x)
    assert isinstance(a, np.ndarray) and np.shares_memory(a, x.numpy())
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert np.array(x, copy=True) is not x.numpy()


def test_numpy_scalars_act_like_python_scalars():
    x = rg.ones(2)
    assert (np.float64(2.0) * x).dtype == rg.float32  # as torch: a scalar does not promote
    assert (x * np.float64(2.0)).dtype == rg.float32
    assert (np.ones(2) * x).dtype == rg.float64  # an array does


def test_unsupported_numpy_calls_name_the_function():
    x = rg.ones(3)
    with pytest.raises(TypeError, match=r"np.sort is not supported on retrograd Tensors"):
        np.sort(x)
    with pytest.raises(TypeError, match="arctan"):
        np.arctan(x)
    with pytest.raises(TypeError):
        np.exp(x, out=np.empty(3))  # keyword arguments are not mapped
    with pytest.raises(TypeError):
        np.add.reduce(x)  # ufunc methods other than __call__ are not mapped


class _SoftplusNumpy(Function):
    """y = log(1 + exp(x)); backward written with NumPy calls only (as op backwards are).

    dL/dx = dL/dy * sigmoid(x) = dL/dy * exp(x - y)
    """

    @staticmethod
    def forward(ctx, x):
        y = np.log1p(np.exp(x))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        weights = np.where(x > 100.0, 1.0, np.exp(x - y))
        return np.sum(np.expand_dims(grad_out * weights, 0), axis=0)


def test_a_numpy_backward_rule_is_differentiable_through_the_interop():
    x = rg.tensor(randn(2, 3), requires_grad=True)
    y = _SoftplusNumpy.apply(x)
    (g,) = rg.autograd.grad([y.sum()], [x], create_graph=True)
    assert g.grad_fn is not None  # the NumPy calls in backward were recorded
    assert gradgradcheck(_SoftplusNumpy.apply, [x], **GRADCHECK_TOLERANCES)
    check_op(_SoftplusNumpy.apply, torch.nn.functional.softplus, randn(2, 3))
