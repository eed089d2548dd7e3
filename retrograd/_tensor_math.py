"""Tensor methods, part of PyTorch's tail (issue 19): more elementwise math, logic and
comparisons, more reductions, vector and matrix products, and their in-place forms.

The methods live on ``Methods`` and are installed on ``Tensor`` by ``install`` (tensor.py
calls it once, for each family module: this one, ``_tensor_indexing`` and
``_tensor_random``); a name Tensor already defines is left alone. As in tensor.py, each
method checks its arguments, so that errors name the op, the shapes and the dtypes, and calls
one op from ``retrograd.ops`` or composes differentiable Tensor ops (when the composition has
exactly the op's gradient and costs no more).
"""

import math

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd import return_types
from retrograd._operands import binary as _binary
from retrograd._operands import operand as _operand
from retrograd.autograd.inplace import apply_inplace
from retrograd.ops import elementwise_math as _em
from retrograd.ops import reduce_extra as _rx
from retrograd.tensor import Tensor, _floating, as_array, make_tensor

__all__ = ["Methods", "install", "in_place"]


def install(cls, family):
    """Set every method and property of ``family`` on ``cls`` that ``cls`` does not define."""
    for name, member in vars(family).items():
        special = name.startswith("__") and not callable(member)   # __module__, __dict__...
        if not special and not hasattr(cls, name):
            setattr(cls, name, member)


def in_place(name):
    """The in-place form ``name_`` of a method: the result of ``self.name(...)`` written into
    self, recorded by autograd as tensor.py's add_ and mul_ are (version counter, rebase)."""
    def method(self, *args, **kwargs):
        return apply_inplace(self, name + "_", lambda src: getattr(src, name)(*args, **kwargs))

    method.__name__ = name + "_"
    method.__doc__ = f"In-place ``{name}``: self becomes ``self.{name}(...)``; returns self."
    return method


def _unary(op, name):
    """A method applying the one-input op to self (integer tensors promoted to the default
    float dtype, as PyTorch)."""
    def method(self):
        return op.apply(_floating(self, name))

    method.__name__ = name
    method.__doc__ = f"Elementwise {name}; see ``retrograd.ops.elementwise_math.{op.__name__}``."
    return method


def _rounding(op, name):
    """floor, ceil, trunc: integer tensors are returned unchanged (a copy), as PyTorch."""
    def method(self):
        if not _dt.is_floating(self._data.dtype):
            return make_tensor(self._data.copy())
        return op.apply(self)

    method.__name__ = name
    method.__doc__ = f"Elementwise {name} (gradient 0); integer tensors are returned as a copy."
    return method


def _float_binary(op, name):
    """A method for a binary op whose result is floating (integers promoted, as PyTorch)."""
    def method(self, other):
        return _binary(op, self, other, true_divide=True)

    method.__name__ = name
    method.__doc__ = f"Elementwise {name}(self, other), broadcast; see ``{op.__name__}``."
    return method


def _keep_binary(op, name):
    """A method for a binary op that keeps PyTorch's promoted dtype (integers stay integers)."""
    def method(self, other):
        return _binary(op, self, other)

    method.__name__ = name
    method.__doc__ = f"Elementwise {name}(self, other), broadcast; see ``{op.__name__}``."
    return method


def _logic(ufunc, name, integers_only=False):
    """A method returning ufunc(self, other) outside the graph (bool, or the integer dtype of
    a bitwise op)."""
    def method(self, other):
        other_data = other._data if isinstance(other, Tensor) else as_array(other)
        if integers_only:
            for data in (self._data, other_data):
                if data.dtype.kind not in "biu":
                    raise TypeError(f"{name}: only integer and bool tensors, got dtypes "
                                    f"{self.dtype} and {_dt.from_numpy_dtype(other_data.dtype)}")
        try:
            return make_tensor(np.asarray(ufunc(self._data, other_data)))
        except ValueError:
            raise ValueError(f"{name}: shapes {self.shape} and {other_data.shape} cannot be "
                             f"broadcast together") from None

    method.__name__ = name
    method.__doc__ = f"Elementwise {name}(self, other), outside the graph."
    return method


