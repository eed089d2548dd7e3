"""Devices: retrograd computes on the CPU, and says so clearly when asked for anything else.

``retrograd.device`` mirrors ``torch.device``: ``device("cpu")``, ``device("cuda:0")`` and
``device("cuda", 1)`` can all be made, printed, compared and hashed, so that programs written
for a GPU machine (``device = torch.device("cuda" if torch.cuda.is_available() else "cpu")``)
run unchanged. Only a CPU device can hold a tensor: every function that creates or moves a
tensor checks its ``device=`` argument with ``check_cpu``, which accepts None, "cpu" (any
index), a cpu ``device`` object, and raises a RuntimeError naming the call and the device for
anything else.

``to_arguments`` parses the arguments of ``Tensor.to`` and ``Module.to`` in all of PyTorch's
forms: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, with
``non_blocking=`` and ``copy=``.
"""

import re

import numpy as np

__all__ = ["device", "CPU", "check_cpu", "refuse_cuda", "to_arguments", "get_default_device",
           "set_default_device"]

# the device types torch.device knows (its error lists them in this order)
DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                "privateuseone")
_DEVICE_STRING = re.compile(r"([a-z]+)(?::(0|[1-9][0-9]*))?")
_NO_ACCELERATOR = "Cannot access accelerator device when none is available."


class device:
    """A device a tensor could live on, as ``torch.device``: a type ("cpu", "cuda", "mps",
    ...) and an optional index. retrograd tensors always live on ``device(type='cpu')``.

    Example:
        >>> import retrograd as rg
        >>> rg.device("cuda:1"), str(rg.device("cuda", 1)), rg.device("cpu").index
        (device(type='cuda', index=1), 'cuda:1', None)
        >>> rg.zeros(2).device == rg.device("cpu")
        True
    """

    __slots__ = ("_type", "_index")

    def __init__(self, type=None, index=None):  # noqa: A002 - PyTorch's names
        if isinstance(type, device):
            if index is not None:
                raise TypeError("device: an index cannot be given with a device object")
            self._type, self._index = type._type, type._index
            return
        if _is_int(type):  # torch.device(0): an accelerator's index
            raise RuntimeError(_NO_ACCELERATOR if type >= 0 else
                               "Device index must not be negative")
        if not isinstance(type, str):
            raise TypeError(f"device: expected a device string such as 'cpu' or 'cuda:0', a "
                            f"device or an int, got {_type_name(type)}")
        self._type, parsed = _parse(type)
        if index is not None:
            if parsed is not None:
                raise RuntimeError(f"type (string) must not include an index because index "
                                   f"was passed explicitly: {type}")
            parsed = _index(index)
        self._index = parsed

    @property
    def type(self):
        return self._type

    @property
    def index(self):
        return self._index

    def __repr__(self):
        if self._index is None:
            return f"device(type='{self._type}')"
        return f"device(type='{self._type}', index={self._index})"

    def __str__(self):
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __eq__(self, other):
        # NOTE: as torch, a device never equals a string: device("cpu") == "cpu" is False
        if not isinstance(other, device):
            return NotImplemented
        return self._type == other._type and self._index == other._index

    def __hash__(self):
        return hash((self._type, self._index))

    def __reduce__(self):
        return (device, (self._type, self._index))

    def __enter__(self):
        """``with retrograd.device("cpu"):`` is accepted (tensors are made on the CPU anyway);
        any other device is refused here, before the block runs."""
        check_cpu("device", self)
        return self

    def __exit__(self, *exc):
        return False


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _type_name(value):
    return type(value).__name__


def _parse(text):
    """(type, index or None) of a device string such as 'cuda:0', with torch's errors."""
    if not text:
        raise RuntimeError("Device string must not be empty")
    match = _DEVICE_STRING.fullmatch(text)
    head = re.match(r"[a-z]*", text).group()
    if head not in DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(DEVICE_TYPES)} device type at start "
                           f"of device string: {text}")
    if match is None or match.group(1) not in DEVICE_TYPES:
        raise RuntimeError(f"Invalid device string: '{text}'")
    index = match.group(2)
    return match.group(1), int(index) if index is not None else None


def _index(index):
    if not _is_int(index):
        raise TypeError(f"device(): argument 'index' (position 2) must be int, not "
                        f"{_type_name(index)}")
    if index < 0:
        raise RuntimeError("Device index must not be negative")
    return int(index)


CPU = device("cpu")


# ---------------------------------------------------------------------------- checks

def check_cpu(owner, value):
    """``value`` (None, a device string, a ``device`` or an int) as a cpu ``device``, or an
    error naming ``owner`` (a string, or a layer named by its repr): a RuntimeError for a
    device retrograd cannot use, a TypeError for something that is not a device.

    Example:
        >>> check_cpu("zeros", "cpu:0")
        device(type='cpu', index=0)
        >>> check_cpu("zeros", "cuda:0")
        Traceback (most recent call last):
        RuntimeError: zeros: retrograd runs on the CPU only, got device 'cuda:0' (device 'cuda:0' \
is not available: retrograd.cuda.is_available() is False); use device='cpu'
    """
    if value is None:
        return CPU
    if isinstance(value, device):
        parsed = value
    elif isinstance(value, str) or _is_int(value):
        try:
            parsed = device(value)
        except RuntimeError as e:
            if _is_int(value) and value >= 0:
                parsed = device("cuda", value)  # torch reads a bare int as an accelerator index
            else:
                raise RuntimeError(f"{_name(owner)}: invalid device {value!r}: {e}") from None
    else:
        raise TypeError(f"{_name(owner)}: device must be a string such as 'cpu', a "
                        f"retrograd.device or None, got {_type_name(value)}")
    if parsed.type != "cpu":
        raise RuntimeError(f"{_name(owner)}: retrograd runs on the CPU only, got device "
                           f"'{parsed}' (device '{parsed}' is not available: "
                           f"{_AVAILABILITY.get(parsed.type, _AVAILABILITY[None])}); use "
                           f"device='cpu'")
    return parsed


