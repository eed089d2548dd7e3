"""Argument checks, in one place.

Ops, layers, optimizers, data tools and the Tensor methods check their arguments through these
functions, so that an error always reads the same way: the owner (an op such as ``conv2d``, a
layer, or a tool), the argument, what was expected and what was given. Each check returns the
value in its normal form (``int_tuple`` turns 2 into (2, 2)).

``owner`` is a string, or an object (a layer) that is named by its ``repr`` only when an error
is raised, so that layers can pass themselves down to ``nn.functional`` at no cost: the error
then names the layer with its arguments, ``Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))``.
"""

import math
import numbers

import numpy as np

__all__ = ["name_of", "is_int", "integer", "int_at_least", "positive_int", "non_negative_int",
           "index", "int_tuple", "positive_int_tuple", "probability", "number", "boolean",
           "one_of", "cpu_device", "dim", "dims", "sizes", "reshape_target", "broadcastable",
           "nonempty", "floating", "one_element", "norm_order", "number_at_least", "is_module",
           "describe", "parameter_iterable", "tensors", "instance_of", "mixed_dtypes"]


def name_of(owner, default=None):
    """How errors name ``owner``: itself if a string, else its one-line repr (a layer with its
    arguments), or its class name when the repr spans lines (a model); ``default`` for None."""
    if owner is None:
        return default
    if isinstance(owner, str):
        return owner
    text = repr(owner)
    return text if "\n" not in text else type(owner).__name__


def is_int(value):
    """True for Python and NumPy integers, False for bools (which Python counts as ints)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(owner, name, value):
    """``value`` as an int (a Python or NumPy integer, not a bool), e.g. an index.

    Example:
        >>> integer("TensorDataset", "index", 1.0)
        Traceback (most recent call last):
        TypeError: TensorDataset: index must be an int, got float
    """
    if not is_int(value):
        raise TypeError(f"{name_of(owner)}: {name} must be an int, got {type(value).__name__}")
    return int(value)


def int_at_least(owner, name, value, minimum):
    """``value`` as an int >= minimum.

    Example:
        >>> int_at_least("Conv2d", "groups", 0, 1)
        Traceback (most recent call last):
        ValueError: Conv2d: groups must be an int >= 1, got 0
    """
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name_of(owner)}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def positive_int(owner, name, value, allow_none=False):
    """``value`` as an int >= 1 (or None, when allowed).

    Example:
        >>> positive_int("DataLoader", "batch_size", 0)
        Traceback (most recent call last):
        ValueError: DataLoader: batch_size must be a positive int, got 0
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or value < 1:
        or_none = " or None" if allow_none else ""
        raise ValueError(f"{name_of(owner)}: {name} must be a positive int{or_none}, got "
                         f"{value!r}")
    return int(value)


def non_negative_int(owner, name, value):
    """``value`` as an int >= 0."""
    if not is_int(value) or value < 0:
        raise ValueError(f"{name_of(owner)}: {name} must be a non-negative int, got {value!r}")
    return int(value)


def index(owner, name, value, size):
    """``value`` as an index into ``size`` items: an int in [-size, size), negative ones
    counting from the end, returned in [0, size).

    Example:
        >>> index("Embedding", "padding_idx", -1, 10)
        9
        >>> index("Embedding", "padding_idx", 10, 10)
        Traceback (most recent call last):
        ValueError: Embedding: padding_idx must be an int in [-10, 9], got 10
    """
    if not is_int(value) or not -size <= value < size:
        raise ValueError(f"{name_of(owner)}: {name} must be an int in [-{size}, {size - 1}], "
                         f"got {value!r}")
    return int(value) % size


