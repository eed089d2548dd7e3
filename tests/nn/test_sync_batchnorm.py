"""SyncBatchNorm (retrograd/nn/sync_batchnorm.py) and its global-batch forward
(retrograd/nn/functional/sync_batch_norm.py).

In one process (a world of one, and without a process group) the layer must be BatchNorm:
compared with retrograd's BatchNorm1d/2d/3d and with torch.nn.BatchNorm2d (outputs, input and
parameter gradients, running statistics). The global-batch forward is checked in one process
too, against torch and by finite differences. Under mpiexec (2 and 3 processes) each rank's
slice of a global batch must give the slice of single-process batch norm's output and
gradients, and the digits ResNet converted with convert_sync_batchnorm and wrapped in
DistributedDataParallel must train as one process trains the unconverted model on the
concatenated batch."""

import copy

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.distributed as dist
from retrograd.nn.functional.sync_batch_norm import sync_batch_norm
from tests.distributed._mpi import needs_mpi, rank_reports, run_mpi
from tests.oracle import GRADCHECK_TOLERANCES, randn


@pytest.fixture
def world_of_one():
    dist.init_process_group("mpi")
    yield
    dist.destroy_process_group()


def _random_affine(*layers, seed=0):
    """The same random weight and bias in every layer (retrograd or torch)."""
    rng = np.random.default_rng(seed)
    weight, bias = rng.standard_normal(layers[0].num_features), rng.standard_normal(
        layers[0].num_features)
    for layer in layers:
        if isinstance(layer, torch.nn.Module):
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(weight))
                layer.bias.copy_(torch.from_numpy(bias))
        else:
            with rg.no_grad():
                layer.weight.copy_(rg.tensor(weight))
                layer.bias.copy_(rg.tensor(bias))


def _run(layer, x, cotangent):
    """(output, input gradient, {parameter name: gradient}) of one forward and backward."""
    if isinstance(layer, torch.nn.Module):
        tx = torch.tensor(x, requires_grad=True)
        y = layer(tx)
        y.backward(torch.tensor(cotangent, dtype=y.dtype))
        grads = {n: p.grad.numpy().copy() for n, p in layer.named_parameters()}
        layer.zero_grad()
        return y.detach().numpy(), tx.grad.numpy(), grads
    rx = rg.tensor(x, requires_grad=True)
    y = layer(rx)
    y.backward(rg.tensor(cotangent).to(y.dtype))
    grads = {n: p.grad.numpy().copy() for n, p in layer.named_parameters()}
    layer.zero_grad()
    return y.detach().numpy(), rx.grad.numpy(), grads


def _assert_same_run(ours, theirs, tolerance):
    (y, dx, grads), (want_y, want_dx, want_grads) = ours, theirs
    np.testing.assert_allclose(y, want_y, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(dx, want_dx, rtol=tolerance, atol=tolerance)
    assert list(grads) == list(want_grads) == ["weight", "bias"]
    for name in grads:
        np.testing.assert_allclose(grads[name], want_grads[name], rtol=tolerance,
                                   atol=tolerance, err_msg=name)


def _assert_same_buffers(ours, theirs, tolerance):
    state, want = ours.state_dict(), theirs.state_dict()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        got, expected = state[name].numpy(), want[name]
        expected = expected.numpy() if isinstance(expected, torch.Tensor) else expected.numpy()
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance, err_msg=name)


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_world_of_one_equals_batch_norm_2d_and_torch(world_of_one, dtype, tolerance, momentum):
    sync = rg.nn.SyncBatchNorm(4, momentum=momentum, dtype=getattr(rg, dtype))
    ours = rg.nn.BatchNorm2d(4, momentum=momentum, dtype=getattr(rg, dtype))
    theirs = torch.nn.BatchNorm2d(4, momentum=momentum, dtype=getattr(torch, dtype))
    _random_affine(sync, ours, theirs)
    for step in range(3):   # the running statistics move, then eval mode uses them
        if step == 2:
            for layer in (sync, ours, theirs):
                layer.eval()
        x = (randn(6, 4, 3, 5, seed=step) * 2 + 1).astype(dtype)
        cotangent = randn(6, 4, 3, 5, seed=10 + step).astype(x.dtype)
        got = _run(sync, x, cotangent)
        # retrograd's BatchNorm2d: the very same numbers
        _assert_same_run(got, _run(ours, x, cotangent), 0.0)
        _assert_same_run(got, _run(theirs, x, cotangent), tolerance)
        _assert_same_buffers(sync, ours, 0.0)
        _assert_same_buffers(sync, theirs, tolerance)
    assert int(sync.num_batches_tracked) == 2


