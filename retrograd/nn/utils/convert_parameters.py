"""parameters_to_vector and vector_to_parameters, as ``torch.nn.utils``: all the parameters
of a model as one flat vector, and back."""

from retrograd import _checks
from retrograd.creation import cat
from retrograd.tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """The parameters, flattened and concatenated in order into one 1-D Tensor (part of the
    graph: gradients flow back to each parameter).

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.Linear(3, 2)
        >>> rg.nn.utils.parameters_to_vector(layer.parameters()).shape
        (8,)
    """
    params = _checks.tensors("parameters_to_vector", "parameters",
                             _checks.parameter_iterable("parameters_to_vector", "parameters",
                                                        parameters, "an iterable of Tensors"))
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters):
    """Give each parameter, in order, the next slice of ``vec`` as its data (sharing vec's
    memory, as PyTorch's ``param.data = ...``); entries of vec past the last parameter are
    ignored, as in PyTorch.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.Linear(2, 1)
        >>> rg.nn.utils.vector_to_parameters(rg.tensor([1.0, 2.0, 3.0]), layer.parameters())
        >>> layer.weight.tolist(), layer.bias.tolist()
        ([[1.0, 2.0]], [3.0])
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, but got: "
                        f"{type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D, got shape {tuple(vec.shape)}")
    params = _checks.tensors("vector_to_parameters", "parameters",
                             _checks.parameter_iterable("vector_to_parameters", "parameters",
                                                        parameters, "an iterable of Tensors"))
    needed = sum(p.numel() for p in params)
    if vec.numel() < needed:
        raise RuntimeError(f"vector_to_parameters: vec has {vec.numel()} elements, the "
                           f"parameters need {needed}")
    pointer = 0
    for param in params:
        count = param.numel()
        param.data = vec[pointer:pointer + count].view_as(param).data
        pointer += count
