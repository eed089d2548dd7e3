"""transforms against NumPy references (and ToTensor+Normalize against torchvision's arithmetic,
written out with torch, since torchvision itself is not a dependency)."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.datasets.transforms import (
    Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToTensor,
)


def images(*shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def replica(seed):
    """A generator in the state retrograd's has right after rg.manual_seed(seed)."""
    return np.random.Generator(np.random.PCG64(seed))


# ---------------------------------------------------------------------- ToTensor
@pytest.mark.parametrize("shape, chw", [((5, 7), (1, 5, 7)), ((5, 7, 3), (3, 5, 7)),
                                        ((1, 1, 1), (1, 1, 1))])
def test_to_tensor_uint8(shape, chw):
    x = images(*shape)
    y = ToTensor()(x)
    assert y.shape == chw and y.dtype == rg.float32
    ref = (x.reshape(shape[:2] + (-1,)).transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y.numpy(), ref)
    assert y.numpy().flags.c_contiguous
    assert y.numpy().min() >= 0.0 and y.numpy().max() <= 1.0


def test_to_tensor_batch_equals_stacked_images():
    for shape in [(4, 5, 7), (4, 5, 7, 3)]:
        x = images(*shape)
        batch = ToTensor().apply_batch(x)
        np.testing.assert_array_equal(batch.numpy(), np.stack([ToTensor()(a).numpy() for a in x]))


def test_to_tensor_float_input_keeps_values_and_dtype():
    x = np.random.default_rng(0).random((4, 4, 2))
    y = ToTensor()(x)
    assert y.dtype == rg.float64
    np.testing.assert_array_equal(y.numpy(), x.transpose(2, 0, 1))


@pytest.mark.parametrize("x, error, match", [
    (np.zeros((2, 2), np.int32), TypeError, "uint8 or float image, got dtype int32"),
    (np.zeros(5, np.uint8), ValueError, r"\(H, W\) or \(H, W, C\), got shape \(5,\)"),
    (rg.zeros(1, 2, 2), TypeError, "already a tensor"),
    ([[0, 1]], TypeError, "expected a NumPy array or a Tensor, got list"),
])
def test_to_tensor_errors(x, error, match):
    with pytest.raises(error, match=match):
        ToTensor()(x)


# ---------------------------------------------------------------------- Normalize
def test_normalize_per_channel():
    x = rg.rand(3, 4, 5)
    mean, std = (0.1, 0.2, 0.3), (0.5, 1.5, 2.5)
    y = Normalize(mean, std)(x)
    ref = (x.numpy() - np.float32(mean).reshape(3, 1, 1)) / np.float32(std).reshape(3, 1, 1)
    np.testing.assert_array_equal(y.numpy(), ref)
    assert y.dtype == rg.float32
    batch = rg.rand(2, 3, 4, 5)
    np.testing.assert_array_equal(Normalize(mean, std).apply_batch(batch).numpy(),
                                  np.stack([Normalize(mean, std)(rg.tensor(b)).numpy()
                                            for b in batch.numpy()]))


def test_normalize_one_value_for_all_channels_and_float64():
    x = rg.rand(2, 3, 3, dtype=rg.float64)
    y = Normalize(0.5, 0.25)(x)
    assert y.dtype == rg.float64
    np.testing.assert_allclose(y.numpy(), (x.numpy() - 0.5) / 0.25, rtol=1e-15)


def test_to_tensor_then_normalize_matches_torchvision_arithmetic_bitwise():
    x = images(6, 5, 3)
    ours = Compose([ToTensor(), Normalize((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))])(x)
    t = torch.from_numpy(x).permute(2, 0, 1).contiguous().float().div(255)
    t = t.sub(torch.tensor([0.4914, 0.4822, 0.4465]).view(-1, 1, 1))
    t = t.div(torch.tensor([0.247, 0.243, 0.261]).view(-1, 1, 1))
    np.testing.assert_array_equal(ours.numpy(), t.numpy())


@pytest.mark.parametrize("x, args, error, match", [
    (rg.zeros(3, 2, 2), ((0.1, 0.2), (1.0, 1.0)), ValueError,
     r"2 means and stds for a tensor with 3 channels \(shape \(3, 2, 2\)\)"),
    (rg.zeros(2, 2), ((0.1,), (1.0,)), ValueError, r"\(\.\.\., C, H, W\), got shape \(2, 2\)"),
    (rg.zeros(1, 2, 2, dtype=rg.int64), ((0.1,), (1.0,)), TypeError, "float tensor, got dtype"),
    (np.zeros((1, 2, 2), np.float32), ((0.1,), (1.0,)), TypeError, "apply ToTensor"),
])
def test_normalize_input_errors(x, args, error, match):
    with pytest.raises(error, match=match):
        Normalize(*args)(x)


