"""Tensor: a NumPy array, whether it requires grad, its gradient, and the node that made it.

The array lives in ``_data``; ``numpy()`` hands it out. ``grad_fn`` is the graph node of the op
that produced the tensor (None for leaves), ``_output_nr`` says which output of that op it is.
``_version`` is a one-element list shared by a tensor and its views: every in-place change bumps
it, and backward compares it with the version each saved tensor had when it was saved.

Methods are thin: they check arguments (so that errors name the op, the shapes and the dtypes),
normalize dims, and call one ``Function`` from ``retrograd.ops``.
"""

import numbers

import numpy as np

from retrograd import dtypes as _dt
__all__ = ["Tensor", "make_tensor", "as_array", "zero_grads"]


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


def _norm_dim(dim, ndim, op):
    """One dim as a non-negative int; an error names the op and the valid range."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims "
                         f"(expected -{size} <= dim < {size})")
    return int(dim) % size if ndim else 0


def _norm_dims(dim, ndim, op):
    """None (all dims) or a sorted tuple of distinct non-negative dims."""
    if dim is None:
        return None
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    out = tuple(sorted(_norm_dim(d, ndim, op) for d in dims))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim} repeats a dimension")
    if ndim == 0:
        return None
    return out


def _alias(value, alias, default):
    """PyTorch accepts NumPy's spelling for some keywords (axis for dim, keepdims for keepdim)."""
    if alias is not None:
        return alias
    return value if value is not None else default


def _shape_args(shape, op):
    """Accept f(2, 3) and f((2, 3)); every size an int."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"{op}: sizes must be ints, got {shape!r}")
    return tuple(int(s) for s in shape)


def _result_dtype(a, b):
    """PyTorch's promotion between two tensors: a float beats any integer or bool; two floats
    or two integers promote as NumPy does (float16 with bfloat16 gives float32)."""
    fa, fb = _dt.is_floating(a), _dt.is_floating(b)
    if fa != fb:
        return a if fa else b
    if a == b:
        return a
    try:
        return np.promote_types(a, b)
    except TypeError:  # NOTE: NumPy has no common type for float16 and bfloat16; torch's is float32
        return np.dtype(np.float32)


def _category(np_dtype):
    """bool < integer < floating: the order of PyTorch's type categories."""
    return 2 if _dt.is_floating(np_dtype) else 0 if np_dtype == np.bool_ else 1


