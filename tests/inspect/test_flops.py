"""FLOP counts of whole training steps (forward, loss, backward) of the two case studies, the
GPT and ResNet-8, by retrograd.inspect.FlopCounter:

- the GEMM FLOPs (matrix products, convolutions, attention's QK^T and AV) equal PyTorch's
  FlopCounterMode on the same architecture (tests/torch_gpt.py, tests/torch_resnet.py),
  forward and backward separately;
- all FLOPs equal the closed forms of docs/cost-model.md ('Whole training steps'), written
  here as gpt_step_flops and resnet8_step_flops, within 2%.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.inspect.flops import FlopCounter
from retrograd.models.gpt import GPT, GPTConfig
from retrograd.models.resnet import resnet8
from tests.torch_gpt import TorchGPT
from tests.torch_resnet import TorchBasicBlock, TorchResNet

GPT_CONFIG = dict(vocab_size=48, context=32, n_layer=2, n_head=4, d_model=64)
GPT_BATCH = 4
RESNET_BATCH, RESNET_SIZE, CLASSES = 4, 16, 10


def _gpt_batch(config):
    rng = np.random.default_rng(0)
    shape = (GPT_BATCH, config.context)
    return rng.integers(0, config.vocab_size, shape), rng.integers(0, config.vocab_size, shape)


def _image_batch():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((RESNET_BATCH, 3, RESNET_SIZE, RESNET_SIZE)).astype(np.float32),
            rng.integers(0, CLASSES, RESNET_BATCH))


def _counted_step(model, inputs, targets):
    """One training step of a retrograd model under FlopCounter: forward, mean
    cross-entropy over every position, backward."""
    with FlopCounter() as counter:
        logits = model(rg.tensor(inputs))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               rg.tensor(targets.reshape(-1)))
        loss.backward()
    return counter


def _torch_step_flops(model, inputs, targets):
    """(forward, backward) FLOPs of FlopCounterMode for the same step: forward alone under
    one counter, forward + backward under another, the difference is backward's."""

    def forward():
        logits = model(torch.as_tensor(inputs))
        return TF.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                torch.as_tensor(targets.reshape(-1)))

    with FlopCounterMode(display=False) as forward_only:
        forward()
    with FlopCounterMode(display=False) as both:
        forward().backward()
    return forward_only.get_total_flops(), both.get_total_flops() - forward_only.get_total_flops()


# ---------------------------------------------------------------------------- closed forms
# FLOPs per element of the elementwise ops in the two steps (docs/cost-model.md, 'Per
# element'): (forward, backward).
GELU_TANH = (9, 18)    # 0.5 x (1 + tanh(u)), u = c (x + a x^3); gelu'(x) with T recomputed
RELU = (1, 1)          # max(x, 0); dL/dy where x > 0 (a select)


def cross_entropy_flops(rows, classes):
    """Mean cross-entropy of (rows, classes) logits with class targets, fused with the
    log-softmax: forward max, x - max, exp, sum, divide (5*M*C - 2*M), log and -log p_t
    (2*M), the mean (M); backward dL/dy/M * (p - onehot) (2*M*C)."""
    return 5 * rows * classes + rows, 2 * rows * classes


def _linear(rows, inputs, outputs, bias=True):
    """(forward, backward) {gemm, all} of a Linear layer whose input needs a gradient."""
    gemm = 2 * rows * inputs * outputs
    return ({"gemm": gemm, "all": gemm + bias * rows * outputs},
            {"gemm": 2 * gemm, "all": 2 * gemm + bias * (rows - 1) * outputs})


def _layer_norm(rows, width):
    """(forward, backward) FLOPs of a LayerNorm with weight and bias (all inputs need a
    gradient): 5n + 3R + 2n; dL/dx 8n, dL/dgamma 2n - D, dL/dbeta n - D."""
    n = rows * width
    return 7 * n + 3 * rows, 11 * n - 2 * width


def _add(step, forward, backward):
    """Adds (forward, backward) {gemm, all} (or plain FLOP counts, all non-GEMM) to step."""
    for phase, part in zip(step, (forward, backward)):
        part = part if isinstance(part, dict) else {"gemm": 0, "all": part}
        for key in phase:
            phase[key] += part[key]


def _new_step():
    return {"gemm": 0, "all": 0}, {"gemm": 0, "all": 0}


# ---------------------------------------------------------------------------- the GPT
def gpt_step_flops(config, batch):
    """The closed form of one GPT training step (docs/cost-model.md, 'A GPT step'): returns
    (forward, backward), each {"gemm": ..., "all": ...}."""
    t, d, heads, vocab = config.context, config.d_model, config.n_head, config.vocab_size
    n = batch * t                                   # tokens
    scores, rows = batch * heads * t * t, batch * heads * t
    step = _new_step()
    # + positions; backward the scatter-add into wte (n*D) and wpe's sum over the batch
    _add(step, n * d, n * d + (batch - 1) * t * d)
    for _ in range(config.n_layer):
        for width_in, width_out in ((d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)):
            _add(step, *_linear(n, width_in, width_out))
        _add(step, *(2 * f for f in _layer_norm(n, d)))
        _add(step, 2 * n * d, 0)                                   # residual adds
        attention_gemm = 4 * batch * t * t * d                     # QK^T, AV; 2x backward
        _add(step, {"gemm": attention_gemm, "all": attention_gemm + 7 * scores - 2 * rows},
             {"gemm": 2 * attention_gemm,
              "all": 2 * attention_gemm + 2 * n * d - rows + 2 * scores + 2 * n * d})
        _add(step, *(f * 4 * n * d for f in GELU_TANH))
    _add(step, *_layer_norm(n, d))
    _add(step, *_linear(n, d, vocab, bias=False))
    _add(step, *cross_entropy_flops(n, vocab))
    return step


