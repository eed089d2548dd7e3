"""Worked examples of the recurrent layers through time (retrograd/ops/recurrent.py, run by
nn.RNN, nn.LSTM and nn.GRU with one layer): the forward pass one step at a time, then
backpropagation through time from the last step to the first, with each step's share of the
parameter gradients, and what the product of per-step factors does to a distant gradient.

Conventions are PyTorch's (and retrograd's): weight_ih (G H, I), weight_hh (G H, H), bias_ih
and bias_hh (G H,), gate blocks stacked along dimension 0 (LSTM i, f, g, o; GRU r, z, n), the
sequence unbatched, x (T, I), the initial state h0 (1, H) (one layer, one direction), and the
outputs (output (T, H), h_n (1, H)), plus c_n (1, H) for the LSTM. Time steps are numbered
t = 1..T; h_0 (and c_0) is the initial state.
"""

import dataclasses

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []

_PARAMETERS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
# the gradients of step t's input and hidden pre-activations, by name
_STEP_NAMES = {"rnn": lambda t: (f"dL/da_{t}",) * 2, "lstm": lambda t: (f"dL/da_{t}",) * 2,
               "gru": lambda t: (f"dL/dgx_{t}", f"dL/dgh_{t}")}
_GATE_NAMES = {"rnn": "the single block", "lstm": "the 4 gate blocks (i, f, g, o)",
               "gru": "the 3 gate blocks (r, z, n)"}
_GATE_ORDER = {"lstm": "i, f, g, o", "gru": "r, z, n"}


@dataclasses.dataclass
class _Sequence:
    """The example's inputs, as the arithmetic uses them: x (T, I), h0 and c0 as (H,)
    vectors (c0 None except for the LSTM), the weights in PyTorch's layout."""
    x: np.ndarray
    h0: np.ndarray
    c0: object
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @property
    def steps(self):
        return self.x.shape[0]

    @property
    def hidden(self):
        return self.h0.shape[0]


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _blocks(v, hidden):
    """The gate blocks of a (G H,) vector: [v[0:H], v[H:2H], ...]."""
    return [v[k:k + hidden] for k in range(0, v.shape[0], hidden)]


def _show_blocks(ex, name, value, formula):
    """Show a (G H,) vector of gate blocks: as a (G, H) matrix, one row per gate, when H > 1
    (a long vector would wrap), else as it is. Returns the vector."""
    gates = len(_GATE_ORDER[ex.op].split(", "))
    hidden = value.shape[0] // gates
    if hidden > 1:
        ex.show(name, value.reshape(gates, hidden), f"{formula}  (rows {_GATE_ORDER[ex.op]})")
    else:
        ex.show(name, value, f"{formula}  (blocks {_GATE_ORDER[ex.op]})")
    return value


def _over_steps(symbol, steps, joint):
    """'h_1, ..., h_3' (joint ', ') or 'f_1 * ... * f_3' (joint ' * '); 'h_1' for one step,
    'h_1, h_2' for two."""
    if steps <= 2:
        return joint.join(f"{symbol}_{t}" for t in range(1, steps + 1))
    return f"{symbol}_1{joint}...{joint}{symbol}_{steps}"


def _shape(shape):
    return "x".join(str(n) for n in shape) if shape else "scalar"


# -- inputs ---------------------------------------------------------------------------------
def _options(hidden, input_size):
    return (Option("steps", int, 3, "time steps T (when x is not given)"),
            Option("hidden", int, hidden, "hidden size H"),
            Option("input_size", int, input_size, "input features I (when x is not given)"))


def _check_options(op, steps, hidden, input_size):
    for name, value in (("steps", steps), ("hidden", hidden), ("input_size", input_size)):
        if value < 1:
            raise ExplainError(f"explain {op}: {name} must be >= 1, got {value}")


def _check_shape(op, name, value, expected, meanings):
    """Each dimension of ``value`` against ``expected``; ``meanings`` says what each one is."""
    for dim, (got, want, meaning) in enumerate(zip(value.shape, expected, meanings)):
        if got != want:
            raise ExplainError(f"explain {op}: {name}'s dimension {dim} (shape "
                               f"{_shape(value.shape)}) is {got}, expected {want}: {meaning}")


