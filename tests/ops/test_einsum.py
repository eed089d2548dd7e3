"""einsum (retrograd/ops/einsum.py, retrograd/_einsum.py): values and every operand's
gradient against PyTorch for products, transposes, traces and diagonals (repeated letters),
letters summed in one operand only, '...' and size-1 broadcasting, implicit outputs, three
operands, empty dims and the list and sublist forms; finite differences alone and twice
through the engine; float32; the cost; errors (PyTorch's wording)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.autograd.cost import ArrayInfo, OpCall, cost_of
from retrograd.ops.einsum import Einsum, contraction_flops, parse_equation
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),                           # implicit output
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),                                        # trace
    ("iij->ji", [(3, 3, 2)]),
    ("ii,i->i", [(3, 3), (3,)]),
    ("iji->j", [(3, 2, 3)]),
    ("...ij,...jk->...ik", [(2, 3, 2, 4), (2, 3, 4, 5)]),
    ("...ij,...jk", [(5, 1, 2, 3), (4, 3, 2)]),              # '...' broadcasting, implicit
    ("ij,ij->ij", [(1, 3), (2, 3)]),                         # size-1 letter broadcasting
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("bi,bj,bk->ijk", [(3, 2), (3, 4), (3, 2)]),
    ("ij,k->i", [(2, 3), (4,)]),                             # j and k summed in one operand
    ("bA", [(2, 3)]),                                        # upper case first, as torch
    ("i...,...i", [(2, 3, 4), (3, 4, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 4)]),                # spaces
    (",i->i", [(), (3,)]),                                   # a 0-d operand
    ("ij,jk->ik", [(0, 3), (3, 4)]),                         # empty dims
    ("ij,jk->ik", [(2, 0), (0, 4)]),
]


def _ids(case):
    return f"{case[0].replace(' ', '_')}-{case[1]}"


@pytest.mark.parametrize("equation, shapes", CASES, ids=[_ids(c) for c in CASES])
def test_matches_torch(equation, shapes):
    arrays = [randn(*s, seed=i) if s else np.array(1.3) for i, s in enumerate(shapes)]
    check_op(lambda *ops: rg.einsum(equation, *ops),
             lambda *ops: torch.einsum(equation, *ops), *arrays)


@settings(max_examples=25, deadline=None)
@given(batch=st.lists(st.tuples(st.integers(1, 3), st.booleans(), st.booleans()), max_size=3),
       sizes=st.tuples(*[st.integers(1, 3)] * 3))
def test_ellipsis_batches_broadcast_as_torch(batch, sizes):
    """Batch dims of '...ij,...jk' in either operand, each of size 1 in one of them or
    missing from the shorter one: values and gradients as torch's."""
    a_batch = tuple(1 if one_a else s for s, one_a, _ in batch)
    b_batch = tuple(1 if one_b and not one_a else s for s, one_a, one_b in batch)
    b_batch = b_batch[len(b_batch) // 2:]          # a shorter batch broadcasts from the right
    n, k, m = sizes
    check_op(lambda x, y: rg.einsum("...ij,...jk->...ik", x, y),
             lambda x, y: torch.einsum("...ij,...jk->...ik", x, y),
             randn(*a_batch, n, k), randn(*b_batch, k, m, seed=1), gradcheck=False)


def test_list_and_sublist_forms_match_torch():
    a, b = randn(2, 3), randn(3, 4, seed=1)
    check_op(lambda x, y: rg.einsum("ij,jk", [x, y]), lambda x, y: torch.einsum("ij,jk", [x, y]),
             a, b)
    check_op(lambda x, y: rg.einsum(x, [0, 1], y, [1, 2], [0, 2]),
             lambda x, y: torch.einsum(x, [0, 1], y, [1, 2], [0, 2]), a, b)
    check_op(lambda x, y: rg.einsum(x, [Ellipsis, 1], y, [1, 2]),
             lambda x, y: torch.einsum(x, [Ellipsis, 1], y, [1, 2]), a, b)


def test_float32_matches_torch_and_keeps_the_dtype():
    (out,) = check_op(lambda a, b: rg.einsum("bhqd,bhkd->bhqk", a, b),
                      lambda a, b: torch.einsum("bhqd,bhkd->bhqk", a, b),
                      randn(2, 2, 3, 4), randn(2, 2, 5, 4, seed=1), dtype=np.float32)
    assert out.dtype == rg.float32


def test_bfloat16_computes_wide_and_keeps_the_dtype():
    a, b = randn(3, 4), randn(4, 2, seed=1)
    got = rg.einsum("ij,jk->ik", rg.tensor(a, dtype=rg.bfloat16), rg.tensor(b, dtype=rg.bfloat16))
    assert got.dtype == rg.bfloat16
    np.testing.assert_allclose(got.float().numpy(), a @ b, rtol=3e-2, atol=3e-2)


def test_integer_operands_match_torch():
    a, b = np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4)
    got = rg.einsum("ij,jk->ik", rg.tensor(a), rg.tensor(b))
    assert got.dtype == rg.int64
    np.testing.assert_array_equal(got.numpy(), torch.einsum("ij,jk->ik", torch.tensor(a),
                                                            torch.tensor(b)).numpy())


