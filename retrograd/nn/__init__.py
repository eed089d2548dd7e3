"""retrograd.nn: Modules, Parameters and layers (thin Modules over nn.functional)."""

from retrograd.nn import functional, init  # noqa: F401

# --- module system ---
from retrograd.nn.container import (  # noqa: F401
    ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential,
)
from retrograd.nn.linear import Flatten, Identity, Linear, Unflatten  # noqa: F401
from retrograd.nn.module import Module  # noqa: F401
from retrograd.nn.parameter import Parameter  # noqa: F401
# --- conv and pooling layers ---
# --- activations, dropout, normalization, loss layers ---