def _sequence_inputs(ex, gates, steps, hidden, input_size, cell=False):
    """x, h0 (and c0), W_ih, W_hh, b_ih, b_hh: given, or small floats (2 decimals) that keep
    tanh and the sigmoid away from saturation; each given shape checked against H and I."""
    x = ex.input("x", (steps, input_size), primary=True, integer=False, low=-1, high=1,
                 doc="the sequence (T, I), row t is x_t")
    size = f"hidden size {hidden} (option hidden)"
    states = [_state_input(ex, name, hidden, size) for name in ("h0", "c0")[:1 + cell]]
    weights = _weight_inputs(ex, gates, hidden, x, size)
    return _Sequence(x, states[0], states[1] if cell else None, *weights)


def _state_input(ex, name, hidden, size):
    """h0 or c0 (1, H): one layer, one direction, unbatched; returned as an (H,) vector."""
    what = "cell" if name == "c0" else "hidden"
    value = ex.input(name, (1, hidden), integer=False, low=-1, high=1,
                     aliases=(name[0] + "_0",), doc=f"initial {what} state (1, H)")
    _check_shape(ex.op, name, value, (1, hidden), ("one layer, one direction", size))
    return value[0]


def _weight_inputs(ex, gates, hidden, x, size):
    """W_ih (G H, I), W_hh (G H, H), b_ih, b_hh (G H,), in PyTorch's layout."""
    rows = (gates * hidden, f"{_GATE_NAMES[ex.op]} of {size}")
    label = f"{gates}H" if gates > 1 else "H"
    n_in = x.shape[1]
    columns = {"W_ih": (n_in, f"x's {n_in} input features (dimension 1 of x, shape "
                              f"{_shape(x.shape)})", "I"),
               "W_hh": (hidden, size, "H")}
    weights = []
    for name, (count, meaning, symbol) in columns.items():
        weights.append(ex.input(name, (rows[0], count), integer=False, low=-0.5, high=0.5,
                                aliases=("weight" + name[1:], "weight" + name[1:] + "_l0"),
                                doc=f"weight{name[1:]} ({label}, {symbol})"))
        _check_shape(ex.op, name, weights[-1], (rows[0], count), (rows[1], meaning))
    for name in ("b_ih", "b_hh"):
        weights.append(ex.input(name, (rows[0],), integer=False, low=-0.5, high=0.5,
                                aliases=("bias" + name[1:], "bias" + name[1:] + "_l0"),
                                doc=f"bias{name[1:]} ({label},)"))
        _check_shape(ex.op, name, weights[-1], (rows[0],), (rows[1],))
    return weights


# -- the reference: retrograd's own layer ---------------------------------------------------
def _reference(ex, layer_class, seq, cell=False):
    """Run ``layer_class`` (nn.RNN, nn.LSTM, nn.GRU; one layer) with the example's weights as
    its weight_ih_l0, weight_hh_l0, bias_ih_l0 and bias_hh_l0 on x (T, I) from h0 (and c0).
    Returns the shapes of (output, h_n) or (output, h_n, c_n)."""
    import retrograd

    with retrograd.random.fork_rng():  # its own initial weights are replaced: keep the stream
        layer = layer_class(seq.x.shape[1], seq.hidden, dtype=retrograd.float64)
    for name in _PARAMETERS:
        delattr(layer, name)  # the example's tensors take the parameters' place

    def run(x, *rest):
        states, weights = rest[:-4], rest[-4:]
        for name, weight in zip(_PARAMETERS, weights):
            setattr(layer, name, weight)
        if cell:
            output, (h_n, c_n) = layer(x, tuple(states))
            return output, h_n, c_n
        return layer(x, states[0])

    states = ("h0", "c0") if cell else ("h0",)
    shapes = ex.reference(run, "x", *states, "W_ih", "W_hh", "b_ih", "b_hh")
    ex.say(f"Reference: retrograd.nn.{layer_class.__name__}({seq.x.shape[1]}, {seq.hidden}) "
           f"with W_ih, W_hh, b_ih, b_hh as its weight_ih_l0, weight_hh_l0, bias_ih_l0, "
           f"bias_hh_l0, run on the unbatched sequence x ({seq.steps}x{seq.x.shape[1]}).")
    return shapes


