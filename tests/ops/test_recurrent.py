"""The recurrent step ops (retrograd/ops/recurrent.py) and the cell functions F.rnn_cell,
F.lstm_cell, F.gru_cell: against PyTorch's cells (outputs and the gradients of the input,
the initial states and every weight), against finite differences (through the engine and
each op's backward alone), double backward (RNN) or its clear refusal (LSTM, GRU), the
Unbind op, float32, and the argument errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.ops.recurrent import GRUStep, LSTMStep, RNNStep, Unbind
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def _weights(kind, input_size, hidden, seed, bias=True):
    g = GATES[kind] * hidden
    w = [randn(g, input_size, seed=seed) * 0.5, randn(g, hidden, seed=seed + 1) * 0.5]
    if bias:
        w += [randn(g, seed=seed + 2) * 0.5, randn(g, seed=seed + 3) * 0.5]
    return w


def _rg_cell(kind):
    if kind == "lstm":
        return lambda x, h, c, *w: F.lstm_cell(x, (h, c), *w)
    nonlinearity = {"rnn_tanh": "tanh", "rnn_relu": "relu"}.get(kind)
    if nonlinearity:
        return lambda x, h, *w: F.rnn_cell(x, h, *w, nonlinearity=nonlinearity)
    return lambda x, h, *w: F.gru_cell(x, h, *w)


def _torch_cell(kind):
    if kind == "lstm":
        return lambda x, h, c, *w: torch.lstm_cell(x, (h, c), *_with_biases(w))
    fn = {"rnn_tanh": torch.rnn_tanh_cell, "rnn_relu": torch.rnn_relu_cell,
          "gru": torch.gru_cell}[kind]
    return lambda x, h, *w: fn(x, h, *_with_biases(w))


def _with_biases(w):
    return list(w) + [None] * (4 - len(w))


def _states(kind, shape, seed):
    states = [randn(*shape, seed=seed)]
    if kind == "lstm":
        states.append(randn(*shape, seed=seed + 1))
    return states


# (batch, input_size, hidden): a batch of 1, hidden 1, input 1, a wider layer
SIZES = [(3, 4, 5), (1, 3, 2), (2, 1, 1), (4, 6, 3)]


@pytest.mark.parametrize("kind", list(GATES))
@pytest.mark.parametrize("batch, input_size, hidden", SIZES)
def test_cell_matches_torch(kind, batch, input_size, hidden):
    x = randn(batch, input_size, seed=1)
    if kind == "rnn_relu":  # keep pre-activations away from the kink
        x = x + 0.05
    inputs = [x] + _states(kind, (batch, hidden), seed=2) + _weights(kind, input_size, hidden, 4)
    check_op(_rg_cell(kind), _torch_cell(kind), *inputs)


@pytest.mark.parametrize("kind", list(GATES))
def test_cell_without_bias_matches_torch(kind):
    inputs = [randn(3, 4, seed=10)] + _states(kind, (3, 2), seed=11) + \
        _weights(kind, 4, 2, seed=13, bias=False)
    check_op(_rg_cell(kind), _torch_cell(kind), *inputs)


@pytest.mark.parametrize("kind", list(GATES))
def test_cell_unbatched_matches_torch(kind):
    """(I,) input and (H,) states; torch's raw cell functions need a batch axis, added here."""
    inputs = [randn(4, seed=20)] + _states(kind, (3,), seed=21) + _weights(kind, 4, 3, seed=23)
    n_data = 3 if kind == "lstm" else 2

    def torch_fn(*args):
        data = [a.unsqueeze(0) for a in args[:n_data]]
        out = _torch_cell(kind)(*data, *args[n_data:])
        return tuple(o.squeeze(0) for o in out) if kind == "lstm" else out.squeeze(0)

    check_op(_rg_cell(kind), torch_fn, *inputs)


@pytest.mark.parametrize("kind", list(GATES))
def test_cell_with_default_state_matches_torch(kind):
    """hx=None: a zero state. W_hh still gets its (zero) gradient, as in PyTorch."""
    x = randn(3, 4, seed=30)
    w = _weights(kind, 4, 2, seed=31)
    zeros = torch.zeros(3, 2, dtype=torch.float64)

    def rg_fn(x, *w):
        return _rg_cell(kind)(x, None, *w) if kind != "lstm" else F.lstm_cell(x, None, *w)

    def torch_fn(x, *w):
        if kind == "lstm":
            return torch.lstm_cell(x, (zeros, zeros), *w)
        return _torch_cell(kind)(x, zeros, *w)

    check_op(rg_fn, torch_fn, x, *w)


