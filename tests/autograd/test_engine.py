"""The backward engine: graph shapes, accumulation, retain_graph, roots, errors, memory,
and gradients of gradients compared with PyTorch."""

import gc
import weakref

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import retrograd as rg
from retrograd.autograd import Function
from retrograd.autograd.engine import sum_to_shape
from tests.oracle import randn


def pair(array, requires_grad=True):
    """The same float64 values as a retrograd tensor and a torch tensor."""
    return (rg.tensor(array, dtype=rg.float64, requires_grad=requires_grad),
            torch.tensor(array, dtype=torch.float64, requires_grad=requires_grad))


def assert_close(rg_tensor, torch_tensor, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(rg_tensor.detach().numpy(), torch_tensor.detach().numpy(),
                               rtol=rtol, atol=atol)


class CountingSquare(Function):
    """y = x^2, counting its backward calls (to see a shared node run once)."""

    calls = 0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        CountingSquare.calls += 1
        (x,) = ctx.saved_tensors
        return 2.0 * grad_out * x


# ---------------------------------------------------------------- graph shapes
def diamond(x):
    a = x * 2.0
    b = x.exp()
    c = x.tanh()
    return (a * b + b * c + a + x).sum()


def test_diamond_with_shared_subexpressions_matches_torch():
    x, xt = pair(randn(3, 4))
    diamond(x).backward()
    diamond(xt).backward()
    assert_close(x.grad, xt.grad)


def test_shared_node_runs_backward_once_with_the_summed_gradient():
    x = rg.tensor(randn(5), dtype=rg.float64, requires_grad=True)
    s = CountingSquare.apply(x)  # used by three ops below
    CountingSquare.calls = 0
    (s * 3.0 + s.exp() + s).sum().backward()
    assert CountingSquare.calls == 1
    xv = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 2 * xv * (3 + np.exp(xv ** 2) + 1), rtol=1e-12)


def test_tensor_used_twice_by_one_op():
    x, xt = pair(randn(4))
    (x * x).sum().backward()
    (xt * xt).sum().backward()
    assert_close(x.grad, xt.grad)


def test_multiple_roots_with_their_own_gradients():
    x, xt = pair(randn(3))
    ga, gb = randn(3, seed=1), randn(3, seed=2)
    rg.autograd.backward([x * 3.0, x.exp()], [rg.tensor(ga, dtype=rg.float64),
                                               rg.tensor(gb, dtype=rg.float64)])
    torch.autograd.backward([xt * 3.0, xt.exp()], [torch.tensor(ga), torch.tensor(gb)])
    assert_close(x.grad, xt.grad)


def test_roots_where_one_depends_on_the_other():
    x, xt = pair(randn(3))
    for m, t in ((rg, x), (torch, xt)):
        y = t.exp()
        z = (y * y).sum()
        m.autograd.backward([z, y.sum()])
    assert_close(x.grad, xt.grad)


def test_leaf_as_root_receives_the_gradient_itself():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    x.backward(rg.tensor([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_gradient_of_a_branch_not_reaching_a_leaf_is_ignored():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    c = rg.tensor([5.0, 6.0])  # does not require grad
    (x * c + c.exp()).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 6.0])
    assert c.grad is None


# ---------------------------------------------------------------- accumulation
def test_gradients_accumulate_into_leaves_across_two_backward_calls():
    x, xt = pair(randn(3))
    for t in (x, xt):
        (t * t).sum().backward()
        (t.exp()).sum().backward()
    assert_close(x.grad, xt.grad)


def test_first_accumulation_copies_so_later_accumulation_leaves_the_first_grad_alone():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    gt = rg.tensor([1.0, 1.0])
    (x + 0.0).backward(gt)
    assert x.grad is not gt
    (x + 0.0).backward(gt)
    np.testing.assert_array_equal(gt.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_create_graph_does_not_alias_the_callers_gradient_into_grad():
    # bug: .grad was the caller's tensor, and the next backward added into it in place
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    gt = rg.tensor([1.0, 1.0])
    (x + 0.0).backward(gt, create_graph=True)
    (x * 1.0).sum().backward()
    np.testing.assert_array_equal(gt.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_grad_returns_without_accumulating():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    (g,) = rg.autograd.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_grad_of_a_non_leaf_input():
    x, xt = pair(randn(3))
    results = []
    for m, t in ((rg, x), (torch, xt)):
        h = t.exp()
        results.append(m.autograd.grad((h * h.tanh()).sum(), [h, t]))
    for a, b in zip(*results):
        assert_close(a, b)


def test_grad_allow_unused():
    x = rg.tensor([1.0], requires_grad=True)
    unused = rg.tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(1,\)\) was not used"):
        rg.autograd.grad((x * 2.0).sum(), [x, unused])
    gx, gu = rg.autograd.grad((x * 2.0).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_grad_leaves_nodes_it_did_not_run_for_a_later_backward():
    # bug: grad(y, h) freed the saved values of nodes below h, which it never ran
    x, xt = pair(randn(2))
    for m, t in ((rg, x), (torch, xt)):
        h = t.exp()
        m.autograd.grad((h * h).sum(), h)
        h.sum().backward()
    assert_close(x.grad, xt.grad)


def test_backward_with_inputs_accumulates_only_there():
    x, xt = pair(randn(3))
    w, wt = pair(randn(3, seed=1))
    (x * w).sum().backward(inputs=[w])
    (xt * wt).sum().backward(inputs=[wt])
    assert x.grad is None and xt.grad is None
    assert_close(w.grad, wt.grad)


# ---------------------------------------------------------------- retain_graph
def test_second_backward_through_freed_buffers_names_the_op():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"ExpBackward: trying to backward through the graph "
                                           r"a second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward_that_accumulates():
    x, xt = pair(randn(3))
    for t in (x, xt):
        y = (t.exp() * t).sum()
        y.backward(retain_graph=True)
        y.backward()
    assert_close(x.grad, xt.grad)
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(randn(3)) * (1 + randn(3)),
                               rtol=1e-12)


def test_ops_without_saved_values_can_run_backward_twice():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1.0).sum()
    y.backward()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


# ---------------------------------------------------------------- errors
def test_non_scalar_backward_without_gradient():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for a scalar output, but output 0 has "
                                           r"shape \(2,\)"):
        (x * 2.0).backward()