def _sequence_outputs(ex, hs, cs=None):
    """output (T, H) = the rows h_1..h_T; h_n = h_T (1, H); c_n = c_T (1, H)."""
    steps = len(hs) - 1
    ex.output("output", np.stack(hs[1:]), "rows " + _over_steps("h", steps, ", "))
    ex.output("h_n", hs[-1][None], f"h_{steps}")
    if cs is not None:
        ex.output("c_n", cs[-1][None], f"c_{steps}")


def _upstreams(ex, shapes):
    """dL/doutput (T, H), dL/dh_n and (LSTM) dL/dc_n as (H,) vectors."""
    g_out = ex.upstream(shapes[0], "dL/doutput", aliases=("dY", "doutput", "dL/dy"))
    g_hn = ex.upstream(shapes[1], "dL/dh_n", aliases=("dh_n", "dL/dh"))[0]
    if len(shapes) < 3:
        return g_out, g_hn, None
    return g_out, g_hn, ex.upstream(shapes[2], "dL/dc_n", aliases=("dc_n", "dL/dc"))[0]


# -- backward helpers shared by the three cells ---------------------------------------------
@dataclasses.dataclass
class _Shares:
    """The per-step shares of the gradients, summed as the steps are walked back."""
    x: np.ndarray
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @classmethod
    def zeros(cls, seq):
        return cls(np.zeros_like(seq.x), np.zeros_like(seq.w_ih), np.zeros_like(seq.w_hh),
                   np.zeros_like(seq.b_ih), np.zeros_like(seq.b_hh))


def _hidden_gradient(ex, t, steps, g_out, g_hn, carried):
    """dL/dh_t: the output's upstream at step t, plus dL/dh_n at the last step, plus the
    gradient carried back from step t + 1."""
    if t == steps:
        return ex.show(f"dL/dh_{t}", g_out[t - 1] + g_hn, f"dL/doutput_{t} + dL/dh_n")
    return ex.show(f"dL/dh_{t}", g_out[t - 1] + carried,
                   f"dL/doutput_{t} + dL/dh_{t} carried from step {t + 1}")


def _step_shares(ex, t, seq, h_prev, grads, shares):
    """Step t's shares, from grads = (d_ih, d_hh), the gradients of the step's input and
    hidden pre-activations: dL/dW_ih += d_ih x_t^T, dL/dW_hh += d_hh h_(t-1)^T, the biases +=
    d_ih and d_hh, and dL/dx_t = W_ih^T d_ih. Returns dL/dx_t."""
    (d_ih, d_hh), (d_ih_name, d_hh_name) = grads, _STEP_NAMES[ex.op](t)
    shares.w_ih += ex.show(f"dL/dW_ih (step {t})", np.outer(d_ih, seq.x[t - 1]),
                           f"{d_ih_name} x_{t}^T")
    shares.w_hh += ex.show(f"dL/dW_hh (step {t})", np.outer(d_hh, h_prev),
                           f"{d_hh_name} h_{t - 1}^T")
    shares.b_ih += d_ih
    shares.b_hh += d_hh
    shares.x[t - 1] = ex.show(f"dL/dx_{t}", seq.w_ih.T @ d_ih, f"W_ih^T {d_ih_name}")
    return shares.x[t - 1]


def _summed_gradients(ex, shares, dh0, dc0, d_ih_name, d_hh_name):
    ex.section("Gradients, summed over the steps")
    ex.gradient("x", shares.x, f"row t: dL/dx_t = W_ih^T {d_ih_name}")
    ex.gradient("h0", dh0[None], "dL/dh_0, carried out of step 1")
    if dc0 is not None:
        ex.gradient("c0", dc0[None], "dL/dc_0, carried out of step 1")
    ex.gradient("W_ih", shares.w_ih, f"sum over t of {d_ih_name} x_t^T")
    ex.gradient("W_hh", shares.w_hh, f"sum over t of {d_hh_name} h_(t-1)^T")
    ex.gradient("b_ih", shares.b_ih, f"sum over t of {d_ih_name}")
    ex.gradient("b_hh", shares.b_hh, f"sum over t of {d_hh_name}")


