"""Parameter: a Tensor that a Module registers as learnable."""

from retrograd.tensor import Tensor, as_array, make_tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A tensor that is a learnable parameter of a Module: assigning it as a Module attribute
    registers it, so it appears in ``parameters()`` and ``state_dict()``. It shares memory with
    the tensor or array it is made from, and requires grad by default.

    Example:
        >>> import retrograd as rg
        >>> p = rg.nn.Parameter(rg.zeros(2))
        >>> p.requires_grad, p.is_leaf
        (True, True)
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = make_tensor(as_array([]))
        source = data if isinstance(data, Tensor) else make_tensor(as_array(data))
        if source.grad_fn is not None:
            source = source.detach()
        p = make_tensor(source._data)
        p.__class__ = cls
        p._version = source._version
        p.requires_grad = requires_grad
        return p

    def __init__(self, data=None, requires_grad=True):  # the work is done in __new__
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce__(self):
        return (Parameter, (make_tensor(self._data.copy()), self._requires_grad))