def _gpt_models():
    config = GPTConfig(**GPT_CONFIG)
    torch.manual_seed(0)
    return config, GPT(config), TorchGPT(config)


def test_gpt_step_gemm_flops_equal_torch_flop_counter():
    config, ours, theirs = _gpt_models()
    inputs, targets = _gpt_batch(config)
    counter = _counted_step(ours, inputs, targets)
    # FlopCounterMode counts F.scaled_dot_product_attention as 0 FLOPs on CPU (torch 2.13):
    # the MATH backend decomposes it into two bmm's forward (QK^T, AV) and four backward
    # (dL/dV, dP, dL/dQ, dL/dK), which it counts.
    with sdpa_kernel(SDPBackend.MATH):
        forward, backward = _torch_step_flops(theirs, inputs, targets)
    assert (counter.gemm_flops("forward"), counter.gemm_flops("backward")) == (forward, backward)
    expected = gpt_step_flops(config, GPT_BATCH)
    assert (forward, backward) == (expected[0]["gemm"], expected[1]["gemm"])


def test_gpt_step_flops_equal_the_closed_form():
    config, model, _ = _gpt_models()
    counter = _counted_step(model, *_gpt_batch(config))
    forward, backward = gpt_step_flops(config, GPT_BATCH)
    assert counter.total_flops("forward") == pytest.approx(forward["all"], rel=0.02)
    assert counter.total_flops("backward") == pytest.approx(backward["all"], rel=0.02)


# ---------------------------------------------------------------------------- ResNet-8
def _resnet_layers(size, widths):
    """(convs, blocks) of a CIFAR ResNet with one BasicBlock per stage: convs as (in, out,
    kernel, output side, whether dL/dx is computed), each followed by a batch norm; blocks
    as (channels, side), each with two ReLUs and one residual add."""
    convs, blocks, channels, side = [(3, widths[0], 3, size, False)], [], widths[0], size
    for stage, width in enumerate(widths):
        side = side // 2 if stage else side
        convs += [(channels, width, 3, side, True), (width, width, 3, side, True)]
        if channels != width:          # the 1x1 stride-2 shortcut
            convs.append((channels, width, 1, side, True))
        blocks.append((width, side))
        channels = width
    return convs, blocks


def resnet8_step_flops(batch, size, classes=CLASSES, widths=(16, 32, 64)):
    """The closed form of one ResNet-8 training step on (batch, 3, size, size) images
    (docs/cost-model.md, 'A ResNet-8 step'): returns (forward, backward), each
    {"gemm": ..., "all": ...}."""
    convs, blocks = _resnet_layers(size, widths)
    step = _new_step()
    for cin, cout, kernel, side, needs_x in convs:
        gemm, n, cells = 2 * batch * cout * side * side * cin * kernel * kernel, \
            batch * cout * side * side, batch * side * side * cin * kernel * kernel
        _add(step, {"gemm": gemm, "all": gemm},
             {"gemm": gemm * (1 + needs_x), "all": gemm * (1 + needs_x) + needs_x * cells})
        _add(step, 7 * n + 9 * cout, 7 * n + cout)     # batch norm, train, running stats
    relus = batch * widths[0] * size * size + sum(2 * batch * c * s * s for c, s in blocks)
    _add(step, *(f * relus for f in RELU))
    _add(step, sum(batch * c * s * s for c, s in blocks), 0)    # residual adds
    pooled = batch * widths[-1] * blocks[-1][1] ** 2
    _add(step, pooled, batch * widths[-1] + pooled)
    _add(step, *_linear(batch, widths[-1], classes))
    _add(step, *cross_entropy_flops(batch, classes))
    return step


def _resnet_models():
    torch.manual_seed(0)
    return resnet8(), TorchResNet(TorchBasicBlock, [1, 1, 1], 3)


def test_resnet8_step_gemm_flops_equal_torch_flop_counter():
    ours, theirs = _resnet_models()
    images, labels = _image_batch()
    counter = _counted_step(ours, images, labels)
    forward, backward = _torch_step_flops(theirs, images, labels)
    # the first conv computes no dL/dx (the images need none), in both
    assert (counter.gemm_flops("forward"), counter.gemm_flops("backward")) == (forward, backward)
    expected = resnet8_step_flops(RESNET_BATCH, RESNET_SIZE)
    assert (forward, backward) == (expected[0]["gemm"], expected[1]["gemm"])


def test_resnet8_step_flops_equal_the_closed_form():
    model, _ = _resnet_models()
    counter = _counted_step(model, *_image_batch())
    forward, backward = resnet8_step_flops(RESNET_BATCH, RESNET_SIZE)
    assert counter.total_flops("forward") == pytest.approx(forward["all"], rel=0.02)
    assert counter.total_flops("backward") == pytest.approx(backward["all"], rel=0.02)
