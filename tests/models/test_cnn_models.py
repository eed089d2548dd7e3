"""The CNN case studies against the same architectures written in torch: after copying
torch's state dict into ours, outputs, input gradients, every parameter gradient and the
batch-norm running statistics agree, in train and in eval mode (float64)."""

import numpy as np
import pytest
import torch
from torch import nn as tnn

import retrograd as rg
from retrograd.models import (
    MLP, VGG, LeNet, PlainCNN, build_model, resnet8, resnet_bottleneck, resnet_digits,
)
from tests.torch_resnet import TorchBasicBlock, TorchBottleneck, TorchResNet


def _torch_lenet():
    features = tnn.Sequential(tnn.Conv2d(1, 20, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                              tnn.Conv2d(20, 50, 5), tnn.ReLU(), tnn.MaxPool2d(2))
    classifier = tnn.Sequential(tnn.Flatten(), tnn.Linear(1250, 500), tnn.ReLU(),
                                tnn.Linear(500, 10))
    model = tnn.Module()
    model.features, model.classifier = features, classifier
    model.forward = lambda x: classifier(features(x))
    return model


def _torch_vgg(config, in_channels):
    layers, c = [], in_channels
    for item in config:
        if item == "M":
            layers.append(tnn.MaxPool2d(2))
        else:
            layers += [tnn.Conv2d(c, item, 3, padding=1, bias=False), tnn.BatchNorm2d(item),
                       tnn.ReLU()]
            c = item
    model = tnn.Module()
    model.features = tnn.Sequential(*layers)
    model.pool, model.classifier = tnn.AdaptiveAvgPool2d(1), tnn.Linear(c, 10)
    model.forward = lambda x: model.classifier(model.pool(model.features(x)).flatten(1))
    return model


def _copy_torch_into_ours(ours, theirs):
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert list(state) == list(ours.state_dict()), "state dict keys differ from torch's"
    ours.load_state_dict(state)


def _compare(ours, theirs, shape, train, seed=0):
    theirs = theirs.double()
    ours.double()
    _copy_torch_into_ours(ours, theirs)
    ours.train(train)
    theirs.train(train)
    x = np.random.default_rng(seed).standard_normal(shape)
    cotangent = np.random.default_rng(seed + 1).standard_normal((shape[0], 10))
    xr, xt = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yr, yt = ours(xr), theirs(xt)
    np.testing.assert_allclose(yr.detach().numpy(), yt.detach().numpy(), rtol=1e-9, atol=1e-10)
    yr.backward(rg.tensor(cotangent))
    yt.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(xr.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-8,
                                   atol=1e-10, err_msg=name)
    theirs_state = theirs.state_dict()
    for name, b in ours.named_buffers():
        np.testing.assert_allclose(b.numpy(), theirs_state[name].numpy(), rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("train", [True, False])
def test_resnet8_matches_torch(train):
    _compare(resnet8(), TorchResNet(TorchBasicBlock, [1, 1, 1], 3), (2, 3, 16, 16), train)


@pytest.mark.parametrize("train", [True, False])
def test_bottleneck_resnet_matches_torch(train):
    _compare(resnet_bottleneck(11), TorchResNet(TorchBottleneck, [1, 1, 1], 3), (2, 3, 8, 8), train)


def test_digits_resnet_matches_torch():
    _compare(resnet_digits(), TorchResNet(TorchBasicBlock, [1, 1], 1, widths=(32, 64)),
             (3, 1, 8, 8), train=True)


@pytest.mark.parametrize("train", [True, False])
def test_lenet_matches_torch(train):
    _compare(LeNet(), _torch_lenet(), (2, 1, 28, 28), train)


def test_vgg_matches_torch():
    config = [8, "M", 16, 16, "M"]
    _compare(VGG(config, in_channels=3), _torch_vgg(config, 3), (2, 3, 8, 8), train=True)


def test_resnet_depths_have_the_published_layer_counts():
    def convs(model):
        return sum(isinstance(m, rg.nn.Conv2d) and m.kernel_size != (1, 1) for m in model.modules())

    # depth = 6n + 2: 6n 3x3 convs in the blocks + the stem conv (+ the fc layer)
    assert convs(resnet8()) == 7
    assert convs(rg.models.resnet20()) == 19
    assert convs(rg.models.resnet56()) == 55
    assert sum(p.numel() for p in rg.models.resnet20().parameters()) == 272474  # He et al.: 0.27M


@pytest.mark.parametrize("build", [resnet8, resnet_bottleneck])
def test_resnets_without_batch_norm_have_none_and_biased_convs(build):
    model = build(in_channels=1, batch_norm=False)
    assert not any(isinstance(m, rg.nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, rg.nn.Conv2d)]
    assert convs and all(m.bias is not None for m in convs)
    assert len(convs) == sum(isinstance(m, rg.nn.Conv2d) for m in build(in_channels=1).modules())
    out = model(rg.randn(2, 1, 8, 8))
    assert out.shape == (2, 10) and np.isfinite(out.detach().numpy()).all()


def test_plain_cnn_has_no_skip_connections_and_the_requested_depth():
    model = PlainCNN(depth=9, in_channels=1, width=4)
    assert sum(isinstance(m, rg.nn.Conv2d) for m in model.modules()) == 9
    assert model(rg.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="depth 2 must be at least"):
        PlainCNN(depth=2)


def test_mlp_and_registry():
    assert MLP(64, (32, 16), 10)(rg.zeros(4, 1, 8, 8)).shape == (4, 10)
    for name in ("resnet-digits", "resnet8", "vgg", "plain20", "mlp"):
        assert build_model(name, 1, 8, 10)(rg.zeros(2, 1, 8, 8)).shape == (2, 10), name
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        build_model("resnet9", 1, 8, 10)
    with pytest.raises(ValueError, match="lenet expects 28x28 or 32x32"):
        build_model("lenet", 1, 8, 10)
    with pytest.raises(ValueError, match="depth must be 6n \\+ 2"):
        rg.models.resnet._cifar_depth(10)
