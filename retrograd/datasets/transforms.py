"""Image transforms with torchvision's names: ``Compose``, ``ToTensor``, ``Normalize``,
``RandomCrop``, ``RandomHorizontalFlip``.

Layouts. A NumPy array is a raw image, (H, W) or (H, W, C) as a PIL image is in torchvision
(the data sets hand these to their transform); a Tensor is (..., H, W), channels first.
``ToTensor`` turns the first into the second. Every transform returns the same kind it got.

Batches. ``t(x)`` transforms one image; ``t.apply_batch(x)`` transforms a whole batch at once,
an array (N, H, W) / (N, H, W, C) or a tensor (N, C, H, W), which is what keeps a training
loop fast (``ArrayDataset.get_batch`` calls it). A random transform draws one independent
choice per image in both cases, from retrograd's generator (``retrograd.manual_seed``), but a
batch draws them in one call, so the stream of random numbers differs from N single calls.

Transforms act on data, outside autograd: they never record graph nodes.
"""

import numpy as np

from retrograd import _checks
from retrograd import random as _random
from retrograd.tensor import Tensor, make_tensor

__all__ = ["Compose", "ToTensor", "Normalize", "RandomCrop", "RandomHorizontalFlip"]


def _unwrap(x, who):
    if isinstance(x, Tensor):
        return x._data, True
    if isinstance(x, np.ndarray):
        return x, False
    raise TypeError(f"{who}: expected a NumPy array or a Tensor, got {type(x).__name__}")


def _rewrap(array, was_tensor):
    return make_tensor(array) if was_tensor else array


def _spatial_axes(array, is_tensor, batched, who):
    """(h_axis, w_axis) of an image or a batch, checking the number of dims."""
    lead = 1 if batched else 0
    if is_tensor:
        if array.ndim < 2 + lead:
            raise ValueError(f"{who}: expected a tensor of shape {'(N, ' if batched else '('}"
                             f"..., H, W), got shape {array.shape}")
        return array.ndim - 2, array.ndim - 1
    if array.ndim not in (2 + lead, 3 + lead):
        layout = "(N, H, W) or (N, H, W, C)" if batched else "(H, W) or (H, W, C)"
        raise ValueError(f"{who}: expected an image array of shape {layout}, got shape "
                         f"{array.shape}")
    return lead, lead + 1


def _apply_batch(transform, batch):
    """A batch through any transform: its ``apply_batch`` if it has one, else image by image."""
    if hasattr(transform, "apply_batch"):
        return transform.apply_batch(batch)
    outs = [transform(item) for item in (batch if isinstance(batch, np.ndarray)
                                         else (make_tensor(a) for a in batch._data))]
    arrays = [o._data if isinstance(o, Tensor) else np.asarray(o) for o in outs]
    stacked = np.stack(arrays)
    return make_tensor(stacked) if isinstance(outs[0], Tensor) else stacked


