"""retrograd.models.resnet's architectures written in PyTorch: the oracle of
tests/models/test_cnn_models.py and of the FLOP counts of tests/inspect/test_flops.py.
Parameter names match retrograd's, so a retrograd state dict loads into them unchanged."""

from torch import nn as tnn

__all__ = ["TorchBasicBlock", "TorchBottleneck", "TorchResNet"]


class TorchBasicBlock(tnn.Module):
    expansion = 1

    def __init__(self, cin, c, stride=1):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(c)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(c)
        self.downsample = _torch_shortcut(cin, c, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class TorchBottleneck(tnn.Module):
    expansion = 4

    def __init__(self, cin, c, stride=1):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(c)
        self.conv2 = tnn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(c)
        self.conv3 = tnn.Conv2d(c, 4 * c, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(4 * c)
        self.relu = tnn.ReLU()
        self.downsample = _torch_shortcut(cin, 4 * c, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _torch_shortcut(cin, cout, stride):
    if stride == 1 and cin == cout:
        return None
    return tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))


class TorchResNet(tnn.Module):
    def __init__(self, block, layers, in_channels, num_classes=10, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = tnn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(widths[0])
        self.relu = tnn.ReLU()
        stages, c = [], widths[0]
        for i, (n, w) in enumerate(zip(layers, widths)):
            blocks = []
            for k in range(n):
                blocks.append(block(c, w, 2 if i > 0 and k == 0 else 1))
                c = w * block.expansion
            stages.append(tnn.Sequential(*blocks))
        self.layers = tnn.ModuleList(stages)
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.fc = tnn.Linear(c, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for stage in self.layers:
            x = stage(x)
        return self.fc(self.avgpool(x).flatten(1))
