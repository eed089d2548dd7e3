"""Devices (retrograd/device.py, retrograd/cuda.py, retrograd/accelerator.py,
retrograd/backends/): the device objects mirror torch.device; every creation function,
Tensor.to, Module.to, Tensor.cuda and Module.cuda accept the CPU in every spelling and refuse any
other device with a RuntimeError naming the call and the device; the CUDA, accelerator and
backend queries answer as a CPU-only PyTorch does, and their flags are settable."""

import pickle
import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.device import check_cpu

DEVICE_STRINGS = ["cpu", "cpu:0", "cpu:1", "cuda", "cuda:0", "cuda:3", "mps", "meta", "xpu:2",
                  "privateuseone"]


# ---------------------------------------------------------------- the device objects
@pytest.mark.parametrize("text", DEVICE_STRINGS)
def test_device_from_a_string_mirrors_torch(text):
    ours, theirs = rg.device(text), torch.device(text)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert repr(ours) == repr(theirs) and str(ours) == str(theirs)


@pytest.mark.parametrize("kind, index", [("cpu", 0), ("cuda", 1), ("cuda", None), ("mps", 0)])
def test_device_from_type_and_index_mirrors_torch(kind, index):
    ours, theirs = rg.device(kind, index), torch.device(kind, index)
    assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
    assert repr(rg.device(type=kind, index=index)) == repr(theirs)


def test_devices_compare_hash_copy_and_pickle_like_torch():
    cpu, cpu0 = rg.device("cpu"), rg.device("cpu", 0)
    assert cpu == rg.device("cpu") and hash(cpu) == hash(rg.device("cpu"))
    assert (cpu == cpu0) == (torch.device("cpu") == torch.device("cpu", 0)) is False
    assert (cpu == "cpu") == (torch.device("cpu") == "cpu") is False  # never equal to a string
    assert cpu != rg.device("cuda") and {cpu: 1}[rg.device("cpu")] == 1
    assert rg.device(rg.device("cuda:1")) == rg.device("cuda", 1)
    assert pickle.loads(pickle.dumps(rg.device("cuda:1"))) == rg.device("cuda:1")
    with pytest.raises(AttributeError):
        cpu.type = "cuda"


@pytest.mark.parametrize("args, error", [
    (("foo",), RuntimeError), (("cuda:x",), RuntimeError), (("cpu:-1",), RuntimeError),
    (("cuda:0:1",), RuntimeError), (("",), RuntimeError), (("CUDA",), RuntimeError),
    ((" cpu",), RuntimeError), (("cuda:01",), RuntimeError), (("cuda", -1), RuntimeError),
    (("cpu", "a"), TypeError), ((1.5,), TypeError), ((None,), TypeError),
    (("cuda:0", 1), RuntimeError), (("cuda", True), TypeError), ((0,), RuntimeError),
    ((-1,), RuntimeError),
], ids=repr)
def test_bad_devices_raise_what_torch_raises(args, error):
    with pytest.raises(error):
        torch.device(*args)
    with pytest.raises(error):
        rg.device(*args)


def test_device_messages_name_the_problem():
    with pytest.raises(RuntimeError, match=r"Expected one of cpu, cuda, .* device type at start "
                                           r"of device string: foo"):
        rg.device("foo")
    with pytest.raises(RuntimeError, match=r"Invalid device string: 'cuda:x'"):
        rg.device("cuda:x")
    with pytest.raises(RuntimeError, match="Cannot access accelerator device"):
        rg.device(0)


def test_device_as_a_context_manager():
    with rg.device("cpu"):
        assert rg.zeros(1).device == rg.device("cpu")
    with pytest.raises(RuntimeError, match="device: retrograd runs on the CPU only, got device "
                                           "'cuda'"):
        with rg.device("cuda"):
            pass
    assert repr(rg.get_default_device()) == repr(torch.get_default_device()) == \
        "device(type='cpu')"
    rg.set_default_device("cpu")
    rg.set_default_device(None)
    with pytest.raises(RuntimeError, match="set_default_device: .*CPU only, got device 'cuda'"):
        rg.set_default_device("cuda")


# ---------------------------------------------------------------- check_cpu
@pytest.mark.parametrize("value", [None, "cpu", "cpu:0", "cpu:3", rg.device("cpu"),
                                   rg.device("cpu", 1)], ids=repr)
