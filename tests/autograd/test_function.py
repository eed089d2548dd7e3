"""The Function protocol: user-defined ops, what they may save, multiple outputs,
non-differentiable outputs, materialize_grads, needs_input_grad, once_differentiable,
errors that name the op, and saved_tensors_hooks."""

import gc
import weakref

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import Function, saved_tensors_hooks
from tests.oracle import check_backward_alone, check_op, randn


class Cube(Function):
    """y = x^3.  dL/dx = dL/dy * 3 x^2.  Saves: x (an input)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * 3.0 * x * x


class ExpOut(Function):
    """y = exp(x).  dL/dx = dL/dy * y.  Saves: y (an output)."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * y


class ScaledProduct(Function):
    """y = a * b * k for a constant k (a positional non-Tensor).  Saves: a, b."""

    seen_needs = None

    @staticmethod
    def forward(ctx, a, b, k):
        ScaledProduct.seen_needs = ctx.needs_input_grad
        ctx.k = k
        ctx.save_for_backward(a, b)
        return a * b * k

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        need_a, need_b, _ = ctx.needs_input_grad
        return (grad_out * b * ctx.k if need_a else None,
                grad_out * a * ctx.k if need_b else None, None)


class SumAndSquare(Function):
    """Two outputs: s = x + 1 and q = x^2.  dL/dx = dL/ds + 2 x dL/dq."""

    received = None

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x + 1.0, x * x

    @staticmethod
    def backward(ctx, grad_s, grad_q):
        SumAndSquare.received = (grad_s, grad_q)
        (x,) = ctx.saved_tensors
        return grad_s + 2.0 * x * grad_q


class SumAndSquareNoMaterialize(SumAndSquare):
    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x)
        return x + 1.0, x * x

    @staticmethod
    def backward(ctx, grad_s, grad_q):
        SumAndSquare.received = (grad_s, grad_q)
        (x,) = ctx.saved_tensors
        grad = grad_s if grad_s is not None else 0.0
        return grad + 2.0 * x * grad_q if grad_q is not None else grad


class SortWithIndices(Function):
    """(sorted x, argsort indices); the indices are marked non-differentiable."""

    received = None

    @staticmethod
    def forward(ctx, x):
        order = np.argsort(x)
        mask = (x > 0).astype(x.dtype)  # a float output that is not differentiable either
        ctx.mark_non_differentiable(order, mask)
        ctx.order = order
        return x[order], order, mask

    @staticmethod
    def backward(ctx, grad_sorted, grad_order, grad_mask):
        SortWithIndices.received = (grad_order, grad_mask)
        grad = np.zeros_like(grad_sorted)
        grad[ctx.order] = grad_sorted
        return grad


class TooManyGradients(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * 2.0, grad_out


class WrongShapeGradient(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, grad_out):
        return np.ones((7,))


class SavesIntermediate(Function):
    """Saves tanh(x), which is neither an input nor an output: not allowed."""

    @staticmethod
    def forward(ctx, x):
        t = np.tanh(x)
        ctx.save_for_backward(t)
        return 2.0 * t

    @staticmethod
    def backward(ctx, grad_out):
        (t,) = ctx.saved_tensors
        return 2.0 * grad_out * (1.0 - t * t)


class FusedTanh2(SavesIntermediate):
    """The same op declared once_differentiable: saving an intermediate is then allowed."""

    once_differentiable = True
    backward_types = None

    @staticmethod
    def backward(ctx, grad_out):
        (t,) = ctx.saved_tensors
        FusedTanh2.backward_types = (type(grad_out), type(t))
        return 2.0 * grad_out * (1.0 - t * t)


class NoBackward(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0


def tensor64(array, requires_grad=True):
    return rg.tensor(array, dtype=rg.float64, requires_grad=requires_grad)


# ---------------------------------------------------------------- user-defined ops
@pytest.mark.parametrize("op, torch_fn", [(Cube, lambda x: x ** 3), (ExpOut, torch.exp)])
def test_user_function_matches_torch(op, torch_fn):
    check_op(lambda x: op.apply(x), torch_fn, randn(3, 4))
    check_backward_alone(op, [randn(3, 4)])


def test_user_function_float32_matches_torch():
    check_op(lambda x: Cube.apply(x), lambda x: x ** 3, randn(2, 5), dtype=np.float32)


def test_constants_pass_through_and_needs_input_grad():
    a = tensor64(randn(3))
    b = tensor64(randn(3, seed=1), requires_grad=False)
    y = ScaledProduct.apply(a, b, 2.5)
    assert ScaledProduct.seen_needs == (True, False, False)
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), randn(3, seed=1) * 2.5, rtol=1e-15)
    assert b.grad is None


