"""Containers: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict."""

from collections import OrderedDict

import numpy as np

from retrograd import _checks
from retrograd.nn.activation import ReLU
from retrograd.nn.module import Module
from retrograd.nn.normalization import _BatchNorm
from retrograd.nn.parameter import Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "fuses_with_relu"]


def fuses_with_relu(layer, following):
    """Whether Sequential runs ``layer`` and ``following`` as one fused op
    (F.batch_norm_relu): a BatchNorm layer followed by a ReLU layer, both running their own
    forward and __call__ (not a subclass's), neither with hooks, whose calls a fused op would
    skip. The result is the same as running them one after the other (tests/nn/
    test_container.py); profiles and graphs show one BatchNormRelu op in the BatchNorm
    layer's scope instead of two.

    Example:
        >>> import retrograd as rg
        >>> fuses_with_relu(rg.nn.BatchNorm2d(3), rg.nn.ReLU())
        True
        >>> fuses_with_relu(rg.nn.BatchNorm2d(3), rg.nn.GELU())
        False
    """
    return (isinstance(layer, _BatchNorm) and type(following) is ReLU
            and type(layer).forward is _BatchNorm.forward
            and type(layer).__call__ is Module.__call__
            and not _has_hooks(layer) and not _has_hooks(following))


def _has_hooks(module):
    return bool(module._forward_pre_hooks or module._forward_hooks or module._backward_hooks
                or module._backward_pre_hooks)


def _index(i, n, what):
    if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
        raise TypeError(f"{what}: indices must be integers or slices, got {type(i).__name__}")
    if not -n <= i < n:
        raise IndexError(f"{what}: index {i} is out of range for {n} modules")
    return int(i) % n


def _delete(container, i, what):
    """del container[i] (an int or a slice), then keys "0", "1", ... in order, as PyTorch."""
    keys = list(container._modules)
    doomed = keys[i] if isinstance(i, slice) else [keys[_index(i, len(keys), what)]]
    for key in doomed:
        del container._modules[key]
    values = list(container._modules.values())
    container._modules.clear()
    for k, m in enumerate(values):
        container._modules[str(k)] = m


def _tensor_lines(items):
    """PyTorch's repr lines of ParameterList / ParameterDict entries."""
    lines = []
    for key, p in items:
        size = "x".join(str(n) for n in p.shape)
        lines.append(f"  ({key}): Parameter containing: [{p.dtype} of size {size}]")
    return "\n".join(lines)


