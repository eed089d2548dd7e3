"""PyTorch's Tensor API around dtypes and construction (retrograd/_size.py,
retrograd/_tensor_types.py and the matching Tensor methods): Size, the legacy constructors
Tensor(...) and FloatTensor(...) and their isinstance checks, x.type(), the conversion methods,
and the new_* family, each compared with PyTorch."""

import pickle

import numpy as np
import pytest
import torch

import retrograd as rg

LEGACY_TYPES = ["FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor",
                "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor"]


def _name(dtype):
    return str(dtype).split(".")[-1]


def _same(ours, theirs, values=True):
    assert _name(ours.dtype) == _name(theirs.dtype)
    assert ours.shape == tuple(theirs.shape)
    if values:
        np.testing.assert_array_equal(ours.numpy().astype(np.float64),
                                      theirs.float().numpy().astype(np.float64))


# ---------------------------------------------------------------- Size
def test_shape_and_size_are_sizes_like_torch():
    x, tx = rg.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    for ours, theirs in ((x.shape, tx.shape), (x.size(), tx.size())):
        assert isinstance(ours, rg.Size) and isinstance(ours, tuple)
        assert ours == theirs == (2, 3, 4) and ours.numel() == theirs.numel() == 24
    assert x.size(1) == tx.size(1) == 3 and type(x.size(1)) is int
    assert rg.Size().numel() == torch.Size().numel() == 1


@pytest.mark.parametrize("op", [
    lambda s: s[1:], lambda s: s[:0], lambda s: s + (5,), lambda s: (5,) + s, lambda s: s * 2,
    lambda s: 2 * s, lambda s: s + s,
])
def test_size_arithmetic_and_slices_stay_sizes(op):
    ours, theirs = op(rg.Size([2, 3])), op(torch.Size([2, 3]))
    assert type(ours) is rg.Size and type(theirs) is torch.Size
    assert ours == tuple(theirs) and ours.numel() == theirs.numel()


def test_size_behaves_as_a_tuple():
    s = rg.Size([2, 3])
    a, b = s
    assert (a, b) == (2, 3) and s[0] == 2 and s[-1] == 3 and len(s) == 2 and hash(s) == hash((2, 3))
    assert repr(s) == "(2, 3)"  # prints as a tuple: error messages quote shapes
    assert np.zeros(s).shape == (2, 3) and rg.zeros(s).shape == (2, 3)
    assert type(pickle.loads(pickle.dumps(s))) is rg.Size
    assert rg.Size([np.int64(2), rg.tensor(3)]) == (2, 3)


@pytest.mark.parametrize("items", [[2.0], ["2"], [None], [1.5, 2]], ids=repr)
def test_size_needs_ints_as_torch(items):
    with pytest.raises(TypeError):
        torch.Size(items)
    with pytest.raises(TypeError, match="Size: takes an iterable of ints"):
        rg.Size(items)


# ---------------------------------------------------------------- Tensor(...), the legacy way
@pytest.mark.parametrize("args", [
    ([1.0, 2.0],), ([1, 2],), ([True, False],), ([[1, 2], [3, 4]],), ([],), ((2, 3),),
    (np.array([1, 2]),), (np.array([1.5, 2.5]),), (np.array([1, 2], np.uint8),),
    (np.array(2.5),), (range(3),), (rg.Size([2, 3]),), (2, 3), (3,), (2, 0), (),
], ids=repr)
def test_tensor_class_as_constructor_matches_torch(args):
    torch_args = tuple(torch.Size(a) if isinstance(a, rg.Size) else a for a in args)
    ours, theirs = rg.Tensor(*args), torch.Tensor(*torch_args)
    sizes = all(isinstance(a, (int, rg.Size)) for a in args) and args
    _same(ours, theirs, values=not sizes)  # sizes: PyTorch's values are uninitialized
    if sizes:
        assert not ours.numpy().any()  # retrograd fills with zeros
    assert type(ours) is rg.Tensor and ours.device == rg.device("cpu")


def test_tensor_class_copies_data_but_shares_a_tensor():
    a = np.array([1.0, 2.0], np.float32)
    t = rg.Tensor(a)
    a[0] = 5.0
    assert t.tolist() == [1.0, 2.0]
    for make, source in ((rg.Tensor, rg.tensor([1, 2])), (torch.Tensor, torch.tensor([1, 2]))):
        alias = make(source)
        alias[0] = 7
        assert source.tolist() == [7, 2] and _name(alias.dtype) == "int64"


