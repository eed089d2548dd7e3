"""LeNet-style convolutional network for 28x28 (or 32x32) grayscale digits."""

from retrograd import nn

__all__ = ["LeNet"]


class LeNet(nn.Module):
    """Two conv-ReLU-maxpool stages and two fully connected layers (the classic LeNet layout
    with ReLU and max pooling, and wider layers as in later LeNet variants).

    Shape: input (N, in_channels, 28, 28) -> conv 5x5 (pad 2) -> 28x28 -> pool -> 14x14 ->
    conv 5x5 -> 10x10 -> pool -> 5x5 -> flatten -> fc -> fc -> (N, num_classes).

    Args:
        in_channels: input channels. Default: 1.
        num_classes: outputs. Default: 10.
        widths: channels of the two conv layers and size of the hidden fc layer.
        input_size: 28 or 32 (32-pixel inputs are not padded in the first conv).

    Example:
        >>> import retrograd as rg
        >>> LeNet()(rg.zeros(2, 1, 28, 28)).shape
        (2, 10)
    """

    def __init__(self, in_channels=1, num_classes=10, widths=(20, 50, 500), input_size=28):
        super().__init__()
        c1, c2, hidden = widths
        pad = 2 if input_size == 28 else 0
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 5 * 5, hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
