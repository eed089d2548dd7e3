"""Creating tensors (retrograd/creation.py): from data (default dtypes as PyTorch: Python
floats -> float32, ints -> int64, bools -> bool, NumPy arrays keep their dtype), memory sharing
(tensor copies, from_numpy/as_tensor share), filled tensors, ranges, random tensors and the
seed, the *_like family, and their errors."""

import numpy as np
import pytest
import torch

import retrograd as rg


def _name(dtype):
    return str(dtype).split(".")[-1]


@pytest.mark.parametrize("data", [
    1.5, 3, True, [1.0, 2.0], [1, 2], [True, False], [1, 2.5], [[1, 2], [3, 4]], [], [[]],
    [True, 2], np.float64(1.5), np.int32(3), np.array([1.0, 2.0]), np.array([1, 2], np.int32),
    np.array([1, 2], np.uint8), np.array([1.0], np.float16), np.array([True]),
    np.array(2.5, np.float32),
], ids=repr)
def test_default_dtypes_match_torch(data):
    x, tx = rg.tensor(data), torch.tensor(data)
    assert _name(x.dtype) == _name(tx.dtype), f"{data!r}: {x.dtype} != torch {tx.dtype}"
    assert x.shape == tuple(tx.shape)
    np.testing.assert_array_equal(x.numpy(), tx.numpy())


def test_explicit_dtype_and_float64_precision():
    assert rg.tensor([1, 2], dtype=rg.float64).dtype == rg.float64
    assert rg.tensor(0.1, dtype=rg.float64).item() == 0.1  # not rounded through float32
    assert rg.tensor([1.7, -1.7], dtype=rg.int64).tolist() == torch.tensor(
        [1.7, -1.7], dtype=torch.int64).tolist()
    assert rg.tensor([1.0], dtype="float16").dtype == rg.float16
    assert rg.tensor([1.0], dtype=np.float64).dtype == rg.float64


def test_tensor_from_tensors():
    x = rg.tensor([1.0, 2.0])
    y = rg.tensor(x)
    y.numpy()[0] = 5.0
    assert x.tolist() == [1.0, 2.0]  # a copy
    z = rg.tensor([rg.tensor(1.0), rg.tensor(2.0)])
    assert z.tolist() == [1.0, 2.0] and z.dtype == rg.float32
    assert _name(rg.Tensor([1, 2]).dtype) == _name(torch.Tensor([1, 2]).dtype) == "float32"


def test_tensor_copies_but_from_numpy_and_as_tensor_share():
    a = np.zeros(3)
    t, f, s = rg.tensor(a), rg.from_numpy(a), rg.as_tensor(a)
    a[0] = 1.0
    assert t.tolist()[0] == 0.0 and f.tolist()[0] == 1.0 and s.tolist()[0] == 1.0
    assert f.dtype == rg.float64
    x = rg.ones(2)
    assert rg.as_tensor(x) is x and rg.as_tensor(x, dtype=rg.float64).dtype == rg.float64
    assert rg.as_tensor([1, 2]).dtype == rg.int64


def test_requires_grad_argument():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    assert x.requires_grad and x.is_leaf
    for make in (rg.zeros, rg.ones, rg.randn, rg.rand, rg.empty):
        assert make(2, 3, requires_grad=True).requires_grad
    assert rg.full((2,), 1.0, requires_grad=True).requires_grad
    assert rg.zeros_like(x, requires_grad=True).requires_grad


