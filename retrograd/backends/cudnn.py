"""``retrograd.backends.cudnn``: cuDNN's switches, with PyTorch's defaults. retrograd has no
cuDNN: setting ``benchmark``, ``deterministic``, ``enabled`` or ``allow_tf32`` changes nothing,
and ``is_available()`` is False."""

__all__ = ["benchmark", "deterministic", "enabled", "allow_tf32", "is_available", "version"]

benchmark = False
deterministic = False
enabled = True
allow_tf32 = True


def is_available():
    return False


def version():
    """None: no cuDNN library is loaded (as PyTorch without one)."""
    return None
