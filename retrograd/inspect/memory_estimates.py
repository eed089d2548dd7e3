"""Closed-form counts of what a Transformer block and a residual conv block keep for backward
(docs/memory-model.md), which the memory ledger prints beside what it measured.

Each estimator takes the block and the shape and item size of its input and returns (bytes,
formula as text), or None for a configuration it has no closed form for. The Transformer
blocks' counts (GPT's Block, nn.TransformerEncoderLayer without attention masks) are exact
(the ledger's tests hold them to the byte); the conv block's is the textbook im2col count,
X_col = C kh kw x output positions per convolution, which retrograd's stride-1 row layout
beats (it saves kh x the padded input instead), so the two columns differ there on purpose.
"""

from retrograd.models.gpt import Block
from retrograd.models.resnet import BasicBlock
from retrograd.nn import BatchNorm2d, TransformerEncoderLayer
from retrograd.nn import functional as F

__all__ = ["ESTIMATORS", "estimate", "transformer_block_bytes", "encoder_layer_bytes",
           "basic_block_bytes"]


def transformer_block_bytes(block, x_shape, itemsize):
    """A pre-norm GPT block on x:(B, T, D), no dropout: per token the two layer norms'
    x_hat and rstd, the QKV input and output, O, the projection's input, the MLP's input,
    GELU's input and output (F = the MLP's width), plus the attention probabilities
    (B, H, T, T) and its saturated-row flags (B, H, T, one byte each)."""
    batch, context, width = x_shape
    heads, ffn = block.attn.n_head, block.mlp.fc.out_features
    tokens = batch * context
    elements = tokens * (9 * width + 2 * ffn + 2) + batch * heads * context * context
    text = "itemsize (N (9D + 2F + 2) + B H T^2) + B H T"
    return itemsize * elements + batch * heads * context, text


def encoder_layer_bytes(layer, x_shape, itemsize):
    """nn.TransformerEncoderLayer (either norm order) on x of N = B T tokens of width D, H
    heads, feed-forward width F, no attention mask: per token the two layer norms' x_hat
    and rstd, the attention's input, q, k, v, O and the output projection's input, the
    feed-forward's input (9 D + 2 per token), the probabilities P (B H T T); the
    feed-forward keeps F per token for ReLU (its output, which linear2 reads) and 2 F for
    GELU (its input and output). In training with dropout p > 0: P's mask, the masks of
    dropout1 and dropout2 (D per token each), and dropout's mask and output (ReLU: 3 F per
    token in all, GELU: 3 F as well, its output being only dropout's input)."""
    activation = {F.relu: "relu", F.gelu: "gelu"}.get(layer.activation)
    if activation is None:
        return None
    width = x_shape[-1]
    if len(x_shape) == 2:              # unbatched: (T, D)
        batch, context = 1, x_shape[0]
    elif layer.self_attn.batch_first:
        batch, context = x_shape[:2]
    else:
        context, batch = x_shape[:2]
    tokens, heads = batch * context, layer.self_attn.num_heads
    ffn = layer.linear1.out_features
    scores = batch * heads * context * context
    dropout = layer.training and layer.dropout.p > 0
    ffn_saves = 3 if dropout else {"relu": 1, "gelu": 2}[activation]
    elements = (tokens * (9 * width + 2) + ffn_saves * tokens * ffn + (1 + dropout) * scores
                + dropout * 2 * tokens * width)
    text = (f"itemsize (N (9D + {ffn_saves}F + 2) + {1 + dropout} B H T^2"
            f"{' + 2 N D' if dropout else ''})")
    return itemsize * elements, text


def _conv_columns(conv, channels, out_positions):
    """X_col of a convolution: (C kh kw, output positions), over all groups."""
    kh, kw = conv.kernel_size
    return channels * kh * kw * out_positions


def basic_block_bytes(block, x_shape, itemsize):
    """A ResNet BasicBlock on x:(N, C, H, W) with O channels and stride s (Ho = H/s): each
    convolution's X_col (C kh kw x N Ho Wo), each batch norm's x_hat (N O Ho Wo) and rstd
    (O), each ReLU's output (N O Ho Wo); the shortcut's 1x1 conv and batch norm when it has
    one (a block built with batch_norm=False has no batch-norm terms)."""
    n, c, h, w = x_shape
    out_channels = block.conv1.out_channels
    stride = block.conv1.stride[0]
    positions = n * (-(-h // stride)) * (-(-w // stride))
    activation = out_channels * positions
    convs = (_conv_columns(block.conv1, c, positions)
             + _conv_columns(block.conv2, out_channels, positions))
    norms = 2 * (activation + out_channels)
    if block.downsample is not None:
        convs += _conv_columns(block.downsample[0], c, positions)
        norms += activation + out_channels
    norms *= isinstance(block.bn1, BatchNorm2d)
    elements = convs + norms + 2 * activation
    text = "itemsize (sum of C kh kw N Ho Wo per conv + (n + O) per BN + n per ReLU)"
    return itemsize * elements, text


ESTIMATORS = {Block: transformer_block_bytes, TransformerEncoderLayer: encoder_layer_bytes,
              BasicBlock: basic_block_bytes}


def estimate(module, x_shape, itemsize):
    """(bytes, formula) for a module with a closed form, else None."""
    estimator = ESTIMATORS.get(type(module))
    if estimator is None or x_shape is None:
        return None
    return estimator(module, tuple(x_shape), itemsize)