def test_check_cpu_accepts_every_spelling_of_the_cpu(value):
    assert check_cpu("zeros", value).type == "cpu"


@pytest.mark.parametrize("value, named", [
    ("cuda", "cuda"), ("cuda:0", "cuda:0"), (rg.device("cuda", 2), "cuda:2"), ("mps", "mps"),
    ("meta", "meta"), (0, "cuda:0"), (1, "cuda:1"),
], ids=repr)
def test_check_cpu_refuses_other_devices_naming_the_call_and_device(value, named):
    with pytest.raises(RuntimeError) as caught:
        check_cpu("zeros", value)
    message = str(caught.value)
    assert message.startswith(f"zeros: retrograd runs on the CPU only, got device '{named}'")
    assert "use device='cpu'" in message and "is_available() is False" in message


def test_check_cpu_names_the_availability_check_for_the_device():
    with pytest.raises(RuntimeError, match=r"retrograd\.cuda\.is_available\(\) is False"):
        check_cpu("op", "cuda")
    with pytest.raises(RuntimeError, match=r"retrograd\.backends\.mps\.is_available\(\) is False"):
        check_cpu("op", "mps")
    with pytest.raises(RuntimeError, match=r"retrograd\.accelerator\.is_available\(\) is False"):
        check_cpu("op", "xpu")


def test_check_cpu_errors_for_what_is_not_a_device():
    with pytest.raises(RuntimeError, match=r"zeros: invalid device 'foo'"):
        check_cpu("zeros", "foo")
    with pytest.raises(TypeError, match="zeros: device must be a string such as 'cpu'"):
        check_cpu("zeros", 1.5)
    with pytest.raises(RuntimeError, match="zeros: invalid device -1"):
        check_cpu("zeros", -1)


# ---------------------------------------------------------------- creation functions
def _create(name, **kwargs):
    base = rg.ones(2, 3)
    calls = {
        "tensor": lambda: rg.tensor([1.0, 2.0], **kwargs),
        "zeros": lambda: rg.zeros(2, 3, **kwargs), "ones": lambda: rg.ones(2, **kwargs),
        "empty": lambda: rg.empty(2, **kwargs), "full": lambda: rg.full((2,), 1.5, **kwargs),
        "arange": lambda: rg.arange(4, **kwargs),
        "linspace": lambda: rg.linspace(0, 1, 3, **kwargs),
        "eye": lambda: rg.eye(2, **kwargs), "randn": lambda: rg.randn(2, **kwargs),
        "rand": lambda: rg.rand(2, **kwargs), "randint": lambda: rg.randint(0, 5, (3,), **kwargs),
        "randperm": lambda: rg.randperm(4, **kwargs),
        "zeros_like": lambda: rg.zeros_like(base, **kwargs),
        "ones_like": lambda: rg.ones_like(base, **kwargs),
        "empty_like": lambda: rg.empty_like(base, **kwargs),
        "full_like": lambda: rg.full_like(base, 2.0, **kwargs),
        "randn_like": lambda: rg.randn_like(base, **kwargs),
        "rand_like": lambda: rg.rand_like(base, **kwargs),
    }
    return calls[name]()


CREATION = ["tensor", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "randn",
            "rand", "randint", "randperm", "zeros_like", "ones_like", "empty_like", "full_like",
            "randn_like", "rand_like"]


@pytest.mark.parametrize("name", CREATION)
@pytest.mark.parametrize("device", ["cpu", "cpu:0", rg.device("cpu"), None], ids=repr)
def test_creation_functions_accept_the_cpu_and_pin_memory(name, device):
    x = _create(name, device=device)
    assert x.device == rg.device("cpu") and not x.is_cuda and x.is_cpu
    assert _create(name, device=device, pin_memory=True).device.type == "cpu"


@pytest.mark.parametrize("name", CREATION)
@pytest.mark.parametrize("device", ["cuda", "cuda:0", rg.device("mps"), 1], ids=repr)
def test_creation_functions_refuse_other_devices_naming_themselves(name, device):
    named = f"cuda:{device}" if isinstance(device, int) else str(device)
    with pytest.raises(RuntimeError,
                       match=rf"^{name}: retrograd runs on the CPU only, got device '{named}'"):
        _create(name, device=device)


