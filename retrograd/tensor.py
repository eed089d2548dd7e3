"""Tensor: a NumPy array, whether it requires grad, its gradient, and the node that made it.

The array lives in ``_data``; ``numpy()`` hands it out. ``grad_fn`` is the graph node of the op
that produced the tensor (None for leaves), ``_output_nr`` says which output of that op it is.
``_version`` is a one-element list shared by a tensor and its views: every in-place change bumps
it, and backward compares it with the version each saved tensor had when it was saved.

Methods are thin: they check arguments (so that errors name the op, the shapes and the dtypes),
normalize dims, and call one ``Function`` from ``retrograd.ops``.
"""

import math
import numbers

import numpy as np

from retrograd import _checks
from retrograd import _printing
from retrograd import _tensor_types as _types
from retrograd import dtypes as _dt
from retrograd._quiet import quiet_errors
from retrograd._size import as_size
from retrograd.device import CPU as _CPU
from retrograd.device import refuse_cuda as _refuse_cuda
from retrograd.device import to_arguments as _to_arguments

__all__ = ["Tensor", "make_tensor", "as_array"]


def as_array(data, dtype=None):
    """Turn Python data, a NumPy array or a Tensor into an array of a supported dtype.
    Python floats become float32 (the default float dtype), ints int64, bools bool."""
    if isinstance(data, Tensor):
        array = data._data
    elif isinstance(data, np.ndarray) or np.isscalar(data) and isinstance(data, np.generic):
        array = np.asarray(data)
    else:
        # NOTE: with an explicit dtype, Python floats go straight to it (never through the
        # float32 default, which would round 0.1 before a float64 tensor is made).
        array = _python_to_array(data, keep_float64=dtype is not None)
    if dtype is not None:
        target = _dt.as_numpy_dtype(dtype)
        if array.dtype != target:
            with quiet_errors():
                array = array.astype(target)
    else:
        _dt.from_numpy_dtype(array.dtype)  # raises a clear TypeError for unsupported dtypes
    return array


def _python_to_array(data, keep_float64=False):
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        data = [x.item() if isinstance(x, Tensor) else x for x in data]
    try:
        array = np.asarray(data)
    except ValueError as e:
        raise ValueError(f"tensor: cannot build a tensor from ragged data ({e})") from None
    if array.dtype == np.float64 and not keep_float64:
        return array.astype(_dt.default_float.np)
    if array.dtype.kind in "iu" and array.dtype != np.int64:
        return array.astype(np.int64)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"tensor: cannot build a tensor from data of type {array.dtype} "
                        f"(expected numbers or bools)")
    return array


def make_tensor(array, requires_grad=False, grad_fn=None, output_nr=0):
    """Wrap an array without checks (the fast path used by ops)."""
    t = _new_tensor(Tensor)
    t._data = array
    t._requires_grad = requires_grad
    t._grad = None
    t.grad_fn = grad_fn
    t._output_nr = output_nr
    t._version = [0]
    t._base = None
    t._grad_accumulator = None
    t._hooks = None
    t._retains_grad = False
    t._views = None
    return t


_new_tensor = object.__new__


