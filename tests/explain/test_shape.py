"""retrograd/explain/shape.py: flatten over several start_dim/end_dim choices and shapes, the
index map it prints, seed 002's flatten example, and a gradient read back in the wrong order
caught by the check."""

import pytest

import retrograd
import retrograd.explain.shape as shape_example
from tests.explain._check import assert_explains, grad


@pytest.mark.parametrize("shape, options, out_shape", [
    (None, {}, (2, 8)),
    (None, {"start_dim": 0}, (16,)),
    (None, {"start_dim": 2}, (2, 2, 4)),
    (None, {"start_dim": 1, "end_dim": 2}, (2, 4, 2)),
    (None, {"start_dim": -3, "end_dim": -2}, (2, 4, 2)),
    ((2, 3), {"start_dim": 1}, (2, 3)),
    ((3, 1, 2, 1, 2), {"start_dim": 1, "end_dim": 3}, (3, 2, 2)),
    ((5,), {"start_dim": 0}, (5,)),
])
def test_flatten_options(shape, options, out_shape):
    ex = assert_explains("flatten", shape=shape, seed=2, **options)
    assert ex.printed_outputs()[0].value.shape == out_shape
    assert grad(ex, "x").shape == ex.inputs["x"].value.shape


def test_seed_002_flatten_example():
    # seed 002, "Flatten": x = [[1, 2], [3, 4]] flattened whole (x.flatten(), start_dim 0),
    # dy = [0.1, 0.2, 0.3, 0.4] gives dL/dx = [[0.1, 0.2], [0.3, 0.4]]
    ex = assert_explains("flatten", start_dim=0,
                         values={"x": [[1, 2], [3, 4]], "dy": [0.1, 0.2, 0.3, 0.4]})
    assert ex.printed_outputs()[0].value.tolist() == [1, 2, 3, 4]
    assert grad(ex, "x").tolist() == [[0.1, 0.2], [0.3, 0.4]]
    assert "y[k] = x[i0, i1], k = i0*2 + i1" in str(ex)


def test_the_index_map_of_an_image_batch():
    text = " ".join(str(assert_explains("flatten")).split())  # sentences unwrapped
    assert "dims 1..3 of x (2x2x2x2) become one of size 8, so y has shape 2x8" in text
    assert "y[i0, k] = x[i0, i1, i2, i3], k = (i1*2 + i2)*2 + i3" in text
    assert "dL/dx = dL/dy reshaped back to 2x2x2x2" in text


def test_a_scalar_becomes_a_vector():
    ex = assert_explains("flatten", start_dim=0, values={"x": 5, "dy": [2]})
    assert ex.printed_outputs()[0].value.tolist() == [5] and grad(ex, "x").tolist() == 2


def test_reading_the_gradient_back_column_major_fails_the_check(monkeypatch):
    # reshaping dL/dy back in Fortran order puts each gradient on the wrong x entry
    monkeypatch.setattr(shape_example, "_reshape_back",
                        lambda g, shape: g.reshape(shape, order="F"))
    ex = retrograd.explain("flatten", start_dim=0, values={"x": [[1, 2, 3], [4, 5, 6]],
                                                           "dy": [1, 2, 3, 4, 5, 6]})
    assert not ex.ok and [c.name for c in ex.checks if not c.ok] == ["dL/dx"]


def test_flatten_bad_input():
    with pytest.raises(ValueError, match=r"explain flatten: start_dim 4 is out of range for x "
                                         r"of shape 2x2x2x2 \(expected -4 <= start_dim < 4\)"):
        retrograd.explain("flatten", start_dim=4)
    with pytest.raises(ValueError, match=r"explain flatten: end_dim -3 is out of range for x "
                                         r"of shape 3x2"):
        retrograd.explain("flatten", shape=(3, 2), end_dim=-3)
    with pytest.raises(ValueError, match=r"explain flatten: start_dim 2 \(dim 2\) comes after "
                                         r"end_dim 1 \(dim 1\)"):
        retrograd.explain("flatten", start_dim=2, end_dim=1)
    with pytest.raises(ValueError, match=r"explain flatten: start_dim 1 is out of range for x "
                                         r"of shape 4"):
        retrograd.explain("flatten", values={"x": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match=r"explain flatten: --shape gives x 7 dimensions"):
        retrograd.explain("flatten", shape=(1,) * 7)
