"""The Tensor API (retrograd/tensor.py): properties, conversion (to, item, tolist, numpy),
detach, repr, view/contiguous, chunk/split/unbind, gather, index_select, repeat, comparisons
and logic, truth values, and in-place ops with and without autograd. Differentiable helpers
are checked against PyTorch with the shared oracle."""

import pickle

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from tests.oracle import GRADCHECK_TOLERANCES, check_op, randn


# ---------------------------------------------------------------- properties
def test_properties_follow_torch():
    data = randn(2, 3, 4)
    x, tx = rg.tensor(data), torch.tensor(data)
    assert x.shape == tuple(tx.shape) and x.ndim == tx.ndim == x.dim() == 3
    assert x.size() == tuple(tx.size()) and x.size(-1) == tx.size(-1) == 4
    assert x.numel() == tx.numel() and len(x) == len(tx) == 2
    assert x.itemsize == 8 and x.nbytes == data.nbytes and x.element_size() == 8
    assert x.is_leaf and not x.requires_grad and x.grad is None and x.grad_fn is None
    assert x.device == rg.device("cpu") and str(x.device) == str(tx.device) == "cpu"
    assert x.is_floating_point()
    assert not rg.tensor([1, 2]).is_floating_point()
    assert [t.shape for t in x] == [(3, 4), (3, 4)]


def test_requires_grad_and_leaves():
    x = rg.ones(2, requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf and y.requires_grad and y.grad_fn is not None
    z = rg.ones(2).requires_grad_()
    assert z.requires_grad and z.is_leaf
    with pytest.raises(RuntimeError, match="requires_grad: cannot turn it off on a non-leaf"):
        y.requires_grad = False


def test_requires_grad_on_an_integer_tensor_errors():
    with pytest.raises(RuntimeError, match=r"requires_grad: only floating-point tensors can "
                                           r"require gradients, this one has dtype "
                                           r"retrograd.int64"):
        rg.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="dtype retrograd.bool"):
        rg.tensor([True]).requires_grad_()


def test_size_and_len_errors():
    with pytest.raises(IndexError, match=r"size: dim 2 is out of range"):
        rg.ones(2, 3).size(2)
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor"):
        len(rg.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(rg.tensor(1.0))


# ---------------------------------------------------------------- conversion
@pytest.mark.parametrize("data, expected, kind", [
    ([2.5], 2.5, float), (7, 7, int), (True, True, bool), ([[3]], 3, int),
])
def test_item_returns_python_numbers(data, expected, kind):
    value = rg.tensor(data).item()
    assert value == expected and type(value) is kind
    assert torch.tensor(data).item() == value


def test_item_of_many_elements_and_of_bfloat16():
    with pytest.raises(ValueError, match=r"item: a tensor with 3 elements cannot be converted to a "
                                         r"Python number \(shape \(3,\)\)"):
        rg.ones(3).item()
    assert rg.tensor([1.5], dtype=rg.bfloat16).item() == 1.5
    assert float(rg.tensor(2.5)) == 2.5 and int(rg.tensor(3)) == 3
    assert [10, 20, 30][rg.tensor(2)] == 30
    with pytest.raises(TypeError,
                       match="only integer tensors of one element can be used as an index"):
        [1, 2][rg.tensor(1.0)]


def test_tolist_matches_torch():
    for data in ([[1.5, 2.0], [3.0, 4.0]], [[1, 2]], [True, False], 3.5):
        assert rg.tensor(data).tolist() == torch.tensor(data).tolist()
    assert rg.tensor([1.5, 2.0], dtype=rg.bfloat16).tolist() == [1.5, 2.0]


def test_numpy_refuses_a_tensor_that_requires_grad():
    x = rg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"numpy: cannot call numpy\(\) on a tensor that "
                                           r"requires grad; use tensor.detach\(\).numpy\(\)"):
        x.numpy()
    copy = x.numpy(force=True)
    copy[0] = 5.0
    assert x.detach().numpy()[0] == 1.0


def test_numpy_shares_memory():
    x = rg.zeros(3)
    x.numpy()[1] = 2.0
    assert x.tolist() == [0.0, 2.0, 0.0]