def _alias(value, alias, default):
    """PyTorch accepts NumPy's spelling for some keywords (axis for dim, keepdims for keepdim)."""
    if alias is not None:
        return alias
    return value if value is not None else default


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> y.backward()
        >>> x.grad
        tensor([2., 4., 6.])
    """

    __slots__ = ("_data", "_requires_grad", "_grad", "grad_fn", "_output_nr", "_version",
                 "_base", "_grad_accumulator", "_hooks", "_retains_grad", "_views", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, *args, dtype=None, requires_grad=False, device=None):
        """PyTorch's legacy constructor (see retrograd/_tensor_types.py): ``Tensor(2, 3)``
        makes zeros of that shape, ``Tensor(data)`` a copy of the data in the default float
        dtype (ints too, as PyTorch), ``Tensor(tensor)`` shares the tensor's memory, and
        ``Tensor()`` is empty; ``dtype=`` (retrograd's addition) picks another dtype.
        ``retrograd.tensor(data)``, which infers the dtype from the data, is the usual way."""
        array = _types.legacy_array("Tensor", args, dtype, device)
        t = make_tensor(array)
        for name in Tensor.__slots__[:-1]:
            setattr(self, name, getattr(t, name))
        if len(args) == 1 and isinstance(args[0], Tensor) and array is args[0]._data:
            self._version = args[0]._version  # an alias: in-place changes are seen by both
        self.requires_grad = requires_grad

    # ------------------------------------------------------------------ properties
    @property
    def shape(self):
        return as_size(self._data.shape)

    @property
    def dtype(self):
        return _dt.from_numpy_dtype(self._data.dtype)

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def device(self):
        return _CPU

    @property
    def is_cuda(self):
        return False

    @property
    def is_cpu(self):
        return True

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def is_floating_point(self):
        """Whether the dtype is a floating-point one (a method, as PyTorch's)."""
        return _dt.is_floating(self._data.dtype)

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        value = bool(value)
        if value and not _dt.is_floating(self._data.dtype):
            raise RuntimeError(f"requires_grad: only floating-point tensors can require "
                               f"gradients, this one has dtype {self.dtype}")
        if not value and self.grad_fn is not None:
            raise RuntimeError("requires_grad: cannot turn it off on a non-leaf tensor; "
                               "use detach() instead")
        self._requires_grad = value

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad: expected a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape or value._data.dtype != self._data.dtype:
                raise RuntimeError(
                    f"grad: assigned gradient has shape {value.shape} and dtype {value.dtype}, "
                    f"but the tensor has shape {self.shape} and dtype {self.dtype}")
        self._grad = value

    @property
    def data(self):
        """A tensor sharing this one's memory, outside autograd (changes are not tracked)."""
        return make_tensor(self._data)

    @data.setter
    def data(self, value):
        self._data = as_array(value)

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    @property
    def itemsize(self):
        return self._data.itemsize

    @property
    def nbytes(self):
        return self._data.nbytes

    @property
    def retains_grad(self):
        return self._retains_grad

    def size(self, dim=None):
        if dim is None:
            return as_size(self._data.shape)
        return self._data.shape[_checks.dim("size", dim, self.ndim)]

    def dim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    def element_size(self):
        return self._data.itemsize

    # ------------------------------------------------------------------ conversion
    def numpy(self, force=False):
        """The underlying NumPy array (shared memory). Like PyTorch, refuses a tensor that
        requires grad unless force=True (then it returns a copy)."""
        if self._requires_grad:
            if not force:
                raise RuntimeError("numpy: cannot call numpy() on a tensor that requires grad; "
                                   "use tensor.detach().numpy()")
            return self._data.copy()
        return self._data

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item: a tensor with {self._data.size} elements cannot be "
                             f"converted to a Python number (shape {self.shape})")
        if self._data.dtype.kind in "biuf":
            return self._data.item()
        return float(self._data.reshape(()))  # bfloat16: NumPy's item() keeps the dtype

    def tolist(self):
        if self._data.dtype.kind not in "biuf":
            return self._data.astype(np.float32).tolist()
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors of one element can be used as an index, "
                            f"got dtype {self.dtype}")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with {self._data.size} "
                               f"elements is ambiguous (shape {self.shape}); use any() or all()")
        return bool(self._data.reshape(()))

    def __array__(self, dtype=None, copy=None):
        array = self._data
        if dtype is not None and array.dtype != dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__

    def __repr__(self):
        body = _printing.array_text(_printable(self._data), prefix="tensor(")
        extras = []
        if self._data.size == 0 and self._data.ndim != 1:
            extras.append(f"size={self.shape}")
        if self._data.dtype not in (_dt.default_float.np, np.int64, np.bool_):
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    def __format__(self, spec):
        if self._data.size == 1 and spec:
            return format(self.item(), spec)
        return repr(self) if not spec else format(repr(self), spec)

    def __reduce__(self):
        return (_rebuild, (self._data, self._requires_grad))

    # ------------------------------------------------------------------ dtype
    def to(self, *args, **kwargs):
        """PyTorch's forms: to(dtype), to(device), to(device, dtype), to(other_tensor), with
        non_blocking= (ignored) and copy= (a new tensor even when nothing changes). Casts are
        differentiable between floating dtypes; the device must be the CPU (see
        retrograd/device.py)."""
        if len(args) == 1 and not kwargs and isinstance(args[0], (np.dtype, _dt.dtype)):
            return self._cast(_dt.as_numpy_dtype(args[0]))  # the ops' fast path
        target, copy = _to_arguments("Tensor.to", args, kwargs)
        if target is None or target == self._data.dtype:
            return self.clone() if copy else self
        return self._cast(target)

    def _cast(self, target):
        if target == self._data.dtype:
            return self
        if _dt.is_floating(target) and _dt.is_floating(self._data.dtype):
            return _ew.Cast.apply(self, dtype=target)
        with quiet_errors():  # nan or inf to an integer dtype: NumPy's value, no warning
            return make_tensor(self._data.astype(target))

    def type(self, dtype=None, non_blocking=False, **kwargs):
        """Without ``dtype``: PyTorch's type name, e.g. 'torch.FloatTensor' (PyTorch code
        compares with these strings). With one (a dtype, a name such as 'torch.LongTensor',
        or a legacy type such as retrograd.LongTensor): this tensor converted to it."""
        if dtype is None:
            return _types.type_name(self.dtype)
        target = _types.dtype_of_type("type", dtype)
        return self.to(target if target is not None else dtype)

    def type_as(self, other):
        return self.to(other._data.dtype)

    def float(self):
        return self.to(_dt.float32)

    def double(self):
        return self.to(_dt.float64)

    def half(self):
        return self.to(_dt.float16)

    def bfloat16(self):
        return self.to(_dt.bfloat16)

    def long(self):
        return self.to(_dt.int64)

    def int(self):
        return self.to(_dt.int32)

    def bool(self):
        return self.to(_dt.bool)

    def short(self):
        return self.to(_dt.int16)

    def char(self):
        return self.to(_dt.int8)

    def byte(self):
        return self.to(_dt.uint8)

    # ------------------------------------------------------------------ device
    def cpu(self, memory_format=None):
        return self

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        """Always an error: retrograd runs on the CPU only."""
        _refuse_cuda("cuda", device)

    def get_device(self):
        """-1, PyTorch's answer for a CPU tensor."""
        return -1

    def pin_memory(self, device=None):
        """This tensor: pinned memory speeds up copies to a GPU, and there is none."""
        return self

    def is_pinned(self, device=None):
        return False

    # ------------------------------------------------------------------ new tensors like self
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False, pin_memory=False):
        """A copy of ``data`` with this tensor's dtype (unless ``dtype`` is given)."""
        return _creation.tensor(data, dtype=self._dtype_or(dtype), device=device,
                                requires_grad=requires_grad, pin_memory=pin_memory)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False, pin_memory=False):
        return _creation.zeros(*size, dtype=self._dtype_or(dtype), device=device,
                               requires_grad=requires_grad, pin_memory=pin_memory)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False, pin_memory=False):
        return _creation.ones(*size, dtype=self._dtype_or(dtype), device=device,
                              requires_grad=requires_grad, pin_memory=pin_memory)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False, pin_memory=False):
        return _creation.empty(*size, dtype=self._dtype_or(dtype), device=device,
                               requires_grad=requires_grad, pin_memory=pin_memory)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False,
                 pin_memory=False):
        return _creation.full(size, fill_value, dtype=self._dtype_or(dtype), device=device,
                              requires_grad=requires_grad, pin_memory=pin_memory)

    def new(self, *args, device=None):
        """The legacy ``x.new(2, 3)`` / ``x.new(data)``: as ``Tensor(...)``, in x's dtype."""
        return make_tensor(_types.legacy_array("new", args, self.dtype, device))

    def _dtype_or(self, dtype):
        return self.dtype if dtype is None else dtype

    # ------------------------------------------------------------------ autograd API
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) * gradient into the .grad of every leaf that requires
        grad. A non-scalar tensor needs ``gradient`` (same shape as self)."""
        _engine.backward([self], [gradient], retain_graph=retain_graph,
                         create_graph=create_graph, inputs=inputs)

    def detach(self):
        """A tensor sharing memory and version counter, outside the graph."""
        t = make_tensor(self._data)
        t._version = self._version
        return t

    def detach_(self):
        if self._base is not None:
            raise RuntimeError("detach_: cannot detach a view in place; use detach()")
        self.grad_fn = None
        self._requires_grad = False
        return self

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward (leaves always keep it)."""
        if self.grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("retain_grad: cannot retain the gradient of a tensor that "
                                   "does not require grad")
            return
        if not self._retains_grad:
            self.grad_fn._retain_output(self._output_nr, self)
            self._retains_grad = True

    def register_hook(self, hook):
        """hook(grad) -> new grad or None, run when this tensor's gradient is computed."""
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does "
                               "not require grad")
        if self.grad_fn is not None:
            return self.grad_fn._add_tensor_hook(self._output_nr, hook)
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _function.RemovableHandle(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) -> None, run on this leaf after its gradient was accumulated into
        ``.grad`` by a backward pass (not by ``autograd.grad``), as in PyTorch: optimizers
        that step inside backward and gradient reduction for data parallelism use it.

        Example:
            >>> import retrograd as rg
            >>> w = rg.tensor([1.0, 2.0], requires_grad=True)
            >>> seen = []
            >>> hook = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
            >>> (w * w).sum().backward()
            >>> seen
            [[2.0, 4.0]]
        """
        if not self._requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on "
                               "a tensor that does not require grad")
        if self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: post accumulate grad hooks "
                               "cannot be registered on non-leaf tensors (this one was made by "
                               f"{self.grad_fn.name()})")
        from retrograd.autograd.hooks import add_post_accumulate_hook

        hooks = add_post_accumulate_hook(self, hook)
        return _function.RemovableHandle(hooks, hook)

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other):
        return _binary(_ew.Add, self, other)

    def __radd__(self, other):
        return _binary(_ew.Add, self, other, reflected=True)

    def __sub__(self, other):
        return _binary(_ew.Sub, self, other)

    def __rsub__(self, other):
        return _binary(_ew.Sub, self, other, reflected=True)

    def __mul__(self, other):
        return _binary(_ew.Mul, self, other)

    def __rmul__(self, other):
        return _binary(_ew.Mul, self, other, reflected=True)

    def __truediv__(self, other):
        return _binary(_ew.Div, self, other, true_divide=True)

    def __rtruediv__(self, other):
        return _binary(_ew.Div, self, other, reflected=True, true_divide=True)

    def __neg__(self):
        return _ew.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __pow__(self, exponent):
        if isinstance(exponent, numbers.Number) and not isinstance(exponent, bool):
            if isinstance(exponent, float) and not self.is_floating_point():
                return self.float() ** exponent
            if exponent < 0 and not self.is_floating_point():
                raise ValueError(f"pow: integers to negative integer powers are not allowed "
                                 f"(tensor of dtype {self.dtype}, exponent {exponent}); use a "
                                 f"float tensor or exponent")
            return _ew.PowScalar.apply(self, exponent=exponent)
        return _binary(_ew.Pow, self, exponent)

    def __rpow__(self, base):
        return _binary(_ew.Pow, self, base, reflected=True)

    def __matmul__(self, other):
        return _matmul(self, other)

    def __rmatmul__(self, other):
        return _matmul(make_tensor(as_array(other)), self)

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    pow = __pow__
    matmul = __matmul__
    neg = __neg__

    # comparisons and logic: results are bool tensors outside the graph
    def __eq__(self, other):
        if other is None:  # as torch: a tensor is never None (NumPy would compare elementwise)
            return False
        return _compare(np.equal, self, other)

    def __ne__(self, other):
        if other is None:
            return True
        return _compare(np.not_equal, self, other)

    def __lt__(self, other):
        return _compare(np.less, self, other)

    def __le__(self, other):
        return _compare(np.less_equal, self, other)

    def __gt__(self, other):
        return _compare(np.greater, self, other)

    def __ge__(self, other):
        return _compare(np.greater_equal, self, other)

    def __and__(self, other):
        logical = self._data.dtype == np.bool_
        return _compare(np.logical_and if logical else np.bitwise_and, self, other)

    def __or__(self, other):
        logical = self._data.dtype == np.bool_
        return _compare(np.logical_or if logical else np.bitwise_or, self, other)

    def __xor__(self, other):
        logical = self._data.dtype == np.bool_
        return _compare(np.logical_xor if logical else np.bitwise_xor, self, other)

    def __invert__(self):
        if self._data.dtype == np.bool_:
            return make_tensor(np.logical_not(self._data))
        return make_tensor(~self._data)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def logical_not(self):
        return make_tensor(np.logical_not(self._data))

    def isnan(self):
        return make_tensor(np.isnan(self._data))

    def isinf(self):
        return make_tensor(np.isinf(self._data))

    def isfinite(self):
        return make_tensor(np.isfinite(self._data))

    def all(self, dim=None, keepdim=False):
        return make_tensor(np.asarray(np.all(self._data, axis=_checks.dims("all", dim, self.ndim),
                                             keepdims=keepdim)))

    def any(self, dim=None, keepdim=False):
        return make_tensor(np.asarray(np.any(self._data, axis=_checks.dims("any", dim, self.ndim),
                                             keepdims=keepdim)))

    def allclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False):
        return bool(np.allclose(self._data, as_array(other), rtol=rtol, atol=atol,
                                equal_nan=equal_nan))

    # ------------------------------------------------------------------ elementwise math
    def exp(self):
        return _ew.Exp.apply(_floating(self, "exp"))

    def log(self):
        return _ew.Log.apply(_floating(self, "log"))

    def sqrt(self):
        return _ew.Sqrt.apply(_floating(self, "sqrt"))

    def rsqrt(self):
        return 1.0 / self.sqrt()

    def sin(self):
        return _ew.Sin.apply(_floating(self, "sin"))

    def cos(self):
        return _ew.Cos.apply(_floating(self, "cos"))

    def tanh(self):
        return _ew.Tanh.apply(_floating(self, "tanh"))

    def sigmoid(self):
        return _ew.Sigmoid.apply(_floating(self, "sigmoid"))

    def relu(self):
        return _ew.Relu.apply(self)

    def abs(self):
        return _ew.Abs.apply(self)

    def square(self):
        return self * self

    def reciprocal(self):
        return 1.0 / self

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's names
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        lo, hi = _clamp_bound(min, "min"), _clamp_bound(max, "max")
        x = self
        if isinstance(lo, float) or isinstance(hi, float):  # as torch: int tensor, float bound
            x = _floating(self, "clamp")
        return _ew.Clamp.apply(x, lo=lo, hi=hi)

    clip = clamp

    def clamp_min(self, min):  # noqa: A002
        return self.clamp(min=min)

    def clamp_max(self, max):  # noqa: A002
        return self.clamp(max=max)

    def maximum(self, other):
        return _binary(_ew.Maximum, self, other)

    def minimum(self, other):
        return _binary(_ew.Minimum, self, other)

    def where(self, condition, other):
        return where(condition, self, other)

    def masked_fill(self, mask, value):
        mask = _ix.bool_mask(mask, self, "masked_fill")
        if isinstance(value, Tensor):
            _checks.one_element("masked_fill", "value", value)
            if value._requires_grad:
                return where(mask, value.reshape(()), self)
            value = value.item()
        return _ew.MaskedFill.apply(self, mask, value=value)

    def softmax(self, dim):
        axis = _checks.dim("softmax", dim, self.ndim)
        return _sm.Softmax.apply(_floating(self, "softmax"), axis=axis)

    def log_softmax(self, dim):
        return _sm.LogSoftmax.apply(_floating(self, "log_softmax"),
                                    axis=_checks.dim("log_softmax", dim, self.ndim))

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        dims = _checks.dims("sum", _alias(dim, axis, None), self.ndim)
        x = self.to(dtype) if dtype is not None else self
        if x._data.dtype == np.bool_:
            x = x.long()
        return _red.Sum.apply(x, axis=dims, keepdims=_alias(keepdim, keepdims, False))

    def mean(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        dims = _checks.dims("mean", _alias(dim, axis, None), self.ndim)
        x = self.to(dtype) if dtype is not None else _checks.floating("mean", self)
        return _red.Mean.apply(x, axis=dims, keepdims=_alias(keepdim, keepdims, False))

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
            keepdims=None):
        return _spread(_red.Var, "var", self, _alias(dim, axis, None), unbiased,
                       _alias(keepdim, keepdims, False), correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
            keepdims=None):
        return _spread(_red.Std, "std", self, _alias(dim, axis, None), unbiased,
                       _alias(keepdim, keepdims, False), correction)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The vector p-norm over dim (all elements by default), as torch.norm: p = "fro" or
        2 (also p=None), 1, inf, -inf, 0 or any other positive number; p = "nuc" is the
        nuclear norm of the matrices over dim (the last two by default; linalg.matrix_norm)."""
        if isinstance(p, str) and p == "nuc":
            return _linalg.matrix_norm(self, "nuc", (-2, -1) if dim is None else dim, keepdim,
                                       dtype=dtype)
        p = "fro" if p is None else p
        dims = _checks.dims("norm", dim, self.ndim)
        x = self.to(dtype) if dtype is not None else _checks.floating("norm", self)
        return _red.Norm.apply(x, ord=_checks.norm_order("norm", p), axis=dims,
                               keepdims=keepdim)

    def max(self, dim=None, keepdim=False):
        return _extremum(self, dim, keepdim, _red.Amax, _red.MaxDim, _ew.Maximum, "max")

    def min(self, dim=None, keepdim=False):
        return _extremum(self, dim, keepdim, _red.Amin, _red.MinDim, _ew.Minimum, "min")

    def amax(self, dim=None, keepdim=False):
        dims = _checks.dims("amax", dim, self.ndim)
        _checks.nonempty("amax", self, dims)
        return _red.Amax.apply(self, axis=dims, keepdims=keepdim)

    def amin(self, dim=None, keepdim=False):
        dims = _checks.dims("amin", dim, self.ndim)
        _checks.nonempty("amin", self, dims)
        return _red.Amin.apply(self, axis=dims, keepdims=keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _arg_extremum(np.argmax, self, dim, keepdim, "argmax")

    def argmin(self, dim=None, keepdim=False):
        return _arg_extremum(np.argmin, self, dim, keepdim, "argmin")

    def logsumexp(self, dim, keepdim=False):
        return _red.LogSumExp.apply(_floating(self, "logsumexp"),
                                    axis=_checks.dims("logsumexp", dim, self.ndim),
                                    keepdims=keepdim)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        shape = _checks.reshape_target("reshape", _checks.sizes("reshape", shape), self)
        if shape == self._data.shape:
            return self
        return _shape.Reshape.apply(self, shape=shape)

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
            return _view_as_dtype(self, shape[0])
        shape = _checks.reshape_target("view", _checks.sizes("view", shape), self)
        try:
            return _shape.Reshape.apply(self, shape=shape, copy=False)
        except ValueError:
            raise RuntimeError(f"view: cannot view a tensor of shape {self.shape} with strides "
                               f"{self._data.strides} as {shape} without copying; use "
                               f"reshape()") from None

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start = _checks.dim("flatten", start_dim, self.ndim)
        end = _checks.dim("flatten", end_dim, self.ndim)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape
        # NOTE: an explicit size, not -1: reshape cannot infer -1 when the tensor is empty
        merged = math.prod(shape[start:end + 1])
        return self.reshape(shape[:start] + (merged,) + shape[end + 1:])

    def unflatten(self, dim, sizes):
        d = _checks.dim("unflatten", dim, self.ndim)
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def squeeze(self, dim=None):
        dims = _checks.dims("squeeze", dim, self.ndim)
        keep = [s for i, s in enumerate(self.shape)
                if s != 1 or (dims is not None and i not in dims)]
        return self.reshape(tuple(keep))

    def unsqueeze(self, dim):
        d = _checks.dim("unsqueeze", dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def permute(self, *dims):
        dims = _checks.sizes("permute", dims)
        if len(dims) != self.ndim:
            raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor with "
                             f"{self.ndim} dims (shape {self.shape})")
        dims = tuple(_checks.dim("permute", d, self.ndim) for d in dims)
        if len(set(dims)) != len(dims):
            raise ValueError(f"permute: dims {dims} repeat a dimension")
        if dims == tuple(range(self.ndim)):
            return self
        return _shape.Permute.apply(self, dims=dims)

    def transpose(self, dim0, dim1):
        d0 = _checks.dim("transpose", dim0, self.ndim)
        d1 = _checks.dim("transpose", dim1, self.ndim)
        if self.ndim == 0:
            return self
        dims = list(range(self.ndim))
        dims[d0], dims[d1] = d1, d0
        return self.permute(*dims)

    swapaxes = transpose

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dims, got shape {self.shape}")
        return self.T

    def expand(self, *sizes):
        sizes = _checks.sizes("expand", sizes)
        if len(sizes) < self.ndim:
            raise ValueError(f"expand: cannot expand shape {self.shape} to {sizes} (fewer dims)")
        lead = len(sizes) - self.ndim
        if -1 in sizes[:lead]:
            raise ValueError(f"expand: cannot expand shape {self.shape} to {sizes}: -1 is not "
                             f"allowed in a new leading dim")
        shape = tuple(s if s != -1 else self.shape[i - lead] for i, s in enumerate(sizes))
        try:
            np.broadcast_shapes(self.shape, shape)
            if np.broadcast_shapes(self.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {self.shape} to {sizes}; only size-1 "
                             f"dims can grow") from None
        if shape == self.shape:
            return self
        return _shape.Expand.apply(self, shape=shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def broadcast_to(self, shape):
        return self.expand(*shape)

    def repeat(self, *sizes):
        sizes = _checks.sizes("repeat", sizes)
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: got {len(sizes)} repeats for a tensor with {self.ndim} dims")
        x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
        interleaved = tuple(v for s in x.shape for v in (1, s))
        expanded = tuple(v for r, s in zip(sizes, x.shape) for v in (r, s))
        return x.reshape(interleaved).expand(*expanded).reshape(
            tuple(r * s for r, s in zip(sizes, x.shape)))

    def contiguous(self):
        if self._data.flags.c_contiguous:
            return self
        return _shape.Clone.apply(self)

    def clone(self):
        return _shape.Clone.apply(self)

    def chunk(self, chunks, dim=0):
        d = _checks.dim("chunk", dim, self.ndim)
        chunks = _checks.positive_int("chunk", "chunks", chunks)
        if self.shape[d] == 0:  # as torch: `chunks` empty pieces
            return tuple(self[(slice(None),) * d + (slice(0, 0),)] for _ in range(chunks))
        size = -(-self.shape[d] // chunks)
        return self.split(size, d)

    def split(self, split_size, dim=0):
        d = _checks.dim("split", dim, self.ndim)
        n = self.shape[d]
        if isinstance(split_size, (list, tuple)):
            if sum(split_size) != n:
                raise ValueError(f"split: sizes {split_size} do not add up to {n} (dim {dim} of "
                                 f"shape {self.shape})")
            bounds = np.cumsum([0] + list(split_size)).tolist()
        elif _checks.non_negative_int("split", "split_size", split_size) == 0 and n != 0:
            raise ValueError(f"split: split_size 0 is allowed only for an empty dim, got dim {dim} "
                             f"of shape {self.shape}")
        else:
            bounds = list(range(0, n, split_size)) + [n] if n else [0, 0]
        if len(bounds) == 2:
            return (self[(slice(None),) * d + (slice(bounds[0], bounds[1]),)],)
        pieces = _shape.Split.apply(self, axis=d, bounds=tuple(bounds))
        return pieces if isinstance(pieces, tuple) else (pieces,)

    def unbind(self, dim=0):
        if self.ndim == 0:
            raise ValueError("unbind: a 0-d tensor has no dim to unbind")
        d = _checks.dim("unbind", dim, self.ndim)
        if self.shape[d] <= 1:
            return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))
        return _shape.Unbind.apply(self, axis=d)

    def gather(self, dim, index):
        d = _checks.dim("gather", dim, self.ndim)
        index = _ix.index_array(index, "gather")
        if index.ndim != self.ndim:
            raise ValueError(f"gather: index has {index.ndim} dims but the tensor has {self.ndim} "
                             f"(shapes {index.shape} and {self.shape})")
        # position k of the index grid is arange(index.shape[k]) along axis k, and index at d
        grid = [np.arange(s).reshape([-1 if a == k else 1 for a in range(index.ndim)])
                for k, s in enumerate(index.shape)]
        grid[d] = index
        return self[tuple(grid)]

    def index_select(self, dim, index):
        d = _checks.dim("index_select", dim, self.ndim)
        index = _ix.index_array(index, "index_select")
        if index.ndim > 1:
            raise ValueError(f"index_select: index must be 1-D, got shape {index.shape}")
        return self[(slice(None),) * d + (index.reshape(-1),)]

    # ------------------------------------------------------------------ ordering, scans, products
    # (each calls the function of the same name: retrograd/_ordering.py, _scan.py,
    # _triangular.py, _products.py, _sampling.py)
    def sort(self, dim=-1, descending=False, *, stable=False):
        return _ordering.sort(self, dim, descending, stable=stable)

    def argsort(self, dim=-1, descending=False, *, stable=False):
        return _ordering.argsort(self, dim, descending, stable=stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002 - PyTorch's name
        return _ordering.topk(self, k, dim, largest, sorted)

    def cumsum(self, dim, *, dtype=None):
        return _scan.cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim, *, dtype=None):
        return _scan.cumprod(self, dim, dtype=dtype)

    def tril(self, diagonal=0):
        return _triangular.tril(self, diagonal)

    def triu(self, diagonal=0):
        return _triangular.triu(self, diagonal)

    def mm(self, mat2):
        return _products.mm(self, mat2)

    def bmm(self, mat2):
        return _products.bmm(self, mat2)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        return _products.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return _products.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def outer(self, vec2):
        return _products.outer(self, vec2)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        return _sampling.multinomial(self, num_samples, replacement, generator=generator)

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index):
        return _ix.getitem(self, index)

    def __setitem__(self, index, value):
        _ix.setitem(self, index, value)

    # ------------------------------------------------------------------ in place
    def add_(self, other, alpha=1):
        return _inplace(self, "add_", lambda src: src + (other * alpha if alpha != 1 else other))

    def sub_(self, other, alpha=1):
        return _inplace(self, "sub_", lambda src: src - (other * alpha if alpha != 1 else other))

    def mul_(self, other):
        return _inplace(self, "mul_", lambda src: src * other)

    def div_(self, other):
        return _inplace(self, "div_", lambda src: src / other)

    def pow_(self, exponent):
        return _inplace(self, "pow_", lambda src: src ** exponent)

    def clamp_(self, min=None, max=None):  # noqa: A002
        return _inplace(self, "clamp_", lambda src: src.clamp(min, max))

    def masked_fill_(self, mask, value):
        return _inplace(self, "masked_fill_", lambda src: src.masked_fill(mask, value))

    def copy_(self, src):
        src = src if isinstance(src, Tensor) else make_tensor(as_array(src))
        try:
            np.broadcast_to(src._data, self.shape)
        except ValueError:
            raise ValueError(f"copy_: source of shape {src.shape} does not broadcast to the "
                             f"destination's shape {self.shape}") from None
        return _overwrite(self, "copy_", src)

    def zero_(self):
        return _overwrite(self, "zero_", self._data.dtype.type(0))

    def fill_(self, value):
        """Every element set to ``value``; a Python number is cast to the tensor's dtype
        first, as in PyTorch (an int tensor filled with 1.5 holds 1, a bool one with 1
        holds True)."""
        if isinstance(value, (bool, int, float)):
            value = self._data.dtype.type(value)
        return _overwrite(self, "fill_", value)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        return _overwrite(self, "normal_", _random.normal(mean, std, self.shape, self._data.dtype,
                                                          generator))

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        return _overwrite(self, "uniform_", _random.uniform(a, b, self.shape, self._data.dtype,
                                                            generator))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # ------------------------------------------------------------------ NumPy protocol
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _npi.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _npi.array_function(func, args, kwargs)


