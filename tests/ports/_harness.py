"""Runs one port program under PyTorch and under retrograd, changing only its imports.

A port program (``tests/ports/programs/*.py``) is a single source file written against
``torch``, the way PyTorch users write training scripts and model files. It defines

    build()          -> dict of name -> nn.Module, the models it trains (made with the
                        framework's own initialization)
    train(models)    -> dict of name -> result (losses, accuracies, samples, tensors)

``port_source`` rewrites the import lines, and only those, from ``torch`` to ``retrograd``
(``import torch`` -> ``import retrograd as torch``, ``from torch.utils.data import X`` ->
``from retrograd.utils.data import X``, ...) and checks mechanically that no other line
changed. ``run_port`` then runs the program: PyTorch first, recording its models' initial state
dicts; retrograd second, loading those state dicts into its own models (so both start from the
same weights: the frameworks' initializers draw from different generators). It returns the
results and, for each model, every parameter, buffer and parameter gradient after training.

The two frameworks' random streams differ (the same seed gives different numbers), so for the
run the harness replaces both frameworks' sampling functions (``randn``, ``rand``, ``randint``,
``randperm``, ``multinomial``, ``bernoulli``, the ``*_like`` forms and ``nn.functional.dropout``)
with functions drawing from one NumPy stream. A program that trains on random data, shuffles,
drops out or samples actions then sees the same numbers under both frameworks, called in the
same order. This changes nothing in the program's source.
"""

import contextlib
import importlib
import re
import types
from pathlib import Path

import numpy as np

PROGRAMS = Path(__file__).parent / "programs"

_IMPORT_LINE = re.compile(r"^(\s*)(import torch|from torch)\b")


def port_source(source):
    """``source`` with its torch imports turned into retrograd imports. Raises ValueError
    when an import of torch has a form the rewrite does not know (so nothing is silently
    left importing PyTorch)."""
    lines = source.splitlines(keepends=True)
    return "".join(_port_line(line) if _IMPORT_LINE.match(line) else line for line in lines)


def _port_line(line):
    indent, rest = re.match(r"^(\s*)(.*?)\s*$", line).groups()
    newline = "\n" if line.endswith("\n") else ""
    if rest == "import torch":
        return f"{indent}import retrograd as torch{newline}"
    aliased = re.fullmatch(r"import torch((?:\.\w+)+) as (\w+)", rest)
    if aliased:
        return f"{indent}import retrograd{aliased.group(1)} as {aliased.group(2)}{newline}"
    from_import = re.fullmatch(r"from torch((?:\.\w+)*) import (.+)", rest)
    if from_import:
        package, names = from_import.groups()
        return f"{indent}from retrograd{package} import {names}{newline}"
    raise ValueError(f"port_source: cannot rewrite the import line {line.strip()!r}; write "
                     "'import torch', 'import torch.x as y' or 'from torch.x import y'")


def changed_lines(original, ported):
    """The (original, ported) line pairs that differ: the test checks that all are imports."""
    return [(a, b) for a, b in zip(original.splitlines(), ported.splitlines()) if a != b]


def load_program(path, framework):
    """The program at ``path`` as a fresh module, its imports pointing at ``framework``
    ('torch' or 'retrograd')."""
    source = Path(path).read_text()
    if framework == "retrograd":
        source = port_source(source)
    name = f"port_{Path(path).stem}_{framework}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    exec(compile(source, f"{path} [{framework}]", "exec"), module.__dict__)  # noqa: S102
    return module


def run_port(path, framework, dtype="float32", initial_state=None, seed=0):
    """Builds and trains the program under ``framework`` with default dtype ``dtype``.

    ``initial_state``: {model name: {key: ndarray}} loaded into the built models before
    training (the PyTorch run's initial weights). Returns a dict with 'initial' (the models'
    state before training), 'results' (train's results as NumPy) and 'final' (per model: every
    state-dict entry and every parameter gradient, as NumPy)."""
    fw = importlib.import_module(framework)
    program = load_program(path, framework)
    fw.manual_seed(seed)
    previous = fw.get_default_dtype()
    fw.set_default_dtype(getattr(fw, dtype))
    try:
        with aligned_random(fw, seed):
            models = program.build()
            if initial_state is not None:
                _load_state(fw, models, initial_state)
            initial = {name: _state(model) for name, model in models.items()}
            results = program.train(models)
            final = {name: {**_state(model), **_grads(model)} for name, model in models.items()}
    finally:
        fw.set_default_dtype(previous)
    return {"initial": initial, "results": to_numpy(results), "final": final}


