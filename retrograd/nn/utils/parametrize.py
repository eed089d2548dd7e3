"""Parametrizations, as ``torch.nn.utils.parametrize``: a tensor of a module (a parameter or
a buffer) computed from other tensors by a Module each time it is read.

``register_parametrization(module, "weight", P)`` moves the parameter into
``module.parametrizations.weight`` (a ParametrizationList) as ``original`` (or ``original0``,
``original1``, ... when ``P.right_inverse`` splits it into several tensors), and makes
``module.weight`` a property of a subclass made for the module (``ParametrizedLinear``...):
reading it runs P(original), so gradients reach the originals through P; assigning to it
runs ``P.right_inverse``. The state dict holds ``parametrizations.weight.original``, as
PyTorch's; ``cached()`` computes each parametrized tensor once inside its block.
"""

import contextlib
import copy

from retrograd.autograd.grad_mode import no_grad
from retrograd.nn.container import ModuleDict, ModuleList
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter
from retrograd.tensor import Tensor

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations"]

_CACHE = {"depth": 0, "tensors": {}}


@contextlib.contextmanager
def cached():
    """Inside this block each parametrized tensor is computed once, at its first read, and
    reused (e.g. a weight read at every step of a recurrent loop). Blocks nest.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.nn.utils import parametrize
        >>> class Double(rg.nn.Module):
        ...     def forward(self, x):
        ...         return 2 * x
        >>> layer = parametrize.register_parametrization(rg.nn.Linear(2, 2), "bias", Double())
        >>> with parametrize.cached():
        ...     same = layer.bias is layer.bias
        >>> same, layer.bias is layer.bias
        (True, False)
    """
    _CACHE["depth"] += 1
    try:
        yield
    finally:
        _CACHE["depth"] -= 1
        if not _CACHE["depth"]:
            _CACHE["tensors"] = {}


def _register_parameter_or_buffer(module, name, value):
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


def _set(dest, src):
    """dest now holds src's values (sharing them, as PyTorch's Tensor.set_)."""
    dest.data = src


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to the original(s): the first
    takes ``original`` (or ``original0, original1, ...``), each next one the result.

    Args:
        modules: the parametrizations (at least one).
        original: the tensor being parametrized; the last parametrization's right_inverse
            (then the one before, ...) turns it into the stored original(s).
        unsafe: skip the checks that the parametrized tensor keeps its shape and dtype.
    """

    def __init__(self, modules, original, unsafe=False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        shape, dtype = original.shape, original.dtype
        with no_grad():
            new = original
            for module in reversed(self):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
        self._store_originals(original, new)
        if not self.unsafe:
            _check_same(self(), shape, dtype, "parametrization")

    def _store_originals(self, original, new):
        if not isinstance(new, (Tensor, tuple, list)):
            raise ValueError(f"'right_inverse' must return a Tensor or a Sequence of tensors "
                             f"(list, tuple...). Got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if original.dtype != new.dtype:
                raise ValueError(f"When `right_inverse` outputs one tensor, it may not change "
                                 f"the dtype.\noriginal.dtype: {original.dtype}\n"
                                 f"right_inverse(original).dtype: {new.dtype}")
            with no_grad():
                _set(original, new)
            _register_parameter_or_buffer(self, "original", original)
            return
        for i, part in enumerate(new):
            if not isinstance(part, Tensor):
                raise ValueError(f"'right_inverse' must return a Tensor or a Sequence of "
                                 f"tensors (list, tuple...). Got element {i} of the sequence "
                                 f"with type {type(part).__name__}.")
            if isinstance(original, Parameter):
                part = Parameter(part, original.requires_grad)
            part.requires_grad_(original.requires_grad)
            _register_parameter_or_buffer(self, f"original{i}", part)

    def right_inverse(self, value):
        """Set the original(s) so that the parametrized tensor is ``value``: every
        parametrization's right_inverse, last first."""
        with no_grad():
            for module in reversed(self):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not "
                                       f"implement right_inverse.")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got "
                                     f"{type(value).__name__}")
                if value.dtype != self.original.dtype:
                    raise ValueError(f"The tensor returned by `right_inverse` has dtype "
                                     f"{value.dtype} while `original` has dtype "
                                     f"{self.original.dtype}")
                _set(self.original, value)
                return
            if not isinstance(value, (tuple, list)) or len(value) != self.ntensors:
                length = f" of length {len(value)}" if hasattr(value, "__len__") else ""
                raise ValueError(f"'right_inverse' must return a sequence of "
                                 f"{self.ntensors} tensors. Got {type(value).__name__}{length}")
            for i, tensor in enumerate(value):
                original_i = getattr(self, f"original{i}")
                if not isinstance(tensor, Tensor) or original_i.dtype != tensor.dtype:
                    raise ValueError(f"Tensor {i} returned by `right_inverse` must be a tensor "
                                     f"of dtype {original_i.dtype}, got {_describe(tensor)}")
                _set(original_i, tensor)

    def forward(self):
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in list(self)[1:]:
            x = module(x)
        return x

    def __repr__(self):
        return Module.__repr__(self)


def _describe(value):
    return f"dtype {value.dtype}" if isinstance(value, Tensor) else type(value).__name__


