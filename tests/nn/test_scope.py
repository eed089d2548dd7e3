"""Module paths: every node records the module whose forward created it, with the names of
named_modules(), on nested models, shared modules, calls from outside the owner, and after
an error inside a forward."""

import numpy as np
import pytest

import retrograd as rg
from retrograd.autograd.grad_mode import STATE


def _nodes(root):
    """Every node of the graph below ``root``."""
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(n for n, _ in node.next_functions)


def test_nodes_of_a_nested_resnet_carry_named_modules_paths():
    rg.manual_seed(0)
    model = rg.models.resnet8()
    y = model(rg.randn(2, 3, 32, 32))
    names = {name for name, _ in model.named_modules()}
    by_path = {}
    for node in _nodes(y.grad_fn):
        if node.name() != "AccumulateGrad":
            by_path.setdefault(node.module_path, set()).add(node.name())
    assert set(by_path) <= names
    assert "Conv2dBackward" in by_path["layers.1.0.conv2"]
    assert "BatchNormBackward" in by_path["layers.1.0.bn2"]
    assert "Conv2dBackward" in by_path["layers.1.0.downsample.0"]
    # the residual addition and the ReLU after it belong to the block's own forward
    assert "AddBackward" in by_path["layers.1.0"]
    assert by_path[""] & {"LinearBackward", "MatMulBackward", "ReshapeBackward",
                          "MeanBackward"} or "fc" in by_path


def test_path_of_a_leaf_layer_called_alone_is_the_root_path():
    layer = rg.nn.Linear(3, 2)
    y = layer(rg.ones(1, 3))
    assert y.grad_fn.module_path == ""


def test_ops_outside_every_module_have_no_path():
    x = rg.ones(2, requires_grad=True)
    assert (x * 2).grad_fn.module_path is None


def test_a_grandchild_called_from_the_root_is_named_by_its_full_path():
    class Net(rg.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = rg.nn.ModuleList([rg.nn.Sequential(rg.nn.Linear(2, 2))])

        def forward(self, x):
            return self.blocks[0][0](x)  # skips the Sequential's own forward

    y = Net()(rg.ones(1, 2))
    assert y.grad_fn.module_path == "blocks.0.0"


def test_a_module_owned_by_no_running_module_is_named_by_its_class():
    helper = rg.nn.Tanh()

    class Net(rg.nn.Module):
        def forward(self, x):
            return helper(x)

    y = Net()(rg.ones(2, requires_grad=True))
    assert y.grad_fn.module_path == "<Tanh>"


def test_a_shared_module_takes_its_first_name():
    shared = rg.nn.Linear(2, 2)
    net = rg.nn.Sequential(shared, rg.nn.ReLU(), shared)
    y = net(rg.ones(1, 2))
    assert y.grad_fn.module_path == "0"


def test_the_scope_is_restored_after_an_error_in_forward():
    class Failing(rg.nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    with pytest.raises(ValueError):
        rg.nn.Sequential(Failing())(rg.ones(1))
    assert STATE.module_scope is None


def test_backward_nodes_keep_the_path_after_the_forward_returned():
    net = rg.nn.Sequential(rg.nn.Linear(3, 3), rg.nn.Sequential(rg.nn.Linear(3, 1)))
    x = rg.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    paths = []
    for node in _nodes(net(x).grad_fn):
        paths.append(node.module_path)
    assert "1.0" in paths and "0" in paths
