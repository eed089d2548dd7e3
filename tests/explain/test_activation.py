"""retrograd/explain/activation.py: relu, leaky_relu, sigmoid, tanh, gelu (exact and tanh)
and silu, each y = f(x) with f'(x) shown and dL/dx = dL/dy * f'(x); seed 002's ReLU example
with its kink at x = 0."""

import math

import numpy as np
import pytest

import retrograd
import retrograd.explain.activation as activation_example
from retrograd.cli import main
from tests.explain._check import assert_explains, grad

OPS = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu"]


def _step(ex, name):
    return next(s for s in ex.steps if s.name == name)


@pytest.mark.parametrize("shape", [None, (4,), (2, 2, 3)])
@pytest.mark.parametrize("op", OPS)
def test_every_activation_in_several_shapes(op, shape):
    ex = assert_explains(op, shape=shape, seed=3)
    x = ex.inputs["x"].value
    assert grad(ex, "x").shape == x.shape


@pytest.mark.parametrize("options", [
    {"op": "gelu", "approximate": "none"}, {"op": "gelu", "approximate": "tanh"},
    {"op": "leaky_relu", "negative_slope": 0.01}, {"op": "leaky_relu", "negative_slope": 0.5},
    {"op": "leaky_relu", "negative_slope": -0.2}])
@pytest.mark.parametrize("seed", [0, 5])
def test_activation_options(options, seed):
    options = dict(options)
    assert_explains(options.pop("op"), seed=seed, **options)


def test_seed_002_relu_example_and_its_kink():
    # seed 002, "Ativacao (ReLU)": x = [-1, 0, 2, -3], dy = [0.5, -0.5, 1, 0] give
    # y = [0, 0, 2, 0] and dL/dx = [0, 0, 1, 0]. x = 0 is a kink; retrograd (like PyTorch)
    # takes ReLU'(0) = 0, and since dL/dy = -0.5 there, finite differences see one kink.
    ex = assert_explains("relu", values={"x": [-1, 0, 2, -3], "dy": [0.5, -0.5, 1, 0]})
    assert ex.printed_outputs()[0].value.tolist() == [0, 0, 2, 0]
    assert grad(ex, "x").tolist() == [0, 0, 1, 0]
    assert _step(ex, "ReLU'(x)").value.tolist() == [0, 0, 1, 0]
    text = str(ex)
    assert "ReLU has a kink at x = 0" in text and "takes 0, the left-hand slope" in text
    assert "x has 1 entry at 0" in text
    (check,) = [c for c in ex.checks if c.against == "autograd"]
    assert check.kinks == 1 and "except at 1 kink (left and right derivatives differ" in text


def test_leaky_relu_takes_the_slope_at_the_kink():
    # PyTorch's convention: leaky_relu'(0) = negative_slope (F.leaky_relu's docstring)
    ex = assert_explains("leaky_relu", negative_slope=0.2,
                         values={"x": [0, 3, -2], "dL/dy": [1, 1, 1]})
    assert grad(ex, "x").tolist() == [0.2, 1, 0.2]
    assert ex.printed_outputs()[0].value.tolist() == [0, 3, pytest.approx(-0.4)]


def test_smooth_activations_at_known_points():
    # sigmoid(0) = 1/2, sigmoid'(0) = 1/4; tanh(0) = 0, tanh'(0) = 1
    ex = assert_explains("sigmoid", values={"x": [0.0], "dy": [1.0]})
    assert ex.printed_outputs()[0].value.tolist() == [0.5] and grad(ex, "x").tolist() == [0.25]
    ex = assert_explains("tanh", values={"x": [0.0], "dy": [2.0]})
    assert ex.printed_outputs()[0].value.tolist() == [0.0] and grad(ex, "x").tolist() == [2.0]
    # GELU at x = 1: Phi(1) = 0.8413447, phi(1) = 0.2419707, gelu'(1) = 1.0833155
    ex = assert_explains("gelu", values={"x": [1.0], "dy": [1.0]})
    assert _step(ex, "Phi(x)").value[0] == pytest.approx(0.8413447460685429)
    assert _step(ex, "phi(x)").value[0] == pytest.approx(0.24197072451914337)
    assert grad(ex, "x")[0] == pytest.approx(0.8413447460685429 + 0.24197072451914337)
    # tanh GELU at x = 1 (PyTorch's gelu(1, approximate='tanh') = 0.8411919906082768)
    ex = assert_explains("gelu", approximate="tanh", values={"x": [1.0], "dy": [1.0]})
    u = math.sqrt(2 / math.pi) * 1.044715
    assert _step(ex, "u").value[0] == pytest.approx(u)
    assert _step(ex, "T").value[0] == pytest.approx(math.tanh(u))
    assert ex.printed_outputs()[0].value[0] == pytest.approx(0.8411919906082768)
    assert grad(ex, "x")[0] == pytest.approx(1.0829640838457826)
    # SiLU at x = 1: s = 0.7310586, silu'(1) = s (1 + (1 - s)) = 0.9276705
    ex = assert_explains("silu", values={"x": [1.0], "dy": [1.0]})
    assert ex.printed_outputs()[0].value[0] == pytest.approx(0.7310585786300049)
    assert grad(ex, "x")[0] == pytest.approx(0.9276705118714869)


