"""GradScaler: PyTorch's torch.amp.GradScaler (on the CPU) as the oracle for the scales, the
skipped steps and the parameters; float16 underflow with and without loss scaling; the step
records; every bad argument; the state dict through retrograd's serialization."""

import os
from collections import namedtuple

import numpy as np
import pytest

import retrograd as rg
from retrograd.amp.grad_scaler import GradScaler, StepRecord
from retrograd.utils.serialization import load, load_checkpoint, save, save_checkpoint

torch = pytest.importorskip("torch")

# c: a clean iteration, o: one whose gradients overflow (an inf put into a gradient)
PATTERN = "ccccoccco" + "occcccc"
LR = 0.1


# ---------------------------------------------------------------------- helpers
def _data(seed=0):
    rng = np.random.default_rng(seed)
    return {"w": rng.standard_normal((2, 3)), "b": rng.standard_normal(2),
            "x": rng.standard_normal((5, 3)), "t": rng.standard_normal((5, 2))}


def _our_model(data):
    model = rg.nn.Linear(3, 2).double()
    model.weight.data = data["w"].copy()
    model.bias.data = data["b"].copy()
    return model


def _torch_model(data):
    model = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(data["w"]))
        model.bias.copy_(torch.from_numpy(data["b"]))
    return model


def _our_loss(model, data):
    return ((model(rg.tensor(data["x"])) - rg.tensor(data["t"])) ** 2).mean()


def _torch_loss(model, data):
    return ((model(torch.from_numpy(data["x"])) - torch.from_numpy(data["t"])) ** 2).mean()


def _run_ours(pattern, data, **options):
    model = _our_model(data)
    opt = rg.optim.SGD(model.parameters(), lr=LR)
    scaler = GradScaler(model=model, **options)
    scales = []
    for kind in pattern:
        opt.zero_grad()
        scaler.scale(_our_loss(model, data)).backward()
        if kind == "o":
            model.weight.grad.numpy()[0, 0] = np.inf
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, model, scaler


def _run_torch(pattern, data, **options):
    model = _torch_model(data)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    scaler = torch.amp.GradScaler("cpu", **options)
    scales = []
    for kind in pattern:
        opt.zero_grad()
        scaler.scale(_torch_loss(model, data)).backward()
        if kind == "o":
            model.weight.grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, model, scaler


def _grads(params):
    return [p.grad.numpy().copy() for p in params]


def _values(params):
    return [p.detach().numpy().copy() for p in params]


def _one_step_setup(seed=0, **options):
    """A float32 model, its SGD and a scaler whose gradients are filled (scaled)."""
    rg.manual_seed(seed)
    model = rg.nn.Linear(3, 2)
    opt = rg.optim.SGD(model.parameters(), lr=LR)
    scaler = GradScaler(**options)
    x = rg.tensor(np.random.default_rng(seed).standard_normal((4, 3)), dtype=rg.float32)
    scaler.scale((model(x) ** 2).mean()).backward()
    return model, opt, scaler


# ---------------------------------------------------------------------- PyTorch as oracle
def test_torch_grad_scaler_works_on_cpu():
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    scaler.scale((w * w).sum()).backward()
    assert w.grad.tolist() == [16.0, 16.0]


def test_scales_and_parameters_match_torch():
    data = _data()
    options = {"init_scale": 2.0**10, "growth_interval": 3}
    ours, model, scaler = _run_ours(PATTERN, data, **options)
    theirs, torch_model, torch_scaler = _run_torch(PATTERN, data, **options)
    assert ours == theirs
    assert scaler.state_dict() == torch_scaler.state_dict()
    np.testing.assert_allclose(model.weight.detach().numpy(),
                               torch_model.weight.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.bias.detach().numpy(), torch_model.bias.detach().numpy(),
                               rtol=1e-12, atol=1e-15)
    assert [r.skipped for r in scaler.history] == [kind == "o" for kind in PATTERN]
    assert scaler.skipped_steps == PATTERN.count("o")


