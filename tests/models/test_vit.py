"""The Vision Transformer: against the same architecture in torch (float64, outputs, input
gradient and every parameter gradient), patches as a strided convolution, the registry entry
used by ``retrograd train --model vit``, and errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch import nn as tnn

import retrograd as rg
from retrograd.models import MODELS, ViT, build_model, vit_for
from retrograd.nn import functional as F
from retrograd.training.image import TrainConfig, load_image_data, train


class TorchViT(tnn.Module):
    def __init__(self, image_size, patch, channels, classes, d, depth, heads, mlp_ratio):
        super().__init__()
        self.patch = patch
        self.patch_embed = tnn.Linear(channels * patch * patch, d)
        self.cls_token = tnn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = tnn.Parameter(torch.zeros(1, 1 + (image_size // patch) ** 2, d))
        layer = tnn.TransformerEncoderLayer(d, heads, mlp_ratio * d, dropout=0.0,
                                            activation="gelu", batch_first=True, norm_first=True)
        self.blocks = tnn.TransformerEncoder(layer, depth, norm=tnn.LayerNorm(d),
                                             enable_nested_tensor=False)
        self.head = tnn.Linear(d, classes)

    def forward(self, x):
        n, c, h, w = x.shape
        p = self.patch
        patches = x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        tokens = self.patch_embed(patches.reshape(n, -1, c * p * p))
        z = torch.cat([self.cls_token.expand(n, 1, -1), tokens], dim=1) + self.pos_embed
        return self.head(self.blocks(z)[:, 0])


def _pair(channels=2, image_size=8, patch=2, seed=0):
    rg.manual_seed(seed)
    model = ViT(image_size, patch, channels, 5, d_model=8, depth=2, nhead=2, mlp_ratio=2).double()
    rng = np.random.default_rng(seed)
    with rg.no_grad():  # the head starts at zero: randomize so every gradient is non-zero
        for p in model.parameters():
            p._data[...] += rng.standard_normal(p.shape) * 0.2
    reference = TorchViT(image_size, patch, channels, 5, 8, 2, 2, 2).double()
    reference.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy())
                               for k, v in model.state_dict().items()})
    return model, reference


@pytest.mark.parametrize("channels, image_size, patch", [(2, 8, 2), (1, 8, 4), (3, 6, 3)])
def test_matches_torch_outputs_and_every_gradient(channels, image_size, patch):
    model, reference = _pair(channels, image_size, patch)
    x = np.random.default_rng(1).standard_normal((3, channels, image_size, image_size))
    cotangent = np.random.default_rng(2).standard_normal((3, 5))
    ours_x, theirs_x = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, expected = model(ours_x), reference(theirs_x)
    np.testing.assert_allclose(y.detach().numpy(), expected.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    (y * rg.tensor(cotangent)).sum().backward()
    (expected * torch.from_numpy(cotangent)).sum().backward()
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-9, atol=1e-12)
    theirs = dict(reference.named_parameters())
    ours = dict(model.named_parameters())
    assert ours.keys() == theirs.keys()
    for name, p in ours.items():
        assert np.abs(p.grad.numpy()).max() > 0, name
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=name)


def test_patch_embedding_is_a_strided_convolution():
    model, _ = _pair(channels=2, image_size=8, patch=2)
    x = np.random.default_rng(3).standard_normal((2, 2, 8, 8))
    ours = model.patch_embed(model.patches(rg.tensor(x))).detach().numpy()
    weight = torch.from_numpy(model.patch_embed.weight.detach().numpy()).reshape(8, 2, 2, 2)
    conv = TF.conv2d(torch.from_numpy(x), weight,
                     torch.from_numpy(model.patch_embed.bias.detach().numpy()), stride=2)
    np.testing.assert_allclose(ours, conv.flatten(2).transpose(1, 2).numpy(), rtol=1e-12)


def test_the_loss_reaches_the_pixels_only_through_the_cls_token():
    model, _ = _pair()
    model.zero_grad()
    x = rg.tensor(np.random.default_rng(4).standard_normal((2, 2, 8, 8)), requires_grad=True)
    model(x).sum().backward()
    assert np.abs(model.cls_token.grad.numpy()).min() > 0
    assert np.abs(x.grad.numpy()).max() > 0


def test_a_fresh_model_predicts_uniformly():
    rg.manual_seed(0)
    model = vit_for(1, 8, 10)
    logits = model(rg.randn(4, 1, 8, 8))
    assert not logits.detach().numpy().any()   # zero-initialized head, as in the ViT paper


@pytest.mark.parametrize("channels, size, patch", [(1, 8, 2), (1, 28, 7), (3, 32, 8)])
def test_registry_sizes_the_model_for_each_data_set(channels, size, patch):
    rg.manual_seed(0)
    model = build_model("vit", channels, size, 10)
    assert "vit" in MODELS and model.patch_size == patch
    assert model.pos_embed.shape == (1, 17, 64)
    assert model(rg.randn(2, channels, size, size)).shape == (2, 10)


def test_a_few_steps_lower_the_loss_on_digits():
    rg.manual_seed(0)
    train_set, _, _ = load_image_data("digits")
    x, y = train_set.get_batch(np.arange(64))
    model = ViT(8, 2, 1, 10, d_model=32, depth=2, nhead=4)
    optimizer = rg.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert abs(losses[0] - np.log(10)) < 1e-6 and losses[-1] < 1.5


def test_trains_through_the_image_job(tmp_path):
    summary = train(TrainConfig(model="vit", data="digits", epochs=1, batch_size=32,
                                limit_train=64, progress=False, out=str(tmp_path / "vit")))
    assert np.isfinite(summary["history"][0]["train_loss"])
    assert 0.0 <= summary["test_acc"] <= 1.0
    assert (tmp_path / "vit" / "report.html").exists()


def test_errors():
    with pytest.raises(ValueError, match="patch_size 3 must divide image_size 8"):
        ViT(8, 3)
    model = ViT(8, 2, in_channels=1, d_model=8, depth=1, nhead=2)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 8, 8\), got "
                                         r"\(2, 1, 28, 28\)"):
        model(rg.zeros(2, 1, 28, 28))
