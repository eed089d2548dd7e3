"""Containers (Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict): names,
indexing and editing compared with torch.nn's containers."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import retrograd as rg


def _linears(nn, sizes):
    return [nn.Linear(a, b) for a, b in sizes]


SIZES = [(2, 3), (3, 4), (4, 5), (5, 6)]


def _state_names(module):
    return list(module.state_dict())


def _sizes(container):
    return [m.in_features for m in container]


# ---------------------------------------------------------------- Sequential
def test_sequential_applies_modules_in_order_like_torch():
    theirs = torch.nn.Sequential(*_linears(torch.nn, SIZES[:3])).double()
    ours = rg.nn.Sequential(*_linears(rg.nn, SIZES[:3])).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2))
    np.testing.assert_allclose(ours(rg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_empty_sequential_is_the_identity():
    x = rg.ones(2, 3)
    assert rg.nn.Sequential()(x) is x


def test_sequential_from_an_ordered_dict_uses_its_names():
    def build(nn):
        return nn.Sequential(OrderedDict(first=nn.Linear(2, 3), second=nn.Linear(3, 1)))

    assert _state_names(build(rg.nn)) == _state_names(build(torch.nn)) == [
        "first.weight", "first.bias", "second.weight", "second.bias"]
    assert build(rg.nn).second.out_features == 1


@pytest.mark.parametrize("index", [0, 2, -1, -4, slice(1, 3), slice(None, None, 2),
                                   slice(-2, None)])
def test_sequential_indexing_matches_torch(index):
    ours = rg.nn.Sequential(*_linears(rg.nn, SIZES))
    theirs = torch.nn.Sequential(*_linears(torch.nn, SIZES))
    got, expected = ours[index], theirs[index]
    if isinstance(index, slice):
        assert isinstance(got, rg.nn.Sequential)
        assert _sizes(got) == _sizes(expected)
        assert _state_names(got) == _state_names(expected)
    else:
        assert got.in_features == expected.in_features


@pytest.mark.parametrize("index", [4, -5])
def test_sequential_index_out_of_range(index):
    with pytest.raises(IndexError, match=f"Sequential: index {index} is out of range for 4"):
        rg.nn.Sequential(*_linears(rg.nn, SIZES))[index]


def test_sequential_index_must_be_an_int():
    with pytest.raises(TypeError, match="Sequential: indices must be integers or slices"):
        rg.nn.Sequential(rg.nn.Identity())["0"]


@pytest.mark.parametrize("index", [1, -1, slice(0, 2), slice(None, None, 2)])
def test_sequential_delitem_renumbers_like_torch(index):
    ours = rg.nn.Sequential(*_linears(rg.nn, SIZES))
    theirs = torch.nn.Sequential(*_linears(torch.nn, SIZES))
    del ours[index]
    del theirs[index]
    assert _sizes(ours) == _sizes(theirs)
    assert _state_names(ours) == _state_names(theirs)


def test_sequential_setitem_append_extend_insert_pop_like_torch():
    def edit(nn):
        seq = nn.Sequential(*_linears(nn, SIZES[:2]))
        seq[1] = nn.Linear(7, 7)
        seq.append(nn.Linear(8, 8))
        seq.extend([nn.Linear(9, 9)])
        seq.insert(1, nn.Linear(10, 10))
        seq.insert(-1, nn.Linear(11, 11))
        popped = seq.pop(0)
        return _sizes(seq), _state_names(seq), popped.in_features, len(seq)

    assert edit(rg.nn) == edit(torch.nn)


def test_sequential_iteration_and_len():
    layers = _linears(rg.nn, SIZES)
    seq = rg.nn.Sequential(*layers)
    assert len(seq) == 4 and list(seq) == layers


def test_sequential_gradients_reach_every_layer():
    seq = rg.nn.Sequential(*_linears(rg.nn, SIZES))
    seq(rg.randn(3, 2)).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in seq.parameters())


# ---------------------------------------------------------------- ModuleList
def test_module_list_names_match_torch():
    def build(nn):
        layers = nn.ModuleList(_linears(nn, SIZES[:2]))
        layers.append(nn.Linear(1, 1))
        layers.extend([nn.Linear(2, 2)])
        layers += [nn.Linear(3, 3)]
        return layers

    ours, theirs = build(rg.nn), build(torch.nn)
    assert _state_names(ours) == _state_names(theirs)
    assert len(ours) == len(theirs) == 5


@pytest.mark.parametrize("index", [0, -1, slice(1, None), slice(None, None, -1)])
def test_module_list_indexing_matches_torch(index):
    ours = rg.nn.ModuleList(_linears(rg.nn, SIZES))
    theirs = torch.nn.ModuleList(_linears(torch.nn, SIZES))
    got, expected = ours[index], theirs[index]
    if isinstance(index, slice):
        assert isinstance(got, rg.nn.ModuleList)
        assert _sizes(got) == _sizes(expected)
        assert _state_names(got) == _state_names(expected)
    else:
        assert got.in_features == expected.in_features


@pytest.mark.parametrize("index", [0, -2, slice(1, 3)])
def test_module_list_delitem_renumbers_like_torch(index):
    ours = rg.nn.ModuleList(_linears(rg.nn, SIZES))
    theirs = torch.nn.ModuleList(_linears(torch.nn, SIZES))
    del ours[index]
    del theirs[index]
    assert _sizes(ours) == _sizes(theirs)
    assert _state_names(ours) == _state_names(theirs)


def test_module_list_insert_pop_setitem_add_like_torch():
    def edit(nn):
        layers = nn.ModuleList(_linears(nn, SIZES[:3]))
        layers.insert(1, nn.Linear(7, 7))
        layers.insert(0, nn.Linear(8, 8))
        layers[-1] = nn.Linear(9, 9)
        popped = layers.pop(2)
        joined = layers + nn.ModuleList([nn.Linear(1, 1)])
        return _sizes(layers), _state_names(layers), popped.in_features, _sizes(joined)

    assert edit(rg.nn) == edit(torch.nn)


def test_module_list_repr_compresses_repeats_like_torch():
    def build(nn):
        return nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.Identity()]
                             + [nn.Sequential(nn.Linear(1, 1)) for _ in range(2)])

    assert repr(build(rg.nn)) == repr(build(torch.nn))
    assert repr(rg.nn.ModuleList()) == repr(torch.nn.ModuleList())


def test_module_list_is_not_callable():
    with pytest.raises(NotImplementedError, match="ModuleList is a container"):
        rg.nn.ModuleList([rg.nn.Identity()])(rg.zeros(1))


def test_module_list_index_errors():
    layers = rg.nn.ModuleList(_linears(rg.nn, SIZES[:2]))
    with pytest.raises(IndexError, match="ModuleList: index 2 is out of range for 2"):
        layers[2]
    with pytest.raises(IndexError, match="out of range"):
        layers[-3] = rg.nn.Identity()
    with pytest.raises(TypeError, match="ModuleList.insert: expected a Module, got int"):
        layers.insert(0, 5)


# ---------------------------------------------------------------- ModuleDict
def test_module_dict_keeps_insertion_order_like_torch():
    def build(nn):
        heads = nn.ModuleDict({"z": nn.Linear(1, 1), "a": nn.Linear(2, 2)})
        heads["m"] = nn.Linear(3, 3)
        heads.update([("b", nn.Linear(4, 4))])
        heads.update({"a": nn.Linear(5, 5)})  # replacing keeps the place
        return list(heads.keys()), _state_names(heads), heads["a"].in_features

    assert build(rg.nn) == build(torch.nn)


def test_module_dict_access_and_edit():
    heads = rg.nn.ModuleDict({"cls": rg.nn.Linear(2, 3), "reg": rg.nn.Linear(2, 1)})
    assert "cls" in heads and "box" not in heads and len(heads) == 2
    assert list(heads) == ["cls", "reg"]
    assert [m.out_features for m in heads.values()] == [3, 1]
    assert [k for k, _ in heads.items()] == ["cls", "reg"]
    assert heads.pop("cls").out_features == 3 and list(heads) == ["reg"]
    del heads["reg"]
    assert len(heads) == 0
    with pytest.raises(KeyError):
        heads["cls"]
    heads["x"] = rg.nn.Identity()
    heads.clear()
    assert list(heads.named_children()) == []


def test_module_dict_rejects_bad_keys_and_values():
    heads = rg.nn.ModuleDict()
    with pytest.raises(KeyError, match="invalid module name 'a.b'"):
        heads["a.b"] = rg.nn.Identity()
    with pytest.raises(TypeError, match="must be a Module or None, got Tensor"):
        heads["x"] = rg.zeros(1)


# ---------------------------------------------------------------- ParameterList / Dict
def test_parameter_list_names_and_conversion_like_torch():
    def build(nn, lib):
        params = nn.ParameterList([nn.Parameter(lib.zeros(2)), lib.ones(3)])
        params.append(lib.zeros(1))
        params.extend([nn.Parameter(lib.zeros(4))])
        params[0] = lib.full((5,), 2.0)
        return (_state_names(params), [tuple(p.shape) for p in params],
                [type(p).__name__ for p in params], params[-1].shape[0])

    ours, theirs = build(rg.nn, rg), build(torch.nn, torch)
    assert ours[0] == theirs[0] and ours[1] == theirs[1] and ours[3] == theirs[3]
    assert set(ours[2]) == {"Parameter"}


def test_parameter_list_shares_memory_with_given_tensors():
    t = rg.zeros(2)
    params = rg.nn.ParameterList([t])
    t.numpy()[0] = 3.0
    assert params[0].detach().numpy()[0] == 3.0 and params[0].requires_grad


def test_parameter_list_repr_matches_torch_format():
    params = rg.nn.ParameterList([rg.nn.Parameter(rg.zeros(2, 3)),
                                  rg.nn.Parameter(rg.zeros(4, dtype=rg.float64))])
    theirs = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(2, 3)),
                                     torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))])
    assert repr(params) == repr(theirs).replace("torch.", "retrograd.")


def test_parameter_dict_order_like_torch():
    def build(nn, lib):
        plain = nn.ParameterDict({"z": nn.Parameter(lib.zeros(1)), "a": lib.zeros(2)})
        ordered = nn.ParameterDict(OrderedDict(z=lib.zeros(1), a=lib.zeros(2)))
        pairs = nn.ParameterDict([("z", lib.zeros(1)), ("a", lib.zeros(2))])
        plain["m"] = lib.zeros(3)
        plain.update({"y": lib.zeros(1), "b": lib.zeros(1)})
        return [_state_names(d) for d in (plain, ordered, pairs)]

    assert build(rg.nn, rg) == build(torch.nn, torch)


def test_parameter_dict_access_and_edit():
    params = rg.nn.ParameterDict({"w": rg.zeros(2)})
    assert isinstance(params["w"], rg.nn.Parameter) and "w" in params and len(params) == 1
    assert params.get("missing") is None and params.get("w") is params["w"]
    assert list(params.keys()) == ["w"] and list(params) == ["w"]
    assert [p.shape for p in params.values()] == [(2,)]
    popped = params.pop("w")
    assert popped.shape == (2,) and len(params) == 0
    params["v"] = rg.ones(1)
    del params["v"]
    assert list(params.named_parameters()) == []


def test_parameter_dict_repr_format():
    params = rg.nn.ParameterDict({"b": rg.zeros(3), "a": rg.zeros(1, 2)})
    assert repr(params) == ("ParameterDict(\n"
                            "    (a): Parameter containing: [retrograd.float32 of size 1x2]\n"
                            "    (b): Parameter containing: [retrograd.float32 of size 3]\n)")


def test_containers_inside_a_model_train_together():
    class Model(rg.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = rg.nn.ModuleList([rg.nn.Linear(3, 3) for _ in range(2)])
            self.heads = rg.nn.ModuleDict({"out": rg.nn.Linear(3, 1)})
            self.gains = rg.nn.ParameterList([rg.ones(3), rg.ones(3)])

        def forward(self, x):
            for block, gain in zip(self.blocks, self.gains):
                x = block(x) * gain
            return self.heads["out"](x)

    model = Model()
    model(rg.randn(4, 3)).sum().backward()
    names = [n for n, p in model.named_parameters() if p.grad is not None]
    assert names == [n for n, _ in model.named_parameters()] and len(names) == 8


# ---------------------------------------------------------------- Sequential arithmetic,
# ParameterDict's dict methods
def test_sequential_add_mul_and_in_place_forms_match_torch():
    def build(nn):
        return nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    ours, theirs = build(rg.nn), build(torch.nn)
    for make in (lambda s, nn: s + build(nn), lambda s, nn: s * 3, lambda s, nn: 2 * s):
        a, b = make(ours, rg.nn), make(theirs, torch.nn)
        assert repr(a) == repr(b) and _state_names(a) == _state_names(b)
        assert a[0] is ours[0]                  # the same modules, shared as in torch
    ours *= 2
    theirs *= 2
    ours += build(rg.nn)
    theirs += build(torch.nn)
    assert repr(ours) == repr(theirs) and len(ours) == 6
    with pytest.raises(ValueError, match="supports only Sequential operands, got ModuleList"):
        ours + rg.nn.ModuleList()
    with pytest.raises(ValueError, match="non-positive multiplication factor 0"):
        ours * 0
    with pytest.raises(TypeError, match="unsupported operand type"):
        ours * 1.5


def test_parameter_dict_dict_methods_match_torch():
    def build(nn, ones):
        return nn.ParameterDict(OrderedDict([("b", nn.Parameter(ones(2))),
                                             ("a", nn.Parameter(ones(1)))]))
    ours, theirs = build(rg.nn, rg.ones), build(torch.nn, torch.ones)
    for d in (ours, theirs):
        copied = d.copy()
        assert list(copied) == ["b", "a"] and copied["a"] is d["a"]
        assert list(reversed(d)) == ["a", "b"]
        assert d.popitem()[0] == "a" and list(d) == ["b"]
        assert d.setdefault("b") is d["b"]
        assert list(d.fromkeys(["x", "y"], d["b"])) == ["x", "y"]
        d.clear()
        assert len(d) == 0
    assert np.array_equal(ours.setdefault("c", rg.ones(3)).detach().numpy(), np.ones(3))
    assert isinstance(ours["c"], rg.nn.Parameter)
