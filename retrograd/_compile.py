"""``retrograd.compile``: PyTorch's ``torch.compile``, accepted and run eagerly.

retrograd has no graph compiler: every op already runs as soon as it is called, on NumPy (and
on the compiled kernels of the 'fast' extra where they exist). ``compile`` checks its arguments
as PyTorch does and hands back the model or function it was given, unchanged, so programs that
wrap their model in ``torch.compile`` run, and give the same numbers as without it.
"""

__all__ = ["compile"]

MODES = ("default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None,  # noqa: A001
            options=None, name=None, disable=False, recompile_limit=None,
            isolate_recompiles=False, shapes_spec=None):
    """Return ``model`` (a Module or a function) unchanged; without ``model``, a decorator
    that does so (``@compile`` and ``@compile(mode="max-autotune")`` both work). ``mode`` must
    be one of PyTorch's modes, and cannot be given together with ``options``.

    Example:
        >>> import retrograd as rg
        >>> model = rg.nn.Linear(2, 2)
        >>> rg.compile(model) is model
        True
        >>> @rg.compile(mode="reduce-overhead")
        ... def double(x):
        ...     return 2 * x
        >>> double(rg.ones(2))
        tensor([2., 2.])
    """
    if mode is not None and options is not None:
        raise RuntimeError("compile: either mode or options can be given, not both")
    if mode is not None and mode not in MODES:
        raise RuntimeError(f"compile: unrecognized mode={mode!r}, should be one of: "
                           f"{', '.join(MODES)}")
    if model is None:
        return _identity
    if not callable(model):
        raise TypeError(f"compile: expected a Module or a function, got "
                        f"{type(model).__name__}")
    return model


def _identity(model):
    if not callable(model):
        raise TypeError(f"compile: expected a Module or a function, got "
                        f"{type(model).__name__}")
    return model