def test_detach_shares_memory_and_version_but_not_the_graph():
    x = rg.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.numpy(), y._data)
    assert d._version is y._version
    d.numpy()[0] = 9.0
    assert y.detach().numpy()[0] == 9.0
    d2 = x.detach()
    d2.add_(1.0)  # an in-place change of the detached tensor is seen by (and versions) x
    assert x.detach().tolist() == [2.0, 2.0, 2.0] and x._version[0] == 1


def test_pickle_roundtrip_keeps_values_dtype_and_requires_grad():
    x = rg.tensor([[1.0, 2.0]], dtype=rg.float64, requires_grad=True)
    y = pickle.loads(pickle.dumps(x))
    assert y.dtype == rg.float64 and y.requires_grad and y.shape == (1, 2)
    np.testing.assert_array_equal(y.detach().numpy(), x.detach().numpy())


# ---------------------------------------------------------------- to and casts
@pytest.mark.parametrize("target", [rg.float64, "float64", np.float64, np.dtype("float64")],
                         ids=str)
def test_to_accepts_the_usual_dtype_spellings(target):
    assert rg.ones(2).to(target).dtype == rg.float64


def test_to_same_dtype_and_device_return_self():
    x = rg.ones(2)
    assert x.to(rg.float32) is x and x.to("cpu") is x and x.cpu() is x
    assert x.to("cpu", rg.float64).dtype == rg.float64
    assert x.to(dtype=rg.float16).dtype == rg.float16
    assert x.to(rg.ones(1, dtype=rg.float64)).dtype == rg.float64  # to(other): other's dtype
    with pytest.raises(RuntimeError,
                       match=r"to: retrograd runs on the CPU only, got device 'cuda'"):
        x.to("cuda")


@pytest.mark.parametrize("method, expected", [("float", rg.float32), ("double", rg.float64),
                                              ("half", rg.float16), ("bfloat16", rg.bfloat16),
                                              ("long", rg.int64), ("int", rg.int32),
                                              ("bool", rg.bool)])
def test_cast_methods(method, expected):
    x = rg.tensor([0.0, 1.5, -2.0])
    y = getattr(x, method)()
    assert y.dtype == expected
    ty = getattr(torch.tensor([0.0, 1.5, -2.0]), method)()
    np.testing.assert_array_equal(y.numpy().astype(np.float64), ty.float().numpy())
    assert x.type(expected).dtype == expected
    assert x.type() == torch.tensor([0.0]).type() == "torch.FloatTensor"  # torch's spelling
    assert x.type_as(y).dtype == expected


def test_floating_casts_are_differentiable_and_integer_casts_detach():
    check_op(lambda t: t.float() * t.float(), lambda t: t.float() * t.float(), randn(3),
             gradcheck=False)
    x = rg.ones(2, requires_grad=True)
    i = x.long()
    assert i.dtype == rg.int64 and not i.requires_grad and i.grad_fn is None


