"""Case-study models, each trainable with ``retrograd train --model NAME``."""

from retrograd.models.gpt import GPT, GPTConfig
from retrograd.models.lenet import LeNet
from retrograd.models.mlp import MLP
from retrograd.models.plain import PlainCNN
from retrograd.models.resnet import (
    BasicBlock, Bottleneck, ResNet, resnet8, resnet20, resnet56, resnet_bottleneck, resnet_digits,
)
from retrograd.models.seq2seq import Seq2SeqTransformer
from retrograd.models.vgg import VGG, vgg_small
from retrograd.models.vit import ViT, vit_for

__all__ = ["MLP", "LeNet", "PlainCNN", "ResNet", "BasicBlock", "Bottleneck", "VGG", "resnet8",
           "resnet20", "resnet56", "resnet_bottleneck", "resnet_digits", "vgg_small",
           "ViT", "vit_for", "GPT", "GPTConfig", "Seq2SeqTransformer", "MODELS", "build_model"]


def _mlp(in_channels, image_size, num_classes):
    return MLP(in_channels * image_size * image_size, (256, 128), num_classes)


def _plain(in_channels, image_size, num_classes):
    return PlainCNN(depth=20, in_channels=in_channels, num_classes=num_classes)


def _lenet(in_channels, image_size, num_classes):
    return LeNet(in_channels, num_classes, input_size=32 if image_size == 32 else 28)


def _factory(fn):
    return lambda in_channels, image_size, num_classes: fn(in_channels=in_channels,
                                                           num_classes=num_classes)


MODELS = {
    "resnet-digits": _factory(resnet_digits),
    "resnet8": _factory(resnet8),
    "resnet20": _factory(resnet20),
    "resnet56": _factory(resnet56),
    "resnet-bottleneck": _factory(resnet_bottleneck),
    "vgg": _factory(vgg_small),
    "plain20": _plain,
    "lenet": _lenet,
    "mlp": _mlp,
    "vit": vit_for,
}


def build_model(name, in_channels, image_size, num_classes):
    """A model from the registry above, sized for the data set."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    if name == "lenet" and image_size not in (28, 32):
        raise ValueError(f"lenet expects 28x28 or 32x32 images, the data set has "
                         f"{image_size}x{image_size}")
    return MODELS[name](in_channels, image_size, num_classes)