def _promote(a, b):
    """The result dtype of an op on tensors a and b, as PyTorch: a 0-d tensor decides the dtype
    only when its category is higher than the other tensor's (float32 tensor * float64 0-d
    tensor is float32, but int64 tensor * float64 0-d tensor is float64)."""
    da, db = a._data.dtype, b._data.dtype
    a_0d, b_0d = a._data.ndim == 0, b._data.ndim == 0
    if a_0d != b_0d:
        zero_d, dims = (da, db) if a_0d else (db, da)
        return zero_d if _category(zero_d) > _category(dims) else dims
    return _result_dtype(da, db)


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

    def __init__(self, data, dtype=None, requires_grad=False):
        array = as_array(data, dtype)
        if isinstance(data, Tensor) or (isinstance(data, np.ndarray) and array is data):
            array = array.copy()
        t = make_tensor(array)
        for name in Tensor.__slots__[:-1]:
            setattr(self, name, getattr(t, name))
        self.requires_grad = requires_grad

    # ------------------------------------------------------------------ properties
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return _dt.from_numpy_dtype(self._data.dtype)

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def device(self):
        return "cpu"

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def is_floating_point(self):
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
            return self.shape
        return self.shape[_norm_dim(dim, self.ndim, "size")]

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
        return self._data.item() if self._data.dtype.kind in "biuf" else float(self._data.reshape(()))

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
        body = np.array2string(_printable(self._data), precision=4, separator=", ",
                               prefix="tensor(", threshold=1000, edgeitems=3)
        extras = []
        if self._data.size == 0 and self._data.ndim != 1:
            extras.append(f"size={self.shape}")
        if self._data.dtype not in (np.float32, np.int64, np.bool_):
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
    def to(self, *args, dtype=None, **kwargs):
        """to(dtype) casts (differentiably between floating dtypes); to('cpu') is a no-op."""
        for a in args:
            if isinstance(a, str) and a not in _dt._BY_NAME:
                _check_device(a)
            elif isinstance(a, Tensor):  # to(other): other's dtype
                dtype = a._data.dtype
            elif dtype is None:
                dtype = a
        if dtype is None:
            return self
        target = _dt.as_numpy_dtype(dtype)
        if target == self._data.dtype:
            return self
        if _dt.is_floating(target) and _dt.is_floating(self._data.dtype):
            return _ew.Cast.apply(self, dtype=target)
        return make_tensor(self._data.astype(target))

    def type(self, dtype=None):
        return self.dtype if dtype is None else self.to(dtype)

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

    def cpu(self):
        return self

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
            if isinstance(exponent, float) and not self.is_floating_point:
                return self.float() ** exponent
            if exponent < 0 and not self.is_floating_point:
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
        return _matmul(Tensor(other), self)

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
        return _compare(np.logical_and if self._data.dtype == np.bool_ else np.bitwise_and, self, other)

    def __or__(self, other):
        return _compare(np.logical_or if self._data.dtype == np.bool_ else np.bitwise_or, self, other)

    def __xor__(self, other):
        return _compare(np.logical_xor if self._data.dtype == np.bool_ else np.bitwise_xor, self, other)

    def __invert__(self):
        return make_tensor(np.logical_not(self._data) if self._data.dtype == np.bool_ else ~self._data)

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

    def sign(self):
        return make_tensor(np.sign(self._data))

    def all(self, dim=None, keepdim=False):
        return make_tensor(np.asarray(np.all(self._data, axis=_norm_dims(dim, self.ndim, "all"),
                                             keepdims=keepdim)))

    def any(self, dim=None, keepdim=False):
        return make_tensor(np.asarray(np.any(self._data, axis=_norm_dims(dim, self.ndim, "any"),
                                             keepdims=keepdim)))

    def allclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False):
        return bool(np.allclose(self._data, as_array(other), rtol=rtol, atol=atol, equal_nan=equal_nan))

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
        mask = _bool_mask(mask, self, "masked_fill")
        if isinstance(value, Tensor):
            if value._data.size != 1:
                raise ValueError(f"masked_fill: value must be a number or a one-element tensor, "
                                 f"got shape {value.shape}")
            if value._requires_grad:
                return where(mask, value.reshape(()), self)
            value = value.item()
        return _ew.MaskedFill.apply(self, mask, value=value)

    def softmax(self, dim):
        return _sm.Softmax.apply(_floating(self, "softmax"), axis=_norm_dim(dim, self.ndim, "softmax"))

    def log_softmax(self, dim):
        return _sm.LogSoftmax.apply(_floating(self, "log_softmax"),
                                    axis=_norm_dim(dim, self.ndim, "log_softmax"))

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        dims = _norm_dims(_alias(dim, axis, None), self.ndim, "sum")
        x = self.to(dtype) if dtype is not None else self
        if x._data.dtype == np.bool_:
            x = x.long()
        return _red.Sum.apply(x, axis=dims, keepdims=_alias(keepdim, keepdims, False))

    def mean(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        dims = _norm_dims(_alias(dim, axis, None), self.ndim, "mean")
        x = self.to(dtype) if dtype is not None else _require_floating(self, "mean")
        return _red.Mean.apply(x, axis=dims, keepdims=_alias(keepdim, keepdims, False))

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
            keepdims=None):
        dims = _norm_dims(_alias(dim, axis, None), self.ndim, "var")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return _red.Var.apply(_require_floating(self, "var"), axis=dims, correction=correction,
                              keepdims=_alias(keepdim, keepdims, False))

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def max(self, dim=None, keepdim=False):
        return _extremum(self, dim, keepdim, _red.Amax, _red.MaxDim, _ew.Maximum, "max")

    def min(self, dim=None, keepdim=False):
        return _extremum(self, dim, keepdim, _red.Amin, _red.MinDim, _ew.Minimum, "min")

    def amax(self, dim=None, keepdim=False):
        dims = _norm_dims(dim, self.ndim, "amax")
        _nonempty(self, "amax", dims)
        return _red.Amax.apply(self, axis=dims, keepdims=keepdim)

    def amin(self, dim=None, keepdim=False):
        dims = _norm_dims(dim, self.ndim, "amin")
        _nonempty(self, "amin", dims)
        return _red.Amin.apply(self, axis=dims, keepdims=keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _arg_extremum(np.argmax, self, dim, keepdim, "argmax")

    def argmin(self, dim=None, keepdim=False):
        return _arg_extremum(np.argmin, self, dim, keepdim, "argmin")

    def logsumexp(self, dim, keepdim=False):
        return _red.LogSumExp.apply(_floating(self, "logsumexp"),
                                    axis=_norm_dims(dim, self.ndim, "logsumexp"), keepdims=keepdim)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        shape = _infer_shape(_shape_args(shape, "reshape"), self, "reshape")
        if shape == self._data.shape:
            return self
        return _shape.Reshape.apply(self, shape=shape)

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
            return _view_as_dtype(self, shape[0])
        shape = _infer_shape(_shape_args(shape, "view"), self, "view")
        try:
            return _shape.Reshape.apply(self, shape=shape, copy=False)
        except ValueError:
            raise RuntimeError(f"view: cannot view a tensor of shape {self.shape} with strides "
                               f"{self._data.strides} as {shape} without copying; use reshape()") from None

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start = _norm_dim(start_dim, self.ndim, "flatten")
        end = _norm_dim(end_dim, self.ndim, "flatten")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape
        # NOTE: an explicit size, not -1: reshape cannot infer -1 when the tensor is empty
        merged = int(np.prod(shape[start:end + 1], dtype=np.int64))
        return self.reshape(shape[:start] + (merged,) + shape[end + 1:])

    def unflatten(self, dim, sizes):
        d = _norm_dim(dim, self.ndim, "unflatten")
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def squeeze(self, dim=None):
        dims = _norm_dims(dim, self.ndim, "squeeze")
        keep = [s for i, s in enumerate(self.shape)
                if s != 1 or (dims is not None and i not in dims)]
        return self.reshape(tuple(keep))

    def unsqueeze(self, dim):
        d = _norm_dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def permute(self, *dims):
        dims = _shape_args(dims, "permute")
        if len(dims) != self.ndim:
            raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor with "
                             f"{self.ndim} dims (shape {self.shape})")
        dims = tuple(_norm_dim(d, self.ndim, "permute") for d in dims)
        if len(set(dims)) != len(dims):
            raise ValueError(f"permute: dims {dims} repeat a dimension")
        if dims == tuple(range(self.ndim)):
            return self
        return _shape.Permute.apply(self, dims=dims)

    def transpose(self, dim0, dim1):
        d0, d1 = _norm_dim(dim0, self.ndim, "transpose"), _norm_dim(dim1, self.ndim, "transpose")
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
        sizes = _shape_args(sizes, "expand")
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
        sizes = _shape_args(sizes, "repeat")
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
        d = _norm_dim(dim, self.ndim, "chunk")
        if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
            raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
        if self.shape[d] == 0:  # as torch: `chunks` empty pieces
            return tuple(self[(slice(None),) * d + (slice(0, 0),)] for _ in range(chunks))
        size = -(-self.shape[d] // chunks)
        return self.split(size, d)

    def split(self, split_size, dim=0):
        d = _norm_dim(dim, self.ndim, "split")
        n = self.shape[d]
        if isinstance(split_size, (list, tuple)):
            if sum(split_size) != n:
                raise ValueError(f"split: sizes {split_size} do not add up to {n} (dim {dim} of "
                                 f"shape {self.shape})")
            bounds = np.cumsum([0] + list(split_size)).tolist()
        elif not isinstance(split_size, (int, np.integer)) or split_size < 0 or \
                (split_size == 0 and n != 0):
            raise ValueError(f"split: split_size must be a positive int (0 only for an empty dim), "
                             f"got {split_size!r} for dim {dim} of shape {self.shape}")
        else:
            bounds = list(range(0, n, split_size)) + [n] if n else [0, 0]
        if len(bounds) == 2:
            return (self[(slice(None),) * d + (slice(bounds[0], bounds[1]),)],)
        pieces = _shape.Split.apply(self, axis=d, bounds=tuple(bounds))
        return pieces if isinstance(pieces, tuple) else (pieces,)

    def unbind(self, dim=0):
        if self.ndim == 0:
            raise ValueError("unbind: a 0-d tensor has no dim to unbind")
        d = _norm_dim(dim, self.ndim, "unbind")
        if self.shape[d] <= 1:
            return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))
        return _shape.Unbind.apply(self, axis=d)

    def gather(self, dim, index):
        d = _norm_dim(dim, self.ndim, "gather")
        index = _index_array(index, "gather")
        if index.ndim != self.ndim:
            raise ValueError(f"gather: index has {index.ndim} dims but the tensor has {self.ndim} "
                             f"(shapes {index.shape} and {self.shape})")
        # position k of the index grid is arange(index.shape[k]) along axis k, and index at d
        grid = [np.arange(s).reshape([-1 if a == k else 1 for a in range(index.ndim)])
                for k, s in enumerate(index.shape)]
        grid[d] = index
        return self[tuple(grid)]

    def index_select(self, dim, index):
        d = _norm_dim(dim, self.ndim, "index_select")
        index = _index_array(index, "index_select")
        if index.ndim > 1:
            raise ValueError(f"index_select: index must be 1-D, got shape {index.shape}")
        return self[(slice(None),) * d + (index.reshape(-1),)]

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index):
        index = _numpy_index(index)
        split = _split_mixed_index(index)
        if split is not None:
            return self[split[0]][split[1]]
        if _picks_one_element(index, self._data.ndim):
            # NOTE: NumPy's x[i, j] is a scalar copy, x[i, j, ...] a 0-d view: with the view,
            # an in-place change to t[i] reaches t (and shares its version), as in PyTorch
            index = (index if isinstance(index, tuple) else (index,)) + (Ellipsis,)
        try:
            return _shape.Index.apply(self, index=index)
        except IndexError as e:
            raise IndexError(f"index: {e} (tensor of shape {self.shape})") from None

    def __setitem__(self, index, value):
        index = _numpy_index(index)
        if not isinstance(value, Tensor):
            value = np.asarray(value, dtype=self._data.dtype)
        split = _split_mixed_index(index)
        target = self._data[index] if split is None else self._data[split[0]][split[1]]
        try:
            np.broadcast_shapes(np.shape(value), target.shape)
        except ValueError:
            raise ValueError(f"setitem: cannot assign a value of shape {np.shape(value)} to "
                             f"positions of shape {target.shape} "
                             f"(tensor of shape {self.shape})") from None
        if split is None:
            _inplace(self, "setitem", lambda src: _shape.IndexPut.apply(src, value, index=index))
            return
        basic, advanced = split
        _inplace(self, "setitem", lambda src: _shape.IndexPut.apply(
            src, _shape.IndexPut.apply(src[basic], value, index=advanced), index=basic))

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
        return _fill(self, "copy_", src)

    def zero_(self):
        return _fill(self, "zero_", 0)

    def fill_(self, value):
        return _fill(self, "fill_", value)

    def normal_(self, mean=0.0, std=1.0):
        return _fill(self, "normal_", _random.normal(mean, std, self.shape, self._data.dtype))

    def uniform_(self, a=0.0, b=1.0):
        return _fill(self, "uniform_", _random.uniform(a, b, self.shape, self._data.dtype))

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