def test_gradient_of_the_wrong_shape():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient of shape \(3,\) does not match output 0 "
                                           r"of shape \(2,\)"):
        (x * 2.0).backward(rg.tensor([1.0, 2.0, 3.0]))


def test_backward_on_a_tensor_not_requiring_grad():
    with pytest.raises(RuntimeError, match="does not require grad and has no grad_fn"):
        rg.tensor([1.0, 2.0]).sum().backward()


def test_backward_on_a_result_made_under_no_grad():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with rg.no_grad():
        y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="computed under no_grad"):
        y.backward()


def test_number_of_gradients_must_match_number_of_roots():
    x = rg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="got 1 gradients for 2 outputs"):
        rg.autograd.backward([x * 2.0, x * 3.0], [rg.tensor([1.0])])


def test_grad_of_an_input_not_requiring_grad():
    x = rg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="grad: input 0 does not require grad"):
        rg.autograd.grad((x * 2.0).sum(), rg.tensor([1.0]))


def test_root_gradient_takes_the_output_dtype():
    x = rg.tensor([1.0, 2.0], requires_grad=True)  # float32
    (x * 2.0).backward(rg.tensor([1.0, 1.0], dtype=rg.float64))
    assert x.grad.dtype == rg.float32
    x.grad = None
    x.backward(np.array([1, 1]))  # an integer array on a leaf root
    assert x.grad.dtype == rg.float32
    x.grad = None
    x.backward(rg.tensor([1.0, 1.0], dtype=rg.float64))  # bug: .grad became float64
    assert x.grad.dtype == rg.float32


def test_gradient_dtype_follows_each_input_in_mixed_precision():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    w = rg.tensor([3.0, 4.0], dtype=rg.float64, requires_grad=True)
    (x * w).sum().backward()
    assert x.grad.dtype == rg.float32 and w.grad.dtype == rg.float64
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


