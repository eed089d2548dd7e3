"""A textbook training loop: an MLP classifier with device handling, a DataLoader, an
evaluation pass under no_grad, a learning-rate schedule and a checkpoint saved and reloaded."""

import io

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.backends.cudnn.benchmark = True


class Net(nn.Module):
    def __init__(self, in_features=20, hidden=32, classes=4):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(0.25)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


def make_loaders():
    x = torch.randn(96, 20)
    y = (x[:, :4].argmax(dim=1) + (x[:, 4] > 1.0).long()) % 4
    train_set = TensorDataset(x[:64], y[:64])
    test_set = TensorDataset(x[64:], y[64:])
    train_loader = DataLoader(train_set, batch_size=16, shuffle=True, pin_memory=True)
    test_loader = DataLoader(test_set, batch_size=32, shuffle=False)
    return train_loader, test_loader


def evaluate(model, loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.cross_entropy(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    return test_loss / len(loader.dataset), correct / len(loader.dataset)


def build():
    return {"model": Net().to(device)}


def train(models):
    model = models["model"]
    train_loader, test_loader = make_loaders()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    criterion = nn.CrossEntropyLoss()
    losses, evaluations = [], []
    for epoch in range(2):
        model.train()
        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device, non_blocking=True), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        evaluations.append(evaluate(model, test_loader))

    buffer = io.BytesIO()
    torch.save({"epoch": 2, "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, map_location=device, weights_only=True)
    restored = Net().to(device)
    restored.load_state_dict(checkpoint["model_state_dict"])
    restored.eval()
    model.eval()
    x = torch.randn(5, 20, device=device)
    with torch.no_grad():
        same = torch.equal(restored(x), model(x))
    return {"losses": losses, "evaluations": evaluations, "lr": scheduler.get_last_lr(),
            "restored_equal": same, "epoch": checkpoint["epoch"]}