# ---------------------------------------------------------------- repr
def test_repr_shows_values_dtype_and_graph():
    assert repr(rg.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert repr(rg.tensor(3)) == "tensor(3)"
    assert repr(rg.tensor([True])) == "tensor([ True])"
    assert repr(rg.ones(2, dtype=rg.float64)) == "tensor([1., 1.], dtype=retrograd.float64)"
    assert repr(rg.ones(2, requires_grad=True)) == "tensor([1., 1.], requires_grad=True)"
    y = rg.ones(2, requires_grad=True) * 2
    assert repr(y) == "tensor([2., 2.], grad_fn=<MulBackward>)"
    assert "grad_fn=<SumBackward>" in repr(y.sum())
    assert repr(rg.ones(2, dtype=rg.bfloat16)) == "tensor([1., 1.], dtype=retrograd.bfloat16)"
    assert repr(rg.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert repr(rg.zeros(0)) == "tensor([])"
    assert f"{rg.tensor(2.0):.2f}" == "2.00"


# ---------------------------------------------------------------- view, contiguous
def test_view_and_contiguous():
    x = rg.tensor(np.arange(12.0).reshape(3, 4))
    assert x.view(4, 3).shape == (4, 3) and x.view(-1).shape == (12,)
    assert x.view(rg.float64) is x  # view(dtype) of the same dtype
    with pytest.raises(RuntimeError, match=r"view: cannot view a tensor of shape \(4, 3\)"):
        x.T.view(12)
    c = x.T.contiguous()
    assert c.numpy().flags.c_contiguous and c.view(12).shape == (12,)
    np.testing.assert_array_equal(c.view(12).numpy(), np.arange(12.0).reshape(3, 4).T.ravel())


def test_view_as_another_dtype_reinterprets_bytes_as_torch():
    data = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    for dtype, torch_dtype in [(rg.int32, torch.int32), (rg.float16, torch.float16),
                               (rg.uint8, torch.uint8)]:
        y, ty = rg.tensor(data).view(dtype), torch.tensor(data).view(torch_dtype)
        assert y.shape == tuple(ty.shape) and y.dtype == dtype
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
    x = rg.tensor(data)
    x.view(rg.int32)[0, 0] = 0  # shares memory
    assert x[0, 0].item() == 0.0
    with pytest.raises(RuntimeError, match=r"view: cannot view a tensor of shape \(2, 2\) and "
                                           r"dtype retrograd.float32 as retrograd.float64"):
        rg.tensor(data).T.view(rg.float64)


# ---------------------------------------------------------------- chunk, split, unbind
@pytest.mark.parametrize("shape, chunks, dim", [((7, 2), 3, 0), ((6, 4), 4, 0), ((2, 5), 2, -1),
                                                ((3, 2), 5, 0), ((4, 3), 1, 1)], ids=str)
def test_chunk_matches_torch(shape, chunks, dim):
    outs = check_op(lambda t: t.chunk(chunks, dim), lambda t: t.chunk(chunks, dim), randn(*shape))
    assert len(outs) == len(torch.ones(shape).chunk(chunks, dim))
    assert len(rg.chunk(rg.ones(*shape), chunks, dim)) == len(outs)


@pytest.mark.parametrize("shape, size, dim", [((7, 2), 3, 0), ((7, 2), [3, 4], 0), ((2, 6), 2, 1),
                                              ((2, 5), [1, 0, 4], -1), ((4,), 10, 0)], ids=str)
def test_split_matches_torch(shape, size, dim):
    check_op(lambda t: t.split(size, dim), lambda t: t.split(size, dim), randn(*shape))
    check_op(lambda t: rg.split(t, size, dim), lambda t: torch.split(t, size, dim), randn(*shape),
             dtype=np.float32)


def test_split_and_chunk_argument_errors():
    with pytest.raises(ValueError, match=r"split: sizes \[3, 3\] do not add up to 7 \(dim 0 of "
                                         r"shape \(7, 2\)\)"):
        rg.ones(7, 2).split([3, 3])
    with pytest.raises(ValueError, match=r"^split: split_size must be a non-negative int, got -1$"):
        rg.ones(3).split(-1)
    with pytest.raises(ValueError, match=r"^split: split_size 0 is allowed only for an empty dim, "
                                         r"got dim 0 of shape \(3,\)$"):
        rg.ones(3).split(0)
    for bad in (0, -2):
        with pytest.raises(ValueError, match=rf"chunk: chunks must be a positive int, got {bad}"):
            rg.ones(3).chunk(bad)
    with pytest.raises(ValueError, match="unbind: a 0-d tensor has no dim to unbind"):
        rg.tensor(1.0).unbind()


def test_split_and_chunk_of_an_empty_dim_match_torch():
    for fn in (lambda t: t.chunk(3), lambda t: t.split(2), lambda t: t.split(0),
               lambda t: t.unbind(1)):
        pieces, tpieces = fn(rg.zeros(0, 2)), fn(torch.zeros(0, 2))
        assert [p.shape for p in pieces] == [tuple(p.shape) for p in tpieces]


@pytest.mark.parametrize("shape, dim", [((3, 4), 0), ((3, 4), 1), ((2, 3, 4), -1), ((2,), 0)],
                         ids=str)
def test_unbind_matches_torch(shape, dim):
    check_op(lambda t: t.unbind(dim), lambda t: t.unbind(dim), randn(*shape))


def test_pieces_are_views_and_second_order():
    x = rg.zeros(4)
    a, b = x.chunk(2)
    with rg.no_grad():
        b[0] = 3.0
    assert x.tolist() == [0.0, 0.0, 3.0, 0.0]
    t = rg.tensor(randn(4, 2), requires_grad=True)
    assert gradgradcheck(lambda u: u.split(3)[0] * u.unbind(1)[0].sum(), [t],
                         **GRADCHECK_TOLERANCES)


# ---------------------------------------------------------------- gather, index_select, repeat
@pytest.mark.parametrize("shape, dim, index", [
    ((3, 4), 1, [[0, 0, 3], [1, 2, 1], [3, 3, 3]]),
    ((3, 4), 0, [[0, 2, 2, 1]]),
    ((3, 4), -1, [[1], [0], [3]]),
    ((2, 3, 4), 2, np.zeros((2, 2, 1), dtype=np.int64)),
], ids=["dim1_repeats", "dim0", "negative_dim", "3d"])
def test_gather_matches_torch(shape, dim, index):
    index = np.array(index, dtype=np.int64)
    check_op(lambda t, i: t.gather(dim, i), lambda t, i: t.gather(dim, i), randn(*shape), index)
    check_op(lambda t, i: rg.gather(t, dim, i), lambda t, i: torch.gather(t, dim, i), randn(*shape),
             index, dtype=np.float32)
    x = rg.tensor(randn(*shape), requires_grad=True)
    assert gradgradcheck(lambda t: t.gather(dim, rg.tensor(index)) ** 2, [x],
                         **GRADCHECK_TOLERANCES)


def test_gather_errors():
    with pytest.raises(ValueError, match=r"gather: index has 1 dims but the tensor has 2 "
                                         r"\(shapes \(2,\) and \(3, 4\)\)"):
        rg.ones(3, 4).gather(1, rg.tensor([0, 1]))
    with pytest.raises(TypeError,
                       match=r"gather: index must be an integer tensor, got dtype float32"):
        rg.ones(3, 4).gather(1, rg.ones(3, 1))


@pytest.mark.parametrize("dim, index", [(0, [2, 0, 2]), (1, [3]), (-1, [1, 1, 0, 0])], ids=str)
def test_index_select_matches_torch(dim, index):
    check_op(lambda t, i: t.index_select(dim, i), lambda t, i: t.index_select(dim, i),
             randn(3, 4), np.array(index))


def test_index_select_needs_a_vector_index():
    with pytest.raises(ValueError, match=r"index_select: index must be 1-D, got shape \(1, 1\)"):
        rg.ones(2, 2).index_select(0, rg.tensor([[0]]))
    y = rg.ones(2, 3).index_select(1, rg.tensor(2))
    ty = torch.ones(2, 3).index_select(1, torch.tensor(2))
    assert y.shape == tuple(ty.shape)


@pytest.mark.parametrize("shape, sizes", [((2, 3), (2, 1)), ((2, 3), (1, 2, 2)), ((3,), (4,)),
                                          ((), (3,)), ((2, 1), (1, 3))], ids=str)
def test_repeat_matches_torch(shape, sizes):
    x = randn(*shape) if shape else np.array(1.5)
    check_op(lambda t: t.repeat(*sizes), lambda t: t.repeat(*sizes), x)
    with pytest.raises(ValueError, match=r"repeat: got 1 repeats for a tensor with 2 dims"):
        rg.ones(2, 3).repeat(2)


# ---------------------------------------------------------------- comparisons and logic
CMP = [
    ("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b), ("lt", lambda a, b: a < b),
    ("le", lambda a, b: a <= b), ("gt", lambda a, b: a > b), ("ge", lambda a, b: a >= b),
    ("eq_scalar", lambda a, b: a == 1.0), ("gt_scalar", lambda a, b: a > 0),
    ("method_lt", lambda a, b: a.lt(b)), ("method_ge", lambda a, b: a.ge(b)),
]


@pytest.mark.parametrize("name, fn", CMP, ids=[c[0] for c in CMP])
def test_comparisons_return_bool_tensors_without_graph(name, fn):
    a_data = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]])
    b_data = np.array([1.0, 0.0, 3.0])
    a = rg.tensor(a_data, requires_grad=True)
    y = fn(a, rg.tensor(b_data))
    ty = fn(torch.tensor(a_data), torch.tensor(b_data))
    assert y.dtype == rg.bool and not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), ty.numpy())