@pytest.mark.parametrize("name, shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                         ("BatchNorm2d", (4, 3, 2, 5)),
                                         ("BatchNorm3d", (2, 3, 2, 3, 4))])
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"track_running_stats": False},
                                    {"momentum": None, "eps": 1e-2}])
def test_without_a_process_group_it_is_batch_norm(name, shape, kwargs):
    assert not dist.is_initialized()
    sync = rg.nn.SyncBatchNorm(shape[1], dtype=rg.float64, **kwargs)
    ours = getattr(rg.nn, name)(shape[1], dtype=rg.float64, **kwargs)
    for step, training in enumerate((True, True, False)):
        sync.train(training), ours.train(training)
        x = randn(*shape, seed=step) * 3 - 1
        cotangent = randn(*shape, seed=20 + step)
        (y, dx, grads), (want_y, want_dx, want_grads) = (_run(sync, x, cotangent),
                                                         _run(ours, x, cotangent))
        np.testing.assert_array_equal(y, want_y)
        np.testing.assert_array_equal(dx, want_dx)
        assert grads.keys() == want_grads.keys()
        for key in grads:
            np.testing.assert_array_equal(grads[key], want_grads[key])
        for key, value in ours.state_dict().items():
            np.testing.assert_array_equal(sync.state_dict()[key].numpy(), value.numpy())
    assert list(sync.state_dict()) == list(ours.state_dict())


CHANNELS = 3


@pytest.mark.parametrize("shape", [(7, CHANNELS), (4, CHANNELS, 5), (3, CHANNELS, 2, 4),
                                   (2, CHANNELS, 2, 3, 2)])
def test_global_batch_forward_matches_torch(world_of_one, shape):
    """The all-reduce path itself (the layer takes it only on several ranks), in one
    process: torch's training-mode batch_norm, gradients and running statistics."""
    x, cotangent = randn(*shape, seed=1) * 2 + 0.5, randn(*shape, seed=2)
    weight, bias = randn(CHANNELS, seed=3), randn(CHANNELS, seed=4)
    mean, var = randn(CHANNELS, seed=5), randn(CHANNELS, seed=6, low=0.5)
    inputs = [rg.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    buffers = [rg.tensor(mean), rg.tensor(var)]
    y = sync_batch_norm(inputs[0], *buffers, inputs[1], inputs[2], momentum=0.3, eps=1e-3)
    y.backward(rg.tensor(cotangent))
    t_inputs = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    t_buffers = [torch.tensor(mean), torch.tensor(var)]
    t_y = torch.nn.functional.batch_norm(t_inputs[0], *t_buffers, t_inputs[1], t_inputs[2],
                                         training=True, momentum=0.3, eps=1e-3)
    t_y.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(y.detach().numpy(), t_y.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    for ours, theirs in [*zip(inputs, t_inputs)]:
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-11,
                                   atol=1e-12)
    for ours, theirs in zip(buffers, t_buffers):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-13, atol=1e-14)
    assert not np.allclose(buffers[0].numpy(), mean)   # they moved