def test_scales_match_torch_with_float32_rounding_of_odd_factors():
    data = _data(1)
    options = {"init_scale": 1000.0, "growth_factor": 3.0, "backoff_factor": 0.3,
               "growth_interval": 2}
    ours, _, scaler = _run_ours(PATTERN, data, **options)
    theirs, _, torch_scaler = _run_torch(PATTERN, data, **options)
    assert ours == theirs
    assert scaler.state_dict() == torch_scaler.state_dict()


def test_records_say_what_each_step_did():
    _, _, scaler = _run_ours("cco", _data(), init_scale=4.0, growth_interval=2)
    assert [(r.step, r.skipped, r.scale, r.new_scale) for r in scaler.history] == [
        (0, False, 4.0, 4.0), (1, False, 4.0, 8.0), (2, True, 8.0, 4.0)]
    assert scaler.history[2].nonfinite == ["weight"]
    assert all(isinstance(r, StepRecord) and r.optimizer == "SGD#0" for r in scaler.history)


def test_update_with_new_scale_matches_torch():
    ours = GradScaler(init_scale=8.0)
    theirs = torch.amp.GradScaler("cpu", init_scale=8.0)
    theirs.scale(torch.ones(1))  # torch makes its scale on first use
    for new_scale in (0.1, 1000.0):
        ours.update(new_scale=new_scale)
        theirs.update(new_scale=new_scale)
        assert ours.get_scale() == theirs.get_scale()
    ours.update(new_scale=rg.tensor([3.0]))
    assert ours.get_scale() == 3.0


def test_two_optimizers_each_skip_on_their_own_inf_like_torch():
    data_a, data_b = _data(2), _data(3)
    ours_a, ours_b = _our_model(data_a), _our_model(data_b)
    torch_a, torch_b = _torch_model(data_a), _torch_model(data_b)
    opts = [rg.optim.SGD(m.parameters(), lr=LR) for m in (ours_a, ours_b)]
    torch_opts = [torch.optim.SGD(m.parameters(), lr=LR) for m in (torch_a, torch_b)]
    scaler = GradScaler(init_scale=16.0)
    torch_scaler = torch.amp.GradScaler("cpu", init_scale=16.0)

    (scaler.scale(_our_loss(ours_a, data_a) + _our_loss(ours_b, data_b))).backward()
    (torch_scaler.scale(_torch_loss(torch_a, data_a) + _torch_loss(torch_b, data_b))).backward()
    ours_b.bias.grad.numpy()[1] = np.nan
    torch_b.bias.grad[1] = float("nan")
    before_b = _values(ours_b.parameters())
    records = [scaler.step(opt) for opt in opts]
    for opt in torch_opts:
        torch_scaler.step(opt)
    scaler.update()
    torch_scaler.update()

    assert [r.skipped for r in records] == [False, True]
    assert records[1].nonfinite == ["param_groups[0][1] (2)"]
    assert [r.optimizer for r in records] == ["SGD#0", "SGD#1"]
    assert {r.step for r in records} == {0} and {r.new_scale for r in records} == {8.0}
    assert scaler.get_scale() == torch_scaler.get_scale() == 8.0
    for ours, theirs in ((ours_a, torch_a), (ours_b, torch_b)):
        for p, q in zip(ours.parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12,
                                       atol=1e-15)
    for p, value in zip(ours_b.parameters(), before_b):
        np.testing.assert_array_equal(p.detach().numpy(), value)


def test_loads_torch_state_dict_and_torch_loads_ours():
    _, _, torch_scaler = _run_torch("ccoc", _data(), init_scale=64.0, growth_interval=5)
    scaler = GradScaler()
    scaler.load_state_dict(torch_scaler.state_dict())
    assert scaler.state_dict() == torch_scaler.state_dict()
    fresh_torch = torch.amp.GradScaler("cpu")
    fresh_torch.load_state_dict(scaler.state_dict())
    assert fresh_torch.state_dict() == scaler.state_dict()


