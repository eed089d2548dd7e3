"""Recurrent cells and layers as functions: rnn_cell, lstm_cell, gru_cell, rnn, lstm, gru.

A layer is a Python loop over time steps of the fused step ops of retrograd/ops/recurrent.py,
after one Linear op that projects the inputs of all steps at once; backpropagation through
time is the engine running that graph backwards. Weights follow PyTorch's layout (gate
blocks stacked along dim 0: LSTM i, f, g, o; GRU r, z, n).
"""

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._checks import name_of
from retrograd.creation import cat, stack
from retrograd.nn.functional.dropout import dropout as _dropout
from retrograd.nn.functional.linear import linear
from retrograd.ops.recurrent import GRUStep, LSTMStep, RNNStep, Unbind
from retrograd.tensor import Tensor

__all__ = ["rnn_cell", "lstm_cell", "gru_cell", "rnn", "lstm", "gru"]

# gate blocks per mode: rows of W_ih and W_hh are (gates * hidden_size)
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ---------------------------------------------------------------- one step
def _step(mode, gx, state, w_hh, b_hh):
    """One cell step from the projected input gx (B, G H); state is h, or (h, c) for LSTM,
    with None for a zero state. Returns the new state in the same form."""
    if mode == "LSTM":
        return LSTMStep.apply(gx, state[0], state[1], w_hh, b_hh)
    if mode == "GRU":
        return GRUStep.apply(gx, state, w_hh, b_hh)
    return RNNStep.apply(gx, state, w_hh, b_hh,
                         nonlinearity="tanh" if mode == "RNN_TANH" else "relu")


def _run_cell(mode, owner, input, hx, w_ih, w_hh, b_ih, b_hh):  # noqa: A002
    """One step of a cell on (B, I) or unbatched (I,) input, shared by the cell functions
    (``owner`` is named in errors); hx as for _step, or None."""
    hidden = w_hh.shape[-1] if isinstance(w_hh, Tensor) and w_hh.ndim == 2 else None
    _check_weights(owner, mode, w_ih, w_hh, b_ih, b_hh, input_size=None, hidden_size=hidden)
    _check_input_dtype(owner, input, w_ih)
    if input.ndim not in (1, 2) or input.shape[-1] != w_ih.shape[1]:
        raise ValueError(f"{name_of(owner)}: expected input of shape (batch, {w_ih.shape[1]}) "
                         f"or ({w_ih.shape[1]},), got {input.shape}")
    unbatched = input.ndim == 1
    if unbatched:
        input = input.unsqueeze(0)
    states = hx if mode == "LSTM" else (hx,)
    if hx is None:
        states = (None, None) if mode == "LSTM" else (None,)
    expected = (hidden,) if unbatched else (input.shape[0], hidden)
    checked = []
    for k, s in enumerate(states):
        if s is not None:
            _check_state(owner, ("h", "c")[k], s, expected, input)
            s = s.unsqueeze(0) if unbatched else s
        checked.append(s)
    state = tuple(checked) if mode == "LSTM" else checked[0]
    out = _step(mode, linear(input, w_ih, b_ih), state, w_hh, b_hh)
    if unbatched:
        out = tuple(o.squeeze(0) for o in out) if mode == "LSTM" else out.squeeze(0)
    return out