def zero_grads(tensors, set_to_none=True):
    """Reset the gradients of ``tensors`` (Module.zero_grad and Optimizer.zero_grad): to None,
    which frees the memory, or to zeros in place, detached from any graph as PyTorch does."""
    for t in tensors:
        grad = t._grad
        if grad is None:
            continue
        if set_to_none:
            t._grad = None
            continue
        if grad.grad_fn is not None:
            grad.detach_()
        else:
            grad.requires_grad_(False)
        grad._data[...] = 0
        grad._version[0] += 1


def _rebuild(array, requires_grad):
    t = make_tensor(array)
    t.requires_grad = requires_grad
    return t


def _printable(array):
    if array.dtype.kind not in "biuf":
        return array.astype(np.float32)
    return array


def _check_device(device):
    if device != "cpu":
        raise RuntimeError(f"to: retrograd runs on the CPU only, got device {device!r}")


def _floating(t, op):
    """Ops that need a float input promote integer tensors to the default float dtype."""
    if _dt.is_floating(t._data.dtype):
        return t
    return make_tensor(t._data.astype(_dt.default_float.np))


def _require_floating(t, op):
    """Ops whose result dtype PyTorch cannot infer from an integer input (mean, var) refuse it."""
    if not _dt.is_floating(t._data.dtype):
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {t.dtype} (shape "
                        f"{t.shape}); convert it first, e.g. t.float().{op}(), or pass dtype=")
    return t


