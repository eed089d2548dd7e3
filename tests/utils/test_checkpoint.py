"""retrograd.utils.checkpoint: gradients identical to the plain run, batch norm updated once,
less memory kept, and the errors that name what went wrong."""

import copy

import numpy as np
import pytest

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import nn
from retrograd.autograd.observer import OpObserver, observe
from retrograd.inspect.memory import MemoryLedger
from retrograd.models.gpt import GPT, GPTConfig
from retrograd.profiler import profile
from retrograd.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential


def _mlp(depth=6, width=16):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers).double()


def _grads(model):
    return {name: p.grad.numpy().copy() for name, p in model.named_parameters()}


def _assert_same(a, b, tol=0.0):
    assert a.keys() == b.keys()
    for name in a:
        if tol == 0.0:
            assert np.array_equal(a[name], b[name]), name
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=0, atol=tol, err_msg=name)


def test_mlp_gradients_identical():
    model = _mlp()
    x = rg.randn(8, 16, dtype=rg.float64, requires_grad=True)
    model(x).square().sum().backward()
    plain, plain_x = _grads(model), x.grad.numpy().copy()
    model.zero_grad()
    x.grad = None
    checkpoint_sequential(model, 3, x).square().sum().backward()
    _assert_same(plain, _grads(model))
    assert np.array_equal(plain_x, x.grad.numpy())


def _gpt_loss(model, idx, target, checkpointed):
    x = model.drop(model.wpe(model.wte(idx)))
    for block in model.blocks:
        x = checkpoint(block, x) if checkpointed else block(x)
    logits = model.head(model.ln_f(x))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def test_gpt_with_dropout_gradients_identical():
    config = GPTConfig(vocab_size=11, context=8, n_layer=2, n_head=2, d_model=16, dropout=0.1)
    model = GPT(config).double()
    idx = rg.tensor(np.random.default_rng(0).integers(0, 11, (2, 8)))
    target = rg.tensor(np.random.default_rng(1).integers(0, 11, (2, 8)))
    grads = []
    for checkpointed in (False, True):
        model.zero_grad()
        rg.manual_seed(7)
        loss = _gpt_loss(model, idx, target, checkpointed)
        after_forward = rg.random.get_rng_state()
        loss.backward()
        # the recompute replays the masks and leaves the stream where the forward left it
        assert rg.random.get_rng_state() == after_forward
        grads.append((loss.item(), _grads(model)))
    assert grads[0][0] == grads[1][0]
    _assert_same(grads[0][1], grads[1][1])
    # the reimplemented forward is GPT.forward
    rg.manual_seed(7)
    reference = model(idx)
    rg.manual_seed(7)
    x = model.drop(model.wpe(model.wte(idx)))
    for block in model.blocks:
        x = block(x)
    assert np.array_equal(model.head(model.ln_f(x)).detach().numpy(), reference.detach().numpy())


def test_without_preserved_rng_state_dropout_differs():
    drop = nn.Dropout(0.5)
    x = rg.ones(64, dtype=rg.float64, requires_grad=True)
    checkpoint(lambda t: drop(t) * t, x, preserve_rng_state=False).sum().backward()
    with_new_masks = x.grad.numpy().copy()
    x.grad = None
    rg.manual_seed(0)
    checkpoint(lambda t: drop(t) * t, x).sum().backward()
    rg.manual_seed(0)
    y = drop(x) * x
    x.grad = None
    y.sum().backward()
    assert not np.array_equal(with_new_masks, x.grad.numpy())


def _cnn():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 5 * 5, 3)).double()


def _train(model, checkpointed, steps=5):
    opt = rg.optim.SGD(model.parameters(), lr=0.1)
    data = np.random.default_rng(3)
    for _ in range(steps):
        x = rg.tensor(data.standard_normal((6, 2, 5, 5)))
        target = rg.tensor(data.integers(0, 3, 6))
        opt.zero_grad()
        out = checkpoint_sequential(model, 2, x) if checkpointed else model(x)
        F.cross_entropy(out, target).backward()
        opt.step()
    return model


