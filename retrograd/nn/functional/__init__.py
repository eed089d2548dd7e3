"""retrograd.nn.functional: the differentiable layer ops as plain functions.

Each function checks its arguments (errors name the op, the shapes and the dtypes) and calls
one Function from ``retrograd.ops``. Layers in ``retrograd.nn`` are thin Modules over these:
they pass ``owner=self``, so that an error names the layer (its one-line repr, made only when
an error is raised), instead of checking the input themselves.
"""

# --- linear ---
from retrograd.nn.functional.linear import linear  # noqa: F401
# --- conv and pooling ---
from retrograd.nn.functional.conv import conv1d, conv2d  # noqa: F401
from retrograd.nn.functional.pool import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d, max_pool1d, max_pool2d,
)
# --- activations, dropout, normalization, losses ---
from retrograd.nn.functional.activation import (  # noqa: F401
    gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh,
)
from retrograd.nn.functional.dropout import dropout  # noqa: F401
from retrograd.nn.functional.loss import (  # noqa: F401
    binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss,
)
from retrograd.nn.functional.norm import (  # noqa: F401
    batch_norm, batch_norm_relu, group_norm, layer_norm,
)
# --- attention ---
from retrograd.nn.functional.attention import (  # noqa: F401
    memory_efficient_attention, scaled_dot_product_attention,
)
from retrograd.nn.functional.multihead_attention import multi_head_attention_forward  # noqa: F401
# --- embeddings and recurrent ---
from retrograd.nn.functional.embedding import embedding  # noqa: F401
from retrograd.nn.functional.recurrent import (  # noqa: F401
    gru, gru_cell, lstm, lstm_cell, rnn, rnn_cell,
)