# what a program may have checked before asking for the device
_AVAILABILITY = {"cuda": "retrograd.cuda.is_available() is False",
                 "mps": "retrograd.backends.mps.is_available() is False",
                 None: "retrograd.accelerator.is_available() is False"}


def refuse_cuda(owner, requested=None):
    """``Tensor.cuda()`` / ``Module.cuda()``: always the CPU-only RuntimeError, naming the
    CUDA device asked for (``cuda(1)`` names 'cuda:1', ``cuda("cuda:2")`` 'cuda:2')."""
    named = device("cuda", requested) if _is_int(requested) else None
    if isinstance(requested, (str, device)):
        named = device(requested)
    if named is None or named.type == "cpu":
        named = device("cuda")
    check_cpu(owner, named)


def _name(owner):
    from retrograd._checks import name_of  # here: _checks delegates its device check to us

    return name_of(owner)


def get_default_device():
    """The device new tensors are made on: always ``device(type='cpu')``."""
    return CPU


def set_default_device(value):
    """As ``torch.set_default_device``: None or a CPU device is accepted (nothing changes);
    any other device is an error, since retrograd makes every tensor on the CPU."""
    check_cpu("set_default_device", value)


# ---------------------------------------------------------------------------- to(...)

def to_arguments(owner, args, kwargs, allow_copy=True):
    """(dtype or None, copy) from the arguments of ``Tensor.to`` / ``Module.to``, in any of
    PyTorch's forms, after checking that the device (if any) is the CPU:

        to(device=None, dtype=None, non_blocking=False, copy=False, *, memory_format=None)
        to(dtype, non_blocking=False, copy=False, *, memory_format=None)
        to(tensor, non_blocking=False, copy=False, *, memory_format=None)

    A string argument is a device, or a dtype when it is a retrograd dtype's exact name
    ("float16"); a tensor stands for its dtype (and its device, the CPU)."""
    from retrograd import dtypes as _dt
    from retrograd.tensor import Tensor  # here: tensor.py imports this module

    args = list(args)
    target = None
    unknown = set(kwargs) - {"device", "dtype", "non_blocking", "copy", "memory_format"}
    if unknown or ("copy" in kwargs and not allow_copy):
        bad = sorted(unknown) or ["copy"]
        raise TypeError(f"{owner}() got an unexpected keyword argument '{bad[0]}'")
    if args and isinstance(args[0], Tensor):
        target = args.pop(0)._data.dtype
    elif args and _is_dtype(args[0]):
        target = args.pop(0)
    elif args:
        kwargs = _positional_device(owner, args, kwargs)
    flags = _flags(owner, args, kwargs, allow_copy)
    check_cpu(owner, kwargs.get("device"))
    dtype = kwargs.get("dtype", target)
    if dtype is not None and target is not None and "dtype" in kwargs:
        raise TypeError(f"{owner}() got multiple values for argument 'dtype'")
    if dtype is not None:
        dtype = _dt.as_numpy_dtype(dtype, owner)
    return dtype, flags["copy"]


def _positional_device(owner, args, kwargs):
    """to(device, dtype=None, ...): the leading device (and dtype) moved into kwargs."""
    if "device" in kwargs:
        raise TypeError(f"{owner}() got multiple values for argument 'device'")
    value = args.pop(0)
    _refuse_dtype_string(owner, value)
    kwargs = dict(kwargs, device=value)
    if args and (_is_dtype(args[0]) or args[0] is None or isinstance(args[0], str)):
        if "dtype" in kwargs:
            raise TypeError(f"{owner}() got multiple values for argument 'dtype'")
        dtype = args.pop(0)
        if isinstance(dtype, str) and not _is_dtype(dtype):
            raise TypeError(f"{owner}: expected a dtype after the device, got the string "
                            f"{dtype!r}")
        kwargs["dtype"] = dtype
    return kwargs


def _refuse_dtype_string(owner, value):
    from retrograd import dtypes as _dt

    if isinstance(value, str) and value in _dt.TORCH_ALIASES:
        _dt.as_numpy_dtype(value, owner)  # raises the TypeError that says what to write


def _flags(owner, args, kwargs, allow_copy):
    names = ("non_blocking", "copy") if allow_copy else ("non_blocking",)
    if len(args) > len(names):
        raise TypeError(f"{owner}: too many positional arguments: {args!r} left over after "
                        f"the device/dtype")
    flags = {"non_blocking": False, "copy": False}
    for name, value in zip(names, args):
        if name in kwargs:
            raise TypeError(f"{owner}() got multiple values for argument '{name}'")
        flags[name] = value
    for name in names:
        flags[name] = kwargs.get(name, flags[name])
        if not isinstance(flags[name], (bool, np.bool_)):
            raise TypeError(f"{owner}: {name} must be a bool, got {_type_name(flags[name])}")
    return flags


def _is_dtype(value):
    """A retrograd dtype, a NumPy dtype or scalar type, or a retrograd dtype's exact name."""
    from retrograd import dtypes as _dt

    if isinstance(value, (_dt.dtype, np.dtype)):
        return True
    if isinstance(value, str):
        return value in _dt.NAMES
    return isinstance(value, type) and (issubclass(value, np.generic)
                                        or value in (float, int, bool))