def rnn_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", *,  # noqa: A002
             owner=None):
    """h' = act(input W_ih^T + b_ih + hx W_hh^T + b_hh), act = tanh or relu.

    Args:
        input: (B, I) or (I,). hx: (B, H) or (H,), or None for zeros.
        w_ih: (H, I). w_hh: (H, H). b_ih, b_hh: (H,) or None.
        owner: who errors name (a layer passes itself); default "rnn_cell".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> h = F.rnn_cell(rg.randn(3, 5), None, rg.randn(4, 5), rg.randn(4, 4))
        >>> h.shape
        (3, 4)
    """
    owner = "rnn_cell" if owner is None else owner
    _checks.one_of(owner, "nonlinearity", nonlinearity, ("tanh", "relu"))
    mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
    return _run_cell(mode, owner, input, hx, w_ih, w_hh, b_ih, b_hh)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None, *, owner=None):  # noqa: A002
    """One LSTM step: returns (h', c') (module docstring of retrograd/ops/recurrent.py).

    Args:
        input: (B, I) or (I,). hx: a pair (h, c) of (B, H) or (H,) tensors, or None.
        w_ih: (4H, I). w_hh: (4H, H). b_ih, b_hh: (4H,) or None. Gate order i, f, g, o.
        owner: who errors name (a layer passes itself); default "lstm_cell".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> h, c = F.lstm_cell(rg.randn(3, 5), None, rg.randn(16, 5), rg.randn(16, 4))
        >>> h.shape, c.shape
        ((3, 4), (3, 4))
    """
    owner = "lstm_cell" if owner is None else owner
    if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
        raise TypeError(f"{name_of(owner)}: hx must be a pair (h, c) or None, got "
                        f"{type(hx).__name__}")
    return _run_cell("LSTM", owner, input, None if hx is None else tuple(hx), w_ih, w_hh,
                     b_ih, b_hh)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None, *, owner=None):  # noqa: A002
    """One GRU step (PyTorch's formula: r multiplies hx W_hn^T + b_hn).

    Args:
        input: (B, I) or (I,). hx: (B, H) or (H,), or None for zeros.
        w_ih: (3H, I). w_hh: (3H, H). b_ih, b_hh: (3H,) or None. Gate order r, z, n.
        owner: who errors name (a layer passes itself); default "gru_cell".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.gru_cell(rg.randn(3, 5), rg.zeros(3, 4), rg.randn(12, 5), rg.randn(12, 4)).shape
        (3, 4)
    """
    return _run_cell("GRU", "gru_cell" if owner is None else owner, input, hx, w_ih, w_hh, b_ih,
                     b_hh)


# ---------------------------------------------------------------- layers
def rnn(input, hx, weights, num_layers=1, nonlinearity="tanh", dropout=0.0,  # noqa: A002
        training=True, bidirectional=False, batch_first=False, *, owner=None):
    """A multi-layer Elman RNN over a sequence; returns (output, h_n) as torch.nn.RNN.

    Args:
        input: (T, B, I), (B, T, I) when batch_first, or unbatched (T, I).
        hx: (L * D, B, H) (unbatched: (L * D, H)) or None for zeros; D = 2 if bidirectional.
        weights: one tuple (w_ih, w_hh, b_ih, b_hh) per layer and direction, in the order
            layer 0 forward, layer 0 reverse, layer 1 forward, ...; biases may be None.
        dropout: probability of dropout on the outputs of every layer but the last
            (applied only when training).
        owner: who errors name (a layer passes itself); default the function's name.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> w = [(rg.randn(4, 3), rg.randn(4, 4), None, None)]
        >>> out, h_n = F.rnn(rg.randn(6, 2, 3), None, w)
        >>> out.shape, h_n.shape
        ((6, 2, 4), (1, 2, 4))
    """
    owner = "rnn" if owner is None else owner
    _checks.one_of(owner, "nonlinearity", nonlinearity, ("tanh", "relu"))
    mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
    return _run_layers(mode, owner, input, hx, weights, num_layers, dropout, training,
                       bidirectional, batch_first)


def lstm(input, hx, weights, num_layers=1, dropout=0.0, training=True,  # noqa: A002
         bidirectional=False, batch_first=False, *, owner=None):
    """A multi-layer LSTM over a sequence; returns (output, (h_n, c_n)) as torch.nn.LSTM.
    Arguments as for ``rnn``; hx is a pair (h_0, c_0) or None.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> w = [(rg.randn(16, 3), rg.randn(16, 4), None, None)]
        >>> out, (h_n, c_n) = F.lstm(rg.randn(6, 2, 3), None, w)
        >>> out.shape, h_n.shape, c_n.shape
        ((6, 2, 4), (1, 2, 4), (1, 2, 4))
    """
    return _run_layers("LSTM", "lstm" if owner is None else owner, input, hx, weights,
                       num_layers, dropout, training, bidirectional, batch_first)


