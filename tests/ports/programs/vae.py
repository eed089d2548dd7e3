"""A variational autoencoder: encoder to mu and log-variance, the reparameterization trick with
randn_like, a sigmoid decoder, the loss as binary cross-entropy summed plus the KL divergence,
Adam, and sampling from the prior under no_grad."""

import torch
from torch import nn, optim
from torch.nn import functional as F

device = torch.device("cpu")


class VAE(nn.Module):
    def __init__(self, features=36, hidden=24, latent=4):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, features)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 36))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 36), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def build():
    return {"model": VAE().to(device)}


def train(models):
    model = models["model"]
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    images = torch.bernoulli(torch.full((32, 1, 6, 6), 0.5))
    model.train()
    losses = []
    for epoch in range(2):
        train_loss = 0
        for batch_idx in range(4):
            data = images[batch_idx * 8:(batch_idx + 1) * 8].to(device)
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        losses.append(train_loss / len(images))
    model.eval()
    with torch.no_grad():
        sample = torch.randn(4, 4).to(device)
        sample = model.decode(sample).cpu()
    return {"losses": losses, "samples": sample.view(4, 1, 6, 6)}
