"""Recurrent layers: RNN, LSTM, GRU and their single-step cells RNNCell, LSTMCell, GRUCell.

Parameter names, shapes, order and initialization are PyTorch's, so state dicts map one to
one: weight_ih_l{k}{suffix} (G H, I_k), weight_hh_l{k}{suffix} (G H, H), bias_ih_l{k}{suffix}
and bias_hh_l{k}{suffix} (G H,), with suffix "" or "_reverse", G = 1 (RNN), 4 (LSTM, gates
i, f, g, o) or 3 (GRU, gates r, z, n), I_0 = input_size and I_k = D * hidden_size after the
first layer (D = 2 when bidirectional). All are drawn from U(-1/sqrt(H), 1/sqrt(H)).
"""

import math
import warnings

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.creation import empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    """The parameters and the forward of RNN, LSTM and GRU (``mode`` is "RNN_TANH",
    "RNN_RELU", "LSTM" or "GRU"); see those classes."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 device=None, dtype=None):
        super().__init__()
        owner = self._owner_name(mode)
        input_size = _checks.int_at_least(owner, "input_size", input_size, 0)
        hidden_size = _checks.int_at_least(owner, "hidden_size", hidden_size, 1)
        num_layers = _checks.int_at_least(owner, "num_layers", num_layers, 1)
        dropout = _checks.probability(owner, "dropout probability", dropout)
        if proj_size:
            raise NotImplementedError(f"{owner}: proj_size (LSTM with projections) is not "
                                      f"implemented in retrograd; use proj_size=0")
        _checks.cpu_device(owner, device)
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{owner}: dropout={dropout} has no effect with num_layers=1 (dropout "
                          f"is applied between layers)", stacklevel=2)
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = dropout, bidirectional
        self.proj_size = 0
        dtype = dtype or _dt.default_float
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for kind, shape in shapes:
                    name = f"{kind}_l{layer}{suffix}"
                    setattr(self, name, Parameter(empty(*shape, dtype=dtype)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    def _owner_name(self, mode):
        return {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self):
        """A no-op, for PyTorch compatibility (there is no cuDNN weight buffer here)."""

    @property
    def all_weights(self):
        """The parameters grouped per layer and direction: [[w_ih, w_hh, b_ih, b_hh], ...]."""
        per = 4 if self.bias else 2
        flat = [getattr(self, n) for n in self._flat_weights_names]
        return [flat[k:k + per] for k in range(0, len(flat), per)]

    def _weight_tuples(self):
        """(w_ih, w_hh, b_ih, b_hh) per layer and direction, biases None without bias."""
        return [tuple(group) if self.bias else (group[0], group[1], None, None)
                for group in self.all_weights]

    def forward(self, input, hx=None):  # noqa: A002 - PyTorch's argument name
        args = (input, hx, self._weight_tuples(), self.num_layers)
        options = (self.dropout, self.training, self.bidirectional, self.batch_first)
        if self.mode == "LSTM":
            return F.lstm(*args, *options, owner=self)
        if self.mode == "GRU":
            return F.gru(*args, *options, owner=self)
        nonlinearity = "relu" if self.mode == "RNN_RELU" else "tanh"
        return F.rnn(*args, nonlinearity, *options, owner=self)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity='relu'"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(RNNBase):
    """A multi-layer Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) per
    layer, act = tanh or relu; the h_t of one layer are the x_t of the next.

    Args:
        input_size: features I of the input x_t.
        hidden_size: features H of the hidden state.
        num_layers: stacked layers. Default: 1.
        nonlinearity: 'tanh' or 'relu'. Default: 'tanh'.
        bias: learn b_ih and b_hh. Default: True.
        batch_first: input and output are (B, T, *) instead of (T, B, *). Default: False.
        dropout: dropout probability on each layer's output except the last's. Default: 0.
        bidirectional: also run each layer backwards in time and concatenate. Default: False.
        dtype: the parameters' dtype. Default: the default float dtype.

    Shape (D = 2 if bidirectional else 1, L = num_layers):
        - input: (T, B, I), (B, T, I) with batch_first, or unbatched (T, I).
        - hx: (D * L, B, H), unbatched (D * L, H); zeros if not given.
        - output: (T, B, D * H) (the last layer's h_t), batch_first (B, T, D * H).
        - h_n: (D * L, B, H), the final states, ordered layer 0 forward, layer 0 reverse, ...

    Attributes:
        weight_ih_l{k}{_reverse}: (H, I) for k = 0, (H, D * H) after.
        weight_hh_l{k}{_reverse}: (H, H). bias_ih_l{k}, bias_hh_l{k}: (H,).
        All from U(-1/sqrt(H), 1/sqrt(H)).

    Example:
        >>> import retrograd as rg
        >>> rnn = rg.nn.RNN(10, 20, num_layers=2)
        >>> output, h_n = rnn(rg.randn(5, 3, 10), rg.randn(2, 3, 20))
        >>> output.shape, h_n.shape
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        self.nonlinearity = _checks.one_of("RNN", "nonlinearity", nonlinearity, ("tanh", "relu"))
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


class LSTM(RNNBase):
    """A multi-layer long short-term memory network. Per layer and step:
        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of the blocks of
                     x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
        c_t = f * c_{t-1} + i * g,    h_t = o * tanh(c_t).

    Args: as for RNN (without nonlinearity); proj_size must be 0 (projections are not
    implemented).

    Shape (D = 2 if bidirectional else 1, L = num_layers):
        - input: (T, B, I), (B, T, I) with batch_first, or unbatched (T, I).
        - hx: a pair (h_0, c_0) of (D * L, B, H) tensors (unbatched (D * L, H)), or None.
        - output: (T, B, D * H), batch_first (B, T, D * H).
        - (h_n, c_n): each (D * L, B, H).

    Attributes:
        weight_ih_l{k}{_reverse}: (4H, I) for k = 0, (4H, D * H) after, gates i, f, g, o.
        weight_hh_l{k}{_reverse}: (4H, H). bias_ih_l{k}, bias_hh_l{k}: (4H,).
        All from U(-1/sqrt(H), 1/sqrt(H)).

    Example:
        >>> import retrograd as rg
        >>> lstm = rg.nn.LSTM(10, 20, batch_first=True, bidirectional=True)
        >>> output, (h_n, c_n) = lstm(rg.randn(3, 5, 10))
        >>> output.shape, h_n.shape, c_n.shape
        ((3, 5, 40), (2, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """A multi-layer gated recurrent unit network, PyTorch's formula. Per layer and step:
        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}.

    Args: as for RNN (without nonlinearity).

    Shape: as for RNN.

    Attributes:
        weight_ih_l{k}{_reverse}: (3H, I) for k = 0, (3H, D * H) after, gates r, z, n.
        weight_hh_l{k}{_reverse}: (3H, H). bias_ih_l{k}, bias_hh_l{k}: (3H,).
        All from U(-1/sqrt(H), 1/sqrt(H)).

    Example:
        >>> import retrograd as rg
        >>> gru = rg.nn.GRU(10, 20, num_layers=2, dropout=0.1)
        >>> output, h_n = gru(rg.randn(5, 3, 10))
        >>> output.shape, h_n.shape
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


