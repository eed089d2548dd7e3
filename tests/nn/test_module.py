"""Module: registration, traversal, state dicts, modes, dtype moves and repr, each compared
with torch.nn.Module on an equivalent model."""

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.nn.module import IncompatibleKeys


# ---------------------------------------------------------------- equivalent models
def _block_class(nn, zeros):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.register_buffer("running", zeros(4))
            self.register_buffer("scratch", zeros(2), persistent=False)
            self.register_buffer("absent", None)
            self.scale = nn.Parameter(zeros(1))
            self.register_parameter("unused", None)

        def forward(self, x):
            return self.fc(x) * self.scale + self.running

    return Block


def build_net(nn, zeros):
    """Sequential in Sequential, ModuleList, ModuleDict, a submodule shared by two parents,
    a parameter tied between two layers, ParameterList, ParameterDict, a None submodule."""
    block = _block_class(nn, zeros)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            shared = nn.Linear(4, 4)
            self.seq = nn.Sequential(block(), nn.Sequential(shared, nn.Linear(4, 2)))
            self.layers = nn.ModuleList([shared, block()])
            self.heads = nn.ModuleDict({"b": nn.Linear(2, 2), "a": block()})
            self.tied = nn.Linear(4, 4)
            self.tied.weight = shared.weight
            self.plist = nn.ParameterList([nn.Parameter(zeros(2)), nn.Parameter(zeros(3))])
            self.pdict = nn.ParameterDict({"z": nn.Parameter(zeros(2)),
                                           "y": nn.Parameter(zeros(1))})
            self.nothing = None
            self.add_module("missing", None)

    return Net()


@pytest.fixture
def nets():
    return build_net(rg.nn, rg.zeros), build_net(torch.nn, torch.zeros)


def _names(pairs):
    return [name for name, _ in pairs]


@pytest.mark.parametrize("method", ["named_parameters", "named_buffers", "named_modules",
                                    "named_children"])
def test_traversal_names_and_order_match_torch(nets, method):
    ours, theirs = nets
    assert _names(getattr(ours, method)()) == _names(getattr(theirs, method)())


@pytest.mark.parametrize("method", ["named_parameters", "named_buffers", "named_modules"])
def test_traversal_without_removing_duplicates_matches_torch(nets, method):
    ours, theirs = nets
    assert _names(getattr(ours, method)(remove_duplicate=False)) == \
        _names(getattr(theirs, method)(remove_duplicate=False))


@pytest.mark.parametrize("kwargs", [{"prefix": "model"}, {"recurse": False},
                                    {"prefix": "p", "recurse": False}])
def test_named_parameters_prefix_and_recurse_match_torch(nets, kwargs):
    ours, theirs = nets
    assert _names(ours.seq.named_parameters(**kwargs)) == \
        _names(theirs.seq.named_parameters(**kwargs))
    assert _names(ours.seq[0].named_buffers(**kwargs)) == \
        _names(theirs.seq[0].named_buffers(**kwargs))


def test_state_dict_keys_and_order_match_torch(nets):
    ours, theirs = nets
    keys = list(ours.state_dict())
    assert keys == list(theirs.state_dict())
    # a shared submodule and a tied parameter appear under every name, as in PyTorch
    assert "layers.0.weight" in keys and "seq.1.0.weight" in keys and "tied.weight" in keys
    assert not any("scratch" in k or "absent" in k or "unused" in k for k in keys)


def test_state_dict_with_prefix_matches_torch(nets):
    ours, theirs = nets
    assert list(ours.seq.state_dict(prefix="model.seq.")) == \
        list(theirs.seq.state_dict(prefix="model.seq."))


def test_shared_submodules_and_parameters_are_counted_once(nets):
    ours, theirs = nets
    assert len(list(ours.parameters())) == len(list(theirs.parameters())) == 20
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    ids = [id(p) for p in ours.parameters()]
    assert len(ids) == len(set(ids))
    assert ours.tied.weight is ours.layers[0].weight


