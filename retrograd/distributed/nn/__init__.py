"""Differentiable collectives (PyTorch's ``torch.distributed.nn``)."""

from retrograd.distributed.nn import functional

__all__ = ["functional"]
