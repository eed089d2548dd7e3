"""The base class of the distributions: shapes, argument validation, repr."""

__all__ = ["Distribution"]


class Distribution:
    """A batch of distributions of the same family.

    ``batch_shape``: the shape of the batch (one distribution per entry); ``event_shape``:
    the shape of one draw (() for scalar distributions). ``sample(sample_shape)`` returns
    sample_shape + batch_shape + event_shape. With ``validate_args`` (the default, as
    PyTorch), invalid parameters and log_prob values raise a ValueError.
    """

    has_rsample = False

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = tuple(batch_shape)
        self._event_shape = tuple(event_shape)
        self._validate_args = True if validate_args is None else bool(validate_args)

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def _extended_shape(self, sample_shape=()):
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        return tuple(sample_shape) + self._batch_shape + self._event_shape

    def sample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} does not implement sample")

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sample "
                                  f"(rsample); use sample(), which carries no gradient")

    def log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__} does not implement log_prob")

    def entropy(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy")

    def _invalid(self, name, value, constraint, found):
        """The ValueError for a parameter or value outside its constraint (PyTorch's text)."""
        return ValueError(f"Expected {name} (Tensor of shape {tuple(value.shape)}) of "
                          f"distribution {self!r} to satisfy the constraint {constraint}, but "
                          f"found invalid values:\n{found}")

    def __repr__(self):
        parts = []
        for name in self._parameter_names:
            value = self.__dict__.get(name)
            if value is None:
                continue
            text = value.item() if value.numel() == 1 else f"size {tuple(value.shape)}"
            parts.append(f"{name}: {text}")
        return f"{type(self).__name__}({', '.join(parts)})"

    _parameter_names = ()