def test_cnn_with_batch_norm_five_sgd_steps_identical():
    plain = _cnn()
    ours = copy.deepcopy(plain)
    _train(plain, False)
    _train(ours, True)
    _assert_same(_grads(plain), _grads(ours), tol=1e-12)
    state, state_ours = plain.state_dict(), ours.state_dict()
    for name in state:
        np.testing.assert_allclose(state_ours[name].numpy(), state[name].numpy(), rtol=0,
                                   atol=1e-12, err_msg=name)
    assert int(ours[1].num_batches_tracked) == int(plain[1].num_batches_tracked) == 5
    assert int(ours[4].num_batches_tracked) == 5


def test_torch_checkpoint_updates_batch_norm_twice_ours_once():
    torch = pytest.importorskip("torch")
    from torch.utils.checkpoint import checkpoint as torch_checkpoint
    x = np.random.default_rng(0).standard_normal((8, 3, 4, 4))

    def torch_run(checkpointed):
        torch.manual_seed(0)
        bn = torch.nn.BatchNorm2d(3).double()
        xt = torch.tensor(x, requires_grad=True)
        out = torch_checkpoint(bn, xt, use_reentrant=False) if checkpointed else bn(xt)
        out.square().sum().backward()
        return int(bn.num_batches_tracked), bn.running_mean.detach().numpy()

    def our_run(checkpointed):
        bn = nn.BatchNorm2d(3).double()
        xr = rg.tensor(x, requires_grad=True)
        out = checkpoint(bn, xr) if checkpointed else bn(xr)
        out.square().sum().backward()
        return int(bn.num_batches_tracked), bn.running_mean.numpy()

    torch_count, torch_mean = torch_run(True)
    torch_plain_count, torch_plain_mean = torch_run(False)
    assert (torch_plain_count, torch_count) == (1, 2)           # PyTorch counts the batch twice
    assert not np.allclose(torch_mean, torch_plain_mean)         # and moves the mean twice
    count, mean = our_run(True)
    plain_count, plain_mean = our_run(False)
    assert count == plain_count == 1
    assert np.array_equal(mean, plain_mean)
    np.testing.assert_allclose(mean, torch_plain_mean, rtol=0, atol=1e-12)


def test_use_reentrant_true_is_an_error():
    x = rg.randn(2, requires_grad=True)
    with pytest.raises(CheckpointError, match="non-reentrant"):
        checkpoint(lambda t: t * 2, x, use_reentrant=True)
    with pytest.raises(CheckpointError):
        checkpoint_sequential([nn.Tanh()], 1, x, use_reentrant=True)
    assert issubclass(CheckpointError, RuntimeError)
    with pytest.raises(ValueError, match="determinism_check"):
        checkpoint(lambda t: t, x, determinism_check="all")
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential([nn.Tanh()], 2, x)


def _shape_changing():
    calls = []

    def function(t):
        calls.append(1)
        return (t if len(calls) == 1 else t[:1]).exp()
    return function


def test_determinism_check_names_the_op():
    x = rg.randn(2, 3, dtype=rg.float64, requires_grad=True)
    y = checkpoint(_shape_changing(), x)
    with pytest.raises(CheckpointError, match=r"saved by Exp.*shape \(1, 3\).*\(2, 3\)"):
        y.sum().backward()


def test_determinism_check_none_skips_the_comparison():
    x = rg.randn(2, 3, dtype=rg.float64, requires_grad=True)
    checkpoint(_shape_changing(), x, determinism_check="none").sum().backward()
    # unchecked, the (1, 3) recomputed output broadcasts: a silently wrong gradient
    wrong = x.grad.numpy().copy()
    assert not np.allclose(wrong, np.exp(x.detach().numpy()))
    assert np.allclose(wrong, np.exp(x.detach().numpy()[:1]))


def test_inputs_without_grad_parameters_inside():
    model = _mlp(depth=3)
    x = rg.randn(4, 16, dtype=rg.float64)
    model(x).sum().backward()
    plain = _grads(model)
    model.zero_grad()
    out = checkpoint(model, x)
    assert out.requires_grad
    out.sum().backward()
    _assert_same(plain, _grads(model))