def test_global_batch_forward_passes_gradcheck(world_of_one):
    x = rg.tensor(randn(3, 2, 4, seed=7), requires_grad=True)
    weight = rg.tensor(randn(2, seed=8), requires_grad=True)
    bias = rg.tensor(randn(2, seed=9), requires_grad=True)
    cotangent = rg.tensor(randn(3, 2, 4, seed=10))
    assert rg.autograd.gradcheck(
        lambda a, w, b: sync_batch_norm(a, None, None, w, b, eps=1e-2) * cotangent,
        (x, weight, bias), **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_global_batch_forward_in_low_precision(world_of_one, dtype):
    """float16 and bfloat16 are normalized in float32 and rounded once back, as
    F.batch_norm does: the same values to the output dtype's rounding."""
    x = rg.tensor(randn(5, 3, 4, seed=11) * 3 + 2).to(getattr(rg, dtype))
    weight, bias = (rg.tensor(randn(3, seed=s)).to(getattr(rg, dtype)) for s in (12, 13))
    y = sync_batch_norm(x, None, None, weight, bias)
    want = rg.nn.functional.batch_norm(x, None, None, weight, bias, training=True)
    assert y.dtype == want.dtype == getattr(rg, dtype)
    spacing = {"float16": 2e-3, "bfloat16": 2e-2, "float32": 1e-6}[dtype]
    np.testing.assert_allclose(y.float().numpy(), want.float().numpy(), rtol=spacing,
                               atol=spacing)


def test_eval_mode_uses_running_statistics_and_matches_torch(world_of_one):
    sync = rg.nn.SyncBatchNorm(3, dtype=rg.float64)
    theirs = torch.nn.SyncBatchNorm(3, dtype=torch.float64)  # no torch process group: local
    _random_affine(sync, theirs)
    with rg.no_grad():
        sync.running_mean.copy_(rg.tensor(randn(3, seed=1)))
        sync.running_var.copy_(rg.tensor(randn(3, seed=2, low=0.2)))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in
                            sync.state_dict().items()})
    sync.eval(), theirs.eval()
    x, cotangent = randn(2, 3, 4, 4, seed=3), randn(2, 3, 4, 4, seed=4)
    _assert_same_run(_run(sync, x, cotangent), _run(theirs, x, cotangent), 1e-12)
    _assert_same_buffers(sync, theirs, 0.0)    # eval mode leaves them alone
    y = sync(rg.tensor(x)).detach().numpy()
    scale = sync.weight.detach().numpy() / np.sqrt(sync.running_var.numpy() + sync.eps)
    shift = sync.bias.detach().numpy() - sync.running_mean.numpy() * scale
    np.testing.assert_allclose(y, x * scale[:, None, None] + shift[:, None, None], rtol=1e-12,
                               atol=1e-12)


def test_eval_mode_without_running_statistics_normalizes_with_the_batch(world_of_one):
    sync = rg.nn.SyncBatchNorm(3, affine=False, track_running_stats=False).eval()
    y = sync(rg.tensor(randn(4, 3, 5, seed=5) * 4 + 3)).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1.0, rtol=1e-3)


def test_sequential_does_not_fuse_it_with_relu():
    """The fused BatchNorm + ReLU op normalizes with the local batch: not for this layer."""
    from retrograd.nn.container import fuses_with_relu

    assert fuses_with_relu(rg.nn.BatchNorm2d(3), rg.nn.ReLU())
    assert not fuses_with_relu(rg.nn.SyncBatchNorm(3), rg.nn.ReLU())


def test_the_arguments_are_pytorchs():
    import inspect

    ours = inspect.signature(rg.nn.SyncBatchNorm.__init__).parameters
    theirs = inspect.signature(torch.nn.SyncBatchNorm.__init__).parameters
    assert list(ours) == list(theirs)
    assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]
    assert repr(rg.nn.SyncBatchNorm(5)) == repr(torch.nn.SyncBatchNorm(5))
    assert list(rg.nn.SyncBatchNorm(5).state_dict()) == list(
        torch.nn.SyncBatchNorm(5).state_dict())


