"""The memory ledger against direct computations: the bytes a 2-layer GPT keeps for backward
equal the closed form of docs/memory-model.md, value by value; the step's peak lies within
15% of what tracemalloc measures; values are released when backward frees them and kept
under retain_graph; what the ledger reports reaches memory.txt and the run report."""

import gc
import tracemalloc

import numpy as np
import pytest

import retrograd as rg
from retrograd import _fast
from retrograd.inspect.memory import MemoryLedger, memory_report
from retrograd.models.gpt import GPT, GPTConfig
from retrograd.models.resnet import resnet8
from retrograd.nn import functional as F

F32, I64, BOOL = 4, 8, 1
# float32 convolutions by oneDNN (the 'fast' extra) save their input x itself for dL/dW, not
# X_col or X_row
CONV_SAVES_X = _fast.onednn("conv") is not None


def _token_loss(logits, target):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def gpt_saved_bytes(batch, context, width, heads, layers, vocab):
    """docs/memory-model.md's closed form for a GPT step (float32, no dropout, tied head)."""
    n = batch * context
    scores = batch * heads * context * context
    per_layer = (F32 * (17 * n * width + scores + 2 * n)     # see the doc's table
                 + BOOL * batch * heads * context)             # attention's saturated rows
    once = (I64 * n                                             # the embedding's indices
            + F32 * (n * width + n)                             # ln_f: x_hat, rstd
            + F32 * n * width                                   # the head's input
            + F32 * n * vocab + I64 * n + BOOL * n + F32 * n)   # the loss: p, t, valid, w_t
    return layers * per_layer + once


@pytest.mark.parametrize("batch, context, width, heads", [(4, 32, 64, 4), (2, 16, 32, 2)])
def test_a_two_layer_gpt_saves_the_closed_form(batch, context, width, heads):
    rg.manual_seed(0)
    config = GPTConfig(vocab_size=48, context=context, n_layer=2, n_head=heads,
                       d_model=width, dropout=0.0)
    ids = rg.randint(0, 48, (batch, context))
    report = memory_report(GPT(config), ids, target=ids, loss_fn=_token_loss)
    assert report.saved_bytes == gpt_saved_bytes(batch, context, width, heads, 2, 48)
    attention = {m: b for m, b in report.by_module().items() if m.endswith(".attn")}
    n, scores = batch * context, batch * heads * context * context
    assert attention == {f"blocks.{i}.attn": F32 * (4 * n * width + scores)
                         + BOOL * batch * heads * context for i in range(2)}


def _gpt_step():
    config = GPTConfig(vocab_size=48, context=64, n_layer=2, n_head=4, d_model=128)
    model = GPT(config)
    ids = rg.randint(0, 48, (8, 64))
    return model, lambda: _token_loss(model(ids), ids)


def _resnet_step():
    model = resnet8(num_classes=10)
    x, target = rg.randn(16, 3, 32, 32), rg.randint(0, 10, (16,))
    return model, lambda: F.cross_entropy(model(x), target)