def test_logic_ops_match_torch():
    a, b = np.array([True, True, False, False]), np.array([True, False, True, False])
    ra, rb, ta, tb = rg.tensor(a), rg.tensor(b), torch.tensor(a), torch.tensor(b)
    for fn in (lambda x, y: x & y, lambda x, y: x | y, lambda x, y: x ^ y, lambda x, y: ~x,
               lambda x, y: x.logical_not()):
        y = fn(ra, rb)
        assert y.dtype == rg.bool
        np.testing.assert_array_equal(y.numpy(), fn(ta, tb).numpy())
    i = rg.tensor([6, 3])
    np.testing.assert_array_equal((i & 2).numpy(), [2, 2])
    np.testing.assert_array_equal((~i).numpy(), (~torch.tensor([6, 3])).numpy())


def test_predicates_and_all_any():
    x = rg.tensor([[1.0, np.nan], [np.inf, 0.0]])
    np.testing.assert_array_equal(x.isnan().numpy(), [[False, True], [False, False]])
    np.testing.assert_array_equal(x.isinf().numpy(), [[False, False], [True, False]])
    np.testing.assert_array_equal(x.isfinite().numpy(), [[True, False], [False, True]])
    b = rg.tensor([[True, False], [True, True]])
    assert b.all().item() is False and b.any().item() is True
    np.testing.assert_array_equal(b.all(0).numpy(), [True, False])
    np.testing.assert_array_equal(b.any(1, keepdim=True).numpy(), [[True], [True]])
    np.testing.assert_array_equal(rg.tensor([-2.0, 0.0, 3.0]).sign().numpy(), [-1.0, 0.0, 1.0])
    assert rg.allclose(rg.ones(2), rg.ones(2) + 1e-9) and not rg.ones(2).allclose(rg.zeros(2))