def test_creation_errors():
    with pytest.raises(ValueError, match="tensor: cannot build a tensor from ragged data"):
        rg.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match=r"tensor: cannot build a tensor from data of type <U1"):
        rg.tensor(["a"])
    with pytest.raises(TypeError, match="from_numpy: expected a NumPy array, got list"):
        rg.from_numpy([1, 2])
    with pytest.raises(TypeError, match=r"zeros: sizes must be ints, got \(2.0, 3\)"):
        rg.zeros(2.0, 3)
    with pytest.raises(RuntimeError, match="requires_grad: only floating-point tensors"):
        rg.zeros(2, dtype=rg.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires_grad: only floating-point tensors"):
        rg.arange(3, requires_grad=True)


# ---------------------------------------------------------------- filled tensors
@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("shape", [(2, 3), ((2, 3),), ([4],), ((),), (0, 2)], ids=str)
def test_filled_shapes_and_default_dtype(name, shape):
    x, tx = getattr(rg, name)(*shape), getattr(torch, name)(*shape)
    assert x.shape == tuple(tx.shape) and x.dtype == rg.float32
    if name != "empty":
        np.testing.assert_array_equal(x.numpy(), tx.numpy())


@pytest.mark.parametrize("fill", [1.5, 2, True, -0.0])
def test_full_infers_dtype_as_torch(fill):
    x, tx = rg.full((2, 3), fill), torch.full((2, 3), fill)
    assert _name(x.dtype) == _name(tx.dtype)
    np.testing.assert_array_equal(x.numpy(), tx.numpy())
    assert rg.full((2,), 1, dtype=rg.float16).dtype == rg.float16


def test_like_family_keeps_shape_and_dtype():
    base = rg.tensor(np.arange(6, dtype=np.int32).reshape(2, 3))
    for name in ("zeros_like", "ones_like", "empty_like"):
        y = getattr(rg, name)(base)
        assert y.shape == (2, 3) and y.dtype == rg.int32
    assert rg.full_like(base, 7).tolist() == [[7, 7, 7], [7, 7, 7]]
    assert rg.ones_like(base, dtype=rg.float64).dtype == rg.float64
    f = rg.ones(2, 3, dtype=rg.float64)
    assert rg.randn_like(f).dtype == rg.float64 and rg.rand_like(f).shape == (2, 3)


# ---------------------------------------------------------------- ranges
@pytest.mark.parametrize("args", [(5,), (2, 7), (0, 10, 3), (5, 0, -2), (0.0, 1.0, 0.25),
                                  (3.0,), (1, 2.5, 0.5)], ids=str)
def test_arange_matches_torch(args):
    x, tx = rg.arange(*args), torch.arange(*args)
    assert _name(x.dtype) == _name(tx.dtype)
    np.testing.assert_allclose(x.numpy(), tx.numpy())


def test_arange_with_dtype_linspace_and_eye():
    assert rg.arange(4, dtype=rg.float64).dtype == rg.float64
    np.testing.assert_allclose(rg.linspace(0, 1, 5).numpy(), torch.linspace(0, 1, 5).numpy())
    assert rg.linspace(0, 1, 5).dtype == rg.float32
    np.testing.assert_array_equal(rg.eye(3).numpy(), torch.eye(3).numpy())
    np.testing.assert_array_equal(rg.eye(2, 3).numpy(), torch.eye(2, 3).numpy())


# ---------------------------------------------------------------- random
def test_random_tensors_shapes_dtypes_and_ranges():
    rg.manual_seed(0)
    n = rg.randn(2000)
    assert n.dtype == rg.float32 and abs(n.mean().item()) < 0.1 and abs(n.std().item() - 1) < 0.1
    assert rg.randn(2, 3, dtype=rg.float64).dtype == rg.float64
    assert rg.randn((4, 5)).shape == (4, 5)
    u = rg.rand(2000)
    assert 0.0 <= u.min().item() and u.max().item() < 1.0 and abs(u.mean().item() - 0.5) < 0.05
    i = rg.randint(3, 7, (500,))
    assert i.dtype == rg.int64 and i.min().item() == 3 and i.max().item() == 6
    assert rg.randint(5, size=(2, 2)).shape == (2, 2)
    p = rg.randperm(10)
    assert p.dtype == rg.int64 and sorted(p.tolist()) == list(range(10))


def test_manual_seed_makes_streams_reproducible():
    rg.manual_seed(42)
    a = rg.randn(5).tolist()
    state = rg.get_rng_state()
    b = rg.rand(3).tolist()
    rg.manual_seed(42)
    assert rg.randn(5).tolist() == a
    rg.set_rng_state(state)
    assert rg.rand(3).tolist() == b
    rg.manual_seed(43)
    assert rg.randn(5).tolist() != a


# ---------------------------------------------------------------- PyTorch's keywords
_NOT_MIRRORED = {"out", "layout", "memory_format", "generator"}  # generator: retrograd/random.py


def _torch_keywords(name):
    """The keyword names of torch.<name>'s documented signature."""
    line = next(line for line in getattr(torch, name).__doc__.splitlines()
                if line.strip().startswith(f"{name}("))
    inside = line[line.index("(") + 1:line.rindex(")")].replace("\\*", "*")
    return {part.split("=")[0].split(":")[0].strip() for part in inside.split(",")
            if "=" in part}


@pytest.mark.parametrize("name", [
    "tensor", "as_tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "eye", "randn",
    "rand", "randint", "randperm", "zeros_like", "ones_like", "full_like", "empty_like",
    "randn_like", "rand_like",
])
def test_creation_functions_take_torchs_keywords(name):
    import inspect

    ours = set(inspect.signature(getattr(rg, name)).parameters)
    missing = _torch_keywords(name) - _NOT_MIRRORED - ours
    assert not missing, f"{name} lacks torch's keywords {sorted(missing)}"
    assert "device" in ours


def test_creation_with_every_keyword_like_torch():
    kwargs = dict(dtype=None, device="cpu", requires_grad=True, pin_memory=False)
    for lib in (rg, torch):
        dtype = lib.float64
        x = lib.tensor([1.0], **dict(kwargs, dtype=dtype))
        y = lib.zeros(2, 3, **kwargs)
        z = lib.full((2,), 1.5, **kwargs)
        assert x.dtype == dtype and x.requires_grad and y.shape == (2, 3) and z.requires_grad