def _rebuild(array, requires_grad):
    t = make_tensor(array)
    t.requires_grad = requires_grad
    return t


def _printable(array):
    if array.dtype.kind not in "biuf":
        return array.astype(np.float32)
    return array


def _floating(t, op):
    """Ops that need a float input promote integer tensors to the default float dtype."""
    if _dt.is_floating(t._data.dtype):
        return t
    return make_tensor(t._data.astype(_dt.default_float.np))


def _clamp_bound(bound, name):
    if isinstance(bound, Tensor):
        return _checks.one_element("clamp", name, bound).item()
    return bound


def _spread(op, name, x, dim, unbiased, keepdim, correction):
    """var or std: PyTorch's unbiased flag or correction (default 1) over dim."""
    dims = _checks.dims(name, dim, x.ndim)
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return op.apply(_checks.floating(name, x), axis=dims, correction=correction,
                    keepdims=keepdim)


def _extremum(x, dim, keepdim, full_op, dim_op, pairwise_op, name):
    if isinstance(dim, Tensor):
        return _binary(pairwise_op, x, dim)
    if dim is None:
        _checks.nonempty(name, x)
        return full_op.apply(x, axis=None, keepdims=False)
    d = _checks.dim(name, dim, x.ndim)
    _checks.nonempty(name, x, (d,) if x.ndim else None)
    if x.ndim == 0:
        return _MinMax(x, make_tensor(np.asarray(0, dtype=np.int64)))
    values, indices = dim_op.apply(x, axis=d, keepdims=keepdim)
    return _MinMax(values, indices)