# ---------------------------------------------------------------- long chains and memory
def test_chain_of_100000_ops_backpropagates_without_recursion():
    x = rg.tensor(1.5, dtype=rg.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_zero_dim_ops_that_save_their_output():
    # bug: NumPy returns a scalar (not an array) for 0-d results; saving it raised TypeError
    x, xt = pair(0.7)
    for t in (x, xt):
        (t.exp() * t.tanh() * t.sigmoid() + t.sqrt()).backward()
    assert_close(x.grad, xt.grad)


def test_saved_buffers_are_released_after_backward():
    x = rg.tensor(randn(100), requires_grad=True)
    h = x * 2.0
    s = h.tanh()  # Tanh saves its output
    loss = (s * 3.0).sum()
    saved = weakref.ref(s._data)
    del h, s
    gc.collect()
    assert saved() is not None  # held by the graph
    loss.backward()
    assert saved() is None  # freed by backward although `loss` is alive


def test_retain_graph_keeps_saved_buffers_until_the_graph_dies():
    x = rg.tensor(randn(100), requires_grad=True)
    s = (x * 2.0).tanh()
    loss = s.sum()
    saved = weakref.ref(s._data)
    del s
    loss.backward(retain_graph=True)
    assert saved() is not None
    del loss
    assert saved() is None  # no reference cycle: freed without the garbage collector


# ---------------------------------------------------------------- higher order
def mlp_gradient_norm(m, x, w1, w2):
    """||dL/d(x, w1)||^2 for L = sum(softmax(tanh(x @ w1) @ w2)^2) + sum(tanh(x @ w1))."""
    h = (x @ w1).tanh()
    p = (h @ w2).softmax(-1)
    loss = (p * p).sum() + h.sum()
    gx, gw1 = m.autograd.grad(loss, [x, w1], create_graph=True)
    return (gx * gx).sum() + (gw1 * gw1).sum()


def test_gradient_of_a_gradient_norm_matches_torch():
    arrays = (randn(2, 4, seed=0), randn(4, 5, seed=1), randn(5, 3, seed=2))
    ours = [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    norm = mlp_gradient_norm(rg, *ours)
    norm_t = mlp_gradient_norm(torch, *theirs)
    assert_close(norm, norm_t)
    norm.backward()
    norm_t.backward()
    for a, b in zip(ours, theirs):
        assert_close(a.grad, b.grad, rtol=1e-9)


def test_third_derivative_matches_torch():
    x, xt = pair(0.7)
    results = []
    for m, t in ((rg, x), (torch, xt)):
        y = t.sin() * t.exp() + t ** 4
        d1, = m.autograd.grad(y, t, create_graph=True)
        d2, = m.autograd.grad(d1, t, create_graph=True)
        d3, = m.autograd.grad(d2, t)
        results.append((d1, d2, d3))
    for a, b in zip(*results):
        assert_close(a, b)
    # d3 of sin(x) e^x is 2 e^x (cos x - sin x); of x^4 it is 24 x
    assert results[0][2].item() == pytest.approx(2 * np.exp(0.7) * (np.cos(0.7) - np.sin(0.7))
                                                 + 24 * 0.7, rel=1e-12)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_with_create_graph_gives_grads_that_require_grad():
    x, xt = pair(randn(3))
    for t in (x, xt):
        (t ** 3).sum().backward(create_graph=True)
        assert t.grad.requires_grad
        (t.grad * t.grad).sum().backward(inputs=[t])
    assert_close(x.grad, xt.grad)


def test_create_graph_false_gives_plain_gradients():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    (g,) = rg.autograd.grad((x ** 3).sum(), x)
    assert not g.requires_grad and g.grad_fn is None


def test_reentrant_backward_inside_a_hook():
    # what gradient checkpointing does: a nested backward while the outer one runs
    inner = []
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0

    def hook(grad):
        with rg.enable_grad():
            z = rg.tensor([3.0], requires_grad=True)
            (z * z).sum().backward()
            inner.append(z.grad.tolist())

    y.register_hook(hook)
    y.sum().backward()
    assert inner == [[6.0]] and x.grad.tolist() == [2.0, 2.0]
    assert rg.is_grad_enabled()


def test_grad_of_a_tensor_with_respect_to_itself():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    gy, gx = rg.autograd.grad(y.sum(), [y, x])
    assert gy.tolist() == [1.0, 1.0] and gx.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
def test_low_precision_leaves_get_gradients_of_their_dtype(dtype):
    x = rg.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
    (x.exp() * x).sum().backward()
    assert x.grad.dtype == dtype
    exact = np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy().astype(np.float64), exact, rtol=2e-2)


# ---------------------------------------------------------------- broadcasting undone once
@st.composite
def broadcast_pair(draw):
    """A shape and a larger shape it broadcasts to (extra leading dims, stretched 1s)."""
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=3)))
    shape = tuple(1 if draw(st.booleans()) else s for s in shape)
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    target = lead + tuple(draw(st.integers(1, 3)) if s == 1 else s for s in shape)
    return shape, target


@settings(max_examples=60, deadline=None)
@given(broadcast_pair())
def test_sum_to_shape_matches_torch_sum_to_size(shapes):
    shape, target = shapes
    g = np.random.default_rng(0).standard_normal(target)
    expected = torch.from_numpy(g).sum_to_size(shape) if shape else torch.from_numpy(g).sum()
    np.testing.assert_allclose(sum_to_shape(g, shape), expected.numpy(), rtol=1e-12)
    assert sum_to_shape(g, shape).shape == shape