@pytest.mark.parametrize("shape, match", [
    ((3,), r"SyncBatchNorm: expected at least 2D input \(N, C, \*\) \(got 1D input of shape "
           r"\(3,\)\)"),
    ((4, 5, 2), r"SyncBatchNorm\(3, .*\): weight of shape \(3,\) does not match the 5 "
                r"channels of the input of shape \(4, 5, 2\)"),
])
@pytest.mark.parametrize("initialized", [False, True])
def test_bad_inputs_name_the_layer_and_the_shapes(shape, match, initialized):
    if initialized:
        dist.init_process_group("mpi")
    try:
        with pytest.raises(ValueError, match=match):
            rg.nn.SyncBatchNorm(3)(rg.randn(*shape))
    finally:
        if initialized:
            dist.destroy_process_group()


def test_global_batch_forward_errors_name_the_owner_and_the_shapes(world_of_one):
    layer = rg.nn.SyncBatchNorm(3)
    cases = [
        (rg.randn(4, 5, 2), dict(owner=layer), r"SyncBatchNorm\(3, .*\): weight of shape "
                                               r"\(3,\) does not match the 5 channels"),
        (rg.randn(1, 3), {}, r"sync_batch_norm: Expected more than 1 value per channel when "
                             r"training, got 1 in the global batch \(input of shape \(1, 3\) "
                             r"on rank 0 of 1\)"),
        (rg.randn(0, 3, 2), {}, r"got 0 in the global batch"),
        (rg.randn(4, 0), {}, r"sync_batch_norm: the number of input channels must be non-zero"),
        (rg.randn(4), {}, r"sync_batch_norm: expected an input with at least 2 dims"),
    ]
    for x, kwargs, match in cases:
        weight = layer.weight if kwargs else None
        with pytest.raises(ValueError, match=match):
            sync_batch_norm(x, None, None, weight, **kwargs)
    with pytest.raises(ValueError, match="only the default process group"):
        rg.nn.SyncBatchNorm(3, process_group="gloo-group")


class _Net(rg.nn.Module):
    """Batch norms at several depths and of every kind, beside layers that stay."""

    def __init__(self):
        super().__init__()
        self.entry = rg.nn.BatchNorm3d(2, eps=1e-3)
        self.stem = rg.nn.Sequential(rg.nn.Conv2d(2, 4, 3, padding=1), rg.nn.BatchNorm2d(4),
                                     rg.nn.ReLU())
        self.blocks = rg.nn.ModuleList([
            rg.nn.Sequential(rg.nn.Conv2d(4, 4, 1), rg.nn.BatchNorm2d(4, affine=False)),
            rg.nn.BatchNorm2d(4, momentum=None, bias=False)])
        self.head = rg.nn.Linear(4, 3)
        self.out = rg.nn.BatchNorm1d(3, momentum=0.5, track_running_stats=False)

    def forward(self, x):
        x = self.entry(x.unsqueeze(2)).squeeze(2)
        x = self.blocks[1](self.blocks[0](self.stem(x)))
        return self.out(self.head(x.mean((2, 3))))


def _batch_norms(model):
    return {name: m for name, m in model.named_modules()
            if isinstance(m, (rg.nn.BatchNorm1d, rg.nn.BatchNorm2d, rg.nn.BatchNorm3d,
                              rg.nn.SyncBatchNorm))}


