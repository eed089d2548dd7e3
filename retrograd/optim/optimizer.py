"""Optimizer: the base class of SGD, Adam, AdamW and RMSprop (PyTorch's semantics).

An optimizer holds ``param_groups``, a list of dicts each with a ``'params'`` list and that
group's options (lr, momentum, ...), and ``state``, a dict from parameter to that parameter's
buffers (``momentum_buffer``, ``exp_avg``, ...). ``step()`` visits every parameter that has a
gradient and calls the subclass's ``_update(p, grad, group)``.

Updates write into the parameter's own array (``p._data``) and bump its version counter: the
Parameter object and its memory stay the same, so a Module, a view of the parameter, or
another optimizer holding it all see the new values, and a tensor saved for a backward that is
still pending is reported as modified instead of being silently used stale.

``state_dict()`` uses PyTorch's layout: state keyed by the integer index of the parameter
(counted across groups in order), and groups whose ``'params'`` are lists of those indices.
"""

import copy
import math
import numbers
from collections import defaultdict
from itertools import chain

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._fast import compiled_for
from retrograd._quiet import quiet_errors
from retrograd.autograd.grad_mode import enable_grad, no_grad
from retrograd.autograd.observer import region
from retrograd.autograd.inplace import zero_grads
from retrograd.tensor import Tensor, make_tensor

__all__ = ["Optimizer", "compiled_update", "check_option", "check_torch_flags"]

