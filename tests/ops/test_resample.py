"""AxisMap (retrograd/ops/_resample.py), the per-axis linear maps of padding and interpolation:
its adjoint is its transpose (<A x, g> = <x, A^T g>) and equals the dense matrix's, for
gathers and weighted taps, repeated and missing targets, on every axis."""

import numpy as np
import pytest

from retrograd.ops._resample import AxisMap, adjoint_maps, apply_maps


def _dense(axis_map):
    """The (out, size) matrix of the map."""
    matrix = np.zeros((axis_map.out, axis_map.size))
    weight = axis_map.weight if axis_map.weight is not None else np.ones(axis_map.index.shape)
    for t in range(axis_map.taps):
        np.add.at(matrix, (np.arange(axis_map.out), axis_map.index[t]), weight[t])
    return matrix


MAPS = [
    AxisMap(np.array([3, 0, 0, 2, 3, 3]), 5),                      # repeats, 1 and 4 missing
    AxisMap(np.array([0, 1, 2, 3]), 4),                            # identity, in order
    AxisMap(np.array([[0, 0, 1, 2], [1, 1, 2, 2]]), 3,
            np.array([[0.5, 0.25, 1.0, 0.0], [0.5, 0.75, 0.0, 1.0]])),   # linear-style taps
    AxisMap(np.zeros((1, 0), dtype=np.int64), 3),                  # to an empty axis
]


@pytest.mark.parametrize("axis_map", MAPS)
@pytest.mark.parametrize("axis", [-1, -2, -3])
def test_axis_map_equals_its_dense_matrix_and_its_adjoint_the_transpose(axis_map, axis):
    rng = np.random.default_rng(0)
    shape = [2, 3, 4]
    shape[axis] = axis_map.size
    x = rng.standard_normal(shape)
    matrix = _dense(axis_map)
    y = axis_map.apply(x, axis)
    np.testing.assert_allclose(y, np.moveaxis(np.tensordot(matrix, x, axes=([1], [axis])), 0,
                                              axis), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    back = axis_map.adjoint(g, axis)
    np.testing.assert_allclose(back, np.moveaxis(np.tensordot(matrix.T, g, axes=([1], [axis])),
                                                 0, axis), rtol=1e-12, atol=1e-12)
    assert np.isclose(np.sum(y * g), np.sum(x * back))


def test_apply_maps_runs_the_last_axis_first_and_adjoint_maps_inverts_the_order():
    rng = np.random.default_rng(1)
    maps = [AxisMap(np.array([[0, 1, 1], [1, 1, 0]]), 2, rng.random((2, 3))),
            AxisMap(np.array([2, 0, 1, 1, 2]), 3)]
    x = rng.standard_normal((2, 2, 3))
    y = apply_maps(x, maps)
    expected = np.einsum("oh,pw,nhw->nop", _dense(maps[0]), _dense(maps[1]), x)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    g = rng.standard_normal(y.shape)
    assert np.isclose(np.sum(y * g), np.sum(x * adjoint_maps(g, maps)))


def test_adjoint_keeps_float32():
    axis_map = AxisMap(np.array([[0, 1], [1, 1]]), 2, np.array([[0.5, 1.0], [0.5, 0.0]],
                                                               dtype=np.float32))
    g = np.ones((3, 2), dtype=np.float32)
    assert axis_map.adjoint(g, -1).dtype == np.float32
    assert axis_map.apply(g, -1).dtype == np.float32
