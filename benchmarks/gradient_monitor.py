"""What GradientMonitor costs a training step: the digits ResNet (``retrograd train``'s default
model, batch 32, SGD with Nesterov momentum) with and without ``with monitor.step():``.

Steps with and without the monitor alternate one by one (which comes first alternates too),
so that a change of the machine's speed (other processes on a shared machine) falls on both;
the monitor at ``every`` records one of every ``every`` steps it sees. A round is ``every``
steps of each; printed are the medians over rounds of the time per step of both, the median
of the rounds' ratios (the cost of the monitor, its recorded and unrecorded steps together),
and the median time of a recorded step alone.

    python benchmarks/gradient_monitor.py [--rounds 5] [--every 50] [--threads 2]
"""

import argparse
import statistics
import time

import retrograd as rg
from retrograd import optim
from retrograd.inspect import GradientMonitor
from retrograd.inspect.gradient_flow import DEFAULT_EVERY
from retrograd.models import build_model
from retrograd.nn import functional as F
from retrograd.training.image import DATA_DEFAULTS, load_image_data
from retrograd.utils.data import DataLoader


def _batches(batch_size):
    train_set, _, info = load_image_data("digits")
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True)
    return [(x, y) for x, y in loader], info


def _train_step(model, optimizer, x, y):
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


def _timed_step(model, optimizer, batch, monitor=None):
    """Seconds of one training step, inside ``monitor.step()`` when a monitor is given."""
    begin = time.perf_counter()
    if monitor is None:
        _train_step(model, optimizer, *batch)
    else:
        with monitor.step():
            _train_step(model, optimizer, *batch)
    return time.perf_counter() - begin


def _round(model, optimizer, batches, start, monitor):
    """(seconds per step without, with the monitor, [seconds of its recorded steps]) over
    monitor.every pairs of steps."""
    plain, monitored, recorded = 0.0, 0.0, []
    for i in range(start, start + monitor.every):
        batch = batches[i % len(batches)]
        due = monitor.recording()
        # NOTE: a recorded step (i a multiple of every) goes first: the monitor's hooks are on
        # from when it is made (for record()'s first step) until its first step ends.
        for with_monitor in ((True, False) if i % 2 == 0 else (False, True)):
            seconds = _timed_step(model, optimizer, batch, monitor if with_monitor else None)
            if not with_monitor:
                plain += seconds
                continue
            monitored += seconds
            if due:
                recorded.append(seconds)
    return plain / monitor.every, monitored / monitor.every, recorded


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        print("threadpoolctl not installed: BLAS uses its default threads")

    rg.manual_seed(0)
    defaults = DATA_DEFAULTS["digits"]
    batches, info = _batches(defaults["batch_size"])
    model = build_model(defaults["model"], info["in_channels"], info["image_size"],
                        info["num_classes"])
    optimizer = optim.SGD(model.parameters(), lr=defaults["lr"], momentum=0.9, nesterov=True,
                          weight_decay=defaults["weight_decay"])
    for i in range(10):                                            # warm-up
        _timed_step(model, optimizer, batches[i])
    monitor = GradientMonitor(model, every=args.every)
    plain, monitored, ratios, recorded = [], [], [], []
    for r in range(args.rounds):
        without, with_, times = _round(model, optimizer, batches, r * args.every, monitor)
        plain.append(without)
        monitored.append(with_)
        ratios.append(with_ / without)
        recorded += times
    monitor.close()

    base, with_monitor = statistics.median(plain), statistics.median(monitored)
    print(f"digits ResNet ({defaults['model']}), batch {defaults['batch_size']}, "
          f"{args.rounds} rounds of {args.every} steps with and {args.every} without, "
          f"every={args.every}")
    print(f"  without the monitor: {base * 1e3:8.2f} ms/step (median over rounds)")
    print(f"  with the monitor:    {with_monitor * 1e3:8.2f} ms/step")
    print(f"  a recorded step:     {statistics.median(recorded) * 1e3:8.2f} ms "
          f"({statistics.median(recorded) / base:.2f}x a step without the monitor)")
    print(f"  ratio with / without: {statistics.median(ratios):.3f} (median of the rounds' "
          f"ratios: {', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
