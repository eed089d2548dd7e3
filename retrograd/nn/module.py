"""Module: the base class of every layer and model.

Assigning a Parameter, a Module or (through ``register_buffer``) a buffer tensor as an attribute
registers it, as in PyTorch, so that ``parameters()``, ``state_dict()``, ``to()``, ``train()``
and the hooks find it. Names follow PyTorch's (``layer1.0.conv1.weight``), so state dicts map
one to one between the two frameworks.
"""

from collections import OrderedDict, namedtuple

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.function import RemovableHandle
from retrograd.autograd.grad_mode import STATE, no_grad
from retrograd.nn.parameter import Parameter
from retrograd.nn.scope import ModuleScope
from retrograd.autograd.inplace import zero_grads
from retrograd.device import refuse_cuda, to_arguments
from retrograd.tensor import Tensor, make_tensor
from retrograd.utils.hooks import BackwardHook

__all__ = ["Module", "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of layers and models: subclasses set attributes in ``__init__`` (after
    calling ``super().__init__()``) and define ``forward``; call the module, not forward.

    Example:
        >>> import retrograd as rg
        >>> class Affine(rg.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.scale = rg.nn.Parameter(rg.ones(3))
        ...         self.register_buffer("shift", rg.zeros(3))
        ...     def forward(self, x):
        ...         return x * self.scale + self.shift
        >>> m = Affine()
        >>> [name for name, _ in m.named_parameters()], list(m.state_dict())
        (['scale'], ['scale', 'shift'])
    """

    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", [])
        object.__setattr__(self, "_forward_hooks", [])
        object.__setattr__(self, "_backward_hooks", [])
        object.__setattr__(self, "_backward_pre_hooks", [])

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                     f"assigning parameters or submodules")
            object.__setattr__(self, name, value)
            return
        if isinstance(value, Parameter):
            # NOTE: as in PyTorch, re-assigning a registered name keeps its place in the
            # dict, so the order of named_parameters() and state_dict() keys does not change.
            self._forget(name, keep=self._parameters)
            self.register_parameter(name, value)
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name}: cannot assign a "
                                f"{type(value).__name__} to a parameter (expected a Parameter "
                                f"or None)")
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}.{name}: a buffer must be a Tensor or "
                                f"None, got {type(value).__name__}")
            self._buffers[name] = value
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name}: cannot assign a "
                                f"{type(value).__name__} to a submodule")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        """Remove name from the instance dict and from every store except ``keep``."""
        self.__dict__.pop(name, None)
        for store in (self._parameters, self._buffers, self._modules):
            if store is not keep:
                store.pop(name, None)
        if keep is not self._buffers:
            self._non_persistent.discard(name)

    def __getattr__(self, name):
        # Called only when normal lookup fails: parameters, buffers and submodules.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name, param):
        _check_name(self, name, "parameter", "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not a parameter (e.g. running_mean): saved in the state
        dict (unless persistent=False), moved by ``to()``, never returned by parameters()."""
        _check_name(self, name, "buffer", "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got "
                            f"{type(tensor).__name__}")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        _check_name(self, name, "module", "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got "
                            f"{type(module).__name__}")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r} "
                                     f"(looking for {target!r})")
            module = module._modules[part]
        return module

    def get_parameter(self, target):
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if name not in module._parameters:
            raise AttributeError(f"{type(module).__name__} has no parameter {name!r}")
        return module._parameters[name]

    def get_buffer(self, target):
        """The buffer at the dotted path ``target`` (e.g. "bn1.running_mean")."""
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if name not in module._buffers:
            raise AttributeError(f"{type(module).__name__} has no buffer {name!r} (looking for "
                                 f"{target!r})")
        return module._buffers[name]

    def set_submodule(self, target, module, strict=False):
        """Put ``module`` at the dotted path ``target`` (e.g. "layer1.0.conv1"), replacing the
        submodule there; with strict, the name must already exist. As PyTorch, a name that
        holds something other than a module is refused."""
        if not target:
            raise ValueError("set_submodule: cannot set the submodule without a target name")
        if not isinstance(module, Module):
            raise ValueError(f"set_submodule: module must be a Module, got "
                             f"{type(module).__name__}")
        path, _, name = target.rpartition(".")
        parent = self.get_submodule(path)
        if strict and not hasattr(parent, name):
            raise AttributeError(f"{type(parent).__name__} has no attribute {name!r}")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), Module):
            raise AttributeError(f"set_submodule: {name!r} of {type(parent).__name__} is not a "
                                 f"Module")
        setattr(parent, name, module)

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        stack = [(prefix, self)]
        seen = set() if memo is None else memo
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()
                        if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, store, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call fn on every submodule (children first) and on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes
    def train(self, mode=True):
        """Set training mode here and (through each child's own ``train``, so that a subclass
        may override it) in every submodule; returns self."""
        self.training = _checks.boolean("train", "mode", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        zero_grads(self.parameters(), set_to_none)

    # ------------------------------------------------------------------ dtype
    def to(self, *args, **kwargs):
        """Cast floating-point parameters and buffers in place (the Parameter objects stay the
        same, so optimizers built before still hold them). PyTorch's forms: to(dtype),
        to(device), to(device, dtype), to(tensor) (its dtype), with non_blocking=; the device
        must be the CPU (to('cpu') changes nothing), anything else is a RuntimeError."""
        target, _ = to_arguments("Module.to", args, kwargs, allow_copy=False)
        if target is None:
            return self
        if not _dt.is_floating(target):
            raise TypeError(f"Module.to: only floating-point dtypes are allowed, got "
                            f"{_dt.from_numpy_dtype(target)}")
        for module in self.modules():
            for store in (module._parameters, module._buffers):
                for t in store.values():
                    if t is not None and t.is_floating_point() and t._data.dtype != target:
                        _cast_in_place(t, target)
        return self

    def float(self):
        return self.to(_dt.float32)

    def double(self):
        return self.to(_dt.float64)

    def half(self):
        return self.to(_dt.float16)

    def bfloat16(self):
        return self.to(_dt.bfloat16)

    def cpu(self):
        return self

    def cuda(self, device=None):
        """Always an error: retrograd runs on the CPU only."""
        refuse_cuda("Module.cuda", device)

    # ------------------------------------------------------------------ state dict
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name, sharing memory with them. As in
        PyTorch, a submodule or parameter reachable under two names appears under both."""
        out = OrderedDict() if destination is None else destination
        for key, _, _, value in self._state_entries(prefix):
            out[key] = value if keep_vars else value.detach()
        return out

    def _state_entries(self, prefix=""):
        """(key, store, name, tensor) for every state-dict entry, in PyTorch's order:
        a module's parameters, then its persistent buffers, then its children's entries."""
        for module_prefix, module in self.named_modules(prefix=prefix.rstrip("."),
                                                        remove_duplicate=False):
            base = f"{module_prefix}." if module_prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    yield base + name, module._parameters, name, p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    yield base + name, module._buffers, name, b

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values (Tensors or arrays) into parameters and buffers, in place and cast to
        their dtype, so optimizers holding the parameters see the new values. Missing and
        unexpected keys are errors when strict; a shape mismatch is always an error. All
        problems are listed in one error. ``assign=True`` replaces the tensors instead
        (parameters keep their requires_grad). Returns (missing_keys, unexpected_keys).

        Example:
            >>> import retrograd as rg
            >>> a, b = rg.nn.Linear(2, 3), rg.nn.Linear(2, 3)
            >>> b.load_state_dict(a.state_dict())
            IncompatibleKeys(missing_keys=[], unexpected_keys=[])
            >>> bool((a.weight == b.weight).all())
            True
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a mapping of names to tensors, got "
                            f"{type(state_dict).__name__}")
        entries = list(self._state_entries())
        own = {key: value for key, _, _, value in entries}
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = [f"{k}: checkpoint has shape {tuple(np.shape(_array(state_dict[k])))}, "
                      f"the model has {own[k].shape}"
                      for k in own if k in state_dict
                      and tuple(np.shape(_array(state_dict[k]))) != own[k].shape]
        problems = []
        if mismatched:
            problems.append("size mismatch for " + "; ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                               + "\n  ".join(problems))
        with no_grad():
            for key, store, name, target in entries:
                if key not in state_dict:
                    continue
                if assign:
                    store[name] = _assigned(target, _array(state_dict[key]))
                else:
                    _copy_in_place(target, _array(state_dict[key]))
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ hooks
    def register_forward_pre_hook(self, hook):
        """hook(module, args) -> None or new args, before forward."""
        self._forward_pre_hooks.append(hook)
        return RemovableHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook):
        """hook(module, args, output) -> None or a new output, after forward."""
        self._forward_hooks.append(hook)
        return RemovableHandle(self._forward_hooks, hook)

    def register_full_backward_hook(self, hook):
        """hook(module, grad_input, grad_output) -> None or new grad_input (a tuple of the same
        length), when the gradients of the module's inputs have been computed.

        grad_input has one entry per positional argument of the call, grad_output one per
        output; an entry is None for a non-Tensor, for a tensor that does not require grad,
        and for an output that received no gradient. When no input requires grad, the hook
        runs as soon as grad_output is known, with grad_input all None (as in PyTorch).
        NOTE: PyTorch passes zeros (not None) for a tensor input that does not require grad
        while another input does; retrograd passes None, since no gradient exists for it.

        Example:
            >>> import retrograd as rg
            >>> layer = rg.nn.Linear(3, 2)
            >>> seen = []
            >>> handle = layer.register_full_backward_hook(
            ...     lambda m, gin, gout: seen.append((gin[0].shape, gout[0].shape)))
            >>> layer(rg.ones(4, 3, requires_grad=True)).sum().backward()
            >>> seen
            [((4, 3), (4, 2))]
            >>> handle.remove()
        """
        self._backward_hooks.append(hook)
        return RemovableHandle(self._backward_hooks, hook)

    def register_full_backward_pre_hook(self, hook):
        """hook(module, grad_output) -> None or new grad_output (a tuple of the same length),
        when the gradients of the module's outputs are known, before they flow into it."""
        self._backward_pre_hooks.append(hook)
        return RemovableHandle(self._backward_pre_hooks, hook)

    def __call__(self, *args, **kwargs):
        """Run forward with the module's hooks, inside its ModuleScope: every op recorded
        meanwhile remembers this module's path (``node.module_path``)."""
        parent = STATE.module_scope
        STATE.module_scope = ModuleScope(self, parent)
        try:
            return self._call_with_hooks(args, kwargs)
        finally:
            STATE.module_scope = parent

    def _call_with_hooks(self, args, kwargs):
        for hook in self._forward_pre_hooks:
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        state = None
        if (self._backward_hooks or self._backward_pre_hooks) and STATE.grad_enabled:
            state = BackwardHook(self, len(args))
            args = state.wrap_inputs(args)
        output = self.forward(*args, **kwargs)
        for hook in self._forward_hooks:
            result = hook(self, args, output)
            if result is not None:
                output = result
        if state is not None:
            output = state.wrap_outputs(output)
        return output

    # ------------------------------------------------------------------ repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)


def _check_name(module, name, kind, store):
    """PyTorch's rules for a registered name: a non-empty string without dots that is not
    already an attribute of another kind (a method, a plain attribute, a parameter, ...)."""
    if "_parameters" not in module.__dict__:
        raise AttributeError(f"{type(module).__name__}: call super().__init__() before "
                             f"registering a {kind}")
    if not isinstance(name, str):
        raise TypeError(f"{type(module).__name__}: {kind} name must be a string, got "
                        f"{type(name).__name__}")
    if not name or "." in name:
        raise KeyError(f"{type(module).__name__}: invalid {kind} name {name!r} (a non-empty "
                       f"string without dots)")
    if name not in module.__dict__[store] and hasattr(module, name):
        raise KeyError(f"{type(module).__name__}: attribute {name!r} already exists")


def _array(value):
    return value._data if isinstance(value, Tensor) else np.asarray(value)


def _copy_in_place(target, source):
    """Write source's values into target's memory (cast to target's dtype), bumping its
    version, so views and optimizers holding target see the new values."""
    try:
        np.copyto(target._data, source, casting="unsafe")
    except ValueError as e:
        raise RuntimeError(f"load_state_dict: cannot copy a value of shape {np.shape(source)} "
                           f"into a tensor of shape {target.shape}: {e}") from None
    target._version[0] += 1


def _assigned(target, source):
    """load_state_dict(assign=True): a new tensor holding source (not a copy), of the same
    kind as target (a Parameter keeps its requires_grad)."""
    if isinstance(target, Parameter):
        return Parameter(make_tensor(source), requires_grad=target.requires_grad)
    return make_tensor(source)


def _cast_in_place(t, target):
    """Module.to(dtype): the same Tensor object, with its data (and grad) converted."""
    t._data = t._data.astype(target)
    t._version[0] += 1
    if t._grad is not None:
        t._grad = make_tensor(t._grad._data.astype(target))