def _reduced_dim(name, t, dim):
    return None if dim is None else _checks.dim(name, dim, t.ndim)


def _integer_result(t):
    """prod and sums of integers and bools give int64, as PyTorch."""
    if t._data.dtype.kind in "biu" and t._data.dtype != np.int64:
        return t.to(_dt.int64)
    return t


def _ranked(op, name, t, ndim):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if t.ndim != ndim:
        kind = {1: "a vector (1-D)", 2: "a matrix (2-D)"}[ndim]
        raise RuntimeError(f"{op}: {name} must be {kind}, got shape {tuple(t.shape)}")
    return t


def _same_dtype(op, a, b):
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"{op}: expected both tensors to have the same dtype, got "
                           f"{a.dtype} and {b.dtype}")


class Methods:
    """The methods this module adds to Tensor (see the module docstring)."""

    # ------------------------------------------------------------------ logs, exponentials
    log10 = _unary(_em.Log10, "log10")
    log2 = _unary(_em.Log2, "log2")
    log1p = _unary(_em.Log1p, "log1p")
    expm1 = _unary(_em.Expm1, "expm1")
    exp2 = _unary(_em.Exp2, "exp2")
    erf = _unary(_em.Erf, "erf")
    erfinv = _unary(_em.Erfinv, "erfinv")
    tan = _unary(_em.Tan, "tan")
    asin = arcsin = _unary(_em.Asin, "asin")
    acos = arccos = _unary(_em.Acos, "acos")
    atan = arctan = _unary(_em.Atan, "atan")
    sinh = _unary(_em.Sinh, "sinh")
    cosh = _unary(_em.Cosh, "cosh")

    # ------------------------------------------------------------------ rounding, signs
    floor = _rounding(_em.Floor, "floor")
    ceil = _rounding(_em.Ceil, "ceil")
    trunc = fix = _rounding(_em.Trunc, "trunc")

    def round(self, decimals=0):
        """Round half to even, to ``decimals`` decimal places (keyword, as PyTorch)."""
        decimals = _checks.integer("round", "decimals", decimals)
        if not _dt.is_floating(self._data.dtype):
            if decimals:
                raise TypeError(f"round: decimals={decimals} needs a floating-point tensor, "
                                f"got dtype {self.dtype}")
            return make_tensor(self._data.copy())
        return _em.Round.apply(self, decimals=decimals)

    def sign(self):
        """-1, 0 or 1 (0 at NaN), in self's dtype; gradient 0."""
        if self._data.dtype == np.bool_:
            return make_tensor(self._data.copy())
        return _em.Sign.apply(self)

    sgn = sign

    def frac(self):
        """self - trunc(self), with self's sign (floating tensors only, as PyTorch)."""
        if not _dt.is_floating(self._data.dtype):
            raise TypeError(f"frac: expected a floating-point tensor, got dtype {self.dtype}")
        return _em.Frac.apply(self)

    def negative(self):
        return -self

    def absolute(self):
        return self.abs()

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """NaN, +inf and -inf replaced (by default 0 and the dtype's largest and lowest
        finite values); replaced entries get no gradient."""
        if not _dt.is_floating(self._data.dtype):
            return make_tensor(self._data.copy())
        return _em.NanToNum.apply(self, nan=nan, posinf=posinf, neginf=neginf)

    # ------------------------------------------------------------------ binary math
    atan2 = arctan2 = _float_binary(_em.Atan2, "atan2")
    hypot = _float_binary(_em.Hypot, "hypot")
    logaddexp = _float_binary(_em.LogAddExp, "logaddexp")
    xlogy = _float_binary(_em.Xlogy, "xlogy")
    remainder = _keep_binary(_em.Remainder, "remainder")
    fmod = _keep_binary(_em.Fmod, "fmod")
    floor_divide = _keep_binary(_em.FloorDivide, "floor_divide")

    def __mod__(self, other):
        return self.remainder(other)

    def __rmod__(self, other):
        return _binary(_em.Remainder, self, other, reflected=True)

    def __floordiv__(self, other):
        return self.floor_divide(other)

    def __rfloordiv__(self, other):
        return _binary(_em.FloorDivide, self, other, reflected=True)

    def true_divide(self, other):
        return self / other

    def lerp(self, end, weight):
        """self + weight * (end - self); weight a number or a tensor (broadcast)."""
        if not isinstance(end, Tensor):
            raise TypeError(f"lerp: end must be a Tensor, got {type(end).__name__}")
        _same_dtype("lerp", self, end)
        if not _dt.is_floating(self._data.dtype):
            raise TypeError(f"lerp: expected floating-point tensors, got dtype {self.dtype}")
        weight = _operand(weight, self, "lerp")
        if isinstance(weight, Tensor):
            _same_dtype("lerp", self, weight)
            shapes = (self.shape, end.shape, weight.shape)
        else:
            weight = self._data.dtype.type(weight)
            shapes = (self.shape, end.shape)
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"lerp: shapes {shapes} cannot be broadcast together") from None
        return _em.Lerp.apply(self, end, weight)

    def addcmul(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 * tensor2 (broadcast): composed of mul and add, whose
        gradients are exactly addcmul's."""
        return self + (tensor1 * value if value != 1 else tensor1) * tensor2

    def addcdiv(self, tensor1, tensor2, *, value=1):
        """self + value * tensor1 / tensor2 (broadcast; integer division refused, as
        PyTorch): composed of mul, div and add."""
        for t in (tensor1, tensor2):
            if isinstance(t, Tensor) and not _dt.is_floating(t._data.dtype):
                raise TypeError(f"addcdiv: integer division of tensors is not supported, got "
                                f"dtype {t.dtype}; use floating-point tensors")
        return self + (tensor1 * value if value != 1 else tensor1) / tensor2

    # ------------------------------------------------------------------ logic
    logical_and = _logic(np.logical_and, "logical_and")
    logical_or = _logic(np.logical_or, "logical_or")
    logical_xor = _logic(np.logical_xor, "logical_xor")
    bitwise_and = _logic(np.bitwise_and, "bitwise_and", integers_only=True)
    bitwise_or = _logic(np.bitwise_or, "bitwise_or", integers_only=True)
    bitwise_xor = _logic(np.bitwise_xor, "bitwise_xor", integers_only=True)

    def bitwise_not(self):
        if self._data.dtype.kind not in "biu":
            raise TypeError(f"bitwise_not: only integer and bool tensors, got dtype {self.dtype}")
        return ~self

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """|self - other| <= atol + rtol * |other| elementwise (inf equal to itself), bool."""
        other_data = other._data if isinstance(other, Tensor) else as_array(other)
        try:
            return make_tensor(np.isclose(self._data, other_data, rtol=rtol, atol=atol,
                                          equal_nan=equal_nan))
        except ValueError:
            raise ValueError(f"isclose: shapes {self.shape} and {other_data.shape} cannot be "
                             f"broadcast together") from None

    def equal(self, other):
        """True when other has the same shape and the same values (a Python bool)."""
        if not isinstance(other, Tensor):
            raise TypeError(f"equal: other must be a Tensor, got {type(other).__name__}")
        return self.shape == other.shape and bool(np.array_equal(self._data, other._data))

    def count_nonzero(self, dim=None):
        dims = _checks.dims("count_nonzero", dim, self.ndim)
        return make_tensor(np.asarray(np.count_nonzero(self._data, axis=dims), dtype=np.int64))

    # ------------------------------------------------------------------ reductions
    def prod(self, dim=None, keepdim=False, dtype=None):
        """The product over dim (one dim) or of all elements; integers and bools give int64.
        The gradient is exact with zeros in the input (see ops.reduce_extra.Prod)."""
        x = self.to(dtype) if dtype is not None else _integer_result(self)
        axis = _reduced_dim("prod", self, dim)
        if self.ndim == 0:
            return x.clone()
        return _rx.Prod.apply(x, axis=axis, keepdims=keepdim if axis is not None else False)

    def median(self, dim=None, keepdim=False):
        """The lower median of all elements, or (values, indices) along dim; NaN propagates."""
        if dim is None:
            _checks.nonempty("median", self)
            return _rx.Median.apply(self)
        d = _checks.dim("median", dim, self.ndim)
        _checks.nonempty("median", self, (d,) if self.ndim else None)
        if self.ndim == 0:
            return return_types.median(self.clone(), make_tensor(np.asarray(0, np.int64)))
        values, indices = _rx.MedianDim.apply(self, axis=d, keepdims=keepdim)
        return return_types.median(values, indices)

    def nanmean(self, dim=None, keepdim=False, dtype=None):
        """The mean of the non-NaN elements (NaN where all are NaN): sum of the others over
        their count; NaN entries get no gradient."""
        x = self.to(dtype) if dtype is not None else _checks.floating("nanmean", self)
        is_nan = x.isnan()
        kept = x.masked_fill(is_nan, 0.0)
        count = (~is_nan).sum(dim, keepdim=keepdim)
        return kept.sum(dim, keepdim=keepdim) / count.to(x.dtype)

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The n-th forward difference along dim, after joining prepend and append to self
        (bool tensors give logical_xor, as PyTorch)."""
        from retrograd.creation import cat

        n = _checks.non_negative_int("diff", "n", n)
        d = _checks.dim("diff", dim, self.ndim)
        if self.ndim == 0:
            raise RuntimeError("diff: expects input to be at least one-dimensional")
        pieces = [p if isinstance(p, Tensor) else make_tensor(as_array(p))
                  for p in (prepend, self, append) if p is not None]
        pieces = [p.expand(*self.shape[:d], 1, *self.shape[d + 1:]) if p.ndim == 0 else p
                  for p in pieces]
        x = cat(pieces, d) if len(pieces) > 1 else self
        for _ in range(n):
            ahead = x[(slice(None),) * d + (slice(1, None),)]
            behind = x[(slice(None),) * d + (slice(None, -1),)]
            x = ahead.logical_xor(behind) if x._data.dtype == np.bool_ else ahead - behind
        return x

    # ------------------------------------------------------------------ products, distances
    def dot(self, other):
        """The dot product of two vectors of the same size and dtype."""
        a, b = _ranked("dot", "input", self, 1), _ranked("dot", "tensor", other, 1)
        if a.shape != b.shape:
            raise RuntimeError(f"dot: expected both vectors to have the same size, got "
                               f"{a.shape[0]} and {b.shape[0]}")
        _same_dtype("dot", a, b)
        return a @ b

    vdot = dot

    def inner(self, other):
        """sum over the last dim of self * other (a product with numbers when either is 0-d):
        self @ other^T generalized to any number of dims."""
        if not isinstance(other, Tensor):
            raise TypeError(f"inner: other must be a Tensor, got {type(other).__name__}")
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        if self.shape[-1] != other.shape[-1]:
            raise RuntimeError(f"inner: the last dims must match, got shapes {self.shape} and "
                               f"{other.shape}")
        return self.tensordot(other, dims=([self.ndim - 1], [other.ndim - 1]))

    def mv(self, vec):
        """Matrix (n, m) times vector (m,)."""
        a, v = _ranked("mv", "input", self, 2), _ranked("mv", "vec", vec, 1)
        if a.shape[1] != v.shape[0]:
            raise RuntimeError(f"mv: cannot multiply a matrix of shape {a.shape} by a vector of "
                               f"size {v.shape[0]}")
        _same_dtype("mv", a, v)
        return a @ v

    def tensordot(self, other, dims=2):
        """Sum of products over dims of self and other: an int n (the last n of self with the
        first n of other) or two lists of dims; permute, reshape and one matmul."""
        a_dims, b_dims = _contraction_dims(self, other, dims)
        for i, j in zip(a_dims, b_dims):
            if self.shape[i] != other.shape[j]:
                raise RuntimeError(f"tensordot: contracted dims {i} of {self.shape} and {j} of "
                                   f"{other.shape} have different sizes")
        a_free = [self.shape[i] for i in range(self.ndim) if i not in a_dims]
        b_free = [other.shape[j] for j in range(other.ndim) if j not in b_dims]
        k = _size([self.shape[i] for i in a_dims])
        a = self.permute(*[i for i in range(self.ndim) if i not in a_dims], *a_dims)
        b = other.permute(*b_dims, *[j for j in range(other.ndim) if j not in b_dims])
        out = a.reshape(_size(a_free), k) @ b.reshape(k, _size(b_free))
        return out.reshape(*a_free, *b_free)

    def kron(self, other):
        """The Kronecker product: blocks self[i] * other, as a broadcast product reshaped."""
        if not isinstance(other, Tensor):
            raise TypeError(f"kron: other must be a Tensor, got {type(other).__name__}")
        ndim = max(self.ndim, other.ndim)
        a = self.reshape(*(1,) * (ndim - self.ndim), *self.shape)
        b = other.reshape(*(1,) * (ndim - other.ndim), *other.shape)
        a = a.reshape(*[v for s in a.shape for v in (s, 1)])
        b = b.reshape(*[v for s in b.shape for v in (1, s)])
        return (a * b).reshape(*[sa * sb for sa, sb in zip(a.shape[::2], b.shape[1::2])])

    def cross(self, other, dim=None):
        """The cross product of 3-vectors along dim (broadcast). dim=None takes the first dim
        of size 3, as torch.cross (torch.linalg.cross defaults to -1)."""
        if not isinstance(other, Tensor):
            raise TypeError(f"cross: other must be a Tensor, got {type(other).__name__}")
        try:
            shape = np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            raise ValueError(f"cross: shapes {self.shape} and {other.shape} cannot be broadcast "
                             f"together") from None
        if dim is None:
            threes = [i for i, s in enumerate(shape) if s == 3]
            if not threes:
                raise RuntimeError(f"cross: no dim of size 3 in shape {tuple(shape)}")
            dim = threes[0]
        d = _checks.dim("cross", dim, len(shape))
        if shape[d] != 3:
            raise RuntimeError(f"cross: dim {dim} must have size 3, got shapes {self.shape} and "
                               f"{other.shape}")
        a, b = self.expand(*shape), other.expand(*shape)
        a1, a2 = a.roll(-1, d), a.roll(-2, d)
        b1, b2 = b.roll(-1, d), b.roll(-2, d)
        return a1 * b2 - a2 * b1

    def dist(self, other, p=2):
        """The p-norm of self - other (broadcast); gradient 0 where they are equal."""
        return (self - other).norm(p)

    def trace(self):
        """The sum of the main diagonal of a matrix."""
        _ranked("trace", "input", self, 2)
        return _integer_result(self).diagonal().sum()


def _size(shape):
    return math.prod(shape)


def _contraction_dims(a, b, dims):
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)):
        if not 0 <= dims <= min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot: dims={dims} out of range for shapes {a.shape} and "
                               f"{b.shape}")
        return list(range(a.ndim - dims, a.ndim)), list(range(dims))
    if len(dims) != 2:
        raise RuntimeError(f"tensordot: dims must be an int or two lists of dims, got {dims!r}")
    a_dims, b_dims = ([d] if isinstance(d, (int, np.integer)) else list(d) for d in dims)
    if len(a_dims) != len(b_dims):
        raise RuntimeError(f"tensordot: both lists of dims must have the same length, got "
                           f"{a_dims} and {b_dims}")
    return ([_checks.dim("tensordot", d, a.ndim) for d in a_dims],
            [_checks.dim("tensordot", d, b.ndim) for d in b_dims])


_IN_PLACE = (
    "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "neg",
    "reciprocal", "square", "log10", "log2", "log1p", "expm1", "exp2", "erf", "erfinv", "tan",
    "asin", "acos", "atan", "sinh", "cosh", "floor", "ceil", "trunc", "round", "sign", "frac",
    "nan_to_num", "clamp_min", "clamp_max", "atan2", "hypot", "logaddexp", "xlogy", "remainder",
    "fmod", "floor_divide", "lerp", "addcmul", "addcdiv", "absolute", "negative", "arcsin",
    "arccos", "arctan", "arctan2", "true_divide", "fix", "sgn", "logical_not",
    "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_not",
)
for _name in _IN_PLACE:
    setattr(Methods, _name + "_", in_place(_name))
