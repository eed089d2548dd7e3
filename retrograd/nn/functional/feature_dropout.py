"""dropout1d, dropout2d, dropout3d: zero whole channels during training (PyTorch's feature
dropout), with PyTorch's rules on the input's dimensionality, warnings included."""

import warnings

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._checks import name_of
from retrograd.ops.dropout import FeatureDropout
from retrograd.tensor import Tensor

__all__ = ["dropout1d", "dropout2d", "dropout3d", "feature_dropout"]


def dropout1d(input, p=0.5, training=True, inplace=False, *, owner=None):  # noqa: A002
    """In training, zero each channel of each sample (a 1-D feature map input[n, c]) with
    probability p, and scale the others by 1 / (1 - p); the identity otherwise.

    Args:
        input: (N, C, L) or (C, L) unbatched, floating point. p: in [0, 1].
        training: apply dropout (else return input). inplace: write the result into input.
        owner: who errors name (a layer passes itself); default "dropout1d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> _ = rg.manual_seed(0)
        >>> y = F.dropout1d(rg.ones(2, 6, 3), p=0.5)
        >>> sorted(set(y.sum(dim=-1).flatten().tolist()))     # channels all 0 or all 2
        [0.0, 6.0]
    """
    owner = "dropout1d" if owner is None else owner
    _check(owner, input, p)
    if input.ndim not in (2, 3):
        raise RuntimeError(f"{name_of(owner)}: expected 2D or 3D input, but received a "
                           f"{input.ndim}D input (shape {tuple(input.shape)}). Note that "
                           f"dropout1d exists to provide channel-wise dropout on inputs with "
                           f"1 spatial dimension, a channel dimension, and an optional batch "
                           f"dimension (i.e. 2D or 3D inputs).")
    return _unbatched(owner, input, p, training, inplace, batched=input.ndim == 3)


def dropout2d(input, p=0.5, training=True, inplace=False, *, owner=None):  # noqa: A002
    """In training, zero each channel of each sample (a 2-D feature map input[n, c]) with
    probability p, and scale the others by 1 / (1 - p); the identity otherwise.

    Args:
        input: (N, C, H, W), floating point. As PyTorch, a 3-D input is read as (N, C, L)
            (channel-wise 1-D dropout, with PyTorch's warning), not as an unbatched
            (C, H, W); other dimensionalities warn and drop input[n, c] whole.
        p: in [0, 1]. training: apply dropout. inplace: write the result into input.
        owner: who errors name (a layer passes itself); default "dropout2d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.dropout2d(rg.ones(1, 2, 2, 2), p=0.5, training=False).sum().item()
        8.0
    """
    owner = "dropout2d" if owner is None else owner
    _check(owner, input, p)
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is "
                      f"deprecated and will result in an error in a future release. To "
                      f"retain the behavior and silence this warning, please use dropout "
                      f"instead. Note that dropout2d exists to provide channel-wise dropout "
                      f"on inputs with 2 spatial dimensions, a channel dimension, and an "
                      f"optional batch dimension (i.e. 3D or 4D inputs).", stacklevel=2)
    if input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that "
                      "channel-wise 1D dropout behavior is desired - input is interpreted as "
                      "shape (N, C, L), where C is the channel dim. This behavior will change "
                      "in a future release to interpret the input as one without a batch "
                      "dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise "
                      "dropout behavior, please switch to using dropout1d instead.",
                      stacklevel=2)
    return feature_dropout(input, p, training, inplace, owner=owner)


def dropout3d(input, p=0.5, training=True, inplace=False, *, owner=None):  # noqa: A002
    """In training, zero each channel of each sample (a 3-D feature map input[n, c]) with
    probability p, and scale the others by 1 / (1 - p); the identity otherwise.

    Args:
        input: (N, C, D, H, W) or (C, D, H, W) unbatched, floating point (other
            dimensionalities warn, as PyTorch, and are read as unbatched).
        p: in [0, 1]. training: apply dropout. inplace: write the result into input.
        owner: who errors name (a layer passes itself); default "dropout3d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.dropout3d(rg.ones(2, 1, 1, 1), p=1.0).sum().item()
        0.0
    """
    owner = "dropout3d" if owner is None else owner
    _check(owner, input, p)
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is "
                      f"deprecated and will result in an error in a future release. To "
                      f"retain the behavior and silence this warning, please use dropout "
                      f"instead. Note that dropout3d exists to provide channel-wise dropout "
                      f"on inputs with 3 spatial dimensions, a channel dimension, and an "
                      f"optional batch dimension (i.e. 4D or 5D inputs).", stacklevel=2)
    return _unbatched(owner, input, p, training, inplace, batched=input.ndim == 5)


def feature_dropout(input, p=0.5, training=True, inplace=False, *, owner=None):  # noqa: A002
    """PyTorch's feature_dropout: one keep-or-drop draw per input[n, c] (input at least
    2-D), broadcast over the rest; input returned as is outside training, for p = 0 or an
    empty input.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> _ = rg.manual_seed(1)
        >>> F.feature_dropout(rg.ones(1, 4, 2), 0.5)[0].tolist()
        [[0.0, 0.0], [2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]
    """
    owner = "feature_dropout" if owner is None else owner
    p = _check(owner, input, p)
    if input.ndim < 2:
        raise RuntimeError(f"{name_of(owner)}: feature dropout requires at least 2 dimensions "
                           f"in the input, got shape {tuple(input.shape)}")
    if not training or p == 0 or input.numel() == 0:
        return input
    out = FeatureDropout.apply(input, p=p)
    return input.copy_(out) if inplace else out


def _unbatched(owner, input, p, training, inplace, batched):  # noqa: A002
    """feature_dropout on input with a batch axis added when it has none (and taken away)."""
    if batched:
        return feature_dropout(input, p, training, inplace, owner=owner)
    out = feature_dropout(input.unsqueeze(0), p, training, False, owner=owner).squeeze(0)
    return input.copy_(out) if inplace and out is not input else out


def _check(owner, input, p):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got {type(input).__name__}")
    p = _checks.probability(owner, "dropout probability", p)
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{name_of(owner)}: expected a floating-point input, got dtype "
                        f"{input.dtype} (shape {tuple(input.shape)})")
    return p