# ---------------------------------------------------------------------- float16 underflow
def _tiny_gradient_problem():
    """A float16 graph whose weight gradients are ~1e-10..1e-7 (below float16's normal range),
    and their float64 reference."""
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], (2, 16))
    x = (rng.uniform(0.5, 2.0, (2, 16)) * signs * 1e-4).astype(np.float16)
    r = (rng.uniform(0.5, 2.0, (2, 8)) * 1e-4).astype(np.float16)
    w = rng.standard_normal((16, 8)).astype(np.float16)
    reference = x.astype(np.float64).T @ r.astype(np.float64)
    return x, r, w, reference


def _float16_loss(x, r, w16):
    return ((rg.tensor(x) @ w16) * rg.tensor(r)).sum()


def test_float16_gradients_flush_to_zero_without_scaling():
    x, r, w, reference = _tiny_gradient_problem()
    w16 = rg.tensor(w, requires_grad=True)
    grad, = rg.autograd.grad(_float16_loss(x, r, w16), [w16])
    assert grad.dtype == rg.float16
    assert np.all(reference != 0)
    assert np.mean(grad.numpy() == 0) > 0.5


def test_grad_scaler_keeps_tiny_float16_gradients():
    """Default scale 2**16: the float16 backward overflows (65536 > 65504), the step is
    skipped and the scale halves; at 2**15 the unscaled float32 master gradients are the
    float64 reference to float16 precision, and none is flushed."""
    x, r, w, reference = _tiny_gradient_problem()
    master = rg.tensor(w.astype(np.float32), requires_grad=True)
    opt = rg.optim.SGD([master], lr=LR)
    scaler = GradScaler()
    records = []
    for _ in range(2):
        w16 = master.detach().half().requires_grad_()
        grad16, = rg.autograd.grad(scaler.scale(_float16_loss(x, r, w16)), [w16])
        master.grad = grad16.float()
        scaler.unscale_(opt)
        grad = master.grad.numpy().copy()
        records.append(scaler.step(opt))
        scaler.update()
    assert [(rec.skipped, rec.scale) for rec in records] == [(True, 2.0**16), (False, 2.0**15)]
    assert records[0].nonfinite == ["param_groups[0][0] (16x8)"]
    assert grad.dtype == np.float32
    assert np.mean(grad == 0) == 0
    assert np.abs(grad - reference).max() <= 2.0**-11 * np.abs(reference).max()


def test_unscale_refuses_float16_gradients_like_torch():
    w16 = rg.ones(3, dtype=rg.float16, requires_grad=True)
    w16.grad = rg.ones(3, dtype=rg.float16)
    scaler = GradScaler()
    with pytest.raises(ValueError, match=r"GradScaler.unscale_: .*param_groups\[0\]\[0\].*"
                                         r"float16.*master"):
        scaler.unscale_(rg.optim.SGD([w16], lr=LR))
    assert w16.grad.tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------------- overflow, records
def test_forced_overflow_skips_the_step_names_the_parameter_and_backs_off():
    rg.manual_seed(0)
    model = rg.nn.Sequential(rg.nn.Linear(3, 4), rg.nn.ReLU(), rg.nn.Linear(4, 2))
    opt = rg.optim.SGD(model.parameters(), lr=LR)
    scaler = GradScaler(init_scale=2.0**8, growth_interval=3, model=model)
    x = rg.randn(6, 3)

    def iteration(overflow=False):
        opt.zero_grad()
        scaler.scale((model(x) ** 2).mean()).backward()
        if overflow:
            model[2].weight.grad.numpy()[1, 3] = np.inf
        record = scaler.step(opt)
        scaler.update()
        return record

    before = _values(model.parameters())
    record = iteration(overflow=True)
    assert record.skipped and record.nonfinite == ["2.weight"] and record.result is None
    assert record.scale == 2.0**8 and record.new_scale == 2.0**7
    for p, value in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), value)
    scales = [iteration().new_scale for _ in range(4)]
    assert scales == [2.0**7, 2.0**7, 2.0**8, 2.0**8]
    assert not np.array_equal(model[0].weight.detach().numpy(), before[0])