def test_no_input_requires_grad_records_nothing():
    y = Cube.apply(tensor64(randn(3), requires_grad=False))
    assert not y.requires_grad and y.grad_fn is None


def test_node_name_and_next_functions():
    x = tensor64(randn(3))
    y = Cube.apply(x * 2.0)
    assert y.grad_fn.name() == "CubeBackward"
    (mul_edge,) = y.grad_fn.next_functions
    assert mul_edge[0].name() == "MulBackward"
    assert mul_edge[0].next_functions[0][0].name() == "AccumulateGrad"
    assert mul_edge[0].next_functions[0][0].variable is x


# ---------------------------------------------------------------- multiple outputs
def test_multiple_outputs_both_used():
    x = tensor64(randn(4))
    s, q = SumAndSquare.apply(x)
    assert s.grad_fn is q.grad_fn and (s._output_nr, q._output_nr) == (0, 1)
    (s * 3.0 + q).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0 + 2.0 * randn(4), rtol=1e-15)


def test_unused_output_gets_a_zero_gradient_by_default():
    x = tensor64(randn(4))
    s, _ = SumAndSquare.apply(x)
    s.sum().backward()
    grad_s, grad_q = SumAndSquare.received
    np.testing.assert_array_equal(grad_q, np.zeros(4))
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(4))


def test_set_materialize_grads_false_passes_none():
    x = tensor64(randn(4))
    _, q = SumAndSquareNoMaterialize.apply(x)
    q.sum().backward()
    grad_s, grad_q = SumAndSquare.received
    assert grad_s is None and grad_q is not None
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * randn(4), rtol=1e-15)


def test_mark_non_differentiable_outputs():
    x = tensor64([3.0, -1.0, 2.0])
    values, order, mask = SortWithIndices.apply(x)
    assert values.requires_grad
    assert not order.requires_grad and order.grad_fn is None and order.dtype == rg.int64
    assert not mask.requires_grad and mask.grad_fn is None
    (values * tensor64([1.0, 2.0, 3.0], requires_grad=False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 1.0, 2.0])
    # like PyTorch, non-differentiable outputs get zero gradients (not None)
    grad_order, grad_mask = SortWithIndices.received
    np.testing.assert_array_equal(grad_order, np.zeros(3))
    np.testing.assert_array_equal(grad_mask, np.zeros(3))


