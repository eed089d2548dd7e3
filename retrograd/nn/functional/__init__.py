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
# --- spatial: transposed conv, padding, interpolation, pixel shuffle, channel dropout ---
from retrograd.nn.functional.conv_transpose import conv_transpose1d, conv_transpose2d  # noqa: F401
from retrograd.nn.functional.feature_dropout import (  # noqa: F401
    dropout1d, dropout2d, dropout3d, feature_dropout,
)
from retrograd.nn.functional.interpolate import (  # noqa: F401
    interpolate, upsample, upsample_bilinear, upsample_nearest,
)
from retrograd.nn.functional.padding import pad  # noqa: F401
from retrograd.nn.functional.pixel_shuffle import pixel_shuffle, pixel_unshuffle  # noqa: F401
from retrograd.nn.functional.pool import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d,
    avg_pool1d, avg_pool2d, lp_pool1d, lp_pool2d, max_pool1d, max_pool2d, max_unpool1d,
    max_unpool2d,
)
from retrograd.nn.functional.channel_shuffle import (  # noqa: F401
    channel_shuffle, native_channel_shuffle,
)
from retrograd.nn.functional.fold import fold, unfold  # noqa: F401
# --- activations, dropout, normalization, losses ---
from retrograd.nn.functional.activation import (  # noqa: F401
    elu, gelu, hardtanh, leaky_relu, log_softmax, logsigmoid, mish, prelu, relu, relu6, sigmoid,
    silu, softmax, softplus, tanh,
)
from retrograd.nn.functional.activation import (  # noqa: F401 - the activation tail
    celu, glu, gumbel_softmax, hardshrink, hardsigmoid, hardswish, selu, softmin, softshrink,
    softsign, tanhshrink, threshold,
)
from retrograd.nn.functional.distance import cosine_similarity, pairwise_distance  # noqa: F401
from retrograd.nn.functional.dropout import dropout  # noqa: F401
from retrograd.nn.functional.loss import (  # noqa: F401
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
    l1_loss, mse_loss, nll_loss, smooth_l1_loss,
)
from retrograd.nn.functional.loss import (  # noqa: F401 - the loss tail
    cosine_embedding_loss, gaussian_nll_loss, hinge_embedding_loss, margin_ranking_loss,
    multi_margin_loss, multilabel_soft_margin_loss, poisson_nll_loss, soft_margin_loss,
    triplet_margin_loss,
)
from retrograd.nn.functional.bilinear import bilinear  # noqa: F401
from retrograd.nn.functional.norm import (  # noqa: F401
    batch_norm, batch_norm_relu, group_norm, instance_norm, layer_norm, rms_norm,
)
from retrograd.nn.functional.norm_composite import local_response_norm, normalize  # noqa: F401
# --- attention ---
from retrograd.nn.functional.attention import (  # noqa: F401
    memory_efficient_attention, scaled_dot_product_attention,
)
from retrograd.nn.functional.multihead_attention import multi_head_attention_forward  # noqa: F401
# --- embeddings and recurrent ---
from retrograd.nn.functional.embedding import embedding  # noqa: F401
from retrograd.nn.functional.embedding_bag import embedding_bag  # noqa: F401
from retrograd.nn.functional.encoding import one_hot  # noqa: F401
from retrograd.nn.functional.recurrent import (  # noqa: F401
    gru, gru_cell, lstm, lstm_cell, rnn, rnn_cell,
)