def test_autograd_grad_and_retain_graph():
    w = rg.randn(3, 3, dtype=rg.float64, requires_grad=True)
    x = rg.randn(2, 3, dtype=rg.float64, requires_grad=True)

    def f(t):
        return (t @ w).tanh().exp()
    (gx, gw) = rg.autograd.grad(f(x).sum(), (x, w))
    y = checkpoint(f, x)
    (cx, cw) = rg.autograd.grad(y.sum(), (x, w), retain_graph=True)
    assert np.array_equal(gx.numpy(), cx.numpy()) and np.array_equal(gw.numpy(), cw.numpy())
    (cx2, _) = rg.autograd.grad(y.sum(), (x, w))   # recomputed again for a second backward
    assert np.array_equal(cx2.numpy(), gx.numpy())
    assert x.grad is None and w.grad is None


def test_nested_outputs_and_keyword_arguments():
    x = rg.randn(3, dtype=rg.float64, requires_grad=True)

    def f(t, scale=1.0):
        return t.exp() * scale, ((t * t).sin(), [t.tanh()], "label")
    a, (b, (c,), label) = checkpoint(f, x, scale=2.0)
    assert label == "label"
    (a.sum() + b.sum() + c.sum()).backward()
    got = x.grad.numpy().copy()
    x.grad = None
    a, (b, (c,), _) = f(x, scale=2.0)
    (a.sum() + b.sum() + c.sum()).backward()
    assert np.array_equal(got, x.grad.numpy())


def test_under_no_grad_just_runs():
    x = rg.randn(3, requires_grad=True)
    with rg.no_grad():
        y = checkpoint(lambda t: t.exp(), x)
    assert not y.requires_grad
    np.testing.assert_allclose(y.numpy(), np.exp(x.detach().numpy()))


def test_context_fn_wraps_forward_and_recompute():
    entered = []

    class Mark:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            entered.append(self.name)

        def __exit__(self, *exc):
            return False
    x = rg.randn(3, requires_grad=True)
    y = checkpoint(lambda t: t.exp(), x, context_fn=lambda: (Mark("forward"), Mark("recompute")))
    assert entered == ["forward"]
    y.sum().backward()
    assert entered == ["forward", "recompute"]


def test_saved_activation_bytes_drop():
    model = _mlp(depth=8, width=64)
    x = rg.randn(32, 64, dtype=rg.float64, requires_grad=True)
    with MemoryLedger(model) as plain:
        model(x).sum().backward()
    with MemoryLedger(model) as whole:
        checkpoint(model, x).sum().backward()
    with MemoryLedger(model) as segmented:
        checkpoint_sequential(model, 4, x).sum().backward()
    activation = 32 * 64 * 8
    # plain: x and every Tanh output (the Linears save their inputs: x, then the Tanh outputs)
    assert plain.report().saved_bytes == 9 * activation
    # the whole model checkpointed: only its input x is kept
    assert whole.report().saved_bytes == activation
    # 4 segments of 4 layers: the inputs of the 3 checkpointed ones, then the last segment's
    # own activations (its input and the outputs of its 2 Tanh layers)
    assert segmented.report().saved_bytes == 3 * activation + 3 * activation


def test_recompute_region_is_observed():
    class Regions(OpObserver):
        def __init__(self):
            self.seen = []

        def begin_region(self, name, phase):
            self.seen.append((name, phase))
    model = _mlp(depth=2)
    x = rg.randn(4, 16, dtype=rg.float64)
    with observe(Regions()) as regions:
        checkpoint(model, x).sum().backward()
    assert regions.seen == [("checkpoint", "recompute")]
    with profile() as prof:
        checkpoint(model, x).sum().backward()
    phases = {(r.key, r.phase) for r in prof.key_averages()}
    assert ("Linear", "recompute") in phases and ("Linear", "forward") in phases


def test_batch_norm_recompute_flag_functional():
    mean, var = rg.zeros(2, dtype=rg.float64), rg.ones(2, dtype=rg.float64)
    x = rg.randn(4, 2, dtype=rg.float64, requires_grad=True)
    y = checkpoint(lambda t: F.batch_norm(t, mean, var, training=True), x)
    moved = mean.numpy().copy()
    y.square().sum().backward()
    assert np.array_equal(mean.numpy(), moved) and not np.array_equal(moved, np.zeros(2))
    assert rg.autograd.grad_mode.STATE.recomputing is False


# ------------------------------------------------------------- value-checked recompute
def _noisy(tensor_like):
    """A function that is not deterministic on purpose: it draws from NumPy's own generator,
    which checkpoint's RNG replay does not cover."""
    rng = np.random.default_rng()

    def function(t):
        noise = rg.tensor(rng.standard_normal(t.shape))
        return (t.tanh() * noise).exp()
    return function