@pytest.mark.parametrize("equation, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]), ("ij,k->ik", [(2, 3), (4,)]),
    ("iij,j,kj->ik", [(2, 2, 3), (3,), (4, 3)])], ids=str)
def test_backward_alone(equation, shapes):
    check_backward_alone(Einsum, [randn(*s, seed=i) for i, s in enumerate(shapes)],
                         {"equation": equation})


@pytest.mark.parametrize("equation, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 2)]), ("ii->i", [(3, 3)]), ("ij->", [(2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]), ("...ij,...jk", [(2, 1, 2, 3), (2, 3, 2)])],
    ids=str)
def test_twice_differentiable(equation, shapes):
    leaves = [rg.tensor(randn(*s, seed=i), requires_grad=True) for i, s in enumerate(shapes)]
    assert gradgradcheck(lambda *ops: rg.einsum(equation, *ops) ** 2, leaves,
                         **GRADCHECK_TOLERANCES)


def test_mixed_dtypes_are_promoted():
    y = rg.einsum("i,i->", rg.ones(3, dtype=rg.float32), rg.ones(3, dtype=rg.float64))
    assert y.dtype == rg.float64 and y.item() == 3.0


def test_parse_equation_canonical_form():
    assert parse_equation("ij,jk", [(2, 3), (3, 4)]) == ("ij,jk->ik", [(2, 3), (3, 4)])
    assert parse_equation("...ij,...jk", [(5, 1, 2, 3), (4, 3, 2)]) == \
        ("aij,bjk->abik", [(5, 2, 3), (4, 3, 2)])
    assert parse_equation("ii", [(3, 3)]) == ("ii->", [(3, 3)])


def test_cost_counts_two_flops_per_multiply_add_and_the_gradients():
    assert contraction_flops("ij,jk->ik", [(2, 3), (3, 4)]) == (2 * 2 * 3 * 4,) * 2
    assert contraction_flops("i,j->ij", [(3,), (4,)]) == (12, 0)
    f32 = np.dtype("float32")
    call = OpCall(Einsum, (ArrayInfo((8, 16), f32), ArrayInfo((16, 4), f32)),
                  {"equation": "ij,jk->ik"}, (ArrayInfo((8, 4), f32),), (True, True))
    cost = cost_of(call)
    assert cost.flops == cost.gemm_flops == 2 * 8 * 16 * 4
    assert cost.backward_flops == 2 * cost.flops and "einsum" in cost.formula
    three = contraction_flops("ij,jk,kl->il", [(2, 30), (30, 40), (40, 5)])[0]
    assert three == 2 * 30 * 40 * 5 + 2 * 2 * 30 * 5     # the greedy path: (jk,kl) first


@pytest.mark.parametrize("args, message", [
    (("ij,jk->ik", (2, 3), (2, 4)), "einsum\\(\\): subscript j has size 2 for operand 1 which "
                                    "does not broadcast with previously seen size 3"),
    (("ij->ii", (2, 3)), "output subscript i appears more than once in the output"),
    (("ij->k", (2, 3)), "output subscript k does not appear in the equation for any input"),
    (("ij", (2,)), "the number of subscripts in the equation \\(2\\) does not match the number "
                   "of dimensions \\(1\\) for operand 0 and no ellipsis was given"),
    (("ij...", (2,)), "the number of subscripts in the equation \\(2\\) is more than the number "
                      "of dimensions \\(1\\) for operand 0"),
    (("ij,jk->ik", (2, 3)), "more operands were provided than specified|fewer operands"),
    (("i1->i", (2, 3)), "invalid subscript given at index 1 in the equation string, subscripts "
                        "must be in \\[a-zA-Z\\]"),
    (("ii->i", (3, 2)), "subscript i is repeated for operand 0 but the sizes don't match, 3 != 2"),
    (("i->i->i", (2,)), "more than one '->'"),
    (("...i...->i", (2,)), "more than one ellipsis"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None)
def test_errors_use_torchs_wording(args, message):
    equation, *shapes = args
    with pytest.raises(RuntimeError, match=message):
        rg.einsum(equation, *(rg.ones(*s) for s in shapes))


def test_argument_errors():
    with pytest.raises(RuntimeError, match="must provide at least one operand"):
        rg.einsum("i")
    with pytest.raises(TypeError, match="einsum: operand 1 must be a Tensor"):
        rg.einsum("i,i", rg.ones(2), [1.0, 2.0])
    with pytest.raises(TypeError, match="the first argument must be an equation"):
        rg.einsum(3, rg.ones(2))
    with pytest.raises(ValueError, match="a sublist holds ints"):
        rg.einsum(rg.ones(2), ["a"])
