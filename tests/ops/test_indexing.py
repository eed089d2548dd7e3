"""Flip, Roll, Diagonal, DiagEmbed, Unfold and UnfoldBackward (retrograd/ops/indexing.py) and
the shape methods composed from views and indexing (rot90, repeat_interleave, tile, movedim,
select, narrow, take, take_along_dim, masked_select, meshgrid, broadcast_tensors, the stacks)
against PyTorch: values, dtypes and gradients, finite differences, double backward, negative
dims, empty tensors, and which results are views."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops import indexing as ix
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

X = randn(2, 3, 4)


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


def _both(fn):
    """fn(lib, t) as a pair of (retrograd, torch) functions."""
    return (lambda t: fn(rg, t)), (lambda t: fn(torch, t))


# (id, fn(lib, t), input)
CASES = [
    ("flip", lambda L, t: t.flip(0, 2), X),
    ("flip_list", lambda L, t: L.flip(t, [-1]), X),
    ("fliplr", lambda L, t: L.fliplr(t), X),
    ("flipud", lambda L, t: L.flipud(t), X),
    ("roll_flat", lambda L, t: L.roll(t, 5), X),
    ("roll_dims", lambda L, t: L.roll(t, (1, -2), (0, -1)), X),
    ("roll_long_shift", lambda L, t: t.roll(7, 1), X),
    ("rot90_1", lambda L, t: L.rot90(t, 1, (1, 2)), X),
    ("rot90_2", lambda L, t: L.rot90(t, 2, (0, 2)), X),
    ("rot90_3", lambda L, t: t.rot90(-1, (2, 1)), X),
    ("rot90_0", lambda L, t: L.rot90(t, 4), X),
    ("repeat_interleave", lambda L, t: L.repeat_interleave(t, 2), X),
    ("repeat_interleave_dim", lambda L, t: t.repeat_interleave(L.tensor([1, 0, 2]), dim=1), X),
    ("repeat_interleave_neg_dim", lambda L, t: t.repeat_interleave(3, dim=-1), X),
    ("tile_fewer", lambda L, t: L.tile(t, (2,)), X),
    ("tile_more", lambda L, t: t.tile(2, 1, 1, 2), X),
    ("movedim", lambda L, t: L.movedim(t, 0, -1), X),
    ("movedim_many", lambda L, t: t.movedim((0, 1), (2, 0)), X),
    ("moveaxis", lambda L, t: L.moveaxis(t, -1, 0), X),
    ("swapdims", lambda L, t: L.swapdims(t, 0, 2), X),
    ("swapaxes", lambda L, t: L.swapaxes(t, 1, 2), X),
    ("t", lambda L, t: L.t(t[0]), X),
    ("select", lambda L, t: L.select(t, 1, -1), X),
    ("narrow", lambda L, t: L.narrow(t, 2, -3, 2), X),
    ("take", lambda L, t: L.take(t, L.tensor([[0, -1], [5, 5]])), X),
    ("take_along_dim", lambda L, t: L.take_along_dim(t, L.tensor([[[0], [3], [3]]]), 2), X),
    ("take_along_dim_flat", lambda L, t: L.take_along_dim(t, L.tensor([0, 5, 5])), X),
    ("masked_select", lambda L, t: L.masked_select(t, L.tensor(X[0] > 0)), X),
    ("index_select", lambda L, t: L.index_select(t, 2, L.tensor([3, 0, 3])), X),
    ("unbind", lambda L, t: L.unbind(t, 1), X),
    ("diag_vector", lambda L, t: L.diag(t[0, 0], 1), X),
    ("diag_matrix", lambda L, t: L.diag(t[0], -1), X),
    ("diagonal", lambda L, t: L.diagonal(t, 1, 2, 0), X),
    ("diagonal_default", lambda L, t: t.diagonal(), X),
    ("diag_embed", lambda L, t: L.diag_embed(t, -1, 0, 2), X),
    ("diag_embed_default", lambda L, t: L.diag_embed(t), X),
    ("trace", lambda L, t: L.trace(t[1]), X),
    ("unfold_overlap", lambda L, t: t.unfold(2, 3, 1), X),
    ("unfold_gaps", lambda L, t: t.unfold(-1, 1, 2), X),
    ("unfold_dim0", lambda L, t: t.unfold(0, 2, 1), X),
    ("broadcast_to", lambda L, t: L.broadcast_to(t[:, :1], (5, 2, 3, 4)), X),
    ("clone", lambda L, t: L.clone(t), X),
    ("adjoint", lambda L, t: t.adjoint(), X),
    ("mH", lambda L, t: t.mH, X),
    ("H", lambda L, t: t[0].H, X),
]


@pytest.mark.parametrize("name, fn, x", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, fn, x):
    check_op(*_both(fn), x)


@pytest.mark.parametrize("name, fn, x", CASES, ids=[c[0] for c in CASES])
def test_second_order(name, fn, x):
    assert gradgradcheck(lambda t: fn(rg, t), _leaves(x), **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("op, attrs", [
    (ix.Flip, {"axes": (0, 2)}), (ix.Roll, {"shifts": (1, -5), "axes": (1, 2)}),
    (ix.Diagonal, {"offset": -1, "axis1": 2, "axis2": 1}),
    (ix.Unfold, {"axis": 2, "size": 3, "step": 1}), (ix.Unfold, {"axis": 1, "size": 1, "step": 2}),
], ids=["flip", "roll", "diagonal", "unfold", "unfold_step"])
def test_backward_alone(op, attrs):
    check_backward_alone(op, [X], attrs)


def test_adjoints_backward_alone():
    check_backward_alone(ix.DiagEmbed, [randn(2, 3)],
                         {"shape": (4, 2, 4), "offset": 1, "axis1": 0, "axis2": 2})
    check_backward_alone(ix.UnfoldBackward, [randn(2, 3, 2, 3)],
                         {"shape": (2, 3, 4), "axis": 2, "size": 3, "step": 1})


@pytest.mark.parametrize("name, fn, x", [
    ("flip", lambda L, t: t.flip(1), randn(2, 0, 3)),
    ("roll", lambda L, t: t.roll(1, 0), randn(0, 3)),
    ("repeat_interleave", lambda L, t: t.repeat_interleave(2, 0), randn(0, 3)),
    ("diagonal", lambda L, t: t.diagonal(5), randn(3, 4)),
    ("diag_embed", lambda L, t: L.diag_embed(t), randn(2, 0)),
    ("unfold", lambda L, t: t.unfold(1, 0, 1), randn(2, 3)),
    ("take", lambda L, t: t.take(L.tensor(np.zeros(0, np.int64))), randn(2, 3)),
    ("masked_select", lambda L, t: t.masked_select(L.tensor(np.zeros((2, 3), bool))), randn(2, 3)),
    ("flip_0d", lambda L, t: t.flip(0), np.array(1.5)),
    ("roll_0d", lambda L, t: t.roll(2), np.array(1.5)),
    ("movedim_0d", lambda L, t: t.movedim((), ()), np.array(1.5)),
    ("tile_0d", lambda L, t: t.tile(3), np.array(1.5)),
    ("repeat_interleave_0d", lambda L, t: t.repeat_interleave(3), np.array(1.5)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_edge_shapes(name, fn, x):
    check_op(*_both(fn), x)


def test_views_and_copies_as_torch():
    """diagonal, select, narrow and unfold are views (an in-place change shows through);
    flip, roll, diag of a matrix and repeat_interleave are copies."""
    for name, fn in [("diagonal", lambda t: t.diagonal()), ("select", lambda t: t.select(0, 1)),
                     ("narrow", lambda t: t.narrow(1, 1, 2)),
                     ("unfold", lambda t: t.unfold(1, 2, 1)), ("flip", lambda t: t.flip(0)),
                     ("roll", lambda t: t.roll(1, 0)), ("diag", lambda t: t.diag()),
                     ("repeat_interleave", lambda t: t.repeat_interleave(1, 0))]:
        a, b = rg.zeros(3, 3), torch.zeros(3, 3)
        va, vb = fn(a), fn(b)
        shares = np.shares_memory(va.numpy(), a.numpy())
        assert shares == (vb.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()), name
        if shares:    # data_ptr: the address of the view's first element, as torch's
            assert va.data_ptr() - a.data_ptr() == vb.data_ptr() - b.data_ptr(), name
    d = rg.zeros(3, 3)
    with rg.no_grad():
        d.diagonal().fill_(1.0)
    assert d.tolist() == torch.eye(3).tolist()
    version = d._version[0]
    with rg.no_grad():
        d.diagonal().add_(1.0)
    assert d._version[0] == version + 1      # a view shares its base's version counter


def test_diagonal_and_unfold_record_views_as_torch():
    x = rg.tensor(randn(3, 3), requires_grad=True)
    y = x * 1.0
    diag = y.diagonal()
    assert diag._base is y
    (diag * diag).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.diag(2 * np.diag(x.detach().numpy())))


def test_meshgrid_matches_torch():
    a, b, c = randn(3, seed=1), randn(2, seed=2), randn(4, seed=3)
    for indexing in ("ij", "xy"):
        check_op(lambda s, t, u: rg.meshgrid(s, t, u, indexing=indexing),
                 lambda s, t, u: torch.meshgrid(s, t, u, indexing=indexing), a, b, c)
        check_op(lambda s, t: rg.meshgrid([s, t], indexing=indexing),
                 lambda s, t: torch.meshgrid([s, t], indexing=indexing), a, b)
    with pytest.warns(UserWarning, match="indexing argument"):
        grids = rg.meshgrid(rg.tensor(a), rg.tensor(b))
    assert grids[0].shape == (3, 2)
    with pytest.raises(RuntimeError, match="meshgrid: expects 0-d or 1-D tensors"):
        rg.meshgrid(rg.ones(2, 2), indexing="ij")


def test_broadcast_tensors_and_stacks_match_torch():
    check_op(lambda s, t: rg.broadcast_tensors(s, t), lambda s, t: torch.broadcast_tensors(s, t),
             randn(3, 1, seed=1), randn(4, seed=2))
    assert rg.broadcast_shapes((3, 1), (4,), 1) == torch.broadcast_shapes((3, 1), (4,), 1)
    v, m = randn(3, seed=1), randn(2, 3, seed=2)
    check_op(lambda s, t: rg.vstack([s, t]), lambda s, t: torch.vstack([s, t]), v, m)
    check_op(lambda s, t: rg.row_stack((s, t)), lambda s, t: torch.vstack((s, t)), v, m)
    check_op(lambda s, t: rg.hstack([s, t]), lambda s, t: torch.hstack([s, t]), v, v)
    check_op(lambda s, t: rg.hstack([s, t]), lambda s, t: torch.hstack([s, t]), m, m)
    check_op(lambda s, t: rg.column_stack([s, t]), lambda s, t: torch.column_stack([s, t]),
             randn(2, seed=1), m[:, :2])
    check_op(lambda s, t: rg.dstack([s, t]), lambda s, t: torch.dstack([s, t]), m, m)
    for k in (1, 2, 3):
        check_op(lambda s: getattr(rg, f"atleast_{k}d")(s),
                 lambda s: getattr(torch, f"atleast_{k}d")(s), np.array(1.5))
        check_op(lambda s, t: getattr(rg, f"atleast_{k}d")(s, t),
                 lambda s, t: getattr(torch, f"atleast_{k}d")(s, t), v, m)


def test_errors_name_the_op():
    x = rg.ones(2, 3)
    with pytest.raises(RuntimeError, match="flip: dims .* repeat a dim"):
        x.flip(0, 0)
    with pytest.raises(IndexError, match="flip: dim 2 is out of range"):
        x.flip(2)
    with pytest.raises(RuntimeError, match="roll: shifts .* and dims .* must have the same"):
        x.roll((1, 2), 0)
    with pytest.raises(RuntimeError, match="repeat_interleave: repeats can not be negative"):
        x.repeat_interleave(-1)
    with pytest.raises(RuntimeError, match="repeat_interleave: repeats must be an int or a 1-D"):
        x.repeat_interleave(rg.tensor([1, 2]), dim=1)
    with pytest.raises(RuntimeError, match=r"narrow: start \(2\) \+ length \(2\) exceeds"):
        x.narrow(1, 2, 2)
    with pytest.raises(IndexError, match="take: index out of range"):
        x.take(rg.tensor([6]))
    with pytest.raises(RuntimeError, match="unfold: size 4 is larger than dim 1"):
        x.unfold(1, 4, 1)
    with pytest.raises(RuntimeError, match="diagonal: dim1 and dim2 must be two different dims"):
        x.diagonal(0, 1, 1)
    with pytest.raises(RuntimeError, match="diag: expected a 1-D or 2-D tensor"):
        rg.ones(2, 2, 2).diag()
    with pytest.raises(RuntimeError, match="H: only supported on matrices"):
        rg.ones(2, 2, 2).H
    with pytest.raises(RuntimeError, match="movedim: source .* and destination .* must have"):
        x.movedim((0, 1), 0)