def test_convert_sync_batchnorm_carries_everything_over(world_of_one):
    model = _Net().double()
    for step in range(2):     # running statistics that moved, parameters that are not 1 and 0
        model(rg.tensor(randn(5, 2, 4, 4, seed=step))).sum().backward()
        with rg.no_grad():
            for p in model.parameters():
                p.sub_(p.grad * 0.1)
    model.blocks.eval()
    reference = copy.deepcopy(model)
    before = _batch_norms(model)
    tensors = {(name, key): value for name, m in before.items()
               for key, value in [*m._parameters.items(), *m._buffers.items()]}
    others = {name: m for name, m in model.named_modules() if name not in before}

    converted = rg.nn.SyncBatchNorm.convert_sync_batchnorm(model)

    assert converted is model
    after = _batch_norms(model)
    assert list(after) == list(before) == ["entry", "stem.1", "blocks.0.1", "blocks.1", "out"]
    for name, sync in after.items():
        old = before[name]
        assert type(sync) is rg.nn.SyncBatchNorm, name
        for attribute in ("num_features", "eps", "momentum", "affine", "track_running_stats",
                          "training"):
            assert getattr(sync, attribute) == getattr(old, attribute), (name, attribute)
        for key, value in [*sync._parameters.items(), *sync._buffers.items()]:
            assert value is tensors[(name, key)], (name, key)   # the objects themselves
    assert [after["blocks.0.1"].weight, after["blocks.1"].bias] == [None, None]
    assert after["out"].running_mean is None and after["blocks.1"].weight is not None
    modules = dict(model.named_modules())
    assert all(modules[name] is m for name, m in others.items())   # the rest stays
    assert [n for n, _ in model.named_parameters()] == [
        n for n, _ in reference.named_parameters()]
    for key, value in reference.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key].numpy(), value.numpy(),
                                      err_msg=key)
    # and it computes what the model computed (a world of one), gradients included
    x = randn(5, 2, 4, 4, seed=9)
    outputs = []
    for net in (model, reference):
        rx = rg.tensor(x, requires_grad=True)
        net.zero_grad()
        (net(rx) * rg.tensor(randn(5, 3, seed=10))).sum().backward()
        outputs.append([rx.grad.numpy()] + [p.grad.numpy() for p in net.parameters()])
    for ours, theirs in zip(*outputs):
        np.testing.assert_array_equal(ours, theirs)


def test_convert_sync_batchnorm_of_a_single_layer():
    bn = rg.nn.BatchNorm2d(3, eps=0.01, momentum=0.2, dtype=rg.float64).eval()
    sync = rg.nn.SyncBatchNorm.convert_sync_batchnorm(bn)
    assert type(sync) is rg.nn.SyncBatchNorm and sync is not bn
    assert (sync.eps, sync.momentum, sync.training) == (0.01, 0.2, False)
    assert sync.weight is bn.weight and sync.running_var is bn.running_var
    linear = rg.nn.Linear(2, 2)
    assert rg.nn.SyncBatchNorm.convert_sync_batchnorm(linear) is linear
    again = rg.nn.SyncBatchNorm.convert_sync_batchnorm(sync)   # as PyTorch: a fresh copy
    assert type(again) is rg.nn.SyncBatchNorm and again.weight is bn.weight


