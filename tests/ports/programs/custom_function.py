"""The "defining new autograd functions" pattern: a custom torch.autograd.Function (the
Legendre polynomial P3, with its derivative written by hand in backward on Tensors), and a
PyTorch-style Function of the newer form (forward without ctx plus setup_context), fitted to
sin(x) with hand-written gradient-descent updates under no_grad."""

import math

import torch
import torch.nn as nn


class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


class ClampedSquare(torch.autograd.Function):
    @staticmethod
    def forward(input, limit):
        return input.clamp(-limit, limit) ** 2

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, limit = inputs
        ctx.limit = limit
        ctx.save_for_backward(input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        inside = (input.abs() <= ctx.limit).to(input.dtype)
        return grad_output * 2 * input.clamp(-ctx.limit, ctx.limit) * inside, None


class Polynomial(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.full((), 0.0))
        self.b = nn.Parameter(torch.full((), -1.0))
        self.c = nn.Parameter(torch.full((), 0.0))
        self.d = nn.Parameter(torch.full((), 0.3))

    def forward(self, x):
        P3 = LegendrePolynomial3.apply
        return self.a + self.b * P3(self.c + self.d * x)


def build():
    return {"model": Polynomial()}


def train(models):
    model = models["model"]
    x = torch.linspace(-math.pi, math.pi, 200)
    y = torch.sin(x)
    learning_rate = 5e-6
    losses = []
    for t in range(40):
        y_pred = model(x)
        loss = (y_pred - y).pow(2).sum() + 1e-3 * ClampedSquare.apply(model.d, 0.5)
        if t % 10 == 9:
            losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    return {"losses": losses, "fit": [p.item() for p in (model.a, model.b, model.c, model.d)]}
