"""A sequence-to-sequence model with attention: variable-length sequences padded with
pad_sequence, an embedding + GRU encoder, a GRU decoder with dot-product attention over the
encoder outputs (bmm, masked_fill, softmax), teacher forcing, a CrossEntropyLoss that ignores
the padding index, gradient clipping and greedy decoding."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

PAD, SOS, EOS = 0, 1, 2
VOCAB = 10


class Encoder(nn.Module):
    def __init__(self, vocab, emb, hidden):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.rnn = nn.GRU(emb, hidden, batch_first=True)

    def forward(self, src):
        outputs, hidden = self.rnn(self.embedding(src))
        return outputs, hidden


class AttnDecoder(nn.Module):
    def __init__(self, vocab, emb, hidden):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.rnn = nn.GRU(emb + hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden * 2, vocab)

    def forward(self, token, hidden, encoder_outputs, src_mask):
        embedded = self.embedding(token).unsqueeze(1)
        scores = torch.bmm(encoder_outputs, hidden[-1].unsqueeze(2)).squeeze(2)
        scores = scores.masked_fill(~src_mask, float("-inf"))
        weights = F.softmax(scores, dim=1)
        context = torch.bmm(weights.unsqueeze(1), encoder_outputs)
        output, hidden = self.rnn(torch.cat([embedded, context], dim=2), hidden)
        logits = self.out(torch.cat([output.squeeze(1), context.squeeze(1)], dim=1))
        return logits, hidden, weights


class Seq2Seq(nn.Module):
    def __init__(self, vocab=VOCAB, emb=8, hidden=12):
        super().__init__()
        self.encoder = Encoder(vocab, emb, hidden)
        self.decoder = AttnDecoder(vocab, emb, hidden)

    def forward(self, src, tgt):
        encoder_outputs, hidden = self.encoder(src)
        src_mask = src != PAD
        token = tgt[:, 0]
        logits = []
        for t in range(1, tgt.size(1)):
            step_logits, hidden, _ = self.decoder(token, hidden, encoder_outputs, src_mask)
            logits.append(step_logits)
            token = tgt[:, t]  # teacher forcing
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def greedy(self, src, max_len=6):
        encoder_outputs, hidden = self.encoder(src)
        src_mask = src != PAD
        token = torch.full((src.size(0),), SOS, dtype=torch.long)
        result = []
        for _ in range(max_len):
            logits, hidden, _ = self.decoder(token, hidden, encoder_outputs, src_mask)
            token = logits.argmax(dim=-1)
            result.append(token)
        return torch.stack(result, dim=1)


def make_batch(lengths):
    sources, targets = [], []
    for n in lengths:
        seq = torch.randint(3, VOCAB, (n,))
        sources.append(seq)
        targets.append(torch.cat([torch.tensor([SOS]), seq.flip(0), torch.tensor([EOS])]))
    src = pad_sequence(sources, batch_first=True, padding_value=PAD)
    tgt = pad_sequence(targets, batch_first=True, padding_value=PAD)
    return src, tgt


def build():
    return {"model": Seq2Seq()}


def train(models):
    model = models["model"]
    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses, norms = [], []
    for step in range(4):
        src, tgt = make_batch([5, 3, 4, 2])
        logits = model(src, tgt)
        loss = criterion(logits.reshape(-1, logits.size(-1)), tgt[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        norms.append(nn.utils.clip_grad_norm_(model.parameters(), 1.0).item())
        optimizer.step()
        losses.append(loss.item())
    src, _ = make_batch([4, 2])
    return {"losses": losses, "grad_norms": norms, "greedy": model.greedy(src)}