def _shares_sentence(ex, d_ih_name, d_hh_name):
    shares = (f"{d_ih_name} is the step's share of both dL/db_ih and dL/db_hh"
              if d_ih_name == d_hh_name else
              f"{d_ih_name} is the step's share of dL/db_ih and {d_hh_name} its share of "
              f"dL/db_hh")
    ex.say(f"At each step t, {shares}; their outer products with x_t and h_(t-1) are its "
           f"shares of dL/dW_ih and dL/dW_hh. The same weights act at every step, so their "
           f"gradients are the sums of the shares over the steps.")


# -- rnn ------------------------------------------------------------------------------------
@explains("rnn", family="recurrent", aliases=("elman", "rnn_tanh"),
          summary="Elman RNN (tanh) through time, h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) "
                  "+ b_hh), and backpropagation through time",
          options=_options(hidden=2, input_size=2))
def rnn(ex, steps, hidden, input_size):
    from retrograd import nn

    _check_options("rnn", steps, hidden, input_size)
    seq = _sequence_inputs(ex, 1, steps, hidden, input_size)
    shapes = _reference(ex, nn.RNN, seq)
    ex.section("Forward, one step at a time")
    hs = [seq.h0]
    for t in range(1, seq.steps + 1):
        a = ex.show(f"a_{t}", seq.w_ih @ seq.x[t - 1] + seq.b_ih + seq.w_hh @ hs[-1] + seq.b_hh,
                    f"W_ih x_{t} + b_ih + W_hh h_{t - 1} + b_hh")
        hs.append(ex.show(f"h_{t}", np.tanh(a), f"tanh(a_{t})"))
    _sequence_outputs(ex, hs)
    ex.section("Backward through time, from the last step to the first")
    g_out, g_hn, _ = _upstreams(ex, shapes)
    _shares_sentence(ex, "dL/da_t", "dL/da_t")
    shares, carried = _Shares.zeros(seq), None
    for t in range(seq.steps, 0, -1):
        ex.section(f"Backward, step {t}")
        dh = _hidden_gradient(ex, t, seq.steps, g_out, g_hn, carried)
        da = ex.show(f"dL/da_{t}", dh * (1 - hs[t] ** 2), f"dL/dh_{t} * (1 - h_{t}^2)")
        _step_shares(ex, t, seq, hs[t - 1], (da, da), shares)
        carried = ex.show(f"dL/dh_{t - 1}", seq.w_hh.T @ da, f"W_hh^T dL/da_{t}")
    _summed_gradients(ex, shares, carried, None, "dL/da_t", "dL/da_t")
    _rnn_through_time(ex, seq, hs)


def _rnn_through_time(ex, seq, hs):
    """The factor that carries dL/dh_T back to h_0: W_hh^T D_1 W_hh^T D_2 ... W_hh^T D_T,
    D_t = diag(1 - h_t^2), and its norm against W_hh's."""
    steps = seq.steps
    ex.section("Through time: vanishing and exploding gradients")
    product = np.eye(seq.hidden)
    for t in range(1, steps + 1):
        product = product @ (seq.w_hh.T * (1 - hs[t] ** 2)[None, :])
    factors = "W_hh^T D_1" + (f" ... W_hh^T D_{steps}" if steps > 1 else "")
    ex.show("P", product, f"{factors}, D_t = diag(1 - h_t^2)")
    norm, w_norm = np.linalg.norm(product, 2), np.linalg.norm(seq.w_hh, 2)
    verdict = ("below 1: in every direction this gradient shrank on its way back" if norm < 1
               else "at least 1: along some direction this gradient did not shrink")
    plural = "s" if steps > 1 else ""
    ex.say(f"dL/dh_n reaches h_0 as P dL/dh_n: it has gone through {steps} factor{plural} "
           f"W_hh^T diag(1 - h_t^2), one per step. ||P|| = {norm:.4g}; each factor's norm is at "
           f"most ||W_hh|| = {w_norm:.4g}, since 1 - h^2 <= 1. When the factors stay below 1 "
           f"the gradient from a distant step shrinks geometrically (vanishing gradients), when "
           f"they exceed 1 it grows (exploding gradients); saturated units (h near +-1) push "
           f"them towards 0. Here ||P|| is {verdict}.")