def test_as_tensor_takes_a_device_and_pin_memory_must_be_a_bool():
    a = np.zeros(3)
    assert rg.as_tensor(a, device="cpu").numpy() is a  # still shares memory
    with pytest.raises(RuntimeError, match="as_tensor: retrograd runs on the CPU only"):
        rg.as_tensor(a, device="cuda")
    with pytest.raises(ValueError, match="zeros: pin_memory must be a bool, got str"):
        rg.zeros(2, pin_memory="yes")


# ---------------------------------------------------------------- Tensor.to and friends
def _pair(fn):
    """fn on a float32 ones(2) of each framework, as (dtype name, same object as x)."""
    x, tx = rg.ones(2), torch.ones(2)
    ours, theirs = fn(rg, x), fn(torch, tx)
    return (str(ours.dtype).split(".")[-1], ours is x), (str(theirs.dtype).split(".")[-1],
                                                         theirs is tx)


@pytest.mark.parametrize("call", [
    lambda m, x: x.to("cpu"), lambda m, x: x.to(m.device("cpu")),
    lambda m, x: x.to("cpu", m.float64), lambda m, x: x.to(m.device("cpu"), dtype=m.int64),
    lambda m, x: x.to(m.float32), lambda m, x: x.to(dtype=m.float16),
    lambda m, x: x.to(m.float32, copy=True), lambda m, x: x.to(m.float32, non_blocking=True),
    lambda m, x: x.to(m.ones(1, dtype=m.int32)), lambda m, x: x.to(device="cpu"),
    lambda m, x: x.to(None), lambda m, x: x.to("cpu", m.float64, True, True),
    lambda m, x: x.to(m.float64, False, True), lambda m, x: x.to("cpu", copy=True),
    lambda m, x: x.to(m.zeros(1), non_blocking=True),
    lambda m, x: x.cpu(), lambda m, x: x.type(m.float64), lambda m, x: x.type(m.float32),
    lambda m, x: x.type("torch.DoubleTensor"), lambda m, x: x.type("torch.FloatTensor"),
    lambda m, x: x.type(m.LongTensor), lambda m, x: x.type(dtype=m.int32, non_blocking=True),
])
def test_tensor_to_forms_match_torch(call):
    ours, theirs = _pair(call)
    assert ours == theirs