class Sequential(Module):
    """Modules applied one after the other; names are "0", "1", ... (or an OrderedDict's keys).

    Example:
        >>> import retrograd as rg
        >>> net = rg.nn.Sequential(rg.nn.Linear(4, 8), rg.nn.Linear(8, 2))
        >>> net(rg.ones(3, 4)).shape, [n for n, _ in net.named_parameters()][:2]
        ((3, 2), ['0.weight', '0.bias'])
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            if i + 1 < len(modules) and fuses_with_relu(modules[i], modules[i + 1]):
                x = modules[i].call_with_relu(x)     # BatchNorm + ReLU: one fused op
                i += 2
            else:
                x = modules[i](x)
                i += 1
        return x

    def __getitem__(self, i):
        items = list(self._modules.items())
        if isinstance(i, slice):
            return Sequential(OrderedDict(items[i]))
        return items[_index(i, len(items), "Sequential")][1]

    def __setitem__(self, i, module):
        key = list(self._modules)[_index(i, len(self._modules), "Sequential")]
        self.add_module(key, module)

    def __delitem__(self, i):
        _delete(self, i, "Sequential")  # NOTE: renumbers, as PyTorch, even named modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        _insert(self, index, module, "Sequential")
        return self

    def pop(self, i):
        module = self[i]
        del self[i]
        return module

    def __add__(self, other):
        """A new Sequential of self's modules, then other's (the same module objects)."""
        _check_sequential(other, "+")
        return Sequential(*self, *other)

    def __iadd__(self, other):
        _check_sequential(other, "+=")
        return self.extend(list(other))

    def __mul__(self, times):
        """A new Sequential of self's modules repeated ``times`` times (the same objects, so
        their parameters are shared, as in PyTorch)."""
        return Sequential(*(list(self) * _repeat_count(self, times)))

    __rmul__ = __mul__

    def __imul__(self, times):
        return self.extend(list(self) * (_repeat_count(self, times) - 1))


def _check_sequential(other, op):
    if not isinstance(other, Sequential):
        raise ValueError(f"Sequential {op}: supports only Sequential operands, got "
                         f"{type(other).__name__}")


def _repeat_count(sequential, times):
    if not isinstance(times, int) or isinstance(times, bool):
        raise TypeError(f"unsupported operand type(s) for *: 'Sequential' and "
                        f"'{type(times).__name__}'")
    if times <= 0:
        raise ValueError(f"Sequential *: non-positive multiplication factor {times}")
    return times


class ModuleList(Module):
    """A list of modules whose parameters are registered (names "0", "1", ...). Deleting or
    inserting renumbers the names, as in PyTorch.

    Example:
        >>> import retrograd as rg
        >>> blocks = rg.nn.ModuleList([rg.nn.Linear(4, 4) for _ in range(3)])
        >>> len(blocks), [n for n, _ in blocks.named_parameters()][-1]
        (3, '2.bias')
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, i):
        values = list(self._modules.values())
        if isinstance(i, slice):
            return ModuleList(values[i])
        return values[_index(i, len(values), "ModuleList")]

    def __setitem__(self, i, module):
        self.add_module(str(_index(i, len(self._modules), "ModuleList")), module)

    def __delitem__(self, i):
        _delete(self, i, "ModuleList")

    def __len__(self):
        return len(self._modules)

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def pop(self, i):
        module = self[i]
        del self[i]
        return module

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        _insert(self, index, module, "ModuleList")

    def forward(self, *args):
        raise NotImplementedError("ModuleList is a container: iterate over it in your forward")

    def __repr__(self):
        """PyTorch's compressed form: runs of equal children print once, as "(0-2): 3 x ..."."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return "ModuleList()"
        runs = []  # [first index, last index, repr]
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = []
        for first, last, r in runs:
            r = r.replace("\n", "\n  ")
            lines.append(f"({first}): {r}" if first == last
                         else f"({first}-{last}): {last - first + 1} x {r}")
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


def _insert(container, index, module, what):
    """Insert before index (PyTorch's list semantics) and renumber."""
    if not isinstance(module, Module):
        raise TypeError(f"{what}.insert: expected a Module, got {type(module).__name__}")
    n = len(container._modules)
    index = _checks.integer(f"{what}.insert", "index", index)
    index = min(max(index + n if index < 0 else index, 0), n)
    values = list(container._modules.values())
    values.insert(index, module)
    container._modules.clear()
    for i, m in enumerate(values):
        container._modules[str(i)] = m


class _MappingOf:
    """The read-only mapping methods of ModuleDict and ParameterDict, over the Module
    dictionary named by ``_mapping`` (``_modules`` or ``_parameters``)."""

    _mapping = None

    def _store(self):
        return getattr(self, self._mapping)

    def __len__(self):
        return len(self._store())

    def __iter__(self):
        return iter(self._store())

    def __contains__(self, key):
        return key in self._store()

    def keys(self):
        return self._store().keys()

    def values(self):
        return self._store().values()

    def items(self):
        return self._store().items()


class ModuleDict(_MappingOf, Module):
    """A dict of modules whose parameters are registered under their keys (insertion order).

    Example:
        >>> import retrograd as rg
        >>> heads = rg.nn.ModuleDict({"cls": rg.nn.Linear(8, 10), "box": rg.nn.Linear(8, 4)})
        >>> list(heads), heads["box"].out_features
        (['cls', 'box'], 4)
    """

    _mapping = "_modules"

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, m in items:
            self.add_module(key, m)

    def pop(self, key):
        module = self._modules[key]
        del self._modules[key]
        return module

    def clear(self):
        self._modules.clear()

    def forward(self, *args):
        raise NotImplementedError("ModuleDict is a container: index it in your forward")


class ParameterList(Module):
    """A list of Parameters registered under "0", "1", ...; tensors are made Parameters.

    Example:
        >>> import retrograd as rg
        >>> gains = rg.nn.ParameterList([rg.ones(3), rg.ones(3)])
        >>> [n for n, _ in gains.named_parameters()]
        ['0', '1']
    """

    def __init__(self, values=None):
        super().__init__()
        for v in values or []:
            self.append(v)

    def append(self, value):
        p = value if isinstance(value, Parameter) else Parameter(value)
        self.register_parameter(str(len(self._parameters)), p)
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def __getitem__(self, i):
        values = list(self._parameters.values())
        return values[_index(i, len(values), "ParameterList")]

    def __setitem__(self, i, value):
        key = str(_index(i, len(self._parameters), "ParameterList"))
        self.register_parameter(key, value if isinstance(value, Parameter) else Parameter(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, values):
        return self.extend(values)

    def extra_repr(self):
        return _tensor_lines(enumerate(self))


class ParameterDict(_MappingOf, Module):
    """A dict of Parameters registered under their keys; tensors are made Parameters.

    Example:
        >>> import retrograd as rg
        >>> scales = rg.nn.ParameterDict({"b": rg.ones(2), "a": rg.zeros(1)})
        >>> list(scales)  # a plain dict is added in sorted order, as in PyTorch
        ['a', 'b']
    """

    _mapping = "_parameters"

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.update(values)

    def update(self, values):
        """Add or replace entries. NOTE: as in PyTorch, a plain dict is added in sorted key
        order (an OrderedDict, a ParameterDict or a sequence of pairs keeps its order)."""
        if isinstance(values, (OrderedDict, ParameterDict)):
            items = list(values.items())
        elif hasattr(values, "items"):
            items = sorted(values.items())
        else:
            items = list(values)
        for key, v in items:
            self[key] = v

    def __setitem__(self, key, value):
        self.register_parameter(key, value if isinstance(value, Parameter) else Parameter(value))

    def __getitem__(self, key):
        return self._parameters[key]

    def __delitem__(self, key):
        del self._parameters[key]

    def get(self, key, default=None):
        return self._parameters.get(key, default)

    def pop(self, key):
        value = self._parameters[key]
        del self._parameters[key]
        return value

    def popitem(self):
        """Remove and return the last (key, parameter) pair."""
        return self._parameters.popitem()

    def setdefault(self, key, default=None):
        if key not in self._parameters:
            self[key] = default
        return self._parameters[key]

    def clear(self):
        self._parameters.clear()

    def copy(self):
        """A new ParameterDict holding the same Parameter objects, in the same order."""
        return ParameterDict(OrderedDict(self._parameters))

    def fromkeys(self, keys, default=None):
        """A new ParameterDict with every key set to ``default``."""
        return ParameterDict([(key, default) for key in keys])

    def __reversed__(self):
        return reversed(list(self._parameters))

    def extra_repr(self):
        return _tensor_lines(self.items())

