"""Argument checks shared by the conv and pooling functions and layers."""

__all__ = ["int_tuple"]


def int_tuple(name, what, value, dims, minimum):
    """``value`` (an int, or a tuple/list of ``dims`` ints) as a tuple of ``dims`` ints, each
    >= minimum; otherwise a ValueError naming the op and the argument.

    Example:
        >>> int_tuple("conv2d", "stride", 2, 2, minimum=1)
        (2, 2)
    """
    values = (value,) * dims if isinstance(value, int) else value
    if not isinstance(values, (tuple, list)) or len(values) != dims \
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name}: {what} must be an int or a tuple of {dims} ints, got "
                         f"{value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name}: {what} must be >= {minimum}, got {value!r}")
    return tuple(values)