@pytest.mark.parametrize("kind", list(GATES))
def test_cell_float32_matches_torch(kind):
    inputs = [randn(8, 16, seed=40)] + _states(kind, (8, 32), seed=41) + \
        _weights(kind, 16, 32, seed=43)
    out = check_op(_rg_cell(kind), _torch_cell(kind), *inputs, dtype=np.float32)
    assert all(o.dtype == rg.float32 for o in out)


@pytest.mark.parametrize("kind", list(GATES))
@pytest.mark.parametrize("no_grad", [(0,), (1,), (0, 1), (2, 3), (4, 5)])
def test_cell_with_some_inputs_not_requiring_grad(kind, no_grad):
    inputs = [randn(2, 3, seed=50)] + _states(kind, (2, 4), seed=51) + _weights(kind, 3, 4, 53)
    if kind == "lstm":  # shift the weight positions past c
        no_grad = tuple(i + 1 if i >= 2 else i for i in no_grad)
    check_op(_rg_cell(kind), _torch_cell(kind), *inputs, no_grad=no_grad)


def test_relu_cell_at_the_kink_matches_torch():
    """A pre-activation exactly 0: relu's gradient there is 0, as PyTorch."""
    x = np.array([[1.0, -1.0]])
    w_ih, w_hh = np.array([[1.0, 1.0], [1.0, 0.0]]), np.zeros((2, 2))
    check_op(lambda x, w_ih, w_hh: F.rnn_cell(x, None, w_ih, w_hh, nonlinearity="relu"),
             lambda x, w_ih, w_hh: torch.rnn_relu_cell(x, torch.zeros(1, 2, dtype=x.dtype),
                                                        w_ih, w_hh),
             x, w_ih, w_hh, gradcheck=False)


def test_saturated_gates_stay_finite():
    """Huge pre-activations: the sigmoid never overflows, and matches torch."""
    x = np.array([[800.0, -800.0, 30.0]])
    w = _weights("lstm", 3, 2, seed=60)
    rg_out = F.lstm_cell(rg.tensor(x), None, *(rg.tensor(a) for a in w))
    torch_out = torch.lstm_cell(torch.tensor(x), (torch.zeros(1, 2, dtype=torch.float64),) * 2,
                                *(torch.tensor(a) for a in w))
    for a, b in zip(rg_out, torch_out):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-300)


# ---------------------------------------------------------------- the step ops alone
def _step_inputs(kind, batch, hidden, seed, with_state=True, bias=True):
    g = GATES[kind] * hidden
    gx = randn(batch, g, seed=seed)
    if kind == "rnn_relu":
        gx = gx + 0.05
    h = randn(batch, hidden, seed=seed + 1) if with_state else None
    w = randn(g, hidden, seed=seed + 2) * 0.5
    b = randn(g, seed=seed + 3) * 0.5 if bias else None
    if kind == "lstm":
        c = randn(batch, hidden, seed=seed + 4) if with_state else None
        return [gx, h, c, w, b]
    return [gx, h, w, b]


STEP_OPS = {"rnn_tanh": (RNNStep, {"nonlinearity": "tanh"}),
            "rnn_relu": (RNNStep, {"nonlinearity": "relu"}),
            "lstm": (LSTMStep, {}), "gru": (GRUStep, {})}


