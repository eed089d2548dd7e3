"""retrograd.inspect.precision: every number against a direct NumPy computation."""

import copy

import ml_dtypes
import numpy as np
import pytest

import retrograd as rg
from retrograd.inspect.precision import (dtype_limits, gradient_underflow, precision_ab,
                                         relative_error, ulp, update_stagnation)
from retrograd.nn import functional as F

BF16 = ml_dtypes.bfloat16


def log_uniform(rng, shape, low, high):
    """Random signed magnitudes spread evenly over powers of two from 2**low to 2**high."""
    return np.sign(rng.standard_normal(shape)) * 2.0 ** rng.uniform(low, high, shape)


@pytest.fixture
def grads():
    rng = np.random.default_rng(0)
    first = log_uniform(rng, (40, 30), -45, 20)
    first[0, :5] = 0.0
    return {"first": first, "second": log_uniform(rng, (500,), -30, 0).astype(np.float32)}


def direct_underflow(g, scale, dtype):
    scaled = np.abs(g.astype(np.float64)) * scale
    with np.errstate(over="ignore"):
        cast = scaled.astype(dtype).astype(np.float64)
    tiny = float(ml_dtypes.finfo(dtype).smallest_normal)
    return (int(np.sum((cast == 0) & (g != 0))), int(np.sum((cast != 0) & (cast < tiny))),
            int(np.sum(np.isinf(cast))), int(np.sum(g == 0)))


# --------------------------------------------------------------------------- float16 facts

def test_dtype_limits_are_the_float16_and_bfloat16_facts():
    half = dtype_limits(rg.float16)
    assert (half.smallest_subnormal, half.smallest_normal, half.max,
            half.significant_bits) == (2.0**-24, 2.0**-14, 65504.0, 11)
    bf = dtype_limits(rg.bfloat16)
    assert bf.significant_bits == 8
    assert bf.smallest_normal == float(np.finfo(np.float32).tiny)
    assert bf.max == float(np.float32(BF16(3.3895e38)))


# ------------------------------------------------------------------------ gradient underflow

@pytest.mark.parametrize("scale", [1.0, 2.0**10, 2.0**16])
@pytest.mark.parametrize("dtype", [np.float16, BF16])
def test_underflow_counts_match_a_direct_cast(grads, scale, dtype):
    report = gradient_underflow(grads, scale=scale, dtype=dtype)
    for row in report.rows:
        flushed, subnormal, overflow, zeros = direct_underflow(grads[row.name], scale, dtype)
        assert (row.flushed, row.subnormal, row.overflow, row.zeros) == (
            flushed, subnormal, overflow, zeros)
        assert row.count == grads[row.name].size
    assert report.total.flushed == sum(r.flushed for r in report.rows)
    assert report.total.count == 1700


def test_float16_flush_matches_the_naive_cast_to_zero(grads):
    g = grads["first"]
    report = gradient_underflow({"g": g}, scale=8.0)
    with np.errstate(over="ignore"):
        cast = (g * 8.0).astype(np.float16)
    naive = np.sum((cast == 0) & (g != 0))
    assert report.rows[0].flushed == naive > 0
    fractions = report.fractions(report.rows[0])
    assert fractions["flushed"] == naive / g.size
    assert fractions["overflow"] == np.sum(np.isinf(cast)) / g.size


def test_flush_fraction_at_other_scales(grads):
    report = gradient_underflow(grads)
    everything = np.concatenate([g.ravel().astype(np.float64) for g in grads.values()])
    for scale in (1.0, 2.0**8, 2.0**24, 1e-3):
        with np.errstate(over="ignore"):
            cast = (everything * scale).astype(np.float16)
        expected = np.sum((cast == 0) & (everything != 0))
        assert report.flush_fraction(scale) == expected / everything.size
    assert report.flush_fraction() == report.flush_fraction(1.0)
    assert report.flush_fraction(2.0**24) < report.flush_fraction(1.0)


