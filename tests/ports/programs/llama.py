"""A LLaMA-style decoder: RMSNorm, rotary position embeddings computed with torch.outer and
applied by rotate-half, grouped-query attention (key/value heads repeated with
repeat_interleave) through F.scaled_dot_product_attention(is_causal=True), a SwiGLU MLP,
gradient accumulation, AdamW with a cosine schedule, and greedy decoding."""

import torch
import torch.nn as nn
import torch.nn.functional as F

dim, n_layers, n_heads, n_kv_heads, vocab_size, max_seq_len = 16, 2, 4, 2, 11, 12
head_dim = dim // n_heads


def precompute_rope(seq_len, theta=10000.0):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2) / head_dim))
    freqs = torch.outer(torch.arange(seq_len), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wk = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.wv = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=False)

    def forward(self, x, cos, sin):
        bsz, seqlen, _ = x.shape
        q = self.wq(x).view(bsz, seqlen, n_heads, head_dim).transpose(1, 2)
        k = self.wk(x).view(bsz, seqlen, n_kv_heads, head_dim).transpose(1, 2)
        v = self.wv(x).view(bsz, seqlen, n_kv_heads, head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k = k.repeat_interleave(n_heads // n_kv_heads, dim=1)
        v = v.repeat_interleave(n_heads // n_kv_heads, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(out.transpose(1, 2).contiguous().view(bsz, seqlen, -1))


class FeedForward(nn.Module):
    def __init__(self, hidden_dim=40):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention_norm = nn.RMSNorm(dim, eps=1e-5)
        self.attention = Attention()
        self.ffn_norm = nn.RMSNorm(dim, eps=1e-5)
        self.feed_forward = FeedForward()

    def forward(self, x, cos, sin):
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab_size, dim)
        self.layers = nn.ModuleList(TransformerBlock() for _ in range(n_layers))
        self.norm = nn.RMSNorm(dim, eps=1e-5)
        self.output = nn.Linear(dim, vocab_size, bias=False)
        self.output.weight = self.tok_embeddings.weight
        cos, sin = precompute_rope(max_seq_len)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, tokens, targets=None):
        seqlen = tokens.shape[1]
        h = self.tok_embeddings(tokens)
        cos, sin = self.rope_cos[:seqlen].to(h.dtype), self.rope_sin[:seqlen].to(h.dtype)
        for layer in self.layers:
            h = layer(h, cos, sin)
        logits = self.output(self.norm(h))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, vocab_size), targets.reshape(-1))

    @torch.no_grad()
    def generate(self, tokens, steps):
        for _ in range(steps):
            logits, _ = self(tokens[:, -max_seq_len:])
            next_token = torch.argmax(logits[:, -1], dim=-1, keepdim=True)
            tokens = torch.cat([tokens, next_token], dim=1)
        return tokens


def build():
    return {"model": Transformer()}


def train(models):
    model = models["model"]
    data = torch.randint(0, vocab_size, (16, 9))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.1,
                                  betas=(0.9, 0.95), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4, eta_min=5e-4)
    accumulation_steps = 2
    losses = []
    for step in range(4):
        optimizer.zero_grad(set_to_none=True)
        for micro in range(accumulation_steps):
            rows = data[(step * 2 + micro) % 4 * 4:][:4]
            _, loss = model(rows[:, :-1], rows[:, 1:])
            (loss / accumulation_steps).backward()
            losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    model.eval()
    return {"losses": losses, "generated": model.generate(data[:2, :3], 5)}