def test_torch_also_passes_zeros_for_non_differentiable_outputs():
    # the convention the test above follows
    received = []

    class TorchSort(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            order = torch.argsort(x)
            ctx.mark_non_differentiable(order)
            return x[order], order

        @staticmethod
        def backward(ctx, grad_values, grad_order):
            received.append(grad_order)
            return torch.zeros_like(grad_values)

    values, _ = TorchSort.apply(torch.tensor([3.0, 1.0], requires_grad=True))
    values.sum().backward()
    assert received[0] is not None and not received[0].any()


# ---------------------------------------------------------------- errors naming the op
def test_returning_too_many_gradients_names_the_op():
    with pytest.raises(RuntimeError, match="TooManyGradientsBackward: backward returned 2 "
                                           "gradients, but the op has 1 inputs"):
        TooManyGradients.apply(tensor64([1.0, 2.0])).sum().backward()


def test_gradient_of_the_wrong_shape_names_the_op():
    with pytest.raises(RuntimeError, match=r"WrongShapeGradientBackward: backward returned a "
                                           r"gradient of shape \(7,\) for input 0, which has "
                                           r"shape \(2,\)"):
        WrongShapeGradient.apply(tensor64([1.0, 2.0])).sum().backward()


def test_missing_backward_names_the_op():
    with pytest.raises(NotImplementedError, match="NoBackward has no backward rule"):
        NoBackward.apply(tensor64([1.0])).sum().backward()


def test_saving_an_intermediate_without_once_differentiable_is_a_type_error():
    with pytest.raises(TypeError, match="SavesIntermediate.forward saved an array that is "
                                        "neither an input nor an output"):
        SavesIntermediate.apply(tensor64([1.0]))


# ---------------------------------------------------------------- once_differentiable
def test_once_differentiable_may_save_intermediates_and_runs_on_arrays():
    check_op(lambda x: FusedTanh2.apply(x), lambda x: 2.0 * torch.tanh(x), randn(3, 2))
    x = tensor64(randn(3))
    FusedTanh2.apply(x).sum().backward(create_graph=True)
    assert FusedTanh2.backward_types == (np.ndarray, np.ndarray)


def test_once_differentiable_double_backward_raises_naming_the_op():
    x = tensor64(randn(3))
    (g,) = rg.autograd.grad(FusedTanh2.apply(x).sum(), x, create_graph=True)
    assert g.requires_grad  # it depends on x: never a silent constant
    with pytest.raises(RuntimeError, match="FusedTanh2Backward: this op's backward is not "
                                           "differentiable"):
        g.sum().backward()


def test_once_differentiable_result_is_not_silently_a_constant():
    # bug: with a constant incoming gradient, the first derivative did not require grad, so
    # an expression mixing it with x silently got a wrong (partial) second derivative
    x = tensor64(randn(3))
    (g,) = rg.autograd.grad(FusedTanh2.apply(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="FusedTanh2Backward"):
        (g * x).sum().backward()


def test_once_differentiable_raises_through_the_incoming_gradient_too():
    x = tensor64(randn(3))
    w = tensor64(randn(3, seed=1))
    y = FusedTanh2.apply(x)
    (g,) = rg.autograd.grad((y * w).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="FusedTanh2Backward"):
        rg.autograd.grad(g.sum(), w)


# ---------------------------------------------------------------- saved_tensors_hooks
def test_pack_and_unpack_run_once_per_saved_tensor():
    packed, unpacked = [], []

    def pack(t):
        packed.append(t.shape)
        return t

    def unpack(t):
        unpacked.append(t.shape)
        return t

    x = tensor64(randn(3))
    w = tensor64(randn(3, seed=1))
    with saved_tensors_hooks(pack, unpack):
        y = (x * w).exp()  # Mul saves x and w, Exp saves its output
    assert len(packed) == 3 and unpacked == []
    y.sum().backward()
    assert len(unpacked) == 3
    np.testing.assert_allclose(x.grad.numpy(), (randn(3, seed=1) * y.detach().numpy()),
                               rtol=1e-15)


def test_hooks_apply_only_inside_the_context():
    packed = []
    x = tensor64(randn(3))
    with saved_tensors_hooks(lambda t: packed.append(1) or t, lambda t: t):
        x.exp()
    x.exp()
    assert len(packed) == 1


def test_innermost_hooks_win():
    outer, inner = [], []
    x = tensor64(randn(3))
    with saved_tensors_hooks(lambda t: outer.append(1) or t, lambda t: t):
        with saved_tensors_hooks(lambda t: inner.append(1) or t, lambda t: t):
            x.exp()
    assert outer == [] and inner == [1]


def test_pack_to_float16_is_used_by_backward_and_frees_the_original():
    # bug: the packed entry also kept the original array, so packing freed no memory
    x = rg.tensor(randn(50), dtype=rg.float32, requires_grad=True)
    h = x * 2.0

    def pack(t):
        return t.detach().numpy().astype(np.float16)

    def unpack(a):
        return rg.tensor(a.astype(np.float32))

    with saved_tensors_hooks(pack, unpack):
        s = h.tanh()  # saves its output
        y = s * h  # saves s and h
    refs = [weakref.ref(s._data), weakref.ref(h._data)]
    del s, h
    gc.collect()
    assert all(r() is None for r in refs)
    y.sum().backward()
    xv = randn(50).astype(np.float32)
    exact = 2 * (1 - np.tanh(2 * xv) ** 2) * 2 * xv + 2 * np.tanh(2 * xv)
    np.testing.assert_allclose(x.grad.numpy(), exact, rtol=2e-2, atol=1e-2)  # float16 storage
    assert not np.allclose(x.grad.numpy(), exact, rtol=1e-6, atol=0)  # really used float16


def test_hooks_can_count_saved_bytes():
    saved_bytes = []
    x = rg.tensor(randn(4, 8), dtype=rg.float32, requires_grad=True)
    w = rg.tensor(randn(8, 3, seed=1), dtype=rg.float32, requires_grad=True)
    with saved_tensors_hooks(lambda t: saved_bytes.append(t.nbytes) or t, lambda t: t):
        (x @ w).tanh().sum()
    assert saved_bytes == [4 * 8 * 4, 8 * 3 * 4, 4 * 3 * 4]  # x, w, tanh output (float32)


def test_double_backward_through_packed_tensors_that_unpack_to_copies():
    x = tensor64(randn(3))
    with saved_tensors_hooks(lambda t: t.detach().numpy().copy(), lambda a: rg.tensor(a)):
        h = x * x
        y = (h * h.exp()).sum()  # saves a leaf, a non-leaf and an output
    (g,) = rg.autograd.grad(y, x, create_graph=True)
    (g2,) = rg.autograd.grad(g.sum(), x)
    xt = torch.tensor(randn(3), requires_grad=True)
    ht = xt * xt
    (gt,) = torch.autograd.grad((ht * ht.exp()).sum(), xt, create_graph=True)
    (g2t,) = torch.autograd.grad(gt.sum(), xt)
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g2.numpy(), g2t.numpy(), rtol=1e-12)


def test_unpack_must_return_a_tensor():
    x = tensor64(randn(3))
    with saved_tensors_hooks(lambda t: t, lambda t: t.numpy(force=True)):
        y = x.exp().sum()
    with pytest.raises(TypeError, match="ExpBackward: the unpack hook of saved_tensors_hooks "
                                        "must return a Tensor, got ndarray"):
        y.backward()


def test_version_check_still_applies_to_packed_tensors():
    x = tensor64(randn(3))
    with saved_tensors_hooks(lambda t: t.detach().numpy().copy(), lambda a: rg.tensor(a)):
        y = x.exp()
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="ExpBackward: a tensor saved for backward"):
        y.sum().backward()