def _nonempty(t, op, dims=None):
    """Max-like reductions have no value over nothing: every reduced dim (all dims when
    ``dims`` is None) must be non-empty; other dims may be 0, as in PyTorch."""
    if dims is None:
        if t._data.size == 0:
            raise ValueError(f"{op}: cannot reduce an empty tensor of shape {t.shape}")
        return
    for d in dims:
        if t._data.shape[d] == 0:
            raise ValueError(f"{op}: cannot reduce over dim {d}, which has size 0 (tensor of "
                             f"shape {t.shape})")


def _clamp_bound(bound, name):
    if isinstance(bound, Tensor):
        if bound._data.size != 1:
            raise ValueError(f"clamp: {name} must be a number or a one-element tensor")
        return bound.item()
    return bound


def _operand(other, like, op):
    """Python numbers and arrays become constants of a dtype that follows PyTorch's rules."""
    if isinstance(other, Tensor):
        return other
    if isinstance(other, bool) or isinstance(other, numbers.Integral):
        return other
    if isinstance(other, numbers.Real):
        return float(other)
    if isinstance(other, (np.ndarray, list, tuple, np.generic)):
        return make_tensor(as_array(other))
    raise TypeError(f"{op}: unsupported operand of type {type(other).__name__} with a tensor of "
                    f"dtype {like.dtype}")


