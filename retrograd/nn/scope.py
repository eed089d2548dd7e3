"""Module paths: which module's forward made each op.

``Module.__call__`` runs forward inside a ``ModuleScope`` (kept in ``STATE.module_scope``),
and every node the ops record keeps the scope that was running, so that tools can attribute
forward and backward work to ``layers.1.0.conv2`` without hooks. Recording costs one
attribute per node; the path string is worked out only when a tool asks for it.
"""

__all__ = ["ModuleScope"]


class ModuleScope:
    """One running call of ``module``'s forward, inside the call ``parent`` (None for the
    outermost module). ``path`` is the module's name as in the outermost module's
    ``named_modules()`` ("" for the outermost module itself).

    Example:
        >>> import retrograd as rg
        >>> net = rg.nn.Sequential(rg.nn.Linear(2, 3), rg.nn.Sequential(rg.nn.ReLU(),
        ...                                                             rg.nn.Linear(3, 1)))
        >>> y = net(rg.ones(4, 2, requires_grad=True))
        >>> y.grad_fn.module_path
        '1.1'
    """

    __slots__ = ("module", "parent", "_path")

    def __init__(self, module, parent):
        self.module, self.parent, self._path = module, parent, None

    @property
    def path(self):
        if self._path is None:
            self._path = _path_of(self)
        return self._path

    def __repr__(self):
        return f"<ModuleScope {self.path!r} ({type(self.module).__name__})>"


def _path_of(scope):
    """The module's name under the nearest running module that owns it (usually the caller,
    but a model may call a grandchild directly); a module that no running module owns is
    named by its class, in angle brackets."""
    if scope.parent is None:
        return ""
    owner = scope.parent
    while owner is not None:
        name = _name_within(owner.module, scope.module)
        if name is not None:
            return _joined(owner.path, name)
        owner = owner.parent
    return _joined(scope.parent.path, f"<{type(scope.module).__name__}>")


def _name_within(owner, module):
    for name, candidate in owner.named_modules():
        if candidate is module and name:
            return name
    return None


def _joined(prefix, name):
    return f"{prefix}.{name}" if prefix else name
