"""retrograd.models.GPT's architecture written in PyTorch: the oracle of tests/models/test_gpt.py
and the PyTorch side of benchmarks/train_gpt.py. Parameter names match retrograd's, so a
retrograd state dict loads into it unchanged."""

import torch
import torch.nn.functional as TF
from torch import nn as tnn

__all__ = ["TorchGPT"]


class TorchAttention(tnn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = tnn.Linear(d, 3 * d)
        self.proj = tnn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class TorchMLP(tnn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc, self.proj = tnn.Linear(d, 4 * d), tnn.Linear(4 * d, d)

    def forward(self, x):
        return self.proj(TF.gelu(self.fc(x), approximate="tanh"))


class TorchBlock(tnn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1, self.attn = tnn.LayerNorm(d), TorchAttention(d, heads)
        self.ln_2, self.mlp = tnn.LayerNorm(d), TorchMLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TorchPositions(tnn.Module):
    def __init__(self, context, d):
        super().__init__()
        self.weight = tnn.Parameter(torch.zeros(context, d))


class TorchGPT(tnn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.wte = tnn.Embedding(config.vocab_size, d)
        self.wpe = TorchPositions(config.context, d)
        self.blocks = tnn.ModuleList([TorchBlock(d, config.n_head) for _ in range(config.n_layer)])
        self.ln_f = tnn.LayerNorm(d)
        self.head = tnn.Linear(d, config.vocab_size, bias=False)
        if config.tie_weights:
            self.head.weight = self.wte.weight

    def forward(self, idx):
        x = self.wte(idx) + self.wpe.weight[:idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