def test_comparison_with_none_is_a_python_bool_as_torch():
    x = rg.ones(2)
    assert (x == None) is False and (x != None) is True  # noqa: E711
    assert (torch.ones(2) == None) is False  # noqa: E711


def test_comparison_broadcast_error():
    with pytest.raises(ValueError, match=r"greater: shapes \(2,\) and \(3,\) cannot be broadcast"):
        rg.ones(2) > rg.ones(3)


def test_truth_value():
    assert bool(rg.tensor([1.0])) and not bool(rg.tensor(0))
    assert bool(rg.tensor([[True]]))
    with pytest.raises(RuntimeError, match=r"bool: the truth value of a tensor with 3 elements is "
                                           r"ambiguous \(shape \(3,\)\); use any\(\) or all\(\)"):
        bool(rg.ones(3))
    with pytest.raises(RuntimeError, match="ambiguous"):
        if rg.ones(2) > 0:
            pass


def test_tensors_hash_by_identity():
    a, b = rg.ones(2), rg.ones(2)
    assert len({a, b}) == 2 and {a: 1}[a] == 1


# ---------------------------------------------------------------- in-place ops
INPLACE = [
    ("add_", lambda y, x, m: y.add_(x)),
    ("add_alpha", lambda y, x, m: y.add_(x, alpha=-0.5)),
    ("sub_", lambda y, x, m: y.sub_(x * x)),
    ("mul_", lambda y, x, m: y.mul_(x)),
    ("div_", lambda y, x, m: y.div_(x * x + 1.0)),
    ("iadd", lambda y, x, m: y.__iadd__(x)),
    ("imul_scalar", lambda y, x, m: y.__imul__(3.0)),
    ("isub", lambda y, x, m: y.__isub__(x)),
    ("itruediv", lambda y, x, m: y.__itruediv__(2.0)),
    ("masked_fill_", lambda y, x, m: y.masked_fill_(m, 0.5)),
    ("clamp_", lambda y, x, m: y.clamp_(-0.5, 0.5)),
    ("pow_", lambda y, x, m: y.pow_(2)),
    ("zero_", lambda y, x, m: y.zero_()),
    ("copy_", lambda y, x, m: y.copy_(x * 3.0)),
    ("copy_broadcast", lambda y, x, m: y.copy_(x[0])),
    ("fill_", lambda y, x, m: y.fill_(2.0)),
]