def int_tuple(owner, name, value, dims, minimum):
    """``value`` (an int, or a tuple/list of ``dims`` ints) as a tuple of ``dims`` ints, each
    >= minimum. ``dims`` may also be a tuple of accepted lengths; an int then fills the first.

    Example:
        >>> int_tuple("conv2d", "stride", 2, 2, minimum=1)
        (2, 2)
        >>> int_tuple("RandomCrop", "padding", (1, 2, 3), (2, 4), minimum=0)
        Traceback (most recent call last):
        ValueError: RandomCrop: padding must be an int or a tuple of 2 or 4 ints, got (1, 2, 3)
    """
    lengths = dims if isinstance(dims, tuple) else (dims,)
    values = (value,) * lengths[0] if is_int(value) else value
    if not isinstance(values, (tuple, list)) or len(values) not in lengths \
            or not all(is_int(v) for v in values):
        counts = " or ".join(str(n) for n in lengths)
        raise ValueError(f"{name_of(owner)}: {name} must be an int or a tuple of {counts} ints, "
                         f"got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name_of(owner)}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def positive_int_tuple(owner, name, value, dims=None, allow_none=False):
    """``value`` (a positive int, or a tuple/list of ``dims`` positive ints; of any non-zero
    length when ``dims`` is None) as a tuple. Entries may be None when ``allow_none``, as in
    adaptive pooling's output_size, where None keeps the input's size.

    Example:
        >>> positive_int_tuple("adaptive_avg_pool2d", "output_size", (None, 3), 2,
        ...                    allow_none=True)
        (None, 3)
        >>> positive_int_tuple("layer_norm", "normalized_shape", 8)
        (8,)
        >>> positive_int_tuple("layer_norm", "normalized_shape", (4, 0))
        Traceback (most recent call last):
        ValueError: layer_norm: normalized_shape must be a positive int or a non-empty tuple of
        positive ints, got (4, 0)
    """
    single = is_int(value) or (value is None and allow_none)
    values = (value,) * (dims or 1) if single else value
    if not isinstance(values, (tuple, list)) or not values \
            or (dims is not None and len(values) != dims) \
            or not all((v is None and allow_none) or (is_int(v) and v >= 1) for v in values):
        count = "a non-empty tuple of" if dims is None else f"a tuple of {dims}"
        or_none = " (or None)" if allow_none else ""
        raise ValueError(f"{name_of(owner)}: {name} must be a positive int or {count} positive "
                         f"ints{or_none}, got {value!r}")
    return tuple(None if v is None else int(v) for v in values)


def probability(owner, name, value):
    """``value`` as a float in [0, 1] (a probability, or a fraction such as label smoothing).

    Example:
        >>> probability("Dropout", "dropout probability", 1.5)
        Traceback (most recent call last):
        ValueError: Dropout: dropout probability has to be between 0 and 1, but got 1.5
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name_of(owner)}: {name} has to be between 0 and 1, but got "
                         f"{value!r}")
    return float(value)


def number(owner, name, value, allow_none=False, positive=False):
    """``value`` as a float (a real number, not a bool; > 0 when ``positive``)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) \
            or (positive and not value > 0):
        what = "a positive number" if positive else "a number"
        or_none = " or None" if allow_none else ""
        raise TypeError(f"{name_of(owner)}: {name} must be {what}{or_none}, got {value!r}")
    return float(value)