class RNNCellBase(Module):
    """The parameters of one cell: weight_ih (G H, I), weight_hh (G H, H), bias_ih and
    bias_hh (G H,), from U(-1/sqrt(H), 1/sqrt(H))."""

    def __init__(self, input_size, hidden_size, bias, gates, device=None, dtype=None):
        super().__init__()
        owner = type(self).__name__
        input_size = _checks.int_at_least(owner, "input_size", input_size, 0)
        hidden_size = _checks.int_at_least(owner, "hidden_size", hidden_size, 1)
        _checks.cpu_device(owner, device)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dtype = dtype or _dt.default_float
        self.weight_ih = Parameter(empty(gates * hidden_size, input_size, dtype=dtype))
        self.weight_hh = Parameter(empty(gates * hidden_size, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(gates * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(empty(gates * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        return text


class RNNCell(RNNCellBase):
    """One Elman RNN step: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu.

    Args:
        input_size: features I. hidden_size: features H. bias: learn the biases.
        nonlinearity: 'tanh' or 'relu'. Default: 'tanh'.

    Shape:
        - input: (B, I) or (I,). hx: (B, H) or (H,), zeros if not given.
        - output: h' of hx's shape.

    Attributes:
        weight_ih: (H, I). weight_hh: (H, H). bias_ih, bias_hh: (H,).
        All from U(-1/sqrt(H), 1/sqrt(H)).

    Example:
        >>> import retrograd as rg
        >>> cell = rg.nn.RNNCell(10, 20)
        >>> h = rg.zeros(3, 20)
        >>> for x in rg.randn(6, 3, 10):
        ...     h = cell(x, h)
        >>> h.shape
        (3, 20)
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        self.nonlinearity = _checks.one_of("RNNCell", "nonlinearity", nonlinearity,
                                           ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input, hx=None):  # noqa: A002
        return F.rnn_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                          self.nonlinearity, owner=self)


class LSTMCell(RNNCellBase):
    """One LSTM step: gates i, f, g, o from x W_ih^T + b_ih + h W_hh^T + b_hh,
    c' = f * c + i * g, h' = o * tanh(c'); returns (h', c').

    Args:
        input_size: features I. hidden_size: features H. bias: learn the biases.

    Shape:
        - input: (B, I) or (I,). hx: a pair (h, c) of (B, H) or (H,), zeros if not given.
        - output: (h', c'), each of h's shape.

    Attributes:
        weight_ih: (4H, I). weight_hh: (4H, H). bias_ih, bias_hh: (4H,).
        All from U(-1/sqrt(H), 1/sqrt(H)).

    Example:
        >>> import retrograd as rg
        >>> cell = rg.nn.LSTMCell(10, 20)
        >>> h, c = cell(rg.randn(3, 10))
        >>> h, c = cell(rg.randn(3, 10), (h, c))
        >>> h.shape, c.shape
        ((3, 20), (3, 20))
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):  # noqa: A002
        return F.lstm_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                           owner=self)


class GRUCell(RNNCellBase):
    """One GRU step (PyTorch's formula): r, z = sigmoid blocks, n = tanh(x W_in^T + b_in +
    r * (h W_hn^T + b_hn)), h' = (1 - z) * n + z * h.

    Args:
        input_size: features I. hidden_size: features H. bias: learn the biases.

    Shape:
        - input: (B, I) or (I,). hx: (B, H) or (H,), zeros if not given.
        - output: h' of hx's shape.

    Attributes:
        weight_ih: (3H, I). weight_hh: (3H, H). bias_ih, bias_hh: (3H,).
        All from U(-1/sqrt(H), 1/sqrt(H)).

    Example:
        >>> import retrograd as rg
        >>> cell = rg.nn.GRUCell(10, 20)
        >>> cell(rg.randn(3, 10)).shape
        (3, 20)
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):  # noqa: A002
        return F.gru_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                          owner=self)
