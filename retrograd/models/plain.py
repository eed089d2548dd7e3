"""A plain deep CNN: a stack of conv layers without skip connections.

Deep plain stacks are where gradients vanish or explode; compare them with the ResNets of the
same depth to see what identity shortcuts change in the gradient flow.
"""

from retrograd import nn

__all__ = ["PlainCNN"]


class PlainCNN(nn.Module):
    """``depth`` conv3x3 layers (optionally with batch norm) and ReLU, no skips; the width
    doubles and the resolution halves at each of the ``stages`` stage boundaries.

    Args:
        depth: number of conv layers (>= stages).
        in_channels, num_classes: input channels and outputs.
        width: channels of the first stage.
        stages: number of resolution stages. Default: 3.
        batch_norm: insert BatchNorm2d after each conv. Default: True.

    Example:
        >>> import retrograd as rg
        >>> PlainCNN(depth=6, in_channels=1, width=4)(rg.zeros(2, 1, 8, 8)).shape
        (2, 10)
    """

    def __init__(self, depth=20, in_channels=3, num_classes=10, width=16, stages=3,
                 batch_norm=True):
        super().__init__()
        if depth < stages:
            raise ValueError(f"PlainCNN: depth {depth} must be at least the number of stages "
                             f"{stages}")
        per_stage = [depth // stages + (1 if i < depth % stages else 0) for i in range(stages)]
        layers, channels = [], in_channels
        for stage, count in enumerate(per_stage):
            out = width * 2 ** stage
            for k in range(count):
                stride = 2 if stage > 0 and k == 0 else 1
                layers.append(nn.Conv2d(channels, out, 3, stride=stride, padding=1,
                                        bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(nn.ReLU())
                channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))