def test_gradients_are_unscaled_in_place_in_their_dtype():
    model, opt, scaler = _one_step_setup(init_scale=2.0**6)
    arrays = [p.grad.numpy() for p in model.parameters()]
    scaled = [a.copy() for a in arrays]
    scaler.unscale_(opt)
    for array, before, p in zip(arrays, scaled, model.parameters()):
        assert p.grad.numpy() is array and array.dtype == np.float32
        np.testing.assert_array_equal(array, before / np.float32(2.0**6))


def test_unscale_then_clip_then_step_unscales_once():
    rg.manual_seed(1)
    reference = rg.nn.Linear(3, 2)
    x = rg.randn(4, 3)
    ((reference(x) * 10) ** 2).mean().backward()
    true_grads = _grads(reference.parameters())

    model = rg.nn.Linear(3, 2)
    for p, q in zip(model.parameters(), reference.parameters()):
        p.data = q.detach().numpy().copy()
    opt = rg.optim.SGD(model.parameters(), lr=LR)
    scaler = GradScaler(init_scale=2.0**12)
    before = _values(model.parameters())
    scaler.scale(((model(x) * 10) ** 2).mean()).backward()
    scaler.unscale_(opt)
    for grad, expected in zip(_grads(model.parameters()), true_grads):
        np.testing.assert_allclose(grad, expected, rtol=1e-6)
    total = rg.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    assert float(total) > 0.5
    clipped = _grads(model.parameters())
    record = scaler.step(opt)
    scaler.update()
    assert not record.skipped
    for grad, expected in zip(_grads(model.parameters()), clipped):
        np.testing.assert_array_equal(grad, expected)
    for p, value, grad in zip(model.parameters(), before, clipped):
        np.testing.assert_allclose(p.detach().numpy(), value - LR * grad, rtol=1e-6)


def test_scale_is_differentiable_and_handles_nested_outputs():
    scaler = GradScaler(init_scale=4.0)
    w = rg.tensor([1.0, 2.0], requires_grad=True)
    scaler.scale((w * w).sum()).backward()
    assert w.grad.tolist() == [8.0, 16.0]
    Pair = namedtuple("Pair", "a b")
    a, b = rg.tensor(1.0), rg.tensor(2.0, dtype=rg.float64)
    out = scaler.scale([a, (b, Pair(a, b))])
    assert isinstance(out, list) and isinstance(out[1], tuple) and isinstance(out[1][1], Pair)
    assert out[0].item() == 4.0 and out[1][1].b.item() == 8.0
    assert out[1][0].dtype == rg.float64


def test_optimizer_param_names_are_used_without_model():
    w = rg.zeros(2, 2, requires_grad=True)
    opt = rg.optim.SGD([("encoder.w", w)], lr=LR)
    w.grad = rg.tensor([[0.0, np.nan], [0.0, 0.0]])
    record = GradScaler().step(opt)
    assert record.skipped and record.nonfinite == ["encoder.w"]


def test_step_returns_the_optimizer_result():
    class Counting(rg.optim.SGD):
        def step(self, closure=None):
            super().step(closure)
            return "stepped"

    model, _, scaler = _one_step_setup()
    record = scaler.step(Counting(model.parameters(), lr=LR))
    assert record.result == "stepped" and not record.skipped and record.new_scale is None