def test_normalize_argument_errors():
    with pytest.raises(ValueError, match="must not contain zeros"):
        Normalize((0.1, 0.2), (1.0, 0.0))
    with pytest.raises(ValueError, match="same length"):
        Normalize((0.1, 0.2), (1.0,))


# ---------------------------------------------------------------------- RandomCrop
def padded_hwc(x, ltrb, mode="constant", fill=0):
    left, top, right, bottom = ltrb
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (x.ndim - 2)
    kwargs = dict(constant_values=fill) if mode == "constant" else {}
    return np.pad(x, widths, mode=mode, **kwargs)


@pytest.mark.parametrize("shape, size, padding, ltrb", [
    ((8, 8, 3), 8, 2, (2, 2, 2, 2)),
    ((8, 6), (5, 4), None, (0, 0, 0, 0)),
    ((7, 9, 1), (7, 9), (1, 3), (1, 3, 1, 3)),
    ((6, 6, 2), 4, (0, 1, 2, 3), (0, 1, 2, 3)),
])
def test_random_crop_image_matches_a_window_of_the_padded_image(shape, size, padding, ltrb):
    x = images(*shape)
    th, tw = (size, size) if isinstance(size, int) else size
    ref_pad = padded_hwc(x, ltrb)
    rg.manual_seed(4)
    gen = replica(4)
    crop = RandomCrop(size, padding=padding)
    for _ in range(5):
        out = crop(x)
        top = gen.integers(0, ref_pad.shape[0] - th + 1)
        left = gen.integers(0, ref_pad.shape[1] - tw + 1)
        np.testing.assert_array_equal(out, ref_pad[top:top + th, left:left + tw])
        assert isinstance(out, np.ndarray) and out.dtype == np.uint8


def test_random_crop_reaches_every_offset():
    x = np.arange(1, 17, dtype=np.uint8).reshape(4, 4)
    crop = RandomCrop(4, padding=1)
    # x[1, 1] == 6 sits at (2, 2) of the padded image, so at (2 - top, 2 - left) in the crop.
    where = {tuple(int(v) for v in np.argwhere(crop(x) == 6)[0]) for _ in range(400)}
    assert where == {(r, c) for r in range(3) for c in range(3)}


@pytest.mark.parametrize("as_tensor", [False, True])
def test_random_crop_batch_matches_per_image_windows(as_tensor):
    x = images(6, 3, 5, 5) if as_tensor else images(6, 5, 5, 3)
    batch = rg.tensor(x) if as_tensor else x
    rg.manual_seed(9)
    out = RandomCrop(4, padding=2).apply_batch(batch)
    gen = replica(9)
    top, left = gen.integers(0, 6, size=6), gen.integers(0, 6, size=6)
    out = out.numpy() if as_tensor else out
    assert out.shape == ((6, 3, 4, 4) if as_tensor else (6, 4, 4, 3))
    for n in range(6):
        image = x[n].transpose(1, 2, 0) if as_tensor else x[n]
        ref = padded_hwc(image, (2, 2, 2, 2))[top[n]:top[n] + 4, left[n]:left[n] + 4]
        got = out[n].transpose(1, 2, 0) if as_tensor else out[n]
        np.testing.assert_array_equal(got, ref)
    assert len(set(zip(top, left))) > 1  # the draws really vary


@pytest.mark.parametrize("shape", [(5, 6, 7), (2, 3, 2, 6, 7)])
def test_random_crop_batch_of_gray_images_and_extra_dims(shape):
    x = images(*shape)
    batch = x if len(shape) == 3 else rg.tensor(x)  # (N, H, W) arrays, (N, ..., H, W) tensors
    rg.manual_seed(3)
    out = RandomCrop((4, 5)).apply_batch(batch)
    out = out if len(shape) == 3 else out.numpy()
    gen = replica(3)
    top, left = gen.integers(0, 3, size=shape[0]), gen.integers(0, 3, size=shape[0])
    for n in range(shape[0]):
        np.testing.assert_array_equal(out[n], x[n][..., top[n]:top[n] + 4, left[n]:left[n] + 5])