@pytest.mark.parametrize("kind", list(STEP_OPS))
@pytest.mark.parametrize("with_state, bias", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("batch, hidden", [(3, 4), (1, 1)])
def test_step_backward_alone(kind, with_state, bias, batch, hidden):
    op, attrs = STEP_OPS[kind]
    check_backward_alone(op, _step_inputs(kind, batch, hidden, 70, with_state, bias), attrs)


@pytest.mark.parametrize("kind", list(STEP_OPS))
def test_step_ops_skip_unneeded_gradients(kind):
    op, attrs = STEP_OPS[kind]
    arrays = _step_inputs(kind, 2, 3, 80)
    ctx = op.__new__(op)
    ctx.needs_input_grad = (False,) * (len(arrays) - 2) + (True, False)  # only W_hh
    out = op.forward(ctx, *arrays, **attrs)
    outs = out if isinstance(out, tuple) else (out,)
    grads = op.backward(ctx, *(np.ones_like(o) for o in outs))
    assert [g is not None for g in grads] == list(ctx.needs_input_grad)


def test_rnn_step_double_backward():
    """RNNStep's backward is written with Tensor operations: second derivatives work."""
    for nonlinearity in ("tanh", "relu"):
        gx, h, w, b = (rg.tensor(a, requires_grad=True)
                       for a in _step_inputs(f"rnn_{nonlinearity}", 2, 3, 90))
        assert rg.autograd.gradgradcheck(
            lambda gx, h, w, b, act=nonlinearity: RNNStep.apply(gx, h, w, b, nonlinearity=act),
            (gx, h, w, b), **GRADCHECK_TOLERANCES)


def test_rnn_cell_gradgradcheck_through_the_functional():
    x, h, *w = (rg.tensor(a, requires_grad=True) for a in
                [randn(2, 3, seed=95), randn(2, 2, seed=96)] + _weights("rnn_tanh", 3, 2, 97))
    assert rg.autograd.gradgradcheck(lambda x, h, *w: F.rnn_cell(x, h, *w), (x, h, *w),
                                     **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_cells_refuse_double_backward(kind):
    inputs = [rg.tensor(a, requires_grad=True) for a in
              [randn(2, 3, seed=100)] + _states(kind, (2, 2), seed=101) + _weights(kind, 3, 2, 103)]
    out = _rg_cell(kind)(*inputs)
    out = out[0] if isinstance(out, tuple) else out
    (grad_x,) = rg.autograd.grad(out.sum(), inputs[0], create_graph=True)
    with pytest.raises(RuntimeError, match=f"{'LSTMStep' if kind == 'lstm' else 'GRUStep'}"):
        rg.autograd.grad(grad_x.sum(), inputs[-1])


# ---------------------------------------------------------------- Unbind
@pytest.mark.parametrize("shape, axis", [((4, 2, 3), 0), ((2, 4, 3), 1), ((1, 3), 0),
                                         ((2, 3, 5), -1)])
def test_unbind_matches_torch(shape, axis):
    check_op(lambda x: Unbind.apply(x, axis=axis), lambda x: torch.unbind(x, axis),
             randn(*shape, seed=110))


def test_unbind_fills_missing_gradients_with_zeros_and_supports_double_backward():
    x = rg.tensor(randn(3, 2, seed=111), requires_grad=True)
    steps = Unbind.apply(x, axis=0)
    (steps[1] * steps[1]).sum().backward(create_graph=True)
    np.testing.assert_allclose(x.grad.detach().numpy(), [[0, 0], 2 * x.detach().numpy()[1], [0, 0]])
    assert rg.autograd.gradgradcheck(lambda x: Unbind.apply(x, axis=1)[0] ** 3, (x,),
                                     **GRADCHECK_TOLERANCES)


def test_unbind_backward_alone():
    check_backward_alone(Unbind, [randn(3, 4, 2, seed=112)], {"axis": 1})


# ---------------------------------------------------------------- errors
def test_cell_errors_name_the_function_and_the_shapes():
    w_ih, w_hh = rg.randn(16, 5), rg.randn(16, 4)
    with pytest.raises(ValueError, match=r"lstm_cell: expected input of shape \(batch, 5\) or "
                                         r"\(5,\), got \(3, 6\)"):
        F.lstm_cell(rg.randn(3, 6), None, w_ih, w_hh)
    with pytest.raises(ValueError, match=r"lstm_cell: expected c_0 of shape \(3, 4\) .* got "
                                         r"\(3, 5\)"):
        F.lstm_cell(rg.randn(3, 5), (rg.zeros(3, 4), rg.zeros(3, 5)), w_ih, w_hh)
    with pytest.raises(TypeError, match=r"lstm_cell: hx must be a pair"):
        F.lstm_cell(rg.randn(3, 5), rg.zeros(3, 4), w_ih, w_hh)
    with pytest.raises(ValueError, match=r"gru_cell: expected weight_hh of shape \(12, 4\) "
                                         r"\(3 gate block\(s\) of hidden size 4\), got \(16, 4\)"):
        F.gru_cell(rg.randn(3, 5), None, rg.randn(12, 5), w_hh)
    with pytest.raises(ValueError, match=r"rnn_cell: expected bias_hh of shape \(4,\), got \(5,\)"):
        F.rnn_cell(rg.randn(3, 5), None, rg.randn(4, 5), rg.randn(4, 4), rg.zeros(4), rg.zeros(5))
    with pytest.raises(ValueError, match=r"rnn_cell: nonlinearity must be 'tanh' or 'relu'"):
        F.rnn_cell(rg.randn(3, 5), None, rg.randn(4, 5), rg.randn(4, 4), nonlinearity="gelu")
    with pytest.raises(TypeError, match=r"rnn_cell: input dtype .*float64 does not match the "
                                        r"weights' dtype .*float32"):
        F.rnn_cell(rg.randn(3, 5, dtype=rg.float64), None, rg.randn(4, 5), rg.randn(4, 4))
