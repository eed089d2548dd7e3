"""retrograd.Generator and the default generator (retrograd/random.py), against torch.Generator's
behaviour; and the generator= argument of the random creation functions."""

import pickle

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.random import Generator, fork_rng, numpy_generator


# ---------------------------------------------------------------------- the Generator API
def test_manual_seed_returns_the_generator_and_sets_the_initial_seed_as_torch():
    ours, theirs = Generator(), torch.Generator()
    assert ours.manual_seed(7) is ours and theirs.manual_seed(7) is theirs
    assert ours.initial_seed() == theirs.initial_seed() == 7
    for seed in (-1, -(1 << 63), (1 << 64) - 1, 0, np.int64(5)):
        assert Generator().manual_seed(seed).initial_seed() == \
            torch.Generator().manual_seed(int(seed)).initial_seed()


@pytest.mark.parametrize("seed, error", [(3.0, RuntimeError), (1 << 64, ValueError),
                                         (-(1 << 63) - 1, ValueError), ("3", RuntimeError)])
def test_manual_seed_rejects_what_torch_rejects(seed, error):
    with pytest.raises(error):
        torch.Generator().manual_seed(seed)
    with pytest.raises(error, match="manual_seed"):
        Generator().manual_seed(seed)


def test_same_seed_same_stream_and_a_new_generator_is_reproducible():
    a, b = Generator().manual_seed(3), Generator().manual_seed(3)
    assert rg.randn(5, generator=a).tolist() == rg.randn(5, generator=b).tolist()
    assert rg.randn(5, generator=a).tolist() != rg.randn(5, generator=Generator().manual_seed(4)
                                                         ).tolist()
    assert Generator().initial_seed() == 0
    assert rg.rand(3, generator=Generator()).tolist() == rg.rand(3, generator=Generator()).tolist()


def test_seed_reseeds_from_entropy():
    g = Generator()
    value = g.seed()
    assert isinstance(value, int) and 0 <= value < 1 << 64 and g.initial_seed() == value
    assert rg.rand(4, generator=g).tolist() == \
        rg.rand(4, generator=Generator().manual_seed(value)).tolist()
    assert Generator().seed() != value


def test_get_state_is_a_uint8_tensor_that_set_state_restores():
    g = Generator().manual_seed(12)
    rg.randn(3, generator=g)
    state = g.get_state()
    assert state.dtype == rg.uint8 and state.ndim == 1
    assert torch.Generator().get_state().dtype == torch.uint8  # the same kind of object
    expected = rg.randn(6, generator=g).tolist()
    other = Generator().manual_seed(99)
    assert other.set_state(state) is other
    assert rg.randn(6, generator=other).tolist() == expected
    assert other.initial_seed() == 12


def test_the_state_holds_the_buffered_word_of_the_bit_generator():
    g = Generator().manual_seed(0)
    g.numpy_generator().integers(0, 10, dtype=np.int32)  # draws half of a 64-bit word
    state = g.get_state()
    expected = g.numpy_generator().integers(0, 1 << 30, size=5, dtype=np.int32).tolist()
    restored = Generator().set_state(state)
    assert restored.numpy_generator().integers(0, 1 << 30, size=5, dtype=np.int32).tolist() \
        == expected


def test_clone_state_and_pickle_copy_the_stream():
    g = Generator().manual_seed(5)
    rg.rand(2, generator=g)
    for copy in (g.clone_state(), pickle.loads(pickle.dumps(g))):
        assert copy is not g and copy.initial_seed() == 5
        assert rg.rand(4, generator=copy).tolist() == rg.rand(4, generator=g.clone_state()
                                                              ).tolist()


@pytest.mark.parametrize("state, error, match", [
    (rg.zeros(3, dtype=rg.uint8), RuntimeError, "expected a state of"),
    (rg.zeros(53), TypeError, "uint8"),
    ([1, 2, 3], TypeError, "uint8"),
    (rg.tensor(np.frombuffer(torch.Generator().get_state().numpy().tobytes(), np.uint8)),
     RuntimeError, "PyTorch generator's state cannot be loaded"),
    ({"bit_generator": "MT19937"}, RuntimeError, "PCG64"),
])
def test_set_state_rejects_other_states(state, error, match):
    with pytest.raises(error, match=match):
        Generator().set_state(state)