def test_state_dict_values_share_memory_and_are_detached():
    m = rg.nn.Linear(3, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad and sd["weight"].is_leaf
    assert np.shares_memory(sd["weight"].numpy(), m.weight.detach().numpy())
    kept = m.state_dict(keep_vars=True)
    assert kept["weight"] is m.weight and kept["bias"] is m.bias


def test_state_dict_into_a_destination():
    dest = OrderedDict(extra=rg.zeros(1))
    out = rg.nn.Linear(2, 2).state_dict(destination=dest, prefix="lin.")
    assert out is dest and list(dest) == ["extra", "lin.weight", "lin.bias"]


def test_named_modules_memo_and_prefix_match_torch(nets):
    ours, theirs = nets
    assert _names(ours.named_modules(prefix="root")) == _names(theirs.named_modules(prefix="root"))
    memo = {id(ours.layers[0])}
    assert "seq.1.0" not in _names(ours.named_modules(memo=memo))


def test_apply_visits_children_first_like_torch(nets):
    ours, theirs = nets
    seen_ours, seen_theirs = [], []
    assert ours.apply(lambda m: seen_ours.append(type(m).__name__)) is ours
    theirs.apply(lambda m: seen_theirs.append(type(m).__name__))
    assert seen_ours == seen_theirs


# ---------------------------------------------------------------- registration
def test_unknown_attribute_raises_attribute_error():
    m = rg.nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'wieght'"):
        m.wieght  # noqa: B018
    assert getattr(m, "wieght", "default") == "default"
    assert not hasattr(rg.nn.Module(), "anything")


@pytest.mark.parametrize("value", [lambda: rg.nn.Parameter(rg.zeros(1)),
                                   lambda: rg.nn.Linear(1, 1)])
def test_assigning_before_super_init_is_a_clear_error(value):
    class Early(rg.nn.Module):
        def __init__(self):
            self.thing = value()
            super().__init__()

    with pytest.raises(AttributeError, match=r"Early: call super\(\).__init__\(\) before"):
        Early()


def test_register_buffer_before_super_init_is_a_clear_error():
    class Early(rg.nn.Module):
        def __init__(self):
            self.register_buffer("b", rg.zeros(1))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) before"):
        Early()


def test_plain_attributes_before_super_init_are_allowed():
    class Configured(rg.nn.Module):
        def __init__(self):
            self.size = 3
            super().__init__()

    assert Configured().size == 3


def test_reassigning_a_parameter_to_a_tensor_is_a_type_error():
    m = rg.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"Linear.weight: cannot assign a Tensor to a parameter"):
        m.weight = rg.zeros(2, 2)
    with pytest.raises(TypeError, match="cannot assign a ndarray to a parameter"):
        m.weight = np.zeros((2, 2))
    assert isinstance(m.weight, rg.nn.Parameter)


def test_reassigning_a_parameter_to_none_unregisters_its_value():
    ours, theirs = rg.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    ours.bias, theirs.bias = None, None
    assert ours.bias is None
    assert _names(ours.named_parameters()) == _names(theirs.named_parameters()) == ["weight"]
    assert list(ours.state_dict()) == ["weight"]