PROGRAM = """
    import copy

    import numpy as np
    import retrograd as rg
    import retrograd.distributed as dist
    import retrograd.nn.functional as F
    from retrograd.datasets import Digits
    from retrograd.models import resnet_digits
    from retrograd.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi", timeout=20)
    rank, world = dist.get_rank(), dist.get_world_size()
    report = {}

    def difference(got, want):
        return float(np.max(np.abs(np.asarray(got) - np.asarray(want)), initial=0.0))

    def random(seed, *shape):
        return np.random.default_rng(seed).standard_normal(shape)

    # (a) one layer: rank r holds rows [start, stop) of a global batch; one process runs
    # BatchNorm on the whole batch. The loss is sum(y * c) over the global batch, so rank r's
    # part is sum(y_r * c_r), and the ranks' losses add up to the single process's loss.
    def compare_layer(name, single_process_layer, sizes, tail, modes, channels=3):
        bounds = np.cumsum([0, *sizes])
        start, stop = bounds[rank], bounds[rank + 1]
        sync = rg.nn.SyncBatchNorm(channels, momentum=0.2, dtype=rg.float64)
        single = single_process_layer(channels, momentum=0.2, dtype=rg.float64)
        with rg.no_grad():
            for layer in (sync, single):
                layer.weight.copy_(rg.tensor(random(1, channels)))
                layer.bias.copy_(rg.tensor(random(2, channels)))
        for step, training in enumerate(modes):
            sync.train(training), single.train(training)
            x = random(10 + step, bounds[-1], channels, *tail) * 3 + 1
            c = random(20 + step, *x.shape)
            everyone = rg.tensor(x, requires_grad=True)
            y = single(everyone)
            (y * rg.tensor(c)).sum().backward()
            mine = rg.tensor(x[start:stop], requires_grad=True)
            y_mine = sync(mine)
            (y_mine * rg.tensor(c[start:stop])).sum().backward()
            for p in sync.parameters():
                dist.all_reduce(p.grad)     # the weight and bias gradients summed over ranks
            at = f"{name} step {step}"
            report[f"{at} output"] = difference(y_mine.detach().numpy(),
                                                y.detach().numpy()[start:stop])
            report[f"{at} input grad"] = difference(mine.grad.numpy(),
                                                    everyone.grad.numpy()[start:stop])
            for which in ("weight", "bias"):
                report[f"{at} {which} grad"] = difference(getattr(sync, which).grad.numpy(),
                                                          getattr(single, which).grad.numpy())
            for which in ("running_mean", "running_var", "num_batches_tracked"):
                report[f"{at} {which}"] = difference(getattr(sync, which).numpy(),
                                                     getattr(single, which).numpy())
            sync.zero_grad(), single.zero_grad()

    compare_layer("2d, unequal slices", rg.nn.BatchNorm2d, [2 + r for r in range(world)], (4, 5),
                  modes=(True, True, False))   # then eval mode: the running statistics
    # (eval mode refuses an empty input, as BatchNorm does: training only)
    compare_layer("1d, rank 0 empty", rg.nn.BatchNorm1d, [0] + [3] * (world - 1), (5,),
                  modes=(True, True))

    # (b) the digits ResNet of `retrograd train`, converted and wrapped in DDP, each rank an
    # equal slice of each global batch, against one process training the unconverted model
    # on the whole batch (cross-entropy averaged over it)
    digits = Digits(train=True)
    images = ((digits.data - digits.data.mean()) / digits.data.std()).astype(np.float64)
    images, labels = images[:, None], digits.targets
    rg.manual_seed(0)
    model = resnet_digits().double()
    reference = copy.deepcopy(model)
    start = {name: p.detach().numpy().copy() for name, p in reference.named_parameters()}
    model = rg.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    report["SyncBatchNorm layers"] = sum(type(m) is rg.nn.SyncBatchNorm for m in model.modules())
    ddp = DistributedDataParallel(model)
    optimizers = [rg.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                               weight_decay=5e-4) for net in (ddp, reference)]
    global_batch = 12
    share = global_batch // world
    for step in range(5):
        rows = slice(step * global_batch, (step + 1) * global_batch)
        mine = slice(step * global_batch + rank * share, step * global_batch + (rank + 1) * share)
        for net, optimizer, batch in ((ddp, optimizers[0], mine), (reference, optimizers[1], rows)):
            optimizer.zero_grad()
            loss = F.cross_entropy(net(rg.tensor(images[batch])), rg.tensor(labels[batch]))
            loss.backward()
            optimizer.step()
    trained, wanted = ddp.module.state_dict(), reference.state_dict()
    report["state keys equal"] = list(trained) == list(wanted)
    report["ResNet parameters"] = max(difference(trained[k].numpy(), wanted[k].numpy())
                                      for k in start)
    report["ResNet buffers"] = max(difference(trained[k].numpy(), wanted[k].numpy())
                                   for k in wanted if k not in start)
    report["ResNet moved"] = max(difference(p.detach().numpy(), start[name])
                                 for name, p in reference.named_parameters())

    dist.barrier()
    print(f"RESULT {rank} {world} {report!r}", flush=True)
    dist.destroy_process_group()
"""


@needs_mpi
@pytest.mark.parametrize("processes", [2, 3])
def test_on_several_ranks_it_is_batch_norm_of_the_global_batch(processes, tmp_path):
    run = run_mpi(PROGRAM, processes, tmp_path, timeout=180)
    for rank, report in rank_reports(run, processes).items():
        assert report.pop("state keys equal"), rank
        assert report.pop("SyncBatchNorm layers") == 6, rank
        assert report.pop("ResNet moved") > 1e-3, rank   # the training did something
        assert len(report) == 5 * 7 + 2, sorted(report)
        worst = {name: diff for name, diff in report.items() if not diff <= 1e-12}
        assert not worst, (rank, worst)
