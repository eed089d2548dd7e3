"""Shape ops (retrograd/ops/shape.py): reshape/view, permute, expand, indexing (basic,
integer-array, boolean, mixed), its adjoint IndexBackward, setitem (IndexPut), cat, stack and
clone. Each against PyTorch, by finite differences through the engine and alone, twice
differentiated, in float32, with edge rows (repeated indices accumulate, size-0 dims, negative
dims, inputs that do not require grad), views and error messages."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops import shape as sh
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


def _both(fn):
    """The same lambda serves retrograd and torch when it only uses shared method names."""
    return fn, fn


# ---------------------------------------------------------------- reshape, view, squeeze
RESHAPES = [
    ("reshape_2d", (2, 3, 4), lambda t: t.reshape(6, 4)),
    ("reshape_minus_one", (2, 3, 4), lambda t: t.reshape(4, -1, 2)),
    ("reshape_tuple", (2, 3, 4), lambda t: t.reshape((-1,))),
    ("reshape_0d", (), lambda t: t.reshape(1, 1)),
    ("reshape_to_0d", (1, 1), lambda t: t.reshape(())),
    ("reshape_zero_size", (0, 3), lambda t: t.reshape(3, 0)),
    ("reshape_noncontiguous", (3, 4), lambda t: t.t().reshape(12)),
    ("view", (2, 3, 4), lambda t: t.view(3, 8)),
    ("view_minus_one", (2, 3, 4), lambda t: t.view(-1, 4)),
    ("flatten", (2, 3, 4), lambda t: t.flatten()),
    ("flatten_range", (2, 3, 4, 5), lambda t: t.flatten(1, 2)),
    ("flatten_negative", (2, 3, 4), lambda t: t.flatten(-2)),
    ("flatten_0d", (), lambda t: t.flatten()),
    ("flatten_zero_size", (0, 3, 2), lambda t: t.flatten(1)),
    ("flatten_zero_size_all", (2, 0, 3), lambda t: t.flatten()),
    ("squeeze_all", (1, 3, 1), lambda t: t.squeeze()),
    ("squeeze_dim", (1, 3, 1), lambda t: t.squeeze(-1)),
    ("squeeze_non_one_dim", (2, 3), lambda t: t.squeeze(0)),
    ("unsqueeze", (2, 3), lambda t: t.unsqueeze(1)),
    ("unsqueeze_negative", (2, 3), lambda t: t.unsqueeze(-1)),
    ("unflatten", (2, 12), lambda t: t.unflatten(1, (3, 4))),
    ("view_as", (2, 6), lambda t: t.view_as(t.reshape(3, 4))),
]


def _x(shape, seed=0):
    return randn(*shape, seed=seed) if shape else np.array(0.4)


@pytest.mark.parametrize("name, shape, fn", RESHAPES, ids=[r[0] for r in RESHAPES])
def test_reshapes_match_torch(name, shape, fn):
    check_op(*_both(fn), _x(shape))


@pytest.mark.parametrize("name, shape, fn", RESHAPES[:8], ids=[r[0] for r in RESHAPES[:8]])
def test_reshapes_float32_and_second_order(name, shape, fn):
    check_op(*_both(fn), _x(shape), dtype=np.float32)
    assert gradgradcheck(lambda t: fn(t) * fn(t), _leaves(_x(shape)), **GRADCHECK_TOLERANCES)


def test_reshape_backward_alone():
    check_backward_alone(sh.Reshape, [randn(2, 3, 4)], {"shape": (4, 6)})
    check_backward_alone(sh.Reshape, [randn(2, 3, 4).transpose(2, 0, 1)], {"shape": (24,)})


def test_reshape_and_view_share_memory_and_version():
    x = rg.zeros(2, 3)
    v, r = x.view(6), x.reshape(3, 2)
    with rg.no_grad():
        v[1] = 5.0
    assert x[0, 1].item() == 5.0 and r[0, 1].item() == 5.0
    assert v._version is x._version and r._version is x._version


# ---------------------------------------------------------------- permute, transpose
PERMUTES = [
    ("permute", (2, 3, 4), lambda t: t.permute(2, 0, 1)),
    ("permute_tuple_negative", (2, 3, 4), lambda t: t.permute((-1, 0, -2))),
    ("transpose", (2, 3, 4), lambda t: t.transpose(0, 2)),
    ("transpose_negative", (2, 3, 4), lambda t: t.transpose(-1, -2)),
    ("T", (3, 4), lambda t: t.T),
    ("mT", (2, 3, 4), lambda t: t.mT),
    ("t", (3, 4), lambda t: t.t()),
    ("t_1d", (3,), lambda t: t.t()),
    ("transpose_0d", (), lambda t: t.transpose(0, -1)),
    ("permute_identity", (3, 4), lambda t: t.permute(0, 1)),
    ("permute_zero_size", (0, 3, 2), lambda t: t.permute(2, 0, 1)),
]


@pytest.mark.parametrize("name, shape, fn", PERMUTES, ids=[p[0] for p in PERMUTES])
def test_permutes_match_torch(name, shape, fn):
    check_op(*_both(fn), _x(shape))


def test_permute_backward_alone_float32_and_second_order():
    check_backward_alone(sh.Permute, [randn(2, 3, 4)], {"dims": (2, 0, 1)})
    check_backward_alone(sh.Permute, [randn(2, 3, 4, 5)], {"dims": (1, 3, 0, 2)})
    check_op(*_both(lambda t: t.permute(1, 2, 0)), randn(2, 3, 4), dtype=np.float32)
    assert gradgradcheck(lambda t: t.permute(1, 0) * t.permute(1, 0), _leaves(randn(2, 3)),
                         **GRADCHECK_TOLERANCES)


def test_transposed_tensor_is_a_view():
    x = rg.zeros(2, 3)
    y = x.T
    with rg.no_grad():
        y[2, 0] = 7.0
    assert x[0, 2].item() == 7.0


# ---------------------------------------------------------------- expand
EXPANDS = [
    ("expand", (3, 1), lambda t: t.expand(3, 4)),
    ("expand_new_dims", (4,), lambda t: t.expand(2, 3, 4)),
    ("expand_minus_one", (3, 1), lambda t: t.expand(2, -1, 5)),
    ("expand_0d", (), lambda t: t.expand(2, 3)),
    ("expand_same", (2, 3), lambda t: t.expand(2, 3)),
    ("expand_to_zero", (1, 3), lambda t: t.expand(0, 3)),
    ("expand_as", (1, 3), lambda t: t.expand_as(t.reshape(3, 1) * t)),
    ("broadcast_to", (3, 1), lambda t: t.broadcast_to((2, 3, 4))),
]


@pytest.mark.parametrize("name, shape, fn", EXPANDS, ids=[e[0] for e in EXPANDS])
def test_expands_match_torch(name, shape, fn):
    check_op(*_both(fn), _x(shape))


def test_expand_backward_alone_float32_and_second_order():
    check_backward_alone(sh.Expand, [randn(3, 1)], {"shape": (2, 3, 4)})
    check_op(*_both(lambda t: t.expand(2, 3, 4)), randn(3, 1), dtype=np.float32)
    assert gradgradcheck(lambda t: t.expand(2, 3) ** 2, _leaves(randn(3)), **GRADCHECK_TOLERANCES)


# ---------------------------------------------------------------- indexing
INDEXES = [
    ("int", 1),
    ("negative_int", -1),
    ("slice", (slice(None), slice(1, 3))),
    ("step_slice", (slice(None, None, 2), 0)),
    ("ellipsis", (Ellipsis, 0)),
    ("none", (None, 1)),
    ("scalar_element", (1, 2)),
    ("repeated_ints", [0, 0, 2]),
    ("negative_array", [-1, 0, -1]),
    ("array_2d", np.array([[0, 1], [1, 0]])),
    ("mixed_advanced_basic", ([0, 2], slice(1, 3))),
    ("mixed_basic_advanced", (slice(None), [1, 1, 0])),
    ("paired_arrays_with_repeats", ([0, 1, 0], [2, 0, 2])),
    ("separated_advanced", ([0, 2], slice(None), [1, 1])),
    ("empty_array", np.array([], dtype=np.int64)),
    # torch applies ints before arrays (NumPy would move the array dims to the front)
    ("int_slice_array", (0, slice(None), [1, 1, 0])),
    ("int_slice_bool", (1, slice(None), np.array([True, False]))),
    ("array_int_array", ([0, 2], 1, [1, 0])),
    ("none_int_array", (None, 2, [3, 0])),
]


@pytest.mark.parametrize("name, index", INDEXES, ids=[i[0] for i in INDEXES])
def test_indexing_matches_torch(name, index):
    x = randn(3, 4) if name not in ("separated_advanced", "int_slice_array", "int_slice_bool",
                                    "array_int_array") else randn(3, 4, 2)
    t_index = tuple(torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index) \
        if isinstance(index, tuple) else torch.tensor(index) if isinstance(index,
                                                                           np.ndarray) else index
    check_op(lambda t: t[index], lambda t: t[t_index], x)


def test_repeated_indices_accumulate_in_backward():
    x = rg.tensor(np.arange(4.0), requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("mask", [
    np.array([True, False, True]),
    np.array([[True, False, False, True], [False, False, False, False], [True, True, True, True]]),
], ids=["rows", "elements"])
def test_boolean_mask_indexing_matches_torch(mask):
    check_op(lambda t, m: t[m], lambda t, m: t[m], randn(3, 4), mask)
    check_op(lambda t, m: t[m], lambda t, m: t[m], randn(3, 4), mask, dtype=np.float32)


def test_indexing_with_integer_tensors():
    check_op(lambda t, i: t[i], lambda t, i: t[i], randn(4, 3), np.array([3, 0, 3]))
    check_op(lambda t, i: t[:, i], lambda t, i: t[:, i], randn(4, 3), np.array([[2, 0], [0, 0]]))
    i = rg.tensor(2)
    assert rg.arange(5)[i].item() == 2


@pytest.mark.parametrize("index", [(1, slice(0, 3)), [0, 0, 2], (slice(None), [2, 2])], ids=str)
def test_index_backward_alone_float32_and_second_order(index):
    x = randn(3, 4)
    check_backward_alone(sh.Index, [x], {"index": index})
    check_op(lambda t: t[index], lambda t: t[index], x, dtype=np.float32)
    assert gradgradcheck(lambda t: t[index] * t[index], _leaves(x), **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("index, basic", [([0, 0, 2], False), ((slice(1, 3), 0), True)], ids=str)
def test_index_backward_op_alone_and_against_torch(index, basic):
    # IndexBackward scatters-adds into zeros: the adjoint of Index (used by double backward)
    g = randn(*np.zeros((3, 4))[index].shape)
    check_backward_alone(sh.IndexBackward, [g], {"shape": (3, 4), "index": index, "basic": basic})
    y = sh.IndexBackward.apply(rg.tensor(g), shape=(3, 4), index=index, basic=basic)
    expected = torch.zeros(3, 4, dtype=torch.float64).index_put_(
        (torch.tensor(index),), torch.tensor(g), accumulate=True) if not basic else None
    if expected is not None:
        np.testing.assert_allclose(y.numpy(), expected.numpy())
    (gt,) = _leaves(g)
    assert gradgradcheck(lambda t: sh.IndexBackward.apply(t, shape=(3, 4), index=index,
                                                          basic=basic) ** 2, [gt],
                         **GRADCHECK_TOLERANCES)


def test_basic_index_returns_a_view_even_for_one_element():
    x = rg.zeros(2, 3)
    row, element = x[1], x[1, 2]
    with rg.no_grad():
        row[0] = 1.0
        element.add_(4.0)  # a 0-d view, as in torch
    np.testing.assert_array_equal(x.numpy(), [[0, 0, 0], [1, 0, 4]])
    assert element._version is x._version


def test_advanced_index_is_a_copy():
    x = rg.zeros(3)
    y = x[[0, 1]]
    with rg.no_grad():
        y.add_(1.0)
    np.testing.assert_array_equal(x.numpy(), [0, 0, 0])


# ---------------------------------------------------------------- setitem (IndexPut)
SETITEMS = [
    ("slice", (slice(1, 3),), (2, 4)),
    ("int_broadcast_row", (0,), (4,)),
    ("scalar_value", (slice(None), 1), ()),
    ("broadcast_value", (slice(None), slice(0, 2)), (1, 2)),
    ("array_index", ([0, 2],), (2, 4)),
    ("bool_mask", (np.array([True, False, True]),), (4,)),
    ("mixed", ([2, 0], slice(1, 3)), (2, 2)),
    ("int_then_array", (1, [3, 0]), (2,)),
]


@pytest.mark.parametrize("name, index, v_shape", SETITEMS, ids=[s[0] for s in SETITEMS])
def test_setitem_matches_torch(name, index, v_shape):
    def put(x, v, lib):
        y = x * 1.0  # a non-leaf, so that in-place writes are recorded
        y[tuple(lib.tensor(i) if isinstance(i, np.ndarray) else i for i in index)] = v
        return y * y

    v = randn(*v_shape, seed=3) if v_shape else np.array(0.6)
    check_op(lambda x, v: put(x, v, rg), lambda x, v: put(x, v, torch), randn(3, 4), v)


def test_setitem_into_a_tensor_that_does_not_require_grad():
    # x[idx] = v with v requiring grad: x joins the graph, v gets the gradient of the slots
    def put(v, lib):
        x = lib.zeros(3, 4, dtype=lib.float64)
        x[1:, 2] = v
        return x * lib.arange(12.0, dtype=lib.float64).reshape(3, 4)

    check_op(lambda v: put(v, rg), lambda v: put(v, torch), randn(2))


def test_index_put_backward_alone_float32_and_second_order():
    x, v = randn(3, 4), randn(2, 4, seed=1)
    check_backward_alone(sh.IndexPut, [x, v], {"index": [2, 0]})
    check_backward_alone(sh.IndexPut, [x, randn(4, seed=2)], {"index": (slice(1, 3),)})
    check_op(lambda x, v: sh.IndexPut.apply(x, v, index=[2, 0]),
             lambda x, v: x.index_put((torch.tensor([2, 0]),), v), x, v, dtype=np.float32)
    assert gradgradcheck(lambda a, b: sh.IndexPut.apply(a, b, index=[2, 0]) ** 2, _leaves(x, v),
                         **GRADCHECK_TOLERANCES)


def test_setitem_with_an_int_and_a_separated_array_follows_torch():
    def put(x, v, lib):
        y = x * 1.0
        y[0, :, [1, 0]] = v  # the positions have torch's shape (4, 2), not NumPy's (2, 4)
        return y * y

    check_op(lambda x, v: put(x, v, rg), lambda x, v: put(x, v, torch), randn(3, 4, 2),
             randn(4, 2, seed=1))


def test_setitem_with_python_values_and_shape_error():
    x = rg.zeros(2, 3)
    x[0] = [1, 2, 3]
    x[1, 1:] = 4.5
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [0, 4.5, 4.5]])
    with pytest.raises(ValueError, match=r"setitem: cannot assign a value of shape \(4,\) to "
                                         r"positions of shape \(3,\) \(tensor of shape \(2, 3\)\)"):
        x[0] = [1, 2, 3, 4]


# ---------------------------------------------------------------- cat, stack
CATS = [
    ("dim0", [(2, 3), (1, 3), (4, 3)], 0),
    ("dim1", [(2, 3), (2, 1)], 1),
    ("negative_dim", [(2, 3, 1), (2, 3, 2)], -1),
    ("single", [(2, 3)], 0),
    ("zero_size_piece", [(2, 3), (0, 3), (1, 3)], 0),
]


@pytest.mark.parametrize("name, shapes, dim", CATS, ids=[c[0] for c in CATS])
def test_cat_matches_torch(name, shapes, dim):
    xs = [randn(*s, seed=i) for i, s in enumerate(shapes)]
    check_op(lambda *ts: rg.cat(ts, dim), lambda *ts: torch.cat(ts, dim), *xs)


def test_cat_with_one_input_not_requiring_grad():
    xs = [randn(2, 3), randn(1, 3, seed=1), randn(2, 3, seed=2)]
    check_op(lambda *ts: rg.cat(ts), lambda *ts: torch.cat(ts), *xs, no_grad=(1,))
    a = rg.tensor(xs[0], requires_grad=True)
    b = rg.tensor(xs[1])
    rg.cat([a, b]).sum().backward()
    assert b.grad is None and a.grad.shape == (2, 3)


def test_cat_backward_alone_float32_and_second_order():
    xs = [randn(2, 3), randn(2, 1, seed=1), randn(2, 2, seed=2)]
    check_backward_alone(sh.Cat, xs, {"axis": 1})
    check_op(lambda *ts: rg.cat(ts, 1), lambda *ts: torch.cat(ts, 1), *xs, dtype=np.float32)
    assert gradgradcheck(lambda *ts: rg.cat(ts, 1) ** 2, _leaves(*xs), **GRADCHECK_TOLERANCES)


def test_cat_promotes_dtypes_as_torch():
    y = rg.cat([rg.ones(2), rg.ones(2, dtype=rg.float64), rg.tensor([1, 2])])
    ty = torch.cat([torch.ones(2), torch.ones(2, dtype=torch.float64), torch.tensor([1, 2])])
    assert str(y.dtype).split(".")[-1] == str(ty.dtype).split(".")[-1]
    assert rg.concat([rg.ones(1), rg.zeros(1)]).shape == (2,)


@pytest.mark.parametrize("shape, dim", [((2, 3), 0), ((2, 3), 1), ((2, 3), -1), ((2, 3), 2),
                                        ((), 0), ((0, 2), 1)], ids=str)
def test_stack_matches_torch(shape, dim):
    xs = [_x(shape, seed=i) for i in range(3)]
    check_op(lambda *ts: rg.stack(ts, dim), lambda *ts: torch.stack(ts, dim), *xs)


def test_stack_with_one_input_not_requiring_grad_backward_alone_float32_and_second_order():
    xs = [randn(2, 3), randn(2, 3, seed=1)]
    check_op(lambda *ts: rg.stack(ts, 1), lambda *ts: torch.stack(ts, 1), *xs, no_grad=(0,))
    check_backward_alone(sh.Stack, xs, {"axis": 1})
    check_op(lambda *ts: rg.stack(ts, -1), lambda *ts: torch.stack(ts, -1), *xs, dtype=np.float32)
    assert gradgradcheck(lambda *ts: rg.stack(ts, 2) ** 2, _leaves(*xs), **GRADCHECK_TOLERANCES)


# ---------------------------------------------------------------- clone, contiguous
def test_clone_and_contiguous():
    check_op(*_both(lambda t: t.clone()), randn(2, 3))
    check_op(*_both(lambda t: t.t().contiguous()), randn(2, 3))
    check_op(*_both(lambda t: t.t().contiguous()), randn(2, 3), dtype=np.float32)
    check_backward_alone(sh.Clone, [randn(2, 3).T])
    assert gradgradcheck(lambda t: t.clone() ** 2, _leaves(randn(2, 3)), **GRADCHECK_TOLERANCES)


def test_clone_copies_and_contiguous_only_when_needed():
    x = rg.zeros(2, 3)
    assert x.contiguous() is x
    c = x.clone()
    with rg.no_grad():
        c.add_(1.0)
    assert x.sum().item() == 0.0
    t = x.t()
    assert not t.numpy().flags.c_contiguous
    assert t.contiguous().numpy().flags.c_contiguous


# ---------------------------------------------------------------- errors
def test_reshape_errors_name_shapes():
    x = rg.ones(3, 4)
    with pytest.raises(ValueError, match=r"reshape: shape \(5, 3\) is invalid for a tensor of "
                                         r"shape \(3, 4\) \(12 elements\)"):
        x.reshape(5, 3)
    with pytest.raises(ValueError, match=r"reshape: only one dimension can be -1"):
        x.reshape(-1, -1)
    with pytest.raises(ValueError, match=r"view: shape \(5, -1\) is invalid"):
        x.view(5, -1)
    with pytest.raises(TypeError, match=r"reshape: sizes must be ints"):
        x.reshape(2.0, 6)


def test_view_of_a_non_contiguous_tensor_errors():
    with pytest.raises(RuntimeError, match=r"view: cannot view a tensor of shape \(4, 3\) with "
                                           r"strides .* as \(12,\) without copying; use reshape"):
        rg.ones(3, 4).T.view(12)


def test_permute_errors():
    x = rg.ones(2, 3, 4)
    with pytest.raises(ValueError, match=r"permute: dims \(0, 0, 1\) repeat a dimension"):
        x.permute(0, 0, 1)
    with pytest.raises(ValueError, match=r"permute: got 2 dims \(0, 1\) for a tensor with 3 dims"):
        x.permute(0, 1)
    with pytest.raises(IndexError, match=r"permute: dim 3 is out of range"):
        x.permute(0, 1, 3)
    with pytest.raises(IndexError, match=r"transpose: dim -4 is out of range"):
        x.transpose(0, -4)
    with pytest.raises(ValueError, match=r"t: expects a tensor with <= 2 dims"):
        x.t()


def test_expand_errors():
    with pytest.raises(ValueError, match=r"expand: cannot expand shape \(3, 2\) to \(3, 4\); "
                                         r"only size-1 dims can grow"):
        rg.ones(3, 2).expand(3, 4)
    with pytest.raises(ValueError,
                       match=r"expand: cannot expand shape \(3,\) to \(2,\); only size-1"):
        rg.ones(3).expand(2)
    with pytest.raises(ValueError, match=r"expand: cannot expand shape \(3,\) to \(-1, 3\): -1 "
                                         r"is not allowed in a new leading dim"):
        rg.ones(3).expand(-1, 3)


def test_index_out_of_bounds_names_the_shape():
    x = rg.ones(3, 4)
    with pytest.raises(IndexError, match=r"index: index 5 is out of bounds for axis 0 with "
                                         r"size 3 \(tensor of shape \(3, 4\)\)"):
        x[5]
    with pytest.raises(IndexError, match=r"index: index 7 is out of bounds for axis 1 .*"
                                         r"\(tensor of shape \(3, 4\)\)"):
        x[:, [0, 7]]
    with pytest.raises(IndexError, match=r"index: too many indices"):
        x[0, 0, 0]


def test_unsqueeze_and_flatten_dim_errors():
    with pytest.raises(IndexError, match=r"unsqueeze: dim 3 is out of range for a tensor with 3 "
                                         r"dims"):
        rg.ones(2, 3).unsqueeze(3)
    with pytest.raises(ValueError, match=r"flatten: start_dim 1 comes after end_dim 0"):
        rg.ones(2, 3).flatten(1, 0)


def test_cat_errors():
    with pytest.raises(ValueError, match=r"cat: tensor 1 has shape \(2, 4\), which does not match "
                                         r"the others outside dim 0 \(shapes \[\(2, 3\), "
                                         r"\(2, 4\)\]\)"):
        rg.cat([rg.ones(2, 3), rg.ones(2, 4)])
    with pytest.raises(ValueError, match=r"cat: tensor 1 has shape \(3,\)"):
        rg.cat([rg.ones(2, 3), rg.ones(3)], 1)
    with pytest.raises(ValueError, match=r"cat: zero-dimensional tensor \(at position 0\) cannot "
                                         r"be concatenated"):
        rg.cat([rg.tensor(1.0), rg.tensor(2.0)])
    with pytest.raises(ValueError, match="cat: expected a non-empty sequence of tensors"):
        rg.cat([])
    with pytest.raises(IndexError, match=r"cat: dim 2 is out of range"):
        rg.cat([rg.ones(2, 3)], 2)


def test_stack_errors():
    with pytest.raises(ValueError, match=r"stack: all tensors need the same shape; tensor 1 has "
                                         r"shape \(3, 2\) \(shapes \[\(2, 3\), \(3, 2\)\]\)"):
        rg.stack([rg.ones(2, 3), rg.ones(3, 2)])
    with pytest.raises(IndexError, match=r"stack: dim 3 is out of range"):
        rg.stack([rg.ones(2, 3)], 3)


# --- split, chunk and unbind are one node each (Split, Unbind) ---

@pytest.mark.parametrize("fn", [
    lambda x: x.split(2, 1), lambda x: x.split([1, 3, 1], 1), lambda x: x.chunk(3, -1),
    lambda x: x.unbind(0), lambda x: x.unbind(2),
])
def test_split_chunk_unbind_match_torch(fn):
    check_op(fn, fn, randn(3, 5, 4))


def test_split_with_only_some_pieces_used_matches_torch():
    check_op(lambda x: x.split(2, 1)[1] * 3, lambda x: x.split(2, 1)[1] * 3, randn(3, 5))
    check_op(lambda x: x.unbind(1)[0], lambda x: x.unbind(1)[0], randn(3, 5))


def test_split_and_unbind_backward_alone():
    check_backward_alone(sh.Split, [randn(3, 6, 2)], dict(axis=1, bounds=(0, 2, 5, 6)))
    check_backward_alone(sh.Unbind, [randn(3, 4, 2)], dict(axis=1))


def test_split_pieces_are_one_graph_node_and_views():
    x = rg.tensor(randn(4, 6), requires_grad=True)
    y = x * 1.0
    pieces = y.split(2, 1)
    assert len({id(p.grad_fn) for p in pieces}) == 1
    assert all(p._version is y._version for p in pieces)
