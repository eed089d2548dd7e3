"""Residual networks (He et al., 2016) for small images: 32x32 CIFAR-style and 8x8 digits.

The identity shortcut y = F(x) + x gives the gradient a path that skips F:
dL/dx = dL/dy * (dF/dx + I), so even when dF/dx is small the gradient reaches early layers.
"""

from retrograd import nn
from retrograd.utils.checkpoint import GradientCheckpointing

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet8", "resnet20", "resnet56",
           "resnet_bottleneck", "resnet_digits"]


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, then ReLU. When the shape changes the
    shortcut is a 1x1 conv with stride and BN (PyTorch/torchvision's option B). With
    ``batch_norm=False`` the BNs are identities and the convs have biases."""

    expansion = 1

    def __init__(self, in_channels, channels, stride=1, batch_norm=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1,
                               bias=not batch_norm)
        self.bn1 = _norm(channels, batch_norm)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)
        self.bn2 = _norm(channels, batch_norm)
        self.downsample = _shortcut(in_channels, channels * self.expansion, stride, batch_norm)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """conv1x1 (reduce) - conv3x3 - conv1x1 (expand x4), each with BN (or, with
    ``batch_norm=False``, none and biased convs), plus the shortcut."""

    expansion = 4

    def __init__(self, in_channels, channels, stride=1, batch_norm=True):
        super().__init__()
        bias = not batch_norm
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=bias)
        self.bn1 = _norm(channels, batch_norm)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = _norm(channels, batch_norm)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, 1, bias=bias)
        self.bn3 = _norm(channels * self.expansion, batch_norm)
        self.relu = nn.ReLU()
        self.downsample = _shortcut(in_channels, channels * self.expansion, stride, batch_norm)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _norm(channels, batch_norm):
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


def _shortcut(in_channels, out_channels, stride, batch_norm=True):
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride,
                                   bias=not batch_norm), _norm(out_channels, batch_norm))


class ResNet(GradientCheckpointing, nn.Module):
    """A stem conv3x3, stages of residual blocks (the first block of each later stage halves
    the resolution and doubles the width), global average pooling and a linear classifier.

    Args:
        block: BasicBlock or Bottleneck.
        layers: blocks per stage, e.g. [1, 1, 1] for ResNet-8.
        in_channels, num_classes: input channels and outputs.
        widths: channels of each stage. Default: (16, 32, 64), the CIFAR ResNets'.
        batch_norm: batch norm after every conv. Default: True (False: none, biased convs;
            the depth experiment compares the two).

    Example:
        >>> import retrograd as rg
        >>> resnet8(in_channels=1)(rg.zeros(2, 1, 8, 8)).shape
        (2, 10)
    """

    def __init__(self, block, layers, in_channels=3, num_classes=10, widths=(16, 32, 64),
                 batch_norm=True):
        super().__init__()
        if len(layers) != len(widths):
            raise ValueError(f"ResNet: {len(layers)} stages of blocks but {len(widths)} widths")
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=not batch_norm)
        self.bn1 = _norm(widths[0], batch_norm)
        self.relu = nn.ReLU()
        channels = widths[0]
        stages = []
        for i, (count, width) in enumerate(zip(layers, widths)):
            blocks = []
            for k in range(count):
                stride = 2 if i > 0 and k == 0 else 1
                blocks.append(block(channels, width, stride, batch_norm))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.ModuleList(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self._checkpointing_now():
            x = self._run_blocks([block for stage in self.layers for block in stage], x)
        else:
            for stage in self.layers:
                x = stage(x)
        return self.fc(self.avgpool(x).flatten(1))


def _cifar_depth(depth):
    if (depth - 2) % 6:
        raise ValueError(f"resnet: CIFAR ResNet depth must be 6n + 2 (8, 20, 56, ...), got {depth}")
    return (depth - 2) // 6


def resnet8(**kwargs):
    """ResNet-8: 3 stages of 1 BasicBlock (for 32x32 images, or smaller)."""
    return ResNet(BasicBlock, [_cifar_depth(8)] * 3, **kwargs)


def resnet20(**kwargs):
    """ResNet-20: 3 stages of 3 BasicBlocks."""
    return ResNet(BasicBlock, [_cifar_depth(20)] * 3, **kwargs)


def resnet56(**kwargs):
    """ResNet-56: 3 stages of 9 BasicBlocks."""
    return ResNet(BasicBlock, [_cifar_depth(56)] * 3, **kwargs)


def resnet_bottleneck(depth=29, **kwargs):
    """A CIFAR-style ResNet with Bottleneck blocks: depth = 9n + 2 (29 -> 3 blocks per stage)."""
    if (depth - 2) % 9:
        raise ValueError(f"resnet_bottleneck: depth must be 9n + 2 (11, 20, 29, ...), got {depth}")
    return ResNet(Bottleneck, [(depth - 2) // 9] * 3, **kwargs)


def resnet_digits(**kwargs):
    """A small ResNet for 8x8 digits: two stages (8x8 and 4x4) of one BasicBlock each."""
    kwargs.setdefault("in_channels", 1)
    kwargs.setdefault("widths", (32, 64))
    return ResNet(BasicBlock, [1, 1], **kwargs)