def test_each_example_names_its_derivative_terms():
    text = str(retrograd.explain("gelu"))
    for name in ("Phi(x) = 0.5 (1 + erf(x / sqrt(2)))", "phi(x) = exp(-x^2 / 2)",
                 "x phi(x)", "gelu'(x) = Phi(x) + x phi(x)", "dL/dx = dL/dy * gelu'(x)"):
        assert name in text
    text = str(retrograd.explain("gelu", approximate="tanh"))
    for name in ("u = sqrt(2/pi) (x + 0.044715 x^3)", "T = tanh(u)", "u' = sqrt(2/pi)",
                 "0.5 (1 + T) =", "0.5 x (1 - T^2) u' =", "gelu'(x) = 0.5 (1 + T) + 0.5 x"):
        assert name in text
    assert "sigmoid'(x) = y (1 - y)" in str(retrograd.explain("sigmoid"))
    assert "tanh'(x) = 1 - y^2" in str(retrograd.explain("tanh"))
    assert "silu'(x) = s + x s (1 - s)" in str(retrograd.explain("silu"))


def test_large_inputs_stay_finite():
    # the sigmoid of the example is the overflow-free form of ops/elementwise.py
    ex = assert_explains("sigmoid", values={"x": [-800.0, 800.0], "dy": [1.0, 1.0]})
    assert ex.printed_outputs()[0].value.tolist() == [0.0, 1.0]
    assert_explains("silu", values={"x": [-800.0, 800.0], "dy": [1.0, 1.0]})


def test_a_perturbed_derivative_fails_the_check(monkeypatch):
    # phi(x) doubled: the forward still agrees, the printed dL/dx does not
    real = activation_example._normal_pdf
    monkeypatch.setattr(activation_example, "_normal_pdf", lambda x: 2.0 * real(x))
    ex = retrograd.explain("gelu")
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dx"]
    assert "CHECK FAILED for dL/dx" in str(ex)


def test_the_wrong_kink_convention_fails_the_check(monkeypatch):
    # ReLU'(0) = 1 is a valid one-sided derivative, but not retrograd's: autograd disagrees
    monkeypatch.setattr(activation_example, "_relu_derivative",
                        lambda x: (x >= 0).astype(np.float64))
    ex = retrograd.explain("relu", values={"x": [-1, 0, 2], "dy": [1, 1, 1]})
    assert not ex.ok and [c.name for c in ex.checks if not c.ok] == ["dL/dx"]


def test_command_line_options(capsys):
    assert main(["explain", "leaky_relu", "--negative-slope", "0.5", "--values",
                 "x=[-2,4]"]) == 0
    assert "LeakyReLU'(x) = 1 where x > 0, else a = 0.5" in capsys.readouterr().out
    assert main(["explain", "swish"]) == 0


def test_activation_bad_input():
    with pytest.raises(ValueError, match=r"explain gelu: approximate must be one of none, "
                                         r"tanh, got 'erf'"):
        retrograd.explain("gelu", approximate="erf")
    with pytest.raises(ValueError, match=r"explain leaky_relu: negative_slope must be a "
                                         r"number, got 'a'"):
        retrograd.explain("leaky_relu", negative_slope="a")
    with pytest.raises(ValueError, match=r"explain relu: --shape gives x 5 dimensions"):
        retrograd.explain("relu", shape=(1, 1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"explain sigmoid: unknown option approximate"):
        retrograd.explain("sigmoid", approximate="tanh")
    with pytest.raises(ValueError, match=r"explain silu: values given for w, which it does "
                                         r"not take; its inputs: x, dL/dy"):
        retrograd.explain("silu", values={"W": [1, 2]})
    with pytest.raises(ValueError, match=r"explain tanh: values gives dL/dy the shape 3, but "
                                         r"the output it is the gradient of has the shape 2"):
        retrograd.explain("tanh", values={"x": [1, 2], "dy": [1, 2, 3]})