@settings(max_examples=30, deadline=None)
@given(broadcast_pair(), st.booleans())
def test_broadcast_gradients_through_the_engine_match_torch(shapes, swap):
    shape, target = shapes
    a, b = randn(*shape, seed=1), randn(*target, seed=2)
    if swap:
        a, b = b, a
    x, xt = pair(a)
    w, wt = pair(b)
    cotangent = randn(*np.broadcast_shapes(a.shape, b.shape), seed=3)
    (x * w + x).backward(rg.tensor(cotangent, dtype=rg.float64))
    (xt * wt + xt).backward(torch.tensor(cotangent))
    assert_close(x.grad, xt.grad)
    assert_close(w.grad, wt.grad)


def test_sum_to_shape_refuses_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"cannot reduce shape \(2, 3\) to \(4,\)"):
        sum_to_shape(np.ones((2, 3)), (4,))


# ---------------------------------------------------------------- .grad takes fresh gradients
class ReturnsGiven(Function):
    """y = x (a copy); backward returns the array a test put in GIVEN, which then forgets
    it (a test that also puts it in KEPT keeps a second reference), so that a test controls
    who else refers to the gradient array."""

    GIVEN, KEPT = [], []

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad_out):
        g = ReturnsGiven.GIVEN.pop()
        return g


def _grad_of_leaf(gradient, keep=False):
    x = rg.tensor(np.zeros(4), requires_grad=True)
    if keep:
        ReturnsGiven.KEPT.append(gradient)
    ReturnsGiven.GIVEN.append(gradient)
    ident = id(gradient)
    del gradient
    ReturnsGiven.apply(x).sum().backward()
    return x, ident


def test_a_fresh_gradient_becomes_grad_without_a_copy():
    x, ident = _grad_of_leaf(np.arange(4.0))
    assert id(x.grad._data) == ident
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(4.0))
    x2 = rg.tensor(np.ones(3), requires_grad=True)
    (x2 * 3.0).sum().backward()
    (x2 * 3.0).sum().backward()          # the taken array then accumulates in place
    np.testing.assert_array_equal(x2.grad.numpy(), [6.0, 6.0, 6.0])


def test_a_gradient_someone_else_refers_to_is_copied():
    kept = np.arange(4.0)
    x, ident = _grad_of_leaf(kept, keep=True)
    assert id(x.grad._data) != ident
    x.grad.numpy()[:] = -1.0
    np.testing.assert_array_equal(ReturnsGiven.KEPT.pop(), np.arange(4.0))
    # part of a base's memory (taking it would keep all of the base alive), strided
    for make in (lambda: np.arange(8.0)[::2], lambda: np.arange(8.0)[:4]):
        x, ident = _grad_of_leaf(make())
        assert id(x.grad._data) != ident and x.grad.numpy().base is None
    base = np.arange(4.0)
    ReturnsGiven.KEPT.append(base)
    x, ident = _grad_of_leaf(base.reshape(4))   # all of a base someone else holds
    assert id(x.grad._data) != ident
    x.grad.numpy()[:] = -1.0
    np.testing.assert_array_equal(ReturnsGiven.KEPT.pop(), np.arange(4.0))


def test_a_reshape_of_a_fresh_array_is_taken_too():
    """Backwards often return ``result.reshape(shape)``: a view of all of a fresh array
    (NumPy points chains of views at the array that owns the memory)."""
    for make in (lambda: np.arange(4.0).reshape(2, 2).reshape(4),
                 lambda: np.arange(4.0).reshape(4, 1)[:, 0], lambda: np.ones((2, 2)).reshape(4)):
        x, ident = _grad_of_leaf(make())
        assert id(x.grad._data) == ident
    fresh = np.arange(4.0).reshape(1, 4)
    x, ident = _grad_of_leaf(fresh.reshape(4))
    assert id(x.grad._data) != ident          # `fresh` still refers to the base here
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(4.0))


def test_one_array_handed_to_two_leaves_is_not_shared():
    """Add's backward hands the same array to both inputs: one leaf may take it, the other
    gets a copy, and neither sees the other's accumulation."""
    a = rg.tensor([1.0, 2.0], requires_grad=True)
    b = rg.tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(rg.tensor([1.0, 1.0]))
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.numpy()[0] = 100.0
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])


def test_hooks_and_tools_that_see_the_gradient_get_a_copy_in_grad():
    seen = []
    x = rg.tensor(np.zeros(3), requires_grad=True)
    x.register_hook(lambda g: seen.append(g))
    (x * 2.0).sum().backward()
    assert not np.shares_memory(seen[0].numpy(), x.grad.numpy())
    x.grad.numpy()[:] = 7.0
    np.testing.assert_array_equal(seen[0].numpy(), [2.0, 2.0, 2.0])