def test_tensor_class_keeps_retrograd_keywords():
    x = rg.Tensor([1, 2], dtype=rg.int64)
    assert x.dtype == rg.int64 and x.tolist() == [1, 2]
    y = rg.Tensor([1.0, 2.0], requires_grad=True)
    assert y.requires_grad and y.is_leaf and rg.Tensor(2, device="cpu").shape == (2,)


@pytest.mark.parametrize("args, error, message", [
    ((2.5,), TypeError, r"Tensor: data must be a sequence \(got float\)"),
    ((True,), TypeError, r"Tensor: data must be a sequence \(got bool\)"),
    ((np.float64(2.0),), TypeError, "data must be a sequence"),
    ((-1,), RuntimeError, r"Tensor: negative dimension in size \(-1,\)"),
    (([1, 2], 3), TypeError, "Tensor: expected sizes"),
    ((2, 3.0), TypeError, "Tensor: expected sizes"),
    (([[1, 2], [3]],), ValueError, "ragged"),
], ids=repr)
def test_tensor_class_errors_as_torch(args, error, message):
    with pytest.raises(error):
        torch.Tensor(*args)
    with pytest.raises(error, match=message):
        rg.Tensor(*args)


def test_tensor_class_refuses_other_devices():
    with pytest.raises(RuntimeError, match="Tensor: retrograd runs on the CPU only, got device "
                                           "'cuda'"):
        rg.Tensor(2, 3, device="cuda")


@pytest.mark.parametrize("name", LEGACY_TYPES)
@pytest.mark.parametrize("args", [([1, 0, 2],), ([1.75, 2.5],), (2, 3), (), (np.array([1, 3]),)],
                         ids=repr)
def test_typed_constructors_match_torch(name, args):
    ours, theirs = getattr(rg, name)(*args), getattr(torch, name)(*args)
    _same(ours, theirs, values=not (args and isinstance(args[0], int)))


def test_typed_constructors_convert_python_floats_straight_to_their_dtype():
    # NOTE: torch.DoubleTensor([1.7]) rounds 1.7 through float32 first; retrograd does not
    assert rg.DoubleTensor([1.7]).tolist() == [1.7]
    assert rg.LongTensor([1.7, -2.2]).tolist() == torch.LongTensor([1.7, -2.2]).tolist()


@pytest.mark.parametrize("name", LEGACY_TYPES)
def test_isinstance_with_legacy_types_checks_the_dtype_as_torch(name):
    for maker in ("zeros", "ones"):
        for dtype in ("float32", "float64", "int64", "bool", "uint8"):
            ours = getattr(rg, maker)(2, dtype=getattr(rg, dtype))
            theirs = getattr(torch, maker)(2, dtype=getattr(torch, dtype))
            assert isinstance(ours, getattr(rg, name)) == isinstance(theirs, getattr(torch, name))
    assert isinstance(rg.nn.Parameter(rg.zeros(2)), rg.FloatTensor)
    assert not isinstance([1.0], rg.FloatTensor)
    assert repr(rg.FloatTensor) == "<class 'retrograd.FloatTensor'>"


def test_typed_constructor_of_a_tensor_needs_its_dtype():
    x = rg.LongTensor(rg.tensor([1, 2]))
    assert x.dtype == rg.int64
    with pytest.raises(TypeError):
        torch.LongTensor(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"LongTensor: expected a tensor of dtype retrograd\.int64, "
                                        r"got one of dtype retrograd\.float32"):
        rg.LongTensor(rg.tensor([1.0, 2.0]))


# ---------------------------------------------------------------- type() and conversions
DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
          "uint8", "bool"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_type_names_match_torch(dtype):
    ours = rg.zeros(2, dtype=getattr(rg, dtype)).type()
    theirs = torch.zeros(2, dtype=getattr(torch, dtype)).type()
    assert ours == theirs and ours.startswith("torch.") and ours.endswith("Tensor")


@pytest.mark.parametrize("target", ["torch.DoubleTensor", "torch.LongTensor", "torch.BoolTensor",
                                    "torch.HalfTensor", "torch.ByteTensor"])
def test_type_converts_to_a_type_name_or_legacy_class(target):
    x, tx = rg.tensor([0.0, 1.5, -2.0]), torch.tensor([0.0, 1.5, -2.0])
    _same(x.type(target), tx.type(target))
    class_name = target.split(".")[-1]
    _same(x.type(getattr(rg, class_name)), tx.type(getattr(torch, class_name)))
    assert x.type("retrograd." + class_name).dtype == x.type(target).dtype