@pytest.mark.parametrize("name, fn", INPLACE, ids=[i[0] for i in INPLACE])
def test_inplace_ops_with_autograd_match_torch(name, fn):
    mask = np.array([[True, False, True], [False, False, True]])

    def run(lib):
        def f(x):
            y = x.sin()  # a non-leaf: in-place changes to it are recorded
            out = fn(y, x, lib.tensor(mask))
            assert out is y
            return y * x
        return f

    x = randn(2, 3, seed=4)
    if name == "clamp_":
        x = np.where(np.abs(np.abs(np.sin(x)) - 0.5) < 0.05, x + 0.2, x)
    check_op(run(rg), run(torch), x)


@pytest.mark.parametrize("name, fn", INPLACE, ids=[i[0] for i in INPLACE])
def test_inplace_ops_without_autograd_write_in_place(name, fn):
    mask = np.array([[True, False, True], [False, False, True]])
    data = randn(2, 3, seed=4)
    y, ty = rg.tensor(data), torch.tensor(data)
    x, tx = rg.tensor(data * 0.5), torch.tensor(data * 0.5)
    array = y._data
    fn(y, x, rg.tensor(mask))
    fn(ty, tx, torch.tensor(mask))
    assert y._data is array and y._version[0] >= 1
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12)
    assert y.grad_fn is None


def test_inplace_on_a_leaf_that_requires_grad():
    w = rg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_: a leaf tensor that requires grad is used in an "
                                           r"in-place operation"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match=r"zero_: a leaf tensor that requires grad"):
        w.zero_()
    with rg.no_grad():  # an optimizer step
        w.sub_(0.5)
        w.mul_(2.0)
    assert w.tolist() == [1.0, 1.0, 1.0] and w.is_leaf and w.requires_grad and w.grad_fn is None


def test_inplace_rebases_history_and_bumps_version():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    v0 = y._version[0]
    y += x
    assert y._version[0] == v0 + 1
    assert "AddBackward" in repr(y)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_inplace_change_of_a_saved_tensor_is_reported():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()  # Exp saves its output
    z = y * 2.0
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()
    y2 = x.exp()
    w = y2.exp()
    y2.mul_(2.0)  # backward of the first exp needs y2's old value
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        w.sum().backward()


def test_setitem_on_a_non_leaf_records_the_write():
    check_op(lambda x: _set_row(x * 1.0), lambda x: _set_row(x * 1.0), randn(3, 2))


def _set_row(y):
    y[1] = y[0] * 3.0
    return y


def test_inplace_errors():
    i = rg.tensor([1, 2])
    with pytest.raises(TypeError, match=r"add_: cannot write a result of dtype float32 into a "
                                        r"tensor of dtype retrograd.int64"):
        i.add_(0.5)
    with pytest.raises(RuntimeError, match=r"add_: cannot write into this tensor \(shape \(3,\)\)"):
        rg.ones(3).add_(rg.ones(2, 3))
    y = rg.ones(3, requires_grad=True) * 1.0
    with pytest.raises(RuntimeError, match=r"add_: the result has shape \(2, 3\) but the tensor "
                                           r"being written has shape \(3,\)"):
        y.add_(rg.ones(2, 3))
    with pytest.raises(ValueError, match=r"copy_: source of shape \(2,\) does not broadcast to the "
                                         r"destination's shape \(3,\)"):
        rg.ones(3).copy_(rg.ones(2))


def test_inplace_on_a_view_with_autograd_is_refused_clearly():
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1.0
    v = y[:2]
    with pytest.raises(RuntimeError, match="in-place operations that autograd records are not "
                                           "supported on views"):
        v.mul_(rg.tensor(2.0, requires_grad=True))


def test_random_fills_keep_dtype_and_shape():
    rg.manual_seed(3)
    x = rg.zeros(1000, dtype=rg.float64)
    x.normal_(2.0, 0.5)
    assert x.dtype == rg.float64 and abs(x.mean().item() - 2.0) < 0.1
    u = rg.zeros(1000).uniform_(-1.0, 1.0)
    assert u.dtype == rg.float32 and -1.0 <= u.min().item() and u.max().item() < 1.0
