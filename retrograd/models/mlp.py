"""A multi-layer perceptron."""

from retrograd import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """Linear layers with an activation between them; the input is flattened first.

    Args:
        in_features: size of a flattened input sample.
        hidden: sizes of the hidden layers.
        num_classes: size of the output.
        activation: a Module class applied after each hidden layer. Default: nn.ReLU.

    Example:
        >>> import retrograd as rg
        >>> MLP(64, [32], 10)(rg.zeros(5, 1, 8, 8)).shape
        (5, 10)
    """

    def __init__(self, in_features, hidden=(128,), num_classes=10, activation=None):
        super().__init__()
        activation = activation or nn.ReLU
        layers = [nn.Flatten()]
        sizes = [in_features, *hidden]
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), activation()]
        layers.append(nn.Linear(sizes[-1], num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)
