"""nn.RNN, nn.LSTM, nn.GRU and the cells nn.RNNCell, nn.LSTMCell, nn.GRUCell against
torch.nn after copying torch's state dict into ours: outputs, final states, and the gradients
of the input, of the initial states and of every parameter, over layers, directions,
layouts, initial states, sequence length 1, batch 1, unbatched input, no bias, dropout;
finite-difference checks of backpropagation through time; parameter names and init;
argument errors."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import GRADCHECK_TOLERANCES, randn, to_torch

LAYERS = {"RNN": (rg.nn.RNN, torch.nn.RNN), "LSTM": (rg.nn.LSTM, torch.nn.LSTM),
          "GRU": (rg.nn.GRU, torch.nn.GRU)}
CELLS = {"RNNCell": (rg.nn.RNNCell, torch.nn.RNNCell),
         "LSTMCell": (rg.nn.LSTMCell, torch.nn.LSTMCell),
         "GRUCell": (rg.nn.GRUCell, torch.nn.GRUCell)}


@pytest.fixture(autouse=True)
def _torch_single_thread():
    """PyTorch's recurrent kernels on small sizes spin for seconds with 2 threads on a busy
    machine; one thread is fast and gives the same values."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pair(classes, *args, **kwargs):
    """Torch's module in float64 and ours holding the same values."""
    ours_cls, torch_cls = classes
    torch.manual_seed(0)
    theirs = torch_cls(*args, dtype=torch.float64, **kwargs)
    ours = ours_cls(*args, dtype=rg.float64, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _flat(out):
    """(output, h_n) or (output, (h_n, c_n)) as a flat list of tensors."""
    if isinstance(out, tuple):
        return [t for o in out for t in _flat(o)]
    return [out]


def _compare(ours, theirs, x, hx=None, rtol=1e-10, atol=1e-12):
    """Forward both on the same x (and hx), backpropagate the same random cotangents from
    every output, and compare outputs, the input and state gradients, and every parameter
    gradient."""
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    r_hx = t_hx = None
    if hx is not None:
        r_hx = tuple(rg.tensor(h, requires_grad=True) for h in hx)
        t_hx = tuple(to_torch(h).requires_grad_() for h in hx)
    r_out = _flat(ours(rx, r_hx if r_hx is None or len(r_hx) == 2 else r_hx[0]))
    t_out = _flat(theirs(tx, t_hx if t_hx is None or len(t_hx) == 2 else t_hx[0]))
    assert len(r_out) == len(t_out)
    rng = np.random.default_rng(5)
    cotangents = [rng.standard_normal(tuple(t.shape)) for t in t_out]
    for k, (a, b) in enumerate(zip(r_out, t_out)):
        assert a.shape == tuple(b.shape), f"output {k}: {a.shape} != {tuple(b.shape)}"
        assert a.dtype == rg.float64
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"output {k}")
    rg.autograd.backward(r_out, [rg.tensor(c) for c in cotangents])
    torch.autograd.backward(t_out, [to_torch(c) for c in cotangents])
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol,
                               err_msg="input gradient")
    for k, (a, b) in enumerate(zip(r_hx or (), t_hx or ())):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"initial state {k} gradient")
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of {name}")


def _kwargs(kind):
    return {"nonlinearity": "relu"} if kind == "RNN_relu" else {}


def _classes(kind):
    return LAYERS[kind.split("_")[0]]


def _states(kind, shape, seed):
    n = 2 if kind == "LSTM" else 1
    return tuple(randn(*shape, seed=seed + k) for k in range(n))