# ---------------------------------------------------------------------- disabled
def test_disabled_scaler_is_a_pass_through():
    scaler = GradScaler(enabled=False)
    model, opt, _ = _one_step_setup()
    loss = (model(rg.ones(1, 3)) ** 2).sum()
    assert scaler.scale(loss) is loss
    grads = _grads(model.parameters())
    scaler.unscale_(opt)
    for grad, before in zip(_grads(model.parameters()), grads):
        np.testing.assert_array_equal(grad, before)
    before = _values(model.parameters())
    record = scaler.step(opt)
    scaler.update()
    assert (record.skipped, record.scale, record.nonfinite) == (False, 1.0, [])
    assert not np.array_equal(model.weight.detach().numpy(), before[0])
    assert scaler.get_scale() == 1.0 and not scaler.is_enabled()
    assert scaler.state_dict() == {}
    scaler.load_state_dict({})
    scaler.step(opt)  # no per-iteration bookkeeping when disabled, as in PyTorch


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"device": "tpu"}, ValueError, r"GradScaler: device must be 'cpu' .*CPU only.*'tpu'"),
    ({"init_scale": 0.0}, ValueError, "GradScaler: init_scale must be a positive finite"),
    ({"init_scale": -1}, ValueError, "GradScaler: init_scale"),
    ({"init_scale": float("inf")}, ValueError, "GradScaler: init_scale"),
    ({"init_scale": 1e39}, ValueError, "GradScaler: init_scale.*float32"),
    ({"init_scale": "big"}, TypeError, "GradScaler: init_scale must be a number"),
    ({"growth_factor": 1.0}, ValueError, "GradScaler: growth_factor must be a finite number > 1"),
    ({"growth_factor": True}, TypeError, "GradScaler: growth_factor"),
    ({"backoff_factor": 1.0}, ValueError, "GradScaler: backoff_factor must be a number between"),
    ({"backoff_factor": 0}, ValueError, "GradScaler: backoff_factor"),
    ({"growth_interval": 0}, ValueError, "GradScaler: growth_interval must be a positive int"),
    ({"growth_interval": 2.0}, ValueError, "GradScaler: growth_interval"),
    ({"enabled": 1}, ValueError, "GradScaler: enabled must be a bool"),
    ({"model": "net"}, TypeError, "GradScaler: model must be a Module"),
])
def test_bad_constructor_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        GradScaler(**kwargs)


def test_setters_check_their_values():
    scaler = GradScaler()
    scaler.set_growth_factor(4.0)
    scaler.set_backoff_factor(0.25)
    scaler.set_growth_interval(7)
    assert (scaler.get_growth_factor(), scaler.get_backoff_factor(),
            scaler.get_growth_interval()) == (4.0, 0.25, 7)
    with pytest.raises(ValueError, match="GradScaler.set_growth_factor: growth_factor"):
        scaler.set_growth_factor(0.5)
    with pytest.raises(ValueError, match="GradScaler.set_backoff_factor: backoff_factor"):
        scaler.set_backoff_factor(2.0)
    with pytest.raises(ValueError, match="GradScaler.set_growth_interval: new_interval"):
        scaler.set_growth_interval(-3)


def test_unscale_twice_is_refused_like_torch():
    model, opt, scaler = _one_step_setup()
    scaler.unscale_(opt)
    grads = _grads(model.parameters())
    with pytest.raises(RuntimeError, match=r"GradScaler.unscale_: unscale_\(\) has already been "
                                           r"called on this optimizer since the last update\(\)"):
        scaler.unscale_(opt)
    for grad, before in zip(_grads(model.parameters()), grads):
        np.testing.assert_array_equal(grad, before)


def test_unscale_and_step_after_step_are_refused():
    _, opt, scaler = _one_step_setup()
    scaler.step(opt)
    with pytest.raises(RuntimeError, match=r"GradScaler.unscale_: .*after step\(\)"):
        scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match=r"GradScaler.step: step\(\) has already been called"):
        scaler.step(opt)
    scaler.update()
    scaler.unscale_(opt)  # a new iteration


def test_update_without_a_step_is_refused():
    with pytest.raises(RuntimeError, match=r"GradScaler.update: no inf/nan checks"):
        GradScaler().update()


@pytest.mark.parametrize("new_scale, error, pattern", [
    (rg.ones(3), ValueError, "new_scale must be a number or a one-element tensor"),
    (0.0, ValueError, "GradScaler.update: new_scale must be a positive finite number"),
    ("2", TypeError, "GradScaler.update: new_scale must be a number"),
])
def test_bad_new_scale(new_scale, error, pattern):
    with pytest.raises(error, match=pattern):
        GradScaler().update(new_scale=new_scale)