# -- lstm -----------------------------------------------------------------------------------
def _carried_cell_gradient(dc, f):
    """dL/dc_(t-1) = dL/dc_t * f_t: the cell state's direct path back one step."""
    return dc * f


def _lstm_forward_step(ex, t, seq, h_prev, c_prev):
    """Gates, c_t and h_t of step t; returns (h_t, c_t, [i, f, g, o])."""
    a = _show_blocks(ex, f"a_{t}",
                     seq.w_ih @ seq.x[t - 1] + seq.b_ih + seq.w_hh @ h_prev + seq.b_hh,
                     f"W_ih x_{t} + b_ih + W_hh h_{t - 1} + b_hh")
    a_i, a_f, a_g, a_o = _blocks(a, seq.hidden)
    i = ex.show(f"i_{t}", _sigmoid(a_i), f"sigmoid(a_{t}[i])  (input gate)")
    f = ex.show(f"f_{t}", _sigmoid(a_f), f"sigmoid(a_{t}[f])  (forget gate)")
    g = ex.show(f"g_{t}", np.tanh(a_g), f"tanh(a_{t}[g])  (candidate)")
    o = ex.show(f"o_{t}", _sigmoid(a_o), f"sigmoid(a_{t}[o])  (output gate)")
    c = ex.show(f"c_{t}", f * c_prev + i * g, f"f_{t} * c_{t - 1} + i_{t} * g_{t}")
    h = ex.show(f"h_{t}", o * np.tanh(c), f"o_{t} * tanh(c_{t})")
    return h, c, (i, f, g, o)


def _lstm_cell_gradient(ex, t, steps, dh, c, o, carried_c):
    """dL/dc_t: the gradient carried into c_t (dL/dc_n at the last step) plus the path
    through h_t = o_t * tanh(c_t)."""
    via_h = ex.show(f"dL/dc_{t} via h_{t}", dh * o * (1 - np.tanh(c) ** 2),
                    f"dL/dh_{t} * o_{t} * (1 - tanh^2(c_{t}))")
    carried_name = "dL/dc_n" if t == steps else f"dL/dc_{t} carried from step {t + 1}"
    return ex.show(f"dL/dc_{t}", carried_c + via_h, f"{carried_name} + dL/dc_{t} via h_{t}")


def _lstm_backward_step(ex, t, seq, dh, dc, state, gates):
    """dL/da_t (the pre-activation gradient, blocks i, f, g, o) of step t."""
    c_prev, c = state
    i, f, g, o = gates
    d_o = ex.show(f"dL/do_{t}", dh * np.tanh(c), f"dL/dh_{t} * tanh(c_{t})")
    d_i = ex.show(f"dL/di_{t}", dc * g, f"dL/dc_{t} * g_{t}")
    d_f = ex.show(f"dL/df_{t}", dc * c_prev, f"dL/dc_{t} * c_{t - 1}")
    d_g = ex.show(f"dL/dg_{t}", dc * i, f"dL/dc_{t} * i_{t}")
    return _show_blocks(ex, f"dL/da_{t}", np.concatenate([d_i * i * (1 - i), d_f * f * (1 - f),
                                                      d_g * (1 - g ** 2), d_o * o * (1 - o)]),
                   f"[dL/di_{t} i_{t}(1 - i_{t}), dL/df_{t} f_{t}(1 - f_{t}), "
                   f"dL/dg_{t} (1 - g_{t}^2), dL/do_{t} o_{t}(1 - o_{t})]")


@explains("lstm", family="recurrent", aliases=("long_short_term_memory",),
          summary="LSTM through time (gates i, f, g, o; cell c_t = f_t * c_(t-1) + i_t * g_t, "
                  "h_t = o_t * tanh(c_t)) and backpropagation through time",
          options=_options(hidden=1, input_size=1))
