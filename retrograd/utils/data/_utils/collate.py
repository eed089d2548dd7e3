"""Turning samples into batches: ``default_collate`` (with automatic batching) and
``default_convert`` (without), with PyTorch's rules, and ``collate``, the walk over containers
that both use, extensible through a ``collate_fn_map`` as in ``torch.utils.data._utils.collate``.

The rules, field by field (the first sample's field decides):

- tensors are stacked along a new dim 0 (differentiably when one requires grad);
- NumPy arrays are stacked into a tensor of their dtype; NumPy scalars keep their dtype;
- Python ints become an int64 tensor, floats a float64 tensor (as PyTorch: a Python float is
  a double), bools a bool tensor;
- strings and bytes stay a list (a tuple when they are a field of tuple or list samples,
  as in PyTorch);
- dicts keep their type (an OrderedDict stays one), namedtuples too; lists are collated per
  position and stay lists; tuples become lists (PyTorch does the same, "for backwards
  compatibility").
"""

import collections.abc
import copy
import re

import numpy as np

from retrograd.creation import stack as _stack
from retrograd.tensor import Tensor, as_array, make_tensor

__all__ = ["collate", "default_collate", "default_convert", "default_collate_fn_map",
           "collate_tensor_fn", "collate_numpy_array_fn", "collate_numpy_scalar_fn",
           "collate_float_fn", "collate_int_fn", "collate_str_fn"]

# dtype strings of NumPy arrays that hold no numbers: bytes, strings, unicode, objects
_NOT_NUMBERS = re.compile(r"[SaUO]")
_UNSUPPORTED = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                "lists; found {}")


def collate_tensor_fn(batch, *, collate_fn_map=None):
    if not all(isinstance(t, Tensor) for t in batch):
        kinds = sorted({type(t).__name__ for t in batch})
        raise TypeError(f"default_collate: a field mixes tensors and other types ({kinds})")
    if any(t.requires_grad for t in batch):
        return _stack(list(batch))
    return make_tensor(_stack_arrays([t._data for t in batch]))


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    if _NOT_NUMBERS.search(batch[0].dtype.str):
        raise TypeError(_UNSUPPORTED.format(batch[0].dtype))
    return make_tensor(as_array(_stack_arrays([np.asarray(a) for a in batch])))


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None):
    return make_tensor(as_array(np.array(batch)))


def collate_float_fn(batch, *, collate_fn_map=None):
    return make_tensor(as_array(list(batch), np.float64))


def collate_int_fn(batch, *, collate_fn_map=None):
    # as torch.tensor(batch): ints give int64, bools (ints to Python) bool, and a float among
    # the ints the default float dtype
    return make_tensor(as_array(list(batch)))


def collate_str_fn(batch, *, collate_fn_map=None):
    # NOTE: as in PyTorch, the batch itself: a list at the top, a tuple inside a sequence
    # (a field of transposed samples)
    return batch


default_collate_fn_map = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def _stack_arrays(arrays):
    shapes = [np.shape(a) for a in arrays]
    if len(set(shapes)) != 1:
        raise RuntimeError(f"default_collate: cannot stack samples of different shapes "
                           f"{sorted(set(shapes))}")
    return np.stack(arrays)


def collate(batch, *, collate_fn_map=None):
    """Collate ``batch`` (a sequence of samples): the first sample's type picks a function
    from ``collate_fn_map`` (exact type first, then the first key it is an instance of);
    mappings, namedtuples and sequences are collated field by field.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data._utils.collate import collate, default_collate_fn_map
        >>> as_list = {int: lambda batch, *, collate_fn_map: list(batch)}
        >>> collate([(1, 2), (3, 4)], collate_fn_map=as_list)
        [[1, 3], [2, 4]]
    """
    if not isinstance(batch, collections.abc.Sequence) or isinstance(batch, (str, bytes)) \
            or len(batch) == 0:
        raise ValueError(f"default_collate: expected a non-empty list of samples, got "
                         f"{_short(batch)}")
    first = batch[0]
    if collate_fn_map is not None:
        function = _lookup(type(first), first, collate_fn_map)
        if function is not None:
            return function(batch, collate_fn_map=collate_fn_map)
    if isinstance(first, collections.abc.Mapping):
        return _collate_mapping(batch, collate_fn_map)
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(collate(f, collate_fn_map=collate_fn_map)
                             for f in _transpose(batch)))
    if isinstance(first, collections.abc.Sequence):
        return _collate_sequence(batch, collate_fn_map)
    raise TypeError(_UNSUPPORTED.format(type(first)))