def gru(input, hx, weights, num_layers=1, dropout=0.0, training=True,  # noqa: A002
        bidirectional=False, batch_first=False, *, owner=None):
    """A multi-layer GRU over a sequence; returns (output, h_n) as torch.nn.GRU.
    Arguments as for ``rnn``.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> w = [(rg.randn(12, 3), rg.randn(12, 4), None, None)]
        >>> out, h_n = F.gru(rg.randn(2, 6, 3), None, w, batch_first=True)
        >>> out.shape, h_n.shape
        ((2, 6, 4), (1, 2, 4))
    """
    return _run_layers("GRU", "gru" if owner is None else owner, input, hx, weights,
                       num_layers, dropout, training, bidirectional, batch_first)


def _run_layers(mode, owner, input, hx, weights, num_layers, dropout, training,  # noqa: A002
                bidirectional, batch_first):
    """The layer loop shared by rnn, lstm and gru (``owner`` is named in errors). See ``rnn``
    for the arguments."""
    directions = 2 if bidirectional else 1
    weights = list(weights)
    num_layers = _checks.int_at_least(owner, "num_layers", num_layers, 1)
    dropout = _checks.probability(owner, "dropout probability", dropout)
    if len(weights) != num_layers * directions:
        raise ValueError(f"{name_of(owner)}: expected {num_layers * directions} weight tuples "
                         f"(num_layers={num_layers}, directions={directions}), got "
                         f"{len(weights)}")
    hidden = weights[0][1].shape[-1] if isinstance(weights[0][1], Tensor) else None
    for k, w in enumerate(weights):
        layer_input = weights[0][0].shape[1] if k < directions else directions * hidden
        _check_weights(owner, mode, *w, input_size=layer_input, hidden_size=hidden)
    x, unbatched, time_axis = _check_sequence(owner, input, weights[0][0], batch_first)
    batch = x.shape[1 - time_axis]
    init_states = _initial_states(owner, mode, hx, num_layers * directions, batch, hidden,
                                  unbatched, x)
    finals = []
    for layer in range(num_layers):
        outputs = []
        for d in range(directions):
            k = layer * directions + d
            w_ih, w_hh, b_ih, b_hh = weights[k]
            steps = Unbind.apply(linear(x, w_ih, b_ih), axis=time_axis)
            hs, final = _scan(mode, steps, init_states[k], w_hh, b_hh, reverse=d == 1)
            outputs.append(stack(hs, dim=time_axis))
            finals.append(final)
        x = outputs[0] if directions == 1 else cat(outputs, dim=-1)
        if dropout > 0 and training and layer < num_layers - 1:
            x = _dropout(x, dropout, training, owner=owner)
    return _pack_result(mode, x, finals, unbatched, time_axis)


def _scan(mode, steps, state, w_hh, b_hh, reverse):
    """Run the cell over the steps (in reverse order for the reverse direction); returns the
    hidden states in time order and the final state."""
    order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
    hs = [None] * len(steps)
    for t in order:
        state = _step(mode, steps[t], state, w_hh, b_hh)
        hs[t] = state[0] if mode == "LSTM" else state
    return hs, state


def _pack_result(mode, output, finals, unbatched, time_axis):
    """(output, h_n) or (output, (h_n, c_n)), unbatched results without their batch axis."""
    if mode == "LSTM":
        h_n = stack([f[0] for f in finals], dim=0)
        c_n = stack([f[1] for f in finals], dim=0)
        if unbatched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return output, (h_n, c_n)
    h_n = stack(finals, dim=0)
    if unbatched:
        return output.squeeze(1), h_n.squeeze(1)
    return output, h_n