def test_check_values_names_the_op_of_a_non_deterministic_function():
    x = rg.randn(3, 4, dtype=rg.float64, requires_grad=True)
    y = checkpoint(_noisy(x), x, check="values")
    # the first value that differs: the noise Mul saved (the Tanh before it is deterministic)
    with pytest.raises(CheckpointError, match=r"saved value 1 .*saved by Mul.*not deterministic"):
        y.sum().backward()


def test_check_values_is_also_a_determinism_check_and_names_the_module():
    layer = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).double()
    x = rg.randn(3, 4, dtype=rg.float64, requires_grad=True)
    y = checkpoint(layer, x, determinism_check="values", preserve_rng_state=False)
    with pytest.raises(CheckpointError, match=r"saved by Dropout in module '1'"):
        y.sum().backward()


def test_metadata_check_misses_what_the_values_check_catches():
    x = rg.randn(3, 4, dtype=rg.float64, requires_grad=True)
    checkpoint(_noisy(x), x).sum().backward()        # same shapes: the default check passes
    assert x.grad is not None


def test_deterministic_functions_pass_the_values_check_with_identical_gradients():
    model = _mlp(depth=4)
    x = rg.randn(8, 16, dtype=rg.float64, requires_grad=True)
    model(x).square().sum().backward()
    plain = _grads(model)
    model.zero_grad()
    checkpoint(model, x, check="values").square().sum().backward()
    _assert_same(plain, _grads(model))


def test_check_values_must_be_a_known_mode():
    x = rg.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"check must be one of .*'values'"):
        checkpoint(lambda t: t * 2, x, check="bytes")


# ------------------------------------------------------------------------- policies
def _gpt_grads(kwargs, steps=2):
    rg.manual_seed(0)
    model = GPT(vocab_size=13, context=8, n_layer=2, n_head=2, d_model=16, dropout=0.2).double()
    if kwargs is not None:
        model.gradient_checkpointing_enable(kwargs)
    ids = rg.tensor(np.random.default_rng(0).integers(0, 13, size=(3, 8)))
    for _ in range(steps):
        model.zero_grad()
        F.cross_entropy(model(ids).reshape(-1, 13), ids.reshape(-1)).backward()
    return _grads(model)


def test_policy_gradients_identical_and_kept_ops_not_run_again():
    plain = _gpt_grads(None)
    for policy in (["linear"], ["Linear", "scaled_dot_product_attention", "Dropout"],
                   lambda op, path: op == "Gelu" and path.endswith("act")):
        _assert_same(plain, _gpt_grads({"policy": policy, "check": "values"}))

    class Ops(OpObserver):
        def __init__(self):
            self.recomputed, self.recomputing = [], False

        def begin_region(self, name, phase):
            self.recomputing = phase == "recompute"

        def end_region(self, name, phase):
            self.recomputing = False

        def after_forward(self, op, node, inputs, outputs, module_path):
            if self.recomputing and not getattr(type(node), "replays_cached_output", False):
                self.recomputed.append(op.__name__)
    x = rg.randn(4, 8, dtype=rg.float64, requires_grad=True)
    block = nn.Sequential(nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 8)).double()
    with observe(Ops()) as ops:
        checkpoint(block, x, policy=["linear"]).sum().backward()
    assert ops.recomputed == ["Gelu"]


def test_policy_errors_name_the_op():
    x = rg.randn(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"unknown op 'convolution'.*Linear"):
        checkpoint(lambda t: t * 2, x, policy=["convolution"])
    with pytest.raises(ValueError, match=r"Permute, a view"):
        checkpoint(lambda t: t * 2, x, policy=["permute"])
    with pytest.raises(TypeError, match="policy must be a list of op names"):
        checkpoint(lambda t: t * 2, x, policy="linear")


# ------------------------------------------------------------------------ memory
def test_ctx_attribute_arrays_are_dropped_and_recomputed():
    # layer norm keeps its inverse std, dropout its mask, attention its probabilities as
    # ctx attributes: checkpointing drops those too
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
    x = rg.randn(2, 5, 16, requires_grad=True)
    with MemoryLedger(layer) as ledger:
        checkpoint(layer, x).sum().backward()
    report = ledger.report()
    assert report.saved_bytes == x.detach().numpy().nbytes   # only the input is kept
    assert {"Dropout", "LayerNorm", "ScaledDotProductAttention"} <= {v.op for v in
                                                                       report.dropped}


