"""DESIGN.md's layers, enforced on the imports of every module of the package.

Reading top to bottom, each layer may import the layers below it, never those above:

    cli/, training/, inspect/, amp/, explain/      tools and jobs (above nn/)
    models/                                        case studies, built from nn/
    nn/ (layers)  ->  nn/functional/  ->  ops/     layers call nn.functional, which calls ops
    optim/, utils/, datasets/, distributed/        beside nn/ (distributed/ below it)
    autograd/, tensor and the core modules         the protocol and the engine

The rules below are the ones DESIGN.md states; each failure names the file, the line and the
import that breaks it.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "retrograd"

TOOLS = ("retrograd.inspect", "retrograd.amp", "retrograd.training", "retrograd.cli",
         "retrograd.explain")
# ops/ sees arrays: besides NumPy/SciPy and the standard library, only the autograd protocol
# (and its cost model, which every op declares its cost in), its own modules and private
# helpers, and three leaf modules (dtypes for bfloat16 detection, random for dropout
# masks drawn from retrograd's generator, _fast for the compiled kernels of the 'fast' extra,
# which see arrays only too).
OPS_MAY_IMPORT = ("retrograd.autograd.function", "retrograd.autograd.cost", "retrograd.ops",
                  "retrograd.dtypes", "retrograd.random", "retrograd._fast")
NN_LAYERS_EXCLUDE = ("retrograd.nn.functional",)


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """(line, imported module) for every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative: resolve against the file's package
                base = module_name(path).split(".")
                base = base[:len(base) - node.level + (path.name == "__init__.py")]
                name = ".".join(base + [node.module])
            else:
                name = node.module
            if name != "retrograd":  # `from retrograd import ops` imports retrograd.ops only
                found.append((node.lineno, name))
            # `from retrograd.nn import functional` imports the subpackage itself
            found.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names)
    return found


def within(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def is_core(name):
    """tensor, dtypes, random, creation, api and the private core modules (_checks, ...): the
    modules that are files directly in the package, not subpackages."""
    parts = name.split(".")
    return len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").is_file()


def violations(modules):
    """Every (module, line, import, rule) that breaks a rule; ``modules`` maps a module name
    to its (line, imported module) pairs."""
    found = []
    for name, imports in modules.items():
        for line, imported in imports:
            if not imported.startswith("retrograd"):
                continue
            for rule, broken in RULES:
                if broken(name, imported):
                    found.append((name, line, imported, rule))
    return found


RULES = [
    ("ops/ imports only the autograd protocol, NumPy/SciPy and its own helpers",
     lambda m, i: within(m, ("retrograd.ops",)) and not within(i, OPS_MAY_IMPORT)),
    ("nn/ layers call nn.functional, never ops/",
     lambda m, i: within(m, ("retrograd.nn",)) and not within(m, NN_LAYERS_EXCLUDE)
     and within(i, ("retrograd.ops",))),
    ("tools (inspect/, amp/, training/, cli/, explain/) sit above nn/ and models/: nothing "
     "below them imports them",
     lambda m, i: within(i, TOOLS) and (is_core(m) or within(m, (
         "retrograd.autograd", "retrograd.ops", "retrograd.nn", "retrograd.models",
         "retrograd.optim", "retrograd.datasets", "retrograd.distributed")))),
    ("distributed/ (collectives) sits below nn/",
     lambda m, i: within(m, ("retrograd.distributed",)) and within(
         i, ("retrograd.nn", "retrograd.models") + TOOLS)),
    ("_numba/ (the compiled kernels) sees arrays only: NumPy, Numba and its own modules",
     lambda m, i: within(m, ("retrograd._numba",)) and not within(i, ("retrograd._numba",))),
    ("_onednn/ (oneDNN's primitives) sees arrays only: NumPy, ctypes and its own modules",
     lambda m, i: within(m, ("retrograd._onednn",)) and not within(i, ("retrograd._onednn",))),
    ("autograd/ and the core modules never import nn/ or models/",
     lambda m, i: (is_core(m) or within(m, ("retrograd.autograd",)))
     and within(i, ("retrograd.nn", "retrograd.models"))),
]


# modules that only re-export: the package's __init__ (everything) and retrograd.profiler
# (the profiler of inspect/ under PyTorch's name, torch.profiler)
REEXPORTS = ("retrograd", "retrograd.profiler")


def package_modules():
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))
            if module_name(p) not in REEXPORTS}


def test_the_package_keeps_its_layers():
    broken = violations(package_modules())
    report = "\n".join(f"{m.replace('.', '/')}.py:{line}: imports {i} ({rule})"
                       for m, line, i, rule in broken)
    assert not broken, "layering broken:\n" + report


@pytest.mark.parametrize("module, imported, rule", [
    ("retrograd.ops.conv", "retrograd.nn.functional", "ops/"),
    ("retrograd.ops.norm", "retrograd.tensor", "ops/"),
    ("retrograd.nn.conv", "retrograd.ops.conv", "nn/ layers"),
    ("retrograd.nn.attention", "retrograd.inspect.attention", "tools"),
    ("retrograd.models.gpt", "retrograd.inspect", "tools"),
    ("retrograd.tensor", "retrograd.amp.autocast", "tools"),
    ("retrograd.distributed.process_group", "retrograd.nn.module", "distributed/"),
    ("retrograd.autograd.engine", "retrograd.nn.module", "autograd/"),
])
def test_each_rule_catches_what_it_forbids(module, imported, rule):
    broken = violations({module: [(1, imported)]})
    assert [r for _, _, _, r in broken if r.startswith(rule)], broken


@pytest.mark.parametrize("module, imported", [
    ("retrograd.ops.conv", "retrograd.ops._parallel"),
    ("retrograd.ops.pool", "retrograd.autograd.function"),
    ("retrograd.nn.functional.conv", "retrograd.ops.conv"),
    ("retrograd.nn.conv", "retrograd.nn.functional"),
    ("retrograd.training.image", "retrograd.inspect.report"),
    ("retrograd.inspect.report", "retrograd.nn"),
])
def test_what_the_layers_allow_passes(module, imported):
    assert violations({module: [(1, imported)]}) == []


def test_imports_are_found_inside_functions_and_relative_imports_are_resolved(tmp_path):
    path = PACKAGE / "nn" / "conv.py"
    assert any(i == "retrograd.nn.functional" for _, i in imports_of(path))
    source = PACKAGE / "cli" / "__init__.py"
    lazy = [i for _, i in imports_of(source)]
    assert any(i.startswith("retrograd.cli") for i in lazy)