# ---------------------------------------------------------------- checks
def _check_sequence(owner, input, w_ih, batch_first):  # noqa: A002
    """(x, unbatched, time_axis): the input with a batch axis, checked against W_ih."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got "
                        f"{type(input).__name__}")
    input_size = w_ih.shape[1]
    layout = "(batch, seq_len, input_size)" if batch_first else "(seq_len, batch, input_size)"
    if input.ndim not in (2, 3) or input.shape[-1] != input_size:
        raise ValueError(f"{name_of(owner)}: expected input of shape {layout} or (seq_len, "
                         f"input_size) with input_size = {input_size}, got input of shape "
                         f"{input.shape}")
    _check_input_dtype(owner, input, w_ih)
    unbatched = input.ndim == 2
    x = input.unsqueeze(1) if unbatched else input
    time_axis = 1 if (batch_first and not unbatched) else 0
    if x.shape[time_axis] == 0:
        raise ValueError(f"{name_of(owner)}: expected a sequence of at least one step, got "
                         f"input of shape {input.shape}")
    return x, unbatched, time_axis


def _check_input_dtype(owner, input, w_ih):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got "
                        f"{type(input).__name__}")
    if _checks.mixed_dtypes(input, w_ih):
        raise TypeError(f"{name_of(owner)}: input dtype {input.dtype} does not match the "
                        f"weights' dtype {w_ih.dtype} (input of shape {input.shape}); convert "
                        f"one of them")


def _check_weights(owner, mode, w_ih, w_hh, b_ih, b_hh, input_size, hidden_size):
    """Shapes of one (w_ih, w_hh, b_ih, b_hh): (G H, I), (G H, H), (G H,), (G H,)."""
    gates = _GATES[mode]
    for label, w in (("weight_ih", w_ih), ("weight_hh", w_hh)):
        if not isinstance(w, Tensor) or w.ndim != 2:
            raise ValueError(f"{name_of(owner)}: {label} must be a 2-D Tensor, got "
                             f"{w.shape if isinstance(w, Tensor) else type(w).__name__}")
    hidden = hidden_size if hidden_size is not None else w_hh.shape[1]
    expected = {"weight_ih": (gates * hidden, input_size if input_size is not None
                              else w_ih.shape[1]),
                "weight_hh": (gates * hidden, hidden)}
    for label, w in (("weight_ih", w_ih), ("weight_hh", w_hh)):
        if w.shape != expected[label]:
            raise ValueError(f"{name_of(owner)}: expected {label} of shape {expected[label]} "
                             f"({gates} gate block(s) of hidden size {hidden}), got {w.shape}")
    for label, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b is not None and (not isinstance(b, Tensor) or b.shape != (gates * hidden,)):
            raise ValueError(f"{name_of(owner)}: expected {label} of shape ({gates * hidden},), "
                             f"got {b.shape if isinstance(b, Tensor) else type(b).__name__}")
    if not _dt.is_floating(w_ih._data.dtype):
        raise TypeError(f"{name_of(owner)}: weights must be floating point, got dtype "
                        f"{w_ih.dtype}")


def _check_state(owner, label, state, expected, input):  # noqa: A002
    if not isinstance(state, Tensor) or state.shape != tuple(expected):
        shape = state.shape if isinstance(state, Tensor) else type(state).__name__
        raise ValueError(f"{name_of(owner)}: expected {label}_0 of shape {tuple(expected)} for "
                         f"input of shape {input.shape}, got {shape}")
    if _checks.mixed_dtypes(state, input):
        raise TypeError(f"{name_of(owner)}: {label}_0 dtype {state.dtype} does not match the "
                        f"input's dtype {input.dtype}")


def _initial_states(owner, mode, hx, count, batch, hidden, unbatched, x):
    """One initial state per layer and direction (h, or (h, c) for LSTM), None for zeros."""
    if hx is None:
        return [(None, None) if mode == "LSTM" else None] * count
    if mode == "LSTM":
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{name_of(owner)}: hx must be a pair (h_0, c_0) or None, got "
                            f"{type(hx).__name__}")
        parts = list(hx)
    else:
        parts = [hx]
    expected = (count, hidden) if unbatched else (count, batch, hidden)
    per_part = []
    for label, part in zip(("h", "c"), parts):
        _check_state(owner, label, part, expected, x.squeeze(1) if unbatched else x)
        if unbatched:
            part = part.unsqueeze(1)
        per_part.append(Unbind.apply(part, axis=0))
    if mode == "LSTM":
        return list(zip(*per_part))
    return list(per_part[0])