def boolean(owner, name, value):
    """``value`` if it is a bool (True or False, not 0 or 1)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name_of(owner)}: {name} must be a bool, got "
                         f"{type(value).__name__}")
    return value


def one_of(owner, name, value, choices):
    """``value`` if it is one of ``choices`` (strings).

    Example:
        >>> one_of("pad", "mode", "wrap", ("constant", "reflect"))
        Traceback (most recent call last):
        ValueError: pad: mode must be 'constant' or 'reflect', got 'wrap'
        >>> one_of("scaler", "device", "cuda", ("cpu",))
        Traceback (most recent call last):
        ValueError: scaler: device must be 'cpu', got 'cuda'
    """
    if value not in choices:
        listed = (", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
                  if len(choices) > 1 else repr(choices[0]))
        raise ValueError(f"{name_of(owner)}: {name} must be {listed}, got {value!r}")
    return value


def norm_order(owner, p):
    """The order of a vector norm as a float: "fro" (2), inf, -inf, 0 or a positive number.

    Example:
        >>> norm_order("norm", -1)
        Traceback (most recent call last):
        ValueError: norm: p must be "fro", inf, -inf, 0 or a positive number, got -1
    """
    if p == "fro":
        return 2.0
    if isinstance(p, numbers.Real) and not isinstance(p, bool) \
            and (p >= 0 or p == -math.inf):
        return float(p)
    raise ValueError(f'{name_of(owner)}: p must be "fro", inf, -inf, 0 or a positive number, '
                     f"got {p!r}")


def cpu_device(owner, device):
    """retrograd computes on the CPU: ``device`` may be None, "cpu" (any index) or a cpu
    ``retrograd.device``; see ``retrograd.device.check_cpu``. Returns ``device``.

    Example:
        >>> cpu_device("Linear", "cuda")
        Traceback (most recent call last):
        RuntimeError: Linear: retrograd runs on the CPU only, got device 'cuda' (device 'cuda' \
is not available: retrograd.cuda.is_available() is False); use device='cpu'
    """
    from retrograd.device import check_cpu  # here: device.py names owners with name_of

    check_cpu(owner, device)
    return device


def dim(owner, value, ndim):
    """One dim of a tensor with ``ndim`` dims as a non-negative int (negative dims count from
    the end); an error names the valid range.

    Example:
        >>> dim("softmax", -1, 3), dim("sum", 0, 0)
        (2, 0)
    """
    if not is_int(value):
        raise TypeError(f"{name_of(owner)}: dim must be an int, got {value!r}")
    size = max(ndim, 1)
    if not -size <= value < size:
        raise IndexError(f"{name_of(owner)}: dim {value} is out of range for a tensor with "
                         f"{ndim} dims (expected -{size} <= dim < {size})")
    return int(value) % size if ndim else 0


def dims(owner, value, ndim):
    """None (all dims) or a sorted tuple of distinct non-negative dims."""
    if value is None:
        return None
    given = value if isinstance(value, (tuple, list)) else (value,)
    out = tuple(sorted(dim(owner, d, ndim) for d in given))
    if len(set(out)) != len(out):
        raise ValueError(f"{name_of(owner)}: dim {value} repeats a dimension")
    if ndim == 0:
        return None
    return out


def sizes(owner, shape):
    """A shape given as f(2, 3) or f((2, 3)) as a tuple of ints.

    Example:
        >>> sizes("zeros", ((2, 3),)), sizes("zeros", (2, 3))
        ((2, 3), (2, 3))
    """
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(is_int(s) for s in shape):
        raise TypeError(f"{name_of(owner)}: sizes must be ints, got {shape!r}")
    return tuple(int(s) for s in shape)


# ---------------------------------------------------------------------------- tensors
# (``t`` is anything with ``shape`` and ``dtype``: a Tensor, or an array for its shape)

def reshape_target(owner, shape, t):
    """A reshape of ``t`` to ``shape`` (ints, at most one -1) as a concrete shape with the
    same number of elements.

    Example:
        >>> import numpy as np
        >>> reshape_target("view", (3, -1), np.zeros((2, 6)))
        (3, 4)
    """
    n = math.prod(t.shape)        # exact Python ints (np.prod took ~3 us per call)
    if shape.count(-1) > 1:
        raise ValueError(f"{name_of(owner)}: only one dimension can be -1, got {shape}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or n % known:
            raise ValueError(f"{name_of(owner)}: shape {shape} is invalid for a tensor of shape "
                             f"{t.shape} ({n} elements)")
        shape = tuple(n // known if s == -1 else s for s in shape)
    if math.prod(shape) != n or any(s < 0 for s in shape):
        raise ValueError(f"{name_of(owner)}: shape {shape} is invalid for a tensor of shape "
                         f"{t.shape} ({n} elements)")
    return shape


def broadcastable(owner, a, b):
    """Tensors a and b whose shapes broadcast together."""
    if a._data.shape != b._data.shape:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{name_of(owner)}: shapes {a.shape} and {b.shape} cannot be "
                             f"broadcast together (dtypes {a.dtype}, {b.dtype})") from None


def nonempty(owner, t, dims=None):
    """Max-like reductions have no value over nothing: every reduced dim of t (all dims when
    ``dims`` is None) must be non-empty; other dims may be 0, as in PyTorch."""
    if dims is None:
        if 0 in t.shape:
            raise ValueError(f"{name_of(owner)}: cannot reduce an empty tensor of shape "
                             f"{t.shape}")
        return
    for d in dims:
        if t.shape[d] == 0:
            raise ValueError(f"{name_of(owner)}: cannot reduce over dim {d}, which has size 0 "
                             f"(tensor of shape {t.shape})")


def floating(owner, t):
    """t itself if it is floating-point: ops whose result dtype PyTorch cannot infer from an
    integer input (mean, var) refuse one."""
    if not t.dtype.is_floating_point:
        raise TypeError(f"{name_of(owner)}: expected a floating-point tensor, got dtype "
                        f"{t.dtype} (shape {t.shape}); convert it first, e.g. "
                        f"t.float().{owner}(), or pass dtype=")
    return t


def one_element(owner, name, t):
    """t if it holds exactly one element (a tensor standing for a number)."""
    if math.prod(t.shape) != 1:
        raise ValueError(f"{name_of(owner)}: {name} must be a number or a one-element tensor, "
                         f"got shape {t.shape}")
    return t


# ---------------------------------------------------------------------------- numbers, kinds
def number_at_least(owner, name, value, minimum, allow_none=False):
    """``value`` as a finite float >= minimum (or None, when allowed): a learning rate, a
    weight decay. nan and +-inf are refused, as they would poison every later step.

    Example:
        >>> number_at_least("train", "lr", float("nan"), 0.0)
        Traceback (most recent call last):
        ValueError: train: lr must be a finite number >= 0.0, got nan
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) \
            or not np.isfinite(float(value)) or value < minimum:
        or_none = " or None" if allow_none else ""
        raise ValueError(f"{name_of(owner)}: {name} must be a finite number >= {minimum}"
                         f"{or_none}, got {value!r}")
    return float(value)


def is_module(value):
    """True for a Module (anything with parameters(), named_parameters() and state_dict()):
    the value users most often pass where its parameters were meant. Duck-typed, as the core
    sits below nn/."""
    return all(callable(getattr(value, method, None))
               for method in ("parameters", "named_parameters", "state_dict"))