def _load_state(fw, models, initial_state):
    for name, model in models.items():
        state = {key: fw.tensor(value) for key, value in initial_state[name].items()}
        model.load_state_dict(state)


def _state(model):
    return {key: _array(value) for key, value in model.state_dict().items()}


def _grads(model):
    return {f"{name}.grad": _array(p.grad) for name, p in model.named_parameters()
            if p.grad is not None}


def _array(tensor):
    return np.array(tensor.detach().cpu().numpy(), copy=True)


def to_numpy(value):
    """Results with every tensor as an ndarray, recursing into dicts, lists and tuples."""
    if isinstance(value, dict):
        return {key: to_numpy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_numpy(item) for item in value]
    if hasattr(value, "detach"):
        return _array(value)
    return value


# ---------------------------------------------------------------- one random stream for both


@contextlib.contextmanager
def aligned_random(fw, seed):
    """Replaces ``fw``'s sampling functions by draws from one NumPy stream seeded with
    ``seed``, restoring them on exit."""
    rng = np.random.default_rng(seed)
    replacements = _sampling_functions(fw, rng)
    saved = {}
    for (owner, name), function in replacements.items():
        saved[owner, name] = getattr(owner, name)
        setattr(owner, name, function)
    try:
        yield rng
    finally:
        for (owner, name), function in saved.items():
            setattr(owner, name, function)


def _sampling_functions(fw, rng):
    functional = importlib.import_module(f"{fw.__name__}.nn.functional")

    def floating(dtype):
        return dtype if dtype is not None else fw.get_default_dtype()

    def make(array, dtype, requires_grad=False):
        return fw.tensor(array, dtype=dtype).requires_grad_(requires_grad)

    def shape_of(size):
        if len(size) == 1 and isinstance(size[0], (tuple, list)) or (
                len(size) == 1 and type(size[0]).__name__ == "Size"):
            return tuple(size[0])
        return tuple(int(s) for s in size)

    def randn(*size, dtype=None, requires_grad=False, **_):
        return make(rng.standard_normal(shape_of(size)), floating(dtype), requires_grad)

    def rand(*size, dtype=None, requires_grad=False, **_):
        return make(rng.random(shape_of(size)), floating(dtype), requires_grad)

    def randint(*args, size=None, dtype=None, **_):
        low, high = (0, args[0]) if len(args) == 1 or isinstance(args[1], (tuple, list)) \
            else args[:2]
        size = size if size is not None else args[-1]
        return make(rng.integers(low, high, tuple(size)), dtype or fw.int64)

    def randperm(n, dtype=None, **_):
        return make(rng.permutation(int(n)), dtype or fw.int64)

    def like(sampler):
        def sample(tensor, dtype=None, **_):
            return sampler(*tensor.shape, dtype=dtype or tensor.dtype)
        return sample

    def multinomial(weights, num_samples, replacement=False, **_):
        probs = np.atleast_2d(_array(weights).astype(np.float64))
        rows = [_multinomial_row(rng, row, int(num_samples), replacement) for row in probs]
        drawn = np.stack(rows) if weights.dim() == 2 else rows[0]
        return make(drawn, fw.int64)

    def bernoulli(probs, **_):
        return make(rng.random(tuple(probs.shape)) < _array(probs), probs.dtype)

    def dropout(input, p=0.5, training=True, inplace=False, **_):  # noqa: A002
        if not training or p == 0:
            return input
        keep = make(rng.random(tuple(input.shape)) >= p, input.dtype)
        return input * keep * (1.0 / (1.0 - p))

    samplers = dict(randn=randn, rand=rand, randint=randint, randperm=randperm,
                    randn_like=like(randn), rand_like=like(rand), multinomial=multinomial,
                    bernoulli=bernoulli)
    replacements = {(fw, name): function for name, function in samplers.items()}
    replacements[functional, "dropout"] = dropout
    return replacements


def _multinomial_row(rng, weights, count, replacement):
    weights = weights.copy()
    drawn = []
    for _ in range(count):
        cumulative = np.cumsum(weights / weights.sum())
        index = min(int(np.searchsorted(cumulative, rng.random(), side="right")),
                    len(weights) - 1)
        drawn.append(index)
        if not replacement:
            weights[index] = 0.0
    return np.array(drawn, dtype=np.int64)
