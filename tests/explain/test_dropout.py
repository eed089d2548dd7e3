"""retrograd/explain/dropout.py: the mask drawn as F.dropout draws it (and the caller's random
stream left alone), a given mask, evaluation mode, p = 0 and p = 1; seed 002's dropout
example, whose mask came from NumPy's legacy generator, checked with that mask given."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.dropout as dropout_example
import retrograd.nn.functional as F
from tests.explain._check import assert_explains, grad


def _step(ex, name):
    return next(s for s in ex.steps if s.name == name)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 4])
def test_the_printed_mask_is_the_one_F_dropout_draws(p, seed):
    ex = assert_explains("dropout", p=p, seed=seed, shape=(3, 4))
    retrograd.manual_seed(seed)
    drawn = F.dropout(retrograd.ones(3, 4, dtype=retrograd.float64), p=p).numpy()
    assert _step(ex, "mask").value.tolist() == (drawn != 0).astype(float).tolist()
    np.testing.assert_allclose(_step(ex, "m").value, drawn)
    np.testing.assert_allclose(grad(ex, "x"), ex.upstreams[0][1] * drawn)


def test_the_callers_random_stream_is_left_alone():
    retrograd.manual_seed(123)
    expected = retrograd.rand(3).tolist()
    retrograd.manual_seed(123)
    assert retrograd.explain("dropout", seed=7).ok
    assert retrograd.rand(3).tolist() == expected


@pytest.mark.parametrize("options", [{"training": False}, {"p": 0.0}, {"p": 1.0},
                                     {"p": 0.25, "shape": (2, 2, 3)}])
def test_dropout_modes(options):
    ex = assert_explains("dropout", **options)
    x, g = ex.inputs["x"].value, ex.upstreams[0][1]
    if options.get("training") is False or options.get("p") == 0.0:
        assert "dropout is the identity" in str(ex) and "mask" not in [s.name for s in ex.steps]
        assert grad(ex, "x").tolist() == g.tolist()
    elif options.get("p") == 1.0:
        assert not grad(ex, "x").any() and not ex.printed_outputs()[0].value.any()
    else:
        assert set(np.unique(_step(ex, "m").value)) <= {0.0, 4 / 3}
        assert x.shape == (2, 2, 3)


def test_p_1_with_a_given_mask_drops_everything():
    ex = assert_explains("dropout", p=1.0, values={"x": [1, 2], "mask": [0, 0]})
    assert "p = 1 drops every element" in str(ex) and grad(ex, "x").tolist() == [0, 0]


def test_seed_002_dropout_with_its_mask_given():
    # seed 002, "Dropout": x = [1, 2, 3, 4], p = 0.5, dy = [0.1, 0.2, 0.3, 0.4], mask drawn
    # by np.random.seed(0); np.random.binomial(1, 1 - p, 4): NumPy's legacy Mersenne Twister,
    # not retrograd's PCG64 stream, so retrograd cannot draw it. Run, it keeps all four
    # (binomial gives [1, 1, 1, 1]): y = [2, 4, 6, 8], dL/dx = [0.2, 0.4, 0.6, 0.8].
    assert np.random.RandomState(0).binomial(1, 0.5, size=4).tolist() == [1, 1, 1, 1]
    seed_002 = {"x": [1, 2, 3, 4], "dy": [0.1, 0.2, 0.3, 0.4]}
    ex = assert_explains("dropout", p=0.5, values={**seed_002, "mask": [1, 1, 1, 1]})
    assert ex.printed_outputs()[0].value.tolist() == [2, 4, 6, 8]
    assert grad(ex, "x") == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert "the reference is retrograd's Tensor arithmetic" in str(ex)
    # a mask that drops the 2nd and 4th element: their gradient is 0
    ex = assert_explains("dropout", p=0.5, values={**seed_002, "mask": [1, 0, 1, 0]})
    assert ex.printed_outputs()[0].value.tolist() == [2, 0, 6, 0]
    assert grad(ex, "x") == pytest.approx([0.2, 0, 0.6, 0])
    # retrograd's own draw after manual_seed(0): U = [0.637, 0.270, 0.041, 0.017], kept where
    # U >= 0.5: only the first element
    ex = assert_explains("dropout", p=0.5, values=seed_002)
    assert _step(ex, "mask").value.tolist() == [1, 0, 0, 0]
    assert ex.printed_outputs()[0].value.tolist() == [2, 0, 0, 0]
    assert grad(ex, "x") == pytest.approx([0.2, 0, 0, 0])


def test_a_forgotten_rescaling_fails_the_check(monkeypatch):
    # m = mask instead of mask / (1 - p): both y and dL/dx disagree with retrograd
    monkeypatch.setattr(dropout_example, "_scaled_mask", lambda keep, p: keep)
    ex = retrograd.explain("dropout", values={"x": [1, 2, 3, 4], "mask": [1, 0, 1, 1]})
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["y", "dL/dx"]


def test_a_mask_from_another_stream_fails_the_check(monkeypatch):
    # the mask is an input of the arithmetic: drawing it from the wrong seed is caught
    real = dropout_example._drawn_uniforms
    monkeypatch.setattr(dropout_example, "_drawn_uniforms",
                        lambda seed, shape: real(seed + 1, shape))
    ex = retrograd.explain("dropout", shape=(4, 4))
    assert not ex.ok and "dL/dx" in [c.name for c in ex.checks if not c.ok]


def test_dropout_bad_input():
    with pytest.raises(ValueError, match=r"explain dropout: p must be in \[0, 1\], got 1.5"):
        retrograd.explain("dropout", p=1.5)
    with pytest.raises(ValueError, match=r"explain dropout: the mask has shape 3 but x has "
                                         r"shape 4; they must be equal"):
        retrograd.explain("dropout", values={"x": [1, 2, 3, 4], "mask": [1, 0, 1]})
    with pytest.raises(ValueError, match=r"explain dropout: the mask must hold 0 \(dropped\) "
                                         r"or 1 \(kept\), got \[0.5, 1.0\]"):
        retrograd.explain("dropout", values={"x": [1, 2], "mask": [0.5, 1]})
    with pytest.raises(ValueError, match=r"explain dropout: a mask was given, but with "
                                         r"training=False and p = 0.5 dropout is the identity"):
        retrograd.explain("dropout", training=False, values={"x": [1, 2], "mask": [0, 1]})
    with pytest.raises(ValueError, match=r"explain dropout: p = 1 drops every element, but "
                                         r"the mask keeps 1"):
        retrograd.explain("dropout", p=1.0, values={"x": [1, 2], "mask": [0, 1]})
    with pytest.raises(ValueError, match=r"explain dropout: a mask was given, but with "
                                         r"training=True and p = 0 dropout is the identity"):
        retrograd.explain("dropout", p=0.0, values={"x": [1, 2], "mask": [0, 1]})