def test_torch_rejects_the_same_kinds_of_state():
    with pytest.raises(RuntimeError):
        torch.Generator().set_state(torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(TypeError):
        torch.Generator().set_state(torch.zeros(5056))


def test_device_is_the_cpu_only():
    assert Generator().device == rg.device("cpu") == Generator(rg.device("cpu")).device
    assert str(torch.Generator().device) == str(Generator("cpu").device) == "cpu"
    with pytest.raises(RuntimeError, match="Generator: retrograd runs on the CPU only"):
        Generator("cuda")
    with pytest.raises(RuntimeError):
        torch.Generator("cuda")


def test_numpy_generator_is_the_live_stream():
    g = Generator().manual_seed(1)
    shared = g.numpy_generator()
    assert numpy_generator(g) is shared and numpy_generator(None) is rg.random.generator()
    first = shared.random()
    g.manual_seed(1)
    assert g.numpy_generator() is shared and shared.random() == first
    with pytest.raises(TypeError, match="retrograd.Generator or None, got int"):
        numpy_generator(3)


# ---------------------------------------------------------------------- the default generator
def test_manual_seed_returns_the_default_generator_as_torch():
    assert isinstance(torch.manual_seed(0), torch.Generator)
    assert rg.manual_seed(4) is rg.default_generator
    assert rg.initial_seed() == rg.default_generator.initial_seed() == 4
    assert rg.manual_seed(4.9).initial_seed() == torch.manual_seed(4.9).initial_seed() == 4


def test_default_generator_drives_the_random_functions():
    rg.manual_seed(8)
    a = rg.randn(4).tolist()
    assert rg.randn(4, generator=Generator().manual_seed(8)).tolist() == a
    rg.default_generator.manual_seed(8)
    assert rg.randn(4).tolist() == a


def test_rng_state_functions_keep_working_and_take_either_state():
    rg.manual_seed(3)
    state = rg.get_rng_state()
    pickle.loads(pickle.dumps(state))
    expected = rg.rand(5).tolist()
    rg.set_rng_state(state)
    assert rg.rand(5).tolist() == expected
    rg.manual_seed(3)
    tensor_state = rg.default_generator.get_state()
    rg.manual_seed(40)
    rg.set_rng_state(tensor_state)
    assert rg.rand(5).tolist() == expected
    assert Generator().set_state(state).numpy_generator().random() == \
        Generator().set_state(tensor_state).numpy_generator().random()


def test_seed_reseeds_the_default_generator():
    value = rg.seed()
    assert rg.initial_seed() == value
    assert rg.rand(3).tolist() == rg.rand(3, generator=Generator().manual_seed(value)).tolist()


def test_fork_rng_restores_the_default_stream():
    rg.manual_seed(6)
    expected = rg.rand(3).tolist()
    rg.manual_seed(6)
    with fork_rng():
        rg.rand(10)
    assert rg.rand(3).tolist() == expected
    with fork_rng(enabled=False):
        rg.rand(1)
    assert rg.rand(3).tolist() != expected


# ---------------------------------------------------------------------- generator= arguments
DRAWS = {
    "randn": lambda g: rg.randn(2, 3, generator=g),
    "rand": lambda g: rg.rand(4, generator=g, dtype=rg.float64),
    "randint": lambda g: rg.randint(0, 100, (6,), generator=g),
    "randperm": lambda g: rg.randperm(9, generator=g),
    "randn_like": lambda g: rg.randn_like(rg.zeros(3), generator=g),
    "rand_like": lambda g: rg.rand_like(rg.zeros(3), generator=g),
    "normal_": lambda g: rg.zeros(5).normal_(2.0, 0.5, generator=g),
    "uniform_": lambda g: rg.zeros(5).uniform_(-1.0, 1.0, generator=g),
}


@pytest.mark.parametrize("name", list(DRAWS))
def test_generator_argument_draws_from_that_generator_only(name):
    draw = DRAWS[name]
    rg.manual_seed(0)
    before = rg.get_rng_state()
    a = draw(Generator().manual_seed(21)).tolist()
    assert rg.get_rng_state() == before
    assert draw(Generator().manual_seed(21)).tolist() == a
    assert draw(Generator().manual_seed(22)).tolist() != a
    rg.manual_seed(21)
    assert draw(None).tolist() == a  # the default generator gives the same stream


@pytest.mark.parametrize("name", ["randn", "randperm", "normal_"])
def test_generator_argument_must_be_a_generator(name):
    with pytest.raises(TypeError, match="generator must be a retrograd.Generator"):
        DRAWS[name](np.random.default_rng(0))