def test_reassigning_a_parameter_keeps_its_place_like_torch():
    ours, theirs = rg.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    ours.weight = rg.nn.Parameter(rg.zeros(3, 2))
    theirs.weight = torch.nn.Parameter(torch.zeros(3, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]


def test_reassigning_a_submodule_keeps_its_place_like_torch():
    ours = rg.nn.Sequential(rg.nn.Linear(1, 1), rg.nn.Linear(1, 1))
    theirs = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    setattr(ours, "0", rg.nn.Identity())
    setattr(theirs, "0", torch.nn.Identity())
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["1.weight", "1.bias"]
    assert _names(ours.named_children()) == _names(theirs.named_children()) == ["0", "1"]


def test_a_name_changes_kind_like_torch():
    def run(nn, zeros):
        m = nn.Module()
        m.register_buffer("x", zeros(1))
        m.x = nn.Parameter(zeros(1))        # a buffer becomes a parameter
        m.y = nn.Linear(1, 1)
        m.y = nn.Parameter(zeros(1))        # a submodule becomes a parameter
        m.z = 5
        m.z = nn.Parameter(zeros(2))        # a plain attribute becomes a parameter
        return (_names(m.named_parameters()), _names(m.named_buffers()),
                _names(m.named_children()), list(m.state_dict()))

    assert run(rg.nn, rg.zeros) == run(torch.nn, torch.zeros)


def test_assigning_a_tensor_to_a_buffer_name_replaces_the_buffer():
    m = rg.nn.Module()
    m.register_buffer("stat", rg.zeros(2))
    m.stat = rg.ones(3)
    assert m.state_dict()["stat"].shape == (3,)
    with pytest.raises(TypeError, match="stat: a buffer must be a Tensor or None, got int"):
        m.stat = 3
    m.stat = None
    assert "stat" not in m.state_dict()


def test_assigning_a_module_to_a_parameter_name_is_a_type_error_like_torch():
    for nn in (rg.nn, torch.nn):
        m = nn.Linear(1, 1)
        with pytest.raises(TypeError):
            m.weight = nn.Identity()


def test_assigning_a_non_module_to_a_submodule_name_is_a_type_error():
    m = rg.nn.Sequential(rg.nn.Linear(1, 1))
    with pytest.raises(TypeError, match="cannot assign a int to a submodule"):
        setattr(m, "0", 3)


def test_plain_tensors_are_not_registered():
    m = rg.nn.Module()
    m.cache = rg.zeros(2)
    assert list(m.state_dict()) == [] and list(m.parameters()) == []


@pytest.mark.parametrize("method", ["register_parameter", "register_buffer", "add_module"])
@pytest.mark.parametrize("name, error", [("a.b", KeyError), ("", KeyError), (3, TypeError),
                                         ("forward", KeyError), ("existing", KeyError)])
def test_register_rejects_bad_names_like_torch(method, name, error):
    values = {"register_parameter": lambda nn, lib: nn.Parameter(lib.zeros(1)),
              "register_buffer": lambda nn, lib: lib.zeros(1),
              "add_module": lambda nn, lib: nn.Identity()}
    for nn, lib in ((rg.nn, rg), (torch.nn, torch)):
        m = nn.Module()
        m.existing = 1
        with pytest.raises(error):
            getattr(m, method)(name, values[method](nn, lib))


def test_register_rejects_a_name_of_another_kind_like_torch():
    for nn, lib in ((rg.nn, rg), (torch.nn, torch)):
        m = nn.Linear(1, 1)
        with pytest.raises(KeyError, match="already exists"):
            m.register_buffer("weight", lib.zeros(1))
        m.register_buffer("stat", lib.zeros(1))
        with pytest.raises(KeyError, match="already exists"):
            m.register_parameter("stat", nn.Parameter(lib.zeros(1)))


@pytest.mark.parametrize("method, value, match", [
    ("register_parameter", lambda: rg.zeros(1), "must be a Parameter or None, got Tensor"),
    ("register_buffer", lambda: np.zeros(1), "must be a Tensor or None, got ndarray"),
    ("add_module", lambda: rg.zeros(1), "must be a Module or None, got Tensor"),
])
def test_register_rejects_wrong_values(method, value, match):
    with pytest.raises(TypeError, match=match):
        getattr(rg.nn.Module(), method)("x", value())


def test_re_registering_a_buffer_as_persistent():
    m = rg.nn.Module()
    m.register_buffer("b", rg.zeros(1), persistent=False)
    assert "b" not in m.state_dict()
    m.register_buffer("b", rg.zeros(1))
    assert "b" in m.state_dict()


def test_delattr_unregisters():
    m = rg.nn.Linear(2, 2)
    del m.bias
    assert _names(m.named_parameters()) == ["weight"]
    with pytest.raises(AttributeError):
        m.bias  # noqa: B018
    m.note = 1
    del m.note
    assert not hasattr(m, "note")


def test_get_submodule_and_get_parameter(nets):
    ours, _ = nets
    assert ours.get_submodule("seq.0.fc") is ours.seq[0].fc
    assert ours.get_submodule("") is ours
    assert ours.get_parameter("heads.a.fc.bias") is ours.heads["a"].fc.bias
    with pytest.raises(AttributeError, match="has no submodule 'nope'"):
        ours.get_submodule("seq.nope")
    with pytest.raises(AttributeError, match="has no parameter 'weights'"):
        ours.get_parameter("tied.weights")


def test_dir_lists_registered_names():
    names = dir(rg.nn.Linear(1, 1))
    assert "weight" in names and "bias" in names and "forward" in names


def test_module_without_forward():
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        rg.nn.Module()(rg.zeros(1))


# ---------------------------------------------------------------- load_state_dict
class Tanh(rg.nn.Module):
    """(Activation layers live in another file; a local one keeps this test self-contained.)"""

    def forward(self, x):
        return x.tanh()


def _mlp(nn, dtype):
    tanh = Tanh() if nn is rg.nn else torch.nn.Tanh()
    return nn.Sequential(nn.Linear(5, 8, dtype=dtype), tanh, nn.Linear(8, 3, dtype=dtype))


def _numpy_state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def test_load_torch_state_dict_gives_equal_outputs():
    theirs = _mlp(torch.nn, torch.float64)
    ours = _mlp(rg.nn, rg.float64)
    result = ours.load_state_dict(_numpy_state(theirs))
    assert result == IncompatibleKeys([], [])
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(ours(rg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_load_state_dict_of_a_nested_model_from_torch(nets):
    ours, theirs = nets
    for p in theirs.parameters():
        torch.nn.init.normal_(p)
    for b in theirs.buffers():
        b.normal_()
    ours.load_state_dict(_numpy_state(theirs))
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_load_state_dict_round_trip_between_two_retrograd_models():
    a, b = _mlp(rg.nn, rg.float32), _mlp(rg.nn, rg.float32)
    b.load_state_dict(a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
        assert not np.shares_memory(va.numpy(), vb.numpy())  # copied, not aliased


def test_load_state_dict_copies_in_place_keeping_parameter_identity():
    m = rg.nn.Linear(3, 2)
    weight, bias = m.weight, m.bias
    held_by_optimizer = list(m.parameters())
    version = weight._version[0]
    m.load_state_dict({"weight": np.full((2, 3), 0.5), "bias": np.ones(2)})
    assert m.weight is weight and m.bias is bias
    np.testing.assert_array_equal(held_by_optimizer[0].detach().numpy(), np.full((2, 3), 0.5))
    assert weight._version[0] > version
    assert weight.requires_grad and weight.is_leaf


@pytest.mark.parametrize("source_dtype", [np.float64, np.float16, np.int64])
def test_load_state_dict_casts_to_the_model_dtype(source_dtype):
    m = rg.nn.Linear(2, 2)
    m.load_state_dict({"weight": np.arange(4).reshape(2, 2).astype(source_dtype),
                       "bias": rg.tensor(np.ones(2, dtype=source_dtype))})
    assert m.weight.dtype == rg.float32 and m.bias.dtype == rg.float32
    np.testing.assert_array_equal(m.weight.detach().numpy(), [[0, 1], [2, 3]])


def test_load_state_dict_accepts_torch_tensors():
    theirs = torch.nn.Linear(3, 2)
    ours = rg.nn.Linear(3, 2)
    ours.load_state_dict({k: v.detach() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())


def test_strict_load_lists_missing_and_unexpected_keys_in_one_error():
    m = _mlp(rg.nn, rg.float32)
    state = _numpy_state(m)
    del state["0.bias"]
    state["5.weight"] = np.zeros(1)
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(state)
    message = str(info.value)
    assert "Error(s) in loading state_dict for Sequential" in message
    assert "missing keys: 0.bias" in message and "unexpected keys: 5.weight" in message


def test_shape_mismatch_names_the_key_and_both_shapes_even_when_not_strict():
    m = rg.nn.Linear(3, 2)
    bad = {"weight": np.zeros((3, 2)), "bias": np.zeros(2)}
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for weight: checkpoint has shape "
                                               r"\(3, 2\), the model has \(2, 3\)"):
            m.load_state_dict(bad, strict=strict)


def test_failed_load_changes_nothing():
    m = rg.nn.Linear(3, 2)
    before = m.bias.detach().numpy().copy()
    with pytest.raises(RuntimeError):
        m.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})
    np.testing.assert_array_equal(m.bias.detach().numpy(), before)


def test_non_strict_load_returns_missing_and_unexpected_like_torch():
    def run(nn, zeros):
        m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        state = {k: v.detach().clone() for k, v in m.state_dict().items()}
        del state["1.bias"]
        state["extra"] = zeros(1)
        result = m.load_state_dict(state, strict=False)
        return result.missing_keys, result.unexpected_keys

    ours = run(rg.nn, rg.zeros)
    assert ours == run(torch.nn, torch.zeros) == (["1.bias"], ["extra"])
    result = rg.nn.Linear(1, 1).load_state_dict({}, strict=False)
    assert isinstance(result, tuple) and result._fields == ("missing_keys", "unexpected_keys")


def test_non_persistent_buffer_key_is_unexpected():
    block = _block_class(rg.nn, rg.zeros)()
    state = _numpy_state(block)
    state["scratch"] = np.zeros(2)
    with pytest.raises(RuntimeError, match="unexpected keys: scratch"):
        block.load_state_dict(state)


def test_load_state_dict_rejects_a_non_mapping():
    with pytest.raises(TypeError, match="expected a mapping of names to tensors, got list"):
        rg.nn.Linear(1, 1).load_state_dict([np.zeros((1, 1))])


def test_load_state_dict_with_assign_replaces_the_tensors():
    m = rg.nn.Linear(2, 2)
    m.requires_grad_(False)
    new_weight = rg.tensor(np.eye(2, dtype=np.float64))
    m.load_state_dict({"weight": new_weight, "bias": np.zeros(2)}, assign=True)
    assert isinstance(m.weight, rg.nn.Parameter) and not m.weight.requires_grad
    assert m.weight.dtype == rg.float64  # assign keeps the checkpoint's dtype, as PyTorch
    assert np.shares_memory(m.weight.detach().numpy(), new_weight.numpy())


# ---------------------------------------------------------------- modes
def test_train_and_eval_propagate(nets):
    ours, _ = nets
    assert ours.eval() is ours
    assert all(not m.training for m in ours.modules())
    ours.seq.train()
    assert ours.seq[1][0].training and not ours.training and not ours.heads.training
    assert ours.train() is ours and all(m.training for m in ours.modules())


def test_train_calls_overridden_train_of_children_like_torch():
    class Frozen(rg.nn.Linear):
        def train(self, mode=True):
            return super().train(False)

    model = rg.nn.Sequential(rg.nn.Linear(1, 1), Frozen(1, 1))
    model.train()
    assert model.training and model[0].training and not model[1].training


def test_train_rejects_a_non_bool_like_torch():
    for nn in (rg.nn, torch.nn):
        with pytest.raises(ValueError):
            nn.Linear(1, 1).train(1)


def test_requires_grad_(nets):
    ours, _ = nets
    assert ours.requires_grad_(False) is ours
    assert not any(p.requires_grad for p in ours.parameters())
    ours.seq.requires_grad_()
    assert all(p.requires_grad for p in ours.seq.parameters())
    assert not ours.heads["b"].weight.requires_grad


def test_zero_grad_set_to_none_true_and_false():
    m = _mlp(rg.nn, rg.float64)
    x = rg.ones(2, 5, dtype=rg.float64)
    m(x).sum().backward()
    m.zero_grad(set_to_none=False)
    for p in m.parameters():
        assert p.grad is not None and not p.grad.requires_grad
        np.testing.assert_array_equal(p.grad.numpy(), np.zeros(p.shape))
    grads = [p.grad for p in m.parameters()]
    m(x).sum().backward()
    assert all(p.grad is g for p, g in zip(m.parameters(), grads))  # accumulated in place
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_zero_grad_detaches_a_gradient_with_history():
    m = rg.nn.Linear(2, 1, dtype=rg.float64)
    (m(rg.ones(1, 2, dtype=rg.float64)) ** 2).sum().backward(create_graph=True)
    assert m.weight.grad.requires_grad
    m.zero_grad(set_to_none=False)
    assert not m.weight.grad.requires_grad and m.weight.grad.grad_fn is None
    np.testing.assert_array_equal(m.weight.grad.numpy(), [[0.0, 0.0]])


def test_zero_grad_without_gradients_is_a_no_op():
    m = rg.nn.Linear(2, 2)
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is None


# ---------------------------------------------------------------- dtype moves
def _module_with_buffers():
    m = _block_class(rg.nn, rg.zeros)()
    m.register_buffer("count", rg.tensor(3))
    return m


@pytest.mark.parametrize("cast, dtype", [
    (lambda m: m.to(rg.float64), rg.float64), (lambda m: m.to(dtype=rg.float64), rg.float64),
    (lambda m: m.double(), rg.float64), (lambda m: m.half(), rg.float16),
    (lambda m: m.to("float16"), rg.float16), (lambda m: m.to("cpu", np.float64), rg.float64),
    (lambda m: m.bfloat16(), rg.bfloat16),
])
def test_to_casts_in_place_keeping_identity(cast, dtype):
    m = _module_with_buffers()
    m(rg.ones(2, 3)).sum().backward()
    params = {name: p for name, p in m.named_parameters()}
    assert cast(m) is m
    for name, p in m.named_parameters():
        assert p is params[name] and isinstance(p, rg.nn.Parameter)
        assert p.dtype == dtype and p.grad.dtype == dtype and p.requires_grad
    assert m.running.dtype == dtype and m.scratch.dtype == dtype
    assert m.count.dtype == rg.int64  # integer buffers are not cast


def test_to_then_forward_and_backward_in_the_new_dtype():
    m = rg.nn.Linear(3, 2).double()
    y = m(rg.ones(4, 3, dtype=rg.float64))
    y.sum().backward()
    assert y.dtype == rg.float64 and m.weight.grad.dtype == rg.float64


def test_float_back_from_double_matches_torch_values():
    ours, theirs = rg.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ours.load_state_dict(_numpy_state(theirs))
    ours.double().float()
    theirs.double().float()
    np.testing.assert_array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())


def test_to_cpu_is_a_no_op_and_other_devices_are_errors():
    m = rg.nn.Linear(1, 1)
    assert m.to("cpu") is m and m.cpu() is m and m.weight.dtype == rg.float32
    with pytest.raises(RuntimeError, match="CPU only, got device 'cuda'"):
        m.to("cuda")


def test_to_an_integer_dtype_is_an_error():
    with pytest.raises(TypeError, match="only floating-point dtypes are allowed"):
        rg.nn.Linear(1, 1).to(rg.int64)


# ---------------------------------------------------------------- repr
def _repr_model(nn):
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(8, 16)
            self.body = nn.Sequential(nn.Linear(16, 16), nn.Identity(),
                                      nn.Linear(16, 4, bias=False))

    return nn.Sequential(OrderedDict(encoder=Encoder(), flat=nn.Flatten(),
                                     unflat=nn.Unflatten(1, (2, 2)),
                                     blocks=nn.ModuleList([nn.Linear(4, 4) for _ in range(3)]
                                                          + [nn.Linear(4, 2)]),
                                     heads=nn.ModuleDict({"cls": nn.Linear(2, 2)}),
                                     empty=nn.Sequential()))


def test_repr_of_nested_modules_matches_torch():
    assert repr(_repr_model(rg.nn)) == repr(_repr_model(torch.nn))


@pytest.mark.parametrize("build", [
    lambda nn: nn.Linear(3, 4), lambda nn: nn.Linear(3, 4, bias=False),
    lambda nn: nn.Sequential(nn.Linear(1, 2)), lambda nn: nn.Sequential(),
    lambda nn: nn.ModuleList(), lambda nn: nn.Identity(), lambda nn: nn.Flatten(0, 2),
])
def test_repr_of_single_modules_matches_torch(build):
    assert repr(build(rg.nn)) == repr(build(torch.nn))


def test_repr_with_a_multi_line_extra_repr_matches_torch():
    def build(nn):
        class Custom(nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = nn.Linear(1, 1)

            def extra_repr(self):
                return "alpha=1\nbeta=2"

        return nn.Sequential(Custom())

    assert repr(build(rg.nn)) == repr(build(torch.nn))


def test_repr_of_a_none_submodule_matches_torch():
    def build(nn):
        m = nn.Module()
        m.add_module("gone", None)
        m.kept = nn.Identity()
        return m

    assert repr(build(rg.nn)) == repr(build(torch.nn))


# ---------------------------------------------------------------- copying
def test_deepcopy_keeps_tied_parameters_tied(nets):
    ours, _ = nets
    clone = copy.deepcopy(ours)
    assert clone.tied.weight is clone.layers[0].weight
    assert clone.tied.weight is not ours.tied.weight
    assert clone.seq[1][0] is clone.layers[0]
    assert list(clone.state_dict()) == list(ours.state_dict())


def test_pickle_round_trip_of_a_model():
    m = _mlp(rg.nn, rg.float64)
    clone = pickle.loads(pickle.dumps(m))
    x = rg.ones(2, 5, dtype=rg.float64)
    np.testing.assert_array_equal(clone(x).detach().numpy(), m(x).detach().numpy())
    assert all(isinstance(p, rg.nn.Parameter) and p.requires_grad for p in clone.parameters())


# ---------------------------------------------------------------- get_buffer, set_submodule
def test_get_buffer_matches_torch(nets):
    ours, theirs = nets
    for target in ("seq.0.running", "heads.a.scratch", "layers.1.running"):
        assert ours.get_buffer(target).shape == tuple(theirs.get_buffer(target).shape)
        assert ours.get_buffer(target) is ours.get_submodule(target.rpartition(".")[0])._buffers[
            target.rpartition(".")[2]]
    with pytest.raises(AttributeError, match="has no buffer 'scale'"):
        ours.get_buffer("seq.0.scale")
    with pytest.raises(AttributeError):
        theirs.get_buffer("seq.0.scale")
    with pytest.raises(AttributeError, match="has no submodule 'nope'"):
        ours.get_buffer("nope.running")


def test_set_submodule_replaces_in_place_like_torch(nets):
    for net, nn in zip(nets, (rg.nn, torch.nn)):
        net.set_submodule("seq.1.0", nn.Linear(4, 7))
        net.set_submodule("heads.c", nn.Identity())
        with pytest.raises(AttributeError):
            net.set_submodule("heads.d", nn.Identity(), strict=True)
        with pytest.raises(AttributeError):
            net.set_submodule("seq.0.scale", nn.Identity())   # a parameter, not a module
        with pytest.raises(ValueError):
            net.set_submodule("seq.1.0", 3)
        with pytest.raises(ValueError):
            net.set_submodule("", nn.Identity())
    ours, theirs = nets
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.get_submodule("seq.1.0").out_features == 7
    assert ours.layers[0].out_features == 4      # the shared module was replaced in seq only