def _binary(fn, a, b, reflected=False, true_divide=False):
    """Apply a binary op after PyTorch's type promotion; errors name the op and the shapes."""
    op = fn.__name__.lower()
    b = _operand(b, a, op)
    if isinstance(b, Tensor):
        _check_broadcast(op, a, b)
        target = _promote(a, b)
        if true_divide and not _dt.is_floating(target):
            target = _dt.default_float.np
        a = a.to(target)
        b = b.to(target)
    elif (isinstance(b, float) or true_divide) and not _dt.is_floating(a._data.dtype):
        a = a.to(_dt.default_float.np)
    if isinstance(b, float) and a._data.dtype.kind != "f" and _dt.is_floating(a._data.dtype):
        # NOTE: NumPy keeps float16 * 2.5 in float16 (a Python float is "weak"), but ml_dtypes
        # promotes bfloat16 * 2.5 to float32; a scalar of the tensor's own dtype keeps bfloat16.
        b = a._data.dtype.type(b)
    return fn.apply(b, a) if reflected else fn.apply(a, b)


def _check_broadcast(op, a, b):
    if a._data.shape != b._data.shape:
        try:
            np.broadcast_shapes(a._data.shape, b._data.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                             f"(dtypes {a.dtype}, {b.dtype})") from None


def _compare(ufunc, a, b):
    other = b._data if isinstance(b, Tensor) else np.asarray(b) if isinstance(b, (list, tuple)) else b
    try:
        return make_tensor(np.asarray(ufunc(a._data, other)))
    except ValueError:
        raise ValueError(f"{ufunc.__name__}: shapes {a.shape} and {np.shape(other)} cannot be "
                         f"broadcast together") from None


def _matmul(a, b):
    """Matrix product with PyTorch's rules for 1-D operands (a vector is promoted to a matrix
    for the product and the added dim removed afterwards)."""
    if not isinstance(b, Tensor):
        b = Tensor(b)
    ad, bd = a._data, b._data
    if (ad.ndim >= 2 and bd.ndim == 2 and ad.dtype == bd.dtype
            and ad.shape[-1] == bd.shape[0]):  # the common case, checked cheaply
        return _la.MatMul.apply(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {a.shape} @ {b.shape}")
    target = _result_dtype(a._data.dtype, b._data.dtype)
    a, b = a.to(target), b.to(target)
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: cannot multiply {a.shape} @ {b.shape}: inner dims "
                         f"{a2.shape[-1]} != {b2.shape[-2]} (dtypes {a.dtype}, {b.dtype})")
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dims of {a.shape} @ {b.shape} cannot be broadcast") from None
    y = _la.MatMul.apply(a2, b2)
    if a.ndim == 1:
        y = y.squeeze(-2)
    if b.ndim == 1:
        y = y.squeeze(-1)
    return y


def _extremum(x, dim, keepdim, full_op, dim_op, pairwise_op, name):
    if isinstance(dim, Tensor):
        return _binary(pairwise_op, x, dim)
    if dim is None:
        _nonempty(x, name)
        return full_op.apply(x, axis=None, keepdims=False)
    d = _norm_dim(dim, x.ndim, name)
    _nonempty(x, name, (d,) if x.ndim else None)
    if x.ndim == 0:
        return _MinMax(x, make_tensor(np.asarray(0, dtype=np.int64)))
    values, indices = dim_op.apply(x, axis=d, keepdims=keepdim)
    return _MinMax(values, indices)


