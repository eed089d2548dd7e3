"""VGG-style networks: stacks of conv3x3 (+BN) + ReLU separated by 2x2 max pooling."""

import functools

from retrograd import nn
from retrograd.utils.checkpoint import GradientCheckpointing

__all__ = ["VGG", "vgg_small", "VGG_CONFIGS"]

# Channel counts; "M" is a 2x2 max pool.
VGG_CONFIGS = {
    "vgg8": [64, "M", 128, "M", 256, "M", 512, "M"],
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg_small": [32, "M", 64, "M", 128, 128, "M"],
}


class VGG(GradientCheckpointing, nn.Module):
    """Conv3x3 blocks from a config list, global average pooling, and a linear classifier.

    Example:
        >>> import retrograd as rg
        >>> VGG([8, "M", 16, "M"], in_channels=1)(rg.zeros(2, 1, 8, 8)).shape
        (2, 10)
    """

    def __init__(self, config, in_channels=3, num_classes=10, batch_norm=True):
        super().__init__()
        layers, channels = [], in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            layers.append(nn.Conv2d(channels, item, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU())
            channels = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        if self._checkpointing_now():
            x = self._run_blocks([functools.partial(_run, stage) for stage in self._stages()], x)
        else:
            x = self.features(x)
        return self.classifier(self.pool(x).flatten(1))

    def _stages(self):
        """The layers of ``features`` cut after each max pool: the checkpointed units."""
        stages = [[]]
        for layer in self.features:
            stages[-1].append(layer)
            if isinstance(layer, nn.MaxPool2d):
                stages.append([])
        return [stage for stage in stages if stage]


def _run(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def vgg_small(**kwargs):
    """A small VGG for 32x32 images (32-64-128 channels, three pools)."""
    return VGG(VGG_CONFIGS["vgg_small"], **kwargs)