def describe(value):
    """How an error names a value of the wrong kind: what it is, and what tells it apart.

    Example:
        >>> import numpy as np
        >>> describe(3), describe(np.zeros((2, 3))), describe(x for x in ())
        ('an int', 'a NumPy array of shape (2, 3)', 'a generator')
    """
    from retrograd.tensor import Tensor  # here: tensor.py imports this module
    if isinstance(value, Tensor):
        return f"a Tensor of shape {value.shape} (dtype {value.dtype})"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape}"
    kind = type(value).__name__
    return f"{_article(kind)} {kind}{' module' if is_module(value) else ''}"


def parameter_iterable(owner, name, value, expected, single=False, ordered=False,
                       nonempty=False):
    """``value``, an iterable of parameters (a list, a tuple, or a generator such as
    ``model.parameters()``), as a list; its elements are not checked (``tensors`` does).

    A TypeError says what was given and what to pass instead, for: a Module (pass
    model.parameters()), a single Tensor (accepted as [value] when ``single``), a dict or a
    string (iterating them gives keys or characters), a set when ``ordered`` (its order
    changes from run to run, and so would the parameters' order in a state dict), or anything
    that is not iterable. With ``nonempty``, an empty one is a ValueError, which points at an
    iterator that was already used up (model.parameters() can be iterated only once).

    Example:
        >>> parameter_iterable("SGD", "params", iter([]), "an iterable of Tensors",
        ...                    nonempty=True)
        Traceback (most recent call last):
        ValueError: SGD: params is empty (expected an iterable of Tensors): it is a
        list_iterator that yielded nothing; an iterator such as model.parameters() is used up
        by one pass: call model.parameters() again, or keep list(model.parameters())
    """
    from retrograd.tensor import Tensor  # here: tensor.py imports this module
    owner = name_of(owner)
    if single and isinstance(value, Tensor):
        return [value]
    hint = ""
    if is_module(value):
        hint = "; pass model.parameters()"
    elif isinstance(value, Tensor):
        hint = "; pass [tensor]"
    elif isinstance(value, dict):
        hint = ("; a dict iterates over its keys: to give one parameter group, wrap it in a "
                "list, [{'params': ...}]" if "params" in value
                else "; a dict iterates over its keys: pass model.parameters()")
    elif isinstance(value, (set, frozenset)) and ordered:
        raise TypeError(f"{owner}: parameters need to be given in an ordered collection "
                        f"(a set's order changes between runs); use a list")
    iterable = not isinstance(value, (str, bytes)) and not hint
    if iterable:
        try:
            iter(value)
        except TypeError:
            iterable = False
    if not iterable:
        raise TypeError(f"{owner}: {name} must be {expected}, got {describe(value)}{hint}")
    items = list(value)
    if nonempty and not items:
        used_up = ""
        if iter(value) is value:
            used_up = (f": it is {describe(value)} that yielded nothing; an iterator such as "
                       f"model.parameters() is used up by one pass: call model.parameters() "
                       f"again, or keep list(model.parameters())")
        raise ValueError(f"{owner}: {name} is empty (expected {expected}){used_up}")
    return items


def tensors(owner, name, items):
    """``items`` (a list) if every element is a Tensor; else a TypeError naming the first one
    that is not, by its index (a Module among them: pass model.parameters()).

    Example:
        >>> tensors("clip_grad_norm_", "parameters", [None])
        Traceback (most recent call last):
        TypeError: clip_grad_norm_: parameters must hold only Tensors, but parameters[0] is a
        NoneType
    """
    from retrograd.tensor import Tensor  # here: tensor.py imports this module
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            hint = "; pass model.parameters()" if is_module(item) else ""
            raise TypeError(f"{name_of(owner)}: {name} must hold only Tensors, but {name}[{i}] "
                            f"is {describe(item)}{hint}")
    return items


def instance_of(owner, name, value, cls, hint=""):
    """``value`` if it is an instance of ``cls``; else a TypeError saying what it is instead,
    followed by ``hint`` (what to pass)."""
    if not isinstance(value, cls):
        raise TypeError(f"{name_of(owner)}: {name} must be {_article(cls.__name__)} "
                        f"{cls.__name__}, got {describe(value)}{hint}")
    return value


def _article(word):
    return "an" if word[:1].lower() in "aeiou" else "a"


def mixed_dtypes(*tensors):
    """True when the tensors (None ones skipped) have dtypes an op cannot take together:
    different dtypes, except floating ones while an observer casts inputs at the op's
    boundary (``casts_inputs``: autocast, retrograd.amp)."""
    dtypes = {t._data.dtype for t in tensors if t is not None}
    if len(dtypes) < 2:
        return False
    from retrograd.autograd.observer import casting_inputs

    return not (casting_inputs() and all(d.kind == "f" or d.name == "bfloat16" for d in dtypes))