def test_to_copy_gives_a_differentiable_copy():
    x = rg.ones(2, requires_grad=True)
    y = x.to(rg.float32, copy=True)
    assert y is not x and y.grad_fn is not None
    (y * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.to("cuda"), RuntimeError,
     r"^Tensor.to: retrograd runs on the CPU only, got device 'cuda'"),
    (lambda x: x.to("cuda:1", rg.float64), RuntimeError, "got device 'cuda:1'"),
    (lambda x: x.to(rg.device("mps")), RuntimeError, "got device 'mps'"),
    (lambda x: x.to(0), RuntimeError, "got device 'cuda:0'"),
    (lambda x: x.to(device="cuda"), RuntimeError, "got device 'cuda'"),
    (lambda x: x.to("foo"), RuntimeError, "to: invalid device 'foo'"),
    (lambda x: x.to("float"), TypeError, r"to: dtype must be a retrograd dtype such as "
                                         r"retrograd\.float32, not the string 'float'"),
    (lambda x: x.to(dtype="float"), TypeError, "not the string 'float'"),
    (lambda x: x.to("cpu", "cuda"), TypeError, "expected a dtype after the device"),
    (lambda x: x.to(rg.float32, rg.float64), TypeError, "non_blocking must be a bool"),
    (lambda x: x.to(rg.float32, memory_format=None, foo=1), TypeError,
     "unexpected keyword argument 'foo'"),
    (lambda x: x.to(1.5), TypeError, "device must be a string such as 'cpu'"),
    (lambda x: x.cuda(), RuntimeError, r"^cuda: retrograd runs on the CPU only, got device "
                                       r"'cuda'"),
    (lambda x: x.cuda(1), RuntimeError, "got device 'cuda:1'"),
    (lambda x: x.cuda("cpu"), RuntimeError, "got device 'cuda'"),
    (lambda x: x.type("torch.cuda.FloatTensor"), RuntimeError, "CPU only, got device 'cuda'"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_tensor_moves_to_other_devices_are_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(rg.ones(2))


def test_tensor_device_properties_match_torch():
    x, tx = rg.ones(2), torch.ones(2)
    assert repr(x.device) == repr(tx.device) and x.device.type == "cpu"
    assert x.is_cuda == tx.is_cuda is False and x.is_cpu == tx.is_cpu is True
    assert x.get_device() == tx.get_device() == -1
    assert x.pin_memory() is x and x.is_pinned() is False
    assert x.cpu() is x and x.cpu(memory_format=None) is x


# ---------------------------------------------------------------- Module.to / cpu / cuda
@pytest.mark.parametrize("call, dtype", [
    (lambda m: m.to(rg.device("cpu")), rg.float32), (lambda m: m.to("cpu:0"), rg.float32),
    (lambda m: m.to("cpu", rg.float64), rg.float64),
    (lambda m: m.to(rg.device("cpu"), dtype=rg.float64), rg.float64),
    (lambda m: m.to(device="cpu", dtype=rg.float16), rg.float16),
    (lambda m: m.to(rg.ones(1, dtype=rg.float64)), rg.float64),
    (lambda m: m.to("cpu", non_blocking=True), rg.float32),
    (lambda m: m.to(rg.float64, True), rg.float64), (lambda m: m.cpu(), rg.float32),
])
def test_module_to_forms(call, dtype):
    m = rg.nn.Linear(2, 3, device=rg.device("cpu"))
    assert call(m) is m and m.weight.dtype == dtype and m.bias.dtype == dtype


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.to("cuda:0"), RuntimeError, r"^Module\.to: retrograd runs on the CPU only, got "
                                             r"device 'cuda:0'"),
    (lambda m: m.to(rg.device("cuda")), RuntimeError, "got device 'cuda'"),
    (lambda m: m.cuda(), RuntimeError, r"^Module\.cuda: retrograd runs on the CPU only, got "
                                       r"device 'cuda'"),
    (lambda m: m.cuda(1), RuntimeError, "got device 'cuda:1'"),
    (lambda m: m.to(rg.float32, copy=True), TypeError, "unexpected keyword argument 'copy'"),
    (lambda m: m.to("float"), TypeError, "not the string 'float'"),
    (lambda m: m.to(rg.int64), TypeError, "only floating-point dtypes are allowed"),
])
def test_module_moves_to_other_devices_are_clear_errors(call, error, message):
    m = rg.nn.Linear(2, 3)
    with pytest.raises(error, match=message):
        call(m)
    assert m.weight.dtype == rg.float32  # nothing changed


def test_layers_accept_device_objects():
    layer = rg.nn.Linear(2, 3, device=rg.device("cpu"))
    assert layer.weight.device == rg.device("cpu")
    with pytest.raises(RuntimeError, match="Linear: retrograd runs on the CPU only, got device "
                                           "'cuda:0'"):
        rg.nn.Linear(2, 3, device=rg.device("cuda", 0))


# ---------------------------------------------------------------- cuda, accelerator, backends
def test_cuda_queries_answer_as_a_cpu_only_torch():
    for name in ("is_available", "device_count", "is_initialized", "memory_allocated",
                 "max_memory_allocated", "memory_reserved", "max_memory_reserved",
                 "is_bf16_supported"):
        assert getattr(rg.cuda, name)() == getattr(torch.cuda, name)(), name
    for name in ("empty_cache", "seed", "seed_all", "reset_peak_memory_stats"):
        assert getattr(rg.cuda, name)() is None


@pytest.mark.parametrize("seed", [0, 42, 2 ** 40, -1, 1.5])
def test_cuda_seeding_is_a_no_op_that_accepts_what_torch_accepts(seed):
    rg.manual_seed(3)
    expected = rg.randn(4).tolist()
    rg.manual_seed(3)
    assert rg.cuda.manual_seed(seed) is None and rg.cuda.manual_seed_all(seed) is None
    assert torch.cuda.manual_seed(seed) is None
    assert rg.randn(4).tolist() == expected  # retrograd's own stream is untouched


def test_cuda_seeding_rejects_what_torch_rejects():
    for fn in (torch.cuda.manual_seed, rg.cuda.manual_seed, rg.cuda.manual_seed_all):
        with pytest.raises(ValueError):
            fn("a")