_EXPECTED = "an iterable of Tensors or of parameter-group dicts"
_EXPECTED_IN_GROUP = "a Tensor or an iterable of Tensors"


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (parameter
            groups: ``{'params': [...], 'lr': ..., ...}``); options missing from a group take
            the values in ``defaults``. The order must be the same from run to run (no sets).
        defaults: the optimizer's default options.

    Subclasses implement ``_update(p, grad, group)``: change ``p._data`` in place from the
    gradient array ``grad`` (never modify ``grad``: it is ``p.grad``'s own memory), keeping
    per-parameter buffers in ``self.state[p]``. ``_check_options(options)`` validates a group.

    Example:
        >>> import retrograd as rg
        >>> w = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = rg.optim.SGD([w], lr=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([0., 0.], requires_grad=True)
        >>> opt.zero_grad()
        >>> w.grad is None
        True
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        self.state = defaultdict(dict)
        self.param_groups = []
        name = type(self).__name__
        groups = _checks.parameter_iterable(name, "params", params, _EXPECTED, ordered=True,
                                            nonempty=True)
        dicts = [isinstance(g, dict) for g in groups]
        if any(dicts) and not all(dicts):
            i = dicts.index(not dicts[0])
            raise TypeError(f"{name}: params must be {_EXPECTED}, not a mix of both: params[0] "
                            f"is {_checks.describe(groups[0])} but params[{i}] is "
                            f"{_checks.describe(groups[i])}")
        if not dicts[0]:
            self._add_group({"params": groups}, "params")
            return
        for i, group in enumerate(groups):
            self._add_group(group, f"params[{i}]['params']")

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (e.g. unfreezing layers while
        fine-tuning); options it does not set take the optimizer's defaults.

        Example:
            >>> import retrograd as rg
            >>> opt = rg.optim.SGD([rg.zeros(2, requires_grad=True)], lr=0.1)
            >>> opt.add_param_group({"params": [rg.zeros(3, requires_grad=True)], "lr": 0.01})
            >>> [g["lr"] for g in opt.param_groups]
            [0.1, 0.01]
        """
        self._add_group(param_group, "param_group['params']")

    def _add_group(self, param_group, label):
        """add_param_group, with ``label`` naming the group's parameters in errors."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a param group must be a dict, got "
                            f"{_checks.describe(param_group)}")
        if "params" not in param_group:
            raise ValueError(f"{name}: a param group must have a 'params' entry, got keys "
                             f"{sorted(param_group)}")
        group = dict(param_group)
        params, names = _split_names(group["params"], name, label)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        for i, p in enumerate(params):
            _check_param(p, name, f"{label}[{i}]")
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_options(group)
        _check_no_duplicates(params, self.param_groups, name)
        for other in self.param_groups:
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError(f"{name}: all parameter groups must be given with names or "
                                 f"all without names")
        self.param_groups.append(group)

    def _check_options(self, options):
        """Raise a ValueError for an invalid option value (subclasses override)."""

    # ------------------------------------------------------------------ gradients
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters: to None (the default, which frees the
        memory and makes ``step()`` skip parameters that get no new gradient), or to zeros."""
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient (parameters whose ``.grad`` is None are
        skipped). ``closure``, if given, re-evaluates the model and returns the loss: it runs
        with grad mode on, before the update, and its loss is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        # an inf or nan gradient updates to inf or nan quietly; tools see the step as a region
        with no_grad(), quiet_errors(), region(f"{type(self).__name__}.step", "optimizer"):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    _check_writeable(p, type(self).__name__)
                    self._update(p, p.grad._data, group)
                    p._version[0] += 1
        return loss

    def _update(self, p, grad, group):
        raise NotImplementedError(f"{type(self).__name__} does not implement _update()")

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """The optimizer's state in PyTorch's layout: ``{'state': {index: {name: tensor}},
        'param_groups': [{option: value, ..., 'params': [index, ...]}]}``. Parameters are
        numbered in the order the groups list them. The state tensors are shared, not copied
        (as in PyTorch): save the dict, or deepcopy it, to keep a snapshot.

        Example:
            >>> import retrograd as rg
            >>> w = rg.tensor([1.0, 2.0], requires_grad=True)
            >>> opt = rg.optim.SGD([w], lr=0.1, momentum=0.9)
            >>> w.sum().backward(); opt.step()
            >>> sd = opt.state_dict()
            >>> sd["state"]
            {0: {'momentum_buffer': tensor([1., 1.])}}
            >>> sd["param_groups"][0]["params"]
            [0]
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a state from ``state_dict()`` (of an optimizer of the same kind built on
        parameters of the same shapes, in the same groups). State tensors are copied and cast
        to their parameter's dtype (``step`` is kept as it is); the loaded groups' options
        replace the current ones, so a resumed run continues exactly where it stopped."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups' (from state_dict()), got {type(state_dict).__name__}")
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        _check_group_sizes(self.param_groups, saved_groups, name)
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in self.param_groups)))
        state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                p = id_map[key]
                state[p] = self._load_param_state(p, value, key)
            else:
                state[key] = copy.deepcopy(value)
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            for key, default in self.defaults.items():
                saved.setdefault(key, default)
            self._check_options(saved)
            new_groups.append(saved)
        self.state = state
        self.param_groups = new_groups

    def _load_param_state(self, p, saved, index):
        """The state of parameter ``p`` (saved as parameter ``index``) from a state dict: each
        value copied, with tensors checked against p's shape and cast to its dtype."""
        name = type(self).__name__
        return {k: _cast_state(p, k, v, index, name) for k, v in saved.items()}

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


# ---------------------------------------------------------------------- option checks
def check_option(optimizer, label, value, low=0.0, high=None, high_inclusive=False):
    """Raise ``ValueError("<optimizer>: Invalid <label>: <value>")`` (PyTorch's wording)
    unless value is a real number with low <= value (< or <=) high."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(value):
        raise ValueError(f"{optimizer}: Invalid {label}: {value!r} (expected a real number)")
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if value < low or too_high:
        raise ValueError(f"{optimizer}: Invalid {label}: {value}")


def check_torch_flags(optimizer, options):
    """PyTorch's implementation switches, accepted so that PyTorch code runs unchanged:
    ``foreach``, ``fused`` and ``capturable`` pick how torch runs the same update (one kernel
    per tensor or per list, fused kernels, CUDA graphs) and change nothing here.
    ``differentiable=True`` (backpropagating through the update) is refused: the update runs
    in place under no_grad, so a gradient through it would silently be missing."""
    if options.get("differentiable"):
        raise NotImplementedError(f"{optimizer}: differentiable=True is not supported: "
                                  f"retrograd updates parameters in place under no_grad, so no "
                                  f"gradient flows through a step")
    if options.get("fused") and options.get("foreach"):
        raise RuntimeError(f"{optimizer}: `fused` and `foreach` cannot be `True` together.")


# ---------------------------------------------------------------------- helpers
def _split_names(params, optimizer, label):
    """The group's tensors as a list, and their names when given as (name, tensor) pairs."""
    params = _checks.parameter_iterable(optimizer, label, params, _EXPECTED_IN_GROUP,
                                        single=True, ordered=True)
    named = [isinstance(p, tuple) for p in params]
    if not any(named):
        return _checks.tensors(optimizer, label, params), None
    if not all(named):
        raise ValueError(f"{optimizer}: all parameters of a group must be given with names "
                         f"((name, tensor) pairs) or all without names")
    for i, pair in enumerate(params):
        if len(pair) != 2 or not isinstance(pair[0], str):
            parts = ", ".join(_checks.describe(x) for x in pair)
            raise TypeError(f"{optimizer}: a named parameter must be a (str, Tensor) pair, but "
                            f"{label}[{i}] is ({parts})")
    tensors = _checks.tensors(optimizer, label, [p for _, p in params])
    return tensors, [n for n, _ in params]