def _arg_extremum(fn, x, dim, keepdim, name):
    if dim is None:
        _nonempty(x, name)
        return make_tensor(np.asarray(fn(x._data), dtype=np.int64))
    d = _norm_dim(dim, x.ndim, name)
    _nonempty(x, name, (d,) if x.ndim else None)
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


def _infer_shape(shape, t, op):
    """Resolve one -1 in a target shape and check that the element count matches."""
    n = t._data.size
    if shape.count(-1) > 1:
        raise ValueError(f"{op}: only one dimension can be -1, got {shape}")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if known == 0 or n % known:
            raise ValueError(f"{op}: shape {shape} is invalid for a tensor of shape {t.shape} "
                             f"({n} elements)")
        shape = tuple(n // known if s == -1 else s for s in shape)
    if int(np.prod(shape, dtype=np.int64)) != n or any(s < 0 for s in shape):
        raise ValueError(f"{op}: shape {shape} is invalid for a tensor of shape {t.shape} "
                         f"({n} elements)")
    return shape


def _index_array(index, op):
    array = index._data if isinstance(index, Tensor) else np.asarray(index)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {array.dtype}")
    return array


def _picks_one_element(index, ndim):
    """True for an index of one int per dim (NumPy would return a scalar, not a view)."""
    items = index if isinstance(index, tuple) else (index,)
    return len(items) == ndim and all(isinstance(i, (int, np.integer)) and
                                      not isinstance(i, bool) for i in items)


def _numpy_index(index):
    """Replace Tensors and lists inside an index by NumPy arrays."""
    if isinstance(index, tuple):
        return tuple(_numpy_index_item(i) for i in index)
    return _numpy_index_item(index)


def _is_int_index(item):
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _split_mixed_index(index):
    """PyTorch applies integer indices before array indices; NumPy counts an int next to an
    array as one more array, which moves the result's dims (x[0, :, [0, 1]] has shape (2, n)
    in NumPy, (n, 2) in PyTorch). Such an index is split into its basic part (ints, slices,
    None, Ellipsis) and the array part applied after it; None when no split is needed."""
    if not isinstance(index, tuple) or not any(_is_int_index(i) for i in index):
        return None
    if not any(isinstance(i, np.ndarray) and i.ndim > 0 for i in index):
        return None
    basic, advanced = [], []
    for item in index:
        if _is_int_index(item):
            basic.append(item)
        elif isinstance(item, np.ndarray) and item.ndim > 0:
            basic.extend([slice(None)] * (item.ndim if item.dtype == np.bool_ else 1))
            advanced.append(item)
        elif item is None or isinstance(item, slice):
            basic.append(item)
            advanced.append(slice(None))
        else:  # Ellipsis (and anything NumPy will reject with its own message)
            basic.append(item)
            advanced.append(item)
    return tuple(basic), tuple(advanced)


def _numpy_index_item(item):
    if isinstance(item, Tensor):
        if item._data.ndim == 0 and item._data.dtype.kind in "iu":
            return int(item._data)
        return item._data
    if isinstance(item, list):
        return np.asarray(item)
    return item


def _bool_mask(mask, x, op):
    array = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if array.dtype != np.bool_:
        raise TypeError(f"{op}: mask must have dtype bool, got {array.dtype} (shape {array.shape})")
    try:
        if np.broadcast_shapes(array.shape, x.shape) != x.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"{op}: mask of shape {array.shape} does not broadcast to the tensor's "
                         f"shape {x.shape}") from None
    return array


def where(condition, input, other):  # noqa: A002 - PyTorch's names
    """Elements of ``input`` where condition is True, else of ``other`` (broadcast)."""
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must have dtype bool, got {cond.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # two Python numbers: float32 when either is a float, as torch (NumPy would say float64)
        input, other = make_tensor(as_array(input)), make_tensor(as_array(other))
    like = input if isinstance(input, Tensor) else other
    a = _operand(input, like, "where")
    b = _operand(other, like, "where")
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        target = _promote(a, b)
        a, b = a.to(target), b.to(target)
    elif isinstance(a, float) or isinstance(b, float):  # a Python float and a tensor
        a, b = (_floating(x, "where") if isinstance(x, Tensor) else x for x in (a, b))
    try:
        np.broadcast_shapes(cond.shape, np.shape(_data_of(a)), np.shape(_data_of(b)))
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {np.shape(_data_of(a))} and "
                         f"{np.shape(_data_of(b))} cannot be broadcast together") from None
    return _ew.Where.apply(cond, a, b)


