"""LeNet on the full MNIST: retrograd's `retrograd train` job against the same model,
hyperparameters and data in PyTorch, in one run.

    python benchmarks/train_mnist.py [--data ../shared/data/mnist] [--epochs 2]

Prints both test accuracies (official 10,000 test images) and wall times (float32; PyTorch
with 2 threads). The acceptance target for retrograd is >= 98.5% after 2 epochs.
"""

import argparse
import math
import os
import time

import numpy as np

DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


def run_retrograd(data_dir, epochs, out):
    from retrograd.training.image import TrainConfig, train

    start = time.perf_counter()
    summary = train(TrainConfig(data=f"mnist:{data_dir}", model="lenet", epochs=epochs,
                                out=out, progress=False))
    return summary["test_acc"], time.perf_counter() - start, summary["history"]


def _torch_lenet(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(50 * 5 * 5, 500), nn.ReLU(), nn.Linear(500, 10))


def run_torch(data_dir, epochs, config):
    import torch

    from retrograd.datasets import MNIST

    torch.set_num_threads(2)
    torch.manual_seed(0)
    mean, std = 0.1307, 0.3081

    def arrays(train):
        ds = MNIST(data_dir, train=train)
        x = (ds.data.astype(np.float32) / 255.0 - mean) / std
        return torch.from_numpy(x[:, None]), torch.from_numpy(ds.targets.astype(np.int64))

    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = arrays(True), arrays(False)
    model = _torch_lenet(torch)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9, nesterov=True,
                          weight_decay=config["weight_decay"])
    batch = config["batch_size"]
    steps_per_epoch = math.ceil(len(x_train) / batch)
    warmup = int(round(config["warmup_epochs"] * steps_per_epoch))
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, 0.1, 1.0, total_iters=warmup),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup)], [warmup])
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x_train)).split(batch):
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    return acc, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-mnist-lenet")
    args = parser.parse_args()

    from retrograd.training.image import DATA_DEFAULTS

    config = DATA_DEFAULTS["mnist"]
    rg_acc, rg_time, history = run_retrograd(args.data, args.epochs, args.out)
    pt_acc, pt_time = run_torch(args.data, args.epochs, config)
    print(f"LeNet on MNIST, {args.epochs} epochs, batch {config['batch_size']}, SGD lr "
          f"{config['lr']} (nesterov, cosine with warmup), float32")
    print(f"{'':12}{'test acc':>10}{'wall s':>10}")
    print(f"{'retrograd':12}{rg_acc:10.4f}{rg_time:10.1f}")
    print(f"{'PyTorch':12}{pt_acc:10.4f}{pt_time:10.1f}")
    print(f"time ratio retrograd / PyTorch: {rg_time / pt_time:.2f}")
    for h in history:
        print(f"  retrograd epoch {h['epoch']}: test acc {h['test_acc']:.4f}, "
              f"{h['samples_per_s']:,.0f} img/s")


if __name__ == "__main__":
    main()