def _measured_peak(model, step):
    """tracemalloc's peak of one forward and backward, above what was allocated before."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step().backward()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("build", [_gpt_step, _resnet_step], ids=["gpt", "resnet8"])
def test_the_peak_is_within_15_percent_of_tracemalloc(build):
    rg.manual_seed(0)
    model, step = build()
    step().backward()                       # warm: lazily made buffers exist before measuring
    model.zero_grad(set_to_none=True)
    measured = _measured_peak(model, step)
    gc.collect()
    with MemoryLedger(model) as ledger:
        step().backward()
    report = ledger.report()
    assert report.step_peak_bytes == pytest.approx(measured, rel=0.15)
    assert report.gradient_bytes == sum(p.numel() * F32 for p in model.parameters())


def test_saved_values_are_released_by_backward_and_kept_under_retain_graph():
    w = rg.randn(32, 32, requires_grad=True)
    x = rg.randn(64, 32)

    def final_saved(retain):
        with MemoryLedger() as ledger:
            (x @ w).tanh().sum().backward(retain_graph=retain)
        timeline = ledger.report().timeline
        return timeline[-1][3] - ledger.report().gradient_bytes
    tanh_output = x_bytes = 64 * 32 * F32
    assert final_saved(retain=False) == 0
    assert final_saved(retain=True) == x_bytes + tanh_output


def test_an_array_saved_twice_and_a_view_count_once():
    a = rg.randn(8, 16, requires_grad=True)
    with MemoryLedger() as ledger:
        y = a * 2.0                        # y is saved by both products below
        z = (y * y).sum() + (y[:4] * y[:4]).sum()
    report = ledger.report()
    assert report.saved_bytes == 8 * 16 * F32           # y, once: its slices are views of it
    assert [v.op for v in report.saved] == ["Mul"]
    del z


def test_parameters_count_as_resident_not_as_saved():
    layer = rg.nn.Linear(16, 8)
    optimizer = rg.optim.Adam(layer.parameters())
    layer(rg.randn(4, 16)).sum().backward()
    optimizer.step()
    params = (16 * 8 + 8) * F32
    with MemoryLedger(layer, optimizer) as ledger:
        layer(rg.randn(4, 16)).sum().backward()
    report = ledger.report()
    steps = 2 * F32                                     # Adam's step count per parameter
    assert report.resident == params * 4 + steps        # weights, grads, Adam's two moments
    assert report.saved_bytes == 4 * 16 * F32           # the input only, not the weight
    assert report.gradient_bytes == 0                   # the gradients existed already


def test_the_table_names_modules_and_the_peak():
    rg.manual_seed(0)
    model = rg.nn.Sequential(rg.nn.Linear(8, 32), rg.nn.ReLU(), rg.nn.Linear(32, 2))
    report = memory_report(model, rg.randn(16, 8),
                           target=rg.tensor(np.zeros(16, dtype=np.int64)),
                           loss_fn=F.cross_entropy)
    text = report.table()
    assert "Relu" in text and "Peak:" in text and "during backward" in text
    assert report.table(row_limit=1).count("\n") < text.count("\n")
    assert "more rows" in report.table(row_limit=1)


def test_the_gpt_blocks_closed_form_is_printed_beside_the_measured_bytes():
    rg.manual_seed(0)
    batch, context, width, heads = 2, 16, 32, 2
    config = GPTConfig(vocab_size=48, context=context, n_layer=2, n_head=heads, d_model=width)
    ids = rg.randint(0, 48, (batch, context))
    report = memory_report(GPT(config), ids, target=ids, loss_fn=_token_loss)
    n = batch * context
    block = F32 * (17 * n * width + batch * heads * context ** 2 + 2 * n) \
        + BOOL * batch * heads * context
    assert {p: e[0] for p, e in report.estimates.items()} == {"blocks.0": block,
                                                              "blocks.1": block}
    assert report.measured_under("blocks.0") == report.measured_under("blocks.1") == block
    assert "Closed form beside measured" in report.table()


def test_the_residual_blocks_closed_form_is_the_im2col_count():
    from retrograd.models.resnet import BasicBlock
    block = BasicBlock(16, 32, stride=2)
    report = memory_report(block, rg.randn(4, 16, 8, 8, requires_grad=True))
    n = 4 * 32 * 4 * 4                                  # an activation: (4, 32, 4, 4)
    x_cols = 16 * 9 * 4 * 4 * 4 + 32 * 9 * 4 * 4 * 4 + 16 * 4 * 4 * 4   # conv1, conv2, 1x1
    expected = F32 * (x_cols + 3 * (n + 32) + 2 * n)    # three batch norms, two ReLUs
    assert report.estimates[""][0] == expected
    if CONV_SAVES_X:     # the block's input (conv1 and the 1x1 share it); conv2's is the ReLU's
        assert report.measured_under("") == F32 * (4 * 16 * 8 * 8 + 3 * (n + 32) + 2 * n)
    else:
        assert report.measured_under("") == expected    # every conv here saves X_col
    # at stride 1 with 16 channels retrograd's convs save kh x the padded input instead
    same = memory_report(BasicBlock(16, 16), rg.randn(4, 16, 8, 8, requires_grad=True))
    n, padded_rows = 4 * 16 * 8 * 8, 16 * 3 * (4 * 8 * 10 + 2)     # (C kh, N Ho Wp + kw - 1)
    assert same.estimates[""][0] == F32 * (2 * 16 * 9 * 4 * 8 * 8 + 2 * (n + 16) + 2 * n)
    saved_by_convs = n if CONV_SAVES_X else 2 * padded_rows
    assert same.measured_under("") == F32 * (saved_by_convs + 2 * (n + 16) + 2 * n)


def test_categories_and_the_optimizer_step_in_the_timeline():
    layer = rg.nn.Linear(16, 8)
    optimizer = rg.optim.Adam(layer.parameters())
    params = (16 * 8 + 8) * F32
    report = memory_report(layer, rg.randn(4, 16), optimizer=optimizer)
    assert report.by_category() == {"parameters": params, "gradients": params,
                                    "optimizer state": 2 * params + 2 * F32,
                                    "saved activations": 4 * 16 * F32}
    phase, name, _, total = report.timeline[-1]
    assert (phase, name) == ("optimizer", "Adam.step")
    assert total == params + params + 2 * params + 2 * F32   # saved values freed by now


def test_a_function_can_be_measured_and_bad_input_is_named():
    w = rg.randn(8, 8, requires_grad=True)
    report = memory_report(lambda x: (x @ w).relu(), rg.randn(4, 8))
    assert report.saved_bytes == 2 * 4 * 8 * F32         # x, and the ReLU's output
    with pytest.raises(TypeError, match="memory_report: expected a Module or a function"):
        memory_report(3, rg.randn(2))
    with pytest.raises(TypeError, match="memory_report: the step returned float"):
        memory_report(lambda x: 1.0, rg.randn(2))


@pytest.mark.parametrize("norm_first, activation, dropout, shape, batch_first", [
    (False, "relu", 0.0, (3, 5, 16), True), (True, "gelu", 0.0, (3, 5, 16), True),
    (False, "relu", 0.1, (5, 3, 16), False), (True, "gelu", 0.1, (3, 5, 16), True),
    (False, "gelu", 0.0, (5, 16), True)])
def test_the_encoder_layers_closed_form_equals_what_it_saves(norm_first, activation, dropout,
                                                             shape, batch_first):
    rg.manual_seed(0)
    layer = rg.nn.TransformerEncoderLayer(16, 2, 32, dropout=dropout, activation=activation,
                                          batch_first=batch_first, norm_first=norm_first)
    x = rg.randn(*shape, requires_grad=True)
    report = memory_report(lambda inputs: layer(inputs), x, model=layer)
    batch = shape[0] if batch_first and len(shape) == 3 else 1 if len(shape) == 2 else shape[1]
    tokens, scores = batch * 5, batch * 2 * 5 * 5
    ffn_saves = 3 if dropout else {"relu": 1, "gelu": 2}[activation]
    expected = F32 * (tokens * (9 * 16 + 2) + ffn_saves * tokens * 32
                      + (1 + bool(dropout)) * scores + bool(dropout) * 2 * tokens * 16)
    assert report.estimates[""][0] == expected
    assert report.measured_under("") == report.saved_bytes == report.estimates[""][0]
    # the in-projection's slices of in_proj_weight are the parameter's, not saved values
    assert all(v.shape != (16, 16) for v in report.saved)


def test_the_residual_blocks_closed_form_without_batch_norm():
    from retrograd.models.resnet import BasicBlock
    report = memory_report(BasicBlock(16, 32, stride=2, batch_norm=False),
                           rg.randn(4, 16, 8, 8, requires_grad=True))
    n = 4 * 32 * 4 * 4
    x_cols = 16 * 9 * 4 * 4 * 4 + 32 * 9 * 4 * 4 * 4 + 16 * 4 * 4 * 4
    assert report.estimates[""][0] == F32 * (x_cols + 2 * n)
    saved_by_convs = 4 * 16 * 8 * 8 if CONV_SAVES_X else x_cols
    assert report.measured_under("") == F32 * (saved_by_convs + 2 * n)
