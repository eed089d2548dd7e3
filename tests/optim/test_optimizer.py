"""The Optimizer base: parameter groups, zero_grad, step, in-place updates, state_dict."""

import copy
import inspect
import io

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.optim  # noqa: F401
from tests.optim._problem import initial_arrays, make_optimizer, trajectory

# one configuration per optimizer that creates every kind of state buffer, with two groups
RESUME_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, groups=[([0], dict(momentum=0.9)), ([1, 2], dict(lr=0.05))])),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.05, groups=[([0], dict(amsgrad=True)), ([1, 2], dict(lr=0.1))])),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1, groups=[([0], dict(rho=0.5)), ([1, 2], {})])),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
]


def _w(*shape, dtype=rg.float32):
    return rg.zeros(*shape, dtype=dtype, requires_grad=True)


# ---------------------------------------------------------------------- construction
def test_param_groups_take_defaults_and_keep_their_own_options():
    a, b = _w(2), _w(3)
    opt = rg.optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is b


def test_params_from_a_generator_and_from_a_module():
    lin = rg.nn.Linear(3, 2)
    opt = rg.optim.Adam(lin.parameters())
    assert [p is q for p, q in zip(opt.param_groups[0]["params"], lin.parameters())] == [True] * 2


def test_named_parameters_are_accepted():
    lin = rg.nn.Linear(3, 2)
    opt = rg.optim.SGD(lin.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.param_groups[0]["params"][0] is lin.weight
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


def test_add_param_group():
    a, b = _w(2), _w(3)
    opt = rg.optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": [b], "betas": (0.5, 0.6)})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="a param group must be a dict"):
        opt.add_param_group([b])
    with pytest.raises(ValueError, match="must have a 'params' entry"):
        opt.add_param_group({"lr": 0.1})
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0"):
        opt.add_param_group({"params": [_w(1)], "betas": (1.5, 0.9)})


def _used_up():
    params = rg.nn.Linear(2, 2).parameters()
    list(params)
    return params


# What was given instead of parameters, and what the error must say (PyTorch's messages, for
# comparison: "'Linear' object is not iterable"; "params argument given to the optimizer should
# be an iterable of Tensors or dicts, but got torch.FloatTensor"; "optimizer got an empty
# parameter list", also for a used-up generator; "optimizer can only optimize Tensors, but one
# of the params is int"; "param_group must be a dict, but got Parameter").
BAD_PARAMS = [
    ("module", lambda: rg.nn.Linear(2, 2), TypeError,
     "SGD: params must be an iterable of Tensors or of parameter-group dicts, got a Linear "
     "module; pass model.parameters()"),
    ("single tensor", lambda: _w(2), TypeError,
     "SGD: params must be an iterable of Tensors or of parameter-group dicts, got a Tensor of "
     "shape (2,) (dtype retrograd.float32); pass [tensor]"),
    ("empty list", lambda: [], ValueError,
     "SGD: params is empty (expected an iterable of Tensors or of parameter-group dicts)"),
    ("used-up generator", _used_up, ValueError,
     "SGD: params is empty (expected an iterable of Tensors or of parameter-group dicts): it "
     "is a generator that yielded nothing; an iterator such as model.parameters() is used up "
     "by one pass: call model.parameters() again, or keep list(model.parameters())"),
    ("set", lambda: {_w(2)}, TypeError,
     "SGD: parameters need to be given in an ordered collection (a set's order changes between "
     "runs); use a list"),
    ("int element", lambda: [1], TypeError,
     "SGD: params must hold only Tensors, but params[0] is an int"),
    ("array element", lambda: [_w(1), np.zeros(2)], TypeError,
     "SGD: params must hold only Tensors, but params[1] is a NumPy array of shape (2,)"),
    ("list of modules", lambda: [rg.nn.Linear(2, 2)], TypeError,
     "SGD: params must hold only Tensors, but params[0] is a Linear module; pass "
     "model.parameters()"),
    ("one group not in a list", lambda: {"params": [_w(2)]}, TypeError,
     "SGD: params must be an iterable of Tensors or of parameter-group dicts, got a dict; a "
     "dict iterates over its keys: to give one parameter group, wrap it in a list, "
     "[{'params': ...}]"),
    ("state dict", lambda: rg.nn.Linear(2, 2).state_dict(), TypeError,
     "SGD: params must be an iterable of Tensors or of parameter-group dicts, got an "
     "OrderedDict; a dict iterates over its keys: pass model.parameters()"),
    ("string", lambda: "weight", TypeError,
     "SGD: params must be an iterable of Tensors or of parameter-group dicts, got a str"),
    ("number", lambda: 0.1, TypeError,
     "SGD: params must be an iterable of Tensors or of parameter-group dicts, got a float"),
    ("groups and tensors mixed", lambda: [{"params": [_w(2)]}, _w(3)], TypeError,
     "SGD: params must be an iterable of Tensors or of parameter-group dicts, not a mix of "
     "both: params[0] is a dict but params[1] is a Tensor of shape (3,)"),
    ("module in a group", lambda: [{"params": [_w(2)]}, {"params": rg.nn.Linear(2, 2)}],
     TypeError, "SGD: params[1]['params'] must be a Tensor or an iterable of Tensors, got a "
     "Linear module; pass model.parameters()"),
    ("non-tensor in a group", lambda: [{"params": [_w(2), "bias"]}], TypeError,
     "SGD: params[0]['params'] must hold only Tensors, but params[0]['params'][1] is a str"),
    ("non-leaf", lambda: [_w(2), _w(2) * 2], ValueError,
     "SGD: can't optimize a non-leaf Tensor: params[1] (shape (2,)) was made by <MulBackward>"),
    ("duplicate across groups", lambda: (lambda w: [{"params": [w]}, {"params": [_w(1), w]}])(
        _w(2)), ValueError, "SGD: some parameters appear in more than one parameter group: a "
     "parameter of shape (2,) is in groups 0 and 1"),
    ("bad named pair", lambda: [("w", _w(2), 1)], TypeError,
     "SGD: a named parameter must be a (str, Tensor) pair, but params[0] is (a str, a Tensor "
     "of shape (2,) (dtype retrograd.float32), an int)"),
]


@pytest.mark.parametrize("make, error, message", [case[1:] for case in BAD_PARAMS],
                         ids=[case[0] for case in BAD_PARAMS])
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_bad_params_say_what_was_given_and_what_to_pass(name, make, error, message):
    with pytest.raises(error) as info:
        getattr(rg.optim, name)(make(), lr=0.1)
    assert str(info.value).startswith(message.replace("SGD", name, 1)), str(info.value)


def test_add_param_group_checks_its_params_the_same_way():
    opt = rg.optim.SGD([_w(2)], lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: param_group\['params'\] must be a Tensor or an "
                                        r"iterable of Tensors, got a Linear module; pass "
                                        r"model.parameters\(\)"):
        opt.add_param_group({"params": rg.nn.Linear(2, 2)})
    with pytest.raises(TypeError, match="a param group must be a dict, got a Tensor of shape"):
        opt.add_param_group(_w(2))


def test_parameters_that_do_not_require_grad_are_accepted_and_skipped_as_in_torch():
    # a frozen layer's parameters stay in model.parameters(): PyTorch takes them (and the
    # optimizer skips them while they get no gradient), so that unfreezing needs no new optimizer
    frozen, trained = rg.zeros(2), _w(2)
    opt = rg.optim.SGD([frozen, trained], lr=0.5)
    torch.optim.SGD([torch.zeros(2), torch.zeros(2, requires_grad=True)], lr=0.5)
    trained.sum().backward()
    opt.step()
    assert frozen.tolist() == [0.0, 0.0] and trained.tolist() == [-0.5, -0.5]


def test_a_parameter_given_twice_is_an_error():
    w = _w(2)
    with pytest.raises(ValueError, match="given twice in the same parameter group"):
        rg.optim.SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        rg.optim.SGD([{"params": [w]}, {"params": [_w(1), w]}], lr=0.1)
    # equal values are not the same parameter (Tensor == is elementwise: compare identities)
    rg.optim.SGD([_w(2), _w(2)], lr=0.1)


def test_names_all_or_nothing():
    with pytest.raises(ValueError, match="all parameters of a group must be given with names"):
        rg.optim.SGD([("a", _w(2)), _w(2)], lr=0.1)
    with pytest.raises(ValueError, match="all parameter groups must be given with names"):
        rg.optim.SGD([{"params": [("a", _w(2))]}, {"params": [_w(2)]}], lr=0.1)


def test_repr_lists_groups():
    text = repr(rg.optim.SGD([_w(2)], lr=0.1))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.1" in text


# ---------------------------------------------------------------------- zero_grad / step
def test_zero_grad_to_none_and_to_zeros():
    w = _w(3)
    opt = rg.optim.SGD([w], lr=0.1)
    (w * 2.0).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad
    np.testing.assert_array_equal(w.grad.numpy(), 0.0)
    (w * 2.0).sum().backward()  # accumulates into the zeroed gradient
    np.testing.assert_array_equal(w.grad.numpy(), 2.0)
    opt.zero_grad()
    assert w.grad is None


def test_zero_grad_detaches_a_gradient_with_history():
    w = _w(2)
    opt = rg.optim.SGD([w], lr=0.1)
    (w * w).sum().backward(create_graph=True)
    assert w.grad.requires_grad
    opt.zero_grad(set_to_none=False)
    assert not w.grad.requires_grad and w.grad.grad_fn is None


def test_step_updates_in_place_and_bumps_the_version():
    w = rg.tensor([1.0, 2.0], requires_grad=True)
    array, version = w._data, w._version[0]
    view = w.detach()[1:]
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        opt = getattr(rg.optim, name)([w], lr=0.1)
        w.grad = rg.tensor([1.0, 1.0])
        opt.step()
    assert w._data is array
    assert w._version[0] == version + 4
    assert view.item() == w.detach().numpy()[1] != 2.0


def test_step_is_seen_by_a_pending_backward():
    w = rg.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()  # saves w for backward
    opt = rg.optim.SGD([w], lr=0.1)
    w.grad = rg.tensor([1.0, 1.0])
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation|version"):
        loss.backward()


def test_step_skips_parameters_without_gradient():
    a, b = rg.tensor([1.0], requires_grad=True), rg.tensor([2.0], requires_grad=True)
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        opt = getattr(rg.optim, name)([a, b], lr=0.1, weight_decay=0.5)
        a.grad, b.grad = rg.tensor([1.0]), None
        opt.step()
        assert b.item() == 2.0 and b not in opt.state, name


def test_step_runs_under_no_grad_and_the_closure_with_grad():
    w = rg.tensor([1.0, 2.0], requires_grad=True)
    opt = rg.optim.SGD([w], lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        calls.append(loss.requires_grad)
        loss.backward()
        return loss

    with rg.no_grad():
        loss = opt.step(closure)
    assert calls == [True] and loss.item() == 5.0
    np.testing.assert_allclose(w.detach().numpy(), [0.8, 1.6], rtol=1e-6)
    assert w.is_leaf and w.grad_fn is None
    assert opt.step() is None


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad"])
@pytest.mark.parametrize("dtype", [rg.float32, rg.float16])
def test_dtype_is_kept_without_upcasts(name, dtype):
    # NumPy float64 scalars as options would upcast float32 arrays if used as they are
    w = rg.tensor([1.0, -2.0], dtype=dtype, requires_grad=True)
    opt = getattr(rg.optim, name)([w], lr=np.float64(0.01), weight_decay=np.float64(0.1))
    if name != "SGD":
        opt.param_groups[0]["eps"] = np.float64(1e-3)
    for _ in range(2):
        w.grad = rg.tensor([0.5, 0.25], dtype=dtype)
        opt.step()
    assert w.dtype == dtype
    for key, value in opt.state.get(w, {}).items():
        assert value.dtype == (rg.float32 if key == "step" else dtype), key


def test_momentum_state_for_sgd_only_when_momentum():
    w = _w(2)
    opt = rg.optim.SGD([w], lr=0.1)
    w.grad = rg.ones(2)
    opt.step()
    assert len(opt.state) == 0 and opt.state_dict()["state"] == {}


def test_read_only_parameter_is_a_clear_error():
    array = np.zeros(2, dtype=np.float32)
    array.flags.writeable = False
    w = rg.from_numpy(array).requires_grad_()
    opt = rg.optim.SGD([w], lr=0.1)
    w.grad = rg.ones(2)
    with pytest.raises(RuntimeError,
                       match="SGD: cannot update a parameter of shape \\(2,\\) in place"):
        opt.step()


# ---------------------------------------------------------------------- state dict
@pytest.mark.parametrize("name, kwargs", RESUME_CASES)
def test_state_dict_layout_matches_torch(name, kwargs):
    _, mine, _ = trajectory(rg, name, 3, **kwargs)
    _, theirs, _ = trajectory(torch, name, 3, **kwargs)
    sd, tsd = mine.state_dict(), theirs.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for index, entry in sd["state"].items():
        assert sorted(entry) == sorted(tsd["state"][index])
        for key, value in entry.items():
            np.testing.assert_allclose(value.numpy(), tsd["state"][index][key].numpy(), rtol=1e-10)
    assert len(sd["param_groups"]) == len(tsd["param_groups"])
    for group, tgroup in zip(sd["param_groups"], tsd["param_groups"]):
        assert group["params"] == tgroup["params"]
        assert set(group) <= set(tgroup)
        assert all(group[k] == tgroup[k] for k in group)


@pytest.mark.parametrize("name, kwargs", RESUME_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_resume_from_state_dict_continues_identically(name, kwargs, dtype):
    straight, _, _ = trajectory(rg, name, 20, dtype, **kwargs)
    first, opt, params = trajectory(rg, name, 10, dtype, **kwargs)
    saved = _through_a_file(opt.state_dict())
    # a fresh run: new parameters holding the saved values, a new optimizer built the same way
    new_params = [rg.tensor(p.detach().numpy().copy(), requires_grad=True) for p in params]
    kw = {k: v for k, v in kwargs.items() if k not in ("lr", "groups")}
    new_opt = make_optimizer(rg, new_params, name, kwargs.get("groups"), lr=1.0, **kw)
    new_opt.load_state_dict(saved)
    rest, _, _ = trajectory(rg, name, 10, dtype, params=new_params, opt=new_opt)
    for a, b in zip(straight, first + rest):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def _through_a_file(state_dict):
    """The state dict as a resumed run gets it: saved with retrograd.save, loaded back."""
    buffer = io.BytesIO()
    rg.save(state_dict, buffer)
    buffer.seek(0)
    return rg.load(buffer)


def test_loaded_state_is_a_copy():
    first, opt, params = trajectory(rg, "Adam", 3, lr=0.1)
    new_params = [rg.tensor(p.detach().numpy().copy(), requires_grad=True) for p in params]
    new_opt = rg.optim.Adam(new_params, lr=0.1)
    new_opt.load_state_dict(opt.state_dict())
    before = new_opt.state[new_params[0]]["exp_avg"].numpy().copy()
    trajectory(rg, "Adam", 2, params=params, opt=opt)  # the original keeps training
    np.testing.assert_array_equal(new_opt.state[new_params[0]]["exp_avg"].numpy(), before)
    assert new_opt.state[new_params[0]]["step"].item() == 3.0


def test_state_dict_shares_state_like_torch():
    _, opt, params = trajectory(rg, "SGD", 2, lr=0.1, momentum=0.9)
    buf = opt.state[params[0]]["momentum_buffer"]
    assert opt.state_dict()["state"][0]["momentum_buffer"] is buf
    snapshot = copy.deepcopy(opt.state_dict())
    assert snapshot["state"][0]["momentum_buffer"] is not buf


def test_load_state_dict_casts_to_the_parameter_dtype():
    w64 = _w(2, dtype=rg.float64)
    opt64 = rg.optim.Adam([w64], lr=0.1)
    w64.grad = rg.ones(2, dtype=rg.float64)
    opt64.step()
    w32 = _w(2)
    opt32 = rg.optim.Adam([w32], lr=0.1)
    opt32.load_state_dict(opt64.state_dict())
    assert opt32.state[w32]["exp_avg"].dtype == rg.float32
    assert opt32.state[w32]["step"].dtype == rg.float32


def test_load_state_dict_accepts_numpy_arrays():
    w = rg.tensor([1.0, 2.0], requires_grad=True)
    opt = rg.optim.SGD([w], lr=0.1, momentum=0.9)
    opt.load_state_dict({"state": {0: {"momentum_buffer": np.array([1.0, 1.0])}},
                         "param_groups": [{"lr": 0.5, "momentum": 0.9, "dampening": 0,
                                           "weight_decay": 0, "nesterov": False,
                                           "maximize": False, "params": [0]}]})
    assert opt.state[w]["momentum_buffer"].dtype == rg.float32
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["params"][0] is w


def test_load_state_dict_fills_missing_options_from_defaults():
    w = _w(2)
    opt = rg.optim.SGD([w], lr=0.1, momentum=0.5)
    opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.2, "params": [0]}]})
    assert opt.param_groups[0]["momentum"] == 0.5 and opt.param_groups[0]["lr"] == 0.2