def _lookup(kind, first, collate_fn_map):
    if kind in collate_fn_map:
        return collate_fn_map[kind]
    for key, function in collate_fn_map.items():
        if isinstance(first, key):
            return function
    return None


def _collate_mapping(batch, collate_fn_map):
    first = batch[0]
    for sample in batch[1:]:
        missing = [key for key in first if key not in sample]
        if missing:
            raise KeyError(f"default_collate: a sample lacks the key {missing[0]!r} that the "
                           f"first sample has")
    fields = {key: collate([s[key] for s in batch], collate_fn_map=collate_fn_map)
              for key in first}
    try:
        if isinstance(first, collections.abc.MutableMapping):
            clone = copy.copy(first)
            clone.update(fields)
            return clone
        return type(first)(fields)
    except TypeError:  # a mapping type that cannot be copied or built from a dict
        return fields


def _collate_sequence(batch, collate_fn_map):
    first = batch[0]
    fields = [collate(f, collate_fn_map=collate_fn_map) for f in _transpose(batch)]
    if isinstance(first, tuple):
        return fields
    try:
        if isinstance(first, collections.abc.MutableSequence):
            clone = copy.copy(first)
            clone[:] = fields
            return clone
        return type(first)(fields)
    except TypeError:
        return fields


def _transpose(batch):
    sizes = {len(sample) for sample in batch}
    if len(sizes) != 1:
        raise RuntimeError(f"default_collate: each element in list of batch should be of equal "
                           f"size, got samples with different numbers of fields "
                           f"({sorted(sizes)})")
    return list(zip(*batch))


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def default_collate(batch):
    """Stack a list of samples into a batch, field by field, with PyTorch's rules (see the
    module's docstring): tensors and arrays stacked along a new dim 0, Python ints to int64,
    floats to float64, bools to bool tensors, strings kept as a list, containers collated per
    field (tuples become lists, as in PyTorch).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import default_collate
        >>> x, y = default_collate([(rg.zeros(2), 1), (rg.ones(2), 0)])
        >>> x.shape, y
        ((2, 2), tensor([1, 0]))
        >>> default_collate([0.5, 1.5]).dtype
        retrograd.float64
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """One sample as a DataLoader without automatic batching (``batch_size=None``) hands it
    out: NumPy arrays and scalars become tensors (arrays of strings or objects stay arrays),
    containers are converted element by element (tuples become lists, as in PyTorch), and
    everything else (tensors, Python numbers, strings) is returned as it is.

    Example:
        >>> import numpy as np
        >>> from retrograd.utils.data import default_convert
        >>> default_convert((np.zeros(2, np.float32), 1, "a"))
        [tensor([0., 0.]), 1, 'a']
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _NOT_NUMBERS.search(data.dtype.str) else make_tensor(as_array(data))
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return make_tensor(as_array(np.asarray(data)))
    if isinstance(data, collections.abc.Mapping):
        return _convert_mapping(data)
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _convert_sequence(data)
    return data


def _convert_mapping(data):
    fields = {key: default_convert(data[key]) for key in data}
    try:
        if isinstance(data, collections.abc.MutableMapping):
            clone = copy.copy(data)
            clone.update(fields)
            return clone
        return type(data)(fields)
    except TypeError:
        return fields


def _convert_sequence(data):
    fields = [default_convert(d) for d in data]
    try:
        if isinstance(data, collections.abc.MutableSequence):
            clone = copy.copy(data)
            clone[:] = fields
            return clone
        return type(data)(fields)
    except TypeError:
        return fields