@pytest.mark.parametrize("name", ["synchronize", "current_device", "get_device_name",
                                  "get_device_capability", "get_device_properties",
                                  "mem_get_info", "get_rng_state", "init", "set_device"])
def test_cuda_calls_that_need_a_gpu_raise_naming_themselves(name):
    with pytest.raises(RuntimeError, match=rf"retrograd\.cuda\.{name}: CUDA is not available"):
        getattr(rg.cuda, name)(*([0] if name == "set_device" else []))


def test_accelerator_answers_as_torch_on_a_cpu_machine():
    assert rg.accelerator.is_available() is torch.accelerator.is_available() is False
    assert rg.accelerator.current_accelerator() is torch.accelerator.current_accelerator()
    assert rg.accelerator.device_count() == torch.accelerator.device_count() == 0


@pytest.mark.parametrize("module, flag", [
    ("cudnn", "benchmark"), ("cudnn", "deterministic"), ("cudnn", "enabled"),
    ("cudnn", "allow_tf32"),
])
def test_backend_flags_have_torch_defaults_and_can_be_set(module, flag):
    ours = getattr(rg.backends, module)
    default = getattr(getattr(torch.backends, module), flag)
    assert getattr(ours, flag) == default
    try:
        setattr(ours, flag, not default)
        assert getattr(ours, flag) is (not default)
    finally:
        setattr(ours, flag, default)


def test_backend_queries_and_cuda_matmul_flags():
    import retrograd.backends.cudnn as cudnn  # the import form PyTorch programs use

    assert cudnn is rg.backends.cudnn and cudnn.is_available() is False
    assert cudnn.version() is None
    assert rg.backends.mps.is_available() is torch.backends.mps.is_available() is False
    assert rg.backends.mps.is_built() is False and rg.backends.cuda.is_built() is False
    matmul = rg.backends.cuda.matmul
    assert matmul.allow_tf32 == torch.backends.cuda.matmul.allow_tf32
    matmul.allow_tf32 = True
    assert matmul.allow_tf32 is True
    matmul.allow_tf32 = False
    with pytest.raises(AttributeError, match="unknown attribute 'allow_tf33'"):
        matmul.allow_tf33 = True


def test_sdp_switches_are_recorded_and_restored():
    cuda = rg.backends.cuda
    assert cuda.flash_sdp_enabled() == torch.backends.cuda.flash_sdp_enabled()
    with cuda.sdp_kernel(enable_flash=False):
        assert not cuda.flash_sdp_enabled() and cuda.math_sdp_enabled()
    assert cuda.flash_sdp_enabled()
    cuda.enable_math_sdp(False)
    assert not cuda.math_sdp_enabled()
    cuda.enable_math_sdp(True)


def test_float32_matmul_precision_is_validated_like_torch():
    assert rg.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
    try:
        rg.set_float32_matmul_precision("medium")
        assert rg.get_float32_matmul_precision() == "medium"
        with pytest.warns(UserWarning, match="'foo' is not one of 'highest', 'high', or "
                                             "'medium'"):
            rg.set_float32_matmul_precision("foo")
        assert rg.get_float32_matmul_precision() == "medium"
        with pytest.raises(RuntimeError, match="expects a str, but got int"):
            rg.set_float32_matmul_precision(1)
    finally:
        rg.set_float32_matmul_precision("highest")


def test_deterministic_algorithms_flag():
    assert rg.are_deterministic_algorithms_enabled() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rg.use_deterministic_algorithms(True)
    try:
        assert rg.are_deterministic_algorithms_enabled() is True
        with pytest.raises(TypeError, match="mode must be a bool"):
            rg.use_deterministic_algorithms("yes")
    finally:
        rg.use_deterministic_algorithms(False)


def test_a_gpu_ready_program_runs_on_the_cpu():
    """The device boilerplate of a typical PyTorch script, unchanged."""
    torch_like = rg
    device = torch_like.device("cuda" if torch_like.cuda.is_available() else "cpu")
    torch_like.backends.cudnn.benchmark = False
    torch_like.cuda.manual_seed_all(0)
    model = torch_like.nn.Linear(4, 2).to(device)
    x = torch_like.randn(3, 4, device=device)
    y = model(x.to(device, non_blocking=True))
    assert y.device == device and y.shape == (3, 2)