def lstm(ex, steps, hidden, input_size):
    from retrograd import nn

    _check_options("lstm", steps, hidden, input_size)
    seq = _sequence_inputs(ex, 4, steps, hidden, input_size, cell=True)
    shapes = _reference(ex, nn.LSTM, seq, cell=True)
    ex.section("Forward, one step at a time")
    ex.say("a_t has four blocks of H rows, in PyTorch's gate order i, f, g, o.")
    hs, cs, gates = [seq.h0], [seq.c0], [None]
    for t in range(1, seq.steps + 1):
        h, c, step_gates = _lstm_forward_step(ex, t, seq, hs[-1], cs[-1])
        hs.append(h)
        cs.append(c)
        gates.append(step_gates)
    _sequence_outputs(ex, hs, cs)
    ex.section("Backward through time, from the last step to the first")
    g_out, g_hn, g_cn = _upstreams(ex, shapes)
    _shares_sentence(ex, "dL/da_t", "dL/da_t")
    shares, carried_h, carried_c = _Shares.zeros(seq), None, g_cn
    for t in range(seq.steps, 0, -1):
        ex.section(f"Backward, step {t}")
        dh = _hidden_gradient(ex, t, seq.steps, g_out, g_hn, carried_h)
        dc = _lstm_cell_gradient(ex, t, seq.steps, dh, cs[t], gates[t][3], carried_c)
        da = _lstm_backward_step(ex, t, seq, dh, dc, (cs[t - 1], cs[t]), gates[t])
        _step_shares(ex, t, seq, hs[t - 1], (da, da), shares)
        carried_c = ex.show(f"dL/dc_{t - 1}", _carried_cell_gradient(dc, gates[t][1]),
                            f"dL/dc_{t} * f_{t}  (the cell's direct path)")
        carried_h = ex.show(f"dL/dh_{t - 1}", seq.w_hh.T @ da, f"W_hh^T dL/da_{t}")
    _summed_gradients(ex, shares, carried_h, carried_c, "dL/da_t", "dL/da_t")
    _lstm_through_time(ex, seq, gates)


def _lstm_through_time(ex, seq, gates):
    steps = seq.steps
    ex.section("Through time: the cell state's gradient highway")
    forget = np.prod([gates[t][1] for t in range(1, steps + 1)], axis=0)
    ex.show("prod_t f_t", forget,
            f"{_over_steps('f', steps, ' * ')}: the factor on dL/dc_n's direct path to c_0")
    ex.say("From c_t to c_(t-1) the gradient is only multiplied by the forget gate f_t: no "
           "weight matrix and no squashing derivative on that path, so it survives as long "
           "as the gates stay open (f near 1), and the network learns when to let it fade. "
           "The path through h_t still goes through W_hh and the gates' derivatives, as in "
           "a plain RNN.")


# -- gru ------------------------------------------------------------------------------------
def _gru_forward_step(ex, t, seq, h_prev):
    """r_t, z_t, n_t, h_t of step t; returns (h_t, (r, z, n, gh_n))."""
    gx = _show_blocks(ex, f"gx_{t}", seq.w_ih @ seq.x[t - 1] + seq.b_ih, f"W_ih x_{t} + b_ih")
    gh = _show_blocks(ex, f"gh_{t}", seq.w_hh @ h_prev + seq.b_hh, f"W_hh h_{t - 1} + b_hh")
    gx_r, gx_z, gx_n = _blocks(gx, seq.hidden)
    gh_r, gh_z, gh_n = _blocks(gh, seq.hidden)
    r = ex.show(f"r_{t}", _sigmoid(gx_r + gh_r), f"sigmoid(gx_{t}[r] + gh_{t}[r])  (reset)")
    z = ex.show(f"z_{t}", _sigmoid(gx_z + gh_z), f"sigmoid(gx_{t}[z] + gh_{t}[z])  (update)")
    n = ex.show(f"n_{t}", np.tanh(gx_n + r * gh_n), f"tanh(gx_{t}[n] + r_{t} * gh_{t}[n])")
    h = ex.show(f"h_{t}", (1 - z) * n + z * h_prev, f"(1 - z_{t}) * n_{t} + z_{t} * h_{t - 1}")
    return h, (r, z, n, gh_n)