def test_random_crop_tensor_image_crops_the_last_two_dims():
    x = rg.rand(2, 5, 6)
    rg.manual_seed(1)
    out = RandomCrop((3, 4))(x)
    gen = replica(1)
    top, left = gen.integers(0, 3), gen.integers(0, 3)
    assert isinstance(out, rg.Tensor)
    np.testing.assert_array_equal(out.numpy(), x.numpy()[:, top:top + 3, left:left + 4])


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric"])
def test_random_crop_padding_modes(mode):
    x = images(5, 5, 2)
    rg.manual_seed(2)
    out = RandomCrop(5, padding=2, padding_mode=mode)(x)
    gen = replica(2)
    top, left = gen.integers(0, 5), gen.integers(0, 5)
    np.testing.assert_array_equal(out, padded_hwc(x, (2,) * 4, mode)[top:top + 5, left:left + 5])


def test_random_crop_fill_and_pad_if_needed():
    x = np.full((2, 3), 9, np.uint8)
    rg.manual_seed(0)
    out = RandomCrop((4, 5), pad_if_needed=True, fill=7)(x)
    gen = replica(0)
    ref = padded_hwc(x, (2, 2, 2, 2), fill=7)  # both sides by the shortfall, as torchvision
    top, left = gen.integers(0, ref.shape[0] - 3), gen.integers(0, ref.shape[1] - 4)
    np.testing.assert_array_equal(out, ref[top:top + 4, left:left + 5])


@pytest.mark.parametrize("make, match", [
    (lambda: RandomCrop(9)(np.zeros((8, 8), np.uint8)),
     r"crop size \(9, 9\) is larger than the \(padded\) image size \(8, 8\)"),
    (lambda: RandomCrop(2, padding=(1, 2, 3)),
     r"RandomCrop: padding must be an int or a tuple of 2 or 4 ints, got \(1, 2, 3\)"),
    (lambda: RandomCrop(2, padding=-1), r"RandomCrop: padding must be >= 0, got -1"),
    (lambda: RandomCrop(0), r"RandomCrop: size must be >= 1, got 0"),
    (lambda: RandomCrop((2, 2, 2)),
     r"RandomCrop: size must be an int or a tuple of 2 ints, got \(2, 2, 2\)"),
    (lambda: RandomCrop(2, padding_mode="wrap"),
     r"RandomCrop: padding_mode must be 'constant', 'edge', 'reflect' or 'symmetric', got "
     r"'wrap'"),
    (lambda: RandomCrop(2).apply_batch(np.zeros((4, 4), np.uint8)), r"\(N, H, W\)"),
])
def test_random_crop_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------------- RandomHorizontalFlip
def test_flip_certain_and_never():
    x = images(3, 4, 2)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x), x[:, ::-1])
    assert RandomHorizontalFlip(0.0)(x) is x
    t = rg.rand(2, 3, 4)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(t).numpy(), t.numpy()[..., ::-1])


def test_flip_draws_one_uniform_per_image():
    x = images(3, 4)
    rg.manual_seed(6)
    gen = replica(6)
    for _ in range(8):
        flipped = gen.random() < 0.5
        np.testing.assert_array_equal(RandomHorizontalFlip()(x), x[:, ::-1] if flipped else x)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_flip_batch(as_tensor):
    x = images(16, 2, 3, 4)
    rg.manual_seed(8)
    out = RandomHorizontalFlip().apply_batch(rg.tensor(x) if as_tensor else x)
    out = out.numpy() if as_tensor else out
    flips = replica(8).random(16) < 0.5
    assert 0 < flips.sum() < 16
    w_axis = -1 if as_tensor else 1  # (C, H, W) tensors, (H, W, C) arrays
    for n in range(16):
        np.testing.assert_array_equal(out[n], np.flip(x[n], w_axis) if flips[n] else x[n])


def test_flip_errors():
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip: p has to be between 0 and 1, "
                                         r"but got 1.5"):
        RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\), got shape \(3,\)"):
        RandomHorizontalFlip()(rg.zeros(3))


# ---------------------------------------------------------------------- Compose
def test_compose_chains_and_batches_with_a_plain_callable_inside():
    plus_one = lambda t: t + 1.0  # noqa: E731 - a user transform without apply_batch
    pipeline = Compose([ToTensor(), plus_one, Normalize((0.5,), (2.0,))])
    x = images(3, 4, 5)
    batch = pipeline.apply_batch(x)
    np.testing.assert_allclose(batch.numpy(), ((x[:, None] / 255.0 + 1.0) - 0.5) / 2.0,
                               rtol=1e-6)
    np.testing.assert_array_equal(batch.numpy()[1], pipeline(x[1]).numpy())
    assert "ToTensor()" in repr(pipeline) and "Normalize" in repr(pipeline)
    with pytest.raises(TypeError, match="must be callable"):
        Compose([ToTensor(), 3])
