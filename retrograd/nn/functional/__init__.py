"""retrograd.nn.functional: the differentiable layer ops as plain functions.

Each function checks its arguments (errors name the op, the shapes and the dtypes) and calls
one Function from ``retrograd.ops``. Layers in ``retrograd.nn`` are thin Modules over these.
"""

# --- linear ---
from retrograd.nn.functional.linear import linear  # noqa: F401
# --- conv and pooling ---
# --- activations, dropout, normalization, losses ---