KINDS = ["RNN", "RNN_relu", "LSTM", "GRU"]
# (num_layers, bidirectional, batch_first)
STACKS = [(1, False, False), (2, False, True), (3, True, False), (2, True, True)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_layers, bidirectional, batch_first", STACKS)
def test_layer_matches_torch(kind, num_layers, bidirectional, batch_first):
    ours, theirs = _pair(_classes(kind), 3, 4, num_layers=num_layers,
                         bidirectional=bidirectional, batch_first=batch_first, **_kwargs(kind))
    x = randn(*((2, 5, 3) if batch_first else (5, 2, 3)), seed=1)
    _compare(ours, theirs, x)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_layers, bidirectional, batch_first", STACKS)
def test_layer_with_initial_states_matches_torch(kind, num_layers, bidirectional, batch_first):
    ours, theirs = _pair(_classes(kind), 3, 4, num_layers=num_layers,
                         bidirectional=bidirectional, batch_first=batch_first, **_kwargs(kind))
    x = randn(*((2, 5, 3) if batch_first else (5, 2, 3)), seed=2)
    hx = _states(kind.split("_")[0], (num_layers * (1 + bidirectional), 2, 4), seed=3)
    _compare(ours, theirs, x, hx)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("x_shape, batch_first", [
    ((1, 3, 3), False),    # a sequence of one step
    ((4, 1, 3), False),    # a batch of one
    ((1, 1, 3), True),     # both
    ((6, 3), False),       # unbatched (T, I)
    ((6, 3), True),        # unbatched ignores batch_first, as in PyTorch
])
def test_layer_edge_shapes_match_torch(kind, x_shape, batch_first):
    ours, theirs = _pair(_classes(kind), 3, 2, num_layers=2, bidirectional=True,
                         batch_first=batch_first, **_kwargs(kind))
    _compare(ours, theirs, randn(*x_shape, seed=4))


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_layer_with_initial_states_matches_torch(kind):
    ours, theirs = _pair(_classes(kind), 3, 2, num_layers=2, **_kwargs(kind))
    _compare(ours, theirs, randn(5, 3, seed=5), _states(kind.split("_")[0], (2, 2), seed=6))


@pytest.mark.parametrize("kind", KINDS)
def test_layer_without_bias_matches_torch(kind):
    ours, theirs = _pair(_classes(kind), 3, 4, num_layers=2, bias=False, **_kwargs(kind))
    assert [n for n, _ in ours.named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"]
    _compare(ours, theirs, randn(4, 2, 3, seed=7))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_dropout_one_between_layers_matches_torch(kind):
    """dropout=1 zeroes the first layer's output (deterministic), so the second layer sees
    zeros in both frameworks; the first layer's weights get no gradient from the output."""
    ours, theirs = _pair(_classes(kind), 3, 4, num_layers=2, dropout=1.0)
    _compare(ours, theirs, randn(5, 2, 3, seed=8))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_dropout_is_off_in_eval_and_on_in_training(kind):
    ours, _ = _pair(_classes(kind), 3, 4, num_layers=2, dropout=0.5)
    plain, _ = _pair(_classes(kind), 3, 4, num_layers=2)
    x = rg.tensor(randn(6, 2, 3, seed=9))
    ours.eval(), plain.eval()
    np.testing.assert_array_equal(_flat(ours(x))[0].detach().numpy(),
                                  _flat(plain(x))[0].detach().numpy())
    ours.train()
    assert not np.allclose(_flat(ours(x))[0].detach().numpy(), _flat(plain(x))[0].detach().numpy())


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_layer_float32_matches_torch(kind):
    ours_cls, torch_cls = LAYERS[kind]
    torch.manual_seed(1)
    theirs = torch_cls(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    ours = ours_cls(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = randn(4, 12, 8, seed=10).astype(np.float32)
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    r_out, t_out = _flat(ours(rx)), _flat(theirs(tx))
    for a, b in zip(r_out, t_out):
        assert a.dtype == rg.float32
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    sum(o.sum() for o in r_out).backward()
    sum(o.sum() for o in t_out).backward()
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert p.grad.dtype == rg.float32
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=name)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
def test_low_precision_layers_keep_their_dtype(kind, dtype):
    """float16 / bfloat16 layers run end to end in their dtype (outputs and every
    gradient), and stay close to the float32 result."""
    reference = LAYERS[kind][0](3, 4, num_layers=2, bidirectional=True)
    low = LAYERS[kind][0](3, 4, num_layers=2, bidirectional=True)
    low.load_state_dict(reference.state_dict())
    low.to(dtype)
    x = randn(5, 2, 3, seed=30).astype(np.float32)
    out = _flat(low(rg.tensor(x).to(dtype).requires_grad_()))
    assert all(o.dtype == dtype for o in out)
    sum(o.float().sum() for o in out).backward()
    assert all(p.grad.dtype == dtype for p in low.parameters())
    expected = _flat(reference(rg.tensor(x)))[0].detach().numpy()
    np.testing.assert_allclose(out[0].detach().float().numpy(), expected, atol=0.05)


# ---------------------------------------------------------------- finite differences
def _weights(mode_gates, input_size, hidden, layers, directions, seed):
    rng = np.random.default_rng(seed)
    out = []
    for layer in range(layers):
        size = input_size if layer == 0 else directions * hidden
        for _ in range(directions):
            shapes = [(mode_gates * hidden, size), (mode_gates * hidden, hidden),
                      (mode_gates * hidden,), (mode_gates * hidden,)]
            out.extend(rg.tensor(rng.standard_normal(s) * 0.5, requires_grad=True)
                       for s in shapes)
    return out


@pytest.mark.parametrize("fn, gates", [(F.rnn, 1), (F.lstm, 4), (F.gru, 3)])
def test_bptt_gradcheck_through_the_engine(fn, gates):
    """Every gradient of a 2-layer bidirectional layer over 4 steps, against finite
    differences (x, the initial states and all 16 weights)."""
    weights = _weights(gates, 2, 3, layers=2, directions=2, seed=11)
    x = rg.tensor(randn(4, 2, 2, seed=12), requires_grad=True)
    h0 = rg.tensor(randn(4, 2, 3, seed=13), requires_grad=True)
    c0 = rg.tensor(randn(4, 2, 3, seed=14), requires_grad=True)
    lstm = fn is F.lstm

    def run(x, h0, c0, *flat):
        tuples = [tuple(flat[k:k + 4]) for k in range(0, len(flat), 4)]
        out, state = fn(x, (h0, c0) if lstm else h0, tuples, num_layers=2, bidirectional=True)
        return (out,) + (state if lstm else (state,))

    assert rg.autograd.gradcheck(run, (x, h0, c0, *weights), eps=1e-6, atol=1e-7, rtol=1e-5,
                                 fast_mode=True)
    small = _weights(gates, 2, 2, layers=1, directions=1, seed=15)
    x_small = rg.tensor(randn(3, 1, 2, seed=16), requires_grad=True)
    assert rg.autograd.gradcheck(
        lambda x, *w: _flat(fn(x, None, [tuple(w)]))[0], (x_small, *small), atol=1e-7, rtol=1e-5)


def test_rnn_layer_gradgradcheck():
    """A whole tanh RNN layer (its steps are double-differentiable) passes gradgradcheck."""
    weights = _weights(1, 2, 2, layers=1, directions=2, seed=17)
    x = rg.tensor(randn(3, 1, 2, seed=18), requires_grad=True)

    def run(x, *w):
        return F.rnn(x, None, [tuple(w[:4]), tuple(w[4:])], bidirectional=True)[0]

    assert rg.autograd.gradgradcheck(run, (x, *weights), **GRADCHECK_TOLERANCES)


def test_input_projection_is_one_gemm_per_layer_and_direction():
    """The graph of a 2-layer bidirectional LSTM over 7 steps has one Linear node (the input
    projection of all steps) per layer and direction, and one step node per step."""
    lstm = rg.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    out, _ = lstm(rg.randn(7, 2, 3))
    counts, seen, stack = Counter(), set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        counts[type(node).__name__] += 1
        stack.extend(edge[0] for edge in node.next_functions)
    assert counts["Linear"] == 4
    assert counts["LSTMStep"] == 4 * 7
    assert counts["Unbind"] == 4


# ---------------------------------------------------------------- cells
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_cell_module_matches_torch(name, bias, with_state):
    ours, theirs = _pair(CELLS[name], 3, 4, bias=bias)
    kind = "LSTM" if name == "LSTMCell" else "RNN"
    hx = _states(kind, (2, 4), seed=20) if with_state else None
    _compare(ours, theirs, randn(2, 3, seed=21), hx)


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_module_unbatched_matches_torch(name):
    ours, theirs = _pair(CELLS[name], 3, 4)
    kind = "LSTM" if name == "LSTMCell" else "RNN"
    _compare(ours, theirs, randn(3, seed=22), _states(kind, (4,), seed=23))


def test_relu_cell_module_matches_torch():
    ours, theirs = _pair(CELLS["RNNCell"], 3, 4, nonlinearity="relu")
    _compare(ours, theirs, randn(5, 3, seed=24) + 0.05, _states("RNN", (5, 4), seed=25))


def test_cell_loop_equals_the_layer():
    """Unrolling LSTMCell by hand gives nn.LSTM's output (same weights)."""
    layer = rg.nn.LSTM(3, 4, dtype=rg.float64)
    cell = rg.nn.LSTMCell(3, 4, dtype=rg.float64)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = rg.tensor(randn(5, 2, 3, seed=26))
    out, (_, c_n) = layer(x)
    state = None
    for t in range(5):
        state = cell(x[t], state)
        np.testing.assert_allclose(state[0].detach().numpy(), out[t].detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(state[1].detach().numpy(), c_n[0].detach().numpy(), rtol=1e-13)


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_parameter_names_shapes_and_order_match_torch(kind):
    ours_cls, torch_cls = LAYERS[kind]
    ours = ours_cls(5, 7, num_layers=3, bidirectional=True)
    theirs = torch_cls(5, 7, num_layers=3, bidirectional=True)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert len(ours.all_weights) == 6 and len(ours.all_weights[0]) == 4


@pytest.mark.parametrize("cls", [rg.nn.LSTM, rg.nn.GRUCell])
def test_init_is_uniform_within_one_over_sqrt_hidden(cls):
    module = cls(32, 64)
    bound = 1 / math.sqrt(64)
    values = np.concatenate([p.detach().numpy().ravel() for p in module.parameters()])
    assert np.abs(values).max() <= bound
    assert abs(values.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert all(p.dtype == rg.float32 for p in module.parameters())


def test_repr():
    assert repr(rg.nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)) == \
        "LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)"
    assert repr(rg.nn.RNN(3, 4, nonlinearity="relu", bias=False)) == \
        "RNN(3, 4, nonlinearity='relu', bias=False)"
    assert repr(rg.nn.GRUCell(3, 4)) == "GRUCell(3, 4)"


# ---------------------------------------------------------------- errors
def test_wrong_input_size_names_the_module_input_size_and_shape():
    lstm = rg.nn.LSTM(10, 20, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM\(10, 20, num_layers=2\): expected input of "
                                         r"shape \(seq_len, batch, input_size\) or \(seq_len, "
                                         r"input_size\) with input_size = 10, got input of "
                                         r"shape \(5, 3, 8\)"):
        lstm(rg.randn(5, 3, 8))
    with pytest.raises(ValueError, match=r"GRU\(10, 20, batch_first=True\): expected input of "
                                         r"shape \(batch, seq_len, input_size\) .* got input of "
                                         r"shape \(2, 3, 4, 10\)"):
        rg.nn.GRU(10, 20, batch_first=True)(rg.randn(2, 3, 4, 10))
    with pytest.raises(ValueError, match=r"RNN\(10, 20\): .* got input of shape \(10,\)"):
        rg.nn.RNN(10, 20)(rg.randn(10))
    with pytest.raises(ValueError, match=r"RNN\(10, 20\): expected a sequence of at least one"):
        rg.nn.RNN(10, 20)(rg.randn(0, 3, 10))


def test_wrong_initial_state_names_the_expected_shape():
    lstm = rg.nn.LSTM(10, 20, num_layers=2)
    x = rg.randn(5, 3, 10)
    with pytest.raises(ValueError, match=r"LSTM\(10, 20, num_layers=2\): expected h_0 of shape "
                                         r"\(2, 3, 20\) for input of shape \(5, 3, 10\), got "
                                         r"\(1, 3, 20\)"):
        lstm(x, (rg.zeros(1, 3, 20), rg.zeros(2, 3, 20)))
    with pytest.raises(ValueError, match=r"expected c_0 of shape \(2, 3, 20\)"):
        lstm(x, (rg.zeros(2, 3, 20), rg.zeros(2, 3, 21)))
    with pytest.raises(TypeError, match=r"LSTM\(10, 20, num_layers=2\): hx must be a pair"):
        lstm(x, rg.zeros(2, 3, 20))
    with pytest.raises(ValueError, match=r"GRU\(10, 20, bidirectional=True\): expected h_0 of "
                                         r"shape \(2, 3, 20\)"):
        rg.nn.GRU(10, 20, bidirectional=True)(x, rg.zeros(1, 3, 20))
    with pytest.raises(TypeError, match=r"h_0 dtype .*float64 does not match"):
        rg.nn.GRU(10, 20)(x, rg.zeros(1, 3, 20, dtype=rg.float64))


def test_cell_errors_name_the_module():
    cell = rg.nn.LSTMCell(10, 20)
    with pytest.raises(ValueError, match=r"LSTMCell\(10, 20\): expected input of shape "
                                         r"\(batch, 10\) or \(10,\), got \(3, 11\)"):
        cell(rg.randn(3, 11))
    with pytest.raises(ValueError, match=r"GRUCell\(10, 20\): expected h_0 of shape \(3, 20\)"):
        rg.nn.GRUCell(10, 20)(rg.randn(3, 10), rg.zeros(2, 20))
    with pytest.raises(TypeError, match=r"LSTMCell\(10, 20\): hx must be a pair"):
        cell(rg.randn(3, 10), rg.zeros(3, 20))


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"RNN: nonlinearity must be 'tanh' or 'relu'"):
        rg.nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(NotImplementedError, match=r"LSTM: proj_size"):
        rg.nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match=r"GRU: hidden_size must be an int >= 1, got 0"):
        rg.nn.GRU(3, 0)
    with pytest.raises(ValueError, match=r"LSTM: dropout probability has to be between 0 and 1, "
                                         r"but got 1.5"):
        rg.nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.warns(UserWarning, match=r"dropout=0.5 has no effect with num_layers=1"):
        rg.nn.GRU(3, 4, dropout=0.5)


def test_functional_layer_errors():
    w = [(rg.randn(16, 3), rg.randn(16, 4), None, None)]
    with pytest.raises(ValueError, match=r"lstm: expected 2 weight tuples \(num_layers=1, "
                                         r"directions=2\), got 1"):
        F.lstm(rg.randn(5, 2, 3), None, w, bidirectional=True)
    with pytest.raises(ValueError, match=r"gru: expected weight_ih of shape \(12, 3\) \(3 gate "
                                         r"block\(s\) of hidden size 4\), got \(16, 3\)"):
        F.gru(rg.randn(5, 2, 3), None, w)
    with pytest.raises(TypeError, match=r"rnn: input must be a Tensor"):
        F.rnn(np.zeros((5, 2, 3)), None, [(rg.randn(4, 3), rg.randn(4, 4), None, None)])