class Compose:
    """Apply transforms one after the other.

    Example:
        >>> import numpy as np
        >>> from retrograd.datasets.transforms import Compose, Normalize, ToTensor
        >>> t = Compose([ToTensor(), Normalize((0.5,), (0.5,))])
        >>> t(np.array([[0, 255]], dtype=np.uint8))
        tensor([[[-1.,  1.]]])
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {t!r}")

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def apply_batch(self, batch):
        """Each transform on the whole batch (image by image for one without apply_batch)."""
        for t in self.transforms:
            batch = _apply_batch(t, batch)
        return batch

    def __repr__(self):
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToTensor:
    """A raw image array to a float tensor, channels first.

    uint8 (H, W) or (H, W, C) in [0, 255] -> float32 (1, H, W) or (C, H, W) in [0, 1]
    (divided by 255). A float array is only moved to channels first, with its dtype and values
    kept (as torchvision does); other dtypes are refused. A batch (N, H, W) / (N, H, W, C)
    gives (N, 1, H, W) / (N, C, H, W).

    Example:
        >>> import numpy as np
        >>> from retrograd.datasets.transforms import ToTensor
        >>> x = ToTensor()(np.zeros((28, 28, 3), dtype=np.uint8))
        >>> x.shape, x.dtype
        ((3, 28, 28), retrograd.float32)
    """

    def __call__(self, pic):
        return self._convert(pic, batched=False)

    def apply_batch(self, batch):
        return self._convert(batch, batched=True)

    def _convert(self, pic, batched):
        if isinstance(pic, Tensor):
            raise TypeError(f"ToTensor: expected a NumPy image array, got a Tensor of shape "
                            f"{tuple(pic.shape)} (it is already a tensor)")
        array, _ = _unwrap(pic, "ToTensor")
        _spatial_axes(array, False, batched, "ToTensor")
        if array.ndim == 2 + batched:
            array = np.expand_dims(array, -1)
        chw = np.moveaxis(array, -1, -3)
        if array.dtype == np.uint8:
            # Same arithmetic as torchvision (float32 divided by 255), so values agree bitwise.
            out = chw.astype(np.float32, order="C")
            out /= np.float32(255.0)
            return make_tensor(out)
        if array.dtype.kind == "f":
            return make_tensor(np.ascontiguousarray(chw))
        raise TypeError(f"ToTensor: expected a uint8 or float image, got dtype {array.dtype}")

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """Per-channel standardization of a float tensor: ``out[c] = (x[c] - mean[c]) / std[c]``.

    Takes a tensor (..., C, H, W), e.g. the output of ``ToTensor``; ``mean`` and ``std`` have
    C entries (or one, used for every channel). Works in the tensor's dtype.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.datasets.transforms import Normalize
        >>> Normalize((0.5, 0.0), (0.5, 2.0))(rg.ones(2, 1, 2))
        tensor([[[1. , 1. ]],
        <BLANKLINE>
                [[0.5, 0.5]]])
    """

    def __init__(self, mean, std):
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std = tuple(float(s) for s in np.atleast_1d(std))
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: mean and std need the same length, got "
                             f"{len(self.mean)} and {len(self.std)}")
        if any(s == 0.0 for s in self.std):
            raise ValueError(f"Normalize: std must not contain zeros, got {self.std}")

    def __call__(self, tensor):
        return self._normalize(tensor, batched=False)

    def apply_batch(self, batch):
        return self._normalize(batch, batched=True)

    def _normalize(self, tensor, batched):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize: expected a float tensor (C, H, W), got "
                            f"{type(tensor).__name__}; apply ToTensor() first")
        x = tensor._data
        if x.ndim < 3 + batched:
            raise ValueError(f"Normalize: expected a tensor of shape {'(N, ' if batched else '('}"
                             f"..., C, H, W), got shape {x.shape}")
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a float tensor, got dtype {tensor.dtype}")
        channels = x.shape[-3]
        if len(self.mean) not in (1, channels):
            raise ValueError(f"Normalize: {len(self.mean)} means and stds for a tensor with "
                             f"{channels} channels (shape {x.shape})")
        mean = np.asarray(self.mean, dtype=x.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=x.dtype).reshape(-1, 1, 1)
        return make_tensor((x - mean) / std)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


def _padding_ltrb(padding):
    """torchvision's padding spellings (an int for all sides, (left/right, top/bottom) or
    (left, top, right, bottom)) as (left, top, right, bottom), each >= 0."""
    if padding is None:
        return (0, 0, 0, 0)
    padding = _checks.int_tuple("RandomCrop", "padding", padding, (2, 4), minimum=0)
    return padding if len(padding) == 4 else padding * 2


class RandomCrop:
    """Crop a random ``size`` window, after optional padding (data augmentation).

    The top-left corner is uniform over every position where the window fits in the padded
    image: ``top ~ U{0..H+pad_t+pad_b-h}``, ``left ~ U{0..W+pad_l+pad_r-w}``, one draw per
    image.

    Args:
        size: int or (h, w), the output size.
        padding: int (all sides), (left/right, top/bottom) or (left, top, right, bottom).
        pad_if_needed: pad an image smaller than ``size`` up to it (both sides, as torchvision).
        fill: the value of constant padding.
        padding_mode: "constant", "edge", "reflect" or "symmetric" (as in ``np.pad``).

    Example:
        >>> import numpy as np
        >>> from retrograd.datasets.transforms import RandomCrop
        >>> RandomCrop(32, padding=4)(np.zeros((32, 32, 3), dtype=np.uint8)).shape
        (32, 32, 3)
    """

    _MODES = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _checks.int_tuple("RandomCrop", "size", size, 2, minimum=1)
        self.padding = padding
        self._ltrb = _padding_ltrb(padding)
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = _checks.one_of("RandomCrop", "padding_mode", padding_mode,
                                           self._MODES)

    def __call__(self, img):
        return self._crop(img, batched=False)

    def apply_batch(self, batch):
        return self._crop(batch, batched=True)

    def _crop(self, x, batched):
        array, is_tensor = _unwrap(x, "RandomCrop")
        h_axis, w_axis = _spatial_axes(array, is_tensor, batched, "RandomCrop")
        array = self._pad(array, h_axis, w_axis)
        height, width = array.shape[h_axis], array.shape[w_axis]
        th, tw = self.size
        if th > height or tw > width:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the (padded) "
                             f"image size {(height, width)}")
        count = array.shape[0] if batched else None
        generator = _random.generator()
        top = generator.integers(0, height - th + 1, size=count)
        left = generator.integers(0, width - tw + 1, size=count)
        if not batched:
            window = [slice(None)] * array.ndim
            window[h_axis] = slice(top, top + th)
            window[w_axis] = slice(left, left + tw)
            return _rewrap(np.ascontiguousarray(array[tuple(window)]), is_tensor)
        return _rewrap(_crop_windows(array, top, left, th, tw, h_axis, w_axis), is_tensor)

    def _pad(self, array, h_axis, w_axis):
        left, top, right, bottom = self._ltrb
        th, tw = self.size
        if self.pad_if_needed:
            # torchvision pads *both* sides by the shortfall.
            top, bottom = (t + max(th - (array.shape[h_axis] + top + bottom), 0)
                           for t in (top, bottom))
            left, right = (t + max(tw - (array.shape[w_axis] + left + right), 0)
                           for t in (left, right))
        if top == bottom == left == right == 0:
            return array
        widths = [(0, 0)] * array.ndim
        widths[h_axis], widths[w_axis] = (top, bottom), (left, right)
        if self.padding_mode == "constant":
            return np.pad(array, widths, mode="constant", constant_values=self.fill)
        return np.pad(array, widths, mode=self.padding_mode)

    def __repr__(self):
        return (f"RandomCrop(size={self.size}, padding={self.padding}, "
                f"padding_mode={self.padding_mode!r})")


def _crop_windows(batch, top, left, th, tw, h_axis, w_axis):
    """Window n of the batch at (top[n], left[n]), all in one gather: a strided view of every
    (th, tw) window, indexed by (n, top[n], left[n])."""
    windows = np.lib.stride_tricks.sliding_window_view(batch, (th, tw), axis=(h_axis, w_axis))
    index = [slice(None)] * batch.ndim
    index[0], index[h_axis], index[w_axis] = np.arange(len(batch)), top, left
    out = windows[tuple(index)]  # (N, <other dims>, th, tw): the window dims come last
    if h_axis == 1 and batch.ndim == 4:  # (N, H, W, C) images: back to (N, th, tw, C)
        out = np.moveaxis(out, (-2, -1), (1, 2))
    return np.ascontiguousarray(out)


class RandomHorizontalFlip:
    """Mirror an image left to right with probability ``p`` (one draw per image).

    Example:
        >>> import numpy as np
        >>> from retrograd.datasets.transforms import RandomHorizontalFlip
        >>> RandomHorizontalFlip(p=1.0)(np.array([[1, 2, 3]], dtype=np.uint8))
        array([[3, 2, 1]], dtype=uint8)
    """

    def __init__(self, p=0.5):
        self.p = _checks.probability("RandomHorizontalFlip", "p", p)

    def __call__(self, img):
        array, is_tensor = _unwrap(img, "RandomHorizontalFlip")
        _, w_axis = _spatial_axes(array, is_tensor, False, "RandomHorizontalFlip")
        if _random.generator().random() < self.p:
            return _rewrap(np.flip(array, w_axis).copy(), is_tensor)
        return img

    def apply_batch(self, batch):
        array, is_tensor = _unwrap(batch, "RandomHorizontalFlip")
        _, w_axis = _spatial_axes(array, is_tensor, True, "RandomHorizontalFlip")
        flip = _random.generator().random(array.shape[0]) < self.p
        out = array.copy()
        out[flip] = np.flip(array[flip], w_axis)
        return _rewrap(out, is_tensor)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