def test_underflow_of_a_model_after_backward():
    rg.manual_seed(0)
    model = rg.nn.Sequential(rg.nn.Linear(6, 5), rg.nn.ReLU(), rg.nn.Linear(5, 2))
    (model(rg.randn(3, 6)).sum() * 1e-6).backward()
    report = gradient_underflow(model, scale=1.0)
    names = [name for name, _ in model.named_parameters()]
    assert [r.name for r in report.rows] == names
    for row, (_, p) in zip(report.rows, model.named_parameters()):
        assert row[1:] == (p.grad.numel(), *np.roll(direct_underflow(p.grad.numpy(), 1.0,
                                                                     np.float16), 1))


def test_underflow_table_and_lines(grads):
    report = gradient_underflow(grads, scale=2.0**8)
    text = str(report)
    assert "flush to 0" in text and "first" in text and "total" in text
    lines = report.limit_lines()
    assert lines == {"smallest subnormal": -24 - 8, "smallest normal": -14 - 8,
                     "max": pytest.approx(np.log2(65504.0) - 8)}


def test_underflow_plot_decodes(grads, tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    pytest.importorskip("matplotlib")
    report = gradient_underflow(grads, scale=2.0**8)
    for path in (tmp_path / "underflow.png", "/tmp/precision_underflow.png"):
        assert report.plot(path) is True
        with PIL.open(path) as image:
            image.load()
            pixels = np.asarray(image.convert("L"))
        assert image.size[0] > 400 and image.size[1] > 300
        assert pixels.std() > 10                       # not a blank page


def test_underflow_bad_input_names_the_tool():
    with pytest.raises(TypeError, match="gradient_underflow: model_or_named_grads"):
        gradient_underflow(3)
    with pytest.raises(TypeError, match="gradient_underflow: scale must be a positive"):
        gradient_underflow({"w": np.ones(2)}, scale=0)
    with pytest.raises(TypeError, match="gradient_underflow: dtype must be a floating"):
        gradient_underflow({"w": np.ones(2)}, dtype=rg.int32)
    with pytest.raises(TypeError, match="gradient_underflow: w must be a floating-point"):
        gradient_underflow({"w": [1.0]})
    with pytest.raises(ValueError, match="gradient_underflow: no gradients"):
        gradient_underflow(rg.nn.Linear(2, 2))


# ------------------------------------------------------------------------- update stagnation

def test_ulp_matches_spacing_and_the_bfloat16_formula():
    rng = np.random.default_rng(1)
    w = log_uniform(rng, (1000,), -12, 12)
    half = w.astype(np.float16)
    assert np.array_equal(ulp(half, rg.float16), np.spacing(np.abs(half)).astype(np.float64))
    stored = np.abs(w.astype(BF16).astype(np.float64))
    assert np.array_equal(ulp(w, rg.bfloat16), 2.0 ** (np.floor(np.log2(stored)) - 7))
    assert ulp(np.array([0.0]), rg.bfloat16)[0] == dtype_limits(rg.bfloat16).smallest_subnormal


@pytest.mark.parametrize("dtype", [BF16, np.float16])
def test_stagnation_matches_the_direct_rounding_check(dtype):
    rng = np.random.default_rng(2)
    w = log_uniform(rng, (4000,), -6, 6).astype(dtype).astype(np.float64)
    w[:200] = 2.0 ** rng.integers(-5, 5, 200) * np.sign(rng.standard_normal(200))  # binades
    dw = log_uniform(rng, w.shape, -20, 2)
    dw[-100:] = 0.0
    report = update_stagnation({"w": w}, {"w": dw}, dtype=dtype)
    rounded_back = (w + dw).astype(dtype).astype(np.float64) == w
    lost = int(np.sum(rounded_back & (dw != 0)))
    row = report.rows[0]
    assert (row.count, row.zeros, row.lost) == (4000, 100, lost)
    assert 0.2 < row.fraction_lost == lost / 4000 < 0.9
    assert report.total.lost == lost


def test_stagnation_from_a_learning_rate_and_from_an_optimizer_step():
    rg.manual_seed(0)
    model = rg.nn.Linear(8, 4)
    F.mse_loss(model(rg.randn(5, 8)), rg.randn(5, 4)).backward()
    lr = 1e-3
    from_lr = update_stagnation(model, lr)
    by_hand = {n: -lr * p.grad.numpy() for n, p in model.named_parameters()}
    assert [r.lost for r in from_lr.rows] == [r.lost for r in update_stagnation(model,
                                                                                 by_hand).rows]
    before = {n: p.detach().numpy().astype(np.float64) for n, p in model.named_parameters()}
    optimizer = rg.optim.SGD(model.parameters(), lr=lr)
    stepped = update_stagnation(optimizer, optimizer.step)
    for row, (name, p) in zip(stepped.rows, model.named_parameters()):
        dw = p.detach().numpy().astype(np.float64) - before[name]
        stored = before[name].astype(BF16).astype(np.float64)    # the weight kept in bfloat16
        assert row.lost == np.sum(((stored + dw).astype(BF16) == stored) & (dw != 0)) > 0
    assert "lost share" in str(stepped)


def test_stagnation_bad_input():
    with pytest.raises(TypeError, match="update_stagnation: optimizer_or_params"):
        update_stagnation("weights", 0.1)
    with pytest.raises(ValueError, match="update_stagnation: .* has no gradient"):
        update_stagnation(rg.nn.Linear(2, 2), 0.1)
    with pytest.raises(ValueError, match="update_stagnation: got 1 updates for 2 weights"):
        update_stagnation(list(rg.nn.Linear(2, 2).parameters()), [np.zeros((2, 2))])
    with pytest.raises(ValueError, match="shape"):
        update_stagnation({"w": np.ones(3)}, {"w": np.ones(2)})


def _stagnating_setup():
    """A linear layer with weights near 1 and updates of about 1e-4: below bfloat16's half
    ulp at 1 (2**-9 ~ 2e-3), far above float32's."""
    model = rg.nn.Linear(8, 1, bias=False)
    with rg.no_grad():
        model.weight.copy_(rg.tensor(np.linspace(1.0, 1.5, 8)[None, :]))
    x, y = rg.ones(4, 8) * 0.1, rg.zeros(4, 1)
    return model, x, y


def test_bfloat16_weights_stagnate_while_float32_master_weights_move():
    lr, steps = 1e-4, 40
    model, x, y = _stagnating_setup()
    low = copy.deepcopy(model).to(rg.bfloat16)
    start = low.weight.detach().numpy().copy()
    optimizer = rg.optim.SGD(low.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(low(x.to(rg.bfloat16)), y.to(rg.bfloat16)).backward()
        if _ == 0:
            assert update_stagnation(low, lr).total.fraction_lost == 1.0
        optimizer.step()
    assert np.array_equal(low.weight.detach().numpy(), start)      # stagnated: all updates lost

    master = copy.deepcopy(model)                              # float32 master weights
    optimizer = rg.optim.SGD(master.parameters(), lr=lr)
    for _ in range(steps):
        copy_ = copy.deepcopy(master).to(rg.bfloat16)         # the bfloat16 copy computes
        F.mse_loss(copy_(x.to(rg.bfloat16)), y.to(rg.bfloat16)).backward()
        master.weight.grad = copy_.weight.grad.float()
        optimizer.step()
    moved = master.weight.detach().numpy() - model.weight.detach().numpy()
    assert np.all(moved < -lr * steps * 0.05)                  # every weight went down
    assert not np.array_equal(master.weight.detach().numpy().astype(BF16), start)   # the copy too


# ----------------------------------------------------------------------------- precision A/B

def _mlp():
    rg.manual_seed(0)
    return rg.models.MLP(12, hidden=(16,), num_classes=3)


def _mlp_batch():
    rng = np.random.default_rng(3)
    return rg.tensor(rng.standard_normal((6, 12)).astype(np.float32)), \
        rg.tensor(rng.integers(0, 3, 6))


def test_precision_ab_on_an_mlp_matches_a_direct_run():
    x, y = _mlp_batch()
    report = precision_ab(_mlp, x, y)
    assert report.dtypes == ["float64", "float32", "bfloat16", "float16"]
    assert report.failures == {}
    model64 = _mlp().to(rg.float64)
    runs = {}
    for d in (rg.float64, rg.float32, rg.bfloat16):
        model = copy.deepcopy(model64).to(d)
        out = model(x.to(d))
        F.cross_entropy(out, y).backward()
        runs[d.name] = (out.detach().numpy().astype(np.float64),
                        {n: p.grad.numpy().astype(np.float64)
                         for n, p in model.named_parameters()})
    last = [op for op in report.ops if op.op == "Linear"][-1]
    for d in ("float32", "bfloat16"):
        assert last.errors[d] == pytest.approx(relative_error(runs[d][0], runs["float64"][0]))
        for name, errors in report.parameters.items():
            assert errors[d] == pytest.approx(relative_error(runs[d][1][name],
                                                             runs["float64"][1][name]))
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == \
        pytest.approx(1 / np.sqrt(2))


def _worst(report, dtype):
    values = [e[dtype] for e in report.parameters.values()] + [report.worst(dtype).errors[dtype]]
    return max(values)


def _check_error_orders(report):
    assert all(op.errors["float64"] == 0.0 for op in report.ops if op.errors["float64"] is not
               None)
    assert 1e-9 < _worst(report, "float32") < 3e-6        # 0 would mean it stayed float64
    assert 1e-3 < _worst(report, "bfloat16") < 1e-1
    assert 5e-5 < _worst(report, "float16") < 1e-2
    assert _worst(report, "float16") < _worst(report, "bfloat16")


def test_precision_ab_error_orders_on_an_mlp():
    x, y = _mlp_batch()
    report = precision_ab(_mlp, x, y)
    _check_error_orders(report)
    assert [(op.op, op.module_path) for op in report.ops] == [
        ("Linear", "layers.1"), ("Relu", "layers.2"), ("Linear", "layers.3"),
        ("CrossEntropy", None)]


def test_precision_ab_on_a_small_gpt():
    rng = np.random.default_rng(4)
    ids, targets = (rg.tensor(rng.integers(0, 11, (2, 8))) for _ in range(2))

    def build():
        rg.manual_seed(0)
        return rg.models.GPT(vocab_size=11, context=8, n_layer=1, n_head=2, d_model=16)

    report = precision_ab(build, ids, targets)
    assert report.failures == {}
    _check_error_orders(report)
    names = [op.op for op in report.ops]
    assert "ScaledDotProductAttention" in names and names[-1] == "CrossEntropy"
    attention = report.ops[names.index("ScaledDotProductAttention")]
    assert attention.module_path == "blocks.0.attn"
    assert attention.dtypes["bfloat16"] == "float32"          # computed in float32, flagged
    assert attention in report.drifted()["bfloat16"]
    text = str(report)
    assert "blocks.0.attn.qkv.weight" in text and "worst op" in text and "*" in text
    assert report.summary().count("\n") == 3


class _Branching(rg.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = rg.nn.Parameter(rg.ones(3))

    def forward(self, x):
        return (x * self.scale).exp() if x.dtype == rg.float16 else x * self.scale


class _NoFloat16(rg.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = rg.nn.Parameter(rg.ones(3))

    def forward(self, x):
        if x.dtype == rg.float16:
            raise TypeError("no float16 kernel")
        return x * self.scale


def test_precision_ab_refuses_different_op_sequences():
    with pytest.raises(RuntimeError, match="precision_ab: .* ops in float16 but 2 in float64"):
        precision_ab(_Branching, rg.ones(3))


def test_precision_ab_reports_a_dtype_that_fails():
    report = precision_ab(_NoFloat16, rg.ones(2, 3))
    assert list(report.failures) == ["float16"]
    op, error = report.failures["float16"]
    assert "before the first op" in op and "no float16 kernel" in error
    assert report.ops[0].errors["float16"] is None and report.ops[0].errors["float32"] == 0
    assert "float16: failed" in report.summary()


def test_precision_ab_bad_input():
    with pytest.raises(TypeError, match="precision_ab: build_model must be a callable"):
        precision_ab(rg.nn.Linear(2, 2), rg.ones(2))
    with pytest.raises(TypeError, match="precision_ab: build_model\\(\\) must return a model"):
        precision_ab(lambda: 3, rg.ones(2))
    with pytest.raises(TypeError, match="precision_ab: dtype must be a floating"):
        precision_ab(_mlp, rg.ones(2), dtypes=(rg.int64,))