def test_recomputed_values_are_freed_without_the_garbage_collector():
    import gc
    import weakref
    layer = nn.Sequential(nn.Linear(8, 8), nn.Tanh())
    x = rg.randn(4, 8, requires_grad=True)
    seen = []

    class Outputs(OpObserver):
        recomputing = False

        def begin_region(self, name, phase):
            self.recomputing = True

        def after_forward(self, op, node, inputs, outputs, module_path):
            if self.recomputing:
                seen.append(weakref.ref(outputs._data))
    gc.disable()
    try:
        with observe(Outputs()):
            y = checkpoint(layer, x)
            y.sum().backward()
        del y
        assert seen and all(ref() is None for ref in seen)
    finally:
        gc.enable()


# ------------------------------------------------------------------------ bad input
def test_bad_input_gets_clear_errors():
    x = rg.randn(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"segments must be an int between 1 and the number "
                                         r"of functions \(2\), got 3"):
        checkpoint_sequential([nn.Tanh(), nn.ReLU()], 3, x)
    with pytest.raises(TypeError, match=r"checkpoint: function must be callable.*int"):
        checkpoint(3, x)
    with pytest.raises(TypeError, match=r"functions\[1\] is not callable \(got str\)"):
        checkpoint_sequential([nn.Tanh(), "relu"], 1, x)
    with pytest.raises(CheckpointError, match=r"returned float, which holds no Tensor"):
        checkpoint(lambda t: float(t.sum().item()), x)
    with pytest.raises(CheckpointError, match=r"returned tuple, which holds no Tensor"):
        checkpoint(lambda t: (1, "a"), x)


def test_segments_group_blocks_and_bad_segments_are_refused():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                               batch_first=True), 4).double()
    x = rg.randn(2, 3, 8, dtype=rg.float64, requires_grad=True)
    encoder(x).sum().backward()
    plain = _grads(encoder)
    with MemoryLedger(encoder) as whole:
        encoder.zero_grad()
        encoder.gradient_checkpointing_enable(segments=[(0, 2, True), (2, 3, True),
                                                        (3, 4, False)])
        encoder(x).sum().backward()
    _assert_same(plain, _grads(encoder))
    calls = whole.report().checkpoint_calls
    assert [c.segment for c in calls] == [0, 1] and all(c.owner is encoder for c in calls)
    encoder.gradient_checkpointing_enable(segments=[(0, 2, True), (3, 4, True)])
    with pytest.raises(CheckpointError, match=r"do not cover its 4 blocks in order"):
        encoder(x)


def test_create_graph_through_a_checkpoint_gives_the_plain_second_derivatives():
    w = rg.randn(3, 3, dtype=rg.float64, requires_grad=True)

    def f(t):
        return ((t @ w).tanh() * t).exp()

    def second(checkpointed):
        x = rg.tensor(np.linspace(-1.0, 1.0, 6).reshape(2, 3), requires_grad=True)
        y = checkpoint(f, x) if checkpointed else f(x)
        (gx,) = rg.autograd.grad(y.sum(), (x,), create_graph=True)
        w.grad = None
        gx.square().sum().backward()
        return gx.detach().numpy().copy(), x.grad.numpy().copy(), w.grad.numpy().copy()
    for plain, checkpointed in zip(second(False), second(True)):
        assert np.array_equal(plain, checkpointed)


def test_nested_checkpoints_recompute_inside_the_recompute():
    inner = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Dropout(0.3)).double()
    outer = nn.Linear(8, 8).double()

    def f(t):
        return outer(checkpoint(inner, t.exp())).sin()
    x = rg.randn(4, 8, dtype=rg.float64, requires_grad=True)
    rg.manual_seed(3)
    f(x).sum().backward()
    plain = (x.grad.numpy().copy(), _grads(inner), _grads(outer))
    for module in (inner, outer):
        module.zero_grad()
    x.grad = None
    rg.manual_seed(3)
    checkpoint(f, x, check="values").sum().backward()
    assert np.array_equal(plain[0], x.grad.numpy())
    _assert_same(plain[1], _grads(inner))
    _assert_same(plain[2], _grads(outer))