def _gru_backward_step(ex, t, dh, h_prev, gates):
    """(dL/dgx_t, dL/dgh_t) of step t: the gradients of W_ih x_t + b_ih and of
    W_hh h_(t-1) + b_hh, blocks r, z, n."""
    r, z, n, gh_n = gates
    d_n = ex.show(f"dL/dn_{t}", dh * (1 - z), f"dL/dh_{t} * (1 - z_{t})")
    d_z = ex.show(f"dL/dz_{t}", dh * (h_prev - n), f"dL/dh_{t} * (h_{t - 1} - n_{t})")
    da_n = ex.show(f"dL/da_{t}[n]", d_n * (1 - n ** 2), f"dL/dn_{t} * (1 - n_{t}^2)")
    d_r = ex.show(f"dL/dr_{t}", da_n * gh_n, f"dL/da_{t}[n] * gh_{t}[n]")
    da_r, da_z = d_r * r * (1 - r), d_z * z * (1 - z)
    d_gx = _show_blocks(ex, f"dL/dgx_{t}", np.concatenate([da_r, da_z, da_n]),
                        f"[dL/dr_{t} r_{t}(1 - r_{t}), dL/dz_{t} z_{t}(1 - z_{t}), "
                        f"dL/da_{t}[n]]")
    d_gh = _show_blocks(ex, f"dL/dgh_{t}", np.concatenate([da_r, da_z, da_n * r]),
                        f"[the same r and z blocks, dL/da_{t}[n] * r_{t}]")
    return d_gx, d_gh


@explains("gru", family="recurrent", aliases=("gated_recurrent_unit",),
          summary="GRU through time (PyTorch's formula: gates r, z, n; h_t = (1 - z_t) * n_t "
                  "+ z_t * h_(t-1)) and backpropagation through time",
          options=_options(hidden=1, input_size=1))
def gru(ex, steps, hidden, input_size):
    from retrograd import nn

    _check_options("gru", steps, hidden, input_size)
    seq = _sequence_inputs(ex, 3, steps, hidden, input_size)
    shapes = _reference(ex, nn.GRU, seq)
    ex.section("Forward, one step at a time")
    ex.say("gx_t and gh_t have three blocks of H rows, in PyTorch's gate order r, z, n; the "
           "reset gate r multiplies the whole W_hn h + b_hn block.")
    hs, gates = [seq.h0], [None]
    for t in range(1, seq.steps + 1):
        h, step_gates = _gru_forward_step(ex, t, seq, hs[-1])
        hs.append(h)
        gates.append(step_gates)
    _sequence_outputs(ex, hs)
    ex.section("Backward through time, from the last step to the first")
    g_out, g_hn, _ = _upstreams(ex, shapes)
    _shares_sentence(ex, "dL/dgx_t", "dL/dgh_t")
    shares, carried = _Shares.zeros(seq), None
    for t in range(seq.steps, 0, -1):
        ex.section(f"Backward, step {t}")
        dh = _hidden_gradient(ex, t, seq.steps, g_out, g_hn, carried)
        d_gx, d_gh = _gru_backward_step(ex, t, dh, hs[t - 1], gates[t])
        _step_shares(ex, t, seq, hs[t - 1], (d_gx, d_gh), shares)
        carried = ex.show(f"dL/dh_{t - 1}", dh * gates[t][1] + seq.w_hh.T @ d_gh,
                          f"dL/dh_{t} * z_{t} + W_hh^T dL/dgh_{t}")
    _summed_gradients(ex, shares, carried, None, "dL/dgx_t", "dL/dgh_t")
    ex.section("Through time")
    ex.say("h_(t-1) reaches h_t directly, weighted by z_t: that path carries dL/dh_t back "
           "multiplied only by z_t (no weight matrix, no squashing), like the LSTM's cell "
           "state; the path through n_t, r_t and z_t goes through W_hh and the gates' "
           "derivatives.")
    ex.show("prod_t z_t", np.prod([gates[t][1] for t in range(1, seq.steps + 1)], axis=0),
            f"{_over_steps('z', seq.steps, ' * ')}: the factor on dL/dh_n's direct path to h_0")