def _arg_extremum(fn, x, dim, keepdim, name):
    if dim is None:
        _checks.nonempty(name, x)
        return make_tensor(np.asarray(fn(x._data), dtype=np.int64))
    d = _checks.dim(name, dim, x.ndim)
    _checks.nonempty(name, x, (d,) if x.ndim else None)
    return make_tensor(np.asarray(fn(x._data, axis=d, keepdims=keepdim), dtype=np.int64))


def _view_as_dtype(t, dtype):
    """view(dtype), as torch: the same bytes reinterpreted (not a conversion; see to()). The
    last dim scales by the ratio of item sizes. Outside autograd, like torch's."""
    target = _dt.as_numpy_dtype(dtype)
    if target == t._data.dtype:
        return t
    try:
        array = t._data.view(target)
    except ValueError:
        raise RuntimeError(f"view: cannot view a tensor of shape {t.shape} and dtype {t.dtype} as "
                           f"{_dt.from_numpy_dtype(target)}: the last dim must be contiguous and "
                           f"its size in bytes divisible by the new item size") from None
    view = make_tensor(array)
    view._version = t._version
    return view


class _MinMax(tuple):
    """(values, indices), like PyTorch's torch.return_types.max."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _overwrite(t, op, value):
    """fill_, zero_, copy_, normal_: every value of t replaced, through IndexPut when recorded."""
    return _inp.overwrite(t, op, value,
                          lambda src: _shape.IndexPut.apply(src, value, index=Ellipsis))


# Imported last: these modules import Tensor from here.
from retrograd.autograd import engine as _engine  # noqa: E402
from retrograd.autograd import function as _function  # noqa: E402
from retrograd.ops import elementwise as _ew  # noqa: E402
from retrograd.ops import reduce as _red  # noqa: E402
from retrograd.ops import shape as _shape  # noqa: E402
from retrograd.ops import softmax as _sm  # noqa: E402
from retrograd import _indexing as _ix  # noqa: E402
from retrograd._operands import binary as _binary  # noqa: E402
from retrograd._operands import compare as _compare  # noqa: E402
from retrograd._operands import matmul as _matmul  # noqa: E402
from retrograd._operands import where  # noqa: E402
from retrograd import _numpy_interop as _npi  # noqa: E402
from retrograd.autograd import inplace as _inp  # noqa: E402
from retrograd.autograd.inplace import apply_inplace as _inplace  # noqa: E402
from retrograd import random as _random  # noqa: E402
from retrograd import creation as _creation  # noqa: E402
from retrograd import _ordering, _products, _sampling, _scan, _triangular  # noqa: E402
from retrograd import linalg as _linalg  # noqa: E402
# PyTorch's tail of Tensor methods (issue 19), by family; names defined above are kept
from retrograd import _tensor_indexing, _tensor_math, _tensor_random  # noqa: E402
for _family in (_tensor_math.Methods, _tensor_indexing.Methods, _tensor_random.Methods):
    _tensor_math.install(Tensor, _family)