def test_type_to_the_same_type_returns_self_as_torch():
    x = rg.ones(2)
    assert x.type(rg.float32) is x and x.type("torch.FloatTensor") is x
    assert x.type(rg.FloatTensor) is x


@pytest.mark.parametrize("bad", ["float", "FloatTensor", "torch.FooTensor"])
def test_type_refuses_unknown_names_as_torch(bad):
    with pytest.raises(ValueError):
        torch.ones(2).type(bad)
    with pytest.raises(ValueError, match=rf"type: invalid type '{bad}'"):
        rg.ones(2).type(bad)


@pytest.mark.parametrize("method", ["short", "byte", "char", "int", "long", "bool", "half",
                                    "bfloat16", "float", "double"])
def test_conversion_methods_match_torch(method):
    data = [0.0, 1.5, -2.7, 100.0]
    _same(getattr(rg.tensor(data), method)(), getattr(torch.tensor(data), method)())


# ---------------------------------------------------------------- new_*
def _both(dtype="int32"):
    return rg.tensor([1, 2], dtype=getattr(rg, dtype)), torch.tensor([1, 2],
                                                                     dtype=getattr(torch, dtype))


@pytest.mark.parametrize("call", [
    lambda m, x: x.new_zeros(2, 3), lambda m, x: x.new_zeros((2, 3)),
    lambda m, x: x.new_zeros([2], dtype=m.float64), lambda m, x: x.new_ones(2),
    lambda m, x: x.new_ones(x.shape), lambda m, x: x.new_full((2,), 7),
    lambda m, x: x.new_full((2, 2), 7.5), lambda m, x: x.new_full((2,), 7.5, dtype=m.float32),
    lambda m, x: x.new_tensor([1.5, 2.0]), lambda m, x: x.new_tensor(5),
    lambda m, x: x.new_tensor([1.5, 2.0], dtype=m.float64),
    lambda m, x: x.new_zeros(m.Size([3, 1])), lambda m, x: x.new_zeros(2, device="cpu"),
    lambda m, x: x.new_ones(2, pin_memory=False), lambda m, x: x.new(2, 3).fill_(False),
    lambda m, x: x.new([1, 2]), lambda m, x: x.new(),
])
@pytest.mark.parametrize("dtype", ["int32", "float64", "bool"])
def test_new_methods_match_torch(call, dtype):
    ours, theirs = (call(m, x) for m, x in zip((rg, torch), _both(dtype)))
    _same(ours, theirs)


def test_new_empty_and_requires_grad():
    x = rg.ones(2, dtype=rg.float64)
    empty = x.new_empty(3, 2)
    assert empty.shape == (3, 2) and empty.dtype == rg.float64
    y = x.new_tensor([1.0, 2.0], requires_grad=True)
    assert y.requires_grad and y.is_leaf and y.dtype == rg.float64
    z = x.new_tensor(x)
    assert z is not x and z.numpy() is not x.numpy()  # a copy, as torch
    assert x.new_zeros(2, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="requires_grad: only floating-point tensors"):
        rg.ones(2, dtype=rg.int32).new_zeros(2, requires_grad=True)


@pytest.mark.parametrize("call", [
    lambda x: x.new_zeros(2, device="cuda"), lambda x: x.new_ones(2, device="cuda:0"),
    lambda x: x.new_full((2,), 1, device="cuda"), lambda x: x.new_empty(2, device="mps"),
    lambda x: x.new_tensor([1], device="cuda"), lambda x: x.new(2, device="cuda"),
])
def test_new_methods_refuse_other_devices(call):
    with pytest.raises(RuntimeError, match="retrograd runs on the CPU only, got device"):
        call(rg.ones(2))


@pytest.mark.parametrize("dtype, value", [("bool", 1), ("bool", 0.0), ("int64", 1.5),
                                          ("int32", True), ("float32", True), ("float64", 2)])
def test_fill_and_zero_cast_a_number_to_the_tensors_dtype_as_torch(dtype, value):
    ours = rg.zeros(3, dtype=getattr(rg, dtype)).fill_(value)
    theirs = torch.zeros(3, dtype=getattr(torch, dtype)).fill_(value)
    assert ours.tolist() == theirs.tolist() and ours.dtype == getattr(rg, dtype)
    assert rg.ones(2, dtype=getattr(rg, dtype)).zero_().tolist() == \
        torch.ones(2, dtype=getattr(torch, dtype)).zero_().tolist()
