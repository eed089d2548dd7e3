"""A Vision Transformer (ViT, Dosovitskiy et al. 2021) for small images such as digits/MNIST.

The image is cut into non-overlapping P x P patches; each patch is flattened and projected to
d_model by one Linear (a reshape, not a convolution: a stride-P convolution with a P x P kernel
computes the same thing). A learned [CLS] vector is put in front, learned positions are added,
pre-norm encoder blocks (retrograd's TransformerEncoderLayer with norm_first=True) mix the
tokens, and a LayerNorm + Linear head classifies the [CLS] token's final vector.

How the gradient flows. The loss reaches only the [CLS] token's output; attention carries it
to every patch token (the [CLS] query attends to all of them), and from there back through the
patch projection into the pixels. The [CLS] vector and the position table get the sum of their
rows' gradients over the batch.
"""

import math

from retrograd import nn
from retrograd.creation import cat, empty
from retrograd.nn import init
from retrograd.utils.checkpoint import GradientCheckpointing

__all__ = ["ViT", "vit_for"]


class ViT(GradientCheckpointing, nn.Module):
    """Vision Transformer classifier with a [CLS] token, learned positions and pre-norm blocks.

    tokens = [cls; patches(x) W_p^T + b_p] + pos;  z = blocks(tokens);  y = head(norm(z[:, 0])).

    Args:
        image_size: height and width of the (square) input images.
        patch_size: side P of the square patches (must divide image_size).
        in_channels: image channels C. num_classes: outputs.
        d_model: token width D. depth: number of encoder blocks. nhead: attention heads.
        mlp_ratio: feed-forward width as a multiple of D. Default: 2.
        dropout: dropout in the blocks and after the embedding. Default: 0.
        qk_norm: QK-norm in every block's attention (nn.MultiheadAttention(qk_norm=True): a
            LayerNorm over the head dim on queries and keys before the dot product).
            Default: False.

    Shape:
        - Input: (N, C, H, W) with H = W = image_size.
        - Output: (N, num_classes).
        - Tokens: N x (1 + (H / P)^2) x D.

    Attributes:
        patch_embed: Linear(C P P, D). cls_token: (1, 1, D) and pos_embed: (1, 1 + (H/P)^2, D),
        both from N(0, 0.02^2). blocks: TransformerEncoder of TransformerEncoderLayer(D,
        nhead, mlp_ratio D, activation 'gelu', batch_first=True, norm_first=True), with a final
        LayerNorm(D) (``blocks.norm``). head: Linear(D, num_classes). The Linear layers keep
        PyTorch's default init except the head, whose weight starts at zero (as in the ViT
        paper, so that every class starts equally likely).

    Example:
        >>> import retrograd as rg
        >>> model = ViT(image_size=8, patch_size=2, in_channels=1, num_classes=10, d_model=16,
        ...             depth=1, nhead=2)
        >>> model(rg.zeros(3, 1, 8, 8)).shape
        (3, 10)
    """

    def __init__(self, image_size, patch_size, in_channels=1, num_classes=10, d_model=64,
                 depth=4, nhead=4, mlp_ratio=2, dropout=0.0, qk_norm=False):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"ViT: patch_size {patch_size} must divide image_size {image_size}")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        num_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Linear(in_channels * patch_size * patch_size, d_model)
        self.cls_token = nn.Parameter(empty(1, 1, d_model))
        self.pos_embed = nn.Parameter(empty(1, 1 + num_patches, d_model))
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=mlp_ratio * d_model,
                                           dropout=dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        if qk_norm:  # NOTE: TransformerEncoderLayer has no qk_norm option; swap its attention
            layer.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout,
                                                    batch_first=True, qk_norm=True)
        self.blocks = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, num_classes)
        init.normal_(self.cls_token, std=0.02)
        init.normal_(self.pos_embed, std=0.02)
        init.zeros_(self.head.weight)
        init.zeros_(self.head.bias)

    def patches(self, x):
        """(N, C, H, W) -> (N, (H/P)(W/P), C P P): patches in row-major order, each flattened
        channel-first (the order of a Conv2d weight's (C, P, P), so that a stride-P conv's
        weight reshaped to (D, C P P) is the same projection)."""
        n, c, h, w = x.shape
        p = self.patch_size
        x = x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(n, (h // p) * (w // p), c * p * p)

    def forward(self, x):
        _check_image(self, x)
        tokens = self.patch_embed(self.patches(x))
        cls = self.cls_token.expand(x.shape[0], 1, tokens.shape[-1])
        z = self.drop(cat([cls, tokens], dim=1) + self.pos_embed)
        return self.head(self.blocks(z)[:, 0])


def _check_image(model, x):
    expected = (model.in_channels, model.image_size, model.image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"ViT: expected images of shape (N, {expected[0]}, {expected[1]}, "
                         f"{expected[2]}), got {x.shape}")


def vit_for(in_channels, image_size, num_classes):
    """The ViT that ``retrograd train --model vit`` builds for a data set: 16 patches (4 x 4
    grid) of side image_size / 4 when it divides (8x8 digits: 2x2 patches; 28x28 MNIST: 7x7;
    32x32 CIFAR-10: 8x8), d_model 64, 4 blocks of 4 heads, feed-forward width 128, dropout
    0.1 (the 1438 training digits are few for a Transformer: without dropout it overfits).

    Example:
        >>> vit_for(1, 28, 10).patch_size
        7
    """
    grid = math.gcd(image_size, 4)
    return ViT(image_size, image_size // grid, in_channels, num_classes, d_model=64, depth=4,
               nhead=4, mlp_ratio=2, dropout=0.1)