def test_hooks_also_pack_intermediates_of_once_differentiable_ops():
    # bug: arrays saved as constants (a fused kernel's buffers) bypassed pack, so memory
    # accounting missed them and offloading could not free them
    packed, unpacked = [], []

    def pack(t):
        packed.append(t.shape)
        return t.detach().numpy().copy()

    def unpack(a):
        unpacked.append(a.shape)
        return rg.tensor(a)

    x = tensor64(randn(3))
    with saved_tensors_hooks(pack, unpack):
        y = FusedTanh2.apply(x) * 2.0  # FusedTanh2 saves tanh(x); Mul saves the constant 2.0
    assert packed == [(3,)]
    y.sum().backward()
    assert unpacked == [(3,)]
    np.testing.assert_allclose(x.grad.numpy(), 4.0 * (1 - np.tanh(randn(3)) ** 2), rtol=1e-14)


def test_saved_values_name_what_they_kept():
    """Each saved value says what it is (an input, an output or a constant), which one, and
    the version it was saved at; the in-place check reads those names."""
    from retrograd.autograd.function import CONSTANT, INPUT, OUTPUT, SavedValue

    class Scale(rg.autograd.Function):
        once_differentiable = True

        @staticmethod
        def forward(ctx, x, w):
            y = x * w
            ctx.save_for_backward(w, y, np.ones(1))
            return y

        @staticmethod
        def backward(ctx, grad_out):
            w, _, _ = ctx.saved_tensors
            return grad_out * w, None

    x = rg.tensor([1.0, 2.0], requires_grad=True)
    w = rg.tensor([3.0, 4.0])
    y = Scale.apply(x, w)
    saved = y.grad_fn._saved
    assert all(isinstance(s, SavedValue) for s in saved)
    assert [(s.kind, s.position) for s in saved] == [(INPUT, 1), (OUTPUT, 0), (CONSTANT, 0)]
    assert saved[0].value is w and saved[1].value is y._data
    assert saved[0].saved_version == 0 and not saved[0].is_stale()
    assert repr(saved[0]) == "<SavedValue input 1>"
    with rg.no_grad():
        w.add_(1.0)
    assert saved[0].is_stale()
    with pytest.raises(RuntimeError, match=r"ScaleBackward: a tensor saved for backward "
                                           r"\(input 1\) was modified by an in-place operation: "
                                           r"it is at version 1, expected version 0"):
        y.sum().backward()