def test_bad_optimizer_outputs_and_closure():
    model, opt, scaler = _one_step_setup()
    with pytest.raises(TypeError, match="GradScaler.step: optimizer must be an Optimizer.*"
                                        "pass the optimizer, not the model"):
        scaler.step(model)
    with pytest.raises(TypeError, match="GradScaler.unscale_: optimizer must be an Optimizer"):
        scaler.unscale_([opt])
    with pytest.raises(TypeError, match=r"GradScaler.scale: .*outputs\[1\] is a float"):
        scaler.scale([rg.ones(1), 2.0])
    with pytest.raises(RuntimeError, match="GradScaler.step: a closure is not supported"):
        scaler.step(opt, closure=lambda: None)


# ---------------------------------------------------------------------- state dict
def _trained_state():
    _, _, scaler = _run_ours("ccocc", _data(), init_scale=2.0**9, growth_interval=4)
    return scaler


def test_state_dict_holds_plain_numbers_with_torch_keys():
    state = _trained_state().state_dict()
    assert state == {"scale": 256.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                     "growth_interval": 4, "_growth_tracker": 2}
    assert [type(v) for v in state.values()] == [float, float, float, int, int]


def test_state_dict_round_trips_through_serialization(tmp_path):
    scaler = _trained_state()
    path = os.path.join(tmp_path, "scaler.safetensors")
    save(scaler.state_dict(), path)
    restored = GradScaler()
    restored.load_state_dict(load(path))
    assert restored.state_dict() == scaler.state_dict()
    assert [type(v) for v in restored.state_dict().values()] == [float, float, float, int, int]

    checkpoint_path = os.path.join(tmp_path, "run.safetensors")
    save_checkpoint(checkpoint_path, scaler=scaler, epoch=3)
    from_checkpoint = GradScaler()
    load_checkpoint(checkpoint_path, scaler=from_checkpoint)
    assert from_checkpoint.state_dict() == scaler.state_dict()


def test_restored_scaler_continues_like_the_original():
    original = _trained_state()
    restored = GradScaler()
    restored.load_state_dict(original.state_dict())
    for scaler in (original, restored):
        model = _our_model(_data())
        opt = rg.optim.SGD(model.parameters(), lr=LR)
        for _ in range(3):
            opt.zero_grad()
            scaler.scale(_our_loss(model, _data())).backward()
            scaler.step(opt)
            scaler.update()
    assert restored.state_dict() == original.state_dict()
    assert restored.get_scale() == 512.0


@pytest.mark.parametrize("change, pattern", [
    (lambda s: s.pop("scale"), r"missing the keys \['scale'\]"),
    (lambda s: s.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda s: s.update(scale=np.ones(3)), r"'scale' must be a number .*shape \(3,\)"),
    (lambda s: s.update(scale=rg.ones(2, 2)), r"'scale' must be a number .*shape \(2, 2\)"),
    (lambda s: s.update(scale="1.0"), r"'scale' must be a number, got a str"),
    (lambda s: s.update(scale=-2.0), r"'scale' must be a positive finite number"),
    (lambda s: s.update(growth_factor=0.5), r"growth_factor must be a finite number > 1"),
    (lambda s: s.update(backoff_factor=True), r"'backoff_factor' must be a number, got a bool"),
    (lambda s: s.update(growth_interval=2.5), r"'growth_interval' must be a positive int"),
    (lambda s: s.update(_growth_tracker=-1), r"'_growth_tracker' must be a non-negative int"),
    (lambda s: s.clear(), r"the state dict is empty, perhaps saved from a disabled"),
])
def test_bad_state_dicts_are_refused(change, pattern):
    scaler = GradScaler(init_scale=32.0)
    state = scaler.state_dict()
    change(state)
    with pytest.raises(ValueError, match="GradScaler.load_state_dict: " + ".*" + pattern):
        scaler.load_state_dict(state)
    assert scaler.get_scale() == 32.0


def test_one_element_arrays_are_accepted_in_a_state_dict():
    scaler = GradScaler()
    state = {**scaler.state_dict(), "scale": np.array([128.0], dtype=np.float32),
             "_growth_tracker": np.int64(5)}
    scaler.load_state_dict(state)
    assert scaler.get_scale() == 128.0 and scaler.state_dict()["_growth_tracker"] == 5
    with pytest.raises(ValueError, match="expected a dict"):
        scaler.load_state_dict([("scale", 1.0)])