def _check_same(result, shape, dtype, what):
    """A parametrization must keep the tensor's shape and dtype (unless unsafe)."""
    if not isinstance(result, Tensor):
        raise ValueError(f"A parametrization must return a tensor. Got "
                         f"{type(result).__name__}.")
    if result.dtype != dtype:
        raise ValueError(f"Registering a {what} may not change the dtype of the tensor, "
                         f"unless `unsafe` flag is enabled.\nunparametrized dtype: {dtype}\n"
                         f"parametrized dtype: {result.dtype}")
    if result.shape != shape:
        raise ValueError(f"Registering a {what} may not change the shape of the tensor, "
                         f"unless `unsafe` flag is enabled.\nunparametrized shape: {shape}\n"
                         f"parametrized shape: {result.shape}")


def _refuse_pickling(self):
    raise RuntimeError("Serialization of parametrized modules is only supported through "
                       "state_dict().")


def _deepcopy(self, memo):
    """copy.deepcopy of a parametrized module: its instance dict, deep-copied (the default
    would go through __getstate__, which refuses)."""
    replica = memo.get(id(self))
    if replica is None:
        replica = self.__new__(self.__class__)
        memo[id(self)] = replica
        replica.__dict__ = copy.deepcopy(self.__dict__, memo)
    return replica


def _inject_new_class(module):
    """Give the module its own subclass (``Parametrized<Class>``), where the properties of
    its parametrized tensors live."""
    cls = module.__class__
    namespace = {"__getstate__": _refuse_pickling}
    if not hasattr(cls, "__deepcopy__"):
        namespace["__deepcopy__"] = _deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), namespace)


def _inject_property(module, tensor_name):
    if hasattr(module, tensor_name):
        raise AssertionError(f"Module already has an attribute named '{tensor_name}'")

    def get_parametrized(self):
        parametrization = self.parametrizations[tensor_name]
        if not _CACHE["depth"]:
            return parametrization()
        key = (id(self), tensor_name)
        if key not in _CACHE["tensors"]:
            _CACHE["tensors"][key] = parametrization()
        return _CACHE["tensors"][key]

    def set_original(self, value):
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Parametrize ``module.<tensor_name>`` (a parameter or a buffer) by the Module
    ``parametrization``: reading it then returns parametrization(original). Registering a
    second one on the same tensor chains it after the first. ``parametrization`` may define
    ``right_inverse(value)``, which maps a value of the tensor to the original(s) (one
    tensor, or a tuple of tensors stored as original0, original1, ...) at registration and
    on assignment. Unless ``unsafe``, the parametrized tensor must keep its shape and dtype.

    Returns:
        The module, whose class is now ``Parametrized<Class>``.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.nn.utils import parametrize
        >>> class Symmetric(rg.nn.Module):
        ...     def forward(self, x):
        ...         return x.triu() + x.triu(1).transpose(0, 1)
        >>> layer = parametrize.register_parametrization(rg.nn.Linear(3, 3), "weight",
        ...                                              Symmetric())
        >>> type(layer).__name__, bool((layer.weight == layer.weight.T).all())
        ('ParametrizedLinear', True)
        >>> list(layer.state_dict())
        ['bias', 'parametrizations.weight.original']
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            _check_chained(module, tensor_name, parametrization)
        module.parametrizations[tensor_name].append(parametrization)
        module.parametrizations[tensor_name].unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        parametrizations = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = parametrizations
    else:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a "
                         f"parametrized element with name '{tensor_name}'")
    return module


def _check_chained(module, tensor_name, parametrization):
    """A parametrization chained after others keeps the tensor's shape and dtype, and so
    does its right_inverse."""
    y = getattr(module, tensor_name)
    x = parametrization(y)
    _check_same(x, y.shape, y.dtype, "parametrization")
    if hasattr(parametrization, "right_inverse"):
        try:
            z = parametrization.right_inverse(x)
        except NotImplementedError:
            return
        _check_same(z, y.shape, y.dtype, "parametrization's right_inverse")


def is_parametrized(module, tensor_name=None):
    """Whether ``module`` has a parametrization (on ``tensor_name``, if given)."""
    parametrizations = getattr(module, "parametrizations", None)
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Remove the parametrizations of ``module.<tensor_name>``: it becomes a plain parameter
    (or buffer) again, holding its current parametrized value (``leave_parametrized``) or
    the original. When no parametrization is left, the module gets its class back.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.nn.utils import parametrize, parametrizations
        >>> layer = parametrizations.weight_norm(rg.nn.Linear(2, 3))
        >>> layer = parametrize.remove_parametrizations(layer, "weight")
        >>> type(layer).__name__, list(layer.state_dict())
        ('Linear', ['bias', 'weight'])
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    parametrizations = module.parametrizations[tensor_name]
    if parametrizations.is_tensor:
        original = parametrizations.original
        if leave_parametrized:
            with no_grad():
                _set(original, getattr(module, tensor_name))
    elif leave_parametrized:
        t = getattr(module, tensor_name)
        original = Parameter(t) if t.requires_grad else t
    else:
        raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                         "that is parametrized in terms of a sequence of tensors.")
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module):
    """The module's class before it was parametrized (its own class if it never was)."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)