def _data_of(x):
    return x._data if isinstance(x, Tensor) else x


def _fill(t, op, value):
    """Overwrite all of t's values with ``value`` (broadcast): fill_, zero_, normal_, copy_."""
    if not STATE.grad_enabled or not (t._requires_grad or _requires_grad(value)):
        if t._requires_grad and t.grad_fn is None and STATE.grad_enabled:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad is used in an in-place "
                               f"operation; wrap it in retrograd.no_grad()")
        _write(t, op, _data_of(value))
        return t
    return _inplace(t, op, lambda src: _shape.IndexPut.apply(src, value, index=Ellipsis))


def _requires_grad(x):
    return isinstance(x, Tensor) and x._requires_grad


def _write(t, op, value):
    try:
        np.copyto(t._data, value, casting="same_kind")
    except TypeError:
        raise TypeError(f"{op}: cannot write a result of dtype {np.asarray(value).dtype} into a "
                        f"tensor of dtype {t.dtype}") from None
    except ValueError as e:
        raise RuntimeError(f"{op}: cannot write into this tensor (shape {t.shape}): {e}") from None
    t._version[0] += 1


def _inplace(t, op, compute):
    """Run ``compute`` out of place and write the result into t's memory.

    When autograd records the op, t's history is rebased: t becomes the output of the new op,
    whose input is a snapshot of t's old values and old history. The snapshot is a copy, so
    backward never reads the overwritten values.

    Limitation (unlike PyTorch): a recorded in-place op is refused on a view, and on a tensor
    whose recorded views are still alive, because their histories would not be rebased too.
    Under no_grad both are allowed (only the shared version counter moves).
    """
    if not STATE.grad_enabled:
        _write(t, op, compute(t)._data)
        return t
    if t._requires_grad and t.grad_fn is None:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is used in an in-place "
                           f"operation; wrap it in retrograd.no_grad() or use an out-of-place op")
    if not t._requires_grad:
        result = compute(t)
        if not result._requires_grad:
            _write(t, op, result._data)
            return t
        # NOTE: the recorded op may have saved t itself; recompute it on a snapshot.
    _check_rebase_allowed(t, op)
    snapshot = make_tensor(t._data.copy(), t._requires_grad, t.grad_fn, t._output_nr)
    result = compute(snapshot)
    if result._data.shape != t._data.shape:
        raise RuntimeError(f"{op}: the result has shape {result.shape} but the tensor being "
                           f"written has shape {t.shape}")
    _write(t, op, result._data)
    t.grad_fn, t._output_nr, t._requires_grad = result.grad_fn, result._output_nr, True
    if t._retains_grad:  # like PyTorch, .grad follows the new value (hooks stay on the old one)
        t.grad_fn._retain_output(t._output_nr, t)
    return t


def _check_rebase_allowed(t, op):
    if t._base is not None:
        raise RuntimeError(f"{op}: in-place operations that autograd records are not supported "
                           f"on views (this tensor of shape {t.shape} is a view); use an "
                           f"out-of-place op")
    if t._views and any(ref() is not None for ref in t._views):
        raise RuntimeError(f"{op}: in-place operations that autograd records are not supported "
                           f"on a tensor whose views are still alive (their history would go "
                           f"stale); use an out-of-place op")


# Imported last: these modules import Tensor from here.
from retrograd.autograd.grad_mode import STATE  # noqa: E402
from retrograd.autograd import engine as _engine  # noqa: E402
from retrograd.autograd import function as _function  # noqa: E402
from retrograd.ops import elementwise as _ew  # noqa: E402
from retrograd.ops import linalg as _la  # noqa: E402
from retrograd.ops import reduce as _red  # noqa: E402
from retrograd.ops import shape as _shape  # noqa: E402
from retrograd.ops import softmax as _sm  # noqa: E402
from retrograd import _numpy_interop as _npi  # noqa: E402
from retrograd import random as _random  # noqa: E402