def _trained_sgd(shapes):
    params = [_w(*s) for s in shapes]
    opt = rg.optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = rg.ones(*p.shape)
    opt.step()
    return opt


@pytest.mark.parametrize("target, match", [
    (lambda: rg.optim.SGD([{"params": [_w(2)]}, {"params": [_w(3)]}], lr=0.1, momentum=0.9),
     "the state dict has 1 parameter groups, but this optimizer has 2"),
    (lambda: rg.optim.SGD([_w(2)], lr=0.1, momentum=0.9),
     "parameter group 0 has 2 parameters in the state dict, but 1 in this optimizer"),
    (lambda: rg.optim.SGD([_w(2), _w(4)], lr=0.1, momentum=0.9),
     "state 'momentum_buffer' of parameter 1 has shape \\(3,\\), but the parameter has "
     "shape \\(4,\\)"),
])
def test_load_state_dict_mismatch_errors(target, match):
    saved = _trained_sgd([(2,), (3,)]).state_dict()
    with pytest.raises(ValueError, match=match):
        target().load_state_dict(saved)


def test_load_state_dict_rejects_non_state_dicts():
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        rg.optim.SGD([_w(2)], lr=0.1).load_state_dict({"lr": 0.1})


def test_load_state_dict_checks_loaded_options():
    saved = _trained_sgd([(2,)]).state_dict()
    saved["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        rg.optim.SGD([_w(2)], lr=0.1, momentum=0.9).load_state_dict(saved)


def test_initial_arrays_vary_with_the_seed():
    assert not np.allclose(initial_arrays(0)["W"], initial_arrays(1)["W"])


# ---------------------------------------------------------------------- PyTorch's switches
# the keyword arguments each torch optimizer takes besides its hyper-parameters
TORCH_FLAGS = {
    "SGD": ("foreach", "differentiable", "fused"),
    "Adam": ("foreach", "capturable", "differentiable", "fused"),
    "AdamW": ("foreach", "capturable", "differentiable", "fused"),
    "RMSprop": ("capturable", "foreach", "differentiable"),
    "Adadelta": ("foreach", "capturable", "differentiable"),
    "Adagrad": ("foreach", "differentiable", "fused"),
}


@pytest.mark.parametrize("name", TORCH_FLAGS)
def test_torch_switches_are_accepted_and_change_nothing(name):
    flags = TORCH_FLAGS[name]
    assert set(flags) <= set(torch.optim.__dict__[name]([torch.zeros(1, requires_grad=True)],
                                                        lr=0.1).defaults)
    plain = trajectory(rg, name, 5, lr=0.01)[0]
    given = {"foreach": True, "capturable": True, "fused": False}
    kwargs = {k: v for k, v in given.items() if k in flags}
    switched, opt, _ = trajectory(rg, name, 5, lr=0.01, differentiable=False, **kwargs)
    np.testing.assert_array_equal(np.concatenate([np.ravel(a) for s in plain for a in s]),
                                  np.concatenate([np.ravel(a) for s in switched for a in s]))
    assert all(opt.param_groups[0][k] == v for k, v in kwargs.items())
    assert opt.param_groups[0]["differentiable"] is False


@pytest.mark.parametrize("name", TORCH_FLAGS)
def test_differentiable_true_is_refused(name):
    with pytest.raises(NotImplementedError, match=f"{name}: differentiable=True is not "
                                                  f"supported"):
        getattr(rg.optim, name)([_w(2)], lr=0.1, differentiable=True)


@pytest.mark.parametrize("name", [n for n, flags in TORCH_FLAGS.items() if "fused" in flags])
def test_fused_and_foreach_together_is_an_error_as_in_torch(name):
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        getattr(rg.optim, name)([_w(2)], lr=0.1, fused=True, foreach=True)
    getattr(rg.optim, name)([_w(2)], lr=0.1, fused=True)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad",
                                  "LBFGS"])
def test_signature_matches_torch(name):
    mine = inspect.signature(getattr(rg.optim, name))
    theirs = inspect.signature(getattr(torch.optim, name))
    assert [(p.name, p.kind, p.default) for p in mine.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in theirs.parameters.values()]


def test_lr_changed_in_param_groups_is_used_as_in_torch():
    def run(lib):
        params = [lib.tensor([1.0, -2.0], requires_grad=True)]
        opt = (rg.optim if lib is rg else torch.optim).Adam(params, lr=0.1)
        out = []
        for step in range(6):
            opt.zero_grad()
            (params[0] ** 2).sum().backward()
            opt.step()
            opt.param_groups[0]["lr"] *= 0.5
            if step == 3:
                opt.param_groups[0]["betas"] = (0.5, 0.9)
            out.append(params[0].detach().numpy().copy())
        return np.array(out)
    np.testing.assert_allclose(run(rg), run(torch), rtol=1e-6)


def test_zero_grad_defaults_to_none_as_in_torch():
    assert inspect.signature(rg.optim.Optimizer.zero_grad).parameters["set_to_none"].default is True
    assert inspect.signature(torch.optim.Optimizer.zero_grad).parameters[
        "set_to_none"].default is True
