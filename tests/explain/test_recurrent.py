"""retrograd/explain/recurrent.py: the RNN, LSTM and GRU through time, checked against
retrograd's own nn.RNN / nn.LSTM / nn.GRU; seed 002's one-step LSTM example with its
misprinted dC_t corrected; the per-step factors of backpropagation through time."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.recurrent as recurrent_example
from retrograd.cli import main
from tests.explain._check import assert_explains, grad


def shown(ex, name):
    """The value of the step printed as ``name`` (a forward or backward quantity)."""
    (step,) = [s for s in ex.steps if s.name == name]
    return step.value


def column(*values):
    return [[v] for v in values]


# seed 002, "Recorrente (LSTM)": one step, hidden size 1, x_t = 0.5, h_(t-1) = 0.1,
# C_(t-1) = 0.2, W_f = [[0.5, 0.5]], W_i = [[0.4, 0.4]], W_C = [[0.3, 0.3]], W_o = [[0.2, 0.2]]
# on the concatenation [h_(t-1), x_t], biases 0, dh_t = 0.1 and dC_t = 0.05 from the next step.
# In PyTorch's layout the x column of each W is weight_ih and the h column weight_hh, with the
# gate blocks in the order i, f, g, o.
SEED_002_LSTM = {"x": 0.5, "h0": 0.1, "c0": 0.2,
                 "W_ih": column(0.4, 0.5, 0.3, 0.2), "W_hh": column(0.4, 0.5, 0.3, 0.2),
                 "b_ih": [0, 0, 0, 0], "b_hh": [0, 0, 0, 0],
                 "dL/doutput": 0.1, "dL/dh_n": 0, "dL/dc_n": 0.05}


def test_seed_002_lstm_step_with_the_corrected_dC_t():
    ex = assert_explains("lstm", values=SEED_002_LSTM)
    # forward: f = sigma(0.3), i = sigma(0.24), C~ = tanh(0.18) = 0.17808 (the seed prints
    # 0.1785), o = sigma(0.12), C_t = 0.21456, h_t = 0.11200
    forward = {"i_1": 0.559714, "f_1": 0.574443, "g_1": 0.178081, "o_1": 0.529964,
               "c_1": 0.214563, "h_1": 0.111997}
    for name, value in forward.items():
        assert shown(ex, name) == pytest.approx([value], abs=1e-6), name
    # backward: the path through h_t adds dh_t * o_t * (1 - tanh^2 C_t) = 0.05063, so
    # dC_t = 0.05 + 0.05063 = 0.10063; the seed's text says 0.1028 + 0.05 = 0.1528
    assert shown(ex, "dL/dc_1 via h_1") == pytest.approx([0.0506296], abs=1e-7)
    assert shown(ex, "dL/dc_1") == pytest.approx([0.1006296], abs=1e-7)
    text = str(ex)
    assert "dL/dc_1 = dL/dc_n + dL/dc_1 via h_1 = [0.10063]" in text
    assert "0.1528" not in text and "0.1028" not in text
    # the seed's printed parameter gradients (columns h, x) are right; re-ordered into
    # PyTorch's layout (rows i, f, g, o):
    assert grad(ex, "W_hh")[:, 0] == pytest.approx(
        [0.00044162, 0.00049199, 0.00545376, 0.00052643], abs=1e-8)
    assert grad(ex, "W_ih")[:, 0] == pytest.approx(
        [0.00220808, 0.00245997, 0.02726878, 0.00263213], abs=1e-8)
    for bias in ("b_ih", "b_hh"):
        assert grad(ex, bias) == pytest.approx(
            [0.00441615, 0.00491995, 0.05453756, 0.00526427], abs=1e-8)
    # dx_t: the seed's "about 0.0216" (its code prints 0.02164056) is right, and equals dh_prev
    # here because each gate's x and h weights are equal; dC_prev = dC_t * f_t = 0.057806
    assert grad(ex, "x").item() == pytest.approx(0.0216406, abs=1e-7)
    assert grad(ex, "h0").item() == pytest.approx(0.0216406, abs=1e-7)
    assert grad(ex, "c0").item() == pytest.approx(0.0578059, abs=1e-7)


@pytest.mark.parametrize("op", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("steps, hidden, input_size", [(1, 1, 1), (2, 2, 1), (3, 1, 2),
                                                       (4, 2, 2)])
def test_steps_and_sizes(op, steps, hidden, input_size):
    ex = assert_explains(op, steps=steps, hidden=hidden, input_size=input_size, seed=5)
    assert ex.inputs["x"].value.shape == (steps, input_size)
    assert grad(ex, "W_hh").shape[1] == hidden
    # one backward section per step, from the last to the first
    backward = [s.name for s in ex.steps if s.kind == "section" and s.name.startswith(
        "Backward, step")]
    assert backward == [f"Backward, step {t}" for t in range(steps, 0, -1)]


@pytest.mark.parametrize("op", ["rnn", "lstm", "gru"])
def test_given_sequence_sets_the_steps(op):
    ex = assert_explains(op, values={"x": [[0.1], [-0.2]]}, hidden=2, seed=3)
    assert "Backward, step 2" in str(ex) and "Backward, step 3" not in str(ex)


def test_rnn_product_of_factors_carries_dh_n_to_h0():
    # with no upstream on the output sequence, dL/dh_0 is exactly P dL/dh_n,
    # P = W_hh^T diag(1 - h_1^2) ... W_hh^T diag(1 - h_T^2)
    ex = assert_explains("rnn", steps=4, seed=2,
                         values={"dL/doutput": np.zeros((4, 2)), "dL/dh_n": [1, -0.5]})
    product = shown(ex, "P")
    assert grad(ex, "h0")[0] == pytest.approx(product @ np.array([1, -0.5]), abs=1e-12)
    assert "vanishing gradients" in str(ex) and "||P|| = " in str(ex)


def test_lstm_cell_highway_is_the_product_of_forget_gates():
    # W_hh = 0 and no upstream on h: dL/dc_n reaches c_0 only along c_t -> c_(t-1),
    # multiplied by f_3 f_2 f_1
    ex = assert_explains("lstm", steps=3, seed=4,
                         values={"W_hh": np.zeros((4, 1)), "dL/doutput": np.zeros((3, 1)),
                                 "dL/dh_n": 0, "dL/dc_n": 1})
    forget = shown(ex, "prod_t f_t")
    assert forget == pytest.approx(shown(ex, "f_1") * shown(ex, "f_2") * shown(ex, "f_3"))
    assert grad(ex, "c0")[0] == pytest.approx(forget, abs=1e-12)


def test_gru_direct_path_is_the_product_of_update_gates():
    ex = assert_explains("gru", steps=3, seed=4,
                         values={"W_hh": np.zeros((3, 1)), "dL/doutput": np.zeros((3, 1)),
                                 "dL/dh_n": 1})
    assert grad(ex, "h0")[0] == pytest.approx(shown(ex, "prod_t z_t"), abs=1e-12)


def test_gru_biases_differ_by_the_reset_gate():
    # r multiplies W_hn h + b_hn, so dL/db_hh's n block is dL/db_ih's scaled by r each step
    ex = assert_explains("gru", steps=1, hidden=2, seed=6)
    r = shown(ex, "r_1")
    assert grad(ex, "b_hh")[:4] == pytest.approx(grad(ex, "b_ih")[:4])
    assert grad(ex, "b_hh")[4:] == pytest.approx(grad(ex, "b_ih")[4:] * r)


def test_a_perturbed_carried_cell_gradient_fails_the_check(monkeypatch):
    """Mutation test: dL/dc_(t-1) = dL/dc_t * f_t off by 10% makes dL/dc0 (and what depends
    on the earlier steps) disagree with autograd; the outputs still agree."""
    real = recurrent_example._carried_cell_gradient
    monkeypatch.setattr(recurrent_example, "_carried_cell_gradient",
                        lambda dc, f: real(dc, f) * 1.1)
    ex = retrograd.explain("lstm")
    assert not ex.ok
    failed = [c for c in ex.checks if not c.ok]
    assert "dL/dc0" in [c.name for c in failed]
    assert all(c.against == "autograd" and not c.fd_ok for c in failed)
    assert "CHECK FAILED for" in str(ex) and "dL/dc0" in str(ex)


def test_the_reference_is_retrogrades_layer_and_leaves_the_random_stream_alone():
    retrograd.manual_seed(11)
    expected = retrograd.rand(3).numpy()
    retrograd.manual_seed(11)
    ex = retrograd.explain("gru", values={"weight_ih_l0": column(0.1, 0.2, 0.3)})
    assert np.array_equal(retrograd.rand(3).numpy(), expected)
    assert ex.ok and "retrograd.nn.GRU(1, 1)" in str(ex)
    assert ex.inputs["W_ih"].value[:, 0].tolist() == [0.1, 0.2, 0.3]


def test_command_line():
    assert main(["explain", "lstm", "--steps", "2", "--hidden", "2", "--seed", "1"]) == 0


def test_bad_input_names_the_option_or_dimension():
    with pytest.raises(ValueError, match=r"explain rnn: steps must be >= 1, got 0"):
        retrograd.explain("rnn", steps=0)
    with pytest.raises(ValueError, match=r"explain gru: hidden must be >= 1, got -1"):
        retrograd.explain("gru", hidden=-1)
    with pytest.raises(ValueError, match=r"explain lstm: W_hh's dimension 0 \(shape 8x1\) is 8, "
                                         r"expected 4: the 4 gate blocks \(i, f, g, o\) of "
                                         r"hidden size 1 \(option hidden\)"):
        retrograd.explain("lstm", values={"W_hh": np.zeros((8, 1))})
    with pytest.raises(ValueError, match=r"explain gru: W_ih's dimension 1 \(shape 3x1\) is 1, "
                                         r"expected 2: x's 2 input features \(dimension 1 of x, "
                                         r"shape 3x2\)"):
        retrograd.explain("gru", input_size=2, values={"W_ih": np.zeros((3, 1))})
    with pytest.raises(ValueError, match=r"explain rnn: h0's dimension 1 \(shape 1x3\) is 3, "
                                         r"expected 2: hidden size 2"):
        retrograd.explain("rnn", values={"h0": [0.1, 0.2, 0.3]})
    with pytest.raises(ValueError, match=r"explain rnn: b_hh's dimension 0 \(shape 3\) is 3, "
                                         r"expected 2: the single block of hidden size 2"):
        retrograd.explain("rnn", values={"b_hh": [0.1, 0.2, 0.3]})
    with pytest.raises(ValueError, match=r"explain rnn: --shape gives x 3 dimensions"):
        retrograd.explain("rnn", shape=(2, 3, 1))
    with pytest.raises(ValueError, match=r"explain rnn: values given for dl/dc_n"):
        retrograd.explain("rnn", values={"dL/dc_n": [[1, 1]]})