def _check_param(p, optimizer, label):
    if p.grad_fn is not None and not p.retains_grad:
        raise ValueError(f"{optimizer}: can't optimize a non-leaf Tensor: {label} (shape "
                         f"{p.shape}) was made by {p.grad_fn!r}; optimize the leaf it was "
                         f"computed from, or detach() it and set requires_grad")


def _check_no_duplicates(params, groups, optimizer):
    """Parameters are compared by identity (Tensor == is elementwise)."""
    seen = set()
    for p in params:
        if id(p) in seen:
            raise ValueError(f"{optimizer}: a parameter (shape {p.shape}) is given twice in "
                             f"the same parameter group")
        seen.add(id(p))
    for i, group in enumerate(groups):
        for q in group["params"]:
            if id(q) in seen:
                raise ValueError(f"{optimizer}: some parameters appear in more than one "
                                 f"parameter group: a parameter of shape {q.shape} is in "
                                 f"groups {i} and {len(groups)}")


def compiled_update(p, grad, *state):
    """The compiled optimizer kernels (retrograd/_numba/optim.py) when the parameter, its
    gradient and the ``state`` arrays are C-contiguous float32 or float64 arrays of one
    dtype, else None (the NumPy ``_update`` then runs)."""
    return compiled_for("optim", p._data, grad, *state)


def _check_writeable(p, optimizer):
    if not p._data.flags.writeable:
        raise RuntimeError(f"{optimizer}: cannot update a parameter of shape {p.shape} in "
                           f"place: its array is read-only (e.g. made from a read-only NumPy "
                           f"array); give the optimizer a tensor that owns writable memory")


def _check_group_sizes(groups, saved_groups, optimizer):
    if len(groups) != len(saved_groups):
        raise ValueError(f"{optimizer}.load_state_dict: the state dict has {len(saved_groups)} "
                         f"parameter groups, but this optimizer has {len(groups)}")
    for i, (group, saved) in enumerate(zip(groups, saved_groups)):
        if len(group["params"]) != len(saved["params"]):
            raise ValueError(f"{optimizer}.load_state_dict: parameter group {i} has "
                             f"{len(saved['params'])} parameters in the state dict, but "
                             f"{len(group['params'])} in this optimizer")


def _cast_state(p, key, value, index, optimizer):
    """A copy of one state value; arrays and Tensors become Tensors, floating ones cast to
    the parameter's dtype, except 'step' (a counter kept as it is, as in PyTorch)."""
    if not isinstance(value, (Tensor, np.ndarray)):
        return copy.deepcopy(value)
    array = np.array(value._data if isinstance(value, Tensor) else value, copy=True)
    if key == "step":
        return make_tensor(array)
    if array.shape != p.shape:
        raise ValueError(f"{optimizer}.load_state_dict: state {key!r} of parameter {index} has "
                         f"shape {array.shape}, but the parameter has shape {p.shape}")
    target = p._data.dtype
    if array.dtype != target and _dt.is_floating(array.dtype) and _dt.is_floating(target):
        array = array.astype(target)
    return make_tensor(array)
